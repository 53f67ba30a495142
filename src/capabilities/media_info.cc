#include "capabilities/media_info.h"

#include <algorithm>
#include <cstdint>

#include <array>

namespace labgate::capabilities {
namespace {

std::uint64_t BigEndian(std::string_view bytes, std::size_t at, std::size_t width) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

std::optional<MediaInfo> ReadPng(std::string_view b) {
  // Signature, then the IHDR chunk: length, "IHDR", width, height.
  if (b.size() < 24 || b.substr(12, 4) != "IHDR") return std::nullopt;
  MediaInfo info;
  info.format = "png";
  // PNG allows up to 2^31-1; a larger value is a broken or hostile header, not a size.
  const std::uint64_t width = BigEndian(b, 16, 4);
  const std::uint64_t height = BigEndian(b, 20, 4);
  if (width == 0 || height == 0 || width > 0x7fffffffULL || height > 0x7fffffffULL) return std::nullopt;
  info.width = static_cast<int>(width);
  info.height = static_cast<int>(height);
  return info;
}

std::optional<MediaInfo> ReadJpeg(std::string_view b) {
  std::size_t at = 2;
  while (at + 4 <= b.size()) {
    if (static_cast<unsigned char>(b[at]) != 0xFF) return std::nullopt;
    const unsigned marker = static_cast<unsigned char>(b[at + 1]);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      at += 2;
      continue;
    }
    const std::size_t length = BigEndian(b, at + 2, 2);
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (at + 9 > b.size()) return std::nullopt;
      MediaInfo info;
      info.format = "jpeg";
      info.height = static_cast<int>(BigEndian(b, at + 5, 2));
      info.width = static_cast<int>(BigEndian(b, at + 7, 2));
      return info;
    }
    if (marker == 0xDA || length < 2) return std::nullopt;  // scan data before any frame header
    at += 2 + length;
  }
  return std::nullopt;
}

struct Box {
  std::string_view type;
  std::string_view body;
};

// Calls `visit` for each box in `b`; stops at the first malformed one.
template <typename Visit>
void ForEachBox(std::string_view b, Visit&& visit) {
  std::size_t at = 0;
  while (at + 8 <= b.size()) {
    std::uint64_t size = BigEndian(b, at, 4);
    std::size_t header = 8;
    if (size == 1) {
      if (at + 16 > b.size()) return;
      size = BigEndian(b, at + 8, 8);
      header = 16;
    } else if (size == 0) {
      size = b.size() - at;
    }
    if (size < header || size > b.size() - at) return;
    visit(Box{b.substr(at + 4, 4), b.substr(at + header, static_cast<std::size_t>(size) - header)});
    at += static_cast<std::size_t>(size);
  }
}

void ReadMovie(std::string_view moov, MediaInfo& info) {
  ForEachBox(moov, [&](const Box& box) {
    if (box.type == "mvhd" && !box.body.empty()) {
      const bool v1 = box.body[0] == 1;
      const std::size_t ts_at = v1 ? 20 : 12;
      const std::size_t width = v1 ? 8 : 4;
      if (box.body.size() < ts_at + 4 + width) return;
      const std::uint64_t timescale = BigEndian(box.body, ts_at, 4);
      const std::uint64_t duration = BigEndian(box.body, ts_at + 4, width);
      // Without overflow for any 64-bit duration, and never negative.
      if (timescale > 0) {
        const std::uint64_t ms = duration > UINT64_MAX / 1000 ? duration / timescale * 1000 : duration * 1000 / timescale;
        info.duration_ms = static_cast<std::int64_t>(std::min<std::uint64_t>(ms, static_cast<std::uint64_t>(INT64_MAX)));
      }
    } else if (box.type == "trak" && info.width == 0) {
      ForEachBox(box.body, [&](const Box& inner) {
        if (inner.type != "tkhd" || inner.body.empty()) return;
        const std::size_t size_at = inner.body[0] == 1 ? 88 : 76;
        if (inner.body.size() < size_at + 8) return;
        // 16.16 fixed point; audio tracks have 0 x 0.
        info.width = static_cast<int>(BigEndian(inner.body, size_at, 4) >> 16);
        info.height = static_cast<int>(BigEndian(inner.body, size_at + 4, 4) >> 16);
      });
    }
  });
}

std::optional<MediaInfo> ReadIsoMedia(std::string_view b) {
  MediaInfo info;
  bool moov = false;
  ForEachBox(b, [&](const Box& box) {
    if (box.type == "ftyp" && box.body.size() >= 4) {
      info.format = box.body.substr(0, 4) == "qt  " ? "mov" : "mp4";
    } else if (box.type == "moov") {
      moov = true;
      ReadMovie(box.body, info);
    }
  });
  if (info.format.empty() || !moov) return std::nullopt;
  return info;
}

}  // namespace

std::optional<MediaInfo> ReadMediaInfo(std::string_view bytes) {
  static constexpr std::string_view kPng("\x89PNG\r\n\x1a\n", 8);
  if (bytes.substr(0, 8) == kPng) return ReadPng(bytes);
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF && static_cast<unsigned char>(bytes[1]) == 0xD8) {
    return ReadJpeg(bytes);
  }
  if (bytes.size() >= 8 && bytes.substr(4, 4) == "ftyp") return ReadIsoMedia(bytes);
  return std::nullopt;
}

}  // namespace labgate::capabilities
