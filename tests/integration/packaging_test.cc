// packaging/system: the units systemd would load, the accounts systemd-sysusers would create, and
// the example hosts.toml of the service setup, checked with the real tools.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "inventory/inventory.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

const std::string kSystem = std::string(LABGATE_SOURCE_DIR) + "/packaging/system";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

TEST(Packaging, SystemUnitsVerify) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/systemd-analyze")) << "systemd-analyze is missing (apt install systemd)";
  TempDir dir;
  std::vector<std::string> argv = {"/usr/bin/systemd-analyze", "verify", "--man=no"};
  for (const char* unit : {"labgate-gateway.service", "labgate-runner.service"}) {
    // The units name the installed binary; this build's stands in for it.
    argv.push_back(dir.Write(unit, Replace(ReadFile(kSystem + "/" + unit), "/usr/bin/labgate", LABGATE_BINARY)));
  }
  auto verified = RunToCompletion(argv, dir.path());
  EXPECT_EQ(verified.status, 0) << verified.out << verified.err;
  EXPECT_EQ(verified.err, "") << "systemd-analyze has warnings about the units";
}

TEST(Packaging, UnitsRunTheGatewayAndCommandsUnderSeparateAccounts) {
  const std::string gateway = ReadFile(kSystem + "/labgate-gateway.service");
  const std::string runner = ReadFile(kSystem + "/labgate-runner.service");
  EXPECT_NE(gateway.find("\nUser=labgate\n"), std::string::npos);
  EXPECT_NE(gateway.find("\nExecStart=/usr/bin/labgate gateway --config /etc/labgate/hosts.toml\n"), std::string::npos);
  EXPECT_NE(gateway.find("\nStateDirectory=labgate\n"), std::string::npos);
  EXPECT_NE(gateway.find("\nProtectSystem=strict\n"), std::string::npos) << "the gateway must not write /etc/labgate";
  EXPECT_NE(runner.find("\nUser=labgate-run\n"), std::string::npos);
  EXPECT_NE(runner.find("\nExecStart=/usr/bin/labgate node run --state-dir /var/lib/labgate-run\n"), std::string::npos);
}

TEST(Packaging, SysusersCreatesTheAccounts) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/systemd-sysusers")) << "systemd-sysusers is missing (apt install systemd)";
  TempDir root;
  std::filesystem::create_directories(root.path() + "/etc");
  auto made = RunToCompletion({"/usr/bin/systemd-sysusers", "--root=" + root.path(), kSystem + "/labgate.sysusers"});
  ASSERT_EQ(made.status, 0) << made.out << made.err;
  const std::string passwd = ReadFile(root.path() + "/etc/passwd");
  const std::string group = ReadFile(root.path() + "/etc/group");
  EXPECT_TRUE(std::regex_search(passwd, std::regex("(^|\n)labgate:x:\\d+:\\d+:[^:]*:/var/lib/labgate:/usr/sbin/nologin\n")))
      << passwd;
  EXPECT_TRUE(std::regex_search(passwd, std::regex("(^|\n)labgate-run:x:\\d+:\\d+:[^:]*:/var/lib/labgate-run:/bin/sh\n")))
      << passwd;
  EXPECT_TRUE(std::regex_search(group, std::regex("(^|\n)labgate-ops:x:\\d+:\n"))) << group;
}

TEST(Packaging, ExampleHostsTomlLoadsAndKeepsTheAccountsApart) {
  // This machine has no labgate accounts: Debian's nobody and nogroup stand in for them.
  const std::string text = Replace(Replace(ReadFile(kSystem + "/hosts.toml"), "group:labgate-ops", "group:root"),
                                   "\"labgate-run\"", "\"nobody\"");
  auto inv = inventory::ParseInventory(text, "packaging/system/hosts.toml", "/etc/labgate");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->Find("local"), nullptr);
  EXPECT_EQ(inv->gateway.state_dir, "/var/lib/labgate");
  EXPECT_EQ(inv->gateway.command_user, "nobody");
  ASSERT_NE(inv->Find("this-server"), nullptr);
  // The same file with the command account made an operator does not load.
  auto merged = inventory::ParseInventory(Replace(text, "group:root", "nobody"), "hosts.toml", "/etc/labgate");
  ASSERT_FALSE(merged.ok());
  EXPECT_NE(merged.error().message.find("is also listed in gateway.operators"), std::string::npos);
}

}  // namespace
}  // namespace labgate::testing
