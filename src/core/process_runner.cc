#include "core/process_runner.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>

#include "core/capped_output.h"
#include "core/hashing.h"

extern char** environ;

namespace labgate::core {
// Named, not anonymous: RunningProcess::State (a class with linkage) holds these.
namespace runner_parts {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
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

}  // namespace runner_parts

using runner_parts::Fd;
using runner_parts::StreamState;

namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long to keep reading after the first process ended, for output still in flight from
// processes it left behind (a daemon it started keeps running; we just stop listening).
constexpr milliseconds kDrainAfterExit{250};

int RemainingMs(Steady::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Steady::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

struct Pipe {
  Fd read_end;
  Fd write_end;
  bool Open() {
    std::array<int, 2> fds{};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) return false;
    read_end = Fd(fds[0]);
    write_end = Fd(fds[1]);
    return true;
  }
};

// The child's environment: the calling process's with `added` set (a later entry for a key
// wins). The entries it keeps are environ's own strings, not copies: copying every one per
// command was the largest allocation cost of a spawn (a node agent starts thousands).
struct ChildEnvironment {
  std::vector<std::string> added;  // "KEY=VALUE" per key set
  std::vector<char*> envp;         // ends in nullptr
};

ChildEnvironment EnvironmentWith(const std::vector<std::pair<std::string, std::string>>& added) {
  std::map<std::string, std::string, std::less<>> overrides;
  for (const auto& [key, value] : added) overrides[key] = value;
  std::size_t count = 0;
  while (environ != nullptr && environ[count] != nullptr) ++count;
  ChildEnvironment env;
  env.envp.reserve(count + overrides.size() + 1);
  for (std::size_t i = 0; i < count; ++i) {
    std::string_view text(environ[i]);
    auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    if (!overrides.empty() && overrides.find(text.substr(0, eq)) != overrides.end()) continue;
    env.envp.push_back(environ[i]);
  }
  env.added.reserve(overrides.size());
  for (const auto& [key, value] : overrides) env.added.push_back(key + "=" + value);
  for (auto& entry : env.added) env.envp.push_back(entry.data());
  env.envp.push_back(nullptr);
  return env;
}

// What the child of SpawnChild does between clone and exec, prepared by the parent. The child
// writes `error` and `failed_step` (shared memory) when a step fails.
struct ChildPlan {
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  pid_t parent = 0;
  int error = 0;
  const char* failed_step = nullptr;
};

#define LABGATE_CHILD_CODE __attribute__((no_sanitize_address, no_sanitize_thread, no_sanitize_undefined))

// Records the failed step for the parent and ends the child.
LABGATE_CHILD_CODE void ChildFail(ChildPlan* plan, const char* step) {
  plan->error = errno;
  plan->failed_step = step;
  ::syscall(SYS_exit_group, 127);
}

// Runs in the child on its own small stack while sharing the parent's memory (CLONE_VM), so it
// makes raw system calls only: no allocation, no locks, and nothing a sanitizer intercepts
// (TSan's sigaction, for one, would rewrite the parent's own handler table).
LABGATE_CHILD_CODE int ChildMain(void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);
  // If labgate dies (kill -9, OOM), so does the command it started, rather than running on past
  // its deadline with nobody to record how it ended. The thread that spawns waits for the child,
  // so it outlives it; a parent already gone before this line means: do not start.
  ::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (::syscall(SYS_getppid) != plan->parent) ::syscall(SYS_exit_group, 125);
  // Default handling for every signal (labgate ignores SIGPIPE, and its handlers must not run
  // here). The kernel's sigaction with everything but the handler zero has the same layout on
  // every architecture.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    unsigned long action[4] = {0, 0, 0, 0};  // handler (0 = SIG_DFL), flags, restorer, mask
    ::syscall(SYS_rt_sigaction, sig, action, nullptr, sizeof(unsigned long));
  }
  if (::syscall(SYS_setpgid, 0, 0) != 0) ChildFail(plan, "setpgid");
  if (::syscall(SYS_dup3, plan->stdin_fd, 0, 0) < 0) ChildFail(plan, "dup3");
  if (::syscall(SYS_dup3, plan->stdout_fd, 1, 0) < 0) ChildFail(plan, "dup3");
  if (::syscall(SYS_dup3, plan->stderr_fd, 2, 0) < 0) ChildFail(plan, "dup3");
  if (plan->cwd != nullptr && ::syscall(SYS_chdir, plan->cwd) != 0) ChildFail(plan, "chdir");
  // Nothing labgate holds open reaches the command (the pipes and /dev/null were opened
  // close-on-exec; dup3 clears the flag on 0, 1 and 2).
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  unsigned long empty_mask = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, nullptr, sizeof(unsigned long));
  ::syscall(SYS_execve, plan->program, plan->argv, plan->envp);
  ChildFail(plan, "exec");
  return 127;
}

using CloneFn = int (*)(int (*)(void*), void*, int, void*, ...);

// glibc's clone itself: a sanitizer's clone interceptor (TSan has one) treats every child like
// a fork child and would rewrite state it shares with a CLONE_VM child, the parent's own.
CloneFn RealClone() {
  static const CloneFn real = [] {
    void* libc = ::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    auto* found = libc != nullptr ? reinterpret_cast<CloneFn>(::dlsym(libc, "clone")) : nullptr;
    return found != nullptr ? found : &::clone;
  }();
  return real;
}

// Starts the child the way glibc's posix_spawn does (CLONE_VM | CLONE_VFORK: no copy of the
// parent's memory, so the cost does not grow with labgate's size), but with the steps
// posix_spawn cannot take (the parent-death signal). Returns when the child has exec'd or
// failed; -1 with errno when it could not be created. `pidfd` gets a pidfd for the child from
// the same clone, or -1 where the kernel cannot give one (before 5.3: the exit is polled for).
pid_t SpawnChild(ChildPlan& plan, int& pidfd) {
  constexpr std::size_t kStackBytes = 64 * 1024;
  // One stack per spawning thread, kept for its next spawn: the thread sleeps until the child
  // has exec'd or exited (CLONE_VFORK), so the stack is free again when clone returns, and a
  // fresh mapping per command cost its page faults and an munmap each time.
  struct ChildStack {
    void* base = nullptr;
    ~ChildStack() {
      if (base != nullptr) ::munmap(base, kStackBytes);
    }
  };
  thread_local ChildStack cached;
  if (cached.base == nullptr) {
    void* mapped = ::mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mapped == MAP_FAILED) return -1;
    cached.base = mapped;
  }
  void* stack = cached.base;
  // No handler of ours may run in the child before it has reset them.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  char* stack_top = static_cast<char*>(stack) + kStackBytes;
  pidfd = -1;
  pid_t pid = RealClone()(ChildMain, stack_top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &plan, &pidfd);
  if (pid < 0) {  // a kernel (or a seccomp filter) that refuses CLONE_PIDFD; a real failure fails again
    pid = RealClone()(ChildMain, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
    if (pid > 0) pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  }
  const int saved = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return pid;
}

// One /dev/null for every command that gets no input, opened once and kept (close-on-exec, and
// above the standard descriptors so the child's dup3 onto 0 always moves it); -1 if it cannot
// be opened, and then each command tries for itself.
int SharedDevNull() {
  static const int fd = [] {
    const int opened = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (opened < 0 || opened > 2) return opened;
    const int moved = ::fcntl(opened, F_DUPFD_CLOEXEC, 3);
    ::close(opened);
    return moved;
  }();
  return fd;
}

}  // namespace

Result<std::string> ResolveProgram(const std::string& name) {
  if (name.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty command: argv[0] is an empty string");
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t begin = 0;
  while (begin <= dirs.size()) {
    std::size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(begin, end - begin);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    begin = end + 1;
  }
  return MakeError(ErrorCode::kNotFound, "command not found: " + name + " (searched PATH=" + (path ? path : "") +
                                             "); install it or give its full path");
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

Result<std::unique_ptr<RunningProcess>> ProcessRunner::Start(const ProcessSpec& spec) {
  return MakeError(ErrorCode::kUnavailable, "this runner cannot start " + (spec.argv.empty() ? std::string("a command") : spec.argv[0]) +
                                                " without waiting for it");
}

// Everything a started process holds until it is reaped and its descriptors closed.
struct RunningProcess::State {
  State(std::size_t cap, milliseconds grace) : out(cap), err(cap), kill_grace(grace) {}
  pid_t pid = -1;  // leads its own group, so also the group id
  Fd pidfd;
  Fd out_pipe;
  Fd err_pipe;
  bool out_open = true;
  bool err_open = true;
  StreamState out;
  StreamState err;
  milliseconds kill_grace;
  std::function<void()> on_stop;
  Steady::time_point started;
  Steady::time_point deadline;
  ProcessOutcome outcome;
  bool exited = false;
  bool exit_seen = false;             // the pidfd said so: time to ask waitid
  bool stopping = false;              // TERM sent, waiting for the group to go
  Steady::time_point stop_until{};    // end of the grace period or the drain window
  bool killed = false;
  bool reaped = false;
};

RunningProcess::RunningProcess(std::unique_ptr<State> state) : state_(std::move(state)) {}

RunningProcess::~RunningProcess() {
  if (state_->reaped) return;
  // Abandoned before its end (the caller went away): nothing of it may outlive us.
  ::killpg(state_->pid, SIGKILL);
  int status = 0;
  while (::waitpid(state_->pid, &status, 0) < 0 && errno == EINTR) {
  }
}

int RunningProcess::pid() const { return state_->pid; }

FdList RunningProcess::Watched() const {
  FdList fds;
  if (state_->out_open) fds.push_back(state_->out_pipe.get());
  if (state_->err_open) fds.push_back(state_->err_pipe.get());
  if (!state_->exited && state_->pidfd.get() >= 0) fds.push_back(state_->pidfd.get());
  return fds;
}

void RunningProcess::OnReadable(int fd, OutputListener* listener) {
  State& st = *state_;
  if (fd == st.pidfd.get()) {
    st.exit_seen = true;
    return;
  }
  const bool is_out = fd == st.out_pipe.get();
  if (!(is_out ? st.out_open : (fd == st.err_pipe.get() && st.err_open))) return;
  char buf[65536];
  const ssize_t got = ::read(fd, buf, sizeof buf);
  if (got > 0) {
    std::string_view bytes(buf, static_cast<std::size_t>(got));
    StreamState& stream = is_out ? st.out : st.err;
    stream.captured.Append(bytes);
    stream.digest.Update(bytes);
    if (listener) listener->OnOutput(is_out ? StreamId::kStdout : StreamId::kStderr, bytes);
  } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
    (is_out ? st.out_open : st.err_open) = false;  // closed with the object
  }
}

void RunningProcess::StopGroup(bool timed_out) {
  State& st = *state_;
  if (st.stopping) return;
  st.stopping = true;
  st.outcome.timed_out = timed_out;
  st.outcome.cancelled = !timed_out;
  if (st.on_stop) st.on_stop();
  ::killpg(st.pid, SIGTERM);
  st.stop_until = Steady::now() + st.kill_grace;
}

bool RunningProcess::Advance() {
  State& st = *state_;
  if (!st.exited && (st.exit_seen || st.pidfd.get() < 0)) {
    siginfo_t info{};
    info.si_pid = 0;
    // WNOWAIT: keep the leader a zombie so the group id stays ours until we are done.
    if (::waitid(P_PID, static_cast<id_t>(st.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == st.pid) {
      st.exited = true;
      if (!st.stopping || st.killed) st.stop_until = Steady::now() + kDrainAfterExit;
    }
  }
  const auto now = Steady::now();
  if (!st.stopping && !st.exited && now >= st.deadline) StopGroup(true);
  if (!st.stopping && !st.exited && cancel_requested_) StopGroup(false);
  if (st.stopping && !st.killed && (st.exited || now >= st.stop_until)) {
    // The group leader is unreaped, so its pid (the group id) cannot have been reused yet.
    ::killpg(st.pid, SIGKILL);
    st.killed = true;
    st.stop_until = Steady::now() + kDrainAfterExit;
  }
  if (!st.exited) return false;
  return (!st.out_open && !st.err_open) || Steady::now() >= st.stop_until;
}

RunningProcess::Clock::time_point RunningProcess::WakeAt() const {
  const State& st = *state_;
  auto at = st.exited || st.stopping ? st.stop_until : st.deadline;
  if (!st.exited && st.pidfd.get() < 0) at = std::min(at, Steady::now() + milliseconds(50));  // no pidfd: look for the exit
  return at;
}

ProcessOutcome RunningProcess::Finish() {
  State& st = *state_;
  int status = 0;
  while (::waitpid(st.pid, &status, 0) < 0 && errno == EINTR) {
  }
  st.reaped = true;
  if (WIFEXITED(status)) st.outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) st.outcome.signal = WTERMSIG(status);
  st.outcome.out = st.out.Finish();
  st.outcome.err = st.err.Finish();
  st.outcome.duration = std::chrono::duration_cast<milliseconds>(Steady::now() - st.started);
  return std::move(st.outcome);
}

ProcessOutcome RunningProcess::Wait(const CancelToken& cancel, OutputListener* listener) {
  for (;;) {
    if (cancel.cancelled()) Cancel();
    if (Advance()) break;
    std::array<pollfd, 4> polls{};
    nfds_t n = 0;
    for (int fd : Watched()) polls[n++] = pollfd{fd, POLLIN, 0};
    const bool watch_cancel = !state_->stopping && !state_->exited;
    if (watch_cancel) polls[n++] = pollfd{cancel.fd(), POLLIN, 0};
    const int ready = ::poll(polls.data(), n, RemainingMs(WakeAt()));
    if (ready < 0 && errno != EINTR) break;
    for (nfds_t k = 0; ready > 0 && k < n; ++k) {
      if (polls[k].revents != 0 && !(watch_cancel && k == n - 1)) OnReadable(polls[k].fd, listener);
    }
  }
  return Finish();
}

Result<ProcessOutcome> SystemProcessRunner::Run(const ProcessSpec& spec, const CancelToken& cancel,
                                                OutputListener* listener) {
  auto started = Start(spec);
  if (!started) return started.error();
  return (*started)->Wait(cancel, listener);
}

Result<std::unique_ptr<RunningProcess>> SystemProcessRunner::Start(const ProcessSpec& spec) {
  if (spec.argv.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty command: argv has no words");
  auto program = ResolveProgram(spec.argv[0]);
  if (!program) return program.error();

  if (spec.stdin_data.size() > kMaxStdinBytes) {
    return MakeError(ErrorCode::kInvalidArgument, "stdin for " + spec.argv[0] + " is over " +
                                                      std::to_string(kMaxStdinBytes) + " bytes");
  }
  Pipe out_pipe;
  Pipe err_pipe;
  Pipe in_pipe;
  Fd stdin_source;  // what the child reads, when it is this command's own
  int stdin_fd = -1;
  if (spec.stdin_fd >= 0) {
    stdin_source = Fd(::fcntl(spec.stdin_fd, F_DUPFD_CLOEXEC, 3));
  } else if (spec.stdin_data.empty()) {
    stdin_fd = SharedDevNull();
    if (stdin_fd < 0) stdin_source = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  } else if (in_pipe.Open()) {
    // The whole input fits the pipe's buffer: written now, closed, and read by the child later.
    // Never blocking: a pipe can be smaller than usual (pipe-user-pages-soft), and then this
    // fails instead of waiting for a reader that does not exist yet.
    (void)::fcntl(in_pipe.write_end.get(), F_SETFL, O_NONBLOCK);
    std::size_t at = 0;
    while (at < spec.stdin_data.size()) {
      const ssize_t n = ::write(in_pipe.write_end.get(), spec.stdin_data.data() + at, spec.stdin_data.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      at += static_cast<std::size_t>(n);
    }
    in_pipe.write_end.Reset();
    if (at == spec.stdin_data.size()) stdin_source = std::move(in_pipe.read_end);
    else errno = EPIPE;
  }
  if (stdin_fd < 0) stdin_fd = stdin_source.get();
  if (!out_pipe.Open() || !err_pipe.Open() || stdin_fd < 0) {
    return MakeError(ErrorCode::kUnavailable, "could not start " + spec.argv[0] + ": " + std::strerror(errno));
  }

  if (!spec.cwd.empty()) {
    struct stat st {};
    if (::stat(spec.cwd.c_str(), &st) != 0) {
      return MakeError(ErrorCode::kNotFound, "working directory " + spec.cwd + ": " + std::strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
      return MakeError(ErrorCode::kNotFound, "working directory " + spec.cwd + " is not a directory");
    }
  }

  // Everything the child needs is built here, before it exists: after the clone it may only
  // make system calls.
  std::vector<std::string> words(spec.argv.begin(), spec.argv.end());
  std::vector<char*> argv;
  for (auto& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  ChildEnvironment env = EnvironmentWith(spec.env);

  ChildPlan plan;
  plan.program = program->c_str();
  plan.argv = argv.data();
  plan.envp = env.envp.data();
  plan.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  plan.stdin_fd = stdin_fd;
  plan.stdout_fd = out_pipe.write_end.get();
  plan.stderr_fd = err_pipe.write_end.get();
  plan.parent = ::getpid();

  const auto started = Steady::now();
  int pidfd = -1;
  const pid_t pid = SpawnChild(plan, pidfd);
  const int spawn_errno = errno;
  Fd pidfd_owner(pidfd);
  // Our copies of the write ends must go, or we would never see end-of-file.
  out_pipe.write_end.Reset();
  err_pipe.write_end.Reset();
  stdin_source.Reset();
  if (pid < 0 || plan.failed_step != nullptr) {
    if (pid > 0) {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    const int err = pid < 0 ? spawn_errno : plan.error;
    const char* step = pid < 0 ? "clone" : plan.failed_step;
    return MakeError(ErrorCode::kUnavailable, "could not start " + spec.argv[0] +
                                                  (spec.cwd.empty() ? "" : " in " + spec.cwd) + ": " + step +
                                                  " failed: " + std::strerror(err));
  }

  auto state = std::make_unique<RunningProcess::State>(spec.output_cap, kill_grace_);
  RunningProcess::State& st = *state;
  st.pid = pid;
  st.pidfd = std::move(pidfd_owner);
  st.out_pipe = std::move(out_pipe.read_end);
  st.err_pipe = std::move(err_pipe.read_end);
  // Never a blocking read on a caller's loop, even after a readiness report gone stale (the
  // child's ends keep their own flags: these are separate descriptions).
  (void)::fcntl(st.out_pipe.get(), F_SETFL, O_NONBLOCK);
  (void)::fcntl(st.err_pipe.get(), F_SETFL, O_NONBLOCK);
  st.on_stop = spec.on_stop;
  st.started = started;
  st.deadline = started + spec.timeout;
  return std::unique_ptr<RunningProcess>(new RunningProcess(std::move(state)));
}

}  // namespace labgate::core
