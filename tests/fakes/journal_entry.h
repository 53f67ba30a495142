#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace labgate::fakes {

/// Reads a journald native-protocol entry the way journald does (KEY=value lines, and the binary
/// form KEY\n + little-endian 64-bit length + value + \n). Every field, in order; an entry that is
/// malformed yields what was read up to the fault and sets `*malformed`.
inline std::multimap<std::string, std::string> ParseJournalEntry(std::string_view data, bool* malformed = nullptr) {
  std::multimap<std::string, std::string> fields;
  if (malformed) *malformed = false;
  std::size_t i = 0;
  while (i < data.size()) {
    const std::size_t nl = data.find('\n', i);
    if (nl == std::string_view::npos) {
      if (malformed) *malformed = true;
      break;
    }
    std::string_view head = data.substr(i, nl - i);
    if (auto eq = head.find('='); eq != std::string_view::npos) {
      fields.emplace(std::string(head.substr(0, eq)), std::string(head.substr(eq + 1)));
      i = nl + 1;
      continue;
    }
    if (nl + 9 > data.size()) {
      if (malformed) *malformed = true;
      break;
    }
    std::uint64_t len = 0;
    for (int b = 0; b < 8; ++b) len |= static_cast<std::uint64_t>(static_cast<unsigned char>(data[nl + 1 + b])) << (8 * b);
    if (nl + 9 + len + 1 > data.size() || data[nl + 9 + len] != '\n') {
      if (malformed) *malformed = true;
      break;
    }
    fields.emplace(std::string(head), std::string(data.substr(nl + 9, len)));
    i = nl + 9 + len + 1;
  }
  return fields;
}

}  // namespace labgate::fakes
