#include "audit/audit_reader.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <utility>

#include "audit/audit_log.h"
#include "core/clock.h"
#include "core/json_parse.h"
#include "core/text.h"

namespace labgate::audit {
namespace {

using core::ErrorCode;
using core::MakeError;

/// Owns one file descriptor.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

struct SnapshotFile {
  std::string name;
  OwnedFd fd;
  off_t size = 0;
};

/// Every file of the log opened at one moment, with the sizes they had then, and the head read
/// at that same moment. Reading only up to those sizes never sees a line half-written.
struct Snapshot {
  std::vector<SnapshotFile> files;
  std::optional<AuditHead> head;
  std::optional<core::Error> head_error;  // kParse: the head file holds something else
};

core::Result<Snapshot> TakeSnapshot(const std::string& path) {
  Snapshot snap;
  // A shared lock keeps writers from rotating or appending while the files are opened. Without a
  // lock file no writer with head files has run; go on without it (never create anything).
  OwnedFd lock(::open(LockPath(path).c_str(), O_RDONLY | O_CLOEXEC));
  if (lock.get() >= 0) {
    while (::flock(lock.get(), LOCK_SH) != 0 && errno == EINTR) {
    }
  }
  auto head = ReadHeadFile(HeadPath(path));
  if (head) {
    snap.head = *head;
  } else if (head.error().code == ErrorCode::kParse) {
    snap.head_error = head.error();
  } else {
    return head.error();
  }
  for (const std::string& name : AuditFiles(path)) {
    OwnedFd fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) continue;  // renamed by a writer that takes no lock
      return MakeError(ErrorCode::kIo, "cannot open audit log " + name + ": " + core::ErrnoText());
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return MakeError(ErrorCode::kIo, "cannot stat audit log " + name + ": " + core::ErrnoText());
    snap.files.push_back(SnapshotFile{name, std::move(fd), st.st_size});
  }
  return snap;
}

/// Calls `fn(line, terminated)` for each line of the first `size` bytes of `fd` (from `offset`)
/// until it returns false. The last bytes, when no newline ends them, come with terminated false.
core::Status ForEachLine(int fd, off_t offset, off_t size, const std::string& name,
                         const std::function<bool(std::string_view, bool)>& fn) {
  constexpr std::size_t kChunk = 1 << 20;
  std::string buffer;
  std::string chunk(kChunk, '\0');
  while (offset < size) {
    const std::size_t want = static_cast<std::size_t>(std::min<off_t>(size - offset, static_cast<off_t>(kChunk)));
    ssize_t got = ::pread(fd, chunk.data(), want, offset);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return MakeError(ErrorCode::kIo, "cannot read audit log " + name + ": " + core::ErrnoText());
    if (got == 0) break;  // shrank under us: what is left is checked as it is
    offset += got;
    std::string_view data(chunk.data(), static_cast<std::size_t>(got));
    std::size_t nl;
    while ((nl = data.find('\n')) != std::string_view::npos) {
      bool go_on;
      if (buffer.empty()) {
        go_on = fn(data.substr(0, nl), true);
      } else {
        buffer.append(data.substr(0, nl));
        go_on = fn(buffer, true);
        buffer.clear();
      }
      if (!go_on) return core::Ok();
      data.remove_prefix(nl + 1);
    }
    buffer.append(data);
  }
  if (!buffer.empty()) fn(buffer, false);
  return core::Ok();
}

Json ParseRecord(std::string_view line) {
  Json j = core::ParseUntrustedJson(line);
  if (j.is_discarded() || !j.is_object()) return Json();
  return j;
}

std::optional<std::uint64_t> SeqOf(const Json& record) {
  auto it = record.find("seq");
  if (it == record.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

std::string Range(std::uint64_t first, std::uint64_t last) {
  return first == last ? "record " + std::to_string(first)
                       : "records " + std::to_string(first) + " to " + std::to_string(last);
}

std::string StringField(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// True only for a boolean true: a tampered record must not throw.
bool BoolField(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

bool ContainsNoCase(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != haystack.end();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Verifier

ChainVerifier::ChainVerifier(std::optional<AuditHead> head, std::string head_name)
    : head_(std::move(head)), head_name_(std::move(head_name)) {}

void ChainVerifier::StartFile(const std::string& name) {
  file_ = name;
  line_ = 0;
  report_.files.push_back(name);
}

std::string ChainVerifier::Where() const { return "line " + std::to_string(line_) + " of " + file_; }

void ChainVerifier::Break(std::uint64_t seq, std::string message) {
  broken_ = true;
  report_.first_bad_seq = seq;
  report_.message = std::move(message);
}

void ChainVerifier::AddLine(std::string_view line, bool terminated) {
  ++line_;
  ++report_.records;
  if (broken_) {
    // Only one question is left: does the seq that seemed missing come later (reordered)?
    if (missing_seq_ && !missing_found_later_) {
      if (SeqOf(ParseRecord(line)) == missing_seq_) missing_found_later_ = true;
    }
    return;
  }
  const std::uint64_t expected = expected_seq_;
  const std::string n = std::to_string(expected);
  if (!terminated) {
    return Break(expected, "record " + n + " is cut off: " + Where() +
                               " has no line end (a crash mid-write, or the file was truncated)");
  }
  if (line.empty()) return Break(expected, Where() + " is empty where record " + n + " belongs");
  const Json record = ParseRecord(line);
  if (record.is_null()) return Break(expected, Where() + " is not a JSON record where record " + n + " belongs");
  auto v = record.find("v");
  const bool known = v != record.end() && v->is_number_integer() &&
                     std::find(std::begin(kKnownFormatVersions), std::end(kKnownFormatVersions),
                               v->get<std::int64_t>()) != std::end(kKnownFormatVersions);
  if (!known) {
    return Break(expected, Where() + " has unknown format version v=" + (v == record.end() ? "(none)" : v->dump()) +
                               " where record " + n + " belongs (a newer labgate wrote it, or it is not a record)");
  }
  auto seq = SeqOf(record);
  if (!seq) return Break(expected, Where() + " has no seq where record " + n + " belongs");
  if (*seq != expected) {
    if (report_.records == 1 && *seq > expected) {
      return Break(expected, "the chain starts at seq " + std::to_string(*seq) + " (" + Where() +
                                 "): " + Range(expected, *seq - 1) + (*seq - 1 == expected ? " is" : " are") +
                                 " missing (were older rotated files removed?)");
    }
    if (*seq > expected) {
      missing_seq_ = expected;
      found_instead_ = Where() + " has seq " + std::to_string(*seq);
      return Break(expected, "record " + n + " is missing: " + found_instead_ + " where it belongs");
    }
    return Break(expected, "records out of order or repeated: " + Where() + " has seq " + std::to_string(*seq) +
                               " where record " + n + " belongs");
  }
  auto prev = record.find("prev");
  if (prev == record.end() || !prev->is_string())
    return Break(expected, "record " + n + " (" + Where() + ") has no prev");
  if (prev->get<std::string>() != prev_hash_) {
    if (expected == 1) {
      return Break(expected, "record 1 (" + Where() + ") names a previous record, but the chain starts there");
    }
    return Break(expected, "record " + n + " (" + Where() + ") does not link to record " +
                               std::to_string(expected - 1) +
                               ": its prev is not that record's hash (a record was changed, removed or inserted)");
  }
  auto hash = record.find("hash");
  if (hash == record.end() || !hash->is_string())
    return Break(expected, "record " + n + " (" + Where() + ") has no hash");
  if (hash->get<std::string>() != RecordHash(record)) {
    return Break(expected, "record " + n + " (" + Where() +
                               ") was changed after it was written: its hash does not match its content");
  }
  prev_hash_ = hash->get<std::string>();
  report_.last_seq = expected;
  report_.last_hash = prev_hash_;
  expected_seq_ = expected + 1;
  if (head_ && head_->seq == expected) hash_at_head_seq_ = prev_hash_;
}

VerifyReport ChainVerifier::Finish() {
  if (broken_) {
    if (missing_seq_ && missing_found_later_) {
      report_.message = "records out of order: " + found_instead_ + " where record " + std::to_string(*missing_seq_) +
                        " belongs, and record " + std::to_string(*missing_seq_) + " comes later";
    }
  } else if (!head_) {
    if (report_.records > 0) {
      report_.warnings.push_back("no head file " + head_name_ +
                                 ": records cut off the end of the log cannot be detected (a labgate without head "
                                 "files wrote this log; the next append creates it)");
    }
  } else if (head_->seq > report_.last_seq) {
    const bool one = head_->seq == report_.last_seq + 1;
    Break(report_.last_seq + 1, Range(report_.last_seq + 1, head_->seq) + (one ? " is" : " are") +
                                    " missing from the end: " + head_name_ + " says the chain reached seq " +
                                    std::to_string(head_->seq) + " (records were removed, or lost in a power failure)");
  } else if (head_->seq == report_.last_seq) {
    if (head_->seq > 0 && head_->hash != report_.last_hash) {
      Break(report_.last_seq, "record " + std::to_string(report_.last_seq) + " is not the one " + head_name_ +
                                  " recorded as the newest: it was replaced");
    }
  } else if (!hash_at_head_seq_ || *hash_at_head_seq_ != head_->hash) {
    Break(std::max<std::uint64_t>(head_->seq, 1),
          "record " + std::to_string(head_->seq) + " is not the one " + head_name_ + " recorded: it was replaced");
  } else {
    report_.warnings.push_back(head_name_ + " names seq " + std::to_string(head_->seq) + ", " +
                               std::to_string(report_.last_seq - head_->seq) +
                               " record(s) before the end: an append stopped before updating it (a crash?); the "
                               "next append brings it up to date");
  }
  report_.ok = !broken_;
  return report_;
}

core::Result<VerifyReport> VerifyChain(const std::string& path) {
  auto snap = TakeSnapshot(path);
  if (!snap) return snap.error();
  ChainVerifier verifier(snap->head, HeadPath(path));
  for (const auto& file : snap->files) {
    verifier.StartFile(file.name);
    auto ok = ForEachLine(file.fd.get(), 0, file.size, file.name, [&](std::string_view line, bool terminated) {
      verifier.AddLine(line, terminated);
      return true;
    });
    if (!ok) return ok.error();
  }
  VerifyReport report = verifier.Finish();
  if (snap->head_error) {
    if (report.ok) {
      report.ok = false;
      report.message = snap->head_error->message + ": it cannot tell whether records were cut off the end";
    } else {
      report.warnings.push_back(snap->head_error->message);
    }
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Reading

core::Result<ReadStats> ReadRecords(const std::string& path, const std::function<bool(const Json&)>& visit) {
  auto snap = TakeSnapshot(path);
  if (!snap) return snap.error();
  ReadStats stats;
  bool go_on = true;
  for (const auto& file : snap->files) {
    if (!go_on) break;
    auto ok = ForEachLine(file.fd.get(), 0, file.size, file.name, [&](std::string_view line, bool terminated) {
      Json record = terminated ? ParseRecord(line) : Json();
      if (record.is_null()) {
        ++stats.skipped;
        return true;
      }
      ++stats.records;
      go_on = visit(record);
      return go_on;
    });
    if (!ok) return ok.error();
  }
  return stats;
}

core::Result<std::vector<Json>> ReadAllRecords(const std::string& path) {
  std::vector<Json> out;
  auto stats = ReadRecords(path, [&](const Json& record) {
    out.push_back(record);
    return true;
  });
  if (!stats) return stats.error();
  return out;
}

core::Result<std::vector<Json>> TailRecords(const std::string& path, std::size_t n) {
  auto snap = TakeSnapshot(path);
  if (!snap) return snap.error();
  std::deque<Json> out;
  for (auto file = snap->files.rbegin(); file != snap->files.rend() && out.size() < n; ++file) {
    const std::size_t need = n - out.size();
    std::deque<std::string> lines;  // the last `need` lines of this file
    auto ok = ForEachLine(file->fd.get(), 0, file->size, file->name, [&](std::string_view line, bool terminated) {
      if (!terminated) return true;
      lines.emplace_back(line);
      if (lines.size() > need) lines.pop_front();
      return true;
    });
    if (!ok) return ok.error();
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      Json record = ParseRecord(*it);
      if (!record.is_null()) out.push_front(std::move(record));
    }
  }
  while (out.size() > n) out.pop_front();
  return std::vector<Json>(out.begin(), out.end());
}

// ---------------------------------------------------------------------------------------------
// Following

AuditFollower::AuditFollower(std::string path, std::uint64_t after_seq) : path_(std::move(path)), last_seq_(after_seq) {
  (void)OpenPath(true);
}

AuditFollower::~AuditFollower() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditFollower::SkipThrough(std::uint64_t seq) { last_seq_ = std::max(last_seq_, seq); }

core::Status AuditFollower::OpenPath(bool at_end) {
  if (fd_ >= 0) ::close(fd_);
  partial_.clear();
  offset_ = 0;
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    if (errno == ENOENT) return core::Ok();  // not created yet, or mid-rotation
    return MakeError(ErrorCode::kIo, "cannot open audit log " + path_ + ": " + core::ErrnoText());
  }
  struct stat st {};
  ::fstat(fd_, &st);
  dev_ = st.st_dev;
  inode_ = st.st_ino;
  if (at_end) offset_ = st.st_size;
  return core::Ok();
}

void AuditFollower::Take(std::string_view line, std::vector<Json>& out) {
  Json record = ParseRecord(line);
  auto seq = SeqOf(record);
  if (!seq || *seq <= last_seq_) return;
  last_seq_ = *seq;
  out.push_back(std::move(record));
}

core::Status AuditFollower::ReadNew(std::vector<Json>& out) {
  if (fd_ < 0) return core::Ok();
  char buf[65536];
  for (;;) {
    ssize_t got = ::pread(fd_, buf, sizeof buf, offset_);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return MakeError(ErrorCode::kIo, "cannot read audit log " + path_ + ": " + core::ErrnoText());
    if (got == 0) return core::Ok();
    offset_ += got;
    std::string_view data(buf, static_cast<std::size_t>(got));
    std::size_t nl;
    while ((nl = data.find('\n')) != std::string_view::npos) {
      partial_.append(data.substr(0, nl));
      Take(partial_, out);
      partial_.clear();
      data.remove_prefix(nl + 1);
    }
    partial_.append(data);
  }
}

core::Result<std::vector<Json>> AuditFollower::Poll() {
  std::vector<Json> out;
  if (fd_ < 0) {
    if (auto ok = OpenPath(false); !ok) return ok.error();
  }
  if (auto ok = ReadNew(out); !ok) return ok.error();
  if (fd_ < 0) return out;
  struct stat by_path {};
  if (::stat(path_.c_str(), &by_path) != 0) return out;  // renamed, the new file not there yet
  if (by_path.st_dev == dev_ && by_path.st_ino == inode_) return out;

  // Rotated: our file is now PATH.<k>. Finish it (a writer may have appended just before the
  // rename), read the files rotated after it, then start on the new PATH.
  if (auto ok = ReadNew(out); !ok) return ok.error();
  bool after_ours = false;
  for (std::uint64_t index : RotatedIndices(path_)) {
    const std::string name = RotatedPath(path_, index);
    OwnedFd fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) continue;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) continue;
    if (!after_ours) {
      after_ours = st.st_dev == dev_ && st.st_ino == inode_;
      continue;
    }
    auto ok = ForEachLine(fd.get(), 0, st.st_size, name, [&](std::string_view line, bool terminated) {
      if (terminated) Take(line, out);
      return true;
    });
    if (!ok) return ok.error();
  }
  if (auto ok = OpenPath(false); !ok) return ok.error();
  if (auto ok = ReadNew(out); !ok) return ok.error();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Query

bool Matches(const Json& record, const AuditFilter& filter, const IntentIndex& intents) {
  if (!record.is_object()) return false;
  const std::string kind = StringField(record, "kind");
  if (filter.target) {
    bool hit = StringField(record, "target") == *filter.target;
    if (auto targets = record.find("targets"); !hit && targets != record.end() && targets->is_array()) {
      hit = std::find(targets->begin(), targets->end(), Json(*filter.target)) != targets->end();
    }
    if (!hit) return false;
  }
  if (filter.since || filter.until) {
    const std::string ts = StringField(record, "ts");
    if (ts.empty()) return false;
    if (filter.since && ts < *filter.since) return false;
    if (filter.until && ts > *filter.until) return false;
  }
  const IntentInfo* intent = nullptr;
  if (kind == "result") {
    auto it = intents.find(StringField(record, "actionId"));
    if (it != intents.end()) intent = &it->second;
  }
  if (filter.allowed) {
    std::optional<bool> allowed;
    auto decision = record.find("decision");
    if (decision != record.end() && decision->is_object() && decision->contains("allowed") &&
        (*decision)["allowed"].is_boolean()) {
      allowed = (*decision)["allowed"].get<bool>();
    } else if (intent) {
      allowed = intent->allowed;
    }
    if (allowed != filter.allowed) return false;
  }
  if (filter.actor) {
    const Json* who = nullptr;
    if (auto it = record.find("who"); it != record.end() && it->is_object()) {
      who = &*it;
    } else if (intent && intent->who.is_object()) {
      who = &intent->who;
    }
    if (!who) return false;
    const std::string client = who->contains("client") ? StringField((*who)["client"], "name") : "";
    bool hit = false;
    for (const std::string& field :
         {StringField(*who, "osUser"), client, StringField(*who, "via"), StringField(*who, "sessionId")}) {
      if (!field.empty() && ContainsNoCase(field, *filter.actor)) hit = true;
    }
    if (!hit) return false;
  }
  return true;
}

bool AuditQuery::Accept(const Json& record) {
  const std::string kind = StringField(record, "kind");
  const std::string action_id = StringField(record, "actionId");
  const bool follow_intents = filter_.allowed || filter_.actor;
  if (follow_intents && kind == "intent" && !action_id.empty()) {
    IntentInfo info;
    auto decision = record.find("decision");
    if (decision != record.end() && decision->is_object() && decision->contains("allowed") &&
        (*decision)["allowed"].is_boolean()) {
      info.allowed = (*decision)["allowed"].get<bool>();
    }
    if (auto who = record.find("who"); who != record.end()) info.who = *who;
    intents_[action_id] = std::move(info);
  }
  const bool hit = Matches(record, filter_, intents_);
  if (kind == "result") intents_.erase(action_id);  // one result per intent
  return hit;
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Reads exactly `width` digits at `pos`.
std::optional<int> Digits(std::string_view s, std::size_t& pos, std::size_t width) {
  if (pos + width > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t k = 0; k < width; ++k) {
    char c = s[pos + k];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  pos += width;
  return v;
}

// A bound in seconds since the epoch as a canonical timestamp. Bounds before the first possible
// record, or past what the clock can count (the year 2262 in nanoseconds), mean the same as
// the nearest one it can: every record, or none yet.
std::string BoundAt(std::int64_t secs, int millis) {
  using namespace std::chrono;
  constexpr std::int64_t kLatest = 9'000'000'000;  // 2255-03-14, inside system_clock's range
  if (secs < 0) {
    secs = 0;
    millis = 0;
  }
  if (secs > kLatest) {
    secs = kLatest;
    millis = 0;
  }
  return core::FormatTimestamp(
      system_clock::time_point(duration_cast<system_clock::duration>(seconds(secs) + milliseconds(millis))));
}

}  // namespace

core::Result<std::string> ParseTimeBound(std::string_view text, std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  const auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "bad time '" + std::string(text) +
                         "': give an ISO-8601 UTC time (2026-11-18T09:30:00Z, 2026-11-18) or a duration ago (30m, "
                         "1h, 2d, 1w)");
  };
  // A duration ago: digits and one unit.
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits > 0 && digits <= 9 && digits + 1 == text.size()) {
    const std::int64_t n = std::stoll(std::string(text.substr(0, digits)));
    std::int64_t unit = 0;
    switch (text.back()) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      case 'w':
        unit = 7 * 86400;
        break;
      default:
        return bad();
    }
    const std::int64_t now_ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
    const std::int64_t ago = now_ms / 1000 - n * unit;  // at most 10^9 weeks: no overflow
    return BoundAt(ago, static_cast<int>(now_ms % 1000));
  }
  // YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH:MM]
  std::size_t pos = 0;
  auto year = Digits(text, pos, 4);
  if (!year || pos >= text.size() || text[pos++] != '-') return bad();
  auto month = Digits(text, pos, 2);
  if (!month || pos >= text.size() || text[pos++] != '-') return bad();
  auto day = Digits(text, pos, 2);
  if (!day || *month < 1 || *month > 12 || *day < 1 || *day > 31) return bad();
  int hour = 0, minute = 0, second = 0, millis = 0, offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'T' || text[pos] == 't' || text[pos] == ' ')) {
    ++pos;
    auto h = Digits(text, pos, 2);
    if (!h || pos >= text.size() || text[pos++] != ':') return bad();
    auto mi = Digits(text, pos, 2);
    if (!mi) return bad();
    hour = *h;
    minute = *mi;
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      auto s = Digits(text, pos, 2);
      if (!s) return bad();
      second = *s;
      if (pos < text.size() && text[pos] == '.') {
        ++pos;
        int scale = 100;
        std::size_t start = pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
          millis += (text[pos] - '0') * scale;
          scale /= 10;
          ++pos;
        }
        if (pos == start) return bad();
      }
    }
    if (hour > 23 || minute > 59 || second > 60) return bad();
  }
  if (pos < text.size()) {
    if (text[pos] == 'Z' || text[pos] == 'z') {
      ++pos;
    } else if (text[pos] == '+' || text[pos] == '-') {
      const int sign = text[pos++] == '+' ? 1 : -1;
      auto oh = Digits(text, pos, 2);
      if (!oh || pos >= text.size() || text[pos++] != ':') return bad();
      auto om = Digits(text, pos, 2);
      if (!om) return bad();
      offset_minutes = sign * (*oh * 60 + *om);
    }
  }
  if (pos != text.size()) return bad();
  const std::int64_t secs = DaysFromCivil(*year, static_cast<unsigned>(*month), static_cast<unsigned>(*day)) * 86400 +
                            hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return BoundAt(secs, millis);
}

// ---------------------------------------------------------------------------------------------
// Presentation

std::string SummarizeRecord(const Json& record) {
  if (!record.is_object()) return "(not a record)";
  const std::string kind = StringField(record, "kind");
  std::vector<std::string> parts;
  parts.push_back(StringField(record, "ts"));
  auto seq = SeqOf(record);
  parts.push_back("#" + (seq ? std::to_string(*seq) : std::string("?")));
  std::string padded_kind = kind.empty() ? "?" : kind;
  padded_kind.resize(std::max<std::size_t>(padded_kind.size(), 8), ' ');
  parts.push_back(padded_kind);

  std::string who = "-";
  if (auto w = record.find("who"); w != record.end() && w->is_object()) {
    who = StringField(*w, "osUser");
    const std::string via = StringField(*w, "via");
    if (!via.empty()) who += (who.empty() ? "" : "@") + via;
    if (w->contains("client")) {
      const std::string client = StringField((*w)["client"], "name");
      if (!client.empty()) who += "/" + client;
    }
    if (who.empty()) who = "-";
  }
  parts.push_back(who);

  std::string target = StringField(record, "target");
  if (auto targets = record.find("targets"); target.empty() && targets != record.end() && targets->is_array()) {
    for (const auto& t : *targets) {
      if (t.is_string()) target += (target.empty() ? "" : ",") + t.get<std::string>();
    }
  }
  parts.push_back(target.empty() ? "-" : target);
  const std::string what = kind == "event" ? StringField(record, "event") : StringField(record, "action");
  parts.push_back(what.empty() ? "-" : what);

  if (auto d = record.find("decision"); d != record.end() && d->is_object()) {
    const bool allowed = d->contains("allowed") && (*d)["allowed"].is_boolean() && (*d)["allowed"].get<bool>();
    const std::string rule = StringField(*d, "rule");
    parts.push_back(std::string(allowed ? "allowed" : "refused") + (rule.empty() ? "" : " by " + rule));
  }
  if (kind == "result") {
    std::string end;
    if (auto code = record.find("exitCode"); code != record.end() && code->is_number_integer()) {
      end = "exit " + std::to_string(code->get<int>());
    }
    if (auto sig = StringField(record, "signal"); !sig.empty()) end = "signal " + sig;
    if (BoolField(record, "timedOut")) end = "timed out";
    if (BoolField(record, "cancelled")) end = "cancelled";
    if (auto error = StringField(record, "error"); !error.empty()) end += (end.empty() ? "" : ", ") + error;
    if (end.empty()) end = "no exit code";
    if (auto ms = record.find("durationMs"); ms != record.end() && ms->is_number_integer()) {
      end += " in " + std::to_string(ms->get<std::int64_t>()) + "ms";
    }
    parts.push_back(end);
  }
  if (kind == "refusal") {
    if (auto error = StringField(record, "error"); !error.empty()) parts.push_back(error);
  }
  if (auto payload = record.find("payload"); payload != record.end() && payload->is_object()) {
    std::string command;
    if (auto shell = StringField(*payload, "shell"); !shell.empty()) {
      command = "sh -c " + core::ShellQuote(shell);
    } else if (auto argv = payload->find("argv"); argv != payload->end() && argv->is_array()) {
      std::vector<std::string> words;
      for (const auto& w : *argv) words.push_back(w.is_string() ? w.get<std::string>() : w.dump());
      command = core::JoinArgv(words);
    }
    constexpr std::size_t kMaxCommand = 80;
    if (command.size() > kMaxCommand) command = command.substr(0, kMaxCommand - 3) + "...";
    if (!command.empty()) parts.push_back("$ " + command);
  }
  if (kind == "event") {
    if (auto details = record.find("details"); details != record.end() && details->is_object()) {
      if (auto detail = StringField(*details, "detail"); !detail.empty()) parts.push_back(detail);
    }
  }
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += "  ";
    out += p;
  }
  // Records carry what callers sent; never let one smuggle a line break or escape into a terminal.
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

}  // namespace labgate::audit
