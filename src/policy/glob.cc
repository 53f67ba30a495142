#include "policy/glob.h"

#include <string>
#include <vector>

namespace labgate::policy {
namespace {

// The literal runs of a pattern between its unescaped stars. A pattern with k stars has k + 1
// pieces; some may be empty (leading, trailing or adjacent stars).
std::vector<std::string> SplitAtStars(std::string_view pattern) {
  std::vector<std::string> pieces(1);
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size() && pattern[i + 1] == '*') {
      pieces.back() += '*';
      ++i;
    } else if (c == '*') {
      pieces.emplace_back();
    } else {
      pieces.back() += c;
    }
  }
  return pieces;
}

// Knuth-Morris-Pratt: the first occurrence of `needle` in text[from, end), or npos. Linear in
// |needle| + (end - from), which keeps the whole match linear however the pieces repeat.
size_t Find(std::string_view text, size_t from, size_t end, std::string_view needle) {
  if (needle.empty()) return from;
  std::vector<size_t> border(needle.size(), 0);
  for (size_t i = 1, k = 0; i < needle.size(); ++i) {
    while (k > 0 && needle[i] != needle[k]) k = border[k - 1];
    if (needle[i] == needle[k]) ++k;
    border[i] = k;
  }
  for (size_t i = from, k = 0; i < end; ++i) {
    while (k > 0 && text[i] != needle[k]) k = border[k - 1];
    if (text[i] == needle[k]) ++k;
    if (k == needle.size()) return i + 1 - needle.size();
  }
  return std::string_view::npos;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  const std::vector<std::string> pieces = SplitAtStars(pattern);
  if (pieces.size() == 1) return text == pieces.front();

  // Without a leading star the first piece is anchored at the start, and without a trailing
  // star the last piece at the end; everything between floats.
  const std::string& first = pieces.front();
  const std::string& last = pieces.back();
  if (text.size() < first.size() + last.size()) return false;
  if (text.substr(0, first.size()) != first) return false;
  if (text.substr(text.size() - last.size()) != last) return false;

  // Taking each middle piece at its leftmost place leaves the most room for the rest, so a
  // greedy scan is exact for `*`-only patterns and never needs to backtrack.
  size_t pos = first.size();
  const size_t end = text.size() - last.size();
  for (size_t i = 1; i + 1 < pieces.size(); ++i) {
    const size_t at = Find(text, pos, end, pieces[i]);
    if (at == std::string_view::npos) return false;
    pos = at + pieces[i].size();
  }
  return true;
}

}  // namespace labgate::policy
