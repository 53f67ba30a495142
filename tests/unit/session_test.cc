#include "mcp/session.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fakes/fakes.h"

namespace labgate::mcp {
namespace {

using Json = nlohmann::json;

std::string Line(const Json& j) { return j.dump(); }

Json Request(const Json& id, const std::string& method, Json params = nullptr) {
  Json m = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) m["params"] = params;
  return m;
}

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() {
    std::vector<ToolDefinition> tools;
    tools.push_back(ToolDefinition{
        Json{{"name", "echo"}, {"inputSchema", {{"type", "object"}}}},
        [this](ToolContext& ctx, const Json& args) {
          calls_++;
          ctx.progress(1, 2, "half way");
          ToolResult r;
          r.content.push_back({{"type", "text"}, {"text", args.value("text", "")}});
          r.structured = Json{{"who", ctx.actor.client_name}};
          return r;
        }});
    tools.push_back(ToolDefinition{Json{{"name", "repeat"}, {"inputSchema", {{"type", "object"}}}},
                                   [](ToolContext& ctx, const Json&) {
                                     for (double v : {1.0, 1.0, 0.5, 2.0, 2.0}) ctx.progress(v, 2, "step");
                                     return ToolResult{};
                                   }});
    tools.push_back(ToolDefinition{Json{{"name", "wait"}, {"inputSchema", {{"type", "object"}}}},
                                   [this](ToolContext& ctx, const Json&) {
                                     waiting_ = true;
                                     ctx.cancel.WaitFor(std::chrono::seconds(10));
                                     cancelled_seen_ = ctx.cancel.cancelled();
                                     return ToolResult{};
                                   }});
    tools.push_back(ToolDefinition{Json{{"name", "ask"}, {"inputSchema", {{"type", "object"}}}},
                                   [](ToolContext& ctx, const Json&) {
                                     auto answer = ctx.session.RequestFromClient(
                                         "elicitation/create", Json{{"message", "ok?"}}, std::chrono::seconds(5),
                                         ctx.cancel, ctx.request_id);
                                     ToolResult r;
                                     r.structured = answer.ok() ? *answer : Json{{"error", answer.error().message}};
                                     return r;
                                   }});
    // Runs as a task when asked (or when the server decides); returns after `ms` unless cancelled.
    tools.push_back(ToolDefinition{
        Json{{"name", "long"}, {"inputSchema", {{"type", "object"}}}, {"execution", {{"taskSupport", "optional"}}}},
        [this](ToolContext& ctx, const Json& args) {
          waiting_ = true;
          ctx.cancel.WaitFor(std::chrono::milliseconds(args.value("ms", 10000)));
          cancelled_seen_ = ctx.cancel.cancelled();
          ToolResult r;
          r.content.push_back({{"type", "text"}, {"text", "long done"}});
          return r;
        }});
    session_ = std::make_unique<Session>(outbox_, tasks_, std::move(tools), "alice");
  }
  ~SessionTest() override { session_->Shutdown(); }

  void Initialize(const std::string& version = "2025-11-25") {
    session_->HandleLine(Line(Request(
        "init", "initialize",
        {{"protocolVersion", version}, {"capabilities", {{"elicitation", Json::object()}}},
         {"clientInfo", {{"name", "test-client"}, {"version", "9.9"}}}})));
    session_->HandleLine(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  }

  Json Answer(const Json& id) { return outbox_.WaitForId(id); }

  fakes::RecordingOutbox outbox_;
  ThreadTaskRunner tasks_{16};
  std::unique_ptr<Session> session_;
  std::atomic<int> calls_{0};
  std::atomic<bool> waiting_{false};
  std::atomic<bool> cancelled_seen_{false};
};

TEST(VersionNegotiation, SupportedVersionsAreEchoedOthersGetLatest) {
  EXPECT_EQ(NegotiateProtocolVersion("2025-11-25"), "2025-11-25");
  EXPECT_EQ(NegotiateProtocolVersion("2025-06-18"), "2025-06-18");
  EXPECT_EQ(NegotiateProtocolVersion("2025-03-26"), "2025-03-26");
  EXPECT_EQ(NegotiateProtocolVersion("2024-11-05"), "2024-11-05");
  EXPECT_EQ(NegotiateProtocolVersion("2023-01-01"), "2025-11-25");
  EXPECT_EQ(NegotiateProtocolVersion("2099-01-01"), "2025-11-25");
}

TEST_F(SessionTest, Initialize_NegotiatesAndDeclaresCapabilities) {
  Initialize("2024-11-05");
  Json r = Answer("init");
  EXPECT_EQ(r["result"]["protocolVersion"], "2024-11-05");
  EXPECT_EQ(r["result"]["serverInfo"]["name"], "labgate");
  EXPECT_TRUE(r["result"]["capabilities"].contains("tools"));
  EXPECT_TRUE(r["result"]["capabilities"].contains("logging"));
  EXPECT_TRUE(session_->client_capabilities().contains("elicitation"));
}

TEST_F(SessionTest, Initialize_Twice_IsInvalidRequest) {
  Initialize();
  session_->HandleLine(Line(Request(2, "initialize", {{"protocolVersion", "2025-11-25"}})));
  EXPECT_EQ(Answer(2)["error"]["code"], -32600);
}

TEST_F(SessionTest, BeforeInitialize_OnlyPingIsAnswered) {
  session_->HandleLine(Line(Request(1, "tools/list")));
  EXPECT_EQ(Answer(1)["error"]["code"], -32600);
  session_->HandleLine(Line(Request(2, "ping")));
  EXPECT_EQ(Answer(2)["result"], Json::object());
}

TEST_F(SessionTest, UnknownMethod_Is32601) {
  Initialize();
  session_->HandleLine(Line(Request(0, "resources/list")));
  EXPECT_EQ(Answer(0)["error"]["code"], -32601);
}

TEST_F(SessionTest, UnknownTool_Is32602) {
  Initialize();
  session_->HandleLine(Line(Request("x", "tools/call", {{"name", "nope"}})));
  Json r = Answer("x");
  EXPECT_EQ(r["error"]["code"], -32602);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("echo"), std::string::npos);
}

TEST_F(SessionTest, BadCallParams_Is32602) {
  Initialize();
  session_->HandleLine(Line(Request(1, "tools/call", {{"arguments", Json::object()}})));
  EXPECT_EQ(Answer(1)["error"]["code"], -32602);
  session_->HandleLine(Line(Request(2, "tools/call", {{"name", "echo"}, {"arguments", "x"}})));
  EXPECT_EQ(Answer(2)["error"]["code"], -32602);
}

TEST_F(SessionTest, ToolsList_ListsDescriptors) {
  Initialize();
  session_->HandleLine(Line(Request(1, "tools/list")));
  Json r = Answer(1);
  ASSERT_EQ(r["result"]["tools"].size(), 5u);
  EXPECT_EQ(r["result"]["tools"][0]["name"], "echo");
}

TEST_F(SessionTest, ToolCall_RunsWithClientIdentityAndKeepsIdType) {
  Initialize();
  session_->HandleLine(Line(Request(0, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "hi"}}}})));
  Json r = Answer(0);
  EXPECT_TRUE(r["id"].is_number_integer());
  EXPECT_EQ(r["result"]["content"][0]["text"], "hi");
  EXPECT_EQ(r["result"]["structuredContent"]["who"], "test-client");
  EXPECT_EQ(r["result"]["isError"], false);
}

TEST_F(SessionTest, ToolCall_WithProgressToken_SendsProgress) {
  Initialize();
  session_->HandleLine(
      Line(Request(5, "tools/call", {{"name", "echo"}, {"_meta", {{"progressToken", "tok"}}}})));
  Answer(5);
  Json p = outbox_.WaitFor([](const Json& m) { return m.value("method", "") == "notifications/progress"; });
  ASSERT_FALSE(p.is_null());
  EXPECT_EQ(p["params"]["progressToken"], "tok");
  EXPECT_EQ(p["params"]["progress"], 1);
  EXPECT_EQ(p["params"]["total"], 2);
}

TEST_F(SessionTest, ToolCall_ProgressThatDoesNotIncrease_IsNotSent) {
  // The spec says progress MUST increase with each notification; a tool repeating its last value
  // (a capture's final tick) or starting over (a retry) must not make the server break that.
  Initialize();
  session_->HandleLine(
      Line(Request(6, "tools/call", {{"name", "repeat"}, {"_meta", {{"progressToken", 7}}}})));
  Answer(6);
  std::vector<double> sent;
  for (const auto& m : outbox_.messages()) {
    if (m.value("method", "") == "notifications/progress") sent.push_back(m["params"]["progress"].get<double>());
  }
  EXPECT_EQ(sent, (std::vector<double>{1.0, 2.0}));
}

TEST_F(SessionTest, ToolCall_WithoutProgressToken_SendsNoProgress) {
  Initialize();
  session_->HandleLine(Line(Request(5, "tools/call", {{"name", "echo"}})));
  Answer(5);
  for (const auto& m : outbox_.messages()) EXPECT_NE(m.value("method", ""), "notifications/progress");
}

TEST_F(SessionTest, SlowCall_DoesNotBlockPing) {
  Initialize();
  session_->HandleLine(Line(Request(1, "tools/call", {{"name", "wait"}})));
  session_->HandleLine(Line(Request(2, "ping")));
  EXPECT_EQ(Answer(2)["result"], Json::object());
  // The ping was answered while the call was still running.
  for (const auto& m : outbox_.messages()) EXPECT_FALSE(m.contains("id") && m["id"] == 1);
  session_->HandleLine(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}})");
}

TEST_F(SessionTest, Cancelled_StopsHandlerAndSendsNoResponse) {
  Initialize();
  session_->HandleLine(Line(Request("slow", "tools/call", {{"name", "wait"}})));
  while (!waiting_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  session_->HandleLine(
      R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"user"}})");
  tasks_.WaitAll();
  EXPECT_TRUE(cancelled_seen_);
  for (const auto& m : outbox_.messages()) EXPECT_FALSE(m.contains("id") && m["id"] == "slow" && !m.contains("method"));
}

TEST_F(SessionTest, Cancelled_WithAReasonThatIsNotAString_StillCancelsAndNothingThrows) {
  // A fuzzer found `"reason":42` for a call in flight killed the server.
  Initialize();
  session_->HandleLine(Line(Request("slow", "tools/call", {{"name", "wait"}})));
  while (!waiting_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  session_->HandleLine(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":42}})");
  tasks_.WaitAll();
  EXPECT_TRUE(cancelled_seen_);
  session_->HandleLine(Line(Request(3, "ping")));
  EXPECT_EQ(Answer(3)["result"], Json::object());
}

TEST_F(SessionTest, Notifications_AreNeverAnswered) {
  Initialize();
  auto before = outbox_.messages().size();
  session_->HandleLine(R"({"jsonrpc":"2.0","method":"notifications/whatever"})");
  session_->HandleLine(R"({"jsonrpc":"2.0","method":"tools/list"})");
  EXPECT_EQ(outbox_.messages().size(), before);
}

TEST_F(SessionTest, SetLevel_FiltersLogMessages) {
  Initialize();
  session_->Log(LogLevel::kInfo, "t", "hidden by default", nullptr);
  session_->HandleLine(Line(Request(1, "logging/setLevel", {{"level", "debug"}})));
  EXPECT_EQ(Answer(1)["result"], Json::object());
  session_->Log(LogLevel::kInfo, "t", "shown", nullptr);
  Json m = outbox_.WaitFor([](const Json& x) { return x.value("method", "") == "notifications/message"; });
  EXPECT_EQ(m["params"]["data"], "shown");
  EXPECT_EQ(m["params"]["level"], "info");
  session_->HandleLine(Line(Request(2, "logging/setLevel", {{"level", "loud"}})));
  EXPECT_EQ(Answer(2)["error"]["code"], -32602);
}

TEST_F(SessionTest, RequestFromClient_ReceivesTheClientsResponse) {
  Initialize();
  session_->HandleLine(Line(Request(7, "tools/call", {{"name", "ask"}})));
  Json req = outbox_.WaitFor([](const Json& m) { return m.value("method", "") == "elicitation/create"; });
  ASSERT_FALSE(req.is_null());
  session_->HandleLine(Line(Json{{"jsonrpc", "2.0"}, {"id", req["id"]}, {"result", {{"action", "accept"}}}}));
  EXPECT_EQ(Answer(7)["result"]["structuredContent"]["action"], "accept");
}

// Streamable HTTP answers on the connection of the request a message belongs to, so the
// elicitation asked during a call and the call's result must both name that call.
TEST_F(SessionTest, MessagesOfACall_NameTheRequestTheyBelongTo) {
  Initialize();
  session_->HandleLine(Line(Request("call-9", "tools/call", {{"name", "ask"}})));
  Json req = outbox_.WaitFor([](const Json& m) { return m.value("method", "") == "elicitation/create"; });
  ASSERT_FALSE(req.is_null());
  session_->HandleLine(Line(Json{{"jsonrpc", "2.0"}, {"id", req["id"]}, {"result", {{"action", "decline"}}}}));
  Answer("call-9");
  session_->Log(LogLevel::kEmergency, "t", "for the session", nullptr);
  outbox_.WaitFor([](const Json& m) { return m.value("method", "") == "notifications/message"; });
  auto msgs = outbox_.messages();
  auto related = outbox_.related();
  ASSERT_EQ(msgs.size(), related.size());
  int checked = 0;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].value("method", "") == "elicitation/create" || msgs[i].value("id", Json()) == "call-9") {
      EXPECT_EQ(related[i], "call-9") << msgs[i].dump();
      ++checked;
    }
    if (msgs[i].value("method", "") == "notifications/message") {
      EXPECT_TRUE(related[i].is_null());
    }
  }
  EXPECT_EQ(checked, 2);
}

TEST_F(SessionTest, MalformedLines_AreAnsweredAndServingContinues) {
  session_->HandleLine("{oops");
  session_->HandleLine(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])");
  session_->HandleLine(Line(Request(3, "ping")));
  auto msgs = outbox_.messages();
  ASSERT_GE(msgs.size(), 3u);
  EXPECT_EQ(msgs[0]["error"]["code"], -32700);
  EXPECT_EQ(msgs[1]["error"]["code"], -32600);
  EXPECT_EQ(Answer(3)["result"], Json::object());
}

TEST_F(SessionTest, DuplicateInFlightId_IsRefused) {
  Initialize();
  session_->HandleLine(Line(Request(1, "tools/call", {{"name", "wait"}})));
  while (!waiting_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  session_->HandleLine(Line(Request(1, "tools/call", {{"name", "echo"}})));
  Json r = outbox_.WaitFor([](const Json& m) { return m.contains("error") && m["id"] == 1; });
  EXPECT_EQ(r["error"]["code"], -32600);
  session_->HandleLine(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}})");
}

// ---- Tasks: a closing session, and the 2026-07-28 extension where the server decides ----

Json ModernMeta(bool tasks) {
  Json caps = Json::object();
  if (tasks) caps["extensions"] = {{"io.modelcontextprotocol/tasks", Json::object()}};
  return {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}, {"io.modelcontextprotocol/clientCapabilities", caps}};
}

TEST_F(SessionTest, Shutdown_CancelsRunningTasksInsteadOfWaitingForThem) {
  Initialize();
  session_->HandleLine(Line(Request(1, "tools/call", {{"name", "long"}, {"task", Json::object()}})));
  ASSERT_TRUE(Answer(1)["result"].contains("task"));
  while (!waiting_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto started = std::chrono::steady_clock::now();
  session_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_TRUE(cancelled_seen_);
}

TEST_F(SessionTest, Modern_QuickCallWithTheExtension_IsAnsweredWithItsResult) {
  session_->set_task_after([] { return std::chrono::milliseconds(5000); });
  session_->HandleLine(Line(Request(1, "tools/call", {{"name", "long"}, {"arguments", {{"ms", 0}}}, {"_meta", ModernMeta(true)}})));
  Json r = Answer(1);
  EXPECT_EQ(r["result"]["resultType"], "complete") << r.dump();
  EXPECT_EQ(r["result"]["content"][0]["text"], "long done");
}

TEST_F(SessionTest, Modern_CallPastTaskAfter_BecomesATask_OnlyTasksCancelStopsIt) {
  session_->set_task_after([] { return std::chrono::milliseconds(50); });
  session_->HandleLine(Line(Request("c", "tools/call", {{"name", "long"}, {"_meta", ModernMeta(true)}})));
  Json handle = Answer("c");
  ASSERT_EQ(handle["result"]["resultType"], "task") << handle.dump();
  const std::string task_id = handle["result"]["taskId"];
  // The request is answered: cancelling its id does not touch the task.
  session_->HandleLine(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c"}})");
  session_->HandleLine(Line(Request(2, "tasks/get", {{"taskId", task_id}, {"_meta", ModernMeta(true)}})));
  EXPECT_EQ(Answer(2)["result"]["status"], "working");
  EXPECT_FALSE(cancelled_seen_);
  // Without the extension declared, the task is out of reach; the legacy era never sees it.
  session_->HandleLine(Line(Request(3, "tasks/cancel", {{"taskId", task_id}, {"_meta", ModernMeta(false)}})));
  EXPECT_EQ(Answer(3)["error"]["code"], -32021);
  Initialize();
  session_->HandleLine(Line(Request(4, "tasks/cancel", {{"taskId", task_id}})));
  EXPECT_EQ(Answer(4)["error"]["code"], -32602);
  session_->HandleLine(Line(Request(5, "tasks/cancel", {{"taskId", task_id}, {"_meta", ModernMeta(true)}})));
  EXPECT_EQ(Answer(5)["result"]["resultType"], "complete");
  Json ended;
  for (int i = 0; i < 100; ++i) {
    session_->HandleLine(Line(Request(100 + i, "tasks/get", {{"taskId", task_id}, {"_meta", ModernMeta(true)}})));
    ended = Answer(100 + i)["result"];
    if (ended["status"] != "working") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(ended["status"], "cancelled") << ended.dump();
  EXPECT_EQ(ended["statusMessage"], "cancelled by the client");
  EXPECT_TRUE(cancelled_seen_);
}

TEST_F(SessionTest, Modern_CallWithoutTheExtension_NeverBecomesATask) {
  session_->set_task_after([] { return std::chrono::milliseconds(0); });
  session_->HandleLine(Line(Request(1, "tools/call", {{"name", "long"}, {"arguments", {{"ms", 200}}}, {"_meta", ModernMeta(false)}})));
  Json r = Answer(1);
  EXPECT_EQ(r["result"]["resultType"], "complete") << r.dump();
}

}  // namespace
}  // namespace labgate::mcp
