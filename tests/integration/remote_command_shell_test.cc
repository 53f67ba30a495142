// The text labgate sends to a host's login shell, run by real shells with hostile input: every
// cwd, argv word and env value must arrive as data, never as shell syntax (issue 15 item 1: a
// cwd of '/x$(touch F)' ran `touch` on the host through the cd error message).
#include <gtest/gtest.h>

#include <filesystem>

#include <unistd.h>

#include "core/text.h"
#include "ssh/remote_command.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

class RemoteCommandShells : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* shell : {"/bin/sh", "/bin/dash", "/bin/bash", "/bin/zsh", "/bin/ksh", "/bin/mksh"}) {
      if (std::filesystem::exists(shell)) shells_.push_back(shell);
    }
    marker_ = dir_.path() + "/PWNED";
    const std::string m = marker_;
    hostile_ = {"$(touch " + m + ")", "`touch " + m + "`", "\"; touch " + m + "; \"", "'; touch " + m + "; '",
                "\\\"$(touch " + m + ")\\\"", "$'\\'$(touch " + m + ")'", "${IFS}$(touch${IFS}" + m + ")",
                "x\ntouch " + m, "x;touch " + m, "x&&touch " + m, "x|touch " + m, "x>" + m, "$((1+1))", "~root",
                "*", "?", "[a]", "{a,b}", "!!", "#comment", "-n", "--", "a=b", "%s%n", "\\", "\\\\n", "'", "\"", "",
                " lead and trail ", "tab\there", "\xce\xbb unicode", std::string(2000, 'A') + "$(touch " + m + ")"};
  }
  void TearDown() override { EXPECT_FALSE(std::filesystem::exists(marker_)) << "a hostile string ran a command"; }

  Completed Run(const std::string& shell, const std::string& text) {
    return RunToCompletion({shell, "-c", text}, dir_.path());
  }

  TempDir dir_;
  std::string marker_;
  std::vector<std::string> shells_;
  std::vector<std::string> hostile_;
};

TEST_F(RemoteCommandShells, HostileCwd_IsOnlyEverADirectoryName) {
  ASSERT_GE(shells_.size(), 2u);
  for (const auto& shell : shells_) {
    for (const auto& h : hostile_) {
      const std::string cwd = "/nonexistent-labgate/" + h;
      auto c = ssh::BuildRemoteCommand({"true"}, std::nullopt, cwd, {}, "0011");
      ASSERT_TRUE(c.error.empty()) << c.error;
      auto ran = Run(shell, c.text);
      EXPECT_EQ(ran.status, 125) << shell << " " << c.text;
      EXPECT_NE(ran.err.find("labgate: cannot change to directory " + cwd + "\n"), std::string::npos)
          << shell << " printed: " << ran.err;
    }
  }
}

TEST_F(RemoteCommandShells, HostileArgvAndEnv_ArriveVerbatim) {
  for (const auto& shell : shells_) {
    for (const auto& h : hostile_) {
      auto argv = ssh::BuildRemoteCommand({"printf", "[%s]\n", h}, std::nullopt, "", {}, "0011");
      auto ran = Run(shell, argv.text);
      EXPECT_EQ(ran.status, 0) << shell << " " << argv.text << ran.err;
      EXPECT_EQ(ran.out, "[" + h + "]\n") << shell << " " << argv.text;

      auto env = ssh::BuildRemoteCommand({"sh", "-c", "printf '[%s]\\n' \"$V\""}, std::nullopt, "", {{"V", h}}, "0011");
      ran = Run(shell, env.text);
      EXPECT_EQ(ran.out, "[" + h + "]\n") << shell << " " << env.text;

      // As the program name it is looked up as a program, never read as syntax.
      auto program = ssh::BuildRemoteCommand({h}, std::nullopt, "", {}, "0011");
      ran = Run(shell, program.text);
      EXPECT_NE(ran.status, 0) << shell << " " << program.text;
    }
  }
}

TEST_F(RemoteCommandShells, HostileArgvEnvAndShellThroughSudo_ArriveVerbatim) {
  if (::geteuid() != 0 || !std::filesystem::exists("/usr/bin/sudo")) {
    GTEST_SKIP() << "needs root and sudo (root's sudo asks no password); CI has both";
  }
  for (const char* shell : {"/bin/sh", "/bin/bash"}) {
    for (const auto& h : hostile_) {
      auto argv = ssh::BuildRemoteCommand({"printf", "[%s][%s]\n", h}, std::nullopt, "", {{"V", h}}, "0011", true);
      ASSERT_TRUE(argv.error.empty()) << argv.error;
      auto ran = Run(shell, argv.text);
      EXPECT_EQ(ran.status, 0) << shell << " " << argv.text << ran.err;
      EXPECT_EQ(ran.out, "[" + h + "][]\n") << shell << " " << argv.text;

      auto env = ssh::BuildRemoteCommand({}, std::string("printf '[%s]\\n' \"$V\"; id -u"), "", {{"V", h}}, "0011", true);
      ran = Run(shell, env.text);
      EXPECT_EQ(ran.out, "[" + h + "]\n0\n") << shell << " " << env.text;

      // Hostile text as the shell string itself is run by /bin/sh -c as written, and nothing else.
      auto script = ssh::BuildRemoteCommand({}, "printf '%s\\n' " + core::ShellQuote(h), "", {}, "0011", true);
      ran = Run(shell, script.text);
      EXPECT_EQ(ran.out, h + "\n") << shell << " " << script.text;
    }
  }
}

}  // namespace
}  // namespace labgate::testing
