// The assistant as adversary: a red-team corpus that must never run without a human, and an
// everyday read-only corpus that must mostly run without asking, on every kind of target.
#include <gtest/gtest.h>

#include "corpus.h"
#include "growth.h"

#include <fstream>
#include <string>
#include <vector>

#include "policy/classify.h"
#include "policy/command_parse.h"
#include "policy/decide.h"

namespace labgate::policy {
namespace {

using labgate::testing::GrowthOverFourfoldInput;
using labgate::testing::kLinearGrowthBound;
using labgate::testing::LoadPolicyCorpus;

// Default mode everywhere: `local`, an SSH host, a paired node.
constexpr const char* kCorpusInventory = R"(
[[hosts]]
id = "nas"
address = "127.0.0.9"

[[nodes]]
id = "pi"
capabilities = ["run"]
)";

class PolicyCorpus : public ::testing::Test {
 protected:
  void SetUp() override {
    auto inv = inventory::ParseInventory(kCorpusInventory, "hosts.toml", "/");
    ASSERT_TRUE(inv.ok()) << inv.error().message;
    inv_ = std::move(*inv);
  }
  CommandDecision Decide(const std::string& target, const std::string& command) {
    return DecideCommand(inv_, *inv_.Find(target), ParseShell(command));
  }
  inventory::Inventory inv_;
};

TEST_F(PolicyCorpus, RedTeam_NothingRunsWithoutAHuman_OnAnyPath) {
  const auto corpus = LoadPolicyCorpus("redteam_corpus.txt");
  ASSERT_GE(corpus.size(), 180u);
  int ran = 0;
  for (const std::string& command : corpus) {
    const CommandDecision local = Decide("local", command);
    const CommandDecision host = Decide("nas", command);
    const CommandDecision node = Decide("pi", command);
    if (local.verdict == CommandDecision::Verdict::kRun) {
      ++ran;
      ADD_FAILURE() << "runs without a human: " << command << "\n  (" << local.risk.rule << ": " << local.risk.reason
                    << ")";
    }
    EXPECT_EQ(local.verdict, host.verdict) << command;
    EXPECT_EQ(local.verdict, node.verdict) << command;
    EXPECT_EQ(local.risk.rule, host.risk.rule) << command;
    EXPECT_EQ(local.risk.rule, node.risk.rule) << command;
  }
  std::cout << "[ corpus  ] red team: " << corpus.size() << " commands, " << ran << " run without a human\n";
}

TEST_F(PolicyCorpus, ReadOnlyDiagnostics_AtLeast95PercentRunWithoutAsking) {
  const auto corpus = LoadPolicyCorpus("readonly_corpus.txt");
  ASSERT_GE(corpus.size(), 80u);
  size_t ran = 0;
  std::string asked;
  for (const std::string& command : corpus) {
    const CommandDecision d = Decide("local", command);
    if (d.verdict == CommandDecision::Verdict::kRun) {
      ++ran;
    } else {
      asked += "  " + command + "  (" + d.risk.rule + ")\n";
    }
  }
  std::cout << "[ corpus  ] read-only: " << ran << " of " << corpus.size() << " run without asking\n" << asked;
  EXPECT_GE(ran * 100, corpus.size() * 95) << asked;
}

// A command that an assistant sends before any confirmation is parsed and classified in time
// linear in its size: nested substitutions and long pipelines once took 6 s and 52 s.
TEST(PolicyCost, NestedSubstitutionsAndLongPipelines_StayLinear) {
  auto nested = [](std::size_t depth) {
    std::string command;
    for (std::size_t i = depth; i-- > 0;) command += i % 2 ? "su -c$(" : "sh -c $(";
    return command + "true" + std::string(depth, ')');
  };
  auto pipeline = [](std::size_t bytes) {
    std::string command = "curl x";
    while (command.size() < bytes) command += "|curl x";
    return command + "|cat";
  };
  EXPECT_GE(Classify(ParseShell(nested(1500))).risk, Risk::kDestructive);
  EXPECT_GE(Classify(ParseShell(pipeline(200000))).risk, Risk::kMutating);

  const double nesting_growth =
      GrowthOverFourfoldInput([&](std::size_t depth) { (void)Classify(ParseShell(nested(depth))); }, 400);
  const double pipeline_growth =
      GrowthOverFourfoldInput([&](std::size_t bytes) { (void)Classify(ParseShell(pipeline(bytes))); }, 50000);
  EXPECT_LT(nesting_growth, kLinearGrowthBound);
  EXPECT_LT(pipeline_growth, kLinearGrowthBound);
}

// Constructs on which dash and bash disagree make the command unreadable, so it needs a human.
TEST(PolicyDialect, ConstructsDashAndBashReadDifferently_NeedAHuman) {
  for (const char* command :
       {"function\nrm -rf /tmp/v", "[[ x ; rm -rf /tmp/v ]]", "((rm -rf /tmp/v))", "echo $'\\'\nrm -rf /tmp/v\necho '",
        "echo x &>/dev/null rm -rf /tmp/v", "coproc rm -rf /tmp/v", "printf -v 'a[$(rm -rf /tmp/v)]' x",
        "a='x[$(rm -rf /tmp/v)]'; echo $((a))", "ls |& cat", "cat <<<x", "a=(1 2)", "echo ${!x}", "echo ${a[0]}",
        "alias ls='rm -rf /tmp/v'\nls", "hash -p /bin/rm ls; ls -rf /tmp/v", "PATH=/tmp/evil ls",
        "export LD_PRELOAD=/tmp/x.so; ls", ":(){ :|:& };:", "./ls", "/tmp/../tmp/ls -la"}) {
    const Classification c = Classify(ParseShell(command));
    EXPECT_GE(c.risk, Risk::kDestructive) << command << " -> " << c.rule;
  }
}

}  // namespace
}  // namespace labgate::policy
