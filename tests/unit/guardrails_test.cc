#include <gtest/gtest.h>

#include <filesystem>

#include "fakes/fakes.h"
#include "gateway/gateway.h"
#include "gateway/views.h"

namespace labgate::gateway {
namespace {

using Kind = ConfirmAnswer::Kind;

class Guardrails : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("labgate-guard-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    approvals_ = std::make_unique<ApprovalStore>(dir_.string(), clock_, std::chrono::seconds(900));
    Use("");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Use(const std::string& toml) {
    auto inv = inventory::ParseInventory(toml, "hosts.toml", "/");
    ASSERT_TRUE(inv.ok()) << inv.error().message;
    gateway_ = std::make_unique<Gateway>(std::make_shared<const inventory::Inventory>(*inv), audit_, executor_, clock_,
                                         nullptr, nullptr, approvals_.get());
  }
  RunCall Shell(const std::string& command, std::string cwd = "") {
    RunCall call;
    call.selectors = {"local"};
    call.command.shell = command;
    call.cwd = std::move(cwd);
    return call;
  }
  std::vector<std::string> Events() {
    std::vector<std::string> out;
    for (const auto& r : storage_.records()) {
      if (r["kind"] == "event") out.push_back(r["event"]);
    }
    return out;
  }

  std::filesystem::path dir_;
  fakes::FakeClock clock_;
  fakes::FakeAuditStorage storage_;
  audit::AuditLog audit_{storage_, clock_};
  fakes::FakeExecutor executor_{&storage_};
  audit::Actor actor_{"mcp", "test-client", "1.0", "alice", "s1"};
  core::CancelToken cancel_;
  std::unique_ptr<ApprovalStore> approvals_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(Guardrails, Destructive_HumanAccepts_RunsWithApproverAudited) {
  fakes::FakeConfirmer human(Kind::kAccept);
  auto report = gateway_->Run(actor_, Shell("rm -r /srv/old"), cancel_, nullptr, &human);
  ASSERT_EQ(executor_.calls().size(), 1u);
  ASSERT_EQ(human.questions().size(), 1u);
  EXPECT_EQ(human.questions()[0].command, "rm -r /srv/old");
  EXPECT_EQ(human.questions()[0].risk, "destructive");
  EXPECT_EQ(report.results[0].decision, "confirmed");
  EXPECT_EQ(report.results[0].approver, "fake human");
  bool intent_has_approver = false;
  for (const auto& r : storage_.records()) {
    if (r["kind"] == "intent") intent_has_approver = r["approver"] == "fake human";
  }
  EXPECT_TRUE(intent_has_approver);
  EXPECT_EQ(Events(), std::vector<std::string>{"confirmation.accepted"});
}

TEST_F(Guardrails, Destructive_HumanDeclines_NothingRuns) {
  for (Kind kind : {Kind::kDecline, Kind::kCancel}) {
    fakes::FakeConfirmer human(kind);
    auto report = gateway_->Run(actor_, Shell("reboot"), cancel_, nullptr, &human);
    EXPECT_TRUE(executor_.calls().empty());
    ASSERT_TRUE(report.results[0].error);
    EXPECT_EQ(report.results[0].decision, "refused");
  }
  EXPECT_EQ(Events(), (std::vector<std::string>{"confirmation.declined", "confirmation.cancelled"}));
}

TEST_F(Guardrails, NoHuman_FilesApproval_ApprovedCallRunsOnce) {
  auto first = gateway_->Run(actor_, Shell("rm -r /srv/old", "/srv"), cancel_);
  EXPECT_TRUE(executor_.calls().empty());
  const std::string id = first.results[0].approval_id;
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(first.results[0].decision, "approval-pending");
  EXPECT_NE(first.results[0].error->find("labgate approvals approve " + id), std::string::npos);
  // Issue 16: the approval needs a running process, and the message says which.
  EXPECT_NE(first.results[0].error->find("running `labgate gateway` or `labgate mcp`"), std::string::npos);

  ASSERT_TRUE(approvals_->Decide(id, true, "alice").ok());
  // A different argv, cwd or target does not use it.
  gateway_->Run(actor_, Shell("rm -r /srv", "/srv"), cancel_);
  gateway_->Run(actor_, Shell("rm -r /srv/old", "/"), cancel_);
  EXPECT_TRUE(executor_.calls().empty());

  auto second = gateway_->Run(actor_, Shell("rm -r /srv/old", "/srv"), cancel_);
  ASSERT_EQ(executor_.calls().size(), 1u);
  EXPECT_EQ(second.results[0].decision, "confirmed");
  EXPECT_EQ(second.results[0].approval_id, id);

  auto third = gateway_->Run(actor_, Shell("rm -r /srv/old", "/srv"), cancel_);
  EXPECT_EQ(executor_.calls().size(), 1u);
  EXPECT_EQ(third.results[0].decision, "approval-pending");
  EXPECT_NE(third.results[0].approval_id, id);
}

TEST_F(Guardrails, NoHumanNoStore_FailsClosed) {
  auto inv = inventory::DefaultInventory();
  Gateway bare(std::make_shared<const inventory::Inventory>(inv), audit_, executor_, clock_);
  auto report = bare.Run(actor_, Shell("reboot"), cancel_);
  EXPECT_TRUE(executor_.calls().empty());
  ASSERT_TRUE(report.results[0].error);
}

TEST_F(Guardrails, DryRun_DecidesEverythingRunsNothing) {
  RunCall call = Shell("rm -r /srv/old");
  call.dry_run = true;
  fakes::FakeConfirmer human(Kind::kAccept);
  auto report = gateway_->Run(actor_, call, cancel_, nullptr, &human);
  EXPECT_TRUE(executor_.calls().empty());
  EXPECT_TRUE(human.questions().empty());
  ASSERT_EQ(report.results.size(), 1u);
  EXPECT_EQ(report.results[0].decision, "dry-run:confirm");
  EXPECT_EQ(report.results[0].risk, "destructive");
  EXPECT_EQ(report.results[0].rule, "mode.confirm-destructive");
  EXPECT_TRUE(RunReportJson(report)["dryRun"].get<bool>());
  EXPECT_EQ(Events(), std::vector<std::string>{"run.dry-run"});
}

TEST_F(Guardrails, Failure_GathersReadOnlyDiagnosticsAndEscalates) {
  core::ProcessOutcome failed;
  failed.exit_code = 1;
  executor_.Script(failed);
  auto report = gateway_->Run(actor_, Shell("systemctl start nginx"), cancel_);
  const auto& r = report.results[0];
  EXPECT_TRUE(r.escalated);
  ASSERT_EQ(r.diagnostics.size(), 3u);
  EXPECT_EQ(r.diagnostics[0].command, "uptime");
  auto calls = executor_.calls();
  ASSERT_EQ(calls.size(), 4u);  // the command once (never re-run), then three diagnostics
  EXPECT_EQ(*calls[1].request.command.shell, "uptime");
  bool escalated_record = false;
  int diagnose_intents = 0;
  for (const auto& rec : storage_.records()) {
    if (rec["kind"] == "result" && rec["action"] == "run") escalated_record = rec["escalated"].get<bool>();
    if (rec["kind"] == "intent" && rec["action"] == "diagnose") ++diagnose_intents;
  }
  EXPECT_TRUE(escalated_record);
  EXPECT_EQ(diagnose_intents, 3);
}

TEST_F(Guardrails, ReadOnlyCommandExitingNonZero_IsNotEscalated) {
  core::ProcessOutcome failed;
  failed.exit_code = 1;
  executor_.Script(failed);
  auto report = gateway_->Run(actor_, Shell("grep -q needle /etc/hostname"), cancel_);
  EXPECT_FALSE(report.results[0].escalated);
  EXPECT_EQ(executor_.calls().size(), 1u);
}

TEST_F(Guardrails, CouldNotStart_EscalatedWithoutRerunning) {
  executor_.Script(core::MakeError(core::ErrorCode::kUnavailable, "connection refused"));
  auto report = gateway_->Run(actor_, Shell("touch /tmp/x"), cancel_);
  EXPECT_TRUE(report.results[0].escalated);
  EXPECT_EQ(executor_.calls().size(), 1u);
  ASSERT_EQ(report.results[0].diagnostics.size(), 1u);
  EXPECT_NE(report.results[0].diagnostics[0].error->find("did not start"), std::string::npos);
}

TEST_F(Guardrails, Grant_RunsWithoutAsking) {
  ASSERT_TRUE(approvals_->AddGrant("local", "docker compose -f /opt/stacks/core.yml *", std::chrono::hours(1), "alice").ok());
  auto report = gateway_->Run(actor_, Shell("docker compose -f /opt/stacks/core.yml down"), cancel_);
  ASSERT_EQ(executor_.calls().size(), 1u);
  EXPECT_EQ(report.results[0].rule, "approvals.grant");
}

}  // namespace
}  // namespace labgate::gateway
