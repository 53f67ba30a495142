#include "gateway/checks.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <re2/re2.h>
#include <set>
#include <sstream>

#include "core/files.h"
#include "core/json_parse.h"
#include "core/os_user.h"
#include "core/text.h"
#include "gateway/views.h"
#include "inventory/selector.h"
#include "policy/classify.h"
#include "policy/command_parse.h"
#include "policy/decide.h"

namespace labgate::gateway {
namespace {

using Json = nlohmann::json;
using core::ErrorCode;
using core::MakeError;

constexpr std::size_t kSummaryDetail = 160;    // characters of output or error quoted in a summary
constexpr std::int64_t kAliveEveryMs = 60000;  // how often an idle scheduler notes it is alive
// How often nodes coming and going reach the state file. Each write is the whole file: written
// per event from the listener's threads, 10,000 nodes reconnecting after a restart cost 10,000
// writes of a 10,000-entry file, each with an fsync, and stalled the sessions' heartbeats.
constexpr std::int64_t kSightingsEveryMs = 1000;

std::string FormatMs(std::int64_t ms) {
  return core::FormatTimestamp(std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

Json TimeOrNull(std::int64_t ms) { return ms > 0 ? Json(FormatMs(ms)) : Json(nullptr); }

// "93", "87.5": no trailing zeros.
std::string FormatNumber(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  std::ostringstream out;
  out << v;
  return out.str();
}

// The first non-empty line of `text`, shortened: what a summary quotes.
std::string FirstLine(std::string_view text) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos) {
      line = line.substr(first);
      return line.size() > kSummaryDetail ? line.substr(0, kSummaryDetail) + "..." : line;
    }
    start = end + 1;
  }
  return "";
}

// Multi-line text on one line, shortened (errors carry hints across lines).
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  constexpr std::size_t kMax = 400;
  return text.size() > kMax ? text.substr(0, kMax) + "..." : text;
}

std::string Capped(const std::string& text) {
  std::string out = text.size() > kCheckOutputCap ? text.substr(0, kCheckOutputCap) : text;
  out.erase(std::remove(out.begin(), out.end(), '\0'), out.end());
  return out;
}

std::string DurationText(std::int64_t ms) {
  if (ms % (24LL * 3600 * 1000) == 0) return std::to_string(ms / (24LL * 3600 * 1000)) + "d";
  if (ms % (3600 * 1000) == 0) return std::to_string(ms / (3600 * 1000)) + "h";
  if (ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// Targets a check covers now, by id; an inventory change may have emptied a group.
std::vector<std::string> Covered(const inventory::Inventory& inv, const inventory::Check& check) {
  std::vector<std::string> ids;
  auto resolved = inventory::Resolve(inv, check.targets);
  if (!resolved) return ids;
  for (const auto* t : *resolved) ids.push_back(t->id);
  return ids;
}

const inventory::Check* FindCheck(const inventory::Inventory& inv, const std::string& name) {
  for (const auto& c : inv.checks) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// Exactly what the operator approves for a remediation: this command, on this target, for this check.
ApprovalBinding RemediationBinding(const inventory::Check& check, const std::string& target) {
  ApprovalBinding binding;
  binding.targets = {target};
  binding.command = Json{{"shell", check.remediation}};
  binding.env = {{"LABGATE_CHECK", check.name}, {"LABGATE_CHECK_TARGET", target}};
  return binding;
}

// A check never waits for a human: when policy asks for one, the run is refused instead of
// filing an approval request at every slot.
class NeverConfirmer final : public Confirmer {
 public:
  ConfirmAnswer Ask(const ConfirmQuestion&, const core::CancelToken&) override {
    return {ConfirmAnswer::Kind::kCancel, "labgate checks",
            "a check never waits for a human; allow its command in hosts.toml instead"};
  }
};

// The operator's approval of a remediation, given ahead of time through `labgate approvals approve`.
class ApprovedConfirmer final : public Confirmer {
 public:
  explicit ApprovedConfirmer(std::string who) : who_(std::move(who)) {}
  ConfirmAnswer Ask(const ConfirmQuestion&, const core::CancelToken&) override {
    return {ConfirmAnswer::Kind::kAccept, who_, "approved through labgate approvals"};
  }

 private:
  std::string who_;
};

Json TargetStateJson(const CheckTargetState& s) {
  return Json{{"status", s.status},
              {"summary", s.summary},
              {"exitCode", s.exit_code ? Json(*s.exit_code) : Json(nullptr)},
              {"output", s.output},
              {"trigger", s.trigger},
              {"startedMs", s.started_ms},
              {"finishedMs", s.finished_ms},
              {"streak", s.streak},
              {"alerted", s.alerted},
              {"approvalId", s.approval_id},
              {"remediation", s.remediation}};
}

CheckTargetState TargetStateFromJson(const Json& j) {
  CheckTargetState s;
  s.status = j.value("status", "");
  s.summary = j.value("summary", "");
  if (j.contains("exitCode") && j["exitCode"].is_number_integer()) s.exit_code = j["exitCode"].get<int>();
  s.output = j.value("output", "");
  s.trigger = j.value("trigger", "");
  s.started_ms = j.value("startedMs", std::int64_t{0});
  s.finished_ms = j.value("finishedMs", std::int64_t{0});
  s.streak = j.value("streak", 0);
  s.alerted = j.value("alerted", false);
  s.approval_id = j.value("approvalId", "");
  s.remediation = j.value("remediation", "");
  return s;
}

core::Result<CheckStateFile> StateFromJson(const Json& root, const std::string& path) {
  CheckStateFile state;
  state.alive_ms = root.value("aliveMs", std::int64_t{0});
  // value() returns copies: keep them alive while items() walks them.
  const Json checks = root.value("checks", Json::object());
  const Json nodes = root.value("nodes", Json::object());
  if (!checks.is_object() || !nodes.is_object()) {
    return MakeError(ErrorCode::kIo,
                     path + " has an unexpected shape; move it aside (its schedule then starts afresh)");
  }
  for (const auto& [name, c] : checks.items()) {
    CheckRecord record;
    record.last_slot_ms = c.value("lastSlotMs", std::int64_t{0});
    const Json targets = c.value("targets", Json::object());
    for (const auto& [target, t] : targets.items()) {
      record.targets[target] = TargetStateFromJson(t);
    }
    state.checks[name] = std::move(record);
  }
  for (const auto& [id, n] : nodes.items()) {
    state.nodes[id] = NodeSighting{n.value("online", false), n.value("offlineSinceMs", std::int64_t{0})};
  }
  return state;
}

}  // namespace

const char* CheckStatusName(CheckStatus status) {
  switch (status) {
    case CheckStatus::kPass:
      return "pass";
    case CheckStatus::kFail:
      return "fail";
    case CheckStatus::kError:
      return "error";
  }
  return "error";
}

std::optional<double> FirstNumber(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) continue;
    std::size_t start = i;
    if (start > 0 && text[start - 1] == '-') --start;
    std::size_t end = i;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    if (end + 1 < text.size() && text[end] == '.' && std::isdigit(static_cast<unsigned char>(text[end + 1]))) {
      ++end;
      while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    }
    return std::strtod(std::string(text.substr(start, end - start)).c_str(), nullptr);
  }
  return std::nullopt;
}

CheckVerdict EvaluateCheck(const inventory::Check& check, const TargetRunResult& r) {
  CheckVerdict v;
  v.exit_code = r.exit_code;
  v.output = Capped(r.stdout_text);
  const std::string head = check.name + " on " + r.target + ": ";
  auto verdict = [&](CheckStatus status, const std::string& what) {
    v.status = status;
    v.summary = head + what;
    return v;
  };
  if (r.timed_out) return verdict(CheckStatus::kError, "timed out (" + OneLine(r.error.value_or("")) + ")");
  if (r.cancelled) return verdict(CheckStatus::kError, "cancelled before it finished");
  if (r.error) return verdict(CheckStatus::kError, "could not run: " + OneLine(*r.error));
  if (r.signal) return verdict(CheckStatus::kError, "killed by signal " + *r.signal);
  if (!r.exit_code) return verdict(CheckStatus::kError, "ended without an exit code");

  const auto& e = check.expect;
  if (*r.exit_code != e.exit_code) {
    std::string said = FirstLine(r.stdout_text);
    if (said.empty()) said = FirstLine(r.stderr_text);
    return verdict(CheckStatus::kFail, "exit code " + std::to_string(*r.exit_code) + ", expected " +
                                           std::to_string(e.exit_code) + (said.empty() ? "" : " (" + said + ")"));
  }
  std::vector<std::string> passed;
  if (!e.stdout_matches.empty()) {
    // RE2, not std::regex: a host's 64 KiB of output against any pattern takes linear time and
    // no stack (libstdc++'s backtracking matcher could overflow the daemon's stack).
    if (!RE2::PartialMatch(r.stdout_text, RE2(e.stdout_matches, RE2::Quiet))) {
      const std::string said = FirstLine(r.stdout_text);
      return verdict(CheckStatus::kFail, "output does not match /" + e.stdout_matches + "/" +
                                             (said.empty() ? " (it printed nothing)" : " (" + said + ")"));
    }
    passed.push_back("matches /" + e.stdout_matches + "/");
  }
  if (e.below || e.above) {
    const auto number = FirstNumber(r.stdout_text);
    if (!number) {
      std::string wanted = e.below ? "below " + FormatNumber(*e.below) : "";
      if (e.above) wanted += (wanted.empty() ? "above " : " and above ") + FormatNumber(*e.above);
      const std::string said = FirstLine(r.stdout_text);
      return verdict(CheckStatus::kFail,
                     "printed no number to compare (expected one " + wanted + ")" + (said.empty() ? "" : ": " + said));
    }
    if (e.below && !(*number < *e.below)) {
      return verdict(CheckStatus::kFail, FormatNumber(*number) + " is not below " + FormatNumber(*e.below));
    }
    if (e.above && !(*number > *e.above)) {
      return verdict(CheckStatus::kFail, FormatNumber(*number) + " is not above " + FormatNumber(*e.above));
    }
    if (e.below) passed.push_back(FormatNumber(*number) + " is below " + FormatNumber(*e.below));
    if (e.above) passed.push_back(FormatNumber(*number) + " is above " + FormatNumber(*e.above));
  }
  if (passed.empty()) passed.push_back("exit code " + std::to_string(*r.exit_code));
  std::string detail;
  for (const auto& p : passed) detail += (detail.empty() ? "" : ", ") + p;
  return verdict(CheckStatus::kPass, "ok (" + detail + ")");
}

CheckVerdict EvaluateCapture(const inventory::Check& check, const CaptureReport& report) {
  CheckVerdict v;
  const std::string head = check.name + " on " + report.target + ": ";
  if (report.error || !report.result) {
    v.status = CheckStatus::kError;
    v.summary = head + check.capture + " snapshot failed: " +
                OneLine(report.error ? report.error->message : std::string("no picture came back"));
    return v;
  }
  v.status = CheckStatus::kPass;
  const std::size_t bytes = report.result->data.size();
  v.summary = head + check.capture + " snapshot " +
              (report.artifact ? "kept as " + report.artifact->Uri() : std::string("taken")) + " (" +
              std::to_string(bytes) + " bytes)";
  return v;
}

core::Result<CheckStateFile> LoadCheckState(const std::string& path) {
  auto text = core::ReadFile(path);
  if (!text) {
    if (text.error().code == ErrorCode::kNotFound) return CheckStateFile{};
    return text.error();
  }
  Json root = core::ParseUntrustedJson(*text);
  if (root.is_discarded() || !root.is_object()) {
    return MakeError(ErrorCode::kIo, path +
                                         " is not valid JSON; the check schedule cannot be trusted. Move it aside "
                                         "(its schedule then starts afresh)");
  }
  try {
    return StateFromJson(root, path);
  } catch (const Json::exception& e) {
    return MakeError(ErrorCode::kIo, path + " has an unexpected shape (" + e.what() +
                                         "); move it aside (its schedule then starts afresh)");
  }
}

core::Status SaveCheckState(const std::string& path, const CheckStateFile& state) {
  Json checks = Json::object();
  for (const auto& [name, record] : state.checks) {
    Json targets = Json::object();
    for (const auto& [target, s] : record.targets) targets[target] = TargetStateJson(s);
    checks[name] =
        Json{{"lastSlotMs", record.last_slot_ms}, {"lastSlot", TimeOrNull(record.last_slot_ms)}, {"targets", targets}};
  }
  Json nodes = Json::object();
  for (const auto& [id, n] : state.nodes)
    nodes[id] = Json{{"online", n.online}, {"offlineSinceMs", n.offline_since_ms}};
  Json root = {{"version", 1}, {"aliveMs", state.alive_ms}, {"checks", checks}, {"nodes", nodes}};
  return core::WriteFileAtomic(path, root.dump(2) + "\n", 0600);
}

std::int64_t NextLocalTimeMs(int minute_of_day, std::int64_t after_ms) {
  const std::time_t after = static_cast<std::time_t>(after_ms / 1000);
  std::tm day{};
  localtime_r(&after, &day);
  for (int add = 0; add < 3; ++add) {
    std::tm candidate = day;
    candidate.tm_mday += add;
    candidate.tm_hour = minute_of_day / 60;
    candidate.tm_min = minute_of_day % 60;
    candidate.tm_sec = 0;
    candidate.tm_isdst = -1;  // let mktime find daylight saving time for that day
    const std::int64_t ms = static_cast<std::int64_t>(std::mktime(&candidate)) * 1000;
    if (ms > after_ms) return ms;
  }
  return after_ms + 24LL * 3600 * 1000;  // unreachable in practice: tomorrow always qualifies
}

std::optional<std::int64_t> NextRunMs(const inventory::Check& check, const CheckRecord& record, std::int64_t now_ms) {
  if (check.every_ms > 0) return record.last_slot_ms == 0 ? now_ms : record.last_slot_ms + check.every_ms;
  if (check.at_minute >= 0)
    return NextLocalTimeMs(check.at_minute, record.last_slot_ms == 0 ? now_ms : record.last_slot_ms);
  return std::nullopt;
}

std::string TriggerText(const inventory::Check& check) {
  if (check.every_ms > 0) return "every " + DurationText(check.every_ms);
  if (check.at_minute >= 0) return "at " + check.at + " (local)";
  return "on " + check.on +
         (check.offline_for_ms > 0 ? " (offline at least " + DurationText(check.offline_for_ms) + ")" : "");
}

Json ChecksJson(const inventory::Inventory& inv, const CheckStateFile& state, std::int64_t now_ms) {
  Json out = Json::array();
  for (const auto& check : inv.checks) {
    auto found = state.checks.find(check.name);
    const CheckRecord record = found == state.checks.end() ? CheckRecord{} : found->second;
    const auto next = NextRunMs(check, record, now_ms);
    Json results = Json::array();
    for (const auto& id : Covered(inv, check)) {
      auto s = record.targets.find(id);
      const CheckTargetState t = s == record.targets.end() ? CheckTargetState{} : s->second;
      results.push_back({{"target", id},
                         {"status", t.status.empty() ? "never" : t.status},
                         {"summary", t.summary},
                         {"exitCode", t.exit_code ? Json(*t.exit_code) : Json(nullptr)},
                         {"trigger", t.trigger},
                         {"startedAt", TimeOrNull(t.started_ms)},
                         {"finishedAt", TimeOrNull(t.finished_ms)},
                         {"failingRuns", t.streak},
                         {"alerted", t.alerted},
                         {"approvalId", t.approval_id.empty() ? Json(nullptr) : Json(t.approval_id)},
                         {"remediation", t.remediation},
                         {"pendingApproval", t.remediation == "pending" ? Json(t.approval_id) : Json(nullptr)}});
    }
    Json row = {{"name", check.name},
                {"trigger", TriggerText(check)},
                {"targets", check.targets},
                {"nextRun", next ? Json(FormatMs(std::max(*next, now_ms))) : Json(nullptr)},
                {"lastSlot", TimeOrNull(record.last_slot_ms)},
                {"alert", !check.alert.empty()},
                {"remediation", check.remediation.empty() ? Json(nullptr) : Json(check.remediation)},
                {"source", check.source},
                {"results", results}};
    if (check.capture.empty()) {
      row["command"] = check.command;
    } else {
      row["capture"] = check.capture;
    }
    out.push_back(row);
  }
  return out;
}

std::string ChecksText(const Json& checks) {
  if (checks.empty()) return "no [[checks]] in the inventory (see the examples at the end of the bundled hosts.toml)\n";
  std::vector<std::vector<std::string>> rows = {{"CHECK", "TARGET", "STATUS", "LAST RUN", "NEXT RUN", "SUMMARY"}};
  for (const auto& c : checks) {
    const std::string next =
        c["nextRun"].is_string() ? c["nextRun"].get<std::string>() : c["trigger"].get<std::string>();
    const std::string name = c["name"].get<std::string>();
    if (c["results"].empty()) rows.push_back({name, "-", "-", "-", next, "covers no target now"});
    for (const auto& r : c["results"]) {
      std::string summary = r["summary"].get<std::string>();
      if (r["pendingApproval"].is_string()) {
        summary += "; remediation awaits `labgate approvals approve " + r["pendingApproval"].get<std::string>() + "`";
      }
      rows.push_back({name, r["target"].get<std::string>(), r["status"].get<std::string>(),
                      r["finishedAt"].is_string() ? r["finishedAt"].get<std::string>() : "-", next,
                      summary.empty() ? "-" : summary});
    }
  }
  return FormatTable(rows);
}

Json CheckRunResultJson(const CheckRunResult& r) {
  return Json{{"check", r.check},
              {"target", r.target},
              {"trigger", r.trigger},
              {"status", CheckStatusName(r.verdict.status)},
              {"summary", r.verdict.summary},
              {"exitCode", r.verdict.exit_code ? Json(*r.verdict.exit_code) : Json(nullptr)},
              {"output", r.verdict.output},
              {"actionId", r.action_id},
              {"alerted", r.alerted},
              {"approvalId", r.approval_id.empty() ? Json(nullptr) : Json(r.approval_id)}};
}

CheckScheduler::CheckScheduler(Gateway& gateway, ApprovalStore& approvals, audit::AuditLog& audit,
                               std::string state_path, const core::Clock& clock, core::ProcessRunner& runner)
    : gateway_(gateway),
      approvals_(approvals),
      audit_(audit),
      state_path_(std::move(state_path)),
      clock_(clock),
      runner_(runner) {}

CheckScheduler::~CheckScheduler() { Stop(); }

std::int64_t CheckScheduler::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch()).count();
}

core::Status CheckScheduler::Load() {
  auto loaded = LoadCheckState(state_path_);
  if (!loaded) return loaded.error();
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = std::move(*loaded);
  return core::Ok();
}

void CheckScheduler::Start() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The gateway lost sight of every node when it stopped: count them offline from then on.
    for (auto& [id, node] : state_.nodes) {
      if (node.online) {
        node.online = false;
        node.offline_since_ms = state_.alive_ms;
      }
    }
    SaveLocked();
  }
  const auto snapshot = gateway_.inventory();
  const inventory::Inventory& inv = *snapshot;
  if (!inv.checks.empty())
    spdlog::info("checks: {} routine check(s) from {}, state in {}", inv.checks.size(), inv.source, state_path_);
  thread_ = std::thread([this] { Loop(); });
}

void CheckScheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cancel_.Cancel();
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  if (sightings_dirty_) SaveLocked();
}

void CheckScheduler::Loop() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
    }
    Tick();
    // Sleep until the next slot is due, at most a second (approvals and reloads are polled).
    std::int64_t wait_ms = 1000;
    const std::int64_t now = NowMs();
    {
      const auto snapshot = gateway_.inventory();
      const inventory::Inventory& inv = *snapshot;
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& check : inv.checks) {
        auto record = state_.checks.find(check.name);
        const auto next = NextRunMs(check, record == state_.checks.end() ? CheckRecord{} : record->second, now);
        if (next) wait_ms = std::min(wait_ms, std::max<std::int64_t>(*next - now, 10));
      }
    }
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stopping_ || !node_events_.empty(); });
  }
}

void CheckScheduler::SaveLocked() {
  const std::int64_t now = NowMs();
  state_.alive_ms = now;
  if (auto ok = SaveCheckState(state_path_, state_); !ok) {
    spdlog::error("checks: cannot write {}: {}", state_path_, ok.error().message);
    return;
  }
  last_save_ms_ = now;
  sightings_dirty_ = false;
}

audit::Actor CheckScheduler::ActorFor(const inventory::Check& check, const std::string& session) const {
  return audit::Actor{"check", check.name, "", core::CurrentUserName(), session};
}

void CheckScheduler::Event(const std::string& event, const std::string& check, const std::string& target,
                           Json details) {
  details["check"] = check;
  audit::Event e{event, {"check", check, "", core::CurrentUserName(), ""}, target, std::move(details)};
  (void)audit_.Append(audit::EncodeEvent(e), audit::Durability::kSoon);
}

bool CheckScheduler::ClaimSlot(const inventory::Check& check, std::int64_t now) {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckRecord& record = state_.checks[check.name];
  std::int64_t slot = 0;
  if (check.every_ms > 0) {
    if (record.last_slot_ms == 0 || record.last_slot_ms > now) {
      slot = now;  // the first run ever (or the clock went back): now
    } else if (record.last_slot_ms + check.every_ms <= now) {
      // The latest slot that has come: missed slots (the gateway was down) run once, not each.
      slot = record.last_slot_ms + (now - record.last_slot_ms) / check.every_ms * check.every_ms;
    }
  } else if (check.at_minute >= 0) {
    if (record.last_slot_ms == 0) {
      // First sight: remember it, so the first run is the next HH:MM even across restarts.
      record.last_slot_ms = now;
      SaveLocked();
      return false;
    }
    std::int64_t next = NextLocalTimeMs(check.at_minute, record.last_slot_ms);
    for (int i = 0; next <= now && i < 1000; ++i) {
      slot = next;
      next = NextLocalTimeMs(check.at_minute, next);
    }
  }
  if (slot == 0) return false;
  const std::int64_t previous = record.last_slot_ms;
  record.last_slot_ms = slot;
  // Claimed on disk before anything runs: a crash or restart never runs this slot again.
  state_.alive_ms = now;
  if (auto ok = SaveCheckState(state_path_, state_); !ok) {
    record.last_slot_ms = previous;
    spdlog::error(
        "checks: not running {}: its slot cannot be recorded in {} ({}), and running it unrecorded could "
        "run it twice",
        check.name, state_path_, ok.error().message);
    return false;
  }
  last_save_ms_ = now;
  return true;
}

void CheckScheduler::Tick() {
  std::lock_guard<std::mutex> run(run_mutex_);
  const auto snapshot = gateway_.inventory();
  const inventory::Inventory& inv = *snapshot;
  const std::int64_t now = NowMs();
  std::deque<NodeEvent> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    events.swap(node_events_);
    // Forget checks that left the inventory, and targets a check no longer covers.
    bool changed = false;
    for (auto it = state_.checks.begin(); it != state_.checks.end();) {
      const inventory::Check* check = FindCheck(inv, it->first);
      if (check == nullptr) {
        it = state_.checks.erase(it);
        changed = true;
        continue;
      }
      const auto covered = Covered(inv, *check);
      for (auto t = it->second.targets.begin(); t != it->second.targets.end();) {
        if (std::find(covered.begin(), covered.end(), t->first) == covered.end()) {
          t = it->second.targets.erase(t);
          changed = true;
        } else {
          ++t;
        }
      }
      ++it;
    }
    if (changed || now - last_save_ms_ >= kAliveEveryMs || (sightings_dirty_ && now - last_save_ms_ >= kSightingsEveryMs)) {
      SaveLocked();
    }
  }

  for (const auto& event : events) {
    for (const auto& check : inv.checks) {
      if (check.on != "node-online-after-offline" || event.offline_ms < check.offline_for_ms) continue;
      const auto covered = Covered(inv, check);
      if (std::find(covered.begin(), covered.end(), event.node) == covered.end()) continue;
      RunOn(inv, check, {event.node}, "node-online");
    }
  }
  for (const auto& check : inv.checks) {
    if (cancel_.cancelled()) return;
    if (!check.on.empty() || !ClaimSlot(check, now)) continue;
    RunOn(inv, check, Covered(inv, check), "schedule");
  }
  Remediate(inv);
}

core::Result<std::vector<CheckRunResult>> CheckScheduler::RunNow(const std::string& name, const std::string& target) {
  std::lock_guard<std::mutex> run(run_mutex_);
  const auto snapshot = gateway_.inventory();
  const inventory::Inventory& inv = *snapshot;
  const inventory::Check* check = FindCheck(inv, name);
  if (check == nullptr) {
    std::string known;
    for (const auto& c : inv.checks) known += (known.empty() ? "" : ", ") + c.name;
    return MakeError(ErrorCode::kNotFound, "no check named '" + name + "' in " + inv.source + " (" +
                                               (known.empty() ? "it has no [[checks]]" : "known: " + known) + ")");
  }
  std::vector<std::string> targets = Covered(inv, *check);
  if (!target.empty()) {
    if (std::find(targets.begin(), targets.end(), target) == targets.end()) {
      std::string list;
      for (const auto& t : targets) list += (list.empty() ? "" : ", ") + t;
      return MakeError(ErrorCode::kInvalidArgument,
                       "'" + target + "' is not a target of check " + name + " (it covers " + list + ")");
    }
    targets = {target};
  }
  if (targets.empty()) return MakeError(ErrorCode::kNotFound, "check " + name + " covers no target now");
  return RunOn(inv, *check, targets, "manual");
}

std::vector<CheckRunResult> CheckScheduler::RunOn(const inventory::Inventory& inv, const inventory::Check& check,
                                                  const std::vector<std::string>& targets, const std::string& trigger) {
  std::vector<CheckRunResult> out;
  if (targets.empty()) return out;
  const std::int64_t started = NowMs();
  const audit::Actor actor = ActorFor(check, trigger + "@" + FormatMs(started));
  NeverConfirmer never;
  if (!check.capture.empty()) {
    for (const auto& target : targets) {
      CaptureCall call;
      call.selector = target;
      call.request.capability = check.capture;
      call.request.action = check.capture == "camera" ? "snap" : "snapshot";
      call.request.timeout_ms = check.timeout_ms.value_or(0);
      CaptureReport report = gateway_.Capture(actor, call, cancel_, nullptr, &never);
      if (report.target.empty()) report.target = target;
      out.push_back(Record(inv, check, target, trigger, EvaluateCapture(check, report), started, report.action_id));
    }
    return out;
  }

  // Targets where policy would ask a human are refused up front: a check cannot wait for one,
  // and filing an approval request at every slot would bury the real ones.
  const policy::ParsedCommand parsed = policy::ParseShell(check.command);
  const auto grants = approvals_.PolicyGrants();
  std::vector<std::string> runnable;
  for (const auto& id : targets) {
    const inventory::Target* t = inv.Find(id);
    if (t == nullptr) continue;
    const auto d = policy::DecideCommand(inv, *t, parsed, grants);
    if (d.verdict == policy::CommandDecision::Verdict::kConfirm) {
      CheckVerdict v;
      v.summary = check.name + " on " + id + ": not run: policy asks a human first (" + d.rule + "), and a check " +
                  "cannot wait for one; allow its command for " + id + " in hosts.toml";
      out.push_back(Record(inv, check, id, trigger, v, started, ""));
    } else {
      runnable.push_back(id);
    }
  }
  if (runnable.empty()) return out;
  RunCall call;
  call.selectors = runnable;
  call.command.shell = check.command;
  call.timeout_ms = check.timeout_ms;
  RunReport report = gateway_.Run(actor, call, cancel_, nullptr, &never);
  if (report.error) {
    for (const auto& id : runnable) {
      CheckVerdict v;
      v.summary = check.name + " on " + id + ": could not run: " + OneLine(report.error->message);
      out.push_back(Record(inv, check, id, trigger, v, started, ""));
    }
    return out;
  }
  for (const auto& r : report.results) {
    out.push_back(Record(inv, check, r.target, trigger, EvaluateCheck(check, r), started, r.action_id));
  }
  return out;
}

CheckRunResult CheckScheduler::Record(const inventory::Inventory& inv, const inventory::Check& check,
                                      const std::string& target, const std::string& trigger, CheckVerdict verdict,
                                      std::int64_t started_ms, const std::string& action_id) {
  CheckRunResult result;
  result.check = check.name;
  result.target = target;
  result.trigger = trigger;
  result.action_id = action_id;
  bool announce = false;
  bool file = false;
  std::string withdraw;
  int failed_runs = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    CheckTargetState& s = state_.checks[check.name].targets[target];
    s.status = CheckStatusName(verdict.status);
    s.summary = verdict.summary;
    s.exit_code = verdict.exit_code;
    s.output = verdict.output;
    s.trigger = trigger;
    s.started_ms = started_ms;
    s.finished_ms = NowMs();
    if (verdict.status == CheckStatus::kPass) {
      failed_runs = s.streak;
      if (s.remediation == "pending") withdraw = s.approval_id;
      s.streak = 0;
      s.alerted = false;
      s.approval_id.clear();
      s.remediation.clear();
    } else {
      ++s.streak;
      announce = !s.alerted;
      // A remediation is for a check that ran and found a problem, not for an unreachable target.
      // An expired request is filed again; a denied one ends this streak's remediation.
      file = verdict.status == CheckStatus::kFail && !check.remediation.empty() &&
             (s.remediation.empty() || s.remediation == "expired");
      // Announced on disk before the alert runs: a restart never alerts this streak twice.
      if (announce) s.alerted = true;
    }
    SaveLocked();
  }
  if (verdict.status == CheckStatus::kPass) {
    if (failed_runs > 0) {
      Event("check.recovered", check.name, target,
            {{"summary", verdict.summary}, {"failedRuns", failed_runs}, {"trigger", trigger}});
    }
    if (!withdraw.empty()) Withdraw(check.name, target, withdraw);
    result.verdict = std::move(verdict);
    return result;
  }
  if (file) result.approval_id = FileRemediation(inv, check, target, verdict);
  if (announce) {
    Event("check.failed", check.name, target,
          {{"status", CheckStatusName(verdict.status)},
           {"summary", verdict.summary},
           {"trigger", trigger},
           {"actionId", action_id},
           {"approvalId", result.approval_id.empty() ? Json(nullptr) : Json(result.approval_id)}});
    RunAlert(check, target, verdict, result.approval_id);
    result.alerted = true;
  }
  result.verdict = std::move(verdict);
  return result;
}

std::string CheckScheduler::FileRemediation(const inventory::Inventory& inv, const inventory::Check& check,
                                            const std::string& target, const CheckVerdict& verdict) {
  const ApprovalBinding binding = RemediationBinding(check, target);
  const auto risk = policy::Classify(policy::ParseShell(check.remediation), policy::ClassifyRulesOf(inv));
  const std::string rule = "checks." + check.name + ".remediation";
  const std::string reason = verdict.summary + ". Approving runs the remediation `" +
                             gateway_.Redact(check.remediation) + "` once on " + target + " (" + check.source + ")";
  const audit::Actor actor = ActorFor(check, "remediation");
  // Nobody is asked to approve what policy would refuse anyway (deny wins, read-only mode).
  if (const inventory::Target* t = inv.Find(target)) {
    const auto d = policy::DecideCommand(inv, *t, policy::ParseShell(check.remediation), approvals_.PolicyGrants());
    if (d.verdict == policy::CommandDecision::Verdict::kRefuse) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        state_.checks[check.name].targets[target].remediation = "refused";
        SaveLocked();
      }
      Event("check.remediation", check.name, target,
            {{"outcome", "refused"}, {"rule", d.rule}, {"reason", gateway_.Redact(d.reason)}, {"filed", false}});
      return "";
    }
  }
  bool created = false;
  auto request =
      approvals_.Request(binding, policy::RiskName(risk.risk), rule, reason, audit::EncodeActor(actor), &created);
  std::lock_guard<std::mutex> lock(mutex_);
  CheckTargetState& s = state_.checks[check.name].targets[target];
  if (!request) {
    spdlog::error("checks: cannot file the remediation of {} on {}: {}", check.name, target, request.error().message);
    Event("check.remediation", check.name, target, {{"outcome", "not-filed"}, {"error", request.error().message}});
    return "";
  }
  s.approval_id = request->id;
  s.remediation = "pending";
  SaveLocked();
  if (created) {
    Event("approval.requested", check.name, target,
          {{"approvalId", request->id},
           {"targets", binding.targets},
           {"command", gateway_.Redact(check.remediation)},
           {"risk", request->risk},
           {"rule", rule},
           {"expiresAt", request->expires_at}});
  }
  return request->id;
}

void CheckScheduler::RunAlert(const inventory::Check& check, const std::string& target, const CheckVerdict& verdict,
                              const std::string& approval_id) {
  if (check.alert.empty()) return;
  core::ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", check.alert};
  spec.env = {{"LABGATE_CHECK", check.name},
              {"LABGATE_CHECK_TARGET", target},
              {"LABGATE_CHECK_STATUS", CheckStatusName(verdict.status)},
              {"LABGATE_CHECK_SUMMARY", verdict.summary},
              {"LABGATE_CHECK_EXIT_CODE", verdict.exit_code ? std::to_string(*verdict.exit_code) : ""},
              {"LABGATE_CHECK_OUTPUT", verdict.output},
              {"LABGATE_CHECK_APPROVAL", approval_id}};
  spec.timeout = kAlertTimeout;
  spec.output_cap = kCheckOutputCap;
  auto outcome = runner_.Run(spec, cancel_, nullptr);
  Json details = {{"command", gateway_.Redact(check.alert)}, {"summary", verdict.summary}};
  if (!outcome) {
    details["error"] = outcome.error().message;
    spdlog::warn("checks: the alert of {} could not start: {}", check.name, outcome.error().message);
  } else {
    details["exitCode"] = outcome->exit_code ? Json(*outcome->exit_code) : Json(nullptr);
    details["timedOut"] = outcome->timed_out;
    details["durationMs"] = outcome->duration.count();
    if (outcome->exit_code != 0) {
      details["stderr"] = gateway_.Redact(core::ToValidUtf8(FirstLine(outcome->err.text)));
      spdlog::warn("checks: the alert of {} failed (exit {}): {}", check.name,
                   outcome->exit_code ? std::to_string(*outcome->exit_code) : "none", FirstLine(outcome->err.text));
    }
  }
  Event("check.alert", check.name, target, details);
}

void CheckScheduler::Withdraw(const std::string& check, const std::string& target, const std::string& approval_id) {
  // The check passes again: the request would remediate nothing. Close it if nobody decided yet.
  auto decided = approvals_.Decide(approval_id, false, "labgate checks (" + check + " passed again on " + target + ")");
  if (decided) Event("check.remediation", check, target, {{"approvalId", approval_id}, {"outcome", "withdrawn"}});
}

void CheckScheduler::Remediate(const inventory::Inventory& inv) {
  struct Waiting {
    std::string check;
    std::string target;
    std::string approval_id;
  };
  std::vector<Waiting> waiting;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, record] : state_.checks) {
      for (const auto& [target, s] : record.targets) {
        if (s.remediation == "pending" && !s.approval_id.empty()) waiting.push_back({name, target, s.approval_id});
      }
    }
  }
  if (waiting.empty()) return;
  auto requests = approvals_.List(true);
  if (!requests) {
    spdlog::warn("checks: cannot read approvals: {}", requests.error().message);
    return;
  }
  auto settle = [&](const Waiting& w, const std::string& outcome, Json details) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& s = state_.checks[w.check].targets[w.target];
      if (s.approval_id == w.approval_id) s.remediation = outcome;
      SaveLocked();
    }
    details["approvalId"] = w.approval_id;
    details["outcome"] = outcome;
    Event("check.remediation", w.check, w.target, std::move(details));
  };
  for (const auto& w : waiting) {
    if (cancel_.cancelled()) return;
    auto it = std::find_if(requests->begin(), requests->end(),
                           [&](const ApprovalRequest& r) { return r.id == w.approval_id; });
    const inventory::Check* check = FindCheck(inv, w.check);
    if (it == requests->end()) {
      settle(w, "expired", {{"why", "the request is no longer in the approval store"}});
    } else if (it->status == "pending") {
      continue;
    } else if (it->status == "denied" || it->status == "expired" || it->status == "used") {
      settle(w, it->status, {{"decidedBy", it->decided_by}});
    } else if (it->status == "approved" && check != nullptr) {
      auto taken = approvals_.TakeApproved(RemediationBinding(*check, w.target));
      if (!taken) {
        spdlog::warn("checks: cannot take approval {}: {}", w.approval_id, taken.error().message);
      } else if (!*taken) {
        // The remediation in hosts.toml changed since the request: what was approved is not what would run.
        settle(w, "changed", {{"why", "the remediation in the inventory is no longer the one approved; nothing ran"}});
      } else {
        RunRemediation(inv, *check, w.target, **taken);
      }
    } else if (check == nullptr) {
      settle(w, "changed", {{"why", "the check left the inventory"}});
    }
  }
}

void CheckScheduler::RunRemediation(const inventory::Inventory& inv, const inventory::Check& check,
                                    const std::string& target, const ApprovalRequest& approval) {
  const std::string who = "operator " + approval.decided_by + " (approval " + approval.id + ")";
  Event("approval.used", check.name, target,
        {{"approvalId", approval.id},
         {"approvedBy", approval.decided_by},
         {"command", gateway_.Redact(check.remediation)}});
  RunCall call;
  call.selectors = {target};
  call.command.shell = check.remediation;
  call.timeout_ms = check.timeout_ms;
  const ApprovalBinding binding = RemediationBinding(check, target);
  call.env = binding.env;
  ApprovedConfirmer approved(who);
  RunReport report = gateway_.Run(ActorFor(check, "remediation:" + approval.id), call, cancel_, nullptr, &approved);
  Json details = {{"approvalId", approval.id}, {"approvedBy", approval.decided_by}};
  std::string outcome = "ran";
  if (report.error) {
    outcome = "refused";
    details["error"] = report.error->message;
  } else if (!report.results.empty()) {
    const auto& r = report.results[0];
    details["actionId"] = r.action_id;
    details["exitCode"] = r.exit_code ? Json(*r.exit_code) : Json(nullptr);
    if (r.decision == "refused") {
      outcome = "refused";
    } else if (!r.ok()) {
      outcome = "failed";
    }
    if (r.error) details["error"] = *r.error;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& s = state_.checks[check.name].targets[target];
    if (s.approval_id == approval.id) s.remediation = outcome;
    SaveLocked();
  }
  details["outcome"] = outcome;
  Event("check.remediation", check.name, target, details);
  // See whether it helped; the result settles the streak like any other run.
  RunOn(inv, check, {target}, "after-remediation");
}

void CheckScheduler::OnNodeOffline(const std::string& node_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  NodeSighting& node = state_.nodes[node_id];
  node.online = false;
  node.offline_since_ms = NowMs();
  sightings_dirty_ = true;  // written by the next tick (see kSightingsEveryMs)
}

void CheckScheduler::OnNodeOnline(const std::string& node_id) {
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    NodeSighting& node = state_.nodes[node_id];
    if (!node.online && node.offline_since_ms > 0) {
      node_events_.push_back({node_id, NowMs() - node.offline_since_ms});
      queued = true;
    }
    node.online = true;
    node.offline_since_ms = 0;
    sightings_dirty_ = true;
  }
  if (queued) wake_.notify_all();
}

Json CheckScheduler::List() const {
  const auto snapshot = gateway_.inventory();
  const inventory::Inventory& inv = *snapshot;
  std::lock_guard<std::mutex> lock(mutex_);
  return ChecksJson(inv, state_, NowMs());
}

CheckStateFile CheckScheduler::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

}  // namespace labgate::gateway
