// `file` on SSH hosts (a real sshd serving SFTP) and on `local`, through the CLI and MCP, with
// the assistant's tricks: symlinks, `..`, stale digests, secrets, system paths, oversize files.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/base64.h"
#include "core/hashing.h"
#include "sshd_fixture.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;

std::string Sha256(const std::string& data) { return core::Sha256Hex(data); }

void Spit(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

std::string RandomBytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

class FileOnHosts : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveSshd()) GTEST_SKIP() << "/usr/sbin/sshd is not installed (apt-get install openssh-server)";
    data_ = dir_.path() + "/data";
    std::filesystem::create_directories(data_);
  }

  std::string Config(const Sshd& sshd, const std::string& more = "", const std::string& host_extra = "") {
    std::filesystem::create_directories(dir_.path() + "/state");
    std::ofstream(dir_.path() + "/state/known_hosts", std::ios::app) << sshd.KnownHostsLine() << "\n";
    std::string toml = "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\n\n[local]\ncapabilities = [\"run\", \"file\"]\n\n" +
                       "[[hosts]]\nid = \"h1\"\naddress = \"" + sshd.address() + "\"\nport = " +
                       std::to_string(sshd.port()) + "\nuser = \"" + CurrentUser() + "\"\nidentity_file = \"" +
                       TestClientKey().private_path + "\"\ncapabilities = [\"run\", \"file\"]\n" + host_extra + "\n" + more;
    return dir_.Write("hosts.toml", toml);
  }
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunToCompletion(argv, dir_.path());
  }
  Json LabgateJson(std::vector<std::string> args, int* status = nullptr) {
    args.push_back("--json");
    auto c = Labgate(args);
    if (status) *status = c.status;
    auto j = Json::parse(c.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << c.out << c.err;
    return j;
  }
  std::vector<Json> Audit() { return ReadJsonLines(dir_.path() + "/state/audit.jsonl"); }

  TempDir dir_;
  std::string data_;
};

TEST_F(FileOnHosts, RoundTripsEmptyTextAndBinaryFilesOverSftp) {
  Sshd::Options o;
  o.sftp = true;
  Sshd sshd(o);
  auto cfg = Config(sshd);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"empty", ""}, {"notes.txt", "line one\nline two ü\n"}, {"blob.bin", RandomBytes(20 * 1024 * 1024, 7)}};
  for (const auto& [name, content] : files) {
    const std::string local = dir_.Write("src-" + name, content);
    const std::string remote = data_ + "/" + name;
    int status = -1;
    Json put = LabgateJson({"file", "put", "h1", remote, "--from", local, "--config", cfg}, &status);
    ASSERT_EQ(status, 0) << put.dump();
    EXPECT_EQ(put["via"], "ssh");
    EXPECT_EQ(put["created"], true);
    EXPECT_EQ(put["sha256"], Sha256(content));
    EXPECT_EQ(ReadFile(remote), content) << name;

    const std::string out = dir_.path() + "/got-" + name;
    Json get = LabgateJson({"file", "get", "h1", remote, "-o", out, "--config", cfg}, &status);
    ASSERT_EQ(status, 0) << get.dump();
    EXPECT_EQ(get["sha256"], Sha256(content));
    EXPECT_EQ(get["bytes"], content.size());
    EXPECT_EQ(Sha256(ReadFile(out)), Sha256(content)) << name;

    Json stat = LabgateJson({"file", "stat", "h1", remote, "--config", cfg}, &status);
    ASSERT_EQ(status, 0) << stat.dump();
    EXPECT_EQ(stat["stat"]["type"], "file");
    EXPECT_EQ(stat["stat"]["size"], content.size());
  }
  int status = -1;
  Json read = LabgateJson({"file", "read", "h1", data_ + "/notes.txt", "--config", cfg}, &status);
  ASSERT_EQ(status, 0) << read.dump();
  EXPECT_EQ(read["content"], "line one\nline two ü\n");
  EXPECT_EQ(read["text"], true);
  Json part = LabgateJson({"file", "read", "h1", data_ + "/notes.txt", "--offset", "5", "--length", "3", "--config", cfg});
  EXPECT_EQ(part["content"], "one");
  EXPECT_EQ(part["more"], true);

  Json list = LabgateJson({"file", "list", "h1", data_, "--config", cfg}, &status);
  ASSERT_EQ(status, 0) << list.dump();
  std::vector<std::string> names;
  for (const auto& e : list["entries"]) names.push_back(e["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"blob.bin", "empty", "notes.txt"}));  // sorted, no temp files left

  // Replacing keeps the mode and records the digest of what was there.
  std::filesystem::permissions(data_ + "/notes.txt", std::filesystem::perms(0640));
  const std::string next = dir_.Write("next.txt", "new content\n");
  Json replaced = LabgateJson({"file", "put", "h1", data_ + "/notes.txt", "--from", next, "--config", cfg}, &status);
  ASSERT_EQ(status, 0) << replaced.dump();
  EXPECT_EQ(replaced["created"], false);
  EXPECT_EQ(replaced["previousSha256"], Sha256("line one\nline two ü\n"));
  EXPECT_EQ(replaced["mode"], 0640);
  EXPECT_EQ(static_cast<int>(std::filesystem::status(data_ + "/notes.txt").permissions()), 0640);

  // The audit log has digests before and after, never the content.
  bool saw = false;
  for (const auto& r : Audit()) {
    const std::string text = r.dump();
    EXPECT_EQ(text.find("new content"), std::string::npos);
    EXPECT_EQ(text.find("line two"), std::string::npos);
    if (r.value("kind", "") == "result" && r.value("action", "") == "file.put" && r["file"].contains("previousSha256")) {
      EXPECT_EQ(r["file"]["previousSha256"], Sha256("line one\nline two ü\n"));
      EXPECT_EQ(r["file"]["sha256"], Sha256("new content\n"));
      saw = true;
    }
  }
  EXPECT_TRUE(saw);
}

TEST_F(FileOnHosts, AtomicPut_AReaderNeverSeesAHalfWrittenFile) {
  Sshd::Options o;
  o.sftp = true;
  Sshd sshd(o);
  auto cfg = Config(sshd);
  const std::string a(4 * 1024 * 1024, 'a');
  const std::string b(4 * 1024 * 1024, 'b');
  const std::string fa = dir_.Write("a", a), fb = dir_.Write("b", b);
  const std::string target = data_ + "/swap";
  Spit(target, a);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, torn{0};
  std::thread reader([&] {
    while (!done) {
      const std::string seen = ReadFile(target);
      if (seen != a && seen != b) ++torn;
      ++reads;
    }
  });
  // At least 8 puts, and more until the reader has looked 8 times while they ran: how many
  // reads fit in a put depends on the machine (under TSan a 4 MiB read takes over a second).
  int puts = 0;
  for (; puts < 8 || (reads.load() <= 8 && puts < 64); ++puts) {
    auto c = Labgate({"file", "put", "h1", target, "--from", puts % 2 ? fa : fb, "--config", cfg});
    EXPECT_EQ(c.status, 0) << c.err;
    if (c.status != 0) break;  // the reader thread must still be joined
  }
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 8) << "after " << puts << " puts";
  EXPECT_EQ(torn.load(), 0);
}

TEST_F(FileOnHosts, StaleExpectedDigestIsRefusedAndNothingIsWritten) {
  Sshd::Options o;
  o.sftp = true;
  Sshd sshd(o);
  auto cfg = Config(sshd);
  Spit(data_ + "/compose.yml", "version: 1\n");
  const std::string mine = dir_.Write("mine", "version: 2\n");
  // Someone else changed the file after the assistant read it.
  const std::string read_digest = Sha256("version: 1\n");
  Spit(data_ + "/compose.yml", "version: 1 # edited by a human\n");
  int status = -1;
  Json r = LabgateJson({"file", "put", "h1", data_ + "/compose.yml", "--from", mine, "--expect", read_digest, "--config", cfg},
                       &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(r["error"].get<std::string>().find("someone changed it since it was read"), std::string::npos) << r.dump();
  EXPECT_EQ(ReadFile(data_ + "/compose.yml"), "version: 1 # edited by a human\n");
  // --expect "" means "must not exist"; --create-only likewise.
  Json again = LabgateJson({"file", "put", "h1", data_ + "/compose.yml", "--from", mine, "--create-only", "--config", cfg},
                           &status);
  EXPECT_NE(status, 0);
  EXPECT_EQ(ReadFile(data_ + "/compose.yml"), "version: 1 # edited by a human\n");
  Json fresh = LabgateJson({"file", "put", "h1", data_ + "/new.yml", "--from", mine, "--expect", "", "--config", cfg}, &status);
  EXPECT_EQ(status, 0) << fresh.dump();
  EXPECT_EQ(ReadFile(data_ + "/new.yml"), "version: 2\n");
}

TEST_F(FileOnHosts, SymlinksAndDotDotCannotReachASecretOrADeniedPath) {
  Sshd::Options o;
  o.sftp = true;
  Sshd sshd(o);
  const std::string outside = dir_.path() + "/outside";
  std::filesystem::create_directories(outside);
  auto cfg = Config(sshd, "", "file_write_deny = [\"" + outside + "/*\"]\nfile_read_deny = [\"" + outside + "/*\"]\n");
  std::filesystem::create_directories(dir_.path() + "/.ssh");
  Spit(dir_.path() + "/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
  Spit(outside + "/precious", "keep me\n");
  std::filesystem::create_symlink(dir_.path() + "/.ssh/id_ed25519", data_ + "/innocent.txt");
  std::filesystem::create_symlink(outside + "/precious", data_ + "/link");
  std::filesystem::create_symlink(outside, data_ + "/dirlink");
  const std::string payload = dir_.Write("payload", "overwritten\n");

  struct Case {
    std::vector<std::string> args;
    std::string rule;
  };
  const std::vector<Case> cases = {
      {{"read", "h1", data_ + "/innocent.txt"}, "builtin:secret file"},
      {{"read", "h1", data_ + "/../.ssh/id_ed25519"}, "builtin:secret file"},
      {{"read", "h1", data_ + "/..//./.ssh/id_ed25519"}, "builtin:secret file"},
      {{"get", "h1", data_ + "/innocent.txt"}, "builtin:secret file"},
      {{"read", "h1", data_ + "/link"}, "targets.h1.file_read_deny"},
      {{"read", "h1", data_ + "/dirlink/precious"}, "targets.h1.file_read_deny"},
      {{"put", "h1", data_ + "/link", "--from", payload}, "targets.h1.file_write_deny"},
      {{"put", "h1", data_ + "/dirlink/precious", "--from", payload}, "targets.h1.file_write_deny"},
      {{"put", "h1", data_ + "/../outside/precious", "--from", payload}, "targets.h1.file_write_deny"},
      {{"put", "h1", data_ + "/dirlink/new", "--from", payload}, "targets.h1.file_write_deny"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"file"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.insert(args.end(), {"--config", cfg});
    int status = -1;
    Json r = LabgateJson(args, &status);
    EXPECT_NE(status, 0) << c.args[0] << " " << c.args[2];
    EXPECT_EQ(r["decision"], "refused") << r.dump();
    EXPECT_EQ(r["rule"], c.rule) << c.args[0] << " " << c.args[2] << ": " << r.dump();
    const std::string text = r.dump();
    EXPECT_EQ(text.find("AAAA"), std::string::npos) << text;
  }
  EXPECT_EQ(ReadFile(outside + "/precious"), "keep me\n");
  EXPECT_FALSE(std::filesystem::exists(outside + "/new"));
  // Each refusal is in the audit log, naming the rule; none has an intent.
  int refusals = 0;
  for (const auto& r : Audit()) {
    EXPECT_NE(r.value("kind", ""), "intent") << r.dump();
    if (r.value("kind", "") == "refusal") ++refusals;
  }
  EXPECT_EQ(refusals, static_cast<int>(cases.size()));

  // A key under an ordinary name is withheld by its content.
  Spit(data_ + "/notes.txt", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n");
  int status = -1;
  Json r = LabgateJson({"file", "read", "h1", data_ + "/notes.txt", "--config", cfg}, &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(r["error"].get<std::string>().find("holds a private key"), std::string::npos) << r.dump();
  EXPECT_EQ(r.dump().find("MIIE"), std::string::npos);
}

TEST_F(FileOnHosts, AnOperatorReadAllowRuleAdmitsASecret) {
  Sshd::Options o;
  o.sftp = true;
  Sshd sshd(o);
  std::filesystem::create_directories(dir_.path() + "/.ssh");
  Spit(dir_.path() + "/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
  auto cfg = Config(sshd, "[policies.file]\nread_allow = [\"" + dir_.path() + "/.ssh/id_ed25519\"]\n");
  int status = -1;
  Json r = LabgateJson({"file", "read", "h1", dir_.path() + "/.ssh/id_ed25519", "--config", cfg}, &status);
  EXPECT_EQ(status, 0) << r.dump();
  EXPECT_EQ(r["rule"], "policies.file.read_allow");
}

TEST_F(FileOnHosts, WritingIntoEtcNeedsAHumanAndNothingIsWrittenMeanwhile) {
  Sshd::Options o;
  o.sftp = true;
  Sshd sshd(o);
  auto cfg = Config(sshd);
  const std::string payload = dir_.Write("payload", "pwned\n");
  const std::string target = "/etc/labgate-file-test-" + std::to_string(::getpid());
  int status = -1;
  Json r = LabgateJson({"file", "put", "h1", target, "--from", payload, "--config", cfg}, &status);
  EXPECT_NE(status, 0);
  EXPECT_EQ(r["rule"], "mode.confirm-destructive") << r.dump();
  EXPECT_EQ(r["decision"], "approval-pending") << r.dump();
  EXPECT_FALSE(std::filesystem::exists(target));
  // An approval-looking argument in MCP does not stand in for the human (run's tests cover the
  // tool path; here: a daily-role target refuses outright).
  auto daily = Config(sshd, "", "role = \"daily\"\n");
  Json d = LabgateJson({"file", "put", "h1", target, "--from", payload, "--config", daily}, &status);
  EXPECT_EQ(d["rule"], "targets.h1.role") << d.dump();
  EXPECT_FALSE(std::filesystem::exists(target));
}

TEST_F(FileOnHosts, SizeCapsAndAHostWithoutSftpGiveClearErrors) {
  Sshd::Options o;
  o.sftp = true;
  Sshd sshd(o);
  auto cfg = Config(sshd, "[policies.file]\nmax_read_bytes = 1000\nmax_write_bytes = 2000\n");
  Spit(data_ + "/big", std::string(5000, 'x'));
  int status = -1;
  Json r = LabgateJson({"file", "get", "h1", data_ + "/big", "--config", cfg}, &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(r["error"].get<std::string>().find("max_read_bytes"), std::string::npos) << r.dump();
  const std::string big = dir_.Write("bigput", std::string(3000, 'y'));
  Json w = LabgateJson({"file", "put", "h1", data_ + "/big2", "--from", big, "--config", cfg}, &status);
  EXPECT_NE(status, 0);
  EXPECT_EQ(w["rule"], "policies.file.max_write_bytes") << w.dump();
  EXPECT_FALSE(std::filesystem::exists(data_ + "/big2"));

  Sshd bare({"127.0.0.3"});
  auto cfg2 = Config(bare);
  Json n = LabgateJson({"file", "stat", "h1", data_ + "/big", "--config", cfg2}, &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(n["error"].get<std::string>().find("has no SFTP server"), std::string::npos) << n.dump();
  // run still works there.
  auto c = Labgate({"run", "h1", "--config", cfg2, "--", "true"});
  EXPECT_EQ(c.status, 0) << c.err;
}

TEST_F(FileOnHosts, McpFileToolReadsTextAndGetServesAResourceLink) {
  Sshd::Options o;
  o.sftp = true;
  Sshd sshd(o);
  auto cfg = Config(sshd);
  const std::string content = RandomBytes(300 * 1024, 3);
  Spit(data_ + "/notes.txt", "hello from the host\n");
  Spit(data_ + "/blob", content);
  Subprocess p({LABGATE_BINARY, "mcp", "--config", cfg});
  p.Send({{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
          {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()},
                      {"clientInfo", {{"name", "file-test"}, {"version", "1"}}}}}});
  p.ReadResponse(0);
  p.Send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  auto call = [&](int id, const Json& args) {
    p.Send({{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", {{"name", "file"}, {"arguments", args}}}});
    return p.ReadResponse(id, std::chrono::seconds(60))["result"];
  };
  Json read = call(1, {{"target", "h1"}, {"op", "read"}, {"path", data_ + "/notes.txt"}});
  EXPECT_FALSE(read.value("isError", false)) << read.dump();
  EXPECT_NE(read["content"].back()["text"].get<std::string>().find("hello from the host"), std::string::npos);

  Json get = call(2, {{"target", "h1"}, {"op", "get"}, {"path", data_ + "/blob"}});
  ASSERT_FALSE(get.value("isError", false)) << get.dump();
  Json link;
  for (const auto& block : get["content"]) {
    if (block["type"] == "resource_link") link = block;
  }
  ASSERT_TRUE(link.is_object()) << get.dump();
  EXPECT_EQ(get["structuredContent"]["sha256"], Sha256(content));
  p.Send({{"jsonrpc", "2.0"}, {"id", 3}, {"method", "resources/read"}, {"params", {{"uri", link["uri"]}}}});
  Json res = p.ReadResponse(3, std::chrono::seconds(30));
  ASSERT_TRUE(res.contains("result")) << res.dump();
  auto blob = res["result"]["contents"][0]["blob"].get<std::string>();
  auto bytes = core::Base64Decode(blob);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(Sha256(*bytes), Sha256(content));

  // An approval-looking argument is ignored and said so; the refusal stands.
  Json sneaky = call(4, {{"target", "h1"}, {"op", "put"}, {"path", "/etc/labgate-sneaky"}, {"content", "x"},
                         {"approved", true}});
  EXPECT_TRUE(sneaky.value("isError", false));
  EXPECT_FALSE(std::filesystem::exists("/etc/labgate-sneaky"));
}

TEST_F(FileOnHosts, LocalTargetHonoursTheSameRulesAndNeverTouchesLabgateState) {
  Sshd::Options o;
  Sshd sshd(o);
  auto cfg = Config(sshd);
  const std::string payload = dir_.Write("payload", "{}\n");
  int status = -1;
  // hosts.toml itself and the audit log: never, whatever the spelling.
  for (const std::string& path : {cfg, dir_.path() + "/state/audit.jsonl", dir_.path() + "/data/../state/audit.jsonl",
                                  dir_.path() + "/state/../hosts.toml"}) {
    Json w = LabgateJson({"file", "put", "local", path, "--from", payload, "--config", cfg}, &status);
    EXPECT_EQ(w["rule"], "builtin:labgate state") << path << ": " << w.dump();
    Json r = LabgateJson({"file", "read", "local", path, "--config", cfg}, &status);
    EXPECT_EQ(r["rule"], "builtin:labgate state") << path << ": " << r.dump();
  }
  // A symlink placed beside data pointing into the state dir does not get around it.
  std::filesystem::create_symlink(dir_.path() + "/state", data_ + "/st");
  Json w = LabgateJson({"file", "put", "local", data_ + "/st/approvals.json", "--from", payload, "--config", cfg}, &status);
  EXPECT_EQ(w["rule"], "builtin:labgate state") << w.dump();
  EXPECT_EQ(ReadFile(cfg).find("{}"), std::string::npos);
  // An ordinary local round trip works.
  Json put = LabgateJson({"file", "put", "local", data_ + "/x.json", "--from", payload, "--config", cfg}, &status);
  EXPECT_EQ(status, 0) << put.dump();
  EXPECT_EQ(ReadFile(data_ + "/x.json"), "{}\n");
}

}  // namespace
}  // namespace labgate::testing
