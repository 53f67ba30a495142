#include "core/capped_output.h"

#include <algorithm>

namespace labgate::core {

CappedOutput::CappedOutput(std::size_t cap_bytes)
    : cap_(cap_bytes), head_cap_(cap_bytes - cap_bytes / 2), tail_cap_(cap_bytes / 2) {}

void CappedOutput::Append(std::string_view bytes) {
  total_ += bytes.size();
  std::size_t to_head = std::min(bytes.size(), head_cap_ - head_.size());
  head_.append(bytes.substr(0, to_head));
  bytes.remove_prefix(to_head);
  if (bytes.empty() || tail_cap_ == 0) return;
  if (bytes.size() >= tail_cap_) {
    tail_.assign(bytes.substr(bytes.size() - tail_cap_));
    return;
  }
  tail_.append(bytes);
  if (tail_.size() > 2 * tail_cap_) tail_.erase(0, tail_.size() - tail_cap_);
}

std::string TruncationMarker(std::uint64_t omitted_bytes, std::uint64_t total_bytes) {
  return "\n[labgate: output truncated: " + std::to_string(omitted_bytes) + " of " +
         std::to_string(total_bytes) + " bytes omitted here]\n";
}

std::string CappedOutput::Text() const {
  std::string_view tail = tail_;
  if (tail.size() > tail_cap_) tail.remove_prefix(tail.size() - tail_cap_);
  if (!truncated()) return head_ + std::string(tail);
  std::uint64_t omitted = total_ - head_.size() - tail.size();
  return head_ + TruncationMarker(omitted, total_) + std::string(tail);
}

}  // namespace labgate::core
