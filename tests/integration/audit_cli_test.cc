// `labgate audit verify|tail|query` against logs the real binary wrote.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;


class AuditCli : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = dir_.path() + "/state/audit.jsonl";
    config_ = dir_.Write("hosts.toml",
                         "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\naudit_log = \"" + log_ + "\"\n");
  }
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunToCompletion(argv, dir_.path());
  }
  // Three real runs: six records (intent + result each).
  void WriteRealLog(const std::string& config, int runs = 3) {
    for (int k = 0; k < runs; ++k) {
      auto c = Labgate({"run", "local", "--config", config, "--", "echo", "hi" + std::to_string(k)});
      ASSERT_EQ(c.status, 0) << c.err;
    }
  }
  // A copy of the log and its head under copy/, with a config that points at it; `tamper`
  // edits the copy's lines.
  std::string TamperedCopy(const std::function<void(std::vector<std::string>&)>& tamper) {
    const std::string copy_dir = dir_.path() + "/copy";
    std::filesystem::create_directories(copy_dir);
    const std::string copy = copy_dir + "/audit.jsonl";
    std::filesystem::copy_file(log_ + ".head", copy + ".head", std::filesystem::copy_options::overwrite_existing);
    auto lines = ReadLines(log_);
    tamper(lines);
    WriteLines(copy, lines);
    return dir_.Write("copy.toml",
                      "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\naudit_log = \"" + copy + "\"\n");
  }

  TempDir dir_;
  std::string log_;
  std::string config_;
};

TEST_F(AuditCli, VerifyPassesOnALogTheBinaryWrote) {
  WriteRealLog(config_);
  auto c = Labgate({"audit", "verify", "--config", config_});
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("audit log OK: 6 records in 1 files, last seq 6"), std::string::npos) << c.out;
  EXPECT_TRUE(std::filesystem::exists(log_ + ".head"));
}

TEST_F(AuditCli, VerifyJsonCarriesTheLastHash) {
  WriteRealLog(config_);
  auto c = Labgate({"audit", "verify", "--config", config_, "--json"});
  ASSERT_EQ(c.status, 0) << c.err;
  Json j = Json::parse(c.out);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["lastSeq"], 6);
  EXPECT_EQ(j["lastHash"], Json::parse(ReadLines(log_).back())["hash"]);
  EXPECT_TRUE(j["firstBadSeq"].is_null());
}

TEST_F(AuditCli, EditedRecord_FailsAtItsSeq) {
  WriteRealLog(config_);
  std::string copy = TamperedCopy([](auto& lines) {
    auto pos = lines[2].find("hi1");
    ASSERT_NE(pos, std::string::npos);
    lines[2].replace(pos, 3, "ok1");
  });
  auto c = Labgate({"audit", "verify", "--config", copy});
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("audit log BROKEN at seq 3:"), std::string::npos) << c.out;
}

TEST_F(AuditCli, DeletedRecord_FailsAtTheMissingSeq) {
  WriteRealLog(config_);
  std::string copy = TamperedCopy([](auto& lines) { lines.erase(lines.begin() + 3); });
  auto c = Labgate({"audit", "verify", "--config", copy});
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("audit log BROKEN at seq 4:"), std::string::npos) << c.out;
}

TEST_F(AuditCli, ReorderedRecords_FailAtTheFirstOutOfPlace) {
  WriteRealLog(config_);
  std::string copy = TamperedCopy([](auto& lines) { std::swap(lines[1], lines[2]); });
  auto c = Labgate({"audit", "verify", "--config", copy});
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("audit log BROKEN at seq 2:"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("out of order"), std::string::npos) << c.out;
}

TEST_F(AuditCli, LineCutMidRecord_FailsAtThatSeq) {
  WriteRealLog(config_);
  std::string copy = TamperedCopy([](auto&) {});
  const auto full = std::filesystem::file_size(dir_.path() + "/copy/audit.jsonl");
  std::filesystem::resize_file(dir_.path() + "/copy/audit.jsonl", full - 30);
  auto c = Labgate({"audit", "verify", "--config", copy});
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("audit log BROKEN at seq 6:"), std::string::npos) << c.out;
}

TEST_F(AuditCli, RecordsCutOffTheEnd_FailThroughTheHead) {
  WriteRealLog(config_);
  std::string copy = TamperedCopy([](auto& lines) { lines.resize(4); });
  auto c = Labgate({"audit", "verify", "--config", copy});
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("audit log BROKEN at seq 5:"), std::string::npos) << c.out;
  // And nothing runs on top of it: the evidence would be overwritten.
  auto run = Labgate({"run", "local", "--config", copy, "--", "true"});
  EXPECT_EQ(run.status, 255);
  EXPECT_NE(run.err.find("removed from its end"), std::string::npos) << run.err;
  EXPECT_EQ(ReadLines(dir_.path() + "/copy/audit.jsonl").size(), 4u);
}

TEST_F(AuditCli, LogWithoutHead_PassesWithAWarning) {
  WriteRealLog(config_);
  std::filesystem::remove(log_ + ".head");
  auto c = Labgate({"audit", "verify", "--config", config_});
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_NE(c.err.find("warning: no head file"), std::string::npos) << c.err;
}

TEST_F(AuditCli, UnreadableLog_Exits255) {
  std::filesystem::create_directories(log_);  // a directory where the log should be
  auto c = Labgate({"audit", "verify", "--config", config_});
  EXPECT_EQ(c.status, 255) << c.out << c.err;
}

TEST_F(AuditCli, QueryByTargetReturnsTheRecordsAsJson) {
  WriteRealLog(config_);
  (void)Labgate({"run", "nosuch", "--config", config_, "--", "true"});  // a refusal for another target
  auto c = Labgate({"audit", "query", "--target", "local", "--json", "--config", config_});
  ASSERT_EQ(c.status, 0) << c.err;
  Json j = Json::parse(c.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 6u);
  for (const auto& r : j) EXPECT_EQ(r["target"], "local");
  EXPECT_EQ(j[0]["kind"], "intent");
  EXPECT_EQ(j[1]["kind"], "result");
}

TEST_F(AuditCli, QueryRefusedSinceAnHourAgo) {
  WriteRealLog(config_, 1);
  (void)Labgate({"run", "nosuch", "--config", config_, "--", "true"});
  auto c = Labgate({"audit", "query", "--decision", "refused", "--since", "1h", "--config", config_});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.out.find("#3  refusal"), std::string::npos) << c.out;
  EXPECT_EQ(c.out.find("intent"), std::string::npos) << c.out;
  auto bad = Labgate({"audit", "query", "--since", "yesterday", "--config", config_});
  EXPECT_EQ(bad.status, 2);
}

TEST_F(AuditCli, TailPrintsTheLastRecordsAsJsonLines) {
  WriteRealLog(config_);
  auto c = Labgate({"audit", "tail", "-n", "2", "--json", "--config", config_});
  ASSERT_EQ(c.status, 0) << c.err;
  auto lines = ReadLines(dir_.Write("tail.out", c.out));
  ASSERT_EQ(lines.size(), 2u) << c.out;
  EXPECT_EQ(Json::parse(lines[0])["seq"], 5);
  EXPECT_EQ(Json::parse(lines[1])["seq"], 6);
  auto human = Labgate({"audit", "tail", "--config", config_});
  EXPECT_NE(human.out.find("#1  intent"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("$ echo hi0"), std::string::npos) << human.out;
}

TEST_F(AuditCli, RotationThroughTheBinaryKeepsOneVerifiableChain) {
  std::string small = dir_.Write("small.toml", "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\naudit_log = \"" +
                                                   log_ + "\"\naudit_max_bytes = 4096\n");
  WriteRealLog(small, 8);
  EXPECT_TRUE(std::filesystem::exists(log_ + ".1"));
  auto c = Labgate({"audit", "verify", "--config", small});
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("audit log OK: 16 records in "), std::string::npos) << c.out;
  EXPECT_EQ(c.out.find(" in 1 files"), std::string::npos) << c.out;
}

TEST_F(AuditCli, FollowPrintsNewRecordsUntilSigterm) {
  WriteRealLog(config_, 1);
  Subprocess follow({LABGATE_BINARY, "audit", "tail", "-n", "1", "-f", "--json", "--config", config_}, dir_.path());
  auto first = follow.ReadLine();
  ASSERT_TRUE(first.has_value()) << follow.Stderr();
  EXPECT_EQ(Json::parse(*first)["seq"], 2);
  WriteRealLog(config_, 1);
  auto third = follow.ReadLine();
  auto fourth = follow.ReadLine();
  ASSERT_TRUE(third && fourth) << follow.Stderr();
  EXPECT_EQ(Json::parse(*third)["seq"], 3);
  EXPECT_EQ(Json::parse(*fourth)["seq"], 4);
  ::kill(follow.pid(), SIGTERM);
  EXPECT_EQ(follow.Wait(std::chrono::seconds(10)), 0);
}

TEST_F(AuditCli, UnknownSubcommandIsAUsageError) {
  auto c = Labgate({"audit", "frobnicate", "--config", config_});
  EXPECT_EQ(c.status, 2);
  auto help = Labgate({"audit", "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("usage: labgate audit verify"), std::string::npos);
}

}  // namespace
}  // namespace labgate::testing
