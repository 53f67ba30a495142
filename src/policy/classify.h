#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/command_parse.h"

namespace labgate::policy {

/// How much a command can change, least first. A command's risk is the highest of its parts.
enum class Risk { kReadOnly = 0, kMutating = 1, kDestructive = 2, kPrivileged = 3 };

/// "read-only", "mutating", "destructive", "privileged".
const char* RiskName(Risk risk);
std::optional<Risk> ParseRisk(std::string_view name);

/// An operator's addition to the built-in table (hosts.toml [classify]): simple commands whose
/// text (CommandText) matches `pattern` (a glob, see glob.h) have at least `risk`, and for
/// `read-only` exactly that (it overrides the built-in default for unknown programs).
struct ClassifyRule {
  std::string pattern;
  Risk risk = Risk::kMutating;
  std::string source;  // where it was declared, e.g. "hosts.toml:42 classify.destructive"
};

/// The class of a whole command line and the simple command and rule that set it.
struct Classification {
  Risk risk = Risk::kReadOnly;
  std::string rule;     // e.g. "builtin:rm -r", "builtin:unknown-program", "hosts.toml:42 classify.destructive"
  std::string reason;   // for people: "rm -r deletes recursively"
  std::string command;  // CommandText of the simple command that set the class ("" if none)
};

/// Classifies every simple command of `command` against the operator's rules and the built-in
/// table, and returns the riskiest. Programs in neither table are `destructive` (a human confirms
/// what labgate cannot judge), and so is a command that is
/// dynamic or incomplete is `destructive` (policy cannot see what it runs). Pure; linear in
/// the size of the command times the number of rules.
///
/// `protected_paths` are labgate's own files and directories (hosts.toml, the state directory,
/// the audit log; `~/` for the home directory): a simple command naming one is privileged.
Classification Classify(const ParsedCommand& command, const std::vector<ClassifyRule>& extra = {},
                        const std::vector<std::string>& protected_paths = {});

/// The first part of `command` a daily-use target must never receive: a privileged simple command
/// (sudo, doas, su, ...; operator rules marking something privileged), a write into a system path
/// (/etc, /boot, /usr, /bin, /lib*, devices, authorized_keys), or a part labgate cannot see
/// (a computed program, an incomplete command). nullopt when there is none. Pure.
std::optional<Classification> FindPrivilegedPart(const ParsedCommand& command,
                                                 const std::vector<ClassifyRule>& extra = {},
                                                 const std::vector<std::string>& protected_paths = {});

/// The class of creating or replacing the file at `path` (absolute; `..` and `//` are resolved
/// lexically): privileged for labgate's own files (`protected_paths`, `~/` meaning `home`; skipped
/// when `home` is empty), sudoers, the account files and authorized_keys; destructive for system
/// places and start-up files, by the same table writing redirections are judged with; mutating
/// elsewhere. Pure.
Classification ClassifyWrite(std::string_view path, const std::vector<std::string>& protected_paths = {},
                             std::string_view home = "");

/// The first variable `command` sets (a `NAME=value` prefix, or one the caller passed in `env`)
/// that is not inert — anything but locale, time zone and terminal settings; nullopt when none.
/// Allow rules and grants name commands, not environments, so they never admit such a command.
std::optional<std::string> NonInertAssignment(const SimpleCommand& command);

}  // namespace labgate::policy
