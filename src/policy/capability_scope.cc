#include "policy/capability_scope.h"

#include <algorithm>

namespace labgate::policy {

Decision DecideCapability(const inventory::Inventory& inventory, const inventory::Target& target,
                          std::string_view capability) {
  const std::string cap(capability);
  const std::string kind = inventory::TargetKindName(target.kind);
  if (const auto* policy = inventory.Policy(capability)) {
    if (!policy->enabled) {
      return Decision{false, "policies." + cap + ".enabled",
                      cap + " is disabled for every target by [policies." + cap + "] enabled = false in " +
                          inventory.source + ":" + std::to_string(policy->line)};
    }
    const bool is_host = target.kind == inventory::TargetKind::kHost;
    const auto& list = is_host ? policy->approved_hosts : policy->approved_nodes;
    const char* key = is_host ? "approved_hosts" : "approved_nodes";
    if (list && std::find(list->begin(), list->end(), target.id) == list->end()) {
      return Decision{false, "policies." + cap + "." + key,
                      cap + " on " + target.id + " is not approved: add \"" + target.id + "\" to [policies." + cap +
                          "] " + key + " in " + inventory.source};
    }
  }
  if (const auto* policy = inventory.Policy(capability); policy && policy->roles) {
    const auto& roles = *policy->roles;
    if (std::find(roles.begin(), roles.end(), target.role) == roles.end()) {
      std::string list;
      for (const auto& r : roles) list += (list.empty() ? "" : ", ") + r;
      return Decision{false, "policies." + cap + ".roles",
                      cap + " is limited to " + list + " targets by [policies." + cap + "] roles in " + inventory.source +
                          ":" + std::to_string(policy->line) + ", and " + target.id + " is " + target.role +
                          "; change its role or the policy"};
    }
  }
  if (!target.HasCapability(capability)) {
    return Decision{false, "targets." + target.id + ".capabilities",
                    target.id + " (" + kind + ") does not offer " + cap + ": its capabilities are [" + [&] {
                      std::string out;
                      for (const auto& c : target.capabilities) out += (out.empty() ? "" : ", ") + c;
                      return out;
                    }() + "]; add \"" + cap + "\" to its capabilities in " + inventory.source};
  }
  if (inventory.Policy(capability)) {
    return Decision{true, "policies." + cap, cap + " is enabled and approved for " + target.id};
  }
  return Decision{true, "targets." + target.id + ".capabilities", target.id + " offers " + cap};
}

}  // namespace labgate::policy
