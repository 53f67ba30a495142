#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace labgate::core {

/// Wall-clock and monotonic time, injected so tests can fix timestamps.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
  virtual std::chrono::steady_clock::time_point SteadyNow() const = 0;
};

/// The real clocks. Thread-safe.
class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point SteadyNow() const override { return std::chrono::steady_clock::now(); }
};

/// Milliseconds since the Unix epoch.
inline std::int64_t EpochMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// RFC 3339 UTC with milliseconds, e.g. 2026-11-24T09:30:00.123Z.
std::string FormatTimestamp(std::chrono::system_clock::time_point t);

}  // namespace labgate::core
