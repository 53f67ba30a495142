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
