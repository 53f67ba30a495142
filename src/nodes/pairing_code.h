#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace labgate::nodes {

/// What a pairing code carries: where the gateway listens, the fingerprint of its host key (so
/// the device can refuse an impostor), the node id it was issued for and a single-use secret.
struct PairingCode {
  std::string address;      // "host:port"
  std::string fingerprint;  // "SHA256:..."
  std::string node_id;
  std::string secret;  // URL-safe base64 of 32 random bytes
};

/// "lgpair1." + URL-safe base64 of a small JSON object: one word, safe to paste in a shell.
std::string EncodePairingCode(const PairingCode& code);

/// Parses a code; says what is wrong with one that was mistyped or truncated.
core::Result<PairingCode> DecodePairingCode(std::string_view text);

}  // namespace labgate::nodes
