#include "nodes/pairing_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <stdexcept>

#include "core/base64.h"
#include "core/files.h"
#include "core/hashing.h"
#include "core/json_parse.h"
#include "core/text.h"

namespace labgate::nodes {
namespace {

using core::ErrorCode;
using core::MakeError;
using Json = nlohmann::json;

std::int64_t ToMs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
TimePoint FromMs(std::int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

Json OptTime(const std::optional<TimePoint>& t) { return t ? Json(ToMs(*t)) : Json(nullptr); }
std::optional<TimePoint> ReadOptTime(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return FromMs(it->get<std::int64_t>());
}

Json EncodeKey(const PublicKey& k) { return {{"type", k.type}, {"base64", k.base64}, {"fingerprint", k.fingerprint}}; }
PublicKey DecodeKey(const Json& j) {
  return {j.at("type").get<std::string>(), j.at("base64").get<std::string>(), j.at("fingerprint").get<std::string>()};
}
Json EncodeDevice(const DeviceInfo& d) {
  return {{"platform", d.platform}, {"hostname", d.hostname}, {"version", d.version}};
}
DeviceInfo DecodeDevice(const Json& j) {
  return {j.value("platform", ""), j.value("hostname", ""), j.value("version", "")};
}

Json EncodeNode(const NodeRecord& r) {
  return {{"id", r.id},
          {"key", EncodeKey(r.key)},
          {"capabilities", r.capabilities},
          {"device", EncodeDevice(r.device)},
          {"pairedAt", ToMs(r.paired_at)},
          {"rotatedAt", OptTime(r.rotated_at)},
          {"revokedAt", OptTime(r.revoked_at)},
          {"lastSeen", OptTime(r.last_seen)}};
}
NodeRecord DecodeNode(const Json& n) {
  NodeRecord r;
  r.id = n.at("id").get<std::string>();
  r.key = DecodeKey(n.at("key"));
  r.capabilities = n.at("capabilities").get<std::vector<std::string>>();
  r.device = DecodeDevice(n.value("device", Json::object()));
  r.paired_at = FromMs(n.at("pairedAt").get<std::int64_t>());
  r.rotated_at = ReadOptTime(n, "rotatedAt");
  r.revoked_at = ReadOptTime(n, "revokedAt");
  r.last_seen = ReadOptTime(n, "lastSeen");
  return r;
}

Json EncodePending(const PendingPairing& r) {
  return {{"id", r.id},
          {"key", EncodeKey(r.key)},
          {"capabilities", r.capabilities},
          {"device", EncodeDevice(r.device)},
          {"requestedAt", ToMs(r.requested_at)}};
}
PendingPairing DecodePending(const Json& p) {
  PendingPairing r;
  r.id = p.at("id").get<std::string>();
  r.key = DecodeKey(p.at("key"));
  r.capabilities = p.at("capabilities").get<std::vector<std::string>>();
  r.device = DecodeDevice(p.value("device", Json::object()));
  r.requested_at = FromMs(p.at("requestedAt").get<std::int64_t>());
  return r;
}

Json EncodeCode(const IssuedCode& c) {
  return {{"nodeId", c.node_id},
          {"secretSha256", c.secret_sha256},
          {"capabilities", c.capabilities},
          {"issuedAt", ToMs(c.issued_at)},
          {"expiresAt", ToMs(c.expires_at)},
          {"used", c.used}};
}
IssuedCode DecodeCode(const Json& c) {
  IssuedCode r;
  r.node_id = c.at("nodeId").get<std::string>();
  r.secret_sha256 = c.at("secretSha256").get<std::string>();
  r.capabilities = c.at("capabilities").get<std::vector<std::string>>();
  r.issued_at = FromMs(c.at("issuedAt").get<std::int64_t>());
  r.expires_at = FromMs(c.at("expiresAt").get<std::int64_t>());
  r.used = c.at("used").get<bool>();
  return r;
}

// Journal lines. Each one carries a whole record (or a removal), so replaying a line that the
// file already reflects changes nothing: a crash between rewriting the file and emptying the
// journal loses nothing and applies nothing twice.
Json NodeChange(const NodeRecord& r) { return Json{{"node", EncodeNode(r)}}; }
Json PendingChange(const PendingPairing& r) { return Json{{"pending", EncodePending(r)}}; }
Json PendingRemovedChange(const std::string& id) { return Json{{"pendingRemoved", id}}; }
Json CodeChange(const IssuedCode& c) { return Json{{"code", EncodeCode(c)}}; }

// The journal is rewritten into the file once it holds this many bytes and at least as many as
// the file: a change costs its own size, and the journal never outgrows the state it describes.
constexpr std::uint64_t kMinCompactBytes = 64 * 1024;

bool Contains(const std::vector<std::string>& set, const std::string& item) {
  return std::find(set.begin(), set.end(), item) != set.end();
}

}  // namespace

std::string FormatTime(TimePoint t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

core::Result<std::unique_ptr<PairingStore>> PairingStore::Open(std::string path, const core::Clock& clock) {
  std::unique_ptr<PairingStore> store(new PairingStore(std::move(path), clock));
  std::lock_guard<std::mutex> lock(store->mutex_);
  if (auto ok = store->LoadLocked(); !ok) return ok.error();
  return store;
}

PairingStore::~PairingStore() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
}

core::Status PairingStore::LoadLocked() {
  auto fail = [&](const std::string& file, const std::string& why) {
    return MakeError(ErrorCode::kParse, "pairing store " + file + " is unreadable (" + why +
                                            "); it is never overwritten: restore it from a backup or move it "
                                            "aside to start over (every node then pairs again)");
  };
  if (auto text = core::ReadFile(path_); text.ok()) {
    snapshot_bytes_ = text->size();
    Json root = core::ParseUntrustedJson(*text);
    if (!root.is_object() || root.value("version", 0) != 1) return fail(path_, "not a labgate pairing store, version 1");
    try {
      for (const auto& n : root.at("nodes")) {
        NodeRecord r = DecodeNode(n);
        nodes_[r.id] = r;
      }
      for (const auto& p : root.at("pending")) {
        PendingPairing r = DecodePending(p);
        pending_[r.id] = r;
      }
      for (const auto& c : root.at("codes")) codes_.push_back(DecodeCode(c));
    } catch (const std::exception& e) {
      return fail(path_, e.what());
    }
  } else if (text.error().code != ErrorCode::kNotFound) {
    return fail(path_, text.error().message);
  }

  auto journal = core::ReadFile(journal_path_);
  if (!journal.ok()) {
    if (journal.error().code == ErrorCode::kNotFound) return core::Status();
    return fail(journal_path_, journal.error().message);
  }
  // Only lines that end in a newline were ever reported done; a crash mid-append leaves at most
  // a cut-short last line, which is ignored (and cut off by the next change).
  std::size_t pos = 0;
  int line_no = 0;
  for (std::size_t nl; (nl = journal->find('\n', pos)) != std::string::npos; pos = nl + 1) {
    ++line_no;
    try {
      ApplyLocked(journal->substr(pos, nl - pos));
    } catch (const std::exception& e) {
      return fail(journal_path_, "line " + std::to_string(line_no) + ": " + e.what());
    }
  }
  journal_bytes_ = pos;
  return core::Status();
}

void PairingStore::ApplyLocked(const std::string& line) {
  Json change = core::ParseUntrustedJson(line);
  if (change.is_object() && change.size() == 1 && change.contains("batch")) {
    // The changes of one operation, made in one line so that a crash keeps all or none of them.
    const Json& batch = change["batch"];
    if (!batch.is_array()) throw std::runtime_error("a batch that is not a list");
    for (const auto& one : batch) {
      if (one.is_object() && one.contains("batch")) throw std::runtime_error("a batch inside a batch");
      ApplyChangeLocked(one);
    }
    return;
  }
  ApplyChangeLocked(change);
}

void PairingStore::ApplyChangeLocked(const Json& change) {
  if (!change.is_object() || change.size() != 1) throw std::runtime_error("not a pairing store change");
  const auto& [kind, value] = change.items().begin();
  if (kind == "node") {
    NodeRecord r = DecodeNode(value);
    nodes_[r.id] = r;
  } else if (kind == "pending") {
    PendingPairing r = DecodePending(value);
    pending_[r.id] = r;
  } else if (kind == "pendingRemoved") {
    pending_.erase(value.get<std::string>());
  } else if (kind == "code") {
    IssuedCode c = DecodeCode(value);
    auto it = std::find_if(codes_.begin(), codes_.end(),
                           [&](const IssuedCode& known) { return known.secret_sha256 == c.secret_sha256; });
    if (it != codes_.end()) *it = c; else codes_.push_back(c);
  } else if (kind == "seen") {
    for (const auto& [id, ms] : value.items()) {
      if (auto n = nodes_.find(id); n != nodes_.end()) n->second.last_seen = FromMs(ms.get<std::int64_t>());
    }
  } else {
    throw std::runtime_error("unknown change \"" + kind + "\"");
  }
}

core::Status PairingStore::CompactLocked() {
  // Codes that expired a day ago have nothing left to explain; drop them.
  const TimePoint horizon = clock_.Now() - std::chrono::hours(24);
  codes_.erase(std::remove_if(codes_.begin(), codes_.end(), [&](const IssuedCode& c) { return c.expires_at < horizon; }),
               codes_.end());
  Json root = {{"version", 1}, {"nodes", Json::array()}, {"pending", Json::array()}, {"codes", Json::array()}};
  for (const auto& [id, r] : nodes_) root["nodes"].push_back(EncodeNode(r));
  for (const auto& [id, r] : pending_) root["pending"].push_back(EncodePending(r));
  for (const auto& c : codes_) root["codes"].push_back(EncodeCode(c));
  const std::string text = root.dump(1) + "\n";
  if (auto ok = core::WriteFileAtomic(path_, text, 0600); !ok) return ok;
  snapshot_bytes_ = text.size();
  // The file now holds everything the journal did; a crash before the journal is emptied only
  // replays whole records the file already has.
  if (journal_fd_ >= 0) {
    if (::ftruncate(journal_fd_, 0) != 0 || ::fdatasync(journal_fd_) != 0) {
      return MakeError(ErrorCode::kIo, "cannot empty " + journal_path_ + ": " + std::strerror(errno));
    }
  } else if (::truncate(journal_path_.c_str(), 0) != 0 && errno != ENOENT) {
    return MakeError(ErrorCode::kIo, "cannot empty " + journal_path_ + ": " + std::strerror(errno));
  }
  journal_bytes_ = 0;
  return core::Status();
}

core::Status PairingStore::CommitLocked(const std::vector<Json>& changes) {
  std::string text;
  if (changes.size() == 1) {
    text = changes.front().dump() + "\n";
  } else if (changes.size() > 1) {
    // Several changes of one operation (a code used and its node paired; a node paired and its
    // request gone) go in one line: replay applies whole lines, so a crash that kept only part
    // of the append keeps none of the operation, never half of it.
    text = Json{{"batch", changes}}.dump() + "\n";
  }
  for (const auto& line : SeenChangesLocked()) text += line + "\n";  // ride along, no sync of their own
  auto io_error = [&](const char* what) {
    return MakeError(ErrorCode::kIo, std::string("cannot ") + what + " the pairing journal " + journal_path_ + ": " +
                                         std::strerror(errno) + "; the change was not made");
  };
  if (journal_fd_ < 0) {
    int fd = ::open(journal_path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return io_error("open");
    // Appends go at journal_bytes_: cut off a line a crash left cut short, once.
    if (::ftruncate(fd, static_cast<off_t>(journal_bytes_)) != 0) {
      const int err = errno;
      ::close(fd);
      errno = err;
      return io_error("trim");
    }
    journal_fd_ = fd;
    // A new journal's name must survive a crash too.
    std::string dir = path_.substr(0, path_.find_last_of('/') == std::string::npos ? 0 : path_.find_last_of('/'));
    if (int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  // A failed append is cut off again; when even that fails, the journal is reopened (and cut)
  // before the next change, so no later line lands after a part of this one.
  auto undo = [&](const char* what) {
    const int err = errno;
    if (::ftruncate(journal_fd_, static_cast<off_t>(journal_bytes_)) != 0) {
      ::close(journal_fd_);
      journal_fd_ = -1;
    }
    errno = err;
    return io_error(what);
  };
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::pwrite(journal_fd_, text.data() + done, text.size() - done, static_cast<off_t>(journal_bytes_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return undo("append to");
    done += static_cast<std::size_t>(n);
  }
  if (::fdatasync(journal_fd_) != 0) return undo("sync");
  journal_bytes_ += text.size();
  seen_dirty_.clear();
  seen_saved_ = clock_.SteadyNow();
  if (journal_bytes_ >= kMinCompactBytes && journal_bytes_ >= snapshot_bytes_) {
    // The change is already durable in the journal; a failed rewrite only postpones compaction.
    if (auto ok = CompactLocked(); !ok) spdlog::warn("pairing store: {}", ok.error().message);
  }
  return core::Status();
}

std::vector<std::string> PairingStore::SeenChangesLocked() {
  if (seen_dirty_.empty()) return {};
  Json seen = Json::object();
  for (const auto& id : seen_dirty_) {
    if (auto n = nodes_.find(id); n != nodes_.end() && n->second.last_seen) seen[id] = ToMs(*n->second.last_seen);
  }
  return {Json{{"seen", seen}}.dump()};
}

core::Result<std::string> PairingStore::IssueCode(const std::string& node_id,
                                                  const std::vector<std::string>& capabilities,
                                                  std::chrono::milliseconds ttl) {
  std::string secret = core::Base64UrlEncode(core::RandomBytes(32));
  std::lock_guard<std::mutex> lock(mutex_);
  IssuedCode code{node_id, core::Sha256Hex(secret), capabilities, clock_.Now(), clock_.Now() + ttl, false};
  codes_.push_back(code);
  if (auto ok = CommitLocked({CodeChange(code)}); !ok) {
    codes_.pop_back();
    return ok.error();
  }
  return secret;
}

core::Result<NodeRecord> PairingStore::Redeem(const std::string& secret, const std::string& node_id,
                                              const PublicKey& key, const std::vector<std::string>& requested,
                                              const DeviceInfo& device) {
  const std::string digest = core::Sha256Hex(secret);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = std::find_if(codes_.begin(), codes_.end(), [&](const IssuedCode& c) { return c.secret_sha256 == digest; });
  if (it == codes_.end()) {
    return MakeError(ErrorCode::kRefused, "the pairing code is not known to this gateway; ask the operator for a "
                                          "new one (`labgate pair new --node " + node_id + "`)");
  }
  if (it->used) {
    return MakeError(ErrorCode::kRefused, "the pairing code was already used; codes work once. Ask for a new "
                                          "one (`labgate pair new --node " + node_id + "`)");
  }
  if (clock_.Now() > it->expires_at) {
    return MakeError(ErrorCode::kRefused, "the pairing code expired at " + FormatTime(it->expires_at) +
                                              "; ask for a new one (`labgate pair new --node " + node_id + "`)");
  }
  if (it->node_id != node_id) {
    return MakeError(ErrorCode::kRefused, "the pairing code was issued for node " + it->node_id + ", not " + node_id);
  }
  for (const auto& [other_id, other] : nodes_) {
    if (other_id != node_id && !other.revoked() && other.key.fingerprint == key.fingerprint) {
      return MakeError(ErrorCode::kRefused, "this key already belongs to node " + other_id + "; every node needs its own key");
    }
  }
  NodeRecord record;
  record.id = node_id;
  record.key = key;
  for (const auto& cap : it->capabilities) {
    if (requested.empty() || Contains(requested, cap)) record.capabilities.push_back(cap);
  }
  record.device = device;
  record.paired_at = clock_.Now();
  record.last_seen = record.paired_at;
  auto previous = nodes_.find(node_id);
  std::optional<NodeRecord> old;
  if (previous != nodes_.end()) old = previous->second;
  std::optional<PendingPairing> was_pending;
  if (auto p = pending_.find(node_id); p != pending_.end()) was_pending = p->second;
  it->used = true;
  nodes_[node_id] = record;
  pending_.erase(node_id);
  std::vector<Json> changes = {CodeChange(*it), NodeChange(record)};
  if (was_pending) changes.push_back(PendingRemovedChange(node_id));
  if (auto ok = CommitLocked(changes); !ok) {
    it->used = false;
    if (old) nodes_[node_id] = *old; else nodes_.erase(node_id);
    if (was_pending) pending_[node_id] = *was_pending;
    return ok.error();
  }
  return record;
}

core::Status PairingStore::AddPending(const std::string& node_id, const PublicKey& key,
                                      const std::vector<std::string>& requested, const DeviceInfo& device) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto n = nodes_.find(node_id); n != nodes_.end() && !n->second.revoked()) {
    return MakeError(ErrorCode::kRefused, "node " + node_id + " is already paired; a second device cannot take its id. "
                                          "Pair this device under another id, or revoke " + node_id + " first");
  }
  std::optional<PendingPairing> before;
  if (auto p = pending_.find(node_id); p != pending_.end()) {
    // The operator approves a request by id after comparing its key with the device's: a
    // request from another key must not take the place of the one they compared.
    if (p->second.key.fingerprint != key.fingerprint) {
      return MakeError(ErrorCode::kRefused, "a pairing request for " + node_id + " from another key (" +
                                                p->second.key.fingerprint + ") is already waiting for the operator; "
                                                "they reject it (`labgate nodes reject " + node_id +
                                                "`) before this device can ask");
    }
    before = p->second;
  }
  PendingPairing request{node_id, key, requested, device, clock_.Now()};
  pending_[node_id] = request;
  if (auto ok = CommitLocked({PendingChange(request)}); !ok) {
    if (before) pending_[node_id] = *before; else pending_.erase(node_id);
    return ok;
  }
  return core::Status();
}

core::Result<NodeRecord> PairingStore::Approve(const std::string& node_id,
                                               const std::optional<std::vector<std::string>>& capabilities) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find(node_id);
  if (it == pending_.end()) {
    return MakeError(ErrorCode::kNotFound, "no pairing request from " + node_id + " is waiting; see `labgate nodes pending`");
  }
  NodeRecord record;
  record.id = node_id;
  record.key = it->second.key;
  record.capabilities = it->second.capabilities;
  if (capabilities) {
    // A request that named no capabilities takes what the operator grants; one that named
    // some can only be narrowed.
    for (const auto& cap : *capabilities) {
      if (!it->second.capabilities.empty() && !Contains(it->second.capabilities, cap)) {
        return MakeError(ErrorCode::kInvalidArgument, "the device did not ask for " + cap + " (it asked for " +
                                                          core::Join(it->second.capabilities, ",", "(none)") + "); approval can only narrow");
      }
    }
    record.capabilities = *capabilities;
  }
  record.device = it->second.device;
  record.paired_at = clock_.Now();
  PendingPairing kept = it->second;
  std::optional<NodeRecord> old;
  if (auto previous = nodes_.find(node_id); previous != nodes_.end()) old = previous->second;
  pending_.erase(it);
  nodes_[node_id] = record;
  if (auto ok = CommitLocked({NodeChange(record), PendingRemovedChange(node_id)}); !ok) {
    if (old) nodes_[node_id] = *old; else nodes_.erase(node_id);
    pending_[node_id] = kept;
    return ok.error();
  }
  return record;
}

core::Result<PendingPairing> PairingStore::Reject(const std::string& node_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find(node_id);
  if (it == pending_.end()) {
    return MakeError(ErrorCode::kNotFound, "no pairing request from " + node_id + " is waiting; see `labgate nodes pending`");
  }
  PendingPairing kept = it->second;
  pending_.erase(it);
  if (auto ok = CommitLocked({PendingRemovedChange(node_id)}); !ok) {
    pending_[node_id] = kept;
    return ok.error();
  }
  return kept;
}

core::Result<NodeRecord> PairingStore::Revoke(const std::string& node_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return MakeError(ErrorCode::kNotFound, "node " + node_id + " is not paired");
  if (it->second.revoked()) {
    return MakeError(ErrorCode::kInvalidArgument, "node " + node_id + " was already revoked at " +
                                                      FormatTime(*it->second.revoked_at));
  }
  it->second.revoked_at = clock_.Now();
  if (auto ok = CommitLocked({NodeChange(it->second)}); !ok) {
    it->second.revoked_at.reset();
    return ok.error();
  }
  return it->second;
}

core::Result<NodeRecord> PairingStore::Rotate(const std::string& node_id, const PublicKey& new_key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || it->second.revoked()) {
    return MakeError(ErrorCode::kNotFound, "node " + node_id + " is not paired (or was revoked)");
  }
  if (new_key.fingerprint == it->second.key.fingerprint) {
    return MakeError(ErrorCode::kRefused, "the node offered its current key as the new one; rotation not recorded");
  }
  NodeRecord old = it->second;
  it->second.key = new_key;
  it->second.rotated_at = clock_.Now();
  if (auto ok = CommitLocked({NodeChange(it->second)}); !ok) {
    it->second = old;
    return ok.error();
  }
  return it->second;
}

core::Status PairingStore::CheckKey(const std::string& node_id, const std::string& fingerprint) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) {
    for (const auto& [id, r] : nodes_) {
      if (r.key.fingerprint == fingerprint) {
        return MakeError(ErrorCode::kRefused, "key " + fingerprint + " belongs to node " + id + ", which asked to log in as " + node_id);
      }
    }
    return MakeError(ErrorCode::kRefused, "no paired node is called " + node_id);
  }
  if (it->second.revoked()) {
    return MakeError(ErrorCode::kRefused, "node " + node_id + " was revoked at " + FormatTime(*it->second.revoked_at));
  }
  if (it->second.key.fingerprint != fingerprint) {
    return MakeError(ErrorCode::kRefused, "key " + fingerprint + " is not the key recorded for node " + node_id + " (" +
                                              it->second.key.fingerprint + ")");
  }
  return core::Status();
}

void PairingStore::MarkSeen(const std::string& node_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return;
  it->second.last_seen = clock_.Now();
  seen_dirty_.insert(node_id);
  const auto now = clock_.SteadyNow();
  if (now - seen_saved_ < std::chrono::seconds(30)) return;
  // Best effort: last-seen is informative; a failed write must not break a session.
  (void)CommitLocked({});
}

core::Status PairingStore::Flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (seen_dirty_.empty()) return core::Status();
  return CommitLocked({});
}

std::optional<NodeRecord> PairingStore::Find(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

std::optional<PendingPairing> PairingStore::FindPending(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find(node_id);
  if (it == pending_.end()) return std::nullopt;
  return it->second;
}

std::vector<NodeRecord> PairingStore::Nodes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<NodeRecord> out;
  for (const auto& [id, r] : nodes_) out.push_back(r);
  return out;
}

std::vector<PendingPairing> PairingStore::Pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PendingPairing> out;
  for (const auto& [id, r] : pending_) out.push_back(r);
  return out;
}

}  // namespace labgate::nodes
