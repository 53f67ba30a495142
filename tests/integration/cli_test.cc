// The `labgate` command line, run as a real process.
#include <gtest/gtest.h>

#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { config_ = dir_.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\n"); }
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunToCompletion(argv, dir_.path());
  }
  TempDir dir_;
  std::string config_;
};

TEST_F(Cli, RunLocalUname_PrintsResultAndAuditsIntentAndResult) {
  auto c = Labgate({"run", "local", "--config", config_, "--", "uname", "-a"});
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out.rfind("Linux", 0), 0u) << c.out;
  auto records = ReadJsonLines(dir_.path() + "/state/audit.jsonl");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["kind"], "intent");
  EXPECT_EQ(records[0]["payload"]["argv"], (Json{"uname", "-a"}));
  EXPECT_EQ(records[0]["who"]["via"], "cli");
  EXPECT_FALSE(records[0]["who"]["osUser"].get<std::string>().empty());
  EXPECT_EQ(records[1]["kind"], "result");
  EXPECT_EQ(records[1]["exitCode"], 0);
  EXPECT_EQ(records[1]["prev"], records[0]["hash"]);
}

TEST_F(Cli, HostsTomlInWorkingDirectoryIsTheDefault) {
  auto c = Labgate({"run", "local", "true"});
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(ReadJsonLines(dir_.path() + "/state/audit.jsonl").size(), 2u);
}

TEST_F(Cli, ShellCommandExitCodeIsPassedThrough) {
  auto c = Labgate({"run", "local", "--config", config_, "--shell", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(c.status, 7);
  EXPECT_EQ(c.out, "out\n");
  EXPECT_EQ(c.err, "err\n");
}

TEST_F(Cli, JsonOutputHasTheToolShape) {
  auto c = Labgate({"run", "local", "--config", config_, "--json", "--", "echo", "hi"});
  EXPECT_EQ(c.status, 0) << c.err;
  Json j = Json::parse(c.out);
  EXPECT_EQ(j["results"][0]["stdout"], "hi\n");
  EXPECT_EQ(j["results"][0]["via"], "local");
  EXPECT_EQ(j["summary"]["ok"], 1);
}

TEST_F(Cli, TimeoutExitsWith124) {
  auto c = Labgate({"run", "local", "--config", config_, "--timeout", "200ms", "--", "sleep", "30.0123"});
  EXPECT_EQ(c.status, 124);
  EXPECT_NE(c.err.find("timed out"), std::string::npos);
  EXPECT_TRUE(WaitUntilGone("30.0123", std::chrono::seconds(5)));
}

TEST_F(Cli, UnknownTargetIsAClearErrorAndAudited) {
  auto c = Labgate({"run", "prox9", "--config", config_, "--", "true"});
  EXPECT_EQ(c.status, 255);
  EXPECT_NE(c.err.find("unknown target 'prox9'"), std::string::npos) << c.err;
  auto records = ReadJsonLines(dir_.path() + "/state/audit.jsonl");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["kind"], "refusal");
}

TEST_F(Cli, CommandNotFoundIsAClearError) {
  // An unknown program needs a human; an operator rule lets this one through to the runner.
  config_ = dir_.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir_.path() +
                                         "/state\"\n[classify]\nread_only = [\"no-such-program-xyz\"]\n");
  auto c = Labgate({"run", "local", "--config", config_, "--", "no-such-program-xyz"});
  EXPECT_EQ(c.status, 255);
  EXPECT_NE(c.err.find("command not found: no-such-program-xyz"), std::string::npos) << c.err;
}

TEST_F(Cli, UnwritableAuditLogRefusesToRun) {
  std::string marker = dir_.path() + "/ran";
  std::string cfg = dir_.Write("ro.toml", "[gateway]\naudit_log = \"/proc/labgate/audit.jsonl\"\n");
  auto c = Labgate({"run", "local", "--config", cfg, "--", "touch", marker});
  EXPECT_EQ(c.status, 255);
  EXPECT_NE(c.err.find("audit log could not record the intent"), std::string::npos) << c.err;
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(Cli, InvalidConfigNamesFileLineAndKey) {
  std::string bad = dir_.Write("bad.toml", "[[hosts]]\nid = \"a\"\naddress = \"x\"\nport = \"22\"\n");
  auto c = Labgate({"targets", "--config", bad});
  EXPECT_NE(c.status, 0);
  EXPECT_NE(c.err.find(bad + ":4: hosts[0].port: must be an integer"), std::string::npos) << c.err;
}

TEST_F(Cli, TargetsListsLocal) {
  auto c = Labgate({"targets", "--config", config_, "--json"});
  EXPECT_EQ(c.status, 0) << c.err;
  Json j = Json::parse(c.out);
  EXPECT_EQ(j["targets"][0]["id"], "local");
  EXPECT_EQ(j["targets"][0]["online"], true);
}

TEST_F(Cli, VersionAndHelpForEveryVerb) {
  auto v = Labgate({"--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out.rfind("labgate ", 0), 0u);
  for (std::string verb : {"mcp", "run", "targets", "help"}) {
    auto h = Labgate({verb, "--help"});
    EXPECT_EQ(h.status, 0) << verb;
    EXPECT_NE(h.out.find("usage: labgate " + verb), std::string::npos) << verb << ": " << h.out;
  }
  auto unknown = Labgate({"frobnicate"});
  EXPECT_EQ(unknown.status, 2);
}

TEST_F(Cli, BundledHostsTomlWorks) {
  auto c = Labgate({"run", "local", "--config", std::string(LABGATE_SOURCE_DIR) + "/hosts.toml", "--json", "--", "true"});
  // The bundled file keeps state under the user's home; only check that it loads and runs.
  EXPECT_EQ(c.status, 0) << c.err;
}

}  // namespace
}  // namespace labgate::testing
