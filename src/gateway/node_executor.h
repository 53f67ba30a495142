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
  core::Result<capabilities::CaptureResult> Capture(const inventory::Target& target,
                                                    const capabilities::CaptureRequest& request,
                                                    const core::CancelToken& cancel) override;
  /// The node's own files through its agent (file.* methods), content in chunks of at most
  /// nodes::kFileChunkBytes; the node refuses them unless its pairing granted file.
  core::Result<std::unique_ptr<capabilities::FileAccessor>> Files(const inventory::Target& target,
                                                                  std::chrono::steady_clock::time_point deadline,
                                                                  const core::CancelToken& cancel) override;

 private:
  friend class NodeFiles;
  /// Sends `method` to a reachable, paired, unrevoked node and waits `timeout` plus a grace
  /// for the node's own answer; errors say what to do.
  core::Result<nodes::Json> Call(const inventory::Target& target, const std::string& method, nodes::Json params,
                                 std::chrono::milliseconds timeout, const core::CancelToken& cancel,
                                 const std::string& what, nodes::RpcPeer::NotificationHandler on_notification = nullptr);

  const nodes::PairingStore* store_;
  nodes::AgentServer* server_;
  std::string config_hint_;
};

}  // namespace labgate::gateway
