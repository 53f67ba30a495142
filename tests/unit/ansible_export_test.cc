#include "inventory/ansible_export.h"

#include <gtest/gtest.h>

namespace labgate::inventory {
namespace {

using Json = nlohmann::ordered_json;

Inventory Load(const std::string& text) {
  auto inv = ParseInventory(text, "hosts.toml", "/etc/labgate");
  EXPECT_TRUE(inv.ok()) << (inv.ok() ? "" : inv.error().message);
  return inv.ok() ? std::move(*inv) : Inventory{};
}

bool Noted(const AnsibleExport& out, const std::string& part) {
  for (const auto& note : out.notes) {
    if (note.find(part) != std::string::npos) return true;
  }
  return false;
}

const char* kLab = R"(
[[hosts]]
id = "bastion"
address = "203.0.113.7"
port = 2222
user = "jump"

[[hosts]]
id = "web1"
address = "10.0.0.5"
user = "admin"
identity_file = "keys/web1"
proxy_jump = "bastion"
groups = ["servers", "web-servers"]
tags = ["prod"]
owner = "ops"
purpose = "the blog"
sudo_password_env = "WEB1_SUDO"

[[hosts]]
id = "nas"
address = "fd00::5"
groups = ["servers"]
role = "daily"

[[nodes]]
id = "pi"
capabilities = ["run"]
)";

TEST(AnsibleExport, HostsGroupsAndConnectionVariables) {
  auto out = ExportAnsible(Load(kLab));
  const Json& hosts = out.inventory["all"]["hosts"];
  ASSERT_EQ(hosts.size(), 3u);
  const Json& web1 = hosts["web1"];
  EXPECT_EQ(web1["ansible_host"], "10.0.0.5");
  EXPECT_EQ(web1["ansible_port"], 22);
  EXPECT_EQ(web1["ansible_user"], "admin");
  EXPECT_EQ(web1["ansible_ssh_private_key_file"], "/etc/labgate/keys/web1");
  EXPECT_EQ(web1["ansible_ssh_common_args"], "-o ProxyJump=jump@203.0.113.7:2222");
  EXPECT_EQ(web1["labgate_owner"], "ops");
  EXPECT_EQ(web1["labgate_purpose"], "the blog");
  EXPECT_EQ(web1["labgate_tags"], Json::array({"prod"}));
  EXPECT_EQ(hosts["nas"]["labgate_role"], "daily");
  EXPECT_FALSE(hosts["nas"].contains("ansible_user"));
  const Json& children = out.inventory["all"]["children"];
  EXPECT_EQ(children["servers"]["hosts"], (Json{{"web1", Json::object()}, {"nas", Json::object()}}));
  EXPECT_EQ(children["web_servers"]["hosts"], (Json{{"web1", Json::object()}}));
  EXPECT_EQ(children["tag_prod"]["hosts"], (Json{{"web1", Json::object()}}));
  EXPECT_TRUE(Noted(out, "group web-servers is exported as group web_servers"));
  EXPECT_FALSE(Noted(out, "group servers"));
}

TEST(AnsibleExport, NodesAndSecretsStayOut) {
  auto out = ExportAnsible(Load(kLab));
  EXPECT_FALSE(out.inventory["all"]["hosts"].contains("pi"));
  EXPECT_FALSE(out.inventory["all"]["hosts"].contains("local"));
  EXPECT_TRUE(Noted(out, "1 node(s) left out (pi)"));
  EXPECT_TRUE(Noted(out, "host web1: its password and passphrase references are not exported"));
  EXPECT_EQ(out.inventory.dump().find("WEB1_SUDO"), std::string::npos);
}

TEST(AnsibleExport, ReservedAndCollidingGroupNamesAreNoted) {
  auto out = ExportAnsible(Load("[[hosts]]\nid = \"a\"\naddress = \"10.0.0.1\"\ngroups = [\"all\", \"x-y\", \"x_y\", \"9lives\"]\n"));
  const Json& children = out.inventory["all"]["children"];
  EXPECT_FALSE(children.contains("all"));
  EXPECT_TRUE(Noted(out, "'all' is a group Ansible reserves"));
  EXPECT_TRUE(children.contains("x_y"));
  EXPECT_TRUE(Noted(out, "are both exported as group x_y"));
  EXPECT_TRUE(children.contains("_9lives"));
}

TEST(AnsibleExport, AValueAnsibleWouldTemplateIsNotExported) {
  // Ansible evaluates Jinja in variables it uses: this would run `id` on the controller.
  auto out = ExportAnsible(Load("[[hosts]]\nid = \"a\"\naddress = \"10.0.0.1\"\n"
                                "purpose = \"{{ lookup('pipe', 'id') }}\"\ndevice = \"{% raw %}\"\n"
                                "tags = [\"ok\"]\nowner = \"ops { not a template }\"\n"));
  const Json& a = out.inventory["all"]["hosts"]["a"];
  EXPECT_FALSE(a.contains("labgate_purpose"));
  EXPECT_FALSE(a.contains("labgate_device"));
  EXPECT_EQ(a["labgate_tags"], Json::array({"ok"}));  // tags are names: they cannot hold a template
  EXPECT_EQ(a["labgate_owner"], "ops { not a template }");
  EXPECT_TRUE(Noted(out, "host a: labgate_purpose holds a Jinja delimiter"));
  EXPECT_EQ(out.inventory.dump().find("lookup"), std::string::npos);
}

// Built directly: the loader may refuse some of these values, the export must not rely on it.
Target HostTarget(const std::string& id, const std::string& address) {
  Target t;
  t.id = id;
  t.kind = TargetKind::kHost;
  t.address = address;
  return t;
}

TEST(AnsibleExport, NothingCanBecomeAnExtraSshOptionOnTheAnsibleMachine) {
  // Ansible splits ansible_ssh_common_args like a shell and passes the host to ssh as a word.
  Inventory inv;
  Target jump = HostTarget("bastion", "10.0.0.1");
  jump.user = "u -oKnownHostsCommand=/tmp/x";
  jump.identity_file = "/k/bastion";
  Target via = HostTarget("db", "10.0.0.2");
  via.proxy_jump = "bastion";
  Target spaced = HostTarget("web", "10.0.0.3");
  spaced.proxy_jump = "j@h -oProxyCommand=sh";
  Target dashed = HostTarget("evil", "-oProxyCommand=sh");
  Target quoted = HostTarget("q", "10.0.0.4");
  quoted.user = "a'b";
  Target fine = HostTarget("ok", "10.0.0.5");
  fine.proxy_jump = "db";
  inv.targets = {jump, via, spaced, dashed, quoted, fine};
  auto out = ExportAnsible(inv);
  const Json& hosts = out.inventory["all"]["hosts"];
  EXPECT_FALSE(hosts.contains("evil"));
  EXPECT_TRUE(Noted(out, "host evil: its address is not one plain word"));
  EXPECT_FALSE(hosts["bastion"].contains("ansible_user"));
  EXPECT_FALSE(hosts["db"].contains("ansible_ssh_common_args"));  // the jump would carry bastion's user
  EXPECT_FALSE(hosts["web"].contains("ansible_ssh_common_args"));
  EXPECT_TRUE(Noted(out, "host web: its jump (j@h -oProxyCommand=sh) is not one plain word"));
  EXPECT_FALSE(hosts["q"].contains("ansible_user"));
  EXPECT_EQ(hosts["ok"]["ansible_ssh_common_args"], "-o ProxyJump=10.0.0.2");
  EXPECT_EQ(out.inventory.dump().find("ProxyCommand"), std::string::npos);
  EXPECT_EQ(out.inventory.dump().find("KnownHostsCommand"), std::string::npos);
}

TEST(AnsibleExport, TheJumpHostsKeyIsNotedAsNotCarriedOver) {
  Inventory inv;
  Target jump = HostTarget("bastion", "10.0.0.1");
  jump.identity_file = "/k/bastion";
  Target via = HostTarget("db", "10.0.0.2");
  via.proxy_jump = "bastion";
  inv.targets = {jump, via};
  inv.Reindex();
  auto out = ExportAnsible(inv);
  EXPECT_EQ(out.inventory["all"]["hosts"]["db"]["ansible_ssh_common_args"], "-o ProxyJump=10.0.0.1");
  EXPECT_TRUE(Noted(out, "labgate reaches its jump host bastion with /k/bastion"));
}

TEST(AnsibleExport, AnEmptyInventoryIsStillAnInventory) {
  auto out = ExportAnsible(Load(""));
  EXPECT_EQ(ToYaml(out.inventory), "---\nall:\n  hosts: {}\n");
}

TEST(Yaml, BlockStyleWithQuotedStrings) {
  Json value = {{"all", {{"hosts", {{"web1", {{"ansible_port", 22}, {"labgate_tags", {"a", "b"}}}}}},
                         {"children", {{"g", {{"hosts", {{"web1", Json::object()}}}}}}}}}};
  EXPECT_EQ(ToYaml(value),
            "---\n"
            "all:\n"
            "  hosts:\n"
            "    web1:\n"
            "      ansible_port: 22\n"
            "      labgate_tags:\n"
            "        - \"a\"\n"
            "        - \"b\"\n"
            "  children:\n"
            "    g:\n"
            "      hosts:\n"
            "        web1: {}\n");
}

TEST(Yaml, KeysYamlWouldReadAsBooleansOrNullAreQuotedInAnyCase) {
  Json value = {{"True", 1}, {"NULL", 2}, {"Off", 3}, {"y", 4}, {"web1", 5}, {"Yesterday", 6}};
  EXPECT_EQ(ToYaml(value), "---\n\"True\": 1\n\"NULL\": 2\n\"Off\": 3\n\"y\": 4\nweb1: 5\nYesterday: 6\n");
}

TEST(Yaml, CharactersYamlRefusesRawAreEscaped) {
  Json value = {{"k", "del\x7f c1\xc2\x85\xc2\x9f ok\xc3\xa9"}};
  EXPECT_EQ(ToYaml(value), "---\nk: \"del\\u007f c1\\u0085\\u009f ok\xc3\xa9\"\n");
}

TEST(Yaml, HostileStringsStayOneQuotedScalar) {
  Json value = {{"yes", "no"},
                {"a: b", "line\nbreak: x"},
                {"- item", "\"quoted\" \\ #comment"},
                {"123", "{{ lookup('pipe', 'id') }}"}};
  EXPECT_EQ(ToYaml(value),
            "---\n"
            "\"yes\": \"no\"\n"
            "\"a: b\": \"line\\nbreak: x\"\n"
            "\"- item\": \"\\\"quoted\\\" \\\\ #comment\"\n"
            "\"123\": \"{{ lookup('pipe', 'id') }}\"\n");
}

}  // namespace
}  // namespace labgate::inventory
