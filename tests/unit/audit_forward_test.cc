// Audit copies for journald and syslog: what goes on the wire, how a copy is read back and
// compared, and the forwarder's queue in front of a log store that fails.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>

#include "audit/audit_log.h"
#include "audit/audit_storage.h"
#include "audit/forward_format.h"
#include "audit/forwarder.h"
#include "fakes/fakes.h"
#include "fakes/journal_entry.h"

namespace labgate::audit {
namespace {

constexpr char kTs[] = "2026-12-05T09:30:00.000Z";

// A chain of sealed lines: intents and results of `echo N`, then whatever `extra` adds.
std::vector<std::string> Chain(int n) {
  std::vector<std::string> lines;
  for (int k = 0; k < n; ++k) {
    Json body;
    if (k % 2 == 0) {
      body = EncodeIntent(Intent{"act-" + std::to_string(k / 2), Actor{"mcp", "c", "1", "alice", ""}, "local", "local",
                                 "run", Json{{"argv", {"echo", std::to_string(k)}}},
                                 DecisionRecord{true, "r", "why", "read"}, std::nullopt});
    } else {
      Outcome o;
      o.action_id = "act-" + std::to_string(k / 2);
      o.target = o.path = "local";
      o.action = "run";
      o.exit_code = 0;
      body = EncodeOutcome(o);
    }
    auto line = SealRecord(body, lines.empty() ? std::string_view() : std::string_view(lines.back()), kTs);
    EXPECT_TRUE(line) << line.error().message;
    lines.push_back(*line);
  }
  return lines;
}

Json Parse(const std::string& line) { return Json::parse(line); }

// ---- journald ----

TEST(JournalEntry, CarriesSeqHashMessageIdPriorityAndTheWholeRecord) {
  auto lines = Chain(2);
  auto fields = fakes::ParseJournalEntry(EncodeJournalEntry(lines[1], Parse(lines[1]), "/var/lib/labgate/audit.jsonl"));
  auto one = [&](const char* key) {
    EXPECT_EQ(fields.count(key), 1u) << key;
    auto it = fields.find(key);
    return it == fields.end() ? std::string() : it->second;
  };
  EXPECT_EQ(one("MESSAGE_ID"), kJournalMessageId);
  EXPECT_EQ(one("PRIORITY"), "6");
  EXPECT_EQ(one("SYSLOG_IDENTIFIER"), "labgate");
  EXPECT_EQ(one("LABGATE_SEQ"), "2");
  EXPECT_EQ(one("LABGATE_HASH"), Parse(lines[1])["hash"]);
  EXPECT_EQ(one("LABGATE_PREV"), Parse(lines[0])["hash"]);
  EXPECT_EQ(one("LABGATE_KIND"), "result");
  EXPECT_EQ(one("LABGATE_ACTION_ID"), "act-0");
  EXPECT_EQ(one("LABGATE_LOG"), "/var/lib/labgate/audit.jsonl");
  EXPECT_EQ(one("LABGATE_RECORD"), lines[1]);
  EXPECT_NE(one("MESSAGE").find("labgate audit: "), std::string::npos);
}

TEST(JournalEntry, ANewlineInAValueCannotAddOrReplaceFields) {
  // What an assistant would try: a target or command that, written as KEY=value lines, starts
  // new fields of its own choosing.
  const std::string evil = "x\nPRIORITY=0\nMESSAGE_ID=00000000000000000000000000000000\nLABGATE_SEQ=999";
  Json body = EncodeEvent(Event{"node.paired", Actor{"agent", "", "", "", ""}, evil, Json{{"note", evil}}});
  auto line = SealRecord(body, "", kTs);
  ASSERT_TRUE(line);
  bool malformed = true;
  auto fields = fakes::ParseJournalEntry(EncodeJournalEntry(*line, Parse(*line), "/l"), &malformed);
  EXPECT_FALSE(malformed);
  EXPECT_EQ(fields.count("PRIORITY"), 1u);
  EXPECT_EQ(fields.find("PRIORITY")->second, "5");
  EXPECT_EQ(fields.count("MESSAGE_ID"), 1u);
  EXPECT_EQ(fields.find("MESSAGE_ID")->second, kJournalMessageId);
  EXPECT_EQ(fields.find("LABGATE_SEQ")->second, "1");
  EXPECT_EQ(fields.find("LABGATE_TARGET")->second, evil);
}

TEST(JournalEntry, TheLogsOwnTroubleIsAWarning) {
  Json gap = EncodeEvent(Event{"audit.gap", Actor{"gateway", "", "", "", ""}, "", Json::object()});
  EXPECT_EQ(RecordSeverity(gap), 4);
  EXPECT_EQ(RecordSeverity(EncodeEvent(Event{"node.paired", {}, "n", Json::object()})), 5);
  EXPECT_EQ(RecordSeverity(Json{{"kind", "refusal"}}), 5);
  EXPECT_EQ(RecordSeverity(Json{{"kind", "intent"}}), 6);
}

// ---- syslog ----

TEST(SyslogMessage, IsRfc5424WithSeqAndHashInStructuredData) {
  auto lines = Chain(1);
  SyslogOrigin origin{10, "gw1", 4242, ""};
  const std::string m = EncodeSyslogMessage(lines[0], Parse(lines[0]), origin);
  const std::string hash = Parse(lines[0])["hash"];
  const std::string expected_head = "<86>1 2026-12-05T09:30:00.000Z gw1 labgate 4242 intent [labgate@32473 seq=\"1\" hash=\"" +
                                    hash + "\"] \xEF\xBB\xBF";
  ASSERT_EQ(m.substr(0, expected_head.size()), expected_head);
  EXPECT_EQ(m.substr(expected_head.size()), lines[0]);
}

TEST(SyslogMessage, HeaderWordsCannotCarrySpacesOrControls) {
  auto lines = Chain(1);
  const std::string m = EncodeSyslogMessage(lines[0], Parse(lines[0]), SyslogOrigin{4, "evil host\n<0>1", 1, ""});
  EXPECT_EQ(m.find('\n'), std::string::npos);
  EXPECT_NE(m.find(" evil-host-<0>1 labgate 1 "), std::string::npos) << m;
  EXPECT_EQ(m.substr(0, 4), "<38>");
}

TEST(SyslogMessage, ARecordTooLargeForADatagramGoesAsAStubWithSeqAndHash) {
  Json body = EncodeIntent(Intent{"act-big", Actor{"mcp", "", "", "u", ""}, "local", "local", "run",
                                  Json{{"command", std::string(kSyslogMaxRecordBytes, 'x')}}, {}, std::nullopt});
  auto line = SealRecord(body, "", kTs);
  ASSERT_TRUE(line);
  const std::string m = EncodeSyslogMessage(*line, Parse(*line), SyslogOrigin{10, "h", 1, ""});
  EXPECT_LT(m.size(), 1024u);
  auto copy = ParseForwardedLine(m);
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->seq, 1u);
  EXPECT_EQ(copy->hash, Parse(*line)["hash"]);
  EXPECT_FALSE(copy->damaged);
  EXPECT_NE(m.find("\"truncated\":" + std::to_string(line->size())), std::string::npos);
}

// ---- reading copies back ----

TEST(ForwardedLine, ReadsJournalctlJsonWithAndWithoutTheRecord) {
  auto lines = Chain(3);
  const Json r = Parse(lines[2]);
  Json entry = {{"MESSAGE", "labgate audit: ..."}, {"MESSAGE_ID", std::string(kJournalMessageId)},
                {"LABGATE_SEQ", "3"}, {"LABGATE_HASH", r["hash"]}, {"LABGATE_RECORD", lines[2]},
                {"_UID", "998"}, {"__REALTIME_TIMESTAMP", "1"}};
  auto copy = ParseForwardedLine(entry.dump());
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->seq, 3u);
  EXPECT_EQ(copy->hash, r["hash"]);
  EXPECT_FALSE(copy->damaged);
  // journalctl without --all prints fields over 4096 bytes as null; seq and hash are enough.
  entry["LABGATE_RECORD"] = nullptr;
  copy = ParseForwardedLine(entry.dump());
  ASSERT_TRUE(copy);
  EXPECT_FALSE(copy->damaged);
  // A field that is not printable comes as an array of bytes.
  Json bytes = Json::array();
  for (char c : std::string("3")) bytes.push_back(static_cast<unsigned char>(c));
  entry["LABGATE_SEQ"] = bytes;
  copy = ParseForwardedLine(entry.dump());
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->seq, 3u);
}

TEST(ForwardedLine, ACopyWhoseRecordWasEditedIsDamaged) {
  auto lines = Chain(1);
  std::string edited = lines[0];
  edited.replace(edited.find("\"echo\""), 6, "\"true\"");
  auto copy = ParseForwardedLine(edited);
  ASSERT_TRUE(copy);
  EXPECT_TRUE(copy->damaged);
  Json entry = {{"LABGATE_SEQ", "1"}, {"LABGATE_HASH", Parse(lines[0])["hash"]}, {"LABGATE_RECORD", edited}};
  EXPECT_TRUE(ParseForwardedLine(entry.dump())->damaged);
  entry["LABGATE_SEQ"] = "2";  // fields beside the record that disagree with it
  entry["LABGATE_RECORD"] = lines[0];
  EXPECT_TRUE(ParseForwardedLine(entry.dump())->damaged);
}

TEST(ForwardedLine, ReadsSyslogFilesAsRelaysStoreThem) {
  auto lines = Chain(1);
  const std::string hash = Parse(lines[0])["hash"];
  // rsyslog's traditional file format drops the structured data and keeps the message.
  auto copy = ParseForwardedLine("Dec  5 09:30:00 gw1 labgate[4242]: \xEF\xBB\xBF" + lines[0]);
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->hash, hash);
  EXPECT_FALSE(copy->damaged);
  // The whole RFC 5424 message, as RSYSLOG_SyslogProtocol23Format writes it.
  copy = ParseForwardedLine(EncodeSyslogMessage(lines[0], Parse(lines[0]), SyslogOrigin{10, "gw1", 1, ""}) + "\n");
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->seq, 1u);
  // A relay that cut the message (rsyslog's default 8k): the structured data is enough.
  const std::string full = EncodeSyslogMessage(lines[0], Parse(lines[0]), SyslogOrigin{10, "gw1", 1, ""});
  copy = ParseForwardedLine(full.substr(0, full.size() - 20));
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->hash, hash);
  EXPECT_FALSE(copy->damaged);
  EXPECT_FALSE(ParseForwardedLine("Dec  5 09:30:00 gw1 sshd[1]: Accepted publickey for alice"));
  EXPECT_FALSE(ParseForwardedLine(R"({"MESSAGE":"another program","_PID":"1"})"));
  EXPECT_FALSE(ParseForwardedLine(""));
}

TEST(ForwardedLine, SaysWhichLogAndWhichSenderACopyCameFrom) {
  auto lines = Chain(1);
  const Json r = Parse(lines[0]);
  Json entry = {{"LABGATE_SEQ", "1"}, {"LABGATE_HASH", r["hash"]}, {"LABGATE_LOG", "/var/lib/labgate/audit.jsonl"},
                {"_UID", "998"}};
  auto copy = ParseForwardedLine(entry.dump());
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->log, "/var/lib/labgate/audit.jsonl");
  ASSERT_TRUE(copy->uid);
  EXPECT_EQ(*copy->uid, 998u);
  const std::string m = EncodeSyslogMessage(lines[0], r, SyslogOrigin{10, "gw1", 1, "/srv/a \"b\"].jsonl"});
  copy = ParseForwardedLine(m);
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->log, "/srv/a \"b\"].jsonl");
  EXPECT_FALSE(copy->uid);
  // Syslog sent to journald's /dev/log: the message is a syslog line, the sender journald's.
  Json via_dev_log = {{"MESSAGE", m.substr(m.find("labgate"))}, {"SYSLOG_IDENTIFIER", "1"}, {"_UID", "0"}};
  copy = ParseForwardedLine(via_dev_log.dump());
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->hash, r["hash"]);
  EXPECT_EQ(*copy->uid, 0u);
}

TEST(ForwardedLine, OtherProgramsJsonInASyslogFileIsNotARecord) {
  EXPECT_FALSE(ParseForwardedLine(R"(Dec  5 09:30:00 gw1 app[3]: {"seq":4,"hash":"x"})"));
  EXPECT_FALSE(ParseForwardedLine(R"({"MESSAGE":"","_UID":"1"})"));
}

TEST(SyslogMessage, AStubSaysWhatTheRecordWasAbout) {
  Json body = EncodeIntent(Intent{"act-big", Actor{"mcp", "", "", "u", ""}, "web1", "ssh", "run",
                                  Json{{"command", std::string(kSyslogMaxRecordBytes, 'x')}}, {}, std::nullopt});
  auto line = SealRecord(body, "", kTs);
  ASSERT_TRUE(line);
  const std::string m = EncodeSyslogMessage(*line, Parse(*line), SyslogOrigin{10, "h", 1, ""});
  const Json stub = Json::parse(m.substr(m.find('{')));
  EXPECT_EQ(stub["target"], "web1");
  EXPECT_EQ(stub["action"], "run");
  EXPECT_EQ(stub["actionId"], "act-big");
  // A line that is not JSON at all (nothing labgate seals) still gives a message, no exception.
  EXPECT_NO_THROW(EncodeSyslogMessage(std::string(kSyslogMaxRecordBytes + 1, '['), Json(Json::value_t::discarded),
                                      SyslogOrigin{}));
  EXPECT_NO_THROW(EncodeJournalEntry("[", Json(Json::value_t::discarded), "/l"));
}

TEST(ForwardedLine, StructuredDataInsideACommandIsNotRead) {
  // A command that prints labgate's own structured data, in a message a relay cut: the words
  // come after the record's first '{', so they are not taken for the element.
  const std::string fake = "[labgate@32473 seq=\"7\" hash=\"" + std::string(64, 'a') + "\"]";
  Json body = EncodeIntent(Intent{"act-x", Actor{"mcp", "", "", "u", ""}, "local", "local", "run",
                                  Json{{"command", fake}}, {}, std::nullopt});
  auto line = SealRecord(body, "", kTs);
  ASSERT_TRUE(line);
  const std::string stored = "Dec  5 09:30:00 gw1 labgate[1]: " + *line;
  EXPECT_FALSE(ParseForwardedLine(stored.substr(0, stored.size() - 30)));
}

// ---- comparing ----

std::map<std::uint64_t, std::string> Local(const std::vector<std::string>& lines) {
  std::map<std::uint64_t, std::string> out;
  for (const auto& l : lines) out[Parse(l)["seq"]] = Parse(l)["hash"];
  return out;
}

std::vector<ForwardedCopy> Copies(const std::vector<std::string>& lines) {
  std::vector<ForwardedCopy> out;
  for (const auto& l : lines) out.push_back(*ParseForwardedLine(l));
  return out;
}

TEST(CompareWithCopy, AnUntouchedLogMatches) {
  auto lines = Chain(6);
  auto cmp = CompareWithCopy(Local(lines), 6, Copies(lines));
  EXPECT_TRUE(cmp.ok);
  EXPECT_EQ(cmp.matched, 6u);
  EXPECT_EQ(cmp.first_copied, 1u);
  EXPECT_EQ(cmp.last_copied, 6u);
}

TEST(CompareWithCopy, ARecordRemovedAndTheChainSealedAgainIsFound) {
  // The gateway's user removes record 3 and re-seals the rest: the local chain verifies, but
  // from seq 3 on its hashes are not those that were sent.
  auto sent = Chain(6);
  std::vector<std::string> rewritten;
  for (std::size_t k = 0; k < sent.size(); ++k) {
    if (k == 2) continue;
    Json body = Parse(sent[k]);
    for (const char* key : {"v", "seq", "ts", "prev", "hash"}) body.erase(key);
    rewritten.push_back(*SealRecord(body, rewritten.empty() ? std::string_view() : std::string_view(rewritten.back()), kTs));
  }
  auto cmp = CompareWithCopy(Local(rewritten), 5, Copies(sent));
  EXPECT_FALSE(cmp.ok);
  EXPECT_EQ(cmp.matched, 2u);
  ASSERT_GE(cmp.problems.size(), 3u);
  EXPECT_EQ(cmp.problems[0].seq, 3u);
  EXPECT_NE(cmp.problems[0].what.find("edited, or records before it removed"), std::string::npos);
  EXPECT_EQ(cmp.problems.back().seq, 6u);
  EXPECT_NE(cmp.problems.back().what.find("cut off its end"), std::string::npos);
}

TEST(CompareWithCopy, RecordsCutOffTheEndAreFound) {
  auto sent = Chain(5);
  auto local = Local(sent);
  local.erase(5);
  local.erase(4);
  auto cmp = CompareWithCopy(local, 3, Copies(sent));
  EXPECT_FALSE(cmp.ok);
  ASSERT_EQ(cmp.problems.size(), 2u);
  EXPECT_EQ(cmp.problems[0].seq, 4u);
}

TEST(CompareWithCopy, TwoDifferentCopiesOfOneSeqFail) {
  // Someone else wrote a record of their own into the log store with a seq labgate used.
  auto sent = Chain(3);
  auto forged = Chain(3);
  Json body = Parse(forged[1]);
  body["payload"] = "forged";  // not in a result, but any change makes a different record
  body.erase("hash");
  body["hash"] = RecordHash(body);
  auto copies = Copies(sent);
  copies.push_back(*ParseForwardedLine(body.dump()));
  auto cmp = CompareWithCopy(Local(sent), 3, copies);
  EXPECT_FALSE(cmp.ok);
  ASSERT_EQ(cmp.problems.size(), 1u);
  EXPECT_EQ(cmp.problems[0].seq, 2u);
  EXPECT_NE(cmp.problems[0].what.find("2 different records"), std::string::npos);
  EXPECT_NE(cmp.problems[0].what.find("the local record is one of them"), std::string::npos);
  // The gateway's user edits record 2 and sends a copy of the edit: neither copy is local.
  auto local = Local(sent);
  local[2] = std::string(64, 'c');
  cmp = CompareWithCopy(local, 3, copies);
  ASSERT_FALSE(cmp.problems.empty());
  EXPECT_NE(cmp.problems[0].what.find("none of them, so it was edited too"), std::string::npos);
}

TEST(CompareWithCopy, LocalRecordsWithoutACopyAreCountedNotFailed) {
  auto lines = Chain(6);
  std::vector<std::string> copied = {lines[0], lines[2], lines[3]};  // 2 lost on the way; 5, 6 not sent yet
  auto cmp = CompareWithCopy(Local(lines), 6, Copies(copied));
  EXPECT_TRUE(cmp.ok);
  EXPECT_EQ(cmp.matched, 3u);
  EXPECT_EQ(cmp.uncopied, 1u);
  EXPECT_EQ(cmp.after_copy, 2u);
}

TEST(CompareWithCopy, ADamagedCopyFails) {
  auto lines = Chain(2);
  std::string edited = lines[1];
  edited.replace(edited.find("\"exitCode\":0"), 12, "\"exitCode\":1");
  auto cmp = CompareWithCopy(Local(lines), 2, Copies({lines[0], edited}));
  EXPECT_FALSE(cmp.ok);
  ASSERT_EQ(cmp.problems.size(), 1u);
  EXPECT_NE(cmp.problems[0].what.find("damaged"), std::string::npos);
}

// ---- the forwarder ----

using SinkState = fakes::FakeForwardSink::State;

bool WaitFor(SinkState& s, const std::function<bool()>& done) {
  std::unique_lock<std::mutex> lock(s.mutex);
  return s.changed.wait_for(lock, std::chrono::seconds(20), done);
}

class Forwarding : public ::testing::Test {
 protected:
  Forwarding()
      : state_(std::make_shared<SinkState>()),
        forwarder_(std::make_unique<fakes::FakeForwardSink>(state_)),
        storage_(file_, {&forwarder_}),
        log_(storage_, clock_) {}

  Json Intent(int k) {
    return EncodeIntent(audit::Intent{"act-" + std::to_string(k), Actor{"mcp", "", "", "u", ""}, "local", "local", "run",
                                      Json{{"argv", {"echo", k}}}, {}, std::nullopt});
  }

  // As Runtime does: every trouble report is kept here and appended to the log as audit.forward.
  void RecordTroubleInTheLog() {
    forwarder_.SetTroubleHandler([this](const Json& details) {
      {
        std::lock_guard<std::mutex> lock(trouble_mutex_);
        trouble_.push_back(details);
      }
      (void)log_.Append(EncodeEvent(Event{"audit.forward", Actor{"gateway", "", "", "", ""}, "", details}),
                        Durability::kSoon);
    });
  }

  std::mutex trouble_mutex_;
  std::vector<Json> trouble_;
  std::shared_ptr<SinkState> state_;
  fakes::FakeAuditStorage file_;
  AuditForwarder forwarder_;
  ForwardingAuditStorage storage_;
  fakes::FakeClock clock_;
  AuditLog log_;
};

TEST_F(Forwarding, EveryAppendedLineIsSentInOrder) {
  for (int k = 0; k < 5; ++k) ASSERT_TRUE(log_.Append(Intent(k), Durability::kSoon));
  ASSERT_TRUE(WaitFor(*state_, [&] { return state_->received.size() == 5; }));
  std::lock_guard<std::mutex> lock(state_->mutex);
  EXPECT_EQ(state_->received, file_.lines());
}

TEST_F(Forwarding, ASyncedRecordIsSentBeforeAppendReturns) {
  state_->delay = std::chrono::milliseconds(100);
  ASSERT_TRUE(log_.Append(Intent(1), Durability::kSynced));
  std::lock_guard<std::mutex> lock(state_->mutex);
  ASSERT_EQ(state_->received.size(), 1u);
  EXPECT_EQ(state_->received[0], file_.lines()[0]);
}

TEST_F(Forwarding, WaitingForACopyDoesNotHoldUpOtherAppends) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->hold = true;
  }
  std::atomic<bool> intent_done{false};
  std::thread intent([&] {
    (void)log_.Append(Intent(1), Durability::kSynced);  // waits for its copy, up to kSyncWait
    intent_done = true;
  });
  ASSERT_TRUE(WaitFor(*state_, [&] { return state_->entered == 1; }));
  // Another writer appends while the intent waits: the log's lock is free.
  ASSERT_TRUE(log_.Append(Intent(2), Durability::kSoon));
  EXPECT_FALSE(intent_done) << "the second append waited for the first one's copy";
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->hold = false;
    state_->changed.notify_all();
  }
  intent.join();
  EXPECT_EQ(file_.lines().size(), 2u);
}

TEST_F(Forwarding, AnAppendThatFailedSendsNothing) {
  file_.set_fail(true);
  EXPECT_FALSE(log_.Append(Intent(1), Durability::kSynced));
  forwarder_.Stop();
  EXPECT_EQ(forwarder_.sent(), 0u);
  EXPECT_TRUE(state_->received.empty());
}

TEST_F(Forwarding, AStoreThatIsDownGetsEveryRecordOnceItIsBackAndTheLogSaysSo) {
  RecordTroubleInTheLog();
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->down = true;
  }
  // A synced append does not wait out the whole kSyncWait once delivery is known to fail.
  for (int k = 0; k < 3; ++k) ASSERT_TRUE(log_.Append(Intent(k), Durability::kSynced));
  ASSERT_TRUE(WaitFor(*state_, [&] { return state_->refused >= 2; }));
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->down = false;
  }
  // The three intents, the "failing" event, and then the "resumed" event, in log order.
  ASSERT_TRUE(WaitFor(*state_, [&] { return state_->received.size() == 5; }));
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    EXPECT_EQ(state_->received, file_.lines());
  }
  forwarder_.Stop();
  std::lock_guard<std::mutex> lock(trouble_mutex_);
  ASSERT_EQ(trouble_.size(), 2u);
  EXPECT_EQ(trouble_[0]["state"], "failing");
  EXPECT_EQ(trouble_[0]["error"], "log store down (fake)");
  EXPECT_EQ(trouble_[1]["state"], "resumed");
  EXPECT_EQ(trouble_[1]["lost"], 0);
}

TEST_F(Forwarding, AStoreThatFlapsIsReportedOnceNotOnEveryChange) {
  // A UDP port nothing listens on: every other send fails (the refusal of one datagram comes
  // back on the next send). Reporting each change would write records without end.
  RecordTroubleInTheLog();
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->flap = true;
  }
  for (int k = 0; k < 4; ++k) ASSERT_TRUE(log_.Append(Intent(k), Durability::kSoon));
  ASSERT_TRUE(WaitFor(*state_, [&] { return state_->received.size() == 5; }));
  forwarder_.Stop();
  std::lock_guard<std::mutex> lock(trouble_mutex_);
  ASSERT_EQ(trouble_.size(), 1u);
  EXPECT_EQ(trouble_[0]["state"], "failing");
  EXPECT_EQ(file_.lines().size(), 5u);
  EXPECT_TRUE(forwarder_.health().failing);
}

TEST(AuditForwarder, AFullQueueDropsTheOldestAndCountsThem) {
  auto state = std::make_shared<SinkState>();
  state->down = true;
  AuditForwarder f(std::make_unique<fakes::FakeForwardSink>(state));
  for (std::size_t k = 0; k < AuditForwarder::kMaxQueued + 5; ++k) f.Forward("line " + std::to_string(k));
  EXPECT_EQ(f.lost(), 5u);
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->down = false;
  }
  ASSERT_TRUE(WaitFor(*state, [&] { return state->received.size() == AuditForwarder::kMaxQueued; }));
  std::lock_guard<std::mutex> lock(state->mutex);
  EXPECT_EQ(state->received.front(), "line 0");  // the one being sent is kept
  EXPECT_EQ(state->received[1], "line 6");
  EXPECT_EQ(state->received.back(), "line " + std::to_string(AuditForwarder::kMaxQueued + 4));
}

TEST(AuditForwarder, StopSendsWhatIsQueued) {
  auto state = std::make_shared<SinkState>();
  state->delay = std::chrono::milliseconds(5);
  AuditForwarder f(std::make_unique<fakes::FakeForwardSink>(state));
  for (int k = 0; k < 20; ++k) f.Forward("line " + std::to_string(k));
  f.Stop();
  EXPECT_EQ(f.sent(), 20u);
  EXPECT_EQ(f.lost(), 0u);
  f.Forward("after stop");
  EXPECT_EQ(f.lost(), 1u);
}

TEST(AuditForwarder, AGapRecordIsSentBeforeTheRecordThatFoundIt) {
  const auto dir = std::filesystem::temp_directory_path() / ("labgate-fwd-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "audit.jsonl").string();
  {
    std::ofstream out(path, std::ios::trunc);
    out << Chain(1)[0] << "\n" << R"({"v":1,"seq":2,"cut off)";
  }
  auto state = std::make_shared<SinkState>();
  {
    AuditForwarder f(std::make_unique<fakes::FakeForwardSink>(state));
    FileAuditStorage file(path);
    ForwardingAuditStorage storage(file, {&f});
    fakes::FakeClock clock;
    AuditLog log(storage, clock);
    ASSERT_TRUE(log.Append(EncodeEvent(Event{"node.paired", {}, "n1", Json::object()}), Durability::kSynced));
    f.Stop();
  }
  std::filesystem::remove_all(dir);
  ASSERT_EQ(state->received.size(), 2u);
  EXPECT_EQ(Parse(state->received[0])["event"], "audit.gap");
  EXPECT_EQ(Parse(state->received[0])["seq"], 2);
  EXPECT_EQ(Parse(state->received[1])["event"], "node.paired");
  EXPECT_EQ(Parse(state->received[1])["seq"], 3);
}

}  // namespace
}  // namespace labgate::audit
