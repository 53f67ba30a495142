// Gateway::Capture: screen, camera and location through the guardrail pipeline (DESIGN §3).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <thread>

#include "core/hashing.h"
#include "gateway/doctor.h"
#include "gateway/gateway.h"
#include "inventory/selector.h"
#include "policy/capability_scope.h"

namespace labgate::gateway {
namespace {

using core::ErrorCode;
using core::MakeError;
using std::chrono::milliseconds;

constexpr milliseconds kProgressInterval{500};

// How demanding a desiredAccuracy is; a cached fix serves requests no more demanding than its own.
int AccuracyRank(const std::string& accuracy) {
  if (accuracy == "coarse") return 0;
  if (accuracy == "precise") return 2;
  return 1;
}

// What a human is shown and what an approval binds: the action and every argument.
std::string Describe(const capabilities::CaptureRequest& r) {
  std::string out = r.capability + " " + r.action;
  if (r.duration_ms) out += " for " + std::to_string(r.duration_ms) + " ms";
  if (r.fps) out += " at " + std::to_string(r.fps) + " fps";
  if (r.screen_index) out += ", screen " + std::to_string(r.screen_index);
  if (!r.facing.empty()) out += ", " + r.facing + " camera";
  if (!r.device_id.empty()) out += ", device " + r.device_id;
  if (r.quality) out += ", quality " + std::to_string(r.quality);
  if (r.max_width) out += ", at most " + std::to_string(r.max_width) + " px wide";
  if (!r.accuracy.empty()) out += ", " + r.accuracy + " accuracy";
  return out;
}

// Calls `progress` every kProgressInterval until destroyed.
class ProgressTicker {
 public:
  ProgressTicker(const CaptureProgressFn& progress, std::int64_t total_ms) {
    if (!progress) return;
    thread_ = std::thread([this, progress, total_ms] {
      const auto start = std::chrono::steady_clock::now();
      while (!stop_.WaitFor(kProgressInterval)) {
        auto elapsed = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
        progress(std::min(elapsed, total_ms), total_ms);
      }
    });
  }
  ~ProgressTicker() {
    stop_.Cancel();
    if (thread_.joinable()) thread_.join();
  }

 private:
  core::CancelToken stop_;
  std::thread thread_;
};

}  // namespace

CaptureReport Gateway::Capture(const audit::Actor& actor, const CaptureCall& call, const core::CancelToken& cancel,
                               const CaptureProgressFn& progress, Confirmer* confirmer) {
  CaptureReport report;
  capabilities::CaptureRequest request = call.request;
  report.action = request.Method();
  report.action_id = audit::NewActionId();
  const auto snapshot = inventory_.Current();  // held to the end: the target and policy live in it
  const auto& gw = snapshot->gateway;
  if (request.timeout_ms == 0) request.timeout_ms = capabilities::DefaultCaptureTimeoutMs(request, gw.default_timeout_ms);

  audit::Json payload = capabilities::EncodeCaptureRequest(request);
  if (call.max_age_ms) payload["maxAgeMs"] = *call.max_age_ms;
  auto refuse = [&](core::Error error, const std::string& rule) {
    report.decision = "refused";
    report.rule = rule;
    report.reason = error.message;
    audit::Refusal refusal{report.action_id, actor, {report.target.empty() ? call.selector : report.target},
                           report.action, payload, {false, rule, error.message, ""}, error.message};
    (void)audit_.Append(audit::EncodeRefusal(refusal));
    error.message = "refused by " + rule + ": " + error.message;
    report.error = std::move(error);
    return report;
  };

  if (auto ok = capabilities::ValidateCaptureRequest(request); !ok) return refuse(ok.error(), "input.arguments");
  if (request.timeout_ms > gw.max_timeout_ms) {
    return refuse(MakeError(ErrorCode::kInvalidArgument, "timeoutMs " + std::to_string(request.timeout_ms) +
                                                             " is above [gateway] max_timeout_ms " +
                                                             std::to_string(gw.max_timeout_ms)),
                  "gateway.max_timeout_ms");
  }
  if (call.max_age_ms && (*call.max_age_ms < 0 || request.capability != "location")) {
    return refuse(MakeError(ErrorCode::kInvalidArgument, "maxAgeMs must be 0 or more, for location only"),
                  "input.arguments");
  }
  auto targets = inventory::Resolve(*snapshot, {call.selector});
  if (!targets) return refuse(targets.error(), "inventory.resolve");
  if (targets->size() != 1) {
    return refuse(MakeError(ErrorCode::kInvalidArgument,
                            "'" + call.selector + "' matches " + std::to_string(targets->size()) + " targets; " +
                                request.capability + " works on one target at a time, so name one id"),
                  "input.target");
  }
  const inventory::Target& target = *targets->front();
  report.target = target.id;
  report.via = PathName(target);

  // Scoping: the target lists the capability, [policies.CAP] enables and approves it, and a
  // node's pairing granted it. Deny wins.
  const policy::Decision scope = policy::DecideCapability(*snapshot, target, request.capability);
  if (!scope.allowed) return refuse(MakeError(ErrorCode::kRefused, scope.reason), scope.rule);
  report.rule = scope.rule;
  report.reason = scope.reason;
  Executor* executor = ExecutorFor(target);
  if (executor == nullptr) {
    return refuse(MakeError(ErrorCode::kUnavailable, target.id + " cannot be reached by this labgate build"),
                  "gateway.transport");
  }
  if (target.kind == inventory::TargetKind::kNode) {
    const TargetState state = executor->State(target);
    if (state.revoked_at) {
      return refuse(MakeError(ErrorCode::kRefused, "node " + target.id + " was revoked at " + *state.revoked_at +
                                                       "; pair it again to use it"),
                    "pairing.revoked");
    }
    if (state.granted &&
        std::find(state.granted->begin(), state.granted->end(), request.capability) == state.granted->end()) {
      return refuse(MakeError(ErrorCode::kRefused, "node " + target.id + " was paired without the " + request.capability +
                                                       " capability; pair it again with `labgate pair new --node " +
                                                       target.id + " --caps " + request.capability + ",...`"),
                    "pairing.capabilities");
    }
  }

  report.decision = "run";
  const inventory::CapabilityPolicy* policy = snapshot->Policy(request.capability);
  if (policy && policy->confirm) {
    ApprovalBinding binding;
    binding.targets = {target.id};
    audit::Json bound = capabilities::EncodeCaptureRequest(request);
    bound.erase("timeoutMs");
    binding.command = {{"capture", bound}};
    ConfirmQuestion question;
    question.targets = binding.targets;
    question.command = Describe(request);
    question.risk = "privacy-sensitive";
    question.rule = "policies." + request.capability + ".confirm";
    question.reason = request.capability + " needs a human's yes on every use ([policies." + request.capability +
                      "] confirm = true in " + snapshot->source + ":" + std::to_string(policy->line) + ")";
    const Confirmation c = ConfirmAction(
        actor, binding, question,
        [&](const std::string& rule, const std::string& why) {
          audit::Refusal refusal{audit::NewActionId(), actor, {target.id}, report.action, payload, {false, rule, why, ""}, why};
          (void)audit_.Append(audit::EncodeRefusal(refusal));
        },
        confirmer, cancel);
    report.decision = c.decision;
    report.approver = c.approver;
    report.approval_id = c.approval_id;
    if (c.error) {
      report.rule = question.rule;
      report.error = MakeError(ErrorCode::kRefused, *c.error);
      return report;
    }
    report.rule = question.rule;
  }

  if (call.max_age_ms) {
    std::lock_guard<std::mutex> lock(fixes_mutex_);
    auto it = fixes_.find(target.id);
    if (it != fixes_.end() && AccuracyRank(it->second.accuracy) >= AccuracyRank(request.accuracy)) {
      const auto age = std::chrono::duration_cast<milliseconds>(clock_.SteadyNow() - it->second.at).count();
      if (age <= *call.max_age_ms) {
        report.decision = "cached";
        report.result = it->second.result;
        report.age_ms = age;
        AuditEvent("location.cached", actor, target.id,
                   {{"actionId", report.action_id}, {"payload", payload}, {"ageMs", age}, {"rule", report.rule}});
        return report;
      }
    }
  }

  audit::Intent intent;
  intent.action_id = report.action_id;
  intent.actor = actor;
  intent.target = target.id;
  intent.path = report.via;
  intent.action = report.action;
  intent.payload = payload;
  intent.decision = {true, report.rule, report.reason, ""};
  if (!report.approver.empty()) intent.approver = report.approver;
  if (auto ok = audit_.Append(audit::EncodeIntent(intent)); !ok) {
    report.error = MakeError(ErrorCode::kIo, "not run: the audit log could not record the intent (" + ok.error().message +
                                                 "); fix the audit log (" + audit_.Describe() + ") and retry");
    return report;
  }

  const auto started = clock_.SteadyNow();
  core::Result<capabilities::CaptureResult> result = MakeError(ErrorCode::kInternal, "");
  {
    ProgressTicker ticker(request.IsVideo() ? progress : CaptureProgressFn(), request.duration_ms);
    result = executor->Capture(target, request, cancel);
  }
  report.duration_ms = std::chrono::duration_cast<milliseconds>(clock_.SteadyNow() - started).count();

  audit::Outcome record;
  record.action_id = report.action_id;
  record.target = target.id;
  record.path = report.via;
  record.action = report.action;
  record.duration_ms = report.duration_ms;
  if (!result) {
    report.error = MakeError(result.error().code, redact_(result.error().message));
    record.error = report.error->message;
    record.cancelled = result.error().code == ErrorCode::kCancelled;
    record.timed_out = result.error().code == ErrorCode::kTimeout;
  } else {
    record.exit_code = 0;
    record.stdout_bytes = result->data.size();
    if (!result->data.empty()) {
      record.output_digest = "sha256:" + core::Sha256Hex(result->data);
      if (artifacts_) {
        auto saved = artifacts_->Save(result->data, result->mime_type, target.id, report.action);
        if (saved) {
          report.artifact = *saved;
          record.artifact = saved->Uri();
        } else {
          record.error = "the capture could not be kept as an artifact: " + saved.error().message;
        }
      }
    } else {
      record.output_digest = "sha256:" + core::Sha256Hex(result->info.dump());
    }
    if (request.capability == "location") {
      std::lock_guard<std::mutex> lock(fixes_mutex_);
      fixes_[target.id] = CachedFix{*result, clock_.SteadyNow(), request.accuracy};
    }
    report.result = std::move(*result);
  }
  if (auto ok = audit_.Append(audit::EncodeOutcome(record), audit::Durability::kSoon); !ok && !report.error) {
    report.error = MakeError(ErrorCode::kIo, "the result could not be written to the audit log: " + ok.error().message);
  }
  if (!report.error && report.artifact && (request.capability == "screen" || request.capability == "camera")) {
    // `labgate doctor` asks whether a capture ever worked end to end. The artifact store lives in
    // STATE_DIR/artifacts; a capture that worked is not failed by this note.
    const LastCapture last{target.id, report.action, core::FormatTimestamp(clock_.Now()), report.artifact->bytes,
                           report.artifact->sha256, report.artifact->Uri()};
    const std::string state_dir = std::filesystem::path(artifacts_->dir()).parent_path().string();
    if (auto ok = RememberLastCapture(LastCapturePath(state_dir), last); !ok) {
      spdlog::warn("could not note the last capture in {}: {}", state_dir, ok.error().message);
    }
  }
  return report;
}

}  // namespace labgate::gateway
