// Gateway::File: read, stat, list, get and put through the guardrail pipeline (DESIGN §3).
#include <algorithm>

#include "core/base64.h"
#include "core/hashing.h"
#include "core/text.h"
#include "gateway/gateway.h"
#include "inventory/selector.h"
#include "policy/file_policy.h"

namespace labgate::gateway {
namespace {

using core::ErrorCode;
using core::MakeError;
using std::chrono::milliseconds;
using Verdict = policy::CommandDecision::Verdict;

constexpr std::string_view kFileOps[] = {"read", "stat", "list", "get", "put"};

int Severity(Verdict v) { return v == Verdict::kRefuse ? 2 : v == Verdict::kConfirm ? 1 : 0; }

// What a human is shown and what an approval binds.
std::string DescribeFile(const FileCall& call, const std::string& path, std::uint64_t size, const std::string& sha256) {
  if (call.op != "put") return "file " + call.op + " " + path;
  std::string out = "file put " + path + " (" + std::to_string(size) + " bytes, sha256 " + sha256.substr(0, 16) + "...";
  if (call.write.mode) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", *call.write.mode);
    out += ", mode " + std::string(mode);
  }
  if (call.write.create_only) out += ", create only";
  if (call.sudo) out += ", as root through sudo";
  return out + ")";
}

audit::Json InfoSummary(const capabilities::FileInfo& info) {
  return {{"type", info.type}, {"size", info.size}, {"mode", info.mode}, {"owner", info.owner}};
}

}  // namespace

nlohmann::json EncodeFileCall(const FileCall& c) {
  nlohmann::json j = {{"selector", c.selector}, {"op", c.op},         {"path", c.path},
                      {"offset", c.offset},     {"length", c.length}, {"maxEntries", c.max_entries},
                      {"createOnly", c.write.create_only}, {"overwrite", c.write.overwrite}};
  if (c.content) j["content"] = core::Base64Encode(*c.content);
  if (!c.from_artifact.empty()) j["fromArtifact"] = c.from_artifact;
  if (c.write.mode) j["mode"] = *c.write.mode;
  if (c.write.expected_sha256) j["expectedSha256"] = *c.write.expected_sha256;
  if (c.timeout_ms) j["timeoutMs"] = *c.timeout_ms;
  if (c.sudo) j["sudo"] = true;
  return j;
}

core::Result<FileCall> DecodeFileCall(const nlohmann::json& j) {
  try {
    FileCall c;
    c.selector = j.at("selector").get<std::string>();
    c.op = j.at("op").get<std::string>();
    c.path = j.at("path").get<std::string>();
    c.offset = j.value("offset", std::uint64_t{0});
    c.length = j.value("length", std::uint64_t{0});
    c.max_entries = j.value("maxEntries", std::size_t{1000});
    c.write.create_only = j.value("createOnly", false);
    c.write.overwrite = j.value("overwrite", true);
    if (j.contains("content")) {
      auto bytes = core::Base64Decode(j["content"].get<std::string>());
      if (!bytes) return bytes.error();
      c.content = std::move(*bytes);
    }
    c.from_artifact = j.value("fromArtifact", "");
    if (j.contains("mode")) c.write.mode = j["mode"].get<std::uint32_t>();
    if (j.contains("expectedSha256")) c.write.expected_sha256 = j["expectedSha256"].get<std::string>();
    if (j.contains("timeoutMs")) c.timeout_ms = j["timeoutMs"].get<std::int64_t>();
    c.sudo = j.value("sudo", false);
    return c;
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInvalidArgument, std::string("malformed file call: ") + e.what());
  }
}

FileReport Gateway::File(const audit::Actor& actor, const FileCall& call, const core::CancelToken& cancel,
                         Confirmer* confirmer) {
  FileReport report;
  report.action = "file." + call.op;
  report.action_id = audit::NewActionId();
  const auto snapshot = inventory_.Current();  // held to the end: the target and policy live in it
  const inventory::Inventory& inv = *snapshot;
  const auto& gw = inv.gateway;

  // The audit payload: what was asked, never the content (its size and digest instead).
  audit::Json payload = {{"op", call.op}, {"path", core::Clip(call.path, 4096)}};
  std::string content_storage;
  const std::string* content = nullptr;
  if (call.op == "read") payload["offset"] = call.offset, payload["length"] = call.length;
  if (call.write.mode) payload["mode"] = *call.write.mode;
  if (call.write.create_only) payload["createOnly"] = true;
  if (!call.write.overwrite) payload["overwrite"] = false;
  if (call.write.expected_sha256) payload["expectedSha256"] = *call.write.expected_sha256;
  if (!call.from_artifact.empty()) payload["fromArtifact"] = call.from_artifact;
  if (call.sudo) payload["sudo"] = true;

  auto refuse = [&](core::Error error, const std::string& rule) {
    report.decision = "refused";
    report.rule = rule;
    report.reason = error.message;
    audit::Refusal refusal{report.action_id, actor, {report.target.empty() ? call.selector : report.target},
                           report.action, payload, {false, rule, error.message, report.risk}, error.message};
    (void)audit_.Append(audit::EncodeRefusal(refusal));
    error.message = "refused by " + rule + ": " + error.message;
    report.error = std::move(error);
    return report;
  };
  auto bad = [&](const std::string& why) { return refuse(MakeError(ErrorCode::kInvalidArgument, why), "input.arguments"); };

  if (std::find(std::begin(kFileOps), std::end(kFileOps), call.op) == std::end(kFileOps)) {
    return bad("op '" + core::Clip(call.op, 40) + "' is not one of read, stat, list, get, put");
  }
  const bool write = call.op == "put";
  if (write) {
    if (call.content.has_value() == !call.from_artifact.empty()) {
      return bad("put needs exactly one of content and fromArtifact");
    }
    if (!call.from_artifact.empty()) {
      if (!artifacts_) return bad("fromArtifact needs the artifact store, which this labgate process does not keep");
      auto id = ArtifactStore::IdFromUri(call.from_artifact);
      if (!id) return bad("fromArtifact must be a labgate://artifacts/ID URI, got " + core::Clip(call.from_artifact, 120));
      auto art = artifacts_->Read(*id);
      if (!art) return refuse(art.error(), "input.fromArtifact");
      content_storage = std::move(art->second);
      content = &content_storage;
    } else {
      content = &*call.content;
    }
    if (static_cast<std::int64_t>(content->size()) > inv.file_max_write_bytes) {
      return refuse(MakeError(ErrorCode::kInvalidArgument,
                              "the content is " + std::to_string(content->size()) + " bytes, more than [policies.file] "
                                                                                    "max_write_bytes (" +
                                  std::to_string(inv.file_max_write_bytes) + ")"),
                    "policies.file.max_write_bytes");
    }
    payload["size"] = content->size();
    payload["sha256"] = core::Sha256Hex(*content);
  } else if (call.content || !call.from_artifact.empty()) {
    return bad("content and fromArtifact belong to put only");
  }
  if (call.op != "put" && (call.write.mode || call.write.create_only || call.write.expected_sha256 || !call.write.overwrite)) {
    return bad("mode, createOnly, overwrite and expectedSha256 belong to put only");
  }
  if (call.op != "read" && (call.offset || call.length)) return bad("offset and length belong to read only");
  if (call.sudo && !write) return bad("sudo belongs to put only (reads run as the login labgate uses)");
  if (call.op == "read" && call.length > kFileReadMaxBytes) {
    return bad("length " + std::to_string(call.length) + " is above the " + std::to_string(kFileReadMaxBytes) +
               " bytes one read returns; read in ranges, or use get for the whole file");
  }
  if (call.write.expected_sha256 && !call.write.expected_sha256->empty() &&
      (call.write.expected_sha256->size() != 64 ||
       call.write.expected_sha256->find_first_not_of("0123456789abcdef") != std::string::npos)) {
    return bad("expectedSha256 must be 64 lowercase hex digits (the digest file read or stat reported), or \"\" for "
               "\"the file must not exist\"");
  }
  if (call.write.mode && *call.write.mode > 07777) return bad("mode must be permission bits, 0 to 07777");
  const std::int64_t timeout_ms = call.timeout_ms.value_or(gw.default_timeout_ms);
  if (timeout_ms <= 0 || timeout_ms > gw.max_timeout_ms) {
    return refuse(MakeError(ErrorCode::kInvalidArgument, "timeoutMs " + std::to_string(timeout_ms) +
                                                             " must be above 0 and at most [gateway] max_timeout_ms " +
                                                             std::to_string(gw.max_timeout_ms)),
                  "gateway.max_timeout_ms");
  }

  auto targets = inventory::Resolve(inv, {call.selector});
  if (!targets) return refuse(targets.error(), "inventory.resolve");
  if (targets->size() != 1) {
    return refuse(MakeError(ErrorCode::kInvalidArgument,
                            "'" + call.selector + "' matches " + std::to_string(targets->size()) +
                                " targets; file works on one target at a time, so name one id"),
                  "input.target");
  }
  const inventory::Target& target = *targets->front();
  report.target = target.id;
  report.via = PathName(target);

  // Scoping before anything reaches the target.
  const policy::Decision scope = policy::DecideCapability(inv, target, "file");
  if (!scope.allowed) return refuse(MakeError(ErrorCode::kRefused, scope.reason), scope.rule);
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
    if (state.granted && std::find(state.granted->begin(), state.granted->end(), "file") == state.granted->end()) {
      return refuse(MakeError(ErrorCode::kRefused, "node " + target.id +
                                                       " was paired without the file capability; pair it again with "
                                                       "`labgate pair new --node " + target.id + " --caps run,file`"),
                    "pairing.capabilities");
    }
  }

  const auto started = clock_.SteadyNow();
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(timeout_ms);
  auto files = executor->Files(target, deadline, cancel);
  if (!files) return refuse(files.error(), "gateway.transport");
  capabilities::FileAccessor& fs = **files;

  // The path as policy sees it: `~` and `..` resolved against the target, then every symlink
  // resolved there. Both spellings are judged and the stricter verdict holds, so neither a
  // symlink nor `..` turns a refused path into an admitted one.
  std::string home;
  if (auto h = fs.Home()) home = *h;
  auto normal = policy::NormalizeFilePath(call.path, home);
  if (!normal) return refuse(normal.error(), "input.path");
  const policy::FileAccess access = !write ? policy::FileAccess::kRead
                                    : call.sudo ? policy::FileAccess::kWriteAsRoot
                                                : policy::FileAccess::kWrite;
  policy::FileDecision decision = policy::DecideFile(inv, target, access, *normal, home);
  std::string path = *normal;
  if (decision.verdict != Verdict::kRefuse) {
    auto real = fs.RealPath(*normal);
    if (!real) {
      // Nothing to act on (or nothing reachable): refused before any intent, with the reason.
      report.path = *normal;
      return refuse(real.error(), real.error().code == ErrorCode::kRefused ? "builtin:symlink" : "target.path");
    }
    path = *real;
    if (path != *normal) {
      policy::FileDecision resolved = policy::DecideFile(inv, target, access, path, home);
      if (Severity(resolved.verdict) >= Severity(decision.verdict)) decision = resolved;
    }
  }
  report.path = path;
  payload["resolvedPath"] = path;
  report.rule = decision.rule;
  report.reason = decision.reason;
  report.risk = policy::RiskName(decision.risk.risk);
  if (decision.verdict == Verdict::kRefuse) return refuse(MakeError(ErrorCode::kRefused, decision.reason), decision.rule);

  report.decision = "run";
  if (decision.verdict == Verdict::kConfirm) {
    ApprovalBinding binding;
    binding.targets = {target.id};
    audit::Json bound = {{"op", call.op}, {"path", path}};
    for (const char* key : {"size", "sha256", "mode", "createOnly", "overwrite", "expectedSha256", "offset", "length", "sudo"}) {
      if (payload.contains(key)) bound[key] = payload[key];
    }
    binding.command = {{"file", bound}};
    ConfirmQuestion question;
    question.targets = binding.targets;
    question.command = DescribeFile(call, path, content ? content->size() : 0,
                                    content ? payload["sha256"].get<std::string>() : std::string());
    question.risk = report.risk;
    question.rule = decision.rule;
    question.reason = decision.reason;
    const Confirmation c = ConfirmAction(
        actor, binding, question,
        [&](const std::string& rule, const std::string& why) {
          audit::Refusal refusal{audit::NewActionId(), actor, {target.id}, report.action, payload,
                                 {false, rule, why, report.risk}, why};
          (void)audit_.Append(audit::EncodeRefusal(refusal));
        },
        confirmer, cancel);
    report.decision = c.decision;
    report.approver = c.approver;
    report.approval_id = c.approval_id;
    if (c.error) {
      report.error = MakeError(ErrorCode::kRefused, *c.error);
      return report;
    }
  }

  audit::Intent intent;
  intent.action_id = report.action_id;
  intent.actor = actor;
  intent.target = target.id;
  intent.path = report.via;
  intent.action = report.action;
  intent.payload = payload;
  intent.decision = {true, report.rule, report.reason, report.risk};
  if (!report.approver.empty()) intent.approver = report.approver;
  if (auto ok = audit_.Append(audit::EncodeIntent(intent)); !ok) {
    report.error = MakeError(ErrorCode::kIo, "not done: the audit log could not record the intent (" +
                                                 ok.error().message + "); fix the audit log (" + audit_.Describe() +
                                                 ") and retry");
    return report;
  }

  audit::Outcome record;
  record.action_id = report.action_id;
  record.target = target.id;
  record.path = report.via;
  record.action = report.action;
  audit::Json facts = {{"path", path}};
  std::optional<core::Error> failure;
  if (call.op == "stat") {
    auto info = fs.Stat(path);
    if (!info) {
      failure = info.error();
    } else {
      facts["stat"] = InfoSummary(*info);
      report.info = std::move(*info);
    }
  } else if (call.op == "list") {
    bool truncated = false;
    auto entries = fs.List(path, std::max<std::size_t>(1, call.max_entries), &truncated);
    if (!entries) {
      failure = entries.error();
    } else {
      facts["entries"] = entries->size();
      facts["truncated"] = truncated;
      report.entries = std::move(*entries);
      report.truncated = truncated;
    }
  } else if (call.op == "read" || call.op == "get") {
    const bool whole = call.op == "get";
    const std::uint64_t length = whole ? 0 : (call.length ? call.length : kFileReadDefaultBytes);
    const std::uint64_t cap = whole ? static_cast<std::uint64_t>(inv.file_max_read_bytes) : kFileReadMaxBytes;
    auto data = fs.Read(path, call.offset, whole ? 0 : length, whole ? cap : length);
    if (!data) {
      failure = data.error();
    } else {
      facts["size"] = data->file_size;
      facts["offset"] = data->offset;
      facts["bytes"] = data->bytes.size();
      record.stdout_bytes = data->bytes.size();
      record.output_digest = "sha256:" + (data->sha256 ? *data->sha256 : core::Sha256Hex(data->bytes));
      if (data->sha256) facts["sha256"] = *data->sha256;
      const bool admitted_by_rule = decision.rule.find("read_allow") != std::string::npos;
      if (!admitted_by_rule && policy::HoldsPrivateKey(data->bytes)) {
        failure = MakeError(ErrorCode::kRefused,
                            path + " holds a private key; labgate does not hand keys to the caller unless an operator "
                                   "admits the path with a read allow rule ([policies.file] read_allow or the "
                                   "target's file_read_allow)");
        facts["withheld"] = "private key";
      } else if (whole) {
        if (!artifacts_) {
          failure = MakeError(ErrorCode::kUnavailable, "get needs the artifact store, which this labgate process does not keep");
        } else {
          // The type from the first 64 KiB (less a character the cut may have split).
          const std::string_view head = std::string_view(data->bytes).substr(0, 64 * 1024);
          const bool text = capabilities::LooksLikeText(
              head.size() < data->bytes.size() ? head.substr(0, head.size() - std::min<std::size_t>(head.size(), 3)) : head);
          auto saved = artifacts_->Save(data->bytes, text ? "text/plain" : "application/octet-stream", target.id,
                                        report.action, data->sha256.value_or(""));
          if (!saved) {
            failure = MakeError(saved.error().code, "the file could not be kept as an artifact: " + saved.error().message);
          } else {
            report.artifact = *saved;
            record.artifact = saved->Uri();
          }
        }
      } else {
        report.truncated = data->offset + data->bytes.size() < data->file_size;
        report.text = capabilities::LooksLikeText(data->bytes);
        if (report.text) data->bytes = redact_(data->bytes);
        report.data = std::move(*data);
      }
    }
  } else {
    capabilities::WriteOptions options = call.write;
    options.content_sha256 = payload["sha256"].get<std::string>();
    options.as_root = call.sudo;
    auto written = fs.Write(path, *content, options);
    if (!written) {
      failure = written.error();
    } else {
      facts["created"] = written->created;
      facts["size"] = written->size;
      facts["sha256"] = written->sha256;
      facts["mode"] = written->mode;
      if (written->previous_sha256) {
        facts["previousSha256"] = *written->previous_sha256;
        facts["previousSize"] = written->previous_size;
      }
      record.output_digest = "sha256:" + written->sha256;
      report.written = std::move(*written);
    }
  }
  files->reset();  // the session goes back to its pool before the result is written
  report.duration_ms = std::chrono::duration_cast<milliseconds>(clock_.SteadyNow() - started).count();
  record.duration_ms = report.duration_ms;
  if (failure) {
    failure->message = redact_(failure->message);
    record.error = failure->message;
    record.cancelled = failure->code == ErrorCode::kCancelled;
    record.timed_out = failure->code == ErrorCode::kTimeout;
    report.error = std::move(*failure);
  } else {
    record.exit_code = 0;
  }
  record.file = std::move(facts);
  if (auto ok = audit_.Append(audit::EncodeOutcome(record), audit::Durability::kSoon); !ok && !report.error) {
    report.error = MakeError(ErrorCode::kIo, "the result could not be written to the audit log: " + ok.error().message);
  }
  return report;
}

}  // namespace labgate::gateway
