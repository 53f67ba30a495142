#include "policy/decide.h"

#include <cstdlib>
#include <filesystem>
#include <tuple>

#include <algorithm>

#include "policy/file_policy.h"
#include "policy/glob.h"

namespace labgate::policy {
namespace {

using inventory::CommandRules;

constexpr const char* kModeNames[] = {"read-only", "confirm-mutating", "confirm-destructive", "full"};

// One scope's rules and the name a decision cites for it.
struct Scope {
  std::string name;  // "policies.run", "groups.servers", "targets.prox4"
  const CommandRules* rules;
};

std::vector<Scope> ScopesOf(const inventory::Inventory& inv, const inventory::Target& target) {
  std::vector<Scope> scopes = {{"policies.run", &inv.run_rules}};
  for (const auto& g : target.groups) {
    if (auto it = inv.groups.find(g); it != inv.groups.end()) scopes.push_back({"groups." + g, &it->second});
  }
  scopes.push_back({"targets." + target.id, &target.rules});
  return scopes;
}

// The strictest mode any scope sets (deny wins here too), and where it was set.
std::pair<Mode, std::string> StrictestMode(const std::vector<Scope>& scopes) {
  Mode mode = Mode::kConfirmDestructive;
  std::string source = "the default mode";
  bool set = false;
  for (const auto& scope : scopes) {
    auto m = ParseMode(scope.rules->mode);
    if (!m) continue;
    if (!set || *m < mode) {
      mode = *m;
      source = scope.rules->mode_source;
      set = true;
    }
  }
  return {mode, source};
}

std::string Quoted(const std::string& text) {
  constexpr std::size_t kShown = 120;
  return "`" + (text.size() > kShown ? text.substr(0, kShown) + "..." : text) + "`";
}

}  // namespace

const char* ModeName(Mode mode) { return kModeNames[static_cast<int>(mode)]; }

std::optional<Mode> ParseMode(std::string_view name) {
  for (int i = 0; i < 4; ++i) {
    if (name == kModeNames[i]) return static_cast<Mode>(i);
  }
  return std::nullopt;
}

const char* VerdictName(CommandDecision::Verdict verdict) {
  switch (verdict) {
    case CommandDecision::Verdict::kRun: return "run";
    case CommandDecision::Verdict::kConfirm: return "confirm";
    case CommandDecision::Verdict::kRefuse: return "refuse";
  }
  return "refuse";
}

ParsedCommand ParseRunCommand(const std::vector<std::string>& argv, const std::optional<std::string>& shell,
                              const std::vector<std::pair<std::string, std::string>>& env) {
  ParsedCommand parsed = shell ? ParseShell(*shell) : FromArgv(argv);
  // The variables reach every process of the command, as prefixes on each of them would.
  for (auto& command : parsed.commands) {
    for (const auto& [name, value] : env) command.assignments.push_back(name + "=" + value);
  }
  return parsed;
}

std::vector<ClassifyRule> ClassifyRulesOf(const inventory::Inventory& inventory) {
  std::vector<ClassifyRule> rules;
  for (const auto& entry : inventory.classify) {
    rules.push_back({entry.pattern, ParseRisk(entry.risk).value_or(Risk::kDestructive), entry.source});
  }
  return rules;
}

std::vector<std::string> ProtectedPathsOf(const inventory::Inventory& inv) {
  std::vector<std::string> paths;
  auto add = [&](std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path.empty() || path == "/") return;
    paths.push_back(path);
    // The same place as a command would spell it from the home directory.
    const char* home = std::getenv("HOME");
    const std::string h = home ? home : "";
    if (h.size() > 1 && path.rfind(h + "/", 0) == 0) paths.push_back("~" + path.substr(h.size()));
  };
  add(inv.gateway.state_dir);
  add(inv.gateway.audit_log);  // also matches its rotated segments and head file
  if (!inv.source.empty() && inv.source[0] == '/') add(inv.source);
  add("/etc/labgate");
  add("/var/lib/labgate");
  paths.push_back("~/.local/state/labgate");
  paths.push_back("~/.config/labgate");
  return paths;
}

CommandDecision DecideCommand(const inventory::Inventory& inv, const inventory::Target& target,
                              const ParsedCommand& command, const std::vector<Grant>& grants) {
  CommandDecision d;
  const std::vector<std::string> protected_paths = ProtectedPathsOf(inv);
  d.risk = Classify(command, ClassifyRulesOf(inv), protected_paths);
  const auto scopes = ScopesOf(inv, target);

  std::tie(d.mode, d.mode_source) = StrictestMode(scopes);

  const Decision capability = DecideCapability(inv, target, "run");
  if (!capability.allowed) {
    d.rule = capability.rule;
    d.reason = capability.reason;
    return d;
  }

  for (const auto& simple : command.commands) {
    const std::string text = CommandText(simple);
    for (const auto& scope : scopes) {
      for (const auto& deny : scope.rules->deny) {
        if (GlobMatch(deny.pattern, text)) {
          d.rule = scope.name + ".deny";
          d.reason = Quoted(text) + " matches deny pattern '" + deny.pattern + "' (" + deny.source +
                     "); remove or narrow that pattern to allow it";
          return d;
        }
      }
    }
  }

  // A daily-use target never receives privileged commands: no mode, allow rule, grant or
  // approval can change that, so it is decided before any of them.
  if (target.role == "daily") {
    if (auto part = FindPrivilegedPart(command, ClassifyRulesOf(inv), protected_paths)) {
      d.risk = *part;
      d.rule = "targets." + target.id + ".role";
      d.reason = Quoted(part->command.empty() ? std::string("(the command)") : part->command) + " " +
                 (part->reason.empty() ? std::string("needs privilege") : "is refused: " + part->reason) + " (" +
                 part->rule + "); " + target.id + " is a daily-use target (role = \"daily\" in " + inv.source + ":" +
                 std::to_string(target.role_line) +
                 "), which never receives privileged commands or writes into system paths; run it on an admin target";
      return d;
    }
  }

  // Allow rules and grants admit a command only when every simple command the shell runs
  // matches one, so `df -h*` never admits `df -h; rm -rf /`.
  if (command.complete && !command.commands.empty()) {
    std::string first_rule;
    std::string first_source;
    std::optional<std::string> grant_used;
    bool all = true;
    for (const auto& simple : command.commands) {
      if (!simple.wrappers.empty()) continue;  // what a wrapper runs is admitted with the wrapper
      if (simple.dynamic || NonInertAssignment(simple)) {
        all = false;  // `PATH=/tmp/x df -h` is not the `df -h` an allow rule or grant names
        break;
      }
      const std::string text = CommandText(simple);
      bool matched = false;
      for (const auto& scope : scopes) {
        for (const auto& allow : scope.rules->allow) {
          if (GlobMatch(allow.pattern, text)) {
            matched = true;
            if (first_rule.empty()) {
              first_rule = scope.name + ".allow";
              first_source = "allow pattern '" + allow.pattern + "' (" + allow.source + ")";
            }
            break;
          }
        }
        if (matched) break;
      }
      if (!matched) {
        for (const auto& grant : grants) {
          if (grant.target == target.id && GlobMatch(grant.pattern, text)) {
            matched = true;
            if (first_rule.empty()) {
              first_rule = "approvals.grant";
              first_source = "grant " + grant.id + " for '" + grant.pattern + "' until " + grant.expires;
            }
            grant_used = grant.id;
            break;
          }
        }
      }
      if (!matched) {
        all = false;
        break;
      }
    }
    if (all && !first_rule.empty()) {
      d.verdict = CommandDecision::Verdict::kRun;
      d.rule = first_rule;
      d.reason = "admitted by " + first_source;
      d.grant = grant_used;
      return d;
    }
  }

  const std::string risk = RiskName(d.risk.risk);
  const std::string why_risk = Quoted(d.risk.command.empty() ? std::string("(empty command)") : d.risk.command) +
                               " is " + risk + " (" + d.risk.rule + (d.risk.reason.empty() ? "" : ": " + d.risk.reason) + ")";
  const std::string mode = ModeName(d.mode);
  switch (d.mode) {
    case Mode::kReadOnly:
      if (d.risk.risk > Risk::kReadOnly) {
        d.rule = "mode.read-only";
        d.reason = why_risk + ", and " + target.id + " is read-only (" + d.mode_source +
                   "); add an allow rule for this command or change the mode to run it";
        return d;
      }
      break;
    case Mode::kConfirmMutating:
      if (d.risk.risk >= Risk::kMutating) {
        d.verdict = CommandDecision::Verdict::kConfirm;
        d.rule = "mode.confirm-mutating";
        d.reason = why_risk + "; " + target.id + " asks a human before mutating commands (" + d.mode_source + ")";
        return d;
      }
      break;
    case Mode::kConfirmDestructive:
      if (d.risk.risk >= Risk::kDestructive) {
        d.verdict = CommandDecision::Verdict::kConfirm;
        d.rule = "mode.confirm-destructive";
        d.reason = why_risk + "; " + target.id + " asks a human before destructive or privileged commands (" +
                   d.mode_source + ")";
        return d;
      }
      break;
    case Mode::kFull:
      break;
  }
  if (const auto* policy = inv.Policy("run"); policy && policy->confirm) {
    d.verdict = CommandDecision::Verdict::kConfirm;
    d.rule = "policies.run.confirm";
    d.reason = why_risk + "; [policies.run] confirm = true asks a human before every command (" + inv.source + ":" +
               std::to_string(policy->line) + ")";
    return d;
  }
  d.verdict = CommandDecision::Verdict::kRun;
  d.rule = "mode." + mode;
  d.reason = why_risk + "; " + target.id + " runs " + risk + " commands without asking (" + mode + ", " +
             d.mode_source + ")";
  return d;
}

namespace {

// A path rule against a path: `~/` in the rule means the target's home (a rule naming ~/ never
// matches where the home is unknown).
bool PathRuleMatches(const std::string& pattern, const std::string& path, const std::string& home) {
  if (pattern.rfind("~/", 0) == 0) {
    if (home.empty()) return false;
    return GlobMatch(home + pattern.substr(1), path);
  }
  return GlobMatch(pattern, path);
}

// The first rule of `list` in any scope that matches; its scope's name and the rule.
struct PathRuleHit {
  std::string scope;
  const inventory::CommandRule* rule = nullptr;
};
std::optional<PathRuleHit> FindPathRule(const std::vector<std::pair<std::string, const inventory::FileRules*>>& scopes,
                                        std::vector<inventory::CommandRule> inventory::FileRules::*list,
                                        const std::string& path, const std::string& home) {
  for (const auto& [name, rules] : scopes) {
    for (const auto& rule : rules->*list) {
      if (PathRuleMatches(rule.pattern, path, home)) return PathRuleHit{name, &rule};
    }
  }
  return std::nullopt;
}

}  // namespace

FileDecision DecideFile(const inventory::Inventory& inv, const inventory::Target& target, FileAccess access,
                        const std::string& path, const std::string& home) {
  using Verdict = CommandDecision::Verdict;
  FileDecision d;
  const bool write = access != FileAccess::kRead;
  const char* verb = write ? "writing" : "reading";
  const Decision capability = DecideCapability(inv, target, "file");
  if (!capability.allowed) {
    d.rule = capability.rule;
    d.reason = capability.reason;
    return d;
  }
  const std::vector<std::string> protected_paths = ProtectedPathsOf(inv);
  // labgate's own configuration, state and audit log: no rule, mode or human turns an assistant's
  // file call into a way to read keys and tokens or rewrite policy and history.
  const Classification own = ClassifyWrite(path, protected_paths, home);
  if (own.rule == "builtin:labgate state") {
    d.risk = own;
    d.rule = own.rule;
    d.reason = std::string(verb) + " " + own.reason + "; the file capability never touches it";
    return d;
  }

  std::vector<std::pair<std::string, const inventory::FileRules*>> scopes = {{"policies.file", &inv.file_rules}};
  for (const auto& g : target.groups) {
    if (auto it = inv.groups.find(g); it != inv.groups.end()) scopes.push_back({"groups." + g, &it->second.files});
  }
  scopes.push_back({"targets." + target.id, &target.rules.files});
  const std::string key_prefix = write ? "write" : "read";
  auto rule_name = [&](const PathRuleHit& hit, const char* kind) {
    const std::string key = key_prefix + "_" + kind;
    return hit.scope + "." + (hit.scope == "policies.file" ? key : "file_" + key);
  };

  if (auto hit = FindPathRule(scopes, write ? &inventory::FileRules::write_deny : &inventory::FileRules::read_deny, path,
                              home)) {
    d.rule = rule_name(*hit, "deny");
    d.reason = Quoted(path) + " matches deny pattern '" + hit->rule->pattern + "' (" + hit->rule->source +
               "); remove or narrow that pattern to allow " + verb + " it";
    return d;
  }
  const auto allow =
      FindPathRule(scopes, write ? &inventory::FileRules::write_allow : &inventory::FileRules::read_allow, path, home);
  const auto* policy = inv.Policy("file");
  auto confirm_all = [&](const std::string& why) {
    d.verdict = Verdict::kConfirm;
    d.rule = "policies.file.confirm";
    d.reason = why + "; [policies.file] confirm = true asks a human before every file action (" + inv.source + ":" +
               std::to_string(policy->line) + ")";
  };

  if (!write) {
    d.risk = Classification{Risk::kReadOnly, "builtin:read file", "reading " + Quoted(path) + " changes nothing", path};
    if (allow) {
      d.verdict = Verdict::kRun;
      d.rule = rule_name(*allow, "allow");
      d.reason = "admitted by read allow pattern '" + allow->rule->pattern + "' (" + allow->rule->source + ")";
      return d;
    }
    if (auto secret = SecretFile(path, {}, home)) {
      d.risk = *secret;
      d.rule = secret->rule;
      d.reason = secret->reason + " (file_read_allow for the target, or [policies.file] read_allow)";
      return d;
    }
    if (policy && policy->confirm) {
      confirm_all(d.risk.reason);
      return d;
    }
    d.verdict = Verdict::kRun;
    d.rule = "builtin:read file";
    d.reason = d.risk.reason;
    return d;
  }

  d.risk = ClassifyWrite(path, protected_paths, home);
  if (access == FileAccess::kWriteAsRoot && d.risk.risk < Risk::kPrivileged) {
    d.risk = Classification{Risk::kPrivileged, "builtin:sudo", "writing " + Quoted(path) + " as root through sudo", path};
  }
  const std::string why_risk = "writing " + Quoted(path) + " is " + RiskName(d.risk.risk) + " (" + d.risk.rule +
                               (d.risk.reason.empty() ? "" : ": " + d.risk.reason) + ")";
  if (target.role == "daily" && d.risk.risk >= Risk::kDestructive) {
    d.rule = "targets." + target.id + ".role";
    d.reason = why_risk + "; " + target.id + " is a daily-use target (role = \"daily\" in " + inv.source + ":" +
               std::to_string(target.role_line) +
               "), which never receives writes into system paths; write it on an admin target";
    return d;
  }
  if (allow) {
    d.verdict = Verdict::kRun;
    d.rule = rule_name(*allow, "allow");
    d.reason = "admitted by write allow pattern '" + allow->rule->pattern + "' (" + allow->rule->source + ")";
    return d;
  }
  const auto [mode, mode_source] = StrictestMode(ScopesOf(inv, target));
  switch (mode) {
    case Mode::kReadOnly:
      d.rule = "mode.read-only";
      d.reason = why_risk + ", and " + target.id + " is read-only (" + mode_source +
                 "); add a file_write_allow rule for this path or change the mode to write it";
      return d;
    case Mode::kConfirmMutating:
      d.verdict = Verdict::kConfirm;
      d.rule = "mode.confirm-mutating";
      d.reason = why_risk + "; " + target.id + " asks a human before mutating actions (" + mode_source + ")";
      return d;
    case Mode::kConfirmDestructive:
      if (d.risk.risk >= Risk::kDestructive) {
        d.verdict = Verdict::kConfirm;
        d.rule = "mode.confirm-destructive";
        d.reason = why_risk + "; " + target.id + " asks a human before destructive or privileged actions (" +
                   mode_source + ")";
        return d;
      }
      break;
    case Mode::kFull:
      break;
  }
  if (policy && policy->confirm) {
    confirm_all(why_risk);
    return d;
  }
  d.verdict = Verdict::kRun;
  d.rule = std::string("mode.") + ModeName(mode);
  d.reason = why_risk + "; " + target.id + " writes such files without asking (" + ModeName(mode) + ", " +
             mode_source + ")";
  return d;
}

core::Status CheckInventory(const inventory::Inventory& inventory) {
  std::string problems;
  const auto rules = ClassifyRulesOf(inventory);
  for (const auto& diag : inventory.diagnostics) {
    Classification c = Classify(ParseShell(diag.command), rules);
    if (c.risk != Risk::kReadOnly) {
      problems += "\n  " + diag.source + ": '" + diag.command + "' is " + RiskName(c.risk) + " (" + c.rule +
                  "); diagnostics must be read-only (or add it to [classify] read_only)";
    }
  }
  for (const auto& check : inventory.checks) {
    if (check.command.empty()) continue;
    Classification c = Classify(ParseShell(check.command), rules);
    if (c.risk != Risk::kReadOnly) {
      problems += "\n  " + check.command_source + ": '" + check.command + "' is " + RiskName(c.risk) + " (" + c.rule +
                  (c.reason.empty() ? "" : ": " + c.reason) +
                  "); a check must be read-only; put changes in remediation (or, if it only reads, add it to "
                  "[classify] read_only)";
    }
  }
  if (problems.empty()) return core::Ok();
  return core::MakeError(core::ErrorCode::kInvalidArgument, "invalid inventory " + inventory.source + ":" + problems);
}

}  // namespace labgate::policy
