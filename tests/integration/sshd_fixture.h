#pragma once

#include <memory>
#include <string>
#include <vector>

#include "subprocess.h"

namespace labgate::testing {

/// A client key pair made once per test binary with ssh-keygen.
struct ClientKey {
  std::string private_path;
  std::string public_line;
};
const ClientKey& TestClientKey();

/// A real OpenSSH sshd on 127.0.0.X, started from a temp dir with its own host key and an
/// authorized_keys holding the test client key. Stopped (by PID) on destruction.
class Sshd {
 public:
  struct Options {
    Options(std::string address_ = "127.0.0.2", bool allow_tcp_forwarding_ = true)  // NOLINT(google-explicit-constructor)
        : address(std::move(address_)), allow_tcp_forwarding(allow_tcp_forwarding_) {}
    std::string address;
    bool allow_tcp_forwarding = true;
    bool sftp = false;  // serve the sftp subsystem (internal-sftp)
    bool other_users = false;  // authorized_keys readable by every account, not only the test user
    std::string log_level = "ERROR";  // DEBUG1 logs every channel open, for tests that count them
    std::string extra_config;
  };
  explicit Sshd(Options options);
  ~Sshd();

  const std::string& address() const { return address_; }
  int port() const { return port_; }
  /// `ssh-keygen -l` form: SHA256:...
  const std::string& fingerprint() const { return fingerprint_; }
  /// A known_hosts line for this server.
  std::string KnownHostsLine() const;
  /// Kills the per-connection sshd processes (the server side of live sessions), not the listener.
  void KillSessions();
  /// A frozen host: SIGSTOP to the listener and every sshd process below it (the server side
  /// of live sessions). The kernel still accepts connections and acknowledges data.
  void Freeze();
  /// SIGCONT to the same processes.
  void Thaw();
  bool running() const { return process_ != nullptr; }
  /// What sshd wrote to stderr so far (its log, at `Options::log_level`).
  std::string Log() const { return process_ ? process_->Stderr() : ""; }
  void Stop();

 private:
  TempDir dir_;
  std::string address_;
  int port_ = 0;
  std::string host_public_;
  std::string fingerprint_;
  std::unique_ptr<Subprocess> process_;
  std::vector<pid_t> frozen_;
};

/// A TCP listener that accepts connections into its backlog and never says a word.
class SilentListener {
 public:
  explicit SilentListener(const std::string& address);
  ~SilentListener();
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

/// A port on `address` with nothing listening (connect is refused).
int ClosedPort(const std::string& address);

/// The login name the tests run as (the user sshd lets in).
std::string CurrentUser();

/// Skips unless /usr/sbin/sshd exists; CI installs it, so CI never skips.
bool HaveSshd();

}  // namespace labgate::testing
