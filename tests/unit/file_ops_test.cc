// The local half of `file`: atomic writes, digests, and no symlink followed anywhere.
#include "capabilities/file_ops.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/hashing.h"

namespace labgate::capabilities {
namespace {

namespace fs = std::filesystem;

class LocalFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labgate-fileops-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    files_ = LocalFiles();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Put(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << content;
    return dir_ + "/" + name;
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string dir_;
  std::unique_ptr<FileAccessor> files_;
};

TEST_F(LocalFilesTest, WriteCreatesReplacesAndKeepsTheMode) {
  const std::string path = dir_ + "/a.conf";
  auto created = files_->Write(path, "one\n", {});
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->sha256, core::Sha256Hex("one\n"));
  EXPECT_EQ(created->mode, 0644u);
  ::chmod(path.c_str(), 0600);
  auto replaced = files_->Write(path, "two\n", {});
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_FALSE(replaced->created);
  EXPECT_EQ(replaced->previous_sha256, core::Sha256Hex("one\n"));
  EXPECT_EQ(Slurp(path), "two\n");
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  WriteOptions mode;
  mode.mode = 0640;
  ASSERT_TRUE(files_->Write(path, "three\n", mode).ok());
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // No temporary file is left beside it.
  int count = 0;
  for (const auto& e : fs::directory_iterator(dir_)) count += e.path().filename().string()[0] == '.' ? 100 : 1;
  EXPECT_EQ(count, 1);
}

TEST_F(LocalFilesTest, ExpectedDigestAndCreateOnlyGuardAgainstClobbering) {
  const std::string path = Put("compose.yml", "v1\n");
  WriteOptions stale;
  stale.expected_sha256 = core::Sha256Hex("v0\n");
  auto refused = files_->Write(path, "v2\n", stale);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("someone changed it"), std::string::npos);
  EXPECT_EQ(Slurp(path), "v1\n");
  WriteOptions fresh;
  fresh.expected_sha256 = core::Sha256Hex("v1\n");
  EXPECT_TRUE(files_->Write(path, "v2\n", fresh).ok());
  WriteOptions create_only;
  create_only.create_only = true;
  EXPECT_FALSE(files_->Write(path, "v3\n", create_only).ok());
  EXPECT_EQ(Slurp(path), "v2\n");
  EXPECT_TRUE(files_->Write(dir_ + "/new", "n\n", create_only).ok());
  WriteOptions absent;
  absent.expected_sha256 = "";
  EXPECT_FALSE(files_->Write(path, "v4\n", absent).ok());
}

TEST_F(LocalFilesTest, NoSymlinkIsFollowedAnywhereInThePath) {
  const std::string outside = dir_ + "/outside";
  fs::create_directories(outside);
  Put("outside/secret", "s3cret\n");
  fs::create_directories(dir_ + "/in");
  fs::create_symlink(outside + "/secret", dir_ + "/in/final");
  fs::create_symlink(outside, dir_ + "/in/parent");
  // Final component a symlink: read, write and stat refuse or report the link itself.
  EXPECT_FALSE(files_->Read(dir_ + "/in/final", 0, 0, 1 << 20).ok());
  EXPECT_FALSE(files_->Write(dir_ + "/in/final", "x", {}).ok());
  EXPECT_EQ(Slurp(outside + "/secret"), "s3cret\n");
  auto st = files_->Stat(dir_ + "/in/final");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->type, "symlink");
  EXPECT_EQ(st->link_target, outside + "/secret");
  // A parent component that is a symlink: refused too (the gateway resolves paths first, so a
  // link that appears between its decision and the write is what this catches).
  auto read = files_->Read(dir_ + "/in/parent/secret", 0, 0, 1 << 20);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().message.find("symlink"), std::string::npos) << read.error().message;
  EXPECT_FALSE(files_->Write(dir_ + "/in/parent/new", "x", {}).ok());
  EXPECT_FALSE(fs::exists(outside + "/new"));
  // RealPath resolves both, which is what policy then judges.
  EXPECT_EQ(*files_->RealPath(dir_ + "/in/parent/secret"), fs::canonical(outside).string() + "/secret");
  EXPECT_EQ(*files_->RealPath(dir_ + "/in/parent/new"), fs::canonical(outside).string() + "/new");
  // It takes only normalised paths: `..` is resolved by policy::NormalizeFilePath first.
  EXPECT_FALSE(files_->RealPath(dir_ + "/in/../outside/secret").ok());
}

TEST_F(LocalFilesTest, ReadsRangesAndDigestsOnlyWholeFiles) {
  const std::string path = Put("log", "0123456789");
  auto part = files_->Read(path, 2, 3, 100);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->bytes, "234");
  EXPECT_EQ(part->file_size, 10u);
  EXPECT_FALSE(part->sha256.has_value());
  auto whole = files_->Read(path, 0, 0, 100);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->sha256, core::Sha256Hex("0123456789"));
  auto capped = files_->Read(path, 0, 0, 5);
  ASSERT_FALSE(capped.ok());
  EXPECT_NE(capped.error().message.find("max_read_bytes"), std::string::npos);
  EXPECT_FALSE(files_->Read(dir_, 0, 0, 100).ok());  // a directory is not read as a file
}

TEST_F(LocalFilesTest, ListsSortedAndCapped) {
  for (const char* n : {"c", "a", "b", "d"}) Put(n, n);
  bool truncated = false;
  auto all = files_->List(dir_, 10, &truncated);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].name, "a");
  EXPECT_EQ((*all)[3].name, "d");
  EXPECT_FALSE(truncated);
  auto two = files_->List(dir_, 2, &truncated);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
  EXPECT_TRUE(truncated);
}

TEST_F(LocalFilesTest, AReaderRacingReplacementsNeverSeesATornFile) {
  const std::string path = dir_ + "/swap";
  const std::string a(1 << 20, 'a'), b(1 << 20, 'b');
  ASSERT_TRUE(files_->Write(path, a, {}).ok());
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  std::thread reader([&] {
    while (!done) {
      const std::string seen = Slurp(path);
      if (seen != a && seen != b) ++torn;
      ++reads;
    }
  });
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(files_->Write(path, i % 2 ? a : b, {}).ok());
  done = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

}  // namespace
}  // namespace labgate::capabilities
