#pragma once

#include <spdlog/common.h>
#include <sys/types.h>

#include <string_view>

/// Where labgate's log lines go: stderr, and under systemd the journal, with priorities.
namespace labgate::cli {

/// Whether stderr is the journal stream systemd connected: JOURNAL_STREAM ("DEV:INO", as
/// systemd.exec(5) sets it) names the device and inode of fd 2. A process whose stderr was
/// redirected (an MCP client's pipe) inherits the variable but not the stream. Pure.
bool IsJournalStream(std::string_view journal_stream, dev_t stderr_dev, ino_t stderr_ino);

/// The syslog priority journald files a line of this level under (sd-daemon(3) "<N>" prefixes).
int JournalPriority(spdlog::level::level_enum level);

/// Whether this process's stderr is the journal (checked once).
bool StderrIsJournal();

/// The default logger on stderr at LABGATE_LOG or `fallback`. On the journal each line starts
/// with its priority and carries no timestamp (journald keeps its own); elsewhere
/// "2026-12-05T06:18:57.989 info ...".
void SetUpLogging(spdlog::level::level_enum fallback);

}  // namespace labgate::cli
