#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/cancel.h"
#include "core/process_runner.h"
#include "core/result.h"

/// What each capability means on a platform. `run` is shared by the gateway's `local` target
/// and the node agent, so both behave the same.
namespace labgate::capabilities {

/// A command as the caller gave it: an argv run without a shell, or a string run by `sh -c`.
struct Command {
  std::vector<std::string> argv;
  std::optional<std::string> shell;

  /// The argv that will actually be executed.
  std::vector<std::string> ExecArgv() const;
  /// One line for people and audit summaries.
  std::string Display() const;
};

/// Checks a command before anything runs: non-empty, no NUL bytes.
core::Status ValidateCommand(const Command& command);

/// A `run` request on one machine.
struct RunRequest {
  Command command;
  std::string cwd;
  std::chrono::milliseconds timeout{20000};
  std::size_t output_cap = core::kDefaultOutputCap;
  std::vector<std::pair<std::string, std::string>> env;
  /// Run as root through `sudo -S` with the target's sudo password (SSH hosts and nodes).
  bool sudo = false;
  /// Sees the output as it arrives, on whatever thread reads it (live output of a task); the
  /// result still carries the authoritative head + tail. Not sent to nodes.
  core::OutputListener* listener = nullptr;
};

/// What `request` starts on this machine (checked: a bad command fails here).
core::Result<core::ProcessSpec> SpecOnThisMachine(const RunRequest& request);

/// Runs `request` on this machine through `runner`.
core::Result<core::ProcessOutcome> RunOnThisMachine(core::ProcessRunner& runner, const RunRequest& request,
                                                    const core::CancelToken& cancel,
                                                    core::OutputListener* listener = nullptr);

}  // namespace labgate::capabilities
