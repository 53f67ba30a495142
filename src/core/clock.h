#pragma once

#include <chrono>
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

/// RFC 3339 UTC with milliseconds, e.g. 2026-11-24T09:30:00.123Z.
std::string FormatTimestamp(std::chrono::system_clock::time_point t);

}  // namespace labgate::core
