#include "core/capped_output.h"

#include <gtest/gtest.h>

namespace labgate::core {
namespace {

TEST(CappedOutput, UnderTheCapKeepsEverything) {
  CappedOutput out(16);
  out.Append("hello ");
  out.Append("world");
  EXPECT_EQ(out.Text(), "hello world");
  EXPECT_FALSE(out.truncated());
  EXPECT_EQ(out.total_bytes(), 11u);
}

TEST(CappedOutput, OverTheCapKeepsHeadAndTailWithMarker) {
  CappedOutput out(10);
  out.Append("0123456789abcdefghij");
  EXPECT_TRUE(out.truncated());
  EXPECT_EQ(out.total_bytes(), 20u);
  EXPECT_EQ(out.Text(), "01234" + TruncationMarker(10, 20) + "fghij");
}

TEST(CappedOutput, ManySmallAppendsKeepTheRealTail) {
  CappedOutput out(8);
  for (char c = 'a'; c <= 'z'; ++c) out.Append(std::string(1, c));
  EXPECT_EQ(out.Text(), "abcd" + TruncationMarker(18, 26) + "wxyz");
}

TEST(CappedOutput, ExactlyAtTheCapIsNotTruncated) {
  CappedOutput out(4);
  out.Append("abcd");
  EXPECT_FALSE(out.truncated());
  EXPECT_EQ(out.Text(), "abcd");
}

TEST(CappedOutput, MarkerSaysHowMuchWasOmitted) {
  EXPECT_NE(TruncationMarker(5, 9).find("5 of 9 bytes omitted"), std::string::npos);
}

}  // namespace
}  // namespace labgate::core
