#include "gateway/doctor.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "core/clock.h"
#include "core/files.h"
#include "core/json_parse.h"
#include "core/text.h"
#include "gateway/runtime.h"

#ifndef LABGATE_SOURCE_DIR
#define LABGATE_SOURCE_DIR ""
#endif

namespace labgate::gateway {

using Json = nlohmann::json;

namespace {
using core::ErrorCode;
using core::MakeError;
using Status = ReachProbe::Status;

// How long doctor's probe may take on each target; unreachable targets fail fast anyway.
constexpr std::int64_t kProbeTimeoutMs = 10000;
const std::vector<std::string> kProbeArgv = {"uname", "-n"};

// Adds `step` to `steps` unless it is there already (several findings may share one remedy).
void AddStep(std::vector<std::string>& steps, const std::string& step) {
  if (std::find(steps.begin(), steps.end(), step) == steps.end()) steps.push_back(step);
}

std::string Where(const inventory::Inventory& inv, const inventory::Target& t) {
  return t.line > 0 ? inv.source + ":" + std::to_string(t.line) : inv.source;
}

std::string DeviceText(const nodes::DeviceInfo& d) {
  std::string out = d.hostname.empty() ? "" : d.hostname;
  if (!d.platform.empty()) out += (out.empty() ? "" : ", ") + d.platform;
  return out.empty() ? "" : " (" + out + ")";
}

std::int64_t DaysBetween(nodes::TimePoint from, nodes::TimePoint to) {
  return std::chrono::duration_cast<std::chrono::hours>(to - from).count() / 24;
}

bool NonEmptyString(const Json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_string() && !it->get<std::string>().empty();
}

bool Present(const Json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && !it->is_null();
}

bool True(const Json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_boolean() && it->get<bool>();
}

// "1 host", "2 hosts".
std::string Count(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string ProbeLine(const ReachProbe& p) {
  const std::string who = p.kind == "local" ? p.target : p.target + " (" + p.kind + ")";
  switch (p.status) {
    case Status::kAnswered:
      return who + ": ok in " + std::to_string(p.duration_ms) + " ms";
    case Status::kFailed:
      return who + ": FAILED" + (p.duration_ms > 0 ? " after " + std::to_string(p.duration_ms) + " ms" : "") + ": " +
             p.detail;
    case Status::kOffline:
    case Status::kSkipped:
      return who + ": not asked: " + p.detail;
  }
  return who;
}

std::string ProbeHeader(const std::vector<ReachProbe>& probes, const std::string& probe_command) {
  const auto asked = std::count_if(probes.begin(), probes.end(), [](const ReachProbe& p) {
    return p.status == Status::kAnswered || p.status == Status::kFailed;
  });
  return "probe `" + probe_command + "` (read-only) on " + Count(static_cast<std::size_t>(asked), "target") +
         ", at most " + std::to_string(kProbeTimeoutMs / 1000) + " s each";
}

// Why a started or refused run did not succeed, in one line.
std::string FailureText(const TargetRunResult& r) {
  if (r.error) return *r.error;
  if (r.signal) return "killed by " + *r.signal;
  std::string text = "exit " + (r.exit_code ? std::to_string(*r.exit_code) : std::string("?"));
  std::string err = r.stderr_text.substr(0, r.stderr_text.find('\n'));
  if (!err.empty()) text += ": " + err;
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The report

bool DoctorReport::ok() const {
  return std::all_of(items.begin(), items.end(), [](const DoctorItem& i) { return i.ok; });
}

std::size_t DoctorReport::warnings() const {
  std::size_t n = 0;
  for (const auto& i : items) n += i.warnings.size();
  return n;
}

const DoctorItem* DoctorReport::Find(std::string_view id) const {
  for (const auto& i : items) {
    if (i.id == id) return &i;
  }
  return nullptr;
}

Json DoctorReportJson(const DoctorReport& report) {
  Json items = Json::array();
  for (const auto& i : report.items) {
    items.push_back({{"id", i.id},
                     {"title", i.title},
                     {"ok", i.ok},
                     {"details", i.details},
                     {"next", i.next},
                     {"warnings", i.warnings}});
  }
  return Json{{"ok", report.ok()}, {"warnings", report.warnings()}, {"items", items}};
}

core::Result<DoctorReport> DoctorReportFromJson(const Json& json) {
  DoctorReport report;
  try {
    for (const auto& j : json.at("items")) {
      DoctorItem i;
      i.id = j.at("id").get<std::string>();
      i.title = j.value("title", "");
      i.ok = j.at("ok").get<bool>();
      i.details = j.value("details", std::vector<std::string>{});
      i.next = j.value("next", "");
      i.warnings = j.value("warnings", std::vector<std::string>{});
      report.items.push_back(std::move(i));
    }
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kParse, std::string("the gateway's doctor report is malformed: ") + e.what());
  }
  return report;
}

std::string DoctorReportText(const DoctorReport& report, const std::string& what) {
  std::size_t width = 0;
  for (const auto& i : report.items) width = std::max(width, i.id.size());
  std::string out;
  std::vector<std::string> failed;
  for (const auto& i : report.items) {
    out += (i.ok ? "PASS " : "FAIL ") + i.id + std::string(width - i.id.size() + 2, ' ') + i.title + "\n";
    for (const auto& d : i.details) out += "    " + d + "\n";
    for (const auto& w : i.warnings) out += "    WARNING: " + w + "\n";
    if (!i.next.empty()) out += "    \u2192 " + i.next + "\n";
    if (!i.ok) failed.push_back(i.id);
  }
  const std::size_t warnings = report.warnings();
  const std::string warned =
      warnings == 0 ? "" : ", with " + std::to_string(warnings) + (warnings == 1 ? " warning" : " warnings");
  if (failed.empty()) {
    out += what + ": all " + std::to_string(report.items.size()) + " checks passed" + warned + "\n";
  } else {
    out += what + ": " + std::to_string(failed.size()) + " of " + std::to_string(report.items.size()) +
           " checks failed: " + core::Join(failed, ", ") + warned + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The last capture

std::string LastCapturePath(const std::string& state_dir) { return state_dir + "/last-capture.json"; }

core::Status RememberLastCapture(const std::string& path, const LastCapture& c) {
  const Json j = {{"target", c.target}, {"action", c.action}, {"at", c.at},
                  {"bytes", c.bytes},   {"sha256", c.sha256}, {"uri", c.uri}};
  return core::WriteFileAtomic(path, j.dump(2) + "\n", 0600);
}

core::Result<std::optional<LastCapture>> ReadLastCapture(const std::string& path) {
  auto text = core::ReadFile(path);
  if (!text) {
    if (text.error().code == ErrorCode::kNotFound) return std::optional<LastCapture>();
    return text.error();
  }
  const Json j = core::ParseUntrustedJson(*text);
  if (!j.is_object() || !NonEmptyString(j, "target") || !NonEmptyString(j, "action") || !NonEmptyString(j, "at")) {
    return MakeError(ErrorCode::kParse, path + " is not a labgate capture record (it needs target, action and at)");
  }
  LastCapture c;
  c.target = j["target"].get<std::string>();
  c.action = j["action"].get<std::string>();
  c.at = j["at"].get<std::string>();
  c.bytes = j.value("bytes", std::uint64_t{0});
  c.sha256 = j.value("sha256", "");
  c.uri = j.value("uri", "");
  return std::optional<LastCapture>(c);
}

// ---------------------------------------------------------------------------------------------
// Audit fields

void AuditFieldCheck::Missing(const std::string& field) { ++missing_[field]; }

void AuditFieldCheck::Add(const Json& record) {
  if (!record.is_object()) return;
  const std::string kind = record.value("kind", "");
  if (kind != "intent" && kind != "result") return;
  const std::string prefix = kind + ": ";
  if (!NonEmptyString(record, "ts")) Missing(prefix + "timestamp");
  if (!NonEmptyString(record, "target")) Missing(prefix + "target");
  if (!NonEmptyString(record, "action")) Missing(prefix + "action");
  if (kind == "intent") {
    ++intents_;
    const auto who = record.find("who");
    if (who == record.end() || !who->is_object() || !NonEmptyString(*who, "via")) Missing(prefix + "who");
    if (!Present(record, "payload")) Missing(prefix + "payload");
    if (NonEmptyString(record, "actionId")) intent_ids_.insert(record["actionId"].get<std::string>());
    return;
  }
  ++results_;
  if (record.value("interrupted", false) == true) ++interrupted_;
  // Who asked is on the intent with the same actionId, written before the action ran.
  if (!NonEmptyString(record, "actionId") || !intent_ids_.count(record["actionId"].get<std::string>())) {
    Missing(prefix + "who (no intent with its actionId)");
  }
  const bool outcome = Present(record, "exitCode") || Present(record, "signal") || True(record, "timedOut") ||
                       True(record, "cancelled") || Present(record, "error");
  if (!outcome) Missing(prefix + "exit code or outcome");
  if (!Present(record, "durationMs")) Missing(prefix + "duration");
}

// ---------------------------------------------------------------------------------------------
// The checks

std::vector<std::string> KeyRotationDocCandidates(const std::string& exe_path, const std::string& source_dir) {
  std::vector<std::string> out;
  if (!exe_path.empty()) {
    const std::filesystem::path exe(exe_path);
    out.push_back((exe.parent_path().parent_path() / "share/doc/labgate/key-rotation.md").lexically_normal().string());
  }
  if (!source_dir.empty()) out.push_back(source_dir + "/docs/key-rotation.md");
  return out;
}

DoctorItem CheckPairing(const inventory::Inventory& inv, const std::vector<nodes::NodeRecord>& paired,
                        const std::vector<nodes::PendingPairing>& pending) {
  DoctorItem item{"pairing", "nodes pair with the expected identities", true, {}, "", {}};
  std::vector<std::string> steps;
  std::map<std::string, const nodes::NodeRecord*> by_id;
  for (const auto& r : paired) by_id[r.id] = &r;
  int listed = 0;
  for (const auto& t : inv.targets) {
    if (t.kind != inventory::TargetKind::kNode) continue;
    ++listed;
    auto it = by_id.find(t.id);
    if (it == by_id.end()) {
      item.ok = false;
      item.details.push_back(t.id + ": missing: listed in " + Where(inv, t) + " but never paired");
      AddStep(steps, "pair " + t.id + ": `labgate pair new --node " + t.id + "`, then `labgate node pair CODE` on the device");
      continue;
    }
    const nodes::NodeRecord& r = *it->second;
    if (r.revoked()) {
      item.details.push_back(t.id + ": its key was revoked at " + nodes::FormatTime(*r.revoked_at) + " (see keys)");
      continue;
    }
    if (!t.key_fingerprint.empty() && t.key_fingerprint != r.key.fingerprint) {
      item.ok = false;
      item.details.push_back(t.id + ": fingerprint changed: " + Where(inv, t) + " pins " + t.key_fingerprint +
                             ", the pairing store holds " + r.key.fingerprint + " (since " +
                             nodes::FormatTime(r.key_since()) + ")");
      AddStep(steps, "if " + t.id + " was re-paired or rotated on purpose, set key_fingerprint = \"" + r.key.fingerprint +
                         "\" in " + inv.source + "; if not, revoke it: `labgate nodes revoke " + t.id + "`");
      continue;
    }
    item.details.push_back(t.id + ": paired as " + r.key.fingerprint + DeviceText(r.device) +
                           (t.key_fingerprint.empty() ? "" : ", the fingerprint hosts.toml pins"));
  }
  for (const auto& r : paired) {
    if (r.revoked()) continue;
    const inventory::Target* t = inv.Find(r.id);
    if (t != nullptr && t->kind == inventory::TargetKind::kNode) continue;
    item.ok = false;
    item.details.push_back(r.id + ": unexpected: paired as " + r.key.fingerprint + DeviceText(r.device) +
                           " but not a [[nodes]] entry in " + inv.source);
    AddStep(steps, "revoke " + r.id + " (`labgate nodes revoke " + r.id + "`) or add a [[nodes]] entry for it");
  }
  for (const auto& p : pending) {
    item.details.push_back("pending request: " + p.id + " (" + p.key.fingerprint + DeviceText(p.device) + ", asked at " +
                           nodes::FormatTime(p.requested_at) + "): `labgate nodes approve " + p.id +
                           "` or `labgate nodes reject " + p.id + "`");
  }
  if (listed == 0 && paired.empty() && pending.empty()) {
    item.details.push_back("no [[nodes]] in " + inv.source + " and no node paired");
  }
  item.next = core::Join(steps, "; ");
  return item;
}

DoctorItem CheckRemoteExec(const std::vector<ReachProbe>& probes, const std::string& probe_command) {
  DoctorItem item{"remote-exec", "a read-only command runs on at least two targets", false, {}, "", {}};
  item.details.push_back(ProbeHeader(probes, probe_command));
  std::vector<std::string> answered;
  bool failures = false;
  for (const auto& p : probes) {
    item.details.push_back(ProbeLine(p));
    if (p.status == Status::kAnswered) answered.push_back(p.target);
    if (p.status == Status::kFailed) failures = true;
  }
  item.ok = answered.size() >= 2;
  // Enough targets answered, but a listed one that did not is news for its operator.
  for (const auto& p : probes) {
    if (item.ok && p.status == Status::kFailed) {
      item.warnings.push_back(p.target + " did not answer (`labgate run " + p.target + " -- " + probe_command +
                              "` shows the whole error)");
    }
  }
  if (!item.ok) {
    std::string next = answered.empty() ? "no target answered"
                                        : "only " + answered.front() + " answered; at least two targets must";
    next += failures ? ": fix the failures above (`labgate run TARGET -- " + probe_command + "` shows the whole error)"
                     : ": add a [[hosts]] entry or pair a node";
    item.next = next;
  }
  return item;
}

DoctorItem CheckCapture(const core::Result<std::optional<LastCapture>>& memory, const CaptureReport* attempt,
                        const std::vector<std::string>& candidates, const std::string& config_hint) {
  DoctorItem item{"capture", "a screen or camera capture worked end to end", false, {}, "", {}};
  std::vector<std::string> steps;
  if (attempt != nullptr) {
    const std::string what = attempt->action + " on " + (attempt->target.empty() ? "?" : attempt->target);
    if (attempt->error) {
      item.details.push_back(what + " just now FAILED: " + attempt->error->message);
      AddStep(steps, "fix that and run `labgate doctor" + config_hint + " --capture " +
                         (attempt->target.empty() ? "TARGET" : attempt->target) + "` again");
    } else {
      item.details.push_back(what + " just now: ok in " + std::to_string(attempt->duration_ms) + " ms");
    }
  }
  if (!memory) {
    item.details.push_back("cannot read what the last capture was: " + memory.error().message);
    AddStep(steps, "move the file aside; the next capture that works writes it again");
  } else if (*memory) {
    const LastCapture& c = **memory;
    item.details.push_back("last worked: " + c.action + " on " + c.target + " at " + c.at + ", " +
                           std::to_string(c.bytes) + " bytes, sha256 " + c.sha256 +
                           (c.uri.empty() ? "" : ", kept as " + c.uri));
  } else {
    item.details.push_back("no screen or camera capture has worked through labgate yet");
  }
  const bool remembered = memory && memory->has_value();
  item.ok = attempt != nullptr ? !attempt->error : remembered;
  if (!item.ok && !remembered && (attempt == nullptr || !attempt->error)) {
    if (candidates.empty()) {
      AddStep(steps, "give a target the screen or camera capability (capabilities and a [TARGET.screen] or "
                     "[TARGET.camera] backend in hosts.toml), then run `labgate doctor" + config_hint +
                         " --capture TARGET`");
    } else {
      AddStep(steps, "take one now: `labgate doctor" + config_hint + " --capture " + candidates.front() + "`" +
                         (candidates.size() > 1 ? " (targets with screen or camera: " + core::Join(candidates, ", ") + ")" : ""));
    }
  }
  item.next = core::Join(steps, "; ");
  return item;
}

DoctorItem CheckAudit(const std::string& path, const core::Result<audit::VerifyReport>& verify,
                      const AuditFieldCheck& fields, const std::vector<audit::AuditForwarder::Health>& copies) {
  DoctorItem item{"audit", "the audit log records who, target, payload, times and outcomes, and its chain verifies",
                  true, {}, "", {}};
  std::vector<std::string> steps;
  if (!verify) {
    item.ok = false;
    item.details.push_back("cannot read " + path + ": " + verify.error().message);
    AddStep(steps, "check that the log and its directory are readable, then run `labgate audit verify`");
  } else if (!verify->ok) {
    item.ok = false;
    item.details.push_back("chain BROKEN" +
                           (verify->first_bad_seq ? " at seq " + std::to_string(*verify->first_bad_seq) : std::string()) +
                           ": " + verify->message);
    item.details.push_back("nothing was deleted or rewritten: labgate never changes audit records");
    AddStep(steps, "run `labgate audit verify` for details; keep the files as they are and find out who changed them");
  } else {
    item.details.push_back("chain verifies: " + std::to_string(verify->records) + " records in " +
                           std::to_string(verify->files.size()) + " file" + (verify->files.size() == 1 ? "" : "s") +
                           " (" + path + "), last seq " + std::to_string(verify->last_seq));
  }
  if (verify) {
    for (const auto& w : verify->warnings) item.details.push_back("warning: " + w);
  }
  item.details.push_back("action records: " + std::to_string(fields.intents()) + " intents, " +
                         std::to_string(fields.results()) + " results");
  if (fields.interrupted() > 0) {
    // Not a failure of the log: it says so truthfully. A person should look at those targets.
    item.details.push_back(std::to_string(fields.interrupted()) +
                           " call(s) were interrupted by a labgate process that was killed; their outcome on the "
                           "target is unknown (`labgate audit query --json` and look for \"interrupted\": true)");
  }
  if (fields.intents() + fields.results() == 0) {
    item.ok = false;
    item.details.push_back("no run or capture is recorded yet, so there is nothing to check the fields of");
    AddStep(steps, "run something through labgate (`labgate run local -- true`) and check again");
  }
  for (const auto& [field, count] : fields.missing()) {
    item.ok = false;
    const bool intent = field.rfind("intent: ", 0) == 0;
    const std::uint64_t total = intent ? fields.intents() : fields.results();
    const std::string name = field.substr(field.find(": ") + 2);
    item.details.push_back(std::to_string(count) + " of " + std::to_string(total) + (intent ? " intents" : " results") +
                           " lack " + name);
  }
  if (!fields.missing().empty()) {
    AddStep(steps, "`labgate audit query` shows the records; ones written by another program or an old labgate may lack "
                   "fields, and new ones never should (report it)");
  }
  for (const auto& c : copies) {
    if (c.failing) {
      item.ok = false;
      item.details.push_back("copies to " + c.destination + " are not getting through: " + c.error);
      AddStep(steps, "make " + c.destination +
                         " reachable (is systemd-journald running? is the syslog server listening?), or change [audit] "
                         "forward; the local log is complete either way");
    } else if (c.queued > 0) {
      item.ok = false;
      item.details.push_back("copies to " + c.destination + ": " + std::to_string(c.queued) +
                             " still waiting after 5 s (" + std::to_string(c.sent) + " sent)");
      AddStep(steps, "check that " + c.destination + " answers quickly; a slow log store holds every intent up to a second");
    } else {
      item.details.push_back("copies to " + c.destination + ": " +
                             (c.sent == 0 ? std::string("none sent by this check yet")
                                          : std::to_string(c.sent) + " sent by this check") +
                             (c.lost > 0 ? ", " + std::to_string(c.lost) + " lost" : ""));
    }
  }
  item.next = core::Join(steps, "; ");
  return item;
}

DoctorItem CheckKeys(const inventory::Inventory& inv, const std::vector<nodes::NodeRecord>& paired,
                     nodes::TimePoint now, const DocLookup* doc) {
  const std::int64_t max_days = inv.gateway.key_max_age_days;
  DoctorItem item{"keys",
                  "node keys are younger than " + std::to_string(max_days) + " days and no revoked node is listed" +
                      (doc ? "; the rotation guide is at hand" : ""),
                  true, {}, "", {}};
  std::vector<std::string> steps;
  const auto max_age = std::chrono::hours(24) * max_days;
  bool any = false;
  for (const auto& r : paired) {
    if (r.revoked()) {
      const inventory::Target* t = inv.Find(r.id);
      if (t != nullptr && t->kind == inventory::TargetKind::kNode) {
        item.ok = false;
        item.details.push_back(r.id + ": revoked at " + nodes::FormatTime(*r.revoked_at) +
                               " but still listed as [[nodes]] in " + Where(inv, *t));
        AddStep(steps, "remove " + r.id + " with `labgate hosts remove " + r.id + "`, or pair it again (`labgate pair new --node " +
                           r.id + "`)");
      }
      continue;
    }
    any = true;
    const std::int64_t days = DaysBetween(r.key_since(), now);
    const std::string since = nodes::FormatTime(r.key_since()) + (r.rotated_at ? ", rotated" : ", paired");
    if (r.KeyStale(now, max_days)) {
      item.ok = false;
      item.details.push_back("key of " + r.id + " is " + std::to_string(days) + " days old (since " + since +
                             "); the limit is " + std::to_string(max_days) + " days");
      AddStep(steps, "run `labgate nodes rotate " + r.id + "`");
    } else {
      item.details.push_back(r.id + ": key " + r.key.fingerprint + " is " + std::to_string(days) + " days old (since " +
                             since + "), rotate by " + nodes::FormatTime(r.key_since() + max_age));
    }
  }
  if (!any) item.details.push_back("no node key is in use");
  if (doc != nullptr) {
    if (doc->found) {
      item.details.push_back("how to rotate and revoke, step by step: " + *doc->found);
    } else {
      item.ok = false;
      item.details.push_back("the key-rotation guide (docs/key-rotation.md) is missing; looked in " +
                             core::Join(doc->candidates, " and "));
      AddStep(steps, "reinstall labgate, or read docs/key-rotation.md in the labgate sources");
    }
  }
  item.next = core::Join(steps, "; ");
  return item;
}

DoctorItem CheckInventoryLoads(const std::string& source, const core::Result<inventory::Inventory>& loaded) {
  DoctorItem item{"inventory", "hosts.toml loads and validates", loaded.ok(), {}, "", {}};
  if (!loaded) {
    std::string message = loaded.error().message;
    for (std::size_t start = 0; start < message.size();) {
      std::size_t end = message.find('\n', start);
      if (end == std::string::npos) end = message.size();
      if (end > start) item.details.push_back(message.substr(start, end - start));
      start = end + 1;
    }
    item.next = "fix " + (source.empty() ? std::string("hosts.toml") : source) + " at the lines named, then check again";
    return item;
  }
  std::size_t hosts = 0, nodes = 0;
  bool local = false;
  for (const auto& t : loaded->targets) {
    hosts += t.kind == inventory::TargetKind::kHost;
    nodes += t.kind == inventory::TargetKind::kNode;
    local = local || t.kind == inventory::TargetKind::kLocal;
  }
  item.details.push_back(loaded->source + ": " + Count(hosts, "host") + ", " + Count(nodes, "node") +
                         (local ? ", and local" : ""));
  return item;
}

DoctorItem CheckReachable(const std::vector<ReachProbe>& probes, const std::string& probe_command) {
  DoctorItem item{"reachable", "every host and node answers", true, {}, "", {}};
  item.details.push_back(ProbeHeader(probes, probe_command));
  std::vector<std::string> steps;
  for (const auto& p : probes) {
    item.details.push_back(ProbeLine(p));
    if (p.status == Status::kFailed) {
      item.ok = false;
      AddStep(steps, "`labgate run " + p.target + " -- " + probe_command + "` shows the whole error for " + p.target);
    } else if (p.status == Status::kOffline) {
      item.ok = false;
      AddStep(steps, "start `labgate node run` on " + p.target + " (or pair it: `labgate pair new --node " + p.target + "`)");
    }
  }
  item.next = core::Join(steps, "; ");
  return item;
}

DoctorItem CheckOwnerPurpose(const inventory::Inventory& inv) {
  DoctorItem item{"owner-purpose", "every host and node says who owns it and what it is for", true, {}, "", {}};
  int entries = 0;
  for (const auto& t : inv.targets) {
    if (t.kind == inventory::TargetKind::kLocal) continue;
    ++entries;
    std::vector<std::string> lacking;
    if (t.owner.empty()) lacking.push_back("owner");
    if (t.purpose.empty()) lacking.push_back("purpose");
    if (lacking.empty()) continue;
    item.ok = false;
    item.details.push_back(t.id + " (" + inventory::TargetKindName(t.kind) + ", " + Where(inv, t) + ") has no " +
                           core::Join(lacking, " and no "));
  }
  if (item.ok) item.details.push_back("all " + std::to_string(entries) + " entries have both");
  if (!item.ok) item.next = "add owner = \"...\" and purpose = \"...\" to those entries in " + inv.source;
  return item;
}

DoctorItem CheckSandbox(bool active, const std::string& description) {
  DoctorItem item{"sandbox", "commands on local cannot reach labgate's own state, config and audit log", active, {}, "", {}};
  item.details.push_back("sandbox: " + description);
  if (!active) {
    item.details.push_back("without it, every command on local that is not read-only waits for a human");
    item.next = "install bubblewrap (Debian: apt install bubblewrap) and make sure unprivileged user namespaces are "
                "allowed (sysctl kernel.unprivileged_userns_clone=1), then restart the gateway";
  }
  return item;
}

// ---------------------------------------------------------------------------------------------
// The runner

namespace {

DocLookup FindKeyRotationDoc() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  DocLookup doc;
  doc.candidates = KeyRotationDocCandidates(ec ? "" : exe.string(), LABGATE_SOURCE_DIR);
  for (const auto& c : doc.candidates) {
    if (std::filesystem::is_regular_file(c, ec)) {
      doc.found = c;
      break;
    }
  }
  return doc;
}

std::vector<ReachProbe> Probe(Runtime& runtime, const audit::Actor& actor, const DoctorOptions& options) {
  Gateway& gateway = runtime.gateway();
  const bool daemon = runtime.agents() != nullptr;
  std::vector<ReachProbe> probes;
  std::vector<std::string> ask;
  auto views = gateway.Targets({});
  if (!views) return {ReachProbe{"*", "?", Status::kFailed, 0, views.error().message}};
  for (const auto& view : *views) {
    const inventory::Target& t = *view.target;
    // hosts check is about the inventory's entries; `local` is no entry.
    if (options.hosts_only && t.kind == inventory::TargetKind::kLocal) continue;
    ReachProbe p{t.id, inventory::TargetKindName(t.kind), Status::kSkipped, 0, ""};
    if (!t.HasCapability("run")) {
      p.detail = "it does not offer run";
    } else if (t.kind == inventory::TargetKind::kNode && !daemon) {
      p.detail = "no gateway running: nodes unreachable; start `labgate gateway" + options.config_hint + "`";
    } else if (t.kind == inventory::TargetKind::kNode && view.state.revoked_at) {
      p.detail = "its key was revoked at " + *view.state.revoked_at;
    } else if (t.kind == inventory::TargetKind::kNode && view.state.fingerprint.empty()) {
      p.status = Status::kOffline;
      p.detail = "never paired";
    } else if (t.kind == inventory::TargetKind::kNode && view.state.granted &&
               std::find(view.state.granted->begin(), view.state.granted->end(), "run") == view.state.granted->end()) {
      p.detail = "it was paired without the run capability";
    } else if (t.kind == inventory::TargetKind::kNode && !view.state.online.value_or(false)) {
      p.status = Status::kOffline;
      p.detail = "offline (last seen " + view.state.last_seen.value_or("never") + ")";
    } else {
      p.status = Status::kFailed;  // until it answers
      ask.push_back(t.id);
    }
    probes.push_back(p);
  }
  if (ask.empty()) return probes;

  RunCall call;
  call.selectors = ask;
  call.command.argv = kProbeArgv;
  call.timeout_ms = std::min(kProbeTimeoutMs, runtime.inventory()->gateway.max_timeout_ms);
  core::CancelToken never;
  const RunReport report = gateway.Run(actor, call, never);
  for (auto& p : probes) {
    if (std::find(ask.begin(), ask.end(), p.target) == ask.end()) continue;
    if (report.error) {
      p.detail = report.error->message;
      continue;
    }
    auto it = std::find_if(report.results.begin(), report.results.end(),
                           [&](const TargetRunResult& r) { return r.target == p.target; });
    if (it == report.results.end()) {
      p.detail = "no result came back";
      continue;
    }
    p.duration_ms = it->duration_ms;
    if (it->ok()) {
      p.status = Status::kAnswered;
    } else {
      p.detail = FailureText(*it);
    }
  }
  return probes;
}

}  // namespace

DoctorReport RunDoctor(Runtime& runtime, const audit::Actor& actor, const DoctorOptions& options) {
  const auto snapshot = runtime.inventory();
  const inventory::Inventory& inv = *snapshot;
  Gateway& gateway = runtime.gateway();
  core::SystemClock clock;
  const std::string probe_command = core::JoinArgv(kProbeArgv);

  // The daemon's own store; without a daemon, nodes.json as it is on disk (Open never writes).
  std::vector<nodes::NodeRecord> paired;
  std::vector<nodes::PendingPairing> pending;
  std::optional<core::Error> store_error;
  if (const nodes::PairingStore* store = runtime.pairing()) {
    paired = store->Nodes();
    pending = store->Pending();
  } else if (auto opened = nodes::PairingStore::Open(PathsFor(inv.gateway).pairing, clock)) {
    paired = (*opened)->Nodes();
    pending = (*opened)->Pending();
  } else {
    store_error = opened.error();
  }
  auto store_failure = [&](DoctorItem item) {
    item.ok = false;
    item.details.insert(item.details.begin(), "cannot read the pairing store: " + store_error->message);
    return item;
  };

  DoctorReport report;
  const std::vector<ReachProbe> probes = Probe(runtime, actor, options);
  if (options.hosts_only) {
    report.items.push_back(CheckReachable(probes, probe_command));
    DoctorItem keys = CheckKeys(inv, paired, clock.Now(), nullptr);
    report.items.push_back(store_error ? store_failure(keys) : keys);
    report.items.push_back(CheckOwnerPurpose(inv));
    return report;
  }

  report.items.push_back(CheckSandbox(gateway.local_sandboxed(), gateway.local_sandbox()));
  DoctorItem pairing = CheckPairing(inv, paired, pending);
  report.items.push_back(store_error ? store_failure(pairing) : pairing);
  report.items.push_back(CheckRemoteExec(probes, probe_command));

  std::optional<CaptureReport> attempt;
  if (!options.capture_target.empty()) {
    CaptureCall call;
    call.selector = options.capture_target;
    const inventory::Target* t = inv.Find(options.capture_target);
    const bool screen = t != nullptr && t->HasCapability("screen");
    call.request.capability = screen ? "screen" : "camera";
    call.request.action = screen ? "snapshot" : "snap";
    core::CancelToken never;
    attempt = gateway.Capture(actor, call, never);
  }
  std::vector<std::string> candidates;
  for (const auto& t : inv.targets) {
    if (t.HasCapability("screen") || t.HasCapability("camera")) candidates.push_back(t.id);
  }
  report.items.push_back(CheckCapture(ReadLastCapture(LastCapturePath(inv.gateway.state_dir)),
                                      attempt ? &*attempt : nullptr, candidates, options.config_hint));

  // Read after the probes, so doctor's own records are among those checked.
  const std::string& log = inv.gateway.audit_log;
  core::Result<audit::VerifyReport> verify = audit::VerifyChain(log);
  AuditFieldCheck fields;
  auto read = audit::ReadRecords(log, [&](const Json& record) {
    fields.Add(record);
    return true;
  });
  if (!read && verify) verify = read.error();
  // Doctor's own records are on their way to [audit] forward's destinations: give them a moment,
  // so a store that does not answer shows as failing rather than as "queued".
  auto copies = runtime.forwarding();
  for (int k = 0; k < 50 && std::any_of(copies.begin(), copies.end(), [](const auto& c) {
                             return c.queued > 0 && !c.failing;
                           });
       ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    copies = runtime.forwarding();
  }
  report.items.push_back(CheckAudit(log, verify, fields, copies));

  const DocLookup doc = FindKeyRotationDoc();
  DoctorItem keys = CheckKeys(inv, paired, clock.Now(), &doc);
  report.items.push_back(store_error ? store_failure(keys) : keys);
  return report;
}

}  // namespace labgate::gateway
