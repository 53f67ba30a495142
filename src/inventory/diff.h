#pragma once

#include <string>
#include <vector>

#include "inventory/inventory.h"

namespace labgate::inventory {

/// What changed between two inventories, one line per change, in words an operator reading the
/// audit log understands: "policies.run.mode: confirm-destructive -> full", "+ groups.lab.allow
/// \"docker *\"", "- target box (host)". Empty when nothing that decides or reaches a command changed
/// (comments, order, whitespace). Changes that let more run without a human come first. With a
/// `limit`, at most that many lines, the last saying how many more there were; 0: all of them.
std::vector<std::string> DescribeChanges(const Inventory& before, const Inventory& after, std::size_t limit = 0);

}  // namespace labgate::inventory
