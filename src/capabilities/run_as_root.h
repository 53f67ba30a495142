#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/file_ops.h"
#include "capabilities/system_run.h"
#include "core/cancel.h"
#include "core/process_runner.h"
#include "core/result.h"

/// Running a command as root through sudo with the password on stdin. SSH hosts build a shell
/// string from these pieces (ssh/remote_command.h); a paired node runs the argv directly.
namespace labgate::capabilities {

/// Environment variable that tags every process a command starts with its run id, so the kill
/// script can find the command's process groups (also those it may not signal itself).
inline constexpr std::string_view kRunIdVariable = "LABGATE_RUN";

/// The prefix that runs a command as root with the password on stdin, as shell text: -k makes
/// sudo read the password every time, -S from stdin, -p '' without a prompt.
inline constexpr std::string_view kSudoPrefix = "sudo -k -S -p '' --";

/// kSudoPrefix as argv words.
std::vector<std::string> SudoArgvPrefix();

/// The sudo to run on this machine: the first of /usr/bin/sudo, /bin/sudo, /usr/local/bin/sudo
/// and /run/wrappers/bin/sudo that is a root-owned setuid regular file. Never looked up in PATH,
/// so nothing the account can write stands in for it and receives the password.
core::Result<std::string> TrustedSudo();

/// Script that finds the process groups of processes whose environment carries `run_id` (via
/// /proc/*/environ; Linux), sends TERM, waits up to `grace_ms` and then KILLs what is left.
/// Waits up to a second for a command that is still starting. Written for dash (whose `kill`
/// rejects `--`).
std::string KillScript(const std::string& run_id, int grace_ms);

/// The argv that runs `request`'s command as root: sudo, then `env` with the run id and the
/// requested variables (sudo resets the environment), then the command, with /dev/null as its
/// stdin unless `keeps_stdin`, so a password sudo did not need is never read by the command.
/// Nothing in it goes through a shell but the constant `exec "$@" </dev/null`. Fails on invalid
/// variable names.
core::Result<std::vector<std::string>> SudoArgv(const RunRequest& request, const std::string& run_id,
                                                bool keeps_stdin = false);

/// How to run as root on this machine.
struct AsRoot {
  std::string password;
  std::string sudo = "sudo";  // the program; TrustedSudo() on a real machine
  std::chrono::milliseconds kill_grace{1000};
  /// When set, the command keeps its stdin and reads what this writes into `fd` after the
  /// password line (on a thread of its own; it must return when a write fails).
  std::function<void(int fd)> feed;
};

/// Runs `request` as root on this machine through sudo with the password on its stdin. On a
/// deadline or cancel the kill script runs through sudo too, because the runner may not signal
/// root processes; then the runner stops what is left of sudo's group. A kill script that could
/// not run leaves the outcome marked stop_unconfirmed.
core::Result<core::ProcessOutcome> RunAsRootOnThisMachine(core::ProcessRunner& runner, const RunRequest& request,
                                                          const AsRoot& root, const core::CancelToken& cancel,
                                                          core::OutputListener* listener);

/// The argv of the constant script that writes `path` as root (run under sudo), reading the
/// content from stdin after a line holding `marker` (so a password sudo did not need never ends
/// up in the file). It refuses a symlink or a non-regular file, and a directory that another
/// account could write (not root's, or group/world-writable without the sticky bit: the
/// temporary file could be swapped for a link before its chown and chmod); checks
/// options.expected_sha256 against the current content; writes a temporary file beside it
/// (owner and mode kept; `options.mode` wins); with `content_sha256`, checks its own copy against
/// it; syncs it and renames it into place (or links it, for create-only). It prints the previous
/// content's SHA-256 (empty: none) and the new mode.
std::vector<std::string> RootPutArgv(const std::string& path, const WriteOptions& options, const std::string& marker,
                                     const std::string& content_sha256);

/// What the script's run means: the write's outcome, or an error naming `path` on `target`
/// (kRefused for what the file's state refused: symlink, exists, changed, open directory).
core::Result<WriteOutcome> RootPutResult(const core::ProcessOutcome& outcome, const std::string& path,
                                         const std::string& target, const std::string& content_sha256,
                                         std::uint64_t size);

/// A fresh random run id (16 hex digits).
std::string NewRunId();

}  // namespace labgate::capabilities
