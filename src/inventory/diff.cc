#include "inventory/diff.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace labgate::inventory {
namespace {

std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

std::string List(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& i : items) out += (out.size() > 1 ? ", " : "") + i;
  return out + "]";
}

std::string OptionalList(const std::optional<std::vector<std::string>>& items) {
  return items ? List(*items) : "(any)";
}

// Whether a change line can let more run without a human: operators, modes, roles, allow rules
// added, deny rules removed, classify entries added, capabilities granted or enabled.
bool Widens(const std::string& line) {
  auto has = [&](const char* part) { return line.find(part) != std::string::npos; };
  return line.rfind("+ target ", 0) == 0 || has("gateway.operators") || has("gateway.command_user") || has(".mode:") || has(".role:") ||
         (line.rfind("+ ", 0) == 0 && (has(".allow ") || has("classify ") || has(".capabilities ") || has(".operators ") ||
                                       has(".env_allow "))) ||
         (line.rfind("- ", 0) == 0 && has(".deny ")) || has(".enabled: false -> true") || has(".approved_");
}

class Changes {
 public:
  void Value(const std::string& key, const std::string& was, const std::string& now) {
    if (was != now) lines_.push_back(key + ": " + (was.empty() ? "(unset)" : was) + " -> " + (now.empty() ? "(unset)" : now));
  }
  template <typename T>
  void Number(const std::string& key, const T& was, const T& now) {
    if (was == now) return;
    std::ostringstream a, b;
    a << std::boolalpha << was;
    b << std::boolalpha << now;
    lines_.push_back(key + ": " + a.str() + " -> " + b.str());
  }
  // Items added and removed, each quoted; order changes alone are not reported.
  void Set(const std::string& key, const std::vector<std::string>& was, const std::vector<std::string>& now) {
    const std::multiset<std::string> a(was.begin(), was.end()), b(now.begin(), now.end());
    for (const auto& x : b) {
      if (a.count(x) < b.count(x) && added_.insert(key + x).second) lines_.push_back("+ " + key + " " + Quoted(x));
    }
    for (const auto& x : a) {
      if (b.count(x) < a.count(x) && removed_.insert(key + x).second) lines_.push_back("- " + key + " " + Quoted(x));
    }
  }
  void Line(std::string line) { lines_.push_back(std::move(line)); }

  std::vector<std::string> Take(std::size_t limit) {
    // Changes that widen what runs without a human come first, so a cap never hides them.
    std::stable_sort(lines_.begin(), lines_.end(), [](const std::string& a, const std::string& b) {
      return Widens(a) && !Widens(b);
    });
    if (limit > 0 && lines_.size() > limit) {
      const std::size_t more = lines_.size() - (limit - 1);
      lines_.resize(limit - 1);
      lines_.push_back("... and " + std::to_string(more) + " more changes");
    }
    return std::move(lines_);
  }

 private:
  std::vector<std::string> lines_;
  std::set<std::string> added_, removed_;
};

std::vector<std::string> Patterns(const std::vector<CommandRule>& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules) out.push_back(r.pattern);
  return out;
}

void Rules(Changes& c, const std::string& scope, const CommandRules& was, const CommandRules& now) {
  c.Value(scope + ".mode", was.mode, now.mode);
  c.Set(scope + ".allow", Patterns(was.allow), Patterns(now.allow));
  c.Set(scope + ".deny", Patterns(was.deny), Patterns(now.deny));
}

std::string Describe(const Target& t) {
  std::string out = std::string(TargetKindName(t.kind)) + ", role " + t.role;
  if (!t.address.empty()) out += ", " + t.address;
  return out;
}

void Targets(Changes& c, const Target& was, const Target& now) {
  const std::string key = "targets." + now.id;
  c.Value(key + ".kind", TargetKindName(was.kind), TargetKindName(now.kind));
  c.Value(key + ".role", was.role, now.role);
  c.Set(key + ".capabilities", was.capabilities, now.capabilities);
  c.Set(key + ".groups", was.groups, now.groups);
  c.Value(key + ".address", was.address, now.address);
  c.Number(key + ".port", was.port, now.port);
  c.Value(key + ".user", was.user, now.user);
  c.Value(key + ".identity_file", was.identity_file, now.identity_file);
  c.Value(key + ".proxy_jump", was.proxy_jump, now.proxy_jump);
  c.Value(key + ".host_key_policy", was.host_key_policy, now.host_key_policy);
  c.Value(key + ".key_fingerprint", was.key_fingerprint, now.key_fingerprint);
  c.Set(key + ".tags", was.tags, now.tags);
  c.Value(key + ".passphrase_env", was.passphrase_env, now.passphrase_env);
  c.Value(key + ".passphrase_file", was.passphrase_file, now.passphrase_file);
  c.Value(key + ".password_env", was.password_env, now.password_env);
  c.Value(key + ".password_file", was.password_file, now.password_file);
  Rules(c, key, was.rules, now.rules);
}

std::vector<std::string> Classify(const std::vector<ClassifyEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.risk + " " + e.pattern);
  return out;
}

std::vector<std::string> Diagnostics(const std::vector<DiagnosticCommand>& list) {
  std::vector<std::string> out;
  for (const auto& d : list) out.push_back(d.command);
  return out;
}

}  // namespace

std::vector<std::string> DescribeChanges(const Inventory& before, const Inventory& after, std::size_t limit) {
  Changes c;
  const auto& g0 = before.gateway;
  const auto& g1 = after.gateway;
  c.Set("gateway.operators", g0.operators, g1.operators);
  c.Value("gateway.command_user", g0.command_user, g1.command_user);
  c.Number("gateway.allow_pairing", g0.allow_pairing, g1.allow_pairing);
  c.Number("gateway.require_node_key", g0.require_node_key, g1.require_node_key);
  c.Set("gateway.allowed_networks", g0.allowed_networks, g1.allowed_networks);
  c.Number("gateway.approval_ttl_s", g0.approval_ttl_s, g1.approval_ttl_s);
  c.Number("gateway.elicitation_timeout_s", g0.elicitation_timeout_s, g1.elicitation_timeout_s);
  c.Number("gateway.task_after_ms", g0.task_after_ms, g1.task_after_ms);
  c.Number("gateway.max_timeout_ms", g0.max_timeout_ms, g1.max_timeout_ms);
  c.Number("gateway.key_max_age_days", g0.key_max_age_days, g1.key_max_age_days);
  c.Number("gateway.auth_fail_limit", g0.auth_fail_limit, g1.auth_fail_limit);
  c.Number("gateway.auth_fail_window_s", g0.auth_fail_window_s, g1.auth_fail_window_s);
  c.Number("gateway.default_timeout_ms", g0.default_timeout_ms, g1.default_timeout_ms);
  c.Number("gateway.max_parallel", g0.max_parallel, g1.max_parallel);
  c.Number("gateway.output_cap_bytes", g0.output_cap_bytes, g1.output_cap_bytes);

  Rules(c, "policies.run", before.run_rules, after.run_rules);
  c.Set("policies.run.diagnostics", Diagnostics(before.diagnostics), Diagnostics(after.diagnostics));
  c.Set("policies.run.env_allow", before.run_env_allow, after.run_env_allow);
  c.Set("classify", Classify(before.classify), Classify(after.classify));

  std::set<std::string> names;
  for (const auto& [name, _] : before.groups) names.insert(name);
  for (const auto& [name, _] : after.groups) names.insert(name);
  for (const auto& name : names) {
    auto a = before.groups.find(name);
    auto b = after.groups.find(name);
    const CommandRules none;
    Rules(c, "groups." + name, a == before.groups.end() ? none : a->second, b == after.groups.end() ? none : b->second);
  }

  std::set<std::string> caps;
  for (const auto& [name, _] : before.policies) caps.insert(name);
  for (const auto& [name, _] : after.policies) caps.insert(name);
  for (const auto& cap : caps) {
    auto a = before.policies.find(cap);
    auto b = after.policies.find(cap);
    const CapabilityPolicy none;
    const CapabilityPolicy& x = a == before.policies.end() ? none : a->second;
    const CapabilityPolicy& y = b == after.policies.end() ? none : b->second;
    const std::string key = "policies." + cap;
    c.Number(key + ".enabled", x.enabled, y.enabled);
    c.Number(key + ".confirm", x.confirm, y.confirm);
    c.Value(key + ".approved_nodes", OptionalList(x.approved_nodes), OptionalList(y.approved_nodes));
    c.Value(key + ".approved_hosts", OptionalList(x.approved_hosts), OptionalList(y.approved_hosts));
    c.Value(key + ".roles", OptionalList(x.roles), OptionalList(y.roles));
  }

  std::map<std::string, const Target*> was, now;
  for (const auto& t : before.targets) was[t.id] = &t;
  for (const auto& t : after.targets) now[t.id] = &t;
  for (const auto& [id, t] : now) {
    if (was.count(id)) continue;
    // A new target's own grants are as much a change as the target itself.
    c.Line("+ target " + id + " (" + Describe(*t) + ")");
    c.Set("targets." + id + ".capabilities", {}, t->capabilities);
    c.Set("targets." + id + ".groups", {}, t->groups);
    c.Set("targets." + id + ".tags", {}, t->tags);
    Rules(c, "targets." + id, CommandRules{}, t->rules);
  }
  for (const auto& [id, t] : was) {
    if (!now.count(id)) c.Line("- target " + id + " (" + Describe(*t) + ")");
  }
  for (const auto& [id, t] : now) {
    if (auto it = was.find(id); it != was.end()) Targets(c, *it->second, *t);
  }

  std::map<std::string, const Check*> checks_was, checks_now;
  for (const auto& k : before.checks) checks_was[k.name] = &k;
  for (const auto& k : after.checks) checks_now[k.name] = &k;
  for (const auto& [name, k] : checks_now) {
    auto it = checks_was.find(name);
    if (it == checks_was.end()) {
      c.Line("+ check " + name);
      continue;
    }
    const Check& old = *it->second;
    c.Value("checks." + name + ".command", old.command, k->command);
    c.Value("checks." + name + ".capture", old.capture, k->capture);
    c.Number("checks." + name + ".every_ms", old.every_ms, k->every_ms);
    c.Value("checks." + name + ".at", old.at, k->at);
    c.Value("checks." + name + ".on", old.on, k->on);
    c.Number("checks." + name + ".expect.exit_code", old.expect.exit_code, k->expect.exit_code);
    c.Value("checks." + name + ".expect.stdout_matches", old.expect.stdout_matches, k->expect.stdout_matches);
    c.Value("checks." + name + ".expect.below", old.expect.below ? std::to_string(*old.expect.below) : "",
            k->expect.below ? std::to_string(*k->expect.below) : "");
    c.Value("checks." + name + ".expect.above", old.expect.above ? std::to_string(*old.expect.above) : "",
            k->expect.above ? std::to_string(*k->expect.above) : "");
    c.Value("checks." + name + ".remediation", old.remediation, k->remediation);
    c.Value("checks." + name + ".alert", old.alert, k->alert);
    c.Set("checks." + name + ".targets", old.targets, k->targets);
  }
  for (const auto& [name, k] : checks_was) {
    if (!checks_now.count(name)) c.Line("- check " + name);
  }
  return c.Take(limit);
}

}  // namespace labgate::inventory
