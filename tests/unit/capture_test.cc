#include "capabilities/capture.h"

#include <gtest/gtest.h>

#include <string>

#include "capabilities/backends.h"
#include "core/hashing.h"
#include "fakes/fakes.h"

namespace labgate::capabilities {
namespace {

using core::ErrorCode;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string U32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xFF), static_cast<char>((v >> 8) & 0xFF),
          static_cast<char>(v & 0xFF)};
}
// The first bytes of a PNG: enough for its size.
std::string Png(std::uint32_t width, std::uint32_t height) {
  return std::string("\x89PNG\r\n\x1a\n", 8) + U32(13) + "IHDR" + U32(width) + U32(height) +
         std::string("\x08\x02\0\0\0", 5) + U32(0);
}
std::string Box(const std::string& type, const std::string& body) {
  return U32(static_cast<std::uint32_t>(body.size() + 8)) + type + body;
}
std::string Mp4(std::uint32_t width, std::uint32_t height, std::uint32_t duration_ms) {
  const std::string mvhd = Box("mvhd", std::string(12, '\0') + U32(1000) + U32(duration_ms) + std::string(80, '\0'));
  const std::string tkhd = Box("tkhd", std::string(76, '\0') + U32(width << 16) + U32(height << 16));
  return Box("ftyp", "isom" + U32(512)) + Box("moov", mvhd + Box("trak", tkhd));
}

constexpr char kGpsdLine[] =
    R"({"class":"TPV","device":"/dev/pts/1","mode":3,"time":"2024-01-15T12:00:01.000Z","lat":52.520008,)"
    R"("lon":13.404954,"altHAE":81.0,"eph":17.1,"speed":0.0,"track":0.0})";

CaptureRequest Request(const std::string& capability, const std::string& action) {
  CaptureRequest r;
  r.capability = capability;
  r.action = action;
  r.timeout_ms = 20000;
  if (r.IsVideo()) r.duration_ms = 2000;
  return r;
}

core::ProcessOutcome Exited(int code, std::string out = "", std::string err = "") {
  core::ProcessOutcome o;
  o.exit_code = code;
  o.out.text = std::move(out);
  o.out.total_bytes = o.out.text.size();
  o.err.text = std::move(err);
  o.err.total_bytes = o.err.text.size();
  return o;
}

// --- ValidateCaptureRequest ---

struct ValidateCase {
  const char* name;
  CaptureRequest request;
  std::string names;  // what the error must name; "" means valid
};

CaptureRequest With(CaptureRequest r, const std::function<void(CaptureRequest&)>& change) {
  change(r);
  return r;
}

class ValidateTable : public ::testing::TestWithParam<ValidateCase> {};

TEST_P(ValidateTable, ErrorNamesTheArgument) {
  const auto& c = GetParam();
  auto status = ValidateCaptureRequest(c.request);
  if (c.names.empty()) {
    EXPECT_TRUE(status.ok()) << status.error().message;
  } else {
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
    EXPECT_TRUE(Contains(status.error().message, c.names)) << status.error().message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Capture, ValidateTable,
    ::testing::Values(
        ValidateCase{"ScreenSnapshot_Valid", Request("screen", "snapshot"), ""},
        ValidateCase{"ScreenRecordWithFps_Valid", With(Request("screen", "record"), [](auto& r) { r.fps = 30; }), ""},
        ValidateCase{"CameraSnapAllOptions_Valid",
                     With(Request("camera", "snap"),
                          [](auto& r) {
                            r.quality = 100;
                            r.max_width = 640;
                            r.facing = "front";
                            r.device_id = "/dev/video0";
                          }),
                     ""},
        ValidateCase{"CameraListDefault_Valid", Request("camera", "list"), ""},
        ValidateCase{"LocationPrecise_Valid", With(Request("location", "get"), [](auto& r) { r.accuracy = "precise"; }),
                     ""},
        ValidateCase{"UnknownCapability", Request("microphone", "get"), "capability"},
        ValidateCase{"UnknownAction", Request("screen", "zoom"), "action 'zoom'"},
        ValidateCase{"RecordZeroDuration", With(Request("screen", "record"), [](auto& r) { r.duration_ms = 0; }),
                     "durationMs"},
        ValidateCase{"ClipTooLong", With(Request("camera", "clip"), [](auto& r) { r.duration_ms = kMaxRecordMs + 1; }),
                     "durationMs"},
        ValidateCase{"SnapshotWithDuration", With(Request("screen", "snapshot"), [](auto& r) { r.duration_ms = 5; }),
                     "durationMs"},
        ValidateCase{"FpsTooHigh", With(Request("screen", "record"), [](auto& r) { r.fps = 61; }), "fps"},
        ValidateCase{"FpsOnSnapshot", With(Request("screen", "snapshot"), [](auto& r) { r.fps = 5; }), "fps"},
        ValidateCase{"ScreenIndexTooHigh", With(Request("screen", "snapshot"), [](auto& r) { r.screen_index = 16; }),
                     "screenIndex"},
        ValidateCase{"ScreenIndexNegative", With(Request("screen", "snapshot"), [](auto& r) { r.screen_index = -1; }),
                     "screenIndex"},
        ValidateCase{"ScreenIndexOnCamera", With(Request("camera", "snap"), [](auto& r) { r.screen_index = 1; }),
                     "screenIndex"},
        ValidateCase{"FacingSideways", With(Request("camera", "snap"), [](auto& r) { r.facing = "left"; }), "facing"},
        ValidateCase{"FacingOnScreen", With(Request("screen", "snapshot"), [](auto& r) { r.facing = "front"; }),
                     "facing"},
        ValidateCase{"QualityTooHigh", With(Request("camera", "snap"), [](auto& r) { r.quality = 101; }), "quality"},
        ValidateCase{"QualityOnClip", With(Request("camera", "clip"), [](auto& r) { r.quality = 50; }), "quality"},
        ValidateCase{"MaxWidthTooSmall", With(Request("camera", "snap"), [](auto& r) { r.max_width = 8; }), "maxWidth"},
        ValidateCase{"MaxWidthOnScreen", With(Request("screen", "snapshot"), [](auto& r) { r.max_width = 640; }),
                     "maxWidth"},
        ValidateCase{"MaxWidthOnList", With(Request("camera", "list"), [](auto& r) { r.max_width = 640; }), "maxWidth"},
        ValidateCase{"DeviceIdOnScreen", With(Request("screen", "snapshot"), [](auto& r) { r.device_id = "0"; }),
                     "deviceId"},
        ValidateCase{"DeviceIdTooLong",
                     With(Request("camera", "snap"), [](auto& r) { r.device_id = std::string(257, '1'); }), "deviceId"},
        ValidateCase{"AccuracyUnknown", With(Request("location", "get"), [](auto& r) { r.accuracy = "exact"; }),
                     "desiredAccuracy"},
        ValidateCase{"AccuracyOnCamera", With(Request("camera", "snap"), [](auto& r) { r.accuracy = "coarse"; }),
                     "desiredAccuracy"},
        ValidateCase{"TimeoutZero", With(Request("screen", "snapshot"), [](auto& r) { r.timeout_ms = 0; }),
                     "timeoutMs"}),
    [](const ::testing::TestParamInfo<ValidateCase>& p) { return std::string(p.param.name); });

TEST(CaptureTimeout, Default_RecordingLengthPlusEncodingLocation30sElseTheGatewayDefault) {
  EXPECT_EQ(DefaultCaptureTimeoutMs(Request("screen", "record"), 20000), 2000 + 30000);
  EXPECT_EQ(DefaultCaptureTimeoutMs(Request("location", "get"), 20000), 30000);
  EXPECT_EQ(DefaultCaptureTimeoutMs(Request("camera", "snap"), 1234), 1234);
}

// --- encoding ---

TEST(CaptureCodec, Request_RoundTripsEveryField) {
  CaptureRequest r = Request("camera", "snap");
  r.facing = "back";
  r.quality = 77;
  r.max_width = 320;
  r.device_id = "/dev/video2";
  r.timeout_ms = 4321;
  auto back = DecodeCaptureRequest(nlohmann::json::parse(EncodeCaptureRequest(r).dump()));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->capability, "camera");
  EXPECT_EQ(back->action, "snap");
  EXPECT_EQ(back->facing, "back");
  EXPECT_EQ(back->quality, 77);
  EXPECT_EQ(back->max_width, 320);
  EXPECT_EQ(back->device_id, "/dev/video2");
  EXPECT_EQ(back->timeout_ms, 4321);

  CaptureRequest v = Request("screen", "record");
  v.fps = 12;
  v.screen_index = 3;
  auto video = DecodeCaptureRequest(EncodeCaptureRequest(v));
  ASSERT_TRUE(video.ok()) << video.error().message;
  EXPECT_EQ(video->duration_ms, 2000);
  EXPECT_EQ(video->fps, 12);
  EXPECT_EQ(video->screen_index, 3);

  CaptureRequest l = Request("location", "get");
  l.accuracy = "coarse";
  auto location = DecodeCaptureRequest(EncodeCaptureRequest(l));
  ASSERT_TRUE(location.ok()) << location.error().message;
  EXPECT_EQ(location->accuracy, "coarse");
}

TEST(CaptureCodec, Request_DefaultsLeftOut) {
  nlohmann::json j = EncodeCaptureRequest(Request("screen", "snapshot"));
  EXPECT_EQ(j, (nlohmann::json{{"capability", "screen"}, {"action", "snapshot"}, {"timeoutMs", 20000}}));
}

TEST(CaptureCodec, RequestMalformed_Error) {
  EXPECT_FALSE(DecodeCaptureRequest(nlohmann::json::array()).ok());
  EXPECT_FALSE(DecodeCaptureRequest({{"capability", "screen"}, {"action", "snapshot"}}).ok());  // no timeoutMs
  EXPECT_FALSE(DecodeCaptureRequest({{"capability", "screen"}, {"action", "snapshot"}, {"timeoutMs", "soon"}}).ok());
  EXPECT_FALSE(
      DecodeCaptureRequest({{"capability", "screen"}, {"action", "snapshot"}, {"timeoutMs", 1}, {"fps", "x"}}).ok());
}

TEST(CaptureCodec, RequestInvalid_ErrorNamesTheArgument) {
  auto r = DecodeCaptureRequest({{"capability", "screen"}, {"action", "record"}, {"timeoutMs", 1000}});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error().message, "durationMs")) << r.error().message;
}

TEST(CaptureCodec, Result_BinaryDataSurvivesJson) {
  CaptureResult r;
  r.backend = "v4l2";
  r.mime_type = "image/jpeg";
  r.data = std::string("\xFF\xD8\0\0\xFF\x00\x01\x7F\x80\xFE\xFF", 11) + std::string(1000, '\0') + "\xFF";
  r.info = {{"width", 640}, {"height", 480}, {"format", "jpeg"}};
  r.duration_ms = 321;
  auto back = DecodeCaptureResult(nlohmann::json::parse(EncodeCaptureResult(r).dump()));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->backend, "v4l2");
  EXPECT_EQ(back->mime_type, "image/jpeg");
  EXPECT_EQ(back->data, r.data);
  EXPECT_EQ(back->info, r.info);
  EXPECT_EQ(back->duration_ms, 321);
}

TEST(CaptureCodec, ResultMalformed_Error) {
  nlohmann::json good = EncodeCaptureResult(CaptureResult{"gpsd", "application/json", "", {{"lat", 1}}, 5});
  ASSERT_TRUE(DecodeCaptureResult(good).ok());
  nlohmann::json bad_data = good;
  bad_data["data"] = "not base64!";
  EXPECT_FALSE(DecodeCaptureResult(bad_data).ok());
  nlohmann::json bad_info = good;
  bad_info["info"] = "a string";
  auto r = DecodeCaptureResult(bad_info);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kParse);
  nlohmann::json no_backend = good;
  no_backend.erase("backend");
  EXPECT_FALSE(DecodeCaptureResult(no_backend).ok());
}

// --- Perform ---

class PerformTest : public ::testing::Test {
 protected:
  core::Result<CaptureResult> Do(const CaptureRequest& r) { return Perform(host_, config_, r, cancel_); }

  fakes::FakeCommandHost host_{"maul"};
  DeviceConfig config_;
  core::CancelToken cancel_;
};

TEST_F(PerformTest, AutoBackend_ProbesThenRunsTheChosenScript) {
  host_.Script(Exited(0, "os=Linux\ndisplay=:0\nwayland=\ntermux=\ntool=ffmpeg\n"));
  host_.Script(Exited(0, Png(64, 48)));
  auto result = Do(Request("screen", "snapshot"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->backend, "x11");
  auto runs = host_.requests();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].command.shell, ProbeScript());
  EXPECT_LE(runs[0].timeout.count(), 10000);
  ASSERT_TRUE(runs[1].command.shell);
  EXPECT_TRUE(Contains(*runs[1].command.shell, "-f x11grab")) << *runs[1].command.shell;
}

TEST_F(PerformTest, ExplicitBackend_RunsExactlyOneScript) {
  config_.screen.backend = "wayland";
  host_.Script(Exited(0, Png(64, 48)));
  auto result = Do(Request("screen", "snapshot"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->backend, "wayland");
  auto runs = host_.requests();
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_TRUE(runs[0].command.shell);
  EXPECT_TRUE(Contains(*runs[0].command.shell, "grim")) << *runs[0].command.shell;
  EXPECT_EQ(runs[0].output_cap, kMaxCaptureBytes);
  EXPECT_GT(runs[0].timeout.count(), 0);
  EXPECT_LE(runs[0].timeout.count(), 20000);
}

TEST_F(PerformTest, StaticLocation_RunsNothing) {
  config_.location.backend = "static";
  config_.location.latitude = 47.3769;
  config_.location.longitude = 8.5417;
  auto result = Do(Request("location", "get"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_TRUE(host_.requests().empty());
  EXPECT_EQ(result->backend, "static");
  EXPECT_EQ(result->mime_type, "application/json");
  EXPECT_DOUBLE_EQ(result->info["lat"].get<double>(), 47.3769);
  EXPECT_EQ(result->info["source"], "static");
}

TEST_F(PerformTest, StaticLocationWithoutPosition_Error) {
  config_.location.backend = "static";
  auto result = Do(Request("location", "get"));
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(Contains(result.error().message, "location.latitude")) << result.error().message;
  EXPECT_TRUE(host_.requests().empty());
}

TEST_F(PerformTest, InvalidRequest_RunsNothing) {
  config_.screen.backend = "x11";
  CaptureRequest r = Request("screen", "record");
  r.duration_ms = 0;
  auto result = Do(r);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(host_.requests().empty());
}

TEST_F(PerformTest, ProbeFails_ErrorSaysToSetTheBackend) {
  host_.Script(Exited(1, "", "sh: cannot fork\n"));
  auto result = Do(Request("camera", "snap"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(result.error().message, "could not ask maul")) << result.error().message;
  EXPECT_TRUE(Contains(result.error().message, "cannot fork")) << result.error().message;
  EXPECT_TRUE(Contains(result.error().message, "camera.backend")) << result.error().message;
  EXPECT_EQ(host_.requests().size(), 1u);
}

TEST_F(PerformTest, ProbeFindsNothing_ErrorFromChooseBackend) {
  host_.Script(Exited(0, "os=Linux\ndisplay=\nwayland=\ntermux=\n"));
  auto result = Do(Request("screen", "snapshot"));
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(Contains(result.error().message, "no screen found on maul")) << result.error().message;
  EXPECT_EQ(host_.requests().size(), 1u);
}

TEST_F(PerformTest, HostCannotRun_ErrorPassedOn) {
  config_.screen.backend = "x11";
  host_.Script(core::MakeError(ErrorCode::kUnavailable, "ssh: connection refused"));
  auto result = Do(Request("screen", "snapshot"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "ssh: connection refused");
}

TEST_F(PerformTest, MissingProgram_ExplainedWithTheFix) {
  config_.screen.backend = "x11";
  host_.Script(Exited(127, "", "labgate-missing: ffmpeg\n"));
  auto result = Do(Request("screen", "snapshot"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(result.error().message, *ExplainScriptFailure("labgate-missing: ffmpeg\n", "screen", "x11", "maul"));
}

TEST_F(PerformTest, NonZeroExitWithoutMarker_StderrTailAndBackend) {
  config_.screen.backend = "x11";
  host_.Script(Exited(1, "", std::string(2000, '.') + "\n[x11grab @ 0x55] Cannot open display :0, error 1\n"));
  auto result = Do(Request("screen", "snapshot"));
  ASSERT_FALSE(result.ok());
  const std::string& m = result.error().message;
  EXPECT_TRUE(Contains(m, "screen backend x11 on maul")) << m;
  EXPECT_TRUE(Contains(m, "exit code 1")) << m;
  EXPECT_TRUE(Contains(m, "Cannot open display :0, error 1")) << m;
  EXPECT_LT(m.size(), 800u) << "only the tail of stderr";
}

TEST_F(PerformTest, KilledBySignal_NamesTheSignal) {
  config_.camera.backend = "v4l2";
  core::ProcessOutcome o;
  o.signal = 9;
  host_.Script(o);
  auto result = Do(Request("camera", "snap"));
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(Contains(result.error().message, "killed by SIGKILL")) << result.error().message;
}

TEST_F(PerformTest, OutputTruncated_ErrorMentionsTheLimitInMiB) {
  config_.screen.backend = "x11";
  core::ProcessOutcome o = Exited(0, Png(64, 48));
  o.out.truncated = true;
  o.out.total_bytes = 40u << 20;
  host_.Script(o);
  auto result = Do(Request("screen", "record"));
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(Contains(result.error().message, "32 MiB")) << result.error().message;
  EXPECT_TRUE(Contains(result.error().message, "durationMs")) << result.error().message;
}

TEST_F(PerformTest, StdoutNotAPng_Error) {
  config_.screen.backend = "x11";
  host_.Script(Exited(0, "hello", "warning: something\n"));
  auto result = Do(Request("screen", "snapshot"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(result.error().message, "not a png")) << result.error().message;
  EXPECT_TRUE(Contains(result.error().message, "warning: something")) << result.error().message;
}

TEST_F(PerformTest, LocationTimedOut_NoFixTimeout) {
  config_.location.backend = "gpsd";
  core::ProcessOutcome o;
  o.timed_out = true;
  host_.Script(o);
  auto result = Do(Request("location", "get"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kTimeout);
  EXPECT_TRUE(Contains(result.error().message, "no location fix")) << result.error().message;
}

TEST_F(PerformTest, OtherTimedOut_DidNotFinish) {
  config_.screen.backend = "x11";
  core::ProcessOutcome o;
  o.timed_out = true;
  host_.Script(o);
  auto result = Do(Request("screen", "record"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kTimeout);
  EXPECT_TRUE(Contains(result.error().message, "screen.record on maul did not finish")) << result.error().message;
}

TEST_F(PerformTest, GpsdNoOutput_Timeout) {
  config_.location.backend = "gpsd";
  host_.Script(Exited(0));
  auto result = Do(Request("location", "get"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kTimeout);
  EXPECT_TRUE(Contains(result.error().message, "no location fix from gpsd on maul")) << result.error().message;
}

TEST_F(PerformTest, GpsdReport_IsTheFix) {
  config_.location.backend = "gpsd";
  host_.Script(Exited(0, std::string(kGpsdLine) + "\n"));
  auto result = Do(Request("location", "get"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->backend, "gpsd");
  EXPECT_TRUE(result->data.empty());
  EXPECT_DOUBLE_EQ(result->info["lat"].get<double>(), 52.520008);
  EXPECT_EQ(result->info["fix"], "3d");
}

TEST_F(PerformTest, GpsdGarbage_ErrorNamesTheMachine) {
  config_.location.backend = "gpsd";
  host_.Script(Exited(0, "{\"class\":\"TPV\",\"mode\":1}\n"));
  auto result = Do(Request("location", "get"));
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(Contains(result.error().message, "(maul)")) << result.error().message;
}

TEST_F(PerformTest, Cancelled_Cancelled) {
  config_.camera.backend = "v4l2";
  core::ProcessOutcome o;
  o.cancelled = true;
  host_.Script(o);
  auto result = Do(Request("camera", "clip"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kCancelled);
}

TEST_F(PerformTest, CancelledDuringProbe_Cancelled) {
  core::ProcessOutcome o;
  o.cancelled = true;
  host_.Script(o);
  auto result = Do(Request("camera", "snap"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kCancelled);
  EXPECT_EQ(host_.requests().size(), 1u);
}

TEST_F(PerformTest, Png_InfoHasSizeBytesDigestAndFormat) {
  config_.screen.backend = "x11";
  const std::string png = Png(1920, 1080);
  host_.Script(Exited(0, png));
  auto result = Do(Request("screen", "snapshot"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->mime_type, "image/png");
  EXPECT_EQ(result->data, png);
  EXPECT_EQ(result->info["format"], "png");
  EXPECT_EQ(result->info["width"], 1920);
  EXPECT_EQ(result->info["height"], 1080);
  EXPECT_EQ(result->info["bytes"], png.size());
  EXPECT_EQ(result->info["sha256"], core::Sha256Hex(png));
  EXPECT_FALSE(result->info.contains("durationMs"));
}

TEST_F(PerformTest, Mp4Recording_InfoHasDurationAndFps) {
  config_.camera.backend = "v4l2";
  CaptureRequest r = Request("camera", "clip");
  r.fps = 15;
  host_.Script(Exited(0, Mp4(640, 480, 2000)));
  auto result = Do(r);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->mime_type, "video/mp4");
  EXPECT_EQ(result->info["format"], "mp4");
  EXPECT_EQ(result->info["width"], 640);
  EXPECT_EQ(result->info["durationMs"], 2000);
  EXPECT_EQ(result->info["fps"], 15);
}

TEST_F(PerformTest, V4l2List_ParsesDevicesAndMergesConfiguredOnes) {
  config_.camera.backend = "v4l2";
  config_.camera.device = "/dev/video0";
  config_.camera.front = "/dev/video4";
  host_.Script(Exited(0, "device\t/dev/video0\tUSB Cam\ndevice\t/dev/video1\tUSB Cam (metadata)\nnoise\n"));
  auto result = Do(Request("camera", "list"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& devices = result->info["devices"];
  ASSERT_EQ(devices.size(), 3u) << devices.dump();
  EXPECT_EQ(devices[0], (nlohmann::json{{"id", "/dev/video0"}, {"name", "USB Cam"}}));
  EXPECT_EQ(devices[1], (nlohmann::json{{"id", "/dev/video1"}, {"name", "USB Cam (metadata)"}}));
  EXPECT_EQ(devices[2]["id"], "/dev/video4");
  EXPECT_EQ(devices[2]["facing"], "front");
  EXPECT_TRUE(result->data.empty());
}

TEST_F(PerformTest, V4l2ListConfiguredFacing_MarksAListedDevice) {
  config_.camera.backend = "v4l2";
  config_.camera.back = "/dev/video0";
  host_.Script(Exited(0, "device\t/dev/video0\tUSB Cam\n"));
  auto result = Do(Request("camera", "list"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& devices = result->info["devices"];
  ASSERT_EQ(devices.size(), 1u) << devices.dump();
  EXPECT_EQ(devices[0]["name"], "USB Cam");
  EXPECT_EQ(devices[0]["facing"], "back");
}

TEST_F(PerformTest, TermuxList_ReadsCameraInfo) {
  config_.camera.backend = "termux";
  host_.Script(Exited(0, R"([{"id":"0","facing":"back"},{"id":"1","facing":"front"}])"));
  auto result = Do(Request("camera", "list"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& devices = result->info["devices"];
  ASSERT_EQ(devices.size(), 2u) << devices.dump();
  EXPECT_EQ(devices[1], (nlohmann::json{{"id", "1"}, {"name", "camera 1"}, {"facing", "front"}}));
}

}  // namespace
}  // namespace labgate::capabilities
