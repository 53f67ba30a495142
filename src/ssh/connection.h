#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/cancel.h"
#include "core/process_runner.h"
#include "core/result.h"
#include "ssh/host_spec.h"

struct ssh_session_struct;  // libssh's session, kept out of this header

namespace labgate::ssh {

/// Error codes a connection uses, so callers know whether a retry is safe:
/// kUnavailable — failed before the command started (connect refused/reset, channel open);
/// kTimeout — the deadline passed while connecting; kRefused — host key or authentication;
/// kIo — the connection broke after the command may have started (never retried).
struct HostKeyInfo {
  std::string fingerprint;  // "SHA256:..." as ssh-keygen -l prints it
  std::string endpoint;     // "host:port" actually contacted
  std::string status;       // "known", "unknown", "changed"
};

/// How one session uses its channels.
struct ChannelSettings {
  int max_channels = 8;  // below OpenSSH's default MaxSessions (10)
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};  // then the session is closed
  // A session channel kept open ahead of the next command saves it a round trip. A process that
  // runs one command per host and exits has no next command: there the spare only costs sshd
  // the work of opening and closing a channel.
  bool spare_channel = true;
};

/// One authenticated libssh session and the thread that drives it. Commands run on their own
/// channels, many at once up to `settings.max_channels`; further calls queue. Thread-safe.
class Connection {
 public:
  /// Connects, verifies the host key strictly (or records it, for accept-new) and authenticates,
  /// all within `deadline`.
  static core::Result<std::shared_ptr<Connection>> Open(const HostSpec& spec,
                                                        std::chrono::steady_clock::time_point deadline,
                                                        const ChannelSettings& settings);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs one command; blocks until it ends, its deadline passes or `cancel` fires. A deadline
  /// or a cancellation stops the remote process group through a second channel.
  core::Result<core::ProcessOutcome> Exec(const ExecRequest& request, const core::CancelToken& cancel);

  /// False once the session broke or was reaped for idleness; the pool then reconnects.
  bool alive() const { return alive_.load(); }

 private:
  struct Job;
  struct Impl;
  Connection(std::string id, std::unique_ptr<Impl> impl, const ChannelSettings& settings);
  void Loop();

  std::string id_;
  std::unique_ptr<Impl> impl_;
  const ChannelSettings settings_;
  std::atomic<bool> alive_{true};

  std::mutex mutex_;
  std::condition_variable slots_cv_;
  int busy_ = 0;  // commands holding a channel slot
  std::deque<std::shared_ptr<Job>> incoming_;
  bool stopping_ = false;
  int wake_fd_ = -1;
  std::thread io_;
};

/// An authenticated libssh session left in blocking mode (and the jump tunnel it rides on), for
/// work libssh only does by waiting, such as SFTP. Opened with the same host-key checks and
/// authentication as a Connection. Used by one thread at a time, except Abort.
class BlockingSession {
 public:
  static core::Result<std::unique_ptr<BlockingSession>> Open(const HostSpec& spec,
                                                             std::chrono::steady_clock::time_point deadline);
  ~BlockingSession();
  BlockingSession(const BlockingSession&) = delete;
  BlockingSession& operator=(const BlockingSession&) = delete;

  ssh_session_struct* get() const;
  /// Limits each libssh wait to what is left before `deadline`; false when nothing is.
  bool Arm(std::chrono::steady_clock::time_point deadline);
  /// Shuts the socket down so every wait in libssh ends with an error; any thread may call it.
  void Abort();
  bool aborted() const { return aborted_.load(); }

 private:
  struct Impl;
  explicit BlockingSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> aborted_{false};
};

/// Connects far enough to see the host key, without authenticating: what `labgate hosts trust`
/// shows the operator. Does not write anything.
core::Result<HostKeyInfo> ProbeHostKey(const HostSpec& spec, std::chrono::milliseconds timeout);

/// Whether a key for the host is recorded, without connecting: "recorded", "not recorded" or
/// "accept-new (not yet seen)".
std::string RecordedHostKeyStatus(const HostSpec& spec);

/// Records the host's current key in spec.known_hosts after checking it equals `fingerprint`.
core::Status TrustHostKey(const HostSpec& spec, const std::string& fingerprint, std::chrono::milliseconds timeout);

}  // namespace labgate::ssh
