#include "gateway/views.h"

#include <algorithm>

#include "core/clock.h"
#include "core/text.h"

namespace labgate::gateway {
namespace {

using Json = nlohmann::json;

template <typename T>
Json OrNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

std::string Indent(const std::string& text) {
  std::string out = "  ";
  for (std::size_t i = 0; i < text.size(); ++i) {
    out.push_back(text[i]);
    if (text[i] == '\n' && i + 1 < text.size()) out += "  ";
  }
  if (!out.empty() && out.back() != '\n') out.push_back('\n');
  return out;
}

}  // namespace

Json TargetRunResultJson(const TargetRunResult& r) {
  return Json{{"target", r.target},         {"via", r.via},
              {"exitCode", OrNull(r.exit_code)}, {"signal", OrNull(r.signal)},
              {"timedOut", r.timed_out},        {"stopUnconfirmed", r.stop_unconfirmed},
              {"stdout", r.stdout_text},
              {"stderr", r.stderr_text},        {"truncated", r.truncated},
              {"durationMs", r.duration_ms},    {"error", OrNull(r.error)},
              {"actionId", r.action_id},        {"decision", r.decision},
              {"rule", r.rule},                 {"reason", r.reason},
              {"risk", r.risk},                 {"approver", r.approver.empty() ? Json(nullptr) : Json(r.approver)},
              {"approvalId", r.approval_id.empty() ? Json(nullptr) : Json(r.approval_id)},
              {"retries", r.retries},           {"escalated", r.escalated},
              {"diagnostics", [&] {
                 Json list = Json::array();
                 for (const auto& d : r.diagnostics) {
                   list.push_back({{"command", d.command}, {"exitCode", OrNull(d.exit_code)}, {"output", d.output},
                                   {"error", OrNull(d.error)}});
                 }
                 return list;
               }()}};
}

Json RunReportJson(const RunReport& report) {
  int ok = 0, failed = 0, timed_out = 0, errors = 0;
  Json results = Json::array();
  for (const auto& r : report.results) {
    if (r.ok()) {
      ++ok;
    } else if (r.timed_out) {
      ++timed_out;
    } else if (r.error) {
      ++errors;
    } else {
      ++failed;
    }
    results.push_back(TargetRunResultJson(r));
  }
  Json out = {{"summary",
               {{"total", report.results.size()}, {"ok", ok}, {"failed", failed}, {"timedOut", timed_out}, {"errors", errors}}},
              {"results", results}};
  out["error"] = report.error ? Json(report.error->message) : Json(nullptr);
  out["dryRun"] = report.dry_run;
  return out;
}

core::Result<RunReport> RunReportFromJson(const Json& j) {
  RunReport report;
  try {
    report.dry_run = j.value("dryRun", false);
    if (!j.at("error").is_null()) {
      report.error = core::MakeError(core::ErrorCode::kInvalidArgument, j.at("error").get<std::string>());
    }
    for (const auto& r : j.at("results")) {
      TargetRunResult t;
      t.target = r.at("target").get<std::string>();
      t.via = r.at("via").get<std::string>();
      if (!r.at("exitCode").is_null()) t.exit_code = r.at("exitCode").get<int>();
      if (!r.at("signal").is_null()) t.signal = r.at("signal").get<std::string>();
      t.timed_out = r.at("timedOut").get<bool>();
      t.stop_unconfirmed = r.value("stopUnconfirmed", false);
      t.stdout_text = r.at("stdout").get<std::string>();
      t.stderr_text = r.at("stderr").get<std::string>();
      t.truncated = r.at("truncated").get<bool>();
      t.duration_ms = r.at("durationMs").get<std::int64_t>();
      if (!r.at("error").is_null()) t.error = r.at("error").get<std::string>();
      t.action_id = r.at("actionId").get<std::string>();
      t.decision = r.value("decision", "");
      t.rule = r.value("rule", "");
      t.reason = r.value("reason", "");
      t.risk = r.value("risk", "");
      if (r.contains("approver") && r["approver"].is_string()) t.approver = r["approver"].get<std::string>();
      if (r.contains("approvalId") && r["approvalId"].is_string()) t.approval_id = r["approvalId"].get<std::string>();
      t.retries = r.value("retries", 0);
      t.escalated = r.value("escalated", false);
      for (const auto& d : r.value("diagnostics", Json::array())) {
        DiagnosticResult diag;
        diag.command = d.value("command", "");
        if (d.contains("exitCode") && d["exitCode"].is_number_integer()) diag.exit_code = d["exitCode"].get<int>();
        diag.output = d.value("output", "");
        if (d.contains("error") && d["error"].is_string()) diag.error = d["error"].get<std::string>();
        t.diagnostics.push_back(std::move(diag));
      }
      report.results.push_back(std::move(t));
    }
  } catch (const std::exception& e) {
    return core::MakeError(core::ErrorCode::kIo, std::string("the gateway sent a malformed run report: ") + e.what());
  }
  return report;
}

std::string OneLineSummary(const TargetRunResult& r) {
  std::string s = r.target + ": ";
  if (r.decision.rfind("dry-run:", 0) == 0) {
    const std::string verdict = r.decision.substr(8);
    const std::string what = verdict == "run" ? "would run" : verdict == "confirm" ? "would ask a human first" : "would be refused";
    return s + what + " (" + r.risk + "; " + r.rule + "): " + r.reason;
  }
  const std::string stop = r.stop_unconfirmed ? "NOT confirmed stopped: it may still be running" : "process group stopped";
  if (r.timed_out) return s + "timed out after " + std::to_string(r.duration_ms) + " ms (" + stop + ")";
  if (r.cancelled) return s + "cancelled (" + stop + ")";
  if (r.error && !r.exit_code && !r.signal) return s + *r.error;
  if (r.signal) s += "killed by signal " + *r.signal;
  else if (r.exit_code) s += "exit " + std::to_string(*r.exit_code);
  s += " in " + std::to_string(r.duration_ms) + " ms";
  if (r.truncated) s += " (output truncated)";
  if (r.error) s += "; " + *r.error;
  return s;
}

std::string DiagnosticsText(const TargetRunResult& r) {
  if (!r.escalated) return "";
  std::string text = r.target + ": escalated for a person to review";
  text += r.diagnostics.empty() ? "\n" : "; diagnostics:\n";
  for (const auto& d : r.diagnostics) {
    if (d.command.empty()) {
      text += "  " + d.error.value_or("") + "\n";
      continue;
    }
    text += "  $ " + d.command + (d.exit_code ? "  (exit " + std::to_string(*d.exit_code) + ")" : "") + "\n";
    if (d.error) text += "    " + *d.error + "\n";
    if (!d.output.empty()) text += Indent(Indent(d.output));
  }
  return text;
}

std::string RunReportText(const RunReport& report) {
  if (report.error) return "run refused: " + report.error->message;
  std::string text;
  if (report.dry_run) {
    text += "dry run: nothing was executed\n";
    for (const auto& r : report.results) text += OneLineSummary(r) + "\n";
    return text;
  }
  if (report.results.size() == 1) {
    const auto& r = report.results[0];
    text += OneLineSummary(r) + "\n";
    if (!r.approver.empty()) text += "confirmed by " + r.approver + "\n";
    if (!r.stdout_text.empty()) text += "stdout:\n" + Indent(r.stdout_text);
    if (!r.stderr_text.empty()) text += "stderr:\n" + Indent(r.stderr_text);
    text += DiagnosticsText(r);
    return text;
  }
  Json summary = RunReportJson(report)["summary"];
  text += std::to_string(report.results.size()) + " targets: " + std::to_string(summary["ok"].get<int>()) + " ok, " +
          std::to_string(summary["failed"].get<int>()) + " failed, " + std::to_string(summary["timedOut"].get<int>()) +
          " timed out, " + std::to_string(summary["errors"].get<int>()) + " not run\n";
  // Targets that ended the same way with the same output are shown once.
  std::vector<std::vector<const TargetRunResult*>> groups;
  auto same = [](const TargetRunResult& a, const TargetRunResult& b) {
    return a.exit_code == b.exit_code && a.signal == b.signal && a.timed_out == b.timed_out &&
           a.cancelled == b.cancelled && a.error == b.error && a.stdout_text == b.stdout_text &&
           a.stderr_text == b.stderr_text;
  };
  for (const auto& r : report.results) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return same(*g.front(), r); });
    if (it == groups.end()) {
      groups.push_back({&r});
    } else {
      it->push_back(&r);
    }
  }
  for (const auto& g : groups) {
    const TargetRunResult& first = *g.front();
    std::string line = OneLineSummary(first);
    if (g.size() > 1) {
      std::string ids;
      std::int64_t slowest = 0;
      for (const auto* r : g) {
        ids += (ids.empty() ? "" : ", ") + r->target;
        slowest = std::max(slowest, r->duration_ms);
      }
      TargetRunResult shown = first;
      shown.target = ids;
      shown.duration_ms = slowest;
      line = OneLineSummary(shown) + " (slowest)";
    }
    text += line + "\n";
    if (!first.stdout_text.empty()) text += "stdout:\n" + Indent(first.stdout_text);
    if (!first.stderr_text.empty()) text += "stderr:\n" + Indent(first.stderr_text);
  }
  for (const auto& r : report.results) text += DiagnosticsText(r);
  return text;
}

Json TargetsJson(const std::vector<TargetView>& views) {
  Json out = Json::array();
  for (const auto& v : views) {
    const auto& t = *v.target;
    out.push_back(Json{{"id", t.id},
                       {"kind", inventory::TargetKindName(t.kind)},
                       {"online", OrNull(v.state.online)},
                       {"capabilities", t.capabilities},
                       {"groups", t.groups},
                       {"tags", t.tags},
                       {"device", t.device},
                       {"owner", t.owner},
                       {"purpose", t.purpose},
                       {"role", t.role},
                       {"address", t.address.empty() ? Json(nullptr) : Json(t.address + ":" + std::to_string(t.port))},
                       {"lastKeyRotation", OrNull(v.state.key_since)},
                       {"lastSeen", OrNull(v.state.last_seen)}});
  }
  return out;
}

std::string TargetsText(const std::vector<TargetView>& views) { return TargetsTextFromJson(TargetsJson(views)); }

std::string TargetsTextFromJson(const Json& targets) {
  std::vector<std::vector<std::string>> rows = {{"ID", "KIND", "ONLINE", "CAPABILITIES", "GROUPS", "DEVICE", "PURPOSE"}};
  for (const auto& t : targets) {
    std::string online = "unknown";
    if (t["online"].is_boolean()) {
      online = t["online"].get<bool>() ? "yes" : "no";
      if (!t["online"].get<bool>() && t.value("lastSeen", Json()).is_string()) {
        online += " (seen " + t["lastSeen"].get<std::string>() + ")";
      }
    }
    auto text = [&](const char* key) {
      std::string v = t.value(key, "");
      return v.empty() ? std::string("-") : v;
    };
    rows.push_back({t["id"].get<std::string>(), t["kind"].get<std::string>(), online,
                    core::Join(t["capabilities"].get<std::vector<std::string>>(), ",", "-"),
                    core::Join(t["groups"].get<std::vector<std::string>>(), ",", "-"), text("device"), text("purpose")});
  }
  return FormatTable(rows);
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

nlohmann::json CaptureReportJson(const CaptureReport& r) {
  nlohmann::json j = r.result ? r.result->info : nlohmann::json::object();
  j["target"] = r.target;
  j["via"] = r.via;
  j["action"] = r.action;
  j["actionId"] = r.action_id;
  j["decision"] = r.decision;
  j["rule"] = r.rule;
  j["error"] = r.error ? nlohmann::json(r.error->message) : nlohmann::json(nullptr);
  j["tookMs"] = r.duration_ms;
  if (!r.approval_id.empty()) j["approvalId"] = r.approval_id;
  if (!r.approver.empty()) j["approver"] = r.approver;
  if (r.result) {
    j["backend"] = r.result->backend;
    j["mimeType"] = r.result->mime_type;
  }
  if (r.artifact) j["uri"] = r.artifact->Uri();
  if (r.age_ms) {
    j["cached"] = true;
    j["ageMs"] = *r.age_ms;
  }
  return j;
}

nlohmann::json FileReportJson(const FileReport& r) {
  nlohmann::json j = {{"target", r.target},     {"via", r.via},           {"action", r.action},
                      {"actionId", r.action_id}, {"path", r.path},         {"decision", r.decision},
                      {"rule", r.rule},          {"tookMs", r.duration_ms},
                      {"error", r.error ? nlohmann::json(r.error->message) : nlohmann::json(nullptr)}};
  if (!r.approval_id.empty()) j["approvalId"] = r.approval_id;
  if (!r.approver.empty()) j["approver"] = r.approver;
  if (r.info) j["stat"] = capabilities::EncodeFileInfo(*r.info);
  if (r.action == "file.list" && !r.error) {
    j["entries"] = nlohmann::json::array();
    for (const auto& e : r.entries) j["entries"].push_back(capabilities::EncodeFileInfo(e));
    j["truncated"] = r.truncated;
  }
  if (r.data) {
    j["offset"] = r.data->offset;
    j["bytes"] = r.data->bytes.size();
    j["size"] = r.data->file_size;
    j["text"] = r.text;
    j["more"] = r.truncated;
    if (r.data->sha256) j["sha256"] = *r.data->sha256;
  }
  if (r.artifact) {
    j["uri"] = r.artifact->Uri();
    j["bytes"] = r.artifact->bytes;
    j["sha256"] = r.artifact->sha256;
    j["mimeType"] = r.artifact->mime_type;
  }
  if (r.written) {
    j["created"] = r.written->created;
    j["bytes"] = r.written->size;
    j["sha256"] = r.written->sha256;
    j["mode"] = r.written->mode;
    j["previousSha256"] = r.written->previous_sha256 ? nlohmann::json(*r.written->previous_sha256) : nlohmann::json(nullptr);
  }
  return j;
}

std::string FileReportText(const FileReport& r) {
  const std::string where = r.action + " " + (r.path.empty() ? std::string("?") : r.path) + " on " +
                            (r.target.empty() ? std::string("?") : r.target);
  if (r.error) {
    std::string out = where + ": " + r.error->message;
    if (!r.approval_id.empty()) out += "\n" + std::string(kApprovalNeedsAServer);
    return out;
  }
  auto mode_text = [](std::uint32_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", mode);
    return std::string(buf);
  };
  auto line = [&](const capabilities::FileInfo& e) {
    std::string out = mode_text(e.mode) + " " + e.owner + ":" + e.group + " " + std::to_string(e.size) + " " +
                      core::FormatTimestamp(std::chrono::system_clock::time_point(std::chrono::seconds(e.mtime))) + " " +
                      e.name + (e.type == "directory" ? "/" : "");
    if (e.type == "symlink") out += " -> " + e.link_target;
    return out;
  };
  if (r.info) return where + ": " + r.info->type + ", " + line(*r.info);
  if (r.action == "file.list") {
    std::string out = where + ": " + std::to_string(r.entries.size()) + " entries" +
                      (r.truncated ? " (more not shown; raise maxEntries)" : "");
    for (const auto& e : r.entries) out += "\n" + line(e);
    return out;
  }
  if (r.data) {
    std::string out = where + ": bytes " + std::to_string(r.data->offset) + "-" +
                      std::to_string(r.data->offset + r.data->bytes.size()) + " of " + std::to_string(r.data->file_size);
    if (r.data->sha256) out += ", sha256 " + *r.data->sha256;
    if (r.truncated) out += " (more follows: read again with offset " + std::to_string(r.data->offset + r.data->bytes.size()) + ")";
    if (!r.text) return out + "; binary content";
    return out + "\n" + r.data->bytes;
  }
  if (r.artifact) {
    return where + ": " + std::to_string(r.artifact->bytes) + " bytes, sha256 " + r.artifact->sha256 + ", kept as " +
           r.artifact->Uri();
  }
  if (r.written) {
    return where + ": " + (r.written->created ? "created, " : "replaced, ") + std::to_string(r.written->size) +
           " bytes, sha256 " + r.written->sha256 + ", mode " + mode_text(r.written->mode) +
           (r.written->previous_sha256 ? ", previous sha256 " + *r.written->previous_sha256 : std::string());
  }
  return where + ": done";
}

std::string CaptureReportText(const CaptureReport& r) {
  std::string where = r.action + " on " + (r.target.empty() ? std::string("?") : r.target);
  if (r.error) return where + ": " + r.error->message;
  if (!r.result) return where + ": no result";
  const auto& info = r.result->info;
  std::string what;
  if (info.contains("lat")) {
    what = "lat " + info["lat"].dump() + ", lon " + info["lon"].dump() +
           (info["accuracyMeters"].is_number() ? " (±" + info["accuracyMeters"].dump() + " m)" : "") + " at " +
           (info["timestamp"].is_string() ? info["timestamp"].get<std::string>() : std::string("unknown time")) +
           " from " + info.value("source", "");
    if (r.age_ms) what += ", cached " + std::to_string(*r.age_ms) + " ms ago";
  } else if (info.contains("devices")) {
    what = std::to_string(info["devices"].size()) + " camera device(s)";
    for (const auto& d : info["devices"]) {
      what += "\n  " + d.value("id", "") + "  " + d.value("name", "") +
              (d.contains("facing") ? "  (" + d.value("facing", "") + ")" : "");
    }
  } else {
    what = info.value("format", "") + " " + std::to_string(info.value("width", 0)) + "x" +
           std::to_string(info.value("height", 0)) + ", " + std::to_string(info.value("bytes", 0)) + " bytes";
    if (info.contains("durationMs")) what += ", " + std::to_string(info["durationMs"].get<std::int64_t>()) + " ms of video";
  }
  std::string text = where + ": " + what + " (" + r.result->backend + " backend, " + std::to_string(r.duration_ms) + " ms)";
  if (r.artifact) text += "\nkept as " + r.artifact->Uri();
  return text;
}

}  // namespace labgate::gateway
