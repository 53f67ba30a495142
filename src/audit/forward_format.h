#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// How a sealed audit record looks on its way to journald or syslog, and how a copy read back
/// from there is compared with the local chain (`labgate audit verify --against`). Pure.
namespace labgate::audit {

using Json = nlohmann::json;

/// journald's MESSAGE_ID of every labgate audit record (`journalctl MESSAGE_ID=...`).
inline constexpr std::string_view kJournalMessageId = "5f0c7d2a9b3e4c61a8d7e2f41b6c9a03";
/// The structured-data element of RFC 5424 messages. 32473 is the enterprise number RFC 5612
/// sets aside for documentation; labgate has none of its own.
inline constexpr std::string_view kSyslogSdId = "labgate@32473";
/// A syslog message carries the whole record up to this size; a larger one is sent as a stub
/// with its seq and hash (enough for `verify --against`), which fits any UDP path.
inline constexpr std::size_t kSyslogMaxRecordBytes = 60 * 1024;

/// Syslog severity (RFC 5424) of a record; journald's PRIORITY is the same number. Intents and
/// results are informational, refusals and events notices, the log's own trouble a warning.
int RecordSeverity(const Json& record);

/// A journald native-protocol datagram (KEY=value lines; values with a newline in the binary
/// form): MESSAGE (one line for people), MESSAGE_ID, PRIORITY, SYSLOG_IDENTIFIER=labgate,
/// LABGATE_SEQ, LABGATE_HASH, LABGATE_PREV, LABGATE_KIND, LABGATE_TS, LABGATE_ACTION_ID,
/// LABGATE_TARGET, LABGATE_ACTION, LABGATE_EVENT (those the record has), LABGATE_LOG (the
/// local log's path) and LABGATE_RECORD (the sealed line itself).
std::string EncodeJournalEntry(std::string_view line, const Json& record, std::string_view log_path);

/// Where the syslog header's fields come from.
struct SyslogOrigin {
  int facility = 10;     // authpriv
  std::string hostname;  // sanitised to printable ASCII without spaces ("-" when empty)
  long pid = 0;
  std::string log_path;  // the local log, in the structured data (log="...") when set
};

/// One RFC 5424 message: `<PRI>1 TS HOST labgate PID KIND [labgate@32473 seq="N" hash="H"
/// log="PATH"]` then a UTF-8 BOM and the sealed line (or, past kSyslogMaxRecordBytes, a stub
/// with its seq, hash, size, kind, actionId, target and action). No framing: the transport
/// adds it.
std::string EncodeSyslogMessage(std::string_view line, const Json& record, const SyslogOrigin& origin);

/// What one line of an exported copy says about a record.
struct ForwardedCopy {
  std::uint64_t seq = 0;
  std::string hash;
  /// The line carried the whole record, and it does not hash to `hash` (or disagrees with the
  /// fields beside it): the copy itself was damaged or forged.
  bool damaged = false;
  /// Where it says it came from, when the line tells: the local log's path (journald's
  /// LABGATE_LOG, syslog's structured data) and the sender's uid (journald's _UID, which journald
  /// sets itself and a sender cannot choose).
  std::string log;
  std::optional<std::uint32_t> uid;
};

/// Reads one line of an exported copy: a `journalctl -o json` entry (LABGATE_SEQ, LABGATE_HASH,
/// and LABGATE_RECORD when present), a syslog line as rsyslog or syslog-ng store it (the record
/// from its first `{`, or only the structured data when the message was cut), or a raw audit
/// line. A syslog line must name labgate before its record. A journal entry without LABGATE_*
/// fields whose MESSAGE is such a syslog line (syslog sent to journald's /dev/log) counts too.
/// nullopt when the line holds no labgate record (other messages in the same file).
std::optional<ForwardedCopy> ParseForwardedLine(std::string_view line);

/// One disagreement between the local chain and the copy.
struct CopyProblem {
  std::uint64_t seq = 0;
  std::string what;
};

/// What CompareWithCopy found. `ok` when every copied record is in the local chain with the
/// same hash and no copy is damaged or contradicts another; local records without a copy (sent
/// over UDP and lost, or written while forwarding was off) are counted, not failures.
struct CopyComparison {
  bool ok = true;
  std::uint64_t copies = 0;     // lines that held a record
  std::uint64_t matched = 0;    // distinct seqs whose copy agrees with the local record
  std::uint64_t uncopied = 0;   // local records, within the copy's seq range, with no copy
  std::uint64_t after_copy = 0; // local records newer than the newest copy
  std::uint64_t first_copied = 0;
  std::uint64_t last_copied = 0;  // the chain up to here is vouched for: each hash covers all before it
  std::vector<CopyProblem> problems;  // in seq order, at most kMaxProblems
  std::uint64_t more_problems = 0;    // beyond those listed
  static constexpr std::size_t kMaxProblems = 50;
};

/// Compares the local chain (seq -> hash, from the log's files) with the copies read back.
CopyComparison CompareWithCopy(const std::map<std::uint64_t, std::string>& local, std::uint64_t local_last_seq,
                               const std::vector<ForwardedCopy>& copies);

}  // namespace labgate::audit
