#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "inventory/inventory.h"

namespace labgate::inventory {

/// True for a valid target id, group or tag name: letters, digits, '.', '_', '-', at most 63
/// characters, starting with a letter or digit.
bool IsValidName(std::string_view name);

/// Checks one selector: `ID`, `group:NAME`, `tag:NAME` or `*`.
core::Status ValidateSelector(std::string_view selector);

/// Resolves selectors to targets, in inventory order and without duplicates. Unknown ids and
/// empty groups or tags are errors that name the selector and list what exists.
core::Result<std::vector<const Target*>> Resolve(const Inventory& inventory,
                                                 const std::vector<std::string>& selectors);

}  // namespace labgate::inventory
