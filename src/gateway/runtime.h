#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>
#include <string>

#include "audit/audit_log.h"
#include "audit/audit_storage.h"
#include "audit/forwarder.h"
#include "core/clock.h"
#include "core/process_runner.h"
#include "core/text.h"
#include "gateway/approvals.h"
#include "gateway/artifacts.h"
#include "gateway/checks.h"
#include "gateway/executor.h"
#include "gateway/gateway.h"
#include "gateway/node_executor.h"
#include "core/sandbox.h"
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

/// What commands labgate runs on its own machine must not reach: the state directory (sockets,
/// keys, approvals) hidden; hosts.toml, the audit log and the labgate executable read-only; the
/// user's systemd and D-Bus session sockets hidden (they start commands outside the sandbox).
core::SandboxPolicy SandboxPolicyFor(const inventory::Inventory& inventory);

/// A gateway wired to the real world: the audit file, the system clock and process runner, the
/// SSH pool and — in the daemon — the pairing store and the node listener. Not copyable.
class Runtime {
 public:
  enum class Mode {
    kEmbedded,  // `labgate mcp` / CLI without a daemon: nodes are unreachable
    kOneShot,   // as kEmbedded, for a CLI call that runs once per target and exits: no spare channels
    kDaemon,    // `labgate gateway`: owns the pairing store and listens for nodes
  };
  /// `config_hint` is " --config FILE" (or "") for messages that tell the user what to run.
  explicit Runtime(inventory::Inventory inventory, Mode mode = Mode::kEmbedded, std::string config_hint = "");
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Daemon mode: opens the pairing store, creates the host key and starts the node listener.
  core::Status Start();

  /// Writes a `policy.loaded` event: which inventory (and its digest) the policy now comes from,
  /// and on a reload what changed (`changes`, one line each; empty when nothing did).
  void RecordPolicyLoaded(const std::string& mode_name, const std::vector<std::string>* changes = nullptr);

  /// Puts a newly loaded hosts.toml in force without dropping node sessions or pooled SSH
  /// connections. Settings that only a restart can change (listen, state_dir, audit_log) keep
  /// their running values; the returned notes say which were ignored. Audited as policy.loaded.
  std::vector<std::string> Reload(inventory::Inventory next);

  Gateway& gateway() { return gateway_; }
  audit::AuditLog& audit() { return audit_; }
  ApprovalStore& approvals() { return approvals_; }
  /// The inventory in force now (Reload replaces it); hold the pointer while using what is in it.
  std::shared_ptr<const inventory::Inventory> inventory() const { return inventory_.Current(); }
  /// Daemon mode only (null otherwise, and before Start).
  nodes::PairingStore* pairing() { return store_.get(); }
  nodes::AgentServer* agents() { return server_.get(); }
  /// Daemon mode only: the [[checks]] scheduler (null otherwise, and before Start).
  CheckScheduler* checks() { return checks_.get(); }
  const std::string& config_hint() const { return config_hint_; }
  /// Whether a peer of another uid may use the operator socket: listed in gateway.operators and
  /// not gateway.command_user (checked again here: group membership can change after load).
  bool IsOperatorPeer(uid_t uid, const std::vector<gid_t>& groups) const;
  /// Reads or creates STATE_DIR/operator.key for an operator socket this process serves, and
  /// from then on redacts it like any secret. Thread-safe.
  core::Result<std::string> AdoptOperatorKey();
  /// [audit] forward: how each destination's delivery stands (empty when forwarding is off).
  std::vector<audit::AuditForwarder::Health> forwarding() const;
  /// Runs commands on this machine inside the sandbox (when one could be set up).
  core::SandboxedRunner& runner() { return runner_; }

 private:
  class AuditObserver;

  // Builds every part from the first inventory, which it holds until construction is done.
  Runtime(std::shared_ptr<const inventory::Inventory> first, Mode mode, std::string config_hint);

  LiveInventory inventory_;
  Mode mode_;
  std::string config_hint_;
  core::SystemClock clock_;
  // The values of the inventory's *_env secrets, and every built-in rule; replaced on reload.
  mutable std::mutex redactor_mutex_;
  std::shared_ptr<const core::Redactor> redactor_;
  std::string operator_key_;  // guarded by redactor_mutex_; "" until AdoptOperatorKey
  audit::FileAuditStorage audit_storage_;
  // [audit] forward: one forwarder per destination, in front of the file (none when off).
  std::vector<std::unique_ptr<audit::AuditForwarder>> forwarders_;
  std::unique_ptr<audit::ForwardingAuditStorage> forwarding_storage_;
  audit::AuditLog audit_;
  // Lets a forwarder's trouble report reach audit_ only while it exists.
  struct ForwardTrouble {
    std::mutex mutex;
    bool open = true;
  };
  std::shared_ptr<ForwardTrouble> forward_trouble_ = std::make_shared<ForwardTrouble>();
  core::SystemProcessRunner system_runner_;
  core::SandboxedRunner runner_;  // every command on this machine: local, captures, checks
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
  std::mutex reload_mutex_;  // one Reload at a time
  std::unique_ptr<CheckScheduler> checks_;  // last: stops before what it uses goes away
};

}  // namespace labgate::gateway
