// Paired nodes end to end: a real `labgate gateway`, real `labgate node` agents, the real CLI.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include <libssh/libssh.h>

#include "capabilities/run_as_root.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/hashing.h"
#include "core/process_runner.h"
#include "nodes/agent_server.h"
#include "nodes/agent_protocol.h"
#include "nodes/pairing_code.h"
#include "subprocess.h"
#include "sudo_account.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

class Nodes : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    config_ = dir_.Write("hosts.toml", "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(port_) +
                                           "\"\nstate_dir = \"" + dir_.path() + "/state\"\nallow_pairing = " +
                                           (AllowPairing() ? "true" : "false") +
                                           "\n\n"
                                           "[[nodes]]\nid = \"alpha\"\ncapabilities = [\"run\"]\n\n"
                                           "[[nodes]]\nid = \"beta\"\ncapabilities = [\"run\"]\n\n"
                                           "[[nodes]]\nid = \"gamma\"\ncapabilities = [\"run\", \"screen\"]\n" +
                                           ExtraEntries());
    StartGateway();
  }
  virtual bool AllowPairing() const { return false; }
  virtual std::string ExtraEntries() const { return ""; }

  void StartGateway() {
    gateway_ = std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "gateway", "--config", config_});
    ASSERT_TRUE(GatewayAnswers(config_, dir_.path())) << gateway_->Stderr();
  }
  void StopGateway() {
    ::kill(gateway_->pid(), SIGTERM);
    EXPECT_EQ(gateway_->Wait(milliseconds(10000)), 0) << gateway_->Stderr();
    gateway_.reset();
  }

  void TearDown() override {
    // Daemons do not end when their stdin closes: stop them as an operator would.
    for (auto& [id, agent] : agents_) ::kill(agent->pid(), SIGTERM);
    if (gateway_) ::kill(gateway_->pid(), SIGTERM);
  }

  /// `labgate VERB --config CONFIG ARGS...` (the config before ARGS, which may hold a command).
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY, args[0], "--config", config_};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    return RunToCompletion(argv, dir_.path());
  }
  Completed Node(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY, "node"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunToCompletion(argv, dir_.path());
  }
  std::string StateDir(const std::string& id) const { return dir_.path() + "/device-" + id; }

  std::string NewCode(const std::string& id, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"pair", "new", "--node", id, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto c = Labgate(args);
    EXPECT_EQ(c.status, 0) << c.err;
    return Json::parse(c.out)["code"].get<std::string>();
  }
  void Pair(const std::string& id) {
    auto c = Node({"pair", NewCode(id), "--state-dir", StateDir(id)});
    ASSERT_EQ(c.status, 0) << c.out << c.err;
  }
  Subprocess& StartAgent(const std::string& id, const std::string& state_dir = "") {
    auto& slot = agents_[id + state_dir];
    slot = std::make_unique<Subprocess>(std::vector<std::string>{
        LABGATE_BINARY, "node", "run", "--state-dir", state_dir.empty() ? StateDir(id) : state_dir});
    return *slot;
  }
  Json NodesList() {
    auto c = Labgate({"nodes", "list", "--json"});
    if (c.status != 0) return Json::object();
    return Json::parse(c.out);
  }
  std::optional<Json> NodeRow(const std::string& id) {
    Json list = NodesList();
    for (const auto& n : list.value("nodes", Json::array())) {
      if (n["id"] == id) return n;
    }
    return std::nullopt;
  }
  bool WaitOnline(const std::string& id, bool online = true, milliseconds timeout = milliseconds(10000)) {
    return PollUntil(
        [&] {
          auto row = NodeRow(id);
          return row && (*row)["online"].get<bool>() == online;
        },
        timeout);
  }
  std::vector<Json> Audit() { return ReadJsonLines(dir_.path() + "/state/audit.jsonl"); }
  std::vector<Json> Events(const std::string& event) {
    std::vector<Json> out;
    for (auto& r : Audit()) {
      if (r["kind"] == "event" && r["event"] == event) out.push_back(r);
    }
    return out;
  }
  void PairAndStart(const std::string& id) {
    Pair(id);
    StartAgent(id);
    ASSERT_TRUE(WaitOnline(id)) << agents_[id]->Stderr();
  }

  TempDir dir_;
  int port_ = 0;
  std::string config_;
  std::unique_ptr<Subprocess> gateway_;
  std::map<std::string, std::unique_ptr<Subprocess>> agents_;
};

TEST_F(Nodes, PairWithCode_RunOnBothNodesThroughMcp) {
  PairAndStart("alpha");
  PairAndStart("beta");
  Subprocess mcp({LABGATE_BINARY, "mcp", "--config", config_});
  mcp.Send({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
            {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()},
                        {"clientInfo", {{"name", "nodes-test"}, {"version", "1"}}}}}});
  ASSERT_TRUE(mcp.ReadResponse(1).contains("result"));
  mcp.Send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  mcp.Send({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"},
            {"params", {{"name", "run"}, {"arguments", {{"targets", {"alpha", "beta"}},
                                                        {"command", {"sh", "-c", "echo from-$0", "node"}}}}}}});
  Json r = mcp.ReadResponse(2);
  ASSERT_TRUE(r.contains("result")) << r.dump();
  EXPECT_FALSE(r["result"]["isError"].get<bool>()) << r.dump();
  const auto& results = r["result"]["structuredContent"]["results"];
  ASSERT_EQ(results.size(), 2u);
  for (const auto& one : results) {
    EXPECT_EQ(one["via"], "node");
    EXPECT_EQ(one["exitCode"], 0);
    EXPECT_EQ(one["stdout"], "from-node\n");
  }
  mcp.Send({{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/call"},
            {"params", {{"name", "targets"}, {"arguments", Json::object()}}}});
  Json t = mcp.ReadResponse(3);
  int online_nodes = 0;
  for (const auto& target : t["result"]["structuredContent"]["targets"]) {
    if (target["kind"] == "node" && target["online"] == true) ++online_nodes;
  }
  EXPECT_EQ(online_nodes, 2);
  // The intent names the node path and the MCP client.
  bool found = false;
  for (const auto& rec : Audit()) {
    if (rec["kind"] == "intent" && rec["target"] == "beta") {
      found = true;
      EXPECT_EQ(rec["path"], "node");
      EXPECT_EQ(rec["who"]["client"]["name"], "nodes-test");
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(Events("pairing.paired").size(), 2u);
}

// A long command on a node run as an MCP task: the node streams its output, and tasks/get
// shows it while the command still runs.
TEST_F(Nodes, TaskShowsTheNodesOutputWhileTheCommandRuns) {
  PairAndStart("alpha");
  Subprocess mcp({LABGATE_BINARY, "mcp", "--config", config_});
  mcp.Send({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
            {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()},
                        {"clientInfo", {{"name", "nodes-test"}, {"version", "1"}}}}}});
  ASSERT_TRUE(mcp.ReadResponse(1).contains("result"));
  mcp.Send({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"},
            {"params", {{"name", "run"},
                        {"arguments", {{"target", "alpha"}, {"command", {"sh", "-c", "echo first; sleep 3; echo second"}}}},
                        {"task", {{"ttl", 60000}}}}}});
  Json created = mcp.ReadResponse(2);
  ASSERT_TRUE(created["result"]["task"]["taskId"].is_string()) << created.dump();
  const std::string task_id = created["result"]["task"]["taskId"];
  Json seen;
  for (int id = 3; id < 60 && seen.is_null(); ++id) {
    mcp.Send({{"jsonrpc", "2.0"}, {"id", id}, {"method", "tasks/get"}, {"params", {{"taskId", task_id}}}});
    Json r = mcp.ReadResponse(id);
    if (r["result"].value("statusMessage", "").find("alpha: first") != std::string::npos) seen = r["result"];
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(seen.is_null()) << "no tasks/get saw the first line while the command ran";
  EXPECT_EQ(seen["status"], "working");
  mcp.Send({{"jsonrpc", "2.0"}, {"id", 100}, {"method", "tasks/result"}, {"params", {{"taskId", task_id}}}});
  Json r = mcp.ReadResponse(100, std::chrono::seconds(30));
  EXPECT_EQ(r["result"]["structuredContent"]["results"][0]["stdout"], "first\nsecond\n") << r.dump();
}

TEST_F(Nodes, CodeReuseAndExpiredCodeAreRefused) {
  const std::string code = NewCode("alpha");
  ASSERT_EQ(Node({"pair", code, "--state-dir", StateDir("alpha")}).status, 0);
  auto reused = Node({"pair", code, "--state-dir", StateDir("beta")});
  EXPECT_NE(reused.status, 0);
  EXPECT_NE(reused.err.find("already used"), std::string::npos) << reused.err;

  const std::string short_lived = NewCode("beta", {"--ttl", "1s"});
  std::this_thread::sleep_for(milliseconds(1500));
  auto expired = Node({"pair", short_lived, "--state-dir", StateDir("beta")});
  EXPECT_NE(expired.status, 0);
  EXPECT_NE(expired.err.find("expired"), std::string::npos) << expired.err;
  EXPECT_FALSE(NodeRow("beta").has_value());
  EXPECT_EQ(Events("pairing.refused").size(), 2u);
}

TEST_F(Nodes, UnknownKeyIsRefused) {
  PairAndStart("alpha");
  // A device that copies alpha's settings but brings a key the gateway never saw.
  const std::string impostor = dir_.path() + "/impostor";
  std::filesystem::create_directories(impostor);
  std::filesystem::copy_file(StateDir("alpha") + "/node.json", impostor + "/node.json");
  ASSERT_EQ(RunToCompletion({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", impostor + "/node_key"}).status, 0);
  auto& agent = StartAgent("alpha", impostor);
  ASSERT_TRUE(PollUntil([&] { return agent.Stderr().find("refused the login") != std::string::npos; },
                        milliseconds(10000)))
      << agent.Stderr();
  ASSERT_TRUE(PollUntil([&] { return !Events("auth.refused").empty(); }, milliseconds(5000)));
  EXPECT_NE(Events("auth.refused")[0]["details"]["detail"].get<std::string>().find("not the key recorded"),
            std::string::npos);
  // The real alpha keeps its session.
  EXPECT_TRUE((*NodeRow("alpha"))["online"].get<bool>());
}

TEST_F(Nodes, NodeClaimingAnotherNodesIdWithItsOwnKeyIsRefused) {
  PairAndStart("alpha");
  Pair("beta");
  // beta's device edits its state to say it is alpha, but still holds beta's key.
  const std::string liar = dir_.path() + "/liar";
  std::filesystem::create_directories(liar);
  std::filesystem::copy_file(StateDir("beta") + "/node_key", liar + "/node_key");
  ::chmod((liar + "/node_key").c_str(), 0600);
  Json state = Json::parse(std::ifstream(StateDir("beta") + "/node.json"));
  state["nodeId"] = "alpha";
  std::ofstream(liar + "/node.json") << state.dump();
  auto& agent = StartAgent("liar", liar);
  ASSERT_TRUE(PollUntil([&] { return agent.Stderr().find("refused the login of alpha") != std::string::npos; },
                        milliseconds(10000)))
      << agent.Stderr();
  auto refusals = Events("auth.refused");
  ASSERT_FALSE(refusals.empty());
  EXPECT_EQ(refusals[0]["target"], "alpha");
  EXPECT_NE(refusals[0]["details"]["detail"].get<std::string>().find("not the key recorded for node alpha"),
            std::string::npos);
  auto c = Labgate({"run", "alpha", "--", "echo", "still-alpha"});
  EXPECT_EQ(c.status, 0) << c.err;
}

TEST_F(Nodes, RevokedNodeIsDroppedMidSessionAndRefusedOnReconnect) {
  PairAndStart("alpha");
  // A command in flight when the key is revoked ends with an error, not a hang.
  const std::string sleep_len = UniqueSleep(5);
  Subprocess running({LABGATE_BINARY, "run", "alpha", "--config", config_, "--timeout", "20s", "--", "sleep", sleep_len});
  ASSERT_TRUE(WaitUntilPresent(sleep_len));
  auto revoke = Labgate({"nodes", "revoke", "alpha"});
  ASSERT_EQ(revoke.status, 0) << revoke.err;
  EXPECT_EQ(running.Wait(milliseconds(4000)), 255) << running.Stderr();
  EXPECT_NE(running.Stderr().find("revoked"), std::string::npos) << running.Stderr();
  EXPECT_TRUE(WaitOnline("alpha", false, milliseconds(3000)));
  // Its next login is refused, and the agent stops and says why, with the exit status its
  // systemd unit does not restart (issue 16: it used to retry until its address was locked out).
  EXPECT_EQ(agents_["alpha"]->Wait(milliseconds(10000)), 78) << agents_["alpha"]->Stderr();
  EXPECT_NE(agents_["alpha"]->Stderr().find("refused the login"), std::string::npos) << agents_["alpha"]->Stderr();
  EXPECT_NE(agents_["alpha"]->Stderr().find("the agent stops"), std::string::npos);
  EXPECT_NE(agents_["alpha"]->Stderr().find("pair again"), std::string::npos);
  EXPECT_FALSE((*NodeRow("alpha"))["online"].get<bool>());
  // One refused login, one count: the address is not on its way to a lockout.
  std::size_t refused = 0;
  for (const auto& e : Events("auth.refused")) refused += e.value("target", "") == "alpha" ? 1 : 0;
  EXPECT_LE(refused, 1u);
  auto c = Labgate({"run", "alpha", "--", "true"});
  EXPECT_EQ(c.status, 255);
  EXPECT_NE(c.err.find("pairing.revoked"), std::string::npos) << c.err;
  EXPECT_EQ(Events("node.revoked").size(), 1u);
  EXPECT_TRUE(WaitUntilGone(sleep_len, milliseconds(10000)));
}

TEST_F(Nodes, AfterRotateOldKeyIsRefusedAndNewKeyWorks) {
  PairAndStart("alpha");
  const std::string old_copy = dir_.path() + "/old-alpha";
  std::filesystem::create_directories(old_copy);
  std::filesystem::copy(StateDir("alpha"), old_copy, std::filesystem::copy_options::recursive);
  const std::string old_fp = (*NodeRow("alpha"))["fingerprint"].get<std::string>();

  auto rotated = Labgate({"nodes", "rotate", "alpha", "--json"});
  ASSERT_EQ(rotated.status, 0) << rotated.err;
  Json answer = Json::parse(rotated.out);
  EXPECT_EQ(answer["oldFingerprint"], old_fp);
  EXPECT_NE(answer["newFingerprint"], old_fp);
  EXPECT_FALSE(answer.contains("warning"));
  EXPECT_EQ((*NodeRow("alpha"))["fingerprint"], answer["newFingerprint"]);
  EXPECT_TRUE((*NodeRow("alpha"))["rotatedAt"].is_string());

  // The live session goes on; a restarted agent logs in with the new key.
  EXPECT_EQ(Labgate({"run", "alpha", "--", "true"}).status, 0);
  ::kill(agents_["alpha"]->pid(), SIGTERM);
  ASSERT_TRUE(agents_["alpha"]->Wait(milliseconds(10000)).has_value());
  ASSERT_TRUE(WaitOnline("alpha", false));
  StartAgent("alpha");
  ASSERT_TRUE(WaitOnline("alpha")) << agents_["alpha"]->Stderr();
  auto c = Labgate({"run", "alpha", "--", "echo", "new-key"});
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "new-key\n");

  // The old key is refused.
  ::kill(agents_["alpha"]->pid(), SIGTERM);
  ASSERT_TRUE(agents_["alpha"]->Wait(milliseconds(10000)).has_value());
  auto& old_agent = StartAgent("alpha", old_copy);
  ASSERT_TRUE(PollUntil([&] { return old_agent.Stderr().find("refused the login") != std::string::npos; },
                        milliseconds(10000)))
      << old_agent.Stderr();
  EXPECT_FALSE((*NodeRow("alpha"))["online"].get<bool>());
  auto events = Events("node.rotated");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["details"]["oldFingerprint"], old_fp);
}

TEST_F(Nodes, GatewayWithAnotherHostKeyThanTheCodeIsRefusedByTheNode) {
  auto code = nodes::DecodePairingCode(NewCode("alpha"));
  ASSERT_TRUE(code.ok());
  const std::string genuine = code->fingerprint;
  code->fingerprint = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  auto c = Node({"pair", nodes::EncodePairingCode(*code), "--state-dir", StateDir("alpha")});
  EXPECT_NE(c.status, 0);
  EXPECT_NE(c.err.find("presented host key " + genuine), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("refusing to connect"), std::string::npos) << c.err;
  EXPECT_FALSE(std::filesystem::exists(StateDir("alpha") + "/node.json"));
  EXPECT_FALSE(NodeRow("alpha").has_value());
}

TEST_F(Nodes, NodeKilledMidCommandGivesAnErrorWithinTheDeadlineAndAnAuditRecord) {
  PairAndStart("alpha");
  const std::string sleep_len = UniqueSleep(3);
  const auto started = Steady::now();
  Subprocess running({LABGATE_BINARY, "run", "alpha", "--config", config_, "--timeout", "10s", "--", "sleep", sleep_len});
  // The node's `sleep` itself, not the CLI that carries the same words: killed before the call
  // arrived, the node would just be offline (the gateway notices a dropped link at once).
  ASSERT_TRUE(PollUntil(
      [&] {
        for (pid_t pid : PidsWithMarker(sleep_len)) {
          if (ReadFile("/proc/" + std::to_string(pid) + "/cmdline").rfind(std::string("sleep\0", 6), 0) == 0) return true;
        }
        return false;
      },
      milliseconds(20000)));
  ::kill(agents_["alpha"]->pid(), SIGKILL);
  auto status = running.Wait(milliseconds(10000));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 255);
  EXPECT_LT(Steady::now() - started, milliseconds(10000));
  EXPECT_NE(running.Stderr().find("disconnected"), std::string::npos) << running.Stderr();
  bool result_recorded = false;
  for (const auto& r : Audit()) {
    if (r["kind"] == "result" && r["target"] == "alpha" && r["error"].is_string() &&
        r["error"].get<std::string>().find("disconnected") != std::string::npos) {
      result_recorded = true;
    }
  }
  EXPECT_TRUE(result_recorded);
  EXPECT_TRUE(WaitUntilGone(sleep_len, milliseconds(10000)));
}

TEST_F(Nodes, RestartedGatewaySeesItsNodesBackWithinFiveSeconds) {
  PairAndStart("alpha");
  PairAndStart("beta");
  StopGateway();
  const auto restarted = Steady::now();
  StartGateway();
  EXPECT_TRUE(WaitOnline("alpha", true, milliseconds(5000)));
  EXPECT_TRUE(WaitOnline("beta", true, milliseconds(5000)));
  EXPECT_LT(Steady::now() - restarted, milliseconds(5000));
  EXPECT_EQ(Labgate({"run", "beta", "--", "true"}).status, 0);
}

TEST_F(Nodes, AGatewayAwayForSecondsIsFoundAgainWithinTheRestartSpreadOnceItListens) {
  // Twelve seconds of "connection refused" used to push a node's next try out by up to 16 s
  // (the spread doubling on each refusal); refusals cost the gateway nothing, so within a minute
  // of the drop the node keeps trying every 2 s at most and is back about as soon as it listens.
  PairAndStart("alpha");
  StopGateway();
  std::this_thread::sleep_for(milliseconds(12000));
  StartGateway();
  const auto listening = Steady::now();
  EXPECT_TRUE(WaitOnline("alpha", true, milliseconds(6000))) << agents_["alpha"]->Stderr();
  const auto back = Steady::now() - listening;
  EXPECT_LT(back, milliseconds(4000)) << std::chrono::duration_cast<milliseconds>(back).count() << " ms";
  // The node's log has one line per attempt, saying why it failed and when the next one is.
  std::istringstream log(agents_["alpha"]->Stderr());
  int refused = 0;
  int other_reconnects = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.find("cannot reach the gateway") != std::string::npos) {
      ++refused;
      EXPECT_NE(line.find("; reconnecting in "), std::string::npos) << line;
    } else if (line.find("reconnecting in") != std::string::npos) {
      ++other_reconnects;
    }
  }
  EXPECT_GE(refused, 4) << agents_["alpha"]->Stderr();     // 12 s away, a try every 2 s at most
  EXPECT_LE(other_reconnects, 1) << agents_["alpha"]->Stderr();  // the link that the stop ended
}

TEST_F(Nodes, ABatchOfCodesPairsEachNodeItsOwnWayAndACommandCannotMintThem) {
  auto batch = Labgate({"pair", "new", "--node", "*", "--json"});
  ASSERT_EQ(batch.status, 0) << batch.err;
  const Json codes = Json::parse(batch.out)["codes"];
  ASSERT_EQ(codes.size(), 3u) << batch.out;  // alpha, beta, gamma; `local` is no node
  std::map<std::string, std::string> by_node;
  for (const auto& c : codes) by_node[c["nodeId"].get<std::string>()] = c["code"].get<std::string>();
  EXPECT_EQ(codes[2]["capabilities"], Json::array({"run", "screen"}));
  EXPECT_EQ(Events("pairing.code_issued").size(), 3u);
  // A code is bound to its node: alpha's cannot pair a device as beta.
  ASSERT_EQ(Node({"pair", by_node["alpha"], "--state-dir", StateDir("alpha")}).status, 0);
  ASSERT_EQ(Node({"pair", by_node["beta"], "--state-dir", StateDir("beta")}).status, 0);
  StartAgent("alpha");
  StartAgent("beta");
  EXPECT_TRUE(WaitOnline("alpha"));
  EXPECT_TRUE(WaitOnline("beta"));
  // Paired through the journal: a restarted gateway still knows both keys.
  StopGateway();
  StartGateway();
  EXPECT_TRUE(WaitOnline("alpha"));
  // Each agent reconnects on its own backoff: beta may come back after alpha.
  EXPECT_TRUE(WaitOnline("beta"));
  EXPECT_EQ(Labgate({"run", "beta", "--", "true"}).status, 0);

  auto none = Labgate({"pair", "new", "--node", "group:nosuch", "--json"});
  EXPECT_EQ(none.status, 2) << none.out;
  EXPECT_NE(none.err.find("nosuch"), std::string::npos) << none.err;

  // What an assistant would try: mint codes for every node from a command labgate runs.
  const std::string mint = std::string(LABGATE_BINARY) + " pair new --node '*' --json --config " + config_;
  auto minted = Labgate({"run", "alpha", "--shell", mint});
  EXPECT_NE(minted.status, 0) << minted.out;
  EXPECT_EQ(minted.out.find("lgpair1"), std::string::npos) << minted.out;
  EXPECT_EQ(Events("pairing.code_issued").size(), 3u);
}

TEST_F(Nodes, FrozenNodeDoesNotDelayCallsToAnotherNode) {
  PairAndStart("alpha");
  PairAndStart("beta");
  // alpha's command can only finish after beta's call ran; then alpha's agent is frozen.
  const std::string flag = dir_.path() + "/flag";
  Subprocess waiting({LABGATE_BINARY, "run", "alpha", "--config", config_, "--timeout", "20s", "--shell",
                      "while [ ! -e " + flag + " ]; do sleep 0.05; done; echo saw-flag"});
  ASSERT_TRUE(PollUntil([&] { return ProcessWithMarkerExists("while [ ! -e " + flag); }, milliseconds(10000)));
  ::kill(agents_["alpha"]->pid(), SIGSTOP);
  auto c = Labgate({"run", "beta", "--", "touch", flag});
  ::kill(agents_["alpha"]->pid(), SIGCONT);
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(waiting.Wait(milliseconds(20000)), 0) << waiting.Stderr();
  EXPECT_EQ(waiting.ReadLine(milliseconds(1000)), "saw-flag");
}

TEST_F(Nodes, OfflineNodeSaysWhenItWasLastSeen) {
  PairAndStart("alpha");
  ::kill(agents_["alpha"]->pid(), SIGTERM);
  ASSERT_TRUE(agents_["alpha"]->Wait(milliseconds(10000)).has_value());
  ASSERT_TRUE(WaitOnline("alpha", false));
  auto c = Labgate({"run", "alpha", "--", "true"});
  EXPECT_EQ(c.status, 255);
  EXPECT_NE(c.err.find("offline (last seen 20"), std::string::npos) << c.err;
  auto t = Labgate({"targets", "--json"});
  const Json listed = Json::parse(t.out);  // a temporary in the range expression would die before the loop
  for (const auto& target : listed["targets"]) {
    if (target["id"] == "alpha") {
      EXPECT_EQ(target["online"], false);
      EXPECT_TRUE(target["lastSeen"].is_string());
    }
  }
}

TEST_F(Nodes, OperatorSocketRefusesAnotherUid) {
  if (::getuid() != 0) GTEST_SKIP() << "switching to another uid needs root (CI runs as root)";
  const std::string socket = dir_.path() + "/state/operator.sock";
  struct stat st {};
  ASSERT_EQ(::stat(socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto connect_as_nobody = [&]() -> std::string {
    int pipefd[2];
    EXPECT_EQ(::pipe(pipefd), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(pipefd[0]);
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
      int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
      std::string out;
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        out = "connect: " + std::string(std::strerror(errno));
      } else {
        const std::string req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nodes.list\"}\n";
        // The gateway may already have closed: no SIGPIPE for this child.
        (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
      }
      (void)!::write(pipefd[1], out.data(), out.size());
      ::_exit(0);
    }
    ::close(pipefd[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return out;
  };
  // First fence: the file mode.
  EXPECT_NE(connect_as_nobody().find("Permission denied"), std::string::npos);
  // Second fence, with the mode opened up on purpose: the gateway checks the peer's uid.
  ::chmod(dir_.path().c_str(), 0711);
  ::chmod((dir_.path() + "/state").c_str(), 0711);
  ::chmod(socket.c_str(), 0666);
  std::string answer = connect_as_nobody();
  EXPECT_NE(answer.find("serves only root"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("\"result\""), std::string::npos) << answer;
  ASSERT_TRUE(PollUntil([&] { return !Events("socket.refused").empty(); }, milliseconds(5000)));
  EXPECT_EQ(Events("socket.refused")[0]["details"]["uid"], 65534);
}

class PairingWithoutCode : public Nodes {
 protected:
  bool AllowPairing() const override { return true; }
  // Listed, so that requests for them reach the operator's queue (and its limits).
  std::string ExtraEntries() const override {
    std::string entries;
    for (int i = 0; i <= 6; ++i) {
      entries += "\n[[nodes]]\nid = \"abuse-" + std::to_string(i) + "\"\ncapabilities = [\"run\"]\n";
    }
    return entries;
  }
};

// A pairing session as an abuser would open it: any fresh key may log in as labgate-pair
// (or `key`, which stays the caller's).
class RawPairingSession {
 public:
  explicit RawPairingSession(int port, ssh_key key = nullptr) {
    session_ = ssh_new();
    const int zero = 0;
    const long secs = 10;
    ssh_options_set(session_, SSH_OPTIONS_HOST, "127.0.0.1");
    ssh_options_set(session_, SSH_OPTIONS_PORT, &port);
    ssh_options_set(session_, SSH_OPTIONS_USER, nodes::kPairUser);
    ssh_options_set(session_, SSH_OPTIONS_PROCESS_CONFIG, &zero);
    ssh_options_set(session_, SSH_OPTIONS_TIMEOUT, &secs);
    ssh_options_set(session_, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
    if (ssh_connect(session_) != SSH_OK) return;
    const bool own_key = key == nullptr;
    if (own_key && ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) return;
    const int auth = ssh_userauth_publickey(session_, nodes::kPairUser, key);
    if (own_key) ssh_key_free(key);
    if (auth != SSH_AUTH_SUCCESS) return;
    channel_ = ssh_channel_new(session_);
    if (ssh_channel_open_session(channel_) != SSH_OK ||
        ssh_channel_request_subsystem(channel_, nodes::kSubsystem) != SSH_OK) {
      return;
    }
    ok_ = true;
  }
  ~RawPairingSession() {
    if (channel_) ssh_channel_free(channel_);
    ssh_disconnect(session_);
    ssh_free(session_);
  }
  bool ok() const { return ok_; }
  bool Send(const std::string& bytes) {
    return ssh_channel_write(channel_, bytes.data(), static_cast<uint32_t>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }
  void Request(int id, const std::string& node) {
    Send(Json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "pair.request"},
              {"params", {{"nodeId", node}, {"capabilities", {"run"}}, {"platform", "test"}}}}
             .dump() + "\n");
  }
  // The next line from the gateway, or "" after `ms` or when the channel ends.
  std::string ReadLine(int ms) {
    const auto until = Steady::now() + milliseconds(ms);
    while (buffer_.find('\n') == std::string::npos && Steady::now() < until) {
      char buf[4096];
      const int n = ssh_channel_read_timeout(channel_, buf, sizeof buf, 0, 100);
      if (n < 0 || (n == 0 && ssh_channel_is_eof(channel_))) break;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
    const auto nl = buffer_.find('\n');
    if (nl == std::string::npos) return "";
    std::string line = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    return line;
  }
  bool Ended() { return ssh_channel_is_eof(channel_) || ssh_channel_is_closed(channel_); }

 private:
  ssh_session session_ = nullptr;
  ssh_channel channel_ = nullptr;
  std::string buffer_;
  bool ok_ = false;
};

TEST_F(PairingWithoutCode, Abuse_OneRequestPerSession_PendingCappedPerSource_LongLinesRefused) {
  // One session, two requests: the second is refused and the session closed.
  RawPairingSession first(port_);
  ASSERT_TRUE(first.ok());
  first.Request(1, "abuse-0");
  first.Request(2, "abuse-1");
  const std::string refused = first.ReadLine(5000);
  EXPECT_NE(refused.find("one pair.request per session"), std::string::npos) << refused;

  // Sessions from one address: four requests wait for the operator, the fifth is refused.
  std::vector<std::unique_ptr<RawPairingSession>> sessions;
  std::string last;
  for (int i = 2; i <= 6; ++i) {
    sessions.push_back(std::make_unique<RawPairingSession>(port_));
    ASSERT_TRUE(sessions.back()->ok());
    sessions.back()->Request(1, "abuse-" + std::to_string(i));
    last = sessions.back()->ReadLine(1500);
  }
  EXPECT_NE(last.find("already waiting for the operator"), std::string::npos) << last;
  auto pending = Labgate({"nodes", "pending", "--json"});
  int waiting = 0;
  for (std::size_t at = pending.out.find("abuse-"); at != std::string::npos; at = pending.out.find("abuse-", at + 1)) {
    ++waiting;
  }
  EXPECT_LE(waiting, 4) << pending.out;

  // A long unterminated line in a pairing session costs at most 64 KiB, then nothing more.
  RawPairingSession flood(port_);
  ASSERT_TRUE(flood.ok());
  flood.Send(std::string(1 << 20, 'x'));
  EXPECT_EQ(Labgate({"nodes", "list", "--json"}).status, 0) << "the gateway stopped answering";

  bool limit_audited = false;
  bool once_audited = false;
  for (const auto& e : ReadJsonLines(dir_.path() + "/state/audit.jsonl")) {
    if (e.value("event", "") != "pairing.refused") continue;
    const std::string rule = e["details"].value("rule", "");
    limit_audited |= rule == "pairing.pending-limit";
    once_audited |= rule == "pairing.one-per-session";
  }
  EXPECT_TRUE(limit_audited);
  EXPECT_TRUE(once_audited);
}

TEST_F(PairingWithoutCode, AnotherKeyCannotTakeTheIdOfAWaitingRequest_TheSameKeyAskingAgainReplacesItsOldSession) {
  // Device A asks for abuse-0 and waits; the operator compares A's key and approves by id. A
  // request from another key for abuse-0 must not take A's place in the queue, or the operator
  // would approve the other key. A asking again (it restarted) keeps one session waiting, not two.
  ssh_key a = nullptr;
  ASSERT_EQ(ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &a), SSH_OK);
  struct Free {
    ssh_key k;
    ~Free() { ssh_key_free(k); }
  } free_a{a};
  const std::string a_fingerprint = nodes::Fingerprint(a);
  auto waiting_key = [&] {
    auto p = Json::parse(Labgate({"nodes", "pending", "--json"}).out)["pending"];
    for (const auto& row : p) {
      if (row["id"] == "abuse-0") return row["fingerprint"].get<std::string>();
    }
    return std::string();
  };

  // The next answer in a session, past the gateway's pings (a waiting session is pinged).
  auto answer_in = [](RawPairingSession& session) {
    for (int i = 0; i < 20; ++i) {
      const std::string line = session.ReadLine(5000);
      if (line.empty() || line.find("\"method\"") == std::string::npos) return line;
    }
    return std::string();
  };
  RawPairingSession first(port_, a);
  ASSERT_TRUE(first.ok());
  first.Request(1, "abuse-0");
  ASSERT_TRUE(PollUntil([&] { return waiting_key() == a_fingerprint; }, milliseconds(5000))) << waiting_key();

  RawPairingSession other(port_);
  ASSERT_TRUE(other.ok());
  other.Request(1, "abuse-0");
  const std::string refused = answer_in(other);
  EXPECT_NE(refused.find("from another key"), std::string::npos) << refused;
  EXPECT_EQ(waiting_key(), a_fingerprint);

  RawPairingSession again(port_, a);
  ASSERT_TRUE(again.ok());
  again.Request(1, "abuse-0");
  const std::string replaced = answer_in(first);
  EXPECT_NE(replaced.find("took this one's place"), std::string::npos) << replaced;
  EXPECT_TRUE(PollUntil(
      [&] {
        (void)first.ReadLine(100);  // a close waits behind unread data
        return first.Ended();
      },
      milliseconds(5000)));

  auto approve = Labgate({"nodes", "approve", "abuse-0"});
  ASSERT_EQ(approve.status, 0) << approve.err;
  const std::string answer = answer_in(again);
  EXPECT_NE(answer.find("\"paired\""), std::string::npos) << answer;
  EXPECT_EQ((*NodeRow("abuse-0"))["fingerprint"], a_fingerprint);
}

TEST_F(PairingWithoutCode, ASessionThatKeepsAskingWithoutReading_IsClosed_NotQueuedFor) {
  // Anyone may log in to pair. A session that waits for the operator and then sends line after
  // line, each earning an error answer it never reads, must be closed: the gateway would
  // otherwise hold every answer (here about 20 MB of them) for as long as the request waits.
  RawPairingSession flood(port_);
  ASSERT_TRUE(flood.ok());
  flood.Request(1, "abuse-0");
  ASSERT_TRUE(PollUntil([&] { return Labgate({"nodes", "pending", "--json"}).out.find("abuse-0") != std::string::npos; },
                        milliseconds(5000)));
  std::string lines;
  for (int i = 0; i < 4000; ++i) lines += "1\n";
  for (int i = 0; i < 50; ++i) {
    if (!flood.Send(lines)) break;  // closed on the gateway's side
  }
  // Only now read. A gateway that closed the session sent what the window held, then the
  // close; one that queued every answer goes on sending all of them and keeps the session.
  std::size_t answers = 0;
  const auto until = Steady::now() + milliseconds(15000);
  while (!flood.Ended() && Steady::now() < until) {
    if (!flood.ReadLine(200).empty()) ++answers;
  }
  EXPECT_TRUE(flood.Ended()) << "the flooding session is still open past the login deadline, after " << answers
                             << " answers";
  EXPECT_LT(answers, 100000u) << "the gateway held more than the window and its cap";
  EXPECT_EQ(Labgate({"nodes", "list", "--json"}).status, 0) << "the gateway stopped answering";
}

TEST_F(PairingWithoutCode, PendingRequestIsApprovedWithNarrowedCapabilities) {
  auto c = Labgate({"nodes", "list", "--json"});
  const std::string fp = Json::parse(c.out)["gateway"]["fingerprint"].get<std::string>();
  Subprocess device({LABGATE_BINARY, "node", "pair", "--gateway", "127.0.0.1:" + std::to_string(port_), "--fingerprint",
                     fp, "--node", "gamma", "--caps", "run,screen", "--state-dir", StateDir("gamma")});
  Json pending;
  ASSERT_TRUE(PollUntil(
      [&] {
        auto p = Labgate({"nodes", "pending", "--json"});
        pending = Json::parse(p.out)["pending"];
        return !pending.empty();
      },
      milliseconds(10000)))
      << device.Stderr();
  EXPECT_EQ(pending[0]["id"], "gamma");
  EXPECT_EQ(pending[0]["capabilities"], (Json{"run", "screen"}));
  auto approve = Labgate({"nodes", "approve", "gamma", "--caps", "run"});
  ASSERT_EQ(approve.status, 0) << approve.err;
  EXPECT_EQ(device.Wait(milliseconds(10000)), 0) << device.Stderr();
  StartAgent("gamma");
  ASSERT_TRUE(WaitOnline("gamma"));
  EXPECT_EQ((*NodeRow("gamma"))["capabilities"], (Json{"run"}));
  EXPECT_EQ(Labgate({"run", "gamma", "--", "true"}).status, 0);
  EXPECT_EQ(Events("pairing.pending").size(), 1u);
  EXPECT_EQ(Events("node.approved").size(), 1u);
}

TEST_F(PairingWithoutCode, RequestWithoutCaps_GetsWhatTheNodesEntryLists) {
  // Issue 16: `node pair --gateway --fingerprint --node` asked for nothing, and approving it
  // then failed ("approval can only narrow"), leaving a node that could do nothing.
  auto c = Labgate({"nodes", "list", "--json"});
  const std::string fp = Json::parse(c.out)["gateway"]["fingerprint"].get<std::string>();
  Subprocess device({LABGATE_BINARY, "node", "pair", "--gateway", "127.0.0.1:" + std::to_string(port_), "--fingerprint",
                     fp, "--node", "gamma", "--state-dir", StateDir("gamma")});
  // The line with the key to compare is there at once, although stdout is a pipe.
  std::string said;
  ASSERT_TRUE(PollUntil(
      [&] {
        while (auto line = device.ReadLine(milliseconds(100))) said += *line + "\n";
        return said.find("waiting for the operator") != std::string::npos;
      },
      milliseconds(10000)))
      << said << device.Stderr();
  Json pending;
  ASSERT_TRUE(PollUntil(
      [&] {
        pending = Json::parse(Labgate({"nodes", "pending", "--json"}).out)["pending"];
        return !pending.empty();
      },
      milliseconds(10000)));
  ASSERT_EQ(pending.size(), 1u) << pending.dump();
  const std::string key = pending[0]["fingerprint"].get<std::string>();
  EXPECT_NE(said.find(key), std::string::npos) << said;
  // `node status` on the device shows the request and the same key while it waits.
  auto status = Node({"status", "--state-dir", StateDir("gamma")});
  EXPECT_EQ(status.status, 0) << status.err;
  EXPECT_NE(status.out.find("pairing request pending: node gamma"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find(key), std::string::npos) << status.out;
  auto approve = Labgate({"nodes", "approve", "gamma"});
  ASSERT_EQ(approve.status, 0) << approve.err;
  EXPECT_EQ(device.Wait(milliseconds(10000)), 0) << device.Stderr();
  StartAgent("gamma");
  ASSERT_TRUE(WaitOnline("gamma"));
  EXPECT_EQ((*NodeRow("gamma"))["capabilities"], (Json{"run", "screen"}));
  EXPECT_EQ(Labgate({"run", "gamma", "--", "true"}).status, 0);
  auto paired = Node({"status", "--state-dir", StateDir("gamma")});
  EXPECT_EQ(paired.out.find("pending"), std::string::npos) << paired.out;
}

TEST_F(PairingWithoutCode, RequestForAnIdWithoutAnEntry_IsRefusedAtOnce) {
  // Issue 16: such a request sat in `nodes pending` although it could never be approved.
  RawPairingSession session(port_);
  ASSERT_TRUE(session.ok());
  session.Request(1, "stranger");
  const std::string answer = session.ReadLine(5000);
  EXPECT_NE(answer.find("no [[nodes]] entry has id \\\"stranger\\\""), std::string::npos) << answer;
  auto pending = Labgate({"nodes", "pending", "--json"});
  EXPECT_EQ(pending.out.find("stranger"), std::string::npos) << pending.out;
}

TEST_F(PairingWithoutCode, RejectedRequestEndsThePairingAttempt) {
  auto c = Labgate({"nodes", "list", "--json"});
  const std::string fp = Json::parse(c.out)["gateway"]["fingerprint"].get<std::string>();
  Subprocess device({LABGATE_BINARY, "node", "pair", "--gateway", "127.0.0.1:" + std::to_string(port_), "--fingerprint",
                     fp, "--node", "gamma", "--state-dir", StateDir("gamma")});
  ASSERT_TRUE(PollUntil([&] { return !Json::parse(Labgate({"nodes", "pending", "--json"}).out)["pending"].empty(); },
                        milliseconds(10000)));
  ASSERT_EQ(Labgate({"nodes", "reject", "gamma"}).status, 0);
  EXPECT_NE(device.Wait(milliseconds(10000)).value_or(0), 0);
  EXPECT_NE(device.Stderr().find("rejected"), std::string::npos) << device.Stderr();
  EXPECT_FALSE(NodeRow("gamma").has_value());
}

/// A TCP connection to `address` ("127.0.0.1:PORT") from the test itself, no SSH; -1 if refused.
int RawConnect(const std::string& address) {
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Whether the far end closed `fd`: reads what is there and says if end-of-file (or a reset) came.
bool ClosedByPeer(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

double OwnCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// The listener's events go nowhere in these tests.
class RecordingObserver final : public nodes::AgentObserver {
 public:
  void OnAgentEvent(const nodes::AgentEvent& e) override {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(e);
  }
  std::vector<nodes::AgentEvent> Events(const std::string& type) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<nodes::AgentEvent> found;
    for (const auto& e : events_) {
      if (e.event == type) found.push_back(e);
    }
    return found;
  }

 private:
  std::mutex mutex_;
  std::vector<nodes::AgentEvent> events_;
};

/// A gateway made of the real listener code, in process, on a free loopback port: its pairing
/// store and host key in a temp dir. A test adjusts `settings_`, then starts it.
class NodeAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = nodes::PairingStore::Open(dir_.path() + "/nodes.json", clock_);
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    settings_.listen = "127.0.0.1:0";
    settings_.host_key_path = dir_.path() + "/host_key";
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  void StartListener() {
    server_ = std::make_unique<nodes::AgentServer>(*store_, settings_, observer_);
    ASSERT_TRUE(server_->Start().ok());
  }
  std::string StateDir(const std::string& id) const { return dir_.path() + "/" + id; }
  /// Pairs `state_dir` (StateDir(id) when empty) as node `id` with the listener, through
  /// `labgate node pair`.
  void Pair(const std::string& id, const std::vector<std::string>& capabilities, const std::string& state_dir = "") {
    auto secret = store_->IssueCode(id, capabilities, std::chrono::minutes(5));
    ASSERT_TRUE(secret.ok());
    const std::string code = nodes::EncodePairingCode({server_->address(), server_->fingerprint(), id, *secret});
    auto paired = RunToCompletion(
        {LABGATE_BINARY, "node", "pair", code, "--state-dir", state_dir.empty() ? StateDir(id) : state_dir});
    ASSERT_EQ(paired.status, 0) << paired.err;
  }
  std::unique_ptr<Subprocess> StartNode(const std::string& id, const std::string& state_dir = "") {
    return std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "node", "run", "--state-dir",
                                                                 state_dir.empty() ? StateDir(id) : state_dir});
  }
  /// `system.run` of `argv` on node `id`, as the gateway asks it, answered within 10 s.
  core::Result<Json> RunOnNode(const std::string& id, std::vector<std::string> argv) {
    core::CancelToken never;
    return server_->Call(id, "system.run",
                         {{"argv", std::move(argv)}, {"cwd", ""}, {"timeoutMs", 5000}, {"outputCap", 1024},
                          {"env", Json::array()}},
                         Steady::now() + milliseconds(10000), never);
  }

  TempDir dir_;
  core::SystemClock clock_;
  std::unique_ptr<nodes::PairingStore> store_;
  RecordingObserver observer_;
  nodes::AgentServerSettings settings_;
  std::unique_ptr<nodes::AgentServer> server_;
};

TEST_F(NodeAgent, RefusesAnUnapprovedCapabilityEvenWhenAskedDirectly) {
  ASSERT_NO_FATAL_FAILURE(StartListener());
  ASSERT_NO_FATAL_FAILURE(Pair("cam", {"camera"}));
  auto agent = StartNode("cam");
  ASSERT_TRUE(PollUntil([&] { return server_->Link("cam").has_value(); }, milliseconds(10000))) << agent->Stderr();

  const std::string marker = UniqueSleep(1);
  auto answer = RunOnNode("cam", {"sleep", marker});
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code, core::ErrorCode::kRefused);
  EXPECT_NE(answer.error().message.find("not approved for run"), std::string::npos) << answer.error().message;
  EXPECT_FALSE(ProcessWithMarkerExists(marker));
  ::kill(agent->pid(), SIGTERM);
  EXPECT_EQ(agent->Wait(milliseconds(10000)), 0);
}

TEST_F(NodeAgent, MalformedParamsOnAThreadedRequest_AreAnsweredAsAnError_TheAgentGoesOn) {
  // file.* requests run on threads of their own. A parameter of the wrong type there (a gateway
  // of another version, or a bug) threw out of the thread and ended the whole agent.
  ASSERT_NO_FATAL_FAILURE(StartListener());
  ASSERT_NO_FATAL_FAILURE(Pair("f", {"file", "run"}));
  auto agent = StartNode("f");
  ASSERT_TRUE(PollUntil([&] { return server_->Link("f").has_value(); }, milliseconds(10000))) << agent->Stderr();
  core::CancelToken never;
  for (const Json& params : {Json{{"path", dir_.path()}, {"maxEntries", "x"}},
                             Json{{"path", dir_.path() + "/nothing"}, {"offset", -1}, {"length", "all"}}}) {
    const std::string method = params.contains("maxEntries") ? "file.list" : "file.read";
    auto answer = server_->Call("f", method, params, Steady::now() + milliseconds(10000), never);
    ASSERT_FALSE(answer.ok()) << method << ": " << answer->dump();
    EXPECT_NE(answer.error().message.find("malformed request"), std::string::npos) << answer.error().message;
  }
  auto run = RunOnNode("f", {"true"});
  EXPECT_TRUE(run.ok()) << run.error().message << "\n" << agent->Stderr();
  ::kill(agent->pid(), SIGTERM);
  EXPECT_EQ(agent->Wait(milliseconds(10000)), 0);
}

TEST_F(NodeAgent, ANodePairedAgainWithACode_CutsOffTheDeviceStillLinkedWithTheOldKey) {
  // The operator gives `n` to a new device with a code (the old one was lost, or is suspect).
  // The old device's link must end then: left up, it would go on getting the commands, files
  // and sudo passwords meant for `n` until the new device first connected, if ever.
  ASSERT_NO_FATAL_FAILURE(StartListener());
  ASSERT_NO_FATAL_FAILURE(Pair("n", {"run"}));
  auto old_device = StartNode("n");
  ASSERT_TRUE(PollUntil([&] { return server_->Link("n").has_value(); }, milliseconds(10000))) << old_device->Stderr();
  ASSERT_TRUE(RunOnNode("n", {"true"}).ok());

  const std::string new_dir = dir_.path() + "/n-new-device";
  ASSERT_NO_FATAL_FAILURE(Pair("n", {"run"}, new_dir));
  EXPECT_TRUE(PollUntil([&] { return !server_->Link("n").has_value(); }, milliseconds(5000)))
      << "the device with the old key is still linked as n";
  const std::string marker = UniqueSleep(1);
  EXPECT_FALSE(RunOnNode("n", {"sleep", marker}).ok());
  EXPECT_FALSE(ProcessWithMarkerExists(marker));

  auto new_device = StartNode("n", new_dir);
  ASSERT_TRUE(PollUntil([&] { return server_->Link("n").has_value(); }, milliseconds(10000))) << new_device->Stderr();
  auto answer = RunOnNode("n", {"true"});
  EXPECT_TRUE(answer.ok()) << answer.error().message;
  ::kill(new_device->pid(), SIGTERM);
  EXPECT_EQ(new_device->Wait(milliseconds(10000)), 0);
  ::kill(old_device->pid(), SIGTERM);
  (void)old_device->Wait(milliseconds(10000));
  EXPECT_NE(old_device->Stderr().find("paired again"), std::string::npos) << old_device->Stderr();
}

TEST_F(NodeAgent, PlainRunsOnTheLinksOwnThread_DeadlineCancelFloodAndADroppedLinkEachEndWhatTheyStarted) {
  // A run without sudo is stepped by the link's own loop (no thread of its own). Played as the
  // assistant would push it: a command that outstays its deadline with children in the
  // background, one cancelled mid-way, one that floods output while others run, fifty at once,
  // and one whose link the gateway drops mid-command. Each must end with everything it started.
  ASSERT_NO_FATAL_FAILURE(StartListener());
  ASSERT_NO_FATAL_FAILURE(Pair("n", {"run"}));
  auto agent = StartNode("n");
  ASSERT_TRUE(PollUntil([&] { return server_->Link("n").has_value(); }, milliseconds(10000))) << agent->Stderr();
  auto call = [&](std::vector<std::string> argv, int timeout_ms, const core::CancelToken& cancel,
                  milliseconds wait = milliseconds(15000)) {
    return server_->Call("n", "system.run",
                         {{"argv", std::move(argv)}, {"cwd", ""}, {"timeoutMs", timeout_ms}, {"outputCap", 1024},
                          {"env", Json::array()}},
                         Steady::now() + wait, cancel);
  };
  core::CancelToken never;

  const std::string late = UniqueSleep(40);
  auto timed = call({"sh", "-c", "sleep " + late + " & sleep " + late + " & wait"}, 500, never);
  ASSERT_TRUE(timed.ok()) << timed.error().message;
  EXPECT_EQ((*timed)["timedOut"], true) << timed->dump();
  EXPECT_TRUE(WaitUntilGone(late, milliseconds(5000)));

  const std::string cancelled = UniqueSleep(40);
  core::CancelToken cancel;
  std::thread canceller([&] {
    labgate::testing::WaitUntilPresent(std::string("sleep") + '\0' + cancelled);  // the trap is set
    cancel.Cancel();
  });
  auto stopped = call({"sh", "-c", "trap '' TERM; sleep " + cancelled}, 30000, cancel);
  canceller.join();
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.error().code, core::ErrorCode::kCancelled);
  EXPECT_TRUE(WaitUntilGone(cancelled, milliseconds(5000)));  // TERM ignored: KILL after the grace

  std::vector<std::thread> callers;
  std::vector<core::Result<Json>> answers(50, core::MakeError(core::ErrorCode::kUnavailable, "not asked"));
  for (int i = 0; i < 50; ++i) {
    callers.emplace_back([&, i] {
      answers[i] = i == 0 ? call({"head", "-c", "3000000", "/dev/zero"}, 20000, never)
                          : call({"sh", "-c", "echo answer-$0", std::to_string(i)}, 20000, never);
    });
  }
  for (auto& t : callers) t.join();
  ASSERT_TRUE(answers[0].ok()) << answers[0].error().message;
  EXPECT_EQ(answers[0]->at("stdout").at("totalBytes"), 3000000) << answers[0]->at("stdout").dump();
  EXPECT_EQ(answers[0]->at("stdout").at("truncated"), true);
  for (int i = 1; i < 50; ++i) {
    ASSERT_TRUE(answers[i].ok()) << i << ": " << answers[i].error().message;
    EXPECT_EQ((*answers[i])["exitCode"], 0);
    auto out = core::Base64Decode(answers[i]->at("stdout").at("data").get<std::string>());
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, "answer-" + std::to_string(i) + "\n");  // its own output, no other's
  }

  const std::string dropped = UniqueSleep(40);
  std::thread dropper([&] {
    labgate::testing::WaitUntilPresent(dropped);
    server_->Disconnect("n", "dropped by the test");
  });
  auto lost = call({"sh", "-c", "sleep " + dropped + " & sleep " + dropped + " & wait"}, 30000, never);
  dropper.join();
  EXPECT_FALSE(lost.ok());
  EXPECT_TRUE(WaitUntilGone(dropped, milliseconds(5000)));  // nobody is left to hear its answer

  ::kill(agent->pid(), SIGTERM);
  EXPECT_EQ(agent->Wait(milliseconds(10000)), 0);
}

TEST_F(NodeAgent, AnIdleNodeStaysOnline_OnTheGatewaysPings_AndAFrozenOneIsDroppedAtTheTimeout) {
  // The gateway pings a quiet node and the answer is the node's heartbeat. A node that answers
  // stays linked with nothing else to say; a node whose process is frozen (its kernel still
  // acknowledges TCP, so only an answer proves it alive) is dropped after the timeout.
  settings_.heartbeat_interval = milliseconds(300);
  settings_.heartbeat_timeout = milliseconds(1500);
  ASSERT_NO_FATAL_FAILURE(StartListener());
  ASSERT_NO_FATAL_FAILURE(Pair("quiet", {"run"}));
  auto agent = StartNode("quiet");
  ASSERT_TRUE(PollUntil([&] { return server_->Link("quiet").has_value(); }, milliseconds(10000))) << agent->Stderr();
  const auto since = server_->Link("quiet")->since;
  std::this_thread::sleep_for(milliseconds(4000));  // more than twice the timeout, and no call
  ASSERT_TRUE(server_->Link("quiet").has_value());
  EXPECT_EQ(server_->Link("quiet")->since, since);  // the same link all along
  EXPECT_TRUE(observer_.Events("node.offline").empty());

  ::kill(agent->pid(), SIGSTOP);
  const auto frozen = Steady::now();
  ASSERT_TRUE(PollUntil([&] { return !server_->Link("quiet").has_value(); }, milliseconds(5000)));
  EXPECT_LT(Steady::now() - frozen, milliseconds(2500));
  auto offline = observer_.Events("node.offline");
  ASSERT_EQ(offline.size(), 1u);
  EXPECT_NE(offline[0].detail.find("no heartbeat"), std::string::npos) << offline[0].detail;
  ::kill(agent->pid(), SIGCONT);
  // Thawed, it finds its link gone and comes back on its own.
  ASSERT_TRUE(PollUntil([&] { return server_->Link("quiet").has_value(); }, milliseconds(15000))) << agent->Stderr();
  ::kill(agent->pid(), SIGTERM);
  EXPECT_EQ(agent->Wait(milliseconds(10000)), 0);
}

TEST_F(NodeAgent, ListenerStartsAnotherLoopWhenEveryLoopIsFull_AndEverySessionStillAnswers) {
  // The listener spreads sessions over more loops as they grow, so a reconnect storm's key
  // exchanges are not all on one thread. Two sessions per loop here: five nodes need three
  // loops, and each of them must still be reachable.
  settings_.loops = 1;
  settings_.sessions_per_loop = 2;
  ASSERT_NO_FATAL_FAILURE(StartListener());
  EXPECT_EQ(server_->loop_count(), 1u);
  std::vector<std::unique_ptr<Subprocess>> agents;
  const std::vector<std::string> ids = {"n1", "n2", "n3", "n4", "n5"};
  for (const auto& id : ids) {
    ASSERT_NO_FATAL_FAILURE(Pair(id, {"run"}));
    // The pairing session is gone before the node logs in, so only the nodes count.
    ASSERT_TRUE(PollUntil([&] { return server_->session_count() == agents.size(); }, milliseconds(10000)));
    agents.push_back(StartNode(id));
    ASSERT_TRUE(PollUntil([&] { return server_->Link(id).has_value(); }, milliseconds(10000))) << agents.back()->Stderr();
  }
  EXPECT_EQ(server_->loop_count(), 3u);
  for (const auto& id : ids) {
    auto answer = RunOnNode(id, {"sh", "-c", "echo " + id});
    ASSERT_TRUE(answer.ok()) << id << ": " << answer.error().message;
    EXPECT_EQ((*answer)["exitCode"], 0) << answer->dump();
  }
  // A node that leaves frees its place: the next one fills it rather than a fourth loop.
  ::kill(agents[0]->pid(), SIGTERM);
  EXPECT_EQ(agents[0]->Wait(milliseconds(10000)), 0);
  ASSERT_TRUE(PollUntil([&] { return !server_->Link("n1").has_value(); }, milliseconds(10000)));
  agents[0] = StartNode("n1");
  ASSERT_TRUE(PollUntil([&] { return server_->Link("n1").has_value(); }, milliseconds(15000))) << agents[0]->Stderr();
  EXPECT_EQ(server_->loop_count(), 3u);
  for (auto& agent : agents) ::kill(agent->pid(), SIGTERM);
  for (auto& agent : agents) EXPECT_EQ(agent->Wait(milliseconds(10000)), 0);
}

TEST_F(NodeAgent, HostilePeers_SilentHalfClosedOrGarbage_NeitherSpinTheLoopNorOutstayTheLoginDeadline) {
  // What anyone who can reach the node port can do without a key: connect and say nothing, send
  // the SSH version line and stop, send bytes that are no SSH, or half-close the connection at
  // once. A level-triggered loop that missed one socket's end-of-file would wake for it forever;
  // one that waited for input the peer never sends must still end it at the login deadline.
  // All on one loop with a real node, which must keep answering.
  settings_.loops = 1;
  settings_.login_timeout = milliseconds(4000);
  ASSERT_NO_FATAL_FAILURE(StartListener());
  ASSERT_NO_FATAL_FAILURE(Pair("real", {"run"}));
  auto agent = StartNode("real");
  ASSERT_TRUE(PollUntil([&] { return server_->Link("real").has_value(); }, milliseconds(10000))) << agent->Stderr();

  struct Peer {
    int fd;
    std::string kind;
  };
  std::vector<Peer> peers;
  std::string garbage(8192, '\0');
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 131 + 7) % 251);
  for (int i = 0; i < 240; ++i) {
    const int fd = RawConnect(server_->address());
    ASSERT_GE(fd, 0) << "connection " << i << " was refused: " << std::strerror(errno);
    std::string kind;
    switch (i % 6) {
      case 0:
      case 1:
        kind = "silent";
        break;
      case 2:
        kind = "half-closed";
        ::shutdown(fd, SHUT_WR);
        break;
      case 3:
        kind = "version line, then silent";
        ASSERT_GT(::send(fd, "SSH-2.0-hostile\r\n", 17, MSG_NOSIGNAL), 0);
        break;
      case 4:
        kind = "version line, then half-closed";
        ASSERT_GT(::send(fd, "SSH-2.0-hostile\r\n", 17, MSG_NOSIGNAL), 0);
        ::shutdown(fd, SHUT_WR);
        break;
      default:
        kind = "garbage";
        (void)::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
        break;
    }
    peers.push_back({fd, kind});
  }

  // While they are all connected: the node answers, and the listener sleeps. A loop spinning on
  // one of these sockets would burn the whole window on its own (seconds of CPU).
  const double cpu_before = OwnCpuSeconds();
  const auto window_start = Steady::now();
  auto answer = RunOnNode("real", {"sh", "-c", "echo still-here"});
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  EXPECT_EQ((*answer)["exitCode"], 0) << answer->dump();
  std::this_thread::sleep_until(window_start + milliseconds(2000));
  const double cpu_used = OwnCpuSeconds() - cpu_before;
  EXPECT_LT(cpu_used, 0.6) << "the listener used " << cpu_used << " s of CPU in 2 s with 240 idle hostile peers";

  // By the login deadline (and the listener's next check) every one of them is gone: nobody
  // holds a session (and a descriptor) of the gateway's without logging in.
  std::map<std::string, int> open_by_kind;
  ASSERT_TRUE(PollUntil(
      [&] {
        open_by_kind.clear();
        for (const auto& p : peers) {
          if (!ClosedByPeer(p.fd)) ++open_by_kind[p.kind];
        }
        return open_by_kind.empty();
      },
      milliseconds(15000)))
      << [&] {
           std::string open;
           for (const auto& [kind, n] : open_by_kind) open += std::to_string(n) + " " + kind + "; ";
           return "still open after the login deadline: " + open;
         }();
  EXPECT_TRUE(PollUntil([&] { return server_->session_count() == 1; }, milliseconds(5000))) << server_->session_count();
  for (const auto& p : peers) ::close(p.fd);

  auto again = RunOnNode("real", {"true"});
  EXPECT_TRUE(again.ok()) << again.error().message;
  ::kill(agent->pid(), SIGTERM);
  EXPECT_EQ(agent->Wait(milliseconds(10000)), 0);
}

TEST_F(NodeAgent, AFloodOfConnectionsThatNeverLogIn_HoldsNoMoreThanTheLoginSlots_AndAPairedNodeStillGetsIn) {
  // Anyone who can reach the node port (a command an assistant runs on any target, for one) can
  // open connections faster than logins finish. The listener takes at most logins_in_flight of
  // them into a key exchange at a time and leaves the rest in the kernel's backlog: the flood
  // cannot make the gateway run thousands of handshakes at once, and a paired node is in as
  // soon as the flood's slots pass the login deadline.
  settings_.loops = 1;
  settings_.logins_in_flight = 4;
  settings_.login_timeout = milliseconds(1500);
  ASSERT_NO_FATAL_FAILURE(StartListener());
  ASSERT_NO_FATAL_FAILURE(Pair("real", {"run"}));
  ASSERT_TRUE(PollUntil([&] { return server_->session_count() == 0; }, milliseconds(10000)));

  std::vector<int> flood;
  for (int i = 0; i < 12; ++i) {
    const int fd = RawConnect(server_->address());
    ASSERT_GE(fd, 0) << "connection " << i << " was refused: " << std::strerror(errno);
    flood.push_back(fd);
  }
  ASSERT_TRUE(PollUntil([&] { return server_->logins_in_flight() == 4; }, milliseconds(5000)))
      << server_->logins_in_flight();
  auto agent = StartNode("real");
  int most = 0;
  int most_sessions = 0;
  const bool online = PollUntil(
      [&] {
        most = std::max(most, server_->logins_in_flight());
        most_sessions = std::max(most_sessions, static_cast<int>(server_->session_count()));
        return server_->Link("real").has_value();
      },
      milliseconds(20000));
  ASSERT_TRUE(online) << agent->Stderr();
  EXPECT_LE(most, 4);
  EXPECT_LE(most_sessions, 5);  // the four slots, and the node once it logged in
  // The flood went through the slots in turns and every one of them was closed.
  EXPECT_TRUE(PollUntil(
      [&] {
        return std::all_of(flood.begin(), flood.end(), [](int fd) { return ClosedByPeer(fd); });
      },
      milliseconds(10000)));
  for (const int fd : flood) ::close(fd);
  EXPECT_TRUE(PollUntil([&] { return server_->logins_in_flight() == 0; }, milliseconds(5000)));
  auto answer = RunOnNode("real", {"true"});
  EXPECT_TRUE(answer.ok()) << answer.error().message;
  ::kill(agent->pid(), SIGTERM);
  EXPECT_EQ(agent->Wait(milliseconds(10000)), 0);
}

// `file` on a paired node: content travels in chunks over the agent channel; the node refuses
// it unless its pairing granted file, and never touches its own state directory.
class NodeFiles : public Nodes {
 protected:
  std::string ExtraEntries() const override {
    return "\n[[nodes]]\nid = \"delta\"\ncapabilities = [\"run\", \"file\"]\n";
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  Json FileJson(std::vector<std::string> args, int* status = nullptr) {
    args.insert(args.begin(), "file");
    args.push_back("--json");
    auto c = Labgate(args);
    if (status) *status = c.status;
    auto j = Json::parse(c.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << c.out << c.err;
    return j;
  }
};

TEST_F(NodeFiles, RoundTripsInChunksAndRefusesWhatThePairingOrTheNodeForbids) {
  PairAndStart("delta");
  const std::string data = dir_.path() + "/node-data";
  std::filesystem::create_directories(data);
  std::string big(20 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  for (const auto& [name, content] : std::vector<std::pair<std::string, std::string>>{
           {"empty", ""}, {"notes.txt", "from the node\n"}, {"big.bin", big}}) {
    const std::string local = dir_.Write("src-" + name, content);
    int status = -1;
    // 20 MB through the agent in 4 MiB chunks: under ThreadSanitizer, with other suites running,
    // that took more than the default 20 s deadline. The deadline is not what this checks.
    Json put = FileJson({"put", "delta", data + "/" + name, "--from", local, "--timeout", "180s"}, &status);
    ASSERT_EQ(status, 0) << put.dump();
    EXPECT_EQ(put["via"], "node");
    EXPECT_EQ(put["sha256"], core::Sha256Hex(content));
    EXPECT_EQ(Slurp(data + "/" + name), content);
    const std::string out = dir_.path() + "/got-" + name;
    Json get = FileJson({"get", "delta", data + "/" + name, "-o", out, "--timeout", "180s"}, &status);
    ASSERT_EQ(status, 0) << get.dump();
    EXPECT_EQ(get["sha256"], core::Sha256Hex(content));
    EXPECT_EQ(core::Sha256Hex(Slurp(out)), core::Sha256Hex(content)) << name;
  }
  int status = -1;
  Json read = FileJson({"read", "delta", data + "/notes.txt"}, &status);
  EXPECT_EQ(read["content"], "from the node\n") << read.dump();
  Json list = FileJson({"list", "delta", data}, &status);
  ASSERT_EQ(status, 0) << list.dump();
  EXPECT_EQ(list["entries"].size(), 3u);
  // A stale digest: nothing written.
  const std::string next = dir_.Write("next", "other\n");
  Json stale = FileJson({"put", "delta", data + "/notes.txt", "--from", next, "--expect", core::Sha256Hex("old\n")}, &status);
  EXPECT_NE(status, 0);
  EXPECT_EQ(Slurp(data + "/notes.txt"), "from the node\n");
  // The node's own state directory (its key) is out of reach, even through a symlink.
  std::filesystem::create_symlink(StateDir("delta"), data + "/st");
  for (const std::string& path : {StateDir("delta") + "/node_key", data + "/st/node_key", data + "/st/node.json"}) {
    Json r = FileJson({"read", "delta", path}, &status);
    EXPECT_NE(status, 0) << path;
    EXPECT_EQ(r["decision"], "refused") << r.dump();
    Json w = FileJson({"put", "delta", path, "--from", next}, &status);
    EXPECT_NE(status, 0) << path;
  }
  EXPECT_NE(Slurp(StateDir("delta") + "/node.json").find("delta"), std::string::npos);
  // No temporary file is left behind anywhere.
  for (const auto& e : std::filesystem::directory_iterator(data)) {
    EXPECT_EQ(e.path().filename().string().find(".labgate-"), std::string::npos) << e.path();
  }
}

TEST_F(NodeFiles, ANodePairedWithoutFileIsRefusedIt) {
  // The inventory lists file for delta, but the pairing granted run only.
  auto c = Node({"pair", NewCode("delta", {"--caps", "run"}), "--state-dir", StateDir("delta")});
  ASSERT_EQ(c.status, 0) << c.out << c.err;
  StartAgent("delta");
  ASSERT_TRUE(WaitOnline("delta"));
  int status = -1;
  Json r = FileJson({"stat", "delta", "/etc/hostname"}, &status);
  EXPECT_NE(status, 0);
  EXPECT_EQ(r["rule"], "pairing.capabilities") << r.dump();
  // alpha's inventory entry does not list file at all.
  PairAndStart("alpha");
  Json a = FileJson({"stat", "alpha", "/etc/hostname"}, &status);
  EXPECT_EQ(a["rule"], "targets.alpha.capabilities") << a.dump();
}

// sudo on a node: the agent runs as an ordinary account whose sudo needs its password; the
// gateway holds the reference (sudo_password_file in the node's entry) and sends the password
// inside the agent channel, and the node hands it to sudo on stdin.
class NodeSudo : public Nodes {
 protected:
  void SetUp() override {
    if (!SudoAccount::Usable()) {
      GTEST_SKIP() << "needs root (to make an account whose sudo asks for its password) and sudo; CI has both";
    }
    account_ = std::make_unique<SudoAccount>();
    ASSERT_TRUE(account_->ok()) << account_->error();
    password_file_ = dir_.Write("sudo-password", account_->password() + "\n");
    Nodes::SetUp();
  }
  void TearDown() override {
    Nodes::TearDown();
    for (auto& [id, agent] : agents_) agent->Wait(milliseconds(5000));
    account_.reset();
  }
  std::string ExtraEntries() const override {
    return "\n[[nodes]]\nid = \"sigma\"\ncapabilities = [\"run\", \"file\"]\nmode = \"full\"\nsudo_password_file = \"" +
           dir_.path() + "/sudo-password\"\n";
  }
  // Pairs `sigma` and starts its agent as the account, from a copy of the binary the account can
  // reach wherever the build tree lives.
  void PairAndStartAsTheAccount() {
    ::chmod(dir_.path().c_str(), 0711);
    const std::string bin = dir_.path() + "/bin";
    std::filesystem::create_directories(bin);
    ::chmod(bin.c_str(), 0755);
    std::filesystem::copy_file(LABGATE_BINARY, bin + "/labgate");
    const std::string state = StateDir("sigma");
    // Left by a root write a crash interrupted: the agent clears it when it starts.
    std::filesystem::create_directories(state + "/staging");
    std::ofstream(state + "/staging/" + std::string(32, 'e')) << "half a file\n";
    auto own = RunToCompletion({"/bin/chown", "-R", std::string(SudoAccount::kUser) + ":", state});
    ASSERT_EQ(own.status, 0) << own.err;
    ::chmod(state.c_str(), 0700);
    const std::vector<std::string> as_account = {"/usr/bin/setpriv", "--reuid", SudoAccount::kUser, "--regid",
                                                 SudoAccount::kUser, "--init-groups", "--"};
    std::vector<std::string> pair = as_account;
    pair.insert(pair.end(), {bin + "/labgate", "node", "pair", NewCode("sigma"), "--state-dir", state});
    auto paired = RunToCompletion(pair, "/");
    ASSERT_EQ(paired.status, 0) << paired.out << paired.err;
    std::vector<std::string> run = as_account;
    run.insert(run.end(), {bin + "/labgate", "node", "run", "--state-dir", state});
    agents_["sigma"] = std::make_unique<Subprocess>(run);
    ASSERT_TRUE(WaitOnline("sigma")) << agents_["sigma"]->Stderr();
  }
  std::unique_ptr<SudoAccount> account_;
  std::string password_file_;
};

TEST_F(NodeSudo, RunsAsRootWithoutThePasswordInAnyProcessTheAuditLogOrTheResult) {
  PairAndStartAsTheAccount();
  const std::string password = account_->password();
  auto plain = Labgate({"run", "sigma", "--", "id", "-un"});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(plain.out, std::string(SudoAccount::kUser) + "\n");

  SecretSampler sampler(password, std::chrono::milliseconds(20));
  auto c = Labgate({"run", "sigma", "--sudo", "--json", "--", "sh", "-c", "id -u; sleep 1.5; cat; echo end"});
  sampler.Stop();
  ASSERT_EQ(c.status, 0) << c.out << c.err;
  auto report = Json::parse(c.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << c.out;
  // Root, and the command's stdin is empty: the password line went to sudo only.
  EXPECT_EQ(report["results"][0]["stdout"], "0\nend\n") << c.out;
  EXPECT_EQ(report["results"][0]["via"], "node") << c.out;
  EXPECT_GT(sampler.samples(), 10);
  EXPECT_EQ(sampler.leaks(), 0) << "the password showed in a process's argv or environment";
  EXPECT_EQ(c.out.find(password), std::string::npos);
  EXPECT_EQ(c.err.find(password), std::string::npos);
  std::ifstream audit_file(dir_.path() + "/state/audit.jsonl");
  const std::string audit((std::istreambuf_iterator<char>(audit_file)), {});
  EXPECT_EQ(audit.find(password), std::string::npos);
  EXPECT_NE(audit.find("\"sudo\":true"), std::string::npos);
  // What a command run as root can look at holds nothing of it either.
  auto probe = Labgate({"run", "sigma", "--sudo", "--shell", "env; cat /proc/$$/cmdline /proc/$PPID/cmdline; cat"});
  EXPECT_EQ(probe.status, 0) << probe.err;
  EXPECT_EQ(probe.out.find(password), std::string::npos);
  // Hostile words arrive as they were given, as root.
  const std::vector<std::string> hostile = {"$(id)", "; rm -rf /nonexistent", "-u", "nobody", "'", "\"", "*", "a\nb"};
  std::vector<std::string> args = {"run", "sigma", "--sudo", "--json", "--", "printf", "[%s]"};
  args.insert(args.end(), hostile.begin(), hostile.end());
  auto words = Labgate(args);
  ASSERT_EQ(words.status, 0) << words.out << words.err;
  std::string expected;
  for (const auto& w : hostile) expected += "[" + w + "]";
  EXPECT_EQ(Json::parse(words.out)["results"][0]["stdout"], expected);
  // Neither the gateway nor the node logged it.
  EXPECT_EQ(gateway_->Stderr().find(password), std::string::npos);
  EXPECT_EQ(agents_["sigma"]->Stderr().find(password), std::string::npos);
}

TEST_F(NodeSudo, TheDeadlineStopsTheRootCommandAndAWrongPasswordFailsClearly) {
  PairAndStartAsTheAccount();
  // A root command that ignores TERM: sudo relays TERM but cannot relay KILL, and the agent may
  // not signal a root process itself. The kill script it runs through sudo ends it.
  const std::string marker = UniqueSleep(40);
  auto c = Labgate({"run", "sigma", "--sudo", "--timeout", "1500ms", "--", "sh", "-c",
                    "trap '' TERM; while :; do sleep 0.2; done", marker});
  EXPECT_EQ(c.status, 124) << c.out << c.err;
  const bool gone = WaitUntilGone(marker, milliseconds(8000));
  EXPECT_TRUE(gone) << marker << " outlived its deadline";
  if (!gone) {
    for (pid_t pid : PidsWithMarker(marker)) ::kill(pid, SIGKILL);  // ours: started by this test
  }

  dir_.Write("sudo-password", "not-" + account_->password() + "\n");
  auto wrong = Labgate({"run", "sigma", "--sudo", "--", "id", "-u"});
  EXPECT_NE(wrong.status, 0);
  EXPECT_NE((wrong.out + wrong.err).find("sudo"), std::string::npos) << wrong.out << wrong.err;
  EXPECT_EQ(wrong.out.find("0\n"), std::string::npos) << wrong.out;
  EXPECT_EQ((wrong.out + wrong.err).find(account_->password()), std::string::npos);
}

TEST_F(NodeSudo, FilePutAsRootKeepsOwnerAndModeAndNeverShowsThePassword) {
  PairAndStartAsTheAccount();
  const std::string password = account_->password();
  // A root-owned directory the account can read but not write, holding a root-owned 0640 file.
  const std::string root_dir = dir_.path() + "/etc-like";
  std::filesystem::create_directories(root_dir);
  ::chmod(root_dir.c_str(), 0755);
  const std::string conf = root_dir + "/app.conf";
  std::ofstream(conf) << "old=1\n";
  ::chmod(conf.c_str(), 0640);
  std::string content(3 * 1024 * 1024 + 17, 'z');
  content += "\nnew=2\n";
  const std::string local = dir_.Write("new.conf", content);

  auto plain = Labgate({"file", "put", "sigma", root_dir + "/other.conf", "--from", local});
  EXPECT_NE(plain.status, 0);
  EXPECT_NE(plain.err.find("ermission denied"), std::string::npos) << plain.err;

  SecretSampler sampler(password, std::chrono::milliseconds(10));
  auto c = Labgate({"file", "put", "sigma", conf, "--from", local, "--sudo", "--json", "--timeout", "120s"});
  sampler.Stop();
  ASSERT_EQ(c.status, 0) << c.out << c.err;
  auto r = Json::parse(c.out, nullptr, false);
  ASSERT_FALSE(r.is_discarded()) << c.out;
  EXPECT_EQ(r["mode"], 0640) << c.out;
  EXPECT_EQ(r["previousSha256"], core::Sha256Hex("old=1\n")) << c.out;
  std::ifstream in(conf, std::ios::binary);
  EXPECT_TRUE(std::string(std::istreambuf_iterator<char>(in), {}) == content) << "the file does not hold what was put";
  struct stat st {};
  ASSERT_EQ(::stat(conf.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_GT(sampler.samples(), 0);
  EXPECT_EQ(sampler.leaks(), 0);
  EXPECT_EQ(c.out.find(password), std::string::npos);
  std::ifstream audit_file(dir_.path() + "/state/audit.jsonl");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(audit_file), {}).find(password), std::string::npos);
  // Nothing left behind: no temporary file beside it, no staged copy on the node.
  for (const auto& e : std::filesystem::directory_iterator(root_dir)) {
    EXPECT_EQ(e.path().filename().string().find(".labgate-"), std::string::npos) << e.path();
  }
  EXPECT_TRUE(std::filesystem::is_empty(StateDir("sigma") + "/staging"));
  // A stale digest as root: refused, nothing written.
  auto stale = Labgate({"file", "put", "sigma", conf, "--from", dir_.Write("other", "x\n"), "--sudo", "--expect",
                        std::string(64, 'a')});
  EXPECT_NE(stale.status, 0);
  EXPECT_NE(stale.err.find("someone changed it"), std::string::npos) << stale.err;
  EXPECT_TRUE(std::filesystem::is_empty(StateDir("sigma") + "/staging"));
}

TEST_F(NodeSudo, TheRootScriptInstallsOnlyTheCheckedContentAndOnlyWhereNoOtherAccountCanInterfere) {
  // The script as root runs it (this test is root): what a command running as the node's account
  // could try against it. Content changed on its way (the staged file rewritten after the node's
  // check) is refused; a directory another account can write is refused, because the temporary
  // file there could be swapped for a link before root's chown and chmod.
  core::SystemProcessRunner runner;
  core::CancelToken cancel;
  auto run_script = [&](const std::string& dest, const std::string& content, const std::string& want) {
    core::ProcessSpec spec;
    spec.argv = capabilities::RootPutArgv(dest, capabilities::WriteOptions{}, "mark", want);
    spec.stdin_data = "mark\n" + content;
    auto outcome = runner.Run(spec, cancel, nullptr);
    EXPECT_TRUE(outcome.ok());
    return outcome.ok() ? *outcome : core::ProcessOutcome{};
  };
  const std::string safe = dir_.path() + "/root-only";
  std::filesystem::create_directories(safe);
  ::chmod(safe.c_str(), 0755);
  const std::string dest = safe + "/target.conf";
  std::ofstream(dest) << "keep\n";
  auto swapped = run_script(dest, "swapped by the assistant\n", core::Sha256Hex("approved\n"));
  EXPECT_EQ(swapped.exit_code, 101) << swapped.err.text;
  EXPECT_EQ(swapped.err.text.find(core::Sha256Hex("swapped by the assistant\n")), std::string::npos)
      << "the refusal must not reveal the digest of what root read";
  std::ifstream kept(dest);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), "keep\n");
  auto ok = run_script(dest, "approved\n", core::Sha256Hex("approved\n"));
  EXPECT_EQ(ok.exit_code, 0) << ok.err.text;
  std::ifstream now(dest);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(now), {}), "approved\n");

  for (const auto& [mode, sticky_ok] : std::vector<std::pair<int, bool>>{{0777, false}, {0775, false}, {01777, true}}) {
    const std::string open_dir = dir_.path() + "/open-" + std::to_string(mode);
    std::filesystem::create_directories(open_dir);
    ::chmod(open_dir.c_str(), static_cast<mode_t>(mode));
    auto r = run_script(open_dir + "/x.conf", "x\n", "");
    if (sticky_ok) {
      EXPECT_EQ(r.exit_code, 0) << r.err.text;
    } else {
      EXPECT_EQ(r.exit_code, 102) << std::oct << mode << " " << r.err.text;
      EXPECT_FALSE(std::filesystem::exists(open_dir + "/x.conf"));
    }
  }
  const std::string users = dir_.path() + "/users-dir";
  std::filesystem::create_directories(users);
  RunToCompletion({"/bin/chown", std::string(SudoAccount::kUser) + ":", users});
  EXPECT_EQ(run_script(users + "/x.conf", "x\n", "").exit_code, 102);
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".labgate-"), std::string::npos) << e.path();
  }
}

TEST_F(NodeSudo, TheAgentIsNotReadableByTheCommandsItRuns) {
  // Its commands share its account; its memory and descriptors (the key, a sudo password on its
  // way to sudo) are not theirs to read.
  PairAndStartAsTheAccount();
  const std::string pid = std::to_string(agents_["sigma"]->pid());
  auto c = Labgate({"run", "sigma", "--shell",
                    "for f in environ mem fd/0 maps; do if cat /proc/" + pid + "/$f >/dev/null 2>&1; then echo \"$f readable\"; "
                    "else echo \"$f refused\"; fi; done"});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "environ refused\nmem refused\nfd/0 refused\nmaps refused\n");
}

}  // namespace
}  // namespace labgate::testing
