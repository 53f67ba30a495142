#include "mcp/http_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace labgate::mcp {
namespace {

TEST(HttpBearer, OnlyTheBearerSchemeCarriesAToken) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("bearer   abc  "), "abc");
  EXPECT_EQ(BearerToken("Basic YWJjOmRlZg=="), "");
  EXPECT_EQ(BearerToken("Bearer"), "");
  EXPECT_EQ(BearerToken(""), "");
  EXPECT_EQ(BearerToken("Bearerabc"), "");
}

TEST(HttpOrigin, OwnOriginsAndListedOnesPassEverythingElseIsRefused) {
  const std::vector<std::string> none;
  EXPECT_TRUE(OriginAllowed("http://127.0.0.1:7023", "127.0.0.1:7023", false, none));
  EXPECT_TRUE(OriginAllowed("http://localhost:7023", "127.0.0.1:7023", false, none));
  EXPECT_TRUE(OriginAllowed("HTTP://LOCALHOST:7023", "127.0.0.1:7023", false, none));
  EXPECT_FALSE(OriginAllowed("https://localhost:7023", "127.0.0.1:7023", false, none));  // scheme differs
  EXPECT_FALSE(OriginAllowed("http://localhost:7024", "127.0.0.1:7023", false, none));
  EXPECT_FALSE(OriginAllowed("http://localhost.evil.example:7023", "127.0.0.1:7023", false, none));
  EXPECT_FALSE(OriginAllowed("null", "127.0.0.1:7023", false, none));
  EXPECT_FALSE(OriginAllowed("http://127.0.0.1:7023/", "127.0.0.1:7023", false, none));
  EXPECT_TRUE(OriginAllowed("https://10.0.0.2:7023", "10.0.0.2:7023", true, none));
  EXPECT_FALSE(OriginAllowed("https://localhost:7023", "10.0.0.2:7023", true, none));
  EXPECT_TRUE(OriginAllowed("https://assistant.example", "10.0.0.2:7023", true, {"https://assistant.example"}));
  EXPECT_FALSE(OriginAllowed("http://127.0.0.1:7023", "unix:/run/x.sock", false, none));
}

TEST(HttpHost, LoopbackListenersAnswerOnlyLoopbackNamesAndListedOrigins) {
  const std::vector<std::string> none;
  EXPECT_TRUE(HostAllowed("127.0.0.1:7023", "127.0.0.1:7023", none));
  EXPECT_TRUE(HostAllowed("localhost:7023", "127.0.0.1:7023", none));
  EXPECT_TRUE(HostAllowed("[::1]:7023", "127.0.0.1:7023", none));
  EXPECT_TRUE(HostAllowed("LOCALHOST", "127.0.0.1:7023", none));
  EXPECT_FALSE(HostAllowed("evil.example.com", "127.0.0.1:7023", none));
  EXPECT_FALSE(HostAllowed("evil.example.com:7023", "127.0.0.1:7023", none));
  EXPECT_FALSE(HostAllowed("localhost.evil.example.com", "127.0.0.1:7023", none));
  EXPECT_TRUE(HostAllowed("mcp.lab.example", "127.0.0.1:7023", {"https://mcp.lab.example"}));
  EXPECT_TRUE(HostAllowed("anything.example", "0.0.0.0:7023", none));  // a LAN or proxied listener
}

class HttpSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("labgate-http-settings-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    g_.state_dir = (dir_ / "state").string();
    g_.http_listen = "127.0.0.1:7023";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  inventory::GatewaySettings g_;
};

TEST_F(HttpSettingsTest, WithoutAReferenceAPrivateTokenIsMadeOnceInTheStateDir) {
  auto first = HttpSettingsFor(g_);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->token.size(), 64u);
  EXPECT_EQ(first->token_source, g_.state_dir + "/http.token");
  struct stat st {};
  ASSERT_EQ(::stat(first->token_source.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = HttpSettingsFor(g_);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->token, first->token);
}

TEST_F(HttpSettingsTest, TokenByEnvOrFileAndWeakOrExposedTokensAreRefused) {
  ::setenv("LABGATE_TEST_HTTP_TOKEN", "0123456789abcdef0123456789abcdef", 1);
  g_.http_token_env = "LABGATE_TEST_HTTP_TOKEN";
  auto env = HttpSettingsFor(g_);
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_EQ(env->token_source, "$LABGATE_TEST_HTTP_TOKEN");
  ::setenv("LABGATE_TEST_HTTP_TOKEN", "short", 1);
  auto weak = HttpSettingsFor(g_);
  ASSERT_FALSE(weak.ok());
  EXPECT_NE(weak.error().message.find("shorter than 32"), std::string::npos);
  EXPECT_EQ(weak.error().message.find("short\""), std::string::npos);  // the token itself is not echoed
  ::unsetenv("LABGATE_TEST_HTTP_TOKEN");
  auto unset = HttpSettingsFor(g_);
  ASSERT_FALSE(unset.ok());
  EXPECT_NE(unset.error().message.find("not set"), std::string::npos);

  g_.http_token_env.clear();
  g_.http_token_file = (dir_ / "token").string();
  std::ofstream(g_.http_token_file) << std::string(40, 'k') << "\n";
  ::chmod(g_.http_token_file.c_str(), 0644);
  auto exposed = HttpSettingsFor(g_);
  ASSERT_FALSE(exposed.ok());
  EXPECT_NE(exposed.error().message.find("chmod 600"), std::string::npos);
  ::chmod(g_.http_token_file.c_str(), 0600);
  auto file = HttpSettingsFor(g_);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->token, std::string(40, 'k'));
}

}  // namespace
}  // namespace labgate::mcp
