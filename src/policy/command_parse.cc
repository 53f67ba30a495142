#include "policy/command_parse.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <utility>

#include "core/text.h"

// How this parser reads shell, and where it deliberately approximates (policy needs to see
// every command that could run, not to reproduce bash exactly):
//
// - Compound commands are not built into a tree. `if then else elif fi while until do done !`
//   are read as separators, so the commands inside conditions and bodies are all listed.
// - `for NAME in WORDS; do` and `select`: the header's words are read (substitutions inside
//   them are listed) but never listed as a command; `for ((...))` is skipped as arithmetic.
// - `case WORD in PAT) ...;; esac`: pattern words up to `)` are skipped, then the commands of
//   each branch are listed until `;;`, `;&`, `;;&` or `esac`.
// - `((...))` at the start of a command and `$((...))` are arithmetic: not commands, but the
//   substitutions inside are listed. bash would re-read `((cmd) ...)` as nested subshells; here
//   that is reported as an incomplete parse (write `( (` instead), never as a quieter command.
// - `[[ ... ]]` is listed as one command whose words run to `]]`; `<`, `>`, `(`, `)`, `&&`,
//   `||` inside it are words, not redirections or separators.
// - `NAME() { ...; }` and `function NAME { ...; }` list the body's commands where they are
//   defined (they may run later; policy treats them as running).
// - Brace expansion (`{a,b}`), pathname globs (`*`, `?`, `[..]`) and every `$` expansion in a
//   command name make the command dynamic; in arguments the text is kept as written.
// - A here-document body is skipped; an unquoted body's `$(..)` and backquotes are listed.
// - Aliases are not expanded (`sh -c` does not expand them either).
//
// Wrappers (see FindInner) are those of command_parse.h plus `doas`, `su`, `runuser`, `pkexec`,
// `setsid`, `flock`, `watch`, `nsenter`, `unshare`, `setpriv`, `capsh -- ARGS` (bash ARGS),
// `taskset MASK`, `busybox APPLET`, `builtin`, `trap ACTION` (ACTION is a script that runs later)
// and `find ... -exec|-execdir|-ok|-okdir CMD ... ;` (one inner command per clause). Privilege
// wrappers without a command (`sudo -i`, `sudo -s`, `doas -s`, `su`, `pkexec`, `chroot DIR`,
// `nsenter`, `unshare`) list a shell, `sh`; `xargs` without a command lists `echo`.

namespace labgate::policy {
namespace {

using core::Basename;
using core::OneOf;

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }
// Characters that end an unquoted word.
bool IsOperatorChar(char c) { return c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '<' || c == '>'; }
bool IsMeta(char c) { return IsBlank(c) || c == '\n' || IsOperatorChar(c); }

// A short quote of `text` for problem messages (commands may be megabytes long).
std::string Snippet(std::string_view text) {
  constexpr size_t kMax = 40;
  return text.size() <= kMax ? std::string(text) : std::string(text.substr(0, kMax)) + "...";
}

bool IsName(std::string_view s) {
  if (s.empty() || !IsNameStart(s[0])) return false;
  return std::all_of(s.begin(), s.end(), IsNameChar);
}

/// One shell word after quote removal, with what the shell would do to it at run time.
struct Word {
  std::string text;
  bool expanded = false;    // holds `$...`, `$(..)`, backquotes or `<(..)`
  bool globbed = false;     // unquoted `*`, `?`, `[..]` or `{a,b}`: expands to other words
  bool quoted = false;      // any quoting or escaping (so it is never a reserved word)
  bool assignment = false;  // `NAME=...` with NAME unquoted
};

/// A simple command being assembled, with whether each word is computed at run time (so a
/// wrapper's inner command name can be judged dynamic after unwrapping).
struct Cmd {
  SimpleCommand sc;
  std::vector<bool> computed;
};

/// State shared by every parser of one ParseShell or FromArgv call.
struct Shared {
  ParsedCommand out;
  bool stop = false;  // nesting too deep: stop reading so that cost stays linear

  void Fail(const std::string& problem, bool stop_reading) {
    if (out.complete) out.problem = problem;
    out.complete = false;
    stop = stop || stop_reading;
  }
};

void Emit(Cmd cmd, Shared& shared, int level);

struct HereDoc {
  std::string delimiter;
  bool strip_tabs = false;
  bool quoted = false;
};

/// Reads one piece of shell text. Child parsers read `sh -c` scripts, backquote bodies and
/// here-document bodies; all append to the same Shared output.
class Parser {
 public:
  Parser(std::string_view source, Shared& shared, int depth, int level, std::vector<std::string> wrappers)
      : s_(source), shared_(shared), depth_(depth), level_(level), wrappers_(std::move(wrappers)) {}

  /// Reads the whole source as a command list.
  void ParseScript() {
    ParseList(Term::kEnd);
    if (!pending_.empty() && !shared_.stop) {
      const std::string delimiter = Snippet(pending_.front().delimiter);
      shared_.Fail("here-document <<" + delimiter + " has no body ending in a line `" + delimiter + "`", false);
    }
  }

  /// Lists the substitutions of an unquoted here-document body (the whole source).
  void ScanHereDocBody() {
    Word scratch;
    while (i_ < s_.size() && !shared_.stop) {
      const char c = s_[i_];
      if (c == '\\') {
        i_ += 2;
      } else if (c == '$') {
        ReadDollar(scratch, true);
      } else if (c == '`') {
        ReadBackquote(scratch, true);
      } else {
        ++i_;
      }
    }
    i_ = std::min(i_, s_.size());
  }

 private:
  enum class Term { kEnd, kParen, kBrace };
  enum class Mode { kNormal, kForHeader, kCaseSubject, kCaseIn, kFunctionName };

  char Peek(size_t ahead) const { return i_ + ahead < s_.size() ? s_[i_ + ahead] : '\0'; }

  // Commands run under /bin/sh, which is dash on Debian and bash (or busybox ash) elsewhere. Where
  // those shells read the same text differently, no single parse is right for every target, so
  // the command counts as unreadable (and needs a human) instead of being guessed at.
  void NotPortable(const std::string& construct, const std::string& why) {
    shared_.Fail("`" + construct + "` is read differently by dash and bash (" + why + ")", false);
  }
  bool AtEnd() const { return i_ >= s_.size(); }
  bool LookingAt(std::string_view text) const { return s_.substr(i_, text.size()) == text; }

  void SkipBlanks() {
    while (!AtEnd()) {
      if (IsBlank(s_[i_])) {
        ++i_;
      } else if (s_[i_] == '\\' && Peek(1) == '\n') {
        i_ += 2;
      } else {
        break;
      }
    }
  }

  // Enters one level of nesting; false (and the parse stops) past kMaxDepth.
  bool Enter(bool deeper) {
    if (level_ + 1 > kMaxDepth) {
      shared_.Fail(
          "nesting deeper than " + std::to_string(kMaxDepth) + " levels (subshells, groups, substitutions, wrappers)",
          true);
      return false;
    }
    ++level_;
    if (deeper) ++depth_;
    return true;
  }
  void Leave(bool deeper) {
    --level_;
    if (deeper) --depth_;
  }

  // Parses a nested list (`( )`, `{ }`, `$( )`, `<( )`) one level deeper.
  void Nested(Term term, const char* what) {
    if (!Enter(true)) return;
    const bool closed = ParseList(term);
    Leave(true);
    if (!closed && !shared_.stop) shared_.Fail(std::string("unterminated ") + what, false);
  }

  static bool IsTimePrefix(const Cmd& cmd) {
    const auto& w = cmd.sc.words;
    if (!cmd.sc.assignments.empty() || !cmd.sc.redirects.empty()) return false;
    return (w.size() == 1 && w[0] == "time") || (w.size() == 2 && w[0] == "time" && w[1] == "-p");
  }

  // Returns true when the list ended at its terminator, false at the end of the text.
  bool ParseList(Term term) {
    Cmd cur;
    Mode mode = Mode::kNormal;
    std::vector<bool> cases;  // one per open `case`: true while reading patterns
    bool found = false;
    auto at_start = [&] { return cur.sc.words.empty() && cur.sc.assignments.empty() && cur.sc.redirects.empty(); };
    auto finish = [&](bool pipe) {
      if (!at_start()) {
        cur.sc.pipes_to_next = pipe;
        cur.sc.depth = depth_;
        cur.sc.wrappers = wrappers_;
        Emit(std::move(cur), shared_, level_);
      }
      cur = Cmd{};
    };
    auto reading_patterns = [&] { return !cases.empty() && cases.back(); };

    while (!shared_.stop) {
      SkipBlanks();
      if (AtEnd()) break;
      const char c = s_[i_];
      const char n1 = Peek(1);
      if (c == '#') {
        while (!AtEnd() && s_[i_] != '\n') ++i_;
        continue;
      }
      if (c == '\n') {
        ++i_;
        finish(false);
        if (mode == Mode::kForHeader) mode = Mode::kNormal;
        ReadHereDocs();
        continue;
      }
      if (c == ';') {
        ++i_;
        bool branch_end = false;
        if (Peek(0) == ';') {
          ++i_;
          branch_end = true;
          if (Peek(0) == '&') {
            NotPortable(";;&", "a bash-only case terminator");
            ++i_;
          }
        } else if (Peek(0) == '&') {
          NotPortable(";&", "a bash-only case terminator");
          ++i_;
          branch_end = true;
        }
        finish(false);
        if (mode == Mode::kForHeader) mode = Mode::kNormal;
        if (branch_end && !cases.empty()) cases.back() = true;
        continue;
      }
      if (c == '&') {
        if (n1 == '>') {
          NotPortable("&>", "bash redirects both streams; dash runs what comes before in the background");
          ReadRedirect(cur, "");
          continue;
        }
        if (n1 != '&') shared_.out.backgrounds = true;
        i_ += n1 == '&' ? 2 : 1;
        finish(false);
        continue;
      }
      if (c == '|') {
        if (reading_patterns()) {
          ++i_;
          continue;
        }
        if (n1 == '|') {
          i_ += 2;
          finish(false);
        } else {
          if (n1 == '&') NotPortable("|&", "bash pipes both streams; dash pipes, then backgrounds");
          i_ += n1 == '&' ? 2 : 1;
          finish(true);
        }
        continue;
      }
      if (c == '(') {
        if (reading_patterns()) {
          ++i_;
          continue;
        }
        if (IsTimePrefix(cur)) cur = Cmd{};
        if (at_start()) {
          if (n1 == '(') {
            NotPortable("((", "bash evaluates arithmetic; dash runs a command in two subshells");
            i_ += 2;
            ScanArithmetic();
          } else {
            ++i_;
            Nested(Term::kParen, "subshell `(`");
          }
          continue;
        }
        if (cur.sc.words.size() == 1 && cur.sc.assignments.empty()) {
          // `name ( )` defines a function: the name is not a command.
          size_t j = i_ + 1;
          while (j < s_.size() && IsBlank(s_[j])) ++j;
          if (j < s_.size() && s_[j] == ')') {
            i_ = j + 1;
            cur = Cmd{};
            shared_.out.defines_function = true;
            continue;
          }
        }
        shared_.Fail("unexpected `(` after `" + Snippet(cur.sc.words.empty() ? "" : cur.sc.words.back()) + "`", false);
        finish(false);
        ++i_;
        Nested(Term::kParen, "subshell `(`");
        continue;
      }
      if (c == ')') {
        ++i_;
        if (reading_patterns()) {
          cases.back() = false;
          continue;
        }
        if (term == Term::kParen) {
          found = true;
          break;
        }
        shared_.Fail("unexpected `)` without a matching `(`", false);
        finish(false);
        continue;
      }
      if ((c == '<' || c == '>') && n1 != '(') {
        ReadRedirect(cur, "");
        continue;
      }
      if (IsDigit(c)) {
        size_t j = i_;
        while (j < s_.size() && IsDigit(s_[j])) ++j;
        if (j < s_.size() && (s_[j] == '<' || s_[j] == '>') && !(j + 1 < s_.size() && s_[j + 1] == '(')) {
          std::string fd(s_.substr(i_, j - i_));
          i_ = j;
          ReadRedirect(cur, fd);
          continue;
        }
      }

      const size_t before = i_;
      Word w = ReadWord(false, true);
      if (i_ == before) ++i_;  // cannot happen; guarantees progress
      const bool plain = !w.quoted && !w.expanded;
      if (reading_patterns()) {
        if (plain && w.text == "esac") cases.pop_back();
        continue;
      }
      if (mode == Mode::kForHeader) {
        if (plain && w.text == "do") mode = Mode::kNormal;
        continue;
      }
      if (mode == Mode::kCaseSubject) {
        mode = Mode::kCaseIn;
        continue;
      }
      if (mode == Mode::kCaseIn) {
        mode = Mode::kNormal;
        if (plain && w.text == "in") {
          cases.push_back(true);
          continue;
        }
        shared_.Fail("`case` without `in` before `" + Snippet(w.text) + "`", false);
      }
      if (mode == Mode::kFunctionName) {
        mode = Mode::kNormal;
        continue;
      }
      if (plain && at_start()) {
        if (OneOf(w.text, {"while", "until"})) shared_.out.loops = true;
        if (OneOf(w.text, {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!"})) continue;
        if (w.text == "{") {
          Nested(Term::kBrace, "group `{`");
          continue;
        }
        if (w.text == "}") {
          if (term == Term::kBrace) {
            found = true;
            break;
          }
          continue;
        }
        if (w.text == "for" || w.text == "select") {
          if (w.text == "select") NotPortable("select", "a bash keyword; dash runs a program named select");
          mode = Mode::kForHeader;
          SkipBlanks();
          if (LookingAt("((")) {
            NotPortable("for ((", "bash arithmetic loop; a syntax error in dash");
            i_ += 2;
            ScanArithmetic();
          }
          continue;
        }
        if (w.text == "case") {
          mode = Mode::kCaseSubject;
          continue;
        }
        if (w.text == "esac") {
          if (!cases.empty()) cases.pop_back();
          continue;
        }
        if (w.text == "function") {
          NotPortable("function", "a bash keyword; dash runs a program named function");
          shared_.out.defines_function = true;
          mode = Mode::kFunctionName;
          continue;
        }
        if (w.text == "coproc") {
          NotPortable("coproc", "a bash keyword; dash runs a program named coproc");
          continue;
        }
        if (w.text == "[[") {
          NotPortable("[[", "a bash keyword; dash runs `[[` as a program and the rest as further commands");
          cur.sc.words.push_back("[[");
          cur.computed.push_back(false);
          ReadCondition(cur);
          continue;
        }
      }
      if (plain && w.text == "{" && IsTimePrefix(cur)) {
        cur = Cmd{};
        Nested(Term::kBrace, "group `{`");
        continue;
      }
      if (cur.sc.words.empty() && w.assignment) {
        cur.sc.assignments.push_back(std::move(w.text));
        continue;
      }
      cur.computed.push_back(w.expanded || w.globbed);
      cur.sc.words.push_back(std::move(w.text));
    }
    finish(false);
    if (!cases.empty() && !shared_.stop) shared_.Fail("`case` without its `esac`", false);
    return found;
  }

  // Reads an unquoted word up to a metacharacter. In a `[[ ]]` condition (`cond`) only blanks
  // end it. `array` allows `NAME=( ... )`.
  Word ReadWord(bool cond, bool array) {
    Word w;
    bool plain_prefix = true;  // nothing quoted or expanded so far (for `NAME=`)
    bool saw_equals = false;
    bool bracket_open = false, brace_open = false, brace_list = false;
    while (!AtEnd() && !shared_.stop) {
      const char c = s_[i_];
      if (IsBlank(c) || c == '\n') break;
      if ((c == '<' || c == '>') && Peek(1) == '(') {
        NotPortable(std::string(1, c) + "(", "bash process substitution; dash reads a redirection and a subshell");
        const size_t start = i_;
        i_ += 2;
        Nested(Term::kParen, "process substitution");
        w.text.append(s_.substr(start, i_ - start));
        w.expanded = true;
        plain_prefix = false;
        continue;
      }
      if (!cond && IsOperatorChar(c)) {
        if (c == '(' && array && w.assignment && !w.text.empty() && w.text.back() == '=') {
          NotPortable(w.text + "(", "a bash array; a syntax error in dash");
          ReadArrayValue(w);
          continue;
        }
        break;
      }
      switch (c) {
        case '\\':
          if (Peek(1) == '\n') {
            i_ += 2;
          } else if (i_ + 1 < s_.size()) {
            w.text += s_[i_ + 1];
            i_ += 2;
            w.quoted = true;
            plain_prefix = false;
          } else {
            w.text += '\\';
            ++i_;
          }
          continue;
        case '\'':
          ReadSingleQuoted(w);
          plain_prefix = false;
          continue;
        case '"':
          ReadDoubleQuoted(w);
          plain_prefix = false;
          continue;
        case '$':
          ReadDollar(w, false);
          plain_prefix = false;
          continue;
        case '`':
          ReadBackquote(w, false);
          plain_prefix = false;
          continue;
        case '=':
          if (!saw_equals) {
            saw_equals = true;
            std::string_view name = w.text;
            if (!name.empty() && name.back() == '+') name.remove_suffix(1);  // NAME+=value
            w.assignment = plain_prefix && IsName(name);
          }
          break;
        case '*':
        case '?':
          w.globbed = true;
          break;
        case '[':
          bracket_open = true;
          break;
        case ']':
          if (bracket_open) w.globbed = true;
          break;
        case '{':
          brace_open = true;
          break;
        case ',':
          if (brace_open) brace_list = true;
          break;
        case '.':
          if (brace_open && Peek(1) == '.') brace_list = true;
          break;
        case '}':
          if (brace_open && brace_list) w.globbed = true;
          break;
        default:
          break;
      }
      w.text += c;
      ++i_;
    }
    return w;
  }

  // `NAME=( a b c )`: the values are kept, space-separated, in the assignment's text.
  void ReadArrayValue(Word& w) {
    w.text += '(';
    ++i_;
    while (!shared_.stop) {
      while (!AtEnd() && (IsBlank(s_[i_]) || s_[i_] == '\n')) ++i_;
      if (AtEnd()) {
        shared_.Fail("unterminated array assignment `" + Snippet(w.text) + "`", false);
        return;
      }
      const char c = s_[i_];
      if (c == ')') {
        if (w.text.back() == ' ') w.text.pop_back();
        w.text += ')';
        ++i_;
        return;
      }
      if (c == '#') {
        while (!AtEnd() && s_[i_] != '\n') ++i_;
        continue;
      }
      if (IsOperatorChar(c) && !((c == '<' || c == '>') && Peek(1) == '(')) {
        w.text += c;
        ++i_;
        continue;
      }
      Word item = ReadWord(false, false);
      w.text += item.text + ' ';
      w.expanded = w.expanded || item.expanded;
    }
  }

  void ReadSingleQuoted(Word& w) {
    w.quoted = true;
    const size_t close = s_.find('\'', i_ + 1);
    if (close == std::string_view::npos) {
      shared_.Fail("unterminated single quote (') at offset " + std::to_string(i_), false);
      w.text.append(s_.substr(i_ + 1));
      i_ = s_.size();
      return;
    }
    w.text.append(s_.substr(i_ + 1, close - i_ - 1));
    i_ = close + 1;
  }

  void ReadDoubleQuoted(Word& w) {
    w.quoted = true;
    const size_t open = i_;
    ++i_;
    while (!shared_.stop) {
      if (AtEnd()) {
        shared_.Fail("unterminated double quote (\") at offset " + std::to_string(open), false);
        return;
      }
      const char c = s_[i_];
      if (c == '"') {
        ++i_;
        return;
      }
      if (c == '\\') {
        const char next = Peek(1);
        if (next == '\n') {
          i_ += 2;
        } else if (next == '$' || next == '`' || next == '"' || next == '\\') {
          w.text += next;
          i_ += 2;
        } else {
          w.text += '\\';
          ++i_;
        }
      } else if (c == '$') {
        ReadDollar(w, true);
      } else if (c == '`') {
        ReadBackquote(w, true);
      } else {
        w.text += c;
        ++i_;
      }
    }
  }

  // `$'...'`: ANSI-C quoting. Common escapes are decoded; the rest are kept as written.
  void ReadAnsiC(Word& w) {
    w.quoted = true;
    const size_t open = i_;
    ++i_;
    while (true) {
      if (AtEnd()) {
        shared_.Fail("unterminated $'...' quote at offset " + std::to_string(open), false);
        return;
      }
      const char c = s_[i_];
      if (c == '\'') {
        ++i_;
        return;
      }
      if (c != '\\' || i_ + 1 >= s_.size()) {
        w.text += c;
        ++i_;
        continue;
      }
      const char e = s_[i_ + 1];
      i_ += 2;
      switch (e) {
        case 'n':
          w.text += '\n';
          break;
        case 't':
          w.text += '\t';
          break;
        case 'r':
          w.text += '\r';
          break;
        case 'a':
          w.text += '\a';
          break;
        case 'b':
          w.text += '\b';
          break;
        case 'f':
          w.text += '\f';
          break;
        case 'v':
          w.text += '\v';
          break;
        case 'e':
        case 'E':
          w.text += '\x1b';
          break;
        case '\\':
        case '\'':
        case '"':
        case '?':
          w.text += e;
          break;
        case 'x': {
          int value = 0, digits = 0;
          while (digits < 2 && !AtEnd() && std::isxdigit(static_cast<unsigned char>(s_[i_]))) {
            const char h = s_[i_++];
            value = value * 16 + (IsDigit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
            ++digits;
          }
          if (digits == 0) {
            w.text += "\\x";
          } else {
            w.text += static_cast<char>(value);
          }
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            int value = e - '0', digits = 1;
            while (digits < 3 && !AtEnd() && s_[i_] >= '0' && s_[i_] <= '7') {
              value = value * 8 + (s_[i_++] - '0');
              ++digits;
            }
            w.text += static_cast<char>(value);
          } else {
            w.text += '\\';
            w.text += e;
          }
      }
    }
  }

  // At `$`: parameter expansion, command substitution, arithmetic or a literal dollar.
  void ReadDollar(Word& w, bool in_double_quotes) {
    const size_t start = i_;
    const char n1 = Peek(1);
    if (n1 == '(') {
      if (Peek(2) == '(') {
        i_ += 3;
        ScanArithmetic();
      } else {
        i_ += 2;
        Nested(Term::kParen, "command substitution `$(`");
      }
    } else if (n1 == '{') {
      i_ += 2;
      ScanParameter(in_double_quotes);
    } else if (n1 == '\'' && !in_double_quotes) {
      NotPortable("$'", "bash decodes an ANSI-C string; dash reads `$` and a single-quoted string");
      ++i_;
      ReadAnsiC(w);
      return;
    } else if (n1 == '"' && !in_double_quotes) {
      NotPortable("$\"", "bash translates the string; dash reads `$` and a double-quoted string");
      ++i_;
      ReadDoubleQuoted(w);  // $"..." (locale translation) reads like "..."
      return;
    } else if (IsNameStart(n1)) {
      ++i_;
      while (!AtEnd() && IsNameChar(s_[i_])) ++i_;
    } else if (n1 != '\0' && (IsDigit(n1) || std::string_view("@*#?$!-").find(n1) != std::string_view::npos)) {
      i_ += 2;
    } else {
      w.text += '$';
      ++i_;
      return;
    }
    w.text.append(s_.substr(start, i_ - start));
    w.expanded = true;
  }

  // After `${`: up to the matching `}`, listing substitutions inside (`${X:-$(cmd)}`).
  void ScanParameter(bool in_double_quotes) {
    if (!Enter(false)) return;
    if (Peek(0) == '!' && IsNameStart(Peek(1))) NotPortable("${!", "bash indirection");
    for (size_t j = i_; j < s_.size() && IsNameChar(s_[j]); ++j) {
      if (j + 1 < s_.size() && s_[j + 1] == '[') {
        NotPortable("${NAME[", "a bash array, whose subscript bash evaluates as arithmetic");
        break;
      }
    }
    Word scratch;
    bool closed = false;
    while (!AtEnd() && !shared_.stop) {
      const char c = s_[i_];
      if (c == '}') {
        ++i_;
        closed = true;
        break;
      }
      if (c == '\\') {
        i_ += 2;
      } else if (c == '\'' && !in_double_quotes) {
        ReadSingleQuoted(scratch);
      } else if (c == '"') {
        ReadDoubleQuoted(scratch);
      } else if (c == '$') {
        ReadDollar(scratch, in_double_quotes);
      } else if (c == '`') {
        ReadBackquote(scratch, in_double_quotes);
      } else {
        ++i_;
      }
    }
    i_ = std::min(i_, s_.size());
    Leave(false);
    if (!closed && !shared_.stop) shared_.Fail("unterminated parameter expansion `${`", false);
  }

  // After `((` or `$((`: up to the matching `))`, listing substitutions inside.
  void ScanArithmetic() {
    if (!Enter(false)) return;
    Word scratch;
    int parens = 0;
    bool closed = false;
    while (!AtEnd() && !shared_.stop) {
      const char c = s_[i_];
      if (c == '(') {
        ++parens;
        ++i_;
      } else if (c == ')') {
        if (parens > 0) {
          --parens;
          ++i_;
        } else if (Peek(1) == ')') {
          i_ += 2;
          closed = true;
          break;
        } else {
          ++i_;
          shared_.Fail("`((` closed by a single `)`: write `( (` for nested subshells", false);
          closed = true;
          break;
        }
      } else if (c == '\\') {
        i_ += 2;
      } else if (c == '\'') {
        ReadSingleQuoted(scratch);
      } else if (c == '"') {
        ReadDoubleQuoted(scratch);
      } else if (c == '$') {
        NotPortable("$((...$", "bash evaluates a variable's value inside arithmetic as code (array subscripts)");
        ReadDollar(scratch, true);
      } else if (c == '`') {
        ReadBackquote(scratch, true);
      } else {
        if (IsNameStart(c) && !(i_ > 0 && IsNameChar(s_[i_ - 1]))) {
          NotPortable("$((NAME", "bash evaluates a variable's value inside arithmetic as code (array subscripts)");
        }
        ++i_;
      }
    }
    i_ = std::min(i_, s_.size());
    Leave(false);
    if (!closed && !shared_.stop) shared_.Fail("unterminated arithmetic `((`", false);
  }

  // At a backquote: the body (with `\$`, `` \` ``, `\\` unescaped) is parsed one level deeper.
  void ReadBackquote(Word& w, bool in_double_quotes) {
    const size_t start = i_;
    ++i_;
    std::string body;
    bool closed = false;
    while (!AtEnd()) {
      const char c = s_[i_];
      if (c == '`') {
        ++i_;
        closed = true;
        break;
      }
      if (c == '\\' && i_ + 1 < s_.size()) {
        const char next = s_[i_ + 1];
        if (next == '$' || next == '`' || next == '\\' || (in_double_quotes && next == '"')) {
          body += next;
          i_ += 2;
          continue;
        }
        if (next == '\n') {
          i_ += 2;
          continue;
        }
      }
      body += c;
      ++i_;
    }
    w.text.append(s_.substr(start, i_ - start));
    w.expanded = true;
    if (!closed) shared_.Fail("unterminated backquote (`) at offset " + std::to_string(start), false);
    if (!Enter(true)) return;
    Parser child(body, shared_, depth_, level_, wrappers_);
    child.ParseScript();
    Leave(true);
  }

  // Reads the operator at i_ (after an optional fd number) and its target word.
  void ReadRedirect(Cmd& cur, const std::string& fd) {
    Redirect r;
    std::string op;
    bool here_doc = false, strip_tabs = false;
    if (s_[i_] == '&') {
      op = LookingAt("&>>") ? "&>>" : "&>";
      r.writes = true;
    } else if (s_[i_] == '<') {
      if (LookingAt("<<<")) {
        NotPortable("<<<", "a bash here-string; dash reads a here-document");
        op = "<<<";
      } else if (LookingAt("<<-")) {
        op = "<<-";
        here_doc = strip_tabs = true;
      } else if (LookingAt("<<")) {
        op = "<<";
        here_doc = true;
      } else if (LookingAt("<>")) {
        op = "<>";
        r.writes = true;
      } else if (LookingAt("<&")) {
        op = "<&";
      } else {
        op = "<";
      }
    } else {
      if (LookingAt(">>") && Peek(2) != '(') {
        op = ">>";
      } else if (LookingAt(">|")) {
        op = ">|";
      } else if (LookingAt(">&")) {
        op = ">&";
      } else {
        op = ">";
      }
      r.writes = true;
    }
    i_ += op.size();
    r.op = fd + op;
    SkipBlanks();
    if (AtEnd() || s_[i_] == '\n' ||
        (IsOperatorChar(s_[i_]) && !((s_[i_] == '<' || s_[i_] == '>') && Peek(1) == '('))) {
      shared_.Fail("redirection `" + r.op + "` has no target", false);
      cur.sc.redirects.push_back(std::move(r));
      return;
    }
    Word target = ReadWord(false, false);
    if (here_doc) {
      pending_.push_back(HereDoc{target.text, strip_tabs, target.quoted});
    } else {
      r.target = std::move(target.text);
    }
    if (op == ">&" || op == "<&") {
      // `2>&1` and `>&-` duplicate or close descriptors; `>&file` (bash) writes the file.
      const std::string_view t = r.target;
      const std::string_view digits = !t.empty() && t.back() == '-' ? t.substr(0, t.size() - 1) : t;
      const bool descriptor = std::all_of(digits.begin(), digits.end(), IsDigit);
      r.writes = op == ">&" && !descriptor;
    }
    cur.sc.redirects.push_back(std::move(r));
  }

  // After a newline: skips the bodies of pending here-documents.
  void ReadHereDocs() {
    std::vector<HereDoc> docs;
    docs.swap(pending_);
    for (const HereDoc& doc : docs) {
      const size_t start = i_;
      size_t body_end = s_.size();
      bool ended = false;
      while (!AtEnd()) {
        const size_t line_end = std::min(s_.find('\n', i_), s_.size());
        std::string_view line = s_.substr(i_, line_end - i_);
        if (doc.strip_tabs) {
          while (!line.empty() && line.front() == '\t') line.remove_prefix(1);
        }
        if (line == doc.delimiter) {
          body_end = i_;
          i_ = std::min(line_end + 1, s_.size());
          ended = true;
          break;
        }
        i_ = std::min(line_end + 1, s_.size());
      }
      if (!ended) {
        const std::string delimiter = Snippet(doc.delimiter);
        shared_.Fail("here-document <<" + delimiter + " has no end line `" + delimiter + "`", false);
      }
      if (!doc.quoted && !shared_.stop) {
        Parser body(s_.substr(start, body_end - start), shared_, depth_, level_, wrappers_);
        body.ScanHereDocBody();
      }
    }
  }

  // After `[[`: words up to `]]`, where operators are plain words.
  void ReadCondition(Cmd& cur) {
    while (!shared_.stop) {
      while (!AtEnd() && (IsBlank(s_[i_]) || s_[i_] == '\n' || (s_[i_] == '\\' && Peek(1) == '\n'))) ++i_;
      if (AtEnd()) {
        shared_.Fail("unterminated `[[` (no `]]`)", false);
        return;
      }
      if (LookingAt("]]") && (i_ + 2 >= s_.size() || IsMeta(s_[i_ + 2]))) {
        i_ += 2;
        cur.sc.words.push_back("]]");
        cur.computed.push_back(false);
        return;
      }
      const size_t before = i_;
      Word w = ReadWord(true, false);
      if (i_ == before) ++i_;
      cur.computed.push_back(w.expanded || w.globbed);
      cur.sc.words.push_back(std::move(w.text));
    }
  }

  std::string_view s_;
  size_t i_ = 0;
  Shared& shared_;
  int depth_;
  int level_;
  std::vector<std::string> wrappers_;
  std::vector<HereDoc> pending_;
};

// ---------------------------------------------------------------------------------------------
// Wrappers: programs that run another command given in their arguments.

/// What a wrapper runs: words of its own argv (from `start`, after `prefix`), or a script.
struct Inner {
  bool script = false;
  std::string text;                 // the script, when `script`
  std::vector<std::string> prefix;  // words placed before argv[start..end), e.g. {"sh"}
  size_t start = 0;
  size_t end = 0;
  // For a script: the words its text came from. When one of them is computed at run time, the
  // script is not the text labgate sees, and is not parsed (which also keeps nested `sh -c
  // "$(sh -c ...)"` linear: each level is read once, by the outer parser).
  size_t from_word = 0;
  size_t to_word = 0;
};

/// Options a wrapper understands before its operands.
struct OptionScan {
  size_t next = 1;                                          // first operand
  std::string flags;                                        // every short option letter seen
  std::vector<std::pair<std::string, std::string>> values;  // "-u" -> "root", "--user" -> "root"

  bool Has(char flag) const { return flags.find(flag) != std::string::npos; }
  bool HasLong(std::string_view name) const {
    return std::any_of(values.begin(), values.end(), [&](const auto& v) { return v.first == name; });
  }
  const std::string* Value(std::string_view a, std::string_view b = {}) const {
    for (const auto& v : values) {
      if (v.first == a || (!b.empty() && v.first == b)) return &v.second;
    }
    return nullptr;
  }
};

// Reads options from w[from] until the first operand or `--`. `short_values` are the letters
// that take a value (attached, `-uroot`, or the next word); `long_values` the long options that
// may take the next word as their value (`--user root`; `--user=root` always works).
OptionScan ScanOptions(const std::vector<std::string>& w, size_t from, std::string_view short_values,
                       std::initializer_list<std::string_view> long_values) {
  OptionScan o;
  size_t i = from;
  while (i < w.size()) {
    const std::string& a = w[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') break;
    if (a[1] == '-') {
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        o.values.emplace_back(a.substr(0, eq), a.substr(eq + 1));
      } else if (OneOf(a, long_values) && i + 1 < w.size()) {
        o.values.emplace_back(a, w[i + 1]);
        ++i;
      } else {
        o.values.emplace_back(a, "");
      }
      ++i;
      continue;
    }
    for (size_t k = 1; k < a.size(); ++k) {
      o.flags += a[k];
      if (short_values.find(a[k]) == std::string_view::npos) continue;
      std::string value;
      if (k + 1 < a.size()) {
        value = a.substr(k + 1);
      } else if (i + 1 < w.size()) {
        value = w[++i];
      }
      o.values.emplace_back(std::string("-") + a[k], value);
      break;
    }
    ++i;
  }
  o.next = i;
  return o;
}

bool IsAssignmentWord(std::string_view w) {
  const size_t eq = w.find('=');
  return eq != std::string_view::npos && IsName(w.substr(0, eq));
}

std::string JoinWords(const std::vector<std::string>& w, size_t from) {
  std::string out;
  for (size_t i = from; i < w.size(); ++i) {
    if (i > from) out += ' ';
    out += w[i];
  }
  return out;
}

Inner Argv(size_t start, size_t end) { return Inner{false, "", {}, start, end}; }
Inner Script(std::string text, size_t from_word, size_t to_word) {
  return Inner{true, std::move(text), {}, 0, 0, from_word, to_word};
}
Inner Fixed(std::vector<std::string> words) { return Inner{false, "", std::move(words), 0, 0}; }

// The shell's own options before `-c SCRIPT`: clusters (`-lc`, `-ec`), `-o NAME`, `+o NAME`.
void ShellInner(const std::vector<std::string>& w, size_t from, std::vector<Inner>& out) {
  bool command_string = false;
  size_t i = from;
  while (i < w.size()) {
    const std::string& a = w[i];
    if (a == "--" || a == "-") {
      ++i;
      break;
    }
    if (a.size() < 2 || (a[0] != '-' && a[0] != '+')) break;
    if (a[0] == '-' && a[1] == '-') {
      i += OneOf(a, {"--rcfile", "--init-file"}) ? 2 : 1;
      continue;
    }
    size_t skip = 1;
    for (size_t k = 1; k < a.size(); ++k) {
      if (a[k] == 'c' && a[0] == '-') command_string = true;
      if (a[k] == 'o' || a[k] == 'O') ++skip;
    }
    i += skip;
  }
  if (command_string && i < w.size()) out.push_back(Script(w[i], i, i + 1));
}

// `su`/`runuser`: options may follow the user name; `-c STRING` is a script, otherwise a shell.
void SuInner(const std::vector<std::string>& w, bool runuser, std::vector<Inner>& out) {
  std::string script;
  size_t script_word = 0;
  bool has_script = false, as_user = false;
  size_t i = 1;
  size_t first_operand = w.size();
  while (i < w.size()) {
    const std::string& a = w[i];
    if (a == "--") {
      if (first_operand == w.size()) first_operand = i + 1;
      break;
    }
    if (a.size() >= 2 && a[0] == '-' && a[1] == '-') {
      const size_t eq = a.find('=');
      const std::string name = a.substr(0, eq);
      std::string value;
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
      } else if (OneOf(name, {"--command", "--session-command", "--shell", "--group", "--supp-group",
                              "--whitelist-environment", "--user"}) &&
                 i + 1 < w.size()) {
        value = w[++i];
      }
      if (name == "--command" || name == "--session-command") {
        script = value;
        script_word = i;
        has_script = true;
      }
      if (name == "--user") as_user = true;
      ++i;
      continue;
    }
    if (a.size() >= 2 && a[0] == '-') {
      for (size_t k = 1; k < a.size(); ++k) {
        const char f = a[k];
        if (std::string_view("cCsgGwu").find(f) == std::string_view::npos) continue;
        std::string value = k + 1 < a.size() ? a.substr(k + 1) : (i + 1 < w.size() ? w[++i] : "");
        if (f == 'c' || f == 'C') {
          script = value;
          script_word = i;
          has_script = true;
        }
        if (f == 'u' && runuser) as_user = true;
        break;
      }
      ++i;
      continue;
    }
    if (first_operand == w.size()) first_operand = i;
    if (runuser && as_user) break;  // `runuser -u USER cmd ...`
    ++i;
  }
  if (has_script) {
    out.push_back(Script(script, script_word, script_word + 1));
  } else if (runuser && as_user && first_operand < w.size()) {
    out.push_back(Argv(first_operand, w.size()));
  } else {
    out.push_back(Fixed({"sh"}));
  }
}

// What `w` (a simple command's words) runs besides itself, if its program is a wrapper.
std::vector<Inner> FindInner(const std::vector<std::string>& w) {
  std::vector<Inner> out;
  const std::string_view prog = Basename(w[0]);
  const size_t n = w.size();
  auto argv_or = [&](size_t i, std::vector<std::string> fallback) {
    if (i < n) {
      out.push_back(Argv(i, n));
    } else if (!fallback.empty()) {
      out.push_back(Fixed(std::move(fallback)));
    }
  };

  if (prog == "sudo" || prog == "sudo-rs") {
    OptionScan o = ScanOptions(w, 1, "ugCDhprtUT",
                               {"--user", "--group", "--close-from", "--chdir", "--host", "--prompt", "--role",
                                "--type", "--other-user", "--command-timeout"});
    size_t i = o.next;
    while (i < n && IsAssignmentWord(w[i])) ++i;
    const bool shell = o.Has('i') || o.Has('s') || o.HasLong("--login") || o.HasLong("--shell");
    argv_or(i, shell ? std::vector<std::string>{"sh"} : std::vector<std::string>{});
  } else if (prog == "doas") {
    OptionScan o = ScanOptions(w, 1, "uC", {});
    argv_or(o.next, o.Has('s') ? std::vector<std::string>{"sh"} : std::vector<std::string>{});
  } else if (prog == "env") {
    OptionScan o = ScanOptions(w, 1, "uCS", {"--unset", "--chdir", "--split-string"});
    size_t i = o.next;
    while (i < n && (w[i] == "-" || IsAssignmentWord(w[i]))) ++i;
    if (const std::string* split = o.Value("-S", "--split-string")) {
      std::string script = *split;
      if (i < n) script += ' ' + JoinWords(w, i);
      out.push_back(Script(script, 1, n));
    } else {
      argv_or(i, {});
    }
  } else if (prog == "nice") {
    argv_or(ScanOptions(w, 1, "n", {"--adjustment"}).next, {});
  } else if (prog == "ionice") {
    OptionScan o = ScanOptions(w, 1, "cnpPu", {"--class", "--classdata", "--pid", "--pgid", "--uid"});
    if (!o.Has('p') && !o.Has('P') && !o.Has('u')) argv_or(o.next, {});
  } else if (prog == "timeout") {
    OptionScan o = ScanOptions(w, 1, "sk", {"--signal", "--kill-after"});
    if (o.next < n) argv_or(o.next + 1, {});  // skip DURATION
  } else if (prog == "nohup" || prog == "setsid" || prog == "builtin") {
    argv_or(ScanOptions(w, 1, "", {}).next, {});
  } else if (prog == "stdbuf") {
    argv_or(ScanOptions(w, 1, "ioe", {"--input", "--output", "--error"}).next, {});
  } else if (prog == "xargs") {
    OptionScan o = ScanOptions(
        w, 1, "ILnPdEsa",
        {"--arg-file", "--delimiter", "--max-lines", "--max-args", "--max-procs", "--max-chars", "--process-slot-var"});
    argv_or(o.next, {"echo"});
  } else if (prog == "exec") {
    argv_or(ScanOptions(w, 1, "a", {}).next, {});
  } else if (prog == "command") {
    OptionScan o = ScanOptions(w, 1, "", {});
    if (!o.Has('v') && !o.Has('V')) argv_or(o.next, {});  // `command -v X` only looks X up
  } else if (prog == "time") {
    argv_or(ScanOptions(w, 1, "fo", {"--format", "--output"}).next, {});
  } else if (prog == "chroot") {
    OptionScan o = ScanOptions(w, 1, "", {"--userspec", "--groups"});
    if (o.next < n) argv_or(o.next + 1, {"sh"});  // skip NEWROOT
  } else if (prog == "flock") {
    OptionScan o = ScanOptions(w, 1, "wEc", {"--timeout", "--conflict-exit-code", "--command"});
    if (const std::string* command = o.Value("-c", "--command")) {
      out.push_back(Script(*command, 1, n));
    } else if (o.next < n) {
      const size_t i = o.next + 1;  // skip the lock file or descriptor
      if (i + 1 < n && (w[i] == "-c" || w[i] == "--command")) {
        out.push_back(Script(w[i + 1], i + 1, i + 2));
      } else {
        argv_or(i, {});
      }
    }
  } else if (prog == "watch") {
    OptionScan o = ScanOptions(w, 1, "nq", {"--interval", "--equexit"});
    if (o.next < n) {
      if (o.Has('x') || o.HasLong("--exec")) {
        argv_or(o.next, {});
      } else {
        out.push_back(Script(JoinWords(w, o.next), o.next, n));
      }
    }
  } else if (prog == "su") {
    SuInner(w, false, out);
  } else if (prog == "runuser") {
    SuInner(w, true, out);
  } else if (prog == "pkexec") {
    argv_or(ScanOptions(w, 1, "", {"--user"}).next, {"sh"});
  } else if (OneOf(prog, {"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "rbash", "fish"})) {
    ShellInner(w, 1, out);
  } else if (prog == "busybox") {
    if (n > 1 && w[1][0] != '-') argv_or(1, {});
  } else if (prog == "ssh") {
    constexpr std::string_view kValues = "pliOoJFEbcDLRWwemQSBI";
    OptionScan o = ScanOptions(w, 1, kValues, {});
    if (o.next < n) {
      OptionScan after_host = ScanOptions(w, o.next + 1, kValues, {});
      if (after_host.next < n) out.push_back(Script(JoinWords(w, after_host.next), after_host.next, n));
    }
  } else if (prog == "nsenter") {
    argv_or(ScanOptions(w, 1, "tSG", {"--target", "--setuid", "--setgid"}).next, {"sh"});
  } else if (prog == "unshare") {
    argv_or(ScanOptions(w, 1, "SGRw",
                        {"--setuid", "--setgid", "--root", "--wd", "--propagation", "--setgroups", "--map-user",
                         "--map-group", "--map-users", "--map-groups"})
                .next,
            {"sh"});
  } else if (prog == "setpriv") {
    argv_or(ScanOptions(w, 1, "",
                        {"--reuid", "--regid", "--ruid", "--rgid", "--euid", "--egid", "--groups", "--inh-caps",
                         "--ambient-caps", "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label",
                         "--apparmor-profile"})
                .next,
            {});
  } else if (prog == "capsh") {
    for (size_t i = 1; i < n; ++i) {
      if (w[i] == "--") {
        Inner in = Argv(i + 1, n);
        in.prefix = {"bash"};  // capsh hands what follows `--` to /bin/bash
        out.push_back(std::move(in));
        break;
      }
    }
  } else if (prog == "taskset") {
    OptionScan o = ScanOptions(w, 1, "", {});
    if (!o.Has('p') && o.next < n) argv_or(o.next + 1, {});  // skip the CPU mask or list
  } else if (prog == "trap") {
    // `trap ACTION SIGNAL...` runs ACTION later; `trap -p`, `trap -l`, `trap - SIG` do not.
    const size_t i = n > 1 && w[1] == "--" ? 2 : 1;
    if (i + 1 < n && w[i] != "-" && !(w[i].size() > 1 && w[i][0] == '-')) out.push_back(Script(w[i], i, i + 1));
  } else if (prog == "gosu" || prog == "su-exec" || prog == "setuidgid" || prog == "s6-setuidgid") {
    argv_or(2, {});  // skip USER[:GROUP]
  } else if (prog == "chpst") {
    argv_or(ScanOptions(w, 1, "ugUbeln/cmdofprt", {}).next, {});
  } else if (prog == "run0" || prog == "systemd-run") {
    OptionScan o = ScanOptions(w, 1, "upEMHdsD",
                               {"--unit", "--property", "--setenv", "--machine", "--host", "--description", "--slice",
                                "--uid", "--gid", "--nice", "--working-directory", "--chdir", "--on-active",
                                "--on-boot", "--on-startup", "--on-unit-active", "--on-unit-inactive", "--on-calendar",
                                "--timer-property", "--path-property", "--socket-property", "--user-unit",
                                "--background", "--service-type", "--shell-prompt-prefix"});
    argv_or(o.next, {"sh"});
  } else if (prog == "pfexec" || prog == "unbuffer" || prog == "flatpak-spawn") {
    argv_or(ScanOptions(w, 1, "", {}).next, {});
  } else if (prog == "chrt") {
    OptionScan o = ScanOptions(w, 1, "TPD", {"--sched-runtime", "--sched-period", "--sched-deadline"});
    if (!o.Has('p') && !o.HasLong("--pid") && o.next < n) argv_or(o.next + 1, {});  // skip the priority
  } else if (OneOf(prog, {"strace", "ltrace", "valgrind"})) {
    argv_or(ScanOptions(w, 1, "abeoOpPsSuEIXU", {}).next, {});
  } else if (prog == "parallel") {
    // `parallel CMD ::: ARGS`; without `:::` the commands come from input (a dynamic name).
    OptionScan o = ScanOptions(w, 1, "jSPIaCd", {"--jobs", "--arg-file", "--delimiter", "--colsep", "--sshlogin"});
    size_t end = o.next;
    while (end < n && w[end] != ":::" && w[end] != "::::" && w[end] != ":::+" && w[end] != "::::+") ++end;
    if (end > o.next) {
      out.push_back(Argv(o.next, end));
    } else {
      out.push_back(Fixed({"$command-from-input"}));
    }
  } else if (prog == "tmux") {
    // `tmux new-session [-d] [-s NAME] ... [SHELL-COMMAND]`, also new-window, split-window, respawn-*.
    OptionScan g = ScanOptions(w, 1, "cfLSTM", {});
    if (g.Has('c')) {
      if (const std::string* command = g.Value("-c")) out.push_back(Script(*command, 1, n));
    } else if (g.next < n && OneOf(w[g.next], {"new", "new-session", "neww", "new-window", "splitw", "split-window",
                                                  "respawn-pane", "respawnp", "respawn-window", "respawnw"})) {
      OptionScan o = ScanOptions(w, g.next + 1, "cefnstxyFlpINSTXY", {});
      if (o.next < n) out.push_back(Script(JoinWords(w, o.next), o.next, n));
    }
  } else if (prog == "screen") {
    OptionScan o = ScanOptions(w, 1, "cehLpsStTX", {});
    if (o.next < n) argv_or(o.next, {});
  } else if (prog == "script") {
    OptionScan o = ScanOptions(w, 1, "cEIOBTm", {"--command", "--echo", "--log-in", "--log-out", "--log-io",
                                                  "--log-timing", "--logging-format"});
    if (const std::string* command = o.Value("-c", "--command")) out.push_back(Script(*command, 1, n));
  } else if (OneOf(prog, {"docker", "podman", "nerdctl", "lxc", "incus", "pct", "kubectl", "oc"})) {
    // `docker exec [OPTIONS] CONTAINER CMD...`, `kubectl exec POD -- CMD...`, `pct exec ID -- CMD`.
    size_t verb = 1;
    while (verb < n && !w[verb].empty() && w[verb][0] == '-') ++verb;
    if (verb < n && (w[verb] == "exec" || (prog == "pct" && w[verb] == "enter") ||
                     (OneOf(prog, {"docker", "podman", "nerdctl"}) && w[verb] == "container" && verb + 1 < n &&
                      w[verb + 1] == "exec"))) {
      size_t i = w[verb] == "container" ? verb + 2 : verb + 1;
      size_t dashdash = i;
      while (dashdash < n && w[dashdash] != "--") ++dashdash;
      if (dashdash < n) {
        argv_or(dashdash + 1, {"sh"});
      } else if (OneOf(prog, {"docker", "podman", "nerdctl"})) {
        OptionScan o = ScanOptions(w, i, "euw", {"--env", "--env-file", "--user", "--workdir", "--detach-keys"});
        if (o.next < n) argv_or(o.next + 1, {"sh"});  // skip CONTAINER
      } else {
        out.push_back(Fixed({"sh"}));
      }
    }
  } else if (prog == "machinectl") {
    if (n > 1 && OneOf(w[1], {"shell", "login"})) {
      if (n > 3) {
        argv_or(3, {"sh"});
      } else {
        out.push_back(Fixed({"sh"}));
      }
    }
  } else if (prog == "find") {
    // Each `-exec CMD ... ;` (or `+`), `-execdir`, `-ok`, `-okdir` clause runs CMD.
    for (size_t i = 1; i < n; ++i) {
      if (!OneOf(w[i], {"-exec", "-execdir", "-ok", "-okdir"})) continue;
      size_t end = i + 1;
      while (end < n && w[end] != ";" && w[end] != "+") ++end;
      if (end > i + 1) out.push_back(Argv(i + 1, end));
      i = end;
    }
  }
  return out;
}

void Unwrap(const Cmd& cmd, Shared& shared, int level) {
  const auto& words = cmd.sc.words;
  if (cmd.sc.dynamic || words.empty()) return;
  std::vector<Inner> inners = FindInner(words);
  if (inners.empty()) return;
  if (level + 1 > kMaxDepth) {
    shared.Fail("wrappers nested deeper than " + std::to_string(kMaxDepth) + " levels", false);
    return;
  }
  std::vector<std::string> wrappers = cmd.sc.wrappers;
  wrappers.emplace_back(Basename(words[0]));
  for (Inner& inner : inners) {
    if (shared.stop) return;
    if (inner.script) {
      bool computed = false;
      for (size_t i = inner.from_word; i < inner.to_word && i < cmd.computed.size(); ++i) {
        computed = computed || cmd.computed[i];
      }
      if (computed) {
        Cmd in;
        in.sc.words = {inner.text};
        in.computed = {true};
        in.sc.depth = cmd.sc.depth;
        in.sc.wrappers = wrappers;
        Emit(std::move(in), shared, level + 1);
        continue;
      }
      Parser child(inner.text, shared, cmd.sc.depth, level + 1, wrappers);
      child.ParseScript();
      continue;
    }
    Cmd in;
    in.sc.words = std::move(inner.prefix);
    for (const std::string& word : in.sc.words) in.computed.push_back(!word.empty() && word[0] == '$');
    for (size_t i = inner.start; i < inner.end; ++i) {
      in.sc.words.push_back(words[i]);
      in.computed.push_back(cmd.computed[i]);
    }
    in.sc.depth = cmd.sc.depth;
    in.sc.wrappers = wrappers;
    // The wrapper's output is the inner command's output.
    in.sc.pipes_to_next = cmd.sc.pipes_to_next;
    Emit(std::move(in), shared, level + 1);
  }
}

void Emit(Cmd cmd, Shared& shared, int level) {
  auto& sc = cmd.sc;
  if (!sc.words.empty()) {
    const std::string_view name = Basename(sc.words[0]);
    sc.dynamic = cmd.computed[0] || name == "eval" || name == "source" || sc.words[0] == ".";
  }
  shared.out.commands.push_back(sc);
  Unwrap(cmd, shared, level);
}

}  // namespace

ParsedCommand ParseShell(std::string_view script) {
  Shared shared;
  Parser parser(script, shared, 0, 0, {});
  parser.ParseScript();
  return std::move(shared.out);
}

ParsedCommand FromArgv(const std::vector<std::string>& argv) {
  Shared shared;
  if (argv.empty()) return std::move(shared.out);
  Cmd cmd;
  cmd.sc.words = argv;
  cmd.computed.assign(argv.size(), false);
  Emit(std::move(cmd), shared, 0);
  return std::move(shared.out);
}

std::string CommandText(const SimpleCommand& command) { return JoinWords(command.words, 0); }

}  // namespace labgate::policy
