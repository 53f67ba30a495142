#include "gateway/gateway.h"

#include "ssh/remote_command.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "core/text.h"
#include "policy/glob.h"
#include "inventory/selector.h"
#include "policy/capability_scope.h"

namespace labgate::gateway {
namespace {

using std::chrono::milliseconds;
using Verdict = policy::CommandDecision::Verdict;

// Diagnostics are quick looks: one short deadline for all of them together, small output.
constexpr milliseconds kDiagnosticTimeout{5000};
constexpr std::size_t kDiagnosticOutputCap = 4096;

bool IsSecretFlag(std::string_view word) {
  static constexpr std::string_view kFlags[] = {"--password", "--passwd", "--pass", "--token", "--api-key",
                                                "--apikey",   "--secret", "--client-secret", "--auth-token"};
  return std::find(std::begin(kFlags), std::end(kFlags), word) != std::end(kFlags);
}

audit::Json CommandJson(const capabilities::Command& command) {
  if (command.shell) return audit::Json{{"shell", *command.shell}};
  return audit::Json{{"argv", command.argv}};
}

}  // namespace

std::string PathName(const inventory::Target& target) {
  switch (target.kind) {
    case inventory::TargetKind::kLocal: return "local";
    case inventory::TargetKind::kHost: return "ssh";
    case inventory::TargetKind::kNode: return "node";
  }
  return "local";
}

const char* ConfirmKindName(ConfirmAnswer::Kind kind) {
  switch (kind) {
    case ConfirmAnswer::Kind::kAccept: return "accepted";
    case ConfirmAnswer::Kind::kDecline: return "declined";
    case ConfirmAnswer::Kind::kCancel: return "cancelled";
    case ConfirmAnswer::Kind::kFailed: return "failed";
    case ConfirmAnswer::Kind::kDeferred: return "deferred";
  }
  return "failed";
}

/// One target's way through the pipeline.
struct Gateway::Plan {
  std::shared_ptr<const inventory::Inventory> inventory;  // the call's snapshot: holds *target
  const inventory::Target* target = nullptr;
  Executor* executor = nullptr;
  policy::CommandDecision decision;
  bool confirmed = false;
  std::string approver;
  std::string approval_id;
};

audit::Json RunPayload(const RunCall& call, std::int64_t timeout_ms,
                       const std::function<std::string(std::string_view)>& redact) {
  audit::Json payload;
  if (call.command.shell) {
    payload["shell"] = redact(*call.command.shell);
  } else {
    audit::Json argv = audit::Json::array();
    bool secret_next = false;  // `--password X`: the value is the next word
    for (const auto& word : call.command.argv) {
      argv.push_back(secret_next ? std::string("[REDACTED]") : redact(word));
      secret_next = IsSecretFlag(word);
    }
    payload["argv"] = argv;
  }
  payload["cwd"] = call.cwd.empty() ? audit::Json(nullptr) : audit::Json(call.cwd);
  if (!call.env.empty()) {
    audit::Json env = audit::Json::object();
    for (const auto& [key, value] : call.env) env[key] = redact(key + "=" + value).substr(key.size() + 1);
    payload["env"] = env;
  }
  payload["timeoutMs"] = timeout_ms;
  if (call.dry_run) payload["dryRun"] = true;
  if (call.sudo) payload["sudo"] = true;
  return payload;
}

Gateway::Gateway(std::shared_ptr<const inventory::Inventory> inventory, audit::AuditLog& audit, Executor& local,
                 const core::Clock& clock, Executor* ssh, Executor* nodes, ApprovalStore* approvals,
                 std::function<std::string(std::string_view)> redact, ArtifactStore* artifacts)
    : Gateway(*new LiveInventory(std::move(inventory)), audit, local, clock, ssh, nodes, approvals, std::move(redact),
              artifacts) {
  owned_inventory_.reset(&inventory_);
}

Gateway::Gateway(LiveInventory& inventory, audit::AuditLog& audit, Executor& local, const core::Clock& clock,
                 Executor* ssh, Executor* nodes, ApprovalStore* approvals,
                 std::function<std::string(std::string_view)> redact, ArtifactStore* artifacts)
    : inventory_(inventory),
      audit_(audit),
      local_(local),
      clock_(clock),
      ssh_(ssh),
      nodes_(nodes),
      approvals_(approvals),
      redact_(redact ? std::move(redact) : [](std::string_view text) { return core::Redact(text); }),
      artifacts_(artifacts) {}

std::string Gateway::Redact(std::string_view text) const { return redact_(text); }

Executor* Gateway::ExecutorFor(const inventory::Target& target) const {
  if (target.kind == inventory::TargetKind::kLocal) return &local_;
  if (target.kind == inventory::TargetKind::kHost) return ssh_;
  return nodes_;
}

void Gateway::AuditRefusal(const audit::Actor& actor, const RunCall& call, const std::string& rule,
                           const std::string& why) {
  audit::Refusal refusal;
  refusal.action_id = audit::NewActionId();
  refusal.actor = actor;
  for (const auto& selector : call.selectors) refusal.targets.push_back(core::Clip(selector, 256));
  refusal.action = "run";
  refusal.payload = RunPayload(call, call.timeout_ms.value_or(inventory_.Current()->gateway.default_timeout_ms), redact_);
  refusal.decision = {false, rule, why, ""};
  refusal.error = why;
  // A refusal that cannot be audited is still a refusal; nothing ran.
  (void)audit_.Append(audit::EncodeRefusal(refusal));
}

void Gateway::AuditMalformed(const audit::Actor& actor, const std::string& action, const audit::Json& arguments,
                             const std::string& why) {
  audit::Refusal refusal;
  refusal.action_id = audit::NewActionId();
  refusal.actor = actor;
  refusal.action = action;
  // What was sent, as text and clipped: a caller's 100 KB value must not become a 300 KB record.
  refusal.payload = audit::Json{
      {"arguments", core::Clip(redact_(arguments.dump(-1, ' ', false, audit::Json::error_handler_t::replace)), 2048)}};
  refusal.decision = {false, "input.arguments", core::Clip(why, 1024), ""};
  refusal.error = core::Clip(why, 1024);
  (void)audit_.Append(audit::EncodeRefusal(refusal));
}

void Gateway::AuditEvent(const std::string& event, const audit::Actor& actor, const std::string& target,
                         audit::Json details) {
  (void)audit_.Append(audit::EncodeEvent(audit::Event{event, actor, target, std::move(details)}));
}

Gateway::Plan Gateway::Decide(const std::shared_ptr<const inventory::Inventory>& inventory,
                              const inventory::Target& target, const policy::ParsedCommand& parsed,
                              const std::vector<policy::Grant>& grants) const {
  Plan plan;
  plan.inventory = inventory;
  plan.target = &target;
  plan.executor = ExecutorFor(target);
  plan.decision = policy::DecideCommand(*inventory, target, parsed, grants);
  // Reasons quote the command: mask secrets before they reach callers or the audit log.
  plan.decision.reason = redact_(plan.decision.reason);
  plan.decision.risk.command = redact_(plan.decision.risk.command);
  auto refuse = [&](std::string rule, std::string reason) {
    plan.decision.verdict = Verdict::kRefuse;
    plan.decision.rule = std::move(rule);
    plan.decision.reason = std::move(reason);
  };
  if (plan.decision.verdict == Verdict::kRefuse) return plan;
  if (target.kind == inventory::TargetKind::kLocal && plan.decision.verdict == Verdict::kRun &&
      plan.decision.risk.risk > policy::Risk::kReadOnly && !local_sandboxed()) {
    // A command on the gateway's own machine, outside a sandbox, could rewrite labgate's policy,
    // approvals or audit log: only read-only commands go without a human.
    plan.decision.verdict = Verdict::kConfirm;
    plan.decision.rule = "sandbox";
    plan.decision.reason = "commands on local run without a sandbox here (" + local_sandbox() +
                           "), so anything that is not read-only needs a human; `labgate doctor` shows the sandbox";
  }
  if (plan.executor == nullptr) {
    const bool host = target.kind == inventory::TargetKind::kHost;
    refuse("gateway.transport", target.id + " is " + (host ? "an SSH host" : "a paired node") +
                                    ", and this labgate build cannot reach " + (host ? "SSH hosts" : "nodes") + " yet");
    return plan;
  }
  if (target.kind == inventory::TargetKind::kNode) {
    // Deny wins: the inventory may list a capability the pairing never approved.
    const TargetState state = plan.executor->State(target);
    const auto& granted = state.granted;
    if (state.revoked_at) {
      refuse("pairing.revoked", "node " + target.id + " was revoked at " + *state.revoked_at +
                                    "; pair it again (`labgate pair new --node " + target.id + "`) to use it");
    } else if (granted && std::find(granted->begin(), granted->end(), "run") == granted->end()) {
      refuse("pairing.capabilities", "node " + target.id + " was paired without the run capability; pair it again with "
                                     "`labgate pair new --node " + target.id + " --caps run,...`");
    }
  }
  return plan;
}

RunReport Gateway::Run(const audit::Actor& actor, const RunCall& call, const core::CancelToken& cancel,
                       const ProgressFn& progress, Confirmer* confirmer) {
  RunReport report;
  report.dry_run = call.dry_run;
  // One snapshot for the whole call: a reload meanwhile changes the next call, not this one.
  const auto snapshot = inventory_.Current();
  const auto& gw = snapshot->gateway;
  auto reject = [&](core::Error error, const std::string& rule) {
    AuditRefusal(actor, call, rule, error.message);
    report.error = std::move(error);
    return report;
  };
  if (auto ok = capabilities::ValidateCommand(call.command); !ok) return reject(ok.error(), "input.command");
  if (call.cwd.find('\0') != std::string::npos) {
    // The OS would stop at the NUL and run in a different directory than the one audited.
    return reject(core::MakeError(core::ErrorCode::kInvalidArgument, "cwd contains a NUL byte"), "input.cwd");
  }
  for (const auto& [name, value] : call.env) {
    if (!core::IsValidEnvName(name) || value.find('\0') != std::string::npos) {
      return reject(core::MakeError(core::ErrorCode::kInvalidArgument,
                                    "environment variable name '" + redact_(name) +
                                        "' is not a valid name (letters, digits and _, not starting with a digit)"),
                    "input.env");
    }
    // labgate tags and finds a command's processes by LABGATE_RUN; a caller's value would let a
    // command escape its deadline while the result claimed it was stopped.
    if (name == ssh::kRunIdVariable) {
      return reject(core::MakeError(core::ErrorCode::kInvalidArgument,
                                    "environment variable " + name + " is labgate's own (it tags the command's "
                                    "processes so a deadline can stop them); a caller may not set it"),
                    "input.env");
    }
  }
  std::int64_t timeout_ms = call.timeout_ms.value_or(gw.default_timeout_ms);
  if (timeout_ms < 1 || timeout_ms > gw.max_timeout_ms) {
    return reject(core::MakeError(core::ErrorCode::kInvalidArgument,
                                  "timeoutMs " + std::to_string(timeout_ms) + " is outside 1.." +
                                      std::to_string(gw.max_timeout_ms) + " (raise [gateway] max_timeout_ms to allow more)"),
                  "gateway.max_timeout_ms");
  }
  auto targets = inventory::Resolve(*snapshot, call.selectors);
  if (!targets) return reject(targets.error(), "inventory.resolve");

  // The caller's variables are judged with the command, except those the operator listed in
  // [policies.run] env_allow.
  std::vector<std::pair<std::string, std::string>> judged_env;
  for (const auto& variable : call.env) {
    const bool allowed = std::any_of(snapshot->run_env_allow.begin(), snapshot->run_env_allow.end(),
                                     [&](const std::string& pattern) { return policy::GlobMatch(pattern, variable.first); });
    if (!allowed) judged_env.push_back(variable);
  }
  // With sudo the command is judged as the command `sudo` would run: privileged, so a daily-use
  // target refuses it and every mode but full asks a human.
  std::vector<std::string> judged_argv = call.command.argv;
  std::optional<std::string> judged_shell = call.command.shell;
  if (call.sudo) {
    judged_argv = judged_shell ? std::vector<std::string>{"sudo", "/bin/sh", "-c", *judged_shell} : judged_argv;
    if (!judged_shell) judged_argv.insert(judged_argv.begin(), "sudo");
    judged_shell.reset();
  }
  const policy::ParsedCommand parsed = policy::ParseRunCommand(judged_argv, judged_shell, judged_env);
  const std::vector<policy::Grant> grants = approvals_ ? approvals_->PolicyGrants() : std::vector<policy::Grant>{};
  const std::size_t total = targets->size();
  std::vector<Plan> plans;
  report.results.resize(total);
  for (std::size_t i = 0; i < total; ++i) {
    plans.push_back(Decide(snapshot, *(*targets)[i], parsed, grants));
    auto& r = report.results[i];
    const auto& d = plans[i].decision;
    r.target = plans[i].target->id;
    r.via = PathName(*plans[i].target);
    r.action_id = audit::NewActionId();
    r.rule = d.rule;
    r.reason = d.reason;
    r.risk = policy::RiskName(d.risk.risk);
  }

  if (call.dry_run) {
    for (std::size_t i = 0; i < total; ++i) {
      auto& r = report.results[i];
      r.decision = std::string("dry-run:") + policy::VerdictName(plans[i].decision.verdict);
      AuditEvent("run.dry-run", actor, r.target,
                 {{"actionId", r.action_id},
                  {"payload", RunPayload(call, timeout_ms, redact_)},
                  {"decision", {{"verdict", policy::VerdictName(plans[i].decision.verdict)},
                                {"rule", r.rule}, {"reason", r.reason}, {"risk", r.risk}}}});
    }
    return report;
  }

  for (std::size_t i = 0; i < total; ++i) {
    if (plans[i].decision.verdict != Verdict::kRefuse) continue;
    auto& r = report.results[i];
    r.decision = "refused";
    audit::Refusal refusal{r.action_id, actor, {r.target}, "run", RunPayload(call, timeout_ms, redact_),
                           {false, r.rule, r.reason, r.risk}, r.reason};
    if (auto ok = audit_.Append(audit::EncodeRefusal(refusal)); !ok) {
      r.error = "refused (" + r.rule + "): " + r.reason + "; the refusal could not be audited either: " + ok.error().message;
    } else {
      r.error = "refused by " + r.rule + ": " + r.reason;
    }
  }
  Confirm(actor, call, plans, report.results, confirmer, cancel);
  // A confirmation deferred to the client: the call will be repeated with the answer, so none
  // of it runs now, or the targets that needed no confirmation would run twice.
  const bool deferred = std::any_of(report.results.begin(), report.results.end(),
                                    [](const TargetRunResult& r) { return r.decision == "input-required"; });
  if (deferred) {
    for (auto& r : report.results) {
      if (r.decision == "input-required") continue;
      r.decision = "input-required";
      r.error = "not run: another target of this call needs a human's answer first; the whole call runs when it is "
                "repeated with it";
    }
    return report;
  }

  std::vector<std::size_t> runnable;
  std::atomic<std::size_t> done{0};
  std::mutex progress_mutex;
  for (std::size_t i = 0; i < total; ++i) {
    const Verdict v = plans[i].decision.verdict;
    if (v == Verdict::kRun || (v == Verdict::kConfirm && plans[i].confirmed)) {
      runnable.push_back(i);
    } else if (progress) {
      progress(++done, total, report.results[i]);  // settled without running
    }
  }
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t k = next++; k < runnable.size(); k = next++) {
      const std::size_t i = runnable[k];
      report.results[i] = RunOne(actor, plans[i], call, milliseconds(timeout_ms), cancel);
      std::size_t finished = ++done;
      if (progress) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        progress(finished, total, report.results[i]);
      }
    }
  };
  std::size_t parallel = std::min<std::size_t>(runnable.size(), static_cast<std::size_t>(gw.max_parallel));
  if (parallel <= 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < parallel; ++k) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  return report;
}

void Gateway::Confirm(const audit::Actor& actor, const RunCall& call, std::vector<Plan>& plans,
                      std::vector<TargetRunResult>& results, Confirmer* confirmer, const core::CancelToken& cancel) {
  std::vector<std::size_t> asking;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (plans[i].decision.verdict == Verdict::kConfirm) asking.push_back(i);
  }
  if (asking.empty()) return;

  ApprovalBinding binding;
  ConfirmQuestion question;
  policy::Risk risk = policy::Risk::kReadOnly;
  for (std::size_t i : asking) {
    binding.targets.push_back(plans[i].target->id);
    if (plans[i].decision.risk.risk >= risk) {
      risk = plans[i].decision.risk.risk;
      question.rule = plans[i].decision.rule;
      question.reason = plans[i].decision.reason;
    }
  }
  std::sort(binding.targets.begin(), binding.targets.end());
  binding.command = CommandJson(call.command);
  if (call.sudo) binding.command["sudo"] = true;  // an approval without sudo never covers it
  binding.cwd = call.cwd;
  binding.env = call.env;
  question.targets = binding.targets;
  question.command = redact_((call.sudo ? "sudo " : "") + call.command.Display());
  question.cwd = call.cwd;
  question.risk = policy::RiskName(risk);
  const Confirmation c = ConfirmAction(
      actor, binding, question,
      [&](const std::string& rule, const std::string& why) { AuditRefusal(actor, call, rule, why); }, confirmer, cancel);
  for (std::size_t i : asking) {
    auto& r = results[i];
    r.decision = c.decision;
    r.approver = c.approver;
    r.approval_id = c.approval_id;
    if (c.error) {
      r.error = *c.error;
    } else {
      plans[i].confirmed = true;
      plans[i].approver = c.approver;
      plans[i].approval_id = c.approval_id;
    }
  }
}

Gateway::Confirmation Gateway::ConfirmAction(const audit::Actor& actor, const ApprovalBinding& binding,
                                             const ConfirmQuestion& question,
                                             const std::function<void(const std::string&, const std::string&)>& refused,
                                             Confirmer* confirmer, const core::CancelToken& cancel) {
  const audit::Json summary = {{"targets", binding.targets}, {"command", question.command},
                               {"cwd", question.cwd}, {"risk", question.risk}, {"rule", question.rule}};
  const std::string joined_targets = [&] {
    std::string out;
    for (const auto& t : binding.targets) out += (out.empty() ? "" : ",") + t;
    return out;
  }();
  auto refuse = [&](const std::string& rule, const std::string& why) {
    refused(rule, why);
    return Confirmation{"refused", "refused by " + rule + ": " + why, "", ""};
  };

  // 1. An operator already approved exactly this call.
  if (approvals_) {
    auto approved = approvals_->TakeApproved(binding);
    if (!approved) return refuse("approval.store", approved.error().message + "; nothing ran");
    if (*approved) {
      const auto& a = **approved;
      audit::Json details = summary;
      details["approvalId"] = a.id;
      details["approvedBy"] = a.decided_by;
      AuditEvent("approval.used", actor, joined_targets, details);
      return Confirmation{"confirmed", std::nullopt, "operator " + a.decided_by + " (approval " + a.id + ")", a.id};
    }
  }
  // 2. A human the caller can reach right now.
  if (confirmer) {
    ConfirmAnswer answer = confirmer->Ask(question, cancel);
    audit::Json details = summary;
    details["who"] = answer.who;
    details["detail"] = answer.detail;
    AuditEvent(std::string("confirmation.") + ConfirmKindName(answer.kind), actor, joined_targets, details);
    switch (answer.kind) {
      case ConfirmAnswer::Kind::kAccept:
        return Confirmation{"confirmed", std::nullopt, answer.who, ""};
      case ConfirmAnswer::Kind::kDecline:
        return refuse("confirmation.declined", "a human declined to run " + question.command + " on " + joined_targets +
                                                   (answer.detail.empty() ? "" : " (" + answer.detail + ")"));
      case ConfirmAnswer::Kind::kCancel:
        return refuse("confirmation.cancelled",
                      "the confirmation for " + question.command + " on " + joined_targets + " was cancelled; nothing ran");
      case ConfirmAnswer::Kind::kFailed:
        break;  // nobody answered: fall back to an approval request
      case ConfirmAnswer::Kind::kDeferred:
        return Confirmation{"input-required",
                            "not run: the question goes back to the client to ask a human; the call runs when it "
                            "is repeated with the answer",
                            "", ""};
    }
  }
  // 3. Leave a request for the operator.
  if (!approvals_) return refuse(question.rule, question.reason + "; no human can confirm it from here, so nothing ran");
  bool created = false;
  auto request = approvals_->Request(binding, question.risk, question.rule, question.reason,
                                     audit::EncodeActor(actor), &created);
  if (!request) return refuse("approval.store", request.error().message + "; nothing ran");
  if (created) {
    audit::Json details = summary;
    details["approvalId"] = request->id;
    details["expiresAt"] = request->expires_at;
    AuditEvent("approval.requested", actor, joined_targets, details);
  }
  const std::string why = question.reason + ". It needs a human's approval (" + question.rule +
                          "): ask the operator to run `labgate approvals approve " + request->id + "` (expires " +
                          request->expires_at + "), then repeat exactly this call; it will run once. " +
                          kApprovalNeedsAServer;
  refused("approval.pending", why);
  return Confirmation{"approval-pending", "not run: " + why, "", request->id};
}

TargetRunResult Gateway::RunOne(const audit::Actor& actor, const Plan& plan, const RunCall& call, milliseconds timeout,
                                const core::CancelToken& cancel) {
  const inventory::Target& target = *plan.target;
  const auto& d = plan.decision;
  TargetRunResult result;
  result.target = target.id;
  result.via = PathName(target);
  result.action_id = audit::NewActionId();
  result.decision = plan.confirmed ? "confirmed" : "run";
  result.rule = d.rule;
  result.reason = d.reason;
  result.risk = policy::RiskName(d.risk.risk);
  result.approver = plan.approver;
  result.approval_id = plan.approval_id;

  audit::Intent intent;
  intent.action_id = result.action_id;
  intent.actor = actor;
  intent.target = target.id;
  intent.path = result.via;
  intent.action = "run";
  intent.payload = RunPayload(call, timeout.count(), redact_);
  intent.decision = {true, d.rule, d.reason, result.risk};
  if (!plan.approver.empty()) intent.approver = plan.approver;
  if (auto ok = audit_.Append(audit::EncodeIntent(intent)); !ok) {
    result.error = "not run: the audit log could not record the intent (" + ok.error().message +
                   "); fix the audit log (" + audit_.Describe() + ") and retry";
    return result;
  }

  capabilities::RunRequest request;
  request.command = call.command;
  request.cwd = call.cwd;
  request.env = call.env;
  request.sudo = call.sudo;
  request.timeout = timeout;
  request.output_cap = static_cast<std::size_t>(plan.inventory->gateway.output_cap_bytes);
  struct Relay final : core::OutputListener {
    const RunCall& call;
    const std::string& target;
    Relay(const RunCall& c, const std::string& t) : call(c), target(t) {}
    void OnOutput(core::StreamId stream, std::string_view bytes) override { call.on_output(target, stream, bytes); }
  } relay(call, target.id);
  if (call.on_output) request.listener = &relay;
  auto outcome = plan.executor->Run(target, request, cancel);

  audit::Outcome record;
  record.action_id = result.action_id;
  record.target = target.id;
  record.path = result.via;
  record.action = "run";
  bool started = false;
  if (!outcome) {
    result.error = redact_(outcome.error().message);
  } else {
    started = true;
    const core::ProcessOutcome& o = *outcome;
    result.exit_code = o.exit_code;
    if (o.signal) result.signal = core::SignalName(*o.signal);
    result.timed_out = o.timed_out;
    result.cancelled = o.cancelled;
    result.stdout_text = redact_(core::ToValidUtf8(o.out.text));
    result.stderr_text = redact_(core::ToValidUtf8(o.err.text));
    result.truncated = o.out.truncated || o.err.truncated;
    result.duration_ms = o.duration.count();
    result.retries = o.retries;
    result.stop_unconfirmed = o.stop_unconfirmed;
    // Never claim a kill that did not happen.
    const std::string stop = o.stop_unconfirmed
                                 ? "labgate told " + target.id + " to stop its process group, but the host never "
                                   "confirmed the command ended: something it started may still be running there "
                                   "(it left its process group, or the host stopped answering); check with "
                                   "`labgate run " + target.id + " -- ps -ef`"
                                 : "its process group was stopped";
    if (o.timed_out) result.error = "timed out after " + std::to_string(timeout.count()) + " ms; " + stop;
    if (o.cancelled) result.error = "cancelled; " + stop;
    record.exit_code = result.exit_code;
    record.signal = result.signal;
    record.timed_out = o.timed_out;
    record.cancelled = o.cancelled;
    record.duration_ms = result.duration_ms;
    record.stdout_bytes = o.out.total_bytes;
    record.stderr_bytes = o.err.total_bytes;
    record.output_digest = "sha256:" + o.out.sha256 + ",sha256:" + o.err.sha256;
    record.retries = o.retries;
  }
  // A failure is escalated for a person: it could not run, timed out, was killed, or a command
  // that changes things exited non-zero. A caller's own cancellation is not a failure.
  const bool failed = !result.cancelled &&
                      (!started || result.timed_out || result.signal ||
                       (result.exit_code && *result.exit_code != 0 && d.risk.risk >= policy::Risk::kMutating));
  if (failed && !cancel.cancelled()) {
    result.escalated = true;
    if (started && result.stop_unconfirmed) {
      result.diagnostics.push_back({"", std::nullopt, "",
                                    std::string("not gathered: ") + target.id +
                                        " did not confirm the end of the command, so it may not be answering"});
    } else if (started) {
      Diagnose(actor, plan, result, cancel);
    } else {
      result.diagnostics.push_back({"", std::nullopt, "",
                                    std::string("not gathered: the command did not start on ") + target.id +
                                        ", so the target cannot be asked either"});
    }
  }
  record.escalated = result.escalated;
  record.error = result.error;
  // The intent was synced before anything ran; the result is written before the caller hears
  // back and reaches the disk within FileAuditStorage::kSoonDelay.
  if (auto ok = audit_.Append(audit::EncodeOutcome(record), audit::Durability::kSoon); !ok) {
    // The command already ran: report its outcome, and say loudly that the record is missing.
    std::string warning = "the result could not be written to the audit log: " + ok.error().message;
    result.error = result.error ? *result.error + "; " + warning : warning;
  }
  return result;
}

void Gateway::Diagnose(const audit::Actor& actor, const Plan& plan, TargetRunResult& result,
                       const core::CancelToken& cancel) {
  // The caller is waiting: all diagnostics share one deadline, and a target that cannot be
  // reached for one is not asked again.
  const auto until = std::chrono::steady_clock::now() + kDiagnosticTimeout;
  bool unreachable = false;
  for (const auto& diag : plan.inventory->diagnostics) {
    if (cancel.cancelled()) break;
    DiagnosticResult out;
    out.command = diag.command;
    const auto left = std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
    if (unreachable || left.count() <= 0) {
      out.error = unreachable ? "not run: " + plan.target->id + " could not be reached for the diagnostic before"
                              : "not run: the " + std::to_string(kDiagnosticTimeout.count()) +
                                    " ms for diagnostics were used up";
      result.diagnostics.push_back(std::move(out));
      continue;
    }
    const std::string action_id = audit::NewActionId();
    audit::Intent intent;
    intent.action_id = action_id;
    intent.actor = actor;
    intent.target = plan.target->id;
    intent.path = result.via;
    intent.action = "diagnose";
    intent.payload = {{"shell", diag.command}, {"after", result.action_id}, {"timeoutMs", left.count()}};
    intent.decision = {true, "policies.run.diagnostics", "read-only diagnostics after a failure (" + diag.source + ")",
                       "read-only"};
    if (auto ok = audit_.Append(audit::EncodeIntent(intent)); !ok) {
      out.error = "not run: the audit log could not record it (" + ok.error().message + ")";
      result.diagnostics.push_back(std::move(out));
      break;
    }
    capabilities::RunRequest request;
    request.command.shell = diag.command;
    request.timeout = left;
    request.output_cap = kDiagnosticOutputCap;
    auto outcome = plan.executor->Run(*plan.target, request, cancel);
    audit::Outcome record;
    record.action_id = action_id;
    record.target = plan.target->id;
    record.path = result.via;
    record.action = "diagnose";
    if (!outcome) {
      out.error = redact_(outcome.error().message);
      unreachable = true;
    } else {
      out.exit_code = outcome->exit_code;
      out.output = redact_(core::ToValidUtf8(outcome->out.text + outcome->err.text));
      if (outcome->timed_out) out.error = "timed out after " + std::to_string(left.count()) + " ms";
      unreachable = outcome->stop_unconfirmed;
      record.exit_code = outcome->exit_code;
      record.timed_out = outcome->timed_out;
      record.duration_ms = outcome->duration.count();
      record.stdout_bytes = outcome->out.total_bytes;
      record.stderr_bytes = outcome->err.total_bytes;
      record.output_digest = "sha256:" + outcome->out.sha256 + ",sha256:" + outcome->err.sha256;
    }
    record.error = out.error;
    (void)audit_.Append(audit::EncodeOutcome(record), audit::Durability::kSoon);
    result.diagnostics.push_back(std::move(out));
  }
}
core::Result<std::vector<TargetView>> Gateway::Targets(const std::vector<std::string>& selectors) const {
  const auto snapshot = inventory_.Current();
  std::vector<const inventory::Target*> chosen;
  if (selectors.empty()) {
    for (const auto& t : snapshot->targets) chosen.push_back(&t);
  } else {
    auto resolved = inventory::Resolve(*snapshot, selectors);
    if (!resolved) return resolved.error();
    chosen = *resolved;
  }
  std::vector<TargetView> views;
  for (const auto* t : chosen) {
    TargetView view{t, {}, snapshot};
    if (t->kind == inventory::TargetKind::kLocal) {
      view.state.online = true;
    } else if (const Executor* executor = ExecutorFor(*t)) {
      view.state = executor->State(*t);
    }
    views.push_back(view);
  }
  return views;
}

}  // namespace labgate::gateway
