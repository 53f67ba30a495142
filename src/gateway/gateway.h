#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "capabilities/system_run.h"
#include "core/cancel.h"
#include "core/clock.h"
#include "core/sandbox.h"
#include "gateway/approvals.h"
#include "gateway/artifacts.h"
#include "gateway/executor.h"
#include "gateway/live_inventory.h"
#include "inventory/inventory.h"
#include "policy/decide.h"

namespace labgate::gateway {

/// A `run` as a caller asked for it, before resolution.
struct RunCall {
  std::vector<std::string> selectors;
  capabilities::Command command;
  std::optional<std::int64_t> timeout_ms;
  std::string cwd;
  std::vector<std::pair<std::string, std::string>> env;  // added to the command's environment
  bool dry_run = false;  // decide and report, execute nothing
  bool sudo = false;     // run as root through sudo (SSH hosts with sudo_password_env/_file): privileged
  /// Sees each target's output as it arrives (a task's live view); may be called from several
  /// targets' threads at once.
  std::function<void(const std::string& target, core::StreamId stream, std::string_view bytes)> on_output;
};

/// What a human is asked to confirm.
struct ConfirmQuestion {
  std::vector<std::string> targets;  // resolved ids
  std::string command;               // as it will run: argv words quoted, or the sh -c string
  std::string cwd;
  std::string risk;
  std::string rule;
  std::string reason;
};

/// A human's answer. Only kAccept lets anything run.
struct ConfirmAnswer {
  /// kDeferred: the question goes back to the caller, who repeats the call with the answer (an
  /// MCP 2026-07-28 input_required result); nothing of the call runs now.
  enum class Kind { kAccept, kDecline, kCancel, kFailed, kDeferred };
  Kind kind = Kind::kFailed;
  std::string who;     // who said it, for the audit record ("elicitation via Claude 1.2 (session ...)")
  std::string detail;  // why it failed, or what the human said
};
const char* ConfirmKindName(ConfirmAnswer::Kind kind);

/// How a target is reached, as results and audit records name it: "local", "ssh" or "node".
std::string PathName(const inventory::Target& target);

/// Someone who can answer yes or no now (MCP elicitation, a terminal). Given per call; a caller
/// without one gets an approval request instead.
class Confirmer {
 public:
  virtual ~Confirmer() = default;
  virtual ConfirmAnswer Ask(const ConfirmQuestion& question, const core::CancelToken& cancel) = 0;
};

/// A read-only command run after a failure, and what it printed.
struct DiagnosticResult {
  std::string command;
  std::optional<int> exit_code;
  std::string output;  // stdout then stderr, redacted and capped
  std::optional<std::string> error;
};

/// What happened on one target.
struct TargetRunResult {
  std::string target;
  std::string via;
  std::optional<int> exit_code;
  std::optional<std::string> signal;
  bool timed_out = false;
  bool cancelled = false;
  bool stop_unconfirmed = false;  // timed out or cancelled, but the host never confirmed the end
  std::string stdout_text;  // valid UTF-8, redacted, capped
  std::string stderr_text;
  bool truncated = false;
  std::int64_t duration_ms = 0;
  std::optional<std::string> error;  // set when it could not run at all (refused, unreachable, ...)
  std::string action_id;
  // The policy decision and how it was confirmed.
  std::string decision;  // "run", "confirmed", "refused", "approval-pending", "dry-run:run|confirm|refuse"
  std::string rule;
  std::string reason;
  std::string risk;
  std::string approver;     // who confirmed, when someone did
  std::string approval_id;  // the request to approve, or the approval used
  int retries = 0;
  bool escalated = false;  // failed: needs a person to look
  std::vector<DiagnosticResult> diagnostics;

  bool ok() const { return !error && !timed_out && !cancelled && exit_code == 0; }
};

/// The whole answer to a `run`: per-target results, or an error before any target was tried.
struct RunReport {
  std::vector<TargetRunResult> results;
  std::optional<core::Error> error;
  bool dry_run = false;
};

/// Told about each finished target of a fan-out, in completion order. Called from worker
/// threads, one call at a time.
using ProgressFn = std::function<void(std::size_t done, std::size_t total, const TargetRunResult&)>;

/// A screen, camera or location action as a caller asked for it.
struct CaptureCall {
  std::string selector;                   // must resolve to exactly one target
  capabilities::CaptureRequest request;   // timeout_ms 0: the default for the action
  std::optional<std::int64_t> max_age_ms;  // location: a fix at most this old may come from the cache
};

/// What came of a capture on its target.
struct CaptureReport {
  std::string target;
  std::string via;
  std::string action;  // "screen.snapshot", ...
  std::string action_id;
  std::string decision;  // "run", "confirmed", "cached", "refused", "approval-pending"
  std::string rule;
  std::string reason;
  std::string approver;
  std::string approval_id;
  std::optional<capabilities::CaptureResult> result;
  std::optional<Artifact> artifact;  // where the file is kept, when an artifact store is set
  std::optional<std::int64_t> age_ms;  // cached location: how old the fix is
  std::optional<core::Error> error;  // refused or failed; nothing in `result`
  std::int64_t duration_ms = 0;
};

/// Told how far a recording has got, about twice a second, from a helper thread.
using CaptureProgressFn = std::function<void(std::int64_t elapsed_ms, std::int64_t total_ms)>;

/// A `file` action as a caller asked for it.
struct FileCall {
  std::string selector;  // must resolve to exactly one target
  std::string op;        // "read", "stat", "list", "get" or "put"
  std::string path;      // absolute or ~/...; normalised and resolved on the target before policy
  std::uint64_t offset = 0;  // read: where to start
  std::uint64_t length = 0;  // read: how many bytes (0: the default, kFileReadDefaultBytes)
  std::optional<std::string> content;  // put: the bytes to write
  std::string from_artifact;           // put: a labgate://artifacts/ URI whose bytes to write instead
  capabilities::WriteOptions write;
  std::optional<std::int64_t> timeout_ms;
  std::size_t max_entries = 1000;  // list
  bool sudo = false;               // put: write as root through sudo (SSH hosts); privileged
};

/// A FileCall as the operator socket carries it (content base64), and back.
nlohmann::json EncodeFileCall(const FileCall& call);
core::Result<FileCall> DecodeFileCall(const nlohmann::json& json);

/// How much one `file read` returns when no length is given, and at most.
inline constexpr std::uint64_t kFileReadDefaultBytes = 64 * 1024;
inline constexpr std::uint64_t kFileReadMaxBytes = 1024 * 1024;

/// What came of a `file` action.
struct FileReport {
  std::string target;
  std::string via;
  std::string action;  // "file.read", ...
  std::string action_id;
  std::string path;           // normalised, symlinks resolved: what policy judged and the action touched
  std::string decision;       // "run", "confirmed", "refused", "approval-pending", "input-required"
  std::string rule;
  std::string reason;
  std::string risk;
  std::string approver;
  std::string approval_id;
  std::optional<capabilities::FileInfo> info;        // stat
  std::vector<capabilities::FileInfo> entries;       // list
  bool truncated = false;                            // list: more entries than max_entries; read: more bytes follow
  std::optional<capabilities::FileData> data;        // read (redacted when text)
  bool text = false;                                 // read: data is UTF-8 text
  std::optional<Artifact> artifact;                  // get
  std::optional<capabilities::WriteOutcome> written;  // put
  std::optional<core::Error> error;
  std::int64_t duration_ms = 0;
};

/// A target as `targets` shows it.
struct TargetView {
  const inventory::Target* target = nullptr;
  TargetState state;
  std::shared_ptr<const inventory::Inventory> inventory;  // holds *target across a reload
};

/// The one guardrail pipeline every action passes (DESIGN §3): resolve, decide, audit intent,
/// execute, audit result, redact. Thread-safe; concurrent calls share nothing mutable.
/// Said wherever an approval id is handed out: `approvals approve` talks to a running process,
/// which a one-shot `labgate run` or MCP client does not leave behind.
inline constexpr char kApprovalNeedsAServer[] =
    "The approval is taken by a running `labgate gateway` or `labgate mcp` for this inventory (the request "
    "is kept on disk): if neither is running, start `labgate gateway` first";

class Gateway {
 public:
  /// `local` executes the built-in target; SSH and node executors are added by later modules.
  /// `approvals` may be null: commands that need confirmation then run only when `confirmer`
  /// says yes (fail closed).
  Gateway(std::shared_ptr<const inventory::Inventory> inventory, audit::AuditLog& audit, Executor& local,
          const core::Clock& clock, Executor* ssh = nullptr, Executor* nodes = nullptr,
          ApprovalStore* approvals = nullptr, std::function<std::string(std::string_view)> redact = nullptr,
          ArtifactStore* artifacts = nullptr);
  /// The same, reading a LiveInventory the caller owns and reloads (the daemon's Runtime).
  Gateway(LiveInventory& inventory, audit::AuditLog& audit, Executor& local, const core::Clock& clock,
          Executor* ssh = nullptr, Executor* nodes = nullptr, ApprovalStore* approvals = nullptr,
          std::function<std::string(std::string_view)> redact = nullptr, ArtifactStore* artifacts = nullptr);

  /// Audits a call refused before it could be understood (arguments of the wrong shape): what
  /// was sent, clipped, and why. Nothing ran.
  void AuditMalformed(const audit::Actor& actor, const std::string& action, const audit::Json& arguments,
                      const std::string& why);

  /// `confirmer` is the human the caller can reach now, if any.
  RunReport Run(const audit::Actor& actor, const RunCall& call, const core::CancelToken& cancel,
                const ProgressFn& progress = nullptr, Confirmer* confirmer = nullptr);

  /// screen, camera and location through the same pipeline: resolve one target, capability
  /// scoping (and confirmation where [policies.CAP] confirm = true), audit intent, execute on
  /// the target's path, keep the file as an artifact, audit the result.
  CaptureReport Capture(const audit::Actor& actor, const CaptureCall& call, const core::CancelToken& cancel,
                        const CaptureProgressFn& progress = nullptr, Confirmer* confirmer = nullptr);

  /// read, stat, list, get and put of files through the same pipeline: one target, capability
  /// scope, the path normalised and resolved on the target and judged by [policies.file] (deny
  /// wins; secrets and labgate's own files refused; writes into system paths confirmed by a
  /// human), audit intent (digests, never content), execute, audit the result.
  FileReport File(const audit::Actor& actor, const FileCall& call, const core::CancelToken& cancel,
                  Confirmer* confirmer = nullptr);

  ArtifactStore* artifacts() const { return artifacts_; }

  /// Writes an audit event record ("confirmation.accepted", "request-state.refused", ...).
  void AuditEvent(const std::string& event, const audit::Actor& actor, const std::string& target, audit::Json details);

  /// Whether commands on `local` run in a kernel-enforced sandbox, and which (Runtime hands in
  /// its SandboxedRunner, which sets one up only once asked; unit tests with fake executors
  /// keep the default). Without one, anything on `local` that is not read-only needs a human:
  /// fail closed. Set before the first call.
  void SetLocalSandbox(const core::SandboxedRunner* sandbox) { local_sandbox_runner_ = sandbox; }
  bool local_sandboxed() const { return local_sandbox_runner_ == nullptr || local_sandbox_runner_->active(); }
  std::string local_sandbox() const {
    return local_sandbox_runner_ == nullptr ? "set by the runtime" : local_sandbox_runner_->description();
  }

  core::Result<std::vector<TargetView>> Targets(const std::vector<std::string>& selectors) const;

  /// The inventory in force now; hold the pointer while using what is in it (see LiveInventory).
  std::shared_ptr<const inventory::Inventory> inventory() const { return inventory_.Current(); }
  ApprovalStore* approvals() const { return approvals_; }
  /// Masks secrets (the inventory's *_env values, tokens, keys) in text for callers and logs.
  std::string Redact(std::string_view text) const;

 private:
  struct Plan;
  Plan Decide(const std::shared_ptr<const inventory::Inventory>& inventory, const inventory::Target& target,
              const policy::ParsedCommand& parsed, const std::vector<policy::Grant>& grants) const;
  void Confirm(const audit::Actor& actor, const RunCall& call, std::vector<Plan>& plans, std::vector<TargetRunResult>& results,
               Confirmer* confirmer, const core::CancelToken& cancel);
  /// How a confirmation ended: `error` unset means go ahead.
  struct Confirmation {
    std::string decision;  // "confirmed", "refused", "approval-pending", "input-required"
    std::optional<std::string> error;
    std::string approver;
    std::string approval_id;
  };
  /// Approval already given, else the human at hand, else a new approval request (DESIGN §3).
  /// `refused(rule, why)` audits a refusal in the caller's terms.
  Confirmation ConfirmAction(const audit::Actor& actor, const ApprovalBinding& binding, const ConfirmQuestion& question,
                             const std::function<void(const std::string&, const std::string&)>& refused,
                             Confirmer* confirmer, const core::CancelToken& cancel);
  TargetRunResult RunOne(const audit::Actor& actor, const Plan& plan, const RunCall& call,
                         std::chrono::milliseconds timeout, const core::CancelToken& cancel);
  void Diagnose(const audit::Actor& actor, const Plan& plan, TargetRunResult& result, const core::CancelToken& cancel);
  Executor* ExecutorFor(const inventory::Target& target) const;
  void AuditRefusal(const audit::Actor& actor, const RunCall& call, const std::string& rule, const std::string& why);

  std::unique_ptr<LiveInventory> owned_inventory_;  // when constructed from a plain inventory
  LiveInventory& inventory_;
  audit::AuditLog& audit_;
  Executor& local_;
  const core::Clock& clock_;
  Executor* ssh_;
  Executor* nodes_;
  ApprovalStore* approvals_;
  std::function<std::string(std::string_view)> redact_;
  ArtifactStore* artifacts_;
  const core::SandboxedRunner* local_sandbox_runner_ = nullptr;
  // The last location fix per target, for maxAgeMs.
  struct CachedFix {
    capabilities::CaptureResult result;
    std::chrono::steady_clock::time_point at;
    std::string accuracy;  // what the request that got it asked for
  };
  std::mutex fixes_mutex_;
  std::map<std::string, CachedFix> fixes_;
};

/// The audit payload of a run: exact argv or shell string, cwd and timeout, redacted by `redact`.
audit::Json RunPayload(const RunCall& call, std::int64_t timeout_ms,
                       const std::function<std::string(std::string_view)>& redact);

}  // namespace labgate::gateway
