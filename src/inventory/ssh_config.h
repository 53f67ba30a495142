#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

/// The hosts of an OpenSSH client config (~/.ssh/config), read for `labgate hosts import
/// --from-ssh-config`: each concrete Host alias with the HostName, Port, User, IdentityFile and
/// ProxyJump ssh would use for it. Pure; the files come through `SshConfigFiles`.
namespace labgate::inventory {

/// File access for the reader: reading a file, and expanding an Include glob.
struct SshConfigFiles {
  std::function<core::Result<std::string>(const std::string& path)> read;
  std::function<std::vector<std::string>(const std::string& pattern)> glob;  // sorted matches
};

/// One concrete alias ("Host nas"), with the values ssh would take for it.
struct SshConfigHost {
  std::string alias;
  std::string hostname;  // HostName (%h expanded), else the alias
  std::optional<int> port;
  std::string user;
  std::string identity_file;  // the first IdentityFile, as written (~ kept)
  std::string proxy_jump;     // as written; "none" is left out
  std::string source;         // "FILE:LINE" of its Host line
};

struct SshConfig {
  std::vector<SshConfigHost> hosts;  // in the order their Host lines appear
  /// What was not read or applied, and why ("FILE:LINE: Match block skipped: ...").
  std::vector<std::string> notes;
};

/// Reads `path` as ssh_config(5) does for these keywords: keywords in any case, `=` or spaces,
/// quoted arguments; Host blocks with patterns (`*`, `?`, `!negated`), the first value obtained
/// for a keyword wins; Include (globs; relative names under `home`/.ssh), at most 16 deep. Match
/// blocks are not evaluated: their settings are skipped, with a note. An alias with a wildcard is
/// a pattern, not a host. kNotFound when `path` cannot be read; a malformed line is an error
/// naming FILE:LINE.
core::Result<SshConfig> ReadSshConfig(const std::string& path, const SshConfigFiles& files, const std::string& home);

/// Whether `name` matches an ssh_config pattern list entry (`*` and `?` globs, no negation).
bool SshPatternMatches(const std::string& pattern, const std::string& name);

}  // namespace labgate::inventory
