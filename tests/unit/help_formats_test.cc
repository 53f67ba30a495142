#include "cli/help_formats.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "cli/verbs.h"

namespace labgate::cli {
namespace {

using Words = std::vector<std::string>;

// The inventory a completion sees, and whether it was asked at all.
struct FakeTargets {
  Words ids = {"local", "web1", "web2", "nas", "group:servers", "tag:prod"};
  int asked = 0;
  std::function<Words()> fn() {
    return [this] {
      ++asked;
      return ids;
    };
  }
};

Words Complete(const Words& words, FakeTargets& targets) { return CompleteWords(Verbs(), words, targets.fn()); }

Words Complete(const Words& words) {
  FakeTargets targets;
  return Complete(words, targets);
}

bool Has(const Words& words, const std::string& word) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

TEST(Completion, FirstWordIsAVerb) {
  auto all = Complete({""});
  EXPECT_TRUE(Has(all, "hosts"));
  EXPECT_TRUE(Has(all, "run"));
  EXPECT_TRUE(Has(all, "completion"));
  EXPECT_EQ(all.size(), Verbs().size());
  EXPECT_EQ(Complete({"ho"}), Words{"hosts"});
  EXPECT_EQ(Complete({"--ver"}), Words{"--version"});
}

TEST(Completion, SubcommandsComeFromTheSynopses) {
  EXPECT_EQ(Complete({"hosts", ""}), (Words{"list", "trust", "add", "remove", "set", "check", "import", "export"}));
  EXPECT_EQ(Complete({"nodes", "re"}), (Words{"reject", "revoke"}));
  EXPECT_EQ(Complete({"approvals", "gra"}), (Words{"grant", "grants"}));
  EXPECT_EQ(Complete({"completion", ""}), (Words{"bash", "zsh", "words"}));
}

TEST(Completion, TargetsWhereTheHelpSaysTargetOrId) {
  FakeTargets targets;
  EXPECT_EQ(Complete({"hosts", "trust", "we"}, targets), (Words{"web1", "web2"}));
  EXPECT_EQ(Complete({"run", "gr"}, targets), Words{"group:servers"});
  EXPECT_EQ(Complete({"file", "get", "n"}, targets), Words{"nas"});
  EXPECT_EQ(Complete({"targets", "t"}, targets), Words{"tag:prod"});
  // camera TARGET or camera list TARGET
  auto camera = Complete({"camera", ""}, targets);
  EXPECT_TRUE(Has(camera, "list"));
  EXPECT_TRUE(Has(camera, "web1"));
  EXPECT_EQ(Complete({"camera", "list", "l"}, targets), Words{"local"});
  EXPECT_EQ(targets.asked, 6);
}

TEST(Completion, TheInventoryIsNotReadWhereNoTargetIsExpected) {
  FakeTargets targets;
  EXPECT_TRUE(Complete({"hosts", "list", ""}, targets).empty());
  EXPECT_TRUE(Complete({"approvals", "approve", ""}, targets).empty());  // a request id, not a target
  EXPECT_TRUE(Complete({"node", "pair", ""}, targets).empty());
  EXPECT_TRUE(Complete({""}, targets).size() > 1);
  EXPECT_EQ(targets.asked, 0);
}

TEST(Completion, OptionValues) {
  EXPECT_EQ(Complete({"camera", "web1", "--facing", ""}), (Words{"back", "front"}));
  EXPECT_EQ(Complete({"hosts", "add", "x", "--role", "d"}), Words{"daily"});
  EXPECT_EQ(Complete({"audit", "query", "--decision", ""}), (Words{"allowed", "refused"}));
  EXPECT_EQ(Complete({"location", "nas", "--accuracy", "p"}), Words{"precise"});
  EXPECT_EQ(Complete({"hosts", "export", "--format", ""}), (Words{"ansible-yaml", "ansible-json"}));
  EXPECT_EQ(Complete({"audit", "query", "--target", "w"}), (Words{"web1", "web2"}));
  EXPECT_EQ(Complete({"pair", "new", "--node", "n"}), Words{"nas"});
  EXPECT_EQ(Complete({"doctor", "--capture", "l"}), Words{"local"});
  // Free values (a file, a duration) are the shell's to complete: nothing comes back.
  EXPECT_TRUE(Complete({"run", "web1", "--timeout", ""}).empty());
  EXPECT_TRUE(Complete({"screen", "web1", "-o", ""}).empty());
  EXPECT_TRUE(Complete({"--config", ""}).empty());
}

TEST(Completion, ValuesAndOptionsAreSkippedWhenFindingTheVerbAndPosition) {
  EXPECT_EQ(Complete({"--config", "lab.toml", "ho"}), Words{"hosts"});
  EXPECT_EQ(Complete({"-c", "lab.toml", "--json", "tar"}), Words{"targets"});
  EXPECT_EQ(Complete({"run", "--timeout", "5s", "--sudo", "we"}), (Words{"web1", "web2"}));
  EXPECT_EQ(Complete({"hosts", "--config=lab.toml", "tr"}), Words{"trust"});
}

TEST(Completion, TheCommandOfRunIsTheShellsToComplete) {
  FakeTargets targets;
  EXPECT_TRUE(Complete({"run", "web1", ""}, targets).empty());
  EXPECT_TRUE(Complete({"run", "web1", "systemctl", "st"}, targets).empty());
  EXPECT_TRUE(Complete({"run", "web1", "--", "--"}, targets).empty());
  EXPECT_EQ(targets.asked, 0);
}

TEST(Completion, OptionsOfAVerbAreThoseItsHelpNames) {
  auto hosts = Complete({"hosts", "--"});
  for (const char* option : {"--address", "--fingerprint", "--identity-file", "--json", "--config", "--help"}) {
    EXPECT_TRUE(Has(hosts, option)) << option;
  }
  EXPECT_FALSE(Has(hosts, "--"));
  EXPECT_FALSE(Has(hosts, "--sudo"));
  EXPECT_EQ(Complete({"run", "--dr"}), Words{"--dry-run"});
  EXPECT_EQ(Complete({"--"}), (Words{"--config", "--help", "--json", "--version"}));
}

TEST(Completion, HelpCompletesVerbs) {
  EXPECT_EQ(Complete({"help", "ca"}), Words{"camera"});
  EXPECT_TRUE(Complete({"help", "camera", ""}).empty());
}

TEST(Completion, UnknownVerbsAndEmptyInputGiveNothingOrVerbs) {
  EXPECT_TRUE(Complete({"nosuchverb", ""}).empty());
  EXPECT_EQ(Complete({}).size(), Verbs().size());
}

TEST(Completion, AHostileInventoryNameCannotAddCandidates) {
  FakeTargets targets;
  targets.ids = {"ok", "two words", "line\nbreak", "tab\there", std::string("nul\0x", 5), "del\x7f"};
  EXPECT_EQ(Complete({"run", ""}, targets), Words{"ok"});
}

TEST(Completion, EveryVerbHasASynopsis) {
  for (const auto& [name, verb] : Verbs()) {
    EXPECT_NE(std::string(verb.usage).find("usage: labgate " + name), std::string::npos) << name;
  }
}

// Every line that starts with a dot must be a request the page means to make.
void ExpectOnlyKnownRequests(const std::string& page) {
  static const std::set<std::string> kRequests = {"TH", "SH", "SS", "TP", "B", "BI", "BR", "I", "IR",
                                                  "RI", "PP", "br", "nf", "fi"};
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || (line[0] != '.' && line[0] != '\'')) continue;
    const std::string request = line.substr(1, line.find(' ') == std::string::npos ? std::string::npos : line.find(' ') - 1);
    EXPECT_TRUE(kRequests.count(request)) << "unexpected request: " << line;
  }
}

TEST(ManPage, HasEveryVerbAndItsHelp) {
  const std::string page = ManPage(Verbs(), "9.8.7");
  EXPECT_EQ(page.rfind(".TH LABGATE 1 \"\" \"labgate 9.8.7\" \"User Commands\"\n", 0), 0u);
  for (const auto& [name, verb] : Verbs()) {
    EXPECT_NE(page.find(".SS \"labgate " + name + "\""), std::string::npos) << name;
  }
  EXPECT_NE(page.find("labgate hosts trust ID [\\-\\-fingerprint SHA256:...]"), std::string::npos);
  ExpectOnlyKnownRequests(page);
}

TEST(ManPage, HelpTextCannotBecomeARoffRequest) {
  const std::map<std::string, VerbHelp> verbs = {
      {"evil", {".so /etc/shadow", "usage: labgate evil\n.so /etc/shadow\n'sh rm -rf /\nback\\slash \\fBbold\n"}}};
  const std::string page = ManPage(verbs, "1.0");
  ExpectOnlyKnownRequests(page);
  EXPECT_NE(page.find("\\&.so /etc/shadow"), std::string::npos);
  EXPECT_NE(page.find("\\&'sh rm \\-rf /"), std::string::npos);
  EXPECT_NE(page.find("back\\eslash \\efBbold"), std::string::npos);
  EXPECT_EQ(page.find("\n.so"), std::string::npos);
}

TEST(CompletionScripts, CallTheWordsVerbAndFallBackToFiles) {
  EXPECT_NE(BashCompletionScript().find("labgate completion words --"), std::string_view::npos);
  EXPECT_NE(BashCompletionScript().find("complete -o default -F _labgate labgate"), std::string_view::npos);
  EXPECT_EQ(ZshCompletionScript().rfind("#compdef labgate\n", 0), 0u);
  EXPECT_NE(ZshCompletionScript().find("_files"), std::string_view::npos);
}

}  // namespace
}  // namespace labgate::cli
