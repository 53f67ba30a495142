#include "nodes/agent_client.h"

#include <libssh/callbacks.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/json_parse.h"
#include "core/net.h"
#include "nodes/node_key.h"

namespace labgate::nodes {

using core::ErrorCode;
using core::MakeError;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

core::Result<GatewayAddress> ParseGatewayAddress(const std::string& host_port, const std::string& fingerprint) {
  auto colon = host_port.rfind(':');
  GatewayAddress out;
  out.fingerprint = fingerprint;
  out.host = colon == std::string::npos ? host_port : host_port.substr(0, colon);
  if (out.host.size() > 1 && out.host.front() == '[') out.host = out.host.substr(1, out.host.size() - 2);
  if (colon != std::string::npos) {
    try {
      out.port = std::stoi(host_port.substr(colon + 1));
    } catch (...) {
      out.port = -1;
    }
  }
  if (out.host.empty() || out.port < 1 || out.port > 65535) {
    return MakeError(ErrorCode::kInvalidArgument, "gateway address '" + host_port + "' is not HOST:PORT");
  }
  if (fingerprint.rfind("SHA256:", 0) != 0) {
    return MakeError(ErrorCode::kInvalidArgument, "gateway fingerprint '" + fingerprint + "' is not SHA256:...");
  }
  return out;
}

core::Result<int> AgentClient::Dial(const GatewayAddress& gateway, milliseconds timeout) {
  // Blocking once connected, as libssh leaves the sockets it connects itself.
  auto fd = core::ConnectSocket(gateway.host, std::to_string(gateway.port), SOCK_STREAM, timeout);
  if (!fd) {
    return MakeError(fd.error().code == ErrorCode::kTimeout ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
                     "cannot reach the gateway at " + gateway.Display() + ": " + fd.error().message);
  }
  return fd;
}

core::Result<std::unique_ptr<AgentClient>> AgentClient::Connect(const GatewayAddress& gateway, const std::string& user,
                                                                ssh_key key, milliseconds timeout, bool* nothing_listened) {
  const auto started = Steady::now();
  auto fd = Dial(gateway, timeout);
  if (nothing_listened != nullptr) *nothing_listened = !fd && fd.error().code != ErrorCode::kTimeout;
  if (!fd) return fd.error();
  const auto spent = std::chrono::duration_cast<milliseconds>(Steady::now() - started);
  return Connect(gateway, *fd, user, key, std::max(milliseconds(1), timeout - spent));
}

core::Result<std::unique_ptr<AgentClient>> AgentClient::Connect(const GatewayAddress& gateway, int fd,
                                                                const std::string& user, ssh_key key,
                                                                milliseconds timeout) {
  std::unique_ptr<AgentClient> client(new AgentClient());
  // Made before the client is handed out: a task posted before Serve (the hello) must wake the
  // first poll. Made in Serve, the hello's wake-up went to fd -1 and the hello waited for the
  // poll's timeout (250 ms on every reconnect, and a whole heartbeat interval once that timeout
  // followed the next ping).
  client->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (client->wake_fd_ < 0) {
    ::close(fd);
    return MakeError(ErrorCode::kIo, std::string("eventfd: ") + std::strerror(errno));
  }
  ssh_session s = ssh_new();
  client->session_ = s;
  // Before the key exchange: libssh sets TCP_NODELAY only on sockets it connects itself, and
  // with Nagle each round trip of the handshake waited for a delayed ACK.
  TuneSocket(fd);
  socket_t sock = fd;  // the session owns it from here: freeing the session closes it
  ssh_options_set(s, SSH_OPTIONS_FD, &sock);
  const std::string where = gateway.Display();
  int verbosity = SSH_LOG_NOLOG;
  int one = 1, zero = 0;
  long secs = static_cast<long>(timeout.count() / 1000), usecs = static_cast<long>((timeout.count() % 1000) * 1000);
  ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  ssh_options_set(s, SSH_OPTIONS_HOST, gateway.host.c_str());
  ssh_options_set(s, SSH_OPTIONS_PORT, &gateway.port);
  ssh_options_set(s, SSH_OPTIONS_USER, user.c_str());
  ssh_options_set(s, SSH_OPTIONS_NODELAY, &one);
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &zero);
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &secs);
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usecs);
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
  ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, "ssh-ed25519");
  if (ssh_connect(s) != SSH_OK) {
    const std::string error = ssh_get_error(s);
    // A gateway that locked this address out says so where its version line would be, and
    // libssh hands that line back as a protocol mismatch.
    if (auto said = error.find(kLockedOutPrefix); said != std::string::npos) {
      std::string reason = error.substr(said + std::strlen(kLockedOutPrefix));
      while (!reason.empty() && (reason.back() == '\r' || reason.back() == '\n')) reason.pop_back();
      return MakeError(ErrorCode::kUnavailable, "the gateway at " + where + " refuses this address: " + reason);
    }
    return MakeError(ErrorCode::kUnavailable, "the gateway at " + where + " did not answer: " + error);
  }
  ssh_key server_key = nullptr;
  if (ssh_get_server_publickey(s, &server_key) != SSH_OK) {
    return MakeError(ErrorCode::kRefused, "the gateway at " + where + " sent no host key");
  }
  std::string fp = Fingerprint(server_key);
  ssh_key_free(server_key);
  if (fp != gateway.fingerprint) {
    return MakeError(ErrorCode::kRefused,
                     "the gateway at " + where + " presented host key " + fp + ", but this node expects " +
                         gateway.fingerprint + "; refusing to connect. Someone may be impersonating the gateway; if it "
                         "was reinstalled on purpose, pair again with a new code");
  }
  int rc = ssh_userauth_publickey(s, user.c_str(), key);
  if (rc == SSH_AUTH_DENIED) {
    return MakeError(ErrorCode::kRefused,
                     "the gateway at " + where + " refused the login of " + user + " with key " + Fingerprint(key) +
                         " (revoked, rotated, or never paired); stop this agent and pair again with a new code "
                         "(`labgate node pair CODE`)");
  }
  if (rc != SSH_AUTH_SUCCESS) {
    return MakeError(ErrorCode::kUnavailable,
                     "the gateway at " + where + " did not finish the login of " + user + ": " + ssh_get_error(s));
  }
  client->channel_ = ssh_channel_new(s);
  if (ssh_channel_open_session(client->channel_) != SSH_OK ||
      ssh_channel_request_subsystem(client->channel_, kSubsystem) != SSH_OK) {
    return MakeError(ErrorCode::kUnavailable, "the gateway at " + where + " did not open the agent channel: " +
                                                  ssh_get_error(s));
  }
  return client;
}

AgentClient::~AgentClient() {
  if (event_) {
    ssh_event_remove_fd(event_, wake_fd_);
    ssh_event_remove_session(event_, session_);
    ssh_event_free(event_);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (channel_ && callbacks_set_) ssh_remove_channel_callbacks(channel_, &channel_cb_);
  if (channel_) ssh_channel_free(channel_);
  if (session_) {
    ssh_disconnect(session_);
    ssh_free(session_);
  }
}

void AgentClient::Send(std::string bytes) {
  if (broken_) return;
  out_.Append(std::move(bytes));
  if (polling_) return;
  if (!out_.Flush(channel_)) {
    broken_ = true;
    close_reason_ = "the channel broke while sending";
  }
}

void AgentClient::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(tasks_mutex_);
    if (ended_) return;
    tasks_.push_back(std::move(task));
  }
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void AgentClient::Watch(int fd, std::function<void()> on_ready) {
  auto [it, added] = watched_.emplace(fd, Watched{this, std::move(on_ready)});
  if (!added || event_ == nullptr) return;
  ssh_event_add_fd(
      event_, fd, POLLIN,
      [](socket_t, int, void* userdata) {
        auto* watched = static_cast<Watched*>(userdata);
        if (!watched->client->polling_) watched->client->again_ = true;
        watched->on_ready();
        return 0;
      },
      &it->second);
}

void AgentClient::Unwatch(int fd) {
  auto it = watched_.find(fd);
  if (it == watched_.end()) return;
  if (event_ != nullptr) ssh_event_remove_fd(event_, fd);
  watched_.erase(it);
}

core::Status AgentClient::Serve(RpcPeer::RequestHandler on_request, RpcPeer::NotificationHandler on_notification,
                                const core::CancelToken& stop) {
  on_request_ = std::move(on_request);
  on_notification_ = std::move(on_notification);
  rpc_ = std::make_unique<RpcPeer>([this](std::string bytes) { Send(std::move(bytes)); },
                                   [this](const Json& id, const std::string& m, const Json& p) { on_request_(id, m, p); },
                                   [this](const std::string& m, const Json& p) {
                                     if (m == "node.closing") close_reason_ = core::StringOr(p, "reason");
                                     if (on_notification_) on_notification_(m, p);
                                   },
                                   kMaxFrameBytes);
  ssh_set_blocking(session_, 0);
  ssh_channel_callbacks_struct& cb = channel_cb_;
  ssh_callbacks_init(&cb);
  cb.userdata = this;
  cb.channel_data_function = [](ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* u) -> int {
    auto* self = static_cast<AgentClient*>(u);
    if (is_stderr) return static_cast<int>(len);
    if (!self->polling_) self->again_ = true;
    self->last_rx_ = Steady::now();
    self->rpc_->Feed(std::string_view(static_cast<const char*>(data), len));
    return static_cast<int>(len);
  };
  cb.channel_eof_function = [](ssh_session, ssh_channel, void* u) { static_cast<AgentClient*>(u)->closed_ = true; };
  cb.channel_close_function = [](ssh_session, ssh_channel, void* u) { static_cast<AgentClient*>(u)->closed_ = true; };
  ssh_set_channel_callbacks(channel_, &cb);
  callbacks_set_ = true;

  event_ = ssh_event_new();
  ssh_event_add_session(event_, session_);
  ssh_event_add_fd(
      event_, wake_fd_, POLLIN,
      [](socket_t fd, int, void* userdata) {
        auto* self = static_cast<AgentClient*>(userdata);
        std::uint64_t n;
        (void)!::read(fd, &n, sizeof n);
        if (!self->polling_) self->again_ = true;  // a task posted after the swap: run it
        return 0;
      },
      this);
  ssh_event_add_fd(event_, stop.fd(), POLLIN, [](socket_t, int, void*) { return 0; }, nullptr);

  last_rx_ = Steady::now();
  auto last_ping = Steady::now();
  // The gateway's pings are the heartbeat and the answers this node's; it pings itself only
  // after two quiet intervals (a gateway that does not ping, or one that fell behind).
  auto own_ping_at = [&] { return std::max(last_rx_ + 2 * kHeartbeatInterval, last_ping + kHeartbeatInterval); };
  auto wanted = Steady::time_point::max();  // when the after-pass hook next wants a pass
  core::Status result;
  for (;;) {
    if (stop.cancelled()) break;
    if (closed_ || broken_ || !ssh_is_connected(session_)) {
      result = MakeError(ErrorCode::kIo, "the gateway closed the connection" +
                                             (close_reason_.empty() ? std::string() : " (" + close_reason_ + ")"));
      break;
    }
    const auto now = Steady::now();
    if (now - last_rx_ > kHeartbeatTimeout) {
      result = MakeError(ErrorCode::kTimeout, "the gateway was silent for " +
                                                  std::to_string(kHeartbeatTimeout.count() / 1000) + " s");
      break;
    }
    if (now >= own_ping_at()) {
      last_ping = now;
      rpc_->Request("ping", Json::object(), [](core::Result<Json>) {});
    }
    // Sleep until the next ping is due or the silence limit passes: posted tasks, the stop token
    // and the gateway's bytes all wake the poll, so a fixed short tick would only cost an idle
    // fleet CPU (250 sessions in one process spent 2.4% of a core waking 4 times a second).
    // While output waits for the gateway's window, look again soon.
    const auto next = std::min({own_ping_at(), last_rx_ + kHeartbeatTimeout, wanted});
    const auto wait_ms = out_.empty() ? std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1 : 50;
    const int timeout = std::exchange(again_, false)
                            ? 0
                            : static_cast<int>(std::clamp<std::int64_t>(wait_ms, 1, kHeartbeatTimeout.count()));
    polling_ = true;
    const int polled = ssh_event_dopoll(event_, timeout);
    polling_ = false;
    if (polled == SSH_ERROR && !ssh_is_connected(session_)) continue;
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(tasks_mutex_);
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) t();
    if (after_pass_) wanted = after_pass_();
    if (!out_.empty()) Send("");
  }
  ssh_event_remove_fd(event_, stop.fd());
  {
    std::lock_guard<std::mutex> lock(tasks_mutex_);
    ended_ = true;
    tasks_.clear();
  }
  rpc_->FailAll(MakeError(ErrorCode::kIo, "the link to the gateway ended"));
  return result;
}

}  // namespace labgate::nodes
