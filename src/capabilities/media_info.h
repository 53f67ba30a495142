#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/// Facts read from the headers of the files captures produce, without decoding them.
namespace labgate::capabilities {

struct MediaInfo {
  std::string format;  // "png", "jpeg", "mp4"
  int width = 0;
  int height = 0;
  std::optional<std::int64_t> duration_ms;  // videos
};

/// PNG (IHDR), JPEG (first SOFn marker) or ISO-BMFF/QuickTime (mvhd duration, first video
/// track's tkhd size). Nullopt when `bytes` is none of them or is cut short.
std::optional<MediaInfo> ReadMediaInfo(std::string_view bytes);

}  // namespace labgate::capabilities
