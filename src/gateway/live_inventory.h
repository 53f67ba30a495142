#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "inventory/inventory.h"

namespace labgate::gateway {

/// The inventory in force, replaced whole when hosts.toml is reloaded. Readers get a stable
/// reference: an inventory that a reload replaced is kept until the gateway ends, so a call that
/// started under it (and the Target pointers it resolved) stays valid. Reloads are rare and an
/// inventory is a few kilobytes, so keeping them costs little. Thread-safe.
class LiveInventory {
 public:
  explicit LiveInventory(std::shared_ptr<const inventory::Inventory> first) : current_(first.get()) {
    kept_.push_back(std::move(first));
  }
  LiveInventory(const LiveInventory&) = delete;
  LiveInventory& operator=(const LiveInventory&) = delete;

  const inventory::Inventory& operator*() const { return *current_.load(std::memory_order_acquire); }
  const inventory::Inventory* operator->() const { return current_.load(std::memory_order_acquire); }

  /// Makes `next` the inventory every later read sees.
  void Replace(std::shared_ptr<const inventory::Inventory> next) {
    std::lock_guard<std::mutex> lock(mutex_);
    current_.store(next.get(), std::memory_order_release);
    kept_.push_back(std::move(next));
  }

 private:
  std::atomic<const inventory::Inventory*> current_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<const inventory::Inventory>> kept_;
};

}  // namespace labgate::gateway
