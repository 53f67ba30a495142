#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>

#include "core/thread_cache.h"

namespace labgate::mcp {

/// Runs request handlers off the reader thread so a slow call never blocks ping or cancel.
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  /// Starts `task`; false when the runner is at its limit (the caller answers with an error).
  virtual bool Spawn(std::function<void()> task) = 0;
  /// Blocks until every started task has finished.
  virtual void WaitAll() = 0;
};

/// A thread per task, at most `limit` at once; threads are kept and reused for later tasks
/// (core::ThreadCache), since starting one cost a tools/call as much as a fsync. Thread-safe.
class ThreadTaskRunner final : public TaskRunner {
 public:
  explicit ThreadTaskRunner(std::size_t limit) : limit_(limit) {}
  ~ThreadTaskRunner() override { WaitAll(); }
  bool Spawn(std::function<void()> task) override;
  void WaitAll() override;

 private:
  std::size_t limit_;
  std::mutex mutex_;
  std::condition_variable finished_;
  std::size_t running_ = 0;
  core::ThreadCache threads_{std::chrono::seconds(10)};  // last: its threads end first
};

}  // namespace labgate::mcp
