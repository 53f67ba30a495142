#include "capabilities/location_fix.h"

#include <cmath>
#include <ctime>

#include "core/clock.h"
#include "core/json_parse.h"

namespace labgate::capabilities {
namespace {

using core::ErrorCode;
using core::MakeError;
using Json = nlohmann::json;

Json NumberOrNull(const Json& object, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (object.contains(key) && object[key].is_number()) return object[key];
  }
  return nullptr;
}

bool ValidLatLon(const Json& fix) {
  const double lat = fix["lat"].get<double>();
  const double lon = fix["lon"].get<double>();
  return std::isfinite(lat) && std::isfinite(lon) && std::fabs(lat) <= 90 && std::fabs(lon) <= 180;
}

}  // namespace

core::Result<Json> ParseGpsdReport(std::string_view line) {
  Json tpv = core::ParseUntrustedJson(line);
  if (!tpv.is_object() || !tpv.contains("class") || tpv["class"] != "TPV") {
    return MakeError(ErrorCode::kParse, "gpsd sent something other than a TPV report");
  }
  const int mode = tpv.contains("mode") && tpv["mode"].is_number_integer() ? tpv["mode"].get<int>() : 0;
  if (mode < 2 || !tpv.contains("lat") || !tpv.contains("lon") || !tpv["lat"].is_number() || !tpv["lon"].is_number()) {
    return MakeError(ErrorCode::kUnavailable, "gpsd has no position fix yet");
  }
  Json fix;
  fix["lat"] = tpv["lat"];
  fix["lon"] = tpv["lon"];
  if (tpv.contains("eph") && tpv["eph"].is_number()) {
    fix["accuracyMeters"] = tpv["eph"];
  } else if (tpv.contains("epx") && tpv.contains("epy") && tpv["epx"].is_number() && tpv["epy"].is_number()) {
    fix["accuracyMeters"] = std::hypot(tpv["epx"].get<double>(), tpv["epy"].get<double>());
  } else {
    fix["accuracyMeters"] = nullptr;
  }
  fix["altitudeMeters"] = mode == 3 ? NumberOrNull(tpv, {"altHAE", "altMSL", "alt"}) : Json(nullptr);
  fix["speedMps"] = NumberOrNull(tpv, {"speed"});
  fix["headingDeg"] = NumberOrNull(tpv, {"track"});
  fix["timestamp"] = tpv.contains("time") && tpv["time"].is_string() ? tpv["time"] : Json(nullptr);
  fix["source"] = "gpsd";
  fix["fix"] = mode == 3 ? "3d" : "2d";
  if (!ValidLatLon(fix)) return MakeError(ErrorCode::kParse, "gpsd reported a position outside the globe");
  return fix;
}

core::Result<Json> ParseTermuxLocation(std::string_view text, std::chrono::system_clock::time_point now) {
  Json j = core::ParseUntrustedJson(text);
  if (!j.is_object() || !j.contains("latitude") || !j.contains("longitude") || !j["latitude"].is_number() ||
      !j["longitude"].is_number()) {
    std::string what = j.is_object() && j.contains("API_ERROR") ? ": " + j["API_ERROR"].dump() : "";
    return MakeError(ErrorCode::kUnavailable, "termux-location returned no position" + what +
                                                  "; allow location access for Termux:API and turn location on");
  }
  Json fix;
  fix["lat"] = j["latitude"];
  fix["lon"] = j["longitude"];
  fix["accuracyMeters"] = NumberOrNull(j, {"accuracy"});
  fix["altitudeMeters"] = NumberOrNull(j, {"altitude"});
  fix["speedMps"] = NumberOrNull(j, {"speed"});
  fix["headingDeg"] = NumberOrNull(j, {"bearing"});
  // A fix older than a year is as good as none; bounding it keeps `now - age` from overflowing.
  const auto age = std::chrono::milliseconds(
      j.contains("elapsedMs") ? core::IntegerIn(j["elapsedMs"], 0, 365LL * 24 * 3600 * 1000).value_or(0) : 0);
  fix["timestamp"] = core::FormatTimestamp(now - age);
  fix["source"] = "termux:" + (j.contains("provider") && j["provider"].is_string() ? j["provider"].get<std::string>()
                                                                                   : std::string("unknown"));
  if (!ValidLatLon(fix)) return MakeError(ErrorCode::kParse, "termux-location reported a position outside the globe");
  return fix;
}

Json StaticFix(const LocationConfig& config, std::chrono::system_clock::time_point now) {
  Json fix;
  fix["lat"] = config.latitude.value_or(0);
  fix["lon"] = config.longitude.value_or(0);
  fix["accuracyMeters"] = config.accuracy_m;
  fix["altitudeMeters"] = config.altitude_m ? Json(*config.altitude_m) : Json(nullptr);
  fix["speedMps"] = 0;
  fix["headingDeg"] = nullptr;
  fix["timestamp"] = core::FormatTimestamp(now);
  fix["source"] = "static";
  return fix;
}

}  // namespace labgate::capabilities
