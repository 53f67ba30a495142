// Network and role hardening: allowed_networks and the per-source login limit of the node
// listener, and daily-use targets that never receive privileged commands.
#include <gtest/gtest.h>

#include "core/net.h"
#include "inventory/inventory.h"
#include "nodes/source_gate.h"
#include "policy/capability_scope.h"
#include "policy/decide.h"

namespace labgate {
namespace {

using namespace std::chrono_literals;
using nodes::SourceGate;

TEST(Ipv4Network, ParsesCidrAndSingleAddresses) {
  auto cgnat = core::ParseIpv4Network("100.64.0.0/10");
  ASSERT_TRUE(cgnat);
  EXPECT_EQ(cgnat->prefix, 10);
  EXPECT_TRUE(cgnat->Contains(*core::ParseIpv4("100.101.7.9")));
  EXPECT_FALSE(cgnat->Contains(*core::ParseIpv4("100.128.0.1")));
  auto one = core::ParseIpv4Network("10.0.0.4");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->prefix, 32);
  EXPECT_TRUE(one->Contains(*core::ParseIpv4("10.0.0.4")));
  EXPECT_FALSE(one->Contains(*core::ParseIpv4("10.0.0.5")));
  auto all = core::ParseIpv4Network("0.0.0.0/0");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->Contains(*core::ParseIpv4("203.0.113.7")));
  // Host bits are cleared, so 127.0.0.1/8 means 127.0.0.0/8.
  EXPECT_TRUE(core::ParseIpv4Network("127.0.0.1/8")->Contains(*core::ParseIpv4("127.9.9.9")));
}

TEST(Ipv4Network, RefusesWhatIsNotAnIpv4Network) {
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "10.0.0.4/33", "10.0.0.4/", "::1", "fd00::/8", "10.0.0.4/x",
                          "010.0.0.1234", "a.b.c.d", "10.0.0.4 ", "1.2.3.4/08x"}) {
    EXPECT_FALSE(core::ParseIpv4Network(bad)) << bad;
  }
}

TEST(SourceGate, NoNetworksListed_AdmitsEverySource) {
  SourceGate gate({{}, 3, 60s});
  const auto now = SourceGate::Clock::now();
  EXPECT_FALSE(gate.Admit("203.0.113.7", now));
  EXPECT_FALSE(gate.Admit("::1", now));
}

TEST(SourceGate, OutsideAllowedNetworks_RefusedWithTheRule) {
  SourceGate gate({{"127.0.0.0/8", "100.64.0.0/10"}, 3, 60s});
  const auto now = SourceGate::Clock::now();
  EXPECT_FALSE(gate.Admit("127.0.0.1", now));
  EXPECT_FALSE(gate.Admit("100.100.1.2", now));
  EXPECT_FALSE(gate.Admit("::ffff:127.0.0.5", now));  // IPv4-mapped on a dual-stack listener
  auto refused = gate.Admit("192.168.1.20", now);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->rule, "gateway.allowed_networks");
  EXPECT_NE(refused->reason.find("192.168.1.20"), std::string::npos);
  EXPECT_NE(refused->reason.find("100.64.0.0/10"), std::string::npos);
  // IPv6 that is not a mapped IPv4 address cannot be inside an IPv4 list: fail closed.
  EXPECT_TRUE(gate.Admit("fd00::1", now));
}

TEST(SourceGate, RepeatedRefusals_ReportedOncePerMinuteWithACount) {
  SourceGate gate({{"10.0.0.0/8"}, 3, 60s});
  const auto t0 = SourceGate::Clock::now();
  auto first = gate.Admit("192.0.2.1", t0);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->report);
  for (int i = 1; i <= 5; ++i) {
    auto again = gate.Admit("192.0.2.1", t0 + std::chrono::seconds(i));
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->report);
  }
  auto later = gate.Admit("192.0.2.1", t0 + 61s);
  ASSERT_TRUE(later);
  EXPECT_TRUE(later->report);
  EXPECT_EQ(later->suppressed, 5u);
  // Another source has its own report.
  auto other = gate.Admit("192.0.2.2", t0 + 2s);
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->report);
}

TEST(SourceGate, FailedLoginsPastTheLimit_RefusedUntilTheWindowPasses) {
  SourceGate gate({{"127.0.0.0/8"}, 3, 60s});
  const auto t0 = SourceGate::Clock::now();
  for (int i = 0; i < 2; ++i) gate.RecordFailure("127.0.0.7", t0 + std::chrono::seconds(i));
  EXPECT_FALSE(gate.Admit("127.0.0.7", t0 + 3s)) << "two failures are under the limit of three";
  gate.RecordFailure("127.0.0.7", t0 + 4s);
  auto refused = gate.Admit("127.0.0.7", t0 + 5s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->rule, "gateway.auth_fail_limit");
  EXPECT_NE(refused->reason.find("3 times"), std::string::npos);
  EXPECT_FALSE(gate.Admit("127.0.0.8", t0 + 5s)) << "other sources are not affected";
  // The first failure leaves the window at t0 + 60 s: two remain, under the limit.
  EXPECT_TRUE(gate.Admit("127.0.0.7", t0 + 59s));
  EXPECT_FALSE(gate.Admit("127.0.0.7", t0 + 61s));
}

TEST(SourceGate, Update_TakesNewNetworksAndKeepsFailureCounts) {
  SourceGate gate({{"127.0.0.0/8"}, 2, 60s});
  const auto t0 = SourceGate::Clock::now();
  gate.RecordFailure("127.0.0.7", t0);
  gate.Update({{"10.0.0.0/8"}, 2, 60s});
  auto refused = gate.Admit("127.0.0.1", t0 + 1s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->rule, "gateway.allowed_networks");
  gate.Update({{}, 1, 60s});
  auto limited = gate.Admit("127.0.0.7", t0 + 2s);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->rule, "gateway.auth_fail_limit");
}

core::Result<inventory::Inventory> Parse(const std::string& text) {
  return inventory::ParseInventory(text, "hosts.toml", "/etc/labgate");
}

TEST(HardeningInventory, AllowedNetworksAndLimitsAreRead) {
  auto inv = Parse("[gateway]\nallowed_networks = [\"127.0.0.0/8\", \"100.64.0.0/10\"]\nauth_fail_limit = 5\n"
                   "auth_fail_window_s = 120\n");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->gateway.allowed_networks, (std::vector<std::string>{"127.0.0.0/8", "100.64.0.0/10"}));
  EXPECT_EQ(inv->gateway.auth_fail_limit, 5);
  EXPECT_EQ(inv->gateway.auth_fail_window_s, 120);
}

TEST(HardeningInventory, BadNetworkRoleOrFingerprint_NamesFileLineAndKey) {
  auto net = Parse("[gateway]\nallowed_networks = [\"100.64.0.0/40\"]\n");
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.error().message.find("hosts.toml:2: gateway.allowed_networks: '100.64.0.0/40' is not an IPv4 network"),
            std::string::npos)
      << net.error().message;
  auto role = Parse("[[hosts]]\nid = \"a\"\naddress = \"10.0.0.1\"\nrole = \"root\"\n");
  ASSERT_FALSE(role.ok());
  EXPECT_NE(role.error().message.find("hosts.toml:4: hosts[0].role: unknown role 'root' (admin or daily)"),
            std::string::npos)
      << role.error().message;
  auto fp = Parse("[[nodes]]\nid = \"n\"\nkey_fingerprint = \"MD5:ab\"\n");
  ASSERT_FALSE(fp.ok());
  EXPECT_NE(fp.error().message.find("hosts.toml:3: nodes[0].key_fingerprint"), std::string::npos) << fp.error().message;
  auto roles = Parse("[policies.camera]\nroles = [\"guest\"]\n");
  ASSERT_FALSE(roles.ok());
  EXPECT_NE(roles.error().message.find("policies.camera.roles"), std::string::npos) << roles.error().message;
}

TEST(HardeningInventory, RoleDefaultsToAdmin) {
  auto inv = Parse("[[hosts]]\nid = \"a\"\naddress = \"10.0.0.1\"\n[[nodes]]\nid = \"phone\"\nrole = \"daily\"\n"
                   "key_fingerprint = \"SHA256:abc\"\n");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->Find("a")->role, "admin");
  EXPECT_EQ(inv->Find("local")->role, "admin");
  EXPECT_EQ(inv->Find("phone")->role, "daily");
  EXPECT_EQ(inv->Find("phone")->role_line, 6);
  EXPECT_EQ(inv->Find("phone")->key_fingerprint, "SHA256:abc");
}

// A daily target whose operator config would run anything: mode full and an allow for sudo.
constexpr const char* kPermissive = R"(
[policies.run]
mode = "full"
allow = ["sudo *", "doas *", "tee *", "cp *"]

[[hosts]]
id = "admin-box"
address = "10.0.0.2"
role = "admin"

[[nodes]]
id = "laptop"
role = "daily"
capabilities = ["run", "screen"]

[policies.screen]
roles = ["admin"]
)";

class DailyRole : public ::testing::Test {
 protected:
  void SetUp() override {
    auto inv = Parse(kPermissive);
    ASSERT_TRUE(inv.ok()) << inv.error().message;
    inv_ = std::move(*inv);
  }
  policy::CommandDecision Decide(const std::string& target, const std::string& shell,
                                 const std::vector<policy::Grant>& grants = {}) {
    return policy::DecideCommand(inv_, *inv_.Find(target), policy::ParseShell(shell), grants);
  }
  inventory::Inventory inv_;
};

TEST_F(DailyRole, PrivilegedCommands_RefusedOnDailyEvenWhenModeFullAndAllowed) {
  for (const char* command : {"sudo true", "sudo -n systemctl restart nginx", "doas reboot", "su -c id",
                              "echo x | sudo tee /etc/hosts", "echo nameserver 1.1.1.1 > /etc/resolv.conf",
                              "tee -a /etc/fstab < /tmp/x", "cp ./tool /usr/bin/tool", "rm /boot/vmlinuz-old",
                              "ls; sudo id", "$(echo sudo) id", "echo ok >> ~/.ssh/authorized_keys"}) {
    auto d = Decide("laptop", command);
    EXPECT_EQ(d.verdict, policy::CommandDecision::Verdict::kRefuse) << command << ": " << d.reason;
    EXPECT_EQ(d.rule, "targets.laptop.role") << command << ": " << d.reason;
    EXPECT_NE(d.reason.find("role = \"daily\" in hosts.toml:13"), std::string::npos) << d.reason;
  }
}

TEST_F(DailyRole, OrdinaryCommands_RunOnDaily) {
  for (const char* command : {"uptime", "ls -la /etc", "cat /etc/hostname", "touch /tmp/x", "cp a /tmp/b",
                              "systemctl --user restart pipewire"}) {
    auto d = Decide("laptop", command);
    EXPECT_EQ(d.verdict, policy::CommandDecision::Verdict::kRun) << command << ": " << d.rule << " " << d.reason;
  }
}

TEST_F(DailyRole, SameCommandsOnAdmin_FollowTheOperatorConfig) {
  for (const char* command : {"sudo true", "doas reboot", "echo x | sudo tee /etc/hosts"}) {
    auto d = Decide("admin-box", command);
    EXPECT_EQ(d.verdict, policy::CommandDecision::Verdict::kRun) << command << ": " << d.rule << " " << d.reason;
  }
}

TEST_F(DailyRole, AGrant_DoesNotAdmitPrivilegeOnDaily) {
  auto d = Decide("laptop", "sudo apt-get update", {{"grant-1", "laptop", "sudo apt-get *", "2099-01-01T00:00:00Z"}});
  EXPECT_EQ(d.verdict, policy::CommandDecision::Verdict::kRefuse);
  EXPECT_EQ(d.rule, "targets.laptop.role");
}

TEST_F(DailyRole, DenyStillWinsOverRole) {
  inventory::Inventory inv = inv_;
  inv.run_rules.deny.push_back({"sudo *", "hosts.toml:3 policies.run.deny"});
  auto d = policy::DecideCommand(inv, *inv.Find("laptop"), policy::ParseShell("sudo true"), {});
  EXPECT_EQ(d.verdict, policy::CommandDecision::Verdict::kRefuse);
  EXPECT_EQ(d.rule, "policies.run.deny");
}

TEST_F(DailyRole, CapabilityLimitedToAdminRole_RefusedOnDailyWithTheRule) {
  auto d = policy::DecideCapability(inv_, *inv_.Find("laptop"), "screen");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "policies.screen.roles");
  EXPECT_NE(d.reason.find("laptop is daily"), std::string::npos) << d.reason;
}

}  // namespace
}  // namespace labgate
