#include "ssh/remote_command.h"

#include "core/text.h"

namespace labgate::ssh {

RemoteCommand BuildRemoteCommand(const std::vector<std::string>& argv, const std::optional<std::string>& shell,
                                 const std::string& cwd, const std::vector<std::pair<std::string, std::string>>& env,
                                 const std::string& run_id, bool sudo, bool sudo_keeps_stdin) {
  auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  std::string text;
  if (!cwd.empty()) {
    if (has_nul(cwd)) return {"", "cwd contains a NUL byte"};
    // A leading '-' would read as an option to cd.
    std::string dir = cwd[0] == '-' ? "./" + cwd : cwd;
    // The message is one quoted word too: nothing in the directory's name is ever expanded,
    // and printf (unlike dash's echo) does not read backslashes in it.
    text += "cd " + core::ShellQuote(dir) + " || { printf '%s\\n' " +
            core::ShellQuote("labgate: cannot change to directory " + cwd, core::QuoteMode::kAlways) +
            " >&2; exit 125; }; ";
  }
  // Prefix assignments go into the environment of the command itself, so every process it
  // starts carries the run id. No `exec`: shells run a final simple command in place anyway,
  // and builtins such as `true` or `echo` then cost no program start at all.
  text += std::string(kRunIdVariable) + "=" + core::ShellQuote(run_id);
  if (sudo) {
    // The outer assignment tags sudo itself; `env` carries the tag past sudo's reset.
    text += " " + std::string(kSudoPrefix) + " env " + std::string(kRunIdVariable) + "=" + core::ShellQuote(run_id);
  }
  for (const auto& [key, value] : env) {
    if (!core::IsValidEnvName(key)) return {"", "invalid environment variable name '" + key + "'"};
    if (has_nul(value)) return {"", "environment variable " + key + " contains a NUL byte"};
    text += " " + key + "=" + core::ShellQuote(value);
  }
  const bool null_stdin = sudo && !sudo_keeps_stdin;
  if (null_stdin) text += shell ? " /bin/sh -c 'exec /bin/sh -c \"$1\" </dev/null' sh" : " /bin/sh -c 'exec \"$@\" </dev/null' sh";
  if (shell) {
    if (has_nul(*shell)) return {"", "command contains a NUL byte"};
    text += null_stdin ? " " + core::ShellQuote(*shell, core::QuoteMode::kAlways) : " /bin/sh -c " + core::ShellQuote(*shell);
  } else {
    if (argv.empty()) return {"", "command argv is empty"};
    for (std::size_t i = 0; i < argv.size(); ++i) {
      if (has_nul(argv[i])) return {"", "a command argument contains a NUL byte"};
      // The program name is always quoted: a quoted word is never a reserved word or an alias.
      text += " " + core::ShellQuote(argv[i], i == 0 ? core::QuoteMode::kAlways : core::QuoteMode::kIfNeeded);
    }
  }
  return {text, ""};
}

std::string KillCommand(const std::string& run_id, int grace_ms, bool sudo) {
  const std::string script = KillScript(run_id, grace_ms);
  return sudo ? std::string(kSudoPrefix) + " /bin/sh -c " + core::ShellQuote(script, core::QuoteMode::kAlways) : script;
}

}  // namespace labgate::ssh
