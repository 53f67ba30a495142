// `labgate hosts add|remove|set` as real processes on a commented hosts.toml.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;

void ReplaceLine(std::string& text, const std::string& starts_with, const std::string& line) {
  const auto at = text.find("\n" + starts_with);
  ASSERT_NE(at, std::string::npos) << starts_with;
  const auto end = text.find('\n', at + 1);
  text.replace(at + 1, end - at - 1, line);
}

const std::string kProx =
    "# The hypervisor in the rack.\n"
    "[[hosts]]\n"
    "id = \"prox4\"\n"
    "address = \"127.0.0.4\"   # the lab LAN\n"
    "port = 22\n"
    "groups = [\n"
    "  \"servers\",   # main group\n"
    "]\n"
    "[hosts.screen]\n"
    "backend = \"x11\"\n"
    "display = \":0\"\n";
const std::string kNode =
    "# Paired devices.\n"
    "[[nodes]]\n"
    "id = \"phone-node\"\n"
    "device = \"Pixel 8\"\n";

class HostsEdit : public ::testing::Test {
 protected:
  void SetUp() override {
    // The bundled, commented hosts.toml with its state in the test's directory, plus live entries.
    repo_ = ReadFile(LABGATE_SOURCE_DIR "/hosts.toml");
    ReplaceLine(repo_, "state_dir = ", "state_dir = \"" + dir_.path() + "/state\"");
    ReplaceLine(repo_, "audit_log = ", "audit_log = \"" + dir_.path() + "/state/audit.jsonl\"");
    base_ = repo_ + "\n" + kProx + "\n" + kNode;
    config_ = dir_.Write("hosts.toml", base_);
  }
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunToCompletion(argv, dir_.path());
  }
  std::vector<std::string> TargetIds() {
    auto c = Labgate({"targets", "--json", "--config", config_});
    EXPECT_EQ(c.status, 0) << c.err;
    std::vector<std::string> ids;
    if (c.status != 0) return ids;
    const Json listing = Json::parse(c.out);
    for (const auto& t : listing["targets"]) ids.push_back(t["id"].get<std::string>());
    return ids;
  }
  int LineOf(const std::string& text, const std::string& line_start) {
    const auto at = text.find("\n" + line_start);
    return static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at) + 1, '\n')) + 1;
  }
  TempDir dir_;
  std::string repo_;
  std::string base_;
  std::string config_;
};

TEST_F(HostsEdit, AddSetRemove_RestOfFileByteForByte_TargetsStillLoad) {
  auto add = Labgate({"hosts", "add", "nas", "--address", "127.0.0.5", "--port", "2222", "--groups", "servers,storage",
                      "--purpose", "files \"and\" backups", "--config", config_});
  ASSERT_EQ(add.status, 0) << add.err;
  const std::string block =
      "[[hosts]]\nid = \"nas\"\naddress = \"127.0.0.5\"\nport = 2222\ngroups = [\"servers\", \"storage\"]\n"
      "purpose = \"files \\\"and\\\" backups\"\n";
  const std::string added = repo_ + "\n" + kProx + "\n" + block + "\n" + kNode;
  EXPECT_EQ(ReadFile(config_), added);
  EXPECT_NE(add.out.find("added host nas to " + config_ + " (line " +
                         std::to_string(LineOf(added, "[[hosts]]\nid = \"nas\"")) + ")"),
            std::string::npos)
      << add.out;
  EXPECT_EQ(TargetIds(), (std::vector<std::string>{"local", "prox4", "nas", "phone-node"}));

  auto set = Labgate({"hosts", "set", "prox4", "address=127.0.0.44", "user=ops", "groups=", "--config", config_});
  ASSERT_EQ(set.status, 0) << set.err;
  std::string prox = kProx;
  prox.replace(prox.find("127.0.0.4\""), 10, "127.0.0.44\"");
  prox.replace(prox.find("groups = [\n"), std::string("groups = [\n  \"servers\",   # main group\n]\n").size(),
               "user = \"ops\"\n");
  EXPECT_EQ(ReadFile(config_), repo_ + "\n" + prox + "\n" + block + "\n" + kNode);
  EXPECT_NE(set.out.find("address = \"127.0.0.44\""), std::string::npos) << set.out;
  EXPECT_NE(set.out.find("removed groups"), std::string::npos) << set.out;
  EXPECT_EQ(TargetIds().size(), 4u);

  auto remove = Labgate({"hosts", "remove", "nas", "--config", config_});
  ASSERT_EQ(remove.status, 0) << remove.err;
  EXPECT_EQ(ReadFile(config_), repo_ + "\n" + prox + "\n" + kNode);
  EXPECT_EQ(TargetIds(), (std::vector<std::string>{"local", "prox4", "phone-node"}));
}

TEST_F(HostsEdit, RemoveNode_TellsToRevoke) {
  auto c = Labgate({"hosts", "remove", "phone-node", "--config", config_});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(ReadFile(config_), repo_ + "\n" + kProx);
  EXPECT_NE(c.out.find("removed node phone-node"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("labgate nodes revoke phone-node"), std::string::npos) << c.out;
  EXPECT_EQ(TargetIds(), (std::vector<std::string>{"local", "prox4"}));
}

TEST_F(HostsEdit, EightConcurrentAdds_AllLand) {
  constexpr int kAdds = 8;
  std::vector<std::unique_ptr<Subprocess>> runs;
  for (int i = 0; i < kAdds; ++i) {
    runs.push_back(std::make_unique<Subprocess>(
        std::vector<std::string>{LABGATE_BINARY, "hosts", "add", "h" + std::to_string(i), "--address",
                                 "127.0.1." + std::to_string(i + 1), "--config", config_},
        dir_.path()));
  }
  for (auto& run : runs) {
    run->CloseStdin();
    EXPECT_EQ(run->Wait(std::chrono::seconds(60)), 0) << run->Stderr();
  }
  const auto ids = TargetIds();
  for (int i = 0; i < kAdds; ++i) {
    EXPECT_EQ(std::count(ids.begin(), ids.end(), "h" + std::to_string(i)), 1) << i;
  }
  EXPECT_EQ(ids.size(), 3u + kAdds);
  const std::string text = ReadFile(config_);
  EXPECT_EQ(text.rfind(repo_ + "\n" + kProx + "\n", 0), 0u);  // everything before the new entries is as it was
  EXPECT_EQ(text.substr(text.size() - kNode.size() - 1), "\n" + kNode);
}

TEST_F(HostsEdit, InvalidSet_ExitsNonZeroNamesFileLineKey_FileUnchanged) {
  const int port_line = LineOf(base_, "port = 22\n");
  auto port = Labgate({"hosts", "set", "prox4", "port=abc", "--config", config_});
  EXPECT_NE(port.status, 0);
  EXPECT_NE(port.err.find(config_ + ":" + std::to_string(port_line) + ": hosts[0].port: must be an integer"),
            std::string::npos)
      << port.err;
  EXPECT_EQ(ReadFile(config_), base_);

  auto role = Labgate({"hosts", "set", "phone-node", "role=root", "--config", config_});
  EXPECT_NE(role.status, 0);
  EXPECT_NE(role.err.find(config_ + ":" + std::to_string(LineOf(base_, "device = \"Pixel 8\"") + 1) +
                          ": nodes[0].role: unknown role 'root'"),
            std::string::npos)
      << role.err;
  EXPECT_EQ(ReadFile(config_), base_);

  auto secret = Labgate({"hosts", "set", "prox4", "password=hunter2", "--config", config_});
  EXPECT_NE(secret.status, 0);
  EXPECT_NE(secret.err.find("password_env"), std::string::npos) << secret.err;
  EXPECT_EQ(secret.err.find("hunter2"), std::string::npos) << secret.err;

  auto duplicate = Labgate({"hosts", "add", "phone-node", "--address", "127.0.0.9", "--config", config_});
  EXPECT_NE(duplicate.status, 0);
  EXPECT_NE(duplicate.err.find("already used"), std::string::npos) << duplicate.err;
  EXPECT_EQ(ReadFile(config_), base_);
  EXPECT_EQ(TargetIds().size(), 3u);
}

TEST_F(HostsEdit, NoConfigFile_RefusedWithWhatToDo) {
  TempDir empty;
  auto c = RunToCompletion(
      {"/usr/bin/env", "HOME=" + empty.path(), LABGATE_BINARY, "hosts", "add", "nas", "--address", "127.0.0.5"},
      empty.path());
  EXPECT_NE(c.status, 0);
  EXPECT_NE(c.err.find("no hosts.toml to edit"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("~/.config/labgate/hosts.toml"), std::string::npos) << c.err;
}

}  // namespace
}  // namespace labgate::testing
