#pragma once

#include <string>
#include <string_view>

#include "inventory/inventory.h"

/// Pure policy decisions. No I/O; table-tested.
namespace labgate::policy {

/// The outcome of a policy check: allowed or not, the rule that decided it, and the reason
/// written for the person who has to change it.
struct Decision {
  bool allowed = false;
  std::string rule;    // e.g. "policies.camera.approved_nodes" or "targets.local.capabilities"
  std::string reason;  // says what to change when refused
};

/// May `capability` be used on `target`? The target must list it, and where
/// [policies.CAP] exists it must be enabled and, when it has approval lists, name the target.
/// Deny wins: any refusing rule refuses.
Decision DecideCapability(const inventory::Inventory& inventory, const inventory::Target& target,
                          std::string_view capability);

}  // namespace labgate::policy
