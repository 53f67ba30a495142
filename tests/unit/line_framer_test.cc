#include "core/line_framer.h"

#include <gtest/gtest.h>

namespace labgate::core {
namespace {

std::vector<std::string> Lines(const std::vector<LineFramer::Frame>& frames) {
  std::vector<std::string> out;
  for (const auto& f : frames) out.push_back(f.oversized ? "<oversized>" : f.line);
  return out;
}

TEST(LineFramer, SplitsOnNewlinesAcrossChunks) {
  LineFramer f(100);
  EXPECT_TRUE(f.Feed("{\"a\":").empty());
  EXPECT_EQ(Lines(f.Feed("1}\n{\"b\":2}\n{")), (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
  EXPECT_EQ(Lines(f.Feed("}\r\n")), (std::vector<std::string>{"{}"}));
}

TEST(LineFramer, BlankLinesYieldNothing) {
  LineFramer f(100);
  EXPECT_TRUE(f.Feed("\n\r\n   \n").empty());
}

TEST(LineFramer, OversizedLineIsReportedOnceThenSkipped) {
  LineFramer f(10);
  auto frames = f.Feed(std::string(25, 'x'));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].oversized);
  EXPECT_TRUE(f.Feed(std::string(1000, 'y')).empty());
  EXPECT_EQ(Lines(f.Feed("zz\nok\n")), (std::vector<std::string>{"ok"}));
}

TEST(LineFramer, OversizedLineInOneChunkKeepsTheNext) {
  LineFramer f(10);
  EXPECT_EQ(Lines(f.Feed(std::string(20, 'x') + "\nnext\n")), (std::vector<std::string>{"<oversized>", "next"}));
}

TEST(LineFramer, FinishReturnsUnterminatedLine) {
  LineFramer f(100);
  EXPECT_TRUE(f.Feed("tail").empty());
  auto last = f.Finish();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->line, "tail");
  EXPECT_FALSE(f.Finish().has_value());
}

TEST(LineFramer, FinishDropsATrailingCarriageReturnLikeEveryOtherLine) {
  LineFramer f(1024);
  EXPECT_TRUE(f.Feed("last\r").empty());
  auto last = f.Finish();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->line, "last");
}
}  // namespace
}  // namespace labgate::core
