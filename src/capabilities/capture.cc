#include "capabilities/capture.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "capabilities/backends.h"
#include "capabilities/location_fix.h"
#include "capabilities/media_info.h"
#include "core/base64.h"
#include "core/hashing.h"
#include "core/json_parse.h"
#include "core/text.h"

namespace labgate::capabilities {
namespace {

using core::ErrorCode;
using core::MakeError;
using std::chrono::milliseconds;

constexpr milliseconds kProbeTimeout{10000};

const std::set<std::string>& ActionsOf(const std::string& capability) {
  static const std::set<std::string> kScreen = {"snapshot", "record"};
  static const std::set<std::string> kCamera = {"snap", "clip", "list"};
  static const std::set<std::string> kLocation = {"get"};
  static const std::set<std::string> kNone;
  if (capability == "screen") return kScreen;
  if (capability == "camera") return kCamera;
  if (capability == "location") return kLocation;
  return kNone;
}

std::string Join(const std::set<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

std::string Tail(std::string_view text, std::size_t n) {
  std::string t = core::ToValidUtf8(text.size() > n ? text.substr(text.size() - n) : text);
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

Json CameraList(const std::string& backend, const CameraConfig& config, std::string_view output) {
  Json devices = Json::array();
  auto add = [&](const std::string& id, const std::string& name, const std::string& facing) {
    for (auto& d : devices) {
      if (d["id"] == id) {
        if (!facing.empty()) d["facing"] = facing;
        return;
      }
    }
    Json d = {{"id", id}, {"name", name}};
    if (!facing.empty()) d["facing"] = facing;
    devices.push_back(d);
  };
  if (backend == "termux") {
    Json cams = core::ParseUntrustedJson(output);
    if (cams.is_array()) {
      for (const auto& c : cams) {
        if (!c.is_object() || !c.contains("id")) continue;
        const std::string id = c["id"].is_string() ? c["id"].get<std::string>() : c["id"].dump();
        add(id, "camera " + id, c.contains("facing") && c["facing"].is_string() ? c["facing"].get<std::string>() : "");
      }
    }
  } else {
    std::istringstream lines{std::string(output)};
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("device\t", 0) != 0) continue;
      std::string rest = line.substr(7);
      auto tab = rest.find('\t');
      add(rest.substr(0, tab), tab == std::string::npos ? "" : rest.substr(tab + 1), "");
    }
  }
  const std::string kind = config.input_format.empty() ? "configured camera" : config.input_format + " source";
  if (!config.device.empty()) add(config.device, kind + " (default)", "");
  if (!config.back.empty()) add(config.back, kind, "back");
  if (!config.front.empty()) add(config.front, kind, "front");
  return Json{{"devices", devices}};
}

core::Result<CaptureResult> Interpret(const CaptureRequest& request, const BackendCommand& command,
                                      const DeviceConfig& config, const core::ProcessOutcome& o,
                                      const std::string& machine) {
  const std::string& backend = command.backend;
  const std::string who = request.capability + " backend " + backend + " on " + machine;
  if (o.cancelled) return MakeError(ErrorCode::kCancelled, request.Method() + " on " + machine + " was cancelled; it was stopped");
  if (o.timed_out) {
    if (request.capability == "location") {
      return MakeError(ErrorCode::kTimeout, "no location fix from " + backend + " on " + machine + " within " +
                                                std::to_string(request.timeout_ms) + " ms; the receiver may not see "
                                                "the sky yet, so try again later or with a longer timeoutMs");
    }
    return MakeError(ErrorCode::kTimeout, request.Method() + " on " + machine + " did not finish within " +
                                              std::to_string(request.timeout_ms) + " ms and was stopped");
  }
  if (o.exit_code != 0) {
    if (auto why = ExplainScriptFailure(o.err.text, request.capability, backend, machine)) {
      return MakeError(ErrorCode::kUnavailable, *why);
    }
    std::string how = o.signal ? "was killed by SIG" + core::SignalName(*o.signal)
                               : "failed with exit code " + std::to_string(o.exit_code.value_or(-1));
    std::string err = Tail(o.err.text, 600);
    return MakeError(ErrorCode::kUnavailable, who + " " + how + (err.empty() ? "" : ": " + err));
  }
  if (o.out.truncated) {
    return MakeError(ErrorCode::kInvalidArgument, who + " produced " + std::to_string(o.out.total_bytes) +
                                                      " bytes, more than the " + std::to_string(kMaxCaptureBytes >> 20) +
                                                      " MiB a capture may be; record less (durationMs, fps, maxWidth)");
  }
  CaptureResult result;
  result.backend = backend;
  result.mime_type = command.mime_type;
  result.duration_ms = o.duration.count();
  if (request.capability == "location") {
    core::Result<Json> fix = MakeError(ErrorCode::kInternal, "");
    if (backend == "termux") {
      fix = ParseTermuxLocation(o.out.text, std::chrono::system_clock::now());
    } else if (o.out.text.empty()) {
      std::string err = Tail(o.err.text, 300);
      return MakeError(ErrorCode::kTimeout, "no location fix from gpsd on " + machine + " within " +
                                                std::to_string(request.timeout_ms) + " ms" +
                                                (err.empty() ? "; the receiver may not see the sky yet" : " (" + err + ")"));
    } else {
      fix = ParseGpsdReport(o.out.text.substr(0, o.out.text.find('\n')));
    }
    if (!fix) return MakeError(fix.error().code, fix.error().message + " (" + machine + ")");
    result.info = *fix;
    return result;
  }
  if (request.action == "list") {
    result.info = CameraList(backend, config.camera, o.out.text);
    return result;
  }
  auto media = ReadMediaInfo(o.out.text);
  const std::string expected = command.mime_type.substr(command.mime_type.find('/') + 1);
  if (!media) {
    std::string err = Tail(o.err.text, 300);
    return MakeError(ErrorCode::kUnavailable, who + " produced " + std::to_string(o.out.text.size()) +
                                                  " bytes that are not a " + expected + " file" +
                                                  (err.empty() ? "" : ": " + err));
  }
  result.data = o.out.text;
  result.info = {{"format", media->format},
                 {"width", media->width},
                 {"height", media->height},
                 {"bytes", result.data.size()},
                 {"sha256", core::Sha256Hex(result.data)}};
  if (media->duration_ms) result.info["durationMs"] = *media->duration_ms;
  if (request.IsVideo() && request.fps > 0) result.info["fps"] = request.fps;
  return result;
}

std::string ConfiguredBackend(const DeviceConfig& config, const std::string& capability) {
  if (capability == "screen") return config.screen.backend;
  if (capability == "camera") return config.camera.backend;
  return config.location.backend;
}

}  // namespace

core::Status ValidateCaptureRequest(const CaptureRequest& r) {
  auto bad = [](std::string what) { return MakeError(ErrorCode::kInvalidArgument, std::move(what)); };
  const auto& actions = ActionsOf(r.capability);
  if (actions.empty()) return bad("unknown capability '" + r.capability + "' (screen, camera or location)");
  if (!actions.count(r.action)) {
    return bad("unknown " + r.capability + " action '" + r.action + "' (" + Join(actions) + ")");
  }
  const bool video = r.IsVideo();
  if (video && (r.duration_ms < 1 || r.duration_ms > kMaxRecordMs)) {
    return bad("durationMs must be between 1 and " + std::to_string(kMaxRecordMs) + " for " + r.action);
  }
  if (!video && r.duration_ms != 0) return bad("durationMs applies to record and clip only");
  if (r.fps != 0 && (!video || r.fps < 1 || r.fps > 60)) return bad("fps must be between 1 and 60, for record and clip only");
  if (r.screen_index != 0 && (r.capability != "screen" || r.screen_index < 0 || r.screen_index > 15)) {
    return bad("screenIndex must be between 0 and 15, for screen only");
  }
  if (!r.facing.empty() && (r.capability != "camera" || (r.facing != "front" && r.facing != "back"))) {
    return bad("facing must be \"front\" or \"back\", for camera only");
  }
  if (r.quality != 0 && (r.action != "snap" || r.quality < 1 || r.quality > 100)) {
    return bad("quality must be between 1 and 100, for camera snap only");
  }
  if (r.max_width != 0 && (r.capability != "camera" || r.action == "list" || r.max_width < 16 || r.max_width > 16384)) {
    return bad("maxWidth must be between 16 and 16384, for camera snap and clip only");
  }
  if (!r.device_id.empty() && (r.capability != "camera" || r.device_id.size() > 256)) {
    return bad("deviceId applies to camera only (at most 256 characters)");
  }
  if (!r.accuracy.empty() && (r.capability != "location" ||
                              (r.accuracy != "coarse" && r.accuracy != "balanced" && r.accuracy != "precise"))) {
    return bad("desiredAccuracy must be coarse, balanced or precise, for location only");
  }
  if (r.timeout_ms < 1) return bad("timeoutMs must be a positive number of milliseconds");
  return core::Ok();
}

std::int64_t DefaultCaptureTimeoutMs(const CaptureRequest& request, std::int64_t default_ms) {
  if (request.IsVideo()) return request.duration_ms + 30000;
  if (request.capability == "location") return 30000;
  return default_ms;
}

Json EncodeCaptureRequest(const CaptureRequest& r) {
  Json j = {{"capability", r.capability}, {"action", r.action}, {"timeoutMs", r.timeout_ms}};
  if (r.duration_ms) j["durationMs"] = r.duration_ms;
  if (r.fps) j["fps"] = r.fps;
  if (r.screen_index) j["screenIndex"] = r.screen_index;
  if (!r.facing.empty()) j["facing"] = r.facing;
  if (r.quality) j["quality"] = r.quality;
  if (r.max_width) j["maxWidth"] = r.max_width;
  if (!r.device_id.empty()) j["deviceId"] = r.device_id;
  if (!r.accuracy.empty()) j["desiredAccuracy"] = r.accuracy;
  return j;
}

core::Result<CaptureRequest> DecodeCaptureRequest(const Json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "capture parameters must be an object");
  CaptureRequest r;
  try {
    r.capability = j.at("capability").get<std::string>();
    r.action = j.at("action").get<std::string>();
    r.timeout_ms = j.at("timeoutMs").get<std::int64_t>();
    r.duration_ms = j.value("durationMs", std::int64_t{0});
    r.fps = j.value("fps", 0);
    r.screen_index = j.value("screenIndex", 0);
    r.facing = j.value("facing", "");
    r.quality = j.value("quality", 0);
    r.max_width = j.value("maxWidth", 0);
    r.device_id = j.value("deviceId", "");
    r.accuracy = j.value("desiredAccuracy", "");
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInvalidArgument, std::string("malformed capture parameters: ") + e.what());
  }
  if (auto ok = ValidateCaptureRequest(r); !ok) return ok.error();
  return r;
}

Json EncodeCaptureResult(const CaptureResult& r) {
  return {{"backend", r.backend},
          {"mimeType", r.mime_type},
          {"info", r.info},
          {"durationMs", r.duration_ms},
          {"data", core::Base64Encode(r.data)}};
}

core::Result<CaptureResult> DecodeCaptureResult(const Json& j) {
  CaptureResult r;
  try {
    r.backend = j.at("backend").get<std::string>();
    r.mime_type = j.at("mimeType").get<std::string>();
    r.info = j.at("info");
    r.duration_ms = j.value("durationMs", std::int64_t{0});
    auto data = core::Base64Decode(j.at("data").get<std::string>());
    if (!data) return data.error();
    r.data = std::move(*data);
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kParse, std::string("malformed capture result: ") + e.what());
  }
  if (!r.info.is_object()) return MakeError(ErrorCode::kParse, "malformed capture result: info is not an object");
  return r;
}

core::Result<CaptureResult> Perform(CommandHost& host, const DeviceConfig& config, const CaptureRequest& request,
                                    const core::CancelToken& cancel) {
  if (auto ok = ValidateCaptureRequest(request); !ok) return ok.error();
  const auto started = std::chrono::steady_clock::now();
  const milliseconds budget(request.timeout_ms);
  const std::string machine = host.Name();
  std::string backend = ConfiguredBackend(config, request.capability);

  if (backend == "auto") {
    RunRequest probe;
    probe.command.shell = ProbeScript();
    probe.timeout = std::min(kProbeTimeout, budget);
    auto facts = host.Run(probe, cancel);
    if (!facts) return facts.error();
    if (facts->cancelled) return MakeError(ErrorCode::kCancelled, request.Method() + " on " + machine + " was cancelled");
    if (facts->exit_code != 0) {
      return MakeError(ErrorCode::kUnavailable, "could not ask " + machine + " which " + request.capability +
                                                    " backend it has (" + Tail(facts->err.text, 300) +
                                                    "); set " + request.capability + ".backend in the config");
    }
    auto chosen = ChooseBackend(request.capability, config, ParseProbe(facts->out.text), machine);
    if (!chosen) return chosen.error();
    backend = *chosen;
  }
  if (request.capability == "location" && backend == "static") {
    if (!config.location.latitude || !config.location.longitude) {
      return MakeError(ErrorCode::kInvalidArgument, "location.backend is static on " + machine +
                                                        ", but location.latitude and location.longitude are not set");
    }
    CaptureResult result;
    result.backend = "static";
    result.mime_type = "application/json";
    result.info = StaticFix(config.location, std::chrono::system_clock::now());
    return result;
  }
  auto command = BuildCommand(backend, config, request);
  if (!command) return command.error();

  RunRequest run;
  run.command.shell = command->script;
  const auto spent = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  run.timeout = std::max(milliseconds(1), budget - spent);
  run.output_cap = kMaxCaptureBytes;
  auto outcome = host.Run(run, cancel);
  if (!outcome) return outcome.error();
  auto result = Interpret(request, *command, config, *outcome, machine);
  if (result) result->duration_ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace labgate::capabilities
