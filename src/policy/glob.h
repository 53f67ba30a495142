#pragma once

#include <string_view>

namespace labgate::policy {

/// Matches `text` against `pattern`, where `*` stands for any run of characters (spaces
/// included) and every other character stands for itself (`\*` for a literal star). The whole
/// text must match. Linear in |pattern| + |text| (no backtracking blow-up), so operator rules
/// can be matched against megabyte-sized commands.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace labgate::policy
