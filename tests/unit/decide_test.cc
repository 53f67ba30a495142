#include "policy/decide.h"

#include <gtest/gtest.h>

namespace labgate::policy {
namespace {

constexpr const char* kInventory = R"(
[policies.run]
deny = ["rm -rf /", "rm -rf /\\*", "mkfs*"]
allow = ["df -h*", "systemctl restart nginx"]

[classify]
read_only = ["pihole status"]
destructive = ["zpool scrub *"]

[groups.servers]
mode = "confirm-mutating"

[[hosts]]
id = "prox4"
address = "10.0.0.4"
groups = ["servers"]

[[hosts]]
id = "ro"
address = "10.0.0.5"
mode = "read-only"

[[hosts]]
id = "lab"
address = "10.0.0.6"
mode = "full"
deny = ["reboot*"]
allow = ["apt-get install -y *"]

[[hosts]]
id = "strict"
address = "10.0.0.7"
groups = ["servers"]
mode = "full"
)";

class DecideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto inv = inventory::ParseInventory(kInventory, "hosts.toml", "/");
    ASSERT_TRUE(inv.ok()) << inv.error().message;
    inv_ = std::move(*inv);
  }
  CommandDecision Shell(const std::string& target, const std::string& command, const std::vector<Grant>& grants = {}) {
    return DecideCommand(inv_, *inv_.Find(target), ParseShell(command), grants);
  }
  inventory::Inventory inv_;
};

struct Case {
  const char* target;
  const char* command;
  CommandDecision::Verdict verdict;
  const char* rule;
};

TEST_F(DecideTest, Table) {
  using V = CommandDecision::Verdict;
  const Case cases[] = {
      {"local", "uptime", V::kRun, "mode.confirm-destructive"},
      {"local", "touch /tmp/x", V::kRun, "mode.confirm-destructive"},
      {"local", "rm -r /tmp/x", V::kConfirm, "mode.confirm-destructive"},
      {"local", "rm -rf /", V::kRefuse, "policies.run.deny"},
      {"local", "echo ok; rm -rf /", V::kRefuse, "policies.run.deny"},
      {"local", "sudo rm -rf /", V::kRefuse, "policies.run.deny"},
      {"local", "bash -lc 'mkfs.ext4 /dev/sdb'", V::kRefuse, "policies.run.deny"},
      {"local", "df -h /", V::kRun, "policies.run.allow"},
      {"local", "df -h; rm -r /srv", V::kConfirm, "mode.confirm-destructive"},
      {"local", "df -h $(rm -r /srv)", V::kConfirm, "mode.confirm-destructive"},
      {"local", "pihole status", V::kRun, "mode.confirm-destructive"},
      {"prox4", "pihole status", V::kRun, "mode.confirm-mutating"},
      {"prox4", "touch /tmp/x", V::kConfirm, "mode.confirm-mutating"},
      {"prox4", "systemctl restart nginx", V::kRun, "policies.run.allow"},
      {"prox4", "zpool scrub tank", V::kConfirm, "mode.confirm-mutating"},
      {"ro", "uptime", V::kRun, "mode.read-only"},
      {"ro", "touch /tmp/x", V::kRefuse, "mode.read-only"},
      {"ro", "df -h", V::kRun, "policies.run.allow"},
      {"lab", "rm -r /srv/old", V::kRun, "mode.full"},
      {"lab", "reboot now", V::kRefuse, "targets.lab.deny"},
      {"lab", "apt-get install -y htop", V::kRun, "targets.lab.allow"},
      {"strict", "touch /tmp/x", V::kConfirm, "mode.confirm-mutating"},  // strictest mode wins
  };
  for (const auto& c : cases) {
    auto d = Shell(c.target, c.command);
    EXPECT_EQ(VerdictName(d.verdict), std::string(VerdictName(c.verdict))) << c.target << ": " << c.command << " -> " << d.rule << ": " << d.reason;
    EXPECT_EQ(d.rule, c.rule) << c.target << ": " << c.command << " -> " << d.reason;
    EXPECT_FALSE(d.reason.empty()) << c.command;
  }
}

TEST_F(DecideTest, Refusal_SaysWhereTheRuleIs) {
  auto d = Shell("local", "rm -rf /");
  EXPECT_NE(d.reason.find("hosts.toml:3"), std::string::npos) << d.reason;
  auto ro = Shell("ro", "touch /tmp/x");
  EXPECT_NE(ro.reason.find("read-only"), std::string::npos) << ro.reason;
  EXPECT_NE(ro.reason.find("hosts.toml:"), std::string::npos) << ro.reason;
}

TEST_F(DecideTest, Grant_AdmitsOnlyItsTargetAndPattern) {
  std::vector<Grant> grants = {{"grant-1", "prox4", "docker compose -f /opt/stacks/core.yml *", "later"}};
  auto d = Shell("prox4", "docker compose -f /opt/stacks/core.yml up -d", grants);
  EXPECT_EQ(d.verdict, CommandDecision::Verdict::kRun);
  EXPECT_EQ(d.rule, "approvals.grant");
  EXPECT_EQ(d.grant, "grant-1");
  EXPECT_EQ(Shell("local", "docker compose -f /opt/stacks/core.yml up -d", grants).verdict,
            CommandDecision::Verdict::kConfirm);
  EXPECT_EQ(Shell("prox4", "docker compose -f /opt/stacks/core.yml up -d; reboot", grants).verdict,
            CommandDecision::Verdict::kConfirm);
}

TEST_F(DecideTest, AllowRule_MatchingIsLinearOnHugeCommands) {
  std::string huge = "df -h " + std::string(1 << 20, 'a');
  auto d = Shell("local", huge);
  EXPECT_EQ(d.verdict, CommandDecision::Verdict::kRun);
  std::string evil = "df -h " + std::string(1 << 20, 'a') + "; rm -r /srv";
  EXPECT_EQ(Shell("local", evil).verdict, CommandDecision::Verdict::kConfirm);
}

TEST_F(DecideTest, Argv_IsNotParsedByAShell) {
  auto d = DecideCommand(inv_, *inv_.Find("local"), FromArgv({"echo", "; rm -rf /"}));
  EXPECT_EQ(d.verdict, CommandDecision::Verdict::kRun) << d.reason;
}

TEST_F(DecideTest, DiagnosticsMustBeReadOnly) {
  auto inv = inventory::ParseInventory("[policies.run]\ndiagnostics = [\"uptime\", \"systemctl restart x\"]\n", "h.toml", "/");
  ASSERT_TRUE(inv.ok());
  auto ok = CheckInventory(*inv);
  ASSERT_FALSE(ok.ok());
  EXPECT_NE(ok.error().message.find("systemctl restart x"), std::string::npos);
  EXPECT_TRUE(CheckInventory(inventory::DefaultInventory()).ok()) << CheckInventory(inventory::DefaultInventory()).error().message;
}

}  // namespace
}  // namespace labgate::policy
