#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// Which backend serves each capture capability on one machine, and its settings. An SSH host's
/// comes from its hosts.toml entry ([hosts.screen] ...), `local`'s from [local.screen] ..., a
/// node's from the device's own device.toml. Plain values; parsed by the inventory module.
namespace labgate::capabilities {

inline constexpr std::string_view kScreenBackends[] = {"auto", "x11", "wayland", "macos"};
inline constexpr std::string_view kCameraBackends[] = {"auto", "v4l2", "termux"};
inline constexpr std::string_view kLocationBackends[] = {"auto", "gpsd", "termux", "static"};

struct ScreenConfig {
  std::string backend = "auto";
  std::string display;               // x11: ":0"; empty means the machine's $DISPLAY
  std::vector<std::string> outputs;  // wayland: output names by screenIndex ("DP-1", ...)
};

struct CameraConfig {
  std::string backend = "auto";
  std::string device;        // v4l2: "/dev/video0" (default device); termux: camera id "0"
  std::string input_format;  // v4l2: ffmpeg's input format; "lavfi" makes `device` a test source
  std::string front;         // the device `facing: front` means
  std::string back;          // the device `facing: back` means
};

struct LocationConfig {
  std::string backend = "auto";
  std::string gpsd;  // gpsd: "host:port"; empty means gpsd's default (localhost:2947)
  // static: a device that does not move.
  std::optional<double> latitude;
  std::optional<double> longitude;
  double accuracy_m = 10;
  std::optional<double> altitude_m;
};

struct DeviceConfig {
  ScreenConfig screen;
  CameraConfig camera;
  LocationConfig location;
};

/// True when `name` is one of `backends`.
template <std::size_t N>
bool IsBackend(const std::string_view (&backends)[N], std::string_view name) {
  for (auto b : backends) {
    if (b == name) return true;
  }
  return false;
}

/// "a, b or c" for error messages.
template <std::size_t N>
std::string BackendList(const std::string_view (&backends)[N]) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    if (i > 0) out += i + 1 == N ? " or " : ", ";
    out += backends[i];
  }
  return out;
}

}  // namespace labgate::capabilities
