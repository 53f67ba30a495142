// `run` with sudo on a real sshd whose account needs its password for sudo: the password is
// given to `sudo -S` on stdin and never shows in any process's argv or environment on the host,
// in the audit log or in the result; daily-use targets refuse it; the deadline still stops it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "sshd_fixture.h"
#include "subprocess.h"
#include "sudo_account.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
constexpr const char* kUser = SudoAccount::kUser;

class SudoOnHosts : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveSshd()) GTEST_SKIP() << "/usr/sbin/sshd is not installed (apt-get install openssh-server)";
    if (!SudoAccount::Usable()) {
      GTEST_SKIP() << "needs root (to make an account whose sudo asks for its password) and sudo; CI has both";
    }
    account_ = std::make_unique<SudoAccount>();
    ASSERT_TRUE(account_->ok()) << account_->error();
    password_ = account_->password();
    password_file_ = dir_.Write("sudo-password", password_ + "\n");
    wrong_file_ = dir_.Write("wrong-password", "not-" + password_ + "\n");
    Sshd::Options o;
    o.other_users = true;
    sshd_ = std::make_unique<Sshd>(o);
    std::filesystem::create_directories(dir_.path() + "/state");
    std::ofstream(dir_.path() + "/state/known_hosts") << sshd_->KnownHostsLine() << "\n";
  }
  void TearDown() override {
    sshd_.reset();
    account_.reset();
  }

  std::string Config(const std::string& password_file, const std::string& extra = "mode = \"full\"\n") {
    return dir_.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\n\n[[hosts]]\nid = \"h1\"\n" +
                                        "address = \"" + sshd_->address() + "\"\nport = " + std::to_string(sshd_->port()) +
                                        "\nuser = \"" + kUser + "\"\nidentity_file = \"" + TestClientKey().private_path +
                                        "\"\nsudo_password_file = \"" + password_file + "\"\n" + extra);
  }
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunToCompletion(argv, dir_.path());
  }

  TempDir dir_;
  std::string password_;
  std::string password_file_;
  std::string wrong_file_;
  std::unique_ptr<Sshd> sshd_;
  std::unique_ptr<SudoAccount> account_;
};

TEST_F(SudoOnHosts, RunsAsRootAndThePasswordIsNeverInThePsTableTheAuditLogOrTheResult) {
  auto cfg = Config(password_file_);
  // Without sudo the account is itself.
  auto plain = Labgate({"run", "h1", "--config", cfg, "--", "id", "-un"});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(plain.out, std::string(kUser) + "\n");

  SecretSampler sampler(password_, std::chrono::milliseconds(20));
  auto c = Labgate({"run", "h1", "--sudo", "--json", "--config", cfg, "--", "sh", "-c", "id -u; sleep 1.5; cat; echo end"});
  sampler.Stop();
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  auto report = Json::parse(c.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << c.out;
  // Root, and the command's stdin is empty: the password line went to sudo only.
  EXPECT_EQ(report["results"][0]["stdout"], "0\nend\n") << c.out;
  EXPECT_GT(sampler.samples(), 10);
  EXPECT_EQ(sampler.leaks(), 0) << "the password showed in a process's argv or environment";
  EXPECT_EQ(c.out.find(password_), std::string::npos);
  EXPECT_EQ(c.err.find(password_), std::string::npos);
  const std::string audit = ReadFile(dir_.path() + "/state/audit.jsonl");
  EXPECT_EQ(audit.find(password_), std::string::npos);
  EXPECT_NE(audit.find("\"sudo\":true"), std::string::npos);

  // A command that echoes what it could find gets nothing of the password either.
  auto probe = Labgate({"run", "h1", "--sudo", "--config", cfg, "--shell", "env; cat /proc/$$/cmdline; cat"});
  EXPECT_EQ(probe.status, 0) << probe.err;
  EXPECT_EQ(probe.out.find(password_), std::string::npos);
}

TEST_F(SudoOnHosts, AWrongPasswordFailsClearlyAndADailyTargetRefuses) {
  auto wrong = Labgate({"run", "h1", "--sudo", "--config", Config(wrong_file_), "--", "id", "-u"});
  EXPECT_NE(wrong.status, 0);
  EXPECT_NE((wrong.out + wrong.err).find("sudo"), std::string::npos) << wrong.out << wrong.err;
  EXPECT_EQ((wrong.out + wrong.err).find(password_), std::string::npos);

  auto daily = Labgate({"run", "h1", "--sudo", "--json", "--config", Config(password_file_, "role = \"daily\"\nmode = \"full\"\n"),
                        "--", "id", "-u"});
  EXPECT_NE(daily.status, 0);
  EXPECT_NE(daily.out.find("targets.h1.role"), std::string::npos) << daily.out << daily.err;

  // Under the default mode sudo is privileged: a human confirms first.
  auto asked = Labgate({"run", "h1", "--sudo", "--json", "--config", Config(password_file_, ""), "--", "id", "-u"});
  EXPECT_NE(asked.status, 0);
  EXPECT_NE(asked.out.find("approval-pending"), std::string::npos) << asked.out << asked.err;
  // No password configured: a clear error, nothing ran.
  auto none = Labgate({"run", "h1", "--sudo", "--config",
                       dir_.Write("nopw.toml", "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\n\n[[hosts]]\nid = \"h1\"\n"
                                  "address = \"" + sshd_->address() + "\"\nport = " + std::to_string(sshd_->port()) +
                                  "\nuser = \"" + kUser + "\"\nidentity_file = \"" + TestClientKey().private_path +
                                  "\"\nmode = \"full\"\n"),
                       "--", "id", "-u"});
  EXPECT_NE(none.status, 0);
  EXPECT_NE(none.err.find("sudo_password_file"), std::string::npos) << none.err;
}

TEST_F(SudoOnHosts, TheDeadlineStopsARootCommand) {
  auto cfg = Config(password_file_);
  const std::string marker = "31.4159";
  auto c = Labgate({"run", "h1", "--sudo", "--timeout", "1500ms", "--config", cfg, "--", "sleep", marker});
  EXPECT_EQ(c.status, 124) << c.out << c.err;
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    auto ps = RunToCompletion({"/bin/sh", "-c", "ps -eo args | grep -c '^sleep " + marker + "$' || true"});
    gone = ps.out == "0\n";
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "sleep " << marker << " outlived its deadline";
}

TEST_F(SudoOnHosts, FilePutAsRootKeepsOwnerAndModeAndNeverShowsThePassword) {
  Sshd::Options o;
  o.other_users = true;
  o.sftp = true;
  sshd_ = std::make_unique<Sshd>(o);
  std::ofstream(dir_.path() + "/state/known_hosts", std::ios::app) << sshd_->KnownHostsLine() << "\n";
  auto cfg = Config(password_file_, "mode = \"full\"\ncapabilities = [\"run\", \"file\"]\n");
  // A root-owned directory the account can read but not write, holding a root-owned 0640 file.
  char tmpl[] = "/tmp/labgate-sudo-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root_dir = tmpl;
  std::filesystem::permissions(root_dir, std::filesystem::perms(0755));
  const std::string conf = root_dir + "/app.conf";
  std::ofstream(conf) << "old=1\n";
  std::filesystem::permissions(conf, std::filesystem::perms(0640));
  std::string content(4 * 1024 * 1024, 'z');
  content += "\nnew=2\n";
  const std::string local = dir_.Write("new.conf", content);

  // As the login: refused by the host, nothing changed.
  auto plain = Labgate({"file", "put", "h1", root_dir + "/other.conf", "--from", local, "--config", cfg});
  EXPECT_NE(plain.status, 0);
  EXPECT_NE(plain.err.find("ermission denied"), std::string::npos) << plain.err;

  SecretSampler sampler(password_, std::chrono::milliseconds(10));
  auto c = Labgate({"file", "put", "h1", conf, "--from", local, "--sudo", "--json", "--config", cfg});
  sampler.Stop();
  ASSERT_EQ(c.status, 0) << c.out << c.err;
  auto r = Json::parse(c.out, nullptr, false);
  ASSERT_FALSE(r.is_discarded()) << c.out;
  EXPECT_EQ(r["mode"], 0640) << c.out;
  EXPECT_FALSE(r["previousSha256"].is_null()) << c.out;
  EXPECT_EQ(ReadFile(conf), content);
  struct stat st {};
  ASSERT_EQ(::stat(conf.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_GT(sampler.samples(), 0);
  EXPECT_EQ(sampler.leaks(), 0);
  EXPECT_EQ(c.out.find(password_), std::string::npos);
  EXPECT_EQ(ReadFile(dir_.path() + "/state/audit.jsonl").find(password_), std::string::npos);
  // The password line never lands in a file, and no temporary file is left.
  EXPECT_EQ(ReadFile(conf).find(password_), std::string::npos);
  for (const auto& e : std::filesystem::directory_iterator(root_dir)) {
    EXPECT_EQ(e.path().filename().string().find(".labgate-"), std::string::npos) << e.path();
  }
  // A stale digest as root: refused, nothing written.
  auto stale = Labgate({"file", "put", "h1", conf, "--from", local, "--sudo", "--expect", std::string(64, 'a'),
                        "--config", cfg});
  EXPECT_NE(stale.status, 0);
  EXPECT_NE(stale.err.find("someone changed it"), std::string::npos) << stale.err;
  // A daily-use target refuses sudo writes outright.
  auto daily = Labgate({"file", "put", "h1", conf, "--from", local, "--sudo", "--json", "--config",
                        Config(password_file_, "role = \"daily\"\nmode = \"full\"\ncapabilities = [\"run\", \"file\"]\n")});
  EXPECT_NE(daily.status, 0);
  EXPECT_NE(daily.out.find("targets.h1.role"), std::string::npos) << daily.out;
  std::filesystem::remove_all(root_dir);
}

}  // namespace
}  // namespace labgate::testing
