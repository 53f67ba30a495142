#pragma once

#include <deque>
#include <mutex>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_storage.h"
#include "core/clock.h"
#include "core/result.h"

namespace labgate::audit {

using Json = nlohmann::json;

inline constexpr int kFormatVersion = 1;

/// Who asked for an action.
struct Actor {
  std::string via;             // "mcp" or "cli"
  std::string client_name;     // MCP clientInfo.name
  std::string client_version;  // MCP clientInfo.version
  std::string os_user;         // the OS user labgate runs as (or the peer, for sockets)
  std::string session_id;
};

/// The policy decision an action ran (or was refused) under.
struct DecisionRecord {
  bool allowed = false;
  std::string rule;
  std::string reason;
  std::string risk;  // the command's risk class, when there is a command
};

/// What is about to run, written durably before it runs.
struct Intent {
  std::string action_id;
  Actor actor;
  std::string target;
  std::string path;    // "local", "ssh" or "node"
  std::string action;  // "run", ...
  Json payload;        // exact request, already redacted
  DecisionRecord decision;
  std::optional<std::string> approver;
};

/// How an action ended.
struct Outcome {
  std::string action_id;
  std::string target;
  std::string path;
  std::string action;
  std::optional<int> exit_code;
  std::optional<std::string> signal;
  bool timed_out = false;
  bool cancelled = false;
  std::int64_t duration_ms = 0;
  std::uint64_t stdout_bytes = 0;
  std::uint64_t stderr_bytes = 0;
  std::string output_digest;  // "sha256:<stdout digest>:<stderr digest>" style, see EncodeOutcome
  int retries = 0;
  bool escalated = false;
  std::optional<std::string> error;
  std::optional<std::string> artifact;  // captures: the stored file's labgate://artifacts/ URI
  Json file;  // file actions: path, sizes and SHA-256 before and after (never content); null otherwise
};

/// A refusal or rejection that never reached execution (unknown target, policy, bad input).
struct Refusal {
  std::string action_id;
  Actor actor;
  std::vector<std::string> targets;
  std::string action;
  Json payload;
  DecisionRecord decision;
  std::string error;
};

/// Something that changed trust rather than ran a command: pairing, approval, rotation,
/// revocation, a refused login, a node coming online or going away.
struct Event {
  std::string event;  // "node.paired", "node.revoked", "auth.refused", ...
  Actor actor;        // who did it; via "agent" for what a device did on its own
  std::string target;  // the node id, when there is one
  Json details = Json::object();
};

Json EncodeActor(const Actor& actor);
/// Record bodies (without v/seq/ts/prev/hash, which AuditLog adds).
Json EncodeIntent(const Intent& intent);
Json EncodeOutcome(const Outcome& outcome);
Json EncodeRefusal(const Refusal& refusal);
Json EncodeEvent(const Event& event);

/// Seals a body into a chained record: adds v, seq, ts and prev, then hash = SHA-256 of the
/// record's canonical JSON without `hash`. `last_line` is the previous record ("" for none).
core::Result<std::string> SealRecord(Json body, std::string_view last_line, const std::string& ts);

/// Re-computes a sealed record's hash; used by the verifier and tests.
std::string RecordHash(const Json& record);

/// A fresh random action id ("act-" + 16 hex digits).
std::string NewActionId();

/// The audit log: seals records into the hash chain and appends them durably. Thread-safe
/// when its storage is.
class AuditLog {
 public:
  /// Also tells `storage` how to record a cut-off tail (an `audit.gap` event).
  AuditLog(AuditStorage& storage, const core::Clock& clock);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Appends one record. kSynced returns only once it is on disk.
  ///
  /// When the storage fails (a full disk), an intent fails — its command does not run — but any
  /// other record (a result of something that did run, a refusal, an event) is kept in memory
  /// and written, in order and after an `audit.delayed` event, by the next append that
  /// succeeds: space coming back is enough to resume, and nothing that happened goes missing.
  /// The error is still returned, so the caller can say the record is late.
  core::Status Append(Json body, Durability durability = Durability::kSynced);
  std::string Describe() const { return storage_.Describe(); }
  /// Records waiting for the storage to work again.
  std::size_t pending() const;

  static constexpr std::size_t kMaxPending = 10000;

 private:
  core::Status AppendLocked(Json body, Durability durability);  // with mutex_ held
  core::Status AppendNow(const Json& body, Durability durability);

  AuditStorage& storage_;
  const core::Clock& clock_;
  mutable std::mutex mutex_;
  // The line this log sealed last and its seq and hash: the next record's `last` is almost
  // always that line, and parsing it again for two fields was most of the cost of sealing.
  std::string chain_line_;
  AuditHead chain_head_;
  std::deque<Json> pending_;
  std::string first_failure_;  // when and why the records now pending could not be written
  std::size_t dropped_ = 0;    // past kMaxPending: counted, and said in the audit.delayed event
};

}  // namespace labgate::audit
