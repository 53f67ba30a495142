#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
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
  /// Delivers one sealed line (`record` is it parsed, or discarded when it is not JSON). An error
  /// means it was not delivered and may be sent again; the sink reconnects on its own next time.
  virtual core::Status Send(std::string_view line, const Json& record) = 0;
  /// "syslog udp:127.0.0.1:514", for messages.
  virtual std::string Describe() const = 0;
};

/// A queue and a thread in front of one sink. Lines go out in the order they were queued; a
/// failed send is retried (after 100 ms, doubling up to kMaxBackoff) before any later line. At
/// most kMaxQueued lines wait; past that the oldest are dropped and counted. Thread-safe.
class AuditForwarder {
 public:
  static constexpr std::size_t kMaxQueued = 10000;
  static constexpr std::chrono::milliseconds kMaxBackoff{5000};
  /// How long the destructor keeps sending what is queued.
  static constexpr std::chrono::milliseconds kDrainTime{2000};
  /// Delivery counts as working again after this many sends in a row succeed: one success
  /// proves little (a UDP send to a closed port fails only on the send after it).
  static constexpr int kResumeAfter = 3;
  /// At most one "failing" report per this long, however often delivery flaps.
  static constexpr std::chrono::seconds kTroubleInterval{60};

  /// Told when delivery starts failing ({"state":"failing", ...}) and when it works again
  /// ({"state":"resumed", "lost": N, ...}); called on the forwarder's thread, never with a lock
  /// held, so it may append to the audit log (which forwards that record too).
  using TroubleHandler = std::function<void(const Json& details)>;

  struct Health {
    std::string destination;
    std::uint64_t sent = 0;
    std::uint64_t lost = 0;
    std::size_t queued = 0;
    bool failing = false;
    std::string error;  // the last send's error while failing
  };

  explicit AuditForwarder(std::unique_ptr<ForwardSink> sink);
  ~AuditForwarder();  // Stop()
  AuditForwarder(const AuditForwarder&) = delete;
  AuditForwarder& operator=(const AuditForwarder&) = delete;

  void SetTroubleHandler(TroubleHandler handler);
  /// Queues a sealed line; returns its ticket for WaitSent.
  std::uint64_t Forward(std::string line);
  /// Returns once the line of `ticket` was sent, delivery is failing, or `deadline` passed. On
  /// the forwarder's own thread (a trouble event being appended) it returns at once.
  void WaitSent(std::uint64_t ticket, std::chrono::steady_clock::time_point deadline) const;
  /// Sends what is queued for up to kDrainTime (not at all while delivery is failing), then
  /// stops; what is left, and later lines, count as lost. A send stuck past that (a resolver
  /// that does not answer) is left to finish on its own: Stop does not wait for it. The trouble
  /// handler is not called after Stop returns.
  void Stop();

  std::string Describe() const;
  std::uint64_t sent() const;
  std::uint64_t lost() const;  // dropped from a full queue, or left at Stop
  /// How delivery stands, for `labgate doctor`.
  Health health() const;

 private:
  struct State;  // shared with the thread, which may outlive this object (see Stop)
  static void Loop(const std::shared_ptr<State>& state);

  std::shared_ptr<State> state_;
  std::thread::id thread_id_;
};

/// An AuditStorage that appends through `inner` and then hands every line it appended (the
/// record, and an `audit.gap` record written before it) to each forwarder. A kSynced record's
/// copies are waited for in AfterAppend, outside the audit log's lock, for at most kSyncWait
/// in all. The forwarders outlive it.
class ForwardingAuditStorage final : public AuditStorage {
 public:
  /// How long an intent waits for its copies to leave before its command runs anyway.
  static constexpr std::chrono::milliseconds kSyncWait{1000};

  ForwardingAuditStorage(AuditStorage& inner, std::vector<AuditForwarder*> forwarders);
  void SetGapComposer(ComposeGap compose) override;
  core::Status Append(const ComposeLine& compose, Durability durability) override;
  core::Status AfterAppend() override;
  std::string Describe() const override { return inner_.Describe(); }

 private:
  AuditStorage& inner_;
  std::vector<AuditForwarder*> forwarders_;
};

}  // namespace labgate::audit
