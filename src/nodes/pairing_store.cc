#include "nodes/pairing_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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

core::Status PairingStore::LoadLocked() {
  std::ifstream in(path_);
  if (!in) return core::Status();  // a new store
  std::stringstream text;
  text << in.rdbuf();
  auto fail = [&](const std::string& why) {
    return MakeError(ErrorCode::kParse, "pairing store " + path_ + " is unreadable (" + why +
                                            "); it is never overwritten: restore it from a backup or move it "
                                            "aside to start over (every node then pairs again)");
  };
  Json root = core::ParseUntrustedJson(text.str());
  if (!root.is_object() || root.value("version", 0) != 1) return fail("not a labgate pairing store, version 1");
  try {
    for (const auto& n : root.at("nodes")) {
      NodeRecord r;
      r.id = n.at("id").get<std::string>();
      r.key = DecodeKey(n.at("key"));
      r.capabilities = n.at("capabilities").get<std::vector<std::string>>();
      r.device = DecodeDevice(n.value("device", Json::object()));
      r.paired_at = FromMs(n.at("pairedAt").get<std::int64_t>());
      r.rotated_at = ReadOptTime(n, "rotatedAt");
      r.revoked_at = ReadOptTime(n, "revokedAt");
      r.last_seen = ReadOptTime(n, "lastSeen");
      nodes_[r.id] = r;
    }
    for (const auto& p : root.at("pending")) {
      PendingPairing r;
      r.id = p.at("id").get<std::string>();
      r.key = DecodeKey(p.at("key"));
      r.capabilities = p.at("capabilities").get<std::vector<std::string>>();
      r.device = DecodeDevice(p.value("device", Json::object()));
      r.requested_at = FromMs(p.at("requestedAt").get<std::int64_t>());
      pending_[r.id] = r;
    }
    for (const auto& c : root.at("codes")) {
      IssuedCode r;
      r.node_id = c.at("nodeId").get<std::string>();
      r.secret_sha256 = c.at("secretSha256").get<std::string>();
      r.capabilities = c.at("capabilities").get<std::vector<std::string>>();
      r.issued_at = FromMs(c.at("issuedAt").get<std::int64_t>());
      r.expires_at = FromMs(c.at("expiresAt").get<std::int64_t>());
      r.used = c.at("used").get<bool>();
      codes_.push_back(r);
    }
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return core::Status();
}

core::Status PairingStore::SaveLocked() {
  // Codes that expired a day ago have nothing left to explain; drop them.
  const TimePoint horizon = clock_.Now() - std::chrono::hours(24);
  codes_.erase(std::remove_if(codes_.begin(), codes_.end(), [&](const IssuedCode& c) { return c.expires_at < horizon; }),
               codes_.end());
  Json root = {{"version", 1}, {"nodes", Json::array()}, {"pending", Json::array()}, {"codes", Json::array()}};
  for (const auto& [id, r] : nodes_) {
    root["nodes"].push_back({{"id", r.id},
                             {"key", EncodeKey(r.key)},
                             {"capabilities", r.capabilities},
                             {"device", EncodeDevice(r.device)},
                             {"pairedAt", ToMs(r.paired_at)},
                             {"rotatedAt", OptTime(r.rotated_at)},
                             {"revokedAt", OptTime(r.revoked_at)},
                             {"lastSeen", OptTime(r.last_seen)}});
  }
  for (const auto& [id, r] : pending_) {
    root["pending"].push_back({{"id", r.id},
                               {"key", EncodeKey(r.key)},
                               {"capabilities", r.capabilities},
                               {"device", EncodeDevice(r.device)},
                               {"requestedAt", ToMs(r.requested_at)}});
  }
  for (const auto& c : codes_) {
    root["codes"].push_back({{"nodeId", c.node_id},
                             {"secretSha256", c.secret_sha256},
                             {"capabilities", c.capabilities},
                             {"issuedAt", ToMs(c.issued_at)},
                             {"expiresAt", ToMs(c.expires_at)},
                             {"used", c.used}});
  }
  seen_dirty_ = false;
  seen_saved_ = clock_.SteadyNow();
  const std::string text = root.dump(2) + "\n";
  return core::WriteFileAtomic(path_, text, 0600);
}

core::Result<std::string> PairingStore::IssueCode(const std::string& node_id,
                                                  const std::vector<std::string>& capabilities,
                                                  std::chrono::milliseconds ttl) {
  std::string secret = core::Base64UrlEncode(core::RandomBytes(32));
  std::lock_guard<std::mutex> lock(mutex_);
  IssuedCode code{node_id, core::Sha256Hex(secret), capabilities, clock_.Now(), clock_.Now() + ttl, false};
  codes_.push_back(code);
  if (auto ok = SaveLocked(); !ok) {
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
  it->used = true;
  nodes_[node_id] = record;
  pending_.erase(node_id);
  if (auto ok = SaveLocked(); !ok) {
    it->used = false;
    if (old) nodes_[node_id] = *old; else nodes_.erase(node_id);
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
  pending_[node_id] = PendingPairing{node_id, key, requested, device, clock_.Now()};
  return SaveLocked();
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
  pending_.erase(it);
  nodes_[node_id] = record;
  if (auto ok = SaveLocked(); !ok) {
    nodes_.erase(node_id);
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
  if (auto ok = SaveLocked(); !ok) {
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
  if (auto ok = SaveLocked(); !ok) {
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
  if (auto ok = SaveLocked(); !ok) {
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
  seen_dirty_ = true;
  const auto now = clock_.SteadyNow();
  if (now - seen_saved_ < std::chrono::seconds(30)) return;
  // Best effort: last-seen is informative; a failed write must not break a session.
  (void)SaveLocked();
}

core::Status PairingStore::Flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!seen_dirty_) return core::Status();
  return SaveLocked();
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
