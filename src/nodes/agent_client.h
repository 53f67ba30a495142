#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/result.h"
#include "nodes/agent_protocol.h"
#include "nodes/rpc_peer.h"

namespace labgate::nodes {

/// Where a device finds its gateway, and the host key it must present.
struct GatewayAddress {
  std::string host;
  int port = 7022;
  std::string fingerprint;  // "SHA256:..."

  std::string Display() const { return host + ":" + std::to_string(port); }
};

core::Result<GatewayAddress> ParseGatewayAddress(const std::string& host_port, const std::string& fingerprint);

/// The device end of one agent channel: an authenticated libssh session with the subsystem
/// open. All protocol work happens on the thread inside Serve; Post hands work to it from others.
class AgentClient {
 public:
  /// Connects, checks the gateway's host key against `gateway.fingerprint` (strict: a different
  /// key is refused, never learned), logs in as `user` with `key` and opens the subsystem.
  /// Errors: kUnavailable (unreachable), kRefused (host key or login refused), kTimeout.
  /// `timeout` covers the TCP connect and the login together. `nothing_listened`, when given, is
  /// set when the TCP connect itself was refused or found no route: a gateway stopped or
  /// restarting refuses at once, and the attempt cost it nothing.
  static core::Result<std::unique_ptr<AgentClient>> Connect(const GatewayAddress& gateway, const std::string& user,
                                                            ssh_key key, std::chrono::milliseconds timeout,
                                                            bool* nothing_listened = nullptr);
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  /// Drives the link until it breaks, the gateway goes silent past the heartbeat timeout, or
  /// `stop` fires (then returns ok). Requests and notifications reach the handlers on this thread.
  core::Status Serve(RpcPeer::RequestHandler on_request, RpcPeer::NotificationHandler on_notification,
                     const core::CancelToken& stop);

  /// Runs `task` on the Serve thread; dropped when the link has ended. Thread-safe.
  void Post(std::function<void()> task);
  /// The protocol peer; use only on the Serve thread (inside handlers or posted tasks).
  RpcPeer& rpc() { return *rpc_; }

  /// Work served on the link's own thread beside the link (a command's pipes and pidfd): after
  /// every pass of the loop (the poll, then posted tasks) `after_pass` runs and says when it next
  /// needs to run if nothing wakes the loop first. Set before Serve.
  void SetAfterPass(std::function<std::chrono::steady_clock::time_point()> after_pass) {
    after_pass_ = std::move(after_pass);
  }
  /// Wakes the loop when `fd` is readable (or closed) and calls `on_ready` inside the poll;
  /// it should only take note, and the after-pass hook act. Only from the after-pass hook or a
  /// posted task (never from inside the poll, a request handler), and Unwatch before closing.
  void Watch(int fd, std::function<void()> on_ready);
  void Unwatch(int fd);

 private:
  // Opens the TCP connection only. kUnavailable: nothing listens there or no route; kTimeout:
  // no answer in time.
  static core::Result<int> Dial(const GatewayAddress& gateway, std::chrono::milliseconds timeout);
  // Logs in over a connection Dial opened; takes `fd` over (closed with the client or on failure).
  static core::Result<std::unique_ptr<AgentClient>> Connect(const GatewayAddress& gateway, int fd,
                                                            const std::string& user, ssh_key key,
                                                            std::chrono::milliseconds timeout);
  AgentClient() = default;
  void Send(std::string bytes);

  ssh_session session_ = nullptr;
  ssh_channel channel_ = nullptr;
  ssh_event event_ = nullptr;
  // Outlives Serve: closing the channel in the destructor may still deliver packets to it.
  ssh_channel_callbacks_struct channel_cb_{};
  bool callbacks_set_ = false;
  int wake_fd_ = -1;
  std::unique_ptr<RpcPeer> rpc_;
  RpcPeer::RequestHandler on_request_;
  RpcPeer::NotificationHandler on_notification_;
  ChannelOut out_;
  bool broken_ = false;
  // Inside ssh_event_dopoll (that is, in a callback): Send only queues and the loop writes after
  // the poll returned, so no libssh call polls again from inside a callback (see AgentServer).
  bool polling_ = false;
  bool closed_ = false;
  std::string close_reason_;
  std::chrono::steady_clock::time_point last_rx_;
  std::mutex tasks_mutex_;
  std::vector<std::function<void()>> tasks_;
  bool ended_ = false;  // guarded by tasks_mutex_
  std::function<std::chrono::steady_clock::time_point()> after_pass_;
  // A descriptor's callback with the client it belongs to: the event holds pointers to these.
  struct Watched {
    AgentClient* client;
    std::function<void()> on_ready;
  };
  std::map<int, Watched> watched_;
  // Set when a poll nested in a libssh call (a send's flush) handled something outside the
  // loop's own poll: a request that started a run, a watched descriptor, a task's wake-up.
  // The loop then makes another pass at once instead of sleeping on what it did not see.
  bool again_ = false;
};

}  // namespace labgate::nodes
