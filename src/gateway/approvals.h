#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "policy/decide.h"

namespace labgate::gateway {

/// Exactly what a human approves: the resolved targets, the command, cwd and environment.
/// An approval is good for this and nothing else.
struct ApprovalBinding {
  std::vector<std::string> targets;  // sorted target ids
  nlohmann::json command;            // {"argv": [...]} or {"shell": "..."}
  std::string cwd;
  std::vector<std::pair<std::string, std::string>> env;

  nlohmann::json ToJson() const;
  /// SHA-256 over the canonical JSON: equal bindings, equal digests.
  std::string Digest() const;
};

/// A request for a human's yes, filed when a caller cannot ask one directly.
struct ApprovalRequest {
  std::string id;      // "apr-" + 12 hex digits
  std::string status;  // "pending", "approved", "denied", "used", "expired"
  std::string created_at;
  std::string expires_at;
  std::int64_t expires_ms = 0;  // epoch ms
  nlohmann::json binding;       // ApprovalBinding::ToJson
  std::string digest;
  std::string risk;
  std::string rule;
  std::string reason;
  nlohmann::json requested_by;  // the audit actor
  std::string decided_by;
  std::string decided_at;
  std::string used_at;
};

/// A standing operator grant (see policy::Grant) as stored.
struct GrantRecord {
  std::string id;  // "grant-" + 12 hex digits
  std::string target;
  std::string pattern;
  std::string created_by;
  std::string created_at;
  std::string expires_at;
  std::int64_t expires_ms = 0;
  std::string revoked_at;
};

/// Approval requests and grants in `state_dir/approvals.json` (0600), shared by every labgate
/// process of one state dir: each operation takes `approvals.lock`, reads, changes and writes the
/// file atomically. Thread-safe.
class ApprovalStore {
 public:
  ApprovalStore(std::string state_dir, const core::Clock& clock, std::chrono::seconds ttl);

  /// Consumes the approved, unexpired request for exactly `binding` (single use).
  core::Result<std::optional<ApprovalRequest>> TakeApproved(const ApprovalBinding& binding);
  /// The open request for `binding`, or a new one; `created` says which.
  core::Result<ApprovalRequest> Request(const ApprovalBinding& binding, const std::string& risk,
                                        const std::string& rule, const std::string& reason,
                                        const nlohmann::json& requested_by, bool* created);
  /// Requests, newest first; closed ones (used, denied, expired) only with `all`.
  core::Result<std::vector<ApprovalRequest>> List(bool all);
  /// Approves or denies a pending request. Refuses one that expired or was already decided.
  core::Result<ApprovalRequest> Decide(const std::string& id, bool approve, const std::string& who);

  core::Result<GrantRecord> AddGrant(const std::string& target, const std::string& pattern,
                                     std::chrono::seconds duration, const std::string& who);
  /// Grants in force now (not expired, not revoked).
  core::Result<std::vector<GrantRecord>> ActiveGrants();
  core::Result<GrantRecord> RevokeGrant(const std::string& id, const std::string& who);

  /// ActiveGrants as policy inputs; empty when the store cannot be read (fail closed).
  std::vector<policy::Grant> PolicyGrants();

 private:
  struct State {
    std::vector<ApprovalRequest> requests;
    std::vector<GrantRecord> grants;
  };
  core::Result<State> Load();
  core::Status Save(State& state);
  void Expire(State& state);

  std::string path_;
  std::string lock_path_;
  const core::Clock& clock_;
  std::chrono::seconds ttl_;
  // The last version parsed, with the bytes it was parsed from: every call checks the grants,
  // and parsing the file each time was most of that.
  std::mutex cache_mutex_;
  std::optional<std::pair<std::string, State>> cached_;
};

}  // namespace labgate::gateway
