#include "gateway/artifacts.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/hashing.h"
#include "fakes/fakes.h"

namespace labgate::gateway {
namespace {

using core::ErrorCode;
using std::chrono::seconds;

int ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<int>(st.st_mode & 0777);
}

class ArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labgate-artifacts-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/artifacts";  // not there yet: Save creates it
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  ArtifactStore Store(std::uint64_t max_bytes = 1 << 20, seconds max_age = seconds(3600)) {
    return ArtifactStore(dir_, max_bytes, max_age, clock_);
  }
  bool Exists(const std::string& id) const { return std::filesystem::exists(dir_ + "/" + id + ".data"); }

  std::string root_;
  std::string dir_;
  fakes::FakeClock clock_;
};

TEST_F(ArtifactsTest, SaveThenRead_SameBytesMimeAndDigest) {
  auto store = Store();
  const std::string data = std::string("\x89PNG\r\n\x1a\n\0\xFF", 10) + std::string(300, 'x');
  auto saved = store.Save(data, "image/png", "maul", "screen.snapshot");
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  EXPECT_EQ(saved->bytes, data.size());
  EXPECT_EQ(saved->sha256, core::Sha256Hex(data));
  EXPECT_EQ(saved->created_at, core::FormatTimestamp(clock_.Now()));
  EXPECT_EQ(saved->Uri(), "labgate://artifacts/" + saved->id);

  auto read = store.Read(saved->id);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->second, data);
  EXPECT_EQ(read->first.mime_type, "image/png");
  EXPECT_EQ(read->first.target, "maul");
  EXPECT_EQ(read->first.action, "screen.snapshot");
  EXPECT_EQ(read->first.sha256, core::Sha256Hex(data));
  EXPECT_EQ(read->first.bytes, data.size());
}

TEST_F(ArtifactsTest, Save_FilesPrivateToTheOwner) {
  auto store = Store();
  auto saved = store.Save("picture", "image/png", "local", "screen.snapshot");
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  EXPECT_EQ(ModeOf(dir_), 0700);
  EXPECT_EQ(ModeOf(dir_ + "/" + saved->id + ".data"), 0600);
  EXPECT_EQ(ModeOf(dir_ + "/" + saved->id + ".json"), 0600);
}

TEST_F(ArtifactsTest, Save_IdsAreDistinct32Hex) {
  auto store = Store();
  auto a = store.Save("a", "image/png", "local", "screen.snapshot");
  auto b = store.Save("a", "image/png", "local", "screen.snapshot");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(ArtifactStore::IdFromUri(a->Uri()), a->id);
}

TEST_F(ArtifactsTest, List_NewestFirst) {
  auto store = Store();
  auto a = store.Save("first", "image/png", "local", "screen.snapshot");
  clock_.Advance(std::chrono::milliseconds(1000));
  auto b = store.Save("second", "image/jpeg", "phone", "camera.snap");
  clock_.Advance(std::chrono::milliseconds(1000));
  auto c = store.Save("third", "video/mp4", "maul", "screen.record");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto list = store.List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].id, c->id);
  EXPECT_EQ(list[1].id, b->id);
  EXPECT_EQ(list[2].id, a->id);
  EXPECT_EQ(list[1].target, "phone");
}

TEST_F(ArtifactsTest, List_EmptyWhenNothingWasSaved) { EXPECT_TRUE(Store().List().empty()); }

TEST_F(ArtifactsTest, IdFromUri_OnlyArtifactUrisWith32Hex) {
  const std::string id = "0123456789abcdef0123456789abcdef";
  EXPECT_EQ(ArtifactStore::IdFromUri("labgate://artifacts/" + id), id);
  for (const std::string uri :
       {"labgate://artifacts/0123456789ABCDEF0123456789ABCDEF", "labgate://artifacts/0123456789abcdef0123456789abcde",
        "labgate://artifacts/0123456789abcdef0123456789abcdef0", "labgate://artifacts/0123456789abcdef0123456789abcdeg",
        "labgate://artifacts/../../../../etc/passwd", "labgate://artifacts/",
        "labgate://artifact/0123456789abcdef0123456789abcdef", "file:///etc/passwd", "0123456789abcdef0123456789abcdef",
        ""}) {
    EXPECT_FALSE(ArtifactStore::IdFromUri(uri)) << uri;
  }
}

TEST_F(ArtifactsTest, ReadUnknownId_NotFound) {
  auto store = Store();
  auto read = store.Read("0123456789abcdef0123456789abcdef");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::kNotFound);
}

TEST_F(ArtifactsTest, ReadMalformedId_NotFound) {
  auto store = Store();
  ASSERT_TRUE(store.Save("x", "image/png", "local", "screen.snapshot").ok());
  for (const std::string id : {"", "../artifacts/x", "0123456789ABCDEF0123456789ABCDEF", "/etc/passwd"}) {
    auto read = store.Read(id);
    ASSERT_FALSE(read.ok()) << id;
    EXPECT_EQ(read.error().code, ErrorCode::kNotFound) << id;
  }
}

TEST_F(ArtifactsTest, ReadDamagedMetadata_NotFound) {
  auto store = Store();
  auto saved = store.Save("x", "image/png", "local", "screen.snapshot");
  ASSERT_TRUE(saved.ok());
  std::ofstream(dir_ + "/" + saved->id + ".json", std::ios::trunc) << "{not json";
  auto read = store.Read(saved->id);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::kNotFound);
  EXPECT_NE(read.error().message.find("damaged"), std::string::npos) << read.error().message;
}

TEST_F(ArtifactsTest, Prune_OlderThanMaxAgeGoneOnNextSave) {
  auto store = Store(1 << 20, seconds(60));
  auto old = store.Save("old", "image/png", "local", "screen.snapshot");
  ASSERT_TRUE(old.ok());
  clock_.Advance(std::chrono::milliseconds(30000));
  auto recent = store.Save("recent", "image/png", "local", "screen.snapshot");
  ASSERT_TRUE(recent.ok());
  EXPECT_TRUE(store.Read(old->id).ok()) << "30 s old: kept";

  clock_.Advance(std::chrono::milliseconds(31000));
  auto fresh = store.Save("fresh", "image/png", "local", "screen.snapshot");
  ASSERT_TRUE(fresh.ok());
  auto read = store.Read(old->id);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(Exists(old->id));
  EXPECT_TRUE(store.Read(recent->id).ok());
  EXPECT_TRUE(store.Read(fresh->id).ok());
  EXPECT_EQ(store.List().size(), 2u);
}

TEST_F(ArtifactsTest, Prune_OverMaxBytesOldestGoFirst) {
  auto store = Store(100, seconds(3600));
  std::vector<Artifact> saved;
  for (int i = 0; i < 3; ++i) {
    auto a = store.Save(std::string(40, static_cast<char>('a' + i)), "image/png", "local", "screen.snapshot");
    ASSERT_TRUE(a.ok()) << a.error().message;
    saved.push_back(*a);
    clock_.Advance(std::chrono::milliseconds(1000));
  }
  EXPECT_FALSE(store.Read(saved[0].id).ok());
  EXPECT_FALSE(Exists(saved[0].id));
  EXPECT_TRUE(store.Read(saved[1].id).ok());
  EXPECT_TRUE(store.Read(saved[2].id).ok());
}

TEST_F(ArtifactsTest, Prune_JustSavedKeptEvenAboveTheLimit) {
  auto store = Store(100, seconds(3600));
  auto small = store.Save(std::string(40, 's'), "image/png", "local", "screen.snapshot");
  ASSERT_TRUE(small.ok());
  clock_.Advance(std::chrono::milliseconds(1000));
  auto big = store.Save(std::string(500, 'b'), "video/mp4", "local", "screen.record");
  ASSERT_TRUE(big.ok()) << big.error().message;
  auto read = store.Read(big->id);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->second.size(), 500u);
  EXPECT_FALSE(store.Read(small->id).ok());
  ASSERT_EQ(store.List().size(), 1u);
}

}  // namespace
}  // namespace labgate::gateway
