// Shell completion as a user gets it: the script `labgate completion bash|zsh` prints, loaded into
// a real bash (with and without Debian's bash-completion) or zsh, completing from a real
// hosts.toml through the built labgate.
#include <gtest/gtest.h>

#include <filesystem>

#include "subprocess.h"

namespace labgate::testing {
namespace {

const char* kInventory = R"(
[local]
enabled = true

[[hosts]]
id = "web1"
address = "127.0.0.1"
groups = ["servers"]
tags = ["prod"]

[[hosts]]
id = "web2"
address = "127.0.0.1"
groups = ["servers"]
)";

// A directory whose `labgate` is this build's, for PATH.
class CompletionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() + "/bin");
    std::filesystem::create_symlink(LABGATE_BINARY, dir_.path() + "/bin/labgate");
    config_ = dir_.Write("lab.toml", kInventory);
  }

  // Completes the last of `line`'s words in bash; prints COMPREPLY one per line.
  Completed Bash(const std::string& line, bool with_bash_completion) {
    const std::string script = std::string(with_bash_completion ? "source /usr/share/bash-completion/bash_completion\n" : "") +
                               "eval \"$(labgate completion bash)\"\n"
                               "COMP_LINE=\"$1\"; COMP_POINT=${#COMP_LINE}\n"
                               // bash splits words at ':' too (COMP_WORDBREAKS)
                               "read -ra COMP_WORDS <<<\"${COMP_LINE//:/ : }\"\n"
                               "[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')\n"
                               "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
                               "_labgate\n"
                               "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
    return RunToCompletion({"/usr/bin/env", "PATH=" + dir_.path() + "/bin:/usr/bin:/bin", "HOME=" + dir_.path(),
                            "/bin/bash", "--norc", "--noprofile", "-c", script, "bash", line},
                           dir_.path());
  }

  Completed Zsh(const std::vector<std::string>& words) {
    // compadd and _files stand in for zsh's completion system and print what they were given.
    const std::string script =
        "compadd() { [[ $1 == -a ]] && print -rl -- \"${(@P)2}\"; }\n"
        "_files() { print -r -- '<files>'; }\n"
        "eval \"_labgate() { $(labgate completion zsh) }\"\n"
        "words=(\"$@\"); CURRENT=${#words}\n"
        "_labgate\n";
    std::vector<std::string> argv = {"/usr/bin/env", "PATH=" + dir_.path() + "/bin:/usr/bin:/bin", "HOME=" + dir_.path(),
                                     "/usr/bin/zsh", "-f", "-c", script, "zsh"};
    argv.insert(argv.end(), words.begin(), words.end());
    return RunToCompletion(argv, dir_.path());
  }

  TempDir dir_;
  std::string config_;
};

TEST_F(CompletionTest, BashCompletesVerbsSubcommandsAndTargetsFromTheInventoryInForce) {
  for (bool with : {true, false}) {
    SCOPED_TRACE(with ? "with bash-completion" : "plain bash");
    auto verbs = Bash("labgate ho", with);
    EXPECT_EQ(verbs.out, "hosts\n") << verbs.err;
    EXPECT_EQ(Bash("labgate nodes re", with).out, "reject\nrevoke\n");
    EXPECT_EQ(Bash("labgate --config " + config_ + " hosts trust we", with).out, "web1\nweb2\n");
    EXPECT_EQ(Bash("labgate --config " + config_ + " run l", with).out, "local\n");
    EXPECT_EQ(Bash("labgate camera web1 --facing ", with).out, "back\nfront\n");
  }
  // ./hosts.toml is the inventory in force without --config.
  dir_.Write("hosts.toml", kInventory);
  EXPECT_EQ(Bash("labgate screen web", true).out, "web1\nweb2\n");
}

TEST_F(CompletionTest, BashCompletesAcrossColonsAndEqualsSigns) {
  for (bool with : {true, false}) {
    SCOPED_TRACE(with ? "with bash-completion" : "plain bash");
    // bash splits words at ':' and replaces only the part after it: the candidate is the rest.
    EXPECT_EQ(Bash("labgate --config " + config_ + " run group:se", with).out, "servers\n");
    EXPECT_EQ(Bash("labgate --config " + config_ + " run ta", with).out, "tag:prod\n");
    EXPECT_EQ(Bash("labgate --config=" + config_ + " hosts trust w", with).out, "web1\nweb2\n");
    EXPECT_EQ(Bash("labgate --config=" + config_ + " ho", with).out, "hosts\n");
  }
}

TEST_F(CompletionTest, BashLeavesFileNamesAndCommandsToTheShell) {
  auto output = Bash("labgate screen web1 -o ", true);
  EXPECT_EQ(output.status, 0) << output.err;
  EXPECT_EQ(output.out, "\n");  // no candidates: `complete -o default` completes file names
  EXPECT_EQ(Bash("labgate --config " + config_ + " run web1 systemctl st", true).out, "\n");
}

TEST_F(CompletionTest, ABrokenInventoryCompletesNothingAndSaysNothing) {
  const std::string broken = dir_.Write("broken.toml", "[[hosts]\nid = \n");
  auto output = Bash("labgate --config " + broken + " run w", true);
  EXPECT_EQ(output.status, 0);
  EXPECT_EQ(output.out, "\n");
  EXPECT_EQ(output.err, "");
  // Verbs do not need the inventory and still complete.
  EXPECT_EQ(Bash("labgate --config " + broken + " ho", true).out, "hosts\n");
}

TEST_F(CompletionTest, ZshCompletesTheSameAndFallsBackToFiles) {
  auto hosts = Zsh({"labgate", "--config", config_, "hosts", "trust", "w"});
  EXPECT_EQ(hosts.out, "web1\nweb2\n") << hosts.err;
  EXPECT_EQ(Zsh({"labgate", "audit", "query", "--decision", ""}).out, "allowed\nrefused\n");
  EXPECT_EQ(Zsh({"labgate", "screen", "web1", "-o", ""}).out, "<files>\n");
}

}  // namespace
}  // namespace labgate::testing
