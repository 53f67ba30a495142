#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace labgate::core {

/// How deep JSON from outside may nest. MCP messages, agent-channel frames and the files labgate
/// reads need a handful of levels; nlohmann's parser, copies and dump() recurse per level, so a
/// 120 KB line of 60,000 '[' could exhaust a thread's stack.
inline constexpr std::size_t kMaxJsonDepth = 128;

/// Whether `text` opens more than `max_depth` arrays or objects at once (strings are skipped, so a
/// '[' inside one does not count). Linear, no allocation; run before parsing anything from outside.
bool JsonNestedDeeperThan(std::string_view text, std::size_t max_depth = kMaxJsonDepth);

/// Parses JSON that came from outside: a discarded value (is_discarded()) when it is not valid
/// JSON or nests deeper than `max_depth`; `why`, when given, says which. Never throws.
nlohmann::json ParseUntrustedJson(std::string_view text, std::string* why = nullptr,
                                  std::size_t max_depth = kMaxJsonDepth);

/// A JSON integer within [min, max]; nullopt for anything else — a float such as 1e10 (whose
/// conversion to an integer would be undefined), a string, null, or a value out of range.
std::optional<std::int64_t> IntegerIn(const nlohmann::json& value, std::int64_t min, std::int64_t max);

/// `object[key]` when `object` is an object and that member is a string; otherwise `fallback`.
/// Unlike nlohmann's value(), never throws on a member of another type.
std::string StringOr(const nlohmann::json& object, std::string_view key, std::string fallback = "");

}  // namespace labgate::core
