#include "capabilities/backends.h"

#include <gtest/gtest.h>

#include <string>

#include "core/text.h"

namespace labgate::capabilities {
namespace {

using core::ErrorCode;
using core::ShellQuote;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

CaptureRequest Screen(const std::string& action, std::int64_t duration_ms = 0) {
  CaptureRequest r;
  r.capability = "screen";
  r.action = action;
  r.duration_ms = duration_ms;
  r.timeout_ms = 20000;
  return r;
}
CaptureRequest Camera(const std::string& action, std::int64_t duration_ms = 0) {
  CaptureRequest r = Screen(action, duration_ms);
  r.capability = "camera";
  return r;
}
CaptureRequest Location(const std::string& accuracy = "") {
  CaptureRequest r = Screen("get");
  r.capability = "location";
  r.accuracy = accuracy;
  r.timeout_ms = 30000;
  return r;
}

std::string Script(const std::string& backend, const DeviceConfig& config, const CaptureRequest& request) {
  auto command = BuildCommand(backend, config, request);
  EXPECT_TRUE(command.ok()) << command.error().message;
  return command.ok() ? command->script : "";
}

std::string Refusal(const std::string& backend, const DeviceConfig& config, const CaptureRequest& request) {
  auto command = BuildCommand(backend, config, request);
  EXPECT_FALSE(command.ok()) << "expected a refusal, got:\n" << command->script;
  if (command.ok()) return "";
  EXPECT_EQ(command.error().code, ErrorCode::kInvalidArgument);
  return command.error().message;
}

// `raw` reaches the script only as one single-quoted word: with every quoted copy taken out,
// `payload` is nowhere left.
void ExpectOnlyQuoted(std::string script, const std::string& raw, const std::string& payload) {
  const std::string quoted = ShellQuote(raw);
  ASSERT_NE(quoted, raw) << "the test needs a value that must be quoted";
  ASSERT_TRUE(Contains(script, quoted)) << script;
  for (auto at = script.find(quoted); at != std::string::npos; at = script.find(quoted))
    script.erase(at, quoted.size());
  EXPECT_FALSE(Contains(script, payload)) << script;
}

DeviceConfig V4l2Cameras() {
  DeviceConfig c;
  c.camera.backend = "v4l2";
  c.camera.device = "/dev/video0";
  c.camera.front = "/dev/video2";
  c.camera.back = "/dev/video4";
  return c;
}

// --- probe ---

TEST(Probe, Script_AsksForEveryToolTheBackendsUse) {
  const std::string script = ProbeScript();
  for (const char* tool : {"ffmpeg", "grim", "wf-recorder", "screencapture", "termux-camera-photo", "termux-location",
                           "gpspipe", "uname -s", "DISPLAY", "WAYLAND_DISPLAY", "TERMUX_VERSION", "/dev/video"}) {
    EXPECT_TRUE(Contains(script, tool)) << tool;
  }
}

TEST(Probe, Parse_ReadsEveryFact) {
  MachineFacts f = ParseProbe(
      "os=Linux\ndisplay=:0\nwayland=wayland-1\ntermux=0.118\ntool=ffmpeg\ntool=grim\n"
      "video=/dev/video0\nvideo=/dev/video2\n");
  EXPECT_EQ(f.os, "Linux");
  EXPECT_EQ(f.display, ":0");
  EXPECT_EQ(f.wayland_display, "wayland-1");
  EXPECT_TRUE(f.termux);
  EXPECT_EQ(f.tools, (std::vector<std::string>{"ffmpeg", "grim"}));
  EXPECT_TRUE(f.Has("grim"));
  EXPECT_FALSE(f.Has("gpspipe"));
  EXPECT_EQ(f.video_devices, (std::vector<std::string>{"/dev/video0", "/dev/video2"}));
}

TEST(Probe, Parse_EmptyValuesAndNoiseLeaveDefaults) {
  MachineFacts f = ParseProbe("sh: 1: uname: not found\nos=\ndisplay=\nwayland=\ntermux=\nsomething=else\n");
  EXPECT_EQ(f.os, "");
  EXPECT_EQ(f.display, "");
  EXPECT_EQ(f.wayland_display, "");
  EXPECT_FALSE(f.termux);
  EXPECT_TRUE(f.tools.empty());
  EXPECT_TRUE(f.video_devices.empty());
}

// --- ChooseBackend ---

struct ChooseCase {
  const char* name;
  std::string capability;
  std::string probe;
  DeviceConfig config;
  std::string expected;  // a backend, or "error"
};

class ChooseBackendTable : public ::testing::TestWithParam<ChooseCase> {};

TEST_P(ChooseBackendTable, PicksTheBackend) {
  const auto& c = GetParam();
  auto chosen = ChooseBackend(c.capability, c.config, ParseProbe(c.probe), "maul");
  if (c.expected == "error") {
    ASSERT_FALSE(chosen.ok()) << *chosen;
    EXPECT_EQ(chosen.error().code, ErrorCode::kUnavailable);
    EXPECT_TRUE(Contains(chosen.error().message, "on maul")) << chosen.error().message;
    EXPECT_TRUE(Contains(chosen.error().message, c.capability + ".backend")) << chosen.error().message;
  } else {
    ASSERT_TRUE(chosen.ok()) << chosen.error().message;
    EXPECT_EQ(*chosen, c.expected);
  }
}

DeviceConfig WithDisplay(std::string display) {
  DeviceConfig c;
  c.screen.display = std::move(display);
  return c;
}
DeviceConfig WithCameraDevice(std::string device, std::string input_format = "") {
  DeviceConfig c;
  c.camera.device = std::move(device);
  c.camera.input_format = std::move(input_format);
  return c;
}
DeviceConfig WithPosition() {
  DeviceConfig c;
  c.location.latitude = 47.37;
  c.location.longitude = 8.54;
  return c;
}
DeviceConfig WithGpsd(std::string address) {
  DeviceConfig c;
  c.location.gpsd = std::move(address);
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Backends, ChooseBackendTable,
    ::testing::Values(
        ChooseCase{"ScreenDarwin_Macos", "screen", "os=Darwin\ndisplay=:0\n", {}, "macos"},
        ChooseCase{"ScreenWaylandWithGrim_Wayland",
                   "screen",
                   "os=Linux\ndisplay=:0\nwayland=wayland-0\ntool=grim\n",
                   {},
                   "wayland"},
        ChooseCase{"ScreenWaylandWithoutGrimButXwayland_X11",
                   "screen",
                   "os=Linux\ndisplay=:0\nwayland=wayland-0\n",
                   {},
                   "x11"},
        ChooseCase{"ScreenDisplaySet_X11", "screen", "os=Linux\ndisplay=:1\n", {}, "x11"},
        ChooseCase{"ScreenConfiguredDisplay_X11", "screen", "os=Linux\ndisplay=\n", WithDisplay(":0"), "x11"},
        ChooseCase{"ScreenNone_Error", "screen", "os=Linux\ndisplay=\nwayland=\n", {}, "error"},
        ChooseCase{"CameraTermux_Termux", "camera", "os=Linux\ntermux=0.118\nvideo=/dev/video0\n", {}, "termux"},
        ChooseCase{"CameraVideoDevice_V4l2", "camera", "os=Linux\nvideo=/dev/video0\n", {}, "v4l2"},
        ChooseCase{"CameraConfiguredLavfi_V4l2", "camera", "os=Linux\n", WithCameraDevice("testsrc2", "lavfi"), "v4l2"},
        ChooseCase{"CameraNone_Error", "camera", "os=Linux\n", {}, "error"},
        ChooseCase{"LocationPosition_StaticEvenOnTermux", "location", "termux=1\ntool=gpspipe\n", WithPosition(),
                   "static"},
        ChooseCase{"LocationTermux_Termux", "location", "termux=1\ntool=gpspipe\n", {}, "termux"},
        ChooseCase{"LocationGpspipe_Gpsd", "location", "os=Linux\ntool=gpspipe\n", {}, "gpsd"},
        ChooseCase{"LocationConfiguredGpsd_Gpsd", "location", "os=Linux\n", WithGpsd("10.0.0.9:2947"), "gpsd"},
        ChooseCase{"LocationNone_Error", "location", "os=Linux\ntool=ffmpeg\n", {}, "error"}),
    [](const ::testing::TestParamInfo<ChooseCase>& p) { return std::string(p.param.name); });

TEST(ChooseBackend, NoLocationSource_NamesThePackageToInstall) {
  auto chosen = ChooseBackend("location", {}, ParseProbe("os=Linux\n"), "maul");
  ASSERT_FALSE(chosen.ok());
  EXPECT_TRUE(Contains(chosen.error().message, "gpsd-clients")) << chosen.error().message;
  EXPECT_TRUE(Contains(chosen.error().message, "static")) << chosen.error().message;
}

TEST(ChooseBackend, UnknownCapability_InvalidArgument) {
  auto chosen = ChooseBackend("microphone", {}, ParseProbe("os=Linux\n"), "maul");
  ASSERT_FALSE(chosen.ok());
  EXPECT_EQ(chosen.error().code, ErrorCode::kInvalidArgument);
}

// --- BuildCommand: screen ---

TEST(BuildCommand, X11Snapshot_GrabsOneFrameWithoutTheMousePointer) {
  auto command = BuildCommand("x11", {}, Screen("snapshot"));
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->backend, "x11");
  EXPECT_EQ(command->mime_type, "image/png");
  EXPECT_TRUE(Contains(command->script, "need ffmpeg")) << command->script;
  EXPECT_TRUE(Contains(command->script, "-f x11grab")) << command->script;
  EXPECT_TRUE(Contains(command->script, "-draw_mouse 0")) << command->script;
  EXPECT_TRUE(Contains(command->script, "-frames:v 1")) << command->script;
  EXPECT_TRUE(Contains(command->script, "-vcodec png")) << command->script;
  EXPECT_FALSE(Contains(command->script, "$d.")) << command->script;
}

TEST(BuildCommand, X11ScreenIndex_AppendsScreenNumber) {
  CaptureRequest r = Screen("snapshot");
  r.screen_index = 2;
  EXPECT_TRUE(Contains(Script("x11", {}, r), "d=\"$d.2\""));
}

TEST(BuildCommand, X11ConfiguredDisplay_IsUsed) {
  EXPECT_TRUE(Contains(Script("x11", WithDisplay(":1"), Screen("snapshot")), "d=:1;"));
}

TEST(BuildCommand, X11DisplayWithQuote_OnlyInsideSingleQuotes) {
  const std::string display = ":0'; rm -rf /";
  ExpectOnlyQuoted(Script("x11", WithDisplay(display), Screen("snapshot")), display, "rm -rf /");
  ExpectOnlyQuoted(Script("x11", WithDisplay(display), Screen("record", 1000)), display, "rm -rf /");
}

TEST(BuildCommand, X11Record_DurationInSecondsAndFramerate) {
  auto command = BuildCommand("x11", {}, Screen("record", 2500));
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->mime_type, "video/mp4");
  EXPECT_TRUE(Contains(command->script, "-t 2.500")) << command->script;
  EXPECT_TRUE(Contains(command->script, "-framerate 10")) << command->script;
  EXPECT_TRUE(Contains(command->script, "-f x11grab")) << command->script;
  EXPECT_TRUE(Contains(command->script, "trap")) << command->script;
}

TEST(BuildCommand, X11RecordWithFps_FramerateFollows) {
  CaptureRequest r = Screen("record", 1000);
  r.fps = 25;
  const std::string script = Script("x11", {}, r);
  EXPECT_TRUE(Contains(script, "-framerate 25")) << script;
  EXPECT_TRUE(Contains(script, "-t 1.000")) << script;
}

TEST(BuildCommand, WaylandSnapshot_GrimPng) {
  auto command = BuildCommand("wayland", {}, Screen("snapshot"));
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->mime_type, "image/png");
  EXPECT_TRUE(Contains(command->script, "need grim")) << command->script;
  EXPECT_TRUE(Contains(command->script, "grim -t png -\n")) << command->script;
}

TEST(BuildCommand, WaylandScreenIndex_NamesTheConfiguredOutput) {
  DeviceConfig c;
  c.screen.outputs = {"DP-1", "HDMI-A-1"};
  CaptureRequest r = Screen("snapshot");
  r.screen_index = 1;
  EXPECT_TRUE(Contains(Script("wayland", c, r), "grim -t png -o HDMI-A-1 -"));
}

TEST(BuildCommand, WaylandScreenIndexWithoutOutputs_Refused) {
  CaptureRequest r = Screen("snapshot");
  r.screen_index = 1;
  const std::string message = Refusal("wayland", {}, r);
  EXPECT_TRUE(Contains(message, "screenIndex 1")) << message;
  EXPECT_TRUE(Contains(message, "screen.outputs")) << message;
}

TEST(BuildCommand, WaylandScreenIndexPastTheOutputs_Refused) {
  DeviceConfig c;
  c.screen.outputs = {"DP-1"};
  CaptureRequest r = Screen("snapshot");
  r.screen_index = 1;
  EXPECT_TRUE(Contains(Refusal("wayland", c, r), "screen.outputs"));
}

TEST(BuildCommand, WaylandOutputWithQuote_OnlyInsideSingleQuotes) {
  DeviceConfig c;
  c.screen.outputs = {"DP-1'; reboot; '"};
  ExpectOnlyQuoted(Script("wayland", c, Screen("snapshot")), c.screen.outputs[0], "reboot");
  ExpectOnlyQuoted(Script("wayland", c, Screen("record", 1000)), c.screen.outputs[0], "reboot");
}

TEST(BuildCommand, WaylandRecord_WfRecorderStoppedByTimeout) {
  auto command = BuildCommand("wayland", {}, Screen("record", 2500));
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->mime_type, "video/mp4");
  EXPECT_TRUE(Contains(command->script, "need wf-recorder")) << command->script;
  EXPECT_TRUE(Contains(command->script, "timeout -s INT 2.500 wf-recorder")) << command->script;
}

TEST(BuildCommand, MacosSnapshot_ScreencaptureCountsDisplaysFromOne) {
  CaptureRequest r = Screen("snapshot");
  r.screen_index = 1;
  auto command = BuildCommand("macos", {}, r);
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->mime_type, "image/png");
  EXPECT_TRUE(Contains(command->script, "screencapture -x -t png -D 2")) << command->script;
}

TEST(BuildCommand, MacosRecord_WholeSecondsRoundedUp) {
  auto command = BuildCommand("macos", {}, Screen("record", 2500));
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->mime_type, "video/quicktime");
  EXPECT_TRUE(Contains(command->script, "-V 3 -D 1")) << command->script;
}

TEST(BuildCommand, UnknownBackend_Refused) {
  EXPECT_TRUE(Contains(Refusal("x12", {}, Screen("snapshot")), "no screen backend named 'x12'"));
  EXPECT_TRUE(Contains(Refusal("x11", {}, Camera("snap")), "no camera backend named 'x11'"));
  EXPECT_TRUE(Contains(Refusal("static", {}, Location()), "no location backend named 'static'"));
}

// --- BuildCommand: camera ---

TEST(BuildCommand, V4l2Snap_DefaultDeviceMjpegAfterWarmup) {
  auto command = BuildCommand("v4l2", {}, Camera("snap"));
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->backend, "v4l2");
  EXPECT_EQ(command->mime_type, "image/jpeg");
  EXPECT_TRUE(Contains(command->script, "-f v4l2 -i /dev/video0")) << command->script;
  EXPECT_TRUE(Contains(command->script, "select=gte(n\\,5)")) << command->script;
  EXPECT_TRUE(Contains(command->script, "-vcodec mjpeg")) << command->script;
  EXPECT_FALSE(Contains(command->script, " -re ")) << command->script;
}

TEST(BuildCommand, V4l2SnapQuality100_BestQscale) {
  CaptureRequest r = Camera("snap");
  r.quality = 100;
  EXPECT_TRUE(Contains(Script("v4l2", {}, r), "-q:v 2 "));
}

TEST(BuildCommand, V4l2SnapQuality1_WorstQscale) {
  CaptureRequest r = Camera("snap");
  r.quality = 1;
  EXPECT_TRUE(Contains(Script("v4l2", {}, r), "-q:v 31 "));
}

TEST(BuildCommand, V4l2SnapMaxWidth_ScalesKeepingAspect) {
  CaptureRequest r = Camera("snap");
  r.max_width = 640;
  EXPECT_TRUE(Contains(Script("v4l2", {}, r), "scale=w=min(iw\\,640):h=-2"));
}

TEST(BuildCommand, V4l2Clip_DurationFpsAndScale) {
  CaptureRequest r = Camera("clip", 1500);
  r.fps = 15;
  r.max_width = 320;
  auto command = BuildCommand("v4l2", {}, r);
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->mime_type, "video/mp4");
  EXPECT_TRUE(Contains(command->script, "-t 1.500")) << command->script;
  EXPECT_TRUE(Contains(command->script, " -r 15")) << command->script;
  EXPECT_TRUE(Contains(command->script, "scale=w=min(iw\\,320):h=-2")) << command->script;
}

TEST(BuildCommand, LavfiInput_PacedWithRe) {
  DeviceConfig c = WithCameraDevice("testsrc2=size=1280x720:rate=30", "lavfi");
  const std::string script = Script("v4l2", c, Camera("snap"));
  EXPECT_TRUE(Contains(script, " -re -f lavfi -i ")) << script;
  EXPECT_FALSE(Contains(script, "select=gte")) << script;
  EXPECT_TRUE(Contains(Script("v4l2", c, Camera("clip", 1000)), " -re -f lavfi -i "));
}

TEST(BuildCommand, CameraDeviceId_ConfiguredDevicesAccepted) {
  for (const std::string id : {"/dev/video0", "/dev/video2", "/dev/video4"}) {
    CaptureRequest r = Camera("snap");
    r.device_id = id;
    EXPECT_TRUE(Contains(Script("v4l2", V4l2Cameras(), r), "-i " + id + " ")) << id;
  }
}

TEST(BuildCommand, CameraDeviceIdDigits_MeanAV4l2Device) {
  CaptureRequest r = Camera("snap");
  r.device_id = "3";
  EXPECT_TRUE(Contains(Script("v4l2", V4l2Cameras(), r), "-i /dev/video3 "));
}

TEST(BuildCommand, CameraDeviceIdVideoPath_Accepted) {
  CaptureRequest r = Camera("snap");
  r.device_id = "/dev/video7";
  EXPECT_TRUE(Contains(Script("v4l2", V4l2Cameras(), r), "-i /dev/video7 "));
}

TEST(BuildCommand, CameraDeviceIdOtherPaths_Refused) {
  for (const std::string id :
       {"/etc/passwd", "movie=/etc/passwd", "/dev/video7x", "/dev/video", "/dev/video/../sda", "-1", "3; reboot"}) {
    CaptureRequest r = Camera("snap");
    r.device_id = id;
    EXPECT_TRUE(Contains(Refusal("v4l2", V4l2Cameras(), r), "unknown camera deviceId")) << id;
  }
}

TEST(BuildCommand, CameraDeviceIdDigitsWithLavfi_Refused) {
  DeviceConfig c = WithCameraDevice("testsrc2", "lavfi");
  for (const std::string id : {"3", "/dev/video3", "movie=/etc/passwd"}) {
    CaptureRequest r = Camera("snap");
    r.device_id = id;
    EXPECT_TRUE(Contains(Refusal("v4l2", c, r), "unknown camera deviceId")) << id;
  }
}

TEST(BuildCommand, CameraFacing_UsesTheMappedDevice) {
  CaptureRequest r = Camera("snap");
  r.facing = "front";
  EXPECT_TRUE(Contains(Script("v4l2", V4l2Cameras(), r), "-i /dev/video2 "));
  r.facing = "back";
  EXPECT_TRUE(Contains(Script("v4l2", V4l2Cameras(), r), "-i /dev/video4 "));
}

TEST(BuildCommand, CameraFacingBackWithOnlyADevice_UsesTheDevice) {
  CaptureRequest r = Camera("snap");
  r.facing = "back";
  EXPECT_TRUE(Contains(Script("v4l2", WithCameraDevice("/dev/video1"), r), "-i /dev/video1 "));
}

TEST(BuildCommand, CameraFacingFrontWithoutMapping_RefusedNamingTheSetting) {
  CaptureRequest r = Camera("snap");
  r.facing = "front";
  const std::string message = Refusal("v4l2", WithCameraDevice("/dev/video1"), r);
  EXPECT_TRUE(Contains(message, "camera.front")) << message;
}

TEST(BuildCommand, CameraConfiguredDeviceWithQuote_OnlyInsideSingleQuotes) {
  const std::string device = "/dev/video0'; touch /tmp/pwned; '";
  ExpectOnlyQuoted(Script("v4l2", WithCameraDevice(device), Camera("snap")), device, "touch");
  ExpectOnlyQuoted(Script("v4l2", WithCameraDevice(device), Camera("clip", 1000)), device, "touch");
  DeviceConfig termux = WithCameraDevice(device);
  ExpectOnlyQuoted(Script("termux", termux, Camera("snap")), device, "touch");
}

TEST(BuildCommand, CameraInputFormatWithQuote_OnlyInsideSingleQuotes) {
  const std::string format = "lavfi'; touch /tmp/pwned; '";
  ExpectOnlyQuoted(Script("v4l2", WithCameraDevice("testsrc2", format), Camera("snap")), format, "touch");
}

TEST(BuildCommand, V4l2List_ListsVideoDevices) {
  auto command = BuildCommand("v4l2", {}, Camera("list"));
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_TRUE(Contains(command->script, "/dev/video*")) << command->script;
  EXPECT_TRUE(Contains(command->script, "device\\t")) << command->script;
}

TEST(BuildCommand, LavfiList_RunsNothing) {
  auto command = BuildCommand("v4l2", WithCameraDevice("testsrc2", "lavfi"), Camera("list"));
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->script, "true\n");
}

TEST(BuildCommand, TermuxSnap_DefaultCameraZero) {
  auto command = BuildCommand("termux", {}, Camera("snap"));
  ASSERT_TRUE(command.ok()) << command.error().message;
  EXPECT_EQ(command->mime_type, "image/jpeg");
  EXPECT_TRUE(Contains(command->script, "termux-camera-photo -c 0 ")) << command->script;
  EXPECT_FALSE(Contains(command->script, "ffmpeg")) << command->script;
}

TEST(BuildCommand, TermuxSnapFacingFront_CameraOne) {
  CaptureRequest r = Camera("snap");
  r.facing = "front";
  EXPECT_TRUE(Contains(Script("termux", {}, r), "termux-camera-photo -c 1 "));
}

TEST(BuildCommand, TermuxSnapDigitDeviceId_Accepted) {
  CaptureRequest r = Camera("snap");
  r.device_id = "2";
  EXPECT_TRUE(Contains(Script("termux", {}, r), "termux-camera-photo -c 2 "));
}

TEST(BuildCommand, TermuxSnapPath_Refused) {
  CaptureRequest r = Camera("snap");
  r.device_id = "/dev/video0";
  EXPECT_TRUE(Contains(Refusal("termux", {}, r), "unknown camera deviceId"));
}

TEST(BuildCommand, TermuxSnapQuality_RecompressesWithFfmpegWhenPresent) {
  CaptureRequest r = Camera("snap");
  r.quality = 100;
  r.max_width = 640;
  const std::string script = Script("termux", {}, r);
  EXPECT_TRUE(Contains(script, "command -v ffmpeg")) << script;
  EXPECT_TRUE(Contains(script, "-q:v 2 ")) << script;
  EXPECT_TRUE(Contains(script, "scale=w=min(iw\\,640):h=-2")) << script;
}

TEST(BuildCommand, TermuxClip_Refused) {
  const std::string message = Refusal("termux", {}, Camera("clip", 1000));
  EXPECT_TRUE(Contains(message, "photos only")) << message;
}

TEST(BuildCommand, TermuxList_CameraInfo) {
  EXPECT_TRUE(Contains(Script("termux", {}, Camera("list")), "exec termux-camera-info"));
}

// --- BuildCommand: location ---

TEST(BuildCommand, GpsdPrecise_Only3dFixes) {
  const std::string script = Script("gpsd", {}, Location("precise"));
  EXPECT_TRUE(Contains(script, "need gpspipe")) << script;
  EXPECT_TRUE(Contains(script, "\"mode\":3.*")) << script;
  EXPECT_FALSE(Contains(script, "[23]")) << script;
}

TEST(BuildCommand, GpsdOtherAccuracies_2dOr3dFixes) {
  for (const std::string accuracy : {"", "coarse", "balanced"}) {
    EXPECT_TRUE(Contains(Script("gpsd", {}, Location(accuracy)), "\"mode\":[23].*")) << accuracy;
  }
}

TEST(BuildCommand, GpsdWaitsWholeSecondsOfTheDeadline) {
  CaptureRequest r = Location();
  r.timeout_ms = 5500;
  EXPECT_TRUE(Contains(Script("gpsd", {}, r), "gpspipe -w -x 5 "));
  r.timeout_ms = 300;
  EXPECT_TRUE(Contains(Script("gpsd", {}, r), "gpspipe -w -x 1 "));
}

TEST(BuildCommand, GpsdAddress_Passed) {
  EXPECT_TRUE(Contains(Script("gpsd", WithGpsd("10.0.0.9:2947"), Location()), "gpspipe -w -x 30 10.0.0.9:2947 |"));
}

TEST(BuildCommand, GpsdAddressWithQuote_OnlyInsideSingleQuotes) {
  const std::string address = "localhost'; reboot; '";
  ExpectOnlyQuoted(Script("gpsd", WithGpsd(address), Location()), address, "reboot");
}

TEST(BuildCommand, TermuxLocation_ProviderFollowsAccuracy) {
  EXPECT_TRUE(Contains(Script("termux", {}, Location("precise")), "termux-location -p gps -r once"));
  EXPECT_TRUE(Contains(Script("termux", {}, Location("coarse")), "termux-location -p network -r once"));
}

TEST(BuildCommand, EveryScript_ReportsMissingProgramsInTheMarkerForm) {
  for (const auto& [backend, request] :
       std::vector<std::pair<std::string, CaptureRequest>>{{"x11", Screen("snapshot")},
                                                           {"wayland", Screen("record", 1000)},
                                                           {"macos", Screen("snapshot")},
                                                           {"v4l2", Camera("snap")},
                                                           {"termux", Camera("snap")},
                                                           {"gpsd", Location()},
                                                           {"termux", Location()}}) {
    const std::string script = Script(backend, {}, request);
    EXPECT_TRUE(Contains(script, "labgate-missing: $1")) << backend << " " << request.Method();
    EXPECT_TRUE(Contains(script, "labgate-error: $*")) << backend << " " << request.Method();
  }
}

// --- ExplainScriptFailure ---

TEST(ExplainScriptFailure, MissingFfmpeg_NamesMachinePackageAndSetting) {
  auto why = ExplainScriptFailure("labgate-missing: ffmpeg\n", "screen", "x11", "maul");
  ASSERT_TRUE(why);
  EXPECT_TRUE(Contains(*why, "ffmpeg not found on maul")) << *why;
  EXPECT_TRUE(Contains(*why, "apt install ffmpeg")) << *why;
  EXPECT_TRUE(Contains(*why, "screen.backend")) << *why;
  EXPECT_TRUE(Contains(*why, "x11")) << *why;
}

TEST(ExplainScriptFailure, MissingGpspipe_NamesGpsdClients) {
  auto why = ExplainScriptFailure("labgate-missing: gpspipe\n", "location", "gpsd", "maul");
  ASSERT_TRUE(why);
  EXPECT_TRUE(Contains(*why, "gpsd-clients")) << *why;
  EXPECT_TRUE(Contains(*why, "location.backend")) << *why;
}

TEST(ExplainScriptFailure, MissingTermuxProgram_NamesTermuxApi) {
  auto why = ExplainScriptFailure("labgate-missing: termux-camera-photo\n", "camera", "termux", "phone");
  ASSERT_TRUE(why);
  EXPECT_TRUE(Contains(*why, "termux-camera-photo not found on phone")) << *why;
  EXPECT_TRUE(Contains(*why, "termux-api")) << *why;
}

TEST(ExplainScriptFailure, ErrorMarker_CarriesTheTextOfItsLineOnly) {
  auto why = ExplainScriptFailure("some ffmpeg noise\nlabgate-error: no X display: set screen.display\nmore noise\n",
                                  "screen", "x11", "maul");
  ASSERT_TRUE(why);
  EXPECT_TRUE(Contains(*why, "no X display: set screen.display")) << *why;
  EXPECT_TRUE(Contains(*why, "maul")) << *why;
  EXPECT_FALSE(Contains(*why, "more noise")) << *why;
}

TEST(ExplainScriptFailure, NoMarker_Nullopt) {
  EXPECT_FALSE(ExplainScriptFailure("", "screen", "x11", "maul"));
  EXPECT_FALSE(ExplainScriptFailure("[x11grab @ 0x55] Cannot open display :0, error 1\n", "screen", "x11", "maul"));
}

}  // namespace
}  // namespace labgate::capabilities
