#include "ssh/remote_command.h"

#include <cctype>

#include "core/text.h"

namespace labgate::ssh {

bool IsValidEnvName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

RemoteCommand BuildRemoteCommand(const std::vector<std::string>& argv, const std::optional<std::string>& shell,
                                 const std::string& cwd, const std::vector<std::pair<std::string, std::string>>& env) {
  RemoteCommand out;
  auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  std::string script = "printf '" + std::string(kPgidPrefix) + "%s\\n' \"$$\" || exit 125; ";
  if (!cwd.empty()) {
    if (has_nul(cwd)) return {"", "cwd contains a NUL byte"};
    // A leading '-' would read as an option to cd.
    std::string dir = cwd[0] == '-' ? "./" + cwd : cwd;
    script += "cd " + core::ShellQuote(dir) + " || { echo \"labgate: cannot change to directory " +
              core::ShellQuote(cwd) + "\" >&2; exit 125; }; ";
  }
  script += "exec";
  if (!env.empty()) {
    script += " env";
    for (const auto& [key, value] : env) {
      if (!IsValidEnvName(key)) return {"", "invalid environment variable name '" + key + "'"};
      if (has_nul(value)) return {"", "environment variable " + key + " contains a NUL byte"};
      script += " " + core::ShellQuote(key + "=" + value);
    }
  }
  if (shell) {
    if (has_nul(*shell)) return {"", "command contains a NUL byte"};
    script += " /bin/sh -c " + core::ShellQuote(*shell);
  } else {
    if (argv.empty()) return {"", "command argv is empty"};
    for (const auto& word : argv) {
      if (has_nul(word)) return {"", "a command argument contains a NUL byte"};
      script += " " + core::ShellQuote(word);
    }
  }
  out.text = "exec /bin/sh -c " + core::ShellQuote(script);
  return out;
}

std::optional<std::pair<int, std::size_t>> ParsePgidLine(std::string_view start) {
  std::string_view prefix = kPgidPrefix;
  if (start.size() < prefix.size()) {
    if (prefix.substr(0, start.size()) != start) return std::make_pair(-1, std::size_t{0});
    return std::nullopt;
  }
  if (start.substr(0, prefix.size()) != prefix) return std::make_pair(-1, std::size_t{0});
  std::size_t nl = start.find('\n');
  if (nl == std::string_view::npos) return start.size() > prefix.size() + 12 ? std::optional(std::make_pair(-1, std::size_t{0})) : std::nullopt;
  std::string_view digits = start.substr(prefix.size(), nl - prefix.size());
  if (digits.empty() || digits.size() > 10) return std::make_pair(-1, std::size_t{0});
  long pgid = 0;
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::make_pair(-1, std::size_t{0});
    pgid = pgid * 10 + (c - '0');
  }
  if (pgid <= 1 || pgid > 0x7fffffff) return std::make_pair(-1, std::size_t{0});
  return std::make_pair(static_cast<int>(pgid), nl + 1);
}

std::string KillScript(int pgid, int grace_ms) {
  const std::string g = "-" + std::to_string(pgid);
  const int rounds = grace_ms / 50 > 0 ? grace_ms / 50 : 1;
  return "kill -TERM " + g + " 2>/dev/null; i=0; while [ $i -lt " + std::to_string(rounds) + " ] && kill -0 " + g +
         " 2>/dev/null; do sleep 0.05; i=$((i+1)); done; kill -KILL " + g + " 2>/dev/null; exit 0";
}

}  // namespace labgate::ssh
