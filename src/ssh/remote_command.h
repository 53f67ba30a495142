#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capabilities/run_as_root.h"

/// Pure pieces of remote execution over SSH: the string the remote login shell receives and
/// the script that stops a command's process group. No I/O; table-tested.
namespace labgate::ssh {

// Shared with nodes, which run the same sudo and kill script directly.
using capabilities::KillScript;
using capabilities::kRunIdVariable;
using capabilities::kSudoPrefix;
using capabilities::NewRunId;

/// The exec request text: optionally `cd DIR`, then the command as one simple command of the
/// login shell prefixed with `LABGATE_RUN=<id>` (and the requested variables), each argv word
/// quoted so nothing in an argument is interpreted; a shell string runs via `/bin/sh -c`. sshd
/// starts each command in its own session, so its processes form one process group. `error` is
/// set for input that cannot be sent (NUL bytes, bad variable names).
struct RemoteCommand {
  std::string text;
  std::string error;
};
/// With `sudo`, the command runs as root through `sudo -k -S -p '' --` (the password is the
/// first line of stdin, sent by the caller; -k makes sudo read it every time), the run id and
/// variables are passed inside through `env` (sudo resets the environment), and the command's
/// own stdin is /dev/null, so a password sudo did not need is never read by the command.
RemoteCommand BuildRemoteCommand(const std::vector<std::string>& argv, const std::optional<std::string>& shell,
                                 const std::string& cwd, const std::vector<std::pair<std::string, std::string>>& env,
                                 const std::string& run_id, bool sudo = false, bool sudo_keeps_stdin = false);

/// The kill script as the exec text of its channel: as is, or through sudo (then the caller
/// sends the password on stdin) when the command it stops runs as root.
std::string KillCommand(const std::string& run_id, int grace_ms, bool sudo);

}  // namespace labgate::ssh
