// Routine checks end to end: a real `labgate gateway` daemon runs [[checks]] on `local` (and a
// real sshd host), alerts once, files an approval, runs the remediation only after the operator
// approves it with the real CLI, and keeps its schedule across a restart.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "sshd_fixture.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

int LineCount(const std::string& path) {
  const std::string text = ReadFile(path);
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

class Checks : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = dir_.path() + "/state";
    port_ = FreePort();
  }
  void TearDown() override { StopGateway(); }

  // hosts.toml: [gateway] in the test's dir, then `body`.
  void Config(const std::string& body) {
    config_ = dir_.Write("hosts.toml", "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(port_) +
                                           "\"\nstate_dir = \"" + state_ + "\"\n\n" + body);
  }
  Completed Labgate(std::vector<std::string> args) const {
    std::vector<std::string> argv = {LABGATE_BINARY, args[0], "--config", config_};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    return RunToCompletion(argv, dir_.path());
  }
  Json LabgateJson(std::vector<std::string> args) const {
    args.push_back("--json");
    auto c = Labgate(args);
    Json j = Json::parse(c.out, nullptr, false);
    return j.is_discarded() ? Json{{"cliError", c.err}, {"status", c.status}} : j;
  }
  // Starts `labgate gateway` and waits until its operator socket serves `checks list`.
  void StartGateway() {
    gateway_ = std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "gateway", "--config", config_});
    ASSERT_TRUE(PollUntil(
        [&] {
          return LabgateJson({"checks", "list"}).value("gatewayRunning", false);
        },
        milliseconds(10000)))
        << gateway_->Stderr();
  }
  void StopGateway() {
    if (!gateway_) return;
    ::kill(gateway_->pid(), SIGTERM);
    EXPECT_EQ(gateway_->Wait(milliseconds(10000)), 0) << gateway_->Stderr();
    gateway_.reset();
  }
  // Audit records, skipping a line being written right now.
  std::vector<Json> Audit() const {
    std::vector<Json> out;
    std::ifstream in(state_ + "/audit.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      Json j = Json::parse(line, nullptr, false);
      if (!j.is_discarded()) out.push_back(j);
    }
    return out;
  }
  // Intents the pipeline recorded for this shell command.
  int Intents(const std::string& shell) const {
    int n = 0;
    for (const auto& r : Audit()) {
      n += r.value("kind", "") == "intent" && r.contains("payload") && r["payload"].value("shell", "") == shell;
    }
    return n;
  }
  Json ResultOf(const std::string& check, const std::string& target) const {
    Json listed = LabgateJson({"checks", "list"});
    for (const auto& c : listed.value("checks", Json::array())) {
      if (c["name"] != check) continue;
      for (const auto& r : c["results"]) {
        if (r["target"] == target) return r;
      }
    }
    return Json{{"status", "missing"}, {"listing", listed}};
  }

  TempDir dir_;
  std::string state_;
  std::string config_;
  int port_ = 0;
  std::unique_ptr<Subprocess> gateway_;
};

TEST_F(Checks, Threshold_AlertsOnce_RemediationRunsOnlyAfterApprove) {
  const std::string value = dir_.Write("disk-used", "95\n");
  const std::string alerts = dir_.path() + "/alerts";
  const std::string remediation = "echo 50 > " + value;
  Config("[[checks]]\nname = \"disk\"\ntargets = \"local\"\ncommand = \"cat " + value +
         "\"\nevery = \"1s\"\nexpect = { below = 90 }\n"
         "alert = \"echo \\\"$LABGATE_CHECK_STATUS|$LABGATE_CHECK_APPROVAL|$LABGATE_CHECK_SUMMARY\\\" >> " +
         alerts + "\"\nremediation = \"" + remediation + "\"\n");
  StartGateway();

  ASSERT_TRUE(PollUntil([&] { return LineCount(alerts) >= 1; }, milliseconds(10000))) << gateway_->Stderr();
  // Several more periods of the same failure: still one alert, the remediation untouched.
  std::this_thread::sleep_for(milliseconds(3500));
  EXPECT_GE(Intents("cat " + value), 4);
  ASSERT_EQ(LineCount(alerts), 1) << ReadFile(alerts);
  const std::string alert = ReadFile(alerts);
  EXPECT_NE(alert.find("fail|apr-"), std::string::npos) << alert;
  EXPECT_NE(alert.find("|disk on local: 95 is not below 90\n"), std::string::npos) << alert;
  EXPECT_EQ(ReadFile(value), "95\n");
  EXPECT_EQ(Intents(remediation), 0);

  // The approval is there for the operator, naming the exact command and target.
  Json listed = LabgateJson({"approvals", "list"});
  ASSERT_EQ(listed["requests"].size(), 1u) << listed.dump();
  const Json request = listed["requests"][0];
  const std::string id = request["id"];
  EXPECT_NE(alert.find("|" + id + "|"), std::string::npos);
  EXPECT_EQ(request["targets"], (Json{"local"}));
  EXPECT_EQ(request["command"], (Json{{"shell", remediation}}));
  EXPECT_EQ(request["rule"], "checks.disk.remediation");
  EXPECT_EQ(request["risk"], "mutating");
  Json pending = ResultOf("disk", "local");
  EXPECT_EQ(pending["status"], "fail") << pending.dump();
  EXPECT_EQ(pending["pendingApproval"], id);

  auto approved = Labgate({"approvals", "approve", id});
  ASSERT_EQ(approved.status, 0) << approved.err;
  ASSERT_TRUE(PollUntil([&] { return ReadFile(value) == "50\n"; }, milliseconds(10000))) << gateway_->Stderr();
  ASSERT_TRUE(PollUntil([&] { return ResultOf("disk", "local")["status"] == "pass"; }, milliseconds(10000)));
  std::this_thread::sleep_for(milliseconds(2500));
  EXPECT_EQ(Intents(remediation), 1);  // exactly once, and audited
  EXPECT_EQ(LineCount(alerts), 1);
  Json after = LabgateJson({"approvals", "list", "--all"});
  ASSERT_FALSE(after["requests"].empty());
  EXPECT_EQ(after["requests"][0]["status"], "used");
  bool confirmed_by_operator = false;
  for (const auto& r : Audit()) {
    if (r.value("kind", "") == "intent" && r["payload"].value("shell", "") == remediation) {
      EXPECT_EQ(r["who"]["via"], "check");
      confirmed_by_operator = true;
    }
  }
  EXPECT_TRUE(confirmed_by_operator);

  // `checks run` runs it now and reports the pass.
  const int before = Intents("cat " + value);
  Json ran = LabgateJson({"checks", "run", "disk"});
  ASSERT_EQ(ran["results"].size(), 1u) << ran.dump();
  EXPECT_EQ(ran["results"][0]["status"], "pass");
  EXPECT_EQ(ran["results"][0]["summary"], "disk on local: ok (50 is below 90)");
  EXPECT_EQ(ran["results"][0]["trigger"], "manual");
  EXPECT_GT(Intents("cat " + value), before);
}

TEST_F(Checks, MutatingCheckCommand_RefusedAtLoadWithFileAndLine) {
  Config("[[checks]]\nname = \"cleanup\"\ntargets = \"local\"\ncommand = \"rm -f " + dir_.path() +
         "/old.log\"\nevery = \"1h\"\n");
  auto gateway = RunToCompletion({LABGATE_BINARY, "gateway", "--config", config_}, dir_.path());
  EXPECT_NE(gateway.status, 0);
  EXPECT_NE(gateway.err.find(config_ + ":8: checks[0].command: 'rm -f "), std::string::npos) << gateway.err;
  EXPECT_NE(gateway.err.find("is mutating"), std::string::npos) << gateway.err;
  EXPECT_NE(gateway.err.find("a check must be read-only; put changes in remediation"), std::string::npos)
      << gateway.err;
  EXPECT_FALSE(std::filesystem::exists(state_ + "/operator.sock"));
  auto targets = Labgate({"targets"});
  EXPECT_NE(targets.status, 0);
  EXPECT_NE(targets.err.find(config_ + ":8: checks[0].command"), std::string::npos) << targets.err;
  auto list = Labgate({"checks", "list"});
  EXPECT_NE(list.status, 0);
}

TEST_F(Checks, Restart_SameSlotNeverRunsTwice_ListShowsNextRun) {
  // A command that leaves a mark each time it runs; the operator vouches that it only reads.
  const std::string marks = dir_.path() + "/marks";
  const std::string script = dir_.Write("mark.sh", "#!/bin/sh\necho ran >> " + marks + "\necho 7\n");
  ::chmod(script.c_str(), 0755);
  Config("[classify]\nread_only = [\"" + script +
         "\"]\n\n[[checks]]\nname = \"mark\"\ntargets = \"local\"\ncommand = \"" + script +
         "\"\nevery = \"1h\"\nexpect = { below = 10 }\n");
  StartGateway();
  ASSERT_TRUE(PollUntil([&] { return LineCount(marks) >= 1; }, milliseconds(10000))) << gateway_->Stderr();
  ASSERT_TRUE(PollUntil([&] { return ResultOf("mark", "local")["status"] == "pass"; }, milliseconds(5000)));
  Json listed = LabgateJson({"checks", "list"});
  ASSERT_EQ(listed["checks"].size(), 1u) << listed.dump();
  const Json check = listed["checks"][0];
  EXPECT_EQ(check["trigger"], "every 1h");
  ASSERT_TRUE(check["lastSlot"].is_string());
  ASSERT_TRUE(check["nextRun"].is_string());
  // nextRun is the claimed slot plus an hour: same minutes and seconds, the next hour.
  const std::string last = check["lastSlot"], next = check["nextRun"];
  EXPECT_EQ(last.substr(13), next.substr(13)) << last << " / " << next;
  EXPECT_NE(last, next);
  EXPECT_EQ(check["results"][0]["summary"], "mark on local: ok (7 is below 10)");
  EXPECT_TRUE(check["results"][0]["finishedAt"].is_string());
  EXPECT_EQ(LineCount(marks), 1);

  StopGateway();
  StartGateway();
  std::this_thread::sleep_for(milliseconds(3000));
  EXPECT_EQ(LineCount(marks), 1) << "the restarted gateway ran the same slot again";
  EXPECT_EQ(Intents(script), 1);
  EXPECT_EQ(LabgateJson({"checks", "list"})["checks"][0]["nextRun"], next);

  // A manual run does run, and leaves the schedule alone.
  Json ran = LabgateJson({"checks", "run", "mark"});
  EXPECT_EQ(ran["results"][0]["status"], "pass") << ran.dump();
  EXPECT_EQ(LineCount(marks), 2);
  EXPECT_EQ(LabgateJson({"checks", "list"})["checks"][0]["nextRun"], next);
}

TEST_F(Checks, WithoutDaemon_RunInProcessRecordsState) {
  const std::string value = dir_.Write("load", "3\n");
  Config("[[checks]]\nname = \"load\"\ntargets = \"local\"\ncommand = \"cat " + value +
         "\"\nat = \"03:00\"\nexpect = { below = 5 }\n");
  auto ran = Labgate({"checks", "run", "load"});
  EXPECT_EQ(ran.status, 0) << ran.err;
  EXPECT_NE(ran.out.find("PASS  load on local: ok (3 is below 5)"), std::string::npos) << ran.out;
  Json listed = LabgateJson({"checks", "list"});
  EXPECT_EQ(listed["gatewayRunning"], false);
  EXPECT_EQ(listed["checks"][0]["results"][0]["status"], "pass") << listed.dump();
  EXPECT_EQ(listed["checks"][0]["results"][0]["trigger"], "manual");
  EXPECT_EQ(listed["checks"][0]["trigger"], "at 03:00 (local)");
  auto text = Labgate({"checks", "list"});
  EXPECT_NE(text.out.find("No gateway is running"), std::string::npos) << text.out;
  auto unknown = Labgate({"checks", "run", "nope"});
  EXPECT_EQ(unknown.status, 255);
  EXPECT_NE(unknown.err.find("no check named 'nope'"), std::string::npos) << unknown.err;
}

TEST_F(Checks, SshHostAndLocal_BothChecked) {
  if (!HaveSshd()) GTEST_SKIP() << "/usr/sbin/sshd is not installed (apt-get install openssh-server)";
  Sshd sshd(Sshd::Options("127.0.0.6"));
  std::filesystem::create_directories(state_);
  std::ofstream(state_ + "/known_hosts") << sshd.KnownHostsLine() << "\n";
  const std::string value = dir_.Write("used", "12\n");
  Config("[[hosts]]\nid = \"box\"\naddress = \"127.0.0.6\"\nport = " + std::to_string(sshd.port()) + "\nuser = \"" +
         CurrentUser() + "\"\nidentity_file = \"" + TestClientKey().private_path +
         "\"\ngroups = [\"servers\"]\n\n[[checks]]\nname = \"used\"\ntargets = [\"local\", \"group:servers\"]\n"
         "command = \"cat " +
         value + "\"\nevery = \"1h\"\nexpect = { below = 90 }\n");
  StartGateway();
  ASSERT_TRUE(PollUntil([&] { return ResultOf("used", "box")["status"] != "never"; }, milliseconds(15000)));
  EXPECT_EQ(ResultOf("used", "box")["summary"], "used on box: ok (12 is below 90)") << ResultOf("used", "box").dump();
  EXPECT_EQ(ResultOf("used", "local")["summary"], "used on local: ok (12 is below 90)");
  bool via_ssh = false;
  for (const auto& r : Audit()) {
    via_ssh =
        via_ssh || (r.value("kind", "") == "intent" && r.value("target", "") == "box" && r.value("path", "") == "ssh");
  }
  EXPECT_TRUE(via_ssh);
  Json ran = LabgateJson({"checks", "run", "used", "--target", "box"});
  ASSERT_EQ(ran["results"].size(), 1u) << ran.dump();
  EXPECT_EQ(ran["results"][0]["target"], "box");
  EXPECT_EQ(ran["results"][0]["status"], "pass");
}

}  // namespace
}  // namespace labgate::testing
