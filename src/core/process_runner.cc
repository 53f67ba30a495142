#include "core/process_runner.h"

#include <sys/prctl.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <cerrno>
#include <cstring>

#include "core/capped_output.h"
#include "core/hashing.h"

namespace labgate::core {
namespace bp = boost::process;
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long to keep reading after the first process ended, for output still in flight from
// processes it left behind (a daemon it started keeps running; we just stop listening).
constexpr milliseconds kDrainAfterExit{250};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

struct StreamState {
  explicit StreamState(std::size_t cap) : captured(cap) {}
  CappedOutput captured;
  Sha256 digest;
  CapturedStream Finish() {
    return CapturedStream{captured.Text(), captured.total_bytes(), captured.truncated(), digest.HexDigest()};
  }
};

int RemainingMs(Steady::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Steady::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

}  // namespace

Result<std::string> ResolveProgram(const std::string& name) {
  if (name.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty command: argv[0] is an empty string");
  if (name.find('/') != std::string::npos) return name;
  auto found = bp::search_path(name);
  if (found.empty()) {
    const char* path = std::getenv("PATH");
    return MakeError(ErrorCode::kNotFound, "command not found: " + name + " (searched PATH=" +
                                               (path ? path : "") + "); install it or give its full path");
  }
  return found.string();
}


std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev ? abbrev : std::to_string(signal);
}

std::optional<int> SignalNumber(std::string_view name) {
  for (int sig = 1; sig < SIGRTMAX; ++sig) {
    if (SignalName(sig) == name) return sig;
  }
  return std::nullopt;
}

Result<ProcessOutcome> SystemProcessRunner::Run(const ProcessSpec& spec, const CancelToken& cancel,
                                                OutputListener* listener) {
  if (spec.argv.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty command: argv has no words");
  auto program = ResolveProgram(spec.argv[0]);
  if (!program) return program.error();

  std::array<int, 2> out_fds{};
  std::array<int, 2> err_fds{};
  if (::pipe2(out_fds.data(), O_CLOEXEC) != 0) {
    return MakeError(ErrorCode::kUnavailable, std::string("pipe2 failed: ") + std::strerror(errno));
  }
  bp::pipe out_pipe(out_fds[0], out_fds[1]);
  if (::pipe2(err_fds.data(), O_CLOEXEC) != 0) {
    return MakeError(ErrorCode::kUnavailable, std::string("pipe2 failed: ") + std::strerror(errno));
  }
  bp::pipe err_pipe(err_fds[0], err_fds[1]);

  if (!spec.cwd.empty()) {
    struct stat st {};
    if (::stat(spec.cwd.c_str(), &st) != 0) {
      return MakeError(ErrorCode::kNotFound, "working directory " + spec.cwd + ": " + std::strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
      return MakeError(ErrorCode::kNotFound, "working directory " + spec.cwd + " is not a directory");
    }
  }
  // In the child, before exec: default signal handling (labgate ignores SIGPIPE), the requested
  // working directory (Boost's start_dir ignores chdir failures, which would run the command in
  // the wrong place), and no inherited descriptors beyond stdio.
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const pid_t parent = ::getpid();
  auto child_setup = bp::extend::on_exec_setup = [cwd, parent](auto& exec) {
    // If labgate dies (kill -9, OOM), so does the command it started, rather than running on
    // past its deadline with nobody to record how it ended. The thread that forks waits for the
    // child, so it outlives it; a parent already gone before this line means: do not start.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(125);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (cwd != nullptr && ::chdir(cwd) != 0) {
      exec.set_error(std::error_code(errno, std::system_category()), "chdir failed");
      ::_exit(126);
    }
    // Marked close-on-exec rather than closed, so Boost's exec-error pipe keeps working.
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 4096; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  };

  const auto started = Steady::now();
  std::vector<std::string> args(spec.argv.begin() + 1, spec.argv.end());
  bp::group group;
  bp::child child;
  std::error_code ec;
  // Boost forgets a child whose exec setup failed; remember it so it can be reaped.
  pid_t failed_pid = -1;
  auto remember_failure = bp::extend::on_error = [&failed_pid](auto& exec, const std::error_code&) {
    failed_pid = exec.pid;
  };
  {
    std::lock_guard<std::mutex> lock(spawn_mutex_);
    bp::environment env = boost::this_process::environment();
    for (const auto& [key, value] : spec.env) env[key] = value;
    child = bp::child(bp::exe = *program, bp::args = args, bp::std_in < bp::null, bp::std_out > out_pipe,
                      bp::std_err > err_pipe, group, env, child_setup, remember_failure, ec);
  }
  // Our copies of the write ends must go, or we would never see end-of-file.
  ::close(out_pipe.native_sink());
  out_pipe.assign_sink(-1);
  ::close(err_pipe.native_sink());
  err_pipe.assign_sink(-1);
  if (ec) {
    if (failed_pid > 0) {
      int status = 0;
      while (::waitpid(failed_pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    return MakeError(ErrorCode::kUnavailable, "could not start " + spec.argv[0] +
                                                  (spec.cwd.empty() ? "" : " in " + spec.cwd) + ": " + ec.message());
  }

  const pid_t pid = child.id();
  const pid_t pgid = pid;  // the first process leads the group
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  StreamState out(spec.output_cap);
  StreamState err(spec.output_cap);
  std::array<int, 2> fds = {out_pipe.native_source(), err_pipe.native_source()};
  ProcessOutcome outcome;

  auto deadline = started + spec.timeout;
  bool exited = false;
  bool stopping = false;                    // TERM sent, waiting for the group to go
  Steady::time_point stop_until{};          // end of the grace period or the drain window
  bool killed = false;

  auto stop_group = [&](bool timed_out) {
    if (stopping) return;
    stopping = true;
    outcome.timed_out = timed_out;
    outcome.cancelled = !timed_out;
    ::killpg(pgid, SIGTERM);
    stop_until = Steady::now() + kill_grace_;
  };

  char buf[65536];
  while (fds[0] >= 0 || fds[1] >= 0 || !exited) {
    auto now = Steady::now();
    if (!stopping && !exited && now >= deadline) stop_group(true);
    if (!stopping && !exited && cancel.cancelled()) stop_group(false);
    if (stopping && !killed && (exited || now >= stop_until)) {
      // The group leader is unreaped, so its pid (the group id) cannot have been reused yet.
      ::killpg(pgid, SIGKILL);
      killed = true;
      stop_until = Steady::now() + kDrainAfterExit;
    }
    if (exited && Steady::now() >= stop_until) break;

    std::array<pollfd, 4> polls{};
    nfds_t n = 0;
    std::array<int, 4> which{};
    for (int s = 0; s < 2; ++s) {
      if (fds[s] >= 0) {
        polls[n] = pollfd{fds[s], POLLIN, 0};
        which[n++] = s;
      }
    }
    if (!exited && pidfd.get() >= 0) {
      polls[n] = pollfd{pidfd.get(), POLLIN, 0};
      which[n++] = 2;
    }
    if (!stopping && !exited) {
      polls[n] = pollfd{cancel.fd(), POLLIN, 0};
      which[n++] = 3;
    }
    int wait_ms = 0;
    if (exited || stopping) {
      wait_ms = RemainingMs(stop_until);
    } else {
      wait_ms = RemainingMs(deadline);
    }
    if (pidfd.get() < 0 && !exited) wait_ms = std::min(wait_ms, 50);  // no pidfd: poll for exit
    int ready = ::poll(polls.data(), n, wait_ms);
    if (ready < 0 && errno != EINTR) break;
    for (nfds_t k = 0; ready > 0 && k < n; ++k) {
      if (polls[k].revents == 0) continue;
      int s = which[k];
      if (s < 2) {
        ssize_t got = ::read(fds[s], buf, sizeof buf);
        if (got > 0) {
          std::string_view bytes(buf, static_cast<std::size_t>(got));
          StreamState& st = s == 0 ? out : err;
          st.captured.Append(bytes);
          st.digest.Update(bytes);
          if (listener) listener->OnOutput(s == 0 ? StreamId::kStdout : StreamId::kStderr, bytes);
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          fds[s] = -1;  // the bp::pipe closes it
        }
      }
    }
    if (!exited) {
      siginfo_t info{};
      info.si_pid = 0;
      // WNOWAIT: keep the leader a zombie so the group id stays ours until we are done.
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) {
        exited = true;
        if (!stopping || killed) stop_until = Steady::now() + kDrainAfterExit;
      }
    }
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  child.detach();  // reaped by hand above; Boost must not wait or kill again
  group.detach();  // Boost would SIGKILL the group on destruction, taking daemons the command started
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
  outcome.out = out.Finish();
  outcome.err = err.Finish();
  outcome.duration = std::chrono::duration_cast<milliseconds>(Steady::now() - started);
  return outcome;
}

}  // namespace labgate::core
