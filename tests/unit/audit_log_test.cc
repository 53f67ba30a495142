#include "audit/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "audit/audit_reader.h"
#include "fakes/fakes.h"

namespace labgate::audit {
namespace {

Intent SampleIntent() {
  Intent i;
  i.action_id = "act-1";
  i.actor = Actor{"mcp", "claude-code", "2.1.0", "alice", "mcp-abc"};
  i.target = "local";
  i.path = "local";
  i.action = "run";
  i.payload = Json{{"argv", {"uname", "-a"}}};
  i.decision = {true, "targets.local.capabilities", "local offers run", ""};
  return i;
}

TEST(AuditRecord, IntentCarriesWhoWhereWhatAndDecision) {
  Json j = EncodeIntent(SampleIntent());
  EXPECT_EQ(j["kind"], "intent");
  EXPECT_EQ(j["who"]["client"]["name"], "claude-code");
  EXPECT_EQ(j["who"]["client"]["version"], "2.1.0");
  EXPECT_EQ(j["who"]["osUser"], "alice");
  EXPECT_EQ(j["who"]["sessionId"], "mcp-abc");
  EXPECT_EQ(j["target"], "local");
  EXPECT_EQ(j["path"], "local");
  EXPECT_EQ(j["payload"]["argv"][1], "-a");
  EXPECT_EQ(j["decision"]["rule"], "targets.local.capabilities");
  EXPECT_TRUE(j["approver"].is_null());
}

TEST(AuditRecord, OutcomeCarriesExitSignalDurationBytesDigest) {
  Outcome o;
  o.action_id = "act-1";
  o.exit_code = 3;
  o.duration_ms = 12;
  o.stdout_bytes = 5;
  o.output_digest = "sha256:x";
  Json j = EncodeOutcome(o);
  EXPECT_EQ(j["kind"], "result");
  EXPECT_EQ(j["exitCode"], 3);
  EXPECT_TRUE(j["signal"].is_null());
  EXPECT_EQ(j["durationMs"], 12);
  EXPECT_EQ(j["stdoutBytes"], 5);
  EXPECT_EQ(j["retries"], 0);
  EXPECT_EQ(j["escalated"], false);
}

TEST(AuditRecord, ActionIdsAreActAndSixteenHexDigits_AndDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewActionId();
    ASSERT_EQ(id.size(), 20u) << id;
    EXPECT_EQ(id.rfind("act-", 0), 0u) << id;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 4), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(AuditLog, RecordsAreChainedBySeqAndHash) {
  fakes::FakeAuditStorage storage;
  fakes::FakeClock clock;
  AuditLog log(storage, clock);
  ASSERT_TRUE(log.Append(EncodeIntent(SampleIntent())).ok());
  clock.Advance(std::chrono::milliseconds(5));
  ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{})).ok());
  auto records = storage.records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["v"], 1);
  EXPECT_EQ(records[0]["seq"], 1);
  EXPECT_EQ(records[0]["prev"], "");
  EXPECT_EQ(records[1]["seq"], 2);
  EXPECT_EQ(records[1]["prev"], records[0]["hash"]);
  EXPECT_EQ(records[0]["ts"], "2026-11-18T11:06:40.000Z");
  EXPECT_EQ(records[1]["ts"], "2026-11-18T11:06:40.005Z");
  for (const auto& r : records) EXPECT_EQ(r["hash"], RecordHash(r));
}

TEST(AuditLog, ARecordSealedButNeverWritten_DoesNotBecomeTheNextOnesPredecessor) {
  // The log remembers the line it sealed last, to skip parsing it again; a write that failed
  // after sealing (a full disk) must not leave the chain pointing at a record the file lacks.
  fakes::FakeAuditStorage storage;
  fakes::FakeClock clock;
  AuditLog log(storage, clock);
  ASSERT_TRUE(log.Append(EncodeEvent(Event{"first", Actor{"cli", "", "", "", ""}, "", Json::object()})).ok());
  storage.lose_next_write();
  EXPECT_FALSE(log.Append(EncodeIntent(SampleIntent())).ok());
  ASSERT_TRUE(log.Append(EncodeEvent(Event{"third", Actor{"cli", "", "", "", ""}, "", Json::object()})).ok());
  auto records = storage.records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1]["event"], "third");
  EXPECT_EQ(records[1]["seq"], 2);
  EXPECT_EQ(records[1]["prev"], records[0]["hash"]);
  EXPECT_EQ(records[1]["hash"], RecordHash(records[1]));
}

TEST(AuditLog, TamperingChangesTheHash) {
  fakes::FakeAuditStorage storage;
  fakes::FakeClock clock;
  AuditLog log(storage, clock);
  ASSERT_TRUE(log.Append(EncodeIntent(SampleIntent())).ok());
  Json r = storage.records()[0];
  r["target"] = "prox4";
  EXPECT_NE(r["hash"], RecordHash(r));
}

TEST(AuditLog, BrokenLastRecordRefusesToAppend) {
  fakes::FakeAuditStorage storage;
  storage.set_lines({"{\"not\":\"a record\"}"});
  fakes::FakeClock clock;
  AuditLog log(storage, clock);
  auto st = log.Append(EncodeIntent(SampleIntent()));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("labgate audit verify"), std::string::npos);
  EXPECT_EQ(storage.lines().size(), 1u);
}

TEST(AuditLog, StorageFailureIsReported) {
  fakes::FakeAuditStorage storage;
  storage.set_fail(true);
  fakes::FakeClock clock;
  AuditLog log(storage, clock);
  EXPECT_FALSE(log.Append(EncodeIntent(SampleIntent())).ok());
}

class FileAuditStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labgate-audit-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FileAuditStorageTest, CreatesPrivateFileAndChainsAcrossInstances) {
  const std::string path = dir_ + "/nested/audit.jsonl";
  fakes::FakeClock clock;
  {
    FileAuditStorage storage(path);
    AuditLog log(storage, clock);
    ASSERT_TRUE(log.Append(EncodeIntent(SampleIntent())).ok());
  }
  {
    FileAuditStorage storage(path);  // a second process would see the same file
    AuditLog log(storage, clock);
    ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{})).ok());
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(path);
  std::string l1, l2;
  std::getline(in, l1);
  std::getline(in, l2);
  EXPECT_EQ(Json::parse(l2)["seq"], 2);
  EXPECT_EQ(Json::parse(l2)["prev"], Json::parse(l1)["hash"]);
}

TEST_F(FileAuditStorageTest, IncompleteLastLine_IsTakenOffRecordedAndTheChainGoesOn) {
  // A crash or a full disk cut the last record: labgate resumes without an operator editing
  // files, and the cut bytes are kept as evidence in an audit.gap record.
  const std::string path = dir_ + "/audit.jsonl";
  fakes::FakeClock clock;
  {
    FileAuditStorage storage(path);
    AuditLog log(storage, clock);
    ASSERT_TRUE(log.Append(EncodeIntent(SampleIntent())).ok());
  }
  { std::ofstream(path, std::ios::app) << "{\"v\":1,\"seq\":2,\"kind\":\"res"; }
  FileAuditStorage storage(path);
  AuditLog log(storage, clock);
  ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{})).ok());
  std::ifstream in(path);
  std::vector<Json> records;
  for (std::string line; std::getline(in, line);) records.push_back(Json::parse(line));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1]["event"], "audit.gap");
  EXPECT_EQ(records[1]["details"]["dropped"], "{\"v\":1,\"seq\":2,\"kind\":\"res");
  EXPECT_EQ(records[2]["kind"], "result");
  auto verified = VerifyChain(path);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
}

TEST(AuditLog, StorageDownThenBack_ResultsAreKeptAndWrittenLateIntentsAreNot) {
  fakes::FakeAuditStorage storage;
  fakes::FakeClock clock;
  AuditLog log(storage, clock);
  ASSERT_TRUE(log.Append(EncodeIntent(SampleIntent())).ok());
  storage.set_fail(true);  // the disk fills up while the command runs
  EXPECT_FALSE(log.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());
  EXPECT_FALSE(log.Append(EncodeIntent(SampleIntent())).ok());  // nothing may run now
  EXPECT_EQ(log.pending(), 1u);
  storage.set_fail(false);  // space is back
  ASSERT_TRUE(log.Append(EncodeIntent(SampleIntent())).ok());
  EXPECT_EQ(log.pending(), 0u);
  const auto records = storage.records();
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0]["kind"], "intent");
  EXPECT_EQ(records[1]["event"], "audit.delayed");
  EXPECT_EQ(records[1]["details"]["records"], 1);
  EXPECT_EQ(records[2]["kind"], "result");
  EXPECT_TRUE(records[2].contains("writtenLate"));
  EXPECT_EQ(records[3]["kind"], "intent");
}

TEST_F(FileAuditStorageTest, FileRenamedAwayContinuesTheChainInAFreshFile) {
  const std::string path = dir_ + "/audit.jsonl";
  fakes::FakeClock clock;
  FileAuditStorage storage(path);
  AuditLog log(storage, clock);
  ASSERT_TRUE(log.Append(EncodeIntent(SampleIntent())).ok());
  std::filesystem::rename(path, path + ".1");  // what an outside rotation does
  ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());
  std::ifstream rotated(path + ".1");
  std::string old_line, extra;
  std::getline(rotated, old_line);
  EXPECT_EQ(Json::parse(old_line)["kind"], "intent");
  EXPECT_FALSE(std::getline(rotated, extra)) << "nothing more is written to the rotated file";
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(Json::parse(line)["seq"], 2);
  EXPECT_EQ(Json::parse(line)["prev"], Json::parse(old_line)["hash"]);
}

TEST_F(FileAuditStorageTest, AnotherWriterIsSeenAndTheChainContinues) {
  const std::string path = dir_ + "/audit.jsonl";
  fakes::FakeClock clock;
  FileAuditStorage first(path);
  FileAuditStorage second(path);  // e.g. the CLI while `labgate mcp` runs
  AuditLog a(first, clock), b(second, clock);
  ASSERT_TRUE(a.Append(EncodeIntent(SampleIntent())).ok());
  ASSERT_TRUE(b.Append(EncodeIntent(SampleIntent())).ok());
  ASSERT_TRUE(a.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());
  std::ifstream in(path);
  std::vector<Json> records;
  for (std::string line; std::getline(in, line);) records.push_back(Json::parse(line));
  ASSERT_EQ(records.size(), 3u);
  for (std::size_t i = 1; i < records.size(); ++i) {
    EXPECT_EQ(records[i]["seq"], i + 1);
    EXPECT_EQ(records[i]["prev"], records[i - 1]["hash"]);
  }
  // The head names the last record, whichever writer appended it (each gives the seq and hash
  // it sealed, not read back from the line).
  auto head = ReadHeadFile(HeadPath(path));
  ASSERT_TRUE(head.ok());
  ASSERT_TRUE(head->has_value());
  EXPECT_EQ((*head)->seq, records.back()["seq"].get<std::uint64_t>());
  EXPECT_EQ((*head)->hash, records.back()["hash"].get<std::string>());
}

TEST_F(FileAuditStorageTest, ConcurrentIntents_EachDurableWhenItsAppendReturns_SharingFsyncs) {
  // Group commit: an intent is on disk before Append returns (nothing runs before that), but
  // threads appending together share an fsync instead of queueing one each behind the lock.
  const std::string path = dir_ + "/audit.jsonl";
  fakes::FakeClock clock;
  FileAuditStorage storage(path);
  AuditLog log(storage, clock);
  constexpr int kThreads = 8, kEach = 40;
  std::atomic<std::uint64_t> returned{0};
  std::atomic<int> failures{0}, early{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        if (!log.Append(EncodeIntent(SampleIntent())).ok()) ++failures;
        // Every append that returned is durable, so the durable ones are at least as many.
        const std::uint64_t done = ++returned;
        if (storage.durable_records() < done) ++early;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(early.load(), 0);
  EXPECT_EQ(storage.durable_records(), static_cast<std::uint64_t>(kThreads * kEach));
  EXPECT_LE(storage.syncs(), static_cast<std::uint64_t>(kThreads * kEach));
  std::cout << kThreads * kEach << " intents from " << kThreads << " threads, " << storage.syncs() << " fsyncs\n";
  std::ifstream in(path);
  std::vector<Json> records;
  for (std::string line; std::getline(in, line);) records.push_back(Json::parse(line));
  ASSERT_EQ(records.size(), static_cast<std::size_t>(kThreads * kEach));
  for (std::size_t i = 1; i < records.size(); ++i) {
    EXPECT_EQ(records[i]["seq"], i + 1);
    EXPECT_EQ(records[i]["prev"], records[i - 1]["hash"]);
  }
}

// Whether `storage` counts `want` records as synced within 5 s (its flusher's delay is 50 ms).
bool DurableSoon(const FileAuditStorage& storage, std::uint64_t want) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (storage.durable_records() < want && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return storage.durable_records() >= want;
}

TEST_F(FileAuditStorageTest, EveryResultReachesTheDiskWithinTheDelay_WhateverCameBefore) {
  // The flusher is woken only when it has nothing pending; a record written while it counts
  // down, after an intent's own fsync, or after it went idle again must still be synced.
  fakes::FakeClock clock;
  FileAuditStorage storage(dir_ + "/audit.jsonl");
  AuditLog log(storage, clock);
  ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());  // flusher idle
  ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());  // counting down
  EXPECT_TRUE(DurableSoon(storage, 2));
  ASSERT_TRUE(log.Append(EncodeIntent(SampleIntent())).ok());                 // synced by itself
  ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());  // after that fsync
  EXPECT_TRUE(DurableSoon(storage, 4));
  std::this_thread::sleep_for(FileAuditStorage::kSoonDelay * 3);              // idle again
  ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());
  EXPECT_TRUE(DurableSoon(storage, 5));
}

TEST_F(FileAuditStorageTest, AHeadFileThatCannotBeWritten_DoesNotLeaveLaterRecordsUnsynced) {
  // A record reaches the log, then its head cannot be written (here the head file was swapped
  // for a FIFO, where pwrite fails; a full disk does the same to a new head file). The flusher
  // must still be woken for it, and for the records after it.
  fakes::FakeClock clock;
  FileAuditStorage storage(dir_ + "/audit.jsonl");
  AuditLog log(storage, clock);
  ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());
  ASSERT_TRUE(DurableSoon(storage, 1));
  std::this_thread::sleep_for(FileAuditStorage::kSoonDelay * 3);  // the flusher is idle again
  const std::string head = dir_ + "/audit.jsonl.head";
  ASSERT_EQ(::unlink(head.c_str()), 0);
  ASSERT_EQ(::mkfifo(head.c_str(), 0600), 0);
  EXPECT_FALSE(log.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());
  ASSERT_EQ(::unlink(head.c_str()), 0);
  ASSERT_TRUE(log.Append(EncodeOutcome(Outcome{}), Durability::kSoon).ok());
  EXPECT_TRUE(DurableSoon(storage, 3)) << storage.durable_records() << " of 3 records synced";
}

TEST_F(FileAuditStorageTest, UnwritableLocationIsAnError) {
  std::ofstream(dir_ + "/file") << "x";
  FileAuditStorage storage(dir_ + "/file/audit.jsonl");
  fakes::FakeClock clock;
  AuditLog log(storage, clock);
  EXPECT_FALSE(log.Append(EncodeIntent(SampleIntent())).ok());
}

}  // namespace
}  // namespace labgate::audit
