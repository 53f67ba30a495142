#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/clock.h"
#include "core/result.h"
#include "nodes/node_key.h"

namespace labgate::nodes {

using TimePoint = std::chrono::system_clock::time_point;

/// What a device says about itself when it pairs.
struct DeviceInfo {
  std::string platform;  // "linux-x86_64", "android-aarch64", ...
  std::string hostname;
  std::string version;  // labgate version on the device
};

/// A paired node: the one key the gateway accepts for its id, and what it may do.
struct NodeRecord {
  std::string id;
  PublicKey key;
  std::vector<std::string> capabilities;
  DeviceInfo device;
  TimePoint paired_at;
  std::optional<TimePoint> rotated_at;
  std::optional<TimePoint> revoked_at;
  std::optional<TimePoint> last_seen;

  bool revoked() const { return revoked_at.has_value(); }
  /// When the current key was made: the last rotation, else the pairing.
  TimePoint key_since() const { return rotated_at.value_or(paired_at); }
  /// An unrevoked key older than `max_age_days` at `now`: `nodes list` and `doctor` say "stale".
  bool KeyStale(TimePoint now, std::int64_t max_age_days) const {
    return !revoked() && now - key_since() > std::chrono::hours(24) * max_age_days;
  }
};

/// A pairing request without a code, waiting for `labgate nodes approve|reject`.
struct PendingPairing {
  std::string id;
  PublicKey key;
  std::vector<std::string> capabilities;  // as requested
  DeviceInfo device;
  TimePoint requested_at;
};

/// A pairing code as the gateway keeps it: only the secret's digest is stored.
struct IssuedCode {
  std::string node_id;
  std::string secret_sha256;
  std::vector<std::string> capabilities;
  TimePoint issued_at;
  TimePoint expires_at;
  bool used = false;
};

/// The gateway's pairing state (`state_dir/nodes.json`): paired nodes and their keys, pending
/// requests and issued codes. Every change is durable before it is reported done: it is appended
/// to a journal beside the file (`nodes.json.journal`, one JSON line per changed record, synced),
/// and the file is rewritten whole only when the journal has grown as large as the file. So a
/// change costs the size of what changed, not of the fleet. Thread-safe; one writing process.
class PairingStore {
 public:
  PairingStore(const PairingStore&) = delete;
  PairingStore& operator=(const PairingStore&) = delete;
  ~PairingStore();
  /// Opens (or starts) the store at `path` and replays its journal; never writes. A corrupt file
  /// or journal line is an error, never silently replaced; a last journal line cut short by a
  /// crash was never reported done and is ignored.
  static core::Result<std::unique_ptr<PairingStore>> Open(std::string path, const core::Clock& clock);

  /// A fresh single-use code for `node_id`; returns the secret (shown once, stored as a digest).
  core::Result<std::string> IssueCode(const std::string& node_id, const std::vector<std::string>& capabilities,
                                      std::chrono::milliseconds ttl);

  /// Redeems a code for the key that authenticated the pairing session. The granted capabilities
  /// are the code's, narrowed to those requested when the device asked for fewer.
  core::Result<NodeRecord> Redeem(const std::string& secret, const std::string& node_id, const PublicKey& key,
                                  const std::vector<std::string>& requested, const DeviceInfo& device);

  /// Queues a request without a code (only when the gateway allows pairing).
  core::Status AddPending(const std::string& node_id, const PublicKey& key, const std::vector<std::string>& requested,
                          const DeviceInfo& device);

  /// Approves a pending request; `capabilities` may narrow what was requested, never widen it.
  core::Result<NodeRecord> Approve(const std::string& node_id,
                                   const std::optional<std::vector<std::string>>& capabilities);
  core::Result<PendingPairing> Reject(const std::string& node_id);

  core::Result<NodeRecord> Revoke(const std::string& node_id);
  /// Records a node's new key; the old one stops being accepted at once.
  core::Result<NodeRecord> Rotate(const std::string& node_id, const PublicKey& new_key);

  /// Ok when `fingerprint` is the key recorded for a paired, unrevoked `node_id`; else says why.
  core::Status CheckKey(const std::string& node_id, const std::string& fingerprint) const;

  /// Notes that a node was seen now. Kept in memory and written with the next change, or at
  /// most every 30 s: a hello must not cost a rewrite of the store on a fleet's reconnect.
  void MarkSeen(const std::string& node_id);
  /// Writes pending last-seen times (at shutdown).
  core::Status Flush();

  std::optional<NodeRecord> Find(const std::string& node_id) const;
  std::optional<PendingPairing> FindPending(const std::string& node_id) const;
  std::vector<NodeRecord> Nodes() const;
  std::vector<PendingPairing> Pending() const;
  const std::string& path() const { return path_; }

 private:
  PairingStore(std::string path, const core::Clock& clock)
      : path_(std::move(path)), journal_path_(path_ + ".journal"), clock_(clock) {}
  core::Status LoadLocked();
  /// Makes `changes` (see ApplyChangeLocked) durable in one journal line; on an error nothing of them is.
  core::Status CommitLocked(const std::vector<nlohmann::json>& changes);
  /// Rewrites the file whole from memory, then empties the journal.
  core::Status CompactLocked();
  /// Applies one journal line to memory; throws on a malformed one.
  void ApplyLocked(const std::string& line);
  /// One change ({"node": ...}, {"pending": ...}, ...); a "batch" line holds several.
  void ApplyChangeLocked(const nlohmann::json& change);
  /// Journal lines with the last-seen times that changed since they were last written.
  std::vector<std::string> SeenChangesLocked();

  std::string path_;
  std::string journal_path_;
  const core::Clock& clock_;
  int journal_fd_ = -1;               // opened on the first change
  std::uint64_t journal_bytes_ = 0;   // as it is on disk
  std::uint64_t snapshot_bytes_ = 0;  // the file's size when last read or written
  mutable std::mutex mutex_;
  std::map<std::string, NodeRecord> nodes_;
  std::map<std::string, PendingPairing> pending_;
  std::vector<IssuedCode> codes_;
  std::set<std::string> seen_dirty_;  // ids whose last_seen is newer in memory than on disk
  std::chrono::steady_clock::time_point seen_saved_{};
};

/// "2026-11-24T09:30:00Z"-style text for a time (UTC, seconds).
std::string FormatTime(TimePoint t);

}  // namespace labgate::nodes
