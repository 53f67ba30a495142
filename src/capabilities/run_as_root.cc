#include "capabilities/run_as_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>
#include <cstdlib>

#include "core/base64.h"
#include "core/hashing.h"
#include "core/text.h"

namespace labgate::capabilities {

using core::ErrorCode;
using core::MakeError;

std::vector<std::string> SudoArgvPrefix() { return {"sudo", "-k", "-S", "-p", "", "--"}; }

std::string NewRunId() { return core::HexEncode(core::RandomBytes(8)); }  // OpenSSL's DRBG: no device opened per call

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

core::Result<std::string> TrustedSudo() {
  for (const char* path : {"/usr/bin/sudo", "/bin/sudo", "/usr/local/bin/sudo", "/run/wrappers/bin/sudo"}) {
    struct stat st {};
    if (::stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 && (st.st_mode & S_ISUID) != 0 &&
        (st.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
      return std::string(path);
    }
  }
  return MakeError(ErrorCode::kUnavailable,
                   "no root-owned setuid sudo on this machine (looked in /usr/bin, /bin, /usr/local/bin and "
                   "/run/wrappers/bin); install sudo (Debian: apt install sudo)");
}

core::Result<std::vector<std::string>> SudoArgv(const RunRequest& request, const std::string& run_id, bool keeps_stdin) {
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
  if (keeps_stdin) {
    const auto exec = request.command.ExecArgv();
    argv.insert(argv.end(), exec.begin(), exec.end());
  } else if (request.command.shell) {
    argv.insert(argv.end(), {"/bin/sh", "-c", "exec /bin/sh -c \"$1\" </dev/null", "sh", *request.command.shell});
  } else {
    argv.insert(argv.end(), {"/bin/sh", "-c", "exec \"$@\" </dev/null", "sh"});
    argv.insert(argv.end(), request.command.argv.begin(), request.command.argv.end());
  }
  return argv;
}

core::Result<core::ProcessOutcome> RunAsRootOnThisMachine(core::ProcessRunner& runner, const RunRequest& request,
                                                          const AsRoot& root, const core::CancelToken& cancel,
                                                          core::OutputListener* listener) {
  const std::string& password = root.password;
  if (password.empty()) return MakeError(ErrorCode::kInvalidArgument, "sudo needs a password and none was given");
  if (password.find_first_of("\r\n") != std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "the sudo password holds a line break, which sudo -S cannot read");
  }
  if (password.size() >= core::kMaxStdinBytes) return MakeError(ErrorCode::kInvalidArgument, "the sudo password is too long");
  const std::string run_id = NewRunId();
  auto argv = SudoArgv(request, run_id, static_cast<bool>(root.feed));
  if (!argv) return argv.error();
  (*argv)[0] = root.sudo;
  core::ProcessSpec spec;
  spec.argv = std::move(*argv);
  spec.cwd = request.cwd;
  spec.timeout = request.timeout;
  spec.output_cap = request.output_cap;
  bool kill_ran = true;
  spec.on_stop = [&] {
    core::ProcessSpec kill;
    kill.argv = SudoArgvPrefix();
    kill.argv[0] = root.sudo;
    kill.argv.insert(kill.argv.end(), {"/bin/sh", "-c", KillScript(run_id, static_cast<int>(root.kill_grace.count()))});
    kill.stdin_data = password + "\n";
    kill.timeout = root.kill_grace + std::chrono::milliseconds(3000);
    core::CancelToken never;
    auto ran = runner.Run(kill, never, nullptr);
    kill_ran = ran.ok() && !ran->timed_out && ran->exit_code == 0;
  };
  if (!root.feed) {
    spec.stdin_data = password + "\n";
    auto outcome = runner.Run(spec, cancel, listener ? listener : request.listener);
    if (outcome && !kill_ran) outcome->stop_unconfirmed = true;
    return outcome;
  }
  // The password line, then what the caller feeds, through a pipe a thread of ours writes. The
  // read end is ours until Run returns; closing it then ends a feed the command stopped reading.
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) return MakeError(ErrorCode::kUnavailable, std::string("pipe: ") + std::strerror(errno));
  spec.stdin_fd = fds[0];
  std::thread feeder([&, write_end = fds[1]] {
    const std::string line = password + "\n";
    if (::write(write_end, line.data(), line.size()) == static_cast<ssize_t>(line.size())) root.feed(write_end);
    ::close(write_end);
  });
  auto outcome = runner.Run(spec, cancel, listener ? listener : request.listener);
  ::close(fds[0]);
  feeder.join();
  if (outcome && !kill_ran) outcome->stop_unconfirmed = true;
  return outcome;
}

namespace {
const char* const kRootPutScript =
    "set -u\n"
    "dest=$1; mode=$2; expect=$3; expect_set=$4; create_only=$5; marker=$6; want=$7\n"
    "IFS= read -r line || exit 90\n"
    "if [ \"$line\" != \"$marker\" ]; then IFS= read -r line || exit 90; [ \"$line\" = \"$marker\" ] || exit 90; fi\n"
    "dir=$(dirname -- \"$dest\")\n"
    "st=$(stat -L -c '%u %a' -- \"$dir\") || exit 97\n"
    "owner=${st% *}; perm=${st#* }\n"
    "if [ \"$owner\" != 0 ] || { [ $((0$perm & 022)) != 0 ] && [ $((0$perm & 01000)) = 0 ]; }; then\n"
    "  echo \"labgate: $dir is not root's alone (owner uid $owner, mode $perm): another account could swap the file while root sets it up; nothing was written\" >&2; exit 102\n"
    "fi\n"
    "if [ -L \"$dest\" ]; then echo \"labgate: $dest is a symlink; labgate writes files, never through links\" >&2; exit 92; fi\n"
    "prev=\n"
    "if [ -e \"$dest\" ]; then\n"
    "  [ -f \"$dest\" ] || { echo \"labgate: $dest is not a regular file\" >&2; exit 93; }\n"
    "  [ \"$create_only\" = 1 ] && { echo \"labgate: $dest exists; nothing was written\" >&2; exit 94; }\n"
    "  prev=$( (command -v openssl >/dev/null 2>&1 && openssl dgst -sha256 -r \"$dest\") || sha256sum \"$dest\") || exit 95\n"
    "  prev=${prev%% *}\n"
    "fi\n"
    "if [ \"$expect_set\" = 1 ] && [ \"$prev\" != \"$expect\" ]; then\n"
    "  echo \"labgate: $dest now has SHA-256 ${prev:-(no file)}, not the expected ${expect:-(no file)}: someone changed it since it was read; nothing was written\" >&2; exit 96\n"
    "fi\n"
    "tmp=$(mktemp \"$(dirname -- \"$dest\")/.labgate-XXXXXXXX\") || exit 97\n"
    "trap 'rm -f \"$tmp\"' EXIT\n"
    "trap 'rm -f \"$tmp\"; exit 143' TERM HUP INT\n"
    "cat > \"$tmp\" || exit 98\n"
    "if [ -n \"$want\" ]; then\n"
    "  got=$( (command -v openssl >/dev/null 2>&1 && openssl dgst -sha256 -r \"$tmp\") || sha256sum \"$tmp\") || exit 95\n"
    "  [ \"${got%% *}\" = \"$want\" ] || { echo \"labgate: the content changed on its way to root; nothing was written\" >&2; exit 101; }\n"
    "fi\n"
    "if [ -e \"$dest\" ]; then chown --reference=\"$dest\" \"$tmp\" && chmod --reference=\"$dest\" \"$tmp\" || exit 99; else chmod 644 \"$tmp\" || exit 99; fi\n"
    "if [ -n \"$mode\" ]; then chmod \"$mode\" \"$tmp\" || exit 99; fi\n"
    "sync \"$tmp\" 2>/dev/null || sync\n"
    "if [ \"$create_only\" = 1 ]; then\n"
    "  ln \"$tmp\" \"$dest\" 2>/dev/null || { echo \"labgate: $dest appeared while it was being written; nothing was replaced\" >&2; exit 94; }\n"
    "  rm -f \"$tmp\"\n"
    "else\n"
    "  mv -f \"$tmp\" \"$dest\" || exit 100\n"
    "fi\n"
    "trap - EXIT\n"
    "printf '%s\\n' \"$prev\"\n"
    "stat -c %a \"$dest\"\n";
}  // namespace

std::vector<std::string> RootPutArgv(const std::string& path, const WriteOptions& options, const std::string& marker,
                                     const std::string& content_sha256) {
  char mode[8] = "";
  if (options.mode) std::snprintf(mode, sizeof mode, "%04o", *options.mode & 07777);
  const bool must_be_new = options.create_only || !options.overwrite ||
                           (options.expected_sha256 && options.expected_sha256->empty());
  return {"/bin/sh", "-c", kRootPutScript, "sh", path, mode, options.expected_sha256.value_or(""),
          options.expected_sha256 ? "1" : "0", must_be_new ? "1" : "0", marker, content_sha256};
}

core::Result<WriteOutcome> RootPutResult(const core::ProcessOutcome& outcome, const std::string& path,
                                         const std::string& target, const std::string& content_sha256,
                                         std::uint64_t size) {
  if (outcome.timed_out) return MakeError(ErrorCode::kTimeout, "writing " + path + " as root: the deadline passed");
  if (outcome.cancelled) return MakeError(ErrorCode::kCancelled, "writing " + path + " as root was cancelled");
  if (outcome.exit_code != 0) {
    std::string why = core::Clip(outcome.err.text, 400);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    const bool refused = outcome.exit_code == 92 || outcome.exit_code == 94 || outcome.exit_code == 96 ||
                         outcome.exit_code == 102;
    if (why.empty()) why = "sudo or the write failed (exit " + std::to_string(outcome.exit_code.value_or(-1)) + ")";
    return MakeError(refused ? ErrorCode::kRefused : ErrorCode::kIo, "writing " + path + " as root on " + target + ": " + why);
  }
  WriteOutcome written;
  const std::string& out = outcome.out.text;
  const std::size_t nl = out.find('\n');
  const std::string prev = out.substr(0, nl);
  written.created = prev.empty();
  if (!prev.empty()) written.previous_sha256 = prev;
  written.sha256 = content_sha256;
  written.size = size;
  written.mode = nl == std::string::npos ? 0 : static_cast<std::uint32_t>(std::strtoul(out.c_str() + nl + 1, nullptr, 8));
  return written;
}

}  // namespace labgate::capabilities
