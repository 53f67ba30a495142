// sudo on this machine (what a paired node does for `run` with sudo): the argv it builds and
// what it asks the process runner for, including when the deadline passes.
#include "capabilities/run_as_root.h"

#include <gtest/gtest.h>

#include "fakes/fakes.h"

namespace labgate::capabilities {
namespace {

using Strings = std::vector<std::string>;

RunRequest Argv(Strings argv) {
  RunRequest r;
  r.command.argv = std::move(argv);
  return r;
}

TEST(SudoArgv, RunsTheArgvAsRootWithTheRunIdAndNullStdin) {
  RunRequest r = Argv({"id", "-u"});
  r.env = {{"A_B", "x y"}};
  auto argv = SudoArgv(r, "00ff");
  ASSERT_TRUE(argv.ok()) << argv.error().message;
  EXPECT_EQ(*argv, (Strings{"sudo", "-k", "-S", "-p", "", "--", "env", "LABGATE_RUN=00ff", "A_B=x y", "/bin/sh", "-c",
                            "exec \"$@\" </dev/null", "sh", "id", "-u"}));
}

TEST(SudoArgv, AShellStringIsOneArgumentOfItsOwnShell) {
  RunRequest r;
  r.command.shell = "df -h | tail -1";
  auto argv = SudoArgv(r, "1");
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(*argv, (Strings{"sudo", "-k", "-S", "-p", "", "--", "env", "LABGATE_RUN=1", "/bin/sh", "-c",
                            "exec /bin/sh -c \"$1\" </dev/null", "sh", "df -h | tail -1"}));
}

TEST(SudoArgv, HostileWordsStaySingleArgumentsAfterTheConstantPrefix) {
  // What an assistant might try: words that look like options to sudo or env, assignments,
  // shell syntax and a second sudo. Each stays one argv word after "sh"; nothing before it moves.
  const Strings hostile = {"-u", "nobody", "--", "PATH=/tmp/evil", "$(id)", "`id`", "; rm -rf /", "'", "\"",
                           "-i", "\n", "sudo", "-s", "*", "~root", "A=B"};
  RunRequest r = Argv({"printf", "%s\\n"});
  r.command.argv.insert(r.command.argv.end(), hostile.begin(), hostile.end());
  auto argv = SudoArgv(r, "ab");
  ASSERT_TRUE(argv.ok());
  const Strings prefix = {"sudo", "-k", "-S", "-p", "", "--", "env", "LABGATE_RUN=ab", "/bin/sh", "-c",
                          "exec \"$@\" </dev/null", "sh", "printf", "%s\\n"};
  ASSERT_EQ(argv->size(), prefix.size() + hostile.size());
  EXPECT_EQ(Strings(argv->begin(), argv->begin() + static_cast<std::ptrdiff_t>(prefix.size())), prefix);
  EXPECT_EQ(Strings(argv->begin() + static_cast<std::ptrdiff_t>(prefix.size()), argv->end()), hostile);
}

TEST(SudoArgv, KeepingStdinRunsTheCommandItself) {
  RunRequest r = Argv({"/bin/sh", "-c", "cat > x"});
  auto argv = SudoArgv(r, "7", true);
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(*argv, (Strings{"sudo", "-k", "-S", "-p", "", "--", "env", "LABGATE_RUN=7", "/bin/sh", "-c", "cat > x"}));
}

TEST(RootPutScript, ContentComesFromStdinAfterTheMarkerAndNothingIsReadFromAPath) {
  WriteOptions options;
  options.mode = 0640;
  auto argv = RootPutArgv("/etc/app.conf", options, "mark", "abc");
  ASSERT_EQ(argv.size(), 11u);
  EXPECT_EQ(Strings(argv.begin() + 3, argv.end()), (Strings{"sh", "/etc/app.conf", "0640", "", "0", "0", "mark", "abc"}));
  EXPECT_EQ(argv[2].find("cat -- "), std::string::npos);
  EXPECT_NE(argv[2].find("cat > \"$tmp\""), std::string::npos);
}

TEST(SudoArgv, RefusesVariableNamesThatEnvWouldReadAsSomethingElse) {
  for (const char* name : {"-i", "A=B", "1BAD", "", "A B", "--"}) {
    RunRequest r = Argv({"true"});
    r.env = {{name, "x"}};
    EXPECT_FALSE(SudoArgv(r, "1").ok()) << name;
  }
  EXPECT_FALSE(SudoArgv(Argv({}), "1").ok());
  EXPECT_FALSE(SudoArgv(Argv({std::string("a\0b", 3)}), "1").ok());
}

TEST(RunAsRoot, ThePasswordIsTheFirstLineOfStdinAndNowhereElse) {
  fakes::FakeProcessRunner runner;
  core::CancelToken cancel;
  RunRequest r = Argv({"id", "-u"});
  r.cwd = "/srv";
  r.env = {{"K", "v"}};
  AsRoot root;
  root.password = "s3cret pw";
  auto outcome = RunAsRootOnThisMachine(runner, r, root, cancel, nullptr);
  ASSERT_TRUE(outcome.ok());
  auto specs = runner.specs();
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].stdin_data, "s3cret pw\n");
  EXPECT_EQ(specs[0].cwd, "/srv");
  EXPECT_TRUE(specs[0].env.empty()) << "sudo resets the environment: variables go through env";
  for (const auto& word : specs[0].argv) EXPECT_EQ(word.find("s3cret"), std::string::npos) << word;
}

TEST(RunAsRoot, ADeadlineRunsTheKillScriptThroughSudoWithTheSameRunId) {
  fakes::FakeProcessRunner runner;
  runner.DeadlinesPass();
  core::CancelToken cancel;
  AsRoot root;
  root.password = "pw";
  root.sudo = "/usr/bin/sudo";
  root.kill_grace = std::chrono::milliseconds(700);
  auto outcome = RunAsRootOnThisMachine(runner, Argv({"sleep", "100"}), root, cancel, nullptr);
  ASSERT_TRUE(outcome.ok());
  EXPECT_TRUE(outcome->timed_out);
  auto specs = runner.specs();
  ASSERT_EQ(specs.size(), 2u);
  const std::string tag = specs[0].argv[7];
  ASSERT_EQ(tag.rfind("LABGATE_RUN=", 0), 0u) << tag;
  const std::string run_id = tag.substr(12);
  EXPECT_EQ(specs[0].argv[0], "/usr/bin/sudo");
  EXPECT_EQ(specs[1].argv, (Strings{"/usr/bin/sudo", "-k", "-S", "-p", "", "--", "/bin/sh", "-c", KillScript(run_id, 700)}));
  EXPECT_EQ(specs[1].stdin_data, "pw\n");
  EXPECT_FALSE(specs[1].on_stop);
  // The fake ran the kill script with exit 0: the stop counts as confirmed.
  EXPECT_FALSE(outcome->stop_unconfirmed);
}

TEST(RunAsRoot, AKillScriptThatCouldNotRunLeavesTheStopUnconfirmed) {
  fakes::FakeProcessRunner runner;
  runner.DeadlinesPass();
  core::ProcessOutcome refused;
  refused.exit_code = 1;  // sudo refused the password, say
  runner.Script(refused);
  core::CancelToken cancel;
  AsRoot root;
  root.password = "pw";
  auto outcome = RunAsRootOnThisMachine(runner, Argv({"sleep", "100"}), root, cancel, nullptr);
  ASSERT_TRUE(outcome.ok());
  EXPECT_TRUE(outcome->timed_out);
  EXPECT_TRUE(outcome->stop_unconfirmed);
}

TEST(RunAsRoot, RefusesPasswordsSudoCannotRead) {
  fakes::FakeProcessRunner runner;
  core::CancelToken cancel;
  for (const std::string& pw : {std::string(), std::string("a\nb"), std::string("a\rb"), std::string(core::kMaxStdinBytes, 'x')}) {
    AsRoot root;
    root.password = pw;
    EXPECT_FALSE(RunAsRootOnThisMachine(runner, Argv({"true"}), root, cancel, nullptr).ok());
  }
  EXPECT_TRUE(runner.specs().empty()) << "nothing started";
}

}  // namespace
}  // namespace labgate::capabilities
