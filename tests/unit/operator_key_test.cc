// STATE_DIR/operator.key: made once, private, never followed through a link, and the only
// thing that opens the operator socket's methods.
#include "gateway/operator_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace labgate::gateway {
namespace {

class OperatorKey : public ::testing::Test {
 protected:
  OperatorKey() {
    char tmpl[] = "/tmp/labgate-opkey-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    state_ = dir_ + "/state";
  }
  ~OperatorKey() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
  std::string state_;
};

TEST_F(OperatorKey, Ensure_CreatesAPrivateKeyOnceAndKeepsIt) {
  auto first = EnsureOperatorKey(state_);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat(OperatorKeyPath(state_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = EnsureOperatorKey(state_);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *first);
  auto read = ReadOperatorKey(state_);
  ASSERT_TRUE(read);
  EXPECT_EQ(*read, *first);
  // Nothing else is left in the state directory (no temporary files).
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(state_)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"operator.key"}));
}

TEST_F(OperatorKey, TwoGatewaysStartingAtOnce_AgreeOnOneKey) {
  std::vector<std::string> keys(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    threads.emplace_back([&, i] {
      auto k = EnsureOperatorKey(state_);
      keys[i] = k ? *k : "error: " + k.error().message;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& k : keys) EXPECT_EQ(k, keys[0]);
  EXPECT_EQ(keys[0].size(), 64u) << keys[0];
}

TEST_F(OperatorKey, Missing_ReadSaysWhereItComesFrom) {
  auto read = ReadOperatorKey(state_);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("operator.key"), std::string::npos) << read.error().message;
  EXPECT_NE(read.error().message.find("gateway"), std::string::npos) << read.error().message;
}

TEST_F(OperatorKey, ReadableByOthers_IsRefusedWithTheFix) {
  ASSERT_TRUE(EnsureOperatorKey(state_));
  ::chmod(OperatorKeyPath(state_).c_str(), 0644);
  auto read = ReadOperatorKey(state_);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("mode 644"), std::string::npos) << read.error().message;
  EXPECT_NE(read.error().message.find("chmod 600"), std::string::npos) << read.error().message;
  EXPECT_FALSE(EnsureOperatorKey(state_)) << "a gateway must not serve with a key others can read";
}

TEST_F(OperatorKey, PlantedSymlink_IsNotFollowed) {
  // A process that could write the state dir plants a link to a key it knows.
  std::filesystem::create_directories(state_);
  std::ofstream(dir_ + "/known") << std::string(64, 'a') << "\n";
  ::chmod((dir_ + "/known").c_str(), 0600);
  std::filesystem::create_symlink(dir_ + "/known", OperatorKeyPath(state_));
  EXPECT_FALSE(ReadOperatorKey(state_));
  EXPECT_FALSE(EnsureOperatorKey(state_));
}

TEST_F(OperatorKey, SecondNameForTheKey_IsRefused) {
  // A hard link elsewhere would let whoever owns that directory watch or swap the key.
  ASSERT_TRUE(EnsureOperatorKey(state_));
  ASSERT_EQ(::link(OperatorKeyPath(state_).c_str(), (dir_ + "/copy").c_str()), 0);
  auto read = ReadOperatorKey(state_);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("2 links"), std::string::npos) << read.error().message;
}

TEST_F(OperatorKey, GroupWritableOrExecutable_IsRefused) {
  ASSERT_TRUE(EnsureOperatorKey(state_));
  for (mode_t mode : {0620, 0610, 0604, 0602}) {
    ::chmod(OperatorKeyPath(state_).c_str(), mode);
    EXPECT_FALSE(ReadOperatorKey(state_)) << std::oct << mode;
  }
  ::chmod(OperatorKeyPath(state_).c_str(), 0640);  // an operators' group may read it
  EXPECT_TRUE(ReadOperatorKey(state_));
}

TEST_F(OperatorKey, GarbageOrTruncated_IsRefused) {
  std::filesystem::create_directories(state_);
  for (const std::string& text : std::vector<std::string>{"", "short\n", std::string(64, 'Z'), std::string(63, 'a'), std::string(65, 'a')}) {
    std::filesystem::remove(OperatorKeyPath(state_));
    {
      std::ofstream out(OperatorKeyPath(state_));
      out << text;
    }
    ::chmod(OperatorKeyPath(state_).c_str(), 0600);
    EXPECT_FALSE(ReadOperatorKey(state_)) << text;
  }
}

TEST(OperatorKeyMatch, OnlyTheExactKeyMatches) {
  const std::string key(64, 'b');
  EXPECT_TRUE(OperatorKeyMatches(key, key));
  EXPECT_FALSE(OperatorKeyMatches("", key));
  EXPECT_FALSE(OperatorKeyMatches("", ""));
  EXPECT_FALSE(OperatorKeyMatches(key.substr(1), key));
  EXPECT_FALSE(OperatorKeyMatches(std::string(63, 'b') + "c", key));
  EXPECT_FALSE(OperatorKeyMatches(key + "b", key));
}

}  // namespace
}  // namespace labgate::gateway
