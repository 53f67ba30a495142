#include "capabilities/backends.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/text.h"

namespace labgate::capabilities {
namespace {

using core::ErrorCode;
using core::MakeError;
using core::ShellQuote;

// Every script starts with these: a missing program and a setup problem are reported in a form
// ExplainScriptFailure turns into one sentence for the operator.
constexpr char kPrelude[] =
    "need() { command -v \"$1\" >/dev/null 2>&1 || { echo \"labgate-missing: $1\" >&2; exit 127; }; }\n"
    "fail() { echo \"labgate-error: $*\" >&2; exit 2; }\n";

// A private temporary directory removed however the script ends (a deadline TERMs the group).
constexpr char kTempDir[] =
    "t=$(mktemp -d 2>/dev/null || mktemp -d -t labgate) || fail \"cannot create a temporary directory\"\n"
    "trap 'rm -rf \"$t\"' EXIT\n"
    "trap 'exit 143' HUP INT TERM\n";

// libx264 where ffmpeg has it (Debian, Raspberry Pi OS, Homebrew do), else ffmpeg's own mpeg4.
constexpr char kVideoEncoder[] =
    "enc=mpeg4; ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libx264 && enc=\"libx264 -preset veryfast\"\n";

constexpr char kFfmpeg[] = "ffmpeg -hide_banner -nostdin -loglevel error";

std::string Seconds(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000));
  return buf;
}

// ffmpeg -q:v for the mjpeg encoder: 2 is the best it does, 31 the worst.
int JpegQScale(int quality) {
  if (quality <= 0) quality = 85;
  return 2 + static_cast<int>(std::lround((100.0 - quality) * 29.0 / 99.0));
}

// A filter that keeps the picture at most `max_width` wide (aspect kept, even height).
std::string ScaleFilter(int max_width) {
  if (max_width <= 0) return "";
  return "scale=w=min(iw\\," + std::to_string(max_width) + "):h=-2";
}

std::string JoinFilters(std::initializer_list<std::string> filters) {
  std::string out;
  for (const auto& f : filters) {
    if (f.empty()) continue;
    out += (out.empty() ? "" : ",") + f;
  }
  return out;
}

std::string VideoArgs(int fps, const std::string& extra_filter) {
  // yuv420p (what every player plays) needs even sizes.
  std::string filters = JoinFilters({extra_filter, "pad=ceil(iw/2)*2:ceil(ih/2)*2"});
  std::string args = " -vf " + ShellQuote(filters) + " -c:v $enc -pix_fmt yuv420p -movflags +faststart";
  if (fps > 0) args += " -r " + std::to_string(fps);
  return args;
}

BackendCommand X11(const ScreenConfig& config, const CaptureRequest& r) {
  std::ostringstream s;
  s << kPrelude << "need ffmpeg\n";
  s << "d=" << ShellQuote(config.display) << "; [ -n \"$d\" ] || d=\"${DISPLAY:-}\"\n"
    << "[ -n \"$d\" ] || fail \"no X display: set screen.display (for example \\\":0\\\") in the config\"\n";
  if (r.screen_index > 0) {
    s << "case \"$d\" in *:*.*) d=\"${d%.*}\" ;; esac; d=\"$d." << r.screen_index << "\"\n";
  }
  if (r.action == "snapshot") {
    // A tiny probe size: x11grab frames are all alike, and probing one costs half a second.
    s << "exec " << kFfmpeg << " -f x11grab -draw_mouse 0 -probesize 32 -i \"$d\" -frames:v 1 -f image2pipe -vcodec png -\n";
    return {"x11", s.str(), "image/png"};
  }
  const int fps = r.fps > 0 ? r.fps : 10;
  s << kTempDir << kVideoEncoder;
  s << kFfmpeg << " -f x11grab -probesize 32 -framerate " << fps << " -i \"$d\" -t " << Seconds(r.duration_ms)
    << VideoArgs(0, "") << " \"$t/capture.mp4\" || exit $?\n"
    << "cat \"$t/capture.mp4\"\n";
  return {"x11", s.str(), "video/mp4"};
}

core::Result<BackendCommand> Wayland(const ScreenConfig& config, const CaptureRequest& r) {
  std::string output;
  if (r.screen_index > 0 || !config.outputs.empty()) {
    if (static_cast<std::size_t>(r.screen_index) >= config.outputs.size()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "screenIndex " + std::to_string(r.screen_index) + " has no output name: list them in " +
                           "screen.outputs (e.g. [\"DP-1\", \"HDMI-A-1\"]; `wlr-randr` shows the names)");
    }
    output = config.outputs[static_cast<std::size_t>(r.screen_index)];
  }
  std::ostringstream s;
  s << kPrelude;
  if (r.action == "snapshot") {
    s << "need grim\nexec grim -t png" << (output.empty() ? "" : " -o " + ShellQuote(output)) << " -\n";
    return BackendCommand{"wayland", s.str(), "image/png"};
  }
  s << "need wf-recorder\nneed timeout\n" << kTempDir;
  s << "timeout -s INT " << Seconds(r.duration_ms) << " wf-recorder -y -f \"$t/capture.mp4\""
    << (output.empty() ? "" : " -o " + ShellQuote(output)) << (r.fps > 0 ? " -r " + std::to_string(r.fps) : "")
    << " >/dev/null 2>\"$t/log\"\n"
    << "[ -s \"$t/capture.mp4\" ] || { cat \"$t/log\" >&2; fail \"wf-recorder wrote no video\"; }\n"
    << "cat \"$t/capture.mp4\"\n";
  return BackendCommand{"wayland", s.str(), "video/mp4"};
}

BackendCommand MacOs(const CaptureRequest& r) {
  std::ostringstream s;
  s << kPrelude << "need screencapture\n" << kTempDir;
  const std::string display = std::to_string(r.screen_index + 1);  // screencapture counts from 1
  if (r.action == "snapshot") {
    s << "screencapture -x -t png -D " << display << " \"$t/screen.png\" || exit $?\ncat \"$t/screen.png\"\n";
    return {"macos", s.str(), "image/png"};
  }
  const std::int64_t secs = std::max<std::int64_t>(1, (r.duration_ms + 999) / 1000);
  s << "screencapture -x -v -V " << secs << " -D " << display << " \"$t/screen.mov\" || exit $?\n"
    << "cat \"$t/screen.mov\"\n";
  return {"macos", s.str(), "video/quicktime"};
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Which device a camera request means. A caller may name only devices the machine's config
// lists, or plain V4L2 devices: never an arbitrary path or (for lavfi) a filter graph that
// could read files.
core::Result<std::string> CameraDevice(const std::string& backend, const CameraConfig& c, const CaptureRequest& r) {
  const bool termux = backend == "termux";
  const bool plain_v4l2 = !termux && (c.input_format.empty() || c.input_format == "v4l2");
  if (!r.device_id.empty()) {
    const std::string& id = r.device_id;
    if (id == c.device || id == c.front || id == c.back) return id;
    if (termux && AllDigits(id)) return id;
    if (plain_v4l2 && AllDigits(id)) return "/dev/video" + id;
    if (plain_v4l2 && id.rfind("/dev/video", 0) == 0 && AllDigits(std::string_view(id).substr(10))) return id;
    return MakeError(ErrorCode::kInvalidArgument, "unknown camera deviceId '" + id +
                                                      "': use an id `camera` with action `list` shows, or facing");
  }
  if (!r.facing.empty()) {
    const std::string& mapped = r.facing == "front" ? c.front : c.back;
    if (!mapped.empty()) return mapped;
    if (termux) return std::string(r.facing == "front" ? "1" : "0");
    if (r.facing == "back" && !c.device.empty() && c.front.empty()) return c.device;
    return MakeError(ErrorCode::kInvalidArgument, "camera." + r.facing + " is not set, so facing '" + r.facing +
                                                      "' names no device; set camera." + r.facing +
                                                      " (e.g. \"/dev/video2\") in the config or pass deviceId");
  }
  if (!c.device.empty()) return c.device;
  if (!c.back.empty()) return c.back;
  return std::string(termux ? "0" : "/dev/video0");
}

core::Result<BackendCommand> V4l2(const CameraConfig& c, const CaptureRequest& r) {
  const std::string format = c.input_format.empty() ? "v4l2" : c.input_format;
  std::ostringstream s;
  s << kPrelude;
  if (r.action == "list") {
    if (format != "v4l2") return BackendCommand{"v4l2", "true\n", "application/json"};
    s << "for d in /dev/video*; do [ -e \"$d\" ] || continue; "
         "n=$(cat \"/sys/class/video4linux/${d##*/}/name\" 2>/dev/null); printf 'device\\t%s\\t%s\\n' \"$d\" \"$n\"; "
         "done\nexit 0\n";
    return BackendCommand{"v4l2", s.str(), "application/json"};
  }
  auto device = CameraDevice("v4l2", c, r);
  if (!device) return device.error();
  // A generated source must be paced like a camera, or a clip would be encoded faster than
  // real time; a real camera needs a few frames for its exposure to settle.
  const std::string input =
      std::string(format == "lavfi" ? " -re" : "") + " -f " + ShellQuote(format) + " -i " + ShellQuote(*device);
  const std::string warmup = format == "v4l2" ? "select=gte(n\\,5)" : "";
  s << "need ffmpeg\n";
  if (r.action == "snap") {
    const std::string filters = JoinFilters({warmup, ScaleFilter(r.max_width)});
    s << "exec " << kFfmpeg << input << " -frames:v 1" << (filters.empty() ? "" : " -vf " + ShellQuote(filters))
      << " -q:v " << JpegQScale(r.quality) << " -f image2pipe -vcodec mjpeg -\n";
    return BackendCommand{"v4l2", s.str(), "image/jpeg"};
  }
  s << kTempDir << kVideoEncoder;
  s << kFfmpeg << input << " -t " << Seconds(r.duration_ms) << VideoArgs(r.fps, ScaleFilter(r.max_width))
    << " \"$t/capture.mp4\" || exit $?\ncat \"$t/capture.mp4\"\n";
  return BackendCommand{"v4l2", s.str(), "video/mp4"};
}

core::Result<BackendCommand> TermuxCamera(const CameraConfig& c, const CaptureRequest& r) {
  std::ostringstream s;
  s << kPrelude;
  if (r.action == "list") {
    s << "need termux-camera-info\nexec termux-camera-info\n";
    return BackendCommand{"termux", s.str(), "application/json"};
  }
  if (r.action == "clip") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the termux camera backend takes photos only (Termux:API has no video capture); use action snap");
  }
  auto device = CameraDevice("termux", c, r);
  if (!device) return device.error();
  s << "need termux-camera-photo\n" << kTempDir;
  s << "termux-camera-photo -c " << ShellQuote(*device) << " \"$t/photo.jpg\" || exit $?\n"
    << "[ -s \"$t/photo.jpg\" ] || fail \"termux-camera-photo wrote no picture; allow Termux:API to use the camera\"\n";
  if (r.max_width > 0 || r.quality > 0) {
    // Termux:API cannot scale or recompress; ffmpeg does it when installed (pkg install ffmpeg).
    const std::string filter = ScaleFilter(r.max_width);
    s << "if command -v ffmpeg >/dev/null 2>&1; then " << kFfmpeg << " -i \"$t/photo.jpg\""
      << (filter.empty() ? "" : " -vf " + ShellQuote(filter)) << " -q:v " << JpegQScale(r.quality)
      << " \"$t/out.jpg\" && mv \"$t/out.jpg\" \"$t/photo.jpg\"; fi\n";
  }
  s << "cat \"$t/photo.jpg\"\n";
  return BackendCommand{"termux", s.str(), "image/jpeg"};
}

BackendCommand Gpsd(const LocationConfig& c, const CaptureRequest& r) {
  // The first complete report with a fix ends the pipeline; gpspipe stops at its next write.
  // Its own limit (-x, whole seconds) ends a wait without a fix just inside the deadline. grep,
  // not awk: mawk holds pipe input back until gpspipe exits. gpsd writes mode before time and
  // lat and its error estimates, and its first reports after opening a device can lack them.
  const std::int64_t secs = std::max<std::int64_t>(1, r.timeout_ms / 1000);
  const std::string modes = r.accuracy == "precise" ? "3" : "[23]";
  std::ostringstream s;
  s << kPrelude << "need gpspipe\n"
    << "gpspipe -w -x " << secs << (c.gpsd.empty() ? "" : " " + ShellQuote(c.gpsd))
    << " | grep -m1 -E '\"class\":\"TPV\".*\"mode\":" << modes << ".*\"time\".*\"lat\".*\"ep[hxy]\"'\n"
    << "exit 0\n";
  return BackendCommand{"gpsd", s.str(), "application/json"};
}

BackendCommand TermuxLocation(const CaptureRequest& r) {
  std::ostringstream s;
  s << kPrelude << "need termux-location\nexec termux-location -p " << (r.accuracy == "precise" ? "gps" : "network")
    << " -r once\n";
  return BackendCommand{"termux", s.str(), "application/json"};
}

std::string PackageFor(std::string_view program) {
  if (program == "gpspipe") return "gpsd-clients (apt install gpsd gpsd-clients)";
  if (program.rfind("termux-", 0) == 0) return "termux-api (pkg install termux-api, plus the Termux:API app)";
  if (program == "screencapture") return "macOS's screencapture (it ships with macOS)";
  if (program == "timeout") return "coreutils";
  return std::string(program) + " (Debian: apt install " + std::string(program) + ")";
}

}  // namespace

bool MachineFacts::Has(std::string_view tool) const {
  return std::find(tools.begin(), tools.end(), tool) != tools.end();
}

std::string ProbeScript() {
  return "echo \"os=$(uname -s 2>/dev/null)\"\n"
         "echo \"display=${DISPLAY:-}\"\n"
         "echo \"wayland=${WAYLAND_DISPLAY:-}\"\n"
         "echo \"termux=${TERMUX_VERSION:-}\"\n"
         "for p in ffmpeg grim wf-recorder screencapture termux-camera-photo termux-location gpspipe; do\n"
         "  command -v \"$p\" >/dev/null 2>&1 && echo \"tool=$p\"\n"
         "done\n"
         "for d in /dev/video*; do [ -e \"$d\" ] && echo \"video=$d\"; done\n"
         "exit 0\n";
}

MachineFacts ParseProbe(std::string_view output) {
  MachineFacts facts;
  std::istringstream lines{std::string(output)};
  std::string line;
  while (std::getline(lines, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq);
    std::string value = line.substr(eq + 1);
    if (key == "os") facts.os = value;
    else if (key == "display") facts.display = value;
    else if (key == "wayland") facts.wayland_display = value;
    else if (key == "termux") facts.termux = !value.empty();
    else if (key == "tool") facts.tools.push_back(value);
    else if (key == "video") facts.video_devices.push_back(value);
  }
  return facts;
}

core::Result<std::string> ChooseBackend(const std::string& capability, const DeviceConfig& config,
                                        const MachineFacts& facts, const std::string& machine) {
  if (capability == "screen") {
    if (facts.os == "Darwin") return std::string("macos");
    if (!facts.wayland_display.empty() && facts.Has("grim")) return std::string("wayland");
    if (!config.screen.display.empty() || !facts.display.empty()) return std::string("x11");
    return MakeError(ErrorCode::kUnavailable,
                     "no screen found on " + machine + " (no DISPLAY or WAYLAND_DISPLAY there, and screen.display is "
                     "not set); set screen.backend and screen.display (e.g. backend = \"x11\", display = \":0\")");
  }
  if (capability == "camera") {
    if (facts.termux) return std::string("termux");
    if (!config.camera.input_format.empty() || !config.camera.device.empty() || !facts.video_devices.empty()) {
      return std::string("v4l2");
    }
    return MakeError(ErrorCode::kUnavailable, "no camera found on " + machine +
                                                  " (no /dev/video* device and no Termux); connect one or set "
                                                  "camera.backend and camera.device");
  }
  if (capability == "location") {
    if (config.location.latitude && config.location.longitude) return std::string("static");
    if (facts.termux) return std::string("termux");
    if (facts.Has("gpspipe") || !config.location.gpsd.empty()) return std::string("gpsd");
    return MakeError(ErrorCode::kUnavailable,
                     "no location source on " + machine + " (no gpsd client gpspipe, no Termux); install " +
                         PackageFor("gpspipe") + ", or set location.backend = \"static\" with latitude and longitude");
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown capability " + capability);
}

core::Result<BackendCommand> BuildCommand(const std::string& backend, const DeviceConfig& config,
                                          const CaptureRequest& request) {
  if (request.capability == "screen") {
    if (backend == "x11") return X11(config.screen, request);
    if (backend == "wayland") return Wayland(config.screen, request);
    if (backend == "macos") return MacOs(request);
  } else if (request.capability == "camera") {
    if (backend == "v4l2") return V4l2(config.camera, request);
    if (backend == "termux") return TermuxCamera(config.camera, request);
  } else if (request.capability == "location") {
    if (backend == "gpsd") return Gpsd(config.location, request);
    if (backend == "termux") return TermuxLocation(request);
  }
  return MakeError(ErrorCode::kInvalidArgument, "no " + request.capability + " backend named '" + backend + "'");
}

std::optional<std::string> ExplainScriptFailure(std::string_view stderr_text, const std::string& capability,
                                                const std::string& backend, const std::string& machine) {
  constexpr std::string_view kMissing = "labgate-missing: ";
  constexpr std::string_view kError = "labgate-error: ";
  auto line_after = [&](std::string_view marker) -> std::optional<std::string> {
    auto at = stderr_text.find(marker);
    if (at == std::string_view::npos) return std::nullopt;
    auto rest = stderr_text.substr(at + marker.size());
    return std::string(rest.substr(0, rest.find('\n')));
  };
  if (auto program = line_after(kMissing)) {
    return *program + " not found on " + machine + " (needed by the " + capability + " backend " + backend +
           "); install " + PackageFor(*program) + " or set " + capability + ".backend";
  }
  if (auto text = line_after(kError)) return capability + " on " + machine + " (" + backend + " backend): " + *text;
  return std::nullopt;
}

}  // namespace labgate::capabilities
