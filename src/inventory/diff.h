#pragma once

#include <string>
#include <vector>

#include "inventory/inventory.h"

namespace labgate::inventory {

/// What changed between two inventories, one line per change, in words an operator reading the
/// audit log understands: "policies.run.mode: confirm-destructive -> full", "+ groups.lab.allow
/// \"docker *\"", "- target box (host)". Empty when nothing that decides or reaches a command changed
/// (comments, order, whitespace). At most `limit` lines; the last then says how many more there were.
std::vector<std::string> DescribeChanges(const Inventory& before, const Inventory& after, std::size_t limit = 40);

}  // namespace labgate::inventory
