#pragma once

#include <libssh/libssh.h>

#include <memory>
#include <string>

#include "core/result.h"

namespace labgate::nodes {

struct KeyDeleter {
  void operator()(ssh_key key) const { ssh_key_free(key); }
};
/// An owned libssh key (private or public).
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyDeleter>;

/// A public key as the pairing store records it and the agent channel carries it.
struct PublicKey {
  std::string type;         // "ssh-ed25519"
  std::string base64;       // the key blob, as in authorized_keys
  std::string fingerprint;  // "SHA256:...", as ssh-keygen -l prints it
};

/// OpenSSH-style SHA256 fingerprint of a key.
std::string Fingerprint(ssh_key key);

/// The public half of `key`, with its fingerprint.
core::Result<PublicKey> PublicKeyOf(ssh_key key);

/// Rebuilds a public key from its recorded form; checks the fingerprint matches.
core::Result<KeyPtr> ImportPublicKey(const PublicKey& key);

/// Generates a fresh Ed25519 key and writes it to `path` (OpenSSH format, mode 0600, written to a
/// temporary file and renamed, so a crash never leaves half a key).
core::Result<KeyPtr> CreateKeyFile(const std::string& path);

/// Reads a private key; refuses a file that others can read.
core::Result<KeyPtr> LoadKeyFile(const std::string& path);

/// Loads `path`, or creates it when it does not exist (`created` tells which).
core::Result<KeyPtr> LoadOrCreateKeyFile(const std::string& path, bool* created);

}  // namespace labgate::nodes
