#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace labgate::core {

/// Standard base64 with padding (RFC 4648 §4); binary-safe transport of output in JSON.
std::string Base64Encode(std::string_view bytes);

/// Decodes standard base64; fails on anything that is not well-formed base64.
Result<std::string> Base64Decode(std::string_view text);

/// URL-safe base64 without padding (RFC 4648 §5), for codes people copy and paste.
std::string Base64UrlEncode(std::string_view bytes);
Result<std::string> Base64UrlDecode(std::string_view text);

/// `n` bytes from the system's CSPRNG.
std::string RandomBytes(std::size_t n);

}  // namespace labgate::core
