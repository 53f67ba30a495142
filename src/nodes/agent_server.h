#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/cancel.h"
#include "core/result.h"
#include "nodes/agent_protocol.h"
#include "nodes/pairing_store.h"
#include "nodes/rpc_peer.h"
#include "nodes/source_gate.h"

namespace labgate::nodes {

/// How the gateway's node listener behaves.
struct AgentServerSettings {
  std::string listen = "127.0.0.1:7022";  // "host:port"; port 0 picks a free one (tests)
  std::string host_key_path;              // Ed25519, created 0600 at first start
  bool allow_pairing = true;              // requests without a code may wait for approval
  int loops = 2;                          // event-loop threads started with the listener
  int sessions_per_loop = 2048;           // more sessions than this in every loop start another
  std::chrono::milliseconds heartbeat_interval = kHeartbeatInterval;
  std::chrono::milliseconds heartbeat_timeout = kHeartbeatTimeout;
  std::chrono::milliseconds login_timeout{10000};  // key exchange + authentication + hello
  // Sessions taken between accept and a verified login (sshd's MaxStartups). More wait in the
  // kernel's listen backlog instead of all starting a key exchange at once: a fleet coming back
  // after a restart then logs in at the rate the machine can, and no login the gateway already
  // paid for runs into login_timeout because thousands of others were interleaved with it.
  int logins_in_flight = 128;
  std::string version;                             // sent to nodes in the hello answer
  std::vector<std::string> allowed_networks;       // IPv4 CIDR sources admitted; empty: any
  int auth_fail_limit = 10;                        // failed logins per source within the window ...
  std::chrono::seconds auth_fail_window{300};      // ... before that source is refused until it passes
  /// Whether the inventory in force has a [[nodes]] entry with this id; a request without a code
  /// for any other id could never be approved and is refused at once. Unset: every id may ask.
  std::function<bool(const std::string& node_id)> listed;
};

/// Something the listener saw that the operator should find in the audit log.
struct AgentEvent {
  std::string event;  // node.online, node.offline, auth.refused, connection.refused, pairing.paired, pairing.pending, pairing.refused
  std::string node_id;
  std::string fingerprint;
  std::string peer;  // "address:port" of the device
  std::string detail;
  Json data = Json::object();
};

/// Receives AgentEvents; called from the listener's threads, so implementations are thread-safe.
class AgentObserver {
 public:
  virtual ~AgentObserver() = default;
  virtual void OnAgentEvent(const AgentEvent& event) = 0;
};

/// A node's live connection as `nodes list` and `targets` show it.
struct NodeLink {
  std::string peer;
  TimePoint since;
  DeviceInfo device;
};

/// The gateway end of the agent channel (DESIGN §4): an SSH server (libssh) that accepts only
/// Ed25519 public-key logins of paired nodes (or pairing sessions), serves the subsystem
/// `labgate-agent@v1`, keeps heartbeats, and lets the gateway call methods on nodes.
/// One accept thread hands each session to the event-loop thread holding the fewest; when every
/// loop holds `sessions_per_loop`, it starts another (up to kMaxLoops). Thread-safe.
class AgentServer {
 public:
  AgentServer(PairingStore& store, AgentServerSettings settings, AgentObserver& observer);
  ~AgentServer();
  AgentServer(const AgentServer&) = delete;
  AgentServer& operator=(const AgentServer&) = delete;

  /// Loads (or creates) the host key, binds the listener and starts the threads.
  core::Status Start();
  /// Closes every session (their calls fail) and joins the threads. Idempotent.
  void Stop();

  /// The host key's fingerprint, which pairing codes carry.
  const std::string& fingerprint() const { return fingerprint_; }
  /// The address actually bound ("127.0.0.1:7022").
  const std::string& address() const { return address_; }

  /// Calls `method` on node `node_id` and waits for its answer until `deadline` or `cancel`;
  /// then sends `$/cancel` and fails with kTimeout / kCancelled. A dropped link fails with kIo.
  /// `on_notification` gets the node's notifications about this call, on a listener thread.
  core::Result<Json> Call(const std::string& node_id, const std::string& method, Json params,
                          std::chrono::steady_clock::time_point deadline, const core::CancelToken& cancel,
                          RpcPeer::NotificationHandler on_notification = nullptr);

  /// The node's live link, if it is connected and said hello.
  std::optional<NodeLink> Link(const std::string& node_id) const;
  /// Every live link at one moment, by node id: one lock for a whole listing instead of one
  /// per node while a fleet is logging in.
  std::map<std::string, NodeLink> Links() const;
  std::size_t online_count() const;
  /// Event-loop threads running now (at least `loops`; more as sessions grow).
  std::size_t loop_count() const { return loop_count_.load(); }
  /// Sessions the loops hold, those still logging in included.
  std::size_t session_count() const;
  /// Sessions accepted and not yet logged in (at most settings.logins_in_flight).
  int logins_in_flight() const { return logging_in_.load(); }
  static constexpr std::size_t kMaxLoops = 64;

  /// Drops every session of `node_id` at once (revocation), telling the node why; with `keep`,
  /// only those logged in with another key than the one of that fingerprint (a node paired
  /// again: its old device must not go on getting commands or sudo passwords).
  void Disconnect(const std::string& node_id, const std::string& reason, const std::string& keep = "");
  /// Answers a device waiting on a pairing request once the operator approved or rejected it.
  void PairingDecided(const std::string& node_id);
  /// Takes new allowed_networks and auth limits (a reloaded hosts.toml); live sessions stay.
  void UpdateSourceRules(std::vector<std::string> allowed_networks, int auth_fail_limit,
                         std::chrono::seconds auth_fail_window);
  /// Sources refused for failed logins right now.
  std::vector<SourceGate::Lockout> LockedOut() { return gate_.LockedOut(SourceGate::Clock::now()); }

 private:
  struct Conn;
  struct Loop;
  struct Online {
    Loop* loop = nullptr;
    std::uint64_t serial = 0;
    NodeLink link;
  };

  void AcceptLoop();
  Loop* StartLoop();
  Loop& PickLoop();
  void Adopt(Loop& loop, ssh_session session, std::string peer);
  int AuthPubkey(Conn& c, const char* user, ssh_key key, char state);
  void OnRequest(Conn& c, const Json& id, const std::string& method, const Json& params);
  void HandleHello(Conn& c, const Json& id, const Json& params);
  void HandlePairRequest(Conn& c, const Json& id, const Json& params);
  void AnswerPairing(Conn& c);
  /// Runs `act` on every session, each on its own loop's thread (posted; returns at once).
  void ForEachConn(std::function<void(Conn&)> act);
  void Close(Conn& c, const std::string& reason);
  void Reap(Loop& loop, Conn& c);
  // Gives back the accept slot `c` took, once it logged in or ended.
  void ReleaseLoginSlot(Conn& c);
  void Tick(Loop& loop);
  void Emit(AgentEvent event);
  // Tells a source refused for failed logins why, and until when, before closing it.
  static void TellLockedOut(int fd, const std::string& reason);

  PairingStore& store_;
  AgentServerSettings settings_;
  AgentObserver& observer_;
  std::string fingerprint_;
  std::string address_;
  void* bind_ = nullptr;  // ssh_bind
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  // Written when a login slot frees while all were taken: the accept thread waits on it.
  int slot_fd_ = -1;
  std::atomic<int> logging_in_{0};
  std::thread accept_thread_;
  // Only the thread that starts the listener and the accept thread add loops, and a loop stays
  // where it is until Stop: readers take loop_count_ and read that many.
  std::array<std::unique_ptr<Loop>, kMaxLoops> loops_;
  std::atomic<std::size_t> loop_count_{0};
  std::atomic<std::uint64_t> next_serial_{1};
  std::atomic<bool> started_{false};
  SourceGate gate_;

  mutable std::mutex online_mutex_;
  std::map<std::string, Online> online_;
  // Which address asked for each pending pairing (in memory: a restart forgets, the cap on the
  // total still holds), so one source cannot fill the operator's queue.
  std::mutex pending_sources_mutex_;
  std::map<std::string, std::string> pending_sources_;
};

}  // namespace labgate::nodes
