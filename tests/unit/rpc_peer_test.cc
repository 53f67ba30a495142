#include "nodes/rpc_peer.h"

#include <gtest/gtest.h>

#include "core/base64.h"
#include "nodes/agent_protocol.h"

namespace labgate::nodes {
namespace {

/// Two peers wired back to back, recording what each was asked.
struct Pair {
  std::vector<std::string> a_requests, b_notifications;
  std::unique_ptr<RpcPeer> a, b;
  Pair() {
    a = std::make_unique<RpcPeer>(
        [this](std::string bytes) { b->Feed(bytes); },
        [this](const Json& id, const std::string& method, const Json& params) {
          a_requests.push_back(method);
          if (method == "echo") a->Respond(id, params);
          if (method == "stream") {
            a->Notify("system.output", {{"requestId", id}, {"data", "chunk"}});
            a->Respond(id, Json::object());
          }
          if (method == "refuse") a->RespondError(id, kErrNotApproved, "not approved for run");
        },
        nullptr, 1 << 20);
    b = std::make_unique<RpcPeer>([this](std::string bytes) { a->Feed(bytes); }, nullptr,
                                  [this](const std::string& m, const Json&) { b_notifications.push_back(m); }, 1 << 20);
  }
};

TEST(RpcPeer, RequestGetsItsResponse) {
  Pair p;
  std::optional<core::Result<Json>> got;
  p.b->Request("echo", {{"x", 1}}, [&](core::Result<Json> r) { got.emplace(std::move(r)); });
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok());
  EXPECT_EQ((**got)["x"], 1);
  EXPECT_EQ(p.b->outstanding(), 0u);
}

TEST(RpcPeer, ErrorResponseKeepsTheMeaning) {
  Pair p;
  std::optional<core::Result<Json>> got;
  p.b->Request("refuse", Json::object(), [&](core::Result<Json> r) { got.emplace(std::move(r)); });
  ASSERT_TRUE(got.has_value());
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().code, core::ErrorCode::kRefused);
  EXPECT_EQ(got->error().message, "not approved for run");
}

TEST(RpcPeer, NotificationsAboutARequestGoToThatRequest) {
  Pair p;
  std::vector<std::string> seen;
  p.b->Request("stream", Json::object(), [](core::Result<Json>) {},
               [&](const std::string& m, const Json& params) { seen.push_back(m + ":" + params["data"].get<std::string>()); });
  EXPECT_EQ(seen, (std::vector<std::string>{"system.output:chunk"}));
  EXPECT_TRUE(p.b_notifications.empty());
}

TEST(RpcPeer, ForgottenRequestIsNeverAnswered) {
  std::vector<std::string> sent;
  RpcPeer peer([&](std::string bytes) { sent.push_back(bytes); }, nullptr, nullptr, 1 << 20);
  bool called = false;
  auto id = peer.Request("slow", Json::object(), [&](core::Result<Json>) { called = true; });
  peer.Forget(id);
  peer.Feed("{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(id) + ",\"result\":{}}\n");
  EXPECT_FALSE(called);
}

TEST(RpcPeer, FailAllCompletesEveryOutstandingRequest) {
  RpcPeer peer([](std::string) {}, nullptr, nullptr, 1 << 20);
  int failures = 0;
  for (int i = 0; i < 3; ++i) {
    peer.Request("x", Json::object(), [&](core::Result<Json> r) { failures += r.ok() ? 0 : 1; });
  }
  peer.FailAll(core::MakeError(core::ErrorCode::kIo, "link down"));
  EXPECT_EQ(failures, 3);
  EXPECT_EQ(peer.outstanding(), 0u);
}

TEST(RpcPeer, MalformedLineIsAnsweredAndTheStreamStaysUsable) {
  std::vector<std::string> sent;
  std::vector<std::string> methods;
  RpcPeer peer([&](std::string bytes) { sent.push_back(bytes); },
               [&](const Json&, const std::string& m, const Json&) { methods.push_back(m); }, nullptr, 1 << 20);
  peer.Feed("{broken\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\n");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_NE(sent[0].find("-32700"), std::string::npos);
  EXPECT_EQ(methods, (std::vector<std::string>{"ping"}));
}

TEST(AgentProtocol, OutcomeRoundTripsBinaryOutput) {
  core::ProcessOutcome o;
  o.exit_code = 3;
  o.out.text = std::string("\x00\xff\x01png", 6);
  o.out.total_bytes = 6;
  o.out.sha256 = "abc";
  o.err.text = "warn\n";
  o.err.truncated = true;
  o.duration = std::chrono::milliseconds(42);
  auto back = DecodeOutcome(EncodeOutcome(o));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->exit_code, 3);
  EXPECT_FALSE(back->signal.has_value());
  EXPECT_EQ(back->out.text, o.out.text);
  EXPECT_EQ(back->err.text, "warn\n");
  EXPECT_TRUE(back->err.truncated);
  EXPECT_EQ(back->duration.count(), 42);
}

TEST(AgentProtocol, RunRequestRoundTripsAndRejectsBadInput) {
  capabilities::RunRequest r;
  r.command.argv = {"echo", "hi"};
  r.cwd = "/tmp";
  r.timeout = std::chrono::milliseconds(1500);
  r.env = {{"A", "1"}};
  auto back = DecodeRunRequest(EncodeRunRequest(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->command.argv, r.command.argv);
  EXPECT_EQ(back->timeout.count(), 1500);
  EXPECT_EQ(back->env, r.env);
  EXPECT_FALSE(DecodeRunRequest({{"argv", {"x"}}, {"timeoutMs", 0}}).ok());
  EXPECT_FALSE(DecodeRunRequest({{"argv", Json::array()}, {"timeoutMs", 10}}).ok());
  EXPECT_FALSE(DecodeRunRequest({{"shell", 5}, {"timeoutMs", 10}}).ok());
}

TEST(AgentProtocol, OnlyCapabilityMethodsNeedACapability) {
  EXPECT_EQ(CapabilityOfMethod("system.run"), "run");
  EXPECT_EQ(CapabilityOfMethod("camera.snap"), "camera");
  EXPECT_EQ(CapabilityOfMethod("location.get"), "location");
  EXPECT_EQ(CapabilityOfMethod("screen.record"), "screen");
  EXPECT_EQ(CapabilityOfMethod("ping"), "");
  EXPECT_EQ(CapabilityOfMethod("key.rotate"), "");
}

TEST(Base64, RoundTripsEveryLengthAndRejectsGarbage) {
  for (std::size_t n = 0; n < 40; ++n) {
    std::string bytes;
    for (std::size_t i = 0; i < n; ++i) bytes.push_back(static_cast<char>(i * 37));
    auto back = core::Base64Decode(core::Base64Encode(bytes));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, bytes);
    auto url = core::Base64UrlDecode(core::Base64UrlEncode(bytes));
    ASSERT_TRUE(url.ok());
    EXPECT_EQ(*url, bytes);
  }
  EXPECT_FALSE(core::Base64Decode("ab$d").ok());
  EXPECT_FALSE(core::Base64Decode("abc").ok());
}

TEST(AgentProtocol, NumbersFromTheNode_MustBeIntegersInRange) {
  // 1e10 as an exit code would be an out-of-range float-to-int conversion (undefined behaviour).
  Json result = EncodeOutcome(core::ProcessOutcome{});
  for (const Json& bad : {Json(1e10), Json(3.5), Json(-1), Json(256), Json("0"), Json(4294967296LL)}) {
    result["exitCode"] = bad;
    EXPECT_FALSE(DecodeOutcome(result).ok()) << bad.dump();
  }
  result["exitCode"] = 0;
  result["durationMs"] = 1e300;
  EXPECT_FALSE(DecodeOutcome(result).ok());
  for (const Json& bad : {Json(1e10), Json(-5), Json(2.5), Json(nullptr)}) {
    EXPECT_FALSE(DecodeRunRequest({{"argv", {"x"}}, {"timeoutMs", bad}}).ok()) << bad.dump();
    EXPECT_FALSE(DecodeRunRequest({{"argv", {"x"}}, {"timeoutMs", 10}, {"outputCap", bad}}).ok()) << bad.dump();
  }
}

TEST(Base64, PaddingOnlyAtTheEnd) {
  EXPECT_FALSE(core::Base64Decode("QUI=QUI=").ok());
  EXPECT_FALSE(core::Base64Decode("Q===").ok());
  EXPECT_FALSE(core::Base64Decode("QU=I").ok());
  EXPECT_EQ(*core::Base64Decode("QUI="), "AB");
  EXPECT_EQ(*core::Base64Decode("QQ=="), "A");
}
}  // namespace
}  // namespace labgate::nodes
