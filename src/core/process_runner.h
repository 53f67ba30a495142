#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/cancel.h"
#include "core/result.h"

namespace labgate::core {

inline constexpr std::size_t kDefaultOutputCap = 64 * 1024;

/// What to start: argv (argv[0] looked up in PATH when it has no '/'), never through a shell.
struct ProcessSpec {
  std::vector<std::string> argv;
  std::string cwd;  // empty: the runner's own
  std::vector<std::pair<std::string, std::string>> env;  // added to the inherited environment
  std::chrono::milliseconds timeout{20000};
  std::size_t output_cap = kDefaultOutputCap;  // per stream, head + tail
  // What the process reads on stdin, then end-of-file; /dev/null when empty. At most
  // kMaxStdinBytes: it goes into a pipe before the start (a password line, not a payload).
  std::string stdin_data;
  // Or a descriptor the process reads as stdin (a pipe the caller feeds from a thread of its
  // own); borrowed: the caller closes it after Run returns. Takes precedence over stdin_data.
  int stdin_fd = -1;
  // Runs once, on the runner's thread, when a deadline or cancel begins to stop the process,
  // before its group gets TERM: for processes the runner may not signal (root, under sudo).
  std::function<void()> on_stop;
};

/// The most ProcessSpec::stdin_data may hold (what a pipe takes without a reader).
inline constexpr std::size_t kMaxStdinBytes = 16 * 1024;

/// One captured stream: capped text plus facts about the whole stream.
struct CapturedStream {
  std::string text;  // raw bytes, head + truncation marker + tail when over the cap
  std::uint64_t total_bytes = 0;
  bool truncated = false;
  std::string sha256;  // over every byte the process wrote, not only what was kept
};

/// How a process ended.
struct ProcessOutcome {
  std::optional<int> exit_code;  // set when it exited
  std::optional<int> signal;     // set when a signal ended it
  bool timed_out = false;
  bool cancelled = false;
  // A deadline or cancel stopped the wait, but the end of the command was never confirmed (an
  // SSH host whose channel stayed open: something kept its output open outside the process
  // group, or the host stopped answering). It may still be running.
  bool stop_unconfirmed = false;
  CapturedStream out;
  CapturedStream err;
  std::chrono::milliseconds duration{0};
  int retries = 0;  // set by transports: attempts repeated before the command started
};

enum class StreamId { kStdout, kStderr };

/// Receives output as it arrives (the node agent streams it on). Called on the runner's thread.
class OutputListener {
 public:
  virtual ~OutputListener() = default;
  virtual void OnOutput(StreamId stream, std::string_view bytes) = 0;
};

class RunningProcess;

/// The few descriptors one running process asks to have watched (its two output pipes and its
/// pidfd), held without an allocation: a loop asks for them on every pass.
class FdList {
 public:
  static constexpr std::size_t kCapacity = 3;
  void push_back(int fd) {
    if (size_ < kCapacity) fds_[size_++] = fd;
  }
  bool contains(int fd) const { return std::find(begin(), end(), fd) != end(); }
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  const int* begin() const { return fds_.data(); }
  const int* end() const { return fds_.data() + size_; }

 private:
  std::array<int, kCapacity> fds_{};
  std::size_t size_ = 0;
};

/// Starts a process and waits for it within a deadline. A deadline or a cancellation ends the
/// whole process group (TERM, then KILL after a grace), not only the first process.
class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  /// Fails only when the process could not be started (not found, bad cwd, no resources).
  virtual Result<ProcessOutcome> Run(const ProcessSpec& spec, const CancelToken& cancel,
                                     OutputListener* listener) = 0;
  /// Whether Start works: a process the caller's own event loop steps, with no thread of its
  /// own waiting for it. Runners that only run to completion (fakes, the sandbox) say no.
  virtual bool CanStart() const { return false; }
  /// Starts without waiting (only when CanStart); fails as Run does when it cannot start.
  virtual Result<std::unique_ptr<RunningProcess>> Start(const ProcessSpec& spec);
};

/// One started process, stepped by whoever watches its descriptors: Wait (what Run does), or
/// an event loop that serves other things too (a node's link). Deadline, cancel, the group's
/// TERM then KILL, and the drain of output after the exit all work as Run describes.
/// Not thread-safe: one thread steps it.
class RunningProcess {
 public:
  using Clock = std::chrono::steady_clock;
  ~RunningProcess();  // not finished: the group is killed and the process reaped
  RunningProcess(const RunningProcess&) = delete;
  RunningProcess& operator=(const RunningProcess&) = delete;

  /// The descriptors to watch for input now: the output pipes still open and, until the
  /// process exits, its pidfd. They stay open until this object goes.
  FdList Watched() const;
  /// Reads once from `fd` (one of Watched, reported readable or closed).
  void OnReadable(int fd, OutputListener* listener);
  /// The process's id, which is also its group's.
  int pid() const;
  /// Begins stopping the group as a cancellation does (no-op once it is stopping or exited).
  void Cancel() { cancel_requested_ = true; }
  /// Acts on the deadline, a cancel, the grace and the exit; true once the outcome is final.
  bool Advance();
  /// When Advance must run again if no descriptor becomes ready first.
  Clock::time_point WakeAt() const;
  /// The outcome, once Advance returned true: reaps the process.
  ProcessOutcome Finish();
  /// Steps until the outcome is final, watching `cancel` too (Run's wait), and returns it.
  ProcessOutcome Wait(const CancelToken& cancel, OutputListener* listener);

 private:
  friend class SystemProcessRunner;
  struct State;
  explicit RunningProcess(std::unique_ptr<State> state);
  void StopGroup(bool timed_out);

  std::unique_ptr<State> state_;
  bool cancel_requested_ = false;
};

/// The real runner. Thread-safe: spawns and waits run in parallel.
class SystemProcessRunner final : public ProcessRunner {
 public:
  /// `kill_grace` is how long a TERMed group gets before KILL.
  explicit SystemProcessRunner(std::chrono::milliseconds kill_grace = std::chrono::milliseconds(1000))
      : kill_grace_(kill_grace) {}

  Result<ProcessOutcome> Run(const ProcessSpec& spec, const CancelToken& cancel,
                             OutputListener* listener) override;
  bool CanStart() const override { return true; }
  Result<std::unique_ptr<RunningProcess>> Start(const ProcessSpec& spec) override;

 private:
  std::chrono::milliseconds kill_grace_;
};

/// argv[0] as the runner starts it: a path as given, a name looked up in PATH; kNotFound with
/// what to do when it is nowhere.
Result<std::string> ResolveProgram(const std::string& name);

/// Name of a signal without the SIG prefix ("TERM", "KILL"), or its number as text.
std::string SignalName(int signal);

/// The number of a signal named as SignalName names it (or as SSH's exit-signal does).
std::optional<int> SignalNumber(std::string_view name);

}  // namespace labgate::core
