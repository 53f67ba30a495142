#include "gateway/runtime.h"

namespace labgate::gateway {

Runtime::Runtime(inventory::Inventory inventory)
    : inventory_(std::make_shared<const inventory::Inventory>(std::move(inventory))),
      audit_storage_(inventory_->gateway.audit_log),
      audit_(audit_storage_, clock_),
      local_(runner_),
      ssh_pool_(ssh::PoolSettings{}),
      ssh_(*inventory_, ssh_pool_),
      gateway_(inventory_, audit_, local_, clock_, &ssh_) {}

}  // namespace labgate::gateway
