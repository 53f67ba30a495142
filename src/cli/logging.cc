#include "cli/logging.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <memory>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <string>

namespace labgate::cli {
namespace {

// %* in the pattern: "<N>", the line's journal priority.
class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string prefix = "<" + std::to_string(JournalPriority(msg.level)) + ">";
    dest.append(prefix.data(), prefix.data() + prefix.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PriorityFlag>(); }
};

}  // namespace

bool IsJournalStream(std::string_view journal_stream, dev_t stderr_dev, ino_t stderr_ino) {
  const auto colon = journal_stream.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  const char* begin = journal_stream.data();
  const char* end = begin + journal_stream.size();
  auto parsed_dev = std::from_chars(begin, begin + colon, dev);
  auto parsed_ino = std::from_chars(begin + colon + 1, end, ino);
  if (parsed_dev.ec != std::errc() || parsed_dev.ptr != begin + colon || parsed_ino.ec != std::errc() ||
      parsed_ino.ptr != end || colon == 0 || colon + 1 == journal_stream.size()) {
    return false;
  }
  return dev == static_cast<unsigned long long>(stderr_dev) && ino == static_cast<unsigned long long>(stderr_ino);
}

int JournalPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
      return 2;  // LOG_CRIT
    case spdlog::level::err:
      return 3;  // LOG_ERR
    case spdlog::level::warn:
      return 4;  // LOG_WARNING
    case spdlog::level::info:
      return 6;  // LOG_INFO
    default:
      return 7;  // LOG_DEBUG: debug and trace
  }
}

bool StderrIsJournal() {
  static const bool journal = [] {
    const char* stream = std::getenv("JOURNAL_STREAM");
    struct stat st {};
    return stream != nullptr && ::fstat(STDERR_FILENO, &st) == 0 && IsJournalStream(stream, st.st_dev, st.st_ino);
  }();
  return journal;
}

void SetUpLogging(spdlog::level::level_enum fallback) {
  auto logger = spdlog::stderr_logger_mt("labgate");
  if (StderrIsJournal()) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<PriorityFlag>('*').set_pattern("%*%l %v");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_default_logger(logger);
  const char* env = std::getenv("LABGATE_LOG");
  spdlog::set_level(env ? spdlog::level::from_str(env) : fallback);
}

}  // namespace labgate::cli
