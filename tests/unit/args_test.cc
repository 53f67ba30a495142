#include "cli/args.h"

#include <gtest/gtest.h>

namespace labgate::cli {
namespace {

TEST(Args, RunTakesTargetThenCommandAfterDoubleDash) {
  auto a = ParseArgs({"run", "local", "--json", "--", "ls", "-la", "--color"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->verb, "run");
  EXPECT_EQ(a->positional, std::vector<std::string>{"local"});
  EXPECT_TRUE(a->has("--json"));
  EXPECT_EQ(a->rest, (std::vector<std::string>{"ls", "-la", "--color"}));
}

TEST(Args, RunCommandMayStartWithoutDoubleDash) {
  auto a = ParseArgs({"run", "local", "uname", "-a"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->rest, (std::vector<std::string>{"uname", "-a"}));
}

TEST(Args, ValuedOptionsTakeTheNextWordOrEquals) {
  auto a = ParseArgs({"run", "--config", "/x.toml", "local", "--shell=echo hi", "--timeout", "5s"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->get("--config"), "/x.toml");
  EXPECT_EQ(a->get("--shell"), "echo hi");
  EXPECT_EQ(a->get("--timeout"), "5s");
}

TEST(Args, MissingValueIsAnError) { EXPECT_FALSE(ParseArgs({"run", "local", "--timeout"}).ok()); }

TEST(Args, AuditTailShortOptions) {
  auto a = ParseArgs({"audit", "tail", "-n", "5", "-f", "--json"});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->positional, std::vector<std::string>{"tail"});
  EXPECT_EQ(a->get("--lines"), "5");
  EXPECT_TRUE(a->has("--follow"));
  EXPECT_FALSE(ParseArgs({"audit", "tail", "-n"}).ok());
}

TEST(Args, AuditQueryOptionsTakeValues) {
  auto a = ParseArgs({"audit", "query", "--target", "local", "--since", "1h", "--until=2026-11-18", "--decision",
                      "refused", "--actor", "alice"});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->get("--target"), "local");
  EXPECT_EQ(a->get("--since"), "1h");
  EXPECT_EQ(a->get("--until"), "2026-11-18");
  EXPECT_EQ(a->get("--decision"), "refused");
  EXPECT_EQ(a->get("--actor"), "alice");
}

TEST(Args, UnknownShortOptionIsAnError) { EXPECT_FALSE(ParseArgs({"targets", "-x"}).ok()); }

TEST(Args, Durations) {
  EXPECT_EQ(*ParseDurationMs("250"), 250);
  EXPECT_EQ(*ParseDurationMs("250ms"), 250);
  EXPECT_EQ(*ParseDurationMs("3s"), 3000);
  EXPECT_EQ(*ParseDurationMs("2m"), 120000);
  EXPECT_FALSE(ParseDurationMs("soon").ok());
  EXPECT_FALSE(ParseDurationMs("5d").ok());
}

}  // namespace
}  // namespace labgate::cli
