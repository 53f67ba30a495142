#include "policy/command_parse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace labgate::policy {
namespace {

using Strings = std::vector<std::string>;

// Every listed command as its CommandText.
Strings Texts(const ParsedCommand& p) {
  Strings out;
  for (const auto& c : p.commands) out.push_back(CommandText(c));
  return out;
}

Strings Texts(std::string_view script) { return Texts(ParseShell(script)); }

// ---------------------------------------------------------------------------------------------
// Words, quoting, assignments, redirections.

TEST(CommandParse, QuotesAreRemovedFromWords) {
  ParsedCommand p = ParseShell(R"(echo 'a b' "c $HOME" d\ e "x\"y" 'it'\''s' $'t\tab' "")");
  // Bash-only syntax is still read, but marked unreadable: dash would read it otherwise.
  EXPECT_FALSE(p.complete);
  EXPECT_NE(p.problem.find("dash and bash"), std::string::npos) << p.problem;
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0].words, (Strings{"echo", "a b", "c $HOME", "d e", "x\"y", "it's", "t\tab", ""}));
  EXPECT_FALSE(p.commands[0].dynamic);
}

TEST(CommandParse, ExpansionsInArgumentsKeepTheirText) {
  ParsedCommand p = ParseShell(R"(rm -rf "${DIR}"/$SUB `pwd` $(date +%F) $((1 + 2)))");
  ASSERT_EQ(p.commands.size(), 3u);  // pwd, date, then rm
  EXPECT_EQ(p.commands[2].words, (Strings{"rm", "-rf", "${DIR}/$SUB", "`pwd`", "$(date +%F)", "$((1 + 2))"}));
  EXPECT_FALSE(p.commands[2].dynamic);
}

TEST(CommandParse, AssignmentPrefixesAreNotWords) {
  ParsedCommand p = ParseShell(R"(A=1 B="x y" C+=z cmd arg D=2)");
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0].assignments, (Strings{"A=1", "B=x y", "C+=z"}));
  EXPECT_EQ(p.commands[0].words, (Strings{"cmd", "arg", "D=2"}));
}

TEST(CommandParse, QuotedNameIsNotAnAssignment) {
  ParsedCommand p = ParseShell(R"('A'=1 x)");
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_TRUE(p.commands[0].assignments.empty());
  EXPECT_EQ(p.commands[0].words, (Strings{"A=1", "x"}));
}

TEST(CommandParse, ArrayAssignmentIsOneWord) {
  ParsedCommand p = ParseShell("arr=(a 'b c' $(id)) cmd");
  ASSERT_EQ(p.commands.size(), 2u);
  EXPECT_EQ(CommandText(p.commands[0]), "id");
  EXPECT_EQ(p.commands[1].assignments, (Strings{"arr=(a b c $(id))"}));
  EXPECT_EQ(p.commands[1].words, (Strings{"cmd"}));
}

TEST(CommandParse, RedirectionsHaveOperatorsTargetsAndWrites) {
  ParsedCommand p = ParseShell("cmd 2>&1 >/dev/null 3>>log &>out &>>all <in <<<word >|clobber <>rw >&file 4<&0 2>&-");
  // Bash-only syntax is still read, but marked unreadable: dash would read it otherwise.
  EXPECT_FALSE(p.complete);
  EXPECT_NE(p.problem.find("dash and bash"), std::string::npos) << p.problem;
  ASSERT_EQ(p.commands.size(), 1u);
  struct Want {
    const char* op;
    const char* target;
    bool writes;
  };
  const std::vector<Want> want = {{"2>&", "1", false},    {">", "/dev/null", true}, {"3>>", "log", true},
                                  {"&>", "out", true},    {"&>>", "all", true},     {"<", "in", false},
                                  {"<<<", "word", false}, {">|", "clobber", true},  {"<>", "rw", true},
                                  {">&", "file", true},   {"4<&", "0", false},      {"2>&", "-", false}};
  const auto& r = p.commands[0].redirects;
  ASSERT_EQ(r.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(r[i].op, want[i].op) << i;
    EXPECT_EQ(r[i].target, want[i].target) << i;
    EXPECT_EQ(r[i].writes, want[i].writes) << i;
  }
  EXPECT_EQ(p.commands[0].words, (Strings{"cmd"}));
}

TEST(CommandParse, RedirectionAloneIsACommandWithoutWords) {
  ParsedCommand p = ParseShell("> /etc/motd");
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_TRUE(p.commands[0].words.empty());
  ASSERT_EQ(p.commands[0].redirects.size(), 1u);
  EXPECT_TRUE(p.commands[0].redirects[0].writes);
}

TEST(CommandParse, RedirectionWithoutTargetIsIncomplete) {
  ParsedCommand p = ParseShell("echo hi >");
  EXPECT_FALSE(p.complete);
  EXPECT_NE(p.problem.find("no target"), std::string::npos) << p.problem;
}

// ---------------------------------------------------------------------------------------------
// Here-documents.

TEST(CommandParse, HereDocumentBodyIsSkipped) {
  ParsedCommand p = ParseShell("cat <<EOF > /etc/x\nrm -rf /\nEOF\necho done");
  ASSERT_TRUE(p.complete) << p.problem;
  EXPECT_EQ(Texts(p), (Strings{"cat", "echo done"}));
  ASSERT_EQ(p.commands[0].redirects.size(), 2u);
  EXPECT_EQ(p.commands[0].redirects[0].op, "<<");
  EXPECT_EQ(p.commands[0].redirects[0].target, "");
  EXPECT_EQ(p.commands[0].redirects[1].target, "/etc/x");
}

TEST(CommandParse, UnquotedHereDocumentListsItsSubstitutions) {
  ParsedCommand p = ParseShell("cat <<EOF; echo same-line\nuser: $(id -un)\nEOF\nls");
  ASSERT_TRUE(p.complete) << p.problem;
  EXPECT_EQ(Texts(p), (Strings{"cat", "echo same-line", "id -un", "ls"}));
  EXPECT_EQ(p.commands[2].depth, 1);
}

TEST(CommandParse, QuotedAndTabStrippedHereDocumentsAreLiteral) {
  ParsedCommand p = ParseShell("cat <<-'END'\n\t$(rm -rf /)\n\tEND\nls");
  ASSERT_TRUE(p.complete) << p.problem;
  EXPECT_EQ(Texts(p), (Strings{"cat", "ls"}));
}

TEST(CommandParse, TwoHereDocumentsOnOneLine) {
  ParsedCommand p = ParseShell("cmd <<A <<B\na\nA\nb\nB\nnext");
  ASSERT_TRUE(p.complete) << p.problem;
  EXPECT_EQ(Texts(p), (Strings{"cmd", "next"}));
}

TEST(CommandParse, HereDocumentWithoutEndIsIncomplete) {
  ParsedCommand p = ParseShell("cat <<EOF\nhello\n");
  EXPECT_FALSE(p.complete);
  EXPECT_NE(p.problem.find("EOF"), std::string::npos) << p.problem;
  EXPECT_EQ(Texts(p), (Strings{"cat"}));
  EXPECT_FALSE(ParseShell("cat <<EOF").complete);
}

// ---------------------------------------------------------------------------------------------
// Lists, pipelines, nesting.

TEST(CommandParse, OperatorsSeparateCommandsAndMarkPipes) {
  ParsedCommand p = ParseShell("a | b |& c && d || e; f & g\nh");
  ASSERT_EQ(Texts(p), (Strings{"a", "b", "c", "d", "e", "f", "g", "h"}));
  std::vector<bool> pipes;
  for (const auto& c : p.commands) pipes.push_back(c.pipes_to_next);
  EXPECT_EQ(pipes, (std::vector<bool>{true, true, false, false, false, false, false, false}));
}

TEST(CommandParse, NestingRaisesDepth) {
  ParsedCommand p = ParseShell("(a; (b)); { c; }; echo $(d `e`) <(f) >(g)");
  // Bash-only syntax is still read, but marked unreadable: dash would read it otherwise.
  EXPECT_FALSE(p.complete);
  EXPECT_NE(p.problem.find("dash and bash"), std::string::npos) << p.problem;
  ASSERT_EQ(Texts(p), (Strings{"a", "b", "c", "e", "d `e`", "f", "g", "echo $(d `e`) <(f) >(g)"}));
  std::vector<int> depths;
  for (const auto& c : p.commands) depths.push_back(c.depth);
  EXPECT_EQ(depths, (std::vector<int>{1, 2, 1, 2, 1, 1, 1, 0}));
}

TEST(CommandParse, SubstitutionsInsideDoubleQuotesAreListed) {
  ParsedCommand p = ParseShell(R"(echo "x $(rm -rf /) `reboot` ${V:-$(id)}")");
  ASSERT_TRUE(p.complete) << p.problem;
  EXPECT_EQ(Texts(p), (Strings{"rm -rf /", "reboot", "id", "echo x $(rm -rf /) `reboot` ${V:-$(id)}"}));
}

TEST(CommandParse, SingleQuotedTextIsNotACommand) {
  EXPECT_EQ(Texts("echo 'rm -rf /' '$(reboot)'"), (Strings{"echo rm -rf / $(reboot)"}));
}

TEST(CommandParse, ArithmeticIsNotACommand) {
  ParsedCommand p = ParseShell("echo $(( $(id -u) + 1 )); (( i++ )); x=$((2*3))");
  // Bash-only syntax is still read, but marked unreadable: dash would read it otherwise.
  EXPECT_FALSE(p.complete);
  EXPECT_NE(p.problem.find("dash and bash"), std::string::npos) << p.problem;
  EXPECT_EQ(Texts(p), (Strings{"id -u", "echo $(( $(id -u) + 1 ))", ""}));
}

TEST(CommandParse, CommentsEndAtNewline) {
  EXPECT_EQ(Texts("ls # rm -rf /\necho a#b"), (Strings{"ls", "echo a#b"}));
  EXPECT_TRUE(ParseShell("# only a comment").commands.empty());
}

TEST(CommandParse, LineContinuationJoinsWords) { EXPECT_EQ(Texts("ec\\\nho \\\n hi"), (Strings{"echo hi"})); }

// ---------------------------------------------------------------------------------------------
// Compound commands.

TEST(CommandParse, KeywordsSeparateCommands) {
  EXPECT_EQ(Texts("if true; then rm -rf /; elif x; then y; else z; fi"), (Strings{"true", "rm -rf /", "x", "y", "z"}));
  EXPECT_EQ(Texts("while read l; do echo $l; done < f"), (Strings{"read l", "echo $l", ""}));
  EXPECT_EQ(Texts("until ! ping -c1 h; do sleep 1; done"), (Strings{"ping -c1 h", "sleep 1"}));
  EXPECT_EQ(Texts("echo if then fi"), (Strings{"echo if then fi"}));
}

TEST(CommandParse, ForHeaderIsNotACommand) {
  EXPECT_EQ(Texts("for f in a b; do rm -r $f; done"), (Strings{"rm -r $f"}));
  EXPECT_EQ(Texts("for f in $(ls /etc)\ndo\ncat $f\ndone"), (Strings{"ls /etc", "cat $f"}));
  EXPECT_EQ(Texts("for ((i=0; i<3; i++)); do echo $i; done"), (Strings{"echo $i"}));
  EXPECT_EQ(Texts("select x in a b; do echo $x; done"), (Strings{"echo $x"}));
}

TEST(CommandParse, CaseBranchesAreListed) {
  ParsedCommand p = ParseShell(
      "case \"$1\" in\n  start|go) systemctl start x;;\n  (stop) rm -f /run/x ;&\n  *) echo usage;;\nesac; ls");
  // Bash-only syntax is still read, but marked unreadable: dash would read it otherwise.
  EXPECT_FALSE(p.complete);
  EXPECT_NE(p.problem.find("dash and bash"), std::string::npos) << p.problem;
  EXPECT_EQ(Texts(p), (Strings{"systemctl start x", "rm -f /run/x", "echo usage", "ls"}));
  EXPECT_FALSE(ParseShell("case x in a) ls;;").complete);
}

TEST(CommandParse, FunctionBodiesAreListed) {
  EXPECT_EQ(Texts("f() { rm -rf /tmp/x; }; f"), (Strings{"rm -rf /tmp/x", "f"}));
  EXPECT_EQ(Texts("function g { reboot; }"), (Strings{"reboot"}));
}

TEST(CommandParse, ConditionWordsIncludeOperators) {
  ParsedCommand p = ParseShell("[[ $a =~ ^(x|y)$ && -f /e ]] && echo ok");
  // Bash-only syntax is still read, but marked unreadable: dash would read it otherwise.
  EXPECT_FALSE(p.complete);
  EXPECT_NE(p.problem.find("dash and bash"), std::string::npos) << p.problem;
  ASSERT_EQ(p.commands.size(), 2u);
  EXPECT_EQ(p.commands[0].words, (Strings{"[[", "$a", "=~", "^(x|y)$", "&&", "-f", "/e", "]]"}));
  EXPECT_TRUE(p.commands[0].redirects.empty());
  EXPECT_EQ(CommandText(p.commands[1]), "echo ok");
}

TEST(CommandParse, TimeKeywordBeforeGroup) {
  EXPECT_EQ(Texts("time { sleep 1; }; time -p (ls)"), (Strings{"sleep 1", "ls"}));
}

// ---------------------------------------------------------------------------------------------
// Dynamic command names.

TEST(CommandParse, ComputedCommandNamesAreDynamic) {
  for (const char* script :
       {"$CMD arg", "${CMD} arg", "\"$(which rm)\" -rf /", "`echo rm` x", "eval \"$X\"", "source ./env.sh",
        ". ./env.sh", "/usr/bin/eval x", "{rm,-rf,/}", "/bin/r? x", "<(curl x)", "x$Y"}) {
    ParsedCommand p = ParseShell(script);
    ASSERT_FALSE(p.commands.empty()) << script;
    EXPECT_TRUE(p.commands.back().dynamic) << script;
  }
}

TEST(CommandParse, LiteralCommandNamesAreNotDynamic) {
  for (const char* script : {"echo $CMD", "'$CMD' x", "ls *.txt", "[ -f x ]", "echo {a,b}", "$'rm' x"}) {
    ParsedCommand p = ParseShell(script);
    ASSERT_EQ(p.commands.size(), 1u) << script;
    EXPECT_FALSE(p.commands[0].dynamic) << script;
  }
}

// ---------------------------------------------------------------------------------------------
// Wrappers.

struct WrapCase {
  const char* script;
  std::vector<std::string> texts;           // every listed command
  std::vector<std::string> inner_wrappers;  // wrappers of the last listed command
};

void PrintTo(const WrapCase& c, std::ostream* os) { *os << c.script; }

class CommandParseWrappers : public ::testing::TestWithParam<WrapCase> {};

TEST_P(CommandParseWrappers, ListsTheWrappedCommand) {
  const WrapCase& c = GetParam();
  ParsedCommand p = ParseShell(c.script);
  EXPECT_TRUE(p.complete) << p.problem;
  EXPECT_EQ(Texts(p), c.texts);
  ASSERT_FALSE(p.commands.empty());
  EXPECT_EQ(p.commands.back().wrappers, c.inner_wrappers);
  for (const auto& cmd : p.commands) EXPECT_EQ(cmd.depth, 0) << CommandText(cmd);
}

INSTANTIATE_TEST_SUITE_P(
    CommandParse, CommandParseWrappers,
    ::testing::Values(
        WrapCase{"sudo -u root -E rm -rf /x", {"sudo -u root -E rm -rf /x", "rm -rf /x"}, {"sudo"}},
        WrapCase{"/usr/bin/sudo -- ls", {"/usr/bin/sudo -- ls", "ls"}, {"sudo"}},
        WrapCase{"sudo -iu bob", {"sudo -iu bob", "sh"}, {"sudo"}}, WrapCase{"sudo -s", {"sudo -s", "sh"}, {"sudo"}},
        WrapCase{"sudo HOME=/x ls", {"sudo HOME=/x ls", "ls"}, {"sudo"}},
        WrapCase{"doas -u bob ls", {"doas -u bob ls", "ls"}, {"doas"}},
        WrapCase{"env -i -u X -C /tmp A=1 B=2 ls -l", {"env -i -u X -C /tmp A=1 B=2 ls -l", "ls -l"}, {"env"}},
        WrapCase{"env -S 'rm -rf' /x", {"env -S rm -rf /x", "rm -rf /x"}, {"env"}},
        WrapCase{"nice -n 5 ls", {"nice -n 5 ls", "ls"}, {"nice"}},
        WrapCase{"nice -10 ls", {"nice -10 ls", "ls"}, {"nice"}},
        WrapCase{"nice --adjustment=3 ls", {"nice --adjustment=3 ls", "ls"}, {"nice"}},
        WrapCase{"ionice -c 3 -t ls", {"ionice -c 3 -t ls", "ls"}, {"ionice"}},
        WrapCase{"timeout -s KILL -k 5 10s ls", {"timeout -s KILL -k 5 10s ls", "ls"}, {"timeout"}},
        WrapCase{"nohup ls", {"nohup ls", "ls"}, {"nohup"}},
        WrapCase{"stdbuf -oL -e 0 ls", {"stdbuf -oL -e 0 ls", "ls"}, {"stdbuf"}},
        WrapCase{"xargs -0 -I {} -P 4 rm {}", {"xargs -0 -I {} -P 4 rm {}", "rm {}"}, {"xargs"}},
        WrapCase{"xargs -n1", {"xargs -n1", "echo"}, {"xargs"}},
        WrapCase{"exec -a name ls", {"exec -a name ls", "ls"}, {"exec"}},
        WrapCase{"command -p ls", {"command -p ls", "ls"}, {"command"}},
        WrapCase{"command -v rm", {"command -v rm"}, {}}, WrapCase{"time -p ls", {"time -p ls", "ls"}, {"time"}},
        WrapCase{"chroot --userspec=1:1 /mnt ls", {"chroot --userspec=1:1 /mnt ls", "ls"}, {"chroot"}},
        WrapCase{"chroot /mnt", {"chroot /mnt", "sh"}, {"chroot"}},
        WrapCase{"setsid -f ls", {"setsid -f ls", "ls"}, {"setsid"}},
        WrapCase{"flock -w 5 /run/x.lock ls", {"flock -w 5 /run/x.lock ls", "ls"}, {"flock"}},
        WrapCase{"flock /run/x.lock -c 'rm a; ls'", {"flock /run/x.lock -c rm a; ls", "rm a", "ls"}, {"flock"}},
        WrapCase{"flock -c ls /run/x.lock", {"flock -c ls /run/x.lock", "ls"}, {"flock"}},
        WrapCase{"watch -n 5 df -h '|' head", {"watch -n 5 df -h | head", "df -h", "head"}, {"watch"}},
        WrapCase{"su -c 'apt upgrade' root", {"su -c apt upgrade root", "apt upgrade"}, {"su"}},
        WrapCase{"su - bob", {"su - bob", "sh"}, {"su"}},
        WrapCase{"runuser -u bob -- ls -l", {"runuser -u bob -- ls -l", "ls -l"}, {"runuser"}},
        WrapCase{"runuser -l bob -c ls", {"runuser -l bob -c ls", "ls"}, {"runuser"}},
        WrapCase{"pkexec ls", {"pkexec ls", "ls"}, {"pkexec"}}, WrapCase{"pkexec", {"pkexec", "sh"}, {"pkexec"}},
        WrapCase{"sh -c 'ls; id'", {"sh -c ls; id", "ls", "id"}, {"sh"}},
        WrapCase{"bash -lc 'ls'", {"bash -lc ls", "ls"}, {"bash"}},
        WrapCase{"bash -l -c 'ls' name arg", {"bash -l -c ls name arg", "ls"}, {"bash"}},
        WrapCase{"sh -ec ls", {"sh -ec ls", "ls"}, {"sh"}},
        WrapCase{"bash -o pipefail -c ls", {"bash -o pipefail -c ls", "ls"}, {"bash"}},
        WrapCase{"dash -c ls", {"dash -c ls", "ls"}, {"dash"}}, WrapCase{"zsh -c ls", {"zsh -c ls", "ls"}, {"zsh"}},
        WrapCase{"busybox sh -c ls", {"busybox sh -c ls", "sh -c ls", "ls"}, {"busybox", "sh"}},
        WrapCase{"ssh -p 2222 -o BatchMode=yes admin@nas sudo reboot",
                 {"ssh -p 2222 -o BatchMode=yes admin@nas sudo reboot", "sudo reboot", "reboot"},
                 {"ssh", "sudo"}},
        WrapCase{"ssh nas 'df -h; uptime'", {"ssh nas df -h; uptime", "df -h", "uptime"}, {"ssh"}},
        WrapCase{"ssh nas", {"ssh nas"}, {}},
        WrapCase{
            "find . -name '*.tmp' -exec rm -f {} ';'", {"find . -name *.tmp -exec rm -f {} ;", "rm -f {}"}, {"find"}},
        WrapCase{"trap 'rm -f /tmp/lock' EXIT", {"trap rm -f /tmp/lock EXIT", "rm -f /tmp/lock"}, {"trap"}},
        WrapCase{"nsenter -t 1 -m sh", {"nsenter -t 1 -m sh", "sh"}, {"nsenter"}},
        WrapCase{"capsh -- -c ls", {"capsh -- -c ls", "bash -c ls", "ls"}, {"capsh", "bash"}}));

TEST(CommandParse, WrappersNest) {
  ParsedCommand p = ParseShell("sudo env A=1 nice -n 5 bash -lc 'rm -rf /tmp/x'");
  ASSERT_TRUE(p.complete) << p.problem;
  EXPECT_EQ(Texts(p),
            (Strings{"sudo env A=1 nice -n 5 bash -lc rm -rf /tmp/x", "env A=1 nice -n 5 bash -lc rm -rf /tmp/x",
                     "nice -n 5 bash -lc rm -rf /tmp/x", "bash -lc rm -rf /tmp/x", "rm -rf /tmp/x"}));
  EXPECT_EQ(p.commands.back().wrappers, (Strings{"sudo", "env", "nice", "bash"}));
}

TEST(CommandParse, WrappedScriptsKeepTheWrappersDepth) {
  ParsedCommand p = ParseShell("echo $(sudo bash -c 'ls $(pwd)')");
  ASSERT_TRUE(p.complete) << p.problem;
  ASSERT_EQ(Texts(p), (Strings{"sudo bash -c ls $(pwd)", "bash -c ls $(pwd)", "pwd", "ls $(pwd)",
                               "echo $(sudo bash -c 'ls $(pwd)')"}));
  std::vector<int> depths;
  for (const auto& c : p.commands) depths.push_back(c.depth);
  EXPECT_EQ(depths, (std::vector<int>{1, 1, 2, 1, 0}));
}

TEST(CommandParse, WrappedCommandInheritsThePipe) {
  ParsedCommand p = ParseShell("sudo curl x | sh");
  ASSERT_EQ(Texts(p), (Strings{"sudo curl x", "curl x", "sh"}));
  EXPECT_TRUE(p.commands[0].pipes_to_next);
  EXPECT_TRUE(p.commands[1].pipes_to_next);
  EXPECT_FALSE(p.commands[2].pipes_to_next);
}

TEST(CommandParse, WrappedDynamicNameIsDynamic) {
  ParsedCommand p = ParseShell("sudo \"$CMD\" x; sudo '$CMD' x");
  ASSERT_EQ(p.commands.size(), 4u);
  EXPECT_TRUE(p.commands[1].dynamic);
  EXPECT_FALSE(p.commands[3].dynamic);
}

TEST(CommandParse, FromArgvUnwrapsWithoutShellMeaning) {
  ParsedCommand p = FromArgv({"sudo", "-n", "bash", "-c", "rm -rf /srv/$X"});
  ASSERT_TRUE(p.complete) << p.problem;
  EXPECT_EQ(Texts(p), (Strings{"sudo -n bash -c rm -rf /srv/$X", "bash -c rm -rf /srv/$X", "rm -rf /srv/$X"}));
  EXPECT_EQ(p.commands.back().wrappers, (Strings{"sudo", "bash"}));

  ParsedCommand literal = FromArgv({"$X", "a;b", "|"});
  ASSERT_EQ(literal.commands.size(), 1u);
  EXPECT_FALSE(literal.commands[0].dynamic);
  EXPECT_EQ(literal.commands[0].words, (Strings{"$X", "a;b", "|"}));

  EXPECT_TRUE(FromArgv({}).commands.empty());
  EXPECT_TRUE(FromArgv({"eval", "x"}).commands[0].dynamic);
}

TEST(CommandParse, CommandTextJoinsWordsWithSpaces) {
  SimpleCommand c;
  c.words = {"echo", "a b", ""};
  EXPECT_EQ(CommandText(c), "echo a b ");
  EXPECT_EQ(CommandText(SimpleCommand{}), "");
}

// ---------------------------------------------------------------------------------------------
// Incomplete input and limits.

TEST(CommandParse, UnterminatedConstructsAreIncomplete) {
  for (const char* script : {"echo 'x", "echo \"x", "echo `x", "echo $(x", "echo ${x", "(ls", "{ ls; ", "[[ -f x",
                             "echo $((1 + 2", "cat <<EOF", "ls )", "case x in a) ls;;", "echo $'x"}) {
    ParsedCommand p = ParseShell(script);
    EXPECT_FALSE(p.complete) << script;
    EXPECT_FALSE(p.problem.empty()) << script;
  }
}

TEST(CommandParse, IncompleteStillListsWhatWasRead) {
  ParsedCommand p = ParseShell("rm -rf /x; echo \"unterminated");
  EXPECT_FALSE(p.complete);
  EXPECT_EQ(Texts(p), (Strings{"rm -rf /x", "echo unterminated"}));
}

TEST(CommandParse, DeepNestingStopsAtTheLimit) {
  std::string subst, subshell, groups;
  for (int i = 0; i < 100; ++i) {
    subst += "echo $(";
    subshell += "( ";
    groups += "{ ";
  }
  subst += "x";
  for (int i = 0; i < 100; ++i) subst += ")";
  for (const std::string& script : {subst, subshell, groups}) {
    ParsedCommand p = ParseShell(script);
    EXPECT_FALSE(p.complete);
    EXPECT_NE(p.problem.find("nesting deeper than 16"), std::string::npos) << p.problem;
    for (const auto& c : p.commands) EXPECT_LE(c.depth, kMaxDepth);
  }
  std::string wrappers;
  for (int i = 0; i < 40; ++i) wrappers += "nice ";
  ParsedCommand p = ParseShell(wrappers + "rm -rf /");
  EXPECT_FALSE(p.complete);
  EXPECT_LE(p.commands.size(), static_cast<size_t>(kMaxDepth + 1));
}

// `sh -c "sh -c \"...\""`, quoted the way a person would, `levels` deep around `inner`.
std::string NestedShells(int levels, const std::string& inner) {
  std::string script = inner;
  for (int i = 0; i < levels; ++i) {
    std::string quoted = "\"";
    for (char c : script) {
      if (c == '"' || c == '\\' || c == '$' || c == '`') quoted += '\\';
      quoted += c;
    }
    script = "sh -c " + quoted + "\"";
  }
  return script;
}

TEST(CommandParse, NestedShellScriptsAreFollowed) {
  ParsedCommand p = ParseShell(NestedShells(3, "rm -rf \"$HOME/x\""));
  ASSERT_TRUE(p.complete) << p.problem;
  EXPECT_EQ(CommandText(p.commands.back()), "rm -rf $HOME/x");
  EXPECT_EQ(p.commands.back().wrappers, (Strings{"sh", "sh", "sh"}));
}

TEST(CommandParse, NestedShellScriptsStopAtTheLimit) {
  ParsedCommand p = ParseShell(NestedShells(18, "rm -rf /"));
  EXPECT_FALSE(p.complete);
  EXPECT_NE(p.problem.find("16"), std::string::npos) << p.problem;
  for (const auto& c : p.commands) EXPECT_LE(c.wrappers.size(), static_cast<size_t>(kMaxDepth));
}

TEST(CommandParse, MegabyteScriptParses) {
  std::string script = "echo " + std::string(1 << 20, 'a');
  for (int i = 0; i < 50000; ++i) script += "; echo a";
  ParsedCommand p = ParseShell(script);
  EXPECT_TRUE(p.complete);
  EXPECT_EQ(p.commands.size(), 50001u);
  EXPECT_EQ(p.commands[0].words[1].size(), static_cast<size_t>(1 << 20));
}

TEST(CommandParse, HostileRepetitionStaysLinear) {
  for (const char* unit : {"${a:-", "((", "a=(", "\"$(", "[[ ", "case x in ", "x|", "<<E ", "`", "$'", "\\\n"}) {
    std::string script;
    while (script.size() < (1 << 20)) script += unit;
    ParsedCommand p = ParseShell(script);  // must return promptly; the result itself does not matter
    EXPECT_LE(p.problem.size(), 200u) << unit;
  }
}

}  // namespace
}  // namespace labgate::policy
