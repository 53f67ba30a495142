#include "audit/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include "audit/interrupted.h"
#include "core/base64.h"
#include "core/hashing.h"
#include "core/json_rpc.h"
#include "core/text.h"

namespace labgate::audit {
namespace {

template <typename T>
Json OrNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

Json EncodeDecision(const DecisionRecord& d) {
  Json out = {{"allowed", d.allowed}, {"rule", d.rule}, {"reason", d.reason}};
  if (!d.risk.empty()) out["risk"] = d.risk;
  return out;
}

}  // namespace

Json EncodeActor(const Actor& actor) {
  Json who = {{"via", actor.via}, {"osUser", actor.os_user}};
  if (!actor.client_name.empty() || !actor.client_version.empty()) {
    who["client"] = {{"name", actor.client_name}, {"version", actor.client_version}};
  }
  if (!actor.session_id.empty()) who["sessionId"] = actor.session_id;
  return who;
}

Json EncodeIntent(const Intent& intent) {
  return Json{{"kind", "intent"},
              {"actionId", intent.action_id},
              {"who", EncodeActor(intent.actor)},
              {"target", intent.target},
              {"path", intent.path},
              {"action", intent.action},
              {"payload", intent.payload},
              {"decision", EncodeDecision(intent.decision)},
              {"approver", OrNull(intent.approver)}};
}

Json EncodeOutcome(const Outcome& o) {
  Json j{{"kind", "result"},
              {"actionId", o.action_id},
              {"target", o.target},
              {"path", o.path},
              {"action", o.action},
              {"exitCode", OrNull(o.exit_code)},
              {"signal", OrNull(o.signal)},
              {"timedOut", o.timed_out},
              {"cancelled", o.cancelled},
              {"durationMs", o.duration_ms},
              {"stdoutBytes", o.stdout_bytes},
              {"stderrBytes", o.stderr_bytes},
              {"outputDigest", o.output_digest},
              {"retries", o.retries},
              {"escalated", o.escalated},
              {"error", OrNull(o.error)}};
  if (o.artifact) j["artifact"] = *o.artifact;
  if (!o.file.is_null()) j["file"] = o.file;
  return j;
}

Json EncodeRefusal(const Refusal& r) {
  return Json{{"kind", "refusal"},
              {"actionId", r.action_id},
              {"who", EncodeActor(r.actor)},
              {"targets", r.targets},
              {"action", r.action},
              {"payload", r.payload},
              {"decision", EncodeDecision(r.decision)},
              {"error", r.error}};
}

Json EncodeEvent(const Event& e) {
  return Json{{"kind", "event"}, {"event", e.event}, {"who", EncodeActor(e.actor)}, {"target", e.target},
              {"details", e.details}};
}

std::string RecordHash(const Json& record) {
  Json copy = record;
  copy.erase("hash");
  return core::Sha256Hex(core::jsonrpc::Encode(copy));
}

namespace {

// Where the chain stands after `line`, or why nothing may be appended after it.
core::Result<AuditHead> LinkOf(std::string_view line) {
  auto head = HeadOfRecord(line);
  if (!head) {
    return core::MakeError(core::ErrorCode::kIo,
                           "the last record of the audit log is not a labgate record; nothing was run. "
                           "Check it with `labgate audit verify` (records are never deleted)");
  }
  return *head;
}

// SealRecord after the record `previous` names (nullptr: the first record); `sealed`, when
// given, receives the new record's own seq and hash.
std::string SealAfter(Json body, const AuditHead* previous, const std::string& ts, AuditHead* sealed = nullptr) {
  body.erase("hash");
  const std::uint64_t seq = previous != nullptr ? previous->seq + 1 : 1;
  body["v"] = kFormatVersion;
  body["seq"] = seq;
  body["ts"] = ts;
  body["prev"] = previous != nullptr ? previous->hash : std::string();
  std::string hash = core::Sha256Hex(core::jsonrpc::Encode(body));  // RecordHash, without its copy
  body["hash"] = hash;
  if (sealed != nullptr) *sealed = AuditHead{seq, std::move(hash)};
  return core::jsonrpc::Encode(body);
}

}  // namespace

core::Result<std::string> SealRecord(Json body, std::string_view last_line, const std::string& ts) {
  if (last_line.empty()) return SealAfter(std::move(body), nullptr, ts);
  auto previous = LinkOf(last_line);
  if (!previous) return previous.error();
  return SealAfter(std::move(body), &*previous, ts);
}

// OpenSSL's DRBG: a std::random_device per call probed the CPU for its source every time, on the
// path of every call.
std::string NewActionId() { return "act-" + core::HexEncode(core::RandomBytes(8)); }

AuditLog::AuditLog(AuditStorage& storage, const core::Clock& clock) : storage_(storage), clock_(clock) {
  storage_.SetGapComposer([this](std::string_view last, std::string_view dropped) {
    Json body = EncodeEvent(Event{"audit.gap", Actor{"gateway", "", "", "", ""}, "",
                                  Json{{"why", "the end of the log held an incomplete record (a crash or a full disk "
                                               "during a write); it was taken off so the chain goes on"},
                                       {"droppedBytes", dropped.size()},
                                       {"dropped", core::ToValidUtf8(dropped.substr(0, 4096))}}});
    return SealRecord(std::move(body), last, core::FormatTimestamp(clock_.Now()));
  });
}

AuditLog::~AuditLog() { storage_.SetGapComposer(nullptr); }

core::Status AuditLog::AppendNow(const Json& body, Durability durability) {
  const std::string ts = core::FormatTimestamp(clock_.Now());
  return storage_.Append(
      [&](std::string_view last) -> core::Result<ComposedLine> {
        const AuditHead* previous = nullptr;
        if (!last.empty()) {
          if (last != chain_line_) {
            // Not the line this log sealed last (another process appended, or that write
            // failed): read where the chain stands from the line itself.
            auto link = LinkOf(last);
            if (!link) return link.error();
            chain_line_ = last;
            chain_head_ = std::move(*link);
          }
          previous = &chain_head_;
        }
        AuditHead sealed;
        std::string line = SealAfter(body, previous, ts, &sealed);
        chain_line_ = line;
        chain_head_ = sealed;
        return ComposedLine{std::move(line), std::move(sealed)};
      },
      durability);
}

std::size_t AuditLog::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.size();
}

core::Status AuditLog::Append(Json body, Durability durability) {
  core::Status status = core::Ok();
  const std::string action_id = body.value("actionId", "");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status = AppendLocked(std::move(body), durability);
  }
  // The fsync of a kSynced record happens here, outside the lock, shared with other threads.
  core::Status synced = storage_.AfterAppend();
  if (status && !synced) {
    // The record is in the file but may not be on disk, so its action does not run. Say so
    // after it, for whoever reads the log once the disk is back.
    Json note = EncodeEvent(Event{"audit.not-durable", Actor{"gateway", "", "", "", ""}, "",
                                  Json{{"actionId", action_id},
                                       {"why", synced.error().message},
                                       {"meaning", "the record before this one could not be made durable; what it "
                                                   "describes did not run"}}});
    {
      std::lock_guard<std::mutex> lock(mutex_);
      (void)AppendNow(note, Durability::kSoon);
    }
    (void)storage_.AfterAppend();
    return synced;
  }
  return status;
}

core::Status AuditLog::AppendLocked(Json body, Durability durability) {
  const bool intent = body.value("kind", "") == "intent";
  if (intent && !body.contains("proc")) {
    // Which process owns this intent: if it dies before the result, the next labgate to start
    // records the intent as interrupted (RecordInterrupted), and leaves a live one alone.
    static const pid_t pid = ::getpid();
    static const std::uint64_t started = ProcessStartTicks(pid).value_or(0);
    body["proc"] = {{"pid", pid}, {"start", started}};
  }
  auto keep = [&](const core::Status& failed) {
    // An intent that is not on record means its command does not run: nothing to keep.
    if (intent) return;
    if (pending_.empty() && dropped_ == 0) {
      first_failure_ = core::FormatTimestamp(clock_.Now()) + ": " + failed.error().message;
    }
    if (pending_.size() >= kMaxPending) {
      ++dropped_;
      return;
    }
    body["writtenLate"] = {{"happenedAt", core::FormatTimestamp(clock_.Now())}};
    pending_.push_back(std::move(body));
  };
  if (!pending_.empty() || dropped_ > 0) {
    Json delayed = EncodeEvent(Event{"audit.delayed", Actor{"gateway", "", "", "", ""}, "",
                                     Json{{"records", pending_.size()},
                                          {"lost", dropped_},
                                          {"firstFailure", first_failure_},
                                          {"why", "the audit log could not be written (a full disk?); these records "
                                                  "follow, each with writtenLate.happenedAt"}}});
    if (auto ok = AppendNow(delayed, Durability::kSoon); !ok) {
      keep(ok);
      return ok;
    }
    dropped_ = 0;
    while (!pending_.empty()) {
      if (auto ok = AppendNow(pending_.front(), Durability::kSoon); !ok) {
        keep(ok);
        return ok;
      }
      pending_.pop_front();
    }
  }
  auto ok = AppendNow(body, durability);
  if (!ok) keep(ok);
  return ok;
}

}  // namespace labgate::audit
