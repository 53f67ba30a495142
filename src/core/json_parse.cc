#include "core/json_parse.h"

namespace labgate::core {

bool JsonNestedDeeperThan(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max_depth) return true;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return false;
}

nlohmann::json ParseUntrustedJson(std::string_view text, std::string* why, std::size_t max_depth) {
  if (JsonNestedDeeperThan(text, max_depth)) {
    if (why) *why = "JSON nested deeper than " + std::to_string(max_depth) + " levels";
    return nlohmann::json::value_t::discarded;
  }
  nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() && why) *why = "not valid JSON (or not UTF-8)";
  return doc;
}

std::optional<std::int64_t> IntegerIn(const nlohmann::json& value, std::int64_t min, std::int64_t max) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    const auto i = static_cast<std::int64_t>(v);
    return i >= min && i <= max ? std::optional<std::int64_t>(i) : std::nullopt;
  }
  if (value.is_number_integer()) {
    const auto i = value.get<std::int64_t>();
    return i >= min && i <= max ? std::optional<std::int64_t>(i) : std::nullopt;
  }
  return std::nullopt;
}

std::string StringOr(const nlohmann::json& object, std::string_view key, std::string fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

}  // namespace labgate::core
