#include "audit/forward_format.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "audit/audit_log.h"
#include "audit/audit_reader.h"
#include "core/json_parse.h"
#include "core/json_rpc.h"
#include "core/text.h"

namespace labgate::audit {
namespace {

std::string StringOf(const Json& record, const char* key) {
  if (!record.is_object()) return "";
  auto it = record.find(key);
  if (it == record.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_unsigned()) return std::to_string(it->get<std::uint64_t>());
  return "";
}

void AddJournalField(std::string& out, std::string_view name, std::string_view value) {
  if (value.find('\n') == std::string_view::npos) {
    out.append(name).append("=").append(value).append("\n");
    return;
  }
  // The binary form: NAME\n, the value's length as a little-endian 64-bit number, the value, \n.
  out.append(name).append("\n");
  std::uint64_t n = value.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(value).append("\n");
}

// RFC 5424 HOSTNAME: PRINTUSASCII (33..126), at most 255 characters, "-" for none.
std::string HeaderWord(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) out.push_back(c > 32 && c < 127 ? c : '-');
  return out.empty() ? "-" : out;
}

// PARAM-VALUE: '"', '\' and ']' are escaped with a backslash.
std::string SdValue(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\' || c == ']') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::optional<std::uint64_t> ParseSeq(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

bool IsHash(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// journalctl -o json writes a field as a string, or as an array of byte values when it is not
// printable UTF-8 (and null when it is too large and --all was not given).
std::optional<std::string> JournalValue(const Json& entry, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::string bytes;
    for (const auto& b : *it) {
      if (!b.is_number_unsigned() || b.get<std::uint64_t>() > 255) return std::nullopt;
      bytes.push_back(static_cast<char>(b.get<std::uint64_t>()));
    }
    return bytes;
  }
  return std::nullopt;
}

// A record as sealed (with v: its hash must be its own), or a stub with only seq and hash.
std::optional<ForwardedCopy> FromRecord(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  auto seq = j.find("seq");
  auto hash = j.find("hash");
  if (seq == j.end() || hash == j.end() || !seq->is_number_unsigned() || !hash->is_string()) return std::nullopt;
  ForwardedCopy copy{seq->get<std::uint64_t>(), hash->get<std::string>(), false, "", std::nullopt};
  if (!IsHash(copy.hash)) copy.damaged = true;
  if (j.contains("v") && RecordHash(j) != copy.hash) copy.damaged = true;
  return copy;
}

std::optional<ForwardedCopy> FromJournalExport(const Json& entry) {
  auto seq_text = JournalValue(entry, "LABGATE_SEQ");
  auto hash = JournalValue(entry, "LABGATE_HASH");
  if (!seq_text || !hash) return std::nullopt;
  auto seq = ParseSeq(*seq_text);
  ForwardedCopy copy{seq.value_or(0), *hash, !seq || !IsHash(*hash), JournalValue(entry, "LABGATE_LOG").value_or(""),
                     std::nullopt};
  if (auto line = JournalValue(entry, "LABGATE_RECORD")) {
    auto inner = FromRecord(core::ParseUntrustedJson(*line));
    if (!inner || inner->damaged || inner->seq != copy.seq || inner->hash != copy.hash) copy.damaged = true;
  }
  return copy;
}

// The structured data `[labgate@32473 seq="N" hash="H"]` of an RFC 5424 line, for a message
// a relay cut short. Only the element before the message counts: text inside a record (a
// command that prints the same words) sits after the first '{' and is never read here.
std::optional<ForwardedCopy> FromStructuredData(std::string_view line) {
  const std::string open = "[" + std::string(kSyslogSdId) + " ";
  auto start = line.find(open);
  if (start == std::string_view::npos) return std::nullopt;
  if (auto brace = line.find('{'); brace != std::string_view::npos && brace < start) return std::nullopt;
  std::string_view rest = line.substr(start + open.size());
  std::optional<std::uint64_t> seq;
  std::optional<std::string> hash;
  std::string log;
  while (!rest.empty() && rest.front() != ']') {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    auto eq = rest.find("=\"");
    if (eq == std::string_view::npos) return std::nullopt;
    std::string name(rest.substr(0, eq));
    rest.remove_prefix(eq + 2);
    std::string value;
    bool closed = false;
    while (!rest.empty()) {
      char c = rest.front();
      rest.remove_prefix(1);
      if (c == '\\' && !rest.empty()) {
        value.push_back(rest.front());
        rest.remove_prefix(1);
      } else if (c == '"') {
        closed = true;
        break;
      } else {
        value.push_back(c);
      }
    }
    if (!closed) return std::nullopt;
    if (name == "seq") seq = ParseSeq(value);
    if (name == "hash") hash = value;
    if (name == "log") log = value;
  }
  if (rest.empty() || !seq || !hash) return std::nullopt;
  return ForwardedCopy{*seq, *hash, !IsHash(*hash), log, std::nullopt};
}

}  // namespace

int RecordSeverity(const Json& record) {
  const std::string kind = StringOf(record, "kind");
  if (kind == "intent" || kind == "result") return 6;
  if (kind == "event") {
    const std::string event = StringOf(record, "event");
    if (event.rfind("audit.", 0) == 0) return 4;
  }
  return 5;
}

std::string EncodeJournalEntry(std::string_view line, const Json& record, std::string_view log_path) {
  std::string out;
  AddJournalField(out, "MESSAGE", "labgate audit: " + SummarizeRecord(record));
  AddJournalField(out, "MESSAGE_ID", kJournalMessageId);
  AddJournalField(out, "PRIORITY", std::to_string(RecordSeverity(record)));
  AddJournalField(out, "SYSLOG_IDENTIFIER", "labgate");
  static constexpr std::pair<const char*, const char*> kFields[] = {
      {"LABGATE_SEQ", "seq"},           {"LABGATE_HASH", "hash"},     {"LABGATE_PREV", "prev"},
      {"LABGATE_KIND", "kind"},         {"LABGATE_TS", "ts"},         {"LABGATE_ACTION_ID", "actionId"},
      {"LABGATE_TARGET", "target"},     {"LABGATE_ACTION", "action"}, {"LABGATE_EVENT", "event"}};
  for (const auto& [field, key] : kFields) {
    if (std::string value = StringOf(record, key); !value.empty()) AddJournalField(out, field, value);
  }
  AddJournalField(out, "LABGATE_LOG", log_path);
  AddJournalField(out, "LABGATE_RECORD", line);
  return out;
}

std::string EncodeSyslogMessage(std::string_view line, const Json& record, const SyslogOrigin& origin) {
  const int pri = origin.facility * 8 + RecordSeverity(record);
  std::string ts = StringOf(record, "ts");
  const std::string seq = StringOf(record, "seq");
  const std::string hash = StringOf(record, "hash");
  const std::string kind = StringOf(record, "kind");
  std::string out = "<" + std::to_string(pri) + ">1 " + HeaderWord(ts, 64) + " " + HeaderWord(origin.hostname, 255) +
                    " labgate " + std::to_string(origin.pid) + " " + HeaderWord(kind, 32) + " [" +
                    std::string(kSyslogSdId) + " seq=\"" + SdValue(seq) + "\" hash=\"" + SdValue(hash) + "\"";
  if (!origin.log_path.empty()) out += " log=\"" + SdValue(core::ToValidUtf8(origin.log_path)) + "\"";
  out += "] \xEF\xBB\xBF";
  if (line.size() <= kSyslogMaxRecordBytes) {
    out.append(line);
  } else {
    // Enough to check the chain and to see what the record was about.
    Json stub = Json::object();
    if (auto s = record.is_object() ? record.find("seq") : record.end(); s != record.end() && s->is_number_unsigned()) {
      stub["seq"] = *s;
    }
    stub["hash"] = hash;
    stub["truncated"] = line.size();
    for (const char* key : {"kind", "actionId", "target", "action", "event"}) {
      if (std::string v = StringOf(record, key); !v.empty()) stub[key] = v.substr(0, 256);
    }
    out.append(core::jsonrpc::Encode(stub));
  }
  return out;
}

std::optional<ForwardedCopy> ParseForwardedLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) line.remove_suffix(1);
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  if (line.empty()) return std::nullopt;
  if (line.front() == '{') {
    Json whole = core::ParseUntrustedJson(line);
    if (whole.is_object()) {
      if (whole.contains("LABGATE_SEQ") || whole.contains("LABGATE_HASH") || whole.contains("MESSAGE")) {
        // A journal entry: labgate's own fields, or a syslog message that reached journald
        // through /dev/log. Either way the sender's uid is journald's to say.
        std::optional<ForwardedCopy> copy;
        if (whole.contains("LABGATE_SEQ") || whole.contains("LABGATE_HASH")) {
          copy = FromJournalExport(whole);
        } else if (auto message = JournalValue(whole, "MESSAGE"); message && !message->empty() && message->front() != '{') {
          copy = ParseForwardedLine(*message);
        }
        if (copy) {
          if (auto uid = JournalValue(whole, "_UID"); uid && ParseSeq(*uid) && *ParseSeq(*uid) <= 0xffffffffULL) {
            copy->uid = static_cast<std::uint32_t>(*ParseSeq(*uid));
          }
        }
        return copy;
      }
      return FromRecord(whole);  // a plain copy of the log
    }
  }
  // A syslog line: the record starts at the first '{', and labgate's name comes before it (the
  // RFC 5424 APP-NAME, or rsyslog's "labgate[PID]:"), so other programs' JSON is not taken.
  const auto brace = line.find('{');
  if (line.substr(0, brace).find("labgate") == std::string_view::npos) return std::nullopt;
  if (brace != std::string_view::npos) {
    if (auto copy = FromRecord(core::ParseUntrustedJson(line.substr(brace)))) {
      // The structured data, when kept, says which log the record came from.
      if (auto sd = FromStructuredData(line)) copy->log = sd->log;
      return copy;
    }
  }
  // A relay cut the message short: the structured data before it is enough.
  return FromStructuredData(line);
}

CopyComparison CompareWithCopy(const std::map<std::uint64_t, std::string>& local, std::uint64_t local_last_seq,
                               const std::vector<ForwardedCopy>& copies) {
  CopyComparison out;
  auto problem = [&](std::uint64_t seq, std::string what) {
    out.ok = false;
    if (out.problems.size() < CopyComparison::kMaxProblems) {
      out.problems.push_back({seq, std::move(what)});
    } else {
      ++out.more_problems;
    }
  };
  // Every hash each seq was copied with: two different ones mean someone else wrote copies too.
  std::map<std::uint64_t, std::set<std::string>> by_seq;
  std::set<std::uint64_t> damaged;
  for (const auto& c : copies) {
    ++out.copies;
    if (c.damaged) {
      damaged.insert(c.seq);
      continue;
    }
    by_seq[c.seq].insert(c.hash);
  }
  std::vector<CopyProblem> found;
  for (std::uint64_t seq : damaged) {
    found.push_back({seq, "a copy of this record does not hash to the hash it carries: the copy was damaged on "
                          "its way or written by something other than labgate"});
  }
  for (const auto& [seq, hashes] : by_seq) {
    if (hashes.size() > 1) {
      std::string list;
      for (const auto& h : hashes) list += (list.empty() ? "" : ", ") + h.substr(0, 16) + "...";
      auto it = local.find(seq);
      const bool one_is_local = it != local.end() && hashes.count(it->second) > 0;
      found.push_back({seq, "the copy holds " + std::to_string(hashes.size()) + " different records for this seq (" +
                                list + "): something other than this gateway wrote records into the log store" +
                                (one_is_local ? "; the local record is one of them"
                                              : "; the local record is none of them, so it was edited too")});
      continue;
    }
    const std::string& copied = *hashes.begin();
    auto it = local.find(seq);
    if (it == local.end()) {
      if (seq > local_last_seq) {
        found.push_back({seq, "copied, but the local log ends at seq " + std::to_string(local_last_seq) +
                                  ": records were cut off its end"});
      } else {
        found.push_back({seq, "copied, but not in the local log: records were removed"});
      }
    } else if (it->second != copied) {
      found.push_back({seq, "the local record's hash is " + it->second.substr(0, 16) + "... but the copy's is " +
                                copied.substr(0, 16) +
                                "...: the local record was edited, or records before it removed and the chain sealed "
                                "again"});
    } else {
      ++out.matched;
    }
  }
  std::stable_sort(found.begin(), found.end(), [](const CopyProblem& a, const CopyProblem& b) { return a.seq < b.seq; });
  for (auto& p : found) problem(p.seq, std::move(p.what));
  if (!by_seq.empty()) {
    out.first_copied = by_seq.begin()->first;
    out.last_copied = by_seq.rbegin()->first;
    for (auto it = local.lower_bound(out.first_copied); it != local.end(); ++it) {
      if (it->first > out.last_copied) {
        ++out.after_copy;
      } else if (!by_seq.count(it->first)) {
        ++out.uncopied;
      }
    }
  }
  return out;
}

}  // namespace labgate::audit
