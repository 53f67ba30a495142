#include "core/text.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "growth.h"

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

namespace labgate::core {
namespace {

// --- token shapes -----------------------------------------------------------------------------

TEST(Redact, GitHubTokensKeepTheirPrefix) {
  EXPECT_EQ(Redact("push with ghp_16C7e42F292c6912E7710c838347Ae178B4a ok"), "push with ghp_[REDACTED] ok");
  EXPECT_EQ(Redact("gho_16C7e42F292c6912E7710c838347Ae178B4a"), "gho_[REDACTED]");
  EXPECT_EQ(Redact("(ghs_16C7e42F292c6912E7710c838347Ae178B4a)"), "(ghs_[REDACTED])");
  EXPECT_EQ(Redact("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"), "github_pat_[REDACTED]");
}

TEST(Redact, GitLabSlackAndStripeStyleTokens) {
  EXPECT_EQ(Redact("glpat-xxxxxxxxxxxxxxxxxxxx1234"), "glpat-[REDACTED]");
  EXPECT_EQ(Redact("xoxb-123456789012-1234567890123-abcdefABCDEF"), "xoxb-[REDACTED]");
  EXPECT_EQ(Redact("xoxp-1234567890-abcdef"), "xoxp-[REDACTED]");
  EXPECT_EQ(Redact("sk_live_4eC39HqLyjWDarjtT1zdp7dc"), "sk_live_[REDACTED]");
  EXPECT_EQ(Redact("rk_live_4eC39HqLyjWDarjtT1zdp7dc"), "rk_live_[REDACTED]");
  EXPECT_EQ(Redact("OPENAI=sk-proj-abcdefghijklmnopqrstuvwxyz012345"), "OPENAI=sk-[REDACTED]");
}

TEST(Redact, AwsAccessKeyIdsNeedExactlySixteenCharacters) {
  EXPECT_EQ(Redact("aws_access_key_id AKIAIOSFODNN7EXAMPLE"), "aws_access_key_id AKIA[REDACTED]");
  EXPECT_EQ(Redact("ASIAY34FZKBOKMUTVV7A,"), "ASIA[REDACTED],");
  EXPECT_EQ(Redact("AKIAIOSFODNN7EXAMPLEX"), "AKIAIOSFODNN7EXAMPLEX");  // 17: not a key id
  EXPECT_EQ(Redact("AKIA is a prefix"), "AKIA is a prefix");
}

TEST(Redact, JwtsAreMaskedWhole) {
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  EXPECT_EQ(Redact("cookie " + jwt + " end"), "cookie [REDACTED] end");
}

TEST(Redact, ShortLookalikesAreLeftAlone) {
  const std::string text = "ghp_short sk-learn xoxb- eyJ.eyJ. skip-this github_pat_x";
  EXPECT_EQ(Redact(text), text);
}

// --- URLs and flags ---------------------------------------------------------------------------

TEST(Redact, PasswordInUrlIsMaskedUserAndHostStay) {
  EXPECT_EQ(Redact("postgres://app:s3cr3t@db.lan:5432/app"), "postgres://app:[REDACTED]@db.lan:5432/app");
  EXPECT_EQ(Redact("redis://:hunter2@10.0.0.5"), "redis://:[REDACTED]@10.0.0.5");
  EXPECT_EQ(Redact("mysql://root:p@ss@host/db"), "mysql://root:[REDACTED]@host/db");
}

TEST(Redact, UrlsWithoutPasswordsStay) {
  const std::string text = "https://example.com:8443/path?q=1 ssh://git@github.com/x http://[::1]:80/ u@h:22";
  EXPECT_EQ(Redact(text), text);
}

TEST(Redact, SecretFlagsMaskTheirValue) {
  EXPECT_EQ(Redact("mysql --password hunter2 -u root"), "mysql --password [REDACTED] -u root");
  EXPECT_EQ(Redact("cli --token abc123 --verbose"), "cli --token [REDACTED] --verbose");
  EXPECT_EQ(Redact("cli --api-key=abc123"), "cli --api-key=[REDACTED]");
  EXPECT_EQ(Redact("cli --api-key abc123"), "cli --api-key [REDACTED]");
  EXPECT_EQ(Redact("vault --secret 'two words'"), "vault --secret '[REDACTED]'");
  EXPECT_EQ(Redact("gh --auth-token xyz"), "gh --auth-token [REDACTED]");
  EXPECT_EQ(Redact("mysql --password hunter2; echo done"), "mysql --password [REDACTED]; echo done");
}

TEST(Redact, AmbiguousFlagsAreNotMasked) {
  const std::string text = "mysql -p hunter2; pg_dump --no-password db; x --token-file /run/t; y --password --next";
  EXPECT_EQ(Redact(text), text);
}

TEST(Redact, QuotedJsonAndYamlValues) {
  EXPECT_EQ(Redact(R"({"password": "hunter2", "user": "bob"})"), R"({"password": "[REDACTED]", "user": "bob"})");
  EXPECT_EQ(Redact("api_key: 'abc def'"), "api_key: '[REDACTED]'");
  EXPECT_EQ(Redact("TOKEN=\"unclosed value\nnext line"), "TOKEN=\"[REDACTED]\nnext line");
}

// --- high entropy -----------------------------------------------------------------------------

TEST(Redact, HighEntropyStringsAreMasked) {
  EXPECT_EQ(Redact("key Xk9mP2vL8nQ4wR7tY1uZ5bC3 here"), "key [REDACTED] here");
  EXPECT_EQ(Redact("aws_secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), "aws_secret [REDACTED]");
  EXPECT_EQ(Redact("b64 q1Zk8xP0aR7mT3wL9nB2vC6yH4jD5fG8sK1eU7oI=="), "b64 [REDACTED]");
  EXPECT_EQ(Redact("EXPORTED=Xk9mP2vL8nQ4wR7tY1uZ5bC3"), "EXPORTED=[REDACTED]");
}

TEST(Redact, DigestsIdsPathsAndWordsStayReadable) {
  const std::vector<std::string> keep = {
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  // sha256 hex
      "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",  // upper hex
      "123e4567-e89b-12d3-a456-426614174000",                              // UUID
      "/home/alice/Documents/Backup2024/Photos/Holiday2023Summer/IMG_20230801.jpg",
      "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYQ==",  // base64 of "aaaa..."
      "Internationalization and telecommunications are long words",
      "nginx-deployment-66b6c48dd5-4jc2x",
      "commit 3f786850e387550fdab836ed7e6dc881de23001b",
      "256 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s root@host (ED25519)",
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop",
      "integrity sha512-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU9z8KjPZJ2xQ==",
      "-rw-r--r-- 1 alice alice 4096 Nov 18 11:06 audit.jsonl.1",
      "HOSTNAME=prox4 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
  };
  for (const auto& text : keep) EXPECT_EQ(Redact(text), text);
}

// --- the Redactor with literal secrets --------------------------------------------------------

TEST(Redactor, LiteralSecretsAreMaskedWherever) {
  Redactor redactor({"pa55-w0rd", "tok-value-1"});
  EXPECT_EQ(redactor.Redact("login pa55-w0rd ok; xpa55-w0rdx; tok-value-1"),
            "login [REDACTED] ok; x[REDACTED]x; [REDACTED]");
}

TEST(Redactor, OverlappingAndRepeatedLiteralsBecomeOneMask) {
  Redactor redactor({"abcabc", "cabcab"});
  EXPECT_EQ(redactor.Redact("xx abcabcabcab yy"), "xx [REDACTED] yy");
}

TEST(Redactor, ShortLiteralsAreIgnored) {
  Redactor redactor({"", "12345", "admin"});
  EXPECT_EQ(redactor.Redact("user admin 12345"), "user admin 12345");
}

TEST(Redactor, LiteralsThenRules) {
  Redactor redactor({"hunter22"});
  EXPECT_EQ(redactor.Redact("pw hunter22 and ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
            "pw [REDACTED] and ghp_[REDACTED]");
  EXPECT_EQ(Redactor().Redact("DB_PASSWORD=x"), Redact("DB_PASSWORD=x"));
}

TEST(Redactor, ConcurrentUseOfOneInstance) {
  const Redactor redactor({"s3cret-value"});
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 200; ++k) {
        if (redactor.Redact("a s3cret-value b") != "a [REDACTED] b") ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Redact, StaysLinearOnHostileInput) {
  auto repeat = [](const std::string& unit, std::size_t bytes) {
    std::string out;
    while (out.size() < bytes) out += unit;
    return out;
  };
  const Redactor redactor({"aaaaaaab", "aaaaaaaa"});
  for (const std::string unit : {"://a:", "password='", "eyJaaaaaaaaaaaa.", "ghp_", "--token ", "aB3", "/aB3xY", "a"}) {
    // "aB3": one enormous high-entropy-looking run; "a": a near miss of a secret at every byte.
    const double growth = labgate::testing::GrowthOverFourfoldInput(
        [&](std::size_t bytes) { (void)redactor.Redact(repeat(unit, bytes)); }, 64 * 1024);
    EXPECT_LT(growth, labgate::testing::kLinearGrowthBound) << "unit " << unit;
  }
}

}  // namespace
}  // namespace labgate::core
