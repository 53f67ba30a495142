#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <string_view>
#include <thread>

#include "core/result.h"

namespace labgate::gateway {

/// Who is on the other end of a Unix-socket connection (SO_PEERCRED).
struct SocketPeer {
  uid_t uid = 0;
  pid_t pid = 0;
  std::string user;  // login name of uid, or the number
  std::vector<gid_t> groups;  // its gid and supplementary groups, as the kernel has them (SO_PEERGROUPS)
};

/// A Unix socket in the state dir that serves each connection on its own thread. The gateway's
/// own uid is served, and with `also_allowed` the uids it accepts (asked at each connection, so a
/// reload applies); anyone else is told so, reported, and closed. Without `also_allowed` the socket
/// is mode 0600, a second fence behind the check; with it 0666, and SO_PEERCRED is the fence.
/// Thread-safe; Stop closes every connection and joins the threads.
class ControlListener {
 public:
  using Handler = std::function<void(int fd, const SocketPeer& peer)>;
  using RefusedFn = std::function<void(const SocketPeer& peer)>;
  using AllowFn = std::function<bool(const SocketPeer& peer)>;

  /// Binds `path`, replacing a stale socket nobody listens on; refuses when a live one exists.
  static core::Result<std::unique_ptr<ControlListener>> Listen(const std::string& path, Handler handler,
                                                               RefusedFn on_refused, AllowFn also_allowed = nullptr);
  ~ControlListener();
  void Stop();

 private:
  ControlListener() = default;
  void AcceptLoop();

  std::string path_;
  int fd_ = -1;
  int stop_fd_ = -1;
  Handler handler_;
  RefusedFn on_refused_;
  AllowFn also_allowed_;
  std::thread accept_thread_;
  std::mutex mutex_;
  struct Connection {
    int fd;
    std::thread thread;
    bool done = false;
  };
  std::list<Connection> connections_;
  std::atomic<bool> stopped_{false};
};

/// Sends every byte on a socket (no SIGPIPE); stops quietly when the peer is gone.
void SendAll(int fd, std::string_view data);

/// Connects to a control socket. kUnavailable when nothing listens there.
core::Result<int> ConnectControl(const std::string& path);

/// One request on the operator socket and its answer (newline-delimited JSON-RPC).
core::Result<nlohmann::json> OperatorCall(const std::string& path, const std::string& method, nlohmann::json params,
                                          std::chrono::milliseconds timeout);

}  // namespace labgate::gateway
