#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string_view>

#include "capabilities/device_config.h"
#include "core/result.h"

/// Location fixes as DESIGN §5 shapes them: {lat, lon, accuracyMeters, altitudeMeters,
/// speedMps, headingDeg, timestamp, source}, null where the source does not know.
namespace labgate::capabilities {

/// The fix in a gpsd TPV report (one JSON line; mode 2 or 3). Accuracy is gpsd's horizontal
/// error estimate `eph`, or the root sum square of `epx` and `epy` when gpsd gave no eph.
core::Result<nlohmann::json> ParseGpsdReport(std::string_view line);

/// The fix `termux-location` prints. Termux reports the fix's age, not its time, so the
/// timestamp is `now` minus elapsedMs.
core::Result<nlohmann::json> ParseTermuxLocation(std::string_view text, std::chrono::system_clock::time_point now);

/// The configured position of a device that does not move, stamped `now`.
nlohmann::json StaticFix(const LocationConfig& config, std::chrono::system_clock::time_point now);

}  // namespace labgate::capabilities
