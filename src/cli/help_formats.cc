#include "cli/help_formats.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "cli/args.h"

namespace labgate::cli {
namespace {

// ---- man page ----

// One line of help text as roff input: backslashes and minus signs written as escapes, and a
// leading dot or quote guarded so the line stays text, never a request.
std::string RoffLine(std::string_view line) {
  std::string out;
  if (!line.empty() && (line.front() == '.' || line.front() == '\'')) out += "\\&";
  for (char c : line) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RoffBlock(std::string_view text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out += RoffLine(text.substr(start, end - start)) + "\n";
    start = end + 1;
  }
  return out;
}

// ---- completion ----

std::vector<std::string> SplitWords(std::string_view line) {
  std::vector<std::string> words;
  std::istringstream in{std::string(line)};
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

std::vector<std::string> SplitAlternatives(const std::string& token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t bar = token.find('|', start);
    parts.push_back(token.substr(start, bar - start));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return parts;
}

// "list", "approve|deny", "back|front": words typed as they are, as opposed to placeholders.
bool IsLiteral(const std::string& token) {
  for (const auto& part : SplitAlternatives(token)) {
    if (part.empty() || !std::islower(static_cast<unsigned char>(part[0]))) return false;
    for (char c : part) {
      if (!std::islower(static_cast<unsigned char>(c)) && !std::isdigit(static_cast<unsigned char>(c)) && c != '-') {
        return false;
      }
    }
  }
  return true;
}

// TARGET, ID, SELECTOR, or ID|group:NAME|tag:NAME|*: a target of the inventory is expected.
bool IsTargetPlaceholder(const std::string& token) {
  for (const auto& part : SplitAlternatives(token)) {
    if (part == "TARGET" || part == "ID" || part == "SELECTOR") return true;
  }
  return false;
}

// The positional words of each synopsis of `verb` ("labgate hosts trust ID [--fingerprint ...]"
// gives {"trust", "ID"}): bracketed words are optional and skipped, and the first option ends
// the positional part.
std::vector<std::vector<std::string>> Synopses(const std::string& verb, std::string_view usage) {
  std::vector<std::vector<std::string>> out;
  std::size_t start = 0;
  while (start < usage.size()) {
    std::size_t end = usage.find('\n', start);
    if (end == std::string_view::npos) end = usage.size();
    auto words = SplitWords(usage.substr(start, end - start));
    start = end + 1;
    std::size_t i = 0;
    if (i < words.size() && words[i] == "usage:") ++i;
    if (i + 1 >= words.size() || words[i] != "labgate" || words[i + 1] != verb) continue;
    std::vector<std::string> positionals;
    int depth = 0;
    for (i += 2; i < words.size(); ++i) {
      const std::string& word = words[i];
      const bool bracketed = depth > 0 || word.front() == '[';
      depth += static_cast<int>(std::count(word.begin(), word.end(), '[')) -
               static_cast<int>(std::count(word.begin(), word.end(), ']'));
      if (bracketed) {
        // "[SELECTOR]": one optional word, still completed; "[options]" and "[--]" are not words.
        if (word.size() > 2 && word.front() == '[' && word.back() == ']' && word[1] != '-' && word != "[options]" &&
            std::count(word.begin(), word.end(), '[') == 1) {
          positionals.push_back(word.substr(1, word.size() - 2));
        }
        continue;
      }
      if (word.front() == '-') break;
      positionals.push_back(word);
    }
    out.push_back(std::move(positionals));
  }
  return out;
}

// Every long option the help text of a verb names.
std::set<std::string> OptionsIn(std::string_view usage) {
  std::set<std::string> out;
  for (std::size_t at = usage.find("--"); at != std::string_view::npos; at = usage.find("--", at + 2)) {
    if (at > 0 && usage[at - 1] == '-') continue;
    std::size_t end = at + 2;
    if (end >= usage.size() || !std::islower(static_cast<unsigned char>(usage[end]))) continue;
    while (end < usage.size() &&
           (std::islower(static_cast<unsigned char>(usage[end])) || usage[end] == '-' ||
            std::isdigit(static_cast<unsigned char>(usage[end])))) {
      ++end;
    }
    out.insert(std::string(usage.substr(at, end - at)));
  }
  return out;
}

// The fixed values the help text gives an option ("--facing back|front"), if any.
std::vector<std::string> ChoicesFor(const std::string& option, std::string_view usage) {
  const std::string key = option + " ";
  for (std::size_t at = usage.find(key); at != std::string_view::npos; at = usage.find(key, at + 1)) {
    auto words = SplitWords(usage.substr(at + key.size(), usage.find('\n', at) - at - key.size()));
    if (words.empty()) continue;
    std::string value = words.front();
    while (!value.empty() && (value.back() == ']' || value.back() == ',')) value.pop_back();
    if (value.find('|') != std::string::npos && IsLiteral(value)) return SplitAlternatives(value);
  }
  return {};
}

std::string LongForm(const std::string& word) {
  if (word == "-c") return "--config";
  if (word == "-o") return "--output";
  if (word == "-n") return "--lines";
  return word;
}

std::vector<std::string> Matching(std::vector<std::string> candidates, const std::string& prefix) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto& c : candidates) {
    if (c.rfind(prefix, 0) != 0 || !seen.insert(c).second) continue;
    // A name from a hand-edited inventory must not smuggle a second candidate or a shell word.
    if (std::any_of(c.begin(), c.end(), [](unsigned char ch) { return ch <= ' ' || ch == 0x7f; })) continue;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

std::string ManPage(const std::map<std::string, VerbHelp>& verbs, std::string_view version) {
  std::string out;
  out += ".TH LABGATE 1 \"\" \"labgate " + RoffLine(version) + "\" \"User Commands\"\n";
  out += ".SH NAME\nlabgate \\- " + RoffLine(kTagline) + "\n";
  out += ".SH SYNOPSIS\n.B labgate\n.I VERB\n.RI [ options ]\n.br\n.B labgate help\n.RI [ VERB ]\n";
  out +=
      ".SH DESCRIPTION\n"
      ".B labgate\n"
      "is one program with several roles: an MCP server that lets an AI assistant run commands, take\n"
      "screenshots and photos, read locations and move files on the machines of a homelab\n"
      "(\\fBlabgate mcp\\fR); the gateway daemon that paired devices connect to (\\fBlabgate gateway\\fR);\n"
      "the agent on such a device (\\fBlabgate node\\fR); and the operator's command line for pairing,\n"
      "approvals, the inventory and the audit log.\n"
      ".PP\n"
      "Every action passes the same guardrails: the capability policy of its target, a risk\n"
      "classifier, a human's confirmation of risky commands, deadlines, and a hash\\-chained audit log.\n"
      "Targets, policy and settings come from the inventory file, hosts.toml.\n";
  out += ".SH VERBS\n";
  for (const auto& [name, verb] : verbs) out += ".TP\n.B " + RoffLine(name) + "\n" + RoffLine(verb.summary) + "\n";
  out +=
      ".SH \"GLOBAL OPTIONS\"\n"
      ".TP\n.BI \\-\\-config \" FILE\"\nthe inventory to use; without it ./hosts.toml, then\n"
      "~/.config/labgate/hosts.toml, else built\\-in defaults with only the \\fBlocal\\fR target\n"
      ".TP\n.B \\-\\-json\nstructured output, where a verb offers it\n"
      ".TP\n.BR \\-\\-help \", \" \\-h\nthe help of labgate or of one verb\n"
      ".TP\n.BR \\-\\-version \", \" \\-V\nthe version\n";
  out += ".SH \"VERB DETAILS\"\n";
  for (const auto& [name, verb] : verbs) {
    out += ".SS \"labgate " + RoffLine(name) + "\"\n.nf\n" + RoffBlock(verb.usage) + ".fi\n";
  }
  out +=
      ".SH \"EXIT STATUS\"\n"
      "0 on success; 1 when a check or one of several targets failed; 2 for a usage error; 124 when a\n"
      "command reached its deadline; 128+N when it was killed by signal N; 255 when labgate itself could\n"
      "not do it (refused, unknown target, audit log unwritable). \\fBlabgate run\\fR on one target exits\n"
      "with the command's own status. A node agent the gateway refuses exits 78.\n"
      ".SH ENVIRONMENT\n"
      ".TP\n.B LABGATE_LOG\nlog level on stderr: trace, debug, info, warn, error or off (default info for\n"
      "the daemons, warn otherwise)\n"
      ".TP\n.B LABGATE_NODE_STATE_DIR\nthe node agent's state directory when \\-\\-state\\-dir is not given\n"
      ".TP\n.B LABGATE_NO_HUGEPAGES\nset to start without transparent huge pages for large buffers\n"
      ".SH FILES\n"
      ".TP\n.I /etc/labgate/hosts.toml\nthe inventory of the packaged gateway service (owned by root)\n"
      ".TP\n.I /var/lib/labgate\nthe service's state: host key, pairing store, approvals, audit log, sockets\n"
      ".TP\n.I ~/.config/labgate/hosts.toml\na user's inventory\n"
      ".TP\n.I ~/.local/state/labgate\na user's gateway state (the default [gateway] state_dir)\n"
      ".TP\n.I ~/.local/state/labgate\\-node\na node agent's key and pairing\n"
      ".SH \"SEE ALSO\"\n"
      ".BR ssh (1),\n.BR sshd (8),\n.BR systemctl (1),\n"
      "/usr/share/doc/labgate/README.md\n";
  return out;
}

std::vector<std::string> CompleteWords(const std::map<std::string, VerbHelp>& verbs,
                                       const std::vector<std::string>& words,
                                       const std::function<std::vector<std::string>()>& targets) {
  const std::string current = words.empty() ? "" : words.back();
  std::string verb;
  std::vector<std::string> positionals;  // after the verb
  std::string pending_option;            // the option whose value `current` is
  const std::size_t typed = words.empty() ? 0 : words.size() - 1;
  for (std::size_t i = 0; i < typed; ++i) {
    const std::string word = LongForm(words[i]);
    if (word == "--") return {};  // a command's own words follow
    if (word.size() > 1 && word[0] == '-') {
      if (word.find('=') == std::string::npos && TakesValue(word)) {
        if (i + 1 == typed) {
          pending_option = word;
        } else {
          ++i;
        }
      }
      continue;
    }
    if (verb.empty()) {
      verb = word;
    } else {
      positionals.push_back(word);
    }
  }

  auto found = verbs.find(verb);
  const std::string_view usage = found == verbs.end() ? std::string_view() : std::string_view(found->second.usage);
  if (!pending_option.empty()) {
    if (pending_option == "--target" || pending_option == "--node" || pending_option == "--capture") {
      return Matching(targets(), current);
    }
    return Matching(ChoicesFor(pending_option, usage), current);
  }
  if (!current.empty() && current[0] == '-') {
    std::vector<std::string> options;
    if (verb.empty()) {
      options = {"--config", "--help", "--json", "--version"};
    } else if (found != verbs.end()) {
      auto named = OptionsIn(usage);
      named.insert("--help");
      options.assign(named.begin(), named.end());
    }
    return Matching(std::move(options), current);
  }
  if (verb.empty()) {
    std::vector<std::string> names;
    for (const auto& [name, unused] : verbs) names.push_back(name);
    return Matching(std::move(names), current);
  }
  if (found == verbs.end()) return {};
  if (verb == "help") {
    if (!positionals.empty()) return {};
    std::vector<std::string> names;
    for (const auto& [name, unused] : verbs) names.push_back(name);
    return Matching(std::move(names), current);
  }
  if (verb == "run" && !positionals.empty()) return {};  // the command: the shell's own completion

  std::vector<std::string> candidates;
  bool wants_targets = false;
  for (const auto& synopsis : Synopses(verb, usage)) {
    if (synopsis.size() <= positionals.size()) continue;
    bool fits = true;
    for (std::size_t i = 0; i < positionals.size() && fits; ++i) {
      if (!IsLiteral(synopsis[i])) continue;
      auto alternatives = SplitAlternatives(synopsis[i]);
      fits = std::find(alternatives.begin(), alternatives.end(), positionals[i]) != alternatives.end();
    }
    if (!fits) continue;
    const std::string& next = synopsis[positionals.size()];
    if (IsLiteral(next)) {
      for (auto& alternative : SplitAlternatives(next)) candidates.push_back(std::move(alternative));
    } else if (IsTargetPlaceholder(next)) {
      wants_targets = true;
    }
  }
  if (wants_targets) {
    auto ids = targets();
    candidates.insert(candidates.end(), ids.begin(), ids.end());
  }
  return Matching(std::move(candidates), current);
}

std::string_view BashCompletionScript() {
  return R"(# bash completion for labgate. Verbs, options, their values and target ids come from
# `labgate completion words`, so they match the installed labgate and the inventory in force.
# The words are taken from the line itself, not COMP_WORDS, which bash splits at ':' and '='.
_labgate() {
  local line=${COMP_LINE:0:COMP_POINT} words
  read -ra words <<<"$line"
  if [[ -z $line || $line == *[[:space:]] ]]; then words+=(''); fi
  local cur=${words[${#words[@]}-1]}
  local IFS=$'\n'
  COMPREPLY=($(command labgate completion words -- "${words[@]:1}" 2>/dev/null))
  # bash puts a candidate in place of what follows the last ':' or '=' of the word.
  local head=${cur%"${cur##*[:=]}"}
  if [[ -n $head ]]; then COMPREPLY=("${COMPREPLY[@]#"$head"}"); fi
}
complete -o default -F _labgate labgate
)";
}

std::string_view ZshCompletionScript() {
  return R"(#compdef labgate
# zsh completion for labgate. Verbs, options, their values and target ids come from
# `labgate completion words`, so they match the installed labgate and the inventory in force.
local -a candidates
candidates=("${(@f)$(command labgate completion words -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
candidates=("${(@)candidates:#}")
if (( ${#candidates} )); then
  compadd -a candidates
else
  _files
fi
)";
}

}  // namespace labgate::cli
