#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "capabilities/device_config.h"
#include "capabilities/system_run.h"
#include "core/cancel.h"
#include "core/process_runner.h"
#include "core/result.h"

/// screen, camera and location: what the caller asks for, what comes back, and how one machine
/// produces it (a backend's command template run on that machine, then its output parser).
namespace labgate::capabilities {

using Json = nlohmann::json;

/// The most bytes one capture may produce; larger recordings fail with a hint to shorten them.
inline constexpr std::size_t kMaxCaptureBytes = 32 * 1024 * 1024;
/// The longest screen recording or camera clip.
inline constexpr std::int64_t kMaxRecordMs = 60000;

/// One screen/camera/location action as the caller asked for it. Zero means "the default".
struct CaptureRequest {
  std::string capability;  // "screen", "camera" or "location"
  std::string action;      // screen: snapshot|record; camera: snap|clip|list; location: get
  std::int64_t duration_ms = 0;  // record, clip
  int fps = 0;                   // record, clip
  int screen_index = 0;
  std::string facing;     // "front" or "back"
  int quality = 0;        // JPEG quality 1..100
  int max_width = 0;      // scale down wider pictures
  std::string device_id;  // a camera by id
  std::string accuracy;   // location: "coarse", "balanced" or "precise"
  std::int64_t timeout_ms = 0;  // the whole action's deadline, set by the gateway

  /// The agent-channel method and audit action name: "screen.snapshot", "camera.list", ...
  std::string Method() const { return capability + "." + action; }
  bool IsVideo() const { return action == "record" || action == "clip"; }
};

/// Checks ranges and combinations before anything runs; the message names the argument.
core::Status ValidateCaptureRequest(const CaptureRequest& request);

/// The deadline an action gets when the caller named none: a recording's length plus time to
/// encode it, 30 s for a location fix, `default_ms` for the rest.
std::int64_t DefaultCaptureTimeoutMs(const CaptureRequest& request, std::int64_t default_ms);

/// What a capture produced. `data` holds the file's bytes (empty for location and lists);
/// `info` the metadata callers see: width, height, bytes, format, durationMs; the fix fields
/// of DESIGN §5 for location; `devices` for camera list.
struct CaptureResult {
  std::string backend;    // "x11", "v4l2", "gpsd", ...
  std::string mime_type;  // "image/png", "image/jpeg", "video/mp4", "application/json"
  std::string data;
  Json info = Json::object();
  std::int64_t duration_ms = 0;  // how long producing it took on the machine
};

Json EncodeCaptureRequest(const CaptureRequest& request);
core::Result<CaptureRequest> DecodeCaptureRequest(const Json& params);
/// `data` travels base64-encoded, so any bytes survive JSON.
Json EncodeCaptureResult(const CaptureResult& result);
core::Result<CaptureResult> DecodeCaptureResult(const Json& json);

/// A machine that runs commands: this one through the process runner, or an SSH host. The
/// capture code runs its command templates through it, so every path runs the same commands.
class CommandHost {
 public:
  virtual ~CommandHost() = default;
  /// How errors name the machine ("maul", "this device").
  virtual std::string Name() const = 0;
  virtual core::Result<core::ProcessOutcome> Run(const RunRequest& request, const core::CancelToken& cancel) = 0;
};

/// Runs commands on this machine with `runner`.
class ThisMachine final : public CommandHost {
 public:
  ThisMachine(core::ProcessRunner& runner, std::string name) : runner_(runner), name_(std::move(name)) {}
  std::string Name() const override { return name_; }
  core::Result<core::ProcessOutcome> Run(const RunRequest& request, const core::CancelToken& cancel) override {
    return RunOnThisMachine(runner_, request, cancel);
  }

 private:
  core::ProcessRunner& runner_;
  std::string name_;
};

/// Carries out `request` on `host` with the backends `config` selects (`auto` asks the machine
/// what it has first). Errors name the backend, the machine and what to install or configure.
core::Result<CaptureResult> Perform(CommandHost& host, const DeviceConfig& config, const CaptureRequest& request,
                                    const core::CancelToken& cancel);

}  // namespace labgate::capabilities
