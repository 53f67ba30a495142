#include "gateway/control_socket.h"

#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <spdlog/spdlog.h>

#include "core/json_rpc.h"
#include "core/line_framer.h"
#include "gateway/operator_key.h"
#include "nodes/rpc_peer.h"

namespace labgate::gateway {

using core::ErrorCode;
using core::MakeError;

namespace {

core::Result<sockaddr_un> AddressOf(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return MakeError(ErrorCode::kInvalidArgument, "socket path " + path + " is longer than " +
                                                      std::to_string(sizeof addr.sun_path - 1) +
                                                      " bytes; choose a shorter [gateway] state_dir");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

std::string UserName(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) return found->pw_name;
  return std::to_string(uid);
}

}  // namespace

void SendAll(int fd, std::string_view data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

core::Result<int> ConnectControl(const std::string& path) {
  auto addr = AddressOf(path);
  if (!addr) return addr.error();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return MakeError(ErrorCode::kIo, std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    int err = errno;
    ::close(fd);
    return MakeError(err == EACCES ? ErrorCode::kRefused : ErrorCode::kUnavailable,
                     "cannot connect to " + path + ": " + std::strerror(err));
  }
  return fd;
}

core::Result<std::unique_ptr<ControlListener>> ControlListener::Listen(const std::string& path, Handler handler,
                                                                       RefusedFn on_refused, AllowFn also_allowed) {
  auto addr = AddressOf(path);
  if (!addr) return addr.error();
  if (auto live = ConnectControl(path)) {
    ::close(*live);
    return MakeError(ErrorCode::kUnavailable, "another gateway already serves " + path + "; stop it first");
  }
  ::unlink(path.c_str());  // a stale socket from a gateway that did not shut down cleanly
  std::unique_ptr<ControlListener> l(new ControlListener());
  l->path_ = path;
  l->handler_ = std::move(handler);
  l->on_refused_ = std::move(on_refused);
  l->also_allowed_ = std::move(also_allowed);
  l->fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // Create the socket 0600 from the start: no window in which others could connect.
  mode_t old = ::umask(0177);
  int rc = ::bind(l->fd_, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr);
  ::umask(old);
  if (rc != 0 || ::listen(l->fd_, 64) != 0) {
    int err = errno;
    ::close(l->fd_);
    l->fd_ = -1;
    return MakeError(ErrorCode::kIo, "cannot listen on " + path + ": " + std::strerror(err));
  }
  // Other operators connect by their own uid, which the accept loop checks; the file mode cannot
  // name them, so it lets everyone try.
  ::chmod(path.c_str(), l->also_allowed_ ? 0666 : 0600);
  l->stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  l->accept_thread_ = std::thread([raw = l.get()] { raw->AcceptLoop(); });
  return l;
}

void ControlListener::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, 1000) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    {
      // Join the threads of connections that ended.
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = connections_.begin(); it != connections_.end();) {
        if (it->done) {
          it->thread.join();
          it = connections_.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (!(fds[0].revents & POLLIN)) continue;
    int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      ::close(conn);
      continue;
    }
    SocketPeer peer{cred.uid, cred.pid, UserName(cred.uid), {cred.gid}};
    {
      std::vector<gid_t> groups(256);
      socklen_t size = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
      if (::getsockopt(conn, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &size) == 0) {
        groups.resize(size / sizeof(gid_t));
        peer.groups.insert(peer.groups.end(), groups.begin(), groups.end());
      }
    }
    if (cred.uid != ::getuid() && !(also_allowed_ && also_allowed_(peer))) {
      SendAll(conn, core::jsonrpc::Encode(core::jsonrpc::MakeError(
                         nullptr, nodes::kErrRefused,
                         "this socket serves only " + UserName(::getuid()) + " (uid " + std::to_string(::getuid()) +
                             "), the gateway's own user" + (also_allowed_ ? ", and gateway.operators" : "") +
                             "; you are " + peer.user)) +
                         "\n");
      ::close(conn);
      spdlog::warn("refused a connection on {} from uid {} (pid {})", path_, cred.uid, cred.pid);
      if (on_refused_) on_refused_(peer);
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    connections_.push_back(Connection{conn, {}, false});
    Connection& c = connections_.back();
    c.thread = std::thread([this, &c, peer] {
      handler_(c.fd, peer);
      std::lock_guard<std::mutex> l(mutex_);
      ::close(c.fd);
      c.fd = -1;
      c.done = true;
    });
  }
}

void ControlListener::Stop() {
  if (stopped_.exchange(true)) return;
  std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  accept_thread_.join();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& c : connections_) {
      if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);  // ends the handler's read
    }
  }
  for (auto& c : connections_) c.thread.join();
  connections_.clear();
  ::close(fd_);
  ::close(stop_fd_);
  ::unlink(path_.c_str());
}

ControlListener::~ControlListener() { Stop(); }

core::Result<nlohmann::json> OperatorCall(const std::string& path, const std::string& method, nlohmann::json params,
                                          std::chrono::milliseconds timeout) {
  // The key lives beside the socket, in the state directory; the gateway's own user must present
  // it. Another operator (gateway.operators) cannot read it and needs none: the gateway knows
  // them by uid. So only the socket's owner fails here.
  if (params.is_null()) params = nlohmann::json::object();
  if (!params.is_object()) return MakeError(ErrorCode::kInvalidArgument, "operator call parameters must be an object");
  // The key goes only to a socket of our own uid: a socket someone else put in the state dir
  // must not collect it.
  struct stat socket_stat {};
  if (::stat(path.c_str(), &socket_stat) != 0) {
    return MakeError(ErrorCode::kUnavailable, "cannot reach " + path + ": " + std::strerror(errno));
  }
  if (socket_stat.st_uid == ::geteuid()) {
    auto key = ReadOperatorKey(std::filesystem::path(path).parent_path().string());
    if (!key) return key.error();
    params[kOperatorKeyParam] = *key;
  }
  auto fd = ConnectControl(path);
  if (!fd) return fd.error();
  SendAll(*fd, core::jsonrpc::Encode(core::jsonrpc::MakeRequest(1, method, std::move(params))) + "\n");
  // Room for a `file get` of the largest file [policies.file] max_read_bytes admits, in base64.
  core::LineFramer framer(1024ULL * 1024 * 1024);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::close(*fd);
      return MakeError(ErrorCode::kTimeout, "the gateway did not answer " + method + " in time");
    }
    pollfd p{*fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::read(*fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(*fd);
      return MakeError(ErrorCode::kIo, "the gateway closed the operator connection without answering");
    }
    for (auto& frame : framer.Feed(std::string_view(buf, static_cast<std::size_t>(n)))) {
      auto decoded = core::jsonrpc::Decode(frame.line);
      auto* msg = std::get_if<core::jsonrpc::Message>(&decoded);
      if (msg == nullptr || msg->kind != core::jsonrpc::MessageKind::kResponse) continue;
      ::close(*fd);
      if (msg->error) return nodes::RemoteError(msg->error->code, msg->error->message);
      return msg->result;
    }
  }
}

}  // namespace labgate::gateway
