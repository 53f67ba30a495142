#include "gateway/approvals.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "core/base64.h"
#include "core/clock.h"
#include "core/files.h"
#include "core/hashing.h"
#include "core/json_parse.h"
#include "core/json_rpc.h"

namespace labgate::gateway {
namespace {

using core::ErrorCode;
using core::MakeError;
using Json = nlohmann::json;

// Closed requests kept for `approvals list --all`; pending ones are always kept.
constexpr std::size_t kKeepClosed = 200;

std::string NewId(const char* prefix) {
  return prefix + core::HexEncode(core::RandomBytes(6));
}

Json ToJson(const ApprovalRequest& r) {
  return Json{{"id", r.id},           {"status", r.status},         {"createdAt", r.created_at},
              {"expiresAt", r.expires_at}, {"expiresMs", r.expires_ms}, {"binding", r.binding},
              {"digest", r.digest},   {"risk", r.risk},             {"rule", r.rule},
              {"reason", r.reason},   {"requestedBy", r.requested_by}, {"decidedBy", r.decided_by},
              {"decidedAt", r.decided_at}, {"usedAt", r.used_at}};
}

ApprovalRequest RequestFromJson(const Json& j) {
  ApprovalRequest r;
  r.id = j.value("id", "");
  r.status = j.value("status", "");
  r.created_at = j.value("createdAt", "");
  r.expires_at = j.value("expiresAt", "");
  r.expires_ms = j.value("expiresMs", std::int64_t{0});
  r.binding = j.value("binding", Json::object());
  r.digest = j.value("digest", "");
  r.risk = j.value("risk", "");
  r.rule = j.value("rule", "");
  r.reason = j.value("reason", "");
  r.requested_by = j.value("requestedBy", Json::object());
  r.decided_by = j.value("decidedBy", "");
  r.decided_at = j.value("decidedAt", "");
  r.used_at = j.value("usedAt", "");
  return r;
}

Json ToJson(const GrantRecord& g) {
  return Json{{"id", g.id},           {"target", g.target},         {"pattern", g.pattern},
              {"createdBy", g.created_by}, {"createdAt", g.created_at}, {"expiresAt", g.expires_at},
              {"expiresMs", g.expires_ms}, {"revokedAt", g.revoked_at}};
}

GrantRecord GrantFromJson(const Json& j) {
  GrantRecord g;
  g.id = j.value("id", "");
  g.target = j.value("target", "");
  g.pattern = j.value("pattern", "");
  g.created_by = j.value("createdBy", "");
  g.created_at = j.value("createdAt", "");
  g.expires_at = j.value("expiresAt", "");
  g.expires_ms = j.value("expiresMs", std::int64_t{0});
  g.revoked_at = j.value("revokedAt", "");
  return g;
}

}  // namespace

Json ApprovalBinding::ToJson() const {
  Json env_json = Json::object();
  for (const auto& [k, v] : env) env_json[k] = v;
  return Json{{"targets", targets}, {"command", command}, {"cwd", cwd}, {"env", env_json}};
}

std::string ApprovalBinding::Digest() const { return core::Sha256Hex(core::jsonrpc::Encode(ToJson())); }

ApprovalStore::ApprovalStore(std::string state_dir, const core::Clock& clock, std::chrono::seconds ttl)
    : path_(state_dir + "/approvals.json"), lock_path_(state_dir + "/approvals.lock"), clock_(clock), ttl_(ttl) {
  // The state dir is private; a failure shows up as an error on first use.
  std::error_code ec;
  if (std::filesystem::create_directories(state_dir, ec)) ::chmod(state_dir.c_str(), 0700);
}

core::Result<ApprovalStore::State> ApprovalStore::Load() {
  // Reading the file is cheap; parsing it is most of the cost. The parsed copy is reused only
  // when the bytes are the same, so no timestamp granularity or inode reuse can hide a change.
  auto text = core::ReadFile(path_);
  if (!text) {
    if (text.error().code == ErrorCode::kNotFound) return State{};
    return text.error();
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cached_ && cached_->first == *text) {
      State state = cached_->second;
      Expire(state);
      return state;
    }
  }
  State state;
  Json root = core::ParseUntrustedJson(*text);
  if (root.is_discarded() || !root.is_object()) {
    return MakeError(ErrorCode::kIo, path_ + " is not valid JSON; nothing was approved. Move it aside to start afresh");
  }
  for (const auto& r : root.value("requests", Json::array())) state.requests.push_back(RequestFromJson(r));
  for (const auto& g : root.value("grants", Json::array())) state.grants.push_back(GrantFromJson(g));
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    cached_.emplace(std::move(*text), state);
  }
  Expire(state);
  return state;
}

void ApprovalStore::Expire(State& state) {
  const std::int64_t now = core::EpochMs(clock_.Now());
  for (auto& r : state.requests) {
    if ((r.status == "pending" || r.status == "approved") && r.expires_ms <= now) r.status = "expired";
  }
}

core::Status ApprovalStore::Save(State& state) {
  const std::int64_t now = core::EpochMs(clock_.Now());
  // Keep every open request and the newest closed ones; drop grants that ended a day ago.
  std::size_t closed = 0;
  std::vector<ApprovalRequest> kept;
  for (auto it = state.requests.rbegin(); it != state.requests.rend(); ++it) {
    const bool open = it->status == "pending" || it->status == "approved";
    if (open || closed++ < kKeepClosed) kept.push_back(*it);
  }
  std::reverse(kept.begin(), kept.end());
  state.requests = std::move(kept);
  state.grants.erase(std::remove_if(state.grants.begin(), state.grants.end(),
                                    [&](const GrantRecord& g) { return g.expires_ms + 24 * 3600 * 1000 < now; }),
                     state.grants.end());
  Json root = {{"version", 1}, {"requests", Json::array()}, {"grants", Json::array()}};
  for (const auto& r : state.requests) root["requests"].push_back(ToJson(r));
  for (const auto& g : state.grants) root["grants"].push_back(ToJson(g));
  return core::WriteFileAtomic(path_, root.dump(2) + "\n", 0600);
}

core::Result<std::optional<ApprovalRequest>> ApprovalStore::TakeApproved(const ApprovalBinding& binding) {
  auto lock = core::FileLock::Acquire(lock_path_);
  if (!lock) return lock.error();
  auto state = Load();
  if (!state) return state.error();
  const std::string digest = binding.Digest();
  for (auto& r : state->requests) {
    if (r.status == "approved" && r.digest == digest) {
      r.status = "used";
      r.used_at = core::FormatTimestamp(clock_.Now());
      ApprovalRequest used = r;  // Save reorders the list
      if (auto ok = Save(*state); !ok) return ok.error();
      return std::optional<ApprovalRequest>(std::move(used));
    }
  }
  return std::optional<ApprovalRequest>();
}

core::Result<ApprovalRequest> ApprovalStore::Request(const ApprovalBinding& binding, const std::string& risk,
                                                     const std::string& rule, const std::string& reason,
                                                     const Json& requested_by, bool* created) {
  auto lock = core::FileLock::Acquire(lock_path_);
  if (!lock) return lock.error();
  auto state = Load();
  if (!state) return state.error();
  const std::string digest = binding.Digest();
  for (const auto& r : state->requests) {
    if (r.status == "pending" && r.digest == digest) {
      if (created) *created = false;
      return r;
    }
  }
  const auto now = clock_.Now();
  ApprovalRequest r;
  r.id = NewId("apr-");
  r.status = "pending";
  r.created_at = core::FormatTimestamp(now);
  r.expires_at = core::FormatTimestamp(now + ttl_);
  r.expires_ms = core::EpochMs(now + ttl_);
  r.binding = binding.ToJson();
  r.digest = digest;
  r.risk = risk;
  r.rule = rule;
  r.reason = reason;
  r.requested_by = requested_by;
  state->requests.push_back(r);
  if (auto ok = Save(*state); !ok) return ok.error();
  if (created) *created = true;
  return r;
}

core::Result<std::vector<ApprovalRequest>> ApprovalStore::List(bool all) {
  auto lock = core::FileLock::Acquire(lock_path_);
  if (!lock) return lock.error();
  auto state = Load();
  if (!state) return state.error();
  std::vector<ApprovalRequest> out;
  for (auto it = state->requests.rbegin(); it != state->requests.rend(); ++it) {
    if (all || it->status == "pending" || it->status == "approved") out.push_back(*it);
  }
  return out;
}

core::Result<ApprovalRequest> ApprovalStore::Decide(const std::string& id, bool approve, const std::string& who) {
  auto lock = core::FileLock::Acquire(lock_path_);
  if (!lock) return lock.error();
  auto state = Load();
  if (!state) return state.error();
  for (auto& r : state->requests) {
    if (r.id != id) continue;
    if (r.status == "expired") {
      return MakeError(ErrorCode::kRefused, "approval request " + id + " expired at " + r.expires_at +
                                                "; nothing was approved. Repeat the call to file a new request");
    }
    if (r.status != "pending") {
      return MakeError(ErrorCode::kRefused, "approval request " + id + " is already " + r.status +
                                                (r.decided_by.empty() ? "" : " (by " + r.decided_by + ")"));
    }
    r.status = approve ? "approved" : "denied";
    r.decided_by = who;
    r.decided_at = core::FormatTimestamp(clock_.Now());
    ApprovalRequest decided = r;  // Save reorders the list
    if (auto ok = Save(*state); !ok) return ok.error();
    return decided;
  }
  return MakeError(ErrorCode::kNotFound, "no approval request " + id + " (see `labgate approvals list --all`)");
}

core::Result<GrantRecord> ApprovalStore::AddGrant(const std::string& target, const std::string& pattern,
                                                  std::chrono::seconds duration, const std::string& who) {
  auto lock = core::FileLock::Acquire(lock_path_);
  if (!lock) return lock.error();
  auto state = Load();
  if (!state) return state.error();
  const auto now = clock_.Now();
  GrantRecord g;
  g.id = NewId("grant-");
  g.target = target;
  g.pattern = pattern;
  g.created_by = who;
  g.created_at = core::FormatTimestamp(now);
  g.expires_at = core::FormatTimestamp(now + duration);
  g.expires_ms = core::EpochMs(now + duration);
  state->grants.push_back(g);
  if (auto ok = Save(*state); !ok) return ok.error();
  return g;
}

core::Result<std::vector<GrantRecord>> ApprovalStore::ActiveGrants() {
  // A read only: the file is replaced whole, so no lock is needed to see one consistent version.
  auto state = Load();
  if (!state) return state.error();
  const std::int64_t now = core::EpochMs(clock_.Now());
  std::vector<GrantRecord> out;
  for (const auto& g : state->grants) {
    if (g.revoked_at.empty() && g.expires_ms > now) out.push_back(g);
  }
  return out;
}

core::Result<GrantRecord> ApprovalStore::RevokeGrant(const std::string& id, const std::string& who) {
  auto lock = core::FileLock::Acquire(lock_path_);
  if (!lock) return lock.error();
  auto state = Load();
  if (!state) return state.error();
  for (auto& g : state->grants) {
    if (g.id != id) continue;
    if (!g.revoked_at.empty()) return MakeError(ErrorCode::kRefused, "grant " + id + " was already revoked");
    g.revoked_at = core::FormatTimestamp(clock_.Now()) + " by " + who;
    GrantRecord revoked = g;  // Save may drop old grants
    if (auto ok = Save(*state); !ok) return ok.error();
    return revoked;
  }
  return MakeError(ErrorCode::kNotFound, "no grant " + id + " (see `labgate approvals grants`)");
}

std::vector<policy::Grant> ApprovalStore::PolicyGrants() {
  std::vector<policy::Grant> out;
  auto grants = ActiveGrants();
  if (!grants) return out;
  for (const auto& g : *grants) out.push_back({g.id, g.target, g.pattern, g.expires_at});
  return out;
}

}  // namespace labgate::gateway
