// Gateway::Capture: screen, camera and location through the guardrail pipeline, with fakes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "core/hashing.h"
#include "fakes/fakes.h"
#include "gateway/gateway.h"

namespace labgate::gateway {
namespace {

using core::ErrorCode;
using Kind = ConfirmAnswer::Kind;
using std::chrono::milliseconds;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

constexpr char kAllCapabilities[] = "[local]\ncapabilities = [\"run\", \"screen\", \"camera\", \"location\"]\n";

std::string U32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xFF), static_cast<char>((v >> 8) & 0xFF),
          static_cast<char>(v & 0xFF)};
}

capabilities::CaptureResult Picture() {
  capabilities::CaptureResult r;
  r.backend = "x11";
  r.mime_type = "image/png";
  r.data =
      std::string("\x89PNG\r\n\x1a\n", 8) + U32(13) + "IHDR" + U32(64) + U32(48) + std::string("\x08\x02\0\0\0", 5);
  r.info = {{"format", "png"}, {"width", 64}, {"height", 48}, {"bytes", r.data.size()}};
  return r;
}

capabilities::CaptureResult Fix(double lat) {
  capabilities::CaptureResult r;
  r.backend = "gpsd";
  r.mime_type = "application/json";
  r.info = {{"lat", lat}, {"lon", 13.4}, {"source", "gpsd"}};
  return r;
}

class GatewayCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labgate-gwcapture-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Use(kAllCapabilities);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Use(const std::string& toml, ApprovalStore* approvals = nullptr, ArtifactStore* artifacts = nullptr) {
    auto inv = inventory::ParseInventory(toml, "hosts.toml", "/");
    ASSERT_TRUE(inv.ok()) << inv.error().message;
    gateway_ = std::make_unique<Gateway>(std::make_shared<const inventory::Inventory>(*inv), audit_, executor_, clock_,
                                         nullptr, &nodes_, approvals, nullptr, artifacts);
  }

  static CaptureCall Call(const std::string& selector, const std::string& capability, const std::string& action,
                          std::int64_t duration_ms = 0) {
    CaptureCall call;
    call.selector = selector;
    call.request.capability = capability;
    call.request.action = action;
    call.request.duration_ms = duration_ms;
    return call;
  }

  std::vector<nlohmann::json> RecordsOfKind(const std::string& kind) const {
    std::vector<nlohmann::json> out;
    for (const auto& r : storage_.records()) {
      if (r["kind"] == kind) out.push_back(r);
    }
    return out;
  }
  std::vector<std::string> Events() const {
    std::vector<std::string> out;
    for (const auto& r : RecordsOfKind("event")) out.push_back(r["event"]);
    return out;
  }

  // Every refusal in these tests: nothing executed, one refusal record with the rule.
  void ExpectRefused(const CaptureReport& report, const std::string& rule) {
    EXPECT_EQ(report.decision, "refused");
    EXPECT_EQ(report.rule, rule);
    ASSERT_TRUE(report.error);
    EXPECT_TRUE(Contains(report.error->message, "refused by " + rule)) << report.error->message;
    EXPECT_FALSE(report.result);
    EXPECT_TRUE(executor_.captures().empty());
    EXPECT_TRUE(nodes_.captures().empty());
    auto refusals = RecordsOfKind("refusal");
    ASSERT_EQ(refusals.size(), 1u);
    EXPECT_EQ(refusals[0]["decision"]["rule"], rule);
    EXPECT_TRUE(RecordsOfKind("intent").empty());
  }

  std::string dir_;
  fakes::FakeClock clock_;
  fakes::FakeAuditStorage storage_;
  audit::AuditLog audit_{storage_, clock_};
  fakes::FakeExecutor executor_{&storage_};
  fakes::FakeExecutor nodes_{&storage_};
  audit::Actor actor_{"mcp", "test-client", "1.0", "alice", "s1"};
  core::CancelToken cancel_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(GatewayCaptureTest, UnknownTarget_RefusedByInventoryResolve) {
  auto report = gateway_->Capture(actor_, Call("nope", "screen", "snapshot"), cancel_);
  ExpectRefused(report, "inventory.resolve");
  EXPECT_TRUE(Contains(report.error->message, "unknown target 'nope'")) << report.error->message;
  EXPECT_EQ(RecordsOfKind("refusal")[0]["targets"], (nlohmann::json{"nope"}));
}

TEST_F(GatewayCaptureTest, SelectorMatchingTwoTargets_RefusedByInputTarget) {
  Use(std::string(kAllCapabilities) + "[[nodes]]\nid = \"phone\"\ncapabilities = [\"screen\"]\n");
  auto report = gateway_->Capture(actor_, Call("*", "screen", "snapshot"), cancel_);
  ExpectRefused(report, "input.target");
  EXPECT_TRUE(Contains(report.error->message, "matches 2 targets")) << report.error->message;
}

TEST_F(GatewayCaptureTest, TargetWithoutTheCapability_RefusedNothingExecuted) {
  Use("");
  auto report = gateway_->Capture(actor_, Call("local", "screen", "snapshot"), cancel_);
  ExpectRefused(report, "targets.local.capabilities");
  EXPECT_EQ(report.target, "local");
}

TEST_F(GatewayCaptureTest, NotInApprovedNodes_RefusedByThePolicy) {
  Use(std::string(kAllCapabilities) +
      "[[nodes]]\nid = \"phone\"\ncapabilities = [\"camera\"]\n[policies.camera]\napproved_nodes = [\"phone\"]\n");
  auto report = gateway_->Capture(actor_, Call("local", "camera", "snap"), cancel_);
  ExpectRefused(report, "policies.camera.approved_nodes");
}

TEST_F(GatewayCaptureTest, PolicyDisabled_RefusedByThePolicy) {
  Use(std::string(kAllCapabilities) + "[policies.location]\nenabled = false\n");
  auto report = gateway_->Capture(actor_, Call("local", "location", "get"), cancel_);
  ExpectRefused(report, "policies.location.enabled");
}

TEST_F(GatewayCaptureTest, InvalidArguments_RefusedByInputArguments) {
  auto report = gateway_->Capture(actor_, Call("local", "screen", "record", 0), cancel_);
  ExpectRefused(report, "input.arguments");
  EXPECT_TRUE(Contains(report.error->message, "durationMs")) << report.error->message;
}

TEST_F(GatewayCaptureTest, MaxAgeOnScreen_RefusedByInputArguments) {
  CaptureCall call = Call("local", "screen", "snapshot");
  call.max_age_ms = 1000;
  ExpectRefused(gateway_->Capture(actor_, call, cancel_), "input.arguments");
}

TEST_F(GatewayCaptureTest, TimeoutAboveMaximum_Refused) {
  CaptureCall call = Call("local", "screen", "snapshot");
  call.request.timeout_ms = 10LL * 3600 * 1000;
  ExpectRefused(gateway_->Capture(actor_, call, cancel_), "gateway.max_timeout_ms");
}

TEST_F(GatewayCaptureTest, HostWithoutSshTransport_Refused) {
  Use("[[hosts]]\nid = \"maul\"\naddress = \"10.0.0.5\"\ncapabilities = [\"run\", \"screen\"]\n");
  ExpectRefused(gateway_->Capture(actor_, Call("maul", "screen", "snapshot"), cancel_), "gateway.transport");
}

TEST_F(GatewayCaptureTest, RevokedNode_Refused) {
  Use("[[nodes]]\nid = \"phone\"\ncapabilities = [\"camera\"]\n");
  nodes_.state.revoked_at = "2026-11-24T09:30:00.000Z";
  ExpectRefused(gateway_->Capture(actor_, Call("phone", "camera", "snap"), cancel_), "pairing.revoked");
}

TEST_F(GatewayCaptureTest, NodePairedWithoutTheCapability_Refused) {
  Use("[[nodes]]\nid = \"phone\"\ncapabilities = [\"camera\", \"location\"]\n");
  nodes_.state.granted = std::vector<std::string>{"location"};
  ExpectRefused(gateway_->Capture(actor_, Call("phone", "camera", "snap"), cancel_), "pairing.capabilities");
}

TEST_F(GatewayCaptureTest, Node_ExecutedByTheNodeExecutor) {
  Use("[[nodes]]\nid = \"phone\"\ncapabilities = [\"camera\"]\n");
  nodes_.state.granted = std::vector<std::string>{"camera"};
  nodes_.ScriptCapture(Picture());
  auto report = gateway_->Capture(actor_, Call("phone", "camera", "snap"), cancel_);
  ASSERT_FALSE(report.error) << report.error->message;
  EXPECT_EQ(report.via, "node");
  ASSERT_EQ(nodes_.captures().size(), 1u);
  EXPECT_EQ(nodes_.captures()[0].target, "phone");
  EXPECT_TRUE(executor_.captures().empty());
}

TEST_F(GatewayCaptureTest, Snapshot_IntentAuditedBeforeExecution) {
  executor_.ScriptCapture(Picture());
  auto report = gateway_->Capture(actor_, Call("local", "screen", "snapshot"), cancel_);
  ASSERT_FALSE(report.error) << report.error->message;
  EXPECT_EQ(report.decision, "run");
  ASSERT_EQ(executor_.captures().size(), 1u);
  EXPECT_EQ(executor_.captures()[0].audit_lines_before, 1u);
  auto records = storage_.records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["kind"], "intent");
  EXPECT_EQ(records[0]["action"], "screen.snapshot");
  EXPECT_EQ(records[0]["target"], "local");
  EXPECT_EQ(records[0]["payload"]["capability"], "screen");
  EXPECT_EQ(records[1]["kind"], "result");
  EXPECT_EQ(records[0]["actionId"], records[1]["actionId"]);
  EXPECT_EQ(report.action_id, records[0]["actionId"]);
}

TEST_F(GatewayCaptureTest, AuditUnwritable_NothingExecuted) {
  storage_.set_fail(true);
  auto report = gateway_->Capture(actor_, Call("local", "screen", "snapshot"), cancel_);
  ASSERT_TRUE(report.error);
  EXPECT_TRUE(Contains(report.error->message, "audit log could not record the intent")) << report.error->message;
  EXPECT_TRUE(executor_.captures().empty());
}

TEST_F(GatewayCaptureTest, DefaultTimeout_RecordingLengthPlusEncoding) {
  executor_.ScriptCapture(Picture());
  (void)gateway_->Capture(actor_, Call("local", "screen", "record", 2000), cancel_);
  ASSERT_EQ(executor_.captures().size(), 1u);
  EXPECT_EQ(executor_.captures()[0].request.timeout_ms, 2000 + 30000);
  EXPECT_EQ(storage_.records()[0]["payload"]["timeoutMs"], 2000 + 30000);
}

TEST_F(GatewayCaptureTest, Result_RecordHasDigestOfTheDataAndTheArtifactUri) {
  ArtifactStore artifacts(dir_ + "/artifacts", 1 << 20, std::chrono::seconds(3600), clock_);
  Use(kAllCapabilities, nullptr, &artifacts);
  const auto picture = Picture();
  executor_.ScriptCapture(picture);
  auto report = gateway_->Capture(actor_, Call("local", "screen", "snapshot"), cancel_);
  ASSERT_FALSE(report.error) << report.error->message;
  ASSERT_TRUE(report.artifact);
  auto results = RecordsOfKind("result");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0]["outputDigest"], "sha256:" + core::Sha256Hex(picture.data));
  EXPECT_EQ(results[0]["stdoutBytes"], picture.data.size());
  EXPECT_EQ(results[0]["exitCode"], 0);
  EXPECT_EQ(results[0]["artifact"], report.artifact->Uri());
  auto stored = artifacts.Read(report.artifact->id);
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  EXPECT_EQ(stored->second, picture.data);
  EXPECT_EQ(stored->first.target, "local");
  EXPECT_EQ(stored->first.action, "screen.snapshot");
}

TEST_F(GatewayCaptureTest, ResultWithoutArtifactStore_NoArtifact) {
  executor_.ScriptCapture(Picture());
  auto report = gateway_->Capture(actor_, Call("local", "screen", "snapshot"), cancel_);
  ASSERT_FALSE(report.error) << report.error->message;
  EXPECT_FALSE(report.artifact);
  EXPECT_FALSE(RecordsOfKind("result")[0].contains("artifact"));
  ASSERT_TRUE(report.result);
  EXPECT_EQ(report.result->data, Picture().data);
}

TEST_F(GatewayCaptureTest, Location_DigestOfTheFix) {
  executor_.ScriptCapture(Fix(52.5));
  auto report = gateway_->Capture(actor_, Call("local", "location", "get"), cancel_);
  ASSERT_FALSE(report.error) << report.error->message;
  EXPECT_EQ(RecordsOfKind("result")[0]["outputDigest"], "sha256:" + core::Sha256Hex(Fix(52.5).info.dump()));
}

TEST_F(GatewayCaptureTest, ExecutorFails_ErrorRecordedAsTimedOut) {
  executor_.ScriptCapture(core::MakeError(ErrorCode::kTimeout, "no location fix from gpsd on local within 30000 ms"));
  auto report = gateway_->Capture(actor_, Call("local", "location", "get"), cancel_);
  ASSERT_TRUE(report.error);
  EXPECT_EQ(report.error->code, ErrorCode::kTimeout);
  EXPECT_FALSE(report.result);
  auto results = RecordsOfKind("result");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0]["timedOut"], true);
  EXPECT_EQ(results[0]["error"], report.error->message);
}

TEST_F(GatewayCaptureTest, LocationMaxAge_SecondCallWithinMaxAgeCached) {
  CaptureCall call = Call("local", "location", "get");
  call.max_age_ms = 60000;
  executor_.ScriptCapture(Fix(52.5));
  auto first = gateway_->Capture(actor_, call, cancel_);
  ASSERT_FALSE(first.error) << first.error->message;
  EXPECT_EQ(first.decision, "run");
  ASSERT_EQ(executor_.captures().size(), 1u);

  clock_.Advance(milliseconds(30000));
  auto second = gateway_->Capture(actor_, call, cancel_);
  ASSERT_FALSE(second.error) << second.error->message;
  EXPECT_EQ(second.decision, "cached");
  EXPECT_EQ(executor_.captures().size(), 1u);
  ASSERT_TRUE(second.result);
  EXPECT_EQ(second.result->info["lat"], 52.5);
  ASSERT_TRUE(second.age_ms);
  EXPECT_EQ(*second.age_ms, 30000);
  EXPECT_EQ(Events(), (std::vector<std::string>{"location.cached"}));
  EXPECT_EQ(RecordsOfKind("intent").size(), 1u);
}

TEST_F(GatewayCaptureTest, LocationMaxAge_OlderFixExecutesAgain) {
  CaptureCall call = Call("local", "location", "get");
  call.max_age_ms = 60000;
  executor_.ScriptCapture(Fix(52.5));
  executor_.ScriptCapture(Fix(48.1));
  ASSERT_FALSE(gateway_->Capture(actor_, call, cancel_).error);
  clock_.Advance(milliseconds(60001));
  auto again = gateway_->Capture(actor_, call, cancel_);
  ASSERT_FALSE(again.error) << again.error->message;
  EXPECT_EQ(again.decision, "run");
  EXPECT_EQ(executor_.captures().size(), 2u);
  EXPECT_EQ(again.result->info["lat"], 48.1);
  EXPECT_TRUE(Events().empty());
}

TEST_F(GatewayCaptureTest, LocationWithoutMaxAge_AlwaysExecutes) {
  executor_.ScriptCapture(Fix(52.5));
  executor_.ScriptCapture(Fix(52.6));
  ASSERT_FALSE(gateway_->Capture(actor_, Call("local", "location", "get"), cancel_).error);
  auto second = gateway_->Capture(actor_, Call("local", "location", "get"), cancel_);
  ASSERT_FALSE(second.error) << second.error->message;
  EXPECT_EQ(second.decision, "run");
  EXPECT_EQ(executor_.captures().size(), 2u);
}

TEST_F(GatewayCaptureTest, ConfirmHumanAccepts_RunsOnce) {
  Use(std::string(kAllCapabilities) + "[policies.screen]\nconfirm = true\n");
  fakes::FakeConfirmer human(Kind::kAccept);
  executor_.ScriptCapture(Picture());
  auto report = gateway_->Capture(actor_, Call("local", "screen", "record", 1500), cancel_, nullptr, &human);
  ASSERT_FALSE(report.error) << report.error->message;
  EXPECT_EQ(report.decision, "confirmed");
  EXPECT_EQ(report.approver, "fake human");
  EXPECT_EQ(executor_.captures().size(), 1u);
  ASSERT_EQ(human.questions().size(), 1u);
  EXPECT_EQ(human.questions()[0].rule, "policies.screen.confirm");
  EXPECT_EQ(human.questions()[0].targets, (std::vector<std::string>{"local"}));
  EXPECT_TRUE(Contains(human.questions()[0].command, "screen record for 1500 ms")) << human.questions()[0].command;
  EXPECT_EQ(RecordsOfKind("intent")[0]["approver"], "fake human");
}

TEST_F(GatewayCaptureTest, ConfirmHumanDeclines_RefusedNothingExecuted) {
  Use(std::string(kAllCapabilities) + "[policies.screen]\nconfirm = true\n");
  fakes::FakeConfirmer human(Kind::kDecline);
  auto report = gateway_->Capture(actor_, Call("local", "screen", "snapshot"), cancel_, nullptr, &human);
  EXPECT_EQ(report.decision, "refused");
  ASSERT_TRUE(report.error);
  EXPECT_EQ(report.error->code, ErrorCode::kRefused);
  EXPECT_TRUE(Contains(report.error->message, "confirmation.declined")) << report.error->message;
  EXPECT_TRUE(executor_.captures().empty());
  auto refusals = RecordsOfKind("refusal");
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0]["decision"]["rule"], "confirmation.declined");
  EXPECT_TRUE(RecordsOfKind("intent").empty());
}

TEST_F(GatewayCaptureTest, ConfirmNoHumanNoStore_FailsClosed) {
  Use(std::string(kAllCapabilities) + "[policies.camera]\nconfirm = true\n");
  auto report = gateway_->Capture(actor_, Call("local", "camera", "snap"), cancel_);
  EXPECT_EQ(report.decision, "refused");
  ASSERT_TRUE(report.error);
  EXPECT_TRUE(Contains(report.error->message, "no human can confirm it")) << report.error->message;
  EXPECT_TRUE(executor_.captures().empty());
}

TEST_F(GatewayCaptureTest, ConfirmNoHumanWithApprovalStore_ApprovalPending) {
  ApprovalStore approvals(dir_, clock_, std::chrono::seconds(900));
  Use(std::string(kAllCapabilities) + "[policies.camera]\nconfirm = true\n", &approvals);
  auto report = gateway_->Capture(actor_, Call("local", "camera", "snap"), cancel_);
  EXPECT_EQ(report.decision, "approval-pending");
  EXPECT_FALSE(report.approval_id.empty());
  ASSERT_TRUE(report.error);
  EXPECT_TRUE(Contains(report.error->message, "labgate approvals approve " + report.approval_id))
      << report.error->message;
  EXPECT_TRUE(executor_.captures().empty());
  EXPECT_EQ(Events(), (std::vector<std::string>{"approval.requested"}));
}

TEST_F(GatewayCaptureTest, ApprovedCapture_RunsOnceOnRepeat) {
  ApprovalStore approvals(dir_, clock_, std::chrono::seconds(900));
  Use(std::string(kAllCapabilities) + "[policies.camera]\nconfirm = true\n", &approvals);
  const std::string id = gateway_->Capture(actor_, Call("local", "camera", "snap"), cancel_).approval_id;
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(approvals.Decide(id, true, "bob").ok());

  executor_.ScriptCapture(Picture());
  auto approved = gateway_->Capture(actor_, Call("local", "camera", "snap"), cancel_);
  ASSERT_FALSE(approved.error) << approved.error->message;
  EXPECT_EQ(approved.decision, "confirmed");
  EXPECT_EQ(approved.approval_id, id);
  EXPECT_EQ(executor_.captures().size(), 1u);

  auto third = gateway_->Capture(actor_, Call("local", "camera", "snap"), cancel_);
  EXPECT_EQ(third.decision, "approval-pending");
  EXPECT_EQ(executor_.captures().size(), 1u);
}

TEST_F(GatewayCaptureTest, ApprovalForOneCapture_DoesNotCoverOtherArguments) {
  ApprovalStore approvals(dir_, clock_, std::chrono::seconds(900));
  Use(std::string(kAllCapabilities) + "[policies.camera]\nconfirm = true\n", &approvals);
  const std::string id = gateway_->Capture(actor_, Call("local", "camera", "snap"), cancel_).approval_id;
  ASSERT_TRUE(approvals.Decide(id, true, "bob").ok());
  CaptureCall other = Call("local", "camera", "snap");
  other.request.facing = "front";
  auto report = gateway_->Capture(actor_, other, cancel_);
  EXPECT_EQ(report.decision, "approval-pending");
  EXPECT_NE(report.approval_id, id);
  EXPECT_TRUE(executor_.captures().empty());
}

TEST_F(GatewayCaptureTest, RecordTakingOverASecond_ProgressReported) {
  executor_.set_capture_delay(milliseconds(1200));
  executor_.ScriptCapture(Picture());
  std::mutex mutex;
  std::vector<std::pair<std::int64_t, std::int64_t>> ticks;
  auto report = gateway_->Capture(actor_, Call("local", "screen", "record", 1000), cancel_,
                                  [&](std::int64_t elapsed, std::int64_t total) {
                                    std::lock_guard<std::mutex> lock(mutex);
                                    ticks.emplace_back(elapsed, total);
                                  });
  ASSERT_FALSE(report.error) << report.error->message;
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_GE(ticks.size(), 2u);
  for (std::size_t i = 0; i < ticks.size(); ++i) {
    EXPECT_EQ(ticks[i].second, 1000);
    EXPECT_LE(ticks[i].first, 1000);
    if (i > 0) {
      EXPECT_GE(ticks[i].first, ticks[i - 1].first);
    }
  }
}

TEST_F(GatewayCaptureTest, SnapshotTakingOverHalfASecond_NoProgress) {
  executor_.set_capture_delay(milliseconds(600));  // past the first 500 ms tick a recording would get
  executor_.ScriptCapture(Picture());
  std::atomic<int> ticks{0};
  auto report = gateway_->Capture(actor_, Call("local", "screen", "snapshot"), cancel_,
                                  [&](std::int64_t, std::int64_t) { ++ticks; });
  ASSERT_FALSE(report.error) << report.error->message;
  EXPECT_EQ(ticks.load(), 0);
}

}  // namespace
}  // namespace labgate::gateway
