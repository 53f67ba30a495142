#include "ssh/remote_command.h"

#include <gtest/gtest.h>

namespace labgate::ssh {
namespace {

TEST(RemoteCommand, ArgvIsQuotedAndTaggedWithTheRunId) {
  auto c = BuildRemoteCommand({"printf", "%s\n", "a'b", "$(id)"}, std::nullopt, "", {}, "00ff");
  ASSERT_TRUE(c.error.empty()) << c.error;
  EXPECT_EQ(c.text, "LABGATE_RUN=00ff 'printf' '%s\n' 'a'\\''b' '$(id)'");
}

TEST(RemoteCommand, ProgramNameIsAlwaysQuoted) {
  // A quoted word is never a reserved word: `if` is looked up as a program.
  EXPECT_EQ(BuildRemoteCommand({"if"}, std::nullopt, "", {}, "1").text, "LABGATE_RUN=1 'if'");
}

TEST(RemoteCommand, ShellStringRunsUnderBinSh) {
  auto c = BuildRemoteCommand({}, std::string("df -h | tail -1"), "", {}, "1");
  EXPECT_EQ(c.text, "LABGATE_RUN=1 /bin/sh -c 'df -h | tail -1'");
}

TEST(RemoteCommand, CwdAndEnvComeFirst) {
  auto c = BuildRemoteCommand({"pwd"}, std::nullopt, "-odd dir", {{"A_B", "x y"}}, "1");
  EXPECT_EQ(c.text,
            "cd './-odd dir' || { printf '%s\\n' 'labgate: cannot change to directory -odd dir' >&2; exit 125; }; "
            "LABGATE_RUN=1 A_B='x y' 'pwd'");
}

TEST(RemoteCommand, RefusesWhatCannotBeSent) {
  EXPECT_FALSE(BuildRemoteCommand({std::string("a\0b", 3)}, std::nullopt, "", {}, "1").error.empty());
  EXPECT_FALSE(BuildRemoteCommand({"true"}, std::nullopt, "", {{"1BAD", "x"}}, "1").error.empty());
  EXPECT_FALSE(BuildRemoteCommand({"true"}, std::nullopt, "", {{"A;B", "x"}}, "1").error.empty());
  EXPECT_FALSE(BuildRemoteCommand({}, std::nullopt, "", {}, "1").error.empty());
}

TEST(RemoteCommand, KillScriptTargetsTheRunIdAndEscalates) {
  std::string script = KillScript("abc123", 500);
  EXPECT_NE(script.find("n=abc123"), std::string::npos);
  EXPECT_NE(script.find("LABGATE_RUN=$n"), std::string::npos);
  EXPECT_NE(script.find("kill -TERM -$g"), std::string::npos);
  EXPECT_NE(script.find("kill -KILL -$g"), std::string::npos);
  EXPECT_EQ(script.find("kill --"), std::string::npos) << "dash's kill rejects --";
}

TEST(RemoteCommand, RunIdsAreFreshHex) {
  std::string a = NewRunId(), b = NewRunId();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

}  // namespace
}  // namespace labgate::ssh
