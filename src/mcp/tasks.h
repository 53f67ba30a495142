#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

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

/// A thread per task, at most `limit` at once. Thread-safe.
class ThreadTaskRunner final : public TaskRunner {
 public:
  explicit ThreadTaskRunner(std::size_t limit) : limit_(limit) {}
  ~ThreadTaskRunner() override { WaitAll(); }
  bool Spawn(std::function<void()> task) override;
  void WaitAll() override;

 private:
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void ReapFinished();  // with mutex_ held

  std::size_t limit_;
  std::mutex mutex_;
  std::list<std::unique_ptr<Worker>> workers_;
};

}  // namespace labgate::mcp
