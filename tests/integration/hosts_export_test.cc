// `labgate hosts export` read back by Debian's ansible-core: what Ansible sees is what hosts.toml says.
#include <gtest/gtest.h>

#include <filesystem>

#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;

const char* kLab = R"(# the lab
[[hosts]]
id = "bastion"
address = "127.0.0.9"
port = 2222
user = "jump"

[[hosts]]
id = "web1"
address = "127.0.0.10"
user = "admin"
identity_file = "/etc/labgate/keys/web1"
proxy_jump = "bastion"
groups = ["servers", "web-servers"]
tags = ["prod"]
owner = "ops"
purpose = "the blog: \"quotes\", colons, # and {{ braces }}"

[[hosts]]
id = "nas"
address = "127.0.0.11"
groups = ["servers"]

[[nodes]]
id = "pi"
capabilities = ["run"]
)";

class HostsExport : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists("/usr/bin/ansible-inventory")) << "apt-get install ansible-core";
    config_ = dir_.Write("hosts.toml", kLab);
  }
  Completed Export(const std::string& format) {
    return RunToCompletion({LABGATE_BINARY, "hosts", "export", "--config", config_, "--format", format}, dir_.path());
  }
  // ansible-inventory --list of FILE, as JSON.
  Json AnsibleList(const std::string& file) {
    auto listed = RunToCompletion({"/usr/bin/env", "HOME=" + dir_.path(), "ANSIBLE_LOCAL_TEMP=" + dir_.path() + "/tmp",
                                   "ANSIBLE_INVENTORY_UNPARSED_FAILED=true", "/usr/bin/ansible-inventory", "--list", "-i",
                                   file},
                                  dir_.path());
    EXPECT_EQ(listed.status, 0) << listed.err;
    Json list = Json::parse(listed.out, nullptr, false);
    EXPECT_FALSE(list.is_discarded()) << listed.out << listed.err;
    return list;
  }
  static std::vector<std::string> Members(const Json& list, const std::string& group) {
    return list.contains(group) ? list[group].value("hosts", std::vector<std::string>{}) : std::vector<std::string>{};
  }

  TempDir dir_;
  std::string config_;
};

TEST_F(HostsExport, AnsibleReadsTheYamlAndTheJsonAsHostsTomlSaysAndNothingElse) {
  for (const std::string format : {"ansible-yaml", "ansible-json"}) {
    SCOPED_TRACE(format);
    auto exported = Export(format);
    ASSERT_EQ(exported.status, 0) << exported.err;
    EXPECT_NE(exported.err.find("1 node(s) left out (pi)"), std::string::npos) << exported.err;
    EXPECT_NE(exported.err.find("web-servers is exported as group web_servers"), std::string::npos) << exported.err;
    EXPECT_NE(exported.err.find("web1: labgate_purpose holds a Jinja delimiter"), std::string::npos) << exported.err;
    const std::string file = dir_.Write(format == "ansible-yaml" ? "inventory.yml" : "inventory.json", exported.out);

    Json list = AnsibleList(file);
    const Json& vars = list["_meta"]["hostvars"];
    EXPECT_EQ(vars.size(), 3u) << vars.dump(2);
    EXPECT_EQ(vars["web1"]["ansible_host"], "127.0.0.10");
    EXPECT_EQ(vars["web1"]["ansible_port"], 22);
    EXPECT_EQ(vars["web1"]["ansible_user"], "admin");
    EXPECT_EQ(vars["web1"]["ansible_ssh_private_key_file"], "/etc/labgate/keys/web1");
    EXPECT_EQ(vars["web1"]["ansible_ssh_common_args"], "-o ProxyJump=jump@127.0.0.9:2222");
    EXPECT_EQ(vars["web1"]["labgate_owner"], "ops");
    EXPECT_EQ(vars["web1"]["labgate_tags"], Json::array({"prod"}));
    EXPECT_FALSE(vars["web1"].contains("labgate_purpose"));
    EXPECT_EQ(vars["bastion"]["ansible_port"], 2222);
    EXPECT_FALSE(vars.contains("pi"));
    EXPECT_EQ(Members(list, "servers"), (std::vector<std::string>{"web1", "nas"}));
    EXPECT_EQ(Members(list, "web_servers"), std::vector<std::string>{"web1"});
    EXPECT_EQ(Members(list, "tag_prod"), std::vector<std::string>{"web1"});
    EXPECT_EQ(Members(list, "ungrouped"), std::vector<std::string>{"bastion"});
  }
}

TEST_F(HostsExport, AnUnknownFormatIsAUsageError) {
  auto exported = Export("csv");
  EXPECT_EQ(exported.status, 2);
  EXPECT_NE(exported.err.find("ansible-yaml or ansible-json"), std::string::npos) << exported.err;
  EXPECT_EQ(exported.out, "");
}

}  // namespace
}  // namespace labgate::testing
