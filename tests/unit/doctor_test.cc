// labgate doctor's checks as functions over plain values: inventory, pairing records, probe
// results, audit records, the clock.
#include "gateway/doctor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fakes/fakes.h"

namespace labgate::gateway {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using Status = ReachProbe::Status;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool AnyDetail(const DoctorItem& item, const std::string& part) {
  for (const auto& d : item.details) {
    if (Contains(d, part)) return true;
  }
  return false;
}

inventory::Inventory Inv(const std::string& toml) {
  auto inv = inventory::ParseInventory(toml, "hosts.toml", "/");
  EXPECT_TRUE(inv.ok()) << inv.error().message;
  return inv.ok() ? *inv : inventory::Inventory{};
}

const nodes::TimePoint kPaired = nodes::TimePoint(seconds(1790000000));

nodes::NodeRecord Node(const std::string& id, const std::string& fingerprint = "SHA256:alphakey") {
  nodes::NodeRecord r;
  r.id = id;
  r.key = {"ssh-ed25519", "AAAA", fingerprint};
  r.capabilities = {"run"};
  r.device = {"linux-x86_64", id + "-host", "0.1.0"};
  r.paired_at = kPaired;
  return r;
}

constexpr char kAlpha[] = "[[nodes]]\nid = \"alpha\"\ncapabilities = [\"run\"]\n";

// ---------------------------------------------------------------------------------------------
// pairing

TEST(DoctorPairing, ListedAndPaired_Passes) {
  auto item = CheckPairing(Inv(kAlpha), {Node("alpha")}, {});
  EXPECT_EQ(item.id, "pairing");
  EXPECT_TRUE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "alpha: paired as SHA256:alphakey"));
  EXPECT_EQ(item.next, "");
}

TEST(DoctorPairing, ListedNeverPaired_FailsMissing) {
  auto item = CheckPairing(Inv(kAlpha), {}, {});
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "alpha: missing: listed in hosts.toml:1"));
  EXPECT_TRUE(Contains(item.next, "labgate pair new --node alpha"));
}

TEST(DoctorPairing, PairedNotListed_FailsUnexpected) {
  auto item = CheckPairing(Inv(kAlpha), {Node("alpha"), Node("stray", "SHA256:straykey")}, {});
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "stray: unexpected: paired as SHA256:straykey"));
  EXPECT_TRUE(Contains(item.next, "labgate nodes revoke stray"));
}

TEST(DoctorPairing, RevokedNotListed_Passes) {
  auto stray = Node("stray", "SHA256:straykey");
  stray.revoked_at = kPaired + hours(1);
  EXPECT_TRUE(CheckPairing(Inv(kAlpha), {Node("alpha"), stray}, {}).ok);
}

TEST(DoctorPairing, PinnedFingerprintDiffers_FailsChanged) {
  auto item = CheckPairing(Inv(std::string(kAlpha) + "key_fingerprint = \"SHA256:pinned\"\n"), {Node("alpha")}, {});
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "alpha: fingerprint changed: hosts.toml:1 pins SHA256:pinned, the pairing store holds "
                              "SHA256:alphakey"));
  EXPECT_TRUE(Contains(item.next, "key_fingerprint = \"SHA256:alphakey\""));
  EXPECT_TRUE(Contains(item.next, "labgate nodes revoke alpha"));
}

TEST(DoctorPairing, PinnedFingerprintMatches_Passes) {
  auto item = CheckPairing(Inv(std::string(kAlpha) + "key_fingerprint = \"SHA256:alphakey\"\n"), {Node("alpha")}, {});
  EXPECT_TRUE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "the fingerprint hosts.toml pins"));
}

TEST(DoctorPairing, PendingRequest_ListedWithoutFailing) {
  nodes::PendingPairing p{"alpha", {"ssh-ed25519", "AAAA", "SHA256:asking"}, {"run"}, {"android", "pixel", "0.1"}, kPaired};
  auto item = CheckPairing(Inv(kAlpha), {Node("alpha")}, {p});
  EXPECT_TRUE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "pending request: alpha (SHA256:asking"));
}

// ---------------------------------------------------------------------------------------------
// remote-exec

ReachProbe Answered(const std::string& id, const std::string& kind = "host") {
  return {id, kind, Status::kAnswered, 12, ""};
}
ReachProbe Failed(const std::string& id) { return {id, "host", Status::kFailed, 0, "connection refused"}; }

TEST(DoctorRemoteExec, NoTargetAnswered_Fails) {
  auto item = CheckRemoteExec({Failed("box")}, "uname -n");
  EXPECT_EQ(item.id, "remote-exec");
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "box (host): FAILED: connection refused"));
  EXPECT_TRUE(Contains(item.next, "no target answered"));
}

TEST(DoctorRemoteExec, OneTargetAnswered_FailsNamingTheFailure) {
  auto item = CheckRemoteExec({Answered("local", "local"), Failed("box")}, "uname -n");
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "local: ok in 12 ms"));
  EXPECT_TRUE(AnyDetail(item, "box (host): FAILED"));
  EXPECT_TRUE(Contains(item.next, "only local answered"));
}

TEST(DoctorRemoteExec, TwoTargetsAnswered_Passes) {
  ReachProbe offline{"alpha", "node", Status::kOffline, 0, "offline (last seen never)"};
  auto item = CheckRemoteExec({Answered("local", "local"), Answered("box"), Failed("other"), offline}, "uname -n");
  EXPECT_TRUE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "probe `uname -n` (read-only) on 3 targets"));
  EXPECT_TRUE(AnyDetail(item, "alpha (node): not asked: offline"));
  // A listed target that failed is a warning of a passing item; an offline node is not.
  ASSERT_EQ(item.warnings.size(), 1u);
  EXPECT_TRUE(Contains(item.warnings[0], "other did not answer"));
  DoctorReport report;
  report.items.push_back(item);
  EXPECT_TRUE(Contains(DoctorReportText(report, "doctor"), "doctor: all 1 checks passed, with 1 warning"));
  EXPECT_EQ(DoctorReportJson(report)["warnings"], 1);
}

TEST(DoctorReachable, AnyFailureOrOfflineNode_Fails) {
  EXPECT_TRUE(CheckReachable({Answered("box")}, "uname -n").ok);
  EXPECT_FALSE(CheckReachable({Answered("box"), Failed("nas")}, "uname -n").ok);
  ReachProbe offline{"alpha", "node", Status::kOffline, 0, "never paired"};
  auto item = CheckReachable({Answered("box"), offline}, "uname -n");
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(Contains(item.next, "labgate node run"));
  ReachProbe skipped{"alpha", "node", Status::kSkipped, 0, "no gateway running"};
  EXPECT_TRUE(CheckReachable({Answered("box"), skipped}, "uname -n").ok);
}

// ---------------------------------------------------------------------------------------------
// keys

DocLookup Doc() { return DocLookup{"/usr/share/doc/labgate/key-rotation.md", {"/usr/share/doc/labgate/key-rotation.md"}}; }

TEST(DoctorKeys, KeyExactlyAtTheLimit_Passes) {
  const DocLookup doc = Doc();
  auto item = CheckKeys(Inv(kAlpha), {Node("alpha")}, kPaired + hours(24 * 90), &doc);
  EXPECT_EQ(item.id, "keys");
  EXPECT_TRUE(item.ok) << item.details[0];
  EXPECT_TRUE(AnyDetail(item, "alpha: key SHA256:alphakey is 90 days old"));
  EXPECT_TRUE(AnyDetail(item, "how to rotate and revoke, step by step: /usr/share/doc/labgate/key-rotation.md"));
}

TEST(DoctorKeys, KeyOneSecondPastTheLimit_FailsWithRotate) {
  const DocLookup doc = Doc();
  auto item = CheckKeys(Inv(kAlpha), {Node("alpha")}, kPaired + hours(24 * 90) + seconds(1), &doc);
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "key of alpha is 90 days old"));
  EXPECT_TRUE(Contains(item.next, "labgate nodes rotate alpha"));
}

TEST(DoctorKeys, LimitComesFromTheInventory) {
  auto inv = Inv(std::string("[gateway]\nkey_max_age_days = 30\n") + kAlpha);
  EXPECT_FALSE(CheckKeys(inv, {Node("alpha")}, kPaired + hours(24 * 31), nullptr).ok);
}

TEST(DoctorKeys, RotationRestartsTheAge) {
  auto alpha = Node("alpha");
  alpha.rotated_at = kPaired + hours(24 * 300);
  auto item = CheckKeys(Inv(kAlpha), {alpha}, kPaired + hours(24 * 310), nullptr);
  EXPECT_TRUE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "is 10 days old"));
}

TEST(DoctorKeys, RevokedButStillListed_Fails) {
  auto alpha = Node("alpha");
  alpha.revoked_at = kPaired + hours(1);
  auto item = CheckKeys(Inv(kAlpha), {alpha}, kPaired + hours(2), nullptr);
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "alpha: revoked at"));
  EXPECT_TRUE(AnyDetail(item, "still listed as [[nodes]] in hosts.toml:1"));
  EXPECT_TRUE(Contains(item.next, "labgate hosts remove alpha"));
}

TEST(DoctorKeys, RevokedAndNotListed_Passes) {
  auto stray = Node("stray");
  stray.revoked_at = kPaired + hours(1);
  EXPECT_TRUE(CheckKeys(Inv(""), {stray}, kPaired + hours(24 * 400), nullptr).ok);
}

TEST(DoctorKeys, RotationGuideMissing_FailsNamingWhereItLooked) {
  const DocLookup doc{std::nullopt, {"/opt/share/doc/labgate/key-rotation.md", "/src/docs/key-rotation.md"}};
  auto item = CheckKeys(Inv(""), {}, kPaired, &doc);
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "looked in /opt/share/doc/labgate/key-rotation.md and /src/docs/key-rotation.md"));
}

TEST(DoctorKeys, DocCandidates_InstalledCopyFirstThenSources) {
  EXPECT_EQ(KeyRotationDocCandidates("/usr/local/bin/labgate", "/src/labgate"),
            (std::vector<std::string>{"/usr/local/share/doc/labgate/key-rotation.md", "/src/labgate/docs/key-rotation.md"}));
  EXPECT_EQ(KeyRotationDocCandidates("", ""), std::vector<std::string>{});
}

// ---------------------------------------------------------------------------------------------
// audit

class DoctorAudit : public ::testing::Test {
 protected:
  audit::Intent RunIntent(const std::string& id) {
    audit::Intent i;
    i.action_id = id;
    i.actor = {"cli", "labgate-cli", "0.1.0", "ops", ""};
    i.target = "box";
    i.path = "ssh";
    i.action = "run";
    i.payload = {{"argv", {"uname", "-n"}}, {"cwd", nullptr}};
    i.decision = {true, "mode.full", "allowed", "read-only"};
    return i;
  }
  audit::Outcome RunOutcome(const std::string& id) {
    audit::Outcome o;
    o.action_id = id;
    o.target = "box";
    o.path = "ssh";
    o.action = "run";
    o.exit_code = 0;
    o.duration_ms = 5;
    return o;
  }
  AuditFieldCheck Fields() {
    AuditFieldCheck fields;
    for (const auto& r : storage_.records()) fields.Add(r);
    return fields;
  }
  audit::VerifyReport Intact() {
    audit::VerifyReport v;
    v.ok = true;
    v.records = storage_.lines().size();
    v.files = {"/state/audit.jsonl"};
    v.last_seq = v.records;
    return v;
  }

  fakes::FakeClock clock_;
  fakes::FakeAuditStorage storage_;
  audit::AuditLog log_{storage_, clock_};
};

TEST_F(DoctorAudit, CompleteRecordsAndIntactChain_Pass) {
  ASSERT_TRUE(log_.Append(audit::EncodeIntent(RunIntent("act-1"))).ok());
  ASSERT_TRUE(log_.Append(audit::EncodeOutcome(RunOutcome("act-1"))).ok());
  ASSERT_TRUE(log_.Append(audit::EncodeEvent({"node.paired", {"agent", "", "", "", ""}, "alpha", {}})).ok());
  auto item = CheckAudit("/state/audit.jsonl", Intact(), Fields());
  EXPECT_EQ(item.id, "audit");
  EXPECT_TRUE(item.ok) << item.next;
  EXPECT_TRUE(AnyDetail(item, "chain verifies: 3 records in 1 file"));
  EXPECT_TRUE(AnyDetail(item, "action records: 1 intents, 1 results"));
}

TEST_F(DoctorAudit, CopiesThatDoNotGetThrough_Fail) {
  ASSERT_TRUE(log_.Append(audit::EncodeIntent(RunIntent("act-1"))).ok());
  ASSERT_TRUE(log_.Append(audit::EncodeOutcome(RunOutcome("act-1"))).ok());
  std::vector<audit::AuditForwarder::Health> copies = {
      {"syslog tcp:logs.lan:514", 2, 0, 0, false, ""},
      {"journald /run/systemd/journal/socket", 0, 0, 2, true, "cannot send to journald: No such file or directory"}};
  auto item = CheckAudit("/state/audit.jsonl", Intact(), Fields(), copies);
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "copies to syslog tcp:logs.lan:514: 2 sent by this check"));
  EXPECT_TRUE(AnyDetail(item, "copies to journald /run/systemd/journal/socket are not getting through: cannot send"));
  EXPECT_NE(item.next.find("is systemd-journald running?"), std::string::npos);
  copies.pop_back();
  EXPECT_TRUE(CheckAudit("/state/audit.jsonl", Intact(), Fields(), copies).ok);
}

TEST_F(DoctorAudit, MissingFields_CountedPerField) {
  ASSERT_TRUE(log_.Append(audit::EncodeIntent(RunIntent("act-1"))).ok());
  auto anonymous = RunIntent("act-2");
  anonymous.actor.via = "";
  anonymous.target = "";
  ASSERT_TRUE(log_.Append(audit::EncodeIntent(anonymous)).ok());
  ASSERT_TRUE(log_.Append(audit::EncodeOutcome(RunOutcome("act-1"))).ok());
  auto no_outcome = RunOutcome("act-2");
  no_outcome.exit_code.reset();
  ASSERT_TRUE(log_.Append(audit::EncodeOutcome(no_outcome)).ok());
  ASSERT_TRUE(log_.Append(audit::EncodeOutcome(RunOutcome("act-orphan"))).ok());
  auto fields = Fields();
  EXPECT_EQ(fields.intents(), 2u);
  EXPECT_EQ(fields.results(), 3u);
  auto item = CheckAudit("/state/audit.jsonl", Intact(), fields);
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "1 of 2 intents lack who"));
  EXPECT_TRUE(AnyDetail(item, "1 of 2 intents lack target"));
  EXPECT_TRUE(AnyDetail(item, "1 of 3 results lack exit code or outcome"));
  EXPECT_TRUE(AnyDetail(item, "1 of 3 results lack who (no intent with its actionId)"));
  EXPECT_FALSE(AnyDetail(item, "payload"));
}

TEST_F(DoctorAudit, FailedRunWithoutExitCode_HasAnOutcome) {
  ASSERT_TRUE(log_.Append(audit::EncodeIntent(RunIntent("act-1"))).ok());
  auto unreachable = RunOutcome("act-1");
  unreachable.exit_code.reset();
  unreachable.error = "connection refused";
  ASSERT_TRUE(log_.Append(audit::EncodeOutcome(unreachable)).ok());
  EXPECT_TRUE(CheckAudit("/state/audit.jsonl", Intact(), Fields()).ok);
}

TEST_F(DoctorAudit, BrokenChain_FailsNamingTheSeq) {
  ASSERT_TRUE(log_.Append(audit::EncodeIntent(RunIntent("act-1"))).ok());
  ASSERT_TRUE(log_.Append(audit::EncodeOutcome(RunOutcome("act-1"))).ok());
  audit::VerifyReport broken = Intact();
  broken.ok = false;
  broken.first_bad_seq = 1;
  broken.message = "audit.jsonl:1: seq 1: hash does not match the record";
  auto item = CheckAudit("/state/audit.jsonl", broken, Fields());
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "chain BROKEN at seq 1: audit.jsonl:1: seq 1: hash does not match"));
  EXPECT_TRUE(AnyDetail(item, "nothing was deleted"));
  EXPECT_TRUE(Contains(item.next, "labgate audit verify"));
}

TEST_F(DoctorAudit, NoActionRecords_Fails) {
  auto item = CheckAudit("/state/audit.jsonl", Intact(), Fields());
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "no run or capture is recorded yet"));
}

TEST_F(DoctorAudit, UnreadableLog_Fails) {
  auto item = CheckAudit("/state/audit.jsonl", core::MakeError(core::ErrorCode::kIo, "permission denied"), Fields());
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "cannot read /state/audit.jsonl: permission denied"));
}

// ---------------------------------------------------------------------------------------------
// capture

LastCapture Snap() {
  return {"local", "camera.snap", "2026-11-24T09:30:00.000Z", 8429, "99f9", "labgate://artifacts/0123"};
}

TEST(DoctorCapture, Remembered_Passes) {
  auto item = CheckCapture(std::optional<LastCapture>(Snap()), nullptr, {"local"}, "");
  EXPECT_EQ(item.id, "capture");
  EXPECT_TRUE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "last worked: camera.snap on local at 2026-11-24T09:30:00.000Z, 8429 bytes"));
  EXPECT_TRUE(AnyDetail(item, "labgate://artifacts/0123"));
}

TEST(DoctorCapture, NoneRemembered_FailsSayingWhatToRun) {
  auto item = CheckCapture(std::optional<LastCapture>(), nullptr, {"local", "box"}, " --config lab.toml");
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(Contains(item.next, "labgate doctor --config lab.toml --capture local"));
  EXPECT_TRUE(Contains(item.next, "local, box"));
}

TEST(DoctorCapture, NoCandidate_SaysToAddACapability) {
  auto item = CheckCapture(std::optional<LastCapture>(), nullptr, {}, "");
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(Contains(item.next, "screen or camera capability"));
}

TEST(DoctorCapture, AttemptFailed_FailsWithItsError) {
  CaptureReport attempt;
  attempt.target = "box";
  attempt.action = "screen.snapshot";
  attempt.error = core::MakeError(core::ErrorCode::kIo, "x11grab: cannot open display :9");
  auto item = CheckCapture(std::optional<LastCapture>(Snap()), &attempt, {"box"}, "");
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "screen.snapshot on box just now FAILED: x11grab: cannot open display :9"));
  EXPECT_TRUE(Contains(item.next, "--capture box"));
}

TEST(DoctorCapture, AttemptWorked_Passes) {
  CaptureReport attempt;
  attempt.target = "local";
  attempt.action = "camera.snap";
  attempt.duration_ms = 230;
  auto item = CheckCapture(std::optional<LastCapture>(Snap()), &attempt, {"local"}, "");
  EXPECT_TRUE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "camera.snap on local just now: ok in 230 ms"));
}

TEST(DoctorCapture, UnreadableMemory_Fails) {
  auto item = CheckCapture(core::MakeError(core::ErrorCode::kParse, "last-capture.json is not a labgate capture record"),
                           nullptr, {"local"}, "");
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "cannot read what the last capture was"));
}

TEST(DoctorCapture, RememberThenRead_RoundTrips) {
  char tmpl[] = "/tmp/labgate-doctor-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = LastCapturePath(tmpl);
  auto none = ReadLastCapture(path);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(RememberLastCapture(path, Snap()).ok());
  auto read = ReadLastCapture(path);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->target, "local");
  EXPECT_EQ((*read)->action, "camera.snap");
  EXPECT_EQ((*read)->bytes, 8429u);
  EXPECT_EQ((*read)->uri, "labgate://artifacts/0123");
  std::ofstream(path) << "[]";
  EXPECT_EQ(ReadLastCapture(path).error().code, core::ErrorCode::kParse);
  std::filesystem::remove_all(tmpl);
}

// ---------------------------------------------------------------------------------------------
// hosts check and the report

TEST(DoctorOwnerPurpose, EntryWithoutOwnerOrPurpose_Fails) {
  auto inv = Inv(
      "[[hosts]]\nid = \"box\"\naddress = \"10.0.0.4\"\nowner = \"homelab\"\npurpose = \"nas\"\n\n"
      "[[nodes]]\nid = \"alpha\"\nowner = \"homelab\"\n");
  auto item = CheckOwnerPurpose(inv);
  EXPECT_EQ(item.id, "owner-purpose");
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "alpha (node, hosts.toml:7) has no purpose"));
  EXPECT_FALSE(AnyDetail(item, "box"));
  EXPECT_TRUE(CheckOwnerPurpose(Inv("[[hosts]]\nid = \"box\"\naddress = \"10.0.0.4\"\nowner = \"o\"\npurpose = \"p\"\n")).ok);
}

TEST(DoctorSandbox, Active_PassesNamingIt) {
  auto item = CheckSandbox(true, "bubblewrap (/usr/bin/bwrap): hidden /var/lib/labgate");
  EXPECT_EQ(item.id, "sandbox");
  EXPECT_TRUE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "sandbox: bubblewrap (/usr/bin/bwrap)"));
  EXPECT_TRUE(item.next.empty());
}

TEST(DoctorSandbox, Absent_FailsAndSaysWhatFollowsAndWhatToDo) {
  auto item = CheckSandbox(false, "none: bubblewrap (bwrap) is not installed");
  EXPECT_FALSE(item.ok);
  EXPECT_TRUE(AnyDetail(item, "is not installed"));
  EXPECT_TRUE(AnyDetail(item, "not read-only waits for a human"));
  EXPECT_NE(item.next.find("apt install bubblewrap"), std::string::npos);
}

TEST(DoctorInventory, FileThatDoesNotLoad_FailsWithEveryError) {
  auto loaded = inventory::ParseInventory("[[hosts]]\nid = \"box\"\nport = \"x\"\n", "lab.toml", "/");
  ASSERT_FALSE(loaded.ok());
  auto item = CheckInventoryLoads("lab.toml", loaded);
  EXPECT_FALSE(item.ok);
  ASSERT_FALSE(item.details.empty());
  EXPECT_TRUE(AnyDetail(item, "lab.toml:"));
  EXPECT_TRUE(CheckInventoryLoads("hosts.toml", Inv(kAlpha)).ok);
}

TEST(DoctorReport, JsonRoundTripAndText) {
  DoctorReport report;
  report.items.push_back({"pairing", "nodes pair", true, {"alpha: paired"}, "", {}});
  report.items.push_back({"keys", "keys are fresh", false, {"key of alpha is 400 days old"}, "run `labgate nodes rotate alpha`", {}});
  EXPECT_FALSE(report.ok());
  auto json = DoctorReportJson(report);
  EXPECT_EQ(json["ok"], false);
  EXPECT_EQ(json["items"][1]["id"], "keys");
  auto back = DoctorReportFromJson(json);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->items.size(), 2u);
  EXPECT_EQ(back->items[1].next, "run `labgate nodes rotate alpha`");
  ASSERT_NE(back->Find("keys"), nullptr);
  EXPECT_FALSE(back->Find("keys")->ok);

  const std::string text = DoctorReportText(report, "doctor");
  EXPECT_TRUE(Contains(text, "PASS pairing  nodes pair\n    alpha: paired\n")) << text;
  EXPECT_TRUE(Contains(text, "FAIL keys     keys are fresh\n    key of alpha is 400 days old\n"
                             "    \u2192 run `labgate nodes rotate alpha`\n"))
      << text;
  EXPECT_TRUE(Contains(text, "doctor: 1 of 2 checks failed: keys\n")) << text;
  EXPECT_FALSE(DoctorReportFromJson(nlohmann::json{{"items", {{{"id", "x"}}}}}).ok());
}

}  // namespace
}  // namespace labgate::gateway
