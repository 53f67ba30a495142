#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "inventory/inventory.h"
#include "policy/capability_scope.h"
#include "policy/classify.h"
#include "policy/command_parse.h"

namespace labgate::policy {

/// What `run` may do on a target without asking, least permissive first.
enum class Mode {
  kReadOnly,            // only read-only commands; others are refused
  kConfirmMutating,     // mutating and riskier commands need a human's yes
  kConfirmDestructive,  // destructive and privileged commands need a human's yes (the default)
  kFull,                // nothing needs confirmation (deny rules still refuse)
};
const char* ModeName(Mode mode);
std::optional<Mode> ParseMode(std::string_view name);

/// A time-boxed operator grant: commands matching `pattern` on `target` run without asking
/// until `expires`. Made by `labgate approvals grant`.
struct Grant {
  std::string id;
  std::string target;   // a target id
  std::string pattern;  // a glob over CommandText, like allow rules
  std::string expires;  // ISO-8601 UTC, for messages
};

/// The verdict on one command for one target.
struct CommandDecision {
  enum class Verdict { kRun, kConfirm, kRefuse };
  Verdict verdict = Verdict::kRefuse;
  std::string rule;    // the rule that decided: "policies.run.deny", "mode", "groups.servers.allow", ...
  std::string reason;  // for people: what decided, and how to change it
  Classification risk;
  Mode mode = Mode::kConfirmDestructive;
  std::string mode_source;           // where the mode came from
  std::optional<std::string> grant;  // the grant that admitted it
};
const char* VerdictName(CommandDecision::Verdict verdict);

/// The parsed form of a `run` command: argv runs without a shell, a string with sh -c.
/// `env`, the variables the caller asks for, is judged like `NAME=value` before every command:
/// anything but inert names (locale, time zone, terminal) needs a human.
ParsedCommand ParseRunCommand(const std::vector<std::string>& argv, const std::optional<std::string>& shell,
                              const std::vector<std::pair<std::string, std::string>>& env = {});

/// Decides a command on one target. Order: capability scope; deny rules of every scope
/// (global, each of its groups, the target) against every simple command, wrapped ones too —
/// deny wins; then allow rules and grants, which admit a command only when each simple command
/// the shell runs matches one; then the target's mode (the strictest of target, groups and
/// global; default confirm-destructive) against the command's risk class; and finally
/// [policies.run] confirm = true, which asks for everything. Pure.
CommandDecision DecideCommand(const inventory::Inventory& inventory, const inventory::Target& target,
                              const ParsedCommand& command, const std::vector<Grant>& grants = {});

/// What a `file` action does to its path.
/// kWriteAsRoot: a write through sudo, privileged whatever the path.
enum class FileAccess { kRead, kWrite, kWriteAsRoot };

/// The verdict on one path for one target.
struct FileDecision {
  CommandDecision::Verdict verdict = CommandDecision::Verdict::kRefuse;
  std::string rule;    // "policies.file.read_deny", "builtin:secret file", "mode.confirm-destructive", ...
  std::string reason;  // for people: what decided, and how to change it
  Classification risk;
};

/// Decides a `file` action on `path` (normalised and, where the target could, with symlinks
/// resolved) for one target whose home directory is `home` ("" when unknown). Order: capability
/// scope; labgate's own files, never; deny rules of every scope (deny wins); for reads, an
/// allow rule admits, else secret files are refused, else reads run; for writes, a daily-role
/// target refuses system paths, an allow rule admits, else the target's mode judges the write's
/// class (ClassifyWrite: system paths are destructive). [policies.file] confirm = true asks for
/// everything no rule admitted. Pure.
FileDecision DecideFile(const inventory::Inventory& inventory, const inventory::Target& target, FileAccess access,
                        const std::string& path, const std::string& home);

/// labgate's own files, in the forms a command would name them: the state directory, the audit
/// log, hosts.toml, /etc/labgate, and `~/...` spellings of those under $HOME.
std::vector<std::string> ProtectedPathsOf(const inventory::Inventory& inventory);

/// The operator's [classify] entries as classifier rules.
std::vector<ClassifyRule> ClassifyRulesOf(const inventory::Inventory& inventory);

/// Checks what the inventory loader cannot: every diagnostic command classifies read-only.
core::Status CheckInventory(const inventory::Inventory& inventory);

}  // namespace labgate::policy
