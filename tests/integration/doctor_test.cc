// `labgate doctor` and `labgate hosts check` against a real lab: a gateway daemon, two real sshd
// hosts, a paired node agent and ffmpeg's lavfi test source as `local`'s camera. The healthy lab
// passes every item; each broken case fails exactly its own item.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <iterator>

#include "sshd_fixture.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

const std::vector<std::string> kDoctorItems = {"sandbox", "pairing", "remote-exec", "capture", "audit", "keys"};
const std::vector<std::string> kHostsCheckItems = {"inventory", "reachable", "keys", "owner-purpose"};
constexpr const char* kCamera =
    "[local]\ncapabilities = [\"run\", \"camera\"]\n\n"
    "[local.camera]\nbackend = \"v4l2\"\ninput_format = \"lavfi\"\ndevice = \"testsrc=size=320x240:rate=5\"\n\n";

bool HaveFfmpeg() {
  return RunToCompletion({"/bin/sh", "-c", "command -v ffmpeg"}).status == 0;
}

std::vector<std::string> Ids(const Json& report) {
  std::vector<std::string> out;
  for (const auto& i : report.value("items", Json::array())) out.push_back(i.value("id", ""));
  return out;
}

std::vector<std::string> Failing(const Json& report) {
  std::vector<std::string> out;
  for (const auto& i : report.value("items", Json::array())) {
    if (!i.value("ok", true)) out.push_back(i.value("id", ""));
  }
  return out;
}

// The item's details and next step as one text, for matching.
std::string ItemText(const Json& report, const std::string& id) {
  for (const auto& i : report.value("items", Json::array())) {
    if (i.value("id", "") != id) continue;
    std::string text;
    for (const auto& d : i["details"]) text += d.get<std::string>() + "\n";
    return text + "next: " + i.value("next", "");
  }
  return "";
}

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Json ParseOr(const Completed& c) {
  Json j = Json::parse(c.out, nullptr, false);
  return j.is_discarded() ? Json{{"cliError", c.out + c.err}} : j;
}

std::string HostEntry(const std::string& id, const std::string& address, int port, bool with_owner = true) {
  return "[[hosts]]\nid = \"" + id + "\"\naddress = \"" + address + "\"\nport = " + std::to_string(port) +
         "\nuser = \"" + CurrentUser() + "\"\nidentity_file = \"" + TestClientKey().private_path + "\"\n" +
         (with_owner ? "owner = \"homelab\"\npurpose = \"doctor test host\"\n" : "") + "\n";
}

// One lab for the suite; broken cases change it, run doctor, and put it back before asserting.
class Doctor : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveSshd() || !HaveFfmpeg()) return;
    dir_ = new TempDir();
    one_ = new Sshd(Sshd::Options("127.0.0.5"));
    two_ = new Sshd(Sshd::Options("127.0.0.6"));
    state_ = dir_->path() + "/state";
    std::filesystem::create_directories(state_);
    std::ofstream(state_ + "/known_hosts") << one_->KnownHostsLine() << "\n" << two_->KnownHostsLine() << "\n";
    port_ = FreePort();
    config_ = dir_->Write("hosts.toml", Config(true));
    if (!StartGateway()) {
      setup_error_ = "gateway did not answer";
      return;
    }
    device_ = dir_->path() + "/device-alpha";
    if (setup_error_ = PairNode(config_, "alpha", device_, dir_->path()); !setup_error_.empty()) return;
    agent_ = new Subprocess({LABGATE_BINARY, "node", "run", "--state-dir", device_});
    if (!AlphaOnline()) {
      setup_error_ = "node alpha did not come online: " + agent_->Stderr();
      return;
    }
    // An ordinary capture, not doctor's: doctor must remember it.
    auto snap = Labgate({"camera", "local", "-o", dir_->path() + "/snap.jpg"});
    if (snap.status != 0) {
      setup_error_ = "camera local: " + snap.out + snap.err;
      return;
    }
    ready_ = true;
  }
  static void TearDownTestSuite() {
    if (agent_) ::kill(agent_->pid(), SIGTERM);
    StopGateway();
    delete agent_;
    delete one_;
    delete two_;
    delete dir_;
    agent_ = nullptr;
    one_ = two_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!HaveSshd()) GTEST_SKIP() << "/usr/sbin/sshd is not installed (apt-get install openssh-server)";
    if (!HaveFfmpeg()) GTEST_SKIP() << "ffmpeg is not installed (apt-get install ffmpeg)";
    ASSERT_TRUE(ready_) << "the lab did not come up: " << setup_error_ << "\n" << (gateway_ ? gateway_->Stderr() : "");
  }

  static std::string Config(bool with_alpha) {
    return "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\nstate_dir = \"" + state_ + "\"\n\n" +
           kCamera + HostEntry("one", "127.0.0.5", one_->port()) + HostEntry("two", "127.0.0.6", two_->port()) +
           (with_alpha ? "[[nodes]]\nid = \"alpha\"\ncapabilities = [\"run\"]\nowner = \"homelab\"\n"
                         "purpose = \"doctor test node\"\n"
                       : "");
  }
  static bool StartGateway() {
    gateway_ = new Subprocess({LABGATE_BINARY, "gateway", "--config", config_});
    return GatewayAnswers(config_, dir_->path());
  }
  static void StopGateway() {
    if (!gateway_) return;
    ::kill(gateway_->pid(), SIGTERM);
    (void)gateway_->Wait(milliseconds(10000));
    delete gateway_;
    gateway_ = nullptr;
  }
  static bool AlphaOnline() {
    return NodeOnline(config_, "alpha", dir_->path(), milliseconds(15000));
  }
  // Restarts the daemon on the full lab config and waits for the node to reconnect.
  static bool RestoreLab() {
    StopGateway();
    std::ofstream(config_) << Config(true);
    return StartGateway() && AlphaOnline();
  }

  static Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY, args[0], "--config", config_};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    return RunToCompletion(argv, dir_->path());
  }

  static TempDir* dir_;
  static Sshd* one_;
  static Sshd* two_;
  static Subprocess* gateway_;
  static Subprocess* agent_;
  static std::string state_;
  static std::string config_;
  static std::string device_;
  static int port_;
  static bool ready_;
  static std::string setup_error_;
};

TempDir* Doctor::dir_ = nullptr;
Sshd* Doctor::one_ = nullptr;
Sshd* Doctor::two_ = nullptr;
Subprocess* Doctor::gateway_ = nullptr;
Subprocess* Doctor::agent_ = nullptr;
std::string Doctor::state_;
std::string Doctor::config_;
std::string Doctor::device_;
int Doctor::port_ = 0;
bool Doctor::ready_ = false;
std::string Doctor::setup_error_;

TEST_F(Doctor, HealthyLab_EveryItemPasses) {
  auto c = Labgate({"doctor", "--json"});
  const Json report = ParseOr(c);
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_EQ(report["ok"], true) << report.dump(2);
  EXPECT_EQ(Ids(report), kDoctorItems);
  EXPECT_TRUE(Failing(report).empty()) << report.dump(2);
  const std::string exec = ItemText(report, "remote-exec");
  for (const char* ok : {"local: ok in", "one (host): ok in", "two (host): ok in", "alpha (node): ok in"}) {
    EXPECT_TRUE(Has(exec, ok)) << ok << "\n" << exec;
  }
  EXPECT_TRUE(Has(ItemText(report, "pairing"), "alpha: paired as SHA256:")) << report.dump(2);
  EXPECT_TRUE(Has(ItemText(report, "capture"), "last worked: camera.snap on local")) << report.dump(2);
  EXPECT_TRUE(Has(ItemText(report, "keys"), "key-rotation.md")) << report.dump(2);
  EXPECT_TRUE(Has(ItemText(report, "sandbox"), "sandbox: bubblewrap (")) << report.dump(2);

  // The same verdict for people: one PASS line per item, then the summary.
  auto text = Labgate({"doctor"});
  EXPECT_EQ(text.status, 0) << text.out << text.err;
  const std::string lines = "\n" + text.out;
  for (const auto& id : kDoctorItems) EXPECT_TRUE(Has(lines, "\nPASS " + id + " ")) << id << "\n" << text.out;
  EXPECT_FALSE(Has(text.out, "FAIL ")) << text.out;
  EXPECT_TRUE(Has(text.out, "doctor: all 6 checks passed")) << text.out;

  // Doctor's probes went through the pipeline and the audit log like any other action.
  bool audited = false;
  for (const auto& r : ReadJsonLines(state_ + "/audit.jsonl")) {
    if (r.value("kind", "") == "intent" && r["who"].value("via", "") == "doctor" && r.value("target", "") == "one" &&
        r["payload"].value("argv", Json::array()) == Json::array({"uname", "-n"})) {
      audited = true;
    }
  }
  EXPECT_TRUE(audited);
}

TEST_F(Doctor, CaptureNow_TakesOneThroughThePipelineAndRemembersIt) {
  const std::string memory = state_ + "/last-capture.json";
  const Json before = Json::parse(ReadFile(memory), nullptr, false);
  auto c = Labgate({"doctor", "--capture", "local", "--json"});
  const Json report = ParseOr(c);
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_TRUE(Has(ItemText(report, "capture"), "camera.snap on local just now: ok in")) << report.dump(2);
  const Json after = Json::parse(ReadFile(memory), nullptr, false);
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(after["target"], "local");
  EXPECT_EQ(after["action"], "camera.snap");
  EXPECT_GT(after["bytes"].get<std::uint64_t>(), 0u);
  EXPECT_TRUE(after["uri"].get<std::string>().rfind("labgate://artifacts/", 0) == 0);
  EXPECT_NE(before.value("at", ""), after["at"].get<std::string>());
}

TEST_F(Doctor, UnexpectedNode_FailsPairing) {
  StopGateway();
  std::ofstream(config_) << Config(false);
  ASSERT_TRUE(StartGateway()) << gateway_->Stderr();
  auto c = Labgate({"doctor", "--json"});
  ASSERT_TRUE(RestoreLab()) << "the lab did not come back";
  const Json report = ParseOr(c);
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_EQ(Failing(report), std::vector<std::string>{"pairing"}) << report.dump(2);
  const std::string pairing = ItemText(report, "pairing");
  EXPECT_TRUE(Has(pairing, "alpha: unexpected: paired as SHA256:")) << pairing;
  EXPECT_TRUE(Has(pairing, "labgate nodes revoke alpha")) << pairing;
}

TEST_F(Doctor, OneHostDown_PassesWithAWarning_AndStrictSaysSo) {
  // Issue 16: with one listed host down and enough others answering, remote-exec passed silently.
  StopGateway();
  std::ofstream(config_) << Config(true) + HostEntry("down", "127.0.0.7", ClosedPort("127.0.0.7"));
  ASSERT_TRUE(StartGateway()) << gateway_->Stderr();
  ASSERT_TRUE(AlphaOnline());
  auto json = Labgate({"doctor", "--json"});
  auto text = Labgate({"doctor"});
  auto strict = Labgate({"doctor", "--strict"});
  ASSERT_TRUE(RestoreLab()) << "the lab did not come back";
  const Json report = ParseOr(json);
  EXPECT_EQ(json.status, 0) << json.out << json.err;
  EXPECT_EQ(report["warnings"], 1) << report.dump(2);
  Json warnings;
  for (const auto& item : report["items"]) {
    if (item["id"] == "remote-exec") warnings = item["warnings"];
  }
  ASSERT_EQ(warnings.size(), 1u) << report.dump(2);
  EXPECT_TRUE(Has(warnings[0].get<std::string>(), "down did not answer")) << warnings.dump();
  EXPECT_EQ(text.status, 0) << text.out;
  EXPECT_TRUE(Has(text.out, "WARNING: down did not answer")) << text.out;
  EXPECT_TRUE(Has(text.out, "doctor: all 6 checks passed, with 1 warning")) << text.out;
  EXPECT_EQ(strict.status, 3) << strict.out;
}

TEST_F(Doctor, StaleKey_FailsKeys) {
  StopGateway();
  // The pairing store is nodes.json plus its journal; the newest line for a node wins, so an
  // appended copy of alpha's record with a 400-day-old key stands in for the passing days.
  const std::string store = state_ + "/nodes.json.journal";
  const std::string original = ReadFile(store);
  Json alpha;
  std::istringstream lines(original);
  for (std::string line; std::getline(lines, line);) {
    Json change = Json::parse(line);
    // One operation's changes share a line ({"batch": [...]}, as when a code pairs a node).
    const Json changes = change.contains("batch") ? change["batch"] : Json::array({change});
    for (const auto& one : changes) {
      if (one.contains("node") && one["node"]["id"] == "alpha") alpha = one["node"];
    }
  }
  ASSERT_TRUE(alpha.is_object()) << original;
  const std::int64_t now_ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  alpha["pairedAt"] = now_ms - 400LL * 24 * 3600 * 1000;
  alpha["rotatedAt"] = nullptr;
  std::ofstream(store, std::ios::app) << Json{{"node", alpha}}.dump() << "\n";
  ASSERT_TRUE(StartGateway()) << gateway_->Stderr();
  auto c = Labgate({"doctor", "--json"});
  StopGateway();
  std::ofstream(store) << original;
  ASSERT_TRUE(RestoreLab()) << "the lab did not come back";
  const Json report = ParseOr(c);
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_EQ(Failing(report), std::vector<std::string>{"keys"}) << report.dump(2);
  const std::string keys = ItemText(report, "keys");
  EXPECT_TRUE(Has(keys, "key of alpha is 400 days old")) << keys;
  EXPECT_TRUE(Has(keys, "run `labgate nodes rotate alpha`")) << keys;
}

TEST_F(Doctor, BrokenAuditChain_FailsAudit) {
  // One byte of an earlier record's payload changes, in place: the daemon keeps appending.
  const std::string log = state_ + "/audit.jsonl";
  const std::string text = ReadFile(log);
  std::size_t start = 0;
  std::size_t at = std::string::npos;
  std::uint64_t seq = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;
    const std::string line = text.substr(start, end - start);
    const std::size_t payload = line.find("\"payload\":{\"");
    const Json record = Json::parse(line, nullptr, false);
    if (payload != std::string::npos && record.value("kind", "") == "intent") {
      const std::size_t value = line.find("\":\"", payload + 12);  // the first string value inside
      ASSERT_NE(value, std::string::npos) << line;
      at = start + value + 3;
      seq = record["seq"].get<std::uint64_t>();
      break;
    }
    start = end + 1;
  }
  ASSERT_NE(at, std::string::npos) << "no intent with a payload in " << log;
  const char original = text[at];
  const char changed = original == 'a' ? 'b' : 'a';
  const int fd = ::open(log.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, &changed, 1, static_cast<off_t>(at)), 1);
  auto c = Labgate({"doctor", "--json"});
  const char after_doctor = ReadFile(log)[at];
  ASSERT_EQ(::pwrite(fd, &original, 1, static_cast<off_t>(at)), 1);
  ::close(fd);

  const Json report = ParseOr(c);
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_EQ(Failing(report), std::vector<std::string>{"audit"}) << report.dump(2);
  const std::string audit = ItemText(report, "audit");
  EXPECT_TRUE(Has(audit, "chain BROKEN at seq " + std::to_string(seq))) << audit;
  EXPECT_TRUE(Has(audit, "nothing was deleted")) << audit;
  EXPECT_TRUE(Has(audit, "labgate audit verify")) << audit;
  EXPECT_EQ(after_doctor, changed) << "doctor must never repair or rewrite the log";
  EXPECT_EQ(Labgate({"audit", "verify"}).status, 0) << "the byte was put back";
}

TEST_F(Doctor, HostsCheck_HealthyLab_Passes) {
  auto c = Labgate({"hosts", "check", "--json"});
  const Json report = ParseOr(c);
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_EQ(Ids(report), kHostsCheckItems);
  EXPECT_TRUE(Failing(report).empty()) << report.dump(2);
  const std::string reachable = ItemText(report, "reachable");
  EXPECT_TRUE(Has(reachable, "one (host): ok in")) << reachable;
  EXPECT_TRUE(Has(reachable, "alpha (node): ok in")) << reachable;
}

// Without a daemon: `local` and one host whose sshd does not run. Everything else is healthy
// (no nodes, a capture now), so only remote-exec may fail.
TEST(DoctorStandalone, OnlyOneReachableTarget_FailsRemoteExec) {
  if (!HaveFfmpeg()) GTEST_SKIP() << "ffmpeg is not installed (apt-get install ffmpeg)";
  TempDir dir;
  const std::string config = dir.Write(
      "hosts.toml", "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(FreePort()) + "\"\nstate_dir = \"" + dir.path() +
                        "/state\"\n\n" + kCamera + HostEntry("down", "127.0.0.7", ClosedPort("127.0.0.7")));
  auto c = RunToCompletion({LABGATE_BINARY, "doctor", "--config", config, "--capture", "local", "--json"}, dir.path());
  const Json report = ParseOr(c);
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_EQ(Failing(report), std::vector<std::string>{"remote-exec"}) << report.dump(2);
  const std::string exec = ItemText(report, "remote-exec");
  EXPECT_TRUE(Has(exec, "local: ok in")) << exec;
  EXPECT_TRUE(Has(exec, "down (host): FAILED")) << exec;
  EXPECT_TRUE(Has(exec, "only local answered")) << exec;

  auto text = RunToCompletion({LABGATE_BINARY, "doctor", "--config", config}, dir.path());
  EXPECT_EQ(text.status, 1);
  EXPECT_TRUE(Has(text.out, "FAIL remote-exec ")) << text.out;
  EXPECT_TRUE(Has(text.out, "doctor: 1 of 6 checks failed: remote-exec")) << text.out;
}

TEST(HostsCheckStandalone, UnreachableHostAndMissingOwner_FailTheirItems) {
  TempDir dir;
  const std::string config =
      dir.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir.path() + "/state\"\n\n" +
                                  HostEntry("down", "127.0.0.7", ClosedPort("127.0.0.7"), false));
  auto c = RunToCompletion({LABGATE_BINARY, "hosts", "check", "--config", config, "--json"}, dir.path());
  const Json report = ParseOr(c);
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_EQ(Failing(report), (std::vector<std::string>{"reachable", "owner-purpose"})) << report.dump(2);
  EXPECT_TRUE(Has(ItemText(report, "reachable"), "down (host): FAILED")) << report.dump(2);
  EXPECT_TRUE(Has(ItemText(report, "owner-purpose"), "down (host, ")) << report.dump(2);
  EXPECT_TRUE(Has(ItemText(report, "owner-purpose"), "has no owner and no purpose")) << report.dump(2);
}

TEST(HostsCheckStandalone, FileThatDoesNotLoad_ListsEveryErrorAndFails) {
  TempDir dir;
  const std::string config =
      dir.Write("hosts.toml", "[[hosts]]\nid = \"box\"\naddress = \"10.0.0.4\"\nport = \"twenty-two\"\n");
  auto c = RunToCompletion({LABGATE_BINARY, "hosts", "check", "--config", config}, dir.path());
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_TRUE(Has(c.out, "FAIL inventory ")) << c.out;
  EXPECT_TRUE(Has(c.out, config + ":4")) << c.out;
}

}  // namespace
}  // namespace labgate::testing
