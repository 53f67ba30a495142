#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <sys/types.h>

#include "audit/audit_log.h"
#include "core/result.h"

namespace labgate::audit {

/// When process `pid` started, in clock ticks since boot (/proc/PID/stat, field 22); with the
/// pid, this names one process even after the pid is reused. nullopt when it is not running.
std::optional<std::uint64_t> ProcessStartTicks(pid_t pid);

/// After a labgate process was killed mid-call (kill -9, OOM, power), its intents have no
/// result. For every intent in the newest `scan_bytes` of the audit log at `path` that has no
/// result and whose process (the intent's `proc`: pid and start time) no longer runs, appends a
/// result saying it was interrupted and that whatever it started may have finished, or not.
/// Intents of processes still running (another `labgate mcp`) are left alone. Returns how many
/// were recorded.
core::Result<int> RecordInterrupted(AuditLog& log, const std::string& path, std::uint64_t scan_bytes = 8ULL << 20);

}  // namespace labgate::audit
