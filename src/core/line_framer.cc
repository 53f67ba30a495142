#include "core/line_framer.h"

namespace labgate::core {
namespace {

bool IsBlank(std::string_view s) {
  return s.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

std::vector<LineFramer::Frame> LineFramer::Feed(std::string_view bytes) {
  std::vector<Frame> frames;
  while (!bytes.empty()) {
    std::size_t nl = bytes.find('\n');
    std::string_view chunk = bytes.substr(0, nl);
    if (skipping_) {
      if (nl == std::string_view::npos) return frames;
      skipping_ = false;
      bytes.remove_prefix(nl + 1);
      continue;
    }
    if (buffer_.size() + chunk.size() > max_line_bytes_) {
      frames.push_back(Frame{true, {}, buffer_.size() + chunk.size()});
      buffer_.clear();
      skipping_ = nl == std::string_view::npos;
      if (skipping_) return frames;
      bytes.remove_prefix(nl + 1);
      continue;
    }
    buffer_.append(chunk);
    if (nl == std::string_view::npos) return frames;
    bytes.remove_prefix(nl + 1);
    if (!buffer_.empty() && buffer_.back() == '\r') buffer_.pop_back();
    if (!IsBlank(buffer_)) frames.push_back(Frame{false, std::move(buffer_), 0});
    buffer_.clear();
  }
  return frames;
}

std::optional<LineFramer::Frame> LineFramer::Finish() {
  if (skipping_ || IsBlank(buffer_)) {
    buffer_.clear();
    skipping_ = false;
    return std::nullopt;
  }
  // The last line, without its newline, is read like every other: no trailing \r either.
  if (buffer_.back() == '\r') buffer_.pop_back();
  Frame frame{false, std::move(buffer_), 0};
  buffer_.clear();
  return frame;
}

}  // namespace labgate::core
