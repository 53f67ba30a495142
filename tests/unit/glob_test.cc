#include "policy/glob.h"

#include <gtest/gtest.h>

#include <string>

namespace labgate::policy {
namespace {

struct Case {
  const char* pattern;
  const char* text;
  bool matches;
};

void PrintTo(const Case& c, std::ostream* os) { *os << "GlobMatch(\"" << c.pattern << "\", \"" << c.text << "\")"; }

class GlobTable : public ::testing::TestWithParam<Case> {};

TEST_P(GlobTable, MatchesWholeText) {
  const Case& c = GetParam();
  EXPECT_EQ(GlobMatch(c.pattern, c.text), c.matches);
}

INSTANTIATE_TEST_SUITE_P(
    Glob, GlobTable,
    ::testing::Values(
        // Prefix patterns, as operators write them.
        Case{"df -h*", "df -h /", true}, Case{"df -h*", "df -h", true}, Case{"df -h*", "du -h", false},
        Case{"systemctl status *", "systemctl status nginx", true},
        Case{"systemctl status *", "systemctl restart nginx", false}, Case{"pihole status", "pihole status", true},
        Case{"pihole status", "pihole status now", false},
        // Stars anywhere, spaces included.
        Case{"*.log", "tail /var/log/syslog.log", true}, Case{"docker * ps", "docker --context a ps", true},
        Case{"a*b*c", "abc", true}, Case{"a*b*c", "a--b--c", true}, Case{"a*b*c", "acb", false},
        Case{"*a*a*a*b", "aaab", true}, Case{"*a*a*a*b", "aab", false}, Case{"*abcabd*", "abcabcabd", true},
        // Prefix and suffix may not overlap.
        Case{"ab*ba", "aba", false}, Case{"ab*ba", "abba", true}, Case{"*x", "x", true}, Case{"x*", "y", false},
        // Edge cases: empty pattern, only stars, escaped star, other backslashes.
        Case{"", "", true}, Case{"", "x", false}, Case{"*", "", true}, Case{"*", "anything at all", true},
        Case{"***", "x", true}, Case{"**", "", true}, Case{"a\\*", "a*", true}, Case{"a\\*", "ab", false},
        Case{"\\**", "*rest", true}, Case{"\\**", "rest", false}, Case{"a\\b", "a\\b", true},
        Case{"a\\*b*", "a*bcd", true}));

TEST(Glob, MegabyteTextWithManyStarsIsLinear) {
  const std::string text(1 << 20, 'a');
  EXPECT_FALSE(GlobMatch("*a*a*a*b", text));
  EXPECT_TRUE(GlobMatch("*a*a*a*", text));
  EXPECT_FALSE(GlobMatch("*aaaaaaaaaaaaaaaab*", text));
  EXPECT_TRUE(GlobMatch("a*" + std::string(1000, 'a') + "*a", text));
  std::string pattern;
  for (int i = 0; i < 1000; ++i) pattern += "*aab";
  EXPECT_FALSE(GlobMatch(pattern, text));
}

TEST(Glob, MegabyteCommandMatchesPrefixRule) {
  const std::string command = "echo " + std::string(1 << 20, 'x');
  EXPECT_TRUE(GlobMatch("echo *", command));
  EXPECT_FALSE(GlobMatch("echo *y", command));
}

}  // namespace
}  // namespace labgate::policy
