#include "cli/logging.h"

#include <gtest/gtest.h>

namespace labgate::cli {
namespace {

TEST(JournalStream, MatchesOnlyTheExactDeviceAndInodeOfStderr) {
  EXPECT_TRUE(IsJournalStream("64769:123456", 64769, 123456));
  EXPECT_FALSE(IsJournalStream("64769:123457", 64769, 123456));  // another stream: an MCP client's pipe
  EXPECT_FALSE(IsJournalStream("64768:123456", 64769, 123456));
  for (const char* bad : {"", ":", "64769", "64769:", ":123456", "64769:123456x", "x64769:123456", "-1:123456",
                          "64769:123456:7", " 64769:123456", "99999999999999999999999:1"}) {
    EXPECT_FALSE(IsJournalStream(bad, 64769, 123456)) << bad;
  }
}

TEST(JournalStream, LevelsMapToSyslogPriorities) {
  EXPECT_EQ(JournalPriority(spdlog::level::critical), 2);
  EXPECT_EQ(JournalPriority(spdlog::level::err), 3);
  EXPECT_EQ(JournalPriority(spdlog::level::warn), 4);
  EXPECT_EQ(JournalPriority(spdlog::level::info), 6);
  EXPECT_EQ(JournalPriority(spdlog::level::debug), 7);
  EXPECT_EQ(JournalPriority(spdlog::level::trace), 7);
}

}  // namespace
}  // namespace labgate::cli
