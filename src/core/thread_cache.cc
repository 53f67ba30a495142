#include "core/thread_cache.h"

#include <thread>
#include <utility>

namespace labgate::core {

ThreadCache::~ThreadCache() {
  std::unique_lock<std::mutex> lock(mutex_);
  closing_ = true;
  wake_.notify_all();
  ended_.wait(lock, [this] { return threads_ == 0; });
}

void ThreadCache::Run(std::function<void()> task) {
  std::unique_lock<std::mutex> lock(mutex_);
  queued_.push_back(std::move(task));
  if (idle_ >= queued_.size()) {
    wake_.notify_one();  // an idle thread takes it
    return;
  }
  ++threads_;
  try {
    std::thread([this] { Work(); }).detach();
  } catch (...) {
    --threads_;
    queued_.pop_back();
    throw;
  }
}

std::size_t ThreadCache::threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return threads_;
}

std::size_t ThreadCache::idle() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return idle_;
}

void ThreadCache::Work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!queued_.empty()) {
      std::function<void()> task = std::move(queued_.front());
      queued_.pop_front();
      lock.unlock();
      task();
      task = nullptr;  // what the task captured is released before the thread waits again
      lock.lock();
      continue;
    }
    if (closing_) break;
    ++idle_;
    const bool woken = wake_.wait_for(lock, idle_limit_, [this] { return !queued_.empty() || closing_; });
    --idle_;
    if (!woken) break;
  }
  --threads_;
  ended_.notify_all();
}

ThreadCache& SharedThreadCache() {
  static ThreadCache* cache = new ThreadCache();
  return *cache;
}

}  // namespace labgate::core
