// [audit] forward: the real binary sends every record to journald's native socket or to a
// syslog server (UDP, TCP, unix), each a socket this test binds; `audit verify --against` then
// finds what an attacker with the gateway user's rights did to the local log afterwards.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include "audit/audit_files.h"
#include "audit/audit_log.h"
#include "fakes/journal_entry.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;


// What someone who can write the gateway's files does to hide records: rewrite the log with
// `keep`'s records only, sealed again into a chain that verifies, and the head to match.
void RewriteLog(const std::string& log, const std::function<bool(std::size_t)>& keep) {
  std::vector<std::string> out;
  const auto lines = ReadLines(log);
  for (std::size_t k = 0; k < lines.size(); ++k) {
    if (!keep(k)) continue;
    Json body = Json::parse(lines[k]);
    const std::string ts = body["ts"];
    for (const char* key : {"v", "seq", "ts", "prev", "hash"}) body.erase(key);
    auto line = audit::SealRecord(body, out.empty() ? std::string_view() : std::string_view(out.back()), ts);
    ASSERT_TRUE(line);
    out.push_back(*line);
  }
  WriteLines(log, out);
  const Json last = Json::parse(out.back());
  std::ofstream(audit::HeadPath(log), std::ios::trunc) << audit::EncodeHead({last["seq"], last["hash"]});
}

// A datagram socket bound at `path` (journald's or /dev/log's place); Receive reads one
// datagram, or the memfd journald would be passed for a large entry.
class UnixDatagramListener {
 public:
  explicit UnixDatagramListener(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  }
  ~UnixDatagramListener() { ::close(fd_); }
  std::optional<std::string> Receive(int timeout_ms = 10000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
    std::string buf(1 << 20, '\0');
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return std::nullopt;
    if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) {
      int memfd;
      std::memcpy(&memfd, CMSG_DATA(c), sizeof memfd);
      ++memfds_;
      std::string data;
      char chunk[65536];
      for (ssize_t r; (r = ::pread(memfd, chunk, sizeof chunk, static_cast<off_t>(data.size()))) > 0;) {
        data.append(chunk, static_cast<std::size_t>(r));
      }
      ::close(memfd);
      return data;
    }
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
  int memfds() const { return memfds_; }

 private:
  int fd_ = -1;
  int memfds_ = 0;
};

// A UDP socket on 127.0.0.1 and an ephemeral port.
class UdpListener {
 public:
  UdpListener() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~UdpListener() { ::close(fd_); }
  int port() const { return port_; }
  std::optional<std::string> Receive(int timeout_ms = 10000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
    std::string buf(70000, '\0');
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A TCP syslog server on 127.0.0.1:`port`: accepts connections and splits octet-counted frames.
class TcpListener {
 public:
  explicit TcpListener(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    EXPECT_EQ(::listen(fd_, 8), 0);
  }
  ~TcpListener() {
    for (int c : clients_) ::close(c);
    ::close(fd_);
  }
  // Reads what arrives within `timeout_ms` and returns the complete frames so far.
  std::vector<std::string> Frames(std::size_t want, int timeout_ms = 10000) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Split().size() < want && std::chrono::steady_clock::now() < until) {
      std::vector<pollfd> fds{{fd_, POLLIN, 0}};
      for (int c : clients_) fds.push_back({c, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
      if (fds[0].revents & POLLIN) clients_.push_back(::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC));
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        char buf[65536];
        ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
        if (n > 0) stream_.append(buf, static_cast<std::size_t>(n));
      }
    }
    return Split();
  }

 private:
  std::vector<std::string> Split() const {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < stream_.size()) {
      auto sp = stream_.find(' ', i);
      if (sp == std::string::npos) break;
      const std::size_t len = std::stoul(stream_.substr(i, sp - i));
      if (sp + 1 + len > stream_.size()) break;
      out.push_back(stream_.substr(sp + 1, len));
      i = sp + 1 + len;
    }
    return out;
  }

  int fd_ = -1;
  std::vector<int> clients_;
  std::string stream_;
};

class AuditForward : public ::testing::Test {
 protected:
  void SetUp() override { log_ = dir_.path() + "/state/audit.jsonl"; }
  std::string Config(const std::string& audit_table) {
    return dir_.Write("hosts.toml", "[gateway]\nstate_dir = \"" + dir_.path() + "/state\"\naudit_log = \"" + log_ +
                                        "\"\n\n[audit]\n" + audit_table);
  }
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunToCompletion(argv, dir_.path());
  }
  void Runs(const std::string& config, int n) {
    for (int k = 0; k < n; ++k) {
      auto c = Labgate({"run", "local", "--config", config, "--", "echo", "hi" + std::to_string(k)});
      ASSERT_EQ(c.status, 0) << c.err;
    }
  }
  Completed VerifyAgainst(const std::string& config, const std::string& copy, bool json = false) {
    std::vector<std::string> args = {"audit", "verify", "--config", config, "--against", copy};
    if (json) args.push_back("--json");
    return Labgate(args);
  }

  TempDir dir_;
  std::string log_;
};

TEST_F(AuditForward, JournaldGetsEveryRecordAndVerifyAgainstFindsARemovedOne) {
  const std::string sock = dir_.path() + "/journal.sock";
  UnixDatagramListener journal(sock);
  const std::string config = Config("forward = \"journald\"\njournald_socket = \"" + sock + "\"\n");
  Runs(config, 3);
  const auto local = ReadLines(log_);
  ASSERT_EQ(local.size(), 6u);

  // Every record, as journald would store it, and as `journalctl -o json` prints it.
  std::vector<std::string> exported;
  for (std::size_t k = 0; k < local.size(); ++k) {
    auto entry = journal.Receive();
    ASSERT_TRUE(entry) << "entry " << k << " did not arrive";
    bool malformed = true;
    auto fields = fakes::ParseJournalEntry(*entry, &malformed);
    ASSERT_FALSE(malformed);
    const Json record = Json::parse(local[k]);
    EXPECT_EQ(fields.find("MESSAGE_ID")->second, "5f0c7d2a9b3e4c61a8d7e2f41b6c9a03");
    EXPECT_EQ(fields.find("LABGATE_SEQ")->second, std::to_string(record["seq"].get<int>()));
    EXPECT_EQ(fields.find("LABGATE_HASH")->second, record["hash"]);
    EXPECT_EQ(fields.find("LABGATE_RECORD")->second, local[k]);
    EXPECT_EQ(fields.find("LABGATE_LOG")->second, log_);
    Json j = {{"__REALTIME_TIMESTAMP", "1"}, {"_UID", std::to_string(::getuid())}, {"_COMM", "labgate"}};
    for (const auto& [key, value] : fields) j[key] = value;
    exported.push_back(j.dump());
  }
  // What another user on the machine (the assistant's account, say) can add to the journal: a
  // labgate-looking entry contradicting seq 3. journald stamps its real uid. And an entry of
  // another gateway's log.
  exported.push_back(Json{{"MESSAGE_ID", "5f0c7d2a9b3e4c61a8d7e2f41b6c9a03"}, {"LABGATE_SEQ", "3"},
                          {"LABGATE_HASH", std::string(64, 'f')}, {"LABGATE_LOG", log_}, {"_UID", "65534"}}
                         .dump());
  exported.push_back(Json{{"LABGATE_SEQ", "2"}, {"LABGATE_HASH", std::string(64, 'e')},
                          {"LABGATE_LOG", "/var/lib/other/audit.jsonl"}, {"_UID", std::to_string(::getuid())}}
                         .dump());
  const std::string copy = dir_.path() + "/journal-export.json";
  WriteLines(copy, exported);

  auto c = VerifyAgainst(config, copy);
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("copy matches: 6 of the copy's records (seq 1 to 6)"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("warning: 1 entry sent by uid 65534 were left out"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("note: 1 entries of other audit logs were left out"), std::string::npos) << c.out;

  // The record of the second run's intent goes, and the chain is sealed again: the local check
  // alone passes, the copy does not.
  RewriteLog(log_, [](std::size_t k) { return k != 2; });
  c = Labgate({"audit", "verify", "--config", config});
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  c = VerifyAgainst(config, copy, true);
  EXPECT_EQ(c.status, 1) << c.out << c.err;
  const Json report = Json::parse(c.out);
  EXPECT_FALSE(report["ok"]);
  EXPECT_TRUE(report["chain"]["ok"]);
  ASSERT_FALSE(report["problems"].empty());
  EXPECT_EQ(report["problems"][0]["seq"], 3);
  EXPECT_EQ(report["matched"], 2);
}

TEST_F(AuditForward, JournaldTakesARecordLargerThanADatagramThroughAMemfd) {
  const std::string sock = dir_.path() + "/journal.sock";
  UnixDatagramListener journal(sock);
  const std::string config = Config("forward = \"journald\"\njournald_socket = \"" + sock + "\"\n");
  // Three arguments of 100 kB: the intent's record is larger than a unix datagram may be.
  const std::string big(100000, 'x');
  auto c = Labgate({"run", "local", "--config", config, "--", "true", big, big, big});
  ASSERT_EQ(c.status, 0) << c.err;
  const auto local = ReadLines(log_);
  ASSERT_EQ(local.size(), 2u);
  ASSERT_GT(local[0].size(), 300000u);
  auto entry = journal.Receive();
  ASSERT_TRUE(entry);
  EXPECT_EQ(journal.memfds(), 1);
  auto fields = fakes::ParseJournalEntry(*entry);
  EXPECT_EQ(fields.find("LABGATE_RECORD")->second, local[0]);
  ASSERT_TRUE(journal.Receive());
}

TEST_F(AuditForward, SyslogOverUdpCarriesSeqAndHashAndVerifyAgainstFindsACutTail) {
  UdpListener server;
  const std::string config =
      Config("forward = \"syslog\"\nsyslog_address = \"udp:127.0.0.1:" + std::to_string(server.port()) +
             "\"\nsyslog_facility = \"local3\"\n");
  Runs(config, 2);
  const auto local = ReadLines(log_);
  ASSERT_EQ(local.size(), 4u);
  std::vector<std::string> stored;
  const std::regex header(R"re(^<(\d+)>1 \S+ \S+ labgate \d+ (intent|result) \[labgate@32473 seq="(\d+)" hash="([0-9a-f]{64})" log="([^"]+)"\] )re"
                          "\xEF\xBB\xBF(.*)$");
  for (std::size_t k = 0; k < local.size(); ++k) {
    auto message = server.Receive();
    ASSERT_TRUE(message) << "message " << k << " did not arrive";
    std::smatch m;
    ASSERT_TRUE(std::regex_match(*message, m, header)) << *message;
    EXPECT_EQ(m[1], "158");  // local3 (19) * 8 + informational (6)
    const Json record = Json::parse(local[k]);
    EXPECT_EQ(m[3], std::to_string(record["seq"].get<int>()));
    EXPECT_EQ(m[4], record["hash"]);
    EXPECT_EQ(m[5], log_);
    EXPECT_EQ(m[6], local[k]);
    // As rsyslog's traditional file format keeps it: no structured data, the message whole.
    stored.push_back("Dec  5 09:30:00 gw1 labgate[1]: " + m[6].str());
  }
  const std::string copy = dir_.path() + "/syslog";
  stored.insert(stored.begin(), "Dec  5 09:29:59 gw1 sshd[7]: Accepted publickey for alice");
  WriteLines(copy, stored);
  auto c = VerifyAgainst(config, copy);
  EXPECT_EQ(c.status, 0) << c.out << c.err;

  // The last run's two records are cut off, and the head rewritten to match.
  RewriteLog(log_, [](std::size_t k) { return k < 2; });
  EXPECT_EQ(Labgate({"audit", "verify", "--config", config}).status, 0);
  c = VerifyAgainst(config, copy);
  EXPECT_EQ(c.status, 1) << c.out;
  EXPECT_NE(c.out.find("seq 3: copied, but the local log ends at seq 2: records were cut off its end"),
            std::string::npos)
      << c.out;
}

TEST_F(AuditForward, AnEditedRecordIsFoundEvenWhenTheChainWasSealedAgain) {
  UdpListener server;
  const std::string config =
      Config("forward = \"syslog\"\nsyslog_address = \"udp:127.0.0.1:" + std::to_string(server.port()) + "\"\n");
  Runs(config, 2);
  std::vector<std::string> stored;
  for (int k = 0; k < 4; ++k) {
    auto message = server.Receive();
    ASSERT_TRUE(message);
    stored.push_back(*message);
  }
  const std::string copy = dir_.path() + "/syslog";
  WriteLines(copy, stored);
  // The first run becomes `echo harmless`, every hash from there on recomputed.
  auto lines = ReadLines(log_);
  lines[0].replace(lines[0].find("hi0"), 3, "harmless");
  WriteLines(log_, lines);
  RewriteLog(log_, [](std::size_t) { return true; });
  EXPECT_EQ(Labgate({"audit", "verify", "--config", config}).status, 0);
  auto c = VerifyAgainst(config, copy);
  EXPECT_EQ(c.status, 1) << c.out;
  EXPECT_NE(c.out.find("seq 1: the local record's hash is"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("copy DIFFERS: 0 of the copy's records"), std::string::npos) << c.out;
}

TEST_F(AuditForward, SyslogOverTcpWhileTheServerIsDownIsSaidInTheLocalLogAndDoesNotHoldCommands) {
  const int port = FreePort();
  const std::string config =
      Config("forward = \"syslog\"\nsyslog_address = \"tcp:127.0.0.1:" + std::to_string(port) + "\"\n");
  const auto started = std::chrono::steady_clock::now();
  Runs(config, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
  bool said = false;
  for (const auto& r : ReadJsonLines(log_)) {
    if (r.value("event", "") == "audit.forward" && r["details"]["state"] == "failing") {
      said = true;
      EXPECT_NE(r["details"]["error"].get<std::string>().find("cannot connect to the syslog server tcp:127.0.0.1:"),
                std::string::npos);
    }
  }
  EXPECT_TRUE(said) << "no audit.forward event in the local log";

  TcpListener server(port);
  const std::size_t before = ReadLines(log_).size();
  Runs(config, 1);
  auto frames = server.Frames(2);
  ASSERT_EQ(frames.size(), 2u);
  const auto local = ReadLines(log_);
  ASSERT_EQ(local.size(), before + 2);
  EXPECT_NE(frames[0].find(local[before]), std::string::npos);
  EXPECT_NE(frames[1].find(local[before + 1]), std::string::npos);
  const std::string copy = dir_.path() + "/syslog";
  WriteLines(copy, frames);
  auto c = VerifyAgainst(config, copy);
  EXPECT_EQ(c.status, 0) << c.out;
}

TEST_F(AuditForward, AUdpPortNobodyListensOnIsReportedOnceNotInALoop) {
  // The refusal of one datagram comes back on the next send, so delivery seems to fail and work
  // by turns; each turn written as an audit record would grow the log without end.
  int port = 0;
  {
    UdpListener closed;
    port = closed.port();
  }
  const std::string config =
      Config("forward = \"syslog\"\nsyslog_address = \"udp:127.0.0.1:" + std::to_string(port) + "\"\n");
  Runs(config, 3);
  int failing = 0;
  int resumed = 0;
  const auto records = ReadJsonLines(log_);
  for (const auto& r : records) {
    if (r.value("event", "") != "audit.forward") continue;
    (r["details"]["state"] == "failing" ? failing : resumed) += 1;
  }
  EXPECT_GE(failing, 1) << "the refusals went unnoticed";
  EXPECT_LE(failing, 3) << "more than one report per process";
  EXPECT_EQ(resumed, 0);
  EXPECT_LE(records.size(), 9u);
}

TEST_F(AuditForward, SyslogOverAUnixDatagramSocket) {
  const std::string sock = dir_.path() + "/dev-log";
  UnixDatagramListener server(sock);
  const std::string config = Config("forward = [\"syslog\"]\nsyslog_address = \"unix:" + sock + "\"\n");
  Runs(config, 1);
  const auto local = ReadLines(log_);
  for (const auto& line : local) {
    auto message = server.Receive();
    ASSERT_TRUE(message);
    EXPECT_EQ(message->substr(0, 5), "<86>1");
    EXPECT_NE(message->find(line), std::string::npos);
  }
}

TEST_F(AuditForward, ACopyWithNoRecordsIsNotAPass) {
  const std::string config = Config("");
  Runs(config, 1);
  const std::string copy = dir_.Write("empty.log", "Dec  5 09:29:59 gw1 sshd[7]: Accepted publickey for alice\n");
  auto c = VerifyAgainst(config, copy);
  EXPECT_EQ(c.status, 1);
  EXPECT_NE(c.out.find("holds no labgate audit records"), std::string::npos) << c.out;
}

}  // namespace
}  // namespace labgate::testing
