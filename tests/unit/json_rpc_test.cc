#include "core/json_rpc.h"

#include <gtest/gtest.h>

namespace labgate::core::jsonrpc {
namespace {

Message Ok(std::string_view line) {
  auto out = Decode(line);
  EXPECT_TRUE(std::holds_alternative<Message>(out)) << line;
  return std::get<Message>(out);
}

DecodeFailure Bad(std::string_view line) {
  auto out = Decode(line);
  EXPECT_TRUE(std::holds_alternative<DecodeFailure>(out)) << line;
  return std::get<DecodeFailure>(out);
}

TEST(JsonRpc, RequestIdsKeepTheirType) {
  EXPECT_EQ(Encode(Ok(R"({"jsonrpc":"2.0","id":0,"method":"ping"})").id), "0");
  EXPECT_EQ(Encode(Ok(R"({"jsonrpc":"2.0","id":"0","method":"ping"})").id), R"("0")");
  EXPECT_EQ(Encode(Ok(R"({"jsonrpc":"2.0","id":-7,"method":"ping"})").id), "-7");
  EXPECT_EQ(Encode(Ok(R"({"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"})").id), "18446744073709551615");
  EXPECT_EQ(Encode(MakeResult(Ok(R"({"jsonrpc":"2.0","id":"abc","method":"x"})").id, nullptr)),
            R"({"id":"abc","jsonrpc":"2.0","result":null})");
}

TEST(JsonRpc, NullFractionalOrBoolIdIsInvalidRequest) {
  for (auto line : {R"({"jsonrpc":"2.0","id":null,"method":"ping"})", R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})",
                    R"({"jsonrpc":"2.0","id":true,"method":"ping"})"}) {
    auto f = Bad(line);
    EXPECT_EQ(f.error.code, kInvalidRequest) << line;
    EXPECT_TRUE(f.id.is_null());
  }
}

TEST(JsonRpc, NotificationHasNoId) {
  auto m = Ok(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(m.kind, MessageKind::kNotification);
  EXPECT_EQ(m.method, "notifications/initialized");
}

TEST(JsonRpc, MalformedJsonIsParseError) {
  EXPECT_EQ(Bad("{not json").error.code, kParseError);
  EXPECT_EQ(Bad(R"({"jsonrpc":"2.0","id":1,"method":"ping")").error.code, kParseError);
}

TEST(JsonRpc, DeepNesting_IsAParseErrorNotACrash) {
  // 60,000 levels in 120 KB: in params, as a result, as a notification's params.
  const std::string deep = std::string(60000, '[') + std::string(60000, ']');
  for (const std::string& line :
       {R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"a":)" + deep + "}}",
        R"({"jsonrpc":"2.0","id":1,"result":)" + deep + "}",
        R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":)" + deep + "}}"}) {
    auto f = Bad(line);
    EXPECT_EQ(f.error.code, kParseError);
    EXPECT_NE(f.error.message.find("nested deeper than 128 levels"), std::string::npos) << f.error.message;
  }
  // Brackets inside strings are text, and ordinary nesting is fine.
  const std::string brackets(5000, '[');
  Ok(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"s":")" + brackets + R"(\"[{"}})");
  std::string nested = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":)";
  for (int i = 0; i < 100; ++i) nested += "[";
  for (int i = 0; i < 100; ++i) nested += "]";
  Ok(nested + "}");
}

TEST(JsonRpc, NonUtf8IsParseError) {
  EXPECT_EQ(Bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xff\xfe\"}").error.code, kParseError);
}

TEST(JsonRpc, BatchesAreRefused) {
  auto f = Bad(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])");
  EXPECT_EQ(f.error.code, kInvalidRequest);
  EXPECT_NE(f.error.message.find("batch"), std::string::npos);
}

TEST(JsonRpc, WrongVersionKeepsIdForTheAnswer) {
  auto f = Bad(R"({"jsonrpc":"1.0","id":9,"method":"ping"})");
  EXPECT_EQ(f.error.code, kInvalidRequest);
  EXPECT_EQ(f.id, 9);
}

TEST(JsonRpc, ScalarParamsAreInvalid) {
  EXPECT_EQ(Bad(R"({"jsonrpc":"2.0","id":1,"method":"x","params":3})").error.code, kInvalidRequest);
}

TEST(JsonRpc, NonObjectMessagesAreInvalid) {
  EXPECT_EQ(Bad("42").error.code, kInvalidRequest);
  EXPECT_EQ(Bad(R"("hello")").error.code, kInvalidRequest);
  EXPECT_EQ(Bad(R"({"jsonrpc":"2.0","id":1})").error.code, kInvalidRequest);
}

TEST(JsonRpc, ResponsesDecode) {
  auto r = Ok(R"({"jsonrpc":"2.0","id":3,"result":{"action":"accept"}})");
  EXPECT_EQ(r.kind, MessageKind::kResponse);
  EXPECT_EQ(r.result["action"], "accept");
  auto e = Ok(R"({"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"nope"}})");
  ASSERT_TRUE(e.error.has_value());
  EXPECT_EQ(e.error->code, -32601);
}

TEST(JsonRpc, HugeLineDecodes) {
  std::string big(4 * 1024 * 1024, 'a');
  auto m = Ok(R"({"jsonrpc":"2.0","id":1,"method":"x","params":{"s":")" + big + R"("}})");
  EXPECT_EQ(m.params["s"].get<std::string>().size(), big.size());
}

TEST(JsonRpc, EncodeReplacesInvalidUtf8) {
  Json msg = MakeNotification("x", Json{{"s", std::string("a\xff" "b")}});
  std::string line = Encode(msg);
  EXPECT_NE(line.find("a\xEF\xBF\xBD" "b"), std::string::npos);
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(JsonRpc, ErrorResponseWithOddTypes_DecodesWithoutThrowing) {
  // A client or node answering with a non-string message must not take the process down.
  auto m = Ok(R"({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":0}})");
  ASSERT_TRUE(m.error.has_value());
  EXPECT_EQ(m.error->message, "0");
  auto n = Ok(R"({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":{"a":[1]},"data":7}})");
  EXPECT_EQ(n.error->message, R"({"a":[1]})");
  EXPECT_EQ(n.error->data, 7);
  Bad(R"({"jsonrpc":"2.0","id":1,"error":{"code":1e40,"message":"x"}})");
  Bad(R"({"jsonrpc":"2.0","id":1,"error":{"code":99999999999,"message":"x"}})");
}
}  // namespace
}  // namespace labgate::core::jsonrpc
