// gateway.operators: people other than the gateway's own user use the operator socket by uid
// (SO_PEERCRED), without the key file they cannot read; everyone else is still refused. Switching
// uid needs root, which CI has.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr uid_t kNobody = 65534;  // Debian's nobody, whose primary group is nogroup (65534)
constexpr uid_t kStranger = 65533;  // no passwd entry, no groups

class Operators : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::getuid() != 0) GTEST_SKIP() << "acting as other uids needs root (CI runs as root)";
    // Others may pass through the test dir to the files named below, as in /var/lib.
    ::chmod(dir_.path().c_str(), 0711);
    binary_ = dir_.path() + "/labgate";
    std::filesystem::copy_file(LABGATE_BINARY, binary_);
    ::chmod(binary_.c_str(), 0755);
    config_ = dir_.Write("hosts.toml", "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(FreePort()) +
                                           "\"\nstate_dir = \"" + dir_.path() + "/state\"\n"
                                           "operators = [\"group:nogroup\"]\n");
    ::chmod(config_.c_str(), 0644);
    gateway_ = std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "gateway", "--config", config_});
    ASSERT_TRUE(GatewayAnswers(config_, dir_.path())) << gateway_->Stderr();
  }
  void TearDown() override {
    if (gateway_) {
      ::kill(gateway_->pid(), SIGTERM);
      gateway_->Wait(milliseconds(10000));
    }
  }

  // `labgate ARGS --config CONFIG` as another uid and gid, with no supplementary groups.
  Completed As(uid_t uid, gid_t gid, const std::vector<std::string>& args, const std::string& config = "") {
    int out[2];
    int err[2];
    EXPECT_EQ(::pipe(out), 0);
    EXPECT_EQ(::pipe(err), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::close(out[0]);
      ::close(err[0]);
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(120);
      std::vector<std::string> argv = {binary_};
      argv.insert(argv.end(), args.begin(), args.end());
      argv.insert(argv.end(), {"--config", config.empty() ? config_ : config});
      std::vector<char*> raw;
      for (auto& a : argv) raw.push_back(a.data());
      raw.push_back(nullptr);
      ::setenv("HOME", "/nonexistent", 1);
      ::execv(binary_.c_str(), raw.data());
      ::_exit(121);
    }
    ::close(out[1]);
    ::close(err[1]);
    Completed c;
    auto drain = [](int fd, std::string& into) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) into.append(buf, static_cast<std::size_t>(n));
      ::close(fd);
    };
    drain(out[0], c.out);
    drain(err[0], c.err);
    int status = 0;
    ::waitpid(pid, &status, 0);
    c.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return c;
  }
  Completed AsRoot(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--config", config_});
    return RunToCompletion(argv, dir_.path());
  }
  std::vector<Json> Events(const std::string& name) {
    std::vector<Json> out;
    for (const auto& r : ReadJsonLines(dir_.path() + "/state/audit.jsonl")) {
      if (r.value("event", "") == name) out.push_back(r);
    }
    return out;
  }

  TempDir dir_;
  std::string binary_;
  std::string config_;
  std::unique_ptr<Subprocess> gateway_;
};

TEST_F(Operators, ListedGroupMember_ApprovesThroughTheCliWithoutTheKey) {
  const std::string state = dir_.path() + "/state";
  struct stat st {};
  ASSERT_EQ(::stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u) << "others pass through to the socket but cannot list the state dir";
  ASSERT_EQ(::stat((state + "/operator.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const std::string victim = dir_.path() + "/victim";
  std::filesystem::create_directories(victim);
  auto filed = AsRoot({"run", "local", "--json", "--shell", "rm -r " + victim});
  const Json pending = Json::parse(filed.out, nullptr, false);
  ASSERT_FALSE(pending.is_discarded()) << filed.out << filed.err;
  ASSERT_EQ(pending["results"][0]["decision"], "approval-pending") << filed.out;
  const std::string id = pending["results"][0]["approvalId"];

  // nobody cannot read the key, and needs none: the gateway knows them by uid.
  auto list = As(kNobody, kNobody, {"approvals", "list"});
  ASSERT_EQ(list.status, 0) << list.out << list.err;
  EXPECT_NE(list.out.find(id), std::string::npos) << list.out;
  auto approved = As(kNobody, kNobody, {"approvals", "approve", id});
  ASSERT_EQ(approved.status, 0) << approved.out << approved.err;

  auto ran = AsRoot({"run", "local", "--json", "--shell", "rm -r " + victim});
  EXPECT_EQ(Json::parse(ran.out)["results"][0]["decision"], "confirmed") << ran.out;
  EXPECT_FALSE(std::filesystem::exists(victim));
  bool approved_by_nobody = false;
  for (const auto& r : ReadJsonLines(state + "/audit.jsonl")) {
    if (r.dump().find(id) != std::string::npos && r.dump().find("\"nobody\"") != std::string::npos) {
      approved_by_nobody = true;
    }
  }
  EXPECT_TRUE(approved_by_nobody) << "the audit log names who approved";
}

TEST_F(Operators, ListedGroupDroppedByTheProcess_IsRefused) {
  // nobody's account is in nogroup, but this process runs without it: the kernel's answer counts.
  auto list = As(kNobody, kStranger, {"approvals", "list"});
  EXPECT_NE(list.status, 0) << list.out;
  EXPECT_NE((list.out + list.err).find("gateway.operators"), std::string::npos) << list.out << list.err;
}

TEST_F(Operators, AccountNotListed_IsRefusedAtTheSocket) {
  auto list = As(kStranger, kStranger, {"approvals", "list"});
  EXPECT_NE(list.status, 0) << list.out;
  EXPECT_NE((list.out + list.err).find("gateway.operators"), std::string::npos) << list.out << list.err;
  ASSERT_TRUE(PollUntil([&] { return !Events("socket.refused").empty(); }, milliseconds(5000)));
  EXPECT_EQ(Events("socket.refused")[0]["details"]["uid"], static_cast<int>(kStranger));
}

TEST_F(Operators, GatewayRunningAsTheCommandAccount_RefusesToStart) {
  // The account that runs the assistant's commands must not also be the gateway: it would own
  // the state, the key and the audit log.
  const std::string config = dir_.Write("as-command-user.toml",
                                        "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(FreePort()) +
                                            "\"\nstate_dir = \"" + dir_.path() + "/state-nobody\"\n"
                                            "command_user = \"nobody\"\n\n[local]\nenabled = false\n");
  ::chmod(config.c_str(), 0644);
  auto started = As(kNobody, kNobody, {"gateway"}, config);
  EXPECT_NE(started.status, 0) << started.err;
  EXPECT_NE(started.err.find("the gateway runs as nobody, which gateway.command_user names"), std::string::npos)
      << started.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/state-nobody"));
}

}  // namespace
}  // namespace labgate::testing
