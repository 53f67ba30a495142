#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace labgate::nodes {

/// Who may even start an SSH handshake with the node listener: sources inside
/// `allowed_networks`, and not those that failed to log in `fail_limit` times within
/// `fail_window`. Decided on the peer address alone, before any byte of SSH is exchanged.
/// Thread-safe (the accept thread asks, the event loops report failures).
class SourceGate {
 public:
  using Clock = std::chrono::steady_clock;

  struct Settings {
    std::vector<std::string> allowed_networks;  // IPv4 CIDR; empty admits every source
    int fail_limit = 10;
    std::chrono::seconds fail_window{300};
  };

  /// Why a connection from `address` was refused, to be audited.
  struct Refusal {
    std::string rule;    // "gateway.allowed_networks" or "gateway.auth_fail_limit"
    std::string reason;  // for the audit record and the log
    bool report = true;  // false: a repeat within a minute, counted in the next report instead
    std::uint64_t suppressed = 0;  // refusals of this source not reported since the last report
  };

  explicit SourceGate(Settings settings) : settings_(std::move(settings)) {}

  /// nullopt admits the connection; `address` is the peer's IP ("127.0.0.1", "::ffff:10.0.0.4").
  std::optional<Refusal> Admit(const std::string& address, Clock::time_point now);
  /// A login from `address` failed (wrong key, bad signature, no login in time).
  void RecordFailure(const std::string& address, Clock::time_point now);
  /// New settings from a reloaded hosts.toml; failure counts are kept.
  void Update(Settings settings);

  /// A source refused for failed logins right now, for `labgate nodes list`.
  struct Lockout {
    std::string address;
    std::size_t failures = 0;
    std::chrono::system_clock::time_point until;
  };
  std::vector<Lockout> LockedOut(Clock::time_point now);

 private:
  struct Source {
    std::deque<Clock::time_point> failures;  // within the window, oldest first
    std::optional<Clock::time_point> last_report;
    std::uint64_t suppressed = 0;
  };
  std::optional<Refusal> Refuse(Source& source, std::string rule, std::string reason, Clock::time_point now);
  // How much longer `source` is locked out for failed logins (its old failures dropped first);
  // nullopt when it is not. The one rule Admit and LockedOut share.
  std::optional<Clock::duration> LockedFor(Source& source, Clock::time_point now) const;
  void Forget(Clock::time_point now);

  std::mutex mutex_;
  Settings settings_;
  std::map<std::string, Source> sources_;
};

}  // namespace labgate::nodes
