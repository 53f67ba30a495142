#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "audit/audit_storage.h"
#include "core/result.h"

/// Copies of audit records for a log store the gateway's user cannot rewrite (journald, a
/// syslog server). The local file stays the record of truth: forwarding never holds up or fails
/// an append beyond a short wait, and what it could not deliver is said in the local log.
namespace labgate::audit {

using Json = nlohmann::json;

/// Where copies go: one connection-like destination. Called from one thread only.
class ForwardSink {
 public:
  virtual ~ForwardSink() = default;
  /// Delivers one sealed line (`record` is it parsed). An error means it was not delivered and
  /// may be sent again; the sink reconnects on its own on the next call.
  virtual core::Status Send(std::string_view line, const Json& record) = 0;
  /// "syslog udp:127.0.0.1:514", for messages.
  virtual std::string Describe() const = 0;
};

/// A queue and a thread in front of one sink. Lines go out in the order they were appended here;
/// a failed send is retried (after 100 ms, doubling up to kMaxBackoff) before any later line.
/// At most kMaxQueued lines wait; past that the oldest are dropped and counted. Thread-safe.
class AuditForwarder {
 public:
  static constexpr std::size_t kMaxQueued = 10000;
  static constexpr std::chrono::milliseconds kMaxBackoff{5000};
  /// How long Forward(wait = true) waits for the line to be sent.
  static constexpr std::chrono::milliseconds kSyncWait{1000};
  /// How long the destructor keeps sending what is queued.
  static constexpr std::chrono::milliseconds kDrainTime{2000};

  /// Told when delivery starts failing ({"state":"failing", ...}) and when it works again
  /// ({"state":"resumed", "lost": N, ...}); called on the forwarder's thread, never with a lock
  /// held, so it may append to the audit log (which forwards that record too).
  using TroubleHandler = std::function<void(const Json& details)>;

  explicit AuditForwarder(std::unique_ptr<ForwardSink> sink);
  ~AuditForwarder();  // Stop()
  AuditForwarder(const AuditForwarder&) = delete;
  AuditForwarder& operator=(const AuditForwarder&) = delete;

  void SetTroubleHandler(TroubleHandler handler);
  /// Queues a sealed line. With `wait`, returns once it was sent, delivery is failing, or
  /// kSyncWait passed: an intent's copy leaves before its command runs whenever the store is up.
  void Forward(std::string line, bool wait);
  /// Sends what is queued for up to kDrainTime (not at all while delivery is failing), then stops
  /// the thread; what is left, and later lines, are counted as lost.
  /// The trouble handler is not called after Stop returns.
  void Stop();

  std::string Describe() const { return sink_->Describe(); }
  std::uint64_t sent() const;
  std::uint64_t lost() const;  // dropped from a full queue, or left at Stop

  /// How delivery stands, for `labgate doctor`.
  struct Health {
    std::string destination;
    std::uint64_t sent = 0;
    std::uint64_t lost = 0;
    std::size_t queued = 0;
    bool failing = false;
    std::string error;  // the last send's error while failing
  };
  Health health() const;

 private:
  void Loop();

  std::unique_ptr<ForwardSink> sink_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable sent_cv_;
  std::deque<std::string> queue_;
  std::uint64_t queued_total_ = 0;  // lines ever queued: ticket numbers
  std::uint64_t done_total_ = 0;    // lines sent or dropped, in order
  std::uint64_t sent_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t lost_reported_ = 0;
  bool failing_ = false;
  std::string last_error_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point stop_deadline_{};
  TroubleHandler trouble_;
  std::thread thread_;
};

/// An AuditStorage that appends through `inner` and then hands every line it appended (the
/// record, and an `audit.gap` record written before it) to each forwarder. kSynced records wait
/// for their copies (AuditForwarder::Forward with wait). The forwarders outlive it.
class ForwardingAuditStorage final : public AuditStorage {
 public:
  ForwardingAuditStorage(AuditStorage& inner, std::vector<AuditForwarder*> forwarders);
  void SetGapComposer(ComposeGap compose) override;
  core::Status Append(const ComposeLine& compose, Durability durability) override;
  std::string Describe() const override { return inner_.Describe(); }

 private:
  AuditStorage& inner_;
  std::vector<AuditForwarder*> forwarders_;
};

}  // namespace labgate::audit
