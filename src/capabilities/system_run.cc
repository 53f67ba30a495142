#include "capabilities/system_run.h"

#include "core/text.h"

namespace labgate::capabilities {

std::vector<std::string> Command::ExecArgv() const {
  if (shell) return {"/bin/sh", "-c", *shell};
  return argv;
}

std::string Command::Display() const { return shell ? *shell : core::JoinArgv(argv); }

core::Status ValidateCommand(const Command& command) {
  auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  if (command.shell) {
    if (command.shell->empty()) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "command is an empty string");
    }
    if (has_nul(*command.shell)) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "command contains a NUL byte, which no program can receive");
    }
    return core::Ok();
  }
  if (command.argv.empty() || command.argv[0].empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "command argv is empty: give at least the program name");
  }
  for (std::size_t i = 0; i < command.argv.size(); ++i) {
    if (has_nul(command.argv[i])) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "command argv[" + std::to_string(i) + "] contains a NUL byte, which no program can receive");
    }
  }
  return core::Ok();
}

core::Result<core::ProcessSpec> SpecOnThisMachine(const RunRequest& request) {
  if (auto ok = ValidateCommand(request.command); !ok) return ok.error();
  core::ProcessSpec spec;
  spec.argv = request.command.ExecArgv();
  spec.cwd = request.cwd;
  spec.env = request.env;
  spec.timeout = request.timeout;
  spec.output_cap = request.output_cap;
  return spec;
}

core::Result<core::ProcessOutcome> RunOnThisMachine(core::ProcessRunner& runner, const RunRequest& request,
                                                    const core::CancelToken& cancel, core::OutputListener* listener) {
  auto spec = SpecOnThisMachine(request);
  if (!spec) return spec.error();
  return runner.Run(*spec, cancel, listener ? listener : request.listener);
}

}  // namespace labgate::capabilities
