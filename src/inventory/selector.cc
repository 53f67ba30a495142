#include "inventory/selector.h"

#include "core/text.h"

#include <algorithm>
#include <set>

namespace labgate::inventory {
namespace {

bool Contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string KnownIds(const Inventory& inventory) {
  std::string out;
  for (const auto& t : inventory.targets) {
    if (!out.empty()) out += ", ";
    out += t.id;
  }
  return out.empty() ? "(none)" : out;
}

}  // namespace

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

core::Status ValidateSelector(std::string_view selector) {
  if (selector == "*") return core::Ok();
  for (std::string_view prefix : {"group:", "tag:"}) {
    if (selector.rfind(prefix, 0) == 0) {
      if (IsValidName(selector.substr(prefix.size()))) return core::Ok();
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "bad selector '" + core::Clip(selector, 128) + "': the name after '" +
                                 std::string(prefix) + "' must be letters, digits, '.', '_' or '-'");
    }
  }
  if (IsValidName(selector)) return core::Ok();
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "bad selector '" + core::Clip(selector, 128) +
                             "': use a target id, group:NAME, tag:NAME or * (names are letters, digits, '.', '_', '-')");
}

core::Result<std::vector<const Target*>> Resolve(const Inventory& inventory,
                                                 const std::vector<std::string>& selectors) {
  if (selectors.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "no target given: name a target id, group:NAME, tag:NAME or *");
  }
  std::set<const Target*> chosen;
  for (const auto& selector : selectors) {
    if (auto ok = ValidateSelector(selector); !ok) return ok.error();
    bool matched = false;
    if (selector == "*") {
      for (const auto& t : inventory.targets) chosen.insert(&t), matched = true;
    } else if (selector.rfind("group:", 0) == 0 || selector.rfind("tag:", 0) == 0) {
      const bool group = selector[0] == 'g';
      std::string name = selector.substr(group ? 6 : 4);
      for (const auto& t : inventory.targets) {
        if (Contains(group ? t.groups : t.tags, name)) chosen.insert(&t), matched = true;
      }
      if (!matched) {
        return core::MakeError(core::ErrorCode::kNotFound, "no target is in " + core::Clip(selector, 128) + " (check the " +
                                                               (group ? "groups" : "tags") + " in " + inventory.source + ")");
      }
    } else if (const Target* t = inventory.Find(selector)) {
      chosen.insert(t);
      matched = true;
    } else {
      return core::MakeError(core::ErrorCode::kNotFound, "unknown target '" + core::Clip(selector, 128) + "': known targets are " +
                                                             KnownIds(inventory) + " (see `labgate targets`)");
    }
  }
  std::vector<const Target*> ordered;
  for (const auto& t : inventory.targets) {
    if (chosen.count(&t)) ordered.push_back(&t);
  }
  return ordered;
}

}  // namespace labgate::inventory
