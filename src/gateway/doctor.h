#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "audit/audit_log.h"
#include "audit/audit_reader.h"
#include "audit/forwarder.h"
#include "core/result.h"
#include "gateway/gateway.h"
#include "inventory/inventory.h"
#include "nodes/pairing_store.h"

/// `labgate doctor` and `labgate hosts check`: the guide's final checklist evaluated against the
/// real inventory, pairing store, audit log and targets. The checks are pure functions over
/// values; RunDoctor gathers those values from a Runtime (probing targets through the pipeline).
namespace labgate::gateway {

class Runtime;

/// One line of the checklist: a stable id, what it checks, the verdict, the facts behind it and
/// what to do next ("" when nothing).
struct DoctorItem {
  std::string id;  // "pairing", "remote-exec", "capture", "audit", "keys"; hosts check: "inventory",
                   // "reachable", "keys", "owner-purpose"
  std::string title;
  bool ok = false;
  std::vector<std::string> details;
  std::string next;
  /// Passed, but something listed is not well (a host down while enough others answered):
  /// shown in the summary, and a failure under `--strict`.
  std::vector<std::string> warnings;
};

/// Every item, in the order they are shown.
struct DoctorReport {
  std::vector<DoctorItem> items;

  bool ok() const;
  std::size_t warnings() const;
  const DoctorItem* Find(std::string_view id) const;
};

/// {ok, warnings, items:[{id, title, ok, details[], next, warnings[]}]}
nlohmann::json DoctorReportJson(const DoctorReport& report);
/// The inverse of DoctorReportJson, for reports that crossed the operator socket.
core::Result<DoctorReport> DoctorReportFromJson(const nlohmann::json& json);
/// "PASS pairing      TITLE" per item, indented details, "→ next" lines, then a summary line
/// naming `what` ("doctor", "hosts check").
std::string DoctorReportText(const DoctorReport& report, const std::string& what);

/// The last screen or camera capture that worked, as STATE_DIR/last-capture.json keeps it.
struct LastCapture {
  std::string target;
  std::string action;  // "screen.snapshot", "camera.snap", ...
  std::string at;      // RFC 3339 UTC
  std::uint64_t bytes = 0;
  std::string sha256;
  std::string uri;  // labgate://artifacts/ID ("" when it was not kept)
};

std::string LastCapturePath(const std::string& state_dir);
/// Replaces the file at `path` atomically.
core::Status RememberLastCapture(const std::string& path, const LastCapture& capture);
/// nullopt when no capture was remembered yet; kParse when the file holds something else.
core::Result<std::optional<LastCapture>> ReadLastCapture(const std::string& path);

/// One target's answer to doctor's read-only probe, or why it was not asked.
struct ReachProbe {
  enum class Status {
    kAnswered,  // the command ran and exited 0
    kFailed,    // asked, and it failed (unreachable, refused, non-zero exit, timed out)
    kOffline,   // a node that is offline or was never paired: not asked
    kSkipped,   // not asked for a reason that is no fault (no run capability, no daemon to reach nodes)
  };
  std::string target;
  std::string kind;  // "local", "host", "node"
  Status status = Status::kSkipped;
  std::int64_t duration_ms = 0;
  std::string detail;  // the error, or why it was not asked
};

/// Counts action records (run and capture intents and results) that lack what the guide asks an
/// audit record to hold: who, which target, the exact payload, timestamps, exit code or outcome.
/// Fed records in chain order. Not thread-safe.
class AuditFieldCheck {
 public:
  void Add(const nlohmann::json& record);

  std::uint64_t intents() const { return intents_; }
  std::uint64_t results() const { return results_; }
  /// Results labgate wrote at start-up for calls a killed labgate process left without one.
  std::uint64_t interrupted() const { return interrupted_; }
  /// "intent: who" -> how many intents lack it; "result: exit code or outcome" -> ..., ...
  const std::map<std::string, std::uint64_t>& missing() const { return missing_; }

 private:
  void Missing(const std::string& field);

  std::uint64_t intents_ = 0;
  std::uint64_t results_ = 0;
  std::uint64_t interrupted_ = 0;
  std::map<std::string, std::uint64_t> missing_;
  std::unordered_set<std::string> intent_ids_;
};

/// Where docs/key-rotation.md may be: an installed copy next to the binary
/// (`EXE_DIR/../share/doc/labgate/key-rotation.md`), then the source tree. Pure.
std::vector<std::string> KeyRotationDocCandidates(const std::string& exe_path, const std::string& source_dir);

/// Which key-rotation guide was found, among which candidates.
struct DocLookup {
  std::optional<std::string> found;
  std::vector<std::string> candidates;
};

/// pairing: every [[nodes]] entry is paired, every paired (unrevoked) node is in the inventory,
/// and a pinned key_fingerprint equals the recorded key. Pending requests are listed.
DoctorItem CheckPairing(const inventory::Inventory& inv, const std::vector<nodes::NodeRecord>& paired,
                        const std::vector<nodes::PendingPairing>& pending);

/// remote-exec: passes when at least two targets answered the read-only probe.
DoctorItem CheckRemoteExec(const std::vector<ReachProbe>& probes, const std::string& probe_command);

/// capture: passes when a screen or camera capture is remembered. `attempt` is the capture doctor
/// made now (--capture), if any; `candidates` the targets offering screen or camera.
DoctorItem CheckCapture(const core::Result<std::optional<LastCapture>>& memory, const CaptureReport* attempt,
                        const std::vector<std::string>& candidates, const std::string& config_hint);

/// audit: the chain verifies, action records carry every field, and copies ([audit] forward)
/// get through to each destination.
DoctorItem CheckAudit(const std::string& path, const core::Result<audit::VerifyReport>& verify,
                      const AuditFieldCheck& fields, const std::vector<audit::AuditForwarder::Health>& copies = {});

/// keys: every paired, unrevoked key is at most [gateway] key_max_age_days old (as `labgate nodes
/// list` counts `stale`), no revoked node is still a [[nodes]] entry, and (when `doc` is given)
/// the key-rotation guide exists.
DoctorItem CheckKeys(const inventory::Inventory& inv, const std::vector<nodes::NodeRecord>& paired,
                     nodes::TimePoint now, const DocLookup* doc);

/// hosts check, inventory: the file loaded (its size), or every SOURCE:LINE: key: error.
DoctorItem CheckInventoryLoads(const std::string& source, const core::Result<inventory::Inventory>& loaded);

/// hosts check, reachable: every probed host and every paired node answered.
DoctorItem CheckReachable(const std::vector<ReachProbe>& probes, const std::string& probe_command);

/// hosts check, owner-purpose: every [[hosts]] and [[nodes]] entry says who owns it and what it is for.
DoctorItem CheckOwnerPurpose(const inventory::Inventory& inv);

/// Whether commands on `local` run in a sandbox that keeps labgate's own files out of reach, and
/// what follows when they do not (everything but read-only asks a human).
DoctorItem CheckSandbox(bool active, const std::string& description);

/// What to run.
struct DoctorOptions {
  std::string capture_target;  // --capture TARGET: take a screen snapshot (or camera snap) now
  bool hosts_only = false;     // `labgate hosts check`: reachable, keys, owner-purpose
  std::string config_hint;     // " --config FILE" for suggested commands
};

/// Gathers the values and evaluates the checklist in `runtime`: the daemon's pairing store when
/// it has one, else nodes.json read without changing it. Probes and captures go through the
/// pipeline as `actor`, so they are audited like everything else.
DoctorReport RunDoctor(Runtime& runtime, const audit::Actor& actor, const DoctorOptions& options);

}  // namespace labgate::gateway
