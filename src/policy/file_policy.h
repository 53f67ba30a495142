#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "policy/classify.h"

namespace labgate::policy {

/// `path` as the `file` capability's rules see it: `~` and `~/...` become `home`'s, `//` and `.`
/// go, and `..` removes the component before it (never above `/`). Refused (kInvalidArgument,
/// saying what to send instead): an empty or relative path, `~user`, `~` when `home` is unknown,
/// and control characters, which no rule or log line could show faithfully. Symlinks are not
/// resolved here: that is done on the target before the rules are applied again. Pure.
core::Result<std::string> NormalizeFilePath(std::string_view path, std::string_view home);

/// Why reading `path` (normalised) is refused unless an operator's read rule admits it: SSH and
/// TLS private keys, password hashes, credential stores (cloud, container registry, kube, git,
/// netrc, pgpass, gnupg, pass), and labgate's own files (`protected_paths`, `~/` meaning `home`).
/// nullopt for an ordinary file. Pure.
std::optional<Classification> SecretFile(std::string_view path, const std::vector<std::string>& protected_paths = {},
                                         std::string_view home = "");

/// Whether `content` holds a PEM or OpenSSH private key block (`-----BEGIN ... PRIVATE KEY-----`):
/// such text is a secret whatever the file is called.
bool HoldsPrivateKey(std::string_view content);

}  // namespace labgate::policy
