#include "gateway/approvals.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fakes/fakes.h"

namespace labgate::gateway {
namespace {

class ApprovalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("labgate-approvals-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    store_ = std::make_unique<ApprovalStore>(dir_.string(), clock_, std::chrono::seconds(900));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static ApprovalBinding Binding(std::vector<std::string> argv, std::string cwd = "", std::vector<std::string> targets = {"prox4"}) {
    ApprovalBinding b;
    b.targets = std::move(targets);
    b.command = {{"argv", argv}};
    b.cwd = std::move(cwd);
    return b;
  }
  ApprovalRequest File(const ApprovalBinding& b) {
    bool created = false;
    auto r = store_->Request(b, "destructive", "mode.confirm-destructive", "rm -r deletes", {{"via", "mcp"}}, &created);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return *r;
  }

  std::filesystem::path dir_;
  fakes::FakeClock clock_;
  std::unique_ptr<ApprovalStore> store_;
};

TEST_F(ApprovalStoreTest, Approval_IsSingleUse) {
  auto b = Binding({"rm", "-r", "/srv/old"});
  auto r = File(b);
  ASSERT_TRUE(store_->Decide(r.id, true, "alice").ok());
  auto first = store_->TakeApproved(b);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->decided_by, "alice");
  auto second = store_->TakeApproved(b);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->has_value());
}

TEST_F(ApprovalStoreTest, Approval_BoundToArgvCwdAndTargets) {
  auto b = Binding({"rm", "-r", "/srv/old"}, "/srv");
  ASSERT_TRUE(store_->Decide(File(b).id, true, "alice").ok());
  EXPECT_FALSE(store_->TakeApproved(Binding({"rm", "-r", "/srv"}, "/srv"))->has_value());
  EXPECT_FALSE(store_->TakeApproved(Binding({"rm", "-r", "/srv/old"}, "/"))->has_value());
  EXPECT_FALSE(store_->TakeApproved(Binding({"rm", "-r", "/srv/old"}, "/srv", {"prox4", "prox5"}))->has_value());
  auto env = b;
  env.env = {{"LD_PRELOAD", "/tmp/x.so"}};
  EXPECT_FALSE(store_->TakeApproved(env)->has_value());
  EXPECT_TRUE(store_->TakeApproved(b)->has_value());
}

TEST_F(ApprovalStoreTest, Approval_Expired_CannotBeApprovedOrUsed) {
  auto b = Binding({"reboot"});
  auto r = File(b);
  clock_.Advance(std::chrono::seconds(901));
  auto decided = store_->Decide(r.id, true, "alice");
  ASSERT_FALSE(decided.ok());
  EXPECT_NE(decided.error().message.find("expired"), std::string::npos);

  auto r2 = File(b);  // a new request replaces the expired one
  EXPECT_NE(r2.id, r.id);
  ASSERT_TRUE(store_->Decide(r2.id, true, "alice").ok());
  clock_.Advance(std::chrono::seconds(901));
  EXPECT_FALSE(store_->TakeApproved(b)->has_value());
}

TEST_F(ApprovalStoreTest, Request_RepeatedWhilePending_ReusesTheRequest) {
  auto b = Binding({"reboot"});
  auto r1 = File(b);
  bool created = true;
  auto r2 = store_->Request(b, "destructive", "x", "y", {}, &created);
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(r2->id, r1.id);
}

TEST_F(ApprovalStoreTest, Denied_IsNeverUsable) {
  auto b = Binding({"reboot"});
  auto r = File(b);
  ASSERT_TRUE(store_->Decide(r.id, false, "alice").ok());
  EXPECT_FALSE(store_->TakeApproved(b)->has_value());
  EXPECT_FALSE(store_->Decide(r.id, true, "alice").ok());
}

TEST_F(ApprovalStoreTest, Grants_ExpireAndRevoke) {
  auto g = store_->AddGrant("prox4", "docker compose -f /opt/stacks/core.yml *", std::chrono::hours(1), "alice");
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(store_->PolicyGrants().size(), 1u);
  EXPECT_EQ(store_->PolicyGrants()[0].target, "prox4");
  clock_.Advance(std::chrono::minutes(61));
  EXPECT_TRUE(store_->PolicyGrants().empty());
  auto g2 = store_->AddGrant("prox4", "apt upgrade", std::chrono::hours(1), "alice");
  ASSERT_TRUE(store_->RevokeGrant(g2->id, "alice").ok());
  EXPECT_TRUE(store_->PolicyGrants().empty());
}

TEST_F(ApprovalStoreTest, File_IsPrivateAndSharedBetweenStores) {
  auto b = Binding({"reboot"});
  auto r = File(b);
  ApprovalStore other(dir_.string(), clock_, std::chrono::seconds(900));
  ASSERT_TRUE(other.Decide(r.id, true, "bob").ok());
  EXPECT_TRUE(store_->TakeApproved(b)->has_value());
  auto perms = std::filesystem::status(dir_ / "approvals.json").permissions();
  EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all), std::filesystem::perms::none);
}

TEST_F(ApprovalStoreTest, AParsedCopyNeverHidesAChangeAnotherProcessMade) {
  // The store keeps the last version it parsed. Another store (the CLI, another gateway
  // process) changing the file must show at once, however fast and however similar the
  // versions: same size, same second.
  ApprovalStore other(dir_.string(), clock_, std::chrono::seconds(900));
  for (int i = 0; i < 50; ++i) {
    auto g = other.AddGrant("prox4", "systemctl restart app" + std::to_string(i % 10), std::chrono::hours(1), "alice");
    ASSERT_TRUE(g.ok());
    auto seen = store_->PolicyGrants();
    ASSERT_EQ(seen.size(), 1u) << "round " << i;
    EXPECT_EQ(seen[0].id, g->id);
    ASSERT_TRUE(other.RevokeGrant(g->id, "alice").ok());
    EXPECT_TRUE(store_->PolicyGrants().empty()) << "a revoked grant was still in force, round " << i;
  }
  // The file removed: nothing is in force.
  auto g = other.AddGrant("prox4", "uptime", std::chrono::hours(1), "alice");
  ASSERT_EQ(store_->PolicyGrants().size(), 1u);
  std::filesystem::remove(dir_ / "approvals.json");
  EXPECT_TRUE(store_->PolicyGrants().empty());
  // Time still counts on a cached copy.
  ASSERT_TRUE(other.AddGrant("prox4", "uptime", std::chrono::minutes(5), "alice").ok());
  ASSERT_EQ(store_->PolicyGrants().size(), 1u);
  clock_.Advance(std::chrono::minutes(6));
  EXPECT_TRUE(store_->PolicyGrants().empty());
  // Edited in place, same size, within the same clock tick: still seen (an expiry moved back).
  std::filesystem::remove(dir_ / "approvals.json");
  ASSERT_TRUE(other.AddGrant("prox4", "uptime", std::chrono::hours(1), "alice").ok());
  ASSERT_EQ(store_->PolicyGrants().size(), 1u);
  {
    std::fstream f(dir_ / "approvals.json", std::ios::in | std::ios::out | std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    const auto at = text.find("\"expiresMs\": ");
    ASSERT_NE(at, std::string::npos);
    f.seekp(static_cast<std::streamoff>(at + 14));
    f.put('0');  // 17xx... becomes 10xx...: the same size, and long past
  }
  EXPECT_TRUE(store_->PolicyGrants().empty());
  // A file made unreadable fails closed: no grants.
  std::filesystem::remove(dir_ / "approvals.json");
  std::ofstream(dir_ / "approvals.json") << "{not json";
  EXPECT_TRUE(store_->PolicyGrants().empty());
}

}  // namespace
}  // namespace labgate::gateway
