#include "mcp/tools.h"

#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "core/base64.h"
#include "core/text.h"

namespace labgate::mcp {
namespace {

Json TextBlock(std::string text) { return Json{{"type", "text"}, {"text", std::move(text)}}; }

// A schema for a value of `type` or null. anyOf rather than a type array: strict validators
// (the Inspector's --strict) warn about type arrays.
Json Nullable(const char* type) { return Json{{"anyOf", Json::array({Json{{"type", type}}, Json{{"type", "null"}}})}}; }

Json RunInputSchema() {
  return Json::parse(R"({
    "type": "object",
    "properties": {
      "target": {"type": "string", "description": "One target: an id from `targets`, group:NAME, tag:NAME or *."},
      "targets": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                  "description": "Several selectors; the command runs on each resolved target in parallel."},
      "command": {
        "description": "An argv array (run directly, no shell: safest) or a string (run by sh -c).",
        "anyOf": [
          {"type": "array", "items": {"type": "string"}, "minItems": 1},
          {"type": "string", "minLength": 1}
        ]
      },
      "timeoutMs": {"type": "integer", "minimum": 1,
                    "description": "Deadline; when it passes the whole process group is stopped."},
      "cwd": {"type": "string", "description": "Working directory on the target."},
      "env": {"type": "object", "additionalProperties": {"type": "string"},
              "description": "Environment variables added for the command."},
      "dryRun": {"type": "boolean",
                 "description": "Only report the policy decision, rule, risk class and resolved targets; run nothing."},
      "sudo": {"type": "boolean",
               "description": "Run as root through sudo (SSH hosts whose sudo password the operator configured). Privileged: a human confirms unless the target's mode is full; daily-use targets refuse it."}
    },
    "required": ["command"],
    "additionalProperties": false
  })");
}

Json RunOutputSchema() {
  return Json::parse(R"({
    "type": "object",
    "properties": {
      "summary": {
        "type": "object",
        "properties": {
          "total": {"type": "integer"}, "ok": {"type": "integer"}, "failed": {"type": "integer"},
          "timedOut": {"type": "integer"}, "errors": {"type": "integer"}
        },
        "required": ["total", "ok", "failed", "timedOut", "errors"]
      },
      "results": {
        "type": "array",
        "items": {
          "type": "object",
          "properties": {
            "target": {"type": "string"},
            "via": {"type": "string", "enum": ["local", "ssh", "node"]},
            "exitCode": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "signal": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "timedOut": {"type": "boolean"},
            "stopUnconfirmed": {"type": "boolean",
                                "description": "Timed out or cancelled, but the host never confirmed the command ended: it may still run."},
            "stdout": {"type": "string"},
            "stderr": {"type": "string"},
            "truncated": {"type": "boolean"},
            "durationMs": {"type": "integer"},
            "error": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "actionId": {"type": "string"},
            "decision": {"type": "string"},
            "rule": {"type": "string"},
            "reason": {"type": "string"},
            "risk": {"type": "string"},
            "approver": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "approvalId": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "retries": {"type": "integer"},
            "escalated": {"type": "boolean"},
            "diagnostics": {"type": "array", "items": {"type": "object", "properties": {
              "command": {"type": "string"}, "exitCode": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
              "output": {"type": "string"}, "error": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}}
          },
          "required": ["target", "via", "exitCode", "signal", "timedOut", "stdout", "stderr", "truncated",
                       "durationMs", "error"]
        }
      },
      "error": {"anyOf": [{"type": "string"}, {"type": "null"}]},
      "dryRun": {"type": "boolean"}
    },
    "required": ["summary", "results"]
  })");
}

Json TargetsOutputSchema() {
  return Json::parse(R"({
    "type": "object",
    "properties": {
      "targets": {
        "type": "array",
        "items": {
          "type": "object",
          "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": ["local", "host", "node"]},
            "online": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            "capabilities": {"type": "array", "items": {"type": "string"}},
            "groups": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "device": {"type": "string"},
            "owner": {"type": "string"},
            "purpose": {"type": "string"},
            "role": {"type": "string", "enum": ["admin", "daily"]},
            "address": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "lastKeyRotation": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "lastSeen": {"anyOf": [{"type": "string"}, {"type": "null"}]}
          },
          "required": ["id", "kind", "online", "capabilities", "groups", "tags", "device", "owner", "purpose",
                       "address", "lastKeyRotation"]
        }
      }
    },
    "required": ["targets"]
  })");
}

// Arguments a caller might hope approve a command. They are ignored (and said to be): only a
// human approves, through elicitation or `labgate approvals approve`.
const std::set<std::string>& ApprovalLookingKeys() {
  static const std::set<std::string> keys = {"confirm", "confirmed", "approve", "approved", "approval", "force",
                                             "yes", "humanApproved", "human_approved", "override"};
  return keys;
}

// Checks run arguments against the schema by hand, so a bad call gets one precise sentence.
core::Result<gateway::RunCall> ParseRunArguments(const Json& args) {
  using core::ErrorCode;
  using core::MakeError;
  static const std::set<std::string> kAllowed = {"target", "targets", "command", "timeoutMs", "cwd", "env", "dryRun", "sudo"};
  for (const auto& [key, value] : args.items()) {
    if (ApprovalLookingKeys().count(key)) continue;
    if (!kAllowed.count(key)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "unknown argument '" + key + "' (run accepts target, targets, command, timeoutMs, cwd, env, dryRun, sudo). "
                       "Approvals come only from a human, never from tool arguments");
    }
  }
  gateway::RunCall call;
  const bool has_target = args.contains("target");
  const bool has_targets = args.contains("targets");
  if (has_target == has_targets) {
    return MakeError(ErrorCode::kInvalidArgument, "give exactly one of `target` (a string) or `targets` (an array)");
  }
  if (has_target) {
    if (!args["target"].is_string()) return MakeError(ErrorCode::kInvalidArgument, "`target` must be a string");
    call.selectors.push_back(args["target"]);
  } else {
    if (!args["targets"].is_array() || args["targets"].empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "`targets` must be a non-empty array of strings");
    }
    for (const auto& t : args["targets"]) {
      if (!t.is_string()) return MakeError(ErrorCode::kInvalidArgument, "`targets` must be a non-empty array of strings");
      call.selectors.push_back(t);
    }
  }
  if (!args.contains("command")) return MakeError(ErrorCode::kInvalidArgument, "`command` is required");
  const Json& command = args["command"];
  if (command.is_string()) {
    call.command.shell = command.get<std::string>();
  } else if (command.is_array()) {
    for (const auto& word : command) {
      if (!word.is_string()) return MakeError(ErrorCode::kInvalidArgument, "`command` array items must be strings");
      call.command.argv.push_back(word);
    }
  } else {
    return MakeError(ErrorCode::kInvalidArgument, "`command` must be an argv array of strings or a shell string");
  }
  if (args.contains("timeoutMs")) {
    if (!args["timeoutMs"].is_number_integer() || args["timeoutMs"].get<std::int64_t>() < 1) {
      return MakeError(ErrorCode::kInvalidArgument, "`timeoutMs` must be a positive integer (milliseconds)");
    }
    call.timeout_ms = args["timeoutMs"].get<std::int64_t>();
  }
  if (args.contains("env")) {
    if (!args["env"].is_object()) return MakeError(ErrorCode::kInvalidArgument, "`env` must be an object of strings");
    for (const auto& [key, value] : args["env"].items()) {
      if (!value.is_string()) return MakeError(ErrorCode::kInvalidArgument, "`env` values must be strings");
      if (!core::IsValidEnvName(key)) return MakeError(ErrorCode::kInvalidArgument, "`env` name '" + key + "' is not a valid variable name");
      call.env.emplace_back(key, value.get<std::string>());
    }
  }
  if (args.contains("cwd")) {
    if (!args["cwd"].is_string()) return MakeError(ErrorCode::kInvalidArgument, "`cwd` must be a string");
    call.cwd = args["cwd"];
  }
  if (args.contains("sudo")) {
    if (!args["sudo"].is_boolean()) return MakeError(ErrorCode::kInvalidArgument, "`sudo` must be true or false");
    call.sudo = args["sudo"].get<bool>();
  }
  if (args.contains("dryRun")) {
    if (!args["dryRun"].is_boolean()) return MakeError(ErrorCode::kInvalidArgument, "`dryRun` must be true or false");
    call.dry_run = args["dryRun"].get<bool>();
  }
  return call;
}

// The form a human confirms a command with: what runs where, the risk and the rule that asks.
Json ConfirmationForm(const gateway::ConfirmQuestion& q) {
  std::string targets;
  for (const auto& t : q.targets) targets += (targets.empty() ? "" : ", ") + t;
  std::string message = "labgate asks before running a " + q.risk + " command.\n\nTargets: " + targets +
                        "\nCommand: " + q.command + "\nWorking directory: " + (q.cwd.empty() ? "(default)" : q.cwd) +
                        "\nRisk: " + q.risk + "\nRule: " + q.rule + "\nWhy: " + q.reason +
                        "\n\nRun exactly this? Decline to refuse it.";
  Json params = {{"message", message},
                 {"requestedSchema",
                  {{"type", "object"},
                   {"properties",
                    {{"confirm",
                      {{"type", "boolean"},
                       {"title", "Run it"},
                       {"description", "Run exactly this command on these targets"},
                       {"default", false}}}}},
                   {"required", Json::array({"confirm"})}}}};
  return params;
}

// Asks the person at the MCP client through elicitation/create (form mode).
class ElicitationConfirmer final : public gateway::Confirmer {
 public:
  ElicitationConfirmer(ToolContext& ctx, std::chrono::seconds timeout)
      : ctx_(ctx), session_(ctx.session), actor_(ctx.actor), timeout_(timeout) {}

  /// Whether the client declared form elicitation in initialize.
  static bool Supported(const Session& session) {
    const Json caps = session.client_capabilities();
    if (!caps.contains("elicitation") || !caps["elicitation"].is_object()) return false;
    const Json& e = caps["elicitation"];
    // 2025-11-25 lists modes; an empty object means form (earlier revisions had only form).
    return e.empty() || e.contains("form");
  }

  gateway::ConfirmAnswer Ask(const gateway::ConfirmQuestion& q, const core::CancelToken& cancel) override {
    Json params = ConfirmationForm(q);
    if (session_.protocol_version() >= "2025-11-25") params["mode"] = "form";
    gateway::ConfirmAnswer answer;
    answer.who = "a human via MCP elicitation in " + actor_.client_name + " " + actor_.client_version + " (session " +
                 actor_.session_id + ", OS user " + actor_.os_user + ")";
    auto reply = cancel.cancelled() ? core::Result<Json>(core::MakeError(core::ErrorCode::kCancelled, "cancelled"))
                                    : session_.AskClient(ctx_, "elicitation/create", params, timeout_);
    if (!reply) {
      answer.kind = reply.error().code == core::ErrorCode::kCancelled ? gateway::ConfirmAnswer::Kind::kCancel
                                                                      : gateway::ConfirmAnswer::Kind::kFailed;
      answer.detail = reply.error().message;
      return answer;
    }
    const std::string action = reply->value("action", "");
    if (action == "accept") {
      const Json content = reply->value("content", Json::object());
      if (content.is_object() && content.value("confirm", false) == true) {
        answer.kind = gateway::ConfirmAnswer::Kind::kAccept;
        answer.detail = "accepted with confirm = true";
      } else {
        answer.kind = gateway::ConfirmAnswer::Kind::kDecline;
        answer.detail = "accepted the form without ticking `Run it`";
      }
    } else if (action == "decline") {
      answer.kind = gateway::ConfirmAnswer::Kind::kDecline;
      answer.detail = "declined";
    } else if (action == "cancel") {
      answer.kind = gateway::ConfirmAnswer::Kind::kCancel;
      answer.detail = "dismissed";
    } else {
      answer.kind = gateway::ConfirmAnswer::Kind::kFailed;
      answer.detail = "the client answered elicitation/create with an unknown action '" + action + "'";
    }
    return answer;
  }

 private:
  ToolContext& ctx_;
  Session& session_;
  const audit::Actor& actor_;
  std::chrono::seconds timeout_;
};

// The modern era's confirmation: the first try hands the question back (input_required), the
// retry carries the human's answer, already checked against the requestState.
class InputRequiredConfirmer final : public gateway::Confirmer {
 public:
  explicit InputRequiredConfirmer(InputExchange& input) : input_(input) {}
  gateway::ConfirmAnswer Ask(const gateway::ConfirmQuestion& q, const core::CancelToken&) override {
    gateway::ConfirmAnswer answer;
    answer.who = input_.who;
    if (input_.answer == "accept") {
      answer.kind = gateway::ConfirmAnswer::Kind::kAccept;
      answer.detail = "accepted with confirm = true";
    } else if (input_.answer == "decline") {
      answer.kind = gateway::ConfirmAnswer::Kind::kDecline;
      answer.detail = "declined";
    } else if (input_.answer == "cancel") {
      answer.kind = gateway::ConfirmAnswer::Kind::kCancel;
      answer.detail = "dismissed";
    } else {
      input_.elicitation = ConfirmationForm(q);
      input_.elicitation["mode"] = "form";
      answer.kind = gateway::ConfirmAnswer::Kind::kDeferred;
      answer.who = "the MCP client, asked through input_required";
      answer.detail = "the question went back to the client";
    }
    return answer;
  }

 private:
  InputExchange& input_;
};

// Who confirms for this call: the modern era's input_required, else elicitation when the
// client offered it, else nobody here (an approval request for the operator).
gateway::Confirmer* ConfirmerFor(gateway::Gateway& gw, ToolContext& ctx, std::optional<ElicitationConfirmer>& human,
                                 std::optional<InputRequiredConfirmer>& deferred) {
  if (ctx.input) {
    if (!ctx.input->can_elicit && ctx.input->answer.empty()) return nullptr;
    deferred.emplace(*ctx.input);
    return &*deferred;
  }
  if (!ElicitationConfirmer::Supported(ctx.session)) return nullptr;
  human.emplace(ctx, std::chrono::seconds(gw.inventory()->gateway.elicitation_timeout_s));
  return &*human;
}

ToolResult RunTool(gateway::Gateway& gw, ToolContext& ctx, const Json& args) {
  ToolResult out;
  auto call = ParseRunArguments(args);
  if (!call) {
    gw.AuditMalformed(ctx.actor, "run", args, call.error().message);
    gateway::RunReport report;
    report.error = call.error();
    Json structured = gateway::RunReportJson(report);
    out.is_error = true;
    out.content.push_back(TextBlock("run refused: " + call.error().message));
    out.structured = structured;
    return out;
  }
  std::optional<ElicitationConfirmer> human;
  std::optional<InputRequiredConfirmer> deferred;
  gateway::Confirmer* confirmer = ConfirmerFor(gw, ctx, human, deferred);
  if (ctx.output) {
    call->on_output = [&ctx](const std::string& target, core::StreamId, std::string_view bytes) { ctx.output(target, bytes); };
  }
  auto report = gw.Run(
      ctx.actor, *call, ctx.cancel,
      [&](std::size_t done, std::size_t total, const gateway::TargetRunResult& r) {
        ctx.progress(static_cast<double>(done), static_cast<double>(total), gateway::OneLineSummary(r));
      },
      confirmer);
  for (const auto& r : report.results) {
    ctx.session.Log(r.ok() ? LogLevel::kInfo : LogLevel::kWarning, "labgate.run",
                    Json{{"target", r.target}, {"actionId", r.action_id}, {"summary", gateway::OneLineSummary(r)}},
                    ctx.request_id);
  }
  out.structured = gateway::RunReportJson(report);
  std::string text = gateway::RunReportText(report);
  for (const auto& [key, value] : args.items()) {
    if (ApprovalLookingKeys().count(key)) {
      text += "\nnote: the `" + key + "` argument was ignored: only a human approves commands (MCP elicitation or "
              "`labgate approvals approve`)";
    }
  }
  out.content.push_back(TextBlock(text));
  out.is_error = report.error.has_value() ||
                 (!report.dry_run && std::any_of(report.results.begin(), report.results.end(), [](const auto& r) { return !r.ok(); }));
  return out;
}

// Hand-checked arguments of screen, camera and location, one precise sentence per problem.
core::Result<gateway::CaptureCall> ParseCaptureArguments(const std::string& capability, const Json& args) {
  using core::ErrorCode;
  using core::MakeError;
  static const std::map<std::string, std::set<std::string>> kAllowed = {
      {"screen", {"target", "action", "durationMs", "fps", "screenIndex"}},
      {"camera", {"target", "action", "facing", "quality", "maxWidth", "durationMs", "deviceId", "fps"}},
      {"location", {"target", "desiredAccuracy", "timeoutMs", "maxAgeMs"}}};
  const auto& allowed = kAllowed.at(capability);
  for (const auto& [key, value] : args.items()) {
    if (ApprovalLookingKeys().count(key)) continue;
    if (!allowed.count(key)) {
      std::string names;
      for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + a;
      return MakeError(ErrorCode::kInvalidArgument,
                       "unknown argument '" + key + "' (" + capability + " accepts " + names + ")");
    }
  }
  gateway::CaptureCall call;
  call.request.capability = capability;
  if (!args.contains("target") || !args["target"].is_string() || args["target"].get<std::string>().empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "`target` (a target id from `targets`) is required");
  }
  call.selector = args["target"];
  auto text = [&](const char* key, std::string& out) -> core::Status {
    if (!args.contains(key)) return core::Ok();
    if (!args[key].is_string()) return MakeError(ErrorCode::kInvalidArgument, std::string("`") + key + "` must be a string");
    out = args[key];
    return core::Ok();
  };
  auto integer = [&](const char* key, auto& out) -> core::Status {
    if (!args.contains(key)) return core::Ok();
    if (!args[key].is_number_integer()) {
      return MakeError(ErrorCode::kInvalidArgument, std::string("`") + key + "` must be an integer");
    }
    const auto v = args[key].get<std::int64_t>();
    if (v < 0 || v > (1LL << 40)) return MakeError(ErrorCode::kInvalidArgument, std::string("`") + key + "` is out of range");
    out = static_cast<std::remove_reference_t<decltype(out)>>(v);
    return core::Ok();
  };
  capabilities::CaptureRequest& r = call.request;
  r.action = capability == "screen" ? "snapshot" : capability == "camera" ? "snap" : "get";
  std::int64_t max_age = -1;
  for (auto status : {text("action", r.action), text("facing", r.facing), text("deviceId", r.device_id),
                      text("desiredAccuracy", r.accuracy), integer("durationMs", r.duration_ms), integer("fps", r.fps),
                      integer("screenIndex", r.screen_index), integer("quality", r.quality),
                      integer("maxWidth", r.max_width), integer("timeoutMs", r.timeout_ms), integer("maxAgeMs", max_age)}) {
    if (!status) return status.error();
  }
  if (args.contains("timeoutMs") && r.timeout_ms == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "`timeoutMs` must be a positive integer (milliseconds)");
  }
  if (args.contains("maxAgeMs")) call.max_age_ms = max_age;
  if (r.IsVideo() && r.duration_ms == 0 && !args.contains("durationMs")) r.duration_ms = 5000;
  return call;
}

// The file of a capture as MCP content: an image block, or a video as an embedded resource up
// to kMaxEmbeddedVideo and a resource_link to the stored artifact beyond it.
constexpr std::size_t kMaxEmbeddedVideo = 8 * 1024 * 1024;

Json CaptureContent(const gateway::CaptureReport& report, const std::string& protocol) {
  const auto& result = *report.result;
  if (result.data.empty()) return nullptr;
  if (result.mime_type.rfind("image/", 0) == 0) {
    return Json{{"type", "image"}, {"data", core::Base64Encode(result.data)}, {"mimeType", result.mime_type}};
  }
  const std::string uri = report.artifact ? report.artifact->Uri() : "labgate://actions/" + report.action_id;
  if (result.data.size() <= kMaxEmbeddedVideo) {
    return Json{{"type", "resource"},
                {"resource", {{"uri", uri}, {"mimeType", result.mime_type}, {"blob", core::Base64Encode(result.data)}}}};
  }
  if (!report.artifact) return nullptr;
  if (protocol < "2025-06-18") {  // resource_link arrived in 2025-06-18
    return TextBlock("the recording (" + std::to_string(result.data.size()) + " bytes) is too large to embed; read it "
                     "with resources/read " + uri);
  }
  return Json{{"type", "resource_link"},
              {"uri", uri},
              {"name", report.action + "-" + report.target + "-" + report.action_id},
              {"mimeType", result.mime_type},
              {"size", result.data.size()},
              {"description", report.action + " on " + report.target}};
}

ToolResult CaptureTool(gateway::Gateway& gw, ToolContext& ctx, const std::string& capability, const Json& args) {
  ToolResult out;
  auto call = ParseCaptureArguments(capability, args);
  if (!call) {
    gw.AuditMalformed(ctx.actor, capability, args, call.error().message);
    out.is_error = true;
    out.content.push_back(TextBlock(capability + " refused: " + call.error().message));
    return out;
  }
  std::optional<ElicitationConfirmer> human;
  std::optional<InputRequiredConfirmer> deferred;
  gateway::Confirmer* confirmer = ConfirmerFor(gw, ctx, human, deferred);
  auto report = gw.Capture(
      ctx.actor, *call, ctx.cancel,
      [&](std::int64_t elapsed, std::int64_t total) {
        char msg[96];
        std::snprintf(msg, sizeof msg, "recording %.1f of %.1f s", static_cast<double>(elapsed) / 1000.0,
                      static_cast<double>(total) / 1000.0);
        ctx.progress(static_cast<double>(elapsed), static_cast<double>(total), msg);
      },
      confirmer);
  ctx.session.Log(report.error ? LogLevel::kWarning : LogLevel::kInfo, "labgate." + capability,
                  Json{{"target", report.target}, {"actionId", report.action_id}, {"summary", gateway::CaptureReportText(report)}},
                  ctx.request_id);
  out.structured = gateway::CaptureReportJson(report);
  out.is_error = report.error.has_value();
  if (report.result) {
    Json block = CaptureContent(report, ctx.input ? std::string(kModernProtocolVersions[0]) : ctx.session.protocol_version());
    if (!block.is_null()) out.content.push_back(block);
  }
  std::string text = gateway::CaptureReportText(report);
  for (const auto& [key, value] : args.items()) {
    if (ApprovalLookingKeys().count(key)) {
      text += "\nnote: the `" + key + "` argument was ignored: only a human approves actions";
    }
  }
  out.content.push_back(TextBlock(text));
  return out;
}

Json CaptureInputSchema(const std::string& capability) {
  Json props = {{"target", {{"type", "string"}, {"description", "One target id from `targets` that offers " + capability + "."}}}};
  if (capability == "screen") {
    props["action"] = {{"type", "string"}, {"enum", {"snapshot", "record"}}, {"default", "snapshot"},
                       {"description", "snapshot: a PNG image; record: an mp4 video."}};
    props["durationMs"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 60000}, {"description", "record: length (default 5000)."}};
    props["fps"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 60}, {"description", "record: frames per second (default 10)."}};
    props["screenIndex"] = {{"type", "integer"}, {"minimum", 0}, {"maximum", 15}, {"description", "Which screen (default 0)."}};
  } else if (capability == "camera") {
    props["action"] = {{"type", "string"}, {"enum", {"snap", "clip", "list"}}, {"default", "snap"},
                       {"description", "snap: a JPEG photo; clip: an mp4 video; list: the camera devices."}};
    props["facing"] = {{"type", "string"}, {"enum", {"front", "back"}}};
    props["quality"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}, {"description", "snap: JPEG quality (default 85)."}};
    props["maxWidth"] = {{"type", "integer"}, {"minimum", 16}, {"maximum", 16384}, {"description", "Scale wider pictures down to this width."}};
    props["durationMs"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 60000}, {"description", "clip: length (default 5000)."}};
    props["fps"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 60}};
    props["deviceId"] = {{"type", "string"}, {"description", "A device from action list."}};
  } else {
    props["desiredAccuracy"] = {{"type", "string"}, {"enum", {"coarse", "balanced", "precise"}},
                                {"description", "precise waits for a 3D GPS fix."}};
    props["timeoutMs"] = {{"type", "integer"}, {"minimum", 1}, {"description", "How long to wait for a fix (default 30000)."}};
    props["maxAgeMs"] = {{"type", "integer"}, {"minimum", 0}, {"description", "A fix at most this old may be answered from the gateway's cache."}};
  }
  return Json{{"type", "object"}, {"properties", props}, {"required", {"target"}}, {"additionalProperties", false}};
}

Json CaptureOutputSchema(const std::string& capability) {
  Json props = {{"target", {{"type", "string"}}},     {"via", {{"type", "string"}}},
                {"action", {{"type", "string"}}},     {"actionId", {{"type", "string"}}},
                {"decision", {{"type", "string"}}},   {"rule", {{"type", "string"}}},
                {"error", Nullable("string")}, {"tookMs", {{"type", "integer"}}},
                {"backend", {{"type", "string"}}},    {"mimeType", {{"type", "string"}}}};
  if (capability == "location") {
    for (const char* key : {"lat", "lon", "accuracyMeters", "altitudeMeters", "speedMps", "headingDeg"}) {
      props[key] = Nullable("number");
    }
    props["timestamp"] = Nullable("string");
    props["source"] = {{"type", "string"}};
    props["cached"] = {{"type", "boolean"}};
    props["ageMs"] = {{"type", "integer"}};
  } else {
    props["format"] = {{"type", "string"}};
    props["width"] = {{"type", "integer"}};
    props["height"] = {{"type", "integer"}};
    props["bytes"] = {{"type", "integer"}};
    props["sha256"] = {{"type", "string"}};
    props["durationMs"] = {{"type", "integer"}};
    props["uri"] = {{"type", "string"}};
    if (capability == "camera") props["devices"] = {{"type", "array"}, {"items", {{"type", "object"}}}};
  }
  return Json{{"type", "object"}, {"properties", props}, {"required", {"target", "action", "actionId", "error"}}};
}

// Hand-checked arguments of file, one precise sentence per problem.
core::Result<gateway::FileCall> ParseFileArguments(const Json& args) {
  using core::ErrorCode;
  using core::MakeError;
  static const std::set<std::string> kAllowed = {"target", "op",      "path",      "offset",       "length",
                                                 "content", "encoding", "fromArtifact", "mode",     "createOnly",
                                                 "overwrite", "expectedSha256", "timeoutMs", "maxEntries", "sudo"};
  for (const auto& [key, value] : args.items()) {
    if (ApprovalLookingKeys().count(key)) continue;
    if (!kAllowed.count(key)) {
      std::string names;
      for (const auto& a : kAllowed) names += (names.empty() ? "" : ", ") + a;
      return MakeError(ErrorCode::kInvalidArgument, "unknown argument '" + key + "' (file accepts " + names + ")");
    }
  }
  gateway::FileCall call;
  auto text = [&](const char* key, std::string& out, bool required) -> core::Status {
    if (!args.contains(key)) {
      if (required) return MakeError(ErrorCode::kInvalidArgument, std::string("`") + key + "` is required");
      return core::Ok();
    }
    if (!args[key].is_string()) return MakeError(ErrorCode::kInvalidArgument, std::string("`") + key + "` must be a string");
    out = args[key];
    return core::Ok();
  };
  auto integer = [&](const char* key, auto& out) -> core::Status {
    if (!args.contains(key)) return core::Ok();
    if (!args[key].is_number_integer() || args[key].get<std::int64_t>() < 0) {
      return MakeError(ErrorCode::kInvalidArgument, std::string("`") + key + "` must be a non-negative integer");
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(args[key].get<std::int64_t>());
    return core::Ok();
  };
  auto boolean = [&](const char* key, bool& out) -> core::Status {
    if (!args.contains(key)) return core::Ok();
    if (!args[key].is_boolean()) return MakeError(ErrorCode::kInvalidArgument, std::string("`") + key + "` must be true or false");
    out = args[key];
    return core::Ok();
  };
  std::string encoding = "utf-8";
  std::string expected;
  std::int64_t timeout = 0;
  for (auto status : {text("target", call.selector, true), text("op", call.op, true), text("path", call.path, true),
                      text("fromArtifact", call.from_artifact, false), text("encoding", encoding, false),
                      text("expectedSha256", expected, false), integer("offset", call.offset),
                      integer("length", call.length), integer("timeoutMs", timeout),
                      integer("maxEntries", call.max_entries), boolean("createOnly", call.write.create_only),
                      boolean("sudo", call.sudo),
                      boolean("overwrite", call.write.overwrite)}) {
    if (!status) return status.error();
  }
  if (call.selector.empty()) return MakeError(ErrorCode::kInvalidArgument, "`target` (a target id from `targets`) is required");
  if (args.contains("timeoutMs")) {
    if (timeout == 0) return MakeError(ErrorCode::kInvalidArgument, "`timeoutMs` must be a positive integer (milliseconds)");
    call.timeout_ms = timeout;
  }
  if (args.contains("expectedSha256")) call.write.expected_sha256 = expected;
  if (args.contains("mode")) {
    const Json& m = args["mode"];
    std::optional<std::uint32_t> mode;
    if (m.is_string()) {
      const std::string t = m;
      if (!t.empty() && t.size() <= 5 && t.find_first_not_of("01234567") == std::string::npos) {
        mode = static_cast<std::uint32_t>(std::stoul(t, nullptr, 8));
      }
    }
    if (!mode || *mode > 07777) {
      return MakeError(ErrorCode::kInvalidArgument, "`mode` must be octal permission bits as a string, such as \"0644\"");
    }
    call.write.mode = mode;
  }
  if (args.contains("content")) {
    if (!args["content"].is_string()) return MakeError(ErrorCode::kInvalidArgument, "`content` must be a string");
    const std::string content = args["content"];
    if (encoding == "base64") {
      auto bytes = core::Base64Decode(content);
      if (!bytes) return MakeError(ErrorCode::kInvalidArgument, "`content` is not valid base64 (encoding \"base64\")");
      call.content = std::move(*bytes);
    } else if (encoding == "utf-8") {
      call.content = content;
    } else {
      return MakeError(ErrorCode::kInvalidArgument, "`encoding` must be \"utf-8\" or \"base64\"");
    }
  } else if (args.contains("encoding")) {
    return MakeError(ErrorCode::kInvalidArgument, "`encoding` describes `content`, which is missing");
  }
  return call;
}

ToolResult FileTool(gateway::Gateway& gw, ToolContext& ctx, const Json& args) {
  ToolResult out;
  auto call = ParseFileArguments(args);
  if (!call) {
    gw.AuditMalformed(ctx.actor, "file", args, call.error().message);
    out.is_error = true;
    out.content.push_back(TextBlock("file refused: " + call.error().message));
    return out;
  }
  std::optional<ElicitationConfirmer> human;
  std::optional<InputRequiredConfirmer> deferred;
  gateway::Confirmer* confirmer = ConfirmerFor(gw, ctx, human, deferred);
  auto report = gw.File(ctx.actor, *call, ctx.cancel, confirmer);
  const std::string summary = gateway::FileReportText(report);
  ctx.session.Log(report.error ? LogLevel::kWarning : LogLevel::kInfo, "labgate.file",
                  Json{{"target", report.target}, {"actionId", report.action_id}, {"summary", core::Clip(summary, 400)}},
                  ctx.request_id);
  out.structured = gateway::FileReportJson(report);
  out.is_error = report.error.has_value();
  const std::string protocol = ctx.input ? std::string(kModernProtocolVersions[0]) : ctx.session.protocol_version();
  if (report.data && !report.text) {
    out.content.push_back(Json{{"type", "resource"},
                               {"resource",
                                {{"uri", "labgate://actions/" + report.action_id},
                                 {"mimeType", "application/octet-stream"},
                                 {"blob", core::Base64Encode(report.data->bytes)}}}});
  }
  if (report.artifact) {
    const std::string uri = report.artifact->Uri();
    if (protocol < "2025-06-18") {
      out.content.push_back(TextBlock("read the file with resources/read " + uri));
    } else {
      out.content.push_back(Json{{"type", "resource_link"},
                                 {"uri", uri},
                                 {"name", std::string(core::Basename(report.path))},
                                 {"mimeType", report.artifact->mime_type},
                                 {"size", report.artifact->bytes},
                                 {"description", report.path + " on " + report.target + ", sha256 " + report.artifact->sha256}});
    }
  }
  std::string text = summary;
  for (const auto& [key, value] : args.items()) {
    if (ApprovalLookingKeys().count(key)) {
      text += "\nnote: the `" + key + "` argument was ignored: only a human approves actions";
    }
  }
  out.content.push_back(TextBlock(text));
  return out;
}

Json FileInputSchema() {
  Json props = {
      {"target", {{"type", "string"}, {"description", "One target id from `targets` that offers file."}}},
      {"op", {{"type", "string"}, {"enum", {"read", "stat", "list", "get", "put"}},
              {"description", "read: text (or bytes) from offset/length; stat: one path; list: a directory; get: the "
                              "whole file kept as an artifact (a resource_link); put: write a file atomically."}}},
      {"path", {{"type", "string"}, {"description", "An absolute path or ~/...; symlinks are resolved on the target "
                                                    "before policy judges it, and never followed when writing."}}},
      {"offset", {{"type", "integer"}, {"minimum", 0}, {"description", "read: first byte (default 0)."}}},
      {"length", {{"type", "integer"}, {"minimum", 1}, {"maximum", gateway::kFileReadMaxBytes},
                  {"description", "read: bytes to return (default 65536)."}}},
      {"content", {{"type", "string"}, {"description", "put: the new content (see encoding)."}}},
      {"encoding", {{"type", "string"}, {"enum", {"utf-8", "base64"}}, {"default", "utf-8"}}},
      {"fromArtifact", {{"type", "string"}, {"description", "put: write the bytes of a labgate://artifacts/ID instead of content."}}},
      {"mode", {{"type", "string"}, {"pattern", "^[0-7]{3,5}$"}, {"description", "put: octal permissions; default: keep the old file's, else 0644."}}},
      {"createOnly", {{"type", "boolean"}, {"description", "put: refuse if the path exists."}}},
      {"overwrite", {{"type", "boolean"}, {"default", true}, {"description", "put: false refuses an existing file."}}},
      {"expectedSha256", {{"type", "string"}, {"description", "put: the SHA-256 the current content must have (from an "
                                                              "earlier read or get); \"\" means the file must not exist."}}},
      {"maxEntries", {{"type", "integer"}, {"minimum", 1}, {"description", "list: at most this many entries (default 1000)."}}},
      {"sudo", {{"type", "boolean"}, {"description", "put: write as root through sudo (SSH hosts whose sudo password the "
                                                     "operator configured); privileged: a human confirms unless the "
                                                     "target's mode is full, daily-use targets refuse it."}}},
      {"timeoutMs", {{"type", "integer"}, {"minimum", 1}}}};
  return Json{{"type", "object"}, {"properties", props}, {"required", {"target", "op", "path"}}, {"additionalProperties", false}};
}

Json FileOutputSchema() {
  Json props = {{"target", {{"type", "string"}}}, {"via", {{"type", "string"}}},    {"action", {{"type", "string"}}},
                {"actionId", {{"type", "string"}}}, {"path", {{"type", "string"}}},  {"decision", {{"type", "string"}}},
                {"rule", {{"type", "string"}}},    {"error", Nullable("string")},    {"tookMs", {{"type", "integer"}}},
                {"stat", {{"type", "object"}}},    {"entries", {{"type", "array"}, {"items", {{"type", "object"}}}}},
                {"truncated", {{"type", "boolean"}}}, {"offset", {{"type", "integer"}}}, {"bytes", {{"type", "integer"}}},
                {"size", {{"type", "integer"}}},   {"text", {{"type", "boolean"}}},  {"more", {{"type", "boolean"}}},
                {"sha256", {{"type", "string"}}},  {"uri", {{"type", "string"}}},    {"mimeType", {{"type", "string"}}},
                {"created", {{"type", "boolean"}}}, {"mode", {{"type", "integer"}}}, {"previousSha256", Nullable("string")},
                {"approvalId", {{"type", "string"}}}, {"approver", {{"type", "string"}}}};
  return Json{{"type", "object"}, {"properties", props}, {"required", {"target", "action", "actionId", "error"}}};
}

ToolResult TargetsTool(gateway::Gateway& gw, const Json& args) {
  ToolResult out;
  std::vector<std::string> selectors;
  for (const auto& [key, value] : args.items()) {
    if (key != "selector") {
      out.is_error = true;
      out.content.push_back(TextBlock("unknown argument '" + key + "' (targets accepts only `selector`)"));
      return out;
    }
  }
  if (args.contains("selector")) {
    if (!args["selector"].is_string()) {
      out.is_error = true;
      out.content.push_back(TextBlock("`selector` must be a string: an id, group:NAME, tag:NAME or *"));
      return out;
    }
    selectors.push_back(args["selector"]);
  }
  auto views = gw.Targets(selectors);
  if (!views) {
    out.is_error = true;
    out.content.push_back(TextBlock(views.error().message));
    return out;
  }
  out.structured = Json{{"targets", gateway::TargetsJson(*views)}};
  out.content.push_back(TextBlock(gateway::TargetsText(*views)));
  return out;
}

}  // namespace

std::vector<ToolDefinition> MakeTools(gateway::Gateway& gw) {
  std::vector<ToolDefinition> tools;
  tools.push_back(ToolDefinition{
      Json{{"name", "run"},
           {"title", "Run a command on homelab targets"},
           {"description",
            "Runs a command on one or more targets from the inventory (see `targets`) and returns exit code, "
            "stdout and stderr per target. An argv array runs without a shell; a string runs via sh -c. The "
            "deadline (timeoutMs, default from the inventory) stops the whole process group. Every call is "
            "written to the audit log before it runs. Policy classifies the command (read-only, mutating, "
            "destructive, privileged); risky commands need a human's yes: through an elicitation form when this "
            "client supports it, otherwise the result carries an approvalId the operator approves with "
            "`labgate approvals approve ID`, after which the same call runs once. dryRun shows the decision "
            "without running anything. Results of failed actions are escalated with read-only diagnostics."},
           {"inputSchema", RunInputSchema()},
           {"outputSchema", RunOutputSchema()},
           {"execution", {{"taskSupport", "optional"}}},
           {"annotations",
            {{"title", "Run a command"},
             {"readOnlyHint", false},
             {"destructiveHint", true},
             {"idempotentHint", false},
             {"openWorldHint", true}}}},
      [&gw](ToolContext& ctx, const Json& args) { return RunTool(gw, ctx, args); }});
  const std::pair<const char*, const char*> kCaptures[] = {
      {"screen", "Takes a PNG snapshot of a target's screen, or records an mp4 (durationMs up to 60 s, fps). The "
                 "image comes back as image content; a video as an embedded resource up to 8 MiB, otherwise as a "
                 "resource_link to read with resources/read. Progress is reported while recording; cancelling "
                 "stops the recorder."},
      {"camera", "Takes a JPEG photo with a target's camera (facing, quality, maxWidth, deviceId), records an mp4 "
                 "clip (durationMs), or lists the camera devices (action list)."},
      {"location", "Reads a target's position (gpsd, Termux or a configured fixed position): lat, lon, "
                   "accuracyMeters, altitudeMeters, speedMps, headingDeg, timestamp, source. desiredAccuracy "
                   "precise waits for a 3D fix; maxAgeMs accepts a recent fix from the gateway's cache."}};
  for (const auto& [name, description] : kCaptures) {
    const std::string capability = name;
    tools.push_back(ToolDefinition{
        Json{{"name", capability},
             {"title", capability == "location" ? "Locate a device" : "Capture the " + capability + " of a target"},
             {"description", std::string(description) + " Only targets that offer " + capability +
                                 " and that policy approves may be used; every call is audited."},
             {"inputSchema", CaptureInputSchema(capability)},
             {"outputSchema", CaptureOutputSchema(capability)},
             // A recording may outlast a client's request timeout; a location fix is quick.
             {"execution", {{"taskSupport", capability == "location" ? "forbidden" : "optional"}}},
             {"annotations",
              {{"title", capability},
               {"readOnlyHint", true},
               {"destructiveHint", false},
               {"idempotentHint", false},
               {"openWorldHint", true}}}},
        [&gw, capability](ToolContext& ctx, const Json& args) { return CaptureTool(gw, ctx, capability, args); }});
  }
  tools.push_back(ToolDefinition{
      Json{{"name", "file"},
           {"title", "Read and write files on homelab targets"},
           {"description",
            "Reads (text by offset/length), stats, lists, fetches (get: the whole file kept as an artifact and "
            "returned as a resource_link) and writes (put: atomically, keeping mode and owner, optionally only if "
            "the current content still has expectedSha256) files on one target: local, SSH hosts over SFTP, and "
            "paired nodes. "
            "Paths are normalised and symlinks resolved on the target before [policies.file] judges them: private "
            "keys and credential stores are refused, writes into system paths (/etc, /boot, /usr, unit files, "
            "authorized_keys, crontabs) need a human's yes, and labgate's own files are never touched. Every call "
            "is audited with sizes and SHA-256 digests, never content."},
           {"inputSchema", FileInputSchema()},
           {"outputSchema", FileOutputSchema()},
           {"execution", {{"taskSupport", "optional"}}},
           {"annotations",
            {{"title", "Files"},
             {"readOnlyHint", false},
             {"destructiveHint", true},
             {"idempotentHint", false},
             {"openWorldHint", true}}}},
      [&gw](ToolContext& ctx, const Json& args) { return FileTool(gw, ctx, args); }});
  tools.push_back(ToolDefinition{
      Json{{"name", "targets"},
           {"title", "List homelab targets"},
           {"description",
            "Lists every target labgate can act on (the built-in `local`, SSH hosts and paired nodes) with kind, "
            "online state, capabilities, groups, device, owner and purpose. Optional `selector` narrows the list."},
           {"inputSchema",
            {{"type", "object"},
             {"properties",
              {{"selector", {{"type", "string"}, {"description", "An id, group:NAME, tag:NAME or *."}}}}},
             {"additionalProperties", false}}},
           {"outputSchema", TargetsOutputSchema()},
           {"annotations",
            {{"title", "List targets"},
             {"readOnlyHint", true},
             {"destructiveHint", false},
             {"idempotentHint", true},
             {"openWorldHint", false}}}},
      [&gw](ToolContext&, const Json& args) { return TargetsTool(gw, args); }});
  return tools;
}

void BindToGateway(Session& session, gateway::Gateway& gateway) {
  session.set_auditor([&gateway](const std::string& event, const audit::Actor& actor, Json details) {
    gateway.AuditEvent(event, actor, "", std::move(details));
  });
  session.set_task_after([&gateway] { return std::chrono::milliseconds(gateway.inventory()->gateway.task_after_ms); });
}

}  // namespace labgate::mcp
