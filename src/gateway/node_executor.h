#pragma once

#include "gateway/executor.h"
#include "nodes/agent_server.h"
#include "nodes/pairing_store.h"

namespace labgate::gateway {

/// Runs commands on paired nodes over the agent channel. Without a listener (an embedded gateway
/// in `labgate mcp` or the CLI) nodes are unreachable, and every call says how to start one.
class NodeExecutor final : public Executor {
 public:
  /// `store` and `server` may be null (no gateway daemon in this process).
  NodeExecutor(const nodes::PairingStore* store, nodes::AgentServer* server, std::string config_hint)
      : store_(store), server_(server), config_hint_(std::move(config_hint)) {}

  const char* via() const override { return "node"; }
  core::Result<core::ProcessOutcome> Run(const inventory::Target& target, const capabilities::RunRequest& request,
                                         const core::CancelToken& cancel) override;
  TargetState State(const inventory::Target& target) const override;

 private:
  const nodes::PairingStore* store_;
  nodes::AgentServer* server_;
  std::string config_hint_;
};

}  // namespace labgate::gateway
