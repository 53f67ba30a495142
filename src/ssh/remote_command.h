#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// Pure pieces of remote execution over SSH: the string the remote login shell receives and
/// the script that stops a command's process group. No I/O; table-tested.
namespace labgate::ssh {

/// Environment variable that tags every process a command starts with its run id, so a second
/// channel can find the command's process group on the host.
inline constexpr std::string_view kRunIdVariable = "LABGATE_RUN";

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

/// The prefix that runs a command as root with the password on stdin: `sudo -k -S -p '' --`.
inline constexpr std::string_view kSudoPrefix = "sudo -k -S -p '' --";

/// Script for a second channel: finds the process groups of processes whose environment carries
/// `run_id` (via /proc/*/environ; Linux), sends TERM, waits up to `grace_ms` and then KILLs what
/// is left. Waits up to a second for a command that is still starting. Written for dash (whose
/// `kill` rejects `--`).
std::string KillScript(const std::string& run_id, int grace_ms);

/// The kill script as the exec text of its channel: as is, or through sudo (then the caller
/// sends the password on stdin) when the command it stops runs as root.
std::string KillCommand(const std::string& run_id, int grace_ms, bool sudo);

/// A fresh random run id (16 hex digits).
std::string NewRunId();

}  // namespace labgate::ssh
