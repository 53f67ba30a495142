#include "capabilities/run_as_root.h"

#include <cstdio>
#include <random>

#include "core/text.h"

namespace labgate::capabilities {

using core::ErrorCode;
using core::MakeError;

std::vector<std::string> SudoArgvPrefix() { return {"sudo", "-k", "-S", "-p", "", "--"}; }

std::string NewRunId() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

std::string KillScript(const std::string& run_id, int grace_ms) {
  const int rounds = grace_ms / 50 > 0 ? grace_ms / 50 : 1;
  return "n=" + core::ShellQuote(run_id) + "; groups=; tries=0\n"
         "while [ -z \"$groups\" ] && [ $tries -lt 20 ]; do\n"
         "  for f in $(grep -lzx \"" + std::string(kRunIdVariable) + "=$n\" /proc/[0-9]*/environ 2>/dev/null); do\n"
         "    read -r st < \"${f%/environ}/stat\" 2>/dev/null || continue\n"
         "    set -- ${st##*) }\n"
         "    case \" $groups \" in *\" $3 \"*) ;; *) groups=\"$groups $3\" ;; esac\n"
         "  done\n"
         "  [ -n \"$groups\" ] || { sleep 0.05; tries=$((tries+1)); }\n"
         "done\n"
         "[ -n \"$groups\" ] || exit 0\n"
         "for g in $groups; do kill -TERM -$g 2>/dev/null; done\n"
         "i=0\n"
         "while [ $i -lt " + std::to_string(rounds) + " ]; do\n"
         "  alive=; for g in $groups; do kill -0 -$g 2>/dev/null && alive=1; done\n"
         "  [ -z \"$alive\" ] && exit 0\n"
         "  sleep 0.05; i=$((i+1))\n"
         "done\n"
         "for g in $groups; do kill -KILL -$g 2>/dev/null; done\n"
         "exit 0\n";
}

core::Result<std::vector<std::string>> SudoArgv(const RunRequest& request, const std::string& run_id) {
  if (auto ok = ValidateCommand(request.command); !ok) return ok.error();
  std::vector<std::string> argv = SudoArgvPrefix();
  argv.push_back("env");
  argv.push_back(std::string(kRunIdVariable) + "=" + run_id);
  for (const auto& [key, value] : request.env) {
    // `env` reads NAME=VALUE words until the first other word; a valid name never starts
    // with '-' and never holds '=', so no word can turn into an option or the program.
    if (!core::IsValidEnvName(key)) return MakeError(ErrorCode::kInvalidArgument, "invalid environment variable name '" + key + "'");
    argv.push_back(key + "=" + value);
  }
  if (request.command.shell) {
    argv.insert(argv.end(), {"/bin/sh", "-c", "exec /bin/sh -c \"$1\" </dev/null", "sh", *request.command.shell});
  } else {
    argv.insert(argv.end(), {"/bin/sh", "-c", "exec \"$@\" </dev/null", "sh"});
    argv.insert(argv.end(), request.command.argv.begin(), request.command.argv.end());
  }
  return argv;
}

core::Result<core::ProcessOutcome> RunAsRootOnThisMachine(core::ProcessRunner& runner, const RunRequest& request,
                                                          const std::string& password, const core::CancelToken& cancel,
                                                          core::OutputListener* listener,
                                                          std::chrono::milliseconds kill_grace) {
  if (password.empty()) return MakeError(ErrorCode::kInvalidArgument, "sudo needs a password and none was given");
  if (password.find_first_of("\r\n") != std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "the sudo password holds a line break, which sudo -S cannot read");
  }
  if (password.size() >= core::kMaxStdinBytes) return MakeError(ErrorCode::kInvalidArgument, "the sudo password is too long");
  const std::string run_id = NewRunId();
  auto argv = SudoArgv(request, run_id);
  if (!argv) return argv.error();
  core::ProcessSpec spec;
  spec.argv = std::move(*argv);
  spec.cwd = request.cwd;
  spec.timeout = request.timeout;
  spec.output_cap = request.output_cap;
  spec.stdin_data = password + "\n";
  spec.on_stop = [&runner, &password, &run_id, kill_grace] {
    core::ProcessSpec kill;
    kill.argv = SudoArgvPrefix();
    kill.argv.insert(kill.argv.end(), {"/bin/sh", "-c", KillScript(run_id, static_cast<int>(kill_grace.count()))});
    kill.stdin_data = password + "\n";
    kill.timeout = kill_grace + std::chrono::milliseconds(3000);
    core::CancelToken never;
    (void)runner.Run(kill, never, nullptr);
  };
  return runner.Run(spec, cancel, listener ? listener : request.listener);
}

}  // namespace labgate::capabilities
