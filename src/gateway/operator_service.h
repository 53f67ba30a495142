#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <sys/types.h>

#include "audit/audit_log.h"
#include "core/result.h"
#include "gateway/control_socket.h"
#include "gateway/runtime.h"

namespace labgate::gateway {

/// The operator's side door into a running gateway: pairing, node keys, runs and targets, as
/// JSON-RPC over the operator socket. Never reachable from MCP. Thread-safe.
class OperatorService {
 public:
  /// Adopts the runtime's operator key (STATE_DIR/operator.key); without one, every call is refused.
  explicit OperatorService(Runtime& runtime);

  /// Serves one connection until the peer closes it. Each request must carry the operator key.
  void Serve(int fd, const SocketPeer& peer);
  /// One method call, the key already checked; `actor` is the peer, recorded in audit records.
  /// Methods that grant trust are refused when `peer_pid` descends from a labgate process.
  core::Result<nlohmann::json> Handle(const std::string& method, const nlohmann::json& params,
                                      const audit::Actor& actor, pid_t peer_pid = 0);

 private:
  core::Result<nlohmann::json> PairNew(const nlohmann::json& params, const audit::Actor& actor);
  core::Result<nlohmann::json> NodesList();
  core::Result<nlohmann::json> NodesPending();
  core::Result<nlohmann::json> Decide(const std::string& method, const nlohmann::json& params, const audit::Actor& actor);
  core::Result<nlohmann::json> Revoke(const nlohmann::json& params, const audit::Actor& actor);
  core::Result<nlohmann::json> Rotate(const nlohmann::json& params, const audit::Actor& actor);
  core::Result<nlohmann::json> Approvals(const std::string& method, const nlohmann::json& params,
                                         const audit::Actor& actor);
  core::Result<nlohmann::json> RunCommand(const nlohmann::json& params, const audit::Actor& actor);
  core::Result<nlohmann::json> CaptureCommand(const nlohmann::json& params, const audit::Actor& actor);
  core::Result<nlohmann::json> FileCommand(const nlohmann::json& params, const audit::Actor& actor);
  core::Status Record(const std::string& event, const audit::Actor& actor, const std::string& node_id,
                      nlohmann::json details);

  Runtime& runtime_;
  core::Result<std::string> key_;
};

/// The `labgate mcp|gateway|node` process `pid` descends from (itself included), if any.
std::optional<std::string> LabgateAncestor(pid_t pid);

}  // namespace labgate::gateway
