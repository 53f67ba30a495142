#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

/// A shell-aware view of a command, for policy decisions. Pure; never executes anything.
namespace labgate::policy {

/// One redirection of a simple command, e.g. `> /etc/hosts` or `2>>log`.
struct Redirect {
  std::string op;      // ">", ">>", ">|", "&>", "&>>", "<", "<<", "<<<", "<>", "2>", "2>>", ">&", ...
  std::string target;  // the word after the operator (quotes removed); "" for a here-document body
  bool writes = false;  // true when the target file is created, truncated or appended to
};

/// One simple command as the shell would run it: its words after quote removal.
struct SimpleCommand {
  std::vector<std::string> words;  // argv; assignment prefixes (`A=b cmd`) are not included
  std::vector<std::string> assignments;  // `NAME=value` prefixes
  std::vector<Redirect> redirects;
  /// The command name (or a word of it) is computed at run time: `$X`, `$(...)`, backquotes,
  /// `eval`, `source`, `.`; a policy cannot know what it runs.
  bool dynamic = false;
  /// stdout feeds the next simple command at the same level through `|` or `|&`.
  bool pipes_to_next = false;
  /// How it was reached: 0 for top level; +1 per subshell, `{ }` group, `$( )`, backquotes or
  /// process substitution; wrapped commands (`sudo X`, `sh -c 'X'`) keep the wrapper's depth.
  int depth = 0;
  /// The wrapper program(s) this command was unwrapped from, outermost first (e.g. {"sudo", "nice"}).
  /// Empty for commands the shell itself runs.
  std::vector<std::string> wrappers;
};

/// Every simple command a command line would run, in source order.
struct ParsedCommand {
  /// Commands the shell runs itself (top level, subshells, groups, substitutions), then — after
  /// each — the commands unwrapped from wrappers such as `sudo`, `doas`, `env`, `nice`, `ionice`,
  /// `timeout`, `nohup`, `stdbuf`, `xargs`, `exec`, `command`, `time`, `chroot DIR`,
  /// `sh|bash|dash|zsh -c SCRIPT` (SCRIPT parsed recursively) and `ssh HOST CMD`.
  std::vector<SimpleCommand> commands;
  /// False when the text could not be parsed with certainty (an unterminated quote or
  /// substitution, nesting deeper than kMaxDepth, a here-document without its end); policy
  /// then treats the command as the riskiest class. `problem` says what was wrong.
  bool complete = true;
  std::string problem;
  /// The text defines a shell function: a function can shadow a program's name and recurse
  /// (a fork bomb), so what its calls run is not what their names say.
  bool defines_function = false;
  /// The text has a `while`/`until` loop, and starts something in the background with `&`:
  /// together they can start processes without end.
  bool loops = false;
  bool backgrounds = false;
};

/// Deepest nesting of subshells, substitutions and `sh -c` the parser follows.
inline constexpr int kMaxDepth = 16;

/// Parses a `sh -c` command line. Linear in the size of `script` (a 1 MB command parses in
/// well under a second); never throws.
ParsedCommand ParseShell(std::string_view script);

/// An argv run without a shell: one simple command (plus what its wrappers run).
ParsedCommand FromArgv(const std::vector<std::string>& argv);

/// The words of a simple command joined by single spaces: what allow/deny patterns match.
std::string CommandText(const SimpleCommand& command);

}  // namespace labgate::policy
