// screen, camera and location end to end with real components: Xvfb showing a known picture,
// ffmpeg's lavfi test source as the camera, gpsfake replaying NMEA into a real gpsd, a real sshd
// host, a real paired node agent, and the real gateway daemon and CLI.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "sshd_fixture.h"
#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

const std::string kData = std::string(LABGATE_SOURCE_DIR) + "/tests/data/capture";
constexpr double kFixLat = 52.520008;
constexpr double kFixLon = 13.404954;
constexpr const char* kCameraSource = "testsrc2=size=1280x720:rate=30";

// The absolute path of a program in PATH (the test's spawner does not search PATH), or "".
std::string Which(const std::string& program) {
  auto c = RunToCompletion({"/bin/sh", "-c", "command -v " + program});
  std::string path = c.out.substr(0, c.out.find('\n'));
  return c.status == 0 && !path.empty() && path[0] == '/' ? path : "";
}

bool Have(const std::string& program) { return !Which(program).empty(); }

bool HaveCaptureTools() {
  for (const char* p : {"Xvfb", "xsetroot", "ffmpeg", "ffprobe", "gpsfake", "gpspipe"}) {
    if (!Have(p)) return false;
  }
  return true;
}

// An X display of its own, showing pattern16.xbm tiled in two colours. -noreset keeps the
// picture after xsetroot disconnects.
class XDisplay {
 public:
  XDisplay(int number, int width, int height, std::string fg, std::string bg)
      : name_(":" + std::to_string(number)), width_(width), height_(height), fg_(std::move(fg)), bg_(std::move(bg)) {
    const std::string size = std::to_string(width) + "x" + std::to_string(height) + "x24";
    server_ = std::make_unique<Subprocess>(std::vector<std::string>{Which("Xvfb"), name_, "-screen", "0", size, "-nolisten",
                                                                    "tcp", "-noreset"});
    const std::string socket = "/tmp/.X11-unix/X" + std::to_string(number);
    ready_ = PollUntil([&] { return std::filesystem::exists(socket); }, milliseconds(10000)) &&
             PollUntil([&] {
               return RunToCompletion({Which("xsetroot"), "-display", name_, "-bitmap", kData + "/pattern16.xbm", "-fg",
                                       "#" + fg_, "-bg", "#" + bg_})
                          .status == 0;
             },
                       milliseconds(10000));
  }
  ~XDisplay() {
    if (server_) ::kill(server_->pid(), SIGTERM);
  }
  const std::string& name() const { return name_; }
  bool ready() const { return ready_; }
  int width() const { return width_; }
  int height() const { return height_; }

  // What pattern16.xbm tiled from (0,0) shows at (x, y): bits LSB first, two bytes per row.
  std::string ExpectedAt(int x, int y) const {
    static const unsigned char kBits[] = {0xff, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff,
                                          0x00, 0xff, 0x00, 0xff, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x04,
                                          0x00, 0x08, 0x00, 0x10, 0x00, 0x20, 0x00, 0x40, 0x00, 0x80};
    const int bx = x % 16;
    const int by = y % 16;
    const bool set = (kBits[by * 2 + bx / 8] >> (bx % 8)) & 1;
    return set ? fg_ : bg_;
  }

 private:
  std::string name_;
  int width_;
  int height_;
  std::string fg_;
  std::string bg_;
  std::unique_ptr<Subprocess> server_;
  bool ready_ = false;
};

// gpsfake replaying an NMEA log into its own gpsd on `port` (127.0.0.1 and ::1 only).
class GpsFake {
 public:
  GpsFake(const std::string& log, int port, const std::string& tmp)
      : process_(std::vector<std::string>{Which("env"), "TMPDIR=" + tmp, "gpsfake", "-q", "-P", std::to_string(port), "-c",
                                          "0.2", log}) {}
  ~GpsFake() { ::kill(process_.pid(), SIGTERM); }

 private:
  Subprocess process_;
};

// Decodes any picture ffmpeg reads into rgb24 bytes.
std::string Rgb24(const std::string& path) {
  const std::string raw = path + ".rgb";
  RunToCompletion({Which("ffmpeg"), "-nostdin", "-loglevel", "error", "-y", "-i", path, "-f", "rawvideo", "-pix_fmt",
                   "rgb24", raw});
  return ReadFile(raw);
}

Json Probe(const std::string& path) {
  auto c = RunToCompletion({Which("ffprobe"), "-v", "error", "-show_entries", "stream=width,height,codec_name:format=duration",
                            "-of", "json", path});
  return Json::parse(c.out, nullptr, false);
}

std::string Hex(unsigned char r, unsigned char g, unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x", r, g, b);
  return buf;
}

class Capture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveSshd() || !HaveCaptureTools()) return;
    dir_ = new TempDir();
    // Display numbers of this test process only: suites run in parallel processes.
    const int base = 300 + static_cast<int>(::getpid() % 300) * 2;
    node_screen_ = new XDisplay(base, 320, 240, "ff0000", "0000ff");
    host_screen_ = new XDisplay(base + 1, 400, 300, "00ff00", "000000");
    if (!node_screen_->ready() || !host_screen_->ready()) {
      setup_error_ = "Xvfb did not start";
      return;
    }
    const std::string gps_tmp = dir_->path() + "/gps";
    std::filesystem::create_directories(gps_tmp);
    const int fix_port = FreePort();
    const int nofix_port = FreePort();
    fix_gps_ = new GpsFake(kData + "/fix_berlin.nmea", fix_port, gps_tmp);
    nofix_gps_ = new GpsFake(kData + "/nofix.nmea", nofix_port, gps_tmp);

    sshd_ = new Sshd(Sshd::Options("127.0.0.4"));
    const std::string state = dir_->path() + "/state";
    std::filesystem::create_directories(state);
    std::ofstream(state + "/known_hosts") << sshd_->KnownHostsLine() << "\n";
    const std::string host_common = "address = \"127.0.0.4\"\nport = " + std::to_string(sshd_->port()) +
                                    "\nuser = \"" + CurrentUser() + "\"\nidentity_file = \"" +
                                    TestClientKey().private_path + "\"\n";
    config_ = dir_->Write(
        "hosts.toml",
        "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(FreePort()) + "\"\nstate_dir = \"" + state + "\"\n\n" +
            "[local]\ncapabilities = [\"run\", \"location\", \"camera\"]\n\n"
            "[local.location]\nbackend = \"static\"\nlatitude = 47.3769\nlongitude = 8.5417\naccuracy_m = 25\n\n"
            "[local.camera]\nbackend = \"v4l2\"\ninput_format = \"lavfi\"\ndevice = \"" + kCameraSource + "\"\n\n"
            "[policies.camera]\nenabled = true\napproved_nodes = [\"alpha\", \"local\"]\napproved_hosts = [\"box\"]\n\n"
            "[[hosts]]\nid = \"box\"\n" + host_common +
            "capabilities = [\"run\", \"screen\", \"camera\", \"location\"]\n"
            "[hosts.screen]\nbackend = \"x11\"\ndisplay = \"" + host_screen_->name() + "\"\n"
            "[hosts.camera]\nbackend = \"v4l2\"\ninput_format = \"lavfi\"\ndevice = \"" + kCameraSource + "\"\n"
            "[hosts.location]\nbackend = \"gpsd\"\ngpsd = \"127.0.0.1:" + std::to_string(fix_port) + "\"\n\n"
            "[[hosts]]\nid = \"nofix\"\n" + host_common +
            "capabilities = [\"location\", \"camera\"]\n"
            "[hosts.location]\nbackend = \"gpsd\"\ngpsd = \"127.0.0.1:" + std::to_string(nofix_port) + "\"\n\n"
            "[[nodes]]\nid = \"alpha\"\ncapabilities = [\"run\", \"screen\", \"camera\", \"location\"]\n");
    gateway_ = new Subprocess({LABGATE_BINARY, "gateway", "--config", config_});
    if (!GatewayAnswers(config_, dir_->path())) {
      setup_error_ = "gateway did not answer";
      return;
    }
    const std::string device = dir_->path() + "/device-alpha";
    if (setup_error_ = PairNode(config_, "alpha", device, dir_->path()); !setup_error_.empty()) return;
    // The node's own backends, in its own config.
    std::ofstream(device + "/device.toml")
        << "[screen]\nbackend = \"x11\"\ndisplay = \"" << node_screen_->name() << "\"\n\n"
        << "[camera]\nbackend = \"v4l2\"\ninput_format = \"lavfi\"\ndevice = \"" << kCameraSource << "\"\n\n"
        << "[location]\nbackend = \"gpsd\"\ngpsd = \"127.0.0.1:" << fix_port << "\"\n";
    agent_ = new Subprocess({LABGATE_BINARY, "node", "run", "--state-dir", device});
    ready_ = NodeOnline(config_, "alpha", dir_->path());
    if (!ready_) {
      auto list = Labgate({"nodes", "list", "--json"});
      setup_error_ = "node alpha did not come online: " + agent_->Stderr() + "\nnodes list: " + list.out + list.err;
    }
  }

  static void TearDownTestSuite() {
    if (agent_) ::kill(agent_->pid(), SIGTERM);
    if (gateway_) ::kill(gateway_->pid(), SIGTERM);
    delete agent_;
    delete gateway_;
    delete sshd_;
    delete fix_gps_;
    delete nofix_gps_;
    delete node_screen_;
    delete host_screen_;
    delete dir_;
    agent_ = gateway_ = nullptr;
    sshd_ = nullptr;
    fix_gps_ = nofix_gps_ = nullptr;
    node_screen_ = host_screen_ = nullptr;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!HaveSshd()) GTEST_SKIP() << "/usr/sbin/sshd is not installed (apt-get install openssh-server)";
    if (!HaveCaptureTools()) {
      GTEST_SKIP() << "Xvfb, xsetroot, ffmpeg or gpsd-clients missing (apt-get install xvfb x11-xserver-utils "
                      "ffmpeg gpsd gpsd-clients)";
    }
    ASSERT_TRUE(ready_) << "the capture lab did not come up: " << setup_error_ << "\n"
                        << (gateway_ ? gateway_->Stderr() : "");
  }

  static Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY, args[0], "--config", config_};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    return RunToCompletion(argv, dir_->path());
  }

  // Runs a capture verb with --json; the file goes to `file` when given.
  static Json CaptureJson(std::vector<std::string> args, const std::string& file = "") {
    args.push_back("--json");
    if (!file.empty()) {
      args.push_back("-o");
      args.push_back(file);
    }
    auto c = Labgate(args);
    Json j = Json::parse(c.out, nullptr, false);
    return j.is_discarded() ? Json{{"cliError", c.err}, {"status", c.status}} : j;
  }

  static const XDisplay& ScreenOf(const std::string& target) { return target == "alpha" ? *node_screen_ : *host_screen_; }

  static TempDir* dir_;
  static Sshd* sshd_;
  static XDisplay* node_screen_;
  static XDisplay* host_screen_;
  static GpsFake* fix_gps_;
  static GpsFake* nofix_gps_;
  static Subprocess* gateway_;
  static Subprocess* agent_;
  static std::string config_;
  static bool ready_;
  static std::string setup_error_;
};

TempDir* Capture::dir_ = nullptr;
Sshd* Capture::sshd_ = nullptr;
XDisplay* Capture::node_screen_ = nullptr;
XDisplay* Capture::host_screen_ = nullptr;
GpsFake* Capture::fix_gps_ = nullptr;
GpsFake* Capture::nofix_gps_ = nullptr;
Subprocess* Capture::gateway_ = nullptr;
Subprocess* Capture::agent_ = nullptr;
std::string Capture::config_;
bool Capture::ready_ = false;
std::string Capture::setup_error_;

TEST_F(Capture, Screen_SnapshotOnNodeAndHost_ShowsTheDisplaysPicture) {
  for (const std::string target : {"alpha", "box"}) {
    SCOPED_TRACE(target);
    const XDisplay& screen = ScreenOf(target);
    const std::string file = dir_->path() + "/" + target + ".png";
    Json j = CaptureJson({"screen", target}, file);
    ASSERT_TRUE(j["error"].is_null()) << j.dump();
    EXPECT_EQ(j["via"], target == "alpha" ? "node" : "ssh");
    EXPECT_EQ(j["format"], "png");
    EXPECT_EQ(j["mimeType"], "image/png");
    EXPECT_EQ(j["width"], screen.width());
    EXPECT_EQ(j["height"], screen.height());
    const std::string png = ReadFile(file);
    EXPECT_EQ(j["bytes"], png.size());
    const std::string rgb = Rgb24(file);
    ASSERT_EQ(rgb.size(), static_cast<std::size_t>(screen.width() * screen.height() * 3)) << "the PNG did not decode";
    int wrong = 0;
    for (int y = 0; y < screen.height(); ++y) {
      for (int x = 0; x < screen.width(); ++x) {
        const std::size_t at = static_cast<std::size_t>((y * screen.width() + x) * 3);
        const std::string got = Hex(static_cast<unsigned char>(rgb[at]), static_cast<unsigned char>(rgb[at + 1]),
                                    static_cast<unsigned char>(rgb[at + 2]));
        if (got != screen.ExpectedAt(x, y) && ++wrong <= 3) {
          ADD_FAILURE() << "pixel (" << x << "," << y << ") is " << got << ", expected " << screen.ExpectedAt(x, y);
        }
      }
    }
    EXPECT_EQ(wrong, 0);
  }
}

TEST_F(Capture, Screen_RecordTwoSeconds_IsAnMp4OfAboutTwoSeconds) {
  for (const std::string target : {"alpha", "box"}) {
    SCOPED_TRACE(target);
    const std::string file = dir_->path() + "/" + target + ".mp4";
    Json j = CaptureJson({"screen", target, "--record", "2s", "--fps", "10"}, file);
    ASSERT_TRUE(j["error"].is_null()) << j.dump();
    EXPECT_EQ(j["format"], "mp4");
    EXPECT_EQ(j["mimeType"], "video/mp4");
    Json probe = Probe(file);
    ASSERT_TRUE(probe.contains("format")) << probe.dump();
    const double seconds = std::stod(probe["format"]["duration"].get<std::string>());
    EXPECT_NEAR(seconds, 2.0, 0.25);
    EXPECT_EQ(probe["streams"][0]["width"], ScreenOf(target).width());
    EXPECT_NEAR(j["durationMs"].get<double>(), 2000, 250);
  }
}

TEST_F(Capture, Camera_Snap_RespectsMaxWidthAndQuality) {
  for (const std::string target : {"alpha", "box", "local"}) {
    SCOPED_TRACE(target);
    const std::string good = dir_->path() + "/" + target + "-q95.jpg";
    const std::string poor = dir_->path() + "/" + target + "-q10.jpg";
    Json a = CaptureJson({"camera", target, "--max-width", "640", "--quality", "95"}, good);
    Json b = CaptureJson({"camera", target, "--max-width", "640", "--quality", "10"}, poor);
    ASSERT_TRUE(a["error"].is_null()) << a.dump();
    ASSERT_TRUE(b["error"].is_null()) << b.dump();
    EXPECT_EQ(a["mimeType"], "image/jpeg");
    Json probe = Probe(good);
    ASSERT_TRUE(probe.contains("streams")) << "the JPEG did not decode";
    EXPECT_EQ(probe["streams"][0]["codec_name"], "mjpeg");
    EXPECT_EQ(probe["streams"][0]["width"], 640);
    EXPECT_EQ(probe["streams"][0]["height"], 360);
    EXPECT_EQ(a["width"], 640);
    EXPECT_LT(ReadFile(poor).size(), ReadFile(good).size());
    EXPECT_EQ(Rgb24(poor).size(), 640u * 360 * 3) << "the low-quality JPEG decodes too";
  }
}

TEST_F(Capture, Camera_Clip_HasTheAskedDuration) {
  for (const std::string target : {"alpha", "box"}) {
    SCOPED_TRACE(target);
    const std::string file = dir_->path() + "/" + target + "-clip.mp4";
    Json j = CaptureJson({"camera", target, "--clip", "2s", "--max-width", "320"}, file);
    ASSERT_TRUE(j["error"].is_null()) << j.dump();
    Json probe = Probe(file);
    ASSERT_TRUE(probe.contains("format")) << probe.dump();
    EXPECT_NEAR(std::stod(probe["format"]["duration"].get<std::string>()), 2.0, 0.25);
    EXPECT_EQ(probe["streams"][0]["width"], 320);
  }
}

TEST_F(Capture, Camera_List_ShowsTheConfiguredSource) {
  Json j = CaptureJson({"camera", "list", "alpha"});
  ASSERT_TRUE(j["error"].is_null()) << j.dump();
  ASSERT_EQ(j["devices"].size(), 1u) << j.dump();
  EXPECT_EQ(j["devices"][0]["id"], kCameraSource);
}

TEST_F(Capture, Location_Gpsd_ReportsTheReplayedFix) {
  for (const std::string target : {"alpha", "box"}) {
    SCOPED_TRACE(target);
    Json j = CaptureJson({"location", target, "--timeout", "15s"});
    ASSERT_TRUE(j["error"].is_null()) << j.dump();
    EXPECT_NEAR(j["lat"].get<double>(), kFixLat, 1e-5);
    EXPECT_NEAR(j["lon"].get<double>(), kFixLon, 1e-5);
    ASSERT_TRUE(j["accuracyMeters"].is_number()) << j.dump();
    EXPECT_GT(j["accuracyMeters"].get<double>(), 0);
    EXPECT_EQ(j["source"], "gpsd");
    EXPECT_TRUE(j["timestamp"].get<std::string>().rfind("2024-01-15T12:00:0", 0) == 0) << j["timestamp"];
  }
}

TEST_F(Capture, Location_GpsdWithoutFix_TimesOutWithinTimeout) {
  const auto started = std::chrono::steady_clock::now();
  Json j = CaptureJson({"location", "nofix", "--timeout", "3s"});
  const auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  ASSERT_TRUE(j["error"].is_string()) << j.dump();
  EXPECT_NE(j["error"].get<std::string>().find("no location fix"), std::string::npos) << j["error"];
  EXPECT_FALSE(j.contains("lat"));
  // The deadline is 3 s; a call that ignored it would wait for the default location timeout or
  // for a fix that never comes. The allowance for the CLI's start and the SSH round trips is
  // generous (they took 1.5 s under ASan on a busy CI machine) and still tells the two apart.
  EXPECT_LT(took.count(), 3000 + 8000);
}

TEST_F(Capture, Location_StaticBackend_AnswersTheConfiguredPosition) {
  Json j = CaptureJson({"location", "local"});
  ASSERT_TRUE(j["error"].is_null()) << j.dump();
  EXPECT_DOUBLE_EQ(j["lat"].get<double>(), 47.3769);
  EXPECT_DOUBLE_EQ(j["lon"].get<double>(), 8.5417);
  EXPECT_DOUBLE_EQ(j["accuracyMeters"].get<double>(), 25);
  EXPECT_EQ(j["source"], "static");
}

TEST_F(Capture, Location_MaxAge_IsServedFromTheGatewaysCache) {
  Json fresh = CaptureJson({"location", "box", "--timeout", "15s"});
  ASSERT_TRUE(fresh["error"].is_null()) << fresh.dump();
  EXPECT_FALSE(fresh.contains("cached"));
  Json cached = CaptureJson({"location", "box", "--max-age", "10m"});
  ASSERT_TRUE(cached["error"].is_null()) << cached.dump();
  EXPECT_EQ(cached["cached"], true);
  EXPECT_EQ(cached["decision"], "cached");
  EXPECT_EQ(cached["lat"], fresh["lat"]);
  EXPECT_EQ(cached["timestamp"], fresh["timestamp"]);
  EXPECT_GE(cached["ageMs"].get<std::int64_t>(), 0);
  // A fix older than maxAgeMs is not good enough: this asks gpsd again.
  std::this_thread::sleep_for(milliseconds(50));
  Json again = CaptureJson({"location", "box", "--max-age", "1ms", "--timeout", "15s"});
  ASSERT_TRUE(again["error"].is_null()) << again.dump();
  EXPECT_FALSE(again.contains("cached"));
  bool cache_event = false;
  for (const auto& r : ReadJsonLines(dir_->path() + "/state/audit.jsonl")) {
    if (r.value("event", "") == "location.cached" && r.value("target", "") == "box") cache_event = true;
  }
  EXPECT_TRUE(cache_event) << "the cached answer is audited";
}

TEST_F(Capture, Scoping_RefusalsNameTheRule) {
  Json screen = CaptureJson({"screen", "local"});
  EXPECT_EQ(screen["decision"], "refused") << screen.dump();
  EXPECT_EQ(screen["rule"], "targets.local.capabilities");
  Json camera = CaptureJson({"camera", "nofix"});
  EXPECT_EQ(camera["decision"], "refused") << camera.dump();
  EXPECT_EQ(camera["rule"], "policies.camera.approved_hosts");
  EXPECT_NE(camera["error"].get<std::string>().find("approved_hosts"), std::string::npos);
  auto human = Labgate({"camera", "nofix"});
  EXPECT_NE(human.status, 0);
  EXPECT_NE(human.err.find("policies.camera.approved_hosts"), std::string::npos) << human.err;
}

TEST_F(Capture, Audit_RecordsIntentAndResultWithTheFilesDigest) {
  const std::string file = dir_->path() + "/audited.png";
  Json j = CaptureJson({"screen", "alpha"}, file);
  ASSERT_TRUE(j["error"].is_null()) << j.dump();
  const std::string digest = "sha256:" + j["sha256"].get<std::string>();
  bool intent = false;
  bool result = false;
  for (const auto& r : ReadJsonLines(dir_->path() + "/state/audit.jsonl")) {
    if (r.value("actionId", "") != j["actionId"]) continue;
    if (r["kind"] == "intent") {
      intent = true;
      EXPECT_EQ(r["action"], "screen.snapshot");
      EXPECT_EQ(r["path"], "node");
      EXPECT_EQ(r["target"], "alpha");
    }
    if (r["kind"] == "result") {
      result = true;
      EXPECT_EQ(r["outputDigest"], digest);
      EXPECT_EQ(r["exitCode"], 0);
      EXPECT_EQ(r["artifact"], j["uri"]);
    }
  }
  EXPECT_TRUE(intent);
  EXPECT_TRUE(result);
  EXPECT_EQ(Labgate({"audit", "verify"}).status, 0);
}

TEST_F(Capture, Mcp_CancelStopsTheRecorderAndProgressIsReported) {
  Subprocess mcp({LABGATE_BINARY, "mcp", "--config", config_}, dir_->path());
  mcp.Send({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
            {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()},
                        {"clientInfo", {{"name", "capture-test"}, {"version", "1"}}}}}});
  ASSERT_TRUE(mcp.ReadResponse(1).contains("result"));
  mcp.Send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  mcp.Send({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"},
            {"params", {{"name", "screen"},
                        {"arguments", {{"target", "alpha"}, {"action", "record"}, {"durationMs", 30000}}},
                        {"_meta", {{"progressToken", "rec-1"}}}}}});
  // ffmpeg's argv holds "-i" then the display: that is the recorder and nothing else.
  const std::string recorder = std::string("-i") + '\0' + node_screen_->name() + '\0';
  ASSERT_TRUE(WaitUntilPresent(recorder, milliseconds(10000))) << "the recorder never started";
  bool progress = false;
  for (int i = 0; i < 20 && !progress; ++i) {
    auto line = mcp.ReadLine(milliseconds(2000));
    if (!line) break;
    Json m = Json::parse(*line, nullptr, false);
    if (m.value("method", "") == "notifications/progress" && m["params"]["progressToken"] == "rec-1") {
      progress = true;
      EXPECT_EQ(m["params"]["total"], 30000);
    }
  }
  EXPECT_TRUE(progress) << "no notifications/progress while recording";
  mcp.Send({{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 2}, {"reason", "test"}}}});
  EXPECT_TRUE(WaitUntilGone(recorder, milliseconds(8000))) << "the recorder still runs after cancellation";
  mcp.CloseStdin();
  mcp.Wait(milliseconds(10000));
}

}  // namespace
}  // namespace labgate::testing
