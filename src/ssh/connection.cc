#include "ssh/connection.h"

#include <fcntl.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/capped_output.h"
#include "core/hashing.h"
#include "core/net.h"
#include "ssh/remote_command.h"

namespace labgate::ssh {
// Outside the anonymous namespace: Connection::Impl holds one.
struct SessionDeleter {
  void operator()(ssh_session s) const {
    if (s == nullptr) return;
    if (ssh_is_connected(s)) ssh_disconnect(s);
    ssh_free(s);
  }
};
using SessionPtr = std::unique_ptr<std::remove_pointer_t<ssh_session>, SessionDeleter>;

namespace {

using core::ErrorCode;
using core::MakeError;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds Remaining(Steady::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Steady::now());
  return left.count() < 0 ? milliseconds(0) : left;
}

// Every blocking libssh call waits at most the session's timeout option, which libssh reads
// afresh on each wait: setting it to what is left of the deadline before each step keeps a frozen
// host from stretching a call by one full timeout per step (connect, key exchange, each auth
// method, channel open). False when nothing is left.
bool ArmTimeout(ssh_session s, Steady::time_point deadline) {
  const milliseconds left = Remaining(deadline);
  if (left.count() == 0) return false;
  long secs = static_cast<long>(left.count() / 1000);
  long usecs = static_cast<long>((left.count() % 1000) * 1000);
  if (secs == 0 && usecs == 0) usecs = 1000;
  (void)ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &secs);
  (void)ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usecs);
  return true;
}

std::string Endpoint(ssh_session s, const HostSpec& spec) {
  char* host = nullptr;
  std::string h = spec.address;
  if (ssh_options_get(s, SSH_OPTIONS_HOST, &host) == SSH_OK && host) {
    h = host;
    ssh_string_free_char(host);
  }
  unsigned int port = 0;
  ssh_options_get_port(s, &port);
  return h + ":" + std::to_string(port);
}

std::string UserOf(ssh_session s) {
  char* user = nullptr;
  std::string u;
  if (ssh_options_get(s, SSH_OPTIONS_USER, &user) == SSH_OK && user) {
    u = user;
    ssh_string_free_char(user);
  }
  return u;
}

// Options from hosts.toml win over ~/.ssh/config, which wins over libssh's defaults.
core::Status Configure(ssh_session s, const HostSpec& spec, milliseconds timeout, int fd) {
  auto set = [&](ssh_options_e opt, const void* value, const char* what) -> core::Status {
    if (ssh_options_set(s, opt, value) != SSH_OK) {
      return MakeError(ErrorCode::kInvalidArgument, std::string("invalid ") + what + " for " + spec.id + ": " +
                                                        ssh_get_error(s));
    }
    return core::Ok();
  };
  int verbosity = SSH_LOG_NOLOG;
  (void)ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  if (auto ok = set(SSH_OPTIONS_HOST, spec.address.c_str(), "address"); !ok) return ok;
  if (ssh_options_parse_config(s, nullptr) != SSH_OK) {
    return MakeError(ErrorCode::kInvalidArgument, "cannot read ~/.ssh/config for " + spec.id + ": " + ssh_get_error(s));
  }
  char* proxy = nullptr;
  if (ssh_options_get(s, SSH_OPTIONS_PROXYCOMMAND, &proxy) == SSH_OK && proxy) {
    ssh_string_free_char(proxy);
    // An OpenSSH ProxyCommand/ProxyJump would bypass labgate's host-key checks and key choice.
    return MakeError(ErrorCode::kInvalidArgument,
                     "~/.ssh/config gives " + spec.id + " a ProxyCommand or ProxyJump, which labgate does not run; "
                     "set proxy_jump = \"JUMP-HOST-ID\" in hosts.toml instead");
  }
  if (spec.port > 0) {
    unsigned int port = static_cast<unsigned int>(spec.port);
    if (auto ok = set(SSH_OPTIONS_PORT, &port, "port"); !ok) return ok;
  }
  if (!spec.user.empty()) {
    if (auto ok = set(SSH_OPTIONS_USER, spec.user.c_str(), "user"); !ok) return ok;
  }
  if (auto ok = set(SSH_OPTIONS_KNOWNHOSTS, spec.known_hosts.c_str(), "known_hosts path"); !ok) return ok;
  const std::string global = spec.user_known_hosts.empty() ? "/dev/null" : spec.user_known_hosts;
  if (auto ok = set(SSH_OPTIONS_GLOBAL_KNOWNHOSTS, global.c_str(), "known_hosts path"); !ok) return ok;
  int one = 1;
  (void)ssh_options_set(s, SSH_OPTIONS_NODELAY, &one);
  long secs = static_cast<long>(timeout.count() / 1000);
  long usecs = static_cast<long>((timeout.count() % 1000) * 1000);
  if (secs == 0 && usecs == 0) usecs = 1000;
  (void)ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &secs);
  (void)ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usecs);
  if (fd >= 0) {
    socket_t sock = fd;
    if (auto ok = set(SSH_OPTIONS_FD, &sock, "tunnel"); !ok) return ok;
  }
  return core::Ok();
}

core::Result<SessionPtr> ConnectTransport(const HostSpec& spec, Steady::time_point deadline, int fd) {
  SessionPtr s(ssh_new());
  if (!s) return MakeError(ErrorCode::kUnavailable, "libssh could not allocate a session");
  milliseconds left = Remaining(deadline);
  if (left.count() == 0) return MakeError(ErrorCode::kTimeout, "deadline passed before connecting to " + spec.id);
  if (auto ok = Configure(s.get(), spec, left, fd); !ok) return ok.error();
  if (ssh_connect(s.get()) != SSH_OK) {
    std::string why = ssh_get_error(s.get());
    std::string where = spec.id + " (" + Endpoint(s.get(), spec) + ")";
    if (Remaining(deadline).count() == 0 || why.find("imeout") != std::string::npos) {
      return MakeError(ErrorCode::kTimeout, "connecting to " + where + " timed out: " + why +
                                                "; is sshd running there and reachable?");
    }
    return MakeError(ErrorCode::kUnavailable, "cannot connect to " + where + ": " + why);
  }
  // Dead peers must not hang a pooled session forever.
  int sock = ssh_get_fd(s.get());
  if (sock >= 0 && fd < 0) core::TuneTcpSocket(sock, core::KeepaliveSettings{});
  return s;
}

core::Result<std::string> ServerFingerprint(ssh_session s) {
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(s, &key) != SSH_OK) {
    return MakeError(ErrorCode::kRefused, std::string("the server sent no host key: ") + ssh_get_error(s));
  }
  unsigned char* hash = nullptr;
  size_t len = 0;
  int rc = ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len);
  ssh_key_free(key);
  if (rc != SSH_OK) return MakeError(ErrorCode::kRefused, "cannot hash the server's host key");
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  std::string out = fp ? fp : "";
  ssh_string_free_char(fp);
  return out;
}

core::Status VerifyHostKey(ssh_session s, const HostSpec& spec) {
  auto fp = ServerFingerprint(s);
  if (!fp) return fp.error();
  const std::string where = spec.id + " (" + Endpoint(s, spec) + ")";
  switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
      return core::Ok();
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      return MakeError(ErrorCode::kRefused,
                       "host key for " + where + " CHANGED: the server offered " + *fp +
                           ", which does not match the key recorded in " + spec.known_hosts + " or " +
                           spec.user_known_hosts +
                           ". Someone may be intercepting the connection. If the host was reinstalled, remove the "
                           "old key (ssh-keygen -R HOST -f FILE) and run `labgate hosts trust " + spec.id + "`");
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      if (spec.accept_new) {
        if (ssh_session_update_known_hosts(s) != SSH_OK) {
          return MakeError(ErrorCode::kRefused, "cannot record the host key of " + where + " in " + spec.known_hosts +
                                                    ": " + ssh_get_error(s));
        }
        return core::Ok();
      }
      return MakeError(ErrorCode::kRefused, "host key for " + where + " is unknown: the server offered " + *fp +
                                                ". If that is the host's key, run `labgate hosts trust " + spec.id +
                                                "` (or add --fingerprint " + *fp + ")");
    case SSH_KNOWN_HOSTS_ERROR:
      break;
  }
  return MakeError(ErrorCode::kRefused, "cannot check the host key of " + where + ": " + ssh_get_error(s));
}

core::Status Authenticate(ssh_session s, const HostSpec& spec, Steady::time_point deadline) {
  const std::string who = UserOf(s) + "@" + spec.id;
  std::vector<std::string> tried;
  const auto timed_out = [&](const char* method) {
    return MakeError(ErrorCode::kTimeout, "authentication to " + who + " (" + method +
                                              ") got no answer before the deadline; the host may be frozen or "
                                              "overloaded (the command did not start)");
  };
  auto check = [&](int rc, const char* method) -> std::optional<core::Status> {
    if (rc == SSH_AUTH_SUCCESS) return core::Ok();
    if (rc == SSH_AUTH_AGAIN || Remaining(deadline).count() == 0) return timed_out(method);
    if (rc == SSH_AUTH_ERROR) {
      return MakeError(ErrorCode::kUnavailable, "authentication to " + who + " broke off (" + method + "): " +
                                                    ssh_get_error(s));
    }
    tried.push_back(method);
    return std::nullopt;
  };
  // Each step waits only for what is left of the deadline.
  auto armed = [&] { return ArmTimeout(s, deadline); };
  // "none" asks which methods the host offers: a frozen host is found here.
  if (!armed() || ssh_userauth_none(s, nullptr) == SSH_AUTH_AGAIN || Remaining(deadline).count() == 0) {
    return timed_out("none");
  }
  if (!spec.identity_file.empty()) {
    ssh_key key = nullptr;
    int rc = ssh_pki_import_privkey_file(spec.identity_file.c_str(),
                                         spec.passphrase.empty() ? nullptr : spec.passphrase.c_str(), nullptr,
                                         nullptr, &key);
    if (rc != SSH_OK) {
      return MakeError(ErrorCode::kRefused, "cannot load identity_file " + spec.identity_file + " for " + spec.id +
                                                " (missing, unreadable, or wrong passphrase; set passphrase_env or "
                                                "passphrase_file if it is encrypted)");
    }
    rc = armed() ? ssh_userauth_publickey(s, nullptr, key) : SSH_AUTH_AGAIN;
    ssh_key_free(key);
    if (auto done = check(rc, "identity_file")) return *done;
  } else {
    if (std::getenv("SSH_AUTH_SOCK") != nullptr) {
      if (auto done = check(armed() ? ssh_userauth_agent(s, nullptr) : SSH_AUTH_AGAIN, "ssh-agent")) return *done;
    }
    int rc = armed() ? ssh_userauth_publickey_auto(s, nullptr, spec.passphrase.empty() ? nullptr : spec.passphrase.c_str())
                     : SSH_AUTH_AGAIN;
    if (auto done = check(rc, "default keys")) return *done;
  }
  if (!spec.password.empty()) {
    if (auto done = check(armed() ? ssh_userauth_password(s, nullptr, spec.password.c_str()) : SSH_AUTH_AGAIN,
                          "password")) {
      return *done;
    }
  }
  std::string methods;
  for (const auto& t : tried) methods += (methods.empty() ? "" : ", ") + t;
  return MakeError(ErrorCode::kRefused, "authentication to " + who + " was refused (tried " + methods +
                                            "); check user, identity_file or the agent's keys, and the host's "
                                            "authorized_keys");
}

}  // namespace

core::Result<std::string> ResolveSecret(const std::string& env_name, const std::string& file, const std::string& what) {
  if (!env_name.empty()) {
    const char* v = std::getenv(env_name.c_str());
    if (v == nullptr) {
      return MakeError(ErrorCode::kInvalidArgument, what + ": environment variable " + env_name + " is not set");
    }
    return std::string(v);
  }
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return MakeError(ErrorCode::kInvalidArgument, what + ": cannot read " + file);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string v = ss.str();
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    return v;
  }
  return std::string();
}

// ProxyJump done inside labgate: a direct-tcpip channel on an authenticated session to the jump
// host, relayed to a socketpair whose other end becomes the target session's socket. Both hops
// get labgate's host-key checks and keys (OpenSSH's ProxyJump would use its own).
class JumpTunnel {
 public:
  static core::Result<std::unique_ptr<JumpTunnel>> Open(const HostSpec& jump, const HostSpec& target,
                                                        Steady::time_point deadline) {
    auto session = ConnectTransport(jump, deadline, -1);
    if (!session) return session.error();
    if (auto ok = VerifyHostKey(session->get(), jump); !ok) return ok.error();
    if (auto ok = Authenticate(session->get(), jump, deadline); !ok) return ok.error();
    auto tunnel = std::unique_ptr<JumpTunnel>(new JumpTunnel());
    tunnel->session_ = std::move(*session);
    ssh_session s = tunnel->session_.get();
    tunnel->channel_ = ssh_channel_new(s);
    const int port = target.port > 0 ? target.port : 22;
    if (!tunnel->channel_ || !ArmTimeout(s, deadline) ||
        ssh_channel_open_forward(tunnel->channel_, target.address.c_str(), port, "127.0.0.1", 0) != SSH_OK) {
      if (Remaining(deadline).count() == 0) {
        return MakeError(ErrorCode::kTimeout, "jump host " + jump.id + " did not open the way to " + target.id +
                                                  " before the deadline; it may be frozen or overloaded");
      }
      return MakeError(ErrorCode::kUnavailable, "jump host " + jump.id + " could not reach " + target.address + ":" +
                                                    std::to_string(port) + " for " + target.id + ": " + ssh_get_error(s));
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      return MakeError(ErrorCode::kUnavailable, "socketpair failed for the jump to " + target.id);
    }
    tunnel->target_fd_ = pair[0];
    tunnel->relay_fd_ = pair[1];
    // The relay's writes wait for the jump host's window at most this long; a frozen jump
    // host then ends the tunnel (and the session riding on it) instead of holding it forever.
    long relay_secs = 5, relay_usecs = 0;
    (void)ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &relay_secs);
    (void)ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &relay_usecs);
    tunnel->relay_ = std::thread([t = tunnel.get()] { t->Relay(); });
    return tunnel;
  }

  ~JumpTunnel() {
    stop_ = true;
    if (relay_.joinable()) relay_.join();
    if (relay_fd_ >= 0) ::close(relay_fd_);
    if (channel_) {
      ssh_channel_close(channel_);
      ssh_channel_free(channel_);
    }
  }

  /// The socket for the target session; libssh owns it from then on.
  int TakeFd() {
    int fd = target_fd_;
    target_fd_ = -1;
    return fd;
  }

 private:
  JumpTunnel() = default;

  void Relay() {
    char buf[32768];
    ssh_session s = session_.get();
    while (!stop_) {
      pollfd fds[2] = {{relay_fd_, POLLIN, 0}, {ssh_get_fd(s), POLLIN, 0}};
      ::poll(fds, 2, 10);
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        ssize_t n = ::read(relay_fd_, buf, sizeof buf);
        if (n <= 0) break;
        if (ssh_channel_write(channel_, buf, static_cast<uint32_t>(n)) == SSH_ERROR) break;
      }
      for (;;) {
        int n = ssh_channel_read_nonblocking(channel_, buf, sizeof buf, 0);
        if (n <= 0) {
          if (n == SSH_ERROR || ssh_channel_is_eof(channel_)) stop_ = true;
          break;
        }
        for (int off = 0; off < n;) {
          ssize_t w = ::write(relay_fd_, buf + off, static_cast<std::size_t>(n - off));
          if (w <= 0) {
            stop_ = true;
            break;
          }
          off += static_cast<int>(w);
        }
      }
      if (!ssh_is_connected(s)) break;
    }
    ::shutdown(relay_fd_, SHUT_RDWR);
  }

  SessionPtr session_;
  ssh_channel channel_ = nullptr;
  int target_fd_ = -1;
  int relay_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread relay_;
};

// A connected (not yet authenticated) session, through its jump tunnel when it has one. The
// session is declared last so it is destroyed before the tunnel it rides on.
struct Transport {
  std::unique_ptr<JumpTunnel> tunnel;
  SessionPtr session;
};

core::Result<Transport> OpenTransport(const HostSpec& spec, Steady::time_point deadline) {
  Transport t;
  int fd = -1;
  if (spec.jump) {
    auto tunnel = JumpTunnel::Open(*spec.jump, spec, deadline);
    if (!tunnel) return tunnel.error();
    t.tunnel = std::move(*tunnel);
    fd = t.tunnel->TakeFd();
  }
  auto session = ConnectTransport(spec, deadline, fd);
  if (!session) return session.error();
  t.session = std::move(*session);
  return t;
}

struct Connection::Impl {
  SessionPtr session;
  std::unique_ptr<JumpTunnel> tunnel;  // torn down after the session that rides on it (~Connection)
  ssh_event event = nullptr;
};

// One command in flight. Touched by the caller (until queued) and then only by the I/O thread,
// except `done`, which the caller waits on.
struct Connection::Job {
  // Where the command is; the I/O thread moves it on as the host answers, never waiting for it.
  enum class Phase {
    kOpening,     // its session channel is being opened: nothing has run yet
    kRequesting,  // the exec request is sent: from here on the command may be running
    kRunning,
    kStopping,    // deadline or cancel: the kill script runs on its own channel
  };
  enum class KillPhase { kNone, kOpening, kRequesting, kRunning, kDone };

  ExecRequest request;
  std::string remote_command;
  const core::CancelToken* cancel = nullptr;
  Steady::time_point started_at;
  Steady::time_point deadline;
  Phase phase = Phase::kOpening;
  ssh_channel channel = nullptr;
  bool callbacks_set = false;
  ssh_channel_callbacks_struct callbacks{};
  std::uint64_t* activity = nullptr;  // bumped by every callback (Connection::Loop's counter)
  ssh_channel kill_channel = nullptr;
  KillPhase kill_phase = KillPhase::kNone;
  std::optional<int> exit_status;
  std::optional<std::string> exit_signal;
  bool eof = false;
  bool closed = false;
  std::size_t stdin_sent = 0;  // of request.stdin_data
  bool stdin_done = false;     // all sent and EOF sent (or the command stopped reading)
  bool cancel_fd_watched = false;
  Steady::time_point stop_began{};
  Steady::time_point give_up_at{};
  std::string run_id;
  std::unique_ptr<core::CappedOutput> out, err;
  core::Sha256 out_digest, err_digest;
  core::ProcessOutcome outcome;
  std::optional<core::Error> error;
  bool finished = false;
  std::mutex done_mutex;
  std::condition_variable done_cv;
};

core::Result<std::shared_ptr<Connection>> Connection::Open(const HostSpec& spec, Steady::time_point deadline,
                                                           const ChannelSettings& settings) {
  auto transport = OpenTransport(spec, deadline);
  if (!transport) return transport.error();
  if (auto ok = VerifyHostKey(transport->session.get(), spec); !ok) return ok.error();
  if (auto ok = Authenticate(transport->session.get(), spec, deadline); !ok) return ok.error();
  auto impl = std::make_unique<Impl>();
  impl->tunnel = std::move(transport->tunnel);
  impl->session = std::move(transport->session);
  // From here on no libssh call waits: the I/O thread drives every channel step by step, so one
  // frozen host can hold a call only until that call's own deadline.
  ssh_set_blocking(impl->session.get(), 0);
  return std::shared_ptr<Connection>(new Connection(spec.id, std::move(impl), settings));
}

Connection::Connection(std::string id, std::unique_ptr<Impl> impl, const ChannelSettings& settings)
    : id_(std::move(id)), impl_(std::move(impl)), settings_(settings) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  impl_->event = ssh_event_new();
  ssh_event_add_session(impl_->event, impl_->session.get());
  ssh_event_add_fd(
      impl_->event, wake_fd_, POLLIN,
      [](socket_t fd, int, void*) {
        std::uint64_t n;
        while (::read(fd, &n, sizeof n) > 0) {
        }
        return 0;
      },
      nullptr);
  io_ = std::thread([this] { Loop(); });
}

Connection::~Connection() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  io_.join();
  ssh_event_remove_fd(impl_->event, wake_fd_);
  ssh_event_remove_session(impl_->event, impl_->session.get());
  ssh_event_free(impl_->event);
  impl_->session.reset();  // before the tunnel it may ride on
  impl_->tunnel.reset();
  ::close(wake_fd_);
}

core::Result<core::ProcessOutcome> Connection::Exec(const ExecRequest& request, const core::CancelToken& cancel) {
  auto job = std::make_shared<Job>();
  job->run_id = NewRunId();
  auto cmd = BuildRemoteCommand(request.argv, request.shell, request.cwd, request.env, job->run_id,
                                !request.sudo_password.empty(), request.sudo_keeps_stdin);
  if (!cmd.error.empty()) return MakeError(ErrorCode::kInvalidArgument, cmd.error);
  job->request = request;
  if (!request.sudo_password.empty()) {
    if (request.sudo_password.find_first_of("\r\n") != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument, "the sudo password holds a line break, which sudo -S cannot read");
    }
    // The password is the first line sudo reads; whatever else the caller sends follows it.
    auto input = std::make_shared<std::string>(request.sudo_password + "\n");
    if (request.stdin_data) *input += *request.stdin_data;
    job->request.stdin_data = std::move(input);
  }
  job->remote_command = std::move(cmd.text);
  job->cancel = &cancel;
  job->out = std::make_unique<core::CappedOutput>(request.output_cap);
  job->err = std::make_unique<core::CappedOutput>(request.output_cap);
  job->started_at = Steady::now();
  job->deadline = job->started_at + request.timeout;
  {
    // Past the per-host channel cap, calls queue here (sshd's MaxSessions would refuse them),
    // each no longer than its own deadline.
    std::unique_lock<std::mutex> lock(mutex_);
    const bool free = slots_cv_.wait_until(lock, job->deadline, [&] {
      return busy_ < settings_.max_channels || stopping_ || !alive_ || cancel.cancelled();
    });
    if (stopping_ || !alive_) return MakeError(ErrorCode::kUnavailable, "connection to " + id_ + " is closed");
    if (cancel.cancelled()) return MakeError(ErrorCode::kCancelled, "cancelled while waiting for a free channel on " + id_);
    if (!free) {
      return MakeError(ErrorCode::kTimeout, "no free channel on " + id_ + " before the deadline: " +
                                                std::to_string(settings_.max_channels) +
                                                " commands already run there (the command did not start)");
    }
    ++busy_;
    incoming_.push_back(job);
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  {
    std::unique_lock<std::mutex> lock(job->done_mutex);
    job->done_cv.wait(lock, [&] { return job->finished; });
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --busy_;
  }
  slots_cv_.notify_one();
  if (job->error) return *job->error;
  return job->outcome;
}

namespace {

// Frees a channel for good. libssh keeps a channel the host has not closed yet and goes on
// delivering its packets to the registered callbacks, so a job's are removed before its caller
// is woken (in `finish`), or they would write into a call that has already returned.
void ReleaseChannel(ssh_channel& channel) {
  if (channel == nullptr) return;
  ssh_channel_free(channel);  // sends the close when it is open
  channel = nullptr;
}

}  // namespace

void Connection::Loop() {
  ssh_session s = impl_->session.get();
  std::vector<std::shared_ptr<Job>> active;
  auto last_activity = Steady::now();
  std::uint64_t activity = 0;  // callbacks fired: output, EOF, exit status, close
  // Set when the host stopped answering (a channel that never opened, a kill that never
  // started): new calls get a fresh connection, and this one ends with its last command.
  bool suspect = false;
  auto mark_suspect = [&] {
    if (suspect) return;
    suspect = true;
    alive_ = false;
    slots_cv_.notify_all();
  };

  auto finish = [&](Job& job) {
    if (job.cancel_fd_watched) ssh_event_remove_fd(impl_->event, job.cancel->fd());
    job.cancel_fd_watched = false;
    if (!job.error) {
      job.outcome.exit_code = job.exit_signal ? std::nullopt : job.exit_status;
      if (job.exit_signal) job.outcome.signal = core::SignalNumber(*job.exit_signal);
      job.outcome.out = core::CapturedStream{job.out->Text(), job.out->total_bytes(), job.out->truncated(),
                                             job.out_digest.HexDigest()};
      job.outcome.err = core::CapturedStream{job.err->Text(), job.err->total_bytes(), job.err->truncated(),
                                             job.err_digest.HexDigest()};
      job.outcome.duration = std::chrono::duration_cast<milliseconds>(Steady::now() - job.started_at);
    }
    // No callback may reach the caller once it has its answer: its listener lives on its stack,
    // and freeing the kill channel below reads the socket, which can deliver more output.
    if (job.callbacks_set && job.channel != nullptr) ssh_remove_channel_callbacks(job.channel, &job.callbacks);
    job.callbacks_set = false;
    {
      std::lock_guard<std::mutex> lock(job.done_mutex);
      job.finished = true;
    }
    job.done_cv.notify_all();
    // The caller has its answer; the close packets go out while it writes it up. This thread
    // opens the next channel only after these are freed, so the count of open ones holds.
    ReleaseChannel(job.kill_channel);
    ReleaseChannel(job.channel);
  };

  // One session channel is kept open ahead of need, so a command waits for one round trip
  // (the exec request) instead of two. It counts towards sshd's MaxSessions like any other.
  // A refused spare is not asked for again until a command ends (no open/refuse ping-pong).
  ssh_channel spare = nullptr;
  bool spare_refused = false;
  auto tend_spare = [&] {
    if (!settings_.spare_channel || spare_refused || suspect) return;
    if (spare == nullptr) spare = ssh_channel_new(s);
    if (spare != nullptr && ssh_channel_open_session(spare) == SSH_ERROR) {
      ReleaseChannel(spare);
      spare_refused = true;
    }
  };

  auto set_callbacks = [&](Job& job) {
    job.activity = &activity;
    job.callbacks.userdata = &job;
    job.callbacks.channel_exit_status_function = [](ssh_session, ssh_channel, int status, void* userdata) {
      auto* j = static_cast<Job*>(userdata);
      j->exit_status = status;
      ++*j->activity;
    };
    job.callbacks.channel_exit_signal_function = [](ssh_session, ssh_channel, const char* signal, int, const char*,
                                                    const char*, void* userdata) {
      auto* j = static_cast<Job*>(userdata);
      j->exit_signal = signal ? signal : "";
      ++*j->activity;
    };
    // Output is taken in callbacks: whichever libssh call reads the socket (another job's,
    // a channel open) delivers it here, so nothing waits in a buffer while the loop sleeps.
    job.callbacks.channel_data_function = [](ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                                             void* userdata) -> int {
      auto* j = static_cast<Job*>(userdata);
      std::string_view bytes(static_cast<const char*>(data), len);
      (is_stderr ? j->err : j->out)->Append(bytes);
      if (j->request.listener) {
        j->request.listener->OnOutput(is_stderr ? core::StreamId::kStderr : core::StreamId::kStdout, bytes);
      }
      (is_stderr ? j->err_digest : j->out_digest).Update(bytes);
      ++*j->activity;
      return static_cast<int>(len);
    };
    job.callbacks.channel_eof_function = [](ssh_session, ssh_channel, void* userdata) {
      auto* j = static_cast<Job*>(userdata);
      j->eof = true;
      ++*j->activity;
    };
    job.callbacks.channel_close_function = [](ssh_session, ssh_channel, void* userdata) {
      auto* j = static_cast<Job*>(userdata);
      j->closed = true;
      ++*j->activity;
    };
    ssh_callbacks_init(&job.callbacks);
    ssh_set_channel_callbacks(job.channel, &job.callbacks);
    job.callbacks_set = true;
  };

  auto begin_stop = [&](Job& job, bool timed_out) {
    job.phase = Job::Phase::kStopping;
    job.outcome.timed_out = timed_out;
    job.outcome.cancelled = !timed_out;
    if (job.cancel_fd_watched) ssh_event_remove_fd(impl_->event, job.cancel->fd());
    job.cancel_fd_watched = false;
    job.stop_began = Steady::now();
    job.give_up_at = job.stop_began + job.request.kill_grace + milliseconds(3000);
    job.kill_channel = ssh_channel_new(s);
    job.kill_phase = job.kill_channel ? Job::KillPhase::kOpening : Job::KillPhase::kDone;
  };

  // The kill script: open its channel, start it, and let it finish, one step at a time.
  auto step_kill = [&](Job& job) {
    if (job.kill_phase == Job::KillPhase::kOpening) {
      const int rc = ssh_channel_open_session(job.kill_channel);
      if (rc == SSH_AGAIN) return;
      if (rc != SSH_OK) {
        ReleaseChannel(job.kill_channel);
        job.kill_phase = Job::KillPhase::kDone;
        return;
      }
      job.kill_phase = Job::KillPhase::kRequesting;
    }
    if (job.kill_phase == Job::KillPhase::kRequesting) {
      const int grace = static_cast<int>(job.request.kill_grace.count());
      const bool sudo = !job.request.sudo_password.empty();
      const int rc = ssh_channel_request_exec(job.kill_channel, KillCommand(job.run_id, grace, sudo).c_str());
      if (rc == SSH_AGAIN) return;
      job.kill_phase = rc == SSH_OK ? Job::KillPhase::kRunning : Job::KillPhase::kDone;
      if (rc != SSH_OK) ReleaseChannel(job.kill_channel);
      if (rc == SSH_OK && sudo) {
        // One short line: it fits any window; the script reads nothing else.
        const std::string line = job.request.sudo_password + "\n";
        (void)ssh_channel_write(job.kill_channel, line.data(), static_cast<uint32_t>(line.size()));
        (void)ssh_channel_send_eof(job.kill_channel);
      }
    }
    if (job.kill_phase == Job::KillPhase::kRunning &&
        (ssh_channel_is_eof(job.kill_channel) || ssh_channel_is_closed(job.kill_channel))) {
      ReleaseChannel(job.kill_channel);
      job.kill_phase = Job::KillPhase::kDone;
    }
  };

  // Sends what the peer's window takes of the job's stdin, never waiting; EOF after the last
  // byte. A command that ends without reading it all just stops receiving it.
  auto feed_stdin = [&](Job& job) {
    const std::string& data = *job.request.stdin_data;
    while (job.stdin_sent < data.size()) {
      if (job.eof || job.closed) {
        job.stdin_done = true;
        return;
      }
      const std::uint32_t window = ssh_channel_window_size(job.channel);
      if (window == 0) return;  // a window adjust from the host wakes the loop
      const std::size_t n = std::min<std::size_t>({data.size() - job.stdin_sent, std::size_t{window}, std::size_t{256 * 1024}});
      const int wrote = ssh_channel_write(job.channel, data.data() + job.stdin_sent, static_cast<uint32_t>(n));
      if (wrote == SSH_ERROR) {
        job.stdin_done = true;
        return;
      }
      if (wrote <= 0) return;
      job.stdin_sent += static_cast<std::size_t>(wrote);
      ++activity;
    }
    (void)ssh_channel_send_eof(job.channel);
    job.stdin_done = true;
    ++activity;
  };

  auto not_started = [&](Job& job, ErrorCode code, const std::string& why) {
    job.error = MakeError(code, why + " (the command did not start)");
    return true;
  };

  // Moves a job on as far as what has arrived allows; never waits. True when it is over.
  auto step = [&](Job& job) -> bool {
    const auto now = Steady::now();
    const bool due = now >= job.deadline;
    if (job.phase == Job::Phase::kOpening) {
      if (due) {
        mark_suspect();
        return not_started(job, ErrorCode::kTimeout,
                           id_ + " did not open a channel within " +
                               std::to_string(job.request.timeout.count()) +
                               " ms; the host may be frozen or overloaded");
      }
      if (job.cancel->cancelled()) return not_started(job, ErrorCode::kCancelled, "cancelled on " + id_);
      const int rc = ssh_channel_open_session(job.channel);
      if (rc == SSH_AGAIN) return false;
      if (rc != SSH_OK) {
        return not_started(job, ErrorCode::kUnavailable, "cannot open a channel on " + id_ + ": " + ssh_get_error(s));
      }
      set_callbacks(job);
      job.phase = Job::Phase::kRequesting;
    }
    if (job.phase == Job::Phase::kRequesting) {
      if (due || job.cancel->cancelled()) {
        begin_stop(job, due);  // the request is out: the command may be running
      } else {
        const int rc = ssh_channel_request_exec(job.channel, job.remote_command.c_str());
        if (rc == SSH_AGAIN) return false;
        if (rc != SSH_OK) {
          return not_started(job, ErrorCode::kUnavailable,
                             "the exec request on " + id_ + " was refused: " + ssh_get_error(s));
        }
        ssh_event_add_fd(impl_->event, job.cancel->fd(), POLLIN, [](socket_t, int, void*) { return 0; }, nullptr);
        job.cancel_fd_watched = true;
        job.phase = Job::Phase::kRunning;
      }
    }
    if (job.phase == Job::Phase::kRunning && (due || job.cancel->cancelled())) begin_stop(job, due);
    if (job.phase == Job::Phase::kRunning && job.request.stdin_data && !job.stdin_done) feed_stdin(job);
    if (job.phase == Job::Phase::kStopping) step_kill(job);
    if (job.closed || (job.eof && (job.exit_status || job.exit_signal))) return true;
    // A host that has not even started the kill script within the grace is not answering:
    // waiting longer only delays the answer.
    const bool kill_stuck = (job.kill_phase == Job::KillPhase::kOpening || job.kill_phase == Job::KillPhase::kRequesting) &&
                            now >= job.stop_began + job.request.kill_grace;
    if (job.phase == Job::Phase::kStopping && (now >= job.give_up_at || kill_stuck)) {
      // The host never confirmed the end: its channel is still open (something kept its
      // output open), or the kill never ran at all.
      job.outcome.stop_unconfirmed = true;
      if (job.kill_phase != Job::KillPhase::kDone || job.kill_channel != nullptr) mark_suspect();
      return true;
    }
    return false;
  };

  auto waiting_on_host = [](const Job& job) {
    return job.phase == Job::Phase::kOpening || job.phase == Job::Phase::kRequesting ||
           job.kill_phase == Job::KillPhase::kOpening || job.kill_phase == Job::KillPhase::kRequesting;
  };

  for (;;) {
    std::deque<std::shared_ptr<Job>> fresh;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) break;
      fresh.swap(incoming_);
    }
    for (auto& job : fresh) {
      if (suspect) {
        job->error = MakeError(ErrorCode::kUnavailable, "the session to " + id_ +
                                                            " stopped answering and is being replaced (the command did not start)");
        finish(*job);
        continue;
      }
      // The spare may still be opening; the job's first step takes over from there.
      job->channel = spare != nullptr ? spare : ssh_channel_new(s);
      spare = nullptr;
      if (job->channel == nullptr) {
        not_started(*job, ErrorCode::kUnavailable, "cannot open a channel on " + id_ + ": " + ssh_get_error(s));
        finish(*job);
        continue;
      }
      active.push_back(job);
      last_activity = Steady::now();
    }
    // Each pass can read packets meant for jobs already looked at (any libssh call reads the
    // socket): pass again while callbacks keep firing or jobs keep ending.
    bool changed = !fresh.empty();
    for (;;) {
      const std::uint64_t before = activity;
      bool ended = false;
      for (auto it = active.begin(); it != active.end();) {
        if (step(**it)) {
          finish(**it);
          it = active.erase(it);
          last_activity = Steady::now();
          spare_refused = false;
          ended = true;
        } else {
          ++it;
        }
      }
      changed = changed || ended;
      if (activity == before && !ended) break;
    }
    if (!ssh_is_connected(s)) {
      for (auto& job : active) {
        job->error = MakeError(ErrorCode::kIo, "the connection to " + id_ +
                                                   " broke while the command ran; it may have run (not retried)");
        finish(*job);
      }
      active.clear();
      break;
    }
    if (active.empty() && (suspect || Steady::now() - last_activity >= settings_.idle_timeout)) break;
    if (active.empty() || fresh.empty()) tend_spare();

    // Sleep until the socket, a cancel token or the wake fd fires, or the next deadline.
    auto wait = active.empty() ? settings_.idle_timeout : milliseconds(1000);
    for (const auto& job : active) {
      auto until = job->phase != Job::Phase::kStopping ? job->deadline
                   : waiting_on_host(*job)       ? job->stop_began + job->request.kill_grace
                                                 : job->give_up_at;
      wait = std::min(wait, std::max(milliseconds(1), Remaining(until)));
      // An answer that a call for another job read off the socket wakes nothing: look again soon.
      if (waiting_on_host(*job)) wait = std::min(wait, milliseconds(5));
    }
    {
      // A libssh call above may have polled (and drained) the wake fd: look again before
      // sleeping, or a queued command could wait for the next timeout.
      std::lock_guard<std::mutex> lock(mutex_);
      if (!incoming_.empty() || stopping_) continue;
    }
    if (changed) continue;
    if (ssh_event_dopoll(impl_->event, static_cast<int>(wait.count())) == SSH_ERROR && !ssh_is_connected(s)) continue;
  }

  ReleaseChannel(spare);
  alive_ = false;
  // Anything still queued or running fails; nothing is left waiting on a dead connection.
  std::deque<std::shared_ptr<Job>> leftover;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    leftover.swap(incoming_);
  }
  for (auto& job : leftover) {
    job->error = MakeError(ErrorCode::kUnavailable, "connection to " + id_ + " closed before the command started");
    finish(*job);
  }
  for (auto& job : active) {
    job->error = MakeError(ErrorCode::kIo, "connection to " + id_ + " closed while the command ran");
    finish(*job);
  }
  slots_cv_.notify_all();
}

struct BlockingSession::Impl {
  Transport transport;
  int fd = -1;
};

core::Result<std::unique_ptr<BlockingSession>> BlockingSession::Open(const HostSpec& spec, Steady::time_point deadline) {
  auto transport = OpenTransport(spec, deadline);
  if (!transport) return transport.error();
  if (auto ok = VerifyHostKey(transport->session.get(), spec); !ok) return ok.error();
  if (auto ok = Authenticate(transport->session.get(), spec, deadline); !ok) return ok.error();
  auto impl = std::make_unique<Impl>();
  impl->transport = std::move(*transport);
  impl->fd = ssh_get_fd(impl->transport.session.get());
  return std::unique_ptr<BlockingSession>(new BlockingSession(std::move(impl)));
}

BlockingSession::BlockingSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BlockingSession::~BlockingSession() = default;

ssh_session_struct* BlockingSession::get() const { return impl_->transport.session.get(); }

bool BlockingSession::Arm(Steady::time_point deadline) { return ArmTimeout(impl_->transport.session.get(), deadline); }

void BlockingSession::Abort() {
  if (aborted_.exchange(true)) return;
  if (impl_->fd >= 0) ::shutdown(impl_->fd, SHUT_RDWR);
}

core::Result<HostKeyInfo> ProbeHostKey(const HostSpec& spec, milliseconds timeout) {
  auto t = OpenTransport(spec, Steady::now() + timeout);
  if (!t) return t.error();
  auto* s = &t->session;
  auto fp = ServerFingerprint(s->get());
  if (!fp) return fp.error();
  HostKeyInfo info;
  info.fingerprint = *fp;
  info.endpoint = Endpoint(s->get(), spec);
  switch (ssh_session_is_known_server(s->get())) {
    case SSH_KNOWN_HOSTS_OK: info.status = "known"; break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER: info.status = "changed"; break;
    default: info.status = "unknown"; break;
  }
  return info;
}

std::string RecordedHostKeyStatus(const HostSpec& spec) {
  SessionPtr s(ssh_new());
  if (!s || Configure(s.get(), spec, milliseconds(1000), -1).ok() == false) return "unknown";
  switch (ssh_session_has_known_hosts_entry(s.get())) {
    case SSH_KNOWN_HOSTS_OK: return "recorded";
    default: return spec.accept_new ? "accept-new (not yet seen)" : "not recorded";
  }
}

core::Status TrustHostKey(const HostSpec& spec, const std::string& fingerprint, milliseconds timeout) {
  auto t = OpenTransport(spec, Steady::now() + timeout);
  if (!t) return t.error();
  auto* s = &t->session;
  auto fp = ServerFingerprint(s->get());
  if (!fp) return fp.error();
  if (*fp != fingerprint) {
    return MakeError(ErrorCode::kRefused, spec.id + " offered " + *fp + ", not the expected " + fingerprint +
                                              "; nothing was recorded");
  }
  auto state = ssh_session_is_known_server(s->get());
  if (state == SSH_KNOWN_HOSTS_OK) return core::Ok();
  if (state == SSH_KNOWN_HOSTS_CHANGED || state == SSH_KNOWN_HOSTS_OTHER) {
    return MakeError(ErrorCode::kRefused, "a different key for " + spec.id +
                                              " is already recorded; labgate never overwrites a host key. Remove the "
                                              "old line from " + spec.known_hosts + " (or ~/.ssh/known_hosts) first");
  }
  if (ssh_session_update_known_hosts(s->get()) != SSH_OK) {
    return MakeError(ErrorCode::kIo, "cannot write " + spec.known_hosts + ": " + ssh_get_error(s->get()));
  }
  return core::Ok();
}

}  // namespace labgate::ssh
