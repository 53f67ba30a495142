#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace labgate::core {

/// Keeps the head and the tail of a stream within a byte cap and counts what it dropped,
/// so a runaway command can neither exhaust memory nor hide how it ended. Not thread-safe.
class CappedOutput {
 public:
  explicit CappedOutput(std::size_t cap_bytes);

  void Append(std::string_view bytes);

  std::uint64_t total_bytes() const { return total_; }
  bool truncated() const { return total_ > cap_; }
  /// Head, then an explicit marker naming the omitted byte count, then tail.
  std::string Text() const;

 private:
  std::size_t cap_;
  std::size_t head_cap_;
  std::size_t tail_cap_;
  std::string head_;
  std::string tail_;  // may hold up to 2x tail_cap_ between compactions
  std::uint64_t total_ = 0;
};

/// The marker CappedOutput puts between head and tail.
std::string TruncationMarker(std::uint64_t omitted_bytes, std::uint64_t total_bytes);

}  // namespace labgate::core
