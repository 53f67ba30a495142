#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/process_runner.h"
#include "core/result.h"

namespace labgate::ssh {

/// Everything needed to reach one SSH host, resolved from hosts.toml (secrets already read).
struct HostSpec {
  std::string id;                    // the target id, for messages and the pool
  std::string address;               // IP, DNS name or ~/.ssh/config alias
  int port = 0;                      // 0: from ~/.ssh/config, else 22
  std::string user;                  // empty: from ~/.ssh/config, else the local user
  std::string identity_file;         // empty: ssh-agent and the default keys
  std::string passphrase;            // for identity_file / default keys; never logged
  std::string password;              // password authentication; never logged
  bool accept_new = false;           // record an unknown host key on first use
  std::string known_hosts;           // labgate's own file (written by trust / accept-new)
  std::string user_known_hosts;      // ~/.ssh/known_hosts (read only)
  std::shared_ptr<const HostSpec> jump;  // ProxyJump through this host, when set
};

/// A command for a host.
struct ExecRequest {
  std::vector<std::string> argv;
  std::optional<std::string> shell;
  std::string cwd;
  std::vector<std::pair<std::string, std::string>> env;
  std::chrono::milliseconds timeout{20000};
  std::size_t output_cap = 64 * 1024;
  std::chrono::milliseconds kill_grace{1000};
  core::OutputListener* listener = nullptr;  // sees output as it arrives, on the session's thread
  /// Sent to the command's stdin as the channel's window allows, then EOF; null leaves stdin
  /// as sshd gives it (open, nothing sent).
  std::shared_ptr<const std::string> stdin_data;
  /// Non-empty: run as root through `sudo -k -S -p ''`, this password on the first line of stdin
  /// (never in argv or the environment); the command's own stdin is /dev/null. The deadline's
  /// kill script runs through sudo the same way.
  std::string sudo_password;
  /// With sudo_password: the command keeps stdin (the rest of stdin_data after the password
  /// line) instead of /dev/null; it must then cope with a password line sudo did not need.
  bool sudo_keeps_stdin = false;
};

/// Reads a secret named by reference: an environment variable, else a file (trailing newline
/// dropped). Empty when neither is set. The value never appears in an error message.
core::Result<std::string> ResolveSecret(const std::string& env_name, const std::string& file, const std::string& what);

}  // namespace labgate::ssh
