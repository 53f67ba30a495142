#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "audit/audit_files.h"
#include "core/result.h"

/// Reading the audit log back: the chain verifier, queries, tail and follow. Nothing here ever
/// writes, renames or deletes a file.
///
/// Tamper-evident, not tamper-proof: an edit, a removed or reordered record, a cut line and
/// records cut off the end (through PATH.head) are found, but someone who can write the files
/// can re-seal the whole chain and rewrite the head, and that is not caught here. An operator who
/// ships the newest record's hash (`labgate audit verify --json` prints it) off the machine can
/// check later that the chain still leads to it.
namespace labgate::audit {

using Json = nlohmann::json;

/// Format versions the verifier accepts (records are sealed with kFormatVersion).
inline constexpr int kKnownFormatVersions[] = {1};

/// What VerifyChain found.
struct VerifyReport {
  bool ok = false;
  std::uint64_t records = 0;                   // lines checked, in every file
  std::vector<std::string> files;              // in chain order
  std::uint64_t last_seq = 0;                  // of the last record that verified
  std::string last_hash;                       // of that record
  std::optional<std::uint64_t> first_bad_seq;  // where the chain breaks (set when !ok, if known)
  std::string message;                         // what is wrong, naming file and line ("" when ok)
  std::vector<std::string> warnings;           // not failures, but worth telling the operator
};

/// The pure core of VerifyChain: fed every line of every file in chain order. Not thread-safe.
class ChainVerifier {
 public:
  /// `head` is what PATH.head records (nullopt when there is none); `head_name` is for messages.
  ChainVerifier(std::optional<AuditHead> head, std::string head_name);

  /// The lines that follow come from this file.
  void StartFile(const std::string& name);
  /// One line without its '\n'; `terminated` is false for bytes at the end of a file that no
  /// newline ends.
  void AddLine(std::string_view line, bool terminated);
  /// Checks the end of the chain against the head and returns the verdict.
  VerifyReport Finish();

 private:
  void Break(std::uint64_t seq, std::string message);
  std::string Where() const;

  std::optional<AuditHead> head_;
  std::string head_name_;
  VerifyReport report_;
  std::string file_;
  std::uint64_t line_ = 0;
  std::uint64_t expected_seq_ = 1;
  std::string prev_hash_;
  std::optional<std::string> hash_at_head_seq_;
  bool broken_ = false;
  // Set when a record came where an earlier seq belonged: if that seq shows up later, the
  // records were reordered rather than removed.
  std::optional<std::uint64_t> missing_seq_;
  std::string found_instead_;
  bool missing_found_later_ = false;
};

/// Verifies the whole chain of the log at `path`: every line of AuditFiles(path) is a JSON object
/// of a known format version, seq goes up by one from 1, prev is the previous record's hash, hash
/// is RecordHash of the record, and the last record is the one PATH.head names. A missing head with
/// records present is a warning (logs written before head files existed). kIo when a file cannot
/// be read. Reads a consistent snapshot (a shared flock on PATH.lock while it opens the files).
core::Result<VerifyReport> VerifyChain(const std::string& path);

/// How many records a read returned, and how many lines were not JSON objects (skipped).
struct ReadStats {
  std::uint64_t records = 0;
  std::uint64_t skipped = 0;
};

/// Calls `visit` for each record of every file in chain order until it returns false.
core::Result<ReadStats> ReadRecords(const std::string& path, const std::function<bool(const Json&)>& visit);

/// Every record, in chain order.
core::Result<std::vector<Json>> ReadAllRecords(const std::string& path);

/// The last `n` records, oldest first; reads only as many files, newest first, as it needs.
core::Result<std::vector<Json>> TailRecords(const std::string& path, std::size_t n);

/// Follows the log as it grows, across rotations: each Poll returns the complete records
/// appended since the previous Poll whose seq is above every seq returned so far. Not thread-safe.
class AuditFollower {
 public:
  /// Starts at the current end of PATH; records up to `after_seq` are never returned.
  AuditFollower(std::string path, std::uint64_t after_seq);
  ~AuditFollower();
  AuditFollower(const AuditFollower&) = delete;
  AuditFollower& operator=(const AuditFollower&) = delete;

  /// Records raise the floor, so a caller that printed a tail passes its last seq here.
  void SkipThrough(std::uint64_t seq);
  core::Result<std::vector<Json>> Poll();

 private:
  core::Status ReadNew(std::vector<Json>& out);
  void Take(std::string_view line, std::vector<Json>& out);
  core::Status OpenPath(bool at_end);

  std::string path_;
  std::uint64_t last_seq_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t inode_ = 0;
  off_t offset_ = 0;
  std::string partial_;
};

/// Which records `labgate audit query` shows. Every field that is set must match.
struct AuditFilter {
  std::optional<std::string> target;  // equals `target`, or is one of a refusal's `targets`
  std::optional<std::string> since;   // canonical timestamps (see ParseTimeBound), inclusive
  std::optional<std::string> until;
  std::optional<bool> allowed;       // decision.allowed of intents and refusals; results follow
                                     // the intent with their actionId
  std::optional<std::string> actor;  // substring of who.osUser, who.client.name, who.via or
                                     // who.sessionId (results: their intent's `who`)
};

/// What an intent recorded, for the results that follow it.
struct IntentInfo {
  std::optional<bool> allowed;
  Json who;
};
using IntentIndex = std::unordered_map<std::string, IntentInfo>;

/// Whether `record` passes `filter`. `intents` (by actionId) supplies the decision and `who` of a
/// result's intent; without it, results match only filters that need neither. Pure.
bool Matches(const Json& record, const AuditFilter& filter, const IntentIndex& intents = {});

/// Matches records streamed in chain order, remembering intents so their results follow them.
class AuditQuery {
 public:
  explicit AuditQuery(AuditFilter filter) : filter_(std::move(filter)) {}
  bool Accept(const Json& record);

 private:
  AuditFilter filter_;
  IntentIndex intents_;
};

/// "2026-11-18T11:06:40Z", "2026-11-18T11:06", "2026-11-18" (UTC unless an offset is given) or a
/// duration ago ("90s", "30m", "1h", "2d", "1w") -> the canonical record timestamp
/// (2026-11-18T11:06:40.000Z), comparable as a string with records' `ts`. Pure.
core::Result<std::string> ParseTimeBound(std::string_view text, std::chrono::system_clock::time_point now);

/// One line for people: ts, seq, kind, who, target, action or event, decision and rule, exit
/// code, and a short command summary. Pure.
std::string SummarizeRecord(const Json& record);

}  // namespace labgate::audit
