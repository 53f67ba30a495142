#include "gateway/checks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fakes/fakes.h"
#include "inventory/inventory.h"
#include "policy/decide.h"

namespace labgate::gateway {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

core::Result<inventory::Inventory> Parse(const std::string& toml) {
  return inventory::ParseInventory(toml, "hosts.toml", "/");
}

// The inventory as every load path sees it: parsed, then checked by policy.
core::Status Load(const std::string& toml) {
  auto inv = Parse(toml);
  if (!inv) return inv.error();
  return policy::CheckInventory(*inv);
}

std::string ErrorOf(const std::string& toml) {
  auto ok = Load(toml);
  return ok ? std::string() : ok.error().message;
}

// Runs with TZ set, restoring the old value afterwards.
class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ScopedTimeZone() {
    if (old_) {
      ::setenv("TZ", old_->c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }

 private:
  std::optional<std::string> old_;
};

// ---- hosts.toml: [[checks]] ----

TEST(ChecksConfig, Parse_AllKeys_Read) {
  auto inv = Parse(R"(
[[hosts]]
id = "prox4"
address = "10.0.0.4"
groups = ["servers"]

[[nodes]]
id = "cam"
capabilities = ["camera"]

[[checks]]
name = "disk-pressure"
targets = ["local", "group:servers"]
command = "df -P / | awk 'NR==2 {print $5}'"
every = "1h30m"
timeout = "30s"
expect = { exit_code = 0, stdout_matches = "%", below = 90, above = 0 }
alert = "ntfy publish homelab \"$LABGATE_CHECK_SUMMARY\""
remediation = "journalctl --vacuum-size=200M"

[[checks]]
name = "backup"
targets = "prox4"
command = "find /srv/backup -mmin -1500 | grep -q ."
at = "03:05"

[[checks]]
name = "door"
targets = "cam"
capture = "camera"
on = "node-online-after-offline"
offline_for = "5m"
)");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  ASSERT_EQ(inv->checks.size(), 3u);
  const auto& disk = inv->checks[0];
  EXPECT_EQ(disk.name, "disk-pressure");
  EXPECT_EQ(disk.targets, (std::vector<std::string>{"local", "group:servers"}));
  EXPECT_EQ(disk.every_ms, 90 * 60 * 1000);
  EXPECT_EQ(disk.timeout_ms, 30000);
  EXPECT_EQ(disk.expect.stdout_matches, "%");
  EXPECT_EQ(disk.expect.below, 90.0);
  EXPECT_EQ(disk.expect.above, 0.0);
  EXPECT_EQ(disk.remediation, "journalctl --vacuum-size=200M");
  EXPECT_EQ(disk.command_source, "hosts.toml:14: checks[0].command");
  EXPECT_EQ(inv->checks[1].targets, (std::vector<std::string>{"prox4"}));
  EXPECT_EQ(inv->checks[1].at_minute, 3 * 60 + 5);
  EXPECT_EQ(inv->checks[2].capture, "camera");
  EXPECT_EQ(inv->checks[2].on, "node-online-after-offline");
  EXPECT_EQ(inv->checks[2].offline_for_ms, 5 * 60 * 1000);
  EXPECT_TRUE(policy::CheckInventory(*inv).ok());
}

TEST(ChecksConfig, Parse_Errors_NameFileLineAndKey) {
  const std::string message = ErrorOf(R"(
[[nodes]]
id = "cam"
capabilities = ["run"]

[[checks]]
name = "a"
targets = "nope"
command = "uptime"
every = "soon"

[[checks]]
name = "a"
targets = "local"
command = "uptime"
every = "1m"
at = "25:00"
expect = { stdout_matches = "(" }

[[checks]]
targets = "cam"
capture = "camera"
offline_for = "5m"
every = "1m"

[[checks]]
name = "d"
targets = "local"
command = "uptime"
on = "node-online-after-offline"
colour = "red"
)");
  EXPECT_NE(message.find("hosts.toml:8: checks[0].targets: unknown target 'nope'"), std::string::npos) << message;
  EXPECT_NE(message.find("hosts.toml:10: checks[0].every: 'soon' is not a duration"), std::string::npos) << message;
  EXPECT_NE(message.find("hosts.toml:13: checks[1].name: duplicate check name 'a' (first declared on line 6)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("hosts.toml:17: checks[1].at: '25:00' is not a time of day"), std::string::npos) << message;
  EXPECT_NE(message.find("checks[1].at: give exactly one of every, at and on"), std::string::npos) << message;
  EXPECT_NE(message.find("hosts.toml:18: checks[1].expect.stdout_matches: '(' is not a regular expression"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("hosts.toml:20: checks[2].name: missing"), std::string::npos) << message;
  EXPECT_NE(message.find("hosts.toml:22: checks[2].capture: cam does not list camera"), std::string::npos) << message;
  EXPECT_NE(message.find("hosts.toml:23: checks[2].offline_for: only means something with on ="), std::string::npos)
      << message;
  EXPECT_NE(message.find("hosts.toml:28: checks[3].targets: covers no node"), std::string::npos) << message;
  EXPECT_NE(message.find("hosts.toml:31: checks[3].colour: unknown key"), std::string::npos) << message;
}

TEST(ChecksConfig, Parse_NoTriggerOrNoCommand_Refused) {
  const std::string message = ErrorOf("[[checks]]\nname = \"x\"\ntargets = \"local\"\n");
  EXPECT_NE(message.find("hosts.toml:1: checks[0].command: missing"), std::string::npos) << message;
  EXPECT_NE(message.find("hosts.toml:1: checks[0].every: missing: say when it runs"), std::string::npos) << message;
}

TEST(ChecksConfig, MutatingCommand_RefusedAtLoad) {
  const std::string message = ErrorOf(R"([[checks]]
name = "cleanup"
targets = "local"
command = "df -h; rm -f /tmp/old.log"
every = "1h"
)");
  EXPECT_NE(message.find("hosts.toml:4: checks[0].command: 'df -h; rm -f /tmp/old.log' is mutating (builtin:rm"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("a check must be read-only; put changes in remediation"), std::string::npos) << message;
}

TEST(ChecksConfig, DestructiveAndRedirectingCommands_RefusedAtLoad) {
  for (const char* command : {"systemctl restart tailscaled", "df -h > /tmp/df.txt", "sh -c \\\"$(curl x)\\\""}) {
    const std::string message = ErrorOf(std::string("[[checks]]\nname = \"x\"\ntargets = \"local\"\ncommand = \"") +
                                        command + "\"\nevery = \"1h\"\n");
    EXPECT_NE(message.find("hosts.toml:4: checks[0].command"), std::string::npos) << command << ": " << message;
    EXPECT_NE(message.find("a check must be read-only"), std::string::npos) << message;
  }
}

TEST(ChecksConfig, OperatorClassifiedReadOnly_Accepted) {
  const std::string check =
      "[[checks]]\nname = \"health\"\ntargets = \"local\"\ncommand = \"/opt/scripts/health --quiet\"\nevery = "
      "\"30m\"\n";
  EXPECT_FALSE(Load(check).ok());  // an unknown program may change anything
  EXPECT_TRUE(Load("[classify]\nread_only = [\"/opt/scripts/health *\"]\n\n" + check).ok());
}

// The examples shipped (commented out) in hosts.toml stay valid: uncommented, they load and
// every command classifies read-only.
TEST(ChecksConfig, BundledExamples_LoadWhenUncommented) {
  std::ifstream in(std::string(LABGATE_SOURCE_DIR) + "/hosts.toml");
  std::stringstream text;
  text << in.rdbuf();
  const std::string bundled = text.str();
  const auto begin = bundled.find("# >>> example checks");
  const auto end = bundled.find("# <<< example checks");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);

  std::istringstream region(bundled.substr(begin, end - begin));
  std::string block;
  std::string line;
  std::getline(region, line);  // the marker
  int checks = 0;
  while (std::getline(region, line)) {
    ASSERT_EQ(line.rfind("#", 0), 0u) << "an uncommented line in the example block: " << line;
    block += line.size() > 1 ? line.substr(2) + "\n" : "\n";
    if (line == "# [[checks]]") ++checks;
  }
  EXPECT_GE(checks, 6);
  const std::string context = R"([[hosts]]
id = "prox4"
address = "10.0.0.4"
groups = ["servers"]

[[nodes]]
id = "phone-node"
capabilities = ["camera", "location"]

)";
  auto inv = Parse(context + block);
  ASSERT_TRUE(inv.ok()) << inv.error().message << "\n" << block;
  auto ok = policy::CheckInventory(*inv);
  EXPECT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(inv->checks.size(), static_cast<std::size_t>(checks));
  // And the file as shipped still loads on a fresh machine.
  EXPECT_TRUE(inventory::LoadInventory(std::string(LABGATE_SOURCE_DIR) + "/hosts.toml").ok());
}

TEST(ChecksConfig, ParseCheckDuration_Table) {
  EXPECT_EQ(inventory::ParseCheckDuration("1s"), 1000);
  EXPECT_EQ(inventory::ParseCheckDuration("15m"), 15 * 60 * 1000);
  EXPECT_EQ(inventory::ParseCheckDuration("24h"), 24LL * 3600 * 1000);
  EXPECT_EQ(inventory::ParseCheckDuration("1d"), 24LL * 3600 * 1000);
  EXPECT_EQ(inventory::ParseCheckDuration("1h30m"), 90 * 60 * 1000);
  EXPECT_EQ(inventory::ParseCheckDuration("500ms"), 500);
  for (const char* bad : {"", "0s", "15", "m", "1w", "-1m", "1.5h", "15 m"}) {
    EXPECT_FALSE(inventory::ParseCheckDuration(bad).has_value()) << bad;
  }
}

// ---- judging a run ----

inventory::Check CheckWith(inventory::CheckExpect expect) {
  inventory::Check c;
  c.name = "disk";
  c.command = "df";
  c.expect = expect;
  return c;
}

TargetRunResult Ran(int exit_code, std::string out) {
  TargetRunResult r;
  r.target = "prox4";
  r.exit_code = exit_code;
  r.stdout_text = std::move(out);
  return r;
}

TEST(EvaluateCheck, Table) {
  struct Row {
    inventory::CheckExpect expect;
    TargetRunResult result;
    CheckStatus status;
    std::string summary;
  };
  inventory::CheckExpect below90;
  below90.below = 90;
  inventory::CheckExpect above10;
  above10.above = 10;
  inventory::CheckExpect active;
  active.stdout_matches = "^active";
  inventory::CheckExpect exit3;
  exit3.exit_code = 3;
  const Row rows[] = {
      {{}, Ran(0, "anything"), CheckStatus::kPass, "disk on prox4: ok (exit code 0)"},
      {{}, Ran(3, "inactive\n"), CheckStatus::kFail, "disk on prox4: exit code 3, expected 0 (inactive)"},
      {exit3, Ran(3, ""), CheckStatus::kPass, "disk on prox4: ok (exit code 3)"},
      {below90, Ran(0, "87%\n"), CheckStatus::kPass, "disk on prox4: ok (87 is below 90)"},
      {below90, Ran(0, "93%\n"), CheckStatus::kFail, "disk on prox4: 93 is not below 90"},
      {below90, Ran(0, "90\n"), CheckStatus::kFail, "disk on prox4: 90 is not below 90"},
      {below90, Ran(0, "load 89.5 91\n"), CheckStatus::kPass, "disk on prox4: ok (89.5 is below 90)"},
      {below90, Ran(0, "no numbers here\n"), CheckStatus::kFail,
       "disk on prox4: printed no number to compare (expected one below 90): no numbers here"},
      {below90, Ran(1, "95\n"), CheckStatus::kFail, "disk on prox4: exit code 1, expected 0 (95)"},
      {above10, Ran(0, "-5\n"), CheckStatus::kFail, "disk on prox4: -5 is not above 10"},
      {active, Ran(0, "active\n"), CheckStatus::kPass, "disk on prox4: ok (matches /^active/)"},
      {active, Ran(0, "inactive\n"), CheckStatus::kFail, "disk on prox4: output does not match /^active/ (inactive)"},
      {active, Ran(0, ""), CheckStatus::kFail, "disk on prox4: output does not match /^active/ (it printed nothing)"},
  };
  for (const auto& row : rows) {
    const CheckVerdict v = EvaluateCheck(CheckWith(row.expect), row.result);
    EXPECT_EQ(v.status, row.status) << row.summary;
    EXPECT_EQ(v.summary, row.summary);
  }
}

TEST(EvaluateCheck, NotRun_IsErrorNotFail) {
  TargetRunResult refused;
  refused.target = "prox4";
  refused.error = "refused by policies.run.deny: `df` matches deny pattern 'df*'\nsecond line";
  auto v = EvaluateCheck(CheckWith({}), refused);
  EXPECT_EQ(v.status, CheckStatus::kError);
  EXPECT_EQ(v.summary,
            "disk on prox4: could not run: refused by policies.run.deny: `df` matches deny pattern 'df*' "
            "second line");
  TargetRunResult timed_out = Ran(0, "");
  timed_out.exit_code.reset();
  timed_out.timed_out = true;
  timed_out.error = "timed out after 30000 ms; its process group was stopped";
  EXPECT_EQ(EvaluateCheck(CheckWith({}), timed_out).status, CheckStatus::kError);
  TargetRunResult killed = Ran(0, "");
  killed.exit_code.reset();
  killed.signal = "KILL";
  EXPECT_EQ(EvaluateCheck(CheckWith({}), killed).summary, "disk on prox4: killed by signal KILL");
}

TEST(EvaluateCheck, FirstNumber_Table) {
  EXPECT_EQ(FirstNumber("87%"), 87.0);
  EXPECT_EQ(FirstNumber("Use% 12.5 of /"), 12.5);
  EXPECT_EQ(FirstNumber("-3 degrees"), -3.0);
  EXPECT_EQ(FirstNumber("v1.2.3"), 1.2);
  EXPECT_FALSE(FirstNumber("none").has_value());
  EXPECT_FALSE(FirstNumber("").has_value());
}

TEST(CheckSchedule, NextLocalTime_StrictlyAfter) {
  ScopedTimeZone utc("UTC");
  const std::int64_t day = 24LL * 3600 * 1000;
  const std::int64_t midnight = 1795000000000LL / day * day;  // 2026-11-18T00:00Z
  EXPECT_EQ(NextLocalTimeMs(3 * 60, midnight), midnight + 3 * 3600 * 1000);
  EXPECT_EQ(NextLocalTimeMs(3 * 60, midnight + 3 * 3600 * 1000), midnight + day + 3 * 3600 * 1000);
  EXPECT_EQ(NextLocalTimeMs(0, midnight + 1), midnight + day);
  ScopedTimeZone berlin("Europe/Berlin");  // 03:00 in Berlin is 02:00Z in November
  EXPECT_EQ(NextLocalTimeMs(3 * 60, midnight), midnight + 2 * 3600 * 1000);
}

// ---- the scheduler, on fakes ----

// A machine whose check command prints `value_` and whose remediation sets it to 50.
class CheckSchedulerTest : public ::testing::Test {
 protected:
  static constexpr const char* kConfig = R"(
[[nodes]]
id = "cam"
capabilities = ["run"]

[[checks]]
name = "disk"
targets = "local"
command = "cat /srv/disk"
every = "1m"
expect = { below = 90 }
alert = "notify-me"
remediation = "echo 50 > /srv/disk"

[[checks]]
name = "cam-back"
targets = "cam"
command = "uptime"
on = "node-online-after-offline"
offline_for = "5m"
)";

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("labgate-checks-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    approvals_ = std::make_unique<ApprovalStore>(dir_.string(), clock_, seconds(900));
    executor_.set_responder([this](const inventory::Target& target, const capabilities::RunRequest& request) {
      core::ProcessOutcome o;
      o.exit_code = 0;
      const std::string shell = request.command.shell.value_or("");
      if (shell == "cat /srv/disk") o.out.text = value_ + "\n";
      if (shell == "echo 50 > /srv/disk") value_ = "50";
      if (shell == "uptime") o.out.text = "up on " + target.id + "\n";
      return core::Result<core::ProcessOutcome>(o);
    });
    Use(kConfig);
  }
  void TearDown() override {
    scheduler_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Use(const std::string& toml) {
    scheduler_.reset();
    auto inv = Parse(toml);
    ASSERT_TRUE(inv.ok()) << inv.error().message;
    gateway_ = std::make_unique<Gateway>(std::make_shared<const inventory::Inventory>(*inv), audit_, executor_, clock_,
                                         nullptr, &executor_, approvals_.get());
    Restart();
  }
  // A new scheduler over the same state file: what a gateway restart does.
  void Restart() {
    scheduler_.reset();
    scheduler_ = std::make_unique<CheckScheduler>(*gateway_, *approvals_, audit_, (dir_ / "checks.json").string(),
                                                  clock_, alerts_);
    ASSERT_TRUE(scheduler_->Load().ok());
  }

  // How often the executor ran `shell`.
  int Ran(const std::string& shell) const {
    int n = 0;
    for (const auto& c : executor_.calls()) n += c.request.command.shell == shell;
    return n;
  }
  std::vector<ApprovalRequest> Requests() {
    auto list = approvals_->List(true);
    EXPECT_TRUE(list.ok());
    return list.ok() ? *list : std::vector<ApprovalRequest>{};
  }
  std::string Env(const core::ProcessSpec& spec, const std::string& key) {
    for (const auto& [k, v] : spec.env) {
      if (k == key) return v;
    }
    return "(unset)";
  }
  CheckTargetState StateOf(const std::string& check, const std::string& target) {
    return scheduler_->state().checks[check].targets[target];
  }
  int Events(const std::string& name) {
    int n = 0;
    for (const auto& r : storage_.records()) n += r.value("event", "") == name;
    return n;
  }

  std::filesystem::path dir_;
  fakes::FakeClock clock_;
  fakes::FakeAuditStorage storage_;
  audit::AuditLog audit_{storage_, clock_};
  fakes::FakeExecutor executor_{&storage_};
  fakes::FakeProcessRunner alerts_;
  std::unique_ptr<ApprovalStore> approvals_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<CheckScheduler> scheduler_;
  std::string value_ = "40";
};

TEST_F(CheckSchedulerTest, Every_FirstTickRuns_ThenOncePerPeriod) {
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 1);
  clock_.Advance(seconds(30));
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 1);
  clock_.Advance(seconds(30));
  scheduler_->Tick();
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 2);
  // Five periods pass unseen (the gateway was busy or down): one run, not five.
  clock_.Advance(minutes(5) + seconds(10));
  scheduler_->Tick();
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 3);
  // The schedule keeps its phase: the next slot is a whole period after the last one.
  clock_.Advance(seconds(50));
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 4);
}

TEST_F(CheckSchedulerTest, Every_RestartFromSavedState_NoDoubleRun) {
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 1);
  Restart();
  scheduler_->Tick();
  clock_.Advance(seconds(59));
  Restart();
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 1);
  clock_.Advance(seconds(1));
  Restart();
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 2);
}

TEST_F(CheckSchedulerTest, Every_SlotClaimedOnDiskBeforeItRuns) {
  // What the state file says while the command runs: the slot is already taken.
  std::int64_t slot_on_disk = -1;
  executor_.set_responder([&](const inventory::Target&, const capabilities::RunRequest&) {
    auto saved = LoadCheckState((dir_ / "checks.json").string());
    slot_on_disk = saved.ok() ? saved->checks["disk"].last_slot_ms : -2;
    core::ProcessOutcome o;
    o.exit_code = 0;
    o.out.text = "10\n";
    return core::Result<core::ProcessOutcome>(o);
  });
  scheduler_->Tick();
  EXPECT_EQ(slot_on_disk, std::chrono::duration_cast<milliseconds>(clock_.Now().time_since_epoch()).count());
}

TEST_F(CheckSchedulerTest, At_RunsOnceAtTheLocalTime_AcrossRestarts) {
  ScopedTimeZone utc("UTC");
  Use(R"([[checks]]
name = "noon"
targets = "local"
command = "uptime"
at = "12:00"
)");
  // The fake clock starts at 2026-11-18T11:06:40Z.
  scheduler_->Tick();
  EXPECT_EQ(Ran("uptime"), 0);
  clock_.Advance(minutes(53) + seconds(19));  // 11:59:59
  scheduler_->Tick();
  Restart();
  scheduler_->Tick();
  EXPECT_EQ(Ran("uptime"), 0);
  auto listed = scheduler_->List();
  EXPECT_EQ(listed[0]["nextRun"], "2026-11-18T12:00:00.000Z");
  EXPECT_EQ(listed[0]["trigger"], "at 12:00 (local)");
  clock_.Advance(seconds(1));  // 12:00:00
  scheduler_->Tick();
  scheduler_->Tick();
  Restart();
  clock_.Advance(minutes(1));
  scheduler_->Tick();
  EXPECT_EQ(Ran("uptime"), 1);
  EXPECT_EQ(scheduler_->List()[0]["nextRun"], "2026-11-19T12:00:00.000Z");
  // Down over two noons: the missed slot runs once when the gateway is back.
  clock_.Advance(hours(48));
  Restart();
  scheduler_->Tick();
  scheduler_->Tick();
  EXPECT_EQ(Ran("uptime"), 2);
}

TEST_F(CheckSchedulerTest, Threshold_AlertOnce_ApprovalOnce_RemediationOnlyAfterApprove) {
  value_ = "95";
  scheduler_->Tick();
  ASSERT_EQ(alerts_.specs().size(), 1u);
  const core::ProcessSpec alert = alerts_.specs()[0];
  EXPECT_EQ(alert.argv, (std::vector<std::string>{"/bin/sh", "-c", "notify-me"}));
  EXPECT_EQ(Env(alert, "LABGATE_CHECK"), "disk");
  EXPECT_EQ(Env(alert, "LABGATE_CHECK_TARGET"), "local");
  EXPECT_EQ(Env(alert, "LABGATE_CHECK_STATUS"), "fail");
  EXPECT_EQ(Env(alert, "LABGATE_CHECK_SUMMARY"), "disk on local: 95 is not below 90");
  EXPECT_EQ(Env(alert, "LABGATE_CHECK_EXIT_CODE"), "0");
  EXPECT_EQ(Env(alert, "LABGATE_CHECK_OUTPUT"), "95\n");
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  const ApprovalRequest filed = requests[0];
  EXPECT_EQ(Env(alert, "LABGATE_CHECK_APPROVAL"), filed.id);
  EXPECT_EQ(filed.status, "pending");
  EXPECT_EQ(filed.rule, "checks.disk.remediation");
  EXPECT_EQ(filed.risk, "mutating");
  EXPECT_EQ(filed.binding["targets"], (nlohmann::json{"local"}));
  EXPECT_EQ(filed.binding["command"], (nlohmann::json{{"shell", "echo 50 > /srv/disk"}}));
  EXPECT_NE(filed.reason.find("disk on local: 95 is not below 90"), std::string::npos);

  // Still failing, period after period (and across a restart): no second alert, no second
  // request, and the remediation never runs on its own.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(minutes(1));
    if (i == 1) Restart();
    scheduler_->Tick();
  }
  EXPECT_EQ(Ran("cat /srv/disk"), 4);
  EXPECT_EQ(alerts_.specs().size(), 1u);
  EXPECT_EQ(Requests().size(), 1u);
  EXPECT_EQ(Ran("echo 50 > /srv/disk"), 0);
  EXPECT_EQ(StateOf("disk", "local").streak, 4);
  EXPECT_EQ(scheduler_->List()[0]["results"][0]["pendingApproval"], filed.id);

  ASSERT_TRUE(approvals_->Decide(filed.id, true, "alice").ok());
  clock_.Advance(seconds(1));
  scheduler_->Tick();
  EXPECT_EQ(Ran("echo 50 > /srv/disk"), 1);
  EXPECT_EQ(Ran("cat /srv/disk"), 5);  // checked again right after the remediation
  EXPECT_EQ(StateOf("disk", "local").status, "pass");
  EXPECT_EQ(StateOf("disk", "local").streak, 0);
  EXPECT_EQ(Requests()[0].status, "used");
  // The remediation went through the pipeline: audited as the check, confirmed by the operator.
  bool audited = false;
  for (const auto& r : storage_.records()) {
    if (r.value("kind", "") == "intent" && r["payload"].value("shell", "") == "echo 50 > /srv/disk") {
      audited = true;
      EXPECT_EQ(r["who"]["via"], "check");
      EXPECT_EQ(r["who"]["client"]["name"], "disk");
    }
  }
  EXPECT_TRUE(audited);
  EXPECT_EQ(Events("check.remediation"), 1);
  EXPECT_EQ(Events("check.recovered"), 1);

  for (int i = 0; i < 3; ++i) {
    clock_.Advance(minutes(1));
    scheduler_->Tick();
  }
  EXPECT_EQ(Ran("echo 50 > /srv/disk"), 1);  // consumed: never again
  EXPECT_EQ(alerts_.specs().size(), 1u);
}

TEST_F(CheckSchedulerTest, DeniedApproval_NeverRuns_AndIsNotFiledAgainThisStreak) {
  value_ = "95";
  scheduler_->Tick();
  ASSERT_EQ(Requests().size(), 1u);
  ASSERT_TRUE(approvals_->Decide(Requests()[0].id, false, "alice").ok());
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(minutes(1));
    scheduler_->Tick();
  }
  EXPECT_EQ(Ran("echo 50 > /srv/disk"), 0);
  EXPECT_EQ(StateOf("disk", "local").remediation, "denied");
  EXPECT_EQ(Requests().size(), 1u);
  EXPECT_EQ(alerts_.specs().size(), 1u);
}

TEST_F(CheckSchedulerTest, ExpiredApproval_FiledAgainWithoutASecondAlert) {
  value_ = "95";
  scheduler_->Tick();
  clock_.Advance(minutes(16));  // past approval_ttl (900 s)
  scheduler_->Tick();           // sees the expiry
  EXPECT_EQ(StateOf("disk", "local").remediation, "expired");
  clock_.Advance(minutes(1));
  scheduler_->Tick();  // still failing: a fresh request
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].status, "pending");
  EXPECT_EQ(StateOf("disk", "local").approval_id, requests[0].id);
  EXPECT_EQ(alerts_.specs().size(), 1u);
  EXPECT_EQ(Ran("echo 50 > /srv/disk"), 0);
}

TEST_F(CheckSchedulerTest, Recovery_EndsTheStreak_NextFailureAlertsAgain) {
  value_ = "95";
  scheduler_->Tick();
  const std::string first = Requests()[0].id;
  value_ = "20";
  clock_.Advance(minutes(1));
  scheduler_->Tick();
  // The problem went away: the request would remediate nothing, so it is withdrawn.
  EXPECT_EQ(Requests()[0].status, "denied");
  EXPECT_NE(Requests()[0].decided_by.find("passed again"), std::string::npos);
  EXPECT_FALSE(approvals_->Decide(first, true, "alice").ok());
  value_ = "97";
  clock_.Advance(minutes(1));
  scheduler_->Tick();
  ASSERT_EQ(alerts_.specs().size(), 2u);
  EXPECT_EQ(Env(alerts_.specs()[1], "LABGATE_CHECK_SUMMARY"), "disk on local: 97 is not below 90");
  EXPECT_EQ(Requests().size(), 2u);
  EXPECT_EQ(Ran("echo 50 > /srv/disk"), 0);
}

TEST_F(CheckSchedulerTest, Unreachable_IsAnErrorAlert_WithoutARemediationRequest) {
  executor_.set_responder([](const inventory::Target&, const capabilities::RunRequest&) {
    return core::Result<core::ProcessOutcome>(core::MakeError(core::ErrorCode::kUnavailable, "connection refused"));
  });
  scheduler_->Tick();
  ASSERT_EQ(alerts_.specs().size(), 1u);
  EXPECT_EQ(Env(alerts_.specs()[0], "LABGATE_CHECK_STATUS"), "error");
  EXPECT_EQ(Env(alerts_.specs()[0], "LABGATE_CHECK_SUMMARY"), "disk on local: could not run: connection refused");
  EXPECT_EQ(Env(alerts_.specs()[0], "LABGATE_CHECK_APPROVAL"), "");
  EXPECT_TRUE(Requests().empty());
  EXPECT_EQ(StateOf("disk", "local").status, "error");
}

TEST_F(CheckSchedulerTest, PolicyWouldAsk_CheckRefusedWithoutFilingRequests) {
  Use(std::string("[policies.run]\nconfirm = true\n") + kConfig);
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 0);
  EXPECT_EQ(StateOf("disk", "local").status, "error");
  EXPECT_NE(StateOf("disk", "local").summary.find("policy asks a human first (policies.run.confirm)"),
            std::string::npos);
  EXPECT_TRUE(Requests().empty());
}

TEST_F(CheckSchedulerTest, DenyRuleRefusesRemediation_NoRequestFiled) {
  Use(std::string("[policies.run]\ndeny = [\"echo 50*\"]\n") + kConfig);
  value_ = "95";
  scheduler_->Tick();
  EXPECT_TRUE(Requests().empty());  // nobody is asked to approve what policy refuses
  EXPECT_EQ(StateOf("disk", "local").remediation, "refused");
  EXPECT_EQ(alerts_.specs().size(), 1u);
  EXPECT_EQ(Env(alerts_.specs()[0], "LABGATE_CHECK_APPROVAL"), "");
  clock_.Advance(minutes(1));
  scheduler_->Tick();
  EXPECT_EQ(Ran("echo 50 > /srv/disk"), 0);
}

TEST_F(CheckSchedulerTest, DenyRuleAddedAfterApproval_RemediationRefusedByThePipeline) {
  value_ = "95";
  scheduler_->Tick();
  ASSERT_TRUE(approvals_->Decide(Requests()[0].id, true, "alice").ok());
  // hosts.toml gains a deny rule before the next tick: deny wins over the approval.
  Use(std::string("[policies.run]\ndeny = [\"echo 50*\"]\n") + kConfig);
  clock_.Advance(seconds(1));
  scheduler_->Tick();
  EXPECT_EQ(Ran("echo 50 > /srv/disk"), 0);
  EXPECT_EQ(StateOf("disk", "local").remediation, "refused");
  EXPECT_EQ(Requests()[0].status, "used");
}

TEST_F(CheckSchedulerTest, NodeOnline_RespectsOfflineFor_AndSurvivesRestart) {
  scheduler_->OnNodeOffline("cam");
  clock_.Advance(minutes(2));
  scheduler_->OnNodeOnline("cam");
  scheduler_->Tick();
  EXPECT_EQ(Ran("uptime"), 0);  // back after 2 minutes: not a power event

  scheduler_->OnNodeOffline("cam");
  clock_.Advance(minutes(6));
  scheduler_->OnNodeOnline("cam");
  scheduler_->Tick();
  scheduler_->Tick();
  ASSERT_EQ(Ran("uptime"), 1);
  for (const auto& call : executor_.calls()) {
    if (call.request.command.shell == "uptime") {
      EXPECT_EQ(call.target, "cam");
    }
  }
  EXPECT_EQ(StateOf("cam-back", "cam").trigger, "node-online");

  // The gateway restarts while the node is away; it still knows since when.
  scheduler_->OnNodeOffline("cam");
  clock_.Advance(minutes(3));
  Restart();
  clock_.Advance(minutes(3));
  scheduler_->OnNodeOnline("cam");
  scheduler_->Tick();
  EXPECT_EQ(Ran("uptime"), 2);
  // A node that comes online without having been seen going away triggers nothing.
  scheduler_->OnNodeOnline("cam");
  scheduler_->Tick();
  EXPECT_EQ(Ran("uptime"), 2);
}

TEST_F(CheckSchedulerTest, NodeOnlineWhenGatewayWasDown_CountsFromTheGatewaysLastSighting) {
  scheduler_->OnNodeOffline("cam");
  scheduler_->OnNodeOnline("cam");  // a blip: online again, nothing to do
  scheduler_->Tick();
  EXPECT_EQ(Ran("uptime"), 0);
  // The gateway (and maybe the whole lab) loses power for 10 minutes.
  clock_.Advance(minutes(10));
  Restart();
  scheduler_->Start();
  scheduler_->OnNodeOnline("cam");
  for (int i = 0; i < 100 && Ran("uptime") == 0; ++i) std::this_thread::sleep_for(milliseconds(20));
  scheduler_->Stop();
  EXPECT_EQ(Ran("uptime"), 1);
}

TEST_F(CheckSchedulerTest, NodeStorm_ReachesTheStateFileOncePerSecond_NotOncePerNode) {
  // A gateway restart brings a whole fleet back at once. Each sighting used to rewrite the whole
  // file with an fsync, from the listener's threads: 10,000 nodes stalled their own heartbeats.
  scheduler_->Tick();
  const std::string path = (dir_ / "checks.json").string();
  auto count_nodes = [&] {
    auto saved = LoadCheckState(path);
    EXPECT_TRUE(saved.ok());
    return saved.ok() ? saved->nodes.size() : 0u;
  };
  ASSERT_EQ(count_nodes(), 0u);
  for (int i = 0; i < 2000; ++i) {
    const std::string id = "n" + std::to_string(i);
    scheduler_->OnNodeOffline(id);
    scheduler_->OnNodeOnline(id);
  }
  EXPECT_EQ(count_nodes(), 0u);  // nothing written per event
  scheduler_->Tick();
  EXPECT_EQ(count_nodes(), 0u);  // nor by a tick within the second of the last write
  clock_.Advance(seconds(1));
  scheduler_->Tick();
  EXPECT_EQ(count_nodes(), 2000u);

  // What came after the last write is not lost when the gateway stops.
  clock_.Advance(milliseconds(200));
  scheduler_->OnNodeOffline("late");
  Restart();
  const CheckStateFile after = scheduler_->state();
  const auto late = after.nodes.find("late");
  ASSERT_NE(late, after.nodes.end());
  EXPECT_FALSE(late->second.online);
  EXPECT_GT(late->second.offline_since_ms, 0);
}

TEST_F(CheckSchedulerTest, RunNow_RecordsStateAndRejectsStrangers) {
  value_ = "95";
  auto ran = scheduler_->RunNow("disk");
  ASSERT_TRUE(ran.ok()) << ran.error().message;
  ASSERT_EQ(ran->size(), 1u);
  EXPECT_EQ((*ran)[0].verdict.status, CheckStatus::kFail);
  EXPECT_TRUE((*ran)[0].alerted);
  EXPECT_FALSE((*ran)[0].approval_id.empty());
  EXPECT_EQ(StateOf("disk", "local").trigger, "manual");
  auto unknown = scheduler_->RunNow("nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("no check named 'nope'"), std::string::npos);
  EXPECT_NE(unknown.error().message.find("known: disk, cam-back"), std::string::npos);
  auto stranger = scheduler_->RunNow("disk", "cam");
  ASSERT_FALSE(stranger.ok());
  EXPECT_NE(stranger.error().message.find("'cam' is not a target of check disk (it covers local)"), std::string::npos);
  // A manual run does not move the schedule.
  scheduler_->Tick();
  EXPECT_EQ(Ran("cat /srv/disk"), 2);
}

TEST_F(CheckSchedulerTest, List_ShowsLastStatusAndNextRun) {
  scheduler_->Tick();
  auto listed = scheduler_->List();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0]["name"], "disk");
  EXPECT_EQ(listed[0]["trigger"], "every 1m");
  EXPECT_EQ(listed[0]["nextRun"], "2026-11-18T11:07:40.000Z");
  EXPECT_EQ(listed[0]["results"][0]["status"], "pass");
  EXPECT_EQ(listed[0]["results"][0]["summary"], "disk on local: ok (40 is below 90)");
  EXPECT_EQ(listed[1]["nextRun"], nullptr);
  EXPECT_EQ(listed[1]["results"][0]["status"], "never");
  const std::string text = ChecksText(listed);
  EXPECT_NE(text.find("disk on local: ok (40 is below 90)"), std::string::npos) << text;
  EXPECT_NE(text.find("on node-online-after-offline (offline at least 5m)"), std::string::npos) << text;
}

TEST_F(CheckSchedulerTest, CheckRemovedFromInventory_StateDropped) {
  scheduler_->Tick();
  EXPECT_EQ(scheduler_->state().checks.count("disk"), 1u);
  Use("[[checks]]\nname = \"other\"\ntargets = \"local\"\ncommand = \"uptime\"\nevery = \"1h\"\n");
  scheduler_->Tick();
  EXPECT_EQ(scheduler_->state().checks.count("disk"), 0u);
  EXPECT_EQ(scheduler_->state().checks.count("other"), 1u);
}

TEST_F(CheckSchedulerTest, CorruptStateFile_RefusedNotOverwritten) {
  scheduler_.reset();
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "checks.json") << "{ not json";
  CheckScheduler s(*gateway_, *approvals_, audit_, (dir_ / "checks.json").string(), clock_, alerts_);
  auto ok = s.Load();
  ASSERT_FALSE(ok.ok());
  EXPECT_NE(ok.error().message.find("is not valid JSON"), std::string::npos);
}

TEST(EvaluateCheck, PathologicalPatternOnBigOutput_LinearAndNoCrash) {
  // With std::regex, (a*)*b over 64 KiB of 'a' overflowed the stack or ran for ages.
  inventory::CheckExpect nested;
  nested.stdout_matches = "(a*)*b";
  const auto start = std::chrono::steady_clock::now();
  const CheckVerdict v = EvaluateCheck(CheckWith(nested), Ran(0, std::string(64 * 1024, 'a')));
  EXPECT_EQ(v.status, CheckStatus::kFail);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  inventory::CheckExpect alternation;
  alternation.stdout_matches = "(x|y|a)+$";
  EXPECT_EQ(EvaluateCheck(CheckWith(alternation), Ran(0, std::string(64 * 1024, 'a'))).status, CheckStatus::kPass);
}
}  // namespace
}  // namespace labgate::gateway
