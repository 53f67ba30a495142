// `labgate audit verify|tail|query`: read-only views of the audit log named by [gateway] audit_log.
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "audit/audit_reader.h"
#include "audit/forward_format.h"
#include "cli/common.h"
#include "core/clock.h"

namespace labgate::cli {
namespace {

using audit::Json;

constexpr std::chrono::milliseconds kFollowPoll{200};

int Verify(const Args& args, const std::string& path) {
  auto report = audit::VerifyChain(path);
  if (!report) return Fail("cannot verify the audit log " + path + ": " + report.error().message);
  const audit::VerifyReport& r = *report;
  if (args.has("--json")) {
    Json j = {{"ok", r.ok},
              {"path", path},
              {"records", r.records},
              {"files", r.files},
              {"lastSeq", r.last_seq},
              {"lastHash", r.last_hash},
              {"firstBadSeq", r.first_bad_seq ? Json(*r.first_bad_seq) : Json(nullptr)},
              {"message", r.message},
              {"warnings", r.warnings}};
    std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    return r.ok ? 0 : 1;
  }
  for (const auto& warning : r.warnings) std::cerr << "labgate: warning: " << warning << "\n";
  if (r.ok) {
    std::cout << "audit log OK: " << r.records << " records in " << r.files.size() << " files, last seq " << r.last_seq
              << "\n";
    if (!r.last_hash.empty()) {
      std::cout << "last hash " << r.last_hash << " (keep a copy elsewhere to notice a wholly rewritten chain)\n";
    }
    return 0;
  }
  std::cout << "audit log BROKEN" << (r.first_bad_seq ? " at seq " + std::to_string(*r.first_bad_seq) : "") << ": "
            << r.message << "\n"
            << "nothing was changed; labgate never deletes or rewrites audit records\n";
  return 1;
}

// verify --against FILE: the local chain, then every record a copy elsewhere holds (journald's
// `journalctl -o json`, a syslog file, or a plain copy of the log) against it.
int VerifyAgainst(const Args& args, const std::string& path) {
  const std::string copy_name = args.get("--against");
  std::ifstream file;
  std::istream* in = &std::cin;
  if (copy_name != "-") {
    file.open(copy_name, std::ios::binary);
    if (!file) return Fail("cannot read the copy " + copy_name + ": " + std::strerror(errno));
    in = &file;
  }
  // Copies count only from this log, and, where journald says who sent them, from the log's
  // owner or root: anyone on the machine can write labgate-looking entries into the journal.
  struct stat owner_stat {};
  const bool owner_known = ::stat(path.c_str(), &owner_stat) == 0;
  std::vector<audit::ForwardedCopy> copies;
  std::uint64_t other_lines = 0;
  std::uint64_t other_log = 0;
  std::set<std::uint32_t> foreign_uids;
  std::uint64_t foreign = 0;
  for (std::string line; std::getline(*in, line);) {
    auto copy = audit::ParseForwardedLine(line);
    if (!copy) {
      if (!line.empty()) ++other_lines;
    } else if (!copy->log.empty() && copy->log != path) {
      ++other_log;
    } else if (copy->uid && owner_known && *copy->uid != owner_stat.st_uid && *copy->uid != 0) {
      ++foreign;
      foreign_uids.insert(*copy->uid);
    } else {
      copies.push_back(std::move(*copy));
    }
  }
  if (in->bad()) return Fail("cannot read the copy " + copy_name + ": " + std::strerror(errno));

  auto chain = audit::VerifyChain(path);
  if (!chain) return Fail("cannot verify the audit log " + path + ": " + chain.error().message);
  std::map<std::uint64_t, std::string> local;
  std::uint64_t local_last = 0;
  auto read = audit::ReadRecords(path, [&](const Json& record) {
    auto seq = record.find("seq");
    auto hash = record.find("hash");
    if (seq != record.end() && seq->is_number_unsigned() && hash != record.end() && hash->is_string()) {
      local[seq->get<std::uint64_t>()] = hash->get<std::string>();
      local_last = std::max(local_last, seq->get<std::uint64_t>());
    }
    return true;
  });
  if (!read) return Fail("cannot read the audit log " + path + ": " + read.error().message);
  const audit::CopyComparison cmp = audit::CompareWithCopy(local, local_last, copies);
  const bool ok = chain->ok && cmp.ok && !copies.empty();

  if (args.has("--json")) {
    Json problems = Json::array();
    for (const auto& p : cmp.problems) problems.push_back({{"seq", p.seq}, {"what", p.what}});
    Json j = {{"ok", ok},
              {"path", path},
              {"against", copy_name},
              {"chain", {{"ok", chain->ok}, {"records", chain->records}, {"lastSeq", chain->last_seq},
                         {"message", chain->message}}},
              {"copies", cmp.copies},
              {"matched", cmp.matched},
              {"firstCopied", cmp.first_copied},
              {"lastCopied", cmp.last_copied},
              {"uncopied", cmp.uncopied},
              {"afterCopy", cmp.after_copy},
              {"otherLines", other_lines},
              {"otherLog", other_log},
              {"foreign", foreign},
              {"foreignUids", foreign_uids},
              {"problems", problems},
              {"moreProblems", cmp.more_problems}};
    std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    return ok ? 0 : 1;
  }
  if (!chain->ok) {
    std::cout << "audit log BROKEN" << (chain->first_bad_seq ? " at seq " + std::to_string(*chain->first_bad_seq) : "")
              << ": " << chain->message << "\n";
  }
  if (foreign > 0) {
    std::string uids;
    for (auto u : foreign_uids) uids += (uids.empty() ? "" : ", ") + std::to_string(u);
    std::cout << "warning: " << foreign << " entr" << (foreign == 1 ? "y" : "ies") << " sent by uid " << uids
              << " were left out: only the log's owner (uid " << owner_stat.st_uid
              << ") and root write this log, so someone else wrote labgate-looking entries into the journal\n";
  }
  if (other_log > 0) std::cout << "note: " << other_log << " entries of other audit logs were left out\n";
  if (copies.empty()) {
    std::cout << "the copy " << copy_name << " holds no labgate audit records of " << path << " (" << other_lines
              << " other lines); export it with `journalctl -o json --all MESSAGE_ID=" << audit::kJournalMessageId
              << " LABGATE_LOG=" << path << "` or point at the syslog file that receives them\n";
    return 1;
  }
  for (const auto& p : cmp.problems) std::cout << "seq " << p.seq << ": " << p.what << "\n";
  if (cmp.more_problems > 0) std::cout << "... and " << cmp.more_problems << " more\n";
  std::cout << (ok ? "copy matches" : "copy DIFFERS") << ": " << cmp.matched << " of the copy's records (seq "
            << cmp.first_copied << " to " << cmp.last_copied << ") agree with the local chain of "
            << chain->records << " records";
  if (!cmp.problems.empty()) std::cout << "; " << cmp.problems.size() + cmp.more_problems << " do not";
  std::cout << "\n";
  if (cmp.uncopied > 0) {
    std::cout << "note: " << cmp.uncopied
              << " local record(s) in that range have no copy (lost on the way, e.g. over UDP, or written while "
                 "forwarding was off; the log's audit.forward events say when delivery failed)\n";
  }
  if (cmp.after_copy > 0) {
    std::cout << "note: " << cmp.after_copy << " local record(s) are newer than the copy's last (seq " << cmp.last_copied
              << "): the copy does not vouch for them yet\n";
  }
  if (ok) {
    std::cout << "each record's hash covers every record before it, so the copy vouches for the local chain from seq 1 "
                 "to seq "
              << cmp.last_copied << "\n";
  } else {
    std::cout << "the local log no longer holds what was sent; nothing was changed. Keep the copy: it is the record "
                 "of what happened\n";
  }
  return ok ? 0 : 1;
}

void Print(const Args& args, const Json& record) {
  if (args.has("--json")) {
    std::cout << record.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    std::cout << audit::SummarizeRecord(record) << "\n";
  }
}

int Tail(const Args& args, const std::string& path) {
  std::size_t n = 20;
  if (args.has("--lines")) {
    const std::string text = args.get("--lines");
    if (text.empty() || text.size() > 7 || text.find_first_not_of("0123456789") != std::string::npos) {
      return Fail("-n wants a number of records, e.g. -n 50; got '" + text + "'", kExitUsage);
    }
    n = std::stoul(text);
  }
  const bool follow = args.has("--follow");
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  if (follow) pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // taken with sigtimedwait, between polls

  // Opened before the tail is read, so nothing appended in between is lost; seq removes doubles.
  audit::AuditFollower follower(path, 0);
  auto tail = audit::TailRecords(path, std::max<std::size_t>(n, 1));
  if (!tail) return Fail("cannot read the audit log " + path + ": " + tail.error().message);
  for (std::size_t k = tail->size() > n ? tail->size() - n : 0; k < tail->size(); ++k) Print(args, (*tail)[k]);
  std::cout << std::flush;
  if (!follow) return 0;
  if (!tail->empty() && (*tail).back().contains("seq") && (*tail).back()["seq"].is_number_unsigned()) {
    follower.SkipThrough((*tail).back()["seq"].get<std::uint64_t>());
  }

  const auto poll = std::chrono::duration_cast<std::chrono::nanoseconds>(kFollowPoll);
  const timespec wait{static_cast<std::time_t>(poll.count() / 1000000000),
                      static_cast<long>(poll.count() % 1000000000)};
  for (;;) {
    const int sig = sigtimedwait(&stop, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) return 0;
    auto records = follower.Poll();
    if (!records) return Fail("cannot follow the audit log " + path + ": " + records.error().message);
    for (const auto& record : *records) Print(args, record);
    std::cout << std::flush;
    if (!std::cout) return 0;  // the reader went away (e.g. `| head`)
  }
}

int Query(const Args& args, const std::string& path) {
  audit::AuditFilter filter;
  if (args.has("--target")) filter.target = args.get("--target");
  if (args.has("--actor")) filter.actor = args.get("--actor");
  const auto now = core::SystemClock().Now();
  for (const char* option : {"--since", "--until"}) {
    if (!args.has(option)) continue;
    auto bound = audit::ParseTimeBound(args.get(option), now);
    if (!bound) return Fail(std::string(option) + ": " + bound.error().message, kExitUsage);
    (std::string(option) == "--since" ? filter.since : filter.until) = *bound;
  }
  if (args.has("--decision")) {
    const std::string decision = args.get("--decision");
    if (decision != "allowed" && decision != "refused") {
      return Fail("--decision is allowed or refused, not '" + decision + "'", kExitUsage);
    }
    filter.allowed = decision == "allowed";
  }
  audit::AuditQuery query(filter);
  const bool as_json = args.has("--json");
  Json matches = Json::array();
  auto stats = audit::ReadRecords(path, [&](const Json& record) {
    if (!query.Accept(record)) return true;
    if (as_json) {
      matches.push_back(record);
    } else {
      std::cout << audit::SummarizeRecord(record) << "\n";
    }
    return true;
  });
  if (!stats) return Fail("cannot read the audit log " + path + ": " + stats.error().message);
  if (as_json) std::cout << matches.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  if (stats->skipped > 0) {
    std::cerr << "labgate: warning: " << stats->skipped << " line(s) of " << path
              << " are not records and were skipped; run `labgate audit verify" << ConfigHint(args) << "`\n";
  }
  return 0;
}

}  // namespace

int AuditVerb(const Args& args) {
  if (args.positional.empty()) {
    return Fail("audit needs a subcommand: verify, tail or query (see `labgate audit --help`)", kExitUsage);
  }
  const std::string sub = args.positional[0];
  if (args.positional.size() > 1) return Fail("audit " + sub + " takes no further words", kExitUsage);
  if (sub != "verify" && sub != "tail" && sub != "query") {
    return Fail("unknown audit subcommand '" + sub + "' (verify, tail or query)", kExitUsage);
  }
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);
  const std::string& path = inv->gateway.audit_log;
  if (sub == "verify") return args.has("--against") ? VerifyAgainst(args, path) : Verify(args, path);
  if (sub == "tail") return Tail(args, path);
  return Query(args, path);
}

}  // namespace labgate::cli
