#include "audit/forward_sinks.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "audit/forward_format.h"
#include "core/net.h"
#include "core/os_user.h"

namespace labgate::audit {
namespace {

using core::ErrorCode;
using core::MakeError;

constexpr int kSendTimeoutMs = 2000;
// A stream server that takes a few bytes now and then must not hold the forwarder for long.
constexpr auto kStreamSendLimit = std::chrono::seconds(10);

std::string Errno(int e) { return std::strerror(e); }

void SetSendTimeout(int fd) {
  timeval tv{kSendTimeoutMs / 1000, (kSendTimeoutMs % 1000) * 1000};
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool UnixAddress(const std::string& path, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

// Writes all of `bytes` to a stream socket within kStreamSendLimit; false (errno set) when it
// could not.
bool SendAll(int fd, std::string_view bytes) {
  const auto until = std::chrono::steady_clock::now() + kStreamSendLimit;
  while (!bytes.empty()) {
    if (std::chrono::steady_clock::now() >= until) {
      errno = ETIMEDOUT;
      return false;
    }
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

class JournaldSink final : public ForwardSink {
 public:
  JournaldSink(std::string socket_path, std::string log_path)
      : socket_path_(std::move(socket_path)), log_path_(std::move(log_path)) {}
  ~JournaldSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  std::string Describe() const override { return "journald " + socket_path_; }

  core::Status Send(std::string_view line, const Json& record) override {
    sockaddr_un addr;
    if (!UnixAddress(socket_path_, addr)) {
      return MakeError(ErrorCode::kInvalidArgument, "journald socket path " + socket_path_ + " is too long");
    }
    if (fd_ < 0) {
      fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd_ < 0) return MakeError(ErrorCode::kIo, "cannot open a socket for journald: " + Errno(errno));
      SetSendTimeout(fd_);
    }
    const std::string entry = EncodeJournalEntry(line, record, log_path_);
    iovec iov{const_cast<char*>(entry.data()), entry.size()};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = sizeof addr;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (::sendmsg(fd_, &msg, MSG_NOSIGNAL) >= 0) return core::Ok();
    if (errno != EMSGSIZE && errno != ENOBUFS) return Failed(errno);
    return SendAsMemfd(entry, addr);
  }

 private:
  // An entry larger than a datagram: journald reads it from a sealed memfd passed with SCM_RIGHTS.
  core::Status SendAsMemfd(const std::string& entry, sockaddr_un& addr) {
    int mfd = ::memfd_create("labgate-audit", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) return MakeError(ErrorCode::kIo, "cannot create a memfd for a large journald entry: " + Errno(errno));
    std::string_view rest = entry;
    while (!rest.empty()) {
      ssize_t n = ::write(mfd, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int e = errno;
        ::close(mfd);
        return MakeError(ErrorCode::kIo, "cannot write a large journald entry to its memfd: " + Errno(e));
      }
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
      const int e = errno;
      ::close(mfd);
      return MakeError(ErrorCode::kIo, "cannot seal the memfd of a large journald entry: " + Errno(e));
    }
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = sizeof addr;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &mfd, sizeof(int));
    const bool sent = ::sendmsg(fd_, &msg, MSG_NOSIGNAL) >= 0;
    const int e = errno;
    ::close(mfd);
    return sent ? core::Ok() : Failed(e);
  }

  core::Status Failed(int e) {
    ::close(fd_);
    fd_ = -1;
    return MakeError(ErrorCode::kUnavailable, "cannot send to journald at " + socket_path_ + ": " + Errno(e) +
                                                  (e == ENOENT || e == ECONNREFUSED ? " (is systemd-journald running?)" : ""));
  }

  std::string socket_path_;
  std::string log_path_;
  int fd_ = -1;
};

class SyslogSink final : public ForwardSink {
 public:
  SyslogSink(SyslogDestination destination, int facility, std::string log_path) : to_(std::move(destination)) {
    origin_.facility = facility;
    origin_.log_path = std::move(log_path);
    origin_.hostname = core::HostName();
    origin_.pid = static_cast<long>(::getpid());
  }
  ~SyslogSink() override { Close(); }

  std::string Describe() const override { return "syslog " + to_.text; }

  core::Status Send(std::string_view line, const Json& record) override {
    if (fd_ >= 0 && stream_ && PeerClosed()) Close();
    if (fd_ < 0) {
      if (auto ok = Connect(); !ok) return ok;
    }
    const std::string message = EncodeSyslogMessage(line, record, origin_);
    bool sent = false;
    if (!stream_) {
      sent = ::send(fd_, message.data(), message.size(), MSG_NOSIGNAL) >= 0;
    } else if (to_.transport == SyslogDestination::Transport::kTcp) {
      sent = SendAll(fd_, std::to_string(message.size()) + " " + message);
    } else {
      sent = SendAll(fd_, message + "\n");
    }
    if (sent) return core::Ok();
    const int e = errno;
    Close();
    return MakeError(ErrorCode::kUnavailable, "cannot send to syslog at " + to_.text + ": " + Errno(e));
  }

 private:
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // A syslog server never writes to us: a readable stream socket means it closed (or reset) it.
  bool PeerClosed() const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    char byte;
    ssize_t n = ::recv(fd_, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

  core::Status Connect() {
    if (to_.transport == SyslogDestination::Transport::kUnix) return ConnectUnix();
    const bool tcp = to_.transport == SyslogDestination::Transport::kTcp;
    // A frozen or firewalled server must not hold the forwarder for long.
    auto fd = core::ConnectSocket(to_.host, to_.port, tcp ? SOCK_STREAM : SOCK_DGRAM, std::chrono::milliseconds(kSendTimeoutMs));
    if (!fd && fd.error().code == ErrorCode::kNotFound) {
      return MakeError(ErrorCode::kUnavailable, "cannot resolve the syslog server " + to_.text + ": " + fd.error().message);
    }
    if (!fd) {
      return MakeError(ErrorCode::kUnavailable,
                       "cannot connect to the syslog server " + to_.text + ": " + fd.error().message);
    }
    SetSendTimeout(*fd);
    fd_ = *fd;
    stream_ = tcp;
    return core::Ok();
  }

  // /dev/log and most local daemons take datagrams; syslog-ng's unix-stream takes lines.
  core::Status ConnectUnix() {
    sockaddr_un addr;
    if (!UnixAddress(to_.path, addr)) {
      return MakeError(ErrorCode::kInvalidArgument, "syslog socket path " + to_.path + " is too long");
    }
    for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
      int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
      if (fd < 0) return MakeError(ErrorCode::kIo, "cannot open a socket for syslog: " + Errno(errno));
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        SetSendTimeout(fd);
        fd_ = fd;
        stream_ = type == SOCK_STREAM;
        return core::Ok();
      }
      const int e = errno;
      ::close(fd);
      if (e != EPROTOTYPE) {
        return MakeError(ErrorCode::kUnavailable, "cannot connect to the syslog socket " + to_.path + ": " + Errno(e));
      }
    }
    return MakeError(ErrorCode::kUnavailable, "the syslog socket " + to_.path + " takes neither datagrams nor streams");
  }

  SyslogDestination to_;
  SyslogOrigin origin_;
  int fd_ = -1;
  bool stream_ = false;
};

}  // namespace

std::unique_ptr<ForwardSink> MakeJournaldSink(std::string socket_path, std::string log_path) {
  return std::make_unique<JournaldSink>(std::move(socket_path), std::move(log_path));
}

std::unique_ptr<ForwardSink> MakeSyslogSink(SyslogDestination destination, int facility, std::string log_path) {
  return std::make_unique<SyslogSink>(std::move(destination), facility, std::move(log_path));
}

}  // namespace labgate::audit
