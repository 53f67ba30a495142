// Day-2 hardening on real processes: a daily-use node never receives privileged commands,
// hosts.toml reloads (on change and on SIGHUP) without dropping node sessions and keep the old
// inventory when the new one is invalid, and the node listener refuses sources outside
// allowed_networks and sources that keep failing to log in, before any SSH byte.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh/libssh.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "nodes/agent_protocol.h"
#include "sshd_fixture.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

// What a TCP client connecting from `source` to 127.0.0.1:`port` reads first (up to 2 s):
// "SSH-2.0-..." when the listener admits it, "" when it closes the connection at once.
std::string FirstBytesFrom(const std::string& source, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    ::close(fd);
    return "bind failed";
  }
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    ::close(fd);
    return "connect failed";
  }
  std::string got;
  pollfd p{fd, POLLIN, 0};
  while (got.find('\n') == std::string::npos && ::poll(&p, 1, 2000) > 0) {
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return got;
}

std::vector<Json> Events(const std::string& audit_log, const std::string& name) {
  std::vector<Json> out;
  for (const auto& r : ReadJsonLines(audit_log)) {
    if (r.value("event", "") == name) out.push_back(r);
  }
  return out;
}

// Writes `text` to `path` the way an editor or `labgate hosts` does: a new file renamed over it.
void ReplaceFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::filesystem::rename(tmp, path);
}

// A gateway with a daily-use node `desk` and an operator config that would run anything.
class Hardening : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    state_ = dir_->path() + "/state";
    std::filesystem::create_directories(state_);
    port_ = FreePort();
    config_ = dir_->path() + "/hosts.toml";
    std::ofstream(config_) << ConfigText("");
    // The CLI reads its own copy, so it keeps working while the gateway's file is broken.
    client_config_ = dir_->Write("client.toml", ConfigText(""));
    gateway_ = new Subprocess({LABGATE_BINARY, "gateway", "--config", config_});
    if (!GatewayAnswers(client_config_, dir_->path())) {
      setup_error_ = "gateway did not answer";
      return;
    }
    const std::string device = dir_->path() + "/device-desk";
    if (setup_error_ = PairNode(client_config_, "desk", device, dir_->path()); !setup_error_.empty()) return;
    agent_ = new Subprocess({LABGATE_BINARY, "node", "run", "--state-dir", device});
    ready_ = NodeOnline(client_config_, "desk", dir_->path());
    if (!ready_) setup_error_ = "node desk did not come online: " + agent_->Stderr();
  }
  static void TearDownTestSuite() {
    if (agent_) ::kill(agent_->pid(), SIGTERM);
    if (gateway_) ::kill(gateway_->pid(), SIGTERM);
    delete agent_;
    delete gateway_;
    delete dir_;
    agent_ = nullptr;
    gateway_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(ready_) << setup_error_ << "\n" << (gateway_ ? gateway_->Stderr() : "");
  }

  static std::string ConfigText(const std::string& extra_deny) {
    return "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\nstate_dir = \"" + state_ +
           "\"\n\n"
           "[policies.run]\nmode = \"full\"\nallow = [\"sudo *\", \"tee *\"]\n" +
           (extra_deny.empty() ? "" : "deny = [\"" + extra_deny + "\"]\n") +
           "\n[[nodes]]\nid = \"desk\"\nrole = \"daily\"\ncapabilities = [\"run\"]\n";
  }
  static Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY, args[0], "--config", client_config_.empty() ? config_ : client_config_};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    return RunToCompletion(argv, dir_->path());
  }
  static Json RunJson(const std::string& target, const std::string& shell) {
    auto c = Labgate({"run", target, "--json", "--shell", shell});
    Json j = Json::parse(c.out, nullptr, false);
    return j.is_discarded() ? Json{{"cliError", c.err}} : j;
  }
  static Json DeskListing() {
    auto list = Json::parse(Labgate({"nodes", "list", "--json"}).out, nullptr, false);
    if (list.is_object()) {
      for (const auto& n : list["nodes"]) {
        if (n.value("id", "") == "desk") return n;
      }
    }
    return Json::object();
  }
  static std::string AuditLog() { return state_ + "/audit.jsonl"; }

  static TempDir* dir_;
  static Subprocess* gateway_;
  static Subprocess* agent_;
  static std::string state_;
  static std::string config_;
  static std::string client_config_;
  static int port_;
  static bool ready_;
  static std::string setup_error_;
};

TempDir* Hardening::dir_ = nullptr;
Subprocess* Hardening::gateway_ = nullptr;
Subprocess* Hardening::agent_ = nullptr;
std::string Hardening::state_;
std::string Hardening::config_;
std::string Hardening::client_config_;
int Hardening::port_ = 0;
bool Hardening::ready_ = false;
std::string Hardening::setup_error_;

TEST_F(Hardening, DailyNode_RefusesSudo_EvenWhenTheOperatorConfigAllowsIt) {
  // The node works: an ordinary command runs there.
  Json hello = RunJson("desk", "echo hello-from-desk");
  ASSERT_TRUE(hello.contains("results")) << hello.dump();
  EXPECT_EQ(hello["results"][0]["exitCode"], 0) << hello.dump();
  EXPECT_NE(hello["results"][0]["stdout"].get<std::string>().find("hello-from-desk"), std::string::npos);

  const std::string marker = dir_->path() + "/sudo-ran";
  const std::vector<std::string> commands = {"sudo touch " + marker, "sudo -n true && touch " + marker,
                                             "echo x | tee /etc/labgate-daily-test", "doas touch " + marker};
  for (const std::string& command : commands) {
    Json refused = RunJson("desk", command);
    ASSERT_TRUE(refused.contains("results")) << refused.dump();
    const Json& r = refused["results"][0];
    EXPECT_EQ(r["decision"], "refused") << command << ": " << r.dump();
    EXPECT_EQ(r["rule"], "targets.desk.role") << command << ": " << r.dump();
    EXPECT_TRUE(r["exitCode"].is_null()) << "nothing may run: " << r.dump();
  }
  EXPECT_FALSE(std::filesystem::exists(marker));
  EXPECT_FALSE(std::filesystem::exists("/etc/labgate-daily-test"));
  // Each refusal is in the audit log with the rule that made it.
  int audited = 0;
  for (const auto& rec : ReadJsonLines(AuditLog())) {
    const std::string text = rec.dump();
    if (text.find("\"desk\"") != std::string::npos && text.find("targets.desk.role") != std::string::npos) ++audited;
  }
  EXPECT_GE(audited, 4);
}

TEST_F(Hardening, Reload_OnFileChange_AppliesNewPolicyAndKeepsTheNodeSession) {
  const Json before = DeskListing();
  ASSERT_TRUE(before.value("online", false)) << before.dump();
  const std::size_t reloads = Events(AuditLog(), "policy.loaded").size();

  const std::string updated = ConfigText("echo reload-marker*");
  ReplaceFile(config_, updated);
  std::ofstream(client_config_) << updated;
  ASSERT_TRUE(PollUntil([&] { return Events(AuditLog(), "policy.loaded").size() > reloads; }, milliseconds(10000)))
      << gateway_->Stderr();
  const Json loaded = Events(AuditLog(), "policy.loaded").back();
  EXPECT_EQ(loaded["details"]["process"], "reload");
  // What changed is in the record, for the operator who did not make the change.
  EXPECT_EQ(loaded["details"]["changes"], Json::array({"+ policies.run.deny \"echo reload-marker*\""}))
      << loaded.dump();

  // The gateway decides with the new rules ...
  Json refused = RunJson("desk", "echo reload-marker");
  ASSERT_TRUE(refused.contains("results")) << refused.dump();
  EXPECT_EQ(refused["results"][0]["rule"], "policies.run.deny") << refused.dump();
  // ... over the same node session: same TCP peer, no offline event.
  const Json after = DeskListing();
  EXPECT_TRUE(after.value("online", false));
  EXPECT_EQ(after["peer"], before["peer"]);
  EXPECT_TRUE(Events(AuditLog(), "node.offline").empty());

  ReplaceFile(config_, ConfigText(""));
  std::ofstream(client_config_) << ConfigText("");
  ASSERT_TRUE(PollUntil([&] { return Events(AuditLog(), "policy.loaded").size() > reloads + 1; }, milliseconds(10000)));
  EXPECT_EQ(Events(AuditLog(), "policy.loaded").back()["details"]["changes"],
            Json::array({"- policies.run.deny \"echo reload-marker*\""}));
}

TEST_F(Hardening, Reload_InvalidFile_KeepsTheOldInventoryAndSaysWhy) {
  const std::size_t loads = Events(AuditLog(), "policy.loaded").size();
  ReplaceFile(config_, ConfigText("") + "colour = \"blue\"\n");
  ASSERT_TRUE(PollUntil([&] { return !Events(AuditLog(), "policy.reload_refused").empty(); }, milliseconds(10000)))
      << gateway_->Stderr();
  const Json refusal = Events(AuditLog(), "policy.reload_refused").back();
  const std::string error = refusal["details"]["error"];
  EXPECT_NE(error.find(config_ + ":"), std::string::npos) << error;
  EXPECT_NE(error.find("colour"), std::string::npos) << error;
  EXPECT_EQ(Events(AuditLog(), "policy.loaded").size(), loads) << "the broken file must not be put in force";
  EXPECT_TRUE(PollUntil([&] { return gateway_->Stderr().find("keeps the inventory it had") != std::string::npos; },
                        milliseconds(3000)));

  // The gateway still serves the node under the inventory it had.
  Json still = RunJson("desk", "echo still-served");
  ASSERT_TRUE(still.contains("results")) << still.dump();
  EXPECT_EQ(still["results"][0]["exitCode"], 0) << still.dump();
  Json sudo = RunJson("desk", "sudo true");
  EXPECT_EQ(sudo["results"][0]["rule"], "targets.desk.role") << sudo.dump();

  // Fixed and announced with SIGHUP: in force again.
  {
    std::ofstream out(config_, std::ios::trunc);
    out << ConfigText("");
  }
  ::kill(gateway_->pid(), SIGHUP);
  ASSERT_TRUE(PollUntil([&] { return Events(AuditLog(), "policy.loaded").size() > loads; }, milliseconds(10000)))
      << gateway_->Stderr();
  EXPECT_TRUE(DeskListing().value("online", false));
}

// A second gateway that admits only 127.0.0.2 and 127.0.0.3, and refuses a source after two
// failed logins.
class ListenerHardening : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = dir_.path() + "/state";
    std::filesystem::create_directories(state_);
    port_ = FreePort();
    config_ = dir_.Write("hosts.toml", "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(port_) +
                                           "\"\nstate_dir = \"" + state_ +
                                           "\"\nallowed_networks = [\"127.0.0.2/32\", \"127.0.0.3/32\"]\n"
                                           "auth_fail_limit = 2\n\n[[nodes]]\nid = \"far\"\ncapabilities = [\"run\"]\n");
    gateway_ = std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "gateway", "--config", config_});
    ASSERT_TRUE(GatewayAnswers(config_, dir_.path()))
        << gateway_->Stderr();
  }
  void TearDown() override {
    if (gateway_) ::kill(gateway_->pid(), SIGTERM);
  }
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY, args[0], "--config", config_};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    return RunToCompletion(argv, dir_.path());
  }
  std::vector<Json> Refusals(const std::string& rule) {
    std::vector<Json> out;
    for (const auto& e : Events(state_ + "/audit.jsonl", "connection.refused")) {
      if (e["details"].value("rule", "") == rule) out.push_back(e);
    }
    return out;
  }

  TempDir dir_;
  std::string state_;
  std::string config_;
  int port_ = 0;
  std::unique_ptr<Subprocess> gateway_;
};

TEST_F(ListenerHardening, SourceOutsideAllowedNetworks_RefusedBeforeTheHandshakeAndAudited) {
  // From 127.0.0.1 (outside): closed at once, not even the SSH banner.
  EXPECT_EQ(FirstBytesFrom("127.0.0.1", port_), "");
  // From a second loopback address inside the list: the SSH server answers.
  EXPECT_EQ(FirstBytesFrom("127.0.0.2", port_).rfind("SSH-2.0-", 0), 0u);

  // A real node pairing from outside fails, and the gateway says why in the audit log.
  const std::string failed = PairNode(config_, "far", dir_.path() + "/device-far", dir_.path());
  EXPECT_EQ(failed.rfind("node pair: ", 0), 0u) << "pairing must fail at the device's connection: " << failed;
  ASSERT_TRUE(PollUntil([&] { return !Refusals("gateway.allowed_networks").empty(); }, milliseconds(5000)));
  const Json refusal = Refusals("gateway.allowed_networks").front();
  EXPECT_EQ(refusal["details"]["peer"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << refusal.dump();
  EXPECT_NE(refusal["details"]["detail"].get<std::string>().find("allowed_networks"), std::string::npos);
  // Nothing got as far as a login attempt.
  EXPECT_TRUE(Events(state_ + "/audit.jsonl", "auth.refused").empty());
}

TEST_F(ListenerHardening, RepeatedFailedLogins_SourceRefusedBeforeTheHandshake) {
  // Two logins with a key the gateway does not know, from 127.0.0.3, with OpenSSH's client.
  for (int i = 0; i < 2; ++i) {
    auto attempt = RunToCompletion({"/usr/bin/ssh", "-F", "/dev/null", "-b", "127.0.0.3", "-p", std::to_string(port_),
                                    "-i", TestClientKey().private_path, "-o", "BatchMode=yes", "-o",
                                    "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o",
                                    "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "far@127.0.0.1", "true"});
    EXPECT_NE(attempt.status, 0);
  }
  ASSERT_TRUE(PollUntil([&] { return Events(state_ + "/audit.jsonl", "auth.refused").size() >= 2; },
                        milliseconds(5000)));
  // The third connection from that address gets no handshake, only one line saying why and until
  // when (where the SSH version line would be); the other address still gets the SSH server.
  const std::string said = FirstBytesFrom("127.0.0.3", port_);
  EXPECT_EQ(said.rfind(nodes::kLockedOutPrefix, 0), 0u) << said;
  EXPECT_NE(said.find("failed to log in 2 times"), std::string::npos) << said;
  EXPECT_NE(said.find(", until 20"), std::string::npos) << said;
  EXPECT_EQ(said.find("SSH-2.0-"), std::string::npos) << said;
  EXPECT_EQ(FirstBytesFrom("127.0.0.2", port_).rfind("SSH-2.0-", 0), 0u);
  ASSERT_TRUE(PollUntil([&] { return !Refusals("gateway.auth_fail_limit").empty(); }, milliseconds(5000)));
  EXPECT_EQ(Refusals("gateway.auth_fail_limit").front()["details"]["peer"].get<std::string>().rfind("127.0.0.3:", 0), 0u);
  // The operator sees the lockout and until when in `nodes list`.
  auto list = Labgate({"nodes", "list", "--json"});
  ASSERT_EQ(list.status, 0) << list.err;
  const Json locked = Json::parse(list.out)["lockedOut"];
  ASSERT_EQ(locked.size(), 1u) << list.out;
  EXPECT_EQ(locked[0]["address"], "127.0.0.3");
  EXPECT_EQ(locked[0]["failures"], 2);
  EXPECT_EQ(locked[0]["until"].get<std::string>().rfind("20", 0), 0u) << locked.dump();
  auto text = Labgate({"nodes", "list"});
  EXPECT_NE(text.out.find("locked out: 127.0.0.3 until 20"), std::string::npos) << text.out;
}

TEST_F(ListenerHardening, RefusedLoginThatStaysConnected_CountsOnce) {
  // Issue 16: a refused login was counted again when the listener's tick closed the connection
  // 10 s later, so a node locked itself out twice as fast. With auth_fail_limit = 2 here, a
  // second count would lock 127.0.0.2 out.
  ssh_session session = ssh_new();
  const int port = port_;
  const int zero = 0;
  const long secs = 10;
  ssh_options_set(session, SSH_OPTIONS_HOST, "127.0.0.1");
  ssh_options_set(session, SSH_OPTIONS_BINDADDR, "127.0.0.2");
  ssh_options_set(session, SSH_OPTIONS_PORT, &port);
  ssh_options_set(session, SSH_OPTIONS_PROCESS_CONFIG, &zero);
  ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &secs);
  ssh_options_set(session, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
  ASSERT_EQ(ssh_connect(session), SSH_OK) << ssh_get_error(session);
  ssh_key key = nullptr;
  ASSERT_EQ(ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key), SSH_OK);
  EXPECT_EQ(ssh_userauth_publickey(session, "far", key), SSH_AUTH_DENIED);
  ssh_key_free(key);
  // Stay connected past the 10 s login deadline, so the listener's tick closes the session.
  std::this_thread::sleep_for(milliseconds(11500));
  ssh_disconnect(session);
  ssh_free(session);
  std::vector<Json> refused;
  for (const auto& e : Events(state_ + "/audit.jsonl", "auth.refused")) {
    if (e["details"]["peer"].get<std::string>().rfind("127.0.0.2:", 0) == 0) refused.push_back(e);
  }
  EXPECT_EQ(refused.size(), 1u);
  EXPECT_EQ(FirstBytesFrom("127.0.0.2", port_).rfind("SSH-2.0-", 0), 0u) << "one refused login locked the address out";
}

}  // namespace
}  // namespace labgate::testing
