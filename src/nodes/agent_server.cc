#include "nodes/agent_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libssh/callbacks.h>
#include <libssh/server.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <list>
#include <unordered_map>
#include <spdlog/spdlog.h>

#include "core/json_rpc.h"

namespace labgate::nodes {

using core::ErrorCode;
using core::MakeError;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

bool IsValidNodeId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
  });
}

std::vector<std::string> Strings(const Json& params, const char* key) {
  std::vector<std::string> out;
  auto it = params.find(key);
  if (it == params.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string Str(const Json& params, const char* key) {
  auto it = params.find(key);
  return it != params.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string PeerOf(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

// "127.0.0.1:5555" -> "127.0.0.1"; "::1:5555" -> "::1".
std::string AddressOf(const std::string& peer) { return peer.substr(0, peer.rfind(':')); }

/// The result of a Call, shared by the waiting thread and the loop that completes it.
struct CallState {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  bool listening = true;  // cleared when the caller stops waiting: no more notifications
  std::optional<core::Result<Json>> result;
  std::int64_t request_id = 0;
  RpcPeer::NotificationHandler on_notification;

  void Complete(core::Result<Json> r) {
    std::lock_guard<std::mutex> lock(mutex);
    if (done) return;
    result.emplace(std::move(r));
    done = true;
    cv.notify_all();
  }
};

}  // namespace

struct AgentServer::Conn {
  AgentServer* server = nullptr;
  Loop* loop = nullptr;
  std::uint64_t serial = 0;
  ssh_session session = nullptr;
  ssh_channel channel = nullptr;
  std::string peer;
  ssh_server_callbacks_struct server_cb{};
  ssh_channel_callbacks_struct channel_cb{};
  std::string user;
  std::optional<PublicKey> key;
  bool authenticated = false;
  bool pairing = false;
  bool attached = false;
  bool hello = false;
  bool refusal_reported = false;
  bool auth_attempted = false;  // it offered a key: timing out counts as a failed login
  bool holds_login_slot = false;  // counted in logging_in_ until it logs in or ends
  int pair_requests = 0;
  std::unique_ptr<RpcPeer> rpc;
  ChannelOut out;
  bool out_pending = false;
  // The session's own libssh event: a poll inside a libssh call (every write flushes by polling)
  // sees this session alone, so no other session's callback runs in it and no other session's
  // error lands on this one. The loop's epoll says when to poll it.
  ssh_event event = nullptr;
  int fd = -1;                 // the socket, as registered with the loop's epoll
  std::uint32_t interest = 0;  // what epoll watches for it now
  bool noted = false;          // in the loop's attention list
  std::list<std::unique_ptr<Conn>>::iterator self;
  Steady::time_point login_deadline;
  Steady::time_point last_rx;
  Steady::time_point last_ping;
  bool closing = false;
  std::string close_reason;
  std::optional<Json> waiting_pair_id;
  std::string waiting_pair_node;

  void Send(std::string bytes);
};

struct AgentServer::Loop {
  int epoll_fd = -1;
  int wake_fd = -1;
  std::thread thread;
  std::mutex mutex;
  std::vector<std::function<void()>> tasks;
  bool stopping = false;  // loop thread only
  // Loop thread only. How deep the loop is in libssh calls. Inside one, Send only queues and the
  // loop writes the queue once the call returned: no libssh call is ever made from a callback.
  // A poll nested in a callback is not safe in libssh 0.10: a session that ends inside it is
  // taken out of the poll context's arrays while the outer poll still walks them by the index and
  // count it read before (poll.c and socket.c of 0.10.6). Nesting also overflowed the stack once.
  int depth = 0;
  std::list<std::unique_ptr<Conn>> conns;
  std::unordered_map<std::uint64_t, Conn*> by_serial;  // a call finds its session without a walk
  // Sessions that queued output, are closing, or were just polled: the loop settles them after
  // each pass, without walking every session.
  std::vector<Conn*> attention;
  // Sessions handed to this loop and not yet reaped, key exchanges included; the accept thread
  // reads it to choose a loop.
  std::atomic<int> sessions{0};
  Steady::time_point last_tick;

  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      tasks.push_back(std::move(task));
    }
    std::uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
  }
  Conn* Find(std::uint64_t serial) {
    auto it = by_serial.find(serial);
    return it == by_serial.end() ? nullptr : it->second;
  }
  void Note(Conn& c) {
    if (c.noted) return;
    c.noted = true;
    attention.push_back(&c);
  }
  /// Polls the session alone, without waiting.
  void Service(Conn& c) {
    ++depth;
    ssh_event_dopoll(c.event, 0);
    --depth;
  }
  /// After a session was polled or written to: lets libssh finish a write it left for the next
  /// poll (it asks for POLLOUT after every write), then tells epoll what to wait for.
  void Settle(Conn& c) {
    for (int i = 0; i < 2 && !c.closing && (ssh_get_poll_flags(c.session) & SSH_WRITE_PENDING); ++i) Service(c);
    if (ssh_get_fd(c.session) != c.fd) {
      // libssh closed the socket (the peer hung up or broke the protocol); epoll dropped it.
      c.fd = -1;
      if (!c.closing) {
        c.closing = true;
        c.close_reason = std::string("the connection dropped: ") + ssh_get_error(c.session);
      }
    }
    if (c.closing) {
      Note(c);  // to be reaped
      return;
    }
    const std::uint32_t want = EPOLLIN | ((ssh_get_poll_flags(c.session) & SSH_WRITE_PENDING) ? EPOLLOUT : 0u);
    if (want == c.interest) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = &c;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev) == 0) c.interest = want;
  }
};

void AgentServer::Conn::Send(std::string bytes) {
  if (channel == nullptr || closing) return;
  out.Append(std::move(bytes));
  if (pairing && out.size() > kMaxPairingUnsentBytes) {
    // Anyone may open a pairing session: one that keeps asking without reading the answers
    // would otherwise have the gateway hold them all.
    closing = true;
    close_reason = "the pairing session left " + std::to_string(out.size()) + " bytes of answers unread";
    loop->Note(*this);
    return;
  }
  if (loop->depth > 0) {
    out_pending = true;
    loop->Note(*this);
    return;
  }
  ++loop->depth;
  const bool ok = out.Flush(channel);
  --loop->depth;
  if (!ok) {
    closing = true;
    close_reason = std::string("the channel broke while sending: ") + ssh_get_error(session);
    loop->Note(*this);
  }
  // What the channel's window did not take goes when the node adjusts it: that arrives as input,
  // and the loop tries again once it polled this session.
  out_pending = !out.empty();
  loop->Settle(*this);
}

AgentServer::AgentServer(PairingStore& store, AgentServerSettings settings, AgentObserver& observer)
    : store_(store),
      settings_(std::move(settings)),
      observer_(observer),
      gate_({settings_.allowed_networks, settings_.auth_fail_limit, settings_.auth_fail_window}) {}

void AgentServer::UpdateSourceRules(std::vector<std::string> allowed_networks, int auth_fail_limit,
                                    std::chrono::seconds auth_fail_window) {
  gate_.Update({std::move(allowed_networks), auth_fail_limit, auth_fail_window});
}

AgentServer::~AgentServer() { Stop(); }

void AgentServer::Emit(AgentEvent event) { observer_.OnAgentEvent(event); }

void AgentServer::TellLockedOut(int fd, const std::string& reason) {
  // SSH lets a server send other lines before its version line (RFC 4253, 4.2): a labgate agent
  // shows this one (libssh reports it as a protocol mismatch), and so does `ssh -v`. Best
  // effort and never blocking: the accept thread must not wait on a refused source. Reading
  // what the client already sent keeps the close from turning into a reset that could discard
  // the line. Only lockouts are explained: the allowed_networks list is not for strangers.
  const std::string line = std::string(kLockedOutPrefix) + reason + "\r\n";
  (void)::send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  char sink[512];
  while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  ::shutdown(fd, SHUT_WR);
}

core::Status AgentServer::Start() {
  bool created = false;
  auto key = LoadOrCreateKeyFile(settings_.host_key_path, &created);
  if (!key) return MakeError(key.error().code, "gateway host key: " + key.error().message);
  fingerprint_ = Fingerprint(key->get());
  if (created) spdlog::info("created gateway host key {} ({})", settings_.host_key_path, fingerprint_);

  auto colon = settings_.listen.rfind(':');
  if (colon == std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "[gateway] listen = \"" + settings_.listen + "\" needs host:port");
  }
  std::string host = settings_.listen.substr(0, colon);
  std::string port = settings_.listen.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return MakeError(ErrorCode::kInvalidArgument, "[gateway] listen = \"" + settings_.listen + "\": " + gai_strerror(rc));
  }
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (fd < 0 || ::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    freeaddrinfo(found);
    if (fd >= 0) ::close(fd);
    return MakeError(ErrorCode::kUnavailable, "cannot listen for nodes on " + settings_.listen + ": " +
                                                  std::strerror(err) +
                                                  (err == EADDRINUSE ? " (is another labgate gateway running?)" : ""));
  }
  freeaddrinfo(found);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  address_ = PeerOf(bound);
  if (bound.ss_family == AF_INET6) address_ = "[" + address_.substr(0, address_.rfind(':')) + "]" + address_.substr(address_.rfind(':'));
  listen_fd_ = fd;

  ssh_bind bind = ssh_bind_new();
  int process_config = 0;
  int verbosity = SSH_LOG_NOLOG;
  ssh_bind_options_set(bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &process_config);
  ssh_bind_options_set(bind, SSH_BIND_OPTIONS_LOG_VERBOSITY, &verbosity);
  if (ssh_bind_options_set(bind, SSH_BIND_OPTIONS_HOSTKEY, settings_.host_key_path.c_str()) != SSH_OK) {
    ssh_bind_free(bind);
    return MakeError(ErrorCode::kIo, "libssh cannot use host key " + settings_.host_key_path);
  }
  ssh_bind_set_fd(bind, fd);
  bind_ = bind;

  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  slot_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  logging_in_.store(0);
  for (int i = 0; i < std::clamp(settings_.loops, 1, static_cast<int>(kMaxLoops)); ++i) StartLoop();
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  started_ = true;
  spdlog::info("listening for nodes on {} (host key {})", address_, fingerprint_);
  return core::Status();
}

AgentServer::Loop* AgentServer::StartLoop() {
  auto loop = std::make_unique<Loop>();
  loop->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  loop->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.ptr = nullptr;  // the one entry that is not a session
  ::epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->wake_fd, &wake);
  Loop* raw = loop.get();
  raw->thread = std::thread([this, raw] {
    raw->last_tick = Steady::now();
    std::vector<epoll_event> ready(256);
    while (!raw->stopping) {
      // epoll, not libssh's poll over every session: a pass costs what is ready, not what is
      // connected. Queued output and closing sessions wait for no one.
      const int timeout_ms = raw->attention.empty() ? 250 : 0;
      const int n = ::epoll_wait(raw->epoll_fd, ready.data(), static_cast<int>(ready.size()), timeout_ms);
      for (int i = 0; i < n; ++i) {
        if (ready[i].data.ptr == nullptr) {
          std::uint64_t count;
          (void)!::read(raw->wake_fd, &count, sizeof count);
          continue;
        }
        Conn& c = *static_cast<Conn*>(ready[i].data.ptr);
        raw->Service(c);
        if ((ready[i].events & (EPOLLHUP | EPOLLERR)) && !c.closing && ssh_get_fd(c.session) == c.fd) {
          // libssh read nothing more and kept the socket: level-triggered epoll would report it
          // again and again.
          c.closing = true;
          c.close_reason = "the connection dropped";
        }
        raw->Note(c);
      }
      std::vector<std::function<void()>> tasks;
      {
        std::lock_guard<std::mutex> lock(raw->mutex);
        tasks.swap(raw->tasks);
      }
      for (auto& t : tasks) t();
      std::vector<Conn*> todo;
      todo.swap(raw->attention);
      for (Conn* c : todo) {
        c->noted = false;
        if (c->out_pending && !c->closing) c->Send("");  // settles it
        if (c->closing) {
          Reap(*raw, *c);
          // Whatever noted it again meanwhile must not find it.
          if (c->noted) raw->attention.erase(std::find(raw->attention.begin(), raw->attention.end(), c));
          raw->by_serial.erase(c->serial);
          raw->conns.erase(c->self);
        } else if (!c->out_pending) {
          raw->Settle(*c);
        }
      }
      if (Steady::now() - raw->last_tick >= milliseconds(250)) Tick(*raw);
    }
    for (auto& c : raw->conns) {
      if (!c->closing) {
        c->closing = true;
        c->close_reason = "the gateway is shutting down";
      }
      Reap(*raw, *c);
    }
    raw->conns.clear();
    raw->by_serial.clear();
  });
  const std::size_t index = loop_count_.load();
  loops_[index] = std::move(loop);
  loop_count_.store(index + 1);
  return raw;
}

AgentServer::Loop& AgentServer::PickLoop() {
  Loop* least = nullptr;
  const std::size_t count = loop_count_.load();
  for (std::size_t i = 0; i < count; ++i) {
    Loop* l = loops_[i].get();
    if (least == nullptr || l->sessions.load() < least->sessions.load()) least = l;
  }
  if (least->sessions.load() >= std::max(1, settings_.sessions_per_loop) && count < kMaxLoops) {
    least = StartLoop();
    spdlog::debug("node listener: loop {} started ({} sessions per loop)", count + 1, settings_.sessions_per_loop);
  }
  return *least;
}

void AgentServer::Stop() {
  if (!started_.exchange(false)) return;
  std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  accept_thread_.join();
  // Nodes trying to come back now are refused at once instead of waiting in a backlog no one
  // will accept from (a node that sees "refused" knows the gateway is away and spent nothing).
  ::shutdown(listen_fd_, SHUT_RDWR);
  const std::size_t count = loop_count_.load();
  for (std::size_t i = 0; i < count; ++i) {
    Loop* raw = loops_[i].get();
    raw->Post([raw] { raw->stopping = true; });
  }
  for (std::size_t i = 0; i < count; ++i) {
    Loop& loop = *loops_[i];
    loop.thread.join();
    ::close(loop.epoll_fd);
    ::close(loop.wake_fd);
  }
  loop_count_.store(0);
  for (auto& loop : loops_) loop.reset();
  ssh_bind_free(static_cast<ssh_bind>(bind_));  // closes the listening socket it was given
  bind_ = nullptr;
  listen_fd_ = -1;
  ::close(stop_fd_);
  ::close(slot_fd_);
}

void AgentServer::AcceptLoop() {
  const int slots = std::max(1, settings_.logins_in_flight);
  for (;;) {
    // Every slot taken: wait for one to free, and leave new connections in the backlog.
    const bool full = logging_in_.load() >= slots;
    pollfd fds[2] = {{full ? slot_fd_ : listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("node listener poll failed: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (full) {
      std::uint64_t count;
      (void)!::read(slot_fd_, &count, sizeof count);
      continue;
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        spdlog::error("node listener: out of file descriptors; raise LimitNOFILE");
        std::this_thread::sleep_for(milliseconds(100));
      }
      continue;
    }
    const std::string peer = PeerOf(addr);
    // Before any SSH byte: a source outside allowed_networks, or one that keeps failing to log
    // in, never gets a handshake (no banner, no key exchange, no CPU spent on crypto).
    if (auto refusal = gate_.Admit(AddressOf(peer), SourceGate::Clock::now())) {
      if (refusal->rule == "gateway.auth_fail_limit") TellLockedOut(fd, refusal->reason);
      ::close(fd);
      if (refusal->report) {
        Json data = {{"rule", refusal->rule}};
        if (refusal->suppressed > 0) data["suppressed"] = refusal->suppressed;
        Emit({"connection.refused", "", "", peer, refusal->reason, data});
      }
      continue;
    }
    TuneSocket(fd);
    ssh_session session = ssh_new();
    int verbosity = SSH_LOG_NOLOG;
    ssh_options_set(session, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
    if (ssh_bind_accept_fd(static_cast<ssh_bind>(bind_), session, fd) != SSH_OK) {
      spdlog::warn("node listener: could not take a connection from {}: {}", PeerOf(addr),
                   ssh_get_error(static_cast<ssh_bind>(bind_)));
      // libssh owns the descriptor once it has set it on the session (a later step, such as
      // copying the host keys, can still fail): freeing the session closes it then, and a
      // second close could close a descriptor another thread has opened since.
      const bool taken = ssh_get_fd(session) == fd;
      ssh_free(session);
      if (!taken) ::close(fd);
      continue;
    }
    Loop& loop = PickLoop();
    ++loop.sessions;
    ++logging_in_;
    loop.Post([this, &loop, session, peer] { Adopt(loop, session, peer); });
  }
}

void AgentServer::Adopt(Loop& loop, ssh_session session, std::string peer) {
  auto conn = std::make_unique<Conn>();
  Conn& c = *conn;
  c.server = this;
  c.loop = &loop;
  c.serial = next_serial_++;
  c.session = session;
  c.peer = std::move(peer);
  c.holds_login_slot = true;
  c.login_deadline = Steady::now() + settings_.login_timeout;
  c.last_rx = c.last_ping = Steady::now();
  c.rpc = std::make_unique<RpcPeer>(
      [&c](std::string bytes) { c.Send(std::move(bytes)); },
      [this, &c](const Json& id, const std::string& method, const Json& params) { OnRequest(c, id, method, params); },
      [](const std::string&, const Json&) {}, kMaxFrameBytes);

  ssh_callbacks_init(&c.server_cb);
  c.server_cb.userdata = &c;
  c.server_cb.auth_pubkey_function = [](ssh_session, const char* user, ssh_key_struct* key, char state, void* ud) {
    Conn* self = static_cast<Conn*>(ud);
    return self->server->AuthPubkey(*self, user, key, state);
  };
  c.server_cb.channel_open_request_session_function = [](ssh_session s, void* ud) -> ssh_channel {
    Conn* self = static_cast<Conn*>(ud);
    if (!self->authenticated || self->channel != nullptr) return nullptr;
    self->channel = ssh_channel_new(s);
    ssh_callbacks_init(&self->channel_cb);
    self->channel_cb.userdata = self;
    self->channel_cb.channel_subsystem_request_function = [](ssh_session, ssh_channel ch, const char* name, void* u) {
      Conn* me = static_cast<Conn*>(u);
      if (ch != me->channel || std::strcmp(name, kSubsystem) != 0 || me->attached) return static_cast<int>(SSH_ERROR);
      me->attached = true;
      me->last_rx = Steady::now();
      return static_cast<int>(SSH_OK);
    };
    self->channel_cb.channel_data_function = [](ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                                                void* u) -> int {
      Conn* me = static_cast<Conn*>(u);
      if (!me->attached || is_stderr || me->closing) return static_cast<int>(len);
      me->last_rx = Steady::now();
      me->rpc->Feed(std::string_view(static_cast<const char*>(data), len));
      return static_cast<int>(len);
    };
    self->channel_cb.channel_eof_function = [](ssh_session, ssh_channel, void* u) {
      Conn* me = static_cast<Conn*>(u);
      if (!me->closing) me->close_reason = "the node closed the channel";
      me->closing = true;
    };
    self->channel_cb.channel_close_function = [](ssh_session, ssh_channel, void* u) {
      Conn* me = static_cast<Conn*>(u);
      if (!me->closing) me->close_reason = "the node closed the channel";
      me->closing = true;
    };
    ssh_set_channel_callbacks(self->channel, &self->channel_cb);
    return self->channel;
  };
  ssh_set_server_callbacks(session, &c.server_cb);
  ssh_set_auth_methods(session, SSH_AUTH_METHOD_PUBLICKEY);
  ssh_set_blocking(session, 0);
  ++loop.depth;
  int rc = ssh_handle_key_exchange(session);
  --loop.depth;
  if (rc == SSH_ERROR) {
    spdlog::debug("key exchange with {} failed: {}", c.peer, ssh_get_error(session));
    ssh_disconnect(session);
    ssh_free(session);
    --loop.sessions;
    ReleaseLoginSlot(c);
    return;
  }
  c.event = ssh_event_new();
  ssh_event_add_session(c.event, session);
  c.fd = ssh_get_fd(session);
  epoll_event ev{};
  ev.events = c.interest = EPOLLIN;
  ev.data.ptr = &c;
  if (::epoll_ctl(loop.epoll_fd, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
    spdlog::warn("node listener: cannot watch the connection from {}: {}", c.peer, std::strerror(errno));
    ssh_event_remove_session(c.event, session);
    ssh_event_free(c.event);
    ssh_disconnect(session);
    ssh_free(session);
    --loop.sessions;
    ReleaseLoginSlot(c);
    return;
  }
  loop.conns.push_back(std::move(conn));
  c.self = std::prev(loop.conns.end());
  loop.by_serial[c.serial] = &c;
  loop.Note(c);  // the key exchange may have left its first packets for the next poll
}

int AgentServer::AuthPubkey(Conn& c, const char* user_c, ssh_key key, char state) {
  const std::string user = user_c ? user_c : "";
  const std::string fp = Fingerprint(key);
  c.auth_attempted = true;
  auto refuse = [&](const std::string& why) {
    if (!c.refusal_reported) {
      c.refusal_reported = true;
      gate_.RecordFailure(AddressOf(c.peer), SourceGate::Clock::now());
      Emit({"auth.refused", user == kPairUser ? "" : user, fp, c.peer, why});
    }
    return static_cast<int>(SSH_AUTH_DENIED);
  };
  if (ssh_key_type(key) != SSH_KEYTYPE_ED25519) return refuse("only Ed25519 node keys are accepted");
  // A pairing login proves only that the device holds its new key; the session can do nothing but
  // send pair.request, whose code (or the operator's approval) decides. Refusing it here would
  // leave the device with "login refused" instead of saying why its code was not accepted.
  if (user != kPairUser) {
    if (auto ok = store_.CheckKey(user, fp); !ok) return refuse(ok.error().message);
  }
  // The first call only offers the key; it counts as a login once libssh verified the signature.
  if (state == SSH_PUBLICKEY_STATE_NONE) return SSH_AUTH_SUCCESS;
  if (state != SSH_PUBLICKEY_STATE_VALID) return refuse("the signature over the key did not verify");
  auto pub = PublicKeyOf(key);
  if (!pub) return refuse(pub.error().message);
  c.user = user;
  c.key = *pub;
  c.pairing = user == kPairUser;
  if (c.pairing) c.rpc->SetMaxFrameBytes(kMaxPairingFrameBytes);
  c.authenticated = true;
  ReleaseLoginSlot(c);
  return SSH_AUTH_SUCCESS;
}

void AgentServer::OnRequest(Conn& c, const Json& id, const std::string& method, const Json& params) {
  if (method == "ping") {
    c.rpc->Respond(id, Json::object());
  } else if (method == "node.hello" && !c.pairing) {
    HandleHello(c, id, params);
  } else if (method == "pair.request" && c.pairing) {
    HandlePairRequest(c, id, params);
  } else {
    c.rpc->RespondError(id, core::jsonrpc::kMethodNotFound,
                        "the gateway does not take " + method + (c.pairing ? " during pairing" : " from nodes"));
  }
}

void AgentServer::HandleHello(Conn& c, const Json& id, const Json& params) {
  if (Str(params, "nodeId") != c.user) {
    c.rpc->RespondError(id, kErrRefused, "this session logged in as " + c.user + ", not " + Str(params, "nodeId"));
    Close(c, "hello named another node");
    return;
  }
  auto record = store_.Find(c.user);
  if (!record || record->revoked() || record->key.fingerprint != c.key->fingerprint) {
    c.rpc->RespondError(id, kErrRefused, "node " + c.user + " is no longer paired with this key");
    Close(c, "key no longer valid");
    return;
  }
  c.hello = true;
  NodeLink link{c.peer, std::chrono::system_clock::now(),
                {Str(params, "platform"), Str(params, "hostname"), Str(params, "version")}};
  std::optional<Online> replaced;
  {
    std::lock_guard<std::mutex> lock(online_mutex_);
    auto it = online_.find(c.user);
    if (it != online_.end()) replaced = it->second;
    online_[c.user] = Online{c.loop, c.serial, link};
  }
  if (replaced) {
    Loop* old_loop = replaced->loop;
    std::uint64_t serial = replaced->serial;
    auto drop = [this, old_loop, serial] {
      if (Conn* old = old_loop->Find(serial)) Close(*old, "replaced by a newer connection of the same node");
    };
    if (old_loop == c.loop) drop(); else old_loop->Post(drop);
  }
  store_.MarkSeen(c.user);
  c.rpc->Respond(id, {{"nodeId", c.user},
                      {"capabilities", record->capabilities},
                      {"heartbeatMs", settings_.heartbeat_interval.count()},
                      {"gatewayVersion", settings_.version}});
  Emit({"node.online", c.user, c.key->fingerprint, c.peer, "connected",
        {{"platform", link.device.platform}, {"hostname", link.device.hostname}, {"version", link.device.version}}});
}

void AgentServer::HandlePairRequest(Conn& c, const Json& id, const Json& params) {
  const std::string node_id = Str(params, "nodeId");
  if (++c.pair_requests > 1) {
    // A device pairs once per session; a session that asks again is filling the queue.
    Emit({"pairing.refused", node_id, c.key->fingerprint, c.peer, "a second pair.request in one session",
          Json{{"rule", "pairing.one-per-session"}}});
    c.rpc->RespondError(id, kErrRefused, "one pair.request per session");
    Close(c, "a second pair.request in one session");
    return;
  }
  const DeviceInfo device{Str(params, "platform"), Str(params, "hostname"), Str(params, "version")};
  const std::vector<std::string> caps = Strings(params, "capabilities");
  const std::string secret = Str(params, "secret");
  const Json data = {{"platform", device.platform}, {"hostname", device.hostname}, {"version", device.version},
                     {"capabilities", caps}, {"withCode", !secret.empty()}};
  if (!IsValidNodeId(node_id)) {
    c.rpc->RespondError(id, kErrRefused, "node ids are 1-64 letters, digits, '-', '_' or '.'");
    return;
  }
  if (!secret.empty()) {
    auto paired = store_.Redeem(secret, node_id, *c.key, caps, device);
    if (!paired) {
      Emit({"pairing.refused", node_id, c.key->fingerprint, c.peer, paired.error().message, data});
      c.rpc->RespondError(id, kErrRefused, paired.error().message);
      return;
    }
    Emit({"pairing.paired", node_id, c.key->fingerprint, c.peer, "paired with a code",
          {{"capabilities", paired->capabilities}, {"device", data}}});
    // A code for an id that was already paired gives the id to this key: a device still
    // linked with the old one is cut off now, not when the new one first says hello.
    Disconnect(node_id, "node " + node_id + " was paired again, with another key", c.key->fingerprint);
    c.rpc->Respond(id, {{"status", "paired"}, {"nodeId", node_id}, {"capabilities", paired->capabilities}});
    return;
  }
  if (!settings_.allow_pairing) {
    const std::string why = "this gateway pairs only with codes ([gateway] allow_pairing = false); ask the operator "
                            "to run `labgate pair new --node " + node_id + "`";
    Emit({"pairing.refused", node_id, c.key->fingerprint, c.peer, why, data});
    c.rpc->RespondError(id, kErrRefused, why);
    return;
  }
  if (settings_.listed && !settings_.listed(node_id)) {
    const std::string why = "no [[nodes]] entry has id \"" + node_id +
                            "\" on this gateway, so the request could never be approved; ask its operator to add one "
                            "(id, capabilities) or pair with the id it lists";
    Emit({"pairing.refused", node_id, c.key->fingerprint, c.peer, why, data});
    c.rpc->RespondError(id, kErrRefused, why);
    return;
  }
  if (auto existing = store_.Find(node_id); existing && !existing->revoked() &&
                                            existing->key.fingerprint == c.key->fingerprint) {
    c.rpc->Respond(id, {{"status", "paired"}, {"nodeId", node_id}, {"capabilities", existing->capabilities}});
    return;
  }
  const std::string source = AddressOf(c.peer);
  {
    // The operator's queue is bounded, in all and per address, so no source can flood it.
    const auto pending = store_.Pending();
    std::size_t from_source = 0;
    {
      std::lock_guard<std::mutex> lock(pending_sources_mutex_);
      for (const auto& p : pending) {
        auto it = pending_sources_.find(p.id);
        if (it != pending_sources_.end() && it->second == source && p.id != node_id) ++from_source;
      }
    }
    std::string why;
    if (pending.size() >= kMaxPendingPairings && !store_.FindPending(node_id)) {
      why = "the gateway already holds " + std::to_string(pending.size()) +
            " pairing requests; ask the operator to approve or reject them (`labgate nodes pending`)";
    } else if (from_source >= kMaxPendingPairingsPerSource) {
      why = std::to_string(from_source) + " pairing requests from " + source +
            " are already waiting for the operator; try again once they are decided";
    }
    if (!why.empty()) {
      Json limited = data;
      limited["rule"] = "pairing.pending-limit";
      Emit({"pairing.refused", node_id, c.key->fingerprint, c.peer, why, limited});
      c.rpc->RespondError(id, kErrRefused, why);
      return;
    }
  }
  if (auto ok = store_.AddPending(node_id, *c.key, caps, device); !ok) {
    Emit({"pairing.refused", node_id, c.key->fingerprint, c.peer, ok.error().message, data});
    c.rpc->RespondError(id, kErrRefused, ok.error().message);
    return;
  }
  {
    // Only once the request is the one waiting: a refused one must not take over its source.
    std::lock_guard<std::mutex> lock(pending_sources_mutex_);
    pending_sources_[node_id] = source;
  }
  Emit({"pairing.pending", node_id, c.key->fingerprint, c.peer, "waiting for `labgate nodes approve " + node_id + "`", data});
  c.waiting_pair_id = id;
  c.waiting_pair_node = node_id;
  // Only the newest session of a request waits (the same key asking again: a device that
  // restarted), so that asking again and again holds no more than one session open.
  const Conn* newest = &c;
  ForEachConn([this, node_id, newest](Conn& other) {
    if (&other == newest || !other.waiting_pair_id || other.waiting_pair_node != node_id) return;
    other.rpc->RespondError(*other.waiting_pair_id, kErrRefused,
                            "a newer pairing request for " + node_id + " from the same key took this one's place");
    other.waiting_pair_id.reset();
    Close(other, "superseded by a newer pairing request");
  });
}

void AgentServer::AnswerPairing(Conn& c) {
  if (!c.waiting_pair_id || store_.FindPending(c.waiting_pair_node)) return;
  auto record = store_.Find(c.waiting_pair_node);
  if (record && !record->revoked() && record->key.fingerprint == c.key->fingerprint) {
    c.rpc->Respond(*c.waiting_pair_id,
                   {{"status", "paired"}, {"nodeId", record->id}, {"capabilities", record->capabilities}});
  } else {
    c.rpc->RespondError(*c.waiting_pair_id, kErrRefused, "the operator rejected the pairing request");
  }
  c.waiting_pair_id.reset();
}

void AgentServer::PairingDecided(const std::string& node_id) {
  ForEachConn([this, node_id](Conn& c) {
    if (c.waiting_pair_id && c.waiting_pair_node == node_id) AnswerPairing(c);
  });
}

void AgentServer::ForEachConn(std::function<void(Conn&)> act) {
  for (std::size_t i = 0, count = loop_count_.load(); i < count; ++i) {
    Loop* raw = loops_[i].get();
    raw->Post([raw, act] {
      for (auto& c : raw->conns) act(*c);
    });
  }
}

void AgentServer::Close(Conn& c, const std::string& reason) {
  if (c.closing) return;
  if (c.attached) c.rpc->Notify("node.closing", {{"reason", reason}});
  c.closing = true;
  c.close_reason = reason;
  c.loop->Note(c);
}

void AgentServer::Reap(Loop& loop, Conn& c) {
  spdlog::debug("session {} from {} ends: {}", c.user.empty() ? "(no login)" : c.user, c.peer, c.close_reason);
  c.rpc->FailAll(MakeError(ErrorCode::kIo, "node " + (c.user.empty() ? c.peer : c.user) +
                                               " disconnected (" + c.close_reason + ")"));
  bool was_online = false;
  if (c.hello) {
    std::lock_guard<std::mutex> lock(online_mutex_);
    auto it = online_.find(c.user);
    if (it != online_.end() && it->second.serial == c.serial) {
      online_.erase(it);
      was_online = true;
    }
  }
  if (was_online) {
    store_.MarkSeen(c.user);
    Emit({"node.offline", c.user, c.key ? c.key->fingerprint : "", c.peer, c.close_reason});
  }
  ++loop.depth;
  if (c.fd >= 0 && ssh_get_fd(c.session) == c.fd) ::epoll_ctl(loop.epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
  // What was queued last (a refusal that closes the session) still goes out, best effort.
  if (c.channel != nullptr && !c.out.empty()) (void)c.out.Flush(c.channel);
  ssh_event_remove_session(c.event, c.session);
  ssh_event_free(c.event);
  c.event = nullptr;
  if (c.channel) {
    ssh_channel_close(c.channel);
    ssh_channel_free(c.channel);
  }
  ssh_disconnect(c.session);
  ssh_free(c.session);
  --loop.depth;
  --loop.sessions;
  ReleaseLoginSlot(c);
}

void AgentServer::ReleaseLoginSlot(Conn& c) {
  if (!c.holds_login_slot) return;
  c.holds_login_slot = false;
  // Only a release from a full house can find the accept thread waiting.
  if (logging_in_.fetch_sub(1) >= std::max(1, settings_.logins_in_flight)) {
    std::uint64_t one = 1;
    (void)!::write(slot_fd_, &one, sizeof one);
  }
}

void AgentServer::Tick(Loop& loop) {
  const auto now = Steady::now();
  loop.last_tick = now;
  for (auto& cp : loop.conns) {
    Conn& c = *cp;
    if (c.closing) continue;
    if (!c.hello && !c.waiting_pair_id && now > c.login_deadline) {
      // A connection that never offered a key is closed but is no failed login: otherwise idle
      // TCP connections from a node's address (a neighbour behind the same NAT) would lock it out.
      // One whose key was refused was counted then, and is not counted twice.
      if (!c.authenticated && c.auth_attempted && !c.refusal_reported) {
        gate_.RecordFailure(AddressOf(c.peer), SourceGate::Clock::now());
        Emit({"auth.refused", c.user, "", c.peer, "no successful login within " +
                                                      std::to_string(settings_.login_timeout.count() / 1000) + " s"});
      }
      Close(c, "login took too long");
      continue;
    }
    if (!c.attached) continue;
    if (now - c.last_rx > settings_.heartbeat_timeout) {
      Close(c, "no heartbeat for " + std::to_string(settings_.heartbeat_timeout.count() / 1000) + " s");
      continue;
    }
    // The gateway pings a node silent for an interval, and the answer is the node's heartbeat:
    // one wake-up per interval on the node (a phone's battery) and one pass over many sessions
    // here. Nodes ping only when the gateway has been quiet for two intervals (an older
    // gateway); an older node's own pings keep its link busy, so it is not pinged twice.
    if (now - c.last_rx >= settings_.heartbeat_interval && now - c.last_ping >= settings_.heartbeat_interval) {
      c.last_ping = now;
      c.rpc->Request("ping", Json::object(), [](core::Result<Json>) {});
    }
  }
}

core::Result<Json> AgentServer::Call(const std::string& node_id, const std::string& method, Json params,
                                     Steady::time_point deadline, const core::CancelToken& cancel,
                                     RpcPeer::NotificationHandler on_notification) {
  Online target;
  {
    std::lock_guard<std::mutex> lock(online_mutex_);
    auto it = online_.find(node_id);
    if (it == online_.end()) return MakeError(ErrorCode::kUnavailable, "node " + node_id + " is not connected");
    target = it->second;
  }
  auto state = std::make_shared<CallState>();
  state->on_notification = std::move(on_notification);
  Loop* loop = target.loop;
  std::uint64_t serial = target.serial;
  loop->Post([loop, serial, state, method, params = std::move(params), node_id]() mutable {
    Conn* c = loop->Find(serial);
    if (c == nullptr || c->closing) {
      state->Complete(MakeError(ErrorCode::kUnavailable, "node " + node_id + " is not connected"));
      return;
    }
    RpcPeer::NotificationHandler relay;
    if (state->on_notification) {
      relay = [state](const std::string& m, const Json& p) {
        std::lock_guard<std::mutex> lock(state->mutex);
        if (state->listening) state->on_notification(m, p);
      };
    }
    std::int64_t rid = c->rpc->Request(method, std::move(params),
                                       [state](core::Result<Json> r) { state->Complete(std::move(r)); }, relay);
    std::lock_guard<std::mutex> lock(state->mutex);
    state->request_id = rid;
  });
  std::unique_lock<std::mutex> lock(state->mutex);
  while (!state->done && !cancel.cancelled() && Steady::now() < deadline) {
    auto slice = std::min<Steady::duration>(deadline - Steady::now(), milliseconds(50));
    state->cv.wait_for(lock, slice);
  }
  state->listening = false;
  if (state->done) return std::move(*state->result);
  const bool cancelled = cancel.cancelled();
  lock.unlock();
  loop->Post([loop, serial, state] {
    Conn* c = loop->Find(serial);
    std::int64_t rid;
    {
      std::lock_guard<std::mutex> l(state->mutex);
      rid = state->request_id;
    }
    if (c == nullptr || c->closing || rid == 0) return;
    c->rpc->Forget(rid);
    c->rpc->Notify("$/cancel", {{"id", rid}});
  });
  if (cancelled) return MakeError(ErrorCode::kCancelled, "cancelled while node " + node_id + " was working on " + method);
  return MakeError(ErrorCode::kTimeout, "node " + node_id + " did not answer " + method + " in time");
}

std::optional<NodeLink> AgentServer::Link(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(online_mutex_);
  auto it = online_.find(node_id);
  if (it == online_.end()) return std::nullopt;
  return it->second.link;
}

std::map<std::string, NodeLink> AgentServer::Links() const {
  std::lock_guard<std::mutex> lock(online_mutex_);
  std::map<std::string, NodeLink> links;
  for (const auto& [id, entry] : online_) links.emplace_hint(links.end(), id, entry.link);
  return links;
}

std::size_t AgentServer::online_count() const {
  std::lock_guard<std::mutex> lock(online_mutex_);
  return online_.size();
}

std::size_t AgentServer::session_count() const {
  std::size_t total = 0;
  for (std::size_t i = 0, count = loop_count_.load(); i < count; ++i) total += loops_[i]->sessions.load();
  return total;
}

void AgentServer::Disconnect(const std::string& node_id, const std::string& reason, const std::string& keep) {
  ForEachConn([this, node_id, reason, keep](Conn& c) {
    if (c.user != node_id) return;
    if (!keep.empty() && c.key && c.key->fingerprint == keep) return;
    Close(c, reason);
  });
}

}  // namespace labgate::nodes
