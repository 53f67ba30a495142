// The real process runner against real processes.
#include "core/process_runner.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <thread>

#include "core/hashing.h"
#include "subprocess.h"

namespace labgate::core {
namespace {

using labgate::testing::ProcessWithMarkerExists;
using labgate::testing::UniqueSleep;
using labgate::testing::WaitUntilGone;
using std::chrono::milliseconds;


ProcessSpec Spec(std::vector<std::string> argv, milliseconds timeout = milliseconds(20000)) {
  ProcessSpec s;
  s.argv = std::move(argv);
  s.timeout = timeout;
  return s;
}

class RecordingListener : public OutputListener {
 public:
  void OnOutput(StreamId stream, std::string_view bytes) override {
    (stream == StreamId::kStdout ? out : err).append(bytes);
  }
  std::string out, err;
};

class ProcessRunnerTest : public ::testing::Test {
 protected:
  Result<ProcessOutcome> Run(const ProcessSpec& spec) { return runner_.Run(spec, cancel_, nullptr); }
  SystemProcessRunner runner_{milliseconds(500)};
  CancelToken cancel_;
};

TEST_F(ProcessRunnerTest, CapturesStdoutStderrAndExitCode) {
  auto r = Run(Spec({"sh", "-c", "echo out; echo err >&2; exit 4"}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 4);
  EXPECT_FALSE(r->signal.has_value());
  EXPECT_EQ(r->out.text, "out\n");
  EXPECT_EQ(r->err.text, "err\n");
  EXPECT_EQ(r->out.sha256, Sha256Hex("out\n"));
  EXPECT_FALSE(r->timed_out);
}

TEST_F(ProcessRunnerTest, ReportsTheSignalThatEndedIt) {
  auto r = Run(Spec({"sh", "-c", "kill -KILL $$"}));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->exit_code.has_value());
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_EQ(SignalName(SIGKILL), "KILL");
  EXPECT_EQ(SignalNumber("KILL"), SIGKILL);
  EXPECT_FALSE(SignalNumber("NOPE").has_value());
}

TEST_F(ProcessRunnerTest, TimeoutStopsTheWholeGroup) {
  const std::string secs = UniqueSleep(40);
  auto r = Run(Spec({"sh", "-c", "sleep " + secs + " & sleep " + secs + " & wait"}, milliseconds(300)));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_TRUE(WaitUntilGone(secs, std::chrono::seconds(5)));
}

TEST_F(ProcessRunnerTest, TermIgnoringProcessIsKilledAfterGrace) {
  const std::string secs = UniqueSleep(40);
  auto r = Run(Spec({"sh", "-c", "trap '' TERM; sleep " + secs}, milliseconds(200)));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_TRUE(WaitUntilGone(secs, std::chrono::seconds(5)));
}

TEST_F(ProcessRunnerTest, CancelStopsTheGroup) {
  const std::string secs = UniqueSleep(40);
  std::thread canceller([&] {
    labgate::testing::WaitUntilPresent(secs);
    cancel_.Cancel();
  });
  auto r = Run(Spec({"sleep", secs}));
  canceller.join();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->timed_out);
  EXPECT_TRUE(WaitUntilGone(secs, std::chrono::seconds(5)));
}

// What a node's link does: one thread steps several processes with its own poll, beside other
// descriptors, and nothing waits in a thread per process. Each must end as Run would end it.
TEST_F(ProcessRunnerTest, ProcessesSteppedByOneForeignLoop_EndByDeadlineCancelOrExit_EachWholeGroup) {
  ASSERT_TRUE(runner_.CanStart());
  const std::string timed = UniqueSleep(40);
  const std::string cancelled = UniqueSleep(40);
  auto slow = runner_.Start(Spec({"sh", "-c", "sleep " + timed + " & sleep " + timed + " & wait"}, milliseconds(300)));
  auto stubborn = runner_.Start(Spec({"sh", "-c", "trap '' TERM; sleep " + cancelled + " & sleep " + cancelled}));
  auto chatty = runner_.Start(Spec({"sh", "-c", "head -c 300000 /dev/zero; echo done >&2"}));
  ASSERT_TRUE(slow.ok() && stubborn.ok() && chatty.ok());
  // A sleep itself (its argv, NUL-separated), not the shell whose script names it: once one
  // runs, the shell has set its trap.
  ASSERT_TRUE(labgate::testing::WaitUntilPresent(std::string("sleep") + '\0' + cancelled));
  (*stubborn)->Cancel();
  std::vector<RunningProcess*> running = {slow->get(), stubborn->get(), chatty->get()};
  std::map<RunningProcess*, ProcessOutcome> ended;
  RecordingListener seen;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ended.size() < running.size() && std::chrono::steady_clock::now() < give_up) {
    std::vector<pollfd> polls;
    std::vector<RunningProcess*> owner;
    auto wake = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (auto* p : running) {
      if (ended.count(p) != 0) continue;
      if (p->Advance()) {
        ended[p] = p->Finish();
        continue;
      }
      wake = std::min(wake, p->WakeAt());
      for (int fd : p->Watched()) {
        polls.push_back(pollfd{fd, POLLIN, 0});
        owner.push_back(p);
      }
    }
    const auto ms = std::chrono::duration_cast<milliseconds>(wake - std::chrono::steady_clock::now()).count();
    ::poll(polls.data(), polls.size(), static_cast<int>(std::max<long long>(ms, 0)));
    for (std::size_t i = 0; i < polls.size(); ++i) {
      if (polls[i].revents != 0) owner[i]->OnReadable(polls[i].fd, owner[i] == chatty->get() ? &seen : nullptr);
    }
  }
  ASSERT_EQ(ended.size(), 3u);
  EXPECT_TRUE(ended[slow->get()].timed_out);
  EXPECT_TRUE(ended[stubborn->get()].cancelled);
  EXPECT_FALSE(ended[stubborn->get()].timed_out);
  EXPECT_EQ(ended[stubborn->get()].signal, SIGKILL);  // ignored TERM: KILL after the grace
  EXPECT_EQ(ended[chatty->get()].exit_code, 0);
  EXPECT_EQ(ended[chatty->get()].out.total_bytes, 300000u);
  EXPECT_EQ(seen.out.size(), 300000u);
  EXPECT_EQ(ended[chatty->get()].err.text, "done\n");
  EXPECT_TRUE(WaitUntilGone(timed, std::chrono::seconds(5)));
  EXPECT_TRUE(WaitUntilGone(cancelled, std::chrono::seconds(5)));
}

TEST_F(ProcessRunnerTest, AStartedProcessLetGoBeforeItsEnd_TakesItsWholeGroupWithIt) {
  // Whoever stepped it went away (a node's link ended mid-command): nothing it started in its
  // group may run on, and the leader is reaped, not left a zombie.
  const std::string secs = UniqueSleep(40);
  pid_t leader = 0;
  {
    auto started = runner_.Start(Spec({"sh", "-c", "sleep " + secs + " & sleep " + secs + " & wait"}));
    ASSERT_TRUE(started.ok()) << started.error().message;
    ASSERT_TRUE(labgate::testing::WaitUntilPresent(secs));
    leader = (*started)->pid();
  }
  EXPECT_TRUE(WaitUntilGone(secs, std::chrono::seconds(5)));
  EXPECT_EQ(::kill(leader, 0), -1);  // reaped: not even a zombie answers
  EXPECT_EQ(errno, ESRCH);
}

int OpenDescriptors() {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) n += entry.is_symlink() ? 1 : 0;
  return n;
}

TEST_F(ProcessRunnerTest, AStartedProcessIsWatchedThroughItsOwnPidfd_AndGivesEveryDescriptorBack) {
  // Its exit is seen as an event, not by polling: one of the watched descriptors is a pidfd for
  // this very process (the kernel's fdinfo names its pid).
  auto started = runner_.Start(Spec({"sleep", "5"}));
  ASSERT_TRUE(started.ok()) << started.error().message;
  const FdList watched = (*started)->Watched();
  ASSERT_EQ(watched.size(), 3u);
  int pidfds = 0;
  for (int fd : watched) {
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(fd));
    const std::string text((std::istreambuf_iterator<char>(info)), std::istreambuf_iterator<char>());
    if (text.find("\nPid:\t" + std::to_string((*started)->pid()) + "\n") != std::string::npos) ++pidfds;
  }
  EXPECT_EQ(pidfds, 1);
  (*started)->Cancel();
  (void)(*started)->Wait(cancel_, nullptr);
  started->reset();

  // However a command gets its input and however it ends, what it cost in descriptors comes
  // back: a runner used by a node for months must not run out.
  const int before = OpenDescriptors();
  for (int i = 0; i < 40; ++i) {
    ProcessSpec spec = Spec({"sh", "-c", i % 4 == 3 ? "exec 1>&-; sleep 5" : "cat"}, milliseconds(i % 4 == 3 ? 100 : 20000));
    if (i % 4 == 1) spec.stdin_data = "input\n";
    int piped[2] = {-1, -1};
    if (i % 4 == 2) {
      ASSERT_EQ(::pipe2(piped, O_CLOEXEC), 0);
      ASSERT_EQ(::write(piped[1], "piped\n", 6), 6);
      ::close(piped[1]);
      spec.stdin_fd = piped[0];
    }
    auto r = Run(spec);
    if (piped[0] >= 0) ::close(piped[0]);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->timed_out, i % 4 == 3);
    EXPECT_EQ(r->out.text, i % 4 == 1 ? "input\n" : i % 4 == 2 ? "piped\n" : "");
  }
  EXPECT_FALSE(runner_.Start(Spec({"/no/such/program"})).ok());
  EXPECT_EQ(OpenDescriptors(), before);
}

// A kernel or container that refuses what the runner asks of clone: the kernel before 5.2 has
// no CLONE_PIDFD, one before 5.3 no pidfd_open, and a seccomp profile may refuse either. A
// seccomp filter plays both in a child process (a death test, so the filter stays there), and
// every command must still start, end, and be stopped at its deadline.
enum class Refused { kClonePidfd, kClonePidfdAndPidfdOpen };

void RefuseInThisProcess(Refused what) {
#if defined(__x86_64__)
  constexpr std::uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr std::uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
#error "no seccomp architecture for this target"
#endif
  const bool also_pidfd_open = what == Refused::kClonePidfdAndPidfdOpen;
  std::vector<sock_filter> filter = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),  // flags, low half
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_PIDFD, 0, 3),  // clone without it: allowed
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, also_pidfd_open ? (SECCOMP_RET_ERRNO | ENOSYS) : SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(filter.size()), filter.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
    std::fprintf(stderr, "could not install the filter: %s\n", std::strerror(errno));
    std::_Exit(2);
  }
}

// Runs in the death test's child: 0 when every check holds, else what failed on stderr.
int RunCommandsWithout(Refused what) {
  RefuseInThisProcess(what);
  int failures = 0;
  auto check = [&](bool ok, const std::string& what_failed) {
    if (!ok) {
      std::fprintf(stderr, "FAILED: %s\n", what_failed.c_str());
      ++failures;
    }
  };
  // The filter itself: clone with CLONE_PIDFD is refused here (a child, if it was not, leaves
  // at once), and so is pidfd_open when asked.
  int unused = -1;
  const long cloned = ::syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &unused, 0, 0);
  if (cloned == 0) std::_Exit(0);
  if (cloned > 0) ::waitpid(static_cast<pid_t>(cloned), nullptr, 0);
  check(cloned < 0 && errno == EINVAL, "the filter let clone with CLONE_PIDFD through");
  const long opened = ::syscall(SYS_pidfd_open, ::getpid(), 0);
  if (opened >= 0) ::close(static_cast<int>(opened));
  check((opened < 0) == (what == Refused::kClonePidfdAndPidfdOpen), "the filter did not treat pidfd_open as asked");

  SystemProcessRunner runner(milliseconds(300));
  CancelToken cancel;
  ProcessSpec echo = Spec({"sh", "-c", "read -r line; echo \"[$line]\"; exit 7"});
  echo.stdin_data = "in\n";
  auto r = runner.Run(echo, cancel, nullptr);
  check(r.ok(), r.ok() ? "" : "a command did not start: " + r.error().message);
  if (r.ok()) check(r->exit_code == 7 && r->out.text == "[in]\n", "exit " + std::to_string(r->exit_code.value_or(-1)) + ", out " + r->out.text);

  // Watched through a pidfd from pidfd_open where only the clone flag is refused; with neither,
  // through a short poll for the exit: either way a quick command is seen to end quickly.
  auto started = runner.Start(Spec({"sleep", "0.2"}));
  check(started.ok(), "sleep did not start");
  if (started.ok()) {
    check((*started)->Watched().size() == (what == Refused::kClonePidfd ? 3u : 2u), "watched descriptors: " + std::to_string((*started)->Watched().size()));
    const auto begin = std::chrono::steady_clock::now();
    const ProcessOutcome outcome = (*started)->Wait(cancel, nullptr);
    const auto took = std::chrono::steady_clock::now() - begin;
    check(outcome.exit_code == 0, "sleep 0.2 did not exit 0");
    check(took < std::chrono::seconds(5), "sleep 0.2 took " + std::to_string(std::chrono::duration_cast<milliseconds>(took).count()) + " ms to be seen");
  }

  // The deadline still stops the whole group.
  const std::string secs = UniqueSleep(40);
  auto slow = runner.Run(Spec({"sh", "-c", "sleep " + secs + " & sleep " + secs + " & wait"}, milliseconds(300)), cancel, nullptr);
  check(slow.ok() && slow->timed_out, "the deadline did not stop the command");
  check(WaitUntilGone(secs, std::chrono::seconds(5)), "the command's group outlived its deadline");
  return failures == 0 ? 0 : 1;
}

TEST(ProcessRunnerWithoutPidfds, AKernelThatRefusesCLONE_PIDFD_StillRunsEveryCommand_WatchedThroughPidfdOpen) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(RunCommandsWithout(Refused::kClonePidfd)), ::testing::ExitedWithCode(0), "");
}

TEST(ProcessRunnerWithoutPidfds, AKernelWithNoPidfdsAtAll_StillRunsEveryCommand_AndSeesItsExitByPolling) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(RunCommandsWithout(Refused::kClonePidfdAndPidfdOpen)), ::testing::ExitedWithCode(0), "");
}

TEST_F(ProcessRunnerTest, ARunnerThatOnlyRunsToCompletion_SaysSoInsteadOfStarting) {
  struct OnlyRun final : ProcessRunner {
    Result<ProcessOutcome> Run(const ProcessSpec&, const CancelToken&, OutputListener*) override { return ProcessOutcome{}; }
  } only_run;
  EXPECT_FALSE(only_run.CanStart());
  auto started = only_run.Start(Spec({"true"}));
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ErrorCode::kUnavailable);
}

TEST_F(ProcessRunnerTest, StdinDataIsReadThenEndOfFile) {
  ProcessSpec spec = Spec({"sh", "-c", "read -r first; echo \"[$first]\"; cat; echo end"});
  spec.stdin_data = "pass word\nrest\n";
  auto r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->out.text, "[pass word]\nrest\nend\n");
  EXPECT_EQ(r->exit_code, 0);
  // Without stdin_data, stdin is /dev/null: end-of-file at once, never the runner's own stdin.
  auto none = Run(Spec({"sh", "-c", "cat; echo done"}));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->out.text, "done\n");
}

TEST_F(ProcessRunnerTest, StdinDataOverTheLimitIsRefusedBeforeAnythingStarts) {
  ProcessSpec spec = Spec({"sh", "-c", "cat >/dev/null"});
  spec.stdin_data.assign(kMaxStdinBytes + 1, 'x');
  auto r = Run(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(ProcessRunnerTest, OnStopRunsOnceBeforeTheGroupIsSignalled) {
  // The hook sees the command still alive (it runs before TERM), and only on a stop.
  const std::string secs = UniqueSleep(40);
  int calls = 0;
  bool alive_in_hook = false;
  ProcessSpec spec = Spec({"sleep", secs}, milliseconds(300));
  spec.on_stop = [&] {
    ++calls;
    alive_in_hook = ProcessWithMarkerExists(secs);
  };
  auto r = Run(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(alive_in_hook);
  EXPECT_TRUE(WaitUntilGone(secs, std::chrono::seconds(5)));
  ProcessSpec quick = Spec({"true"});
  quick.on_stop = [&] { ++calls; };
  ASSERT_TRUE(Run(quick).ok());
  EXPECT_EQ(calls, 1) << "a command that ends by itself is never stopped";
}

TEST_F(ProcessRunnerTest, BackgroundDaemonDoesNotHoldTheCallOpen) {
  // A command that starts something and exits returns at once; what it started keeps running.
  const std::string secs = UniqueSleep(40);
  auto r = Run(Spec({"sh", "-c", "sleep " + secs + " & echo started"}, milliseconds(20000)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out.text, "started\n");
  EXPECT_FALSE(r->timed_out);
  EXPECT_TRUE(ProcessWithMarkerExists(secs));
  Run(Spec({"pkill", "-f", "sleep " + secs})).ok();
}

TEST_F(ProcessRunnerTest, OutputIsCappedHeadAndTail) {
  ProcessSpec s = Spec({"sh", "-c", "seq 1 100000"});
  s.output_cap = 1000;
  auto r = Run(s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->out.truncated);
  EXPECT_GT(r->out.total_bytes, 500000u);
  EXPECT_EQ(r->out.text.rfind("1\n2\n3\n", 0), 0u);
  EXPECT_NE(r->out.text.find("output truncated"), std::string::npos);
  EXPECT_EQ(r->out.text.substr(r->out.text.size() - 7), "100000\n");
}

TEST_F(ProcessRunnerTest, ListenerSeesEveryByte) {
  RecordingListener listener;
  auto r = runner_.Run(Spec({"sh", "-c", "printf abc; printf def >&2"}), cancel_, &listener);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(listener.out, "abc");
  EXPECT_EQ(listener.err, "def");
}

TEST_F(ProcessRunnerTest, CwdAndEnvApply) {
  ProcessSpec s = Spec({"sh", "-c", "pwd; echo $LABGATE_TEST_VAR"});
  s.cwd = "/tmp";
  s.env = {{"LABGATE_TEST_VAR", "hello"}};
  auto r = Run(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.text, "/tmp\nhello\n");
}

TEST_F(ProcessRunnerTest, MissingCwdIsAClearError) {
  ProcessSpec s = Spec({"true"});
  s.cwd = "/nonexistent/dir";
  auto r = Run(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/dir"), std::string::npos) << r.error().message;
}

TEST_F(ProcessRunnerTest, UnknownProgramIsAClearError) {
  auto r = Run(Spec({"labgate-no-such-program"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("command not found: labgate-no-such-program"), std::string::npos);
}

TEST_F(ProcessRunnerTest, ChildrenGetDefaultSigpipe) {
  // labgate ignores SIGPIPE for itself; its children must not inherit that.
  ::signal(SIGPIPE, SIG_IGN);
  auto r = Run(Spec({"sh", "-c", "yes | head -n 1"}));
  ::signal(SIGPIPE, SIG_DFL);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out.text, "y\n");
  EXPECT_EQ(r->err.text, "");
}

TEST_F(ProcessRunnerTest, ConcurrentRunsDoNotLeakDescriptorsIntoEachOther) {
  // A long run started first must not hold the pipes of runs started alongside it: each child
  // sees only its own stdin, stdout and stderr.
  const std::string secs = UniqueSleep(40);
  CancelToken long_cancel;
  std::thread long_run([&] { (void)runner_.Run(Spec({"sleep", secs}), long_cancel, nullptr); });
  for (int i = 0; i < 20; ++i) {
    auto r = Run(Spec({"sh", "-c", "echo " + std::to_string(i) + "; ls /proc/$$/fd"}));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->out.text, std::to_string(i) + "\n0\n1\n2\n");
    EXPECT_FALSE(r->timed_out);
  }
  long_cancel.Cancel();
  long_run.join();
  EXPECT_TRUE(WaitUntilGone(secs, std::chrono::seconds(5)));
}

extern "C" void IgnoreSignal(int) {}

TEST_F(ProcessRunnerTest, ChildStartsWithNoIgnoredBlockedOrHandledSignals) {
  // Whatever labgate itself ignores, handles or blocks, a command starts as a login shell
  // would: nothing ignored, nothing blocked, no handler of labgate's.
  struct sigaction handled {};
  handled.sa_handler = IgnoreSignal;
  struct sigaction old_usr1 {};
  ::sigaction(SIGUSR1, &handled, &old_usr1);
  auto old_hup = ::signal(SIGHUP, SIG_IGN);
  sigset_t block;
  sigset_t old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  auto r = Run(Spec({"cat", "/proc/self/status"}));
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::signal(SIGHUP, old_hup);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);
  ASSERT_TRUE(r.ok());
  // Blocked and ignored signals survive exec, so they are what the runner left; exec resets
  // handlers, so cat catching nothing shows no handler was in the way of the exec.
  EXPECT_NE(r->out.text.find("SigBlk:\t0000000000000000\n"), std::string::npos) << r->out.text;
  EXPECT_NE(r->out.text.find("SigIgn:\t0000000000000000\n"), std::string::npos) << r->out.text;
  EXPECT_NE(r->out.text.find("SigCgt:\t0000000000000000\n"), std::string::npos) << r->out.text;
}

TEST_F(ProcessRunnerTest, ProgramThatCannotBeExecutedIsAClearErrorAndNoProcessIsLeft) {
  char dir_template[] = "/tmp/lg-noexec-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/not-a-program";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("\x7f" "ELF garbage", f);
    std::fclose(f);
  }
  ::chmod(path.c_str(), 0755);
  auto r = Run(Spec({path}));
  ::unlink(path.c_str());
  ::rmdir(dir_template);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("exec failed: Exec format error"), std::string::npos) << r.error().message;
  // The failed child was reaped: no zombie of ours remains.
  int status = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(ProcessRunnerTest, EnvOverridesTheInheritedValueAndTheLastEntryWins) {
  ProcessSpec s = Spec({"sh", "-c", "echo \"$HOME|$LG_TWICE\"; env | grep -c '^HOME='"});
  s.env = {{"HOME", "/srv/x"}, {"LG_TWICE", "first"}, {"LG_TWICE", "second"}};
  auto r = Run(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.text, "/srv/x|second\n1\n");
}

TEST_F(ProcessRunnerTest, TheChildGetsTheRunnersWholeEnvironment_WithTheAddedKeysOnTop) {
  // The child's entries are the runner's own strings, not copies: every one must still arrive,
  // in the runner's order, with an added key's value in place of the inherited one.
  ASSERT_NE(std::getenv("HOME"), nullptr);
  std::vector<std::string> expected;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    if (text.find('=') == std::string_view::npos || text.rfind("HOME=", 0) == 0) continue;
    expected.emplace_back(text);
  }
  expected.push_back("HOME=/srv/replaced");
  ProcessSpec s = Spec({"/usr/bin/env", "-0"});
  s.env = {{"HOME", "/srv/replaced"}};
  auto r = Run(s);
  ASSERT_TRUE(r.ok());
  std::vector<std::string> got;
  for (std::size_t begin = 0; begin < r->out.text.size();) {
    std::size_t end = r->out.text.find('\0', begin);
    if (end == std::string::npos) end = r->out.text.size();
    got.push_back(r->out.text.substr(begin, end - begin));
    begin = end + 1;
  }
  // Names only on failure: values may be a CI machine's secrets.
  auto names = [](const std::vector<std::string>& entries) {
    std::string out;
    for (const auto& e : entries) out += e.substr(0, e.find('=')) + " ";
    return out;
  };
  EXPECT_TRUE(got == expected) << "expected " << names(expected) << "\ngot " << names(got);
}

}  // namespace
}  // namespace labgate::core
