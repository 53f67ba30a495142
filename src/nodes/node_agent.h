#pragma once

#include <chrono>
#include <iosfwd>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "capabilities/device_config.h"
#include "core/cancel.h"
#include "core/process_runner.h"
#include "core/result.h"
#include "nodes/pairing_store.h"

namespace labgate::nodes {

/// What a paired device remembers (`STATE_DIR/node.json`, beside its key `STATE_DIR/node_key`).
struct NodeConfig {
  std::string node_id;
  std::string gateway;      // "host:port"
  std::string fingerprint;  // the gateway's host key
  std::vector<std::string> capabilities;  // what the gateway approved at pairing; the node serves no more
  std::string paired_at;
};

/// ~/.local/state/labgate-node unless LABGATE_NODE_STATE_DIR says otherwise.
std::string DefaultNodeStateDir();
core::Result<NodeConfig> LoadNodeConfig(const std::string& state_dir);
core::Status SaveNodeConfig(const std::string& state_dir, const NodeConfig& config);

/// A pairing request without a code that the gateway's operator has not decided yet, as
/// STATE_DIR/pairing-pending.json keeps it for `labgate node status`.
struct PendingRequest {
  std::string node_id;
  std::string gateway;
  std::string key_fingerprint;  // this device's new key: what the operator compares
  std::string requested_at;
};
std::optional<PendingRequest> LoadPendingRequest(const std::string& state_dir);

/// This device as it describes itself when pairing and in hello.
DeviceInfo ThisDevice(const std::string& version);

/// How to pair: with a code (approved at once), or by gateway address + fingerprint + id (waits
/// for `labgate nodes approve`).
struct PairRequest {
  std::string state_dir;
  std::string code;  // "lgpair1...."; empty for a request that waits for approval
  std::string gateway;
  std::string fingerprint;
  std::string node_id;
  std::vector<std::string> capabilities;  // to ask for; empty: whatever the code grants
  std::string version;
  std::chrono::milliseconds wait{std::chrono::minutes(15)};  // how long to wait for an approval
};

/// Makes the node key (0600), checks the gateway's host key, sends pair.request and, once
/// paired, writes node.json. `progress` gets lines for the person at the device.
core::Result<NodeConfig> PairDevice(const PairRequest& request, std::ostream& progress,
                                    const core::CancelToken& stop);

/// How an agent whose link dropped comes back. The first attempt waits a random time within
/// kFirstReconnectSpread; each failure doubles the spread, up to kMaxReconnectSpread. The wait
/// is drawn from the whole spread (not from +-25% around it), so a fleet that lost its gateway
/// at the same moment comes back spread out instead of in waves. A connect waits
/// kConnectTimeout plus the spread: a gateway busy with a fleet's logins leaves the rest in its
/// listen backlog and answers them in turn, late but in order; giving up puts a node at the back.
/// Within kRestartWindow of losing the link, an attempt that nothing listened to (a gateway
/// stopping and starting again) lets the spread grow only to kRestartSpread: it cost the
/// gateway nothing, and the gateway paces the logins itself once it listens (logins_in_flight).
inline constexpr std::chrono::milliseconds kFirstReconnectSpread{1000};
inline constexpr std::chrono::milliseconds kMaxReconnectSpread{30000};
inline constexpr std::chrono::milliseconds kConnectTimeout{30000};
inline constexpr std::chrono::milliseconds kRestartSpread{2000};
inline constexpr std::chrono::milliseconds kRestartWindow{60000};

/// A wait drawn uniformly from the last nine tenths of `spread` (never a tight loop).
std::chrono::milliseconds ReconnectDelay(std::chrono::milliseconds spread, std::mt19937_64& rng);

/// The spread after an attempt that failed with `spread`: doubled up to kMaxReconnectSpread, or
/// only up to kRestartSpread when nothing listened at the gateway's address and the link was
/// lost less than kRestartWindow ago.
std::chrono::milliseconds NextReconnectSpread(std::chrono::milliseconds spread, bool nothing_listened,
                                              std::chrono::milliseconds since_link_lost);

/// The node agent daemon: keeps one agent channel to the gateway, serves the approved
/// capabilities with the same process runner as the gateway's `local`, and reconnects as
/// ReconnectDelay says. Run blocks until `stop` fires.
class NodeAgent {
 public:
  /// `device` says which backends serve screen, camera and location here (device.toml).
  NodeAgent(std::string state_dir, core::ProcessRunner& runner, std::string version,
            capabilities::DeviceConfig device = {});
  /// Fails only when the state dir holds no pairing; link failures are retried.
  core::Status Run(const core::CancelToken& stop);

 private:
  std::string state_dir_;
  core::ProcessRunner& runner_;
  std::string version_;
  capabilities::DeviceConfig device_;
};

}  // namespace labgate::nodes
