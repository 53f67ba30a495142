#include "core/text.h"

#include <gtest/gtest.h>

namespace labgate::core {
namespace {

TEST(Text, ValidUtf8PassesThrough) { EXPECT_EQ(ToValidUtf8("grüß 🙂"), "grüß 🙂"); }

TEST(Text, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(ToValidUtf8("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(ToValidUtf8("\xC3"), "\xEF\xBF\xBD");                 // truncated sequence
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(Text, ShellQuoteRoundTripsHostileWords) {
  EXPECT_EQ(ShellQuote("plain-word_1.txt"), "plain-word_1.txt");
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote("$(rm -rf /); `x`"), "'$(rm -rf /); `x`'");
}

TEST(Text, JoinArgvQuotesWhereNeeded) {
  EXPECT_EQ(JoinArgv({"echo", "a b", "c"}), "echo 'a b' c");
}

TEST(Text, RedactsSecretAssignments) {
  EXPECT_EQ(Redact("DB_PASSWORD=hunter2 ok"), "DB_PASSWORD=[REDACTED] ok");
  EXPECT_EQ(Redact("mysql --password=hunter2"), "mysql --password=[REDACTED]");
  EXPECT_EQ(Redact("github_token: ghp_abc,next"), "github_token: [REDACTED],next");
}

TEST(Text, RedactsAuthorizationHeaders) {
  EXPECT_EQ(Redact("Authorization: Bearer abc.def.ghi\nnext"), "Authorization: Bearer [REDACTED]\nnext");
  EXPECT_EQ(Redact("curl -H 'Authorization: Basic dXNlcjpwYXNz'"), "curl -H 'Authorization: Basic [REDACTED]'");
}

TEST(Text, RedactsPrivateKeyBodies) {
  std::string pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAsecret\nBBBB\n-----END OPENSSH PRIVATE KEY-----\n";
  std::string out = Redact("before\n" + pem + "after");
  EXPECT_EQ(out.find("AAAAsecret"), std::string::npos);
  EXPECT_NE(out.find("-----END OPENSSH PRIVATE KEY-----"), std::string::npos);
  EXPECT_NE(out.find("after"), std::string::npos);
}

TEST(Text, LeavesOrdinaryOutputAlone) {
  const std::string text = "Filesystem Size Used\n/dev/sda1 20G 5G\npassword policy is strong\n";
  EXPECT_EQ(Redact(text), text);
}

TEST(Text, RedactIsLinearOnLargeInput) {
  std::string big(2 * 1024 * 1024, '=');
  EXPECT_EQ(Redact(big).size(), big.size());
}

}  // namespace
}  // namespace labgate::core

namespace labgate::core {
namespace {

TEST(Text, EnvironmentVariableNames) {
  EXPECT_TRUE(IsValidEnvName("PATH"));
  EXPECT_TRUE(IsValidEnvName("_a1"));
  EXPECT_FALSE(IsValidEnvName(""));
  EXPECT_FALSE(IsValidEnvName("1A"));
  EXPECT_FALSE(IsValidEnvName("A-B"));
  EXPECT_FALSE(IsValidEnvName("A;B"));
}

}  // namespace
}  // namespace labgate::core
