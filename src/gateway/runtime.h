#pragma once

#include <memory>
#include <string>

#include "audit/audit_log.h"
#include "audit/audit_storage.h"
#include "core/clock.h"
#include "core/process_runner.h"
#include "gateway/executor.h"
#include "gateway/gateway.h"
#include "gateway/ssh_executor.h"
#include "ssh/pool.h"
#include "inventory/inventory.h"

namespace labgate::gateway {

/// An embedded gateway wired to the real world: the audit file, the system clock and process
/// runner. Used by `labgate mcp` and the CLI verbs in one process. Not copyable or movable.
class Runtime {
 public:
  explicit Runtime(inventory::Inventory inventory);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Gateway& gateway() { return gateway_; }

 private:
  std::shared_ptr<const inventory::Inventory> inventory_;
  core::SystemClock clock_;
  audit::FileAuditStorage audit_storage_;
  audit::AuditLog audit_;
  core::SystemProcessRunner runner_;
  LocalExecutor local_;
  ssh::Pool ssh_pool_;
  SshExecutor ssh_;
  Gateway gateway_;
};

}  // namespace labgate::gateway
