#include "gateway/gateway.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "core/text.h"
#include "policy/capability_scope.h"
#include "inventory/selector.h"

namespace labgate::gateway {
namespace {

using std::chrono::milliseconds;

std::string PathName(const inventory::Target& target) {
  switch (target.kind) {
    case inventory::TargetKind::kLocal: return "local";
    case inventory::TargetKind::kHost: return "ssh";
    case inventory::TargetKind::kNode: return "node";
  }
  return "local";
}

}  // namespace

audit::Json RunPayload(const RunCall& call, std::int64_t timeout_ms) {
  audit::Json payload;
  if (call.command.shell) {
    payload["shell"] = core::Redact(*call.command.shell);
  } else {
    audit::Json argv = audit::Json::array();
    for (const auto& word : call.command.argv) argv.push_back(core::Redact(word));
    payload["argv"] = argv;
  }
  payload["cwd"] = call.cwd.empty() ? audit::Json(nullptr) : audit::Json(call.cwd);
  if (!call.env.empty()) {
    audit::Json env = audit::Json::object();
    for (const auto& [key, value] : call.env) env[key] = core::Redact(key + "=" + value).substr(key.size() + 1);
    payload["env"] = env;
  }
  payload["timeoutMs"] = timeout_ms;
  return payload;
}

Gateway::Gateway(std::shared_ptr<const inventory::Inventory> inventory, audit::AuditLog& audit, Executor& local,
                 const core::Clock& clock, Executor* ssh, Executor* nodes)
    : inventory_(std::move(inventory)), audit_(audit), local_(local), clock_(clock), ssh_(ssh), nodes_(nodes) {}

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
  refusal.targets = call.selectors;
  refusal.action = "run";
  refusal.payload = RunPayload(call, call.timeout_ms.value_or(inventory_->gateway.default_timeout_ms));
  refusal.decision = {false, rule, why};
  refusal.error = why;
  // A refusal that cannot be audited is still a refusal; nothing ran.
  (void)audit_.Append(audit::EncodeRefusal(refusal));
}

RunReport Gateway::Run(const audit::Actor& actor, const RunCall& call, const core::CancelToken& cancel,
                       const ProgressFn& progress) {
  RunReport report;
  const auto& gw = inventory_->gateway;
  auto reject = [&](core::Error error, const std::string& rule) {
    AuditRefusal(actor, call, rule, error.message);
    report.error = std::move(error);
    return report;
  };
  if (auto ok = capabilities::ValidateCommand(call.command); !ok) return reject(ok.error(), "input.command");
  std::int64_t timeout_ms = call.timeout_ms.value_or(gw.default_timeout_ms);
  if (timeout_ms < 1 || timeout_ms > gw.max_timeout_ms) {
    return reject(core::MakeError(core::ErrorCode::kInvalidArgument,
                                  "timeoutMs " + std::to_string(timeout_ms) + " is outside 1.." +
                                      std::to_string(gw.max_timeout_ms) + " (raise [gateway] max_timeout_ms to allow more)"),
                  "gateway.max_timeout_ms");
  }
  auto targets = inventory::Resolve(*inventory_, call.selectors);
  if (!targets) return reject(targets.error(), "inventory.resolve");

  const std::size_t total = targets->size();
  report.results.resize(total);
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::mutex progress_mutex;
  auto worker = [&] {
    for (std::size_t i = next++; i < total; i = next++) {
      report.results[i] = RunOne(actor, *(*targets)[i], call, milliseconds(timeout_ms), cancel);
      std::size_t finished = ++done;
      if (progress) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        progress(finished, total, report.results[i]);
      }
    }
  };
  std::size_t parallel = std::min<std::size_t>(total, static_cast<std::size_t>(gw.max_parallel));
  if (parallel <= 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < parallel; ++k) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  return report;
}

TargetRunResult Gateway::RunOne(const audit::Actor& actor, const inventory::Target& target, const RunCall& call,
                                milliseconds timeout, const core::CancelToken& cancel) {
  TargetRunResult result;
  result.target = target.id;
  result.via = PathName(target);
  result.action_id = audit::NewActionId();

  audit::Intent intent;
  intent.action_id = result.action_id;
  intent.actor = actor;
  intent.target = target.id;
  intent.path = result.via;
  intent.action = "run";
  intent.payload = RunPayload(call, timeout.count());

  const policy::Decision decision = policy::DecideCapability(*inventory_, target, "run");
  intent.decision = {decision.allowed, decision.rule, decision.reason};
  Executor* executor = ExecutorFor(target);
  if (decision.allowed && executor != nullptr && target.kind == inventory::TargetKind::kNode) {
    // Deny wins: the inventory may list a capability the pairing never approved.
    const TargetState state = executor->State(target);
    const auto& granted = state.granted;
    if (state.revoked_at) {
      intent.decision = {false, "pairing.revoked",
                         "node " + target.id + " was revoked at " + *state.revoked_at +
                             "; pair it again (`labgate pair new --node " + target.id + "`) to use it"};
    } else if (granted && std::find(granted->begin(), granted->end(), "run") == granted->end()) {
      intent.decision = {false, "pairing.capabilities",
                         "node " + target.id + " was paired without the run capability; pair it again with "
                         "`labgate pair new --node " + target.id + " --caps run,...`"};
    }
  }
  if (decision.allowed && executor == nullptr) {
    intent.decision = {false, "gateway.transport",
                       target.id + " is " + (target.kind == inventory::TargetKind::kHost ? "an SSH host" : "a paired node") +
                           ", and this labgate build cannot reach " +
                           (target.kind == inventory::TargetKind::kHost ? "SSH hosts" : "nodes") + " yet"};
  }
  if (!intent.decision.allowed) {
    audit::Refusal refusal{result.action_id, actor, {target.id}, "run", intent.payload, intent.decision,
                           intent.decision.reason};
    if (auto ok = audit_.Append(audit::EncodeRefusal(refusal)); !ok) {
      result.error = "refused (" + intent.decision.rule + "): " + intent.decision.reason +
                     "; the refusal could not be audited either: " + ok.error().message;
    } else {
      result.error = "refused by " + intent.decision.rule + ": " + intent.decision.reason;
    }
    return result;
  }
  if (auto ok = audit_.Append(audit::EncodeIntent(intent)); !ok) {
    result.error = "not run: the audit log could not record the intent (" + ok.error().message +
                   "); fix the audit log (" + audit_.Describe() + ") and retry";
    return result;
  }

  capabilities::RunRequest request;
  request.command = call.command;
  request.cwd = call.cwd;
  request.env = call.env;
  request.timeout = timeout;
  request.output_cap = static_cast<std::size_t>(inventory_->gateway.output_cap_bytes);
  auto outcome = executor->Run(target, request, cancel);

  audit::Outcome record;
  record.action_id = result.action_id;
  record.target = target.id;
  record.path = result.via;
  record.action = "run";
  if (!outcome) {
    result.error = outcome.error().message;
    record.error = result.error;
  } else {
    const core::ProcessOutcome& o = *outcome;
    result.exit_code = o.exit_code;
    if (o.signal) result.signal = core::SignalName(*o.signal);
    result.timed_out = o.timed_out;
    result.cancelled = o.cancelled;
    result.stdout_text = core::Redact(core::ToValidUtf8(o.out.text));
    result.stderr_text = core::Redact(core::ToValidUtf8(o.err.text));
    result.truncated = o.out.truncated || o.err.truncated;
    result.duration_ms = o.duration.count();
    if (o.timed_out) result.error = "timed out after " + std::to_string(timeout.count()) + " ms; its process group was stopped";
    if (o.cancelled) result.error = "cancelled; its process group was stopped";
    record.exit_code = result.exit_code;
    record.signal = result.signal;
    record.timed_out = o.timed_out;
    record.cancelled = o.cancelled;
    record.duration_ms = result.duration_ms;
    record.stdout_bytes = o.out.total_bytes;
    record.stderr_bytes = o.err.total_bytes;
    record.output_digest = "sha256:" + o.out.sha256 + ",sha256:" + o.err.sha256;
    record.retries = o.retries;
    record.error = result.error;
  }
  // The intent was synced before anything ran; the result is written before the caller hears
  // back and reaches the disk within FileAuditStorage::kSoonDelay.
  if (auto ok = audit_.Append(audit::EncodeOutcome(record), audit::Durability::kSoon); !ok) {
    // The command already ran: report its outcome, and say loudly that the record is missing.
    std::string warning = "the result could not be written to the audit log: " + ok.error().message;
    result.error = result.error ? *result.error + "; " + warning : warning;
  }
  return result;
}

core::Result<std::vector<TargetView>> Gateway::Targets(const std::vector<std::string>& selectors) const {
  std::vector<const inventory::Target*> chosen;
  if (selectors.empty()) {
    for (const auto& t : inventory_->targets) chosen.push_back(&t);
  } else {
    auto resolved = inventory::Resolve(*inventory_, selectors);
    if (!resolved) return resolved.error();
    chosen = *resolved;
  }
  std::vector<TargetView> views;
  for (const auto* t : chosen) {
    TargetView view{t, {}};
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
