#pragma once

#include <memory>
#include <string>

#include "audit/audit_log.h"
#include "audit/audit_storage.h"
#include "core/clock.h"
#include "core/process_runner.h"
#include "core/text.h"
#include "gateway/approvals.h"
#include "gateway/artifacts.h"
#include "gateway/executor.h"
#include "gateway/gateway.h"
#include "gateway/node_executor.h"
#include "gateway/ssh_executor.h"
#include "inventory/inventory.h"
#include "nodes/agent_server.h"
#include "nodes/pairing_store.h"
#include "ssh/pool.h"

namespace labgate::gateway {

/// Where the gateway daemon keeps its sockets and keys inside `state_dir`.
struct StatePaths {
  std::string host_key;      // gateway_host_key (Ed25519, 0600)
  std::string pairing;       // nodes.json
  std::string mcp_socket;    // mcp.sock
  std::string operator_socket;  // operator.sock
};
StatePaths PathsFor(const inventory::GatewaySettings& settings);

/// A gateway wired to the real world: the audit file, the system clock and process runner, the
/// SSH pool and — in the daemon — the pairing store and the node listener. Not copyable.
class Runtime {
 public:
  enum class Mode {
    kEmbedded,  // `labgate mcp` / CLI without a daemon: nodes are unreachable
    kDaemon,    // `labgate gateway`: owns the pairing store and listens for nodes
  };
  /// `config_hint` is " --config FILE" (or "") for messages that tell the user what to run.
  Runtime(inventory::Inventory inventory, Mode mode = Mode::kEmbedded, std::string config_hint = "");
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Daemon mode: opens the pairing store, creates the host key and starts the node listener.
  core::Status Start();

  /// Writes a `policy.loaded` event: which inventory (and its digest) the policy now comes from.
  void RecordPolicyLoaded(const std::string& mode_name);

  Gateway& gateway() { return gateway_; }
  audit::AuditLog& audit() { return audit_; }
  ApprovalStore& approvals() { return approvals_; }
  const inventory::Inventory& inventory() const { return *inventory_; }
  /// Daemon mode only (null otherwise, and before Start).
  nodes::PairingStore* pairing() { return store_.get(); }
  nodes::AgentServer* agents() { return server_.get(); }
  const std::string& config_hint() const { return config_hint_; }

 private:
  class AuditObserver;

  std::shared_ptr<const inventory::Inventory> inventory_;
  Mode mode_;
  std::string config_hint_;
  core::SystemClock clock_;
  core::Redactor redactor_;  // the values of the inventory's *_env secrets, and every built-in rule
  audit::FileAuditStorage audit_storage_;
  audit::AuditLog audit_;
  core::SystemProcessRunner runner_;
  LocalExecutor local_;
  ssh::Pool ssh_pool_;
  SshExecutor ssh_;
  std::unique_ptr<nodes::PairingStore> store_;
  std::unique_ptr<AuditObserver> observer_;
  std::unique_ptr<nodes::AgentServer> server_;
  NodeExecutor nodes_;
  ApprovalStore approvals_;
  ArtifactStore artifacts_;
  Gateway gateway_;
};

}  // namespace labgate::gateway
