#include "inventory/inventory.h"

#include <gtest/gtest.h>

#include "inventory/selector.h"

namespace labgate::inventory {
namespace {

core::Result<Inventory> Parse(const std::string& text) { return ParseInventory(text, "hosts.toml", "/etc/labgate"); }

std::string ErrorOf(const std::string& text) {
  auto inv = Parse(text);
  EXPECT_FALSE(inv.ok()) << "expected an error for:\n" << text;
  return inv.ok() ? "" : inv.error().message;
}

TEST(Inventory, EmptyFileGivesOnlyLocal) {
  auto inv = Parse("");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  ASSERT_EQ(inv->targets.size(), 1u);
  EXPECT_EQ(inv->targets[0].id, "local");
  EXPECT_TRUE(inv->targets[0].HasCapability("run"));
  EXPECT_EQ(inv->gateway.default_timeout_ms, 20000);
}

TEST(Inventory, FullExampleLoads) {
  auto inv = Parse(R"(
[gateway]
listen = "127.0.0.1:7022"
state_dir = "state"
default_timeout_ms = 5000

[policies.camera]
enabled = true
approved_nodes = ["phone-node"]

[[hosts]]
id = "prox4"
address = "10.0.0.4"
port = 2222
user = "ops"
identity_file = "keys/id_ed25519"
groups = ["servers"]
tags = ["proxmox"]
device = "Proxmox node 4"
owner = "homelab"
purpose = "hypervisor"

[[nodes]]
id = "phone-node"
device = "Pixel 8"
capabilities = ["camera", "location"]
)");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->gateway.state_dir, "/etc/labgate/state");
  EXPECT_EQ(inv->gateway.audit_log, "/etc/labgate/state/audit.jsonl");
  EXPECT_EQ(inv->gateway.default_timeout_ms, 5000);
  const Target* prox = inv->Find("prox4");
  ASSERT_NE(prox, nullptr);
  EXPECT_EQ(prox->kind, TargetKind::kHost);
  EXPECT_EQ(prox->port, 2222);
  EXPECT_EQ(prox->identity_file, "/etc/labgate/keys/id_ed25519");
  EXPECT_EQ(prox->groups, std::vector<std::string>{"servers"});
  EXPECT_EQ(prox->line, 11);
  const Target* phone = inv->Find("phone-node");
  ASSERT_NE(phone, nullptr);
  EXPECT_EQ(phone->kind, TargetKind::kNode);
  EXPECT_TRUE(phone->HasCapability("camera"));
  ASSERT_NE(inv->Policy("camera"), nullptr);
  EXPECT_EQ(inv->Policy("camera")->approved_nodes->at(0), "phone-node");
}

TEST(Inventory, UnknownKeyNamesFileLineAndKey) {
  std::string e = ErrorOf("[gateway]\nlisten = \"127.0.0.1:7022\"\ntimeout = 5\n");
  EXPECT_NE(e.find("hosts.toml:3: gateway.timeout: unknown key"), std::string::npos) << e;
}

TEST(Inventory, WrongTypeNamesFileLineAndKey) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\nport = \"22\"\n");
  EXPECT_NE(e.find("hosts.toml:4: hosts[0].port: must be an integer"), std::string::npos) << e;
}

TEST(Inventory, DuplicateIdsNameBothLines) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\n\n[[nodes]]\nid = \"a\"\n");
  EXPECT_NE(e.find("hosts.toml:6: nodes[0].id: duplicate id 'a' (first declared on line 1)"), std::string::npos) << e;
}

TEST(Inventory, LocalIsReserved) {
  std::string e = ErrorOf("[[nodes]]\nid = \"local\"\n");
  EXPECT_NE(e.find("hosts.toml:2: nodes[0].id: 'local' is the built-in target"), std::string::npos) << e;
}

TEST(Inventory, BadNamesAreRefused) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\ngroups = [\"ok\", \"bad group\"]\n");
  EXPECT_NE(e.find("hosts.toml:4: hosts[0].groups: 'bad group' is not a valid name"), std::string::npos) << e;
}

TEST(Inventory, PolicyNamingUnknownTargetIsRefused) {
  std::string e = ErrorOf("[policies.camera]\napproved_nodes = [\"phnoe\"]\n");
  EXPECT_NE(e.find("hosts.toml:2: policies.camera.approved_nodes: unknown target 'phnoe'"), std::string::npos) << e;
}

TEST(Inventory, PolicyListingHostAsNodeIsRefused) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\n[policies.run]\napproved_nodes = [\"a\"]\n");
  EXPECT_NE(e.find("'a' is an SSH host (list it in approved_hosts)"), std::string::npos) << e;
}

TEST(Inventory, UnknownCapabilityIsRefused) {
  std::string e = ErrorOf("[[nodes]]\nid = \"n\"\ncapabilities = [\"teleport\"]\n");
  EXPECT_NE(e.find("hosts.toml:3: nodes[0].capabilities: unknown capability 'teleport'"), std::string::npos) << e;
}

TEST(Inventory, InlineSecretsAreRefusedWithTheAlternative) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\npassword = \"hunter2\"\n");
  EXPECT_NE(e.find("hosts.toml:4: hosts[0].password: secrets never go in hosts.toml; use password_env"),
            std::string::npos)
      << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << "the secret itself must not be echoed";
}

TEST(Inventory, MissingAddressIsRefused) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\n");
  EXPECT_NE(e.find("hosts[0].address: missing"), std::string::npos) << e;
}

TEST(Inventory, OutOfRangeNumbersAreRefused) {
  std::string e = ErrorOf("[gateway]\ndefault_timeout_ms = 0\n");
  EXPECT_NE(e.find("hosts.toml:2: gateway.default_timeout_ms: must be between 1 and"), std::string::npos) << e;
}

TEST(Inventory, AuditMaxBytesDefaultsTo64MiBAndRefusesTinyValues) {
  auto defaults = Parse("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->gateway.audit_max_bytes, 64LL * 1024 * 1024);
  auto set = Parse("[gateway]\naudit_max_bytes = 1048576\n");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->gateway.audit_max_bytes, 1048576);
  for (const char* bad : {"0", "4095", "-1"}) {
    std::string e = ErrorOf(std::string("[gateway]\naudit_max_bytes = ") + bad + "\n");
    EXPECT_NE(e.find("hosts.toml:2: gateway.audit_max_bytes: must be between 4096 and"), std::string::npos) << e;
  }
}

TEST(Inventory, TomlSyntaxErrorNamesLine) {
  std::string e = ErrorOf("[gateway]\nlisten = \n");
  EXPECT_NE(e.find("hosts.toml:2:"), std::string::npos) << e;
}

TEST(Inventory, AllProblemsAreReportedAtOnce) {
  std::string e = ErrorOf("[gateway]\nbogus = 1\n[[hosts]]\nid = \"a\"\naddress = \"x\"\nport = 0\n");
  EXPECT_NE(e.find("2 problems"), std::string::npos) << e;
}

TEST(Inventory, LocalCanBeDisabled) {
  auto inv = Parse("[local]\nenabled = false\n");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->Find("local"), nullptr);
}

TEST(Inventory, BundledExampleLoadsAndLocalWorks) {
  auto inv = LoadInventory(std::string(LABGATE_SOURCE_DIR) + "/hosts.toml");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  ASSERT_NE(inv->Find("local"), nullptr);
  EXPECT_TRUE(inv->Find("local")->HasCapability("run"));
}

TEST(Selector, ResolvesIdsGroupsTagsAndStar) {
  auto inv = Parse(R"(
[[hosts]]
id = "a"
address = "x"
groups = ["servers"]
[[hosts]]
id = "b"
address = "y"
groups = ["servers"]
tags = ["nas"]
)");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  auto ids = [&](std::vector<std::string> sel) {
    std::vector<std::string> out;
    auto r = Resolve(*inv, sel);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (r.ok()) {
      for (const auto* t : *r) out.push_back(t->id);
    }
    return out;
  };
  EXPECT_EQ(ids({"a"}), (std::vector<std::string>{"a"}));
  EXPECT_EQ(ids({"group:servers"}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ids({"tag:nas", "b"}), (std::vector<std::string>{"b"}));
  EXPECT_EQ(ids({"*"}), (std::vector<std::string>{"local", "a", "b"}));
}

TEST(Selector, UnknownTargetListsKnownOnes) {
  Inventory inv = DefaultInventory();
  auto r = Resolve(inv, {"prox9"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "unknown target 'prox9': known targets are local (see `labgate targets`)");
}

TEST(Selector, MalformedSelectorsAreRefused) {
  EXPECT_FALSE(ValidateSelector("group:").ok());
  EXPECT_FALSE(ValidateSelector("rm -rf").ok());
  EXPECT_FALSE(ValidateSelector("tag:a;b").ok());
  EXPECT_TRUE(ValidateSelector("tag:a.b").ok());
  EXPECT_FALSE(Resolve(DefaultInventory(), {"group:nope"}).ok());
}

}  // namespace
}  // namespace labgate::inventory
