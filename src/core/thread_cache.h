#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace labgate::core {

/// Runs each task on a thread of its own at once, like a detached std::thread, but keeps a
/// thread whose task ended and gives it the next task. Starting a thread (clone, page faults on a
/// fresh stack, handing the stack back) cost about as much as starting the command the task
/// runs. A task never waits for another: with no idle thread a new one starts. A thread idle for
/// `idle_limit` ends. Thread-safe.
class ThreadCache {
 public:
  explicit ThreadCache(std::chrono::milliseconds idle_limit = std::chrono::seconds(30)) : idle_limit_(idle_limit) {}
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;
  /// Waits for every thread to finish its task and end.
  ~ThreadCache();

  /// Starts `task` now, on an idle thread or a new one. Throws std::system_error as std::thread
  /// does when no thread can be made.
  void Run(std::function<void()> task);

  /// Threads alive, busy or idle, and those waiting for a task (for tests).
  std::size_t threads() const;
  std::size_t idle() const;

 private:
  void Work();

  const std::chrono::milliseconds idle_limit_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;   // a task was queued, or the cache closes
  std::condition_variable ended_;  // a thread ended
  std::deque<std::function<void()>> queued_;
  std::size_t idle_ = 0;
  std::size_t threads_ = 0;
  bool closing_ = false;
};

/// The process's cache, for work that used to start a detached thread per request. Never
/// destroyed, so a task still running at exit does not hold up the process.
ThreadCache& SharedThreadCache();

}  // namespace labgate::core
