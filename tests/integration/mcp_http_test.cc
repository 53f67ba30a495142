// MCP over Streamable HTTP against a real `labgate gateway`, with a plain socket client, so that
// the ASan and TSan runs of the integration suite cover the HTTP server too (the SDK client
// suites drive it with the official clients). Covers both eras, an event stream, a cancelled
// call and the refusals.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/subprocess.h"

namespace labgate {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using namespace labgate::testing;

struct Reply {
  int status = 0;
  std::string headers;
  std::string body;
};

class McpHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    const std::string state = dir_.path() + "/state";
    config_ = dir_.Write("hosts.toml", "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(FreePort()) +
                                           "\"\nhttp_listen = \"127.0.0.1:" + std::to_string(port_) +
                                           "\"\nstate_dir = \"" + state + "\"\naudit_log = \"" + dir_.path() +
                                           "/audit/audit.jsonl\"\nhttp_max_body_bytes = 65536\n\n[local]\n"
                                           "capabilities = [\"run\"]\n");
    gateway_ = std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "gateway", "--config", config_});
    ASSERT_TRUE(PollUntil([&] { return Request("GET", "/.well-known/oauth-protected-resource", "", {}).status == 200; },
                          milliseconds(10000)))
        << gateway_->Stderr();
    std::ifstream(state + "/http.token") >> token_;
    ASSERT_EQ(token_.size(), 64u);
  }
  void TearDown() override {
    if (!gateway_) return;
    ::kill(gateway_->pid(), SIGTERM);
    EXPECT_EQ(gateway_->Wait(milliseconds(15000)), 0) << gateway_->Stderr();
  }

  // One request on a fresh connection (Connection: close), read to the end.
  // `half_close`: shut the sending side after the request (a client done talking).
  Reply Request(const std::string& method, const std::string& path, const std::string& body,
                std::vector<std::string> headers, bool half_close = false) const {
    Reply reply;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return reply;
    }
    std::string text = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                       "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& h : headers) text += h + "\r\n";
    text += "\r\n" + body;
    for (std::size_t sent = 0; sent < text.size();) {
      ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    if (half_close) ::shutdown(fd, SHUT_WR);
    std::string in;
    char buf[65536];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) in.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    auto split = in.find("\r\n\r\n");
    if (in.size() < 12 || split == std::string::npos) return reply;
    reply.status = std::stoi(in.substr(9, 3));
    reply.headers = in.substr(0, split);
    reply.body = in.substr(split + 4);
    return reply;
  }

  std::vector<std::string> Auth(std::vector<std::string> more = {}) const {
    more.push_back("Authorization: Bearer " + token_);
    more.push_back("Content-Type: application/json");
    more.push_back("Accept: application/json, text/event-stream");
    return more;
  }

  // The JSON-RPC messages of a reply: the body itself, or each `data:` line of an event stream
  // (chunked: the chunk sizes are lines of their own and never start with "data: ").
  static std::vector<Json> Messages(const Reply& r) {
    std::vector<Json> out;
    if (r.headers.find("text/event-stream") == std::string::npos) {
      out.push_back(Json::parse(r.body, nullptr, false));
      return out;
    }
    std::size_t pos = 0;
    while ((pos = r.body.find("data: ", pos)) != std::string::npos) {
      auto end = r.body.find('\n', pos);
      out.push_back(Json::parse(r.body.substr(pos + 6, end - pos - 6), nullptr, false));
      pos = end;
    }
    return out;
  }

  std::string Initialize() {
    Json init = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
                 {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()},
                             {"clientInfo", {{"name", "http-test"}, {"version", "1"}}}}}};
    Reply r = Request("POST", "/mcp", init.dump(), Auth());
    EXPECT_EQ(r.status, 200) << r.body;
    auto at = r.headers.find("Mcp-Session-Id: ");
    EXPECT_NE(at, std::string::npos) << r.headers;
    return at == std::string::npos ? "" : r.headers.substr(at + 16, 32);
  }

  TempDir dir_;
  std::string config_;
  int port_ = 0;
  std::string token_;
  std::unique_ptr<Subprocess> gateway_;
};

TEST_F(McpHttp, LegacySessionRunsACommandAndStreamsItsProgress) {
  const std::string session = Initialize();
  Json call = {{"jsonrpc", "2.0"}, {"id", "c1"}, {"method", "tools/call"},
               {"params", {{"name", "run"}, {"arguments", {{"target", "local"}, {"command", "echo over-http"}}},
                           {"_meta", {{"progressToken", 7}}}}}};
  Reply r = Request("POST", "/mcp", call.dump(), Auth({"Mcp-Session-Id: " + session}));
  ASSERT_EQ(r.status, 200) << r.body;
  auto messages = Messages(r);
  ASSERT_GE(messages.size(), 2u) << r.body;  // progress, then the answer, on one event stream
  EXPECT_EQ(messages.front()["method"], "notifications/progress");
  EXPECT_EQ(messages.back()["id"], "c1");
  EXPECT_EQ(messages.back()["result"]["structuredContent"]["results"][0]["stdout"], "over-http\n");
  EXPECT_EQ(Request("DELETE", "/mcp", "", Auth({"Mcp-Session-Id: " + session})).status, 200);
  EXPECT_EQ(Request("POST", "/mcp", call.dump(), Auth({"Mcp-Session-Id: " + session})).status, 404);
}

TEST_F(McpHttp, ModernRequestIsServedWithoutASession) {
  Json meta = {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
               {"io.modelcontextprotocol/clientCapabilities", Json::object()}};
  Json call = {{"jsonrpc", "2.0"}, {"id", 5}, {"method", "tools/call"},
               {"params", {{"name", "run"}, {"arguments", {{"target", "local"}, {"command", {"echo", "modern"}}}},
                           {"_meta", meta}}}};
  Reply r = Request("POST", "/mcp", call.dump(),
                    Auth({"MCP-Protocol-Version: 2026-07-28", "Mcp-Method: tools/call", "Mcp-Name: run"}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.find("Mcp-Session-Id"), std::string::npos);
  Json answer = Messages(r).back();
  EXPECT_EQ(answer["result"]["resultType"], "complete");
  EXPECT_EQ(answer["result"]["structuredContent"]["results"][0]["stdout"], "modern\n");
  Reply wrong = Request("POST", "/mcp", call.dump(),
                        Auth({"MCP-Protocol-Version: 2026-07-28", "Mcp-Method: tools/call", "Mcp-Name: screen"}));
  EXPECT_EQ(wrong.status, 400);
  EXPECT_EQ(Json::parse(wrong.body)["error"]["code"], -32020);
}

// Closing the connection of a 2026-07-28 call cancels it: its process group is stopped.
TEST_F(McpHttp, ModernCallWhoseStreamClosesIsCancelled) {
  const std::string marker = "labgate-http-cancel-" + std::to_string(::getpid());
  Json meta = {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
               {"io.modelcontextprotocol/clientCapabilities", Json::object()}};
  Json call = {{"jsonrpc", "2.0"}, {"id", 9}, {"method", "tools/call"},
               {"params", {{"name", "run"},
                           {"arguments", {{"target", "local"},
                                          {"command", {"sh", "-c", "sleep 60; echo " + marker}},
                                          {"timeoutMs", 60000}}},
                           {"_meta", meta}}}};
  auto running = [&] {
    auto c = RunToCompletion({"/usr/bin/pgrep", "-f", marker}, dir_.path());
    return c.status == 0;
  };
  // Give up on the answer while the command runs.
  std::thread client([&] {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string body = call.dump();
    std::string text = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nAuthorization: Bearer " + token_ +
                       "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                       "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: run\r\n\r\n" + body;
    ASSERT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size()));
    ASSERT_TRUE(PollUntil([&] { return running(); }, milliseconds(10000))) << "the command never started\n" << gateway_->Stderr();
    ::close(fd);  // hang up while the call waits for its answer
  });
  client.join();
  const auto hung_up = std::chrono::steady_clock::now();
  EXPECT_TRUE(PollUntil([&] { return !running(); }, milliseconds(30000))) << "the command outlived its closed stream";
  EXPECT_LT(std::chrono::steady_clock::now() - hung_up, std::chrono::seconds(10));
}

TEST_F(McpHttp, RefusalsLeaveTheGatewayServing) {
  Json init = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
               {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()}}}};
  EXPECT_EQ(Request("POST", "/mcp", init.dump(), {}).status, 401);
  EXPECT_EQ(Request("POST", "/mcp", init.dump(), {"Authorization: Bearer " + std::string(64, 'x')}).status, 401);
  EXPECT_EQ(Request("POST", "/mcp", init.dump(), Auth({"Origin: http://evil.example"})).status, 403);
  // Half-closed, so the server draining the refused body sees the end at once.
  EXPECT_EQ(Request("POST", "/mcp", std::string(100000, '['), Auth(), true).status, 413);
  EXPECT_EQ(Request("POST", "/mcp", std::string(60000, '['), Auth()).status, 400);
  EXPECT_EQ(Request("POST", "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"x\"}", Auth()).status, 400);
  EXPECT_EQ(Request("GET", "/mcp", "", Auth()).status, 405);
  EXPECT_EQ(Request("GET", "/elsewhere", "", Auth()).status, 404);
  EXPECT_FALSE(Initialize().empty());
  bool audited = false;
  std::ifstream in(dir_.path() + "/audit/audit.jsonl");
  for (std::string line; std::getline(in, line);) audited |= line.find("\"http.refused\"") != std::string::npos;
  EXPECT_TRUE(audited);
}

// http_listen = "unix:/PATH": the same endpoint on a socket only local users with access reach;
// the token is still required, and the socket goes away with the gateway.
TEST(McpHttpUnix, ServesOnAUnixSocketAndRemovesIt) {
  TempDir dir;
  const std::string sock = dir.path() + "/mcp-http.sock";
  const std::string config = dir.Write(
      "hosts.toml", "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(FreePort()) + "\"\nhttp_listen = \"unix:" + sock +
                        "\"\nstate_dir = \"" + dir.path() + "/state\"\n");
  Subprocess gateway({LABGATE_BINARY, "gateway", "--config", config});
  ASSERT_TRUE(PollUntil([&] { return std::filesystem::exists(sock); }, milliseconds(10000))) << gateway.Stderr();
  std::string token;
  std::ifstream(dir.path() + "/state/http.token") >> token;
  auto post = [&](const std::string& auth) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string body = R"({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{)"
                             R"("io.modelcontextprotocol/protocolVersion":"2026-07-28",)"
                             R"("io.modelcontextprotocol/clientCapabilities":{}}}})";
    const std::string text = "POST /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n" + auth +
                             "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                             "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\n\r\n" + body;
    EXPECT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size()));
    std::string in;
    char buf[8192];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) in.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return in;
  };
  EXPECT_EQ(post("").rfind("HTTP/1.1 401", 0), 0u);
  const std::string ok = post("Authorization: Bearer " + token + "\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  EXPECT_NE(ok.find("\"supportedVersions\""), std::string::npos) << ok;
  ::kill(gateway.pid(), SIGTERM);
  EXPECT_EQ(gateway.Wait(milliseconds(15000)), 0) << gateway.Stderr();
  EXPECT_FALSE(std::filesystem::exists(sock));
}

}  // namespace
}  // namespace labgate
