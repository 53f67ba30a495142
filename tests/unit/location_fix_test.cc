#include "capabilities/location_fix.h"

#include <gtest/gtest.h>

#include <chrono>

#include "core/clock.h"

namespace labgate::capabilities {
namespace {

using core::ErrorCode;
using Json = nlohmann::json;

// What gpsd 3.22 writes for a 3D fix (gpspipe -w).
constexpr char kGpsd322Tpv[] =
    R"({"class":"TPV","device":"/dev/pts/1","mode":3,"time":"2024-01-15T12:00:01.000Z","ept":0.005,)"
    R"("lat":52.520008000,"lon":13.404954000,"altHAE":81.0000,"altMSL":34.0000,"alt":34.0000,"epv":34.500,)"
    R"("track":0.0000,"magtrack":4.0590,"magvar":4.1,"speed":0.000,"climb":0.000,"epc":69.00,"geoidSep":47.000,)"
    R"("eph":17.100,"sep":34.200})";

const std::chrono::system_clock::time_point kNow{std::chrono::seconds(1795000000)};

TEST(GpsdReport, Gpsd322ThreeDimensionalFix_AllFields) {
  auto fix = ParseGpsdReport(kGpsd322Tpv);
  ASSERT_TRUE(fix.ok()) << fix.error().message;
  EXPECT_DOUBLE_EQ((*fix)["lat"].get<double>(), 52.520008);
  EXPECT_DOUBLE_EQ((*fix)["lon"].get<double>(), 13.404954);
  EXPECT_DOUBLE_EQ((*fix)["accuracyMeters"].get<double>(), 17.1);
  EXPECT_DOUBLE_EQ((*fix)["altitudeMeters"].get<double>(), 81.0);  // altHAE, not altMSL
  EXPECT_DOUBLE_EQ((*fix)["speedMps"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ((*fix)["headingDeg"].get<double>(), 0.0);
  EXPECT_EQ((*fix)["timestamp"], "2024-01-15T12:00:01.000Z");
  EXPECT_EQ((*fix)["source"], "gpsd");
  EXPECT_EQ((*fix)["fix"], "3d");
}

TEST(GpsdReport, NoEph_AccuracyFromEpxAndEpy) {
  auto fix = ParseGpsdReport(R"({"class":"TPV","mode":3,"lat":1.5,"lon":2.5,"epx":3.0,"epy":4.0,"alt":12.0})");
  ASSERT_TRUE(fix.ok()) << fix.error().message;
  EXPECT_DOUBLE_EQ((*fix)["accuracyMeters"].get<double>(), 5.0);
}

TEST(GpsdReport, NoErrorEstimate_AccuracyNull) {
  auto fix = ParseGpsdReport(R"({"class":"TPV","mode":3,"lat":1.5,"lon":2.5,"epx":3.0})");
  ASSERT_TRUE(fix.ok()) << fix.error().message;
  EXPECT_TRUE((*fix)["accuracyMeters"].is_null());
}

TEST(GpsdReport, ThreeDimensionalWithoutAltHae_FallsBackToAltMsl) {
  auto fix = ParseGpsdReport(R"({"class":"TPV","mode":3,"lat":1.5,"lon":2.5,"altMSL":34.0,"alt":30.0})");
  ASSERT_TRUE(fix.ok()) << fix.error().message;
  EXPECT_DOUBLE_EQ((*fix)["altitudeMeters"].get<double>(), 34.0);
}

TEST(GpsdReport, Mode2_AltitudeNullFix2d) {
  auto fix = ParseGpsdReport(
      R"({"class":"TPV","mode":2,"time":"2024-01-15T12:00:01.000Z","lat":52.5,"lon":13.4,"altHAE":81.0,"eph":30.0})");
  ASSERT_TRUE(fix.ok()) << fix.error().message;
  EXPECT_TRUE((*fix)["altitudeMeters"].is_null());
  EXPECT_EQ((*fix)["fix"], "2d");
}

TEST(GpsdReport, MissingOptionalFields_Null) {
  auto fix = ParseGpsdReport(R"({"class":"TPV","mode":2,"lat":52.5,"lon":13.4})");
  ASSERT_TRUE(fix.ok()) << fix.error().message;
  EXPECT_TRUE((*fix)["speedMps"].is_null());
  EXPECT_TRUE((*fix)["headingDeg"].is_null());
  EXPECT_TRUE((*fix)["timestamp"].is_null());
}

TEST(GpsdReport, Mode1_NoFixError) {
  auto fix = ParseGpsdReport(R"({"class":"TPV","device":"/dev/pts/1","mode":1,"time":"2024-01-15T12:00:01.000Z"})");
  ASSERT_FALSE(fix.ok());
  EXPECT_EQ(fix.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(fix.error().message.find("no position fix"), std::string::npos) << fix.error().message;
}

TEST(GpsdReport, ModeWithoutLatitude_NoFixError) {
  auto fix = ParseGpsdReport(R"({"class":"TPV","mode":3,"lon":13.4})");
  ASSERT_FALSE(fix.ok());
  EXPECT_EQ(fix.error().code, ErrorCode::kUnavailable);
}

TEST(GpsdReport, NotTpv_Error) {
  auto fix = ParseGpsdReport(R"({"class":"SKY","device":"/dev/pts/1","satellites":[]})");
  ASSERT_FALSE(fix.ok());
  EXPECT_EQ(fix.error().code, ErrorCode::kParse);
  EXPECT_NE(fix.error().message.find("TPV"), std::string::npos) << fix.error().message;
}

TEST(GpsdReport, NotJson_Error) {
  EXPECT_FALSE(ParseGpsdReport("gpspipe: could not connect to gpsd localhost:2947, Connection refused").ok());
  EXPECT_FALSE(ParseGpsdReport("").ok());
  EXPECT_FALSE(ParseGpsdReport(R"(["TPV"])").ok());
}

TEST(GpsdReport, LatitudeOutsideTheGlobe_Error) {
  auto fix = ParseGpsdReport(R"({"class":"TPV","mode":3,"lat":95.0,"lon":13.4,"eph":5})");
  ASSERT_FALSE(fix.ok());
  EXPECT_EQ(fix.error().code, ErrorCode::kParse);
  EXPECT_NE(fix.error().message.find("outside the globe"), std::string::npos) << fix.error().message;
  EXPECT_FALSE(ParseGpsdReport(R"({"class":"TPV","mode":3,"lat":1.0,"lon":-181.0})").ok());
}

// What termux-location prints (Termux:API 0.50).
constexpr char kTermuxFix[] = R"({
  "latitude": 47.3769,
  "longitude": 8.5417,
  "altitude": 408.5,
  "accuracy": 12.5,
  "vertical_accuracy": 3.0,
  "bearing": 90.0,
  "speed": 1.5,
  "elapsedMs": 1500,
  "provider": "gps"
})";

TEST(TermuxLocation, Fix_AllFieldsTimestampIsNowMinusAge) {
  auto fix = ParseTermuxLocation(kTermuxFix, kNow);
  ASSERT_TRUE(fix.ok()) << fix.error().message;
  EXPECT_DOUBLE_EQ((*fix)["lat"].get<double>(), 47.3769);
  EXPECT_DOUBLE_EQ((*fix)["lon"].get<double>(), 8.5417);
  EXPECT_DOUBLE_EQ((*fix)["altitudeMeters"].get<double>(), 408.5);
  EXPECT_DOUBLE_EQ((*fix)["accuracyMeters"].get<double>(), 12.5);
  EXPECT_DOUBLE_EQ((*fix)["headingDeg"].get<double>(), 90.0);
  EXPECT_DOUBLE_EQ((*fix)["speedMps"].get<double>(), 1.5);
  EXPECT_EQ((*fix)["timestamp"], core::FormatTimestamp(kNow - std::chrono::milliseconds(1500)));
  EXPECT_EQ((*fix)["source"], "termux:gps");
}

TEST(TermuxLocation, NoAgeNoProvider_NowAndUnknown) {
  auto fix = ParseTermuxLocation(R"({"latitude":1.0,"longitude":2.0})", kNow);
  ASSERT_TRUE(fix.ok()) << fix.error().message;
  EXPECT_EQ((*fix)["timestamp"], core::FormatTimestamp(kNow));
  EXPECT_EQ((*fix)["source"], "termux:unknown");
  EXPECT_TRUE((*fix)["accuracyMeters"].is_null());
  EXPECT_TRUE((*fix)["altitudeMeters"].is_null());
}

TEST(TermuxLocation, ApiError_ErrorCarriesItsText) {
  auto fix = ParseTermuxLocation(R"({"API_ERROR":"Location permission not granted"})", kNow);
  ASSERT_FALSE(fix.ok());
  EXPECT_EQ(fix.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(fix.error().message.find("Location permission not granted"), std::string::npos) << fix.error().message;
  EXPECT_NE(fix.error().message.find("Termux:API"), std::string::npos) << fix.error().message;
}

TEST(TermuxLocation, EmptyOutput_Error) {
  auto fix = ParseTermuxLocation("", kNow);
  ASSERT_FALSE(fix.ok());
  EXPECT_EQ(fix.error().code, ErrorCode::kUnavailable);
}

TEST(TermuxLocation, OutsideTheGlobe_Error) {
  EXPECT_FALSE(ParseTermuxLocation(R"({"latitude":-91.0,"longitude":2.0})", kNow).ok());
}

TEST(StaticFix, ConfiguredPositionStampedNow) {
  LocationConfig c;
  c.backend = "static";
  c.latitude = 47.3769;
  c.longitude = 8.5417;
  c.accuracy_m = 25;
  c.altitude_m = 408;
  Json fix = StaticFix(c, kNow);
  EXPECT_DOUBLE_EQ(fix["lat"].get<double>(), 47.3769);
  EXPECT_DOUBLE_EQ(fix["lon"].get<double>(), 8.5417);
  EXPECT_DOUBLE_EQ(fix["accuracyMeters"].get<double>(), 25);
  EXPECT_DOUBLE_EQ(fix["altitudeMeters"].get<double>(), 408);
  EXPECT_EQ(fix["speedMps"], 0);
  EXPECT_TRUE(fix["headingDeg"].is_null());
  EXPECT_EQ(fix["timestamp"], core::FormatTimestamp(kNow));
  EXPECT_EQ(fix["source"], "static");
}

TEST(StaticFix, NoAltitude_Null) {
  LocationConfig c;
  c.latitude = 1;
  c.longitude = 2;
  Json fix = StaticFix(c, kNow);
  EXPECT_TRUE(fix["altitudeMeters"].is_null());
  EXPECT_DOUBLE_EQ(fix["accuracyMeters"].get<double>(), 10);
}

TEST(TermuxLocation, HugeOrOddAge_DoesNotOverflowTheTimestamp) {
  for (const char* age : {"9223372036854775807", "1e300", "-5", "\"x\""}) {
    auto fix = ParseTermuxLocation(std::string(R"({"latitude":1.0,"longitude":2.0,"elapsedMs":)") + age + "}", kNow);
    ASSERT_TRUE(fix.ok()) << age;
    EXPECT_EQ((*fix)["timestamp"], core::FormatTimestamp(kNow)) << age;
  }
}
}  // namespace
}  // namespace labgate::capabilities
