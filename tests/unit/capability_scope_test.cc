#include "policy/capability_scope.h"

#include <gtest/gtest.h>

namespace labgate::policy {
namespace {

inventory::Inventory Load(const std::string& text) {
  auto inv = inventory::ParseInventory(text, "hosts.toml", "/");
  EXPECT_TRUE(inv.ok()) << (inv.ok() ? "" : inv.error().message);
  return inv.ok() ? *inv : inventory::DefaultInventory();
}

struct Case {
  const char* name;
  const char* toml;
  const char* target;
  const char* capability;
  bool allowed;
  const char* rule;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class CapabilityScopeTable : public ::testing::TestWithParam<Case> {};

TEST_P(CapabilityScopeTable, Decides) {
  const Case& c = GetParam();
  auto inv = Load(c.toml);
  const auto* target = inv.Find(c.target);
  ASSERT_NE(target, nullptr);
  Decision d = DecideCapability(inv, *target, c.capability);
  EXPECT_EQ(d.allowed, c.allowed) << d.reason;
  EXPECT_EQ(d.rule, c.rule) << d.reason;
  EXPECT_FALSE(d.reason.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Policy, CapabilityScopeTable,
    ::testing::Values(
        Case{"LocalRunsByDefault", "", "local", "run", true, "targets.local.capabilities"},
        Case{"TargetMustListCapability", "", "local", "camera", false, "targets.local.capabilities"},
        Case{"DisabledPolicyDenies", "[policies.run]\nenabled = false\n", "local", "run", false, "policies.run.enabled"},
        Case{"ApprovedListAdmits", "[[nodes]]\nid = \"phone\"\ncapabilities = [\"camera\"]\n[policies.camera]\napproved_nodes = [\"phone\"]\n",
             "phone", "camera", true, "policies.camera"},
        Case{"ApprovedListExcludesOthers",
             "[[nodes]]\nid = \"phone\"\ncapabilities = [\"camera\"]\n[[nodes]]\nid = \"tablet\"\ncapabilities = [\"camera\"]\n"
             "[policies.camera]\napproved_nodes = [\"phone\"]\n",
             "tablet", "camera", false, "policies.camera.approved_nodes"},
        Case{"ApprovalDoesNotAddCapability", "[[nodes]]\nid = \"phone\"\ncapabilities = [\"run\"]\n[policies.camera]\napproved_nodes = [\"phone\"]\n",
             "phone", "camera", false, "targets.phone.capabilities"},
        Case{"DenyWinsOverCapabilityList", "[local]\ncapabilities = [\"run\"]\n[policies.run]\nenabled = false\n", "local",
             "run", false, "policies.run.enabled"},
        Case{"HostsUseApprovedHosts",
             "[[hosts]]\nid = \"nas\"\naddress = \"x\"\n[policies.run]\napproved_hosts = []\n", "nas", "run", false,
             "policies.run.approved_hosts"}),
    [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(CapabilityScope, RefusalSaysHowToChangeIt) {
  auto inv = Load("[policies.run]\nenabled = false\n");
  Decision d = DecideCapability(inv, *inv.Find("local"), "run");
  EXPECT_NE(d.reason.find("enabled = false in hosts.toml:1"), std::string::npos) << d.reason;
}

}  // namespace
}  // namespace labgate::policy
