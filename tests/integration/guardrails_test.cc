// Guardrails end to end: one policy table decided identically on `local`, a real sshd host and a
// real paired node, through a real gateway daemon and the real CLI; injection attempts on all three.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "sshd_fixture.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

// The operator key in `state_dir`, as labgate's CLI reads it.
std::string OperatorKeyIn(const std::string& state_dir) {
  std::ifstream in(state_dir + "/operator.key");
  std::string key;
  std::getline(in, key);
  return key;
}

// One JSON-RPC call on the operator socket, as the CLI makes it (lets tests pass env); with
// `key`, it carries the operator key from beside the socket, as the CLI's calls do.
Json OperatorCall(const std::string& socket, const std::string& method, Json params, bool key = true) {
  if (key) params["operatorKey"] = OperatorKeyIn(std::filesystem::path(socket).parent_path().string());
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return Json{{"error", "connect failed"}};
  }
  std::string line = Json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}}.dump() + "\n";
  (void)::write(fd, line.data(), line.size());
  std::string reply;
  char buf[4096];
  while (reply.find('\n') == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return Json::parse(reply.substr(0, reply.find('\n')));
}

constexpr const char* kPlantedSecret = "Pl4nted-Secret-Value-93";

// Shared by every test: sshd, gateway and node agent start once for the suite.
class Guardrails : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveSshd()) return;
    dir_ = new TempDir();
    sshd_ = new Sshd(Sshd::Options("127.0.0.3"));
    const std::string state = dir_->path() + "/state";
    std::filesystem::create_directories(state);
    std::ofstream(state + "/known_hosts") << sshd_->KnownHostsLine() << "\n";
    const int port = FreePort();
    config_ = dir_->Write(
        "hosts.toml",
        "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\nstate_dir = \"" + state +
            "\"\n\n"
            "[local]\ngroups = [\"lab\"]\n\n"
            "[policies.run]\n"
            "deny = [\"rm -rf /\", \"rm -rf /\\\\*\", \"mkfs*\", \"dd * of=/dev/*\", \"shutdown*\"]\n"
            "allow = [\"df -h*\"]\n\n"
            "[classify]\nread_only = [\"pihole status\"]\ndestructive = [\"zpool scrub *\"]\n\n"
            "[groups.lab]\nmode = \"confirm-destructive\"\ndeny = [\"nc -l*\"]\n\n"
            "[[hosts]]\nid = \"box\"\naddress = \"127.0.0.3\"\nport = " + std::to_string(sshd_->port()) +
            "\nuser = \"" + CurrentUser() + "\"\nidentity_file = \"" + TestClientKey().private_path +
            "\"\npassphrase_env = \"LG_GUARD_SECRET\"\ngroups = [\"lab\"]\n\n"
            "[[nodes]]\nid = \"alpha\"\ncapabilities = [\"run\"]\ngroups = [\"lab\"]\n");
    // The gateway masks the values of the secrets hosts.toml names by reference.
    ::setenv("LG_GUARD_SECRET", kPlantedSecret, 1);
    gateway_ = new Subprocess({LABGATE_BINARY, "gateway", "--config", config_});
    if (!GatewayAnswers(config_, dir_->path())) {
      setup_error_ = "gateway did not answer";
      return;
    }
    const std::string device = dir_->path() + "/device-alpha";
    if (setup_error_ = PairNode(config_, "alpha", device, dir_->path()); !setup_error_.empty()) return;
    agent_ = new Subprocess({LABGATE_BINARY, "node", "run", "--state-dir", device});
    ready_ = NodeOnline(config_, "alpha", dir_->path());
    if (!ready_) {
      auto list = Labgate({"nodes", "list", "--json"});
      setup_error_ = "node alpha did not come online: " + agent_->Stderr() + "\nnodes list: " + list.out + list.err;
    }
  }
  static void TearDownTestSuite() {
    if (agent_) ::kill(agent_->pid(), SIGTERM);
    if (gateway_) ::kill(gateway_->pid(), SIGTERM);
    delete agent_;
    delete gateway_;
    delete sshd_;
    delete dir_;
    agent_ = nullptr;
    gateway_ = nullptr;
    sshd_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!HaveSshd()) GTEST_SKIP() << "/usr/sbin/sshd is not installed (apt-get install openssh-server)";
    ASSERT_TRUE(ready_) << "the gateway, sshd or node agent did not come up: " << setup_error_ << "\n"
                        << (gateway_ ? gateway_->Stderr() : "");
  }

  static Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY, args[0], "--config", config_};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    return RunToCompletion(argv, dir_->path());
  }
  static Json RunJson(const std::string& target, const std::string& shell) {
    auto c = Labgate({"run", target, "--json", "--shell", shell});
    Json j = Json::parse(c.out, nullptr, false);
    return j.is_discarded() ? Json{{"cliError", c.err}} : j;
  }
  static std::string Socket() { return dir_->path() + "/state/operator.sock"; }

  static TempDir* dir_;
  static Sshd* sshd_;
  static Subprocess* gateway_;
  static Subprocess* agent_;
  static std::string config_;
  static bool ready_;
  static std::string setup_error_;
};

TempDir* Guardrails::dir_ = nullptr;
Sshd* Guardrails::sshd_ = nullptr;
Subprocess* Guardrails::gateway_ = nullptr;
Subprocess* Guardrails::agent_ = nullptr;
std::string Guardrails::config_;
bool Guardrails::ready_ = false;
std::string Guardrails::setup_error_;

struct PolicyCase {
  const char* command;
  const char* decision;  // run, approval-pending, refused
  const char* rule;
  const char* risk;
};

// Every command is harmless where it actually runs (the "run" rows); the others must never run.
const PolicyCase kCases[] = {
    {"uptime", "run", "mode.confirm-destructive", "read-only"},
    {"df -h", "run", "policies.run.allow", "read-only"},
    {"df -h /", "run", "policies.run.allow", "read-only"},
    {"ls -la /", "run", "mode.confirm-destructive", "read-only"},
    {"cat /etc/hostname", "run", "mode.confirm-destructive", "read-only"},
    {"echo hello", "run", "mode.confirm-destructive", "read-only"},
    {"echo 'rm -rf /'", "run", "mode.confirm-destructive", "read-only"},
    {"ps aux | head -3", "run", "mode.confirm-destructive", "read-only"},
    {"grep root /etc/passwd", "run", "mode.confirm-destructive", "read-only"},
    {"uname -a && id", "run", "mode.confirm-destructive", "read-only"},
    {"pihole status || true", "run", "mode.confirm-destructive", "read-only"},
    {"echo hi > /dev/null", "run", "mode.confirm-destructive", "read-only"},
    {"touch /tmp/labgate-guard-touched", "run", "mode.confirm-destructive", "mutating"},
    {"mkdir -p /tmp/labgate-guard-dir", "run", "mode.confirm-destructive", "mutating"},
    {"echo hi > /tmp/labgate-guard-file", "run", "mode.confirm-destructive", "mutating"},
    {"rm -r /tmp/labgate-guard-nothing", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"rm -rf /tmp/labgate-guard-nothing", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"reboot", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"systemctl stop nginx", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"docker compose down", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"docker system prune -af", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"zfs destroy tank/old", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"apt remove -y nginx", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"chmod -R 777 /srv", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"chown -R nobody /srv", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"kill 1", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"iptables -F", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"curl -fsSL http://127.0.0.1:9/x | sh", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"echo x > /etc/labgate-guard", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"sudo ls", "approval-pending", "mode.confirm-destructive", "privileged"},
    {"sh -c 'reboot'", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"bash -lc 'rm -r /tmp/x'", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"env FOO=1 nice -n 5 rm -r /tmp/x", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"timeout 5 xargs rm -r < /dev/null", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"echo $(reboot)", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"echo `reboot`", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"(cd /tmp && rm -r x)", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"df -h; rm -r /tmp/x", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"zpool scrub tank", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"eval \"$X\"", "approval-pending", "mode.confirm-destructive", "destructive"},
    {"rm -rf /", "refused", "policies.run.deny", "destructive"},
    {"sudo rm -rf /", "refused", "policies.run.deny", "privileged"},
    {"echo ok; rm -rf /", "refused", "policies.run.deny", "destructive"},
    {"mkfs.ext4 /dev/sdz", "refused", "policies.run.deny", "destructive"},
    {"bash -c 'mkfs.ext4 /dev/sdz'", "refused", "policies.run.deny", "destructive"},
    {"dd if=/dev/zero of=/dev/sdz", "refused", "policies.run.deny", "destructive"},
    {"shutdown -h now", "refused", "policies.run.deny", "destructive"},
    {"nc -lp 4444", "refused", "groups.lab.deny", "destructive"},
};

TEST_F(Guardrails, PolicyTable_SameDecisionOnLocalSshHostAndNode) {
  ASSERT_GE(std::size(kCases), 40u);
  // One call per command to group:lab (local, the SSH host and the node): each target is decided
  // on its own, and a single call keeps this affordable under the sanitizers.
  for (const auto& c : kCases) {
    Json report = RunJson("group:lab", c.command);
    ASSERT_TRUE(report.contains("results")) << c.command << ": " << report.dump();
    ASSERT_EQ(report["results"].size(), 3u) << c.command << ": " << report.dump();
    std::set<std::string> seen;
    for (const Json& r : report["results"]) {
      const std::string target = r.value("target", "");
      seen.insert(target);
      EXPECT_EQ(r["decision"], c.decision) << target << ": " << c.command << ": " << r.dump();
      EXPECT_EQ(r["rule"], c.rule) << target << ": " << c.command << ": " << r["reason"];
      EXPECT_EQ(r["risk"], c.risk) << target << ": " << c.command << ": " << r["reason"];
      if (std::string(c.decision) == "run") {
        EXPECT_FALSE(r["exitCode"].is_null()) << target << ": " << c.command << " did not run: " << r.dump();
      } else {
        EXPECT_TRUE(r["exitCode"].is_null()) << target << ": " << c.command << " ran: " << r.dump();
        EXPECT_NE(r["error"].get<std::string>().find(c.rule), std::string::npos) << r["error"];
      }
    }
    EXPECT_EQ(seen, (std::set<std::string>{"local", "box", "alpha"})) << c.command;
  }
}

TEST_F(Guardrails, DryRun_ReportsWithoutRunning) {
  for (const char* target : {"local", "box", "alpha"}) {
    auto c = Labgate({"run", target, "--dry-run", "--json", "--shell", "touch /tmp/labgate-guard-dry-" + std::string(target)});
    ASSERT_EQ(c.status, 0) << c.err;
    Json r = Json::parse(c.out)["results"][0];
    EXPECT_EQ(r["decision"], "dry-run:run");
    EXPECT_EQ(r["risk"], "mutating");
    EXPECT_FALSE(std::filesystem::exists("/tmp/labgate-guard-dry-" + std::string(target)));
  }
}

TEST_F(Guardrails, Injection_ThroughTargetCwdEnvAndArgv_RunsNothingExtra) {
  const std::string marker = dir_->path() + "/pwned";
  // Target: a selector is never a shell word.
  auto t = Labgate({"run", "local; touch " + marker, "--", "true"});
  EXPECT_NE(t.status, 0);
  EXPECT_NE(t.err.find("bad selector"), std::string::npos) << t.err;
  for (const char* target : {"local", "box", "alpha"}) {
    // cwd: a directory name, never a command.
    Json cwd = OperatorCall(Socket(), "run",
                            {{"selectors", {target}}, {"argv", {"true"}}, {"cwd", "/tmp; touch " + marker}});
    ASSERT_TRUE(cwd.contains("result")) << cwd.dump();
    const Json& in_cwd = cwd["result"]["results"][0];
    EXPECT_TRUE(!in_cwd["error"].is_null() || in_cwd["exitCode"] != 0) << cwd.dump();
    // env: values are data; names must be names. (A lower-case name is inert to policy; one
    // such as PATH would need a human, see GatewayTest.Env_*.)
    Json env = OperatorCall(Socket(), "run",
                            {{"selectors", {target}},
                             {"argv", {"printenv", "lg_value"}},
                             {"env", {{"lg_value", "$(touch " + marker + ")"}}}});
    ASSERT_TRUE(env.contains("result")) << env.dump();
    EXPECT_EQ(env["result"]["results"][0]["stdout"], "$(touch " + marker + ")\n") << env.dump();
    Json bad_name = OperatorCall(Socket(), "run",
                                 {{"selectors", {target}}, {"argv", {"true"}}, {"env", {{"A;touch " + marker, "1"}}}});
    EXPECT_FALSE(bad_name["result"]["error"].is_null()) << bad_name.dump();
    // argv: each word reaches the program as one argument, quoted for the remote shell over SSH.
    auto argv = Labgate({"run", target, "--", "echo", "$(touch " + marker + ")", ";", "touch", marker, "`id`"});
    EXPECT_EQ(argv.status, 0) << argv.err;
    EXPECT_EQ(argv.out, "$(touch " + marker + ") ; touch " + marker + " `id`\n") << target;
  }
  EXPECT_FALSE(std::filesystem::exists(marker)) << "an injection ran";
}

TEST_F(Guardrails, Approval_CliApprove_RepeatedCallRunsOnce) {
  const std::string file = dir_->path() + "/approved-once";
  std::filesystem::create_directories(file);
  const std::string command = "rm -r " + file;
  Json first = RunJson("box", command);
  const Json& r = first["results"][0];
  ASSERT_EQ(r["decision"], "approval-pending") << r.dump();
  const std::string id = r["approvalId"];

  auto listed = Labgate({"approvals", "list", "--json"});
  ASSERT_EQ(listed.status, 0) << listed.err;
  EXPECT_NE(listed.out.find(id), std::string::npos);

  auto approved = Labgate({"approvals", "approve", id});
  ASSERT_EQ(approved.status, 0) << approved.err;
  // Replays with another target or cwd do not use it.
  EXPECT_EQ(RunJson("local", command)["results"][0]["decision"], "approval-pending");
  EXPECT_TRUE(std::filesystem::exists(file));

  Json second = RunJson("box", command);
  EXPECT_EQ(second["results"][0]["decision"], "confirmed") << second.dump();
  EXPECT_EQ(second["results"][0]["exitCode"], 0) << second.dump();
  EXPECT_FALSE(std::filesystem::exists(file));
  Json third = RunJson("box", command);
  EXPECT_EQ(third["results"][0]["decision"], "approval-pending");

  // An approval is granted by an operator's shell, never by a command labgate ran: labgate's
  // own CLI is privileged, so running it on a target is itself a request for a human.
  auto self = Labgate({"run", "local", "--json", "--", LABGATE_BINARY, "approvals", "approve",
                       third["results"][0]["approvalId"].get<std::string>(), "--config", config_});
  Json self_report = Json::parse(self.out);
  EXPECT_TRUE(self_report["results"][0]["exitCode"].is_null()) << self.out;
  EXPECT_EQ(self_report["results"][0]["risk"], "privileged") << self.out;
  EXPECT_EQ(self_report["results"][0]["decision"], "approval-pending") << self.out;
}

TEST_F(Guardrails, OperatorSocket_WithoutTheOperatorKey_AnswersNothing) {
  // What a command on local that reached the socket would try: speak the CLI's protocol itself.
  const std::string file = dir_->path() + "/needs-a-human";
  std::filesystem::create_directories(file);
  Json pending = RunJson("box", "rm -r " + file);
  ASSERT_EQ(pending["results"][0]["decision"], "approval-pending") << pending.dump();
  const std::string id = pending["results"][0]["approvalId"];
  const std::string key_path = dir_->path() + "/state/operator.key";
  struct stat st {};
  ASSERT_EQ(::stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  for (const Json& params : {Json{{"id", id}}, Json{{"id", id}, {"operatorKey", ""}},
                             Json{{"id", id}, {"operatorKey", std::string(64, '0')}},
                             Json{{"id", id}, {"operatorKey", 42}}}) {
    Json reply = OperatorCall(Socket(), "approvals.approve", params, false);
    ASSERT_TRUE(reply.contains("error")) << reply.dump();
    EXPECT_NE(reply["error"]["message"].get<std::string>().find("operator key"), std::string::npos) << reply.dump();
  }
  for (const char* method : {"nodes.list", "approvals.list", "approvals.grant", "pair.new", "run", "checks.list"}) {
    Json reply = OperatorCall(Socket(), method, Json::object(), false);
    ASSERT_TRUE(reply.contains("error")) << method << ": " << reply.dump();
    EXPECT_NE(reply["error"]["message"].get<std::string>().find("operator key"), std::string::npos) << reply.dump();
  }
  // With the key, the same socket answers (so the key travels in this test's calls too).
  EXPECT_TRUE(OperatorCall(Socket(), "approvals.list", Json::object())["result"].is_object() ||
              OperatorCall(Socket(), "approvals.list", Json::object())["result"].is_array());
  // Nothing was approved: the repeated call still waits for a human.
  Json again = RunJson("box", "rm -r " + file);
  EXPECT_EQ(again["results"][0]["decision"], "approval-pending") << again.dump();
  EXPECT_TRUE(std::filesystem::exists(file));

  // The refusals are audited, and the key itself is in no record.
  const std::string key = OperatorKeyIn(dir_->path() + "/state");
  ASSERT_EQ(key.size(), 64u);
  std::ifstream in(dir_->path() + "/state/audit.jsonl");
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("\"why\":\"no operator key\""), std::string::npos);
  EXPECT_NE(log.find("\"why\":\"wrong operator key\""), std::string::npos);
  EXPECT_EQ(log.find(key), std::string::npos);
}

TEST_F(Guardrails, HumanOnlyCall_WhoseCallerExitedAfterConnecting_IsRefused) {
  // Connect, hand the socket to a child, exit: the pid the kernel reports for the connection
  // then names nothing, and the ancestry check must not read that as "not labgate".
  const std::string file = dir_->path() + "/caller-gone";
  std::filesystem::create_directories(file);
  Json pending = RunJson("box", "rm -r " + file);
  ASSERT_EQ(pending["results"][0]["decision"], "approval-pending") << pending.dump();
  const std::string id = pending["results"][0]["approvalId"];
  const std::string key = OperatorKeyIn(dir_->path() + "/state");

  int answer[2];
  ASSERT_EQ(::pipe(answer), 0);
  const pid_t connector = ::fork();
  if (connector == 0) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", Socket().c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(1);
    const pid_t me = ::getpid();
    if (::fork() == 0) {
      // Wait until the connecting process is gone (exited and reaped), then ask.
      const std::string proc = "/proc/" + std::to_string(me);
      for (int i = 0; i < 200 && ::access(proc.c_str(), F_OK) == 0; ++i) ::usleep(10000);
      const std::string line =
          Json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "approvals.approve"}, {"params", {{"id", id}, {"operatorKey", key}}}}
              .dump() + "\n";
      (void)!::write(fd, line.data(), line.size());
      std::string reply;
      char buf[4096];
      while (reply.find('\n') == std::string::npos) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        reply.append(buf, static_cast<std::size_t>(n));
      }
      (void)!::write(answer[1], reply.data(), reply.size());
      ::_exit(0);
    }
    ::_exit(0);
  }
  ::close(answer[1]);
  int status = 0;
  ::waitpid(connector, &status, 0);
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(answer[0], buf, sizeof buf)) > 0) reply.append(buf, static_cast<std::size_t>(n));
  ::close(answer[0]);
  const Json r = Json::parse(reply.substr(0, reply.find('\n')), nullptr, false);
  ASSERT_TRUE(r.contains("error")) << reply;
  EXPECT_NE(r["error"]["message"].get<std::string>().find("could not be read"), std::string::npos) << reply;
  EXPECT_EQ(RunJson("box", "rm -r " + file)["results"][0]["decision"], "approval-pending");
}

TEST_F(Guardrails, OperatorKey_ReadFromLocal_NeedsAHumanAndEvenThenIsHidden) {
  const std::string key_path = dir_->path() + "/state/operator.key";
  const std::string key = OperatorKeyIn(dir_->path() + "/state");
  ASSERT_EQ(key.size(), 64u);
  const std::string command = "cat " + key_path;
  Json first = RunJson("local", command);
  ASSERT_EQ(first["results"][0]["decision"], "approval-pending") << first.dump();
  EXPECT_EQ(first["results"][0]["risk"], "privileged") << first.dump();
  // Suppose the operator approves it by mistake: the sandbox still shows an empty state dir.
  auto approved = Labgate({"approvals", "approve", first["results"][0]["approvalId"].get<std::string>()});
  ASSERT_EQ(approved.status, 0) << approved.err;
  Json second = RunJson("local", command);
  const Json& r = second["results"][0];
  EXPECT_EQ(r["decision"], "confirmed") << second.dump();
  EXPECT_NE(r["exitCode"], 0) << second.dump();
  EXPECT_EQ(second.dump().find(key), std::string::npos) << second.dump();
}

TEST_F(Guardrails, Grant_TimeBoxed_RunsMatchingCommandsOnly) {
  auto g = Labgate({"approvals", "grant", "--target", "box", "--pattern", "rm -r /tmp/labgate-grant-*", "--for", "1h"});
  ASSERT_EQ(g.status, 0) << g.err;
  std::filesystem::create_directories("/tmp/labgate-grant-a");
  Json ok = RunJson("box", "rm -r /tmp/labgate-grant-a");
  EXPECT_EQ(ok["results"][0]["decision"], "run") << ok.dump();
  EXPECT_EQ(ok["results"][0]["rule"], "approvals.grant");
  EXPECT_FALSE(std::filesystem::exists("/tmp/labgate-grant-a"));
  EXPECT_EQ(RunJson("local", "rm -r /tmp/labgate-grant-b")["results"][0]["decision"], "approval-pending");
  EXPECT_EQ(RunJson("box", "rm -r /tmp/labgate-grant-b; reboot")["results"][0]["decision"], "approval-pending");
}

TEST_F(Guardrails, Failure_EscalatedWithDiagnosticsOnEveryPath) {
  for (const char* target : {"local", "box", "alpha"}) {
    Json report = RunJson(target, "touch /nonexistent-dir/labgate-x");
    const Json& r = report["results"][0];
    EXPECT_TRUE(r["escalated"].get<bool>()) << target << ": " << r.dump();
    ASSERT_EQ(r["diagnostics"].size(), 3u) << r.dump();
    EXPECT_EQ(r["diagnostics"][0]["command"], "uptime");
    EXPECT_EQ(r["diagnostics"][0]["exitCode"], 0) << r.dump();
    EXPECT_NE(r["diagnostics"][0]["output"].get<std::string>().find("load average"), std::string::npos);
  }
}

TEST_F(Guardrails, Secrets_InCommandAndOutput_NeverReachTheLogOrTheCaller) {
  const std::vector<std::string> secrets = {kPlantedSecret, "hunter2hunter2", "ghp_Zx81kQpL0vN4mT7rB2cY9wE5uI3oA6sD1fG8",
                                            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlX2hlcmVfMTIz"};
  const std::string command = "echo " + std::string(kPlantedSecret) + "; echo DB_PASSWORD=hunter2hunter2; echo " +
                              secrets[2] + " >&2; echo 'Authorization: Bearer " + secrets[3] + "'";
  for (const char* target : {"local", "box", "alpha"}) {
    Json report = RunJson(target, command);
    const Json& r = report["results"][0];
    ASSERT_EQ(r["exitCode"], 0) << target << ": " << r.dump();
    for (const auto& secret : secrets) {
      EXPECT_EQ(r.dump().find(secret), std::string::npos) << target << " returned " << secret << ": " << r.dump();
    }
    EXPECT_NE(r["stdout"].get<std::string>().find("[REDACTED]"), std::string::npos) << r.dump();
  }
  std::ifstream in(dir_->path() + "/state/audit.jsonl");
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(log.empty());
  for (const auto& secret : secrets) EXPECT_EQ(log.find(secret), std::string::npos) << "the audit log holds " << secret;
  auto verify = Labgate({"audit", "verify"});
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;
}

}  // namespace
}  // namespace labgate::testing
