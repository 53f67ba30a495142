#include "audit/interrupted.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "core/json_parse.h"

namespace labgate::audit {

std::optional<std::uint64_t> ProcessStartTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  // After "pid (comm)": state is field 3, starttime field 22.
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return std::nullopt;
  }
  try {
    return std::stoull(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

core::Result<int> RecordInterrupted(AuditLog& log, const std::string& path, std::uint64_t scan_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;  // no log yet: nothing was interrupted
  const off_t size = ::lseek(fd, 0, SEEK_END);
  const off_t start = size > static_cast<off_t>(scan_bytes) ? size - static_cast<off_t>(scan_bytes) : 0;
  std::string text(static_cast<std::size_t>(size - start), '\0');
  const ssize_t got = ::pread(fd, text.data(), text.size(), start);
  ::close(fd);
  if (got < 0) return core::MakeError(core::ErrorCode::kIo, "cannot read audit log " + path);
  text.resize(static_cast<std::size_t>(got));
  if (start > 0) text.erase(0, text.find('\n') == std::string::npos ? text.size() : text.find('\n') + 1);

  struct Open {
    Json intent;
    pid_t pid = 0;
    std::uint64_t started = 0;
  };
  std::map<std::string, Open> open;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const Json record = core::ParseUntrustedJson(line);
    if (!record.is_object()) continue;
    const std::string id = core::StringOr(record, "actionId");
    if (id.empty()) continue;
    const std::string kind = core::StringOr(record, "kind");
    if (kind == "result") {
      open.erase(id);
    } else if (kind == "intent" && record.contains("proc") && record["proc"].is_object()) {
      const auto pid = core::IntegerIn(record["proc"].value("pid", Json()), 1, 1 << 22);
      const auto started = core::IntegerIn(record["proc"].value("start", Json()), 0, INT64_MAX);
      if (pid && started) open[id] = Open{record, static_cast<pid_t>(*pid), static_cast<std::uint64_t>(*started)};
    }
  }
  int recorded = 0;
  for (const auto& [id, o] : open) {
    const auto now = ProcessStartTicks(o.pid);
    if (now && *now == o.started) continue;  // that process is still at work
    Outcome outcome;
    outcome.action_id = id;
    outcome.target = core::StringOr(o.intent, "target");
    outcome.path = core::StringOr(o.intent, "path");
    outcome.action = core::StringOr(o.intent, "action");
    outcome.escalated = true;
    outcome.error = "interrupted: the labgate process (pid " + std::to_string(o.pid) +
                    ") ended before this finished, so how it ended is unknown; check the target";
    Json body = EncodeOutcome(outcome);
    body["interrupted"] = true;
    if (auto ok = log.Append(std::move(body), Durability::kSoon); !ok) return ok.error();
    ++recorded;
  }
  return recorded;
}

}  // namespace labgate::audit
