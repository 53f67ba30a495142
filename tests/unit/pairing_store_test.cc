#include "nodes/pairing_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "fakes/fakes.h"
#include "nodes/pairing_code.h"

namespace labgate::nodes {
namespace {

using std::chrono::minutes;

PublicKey Key(const std::string& tag) { return {"ssh-ed25519", "AAAA" + tag, "SHA256:" + tag}; }

class PairingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labgate-pairing-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto opened = PairingStore::Open(dir_ + "/nodes.json", clock_);
    ASSERT_TRUE(opened.ok());
    store_ = std::move(*opened);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  fakes::FakeClock clock_;
  std::unique_ptr<PairingStore> store_;
};

TEST_F(PairingStoreTest, Redeem_ValidCode_PairsWithTheSessionKeyAndCodeCapabilities) {
  auto secret = store_->IssueCode("phone", {"camera", "location"}, minutes(10));
  ASSERT_TRUE(secret.ok());
  auto paired = store_->Redeem(*secret, "phone", Key("a"), {}, {"android-aarch64", "pixel", "0.1"});
  ASSERT_TRUE(paired.ok()) << paired.error().message;
  EXPECT_EQ(paired->key.fingerprint, "SHA256:a");
  EXPECT_EQ(paired->capabilities, (std::vector<std::string>{"camera", "location"}));
  EXPECT_TRUE(store_->CheckKey("phone", "SHA256:a").ok());
}

TEST_F(PairingStoreTest, Redeem_DeviceAsksForFewer_GetsOnlyThose) {
  auto secret = store_->IssueCode("phone", {"camera", "location"}, minutes(10));
  auto paired = store_->Redeem(*secret, "phone", Key("a"), {"location", "screen"}, {});
  ASSERT_TRUE(paired.ok());
  EXPECT_EQ(paired->capabilities, (std::vector<std::string>{"location"}));
}

TEST_F(PairingStoreTest, Redeem_CodeUsedTwice_SecondRefused) {
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  ASSERT_TRUE(store_->Redeem(*secret, "phone", Key("a"), {}, {}).ok());
  auto again = store_->Redeem(*secret, "phone", Key("b"), {}, {});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already used"), std::string::npos);
  EXPECT_TRUE(store_->CheckKey("phone", "SHA256:a").ok());
}

TEST_F(PairingStoreTest, Redeem_ExpiredCode_Refused) {
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  clock_.Advance(minutes(11));
  auto paired = store_->Redeem(*secret, "phone", Key("a"), {}, {});
  ASSERT_FALSE(paired.ok());
  EXPECT_NE(paired.error().message.find("expired"), std::string::npos);
}

TEST_F(PairingStoreTest, Redeem_CodeForAnotherNode_Refused) {
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  auto paired = store_->Redeem(*secret, "laptop", Key("a"), {}, {});
  ASSERT_FALSE(paired.ok());
  EXPECT_NE(paired.error().message.find("issued for node phone"), std::string::npos);
}

TEST_F(PairingStoreTest, Redeem_UnknownSecret_Refused) {
  auto paired = store_->Redeem("not-a-secret", "phone", Key("a"), {}, {});
  ASSERT_FALSE(paired.ok());
  EXPECT_EQ(paired.error().code, core::ErrorCode::kRefused);
}

TEST_F(PairingStoreTest, Redeem_KeyOfAnotherNode_Refused) {
  ASSERT_TRUE(store_->Redeem(*store_->IssueCode("phone", {"run"}, minutes(10)), "phone", Key("a"), {}, {}).ok());
  auto second = store_->Redeem(*store_->IssueCode("laptop", {"run"}, minutes(10)), "laptop", Key("a"), {}, {});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("belongs to node phone"), std::string::npos);
}

TEST_F(PairingStoreTest, CheckKey_OtherNodesKey_SaysWhoseKeyItIs) {
  ASSERT_TRUE(store_->Redeem(*store_->IssueCode("phone", {"run"}, minutes(10)), "phone", Key("a"), {}, {}).ok());
  ASSERT_TRUE(store_->Redeem(*store_->IssueCode("laptop", {"run"}, minutes(10)), "laptop", Key("b"), {}, {}).ok());
  auto check = store_->CheckKey("phone", "SHA256:b");
  ASSERT_FALSE(check.ok());
  EXPECT_NE(check.error().message.find("not the key recorded for node phone"), std::string::npos);
  EXPECT_FALSE(store_->CheckKey("ghost", "SHA256:z").ok());
}

TEST_F(PairingStoreTest, Pending_ApproveMayNarrowButNotWiden) {
  ASSERT_TRUE(store_->AddPending("desk", Key("d"), {"run", "screen"}, {"linux-x86_64", "desk", "0.1"}).ok());
  auto widened = store_->Approve("desk", std::vector<std::string>{"camera"});
  ASSERT_FALSE(widened.ok());
  EXPECT_NE(widened.error().message.find("did not ask for camera"), std::string::npos);
  auto approved = store_->Approve("desk", std::vector<std::string>{"run"});
  ASSERT_TRUE(approved.ok());
  EXPECT_EQ(approved->capabilities, (std::vector<std::string>{"run"}));
  EXPECT_TRUE(store_->Pending().empty());
  EXPECT_TRUE(store_->CheckKey("desk", "SHA256:d").ok());
}

TEST_F(PairingStoreTest, Pending_ForAPairedId_Refused) {
  ASSERT_TRUE(store_->Redeem(*store_->IssueCode("phone", {"run"}, minutes(10)), "phone", Key("a"), {}, {}).ok());
  EXPECT_FALSE(store_->AddPending("phone", Key("x"), {"run"}, {}).ok());
}

TEST_F(PairingStoreTest, Reject_RemovesTheRequest) {
  ASSERT_TRUE(store_->AddPending("desk", Key("d"), {"run"}, {}).ok());
  ASSERT_TRUE(store_->Reject("desk").ok());
  EXPECT_FALSE(store_->FindPending("desk").has_value());
  EXPECT_FALSE(store_->Find("desk").has_value());
  EXPECT_FALSE(store_->Reject("desk").ok());
}

TEST_F(PairingStoreTest, Rotate_OldKeyStopsWorkingNewKeyWorks) {
  ASSERT_TRUE(store_->Redeem(*store_->IssueCode("phone", {"run"}, minutes(10)), "phone", Key("a"), {}, {}).ok());
  clock_.Advance(minutes(60));
  auto rotated = store_->Rotate("phone", Key("b"));
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(rotated->key_since(), clock_.Now());
  EXPECT_FALSE(store_->CheckKey("phone", "SHA256:a").ok());
  EXPECT_TRUE(store_->CheckKey("phone", "SHA256:b").ok());
  EXPECT_FALSE(store_->Rotate("phone", Key("b")).ok());
}

TEST_F(PairingStoreTest, Revoke_RefusesTheKeyAndKeepsTheRecord) {
  ASSERT_TRUE(store_->Redeem(*store_->IssueCode("phone", {"run"}, minutes(10)), "phone", Key("a"), {}, {}).ok());
  ASSERT_TRUE(store_->Revoke("phone").ok());
  auto check = store_->CheckKey("phone", "SHA256:a");
  ASSERT_FALSE(check.ok());
  EXPECT_NE(check.error().message.find("revoked"), std::string::npos);
  ASSERT_TRUE(store_->Find("phone").has_value());
  EXPECT_TRUE(store_->Find("phone")->revoked());
  EXPECT_FALSE(store_->Revoke("phone").ok());
}

TEST_F(PairingStoreTest, Reopen_KeepsEverythingAndOnlyTheSecretsDigest) {
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  ASSERT_TRUE(store_->Redeem(*secret, "phone", Key("a"), {}, {"linux", "p", "1"}).ok());
  ASSERT_TRUE(store_->AddPending("desk", Key("d"), {"run"}, {}).ok());
  auto unused = store_->IssueCode("laptop", {"run"}, minutes(10));
  std::ifstream in(dir_ + "/nodes.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find(*unused), std::string::npos);

  auto reopened = PairingStore::Open(dir_ + "/nodes.json", clock_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->CheckKey("phone", "SHA256:a").ok());
  EXPECT_EQ((*reopened)->Find("phone")->device.hostname, "p");
  EXPECT_TRUE((*reopened)->FindPending("desk").has_value());
  EXPECT_TRUE((*reopened)->Redeem(*unused, "laptop", Key("l"), {}, {}).ok());
  EXPECT_FALSE((*reopened)->Redeem(*secret, "phone", Key("z"), {}, {}).ok());
}

TEST_F(PairingStoreTest, Open_CorruptFile_IsAnErrorAndTheFileIsKept) {
  std::ofstream(dir_ + "/bad.json") << "{not json";
  auto opened = PairingStore::Open(dir_ + "/bad.json", clock_);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("never overwritten"), std::string::npos);
  std::ifstream in(dir_ + "/bad.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{not json");
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST_F(PairingStoreTest, Journal_AChangeAppendsOneLineInsteadOfRewritingTheFile) {
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  ASSERT_TRUE(secret.ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/nodes.json"));
  std::string journal = Slurp(dir_ + "/nodes.json.journal");
  EXPECT_EQ(std::count(journal.begin(), journal.end(), '\n'), 1);
  EXPECT_EQ(journal.find(*secret), std::string::npos);  // only the digest
  ASSERT_TRUE(store_->Redeem(*secret, "phone", Key("a"), {}, {}).ok());
  journal = Slurp(dir_ + "/nodes.json.journal");
  EXPECT_EQ(std::count(journal.begin(), journal.end(), '\n'), 2);  // the code used and the node: one line
}

TEST_F(PairingStoreTest, Journal_ACrashAnywhereInAnOperationsAppendKeepsAllOfItOrNone) {
  // Approving writes the node and removes its request; redeeming marks the code used and pairs
  // the node. A crash may keep any prefix of the bytes appended. Replayed, each operation is
  // whole or absent: never a paired node whose request still waits (a later reject would then
  // leave it paired), nor a used code with no node.
  ASSERT_TRUE(store_->AddPending("desk", Key("d"), {"run"}, {}).ok());
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  ASSERT_TRUE(secret.ok());
  const std::string journal_path = dir_ + "/nodes.json.journal";
  const std::string before = Slurp(journal_path);
  ASSERT_TRUE(store_->Approve("desk", std::nullopt).ok());
  ASSERT_TRUE(store_->Redeem(*secret, "phone", Key("p"), {}, {}).ok());
  const std::string after = Slurp(journal_path);
  ASSERT_EQ(after.compare(0, before.size(), before), 0);
  store_.reset();
  for (std::size_t cut = before.size(); cut <= after.size(); ++cut) {
    std::ofstream(journal_path, std::ios::trunc) << after.substr(0, cut);
    auto reopened = PairingStore::Open(dir_ + "/nodes.json", clock_);
    ASSERT_TRUE(reopened.ok()) << "cut at " << cut << ": " << reopened.error().message;
    const bool desk_paired = (*reopened)->Find("desk").has_value();
    EXPECT_NE(desk_paired, (*reopened)->FindPending("desk").has_value()) << "cut at " << cut;
    const bool phone_paired = (*reopened)->Find("phone").has_value();
    // The code is usable again exactly when the node is not paired.
    auto again = (*reopened)->Redeem(*secret, "phone", Key("q"), {}, {});
    EXPECT_NE(phone_paired, again.ok()) << "cut at " << cut;
  }
}

TEST_F(PairingStoreTest, Journal_ACutShortLastLineWasNeverDoneAndIsCutOffByTheNextChange) {
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  ASSERT_TRUE(store_->Redeem(*secret, "phone", Key("a"), {}, {}).ok());
  store_.reset();
  // A crash in the middle of appending the revocation.
  std::ofstream(dir_ + "/nodes.json.journal", std::ios::app) << R"({"node":{"id":"phone","key":{"ty)";
  auto reopened = PairingStore::Open(dir_ + "/nodes.json", clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  EXPECT_TRUE((*reopened)->CheckKey("phone", "SHA256:a").ok());
  ASSERT_TRUE((*reopened)->AddPending("desk", Key("d"), {"run"}, {}).ok());
  std::string journal = Slurp(dir_ + "/nodes.json.journal");
  EXPECT_EQ(journal.find("\"ty\n"), std::string::npos);
  EXPECT_EQ(journal.back(), '\n');
  auto again = PairingStore::Open(dir_ + "/nodes.json", clock_);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE((*again)->FindPending("desk").has_value());
}

TEST_F(PairingStoreTest, Journal_AGarbledLineIsAnErrorAndNothingIsOverwritten) {
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  ASSERT_TRUE(store_->Redeem(*secret, "phone", Key("a"), {}, {}).ok());
  store_.reset();
  const std::string good = Slurp(dir_ + "/nodes.json.journal");
  for (const char* bad : {"{\"node\":{\"id\":1}}\n", "not json\n", "{\"grant\":{\"id\":\"x\"}}\n", "[]\n",
                          "{\"batch\":{\"node\":1}}\n", "{\"batch\":[{\"batch\":[]}]}\n"}) {
    const std::string garbled = good + bad + "{\"pendingRemoved\":\"x\"}\n";
    std::ofstream(dir_ + "/nodes.json.journal", std::ios::trunc) << garbled;
    auto opened = PairingStore::Open(dir_ + "/nodes.json", clock_);
    ASSERT_FALSE(opened.ok()) << bad;
    EXPECT_NE(opened.error().message.find("nodes.json.journal"), std::string::npos);
    EXPECT_NE(opened.error().message.find("line 3"), std::string::npos) << opened.error().message;
    EXPECT_NE(opened.error().message.find("never overwritten"), std::string::npos);
    EXPECT_EQ(Slurp(dir_ + "/nodes.json.journal"), garbled);
  }
}

TEST_F(PairingStoreTest, Journal_GrowsOnlyToTheFilesSizeAndACrashBeforeItIsEmptiedReplaysHarmlessly) {
  // 300 nodes paired and 100 revoked: the journal is folded into the file along the way, so the
  // bytes written stay proportional to the changes, not changes x fleet.
  for (int i = 0; i < 300; ++i) {
    const std::string id = "n" + std::to_string(i);
    auto secret = store_->IssueCode(id, {"run", "screen"}, minutes(10));
    ASSERT_TRUE(secret.ok());
    ASSERT_TRUE(store_->Redeem(*secret, id, Key(id), {}, {"linux", id, "1"}).ok());
    if (i % 3 == 0) {
      ASSERT_TRUE(store_->Revoke(id).ok());
    }
  }
  const std::string file = Slurp(dir_ + "/nodes.json");
  const std::string journal = Slurp(dir_ + "/nodes.json.journal");
  ASSERT_FALSE(file.empty());
  EXPECT_LE(journal.size(), std::max<std::size_t>(file.size(), 64 * 1024) + 4096);
  // The journal lines already folded into the file, replayed again over it: same state.
  std::ofstream(dir_ + "/nodes.json.journal") << journal;
  auto reopened = PairingStore::Open(dir_ + "/nodes.json", clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  EXPECT_EQ((*reopened)->Nodes().size(), 300u);
  for (int i = 0; i < 300; ++i) {
    const std::string id = "n" + std::to_string(i);
    EXPECT_EQ((*reopened)->CheckKey(id, "SHA256:" + id).ok(), i % 3 != 0) << id;
  }
}

TEST_F(PairingStoreTest, Journal_LastSeenIsWrittenWithTheNextChangeOrAtFlush) {
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  ASSERT_TRUE(store_->Redeem(*secret, "phone", Key("a"), {}, {}).ok());
  const std::string before = Slurp(dir_ + "/nodes.json.journal");
  clock_.Advance(std::chrono::seconds(5));
  store_->MarkSeen("phone");
  store_->MarkSeen("phone");
  EXPECT_EQ(Slurp(dir_ + "/nodes.json.journal"), before);  // a hello costs no write
  ASSERT_TRUE(store_->Flush().ok());
  const std::string after = Slurp(dir_ + "/nodes.json.journal");
  EXPECT_EQ(std::count(after.begin(), after.end(), '\n'), 3);  // the code, the pairing, the seen time
  ASSERT_TRUE(store_->Flush().ok());  // nothing new: no write
  EXPECT_EQ(Slurp(dir_ + "/nodes.json.journal"), after);
  auto reopened = PairingStore::Open(dir_ + "/nodes.json", clock_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->Find("phone")->last_seen, clock_.Now());
}

TEST_F(PairingStoreTest, Journal_ALinkInItsPlaceIsNotFollowed) {
  std::ofstream(dir_ + "/elsewhere") << "";
  std::filesystem::create_symlink(dir_ + "/elsewhere", dir_ + "/nodes.json.journal");
  auto secret = store_->IssueCode("phone", {"run"}, minutes(10));
  ASSERT_FALSE(secret.ok());
  EXPECT_NE(secret.error().message.find("was not made"), std::string::npos);
  EXPECT_EQ(Slurp(dir_ + "/elsewhere"), "");
}

TEST(PairingCode, RoundTrips) {
  PairingCode code{"10.0.0.2:7022", "SHA256:abc", "phone", "s3cret"};
  const std::string text = EncodePairingCode(code);
  EXPECT_EQ(text.rfind("lgpair1.", 0), 0u);
  EXPECT_EQ(text.find_first_of(" /+="), std::string::npos);
  auto back = DecodePairingCode(text + "\n");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->address, code.address);
  EXPECT_EQ(back->fingerprint, code.fingerprint);
  EXPECT_EQ(back->node_id, code.node_id);
  EXPECT_EQ(back->secret, code.secret);
}

TEST(PairingCode, TruncatedOrForeignTextIsExplained) {
  const std::string text = EncodePairingCode({"10.0.0.2:7022", "SHA256:abc", "phone", "s3cret"});
  for (const std::string& bad : {text.substr(0, text.size() / 2), std::string("hello"), std::string("lgpair1.@@@")}) {
    auto decoded = DecodePairingCode(bad);
    ASSERT_FALSE(decoded.ok()) << bad;
    EXPECT_NE(decoded.error().message.find("not a labgate pairing code"), std::string::npos);
  }
}

}  // namespace
}  // namespace labgate::nodes
