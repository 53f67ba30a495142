// Log lines under systemd: with stderr connected to the journal (JOURNAL_STREAM names it), each
// line carries its syslog priority and no timestamp of its own; anywhere else, nothing changes.
#include <gtest/gtest.h>

#include "subprocess.h"

namespace labgate::testing {
namespace {

// Runs labgate ARGS with JOURNAL_STREAM set by `journal_stream` (a shell expression), stdin empty.
Completed WithJournalStream(const std::string& journal_stream, const std::vector<std::string>& args,
                            const std::string& cwd) {
  std::vector<std::string> argv = {"/bin/sh", "-c",
                                   "JOURNAL_STREAM=" + journal_stream + " exec \"$0\" \"$@\" </dev/null", LABGATE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunToCompletion(argv, cwd);
}

class JournalLog : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = dir_.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\n");
  }
  TempDir dir_;
  std::string config_;
};

// The device and inode of the shell's stderr: what systemd would put in JOURNAL_STREAM.
const char* kThisStderr = "$(stat -L -c %d:%i /proc/self/fd/2)";

TEST_F(JournalLog, OnTheJournalLinesCarryTheirPriority) {
  auto mcp = WithJournalStream(kThisStderr, {"mcp", "--config", config_}, dir_.path());
  EXPECT_EQ(mcp.status, 0) << mcp.err;
  EXPECT_EQ(mcp.err.rfind("<6>info labgate ", 0), 0u) << mcp.err;  // info, and no timestamp
  auto refused = WithJournalStream(kThisStderr, {"run", "nosuch", "--config", config_, "--", "true"}, dir_.path());
  EXPECT_EQ(refused.status, 255);
  EXPECT_EQ(refused.err.rfind("<3>labgate: ", 0), 0u) << refused.err;
}

TEST_F(JournalLog, AnInheritedVariableForAnotherStreamChangesNothing) {
  // An MCP client started by systemd passes JOURNAL_STREAM on, but labgate's stderr is its pipe.
  auto mcp = WithJournalStream("1:2", {"mcp", "--config", config_}, dir_.path());
  EXPECT_EQ(mcp.status, 0) << mcp.err;
  EXPECT_EQ(mcp.err.find("<6>"), std::string::npos) << mcp.err;
  EXPECT_NE(mcp.err.find(" info labgate "), std::string::npos) << mcp.err;
  auto refused = WithJournalStream("garbage", {"run", "nosuch", "--config", config_, "--", "true"}, dir_.path());
  EXPECT_EQ(refused.err.rfind("labgate: ", 0), 0u) << refused.err;
}

}  // namespace
}  // namespace labgate::testing
