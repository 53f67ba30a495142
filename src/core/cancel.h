#pragma once

#include <atomic>
#include <chrono>

namespace labgate::core {

/// A one-shot cancellation flag that can be waited on with poll(2) through fd().
/// Thread-safe; non-copyable; the owner keeps it alive for as long as workers use it.
class CancelToken {
 public:
  CancelToken();
  ~CancelToken();
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  /// Cancels; idempotent.
  void Cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  /// Readable (POLLIN) once cancelled.
  int fd() const { return fd_; }
  /// Sleeps up to `timeout`; returns true when cancelled meanwhile.
  bool WaitFor(std::chrono::milliseconds timeout) const;

 private:
  std::atomic<bool> cancelled_{false};
  int fd_ = -1;
};

}  // namespace labgate::core
