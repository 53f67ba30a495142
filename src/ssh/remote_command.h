#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// Pure pieces of remote execution over SSH: what string the remote login shell receives, how
/// the process-group id comes back, and how a group is stopped. No I/O; table-tested.
namespace labgate::ssh {

/// The first stdout line of every command labgate starts: "<prefix><pgid>\n".
inline constexpr std::string_view kPgidPrefix = "labgate-pgid ";

/// The string sent as the SSH exec request. It hands everything to /bin/sh (so the login shell's
/// dialect does not matter), prints the process-group id, changes directory, and execs the
/// command: an argv word by word (each quoted, so nothing in an argument is interpreted) or a
/// shell string via `sh -c`. Returns an error text in `error` for input that cannot be sent.
struct RemoteCommand {
  std::string text;
  std::string error;
};
RemoteCommand BuildRemoteCommand(const std::vector<std::string>& argv, const std::optional<std::string>& shell,
                                 const std::string& cwd, const std::vector<std::pair<std::string, std::string>>& env);

/// Parses the pgid line at the start of stdout. Returns the pgid and how many bytes the line
/// takes, or nullopt while the line is incomplete; -1 as pgid when stdout does not start with it.
std::optional<std::pair<int, std::size_t>> ParsePgidLine(std::string_view stdout_start);

/// Script run on a second channel to stop a process group: TERM, wait up to `grace_ms` for the
/// group to go, then KILL. Written for dash (whose `kill` rejects `--`).
std::string KillScript(int pgid, int grace_ms);

/// True for a valid environment variable name.
bool IsValidEnvName(std::string_view name);

}  // namespace labgate::ssh
