// DescribeChanges: what a reload put in force, in the words of the audit record.
#include "inventory/diff.h"

#include <gtest/gtest.h>

namespace labgate::inventory {
namespace {

Inventory Parse(const std::string& text) {
  auto inv = ParseInventory(text, "hosts.toml", "/");
  EXPECT_TRUE(inv) << inv.error().message;
  return inv ? *inv : Inventory{};
}

const char* kBase =
    "[policies.run]\nmode = \"confirm-destructive\"\nallow = [\"df -h*\"]\n\n"
    "[groups.lab]\ndeny = [\"nc -l*\"]\n\n"
    "[classify]\nread_only = [\"pihole status\"]\n\n"
    "[policies.camera]\nenabled = false\n\n"
    "[[hosts]]\nid = \"box\"\naddress = \"10.0.0.4\"\ngroups = [\"lab\"]\n\n"
    "[[nodes]]\nid = \"phone\"\ncapabilities = [\"run\"]\nrole = \"daily\"\n";

TEST(InventoryDiff, SameFileReformatted_NoChanges) {
  const std::string reordered =
      "# a comment\n[[nodes]]\nid = \"phone\"\nrole = \"daily\"\ncapabilities = [\"run\"]\n\n"
      "[[hosts]]\nid = \"box\"\ngroups = [\"lab\"]\naddress = \"10.0.0.4\"\n\n"
      "[policies.camera]\nenabled = false\n\n"
      "[classify]\nread_only = [\"pihole status\"]\n\n"
      "[groups.lab]\ndeny = [\"nc -l*\"]\n\n"
      "[policies.run]\nallow = [\"df -h*\"]\nmode = \"confirm-destructive\"\n";
  EXPECT_TRUE(DescribeChanges(Parse(kBase), Parse(reordered)).empty());
}

TEST(InventoryDiff, LooseningThePolicy_IsSpelledOut) {
  std::string loose = kBase;
  loose.replace(loose.find("confirm-destructive"), 19, "full");
  loose.replace(loose.find("[\"df -h*\"]"), 10, "[\"df -h*\", \"rm -rf *\"]");
  loose.replace(loose.find("deny = [\"nc -l*\"]"), 17, "deny = []");
  loose.replace(loose.find("read_only = [\"pihole status\"]"), 29, "read_only = [\"rm *\"]");
  loose.replace(loose.find("enabled = false"), 15, "enabled = true");
  loose.replace(loose.find("role = \"daily\""), 14, "role = \"admin\"");
  const auto changes = DescribeChanges(Parse(kBase), Parse(loose));
  const std::vector<std::string> expected = {
      "policies.run.mode: confirm-destructive -> full",
      "+ policies.run.allow \"rm -rf *\"",
      "+ classify \"read-only rm *\"",
      "- groups.lab.deny \"nc -l*\"",
      "policies.camera.enabled: false -> true",
      "targets.phone.role: daily -> admin",
      "- classify \"read-only pihole status\"",  // narrows: after everything that widens
  };
  EXPECT_EQ(changes, expected);
}

TEST(InventoryDiff, TargetsAddedRemovedAndChanged) {
  std::string next = kBase;
  next.replace(next.find("10.0.0.4"), 8, "10.0.0.5");
  next.replace(next.find("[[nodes]]\nid = \"phone\"\ncapabilities = [\"run\"]\nrole = \"daily\"\n"),
               std::string("[[nodes]]\nid = \"phone\"\ncapabilities = [\"run\"]\nrole = \"daily\"\n").size(),
               "[[nodes]]\nid = \"desk\"\ncapabilities = [\"run\", \"screen\"]\n");
  const auto changes = DescribeChanges(Parse(kBase), Parse(next));
  const std::vector<std::string> expected = {
      "+ target desk (node, role admin)",
      "+ targets.desk.capabilities \"run\"",
      "+ targets.desk.capabilities \"screen\"",
      "- target phone (node, role daily)",
      "targets.box.address: 10.0.0.4 -> 10.0.0.5",
  };
  EXPECT_EQ(changes, expected);
}

TEST(InventoryDiff, ManyChanges_AreCappedWithACount) {
  std::string next = kBase;
  std::string allow = "[\"df -h*\"";
  for (int i = 0; i < 100; ++i) allow += ", \"cmd" + std::to_string(i) + "\"";
  next.replace(next.find("[\"df -h*\"]"), 10, allow + "]");
  const auto changes = DescribeChanges(Parse(kBase), Parse(next), 10);
  ASSERT_EQ(changes.size(), 10u);
  EXPECT_EQ(changes.back(), "... and 91 more changes");
}

TEST(InventoryDiff, WideningChangesComeFirst_SoACapCannotHideThem) {
  // Forty harmless-looking classify removals and one mode change: the mode change leads.
  std::string before = "[classify]\nread_only = [";
  for (int i = 0; i < 45; ++i) before += std::string(i ? ", " : "") + "\"tool" + std::to_string(i) + " status\"";
  before += "]\n";
  const std::string after = "[policies.run]\nmode = \"full\"\n\n[gateway]\noperators = [\"root\"]\n";
  const auto all = DescribeChanges(Parse(before), Parse(after));
  ASSERT_EQ(all.size(), 47u);
  const auto capped = DescribeChanges(Parse(before), Parse(after), 5);
  ASSERT_EQ(capped.size(), 5u);
  EXPECT_EQ(capped[0], "+ gateway.operators \"root\"");
  EXPECT_EQ(capped[1], "policies.run.mode: (unset) -> full");
  EXPECT_EQ(capped.back(), "... and 43 more changes");
}

TEST(InventoryDiff, NewTargetsBringTheirOwnRules) {
  const auto changes = DescribeChanges(
      Parse(""), Parse("[[hosts]]\nid = \"nas\"\naddress = \"10.0.0.9\"\nmode = \"full\"\nallow = [\"reboot\"]\n"
                       "tags = [\"prod\"]\n"));
  const std::vector<std::string> expected = {"+ target nas (host, role admin, 10.0.0.9)",
                                             "+ targets.nas.capabilities \"run\"", "targets.nas.mode: (unset) -> full",
                                             "+ targets.nas.allow \"reboot\"", "+ targets.nas.tags \"prod\""};
  EXPECT_EQ(changes, expected);
}

}  // namespace
}  // namespace labgate::inventory
