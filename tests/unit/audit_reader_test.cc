#include "audit/audit_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "audit/audit_log.h"
#include "audit/audit_storage.h"
#include "fakes/fakes.h"

namespace labgate::audit {
namespace {

Intent IntentFor(const std::string& action_id, const std::string& target, bool allowed = true,
                 const std::string& user = "alice", const std::string& client = "claude-code") {
  Intent i;
  i.action_id = action_id;
  i.actor = Actor{"mcp", client, "2.1.0", user, "mcp-" + user};
  i.target = target;
  i.path = "local";
  i.action = "run";
  i.payload = Json{{"argv", {"uname", "-a"}}};
  i.decision = {allowed, allowed ? "targets.local.capabilities" : "policies.run.enabled", "why", ""};
  return i;
}

Outcome OutcomeFor(const std::string& action_id, const std::string& target, int exit_code = 0) {
  Outcome o;
  o.action_id = action_id;
  o.target = target;
  o.path = "local";
  o.action = "run";
  o.exit_code = exit_code;
  o.duration_ms = 12;
  return o;
}

std::vector<std::string> Lines(const std::string& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void WriteLines(const std::string& file, const std::vector<std::string>& lines) {
  std::ofstream out(file, std::ios::trunc);
  for (const auto& l : lines) out << l << "\n";
}

std::string ReadFile(const std::string& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AuditLogFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labgate-audit-reader-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/audit.jsonl";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Appends `n` records (intent/result pairs) through the real file storage.
  void Append(int n, std::uint64_t max_bytes = FileAuditStorage::kDefaultMaxBytes) {
    FileAuditStorage storage(path_, max_bytes);
    AuditLog log(storage, clock_);
    for (int k = 0; k < n; ++k) {
      const std::string id = "act-" + std::to_string(next_++);
      Json body = k % 2 == 0 ? EncodeIntent(IntentFor(id, "local")) : EncodeOutcome(OutcomeFor(id, "local"));
      ASSERT_TRUE(log.Append(body, k % 2 == 0 ? Durability::kSynced : Durability::kSoon).ok());
      clock_.Advance(std::chrono::seconds(1));
    }
  }
  VerifyReport Verify() {
    auto report = VerifyChain(path_);
    EXPECT_TRUE(report.ok()) << report.error().message;
    return report.ok() ? *report : VerifyReport{};
  }

  std::string dir_;
  std::string path_;
  fakes::FakeClock clock_;
  int next_ = 1;
};

using AuditVerify = AuditLogFiles;
using AuditRotation = AuditLogFiles;
using AuditHeadFile = AuditLogFiles;
using AuditTail = AuditLogFiles;
using AuditFollow = AuditLogFiles;

TEST_F(AuditVerify, IntactLog_IsOk) {
  Append(10);
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.records, 10u);
  EXPECT_EQ(r.files, std::vector<std::string>{path_});
  EXPECT_EQ(r.last_seq, 10u);
  EXPECT_EQ(r.last_hash, Json::parse(Lines(path_).back())["hash"]);
  EXPECT_FALSE(r.first_bad_seq.has_value());
  EXPECT_TRUE(r.warnings.empty());
}

TEST_F(AuditVerify, NoLogAtAll_IsOkWithNothingChecked) {
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.records, 0u);
  EXPECT_TRUE(r.files.empty());
}

TEST_F(AuditVerify, EditedRecord_ReportsItsSeq) {
  Append(10);
  auto lines = Lines(path_);
  Json edited = Json::parse(lines[3]);
  edited["payload"]["argv"] = {"rm", "-rf", "/"};
  lines[3] = edited.dump();
  WriteLines(path_, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 4u);
  EXPECT_NE(r.message.find("changed after it was written"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("line 4 of " + path_), std::string::npos) << r.message;
}

TEST_F(AuditVerify, DeletedRecord_ReportsTheMissingSeq) {
  Append(10);
  auto lines = Lines(path_);
  lines.erase(lines.begin() + 4);  // seq 5
  WriteLines(path_, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 5u);
  EXPECT_NE(r.message.find("record 5 is missing"), std::string::npos) << r.message;
}

TEST_F(AuditVerify, DeletedFirstRecord_ReportsSeq1) {
  Append(4);
  auto lines = Lines(path_);
  lines.erase(lines.begin());
  WriteLines(path_, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 1u);
  EXPECT_NE(r.message.find("the chain starts at seq 2"), std::string::npos) << r.message;
}

TEST_F(AuditVerify, ReorderedRecords_ReportTheFirstSeqOutOfPlace) {
  Append(10);
  auto lines = Lines(path_);
  std::swap(lines[4], lines[5]);  // seq 5 and 6
  WriteLines(path_, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 5u);
  EXPECT_NE(r.message.find("out of order"), std::string::npos) << r.message;
}

TEST_F(AuditVerify, RepeatedRecord_IsOutOfOrder) {
  Append(6);
  auto lines = Lines(path_);
  lines.insert(lines.begin() + 3, lines[2]);  // seq 3 twice
  WriteLines(path_, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 4u);
  EXPECT_NE(r.message.find("out of order or repeated"), std::string::npos) << r.message;
}

TEST_F(AuditVerify, LineCutMidRecord_ReportsTheSeqAfterTheLastGoodOne) {
  Append(10);
  const std::string text = ReadFile(path_);
  const std::size_t last_start = text.rfind('\n', text.size() - 2) + 1;
  std::filesystem::resize_file(path_, last_start + 40);  // half of record 10
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 10u);
  EXPECT_NE(r.message.find("record 10 is cut off"), std::string::npos) << r.message;
}

TEST_F(AuditVerify, RecordsCutOffTheEnd_AreFoundThroughTheHead) {
  Append(10);
  auto lines = Lines(path_);
  lines.resize(8);
  WriteLines(path_, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 9u);
  EXPECT_NE(r.message.find("records 9 to 10 are missing from the end"), std::string::npos) << r.message;
}

TEST_F(AuditVerify, WholeLogRemovedButHeadKept_IsBrokenAtSeq1) {
  Append(4);
  std::filesystem::remove(path_);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 1u);
}

TEST_F(AuditVerify, LastRecordResealed_IsCaughtByTheHead) {
  Append(10);
  auto lines = Lines(path_);
  Json body = EncodeIntent(IntentFor("act-forged", "local"));
  auto forged = SealRecord(body, lines[8], "2026-11-18T11:07:00.000Z");
  ASSERT_TRUE(forged.ok());
  lines[9] = *forged;  // a valid link in the chain, but not the record the head names
  WriteLines(path_, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 10u);
  EXPECT_NE(r.message.find("replaced"), std::string::npos) << r.message;
}

TEST_F(AuditVerify, MissingHead_IsAWarningNotAFailure) {
  Append(3);
  std::filesystem::remove(HeadPath(path_));
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.message;
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("no head file"), std::string::npos);
}

TEST_F(AuditVerify, HeadOneBehindWithTheRightHash_IsAWarning) {
  Append(5);
  Json fourth = Json::parse(Lines(path_)[3]);
  std::ofstream(HeadPath(path_), std::ios::trunc) << EncodeHead({4, fourth["hash"]});
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.message;
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("names seq 4"), std::string::npos) << r.warnings[0];
}

TEST_F(AuditVerify, HeadBehindWithAnotherHash_IsBroken) {
  Append(5);
  std::ofstream(HeadPath(path_), std::ios::trunc) << EncodeHead({4, std::string(64, 'a')});
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 4u);
}

TEST_F(AuditVerify, GarbledHead_IsBroken) {
  Append(2);
  std::ofstream(HeadPath(path_), std::ios::trunc) << "not a head\n";
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("not a labgate audit head file"), std::string::npos) << r.message;
}

TEST_F(AuditVerify, UnknownFormatVersion_FailsLoudlyAtThatSeq) {
  Append(3);
  auto lines = Lines(path_);
  Json third = Json::parse(lines[2]);
  third["v"] = 99;
  third["hash"] = RecordHash(third);
  lines[2] = third.dump();
  WriteLines(path_, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 3u);
  EXPECT_NE(r.message.find("unknown format version v=99"), std::string::npos) << r.message;
}

TEST_F(AuditVerify, NotJson_IsBrokenAtTheExpectedSeq) {
  Append(3);
  auto lines = Lines(path_);
  lines[1] = "hello";
  WriteLines(path_, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 2u);
}

TEST_F(AuditVerify, NeverChangesAFile) {
  Append(6);
  auto lines = Lines(path_);
  lines.erase(lines.begin() + 2);
  WriteLines(path_, lines);
  const std::string log_before = ReadFile(path_);
  const std::string head_before = ReadFile(HeadPath(path_));
  (void)Verify();
  EXPECT_EQ(ReadFile(path_), log_before);
  EXPECT_EQ(ReadFile(HeadPath(path_)), head_before);
}

// --- the head file ----------------------------------------------------------------------------

TEST_F(AuditHeadFile, IsFixedWidthAndNamesTheLastRecord) {
  Append(3);
  EXPECT_EQ(std::filesystem::file_size(HeadPath(path_)), kHeadSize);
  auto head = ParseHead(ReadFile(HeadPath(path_)));
  ASSERT_TRUE(head.has_value());
  Json last = Json::parse(Lines(path_).back());
  EXPECT_EQ(head->seq, 3u);
  EXPECT_EQ(head->hash, last["hash"]);
  EXPECT_EQ(std::filesystem::status(HeadPath(path_)).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(AuditHeadFile, EncodeAndParseRoundTrip) {
  AuditHead head{18446744073709551615ULL, std::string(64, 'f')};
  std::string bytes = EncodeHead(head);
  EXPECT_EQ(bytes.size(), kHeadSize);
  EXPECT_EQ(bytes.back(), '\n');
  auto back = ParseHead(bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->seq, head.seq);
  EXPECT_EQ(back->hash, head.hash);
  EXPECT_FALSE(ParseHead("{\"seq\":1}").has_value());
  EXPECT_FALSE(ParseHead("garbage").has_value());
}

TEST_F(AuditHeadFile, AppendAfterRecordsWereCutOffTheEnd_IsRefusedAndKeepsTheEvidence) {
  Append(6);
  auto lines = Lines(path_);
  lines.resize(4);
  WriteLines(path_, lines);
  const std::string head_before = ReadFile(HeadPath(path_));
  FileAuditStorage storage(path_);
  AuditLog log(storage, clock_);
  auto st = log.Append(EncodeIntent(IntentFor("act-x", "local")));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("ends at seq 4"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("reached seq 6"), std::string::npos) << st.error().message;
  EXPECT_EQ(Lines(path_).size(), 4u);
  EXPECT_EQ(ReadFile(HeadPath(path_)), head_before);
}

TEST_F(AuditHeadFile, LogWithoutHead_GetsOneOnTheNextAppend) {
  Append(2);
  std::filesystem::remove(HeadPath(path_));
  Append(1);
  auto head = ParseHead(ReadFile(HeadPath(path_)));
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->seq, 3u);
  EXPECT_TRUE(Verify().ok);
}

// --- files and rotation -----------------------------------------------------------------------

TEST_F(AuditRotation, FilesAreListedOldestFirstThenThePath) {
  for (const char* name : {"audit.jsonl", "audit.jsonl.10", "audit.jsonl.2", "audit.jsonl.1", "audit.jsonl.head",
                           "audit.jsonl.lock", "audit.jsonl.01", "audit.jsonl.x", "other.jsonl.3"}) {
    std::ofstream(dir_ + "/" + name) << "";
  }
  EXPECT_EQ(AuditFiles(path_), (std::vector<std::string>{path_ + ".1", path_ + ".2", path_ + ".10", path_}));
  EXPECT_EQ(RotatedIndices(path_), (std::vector<std::uint64_t>{1, 2, 10}));
}

TEST_F(AuditRotation, TinyMaxBytes_MakesSeveralFilesAndOneChain) {
  Append(60, 4096);
  auto files = AuditFiles(path_);
  ASSERT_GE(files.size(), 3u);
  EXPECT_EQ(files.back(), path_);
  for (std::size_t k = 0; k + 1 < files.size(); ++k) {
    EXPECT_EQ(files[k], path_ + "." + std::to_string(k + 1));
    EXPECT_LE(std::filesystem::file_size(files[k]), 4096u) << files[k];
    // The next file's first record links to this file's last one.
    Json last = Json::parse(Lines(files[k]).back());
    Json first = Json::parse(Lines(files[k + 1]).front());
    EXPECT_EQ(first["seq"], last["seq"].get<std::uint64_t>() + 1);
    EXPECT_EQ(first["prev"], last["hash"]);
  }
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.records, 60u);
  EXPECT_EQ(r.files, files);
  EXPECT_EQ(r.last_seq, 60u);
}

TEST_F(AuditRotation, EditInARotatedFile_IsFoundWithItsSeq) {
  Append(40, 4096);
  ASSERT_GE(AuditFiles(path_).size(), 2u);
  const std::string rotated = path_ + ".1";
  auto lines = Lines(rotated);
  Json edited = Json::parse(lines[2]);
  const std::uint64_t seq = edited["seq"];
  edited["target"] = "prox4";
  lines[2] = edited.dump();
  WriteLines(rotated, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, seq);
  EXPECT_NE(r.message.find(rotated), std::string::npos) << r.message;
}

TEST_F(AuditRotation, RemovedRotatedFile_BreaksTheChainWhereItWas) {
  Append(60, 4096);
  ASSERT_GE(AuditFiles(path_).size(), 3u);
  const std::uint64_t first_missing = Json::parse(Lines(path_ + ".2").front())["seq"];
  std::filesystem::remove(path_ + ".2");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, first_missing);
}

TEST_F(AuditRotation, TwoWritersAlternating_KeepOneChainAcrossRotation) {
  FileAuditStorage first(path_, 4096), second(path_, 4096);  // as two processes would
  AuditLog a(first, clock_), b(second, clock_);
  for (int k = 0; k < 40; ++k) {
    AuditLog& log = k % 2 == 0 ? a : b;
    ASSERT_TRUE(log.Append(EncodeIntent(IntentFor("act-" + std::to_string(k), "local")),
                           k % 3 == 0 ? Durability::kSynced : Durability::kSoon)
                    .ok());
  }
  ASSERT_GE(AuditFiles(path_).size(), 2u);
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.records, 40u);
  EXPECT_TRUE(r.warnings.empty());
}

TEST_F(AuditRotation, TwoWritersConcurrently_KeepOneChain) {
  auto writer = [&](int id) {
    FileAuditStorage storage(path_, 4096);
    fakes::FakeClock clock;
    AuditLog log(storage, clock);
    for (int k = 0; k < 50; ++k) {
      ASSERT_TRUE(
          log.Append(EncodeIntent(IntentFor("act-" + std::to_string(id * 1000 + k), "local")), Durability::kSoon).ok());
    }
  };
  std::thread t1(writer, 1), t2(writer, 2);
  t1.join();
  t2.join();
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.records, 100u);
  EXPECT_GE(r.files.size(), 2u);
}

TEST_F(AuditRotation, LockFileIsPrivateAndSeparate) {
  Append(1);
  auto perms = std::filesystem::status(LockPath(path_)).permissions() & std::filesystem::perms::all;
  EXPECT_EQ(perms, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(std::filesystem::file_size(LockPath(path_)), 0u);
}

// --- reading ----------------------------------------------------------------------------------

TEST_F(AuditTail, LastRecordsComeFromAsManyFilesAsNeeded) {
  Append(30, 4096);
  ASSERT_GE(AuditFiles(path_).size(), 2u);
  const std::size_t in_newest = Lines(path_).size();
  auto tail = TailRecords(path_, in_newest + 3);
  ASSERT_TRUE(tail.ok()) << tail.error().message;
  ASSERT_EQ(tail->size(), in_newest + 3);
  EXPECT_EQ(tail->back()["seq"], 30);
  EXPECT_EQ(tail->front()["seq"], 30 - in_newest - 2);
  auto all = TailRecords(path_, 1000);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 30u);
  EXPECT_EQ(all->front()["seq"], 1);
}

TEST_F(AuditTail, ReadRecordsVisitsEveryFileInOrder) {
  Append(30, 4096);
  auto records = ReadAllRecords(path_);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 30u);
  for (std::size_t k = 0; k < records->size(); ++k) EXPECT_EQ((*records)[k]["seq"], k + 1);
}

TEST_F(AuditFollow, SeesNewRecordsAcrossRotationsOnce) {
  Append(3, 4096);
  AuditFollower follower(path_, 3);
  std::vector<std::uint64_t> seen;
  auto collect = [&] {
    auto batch = follower.Poll();
    ASSERT_TRUE(batch.ok()) << batch.error().message;
    for (const auto& r : *batch) seen.push_back(r["seq"]);
  };
  collect();
  EXPECT_TRUE(seen.empty());
  for (int round = 0; round < 10; ++round) {
    Append(round % 3 == 0 ? 12 : 2, 4096);  // sometimes several rotations between polls
    collect();
  }
  std::vector<std::uint64_t> expected;
  for (std::uint64_t s = 4; s <= 3 + 4 * 12 + 6 * 2; ++s) expected.push_back(s);
  EXPECT_EQ(seen, expected);
  EXPECT_GE(AuditFiles(path_).size(), 3u);
}

TEST_F(AuditFollow, LogCreatedLater_IsReadFromItsStart) {
  AuditFollower follower(path_, 0);
  Append(2);
  auto batch = follower.Poll();
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ((*batch)[0]["seq"], 1);
}

// --- query ------------------------------------------------------------------------------------

class AuditQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuditLog log(storage_, clock_);
    auto add = [&](const Json& body) {
      ASSERT_TRUE(log.Append(body).ok());
      clock_.Advance(std::chrono::minutes(10));
    };
    add(EncodeIntent(IntentFor("act-1", "local", true, "alice", "claude-code")));  // 11:06:40
    add(EncodeOutcome(OutcomeFor("act-1", "local")));                              // 11:16:40
    add(EncodeIntent(IntentFor("act-2", "prox4", true, "bob", "cursor")));         // 11:26:40
    add(EncodeOutcome(OutcomeFor("act-2", "prox4", 3)));                           // 11:36:40
    Refusal refusal{"act-3",
                    Actor{"cli", "labgate-cli", "0.1.0", "carol", ""},
                    {"prox4", "local"},
                    "run",
                    Json{{"argv", {"reboot"}}},
                    {false, "policies.run.enabled", "off", ""},
                    "run is off"};
    add(EncodeRefusal(refusal));  // 11:46:40
    Event event{"node.paired", Actor{"agent", "", "", "", ""}, "phone-node", Json::object()};
    add(EncodeEvent(event));  // 11:56:40
  }
  std::vector<std::uint64_t> Seqs(const AuditFilter& filter) {
    AuditQuery query(filter);
    std::vector<std::uint64_t> out;
    for (const auto& r : storage_.records()) {
      if (query.Accept(r)) out.push_back(r["seq"]);
    }
    return out;
  }
  fakes::FakeAuditStorage storage_;
  fakes::FakeClock clock_;
};

using SeqList = std::vector<std::uint64_t>;

TEST_F(AuditQueryTest, NoFilter_MatchesEverything) { EXPECT_EQ(Seqs({}), (SeqList{1, 2, 3, 4, 5, 6})); }

TEST_F(AuditQueryTest, Target_MatchesTargetAndRefusalTargets) {
  AuditFilter f;
  f.target = "prox4";
  EXPECT_EQ(Seqs(f), (SeqList{3, 4, 5}));
  f.target = "phone-node";
  EXPECT_EQ(Seqs(f), (SeqList{6}));
}

TEST_F(AuditQueryTest, SinceAndUntil_AreInclusiveTimestamps) {
  AuditFilter f;
  f.since = "2026-11-18T11:26:40.000Z";
  f.until = "2026-11-18T11:46:40.000Z";
  EXPECT_EQ(Seqs(f), (SeqList{3, 4, 5}));
  f.until.reset();
  f.since = "2026-11-18T12:00:00.000Z";
  EXPECT_TRUE(Seqs(f).empty());
}

TEST_F(AuditQueryTest, Decision_ResultsFollowTheirIntent) {
  AuditFilter f;
  f.allowed = true;
  EXPECT_EQ(Seqs(f), (SeqList{1, 2, 3, 4}));
  f.allowed = false;
  EXPECT_EQ(Seqs(f), (SeqList{5}));
}

TEST_F(AuditQueryTest, Actor_IsASubstringOfUserClientViaOrSession) {
  AuditFilter f;
  f.actor = "CURS";  // client name, any case
  EXPECT_EQ(Seqs(f), (SeqList{3, 4}));
  f.actor = "carol";
  EXPECT_EQ(Seqs(f), (SeqList{5}));
  f.actor = "agent";
  EXPECT_EQ(Seqs(f), (SeqList{6}));
  f.actor = "mcp-ali";  // session id
  EXPECT_EQ(Seqs(f), (SeqList{1, 2}));
}

TEST_F(AuditQueryTest, FiltersCombine) {
  AuditFilter f;
  f.target = "local";
  f.allowed = true;
  f.actor = "alice";
  EXPECT_EQ(Seqs(f), (SeqList{1, 2}));
}

TEST_F(AuditQueryTest, ResultWithoutItsIntent_MatchesNoDecisionFilter) {
  AuditFilter f;
  f.allowed = true;
  EXPECT_FALSE(Matches(storage_.records()[1], f));
  EXPECT_TRUE(Matches(storage_.records()[0], f));
}

TEST(AuditTimeBound, IsoFormsBecomeCanonicalTimestamps) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));
  auto parse = [&](const char* text) {
    auto r = ParseTimeBound(text, now);
    return r.ok() ? *r : "error: " + r.error().message;
  };
  EXPECT_EQ(parse("2026-11-18T11:06:40Z"), "2026-11-18T11:06:40.000Z");
  EXPECT_EQ(parse("2026-11-18T11:06:40.5Z"), "2026-11-18T11:06:40.500Z");
  EXPECT_EQ(parse("2026-11-18T11:06"), "2026-11-18T11:06:00.000Z");
  EXPECT_EQ(parse("2026-11-18"), "2026-11-18T00:00:00.000Z");
  EXPECT_EQ(parse("2026-11-18 13:06:40+02:00"), "2026-11-18T11:06:40.000Z");
  EXPECT_EQ(parse("2000-02-29T00:00:00Z"), "2000-02-29T00:00:00.000Z");
}

TEST(AuditTimeBound, DurationsMeanThatLongAgo) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));
  EXPECT_EQ(*ParseTimeBound("1h", now), "2026-11-18T10:06:40.000Z");
  EXPECT_EQ(*ParseTimeBound("30m", now), "2026-11-18T10:36:40.000Z");
  EXPECT_EQ(*ParseTimeBound("2d", now), "2026-11-16T11:06:40.000Z");
  EXPECT_EQ(*ParseTimeBound("45s", now), "2026-11-18T11:05:55.000Z");
  EXPECT_EQ(*ParseTimeBound("1w", now), "2026-11-11T11:06:40.000Z");
}

TEST(AuditTimeBound, BoundsBeyondTheClocksRangeMeanEverythingOrNothingYet) {
  // Issue 15: far-future dates and huge durations overflowed the nanosecond clock (UB).
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));
  EXPECT_EQ(*ParseTimeBound("999999999w", now), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(*ParseTimeBound("0001-01-01", now), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(*ParseTimeBound("9999-12-31T23:59:59-23:59", now), "2255-03-14T16:00:00.000Z");
  EXPECT_EQ(*ParseTimeBound("0000-03-01T00:00:00+99:99", now), "1970-01-01T00:00:00.000Z");
}

TEST(AuditTimeBound, GarbageIsRefusedWithTheFormsItTakes) {
  const auto now = std::chrono::system_clock::now();
  for (const char* bad : {"", "yesterday", "1y", "2026-13-01", "2026-11-18T25:00", "2026-11-18X", "h", "12"}) {
    auto r = ParseTimeBound(bad, now);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("ISO-8601"), std::string::npos);
  }
}

TEST(AuditSummary, IntentLineSaysWhenWhoWhereWhatAndWhy) {
  fakes::FakeAuditStorage storage;
  fakes::FakeClock clock;
  AuditLog log(storage, clock);
  ASSERT_TRUE(log.Append(EncodeIntent(IntentFor("act-1", "local"))).ok());
  ASSERT_TRUE(log.Append(EncodeOutcome(OutcomeFor("act-1", "local", 3))).ok());
  const std::string intent = SummarizeRecord(storage.records()[0]);
  EXPECT_EQ(intent,
            "2026-11-18T11:06:40.000Z  #1  intent    alice@mcp/claude-code  local  run  allowed by "
            "targets.local.capabilities  $ uname -a");
  const std::string result = SummarizeRecord(storage.records()[1]);
  EXPECT_EQ(result, "2026-11-18T11:06:40.000Z  #2  result    -  local  run  exit 3 in 12ms");
}

TEST(AuditSummary, FieldsOfTheWrongTypeNeverThrow) {
  Json record = {{"kind", "result"},
                 {"seq", "x"},
                 {"ts", 5},
                 {"who", "bob"},
                 {"timedOut", "yes"},
                 {"decision", {{"allowed", "no"}}},
                 {"payload", {{"argv", {1, {{"a", 2}}}}}}};
  EXPECT_NO_THROW((void)SummarizeRecord(record));
  EXPECT_NO_THROW((void)SummarizeRecord(Json::array()));
  AuditFilter filter;
  filter.allowed = true;
  filter.actor = "bob";
  filter.target = "local";
  filter.since = "2026";
  EXPECT_FALSE(Matches(record, filter));
}

TEST(AuditVerifier, WrongFieldTypesBreakTheChainWithoutThrowing) {
  ChainVerifier verifier(std::nullopt, "head");
  verifier.StartFile("f");
  verifier.AddLine(R"({"v":1,"seq":"1","prev":"","hash":"x"})", true);
  VerifyReport r = verifier.Finish();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 1u);
  EXPECT_NE(r.message.find("has no seq"), std::string::npos) << r.message;
  ChainVerifier huge(std::nullopt, "head");
  huge.StartFile("f");
  huge.AddLine(R"({"v":4294967297,"seq":1,"prev":"","hash":"x"})", true);
  EXPECT_NE(huge.Finish().message.find("unknown format version"), std::string::npos);
}

TEST(AuditSummary, ControlCharactersNeverReachTheTerminal) {
  Json record = {{"kind", "event"}, {"seq", 1}, {"ts", "t"}, {"event", "x\x1b[2J\nfake"}};
  const std::string line = SummarizeRecord(record);
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace labgate::audit
