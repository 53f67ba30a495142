#include "policy/decide.h"

#include <cstdlib>
#include <filesystem>

#include <algorithm>

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

  // The strictest mode any scope sets; deny wins here too.
  d.mode = Mode::kConfirmDestructive;
  d.mode_source = "the default mode";
  bool mode_set = false;
  for (const auto& scope : scopes) {
    auto mode = ParseMode(scope.rules->mode);
    if (!mode) continue;
    if (!mode_set || *mode < d.mode) {
      d.mode = *mode;
      d.mode_source = scope.rules->mode_source;
      mode_set = true;
    }
  }

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
