#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "audit/audit_log.h"
#include "core/cancel.h"
#include "core/clock.h"
#include "core/process_runner.h"
#include "core/result.h"
#include "gateway/approvals.h"
#include "gateway/gateway.h"
#include "inventory/inventory.h"

/// Routine checks ([[checks]] in hosts.toml): run read-only commands on a schedule or after a
/// node comes back, alert once per failure, and run a remediation only after an operator approves.
namespace labgate::gateway {

/// How much of a check's stdout reaches alerts and `checks list`.
inline constexpr std::size_t kCheckOutputCap = 4096;
/// How long an alert command may run.
inline constexpr std::chrono::milliseconds kAlertTimeout{30000};

/// How one run of a check on one target came out: it passed, its expectation failed, or it
/// could not be judged (unreachable, refused, timed out).
enum class CheckStatus { kPass, kFail, kError };
/// "pass", "fail", "error".
const char* CheckStatusName(CheckStatus status);

/// The verdict on one target.
struct CheckVerdict {
  CheckStatus status = CheckStatus::kError;
  std::string summary;  // one line: "disk-pressure on prox4: 93 is not below 90"
  std::optional<int> exit_code;
  std::string output;  // stdout, capped at kCheckOutputCap
};

/// Judges a finished run of `check` against its expect. Pure.
CheckVerdict EvaluateCheck(const inventory::Check& check, const TargetRunResult& result);
/// Judges a snapshot taken for a capture check. Pure.
CheckVerdict EvaluateCapture(const inventory::Check& check, const CaptureReport& report);
/// The first number in `text` ("87%" -> 87, "load -1.5" -> -1.5), if there is one.
std::optional<double> FirstNumber(std::string_view text);

/// Where a check stands on one target, as checks.json keeps it.
struct CheckTargetState {
  std::string status;  // "pass", "fail", "error"; "" before the first run
  std::string summary;
  std::optional<int> exit_code;
  std::string output;
  std::string trigger;  // what ran it last: "schedule", "manual", "node-online", "after-remediation"
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = 0;
  int streak = 0;           // consecutive runs that did not pass
  bool alerted = false;     // this streak was announced (its alert ran, if there is one)
  std::string approval_id;  // the remediation request of this streak
  // "" (none), "pending", "ran", "failed", "refused", "denied", "expired", "used", "changed", "withdrawn"
  std::string remediation;
};

/// One check's persisted schedule and per-target states.
struct CheckRecord {
  std::int64_t last_slot_ms = 0;  // the last slot claimed (epoch ms); 0: none yet
  std::map<std::string, CheckTargetState> targets;
};

/// What the gateway last saw of a node, for node-online-after-offline.
struct NodeSighting {
  bool online = false;
  std::int64_t offline_since_ms = 0;  // 0: unknown
};

/// STATE_DIR/checks.json: everything the scheduler must remember across restarts.
struct CheckStateFile {
  std::map<std::string, CheckRecord> checks;
  std::map<std::string, NodeSighting> nodes;
  std::int64_t alive_ms = 0;  // when the gateway that wrote it last ran
};
/// A missing file is an empty state; a corrupt one is an error (it is never overwritten blindly).
core::Result<CheckStateFile> LoadCheckState(const std::string& path);
/// Writes atomically (temp file + rename), 0600.
core::Status SaveCheckState(const std::string& path, const CheckStateFile& state);

/// The next local HH:MM (`minute_of_day` after midnight) strictly after `after_ms`.
std::int64_t NextLocalTimeMs(int minute_of_day, std::int64_t after_ms);
/// When a scheduled check runs next, seen from `now_ms`; nullopt for event checks.
std::optional<std::int64_t> NextRunMs(const inventory::Check& check, const CheckRecord& record, std::int64_t now_ms);
/// "every 15m", "at 03:00 (local)", "on node-online-after-offline (offline at least 5m)".
std::string TriggerText(const inventory::Check& check);

/// `checks list` as JSON: each check's trigger, targets, next run and per-target last result.
nlohmann::json ChecksJson(const inventory::Inventory& inventory, const CheckStateFile& state, std::int64_t now_ms);
/// The same as a table for people.
std::string ChecksText(const nlohmann::json& checks);

/// One run of one check on one target, as `checks run` reports it.
struct CheckRunResult {
  std::string check;
  std::string target;
  std::string trigger;
  CheckVerdict verdict;
  std::string action_id;
  bool alerted = false;     // this run started a failure streak and announced it
  std::string approval_id;  // the remediation request this run filed
};
nlohmann::json CheckRunResultJson(const CheckRunResult& result);

/// Runs the inventory's [[checks]] (DESIGN: routine checks). Every check command goes through
/// the Gateway pipeline (policy, audit) as actor {via "check", client = check name}. State
/// lives in `state_path` and is written before anything runs, so a restart never runs a slot
/// twice. Side effects are injected: the gateway, the approval store, the audit log, the clock
/// and the process runner that runs alerts. Thread-safe; one background thread after Start().
class CheckScheduler {
 public:
  CheckScheduler(Gateway& gateway, ApprovalStore& approvals, audit::AuditLog& audit, std::string state_path,
                 const core::Clock& clock, core::ProcessRunner& runner);
  ~CheckScheduler();
  CheckScheduler(const CheckScheduler&) = delete;
  CheckScheduler& operator=(const CheckScheduler&) = delete;

  /// Reads the state file. Call once before anything else.
  core::Status Load();
  /// Daemon: nodes that were online when the last gateway stopped count as offline since then;
  /// starts the thread that ticks at each due time and at least once a second.
  void Start();
  /// Cancels what is running, joins the thread and writes the node sightings not yet written.
  /// Idempotent.
  void Stop();

  /// One pass: node events, due slots, approved remediations. The thread calls it; tests too.
  void Tick();
  /// `checks run NAME [--target ID]`: runs the check now on its targets (or one of them).
  core::Result<std::vector<CheckRunResult>> RunNow(const std::string& name, const std::string& target = "");
  /// Agent events (from listener threads): remember when each node went away, and queue the
  /// node-online-after-offline checks of a node that comes back. In memory only; the state file
  /// gets them from the next tick, at most once a second, and from Stop.
  void OnNodeOffline(const std::string& node_id);
  void OnNodeOnline(const std::string& node_id);

  /// `checks list`, from the current inventory and state.
  nlohmann::json List() const;
  CheckStateFile state() const;

 private:
  struct NodeEvent {
    std::string node;
    std::int64_t offline_ms;
  };
  std::int64_t NowMs() const;
  /// Claims the due slot of a scheduled check (persisted before returning); false when not due.
  bool ClaimSlot(const inventory::Check& check, std::int64_t now_ms);
  std::vector<CheckRunResult> RunOn(const inventory::Inventory& inv, const inventory::Check& check,
                                    const std::vector<std::string>& targets, const std::string& trigger);
  /// Records a verdict: streak, alert (once per streak) and the remediation request.
  CheckRunResult Record(const inventory::Inventory& inv, const inventory::Check& check, const std::string& target,
                        const std::string& trigger, CheckVerdict verdict, std::int64_t started_ms,
                        const std::string& action_id);
  void RunAlert(const inventory::Check& check, const std::string& target, const CheckVerdict& verdict,
                const std::string& approval_id);
  std::string FileRemediation(const inventory::Inventory& inv, const inventory::Check& check, const std::string& target,
                              const CheckVerdict& verdict);
  void Remediate(const inventory::Inventory& inv);
  void RunRemediation(const inventory::Inventory& inv, const inventory::Check& check, const std::string& target,
                      const ApprovalRequest& approval);
  void Withdraw(const std::string& check, const std::string& target, const std::string& approval_id);
  void SaveLocked();
  void Event(const std::string& event, const std::string& check, const std::string& target, nlohmann::json details);
  audit::Actor ActorFor(const inventory::Check& check, const std::string& session) const;
  void Loop();

  Gateway& gateway_;
  ApprovalStore& approvals_;
  audit::AuditLog& audit_;
  std::string state_path_;
  const core::Clock& clock_;
  core::ProcessRunner& runner_;
  core::CancelToken cancel_;

  std::mutex run_mutex_;  // one pass or manual run at a time; taken before mutex_
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  CheckStateFile state_;
  std::deque<NodeEvent> node_events_;
  std::int64_t last_save_ms_ = 0;
  // Nodes came or went since the last write. They are written by the next tick at most once a
  // second and by Stop, not per event: a crash loses at most that second, and Start counts a
  // node the file still holds online as offline since the scheduler's last write.
  bool sightings_dirty_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace labgate::gateway
