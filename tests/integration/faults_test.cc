// Faults as bad luck brings them, with the real binary: the audit log on a disk that fills up
// (a small tmpfs in a private mount namespace) and then gets space back; a host whose sshd is
// frozen (SIGSTOP) before, between and during calls; a gateway killed mid-call.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sshd_fixture.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

TEST(Faults, FullDisk_NothingRunsUnrecorded_AndTheGatewayResumesWhenSpaceIsBack) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/unshare")) << "unshare is missing (util-linux)";
  TempDir dir;
  const std::string disk = dir.path() + "/disk";
  const std::string out = dir.path() + "/out";
  const std::string flag = dir.path() + "/free-space-now";
  std::filesystem::create_directories(disk);
  std::filesystem::create_directories(out);
  const std::string config = dir.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir.path() + "/state\"\naudit_log = \"" +
                                                         disk + "/audit/audit.jsonl\"\n");
  // In its own mount namespace: a 256 KiB tmpfs for the audit log, filled up but for 12 KiB (a
  // few records). A watcher frees the space when the test says so. After the server ends, the
  // audit log and `audit verify` are copied out, since the tmpfs goes with the namespace.
  const std::string script =
      "set -u\n"
      "mount -t tmpfs -o size=256k tmpfs \"$DISK\" || exit 90\n"
      "mkdir -p \"$DISK/audit\"\n"
      "head -c 1048576 /dev/zero > \"$DISK/fill\" 2>/dev/null\n"
      "truncate -s -12288 \"$DISK/fill\"\n"
      "( while [ ! -e \"$FLAG\" ]; do sleep 0.05; done; rm -f \"$DISK/fill\" ) &\n"
      "\"$LABGATE\" mcp --config \"$CONFIG\"\n"
      "status=$?\n"
      "\"$LABGATE\" audit verify --config \"$CONFIG\" > \"$OUT/verify.txt\" 2>&1\n"
      "cp \"$DISK/audit/audit.jsonl\" \"$OUT/audit.jsonl\"\n"
      "exit $status\n";
  std::vector<std::string> argv = {"/usr/bin/env", "DISK=" + disk, "OUT=" + out, "FLAG=" + flag,
                                   "LABGATE=" + std::string(LABGATE_BINARY), "CONFIG=" + config, "/usr/bin/unshare"};
  if (::getuid() == 0) {
    argv.insert(argv.end(), {"-m", "--propagation", "private"});
  } else {
    argv.insert(argv.end(), {"-Urm", "--propagation", "private"});
  }
  argv.insert(argv.end(), {"/bin/sh", "-c", script});
  Subprocess server(argv, dir.path());
  server.Send({{"jsonrpc", "2.0"}, {"id", "init"}, {"method", "initialize"},
               {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()},
                           {"clientInfo", {{"name", "fault-test"}, {"version", "1"}}}}}});
  ASSERT_TRUE(server.ReadResponse("init").contains("result")) << server.Stderr();
  server.Send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});

  auto run = [&](int id, const std::string& word) {
    server.Send({{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
                 {"params", {{"name", "run"}, {"arguments", {{"target", "local"}, {"command", {"echo", word}}}}}}});
    return server.ReadResponse(id)["result"]["structuredContent"]["results"][0];
  };
  // Fill the log until an intent can no longer be written: that call must not run.
  int id = 1;
  int ran = 0;
  bool refused = false;
  for (; id < 200 && !refused; ++id) {
    const Json r = run(id, "before-" + std::to_string(id));
    if (r["exitCode"] == 0) {
      ++ran;
      EXPECT_EQ(r["stdout"], "before-" + std::to_string(id) + "\n");
    } else {
      refused = true;
      EXPECT_NE(r["error"].get<std::string>().find("audit log could not record the intent"), std::string::npos)
          << r.dump();
      EXPECT_TRUE(r["stdout"] == "" || r["stdout"].is_null()) << r.dump();
    }
  }
  ASSERT_TRUE(refused) << "the disk never filled up";
  ASSERT_GT(ran, 0) << "nothing ran before the disk filled up";
  // Still full: still refused, and the server keeps answering.
  EXPECT_NE(run(id++, "still-full")["exitCode"], 0);

  // Space comes back: the very next call runs, with no operator touching the files.
  std::ofstream(flag) << "now";
  bool resumed = false;
  for (int tries = 0; tries < 100 && !resumed; ++tries) {
    resumed = run(id++, "after")["exitCode"] == 0;
    if (!resumed) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(resumed) << "the gateway did not resume once space was back";

  server.CloseStdin();
  ASSERT_TRUE(server.Wait(std::chrono::seconds(20)).has_value()) << server.Stderr();
  const std::string verify = ReadFile(out + "/verify.txt");
  EXPECT_NE(verify.find("audit log OK"), std::string::npos) << verify;
  // Every command that ran has its intent and its result on record, in a whole chain.
  int intents = 0;
  int results = 0;
  for (const auto& record : ReadJsonLines(out + "/audit.jsonl")) {
    const std::string payload = record.value("payload", Json::object()).dump();
    if (record["kind"] == "intent" && payload.find("before-") != std::string::npos) ++intents;
    if (record["kind"] == "result" && record["action"] == "run") ++results;
  }
  EXPECT_EQ(intents, ran);
  EXPECT_GE(results, ran + 1) << "a result of a command that ran is missing";
}

class KilledServers : public ::testing::Test {
 protected:
  std::unique_ptr<Subprocess> Start() {
    auto server = std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "mcp", "--config", config_});
    server->Send({{"jsonrpc", "2.0"}, {"id", "init"}, {"method", "initialize"},
                  {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()},
                              {"clientInfo", {{"name", "kill-test"}, {"version", "1"}}}}}});
    EXPECT_TRUE(server->ReadResponse("init").contains("result")) << server->Stderr();
    server->Send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
    return server;
  }
  void RunSleep(Subprocess& server, const std::string& length) {
    server.Send({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
                 {"params", {{"name", "run"}, {"arguments", {{"target", "local"}, {"command", {"sleep", length}},
                                                             {"timeoutMs", 120000}}}}}});
    // The sleep itself, not only bwrap naming it: bwrap sets the command's parent-death signal
    // in the child it forks, so a kill in that instant is a (documented) gap, not this test's point.
    ASSERT_TRUE(PollUntil([&] { return SleepRunning(length); }, std::chrono::seconds(20))) << server.Stderr();
  }
  static bool SleepRunning(const std::string& length) {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::ifstream in(entry.path() / "cmdline", std::ios::binary);
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (const std::string prefix : {"sleep", "/usr/bin/sleep", "/bin/sleep"}) {
        if (cmdline == prefix + '\0' + length + '\0') return true;
      }
    }
    return false;
  }
  std::string IntentFor(const std::string& length) {
    for (const auto& r : ReadJsonLines(dir_.path() + "/state/audit.jsonl")) {
      if (r["kind"] == "intent" && r["payload"].dump().find(length) != std::string::npos) return r["actionId"];
    }
    return "";
  }
  std::vector<Json> ResultsFor(const std::string& action_id) {
    std::vector<Json> out;
    for (const auto& r : ReadJsonLines(dir_.path() + "/state/audit.jsonl")) {
      if (r["kind"] == "result" && r["actionId"] == action_id) out.push_back(r);
    }
    return out;
  }
  TempDir dir_;
  std::string config_ = dir_.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\n");
};

TEST_F(KilledServers, ItsCommandDiesWithIt_AndTheNextServerRecordsTheCallAsInterrupted) {
  const std::string alive_sleep = UniqueSleep(90);
  const std::string killed_sleep = UniqueSleep(90);
  auto alive = Start();  // another labgate mcp, still at work: its call must be left alone
  RunSleep(*alive, alive_sleep);
  auto doomed = Start();
  RunSleep(*doomed, killed_sleep);
  const std::string killed_id = IntentFor(killed_sleep);
  const std::string alive_id = IntentFor(alive_sleep);
  ASSERT_FALSE(killed_id.empty());
  ASSERT_FALSE(alive_id.empty());

  ASSERT_EQ(::kill(doomed->pid(), SIGKILL), 0);
  doomed->Wait(std::chrono::seconds(10));
  // The command does not run on past its server (and its deadline) with nobody to record it.
  EXPECT_TRUE(WaitUntilGone(killed_sleep, std::chrono::seconds(10))) << "the command outlived its killed server";

  auto next = Start();
  const auto interrupted = ResultsFor(killed_id);
  ASSERT_EQ(interrupted.size(), 1u) << "no result for the killed server's call";
  EXPECT_EQ(interrupted[0]["interrupted"], true);
  EXPECT_NE(interrupted[0]["error"].get<std::string>().find("interrupted"), std::string::npos);
  EXPECT_TRUE(ResultsFor(alive_id).empty()) << "a call still running in another server was marked interrupted";
  auto restarted = Start();  // a second start does not record it again
  EXPECT_EQ(ResultsFor(killed_id).size(), 1u);
  // doctor tells the operator.
  auto doctor = RunToCompletion({LABGATE_BINARY, "doctor", "--config", config_}, dir_.path());
  EXPECT_NE(doctor.out.find("1 call(s) were interrupted by a labgate process that was killed"), std::string::npos)
      << doctor.out;

  alive->CloseStdin();  // ends its call, which then gets its own result
  EXPECT_TRUE(WaitUntilGone(alive_sleep, std::chrono::seconds(20)));
}

// A frozen host: sshd stopped with SIGSTOP, so the kernel still accepts the connection and
// acknowledges what labgate sends, and nothing ever answers. Every step must give up at the
// call's own deadline, and the host must work again once it thaws.
class FrozenHost : public ::testing::Test {
 protected:
  static constexpr int kTimeoutMs = 3000;
  // Time for the process to start, for the answer to travel, and for a loaded CI machine.
  static constexpr milliseconds kSlack{2500};

  void SetUp() override {
    if (!HaveSshd()) GTEST_SKIP() << "/usr/sbin/sshd is not installed (apt-get install openssh-server)";
    sshd_ = std::make_unique<Sshd>(Sshd::Options("127.0.0.31"));
    std::filesystem::create_directories(dir_.path() + "/state");
    std::ofstream(dir_.path() + "/state/known_hosts") << sshd_->KnownHostsLine() << "\n";
    config_ = dir_.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\n\n[[hosts]]\nid = \"h1\"\n"
                                       "address = \"" + sshd_->address() + "\"\nport = " + std::to_string(sshd_->port()) +
                                       "\nuser = \"" + CurrentUser() + "\"\nidentity_file = \"" +
                                       TestClientKey().private_path + "\"\n");
  }
  void TearDown() override {
    if (sshd_) sshd_->Thaw();
  }
  std::unique_ptr<Subprocess> StartMcp() {
    auto p = std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "mcp", "--config", config_});
    p->Send({{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
             {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()},
                         {"clientInfo", {{"name", "faults"}, {"version", "1"}}}}}});
    p->ReadResponse(0);
    p->Send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
    return p;
  }
  // One `run` call; `elapsed` gets its wall time.
  static Json Run(Subprocess& p, int id, const Json& command, milliseconds* elapsed) {
    const auto start = std::chrono::steady_clock::now();
    p.Send({{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
            {"params", {{"name", "run"}, {"arguments", {{"target", "h1"}, {"command", command}, {"timeoutMs", kTimeoutMs}}}}}});
    Json r = p.ReadResponse(id, std::chrono::seconds(90));
    *elapsed = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
    return r["result"]["structuredContent"]["results"][0];
  }

  TempDir dir_;
  std::unique_ptr<Sshd> sshd_;
  std::string config_;
};

TEST_F(FrozenHost, BeforeTheFirstConnect_TheCallEndsAtItsDeadline) {
  sshd_->Freeze();
  const auto start = std::chrono::steady_clock::now();
  auto c = RunToCompletion({LABGATE_BINARY, "run", "h1", "--config", config_, "--timeout", "3s", "--", "true"},
                           dir_.path());
  const auto elapsed = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  EXPECT_NE(c.status, 0);
  EXPECT_NE(c.err.find("timed out"), std::string::npos) << c.err;
  EXPECT_LT(elapsed, milliseconds(kTimeoutMs) + kSlack) << c.err;
  sshd_->Thaw();
  auto ok = RunToCompletion({LABGATE_BINARY, "run", "h1", "--config", config_, "--", "echo", "thawed"}, dir_.path());
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(ok.out, "thawed\n");
}

TEST_F(FrozenHost, PooledSession_TheCallEndsAtItsDeadline_AndTheNextCallReconnects) {
  auto mcp = StartMcp();
  milliseconds elapsed{0};
  Json first = Run(*mcp, 1, {"echo", "warm"}, &elapsed);
  ASSERT_EQ(first["stdout"], "warm\n") << first.dump();
  sshd_->Freeze();
  Json frozen = Run(*mcp, 2, {"echo", "never"}, &elapsed);
  EXPECT_LT(elapsed, milliseconds(kTimeoutMs) + kSlack) << frozen.dump();
  EXPECT_TRUE(frozen["error"].is_string()) << frozen.dump();
  EXPECT_NE(frozen["stdout"], "never\n");
  sshd_->Thaw();
  Json after = Run(*mcp, 3, {"echo", "thawed"}, &elapsed);
  EXPECT_EQ(after["stdout"], "thawed\n") << after.dump() << mcp->Stderr();
}

TEST_F(FrozenHost, DuringACommand_TheAnswerComesAfterTheKillGraceAndSaysTheStopIsUnconfirmed) {
  auto mcp = StartMcp();
  const std::string secs = UniqueSleep(60);
  milliseconds elapsed{0};
  Json warm = Run(*mcp, 1, {"true"}, &elapsed);
  ASSERT_EQ(warm["exitCode"], 0) << warm.dump();
  std::thread freezer([&] {
    if (WaitUntilPresent(secs)) sshd_->Freeze();
  });
  Json r = Run(*mcp, 2, {"sleep", secs}, &elapsed);
  freezer.join();
  // The deadline, then at most the kill grace (1 s) and 3 s more waiting for a host that never
  // answers.
  EXPECT_LT(elapsed, milliseconds(kTimeoutMs + 1000 + 3000) + kSlack) << r.dump();
  EXPECT_EQ(r["timedOut"], true) << r.dump();
  EXPECT_EQ(r["stopUnconfirmed"], true) << r.dump();
  EXPECT_NE(r["error"].get<std::string>().find("may still be running"), std::string::npos) << r.dump();
  sshd_->Thaw();
  Json after = Run(*mcp, 3, {"echo", "thawed"}, &elapsed);
  EXPECT_EQ(after["stdout"], "thawed\n") << after.dump() << mcp->Stderr();
  for (pid_t pid : PidsWithMarker(secs)) ::kill(pid, SIGKILL);  // the sleep this test started
}

}  // namespace
}  // namespace labgate::testing
