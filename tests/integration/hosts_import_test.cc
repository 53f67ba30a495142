// `labgate hosts import` from a real-looking ~/.ssh/config (with Include and Match) and from an
// Ansible YAML inventory read by Debian's ansible-core, into a hosts.toml whose comments stay.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "inventory/inventory.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

const char* kHostsToml =
    "# my lab, by hand\n"
    "[[hosts]]\n"
    "id = \"nas\"  # the old one\n"
    "address = \"127.0.0.20\"\n";

class HostsImport : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() + "/home/.ssh/conf.d");
    config_ = dir_.Write("hosts.toml", kHostsToml);
  }
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/env", "HOME=" + dir_.path() + "/home",
                                     "ANSIBLE_LOCAL_TEMP=" + dir_.path() + "/tmp", LABGATE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--config", config_});
    return RunToCompletion(argv, dir_.path());
  }
  inventory::Inventory Loaded() {
    auto inv = inventory::ParseInventory(ReadFile(config_), config_, dir_.path());
    EXPECT_TRUE(inv.ok()) << (inv.ok() ? "" : inv.error().message);
    return inv.ok() ? *inv : inventory::Inventory{};
  }
  TempDir dir_;
  std::string config_;
};

TEST_F(HostsImport, FromSshConfig_KeepsTheFileAndSaysWhatItSkipped) {
  dir_.Write("home/.ssh/config",
             "Include conf.d/*\n"
             "Host web1 web2\n"
             "  HostName %h.example\n"
             "  User deploy\n"
             "Host nas\n"
             "  HostName 10.9.9.9\n"
             "Host *.lan\n"
             "  User lan\n"
             "Match host *.work\n"
             "  User worker\n"
             "Host bastion\n"
             "  HostName 127.0.0.30\n"
             "  Port 2222\n"
             "Host db\n"
             "  HostName 127.0.0.31\n"
             "  ProxyJump bastion\n"
             "  IdentityFile /etc/labgate/keys/db\n"
             "Host *\n"
             "  Port 22\n");
  dir_.Write("home/.ssh/conf.d/extra", "Host printer\n  HostName 127.0.0.40\n  IdentityFile ~/.ssh/printer\n");
  auto imported = Labgate({"hosts", "import", "--from-ssh-config"});
  ASSERT_EQ(imported.status, 0) << imported.out << imported.err;
  EXPECT_NE(imported.out.find("imported 5 host(s)"), std::string::npos) << imported.out;
  EXPECT_NE(imported.out.find("skipped: host nas: id 'nas' is already used"), std::string::npos) << imported.out;
  EXPECT_NE(imported.out.find("config:9: Match block skipped"), std::string::npos) << imported.out;

  const std::string text = ReadFile(config_);
  EXPECT_EQ(text.rfind(kHostsToml, 0), 0u) << "the existing lines changed:\n" << text;
  EXPECT_NE(text.find("# imported from " + dir_.path() + "/home/.ssh/conf.d/extra:1 (Host printer)"), std::string::npos)
      << text;
  auto inv = Loaded();
  ASSERT_NE(inv.Find("web2"), nullptr);
  EXPECT_EQ(inv.Find("web2")->address, "web2.example");
  EXPECT_EQ(inv.Find("web2")->user, "deploy");
  EXPECT_EQ(inv.Find("nas")->address, "127.0.0.20");  // not replaced
  EXPECT_EQ(inv.Find("bastion")->port, 2222);
  EXPECT_EQ(inv.Find("db")->proxy_jump, "bastion");
  EXPECT_EQ(inv.Find("db")->identity_file, "/etc/labgate/keys/db");
  EXPECT_EQ(inv.Find("printer")->address, "127.0.0.40");
  // ~ is the importing user's home, written out: the gateway's account has another.
  EXPECT_NE(text.find("identity_file = \"" + dir_.path() + "/home/.ssh/printer\""), std::string::npos) << text;
  EXPECT_EQ(inv.Find("worker"), nullptr);

  // --match narrows; a second import of the same hosts adds nothing and says why.
  auto again = Labgate({"hosts", "import", "--from-ssh-config", "--match", "web*"});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.out.find("imported 0 host(s)"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("host web1: id 'web1' is already used"), std::string::npos) << again.out;
  EXPECT_EQ(again.out.find("bastion"), std::string::npos) << again.out;
}

TEST_F(HostsImport, FromSshConfig_ABrokenFileChangesNothing) {
  const std::string bad = dir_.Write("bad_config", "Host a\n  User \"oops\n");
  auto imported = Labgate({"hosts", "import", "--from-ssh-config", bad});
  EXPECT_NE(imported.status, 0);
  EXPECT_NE(imported.err.find("bad_config:2: unterminated quote"), std::string::npos) << imported.err;
  EXPECT_EQ(ReadFile(config_), kHostsToml);
}

TEST_F(HostsImport, FromAnsible_HostsVariablesAndGroupsAsAnsibleResolvesThem) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/ansible-inventory")) << "apt-get install ansible-core";
  const std::string yaml = dir_.Write("inventory.yml",
                                      "all:\n"
                                      "  vars:\n"
                                      "    ansible_user: admin\n"
                                      "  children:\n"
                                      "    servers:\n"
                                      "      hosts:\n"
                                      "        app1:\n"
                                      "          ansible_host: 127.0.0.50\n"
                                      "          ansible_port: 2200\n"
                                      "          ansible_ssh_private_key_file: /etc/labgate/keys/app1\n"
                                      "        app2:\n"
                                      "          ansible_host: \"{{ lookup('env', 'APP2') }}\"\n"
                                      "        badport:\n"
                                      "          ansible_host: 127.0.0.53\n"
                                      "          ansible_port: 70000\n"
                                      "        secretive:\n"
                                      "          ansible_host: 127.0.0.52\n"
                                      "          ansible_become_password: hunter2\n"
                                      "    routers:\n"
                                      "      hosts:\n"
                                      "        app1: {}\n"
                                      "        switch:\n"
                                      "          ansible_connection: network_cli\n");
  auto imported = Labgate({"hosts", "import", "--from-ansible", yaml});
  ASSERT_EQ(imported.status, 0) << imported.out << imported.err;
  EXPECT_NE(imported.out.find("imported 2 host(s)"), std::string::npos) << imported.out;
  EXPECT_NE(imported.out.find("host app2: a connection variable is a Jinja template"), std::string::npos) << imported.out;
  EXPECT_NE(imported.out.find("host switch: ansible_connection is network_cli"), std::string::npos) << imported.out;
  // One bad value skips its host with the loader's reason; the others are still imported.
  EXPECT_NE(imported.out.find("skipped: host badport: "), std::string::npos) << imported.out;
  EXPECT_NE(imported.out.find("host secretive: ansible_become_password is not imported"), std::string::npos)
      << imported.out;
  const std::string text = ReadFile(config_);
  EXPECT_EQ(text.find("hunter2"), std::string::npos);
  auto inv = Loaded();
  ASSERT_NE(inv.Find("app1"), nullptr);
  EXPECT_EQ(inv.Find("app1")->address, "127.0.0.50");
  EXPECT_EQ(inv.Find("app1")->port, 2200);
  EXPECT_EQ(inv.Find("app1")->user, "admin");
  EXPECT_EQ(inv.Find("app1")->identity_file, "/etc/labgate/keys/app1");
  EXPECT_EQ(inv.Find("app1")->groups, (std::vector<std::string>{"routers", "servers"}));  // as Ansible lists them
  ASSERT_NE(inv.Find("secretive"), nullptr);
  EXPECT_EQ(inv.Find("app2"), nullptr);
  EXPECT_EQ(inv.Find("badport"), nullptr);
}

TEST_F(HostsImport, ExportThenImportGivesTheSameHosts) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/ansible-inventory")) << "apt-get install ansible-core";
  config_ = dir_.Write("hosts.toml",
                       "[[hosts]]\nid = \"a\"\naddress = \"127.0.0.60\"\nport = 2201\nuser = \"u\"\n"
                       "identity_file = \"/k/a\"\ngroups = [\"g1\", \"g2\"]\ntags = [\"prod\"]\n"
                       "owner = \"ops\"\npurpose = \"the app\"\nrole = \"daily\"\n\n"
                       "[[hosts]]\nid = \"b\"\naddress = \"127.0.0.61\"\nproxy_jump = \"a\"\ngroups = [\"g1\"]\n");
  auto exported = Labgate({"hosts", "export"});
  ASSERT_EQ(exported.status, 0) << exported.err;
  const std::string inventory = dir_.Write("exported.yml", exported.out);
  config_ = dir_.Write("fresh.toml", "# fresh\n");
  auto imported = Labgate({"hosts", "import", "--from-ansible", inventory});
  ASSERT_EQ(imported.status, 0) << imported.out << imported.err;
  auto inv = Loaded();
  ASSERT_NE(inv.Find("a"), nullptr);
  ASSERT_NE(inv.Find("b"), nullptr);
  EXPECT_EQ(inv.Find("a")->port, 2201);
  EXPECT_EQ(inv.Find("a")->user, "u");
  EXPECT_EQ(inv.Find("a")->identity_file, "/k/a");
  EXPECT_EQ(inv.Find("a")->groups, (std::vector<std::string>{"g1", "g2"}));
  EXPECT_EQ(inv.Find("a")->tags, std::vector<std::string>{"prod"});  // not also a group tag_prod
  EXPECT_EQ(inv.Find("a")->owner, "ops");
  EXPECT_EQ(inv.Find("a")->purpose, "the app");
  EXPECT_EQ(inv.Find("a")->role, "daily");
  EXPECT_EQ(inv.Find("b")->proxy_jump, "u@127.0.0.60:2201");  // the jump, resolved to where it goes
  EXPECT_EQ(inv.Find("b")->port, 22);
}

}  // namespace
}  // namespace labgate::testing
