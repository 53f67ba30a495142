#include "mcp/tasks.h"

namespace labgate::mcp {

void ThreadTaskRunner::ReapFinished() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if ((*it)->done.load()) {
      (*it)->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

bool ThreadTaskRunner::Spawn(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mutex_);
  ReapFinished();
  if (workers_.size() >= limit_) return false;
  auto worker = std::make_unique<Worker>();
  Worker* raw = worker.get();
  raw->thread = std::thread([raw, task = std::move(task)] {
    task();
    raw->done.store(true);
  });
  workers_.push_back(std::move(worker));
  return true;
}

void ThreadTaskRunner::WaitAll() {
  std::list<std::unique_ptr<Worker>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    all.swap(workers_);
  }
  for (auto& w : all) w->thread.join();
}

}  // namespace labgate::mcp
