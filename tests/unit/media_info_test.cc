#include "capabilities/media_info.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace labgate::capabilities {
namespace {

std::string U16(std::uint32_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }
std::string U32(std::uint32_t v) { return U16(v >> 16) + U16(v & 0xFFFF); }
std::string U64(std::uint64_t v) {
  return U32(static_cast<std::uint32_t>(v >> 32)) + U32(static_cast<std::uint32_t>(v));
}
std::string Zeros(std::size_t n) { return std::string(n, '\0'); }

std::string Png(std::uint32_t width, std::uint32_t height) {
  std::string ihdr = U32(width) + U32(height) + "\x08\x06" + Zeros(3);
  return std::string("\x89PNG\r\n\x1a\n", 8) + U32(13) + "IHDR" + ihdr + U32(0 /* crc, unchecked */);
}

// A JPEG marker segment: FF, marker, length (counting itself), payload.
std::string Segment(unsigned char marker, const std::string& payload) {
  return std::string{'\xFF', static_cast<char>(marker)} + U16(static_cast<std::uint32_t>(payload.size() + 2)) + payload;
}
std::string Sof(unsigned char marker, std::uint32_t width, std::uint32_t height) {
  return Segment(marker, "\x08" + U16(height) + U16(width) + "\x03" + Zeros(9));
}
const std::string kSoi("\xFF\xD8", 2);
const std::string kApp0 = Segment(0xE0, std::string("JFIF\0\x01\x01", 7) + Zeros(7));

// ISO-BMFF boxes.
std::string Box(const std::string& type, const std::string& body) {
  return U32(static_cast<std::uint32_t>(body.size() + 8)) + type + body;
}
std::string LargeBox(const std::string& type, const std::string& body) {
  return U32(1) + type + U64(body.size() + 16) + body;
}
std::string Ftyp(const std::string& brand = "isom") { return Box("ftyp", brand + U32(512) + "isomiso2mp41"); }
std::string MvhdV0(std::uint32_t timescale, std::uint32_t duration) {
  return Box("mvhd", Zeros(4) + U32(0) + U32(0) + U32(timescale) + U32(duration) + Zeros(80));
}
std::string MvhdV1(std::uint32_t timescale, std::uint64_t duration) {
  return Box("mvhd", std::string("\x01", 1) + Zeros(3) + U64(0) + U64(0) + U32(timescale) + U64(duration) + Zeros(80));
}
// Width and height in 16.16 fixed point, as tkhd stores them.
std::string TkhdV0(std::uint32_t width, std::uint32_t height) {
  return Box("tkhd", Zeros(4) + Zeros(20) + Zeros(8) + Zeros(8) + Zeros(36) + U32(width << 16) + U32(height << 16));
}
std::string TkhdV1(std::uint32_t width, std::uint32_t height) {
  return Box("tkhd", std::string("\x01", 1) + Zeros(3) + Zeros(32) + Zeros(8) + Zeros(8) + Zeros(36) +
                         U32(width << 16) + U32(height << 16));
}
std::string Trak(const std::string& tkhd) { return Box("trak", tkhd + Box("mdia", Zeros(8))); }

TEST(MediaInfo, Png_SizeFromIhdr) {
  auto info = ReadMediaInfo(Png(1920, 1080));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->format, "png");
  EXPECT_EQ(info->width, 1920);
  EXPECT_EQ(info->height, 1080);
  EXPECT_FALSE(info->duration_ms);
}

TEST(MediaInfo, Png_CutInsideIhdr_Nullopt) {
  EXPECT_FALSE(ReadMediaInfo(Png(640, 480).substr(0, 20)));
  EXPECT_FALSE(ReadMediaInfo(std::string("\x89PNG\r\n\x1a\n", 8)));
}

TEST(MediaInfo, Png_FirstChunkNotIhdr_Nullopt) {
  std::string png = Png(640, 480);
  png.replace(12, 4, "IDAT");
  EXPECT_FALSE(ReadMediaInfo(png));
}

TEST(MediaInfo, Jpeg_SizeFromSofAfterOtherSegments) {
  // DHT (C4) sits among the SOFn codes but is not a frame header.
  auto info = ReadMediaInfo(kSoi + kApp0 + Segment(0xDB, Zeros(65)) + Segment(0xC4, Zeros(20)) + Sof(0xC0, 640, 480));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->format, "jpeg");
  EXPECT_EQ(info->width, 640);
  EXPECT_EQ(info->height, 480);
  EXPECT_FALSE(info->duration_ms);
}

TEST(MediaInfo, Jpeg_ProgressiveSof2_Read) {
  auto info = ReadMediaInfo(kSoi + kApp0 + Sof(0xC2, 1280, 720));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->width, 1280);
  EXPECT_EQ(info->height, 720);
}

TEST(MediaInfo, Jpeg_FillBytesAndRestartMarkers_Skipped) {
  const std::string fill("\xFF\xFF\xFF", 3);
  const std::string rst("\xFF\xD0\xFF\xD7", 4);
  auto info = ReadMediaInfo(kSoi + kApp0 + rst + fill + Sof(0xC1, 320, 240));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->width, 320);
  EXPECT_EQ(info->height, 240);
}

TEST(MediaInfo, Jpeg_ScanBeforeFrameHeader_Nullopt) {
  EXPECT_FALSE(ReadMediaInfo(kSoi + kApp0 + Segment(0xDA, Zeros(10)) + Sof(0xC0, 640, 480)));
}

TEST(MediaInfo, Jpeg_CutInsideSof_Nullopt) {
  const std::string whole = kSoi + kApp0 + Sof(0xC0, 640, 480);
  const std::size_t sof_at = kSoi.size() + kApp0.size();
  for (std::size_t n = sof_at; n < sof_at + 9; ++n) EXPECT_FALSE(ReadMediaInfo(whole.substr(0, n))) << n << " bytes";
  EXPECT_TRUE(ReadMediaInfo(whole.substr(0, sof_at + 9)));
}

TEST(MediaInfo, Jpeg_SegmentRunningPastTheEnd_Nullopt) {
  std::string app = kApp0;
  app[3] = '\x7F';  // claims far more bytes than follow
  EXPECT_FALSE(ReadMediaInfo(kSoi + app + Sof(0xC0, 640, 480)));
}

TEST(MediaInfo, Jpeg_NoMarkerWhereOneIsDue_Nullopt) {
  EXPECT_FALSE(ReadMediaInfo(kSoi + "garbage after the start of image"));
}

TEST(MediaInfo, Mp4_DurationFromMvhdV0AndSizeFromTkhd) {
  auto info = ReadMediaInfo(Ftyp() + Box("free", Zeros(4)) + Box("mdat", Zeros(32)) +
                            Box("moov", MvhdV0(1000, 2500) + Trak(TkhdV0(1280, 720))));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->format, "mp4");
  EXPECT_EQ(info->width, 1280);
  EXPECT_EQ(info->height, 720);
  ASSERT_TRUE(info->duration_ms);
  EXPECT_EQ(*info->duration_ms, 2500);
}

TEST(MediaInfo, Mp4_MvhdV1AndTkhdV1_Read) {
  // 90 kHz timescale, 64-bit duration: 3.5 s.
  auto info = ReadMediaInfo(Ftyp() + Box("moov", MvhdV1(90000, 315000) + Trak(TkhdV1(640, 360))));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->width, 640);
  EXPECT_EQ(info->height, 360);
  ASSERT_TRUE(info->duration_ms);
  EXPECT_EQ(*info->duration_ms, 3500);
}

TEST(MediaInfo, Mp4_AudioTrackFirst_VideoTrackSizeUsed) {
  auto info = ReadMediaInfo(Ftyp() + Box("moov", MvhdV0(600, 600) + Trak(TkhdV0(0, 0)) + Trak(TkhdV0(800, 600))));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->width, 800);
  EXPECT_EQ(info->height, 600);
}

TEST(MediaInfo, Mp4_SecondVideoTrack_Ignored) {
  auto info = ReadMediaInfo(Ftyp() + Box("moov", MvhdV0(600, 600) + Trak(TkhdV0(800, 600)) + Trak(TkhdV0(160, 120))));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->width, 800);
  EXPECT_EQ(info->height, 600);
}

TEST(MediaInfo, QuickTimeBrand_FormatMov) {
  auto info = ReadMediaInfo(Ftyp("qt  ") + Box("moov", MvhdV0(600, 1200) + Trak(TkhdV0(2560, 1600))));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->format, "mov");
  EXPECT_EQ(*info->duration_ms, 2000);
}

TEST(MediaInfo, Mp4_LargeSizeBoxes_Read) {
  // size == 1: a 64-bit size follows the type (what big mdat boxes use).
  auto info = ReadMediaInfo(Ftyp() + LargeBox("mdat", Zeros(40)) +
                            LargeBox("moov", MvhdV0(1000, 1234) + Trak(TkhdV0(320, 240))));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->width, 320);
  EXPECT_EQ(info->height, 240);
  EXPECT_EQ(*info->duration_ms, 1234);
}

TEST(MediaInfo, Mp4_LastBoxSizeZero_RunsToTheEnd) {
  std::string moov = Box("moov", MvhdV0(1000, 500) + Trak(TkhdV0(64, 48)));
  moov.replace(0, 4, U32(0));
  auto info = ReadMediaInfo(Ftyp() + moov);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->width, 64);
  EXPECT_EQ(*info->duration_ms, 500);
}

TEST(MediaInfo, Mp4_ZeroTimescale_NoDuration) {
  auto info = ReadMediaInfo(Ftyp() + Box("moov", MvhdV0(0, 500) + Trak(TkhdV0(64, 48))));
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->duration_ms);
}

TEST(MediaInfo, Mp4_WithoutMoov_Nullopt) { EXPECT_FALSE(ReadMediaInfo(Ftyp() + Box("mdat", Zeros(64)))); }

TEST(MediaInfo, Mp4_CutShort_Nullopt) {
  const std::string whole = Ftyp() + Box("moov", MvhdV0(1000, 2500) + Trak(TkhdV0(1280, 720)));
  EXPECT_TRUE(ReadMediaInfo(whole));
  EXPECT_FALSE(ReadMediaInfo(whole.substr(0, whole.size() - 1)));
  EXPECT_FALSE(ReadMediaInfo(whole.substr(0, whole.size() / 2)));
  EXPECT_FALSE(ReadMediaInfo(whole.substr(0, 10)));
}

TEST(MediaInfo, Mp4_LargeSizeBeyondTheEnd_Nullopt) {
  std::string moov = LargeBox("moov", MvhdV0(1000, 2500));
  moov.replace(8, 8, U64(~std::uint64_t{0}));
  EXPECT_FALSE(ReadMediaInfo(Ftyp() + moov));
}

TEST(MediaInfo, Garbage_Nullopt) {
  EXPECT_FALSE(ReadMediaInfo(""));
  EXPECT_FALSE(ReadMediaInfo("hello, world: not a picture"));
  EXPECT_FALSE(ReadMediaInfo(std::string("\xFF\xD8", 2)));
  EXPECT_FALSE(ReadMediaInfo(std::string(4096, '\xFF')));
  EXPECT_FALSE(ReadMediaInfo("{\"class\":\"TPV\"}"));
}

TEST(MediaInfo, Png_SizesBeyondTheFormat_Nullopt) {
  // 0xFFFFFFFF would read as a negative width.
  EXPECT_FALSE(ReadMediaInfo(Png(0xFFFFFFFFu, 10)).has_value());
  EXPECT_FALSE(ReadMediaInfo(Png(10, 0x80000000u)).has_value());
  EXPECT_FALSE(ReadMediaInfo(Png(0, 10)).has_value());
  ASSERT_TRUE(ReadMediaInfo(Png(0x7FFFFFFFu, 1)).has_value());
}
}  // namespace
}  // namespace labgate::capabilities
