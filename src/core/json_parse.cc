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

}  // namespace labgate::core
