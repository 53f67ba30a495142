#include "mcp/tasks.h"

namespace labgate::mcp {

bool ThreadTaskRunner::Spawn(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (running_ >= limit_) return false;
    ++running_;
  }
  try {
    threads_.Run([this, task = std::move(task)]() mutable {
      task();
      task = nullptr;  // what it captured goes before WaitAll can return, as with a joined thread
      std::lock_guard<std::mutex> lock(mutex_);
      --running_;
      finished_.notify_all();
    });
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
    throw;
  }
  return true;
}

void ThreadTaskRunner::WaitAll() {
  std::unique_lock<std::mutex> lock(mutex_);
  finished_.wait(lock, [this] { return running_ == 0; });
}

}  // namespace labgate::mcp
