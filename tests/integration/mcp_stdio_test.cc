// Drives the real `labgate mcp` binary over pipes with raw JSON-RPC.
#include <gtest/gtest.h>

#include <filesystem>

#include <random>
#include <set>

#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;


class McpStdio : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = dir_.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\n");
    server_ = std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "mcp", "--config", config_});
  }

  void Initialize() {
    server_->Send({{"jsonrpc", "2.0"},
                   {"id", "init"},
                   {"method", "initialize"},
                   {"params",
                    {{"protocolVersion", "2025-11-25"},
                     {"capabilities", Json::object()},
                     {"clientInfo", {{"name", "raw-test"}, {"version", "0.1"}}}}}});
    ASSERT_TRUE(server_->ReadResponse("init").contains("result"));
    server_->Send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  }

  Json Call(const Json& id, const Json& arguments, Json meta = nullptr) {
    Json params = {{"name", "run"}, {"arguments", arguments}};
    if (!meta.is_null()) params["_meta"] = meta;
    return Json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", params}};
  }

  std::string AuditPath() const { return dir_.path() + "/state/audit.jsonl"; }

  TempDir dir_;
  std::string config_;
  std::unique_ptr<Subprocess> server_;
};

TEST_F(McpStdio, MalformedLines_GetParseErrorsAndServingContinues) {
  server_->WriteLine("{this is not json");
  server_->WriteLine(std::string("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xff\"}"));
  server_->WriteLine(R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  auto first = Json::parse(*server_->ReadLine());
  EXPECT_EQ(first["error"]["code"], -32700);
  EXPECT_TRUE(first["id"].is_null());
  auto second = Json::parse(*server_->ReadLine());
  EXPECT_EQ(second["error"]["code"], -32700);
  EXPECT_EQ(server_->ReadResponse(2)["result"], Json::object());
}

TEST_F(McpStdio, RequestBeforeInitialize_IsRefused) {
  server_->WriteLine(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  Json r = server_->ReadResponse(1);
  EXPECT_EQ(r["error"]["code"], -32600);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("initialize"), std::string::npos);
}

TEST_F(McpStdio, UnknownMethodAndBatch_GetTheirCodes) {
  Initialize();
  server_->WriteLine(R"({"jsonrpc":"2.0","id":"m","method":"sampling/doSomething"})");
  EXPECT_EQ(server_->ReadResponse("m")["error"]["code"], -32601);
  server_->WriteLine(R"([{"jsonrpc":"2.0","id":5,"method":"ping"}])");
  auto batch = Json::parse(*server_->ReadLine());
  EXPECT_EQ(batch["error"]["code"], -32600);
  server_->Send(Json{{"jsonrpc", "2.0"}, {"id", 9}, {"method", "tools/call"}, {"params", {{"name", "reboot"}}}});
  EXPECT_EQ(server_->ReadResponse(9)["error"]["code"], -32602);
}

TEST_F(McpStdio, IdsComeBackWithTheirOwnType) {
  Initialize();
  server_->WriteLine(R"({"jsonrpc":"2.0","id":0,"method":"ping"})");
  server_->WriteLine(R"({"jsonrpc":"2.0","id":"0","method":"ping"})");
  server_->WriteLine(R"({"jsonrpc":"2.0","id":-3,"method":"ping"})");
  EXPECT_TRUE(server_->ReadResponse(0)["id"].is_number_integer());
  EXPECT_TRUE(server_->ReadResponse("0")["id"].is_string());
  EXPECT_EQ(server_->ReadResponse(-3)["id"], -3);
}

TEST_F(McpStdio, HugeLine_IsRefusedAndServingContinues) {
  Initialize();
  std::string huge = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":")" + std::string(9 * 1024 * 1024, 'a') + "\"}}";
  server_->WriteLine(huge);
  server_->WriteLine(R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  auto err = Json::parse(*server_->ReadLine());
  EXPECT_EQ(err["error"]["code"], -32600);
  EXPECT_NE(err["error"]["message"].get<std::string>().find("too large"), std::string::npos);
  EXPECT_EQ(server_->ReadResponse(2)["result"], Json::object());
}

TEST_F(McpStdio, DeeplyNestedLines_GetParseErrorsAndServingContinues) {
  Initialize();
  const std::string deep = std::string(60000, '[') + std::string(60000, ']');
  server_->WriteLine(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run","arguments":)" + deep + "}}");
  server_->WriteLine(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":)" + deep + "}}");
  server_->WriteLine(R"({"jsonrpc":"2.0","id":99,"result":)" + deep + "}");
  server_->WriteLine(R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  auto err = Json::parse(*server_->ReadLine());
  EXPECT_EQ(err["error"]["code"], -32700) << err.dump();
  EXPECT_NE(err["error"]["message"].get<std::string>().find("nested deeper"), std::string::npos) << err.dump();
  EXPECT_EQ(server_->ReadResponse(2)["result"], Json::object());
}

TEST_F(McpStdio, MalformedOrHugeArguments_AreAuditedClippedAndRunNothing) {
  Initialize();
  // A malformed targets array: refused, and now also on record.
  server_->Send({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
                 {"params", {{"name", "run"}, {"arguments", {{"targets", {1, 2}}, {"command", {"true"}}}}}}});
  EXPECT_EQ(server_->ReadResponse(1)["result"]["isError"], true);
  // A 100 KB target id: the answer and the audit record echo only its start.
  const std::string huge(100 * 1024, 'x');
  server_->Send({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"},
                 {"params", {{"name", "run"}, {"arguments", {{"target", huge}, {"command", {"true"}}}}}}});
  const Json answer = server_->ReadResponse(2);
  EXPECT_LT(answer.dump().size(), 8u * 1024) << "the answer echoes the whole id";
  bool malformed = false;
  for (const auto& rec : ReadJsonLines(AuditPath())) {
    EXPECT_LT(rec.dump().size(), 8u * 1024) << "an audit record echoes the whole id";
    if (rec["kind"] == "refusal" && rec["decision"]["rule"] == "input.arguments") malformed = true;
  }
  EXPECT_TRUE(malformed) << "the malformed call is not in the audit log";
}

TEST_F(McpStdio, TwentyConcurrentRuns_AllProceedTogether) {
  Initialize();
  // Each call waits until all twenty have started: only concurrent execution can finish.
  const std::string barrier = dir_.path() + "/barrier";
  for (int i = 0; i < 20; ++i) {
    std::string script = "mkdir -p " + barrier + " && touch " + barrier + "/" + std::to_string(i) +
                         " && while [ $(ls " + barrier + " | wc -l) -lt 20 ]; do sleep 0.05; done; echo done " +
                         std::to_string(i);
    server_->Send(Call(100 + i, {{"target", "local"}, {"command", script}, {"timeoutMs", 60000}}));
  }
  server_->WriteLine(R"({"jsonrpc":"2.0","id":"p","method":"ping"})");
  EXPECT_EQ(server_->ReadResponse("p")["result"], Json::object());
  for (int i = 0; i < 20; ++i) {
    Json r = server_->ReadResponse(100 + i, std::chrono::seconds(60));
    ASSERT_TRUE(r.contains("result")) << r.dump();
    const Json& res = r["result"]["structuredContent"]["results"][0];
    EXPECT_EQ(res["exitCode"], 0) << r.dump();
    EXPECT_EQ(res["stdout"], "done " + std::to_string(i) + "\n");
  }
  // 20 intents and 20 results, each pair sharing an action id.
  auto records = ReadJsonLines(AuditPath());
  std::set<std::string> intents, results;
  for (const auto& rec : records) {
    if (rec["kind"] == "intent" || rec["kind"] == "result") {
      (rec["kind"] == "intent" ? intents : results).insert(rec["actionId"].get<std::string>());
    }
  }
  EXPECT_EQ(intents.size(), 20u);
  EXPECT_EQ(intents, results);
}

TEST_F(McpStdio, Cancelled_StopsTheProcessGroupAndSendsNoResponse) {
  Initialize();
  const std::string secs = UniqueSleep(30);
  server_->Send(Call(7, {{"target", "local"}, {"command", "sleep " + secs + " & sleep " + secs + "; wait"}}));
  // Wait until the commands are really running before cancelling.
  ASSERT_TRUE(WaitUntilPresent(secs)) << "the command never started: " << server_->Stderr();
  server_->Send({{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 7}, {"reason", "test"}}}});
  EXPECT_TRUE(WaitUntilGone(secs, std::chrono::seconds(10))) << "a process of the cancelled call survived";
  server_->WriteLine(R"({"jsonrpc":"2.0","id":8,"method":"ping"})");
  EXPECT_EQ(server_->ReadResponse(8)["result"], Json::object());
  for (const auto& m : server_->seen()) EXPECT_FALSE(m.contains("id") && m["id"] == 7);
  // The result record says it was cancelled.
  bool cancelled_recorded = false;
  for (int i = 0; i < 500 && !cancelled_recorded; ++i) {
    for (const auto& rec : ReadJsonLines(AuditPath())) cancelled_recorded |= rec["kind"] == "result" && rec["cancelled"] == true;
    if (!cancelled_recorded) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(cancelled_recorded) << "no audit result record with cancelled=true";
}

TEST_F(McpStdio, Timeout_StopsBackgroundChildrenToo) {
  Initialize();
  const std::string secs = UniqueSleep(30);
  server_->Send(Call(3, {{"target", "local"}, {"command", Json::array({"sh", "-c", "sleep " + secs + " & sleep " + secs})}, {"timeoutMs", 300}}));
  Json r = server_->ReadResponse(3);
  const Json& res = r["result"]["structuredContent"]["results"][0];
  EXPECT_EQ(res["timedOut"], true) << r.dump();
  EXPECT_EQ(r["result"]["isError"], true);
  EXPECT_TRUE(WaitUntilGone(secs, std::chrono::seconds(5))) << "a process of the timed-out call survived";
}

TEST_F(McpStdio, ProgressToken_GetsProgressNotification) {
  Initialize();
  server_->Send(Call(4, {{"target", "local"}, {"command", {"true"}}}, {{"progressToken", 42}}));
  server_->ReadResponse(4);
  bool progress = false;
  for (const auto& m : server_->seen()) {
    progress |= m.value("method", "") == "notifications/progress" && m["params"]["progressToken"] == 42 &&
                m["params"]["progress"] == 1 && m["params"]["total"] == 1;
  }
  EXPECT_TRUE(progress);
}

TEST_F(McpStdio, OutputOverTheCap_IsTruncatedWithMarker) {
  Initialize();
  server_->Send(Call(5, {{"target", "local"}, {"command", "head -c 300000 /dev/zero | tr '\\0' x; echo; echo END"}}));
  Json r = server_->ReadResponse(5);
  const Json& res = r["result"]["structuredContent"]["results"][0];
  EXPECT_EQ(res["truncated"], true);
  std::string out = res["stdout"];
  EXPECT_LT(out.size(), 70000u);
  EXPECT_NE(out.find("output truncated"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 4), "END\n");
}

TEST_F(McpStdio, ArgvRunsWithoutShell_AndCwdApplies) {
  Initialize();
  server_->Send(Call(6, {{"target", "local"}, {"command", {"echo", "$(id)", ";", "rm"}}}));
  EXPECT_EQ(server_->ReadResponse(6)["result"]["structuredContent"]["results"][0]["stdout"], "$(id) ; rm\n");
  server_->Send(Call(7, {{"target", "local"}, {"command", {"pwd"}}, {"cwd", dir_.path()}}));
  EXPECT_EQ(server_->ReadResponse(7)["result"]["structuredContent"]["results"][0]["stdout"], dir_.path() + "\n");
}

TEST_F(McpStdio, ApprovalLookingArguments_ChangeNothing) {
  Initialize();
  // A read-only command runs exactly as it would without `confirm`...
  server_->Send(Call(8, {{"target", "local"}, {"command", {"true"}}, {"confirm", true}}));
  Json r = server_->ReadResponse(8);
  EXPECT_EQ(r["result"]["isError"], false);
  EXPECT_NE(r["result"]["content"][0]["text"].get<std::string>().find("`confirm` argument was ignored"), std::string::npos);
  // ...and a destructive one still waits for a human.
  const std::string victim = dir_.path() + "/keep";
  std::filesystem::create_directories(victim);
  server_->Send(Call(9, {{"target", "local"}, {"command", {"rm", "-r", victim}}, {"confirm", true}, {"force", true}}));
  Json d = server_->ReadResponse(9);
  EXPECT_EQ(d["result"]["isError"], true);
  EXPECT_EQ(d["result"]["structuredContent"]["results"][0]["decision"], "approval-pending") << d.dump();
  EXPECT_TRUE(std::filesystem::exists(victim));
  // Unknown arguments that do not look like approvals are still refused.
  server_->Send(Call(10, {{"target", "local"}, {"command", {"true"}}, {"colour", "red"}}));
  EXPECT_NE(server_->ReadResponse(10)["result"]["content"][0]["text"].get<std::string>().find("unknown argument 'colour'"),
            std::string::npos);
}

TEST_F(McpStdio, StdinEof_ExitsPromptlyAndStopsRunningCommands) {
  Initialize();
  const std::string secs = UniqueSleep(30);
  server_->Send(Call(9, {{"target", "local"}, {"command", {"sleep", secs}}}));
  ASSERT_TRUE(WaitUntilPresent(secs));
  server_->CloseStdin();
  auto status = server_->Wait(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value()) << "labgate mcp did not exit after stdin closed";
  EXPECT_EQ(*status, 0);
  EXPECT_TRUE(WaitUntilGone(secs, std::chrono::seconds(5)));
}

TEST_F(McpStdio, InvalidConfig_FailsToStartWithFileLineAndKey) {
  std::string bad = dir_.Write("bad.toml", "[gateway]\nlisten = \"127.0.0.1:7022\"\nfrobnicate = true\n");
  Subprocess p({LABGATE_BINARY, "mcp", "--config", bad});
  p.CloseStdin();
  auto status = p.Wait(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  EXPECT_NE(p.Stderr().find(bad + ":3: gateway.frobnicate: unknown key"), std::string::npos) << p.Stderr();
  EXPECT_FALSE(p.ReadLine(std::chrono::milliseconds(100)).has_value()) << "nothing may reach stdout";
}

}  // namespace
}  // namespace labgate::testing
