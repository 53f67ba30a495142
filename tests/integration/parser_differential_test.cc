// The policy parser against real shells: every `touch` that dash or bash really runs must be
// one the parser listed, and every simple command shfmt's POSIX parser sees must be listed too.
#include <gtest/gtest.h>

#include "corpus.h"
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/process_runner.h"
#include "policy/command_parse.h"

namespace labgate::policy {
namespace {

namespace fs = std::filesystem;

using labgate::testing::LoadPolicyCorpus;

class ParserDifferential : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("labgate-parser-diff-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  core::ProcessOutcome Run(std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>> env = {}) {
    core::ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.env = std::move(env);
    spec.timeout = std::chrono::milliseconds(10000);
    spec.output_cap = 16 * 1024 * 1024;
    auto r = runner_.Run(spec, cancel_, nullptr);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : core::ProcessOutcome{};
  }

  // The names of the files under $M that `shell` touched running `snippet`.
  std::set<std::string> Touched(const std::string& shell, const std::string& snippet) {
    const fs::path m = dir_ / "m";
    fs::remove_all(m);
    fs::create_directories(m);
    Run({shell, "-c", snippet}, {{"M", m.string()}});
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(m)) out.insert(e.path().filename().string());
    return out;
  }

  fs::path dir_;
  core::SystemProcessRunner runner_;
  core::CancelToken cancel_;
};

// What the parser says `touch` would create: arguments `$M/NAME`. A `touch` whose argument is
// computed at run time, or a command whose name is, may touch anything (`any`): policy treats
// such a command as one it cannot see through only if the name is computed, so a computed
// argument still counts as seen.
struct Prediction {
  std::set<std::string> names;
  bool any = false;
};

Prediction Predicted(const ParsedCommand& p) {
  Prediction out;
  for (const SimpleCommand& c : p.commands) {
    if (c.dynamic) out.any = true;
    if (c.words.empty() || c.words[0] != "touch") continue;
    for (size_t i = 1; i < c.words.size(); ++i) {
      const std::string& word = c.words[i];
      const std::string prefix = word.rfind("${M}/", 0) == 0 ? "${M}/" : "$M/";
      const std::string rest = word.rfind(prefix, 0) == 0 ? word.substr(prefix.size()) : word;
      if (rest.find_first_of("$`*?[") != std::string::npos) {
        out.any = true;
      } else {
        out.names.insert(rest);
      }
    }
  }
  return out;
}

TEST_F(ParserDifferential, EveryTouchDashOrBashRuns_TheParserListed) {
  const auto corpus = LoadPolicyCorpus("parser_corpus.txt");
  ASSERT_GE(corpus.size(), 120u);
  size_t touches = 0, unreadable = 0;
  for (const std::string& snippet : corpus) {
    const ParsedCommand parsed = ParseShell(snippet);
    if (!parsed.complete) {
      // Refused as unreadable (e.g. arithmetic naming a variable, which bash evaluates as code):
      // a human confirms it, so nothing can slip past.
      ++unreadable;
      continue;
    }
    const Prediction predicted = Predicted(parsed);
    for (const char* shell : {"/bin/dash", "/bin/bash"}) {
      for (const std::string& file : Touched(shell, snippet)) {
        ++touches;
        EXPECT_TRUE(predicted.any || predicted.names.count(file))
            << shell << " ran `touch $M/" << file << "`, which the parser missed in:\n"
            << snippet;
      }
    }
  }
  std::cout << "[ corpus  ] parser: " << corpus.size() << " snippets (" << unreadable << " read as unreadable), "
            << touches << " touches by dash and bash\n";
  EXPECT_LE(unreadable * 10, corpus.size()) << "the parser should read at least 90% of plain POSIX snippets";
}

// Every command name shfmt finds (as a literal word) in a CallExpr, with counts.
void CollectCalls(const nlohmann::json& node, std::map<std::string, int>& out) {
  if (node.is_array()) {
    for (const auto& child : node) CollectCalls(child, out);
    return;
  }
  if (!node.is_object()) return;
  if (node.value("Type", "") == "CallExpr" && node.contains("Args") && !node["Args"].empty()) {
    const auto& parts = node["Args"][0]["Parts"];
    std::string name;
    bool literal = parts.is_array() && !parts.empty();
    for (const auto& part : parts) {
      if (part.value("Type", "") == "Lit") {
        name += part.value("Value", "");
      } else if (part.value("Type", "") == "SglQuoted") {
        name += part.value("Value", "");
      } else {
        literal = false;
      }
    }
    if (literal) ++out[name];
  }
  for (const auto& [key, child] : node.items()) {
    if (key != "Pos" && key != "End") CollectCalls(child, out);
  }
}

TEST_F(ParserDifferential, EveryCallShfmtSees_TheParserListed) {
  const auto corpus = LoadPolicyCorpus("parser_corpus.txt");
  ASSERT_GE(corpus.size(), 120u);
  const fs::path file = dir_ / "snippet.sh";
  size_t compared = 0, shfmt_refused = 0;
  for (const std::string& snippet : corpus) {
    std::ofstream(file) << snippet << "\n";
    core::ProcessOutcome out = Run({"/bin/sh", "-c", "shfmt --to-json -ln posix < \"$1\"", "sh", file.string()});
    if (out.exit_code != 0) {
      ++shfmt_refused;  // shfmt is stricter than dash about some arithmetic; nothing to compare
      continue;
    }
    ++compared;
    std::map<std::string, int> theirs;
    CollectCalls(nlohmann::json::parse(out.out.text), theirs);
    std::map<std::string, int> ours;
    for (const SimpleCommand& c : ParseShell(snippet).commands) {
      if (!c.words.empty() && c.wrappers.empty() && !c.dynamic) ++ours[c.words[0]];
    }
    for (const auto& [name, count] : theirs) {
      EXPECT_GE(ours[name], count) << "shfmt sees `" << name << "` " << count << " times, the parser " << ours[name]
                                   << " times, in:\n"
                                   << snippet;
    }
  }
  std::cout << "[ corpus  ] shfmt: " << compared << " snippets compared, " << shfmt_refused << " refused by shfmt\n";
  EXPECT_GE(compared * 10, corpus.size() * 9);
}

}  // namespace
}  // namespace labgate::policy
