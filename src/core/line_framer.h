#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace labgate::core {

/// Splits a byte stream into newline-delimited frames with a size cap. Pure; not thread-safe.
/// A line longer than the cap is reported once as oversized and skipped up to its newline,
/// so one bad message never desynchronises the stream.
class LineFramer {
 public:
  struct Frame {
    bool oversized = false;
    std::string line;            // without the newline or a trailing '\r'; empty when oversized
    std::size_t dropped_bytes = 0;  // bytes of an oversized line seen when it was reported
  };

  explicit LineFramer(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}
  void set_max_line_bytes(std::size_t max) { max_line_bytes_ = max; }

  /// Appends bytes and returns every frame they completed. Blank lines yield nothing.
  std::vector<Frame> Feed(std::string_view bytes);

  /// At end of stream: the unterminated last line, if any.
  std::optional<Frame> Finish();

 private:
  std::size_t max_line_bytes_;
  std::string buffer_;
  bool skipping_ = false;
};

}  // namespace labgate::core
