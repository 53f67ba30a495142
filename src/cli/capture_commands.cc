// `labgate screen`, `labgate camera` and `labgate location`.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>

#include "cli/common.h"
#include "core/base64.h"
#include "core/os_user.h"
#include "gateway/runtime.h"
#include "gateway/views.h"

namespace labgate::cli {
namespace {

core::Status IntOption(const Args& args, const char* option, int min, int max, int& out) {
  if (!args.has(option)) return core::Ok();
  const std::string text = args.get(option);
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < min || v > max) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, std::string(option) + " must be a whole number from " +
                                                                  std::to_string(min) + " to " + std::to_string(max));
  }
  out = static_cast<int>(v);
  return core::Ok();
}

core::Status DurationOption(const Args& args, const char* option, std::int64_t& out) {
  if (!args.has(option)) return core::Ok();
  auto ms = ParseDurationMs(args.get(option));
  if (!ms) return ms.error();
  out = *ms;
  return core::Ok();
}

// The call the options describe; `capability` is screen, camera or location.
core::Result<gateway::CaptureCall> CallFromArgs(const std::string& capability, const Args& args) {
  gateway::CaptureCall call;
  auto& r = call.request;
  r.capability = capability;
  std::vector<std::string> words = args.positional;
  if (capability == "camera" && !words.empty() && words[0] == "list") {
    r.action = "list";
    words.erase(words.begin());
  }
  if (words.size() != 1) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           capability + " needs exactly one TARGET (see `labgate " + capability + " --help`)");
  }
  call.selector = words[0];
  std::int64_t max_age = -1;
  std::vector<core::Status> checks;
  if (capability == "screen") {
    r.action = args.has("--record") ? "record" : "snapshot";
    checks = {DurationOption(args, "--record", r.duration_ms), IntOption(args, "--fps", 1, 60, r.fps),
              IntOption(args, "--screen", 0, 15, r.screen_index)};
  } else if (capability == "camera") {
    if (r.action.empty()) r.action = args.has("--clip") ? "clip" : args.has("--list") ? "list" : "snap";
    r.facing = args.get("--facing");
    r.device_id = args.get("--device");
    checks = {DurationOption(args, "--clip", r.duration_ms), IntOption(args, "--fps", 1, 60, r.fps),
              IntOption(args, "--quality", 1, 100, r.quality), IntOption(args, "--max-width", 16, 16384, r.max_width)};
  } else {
    r.action = "get";
    r.accuracy = args.get("--accuracy");
    checks = {DurationOption(args, "--timeout", r.timeout_ms), DurationOption(args, "--max-age", max_age)};
    if (args.has("--max-age")) call.max_age_ms = max_age;
  }
  for (const auto& c : checks) {
    if (!c) return c.error();
  }
  if (auto ok = capabilities::ValidateCaptureRequest([&] {
        auto copy = r;
        if (copy.timeout_ms == 0) copy.timeout_ms = 1;
        return copy;
      }());
      !ok) {
    return ok.error();
  }
  return call;
}

std::string Extension(const std::string& mime_type) {
  if (mime_type == "image/png") return "png";
  if (mime_type == "image/jpeg") return "jpg";
  if (mime_type == "video/quicktime") return "mov";
  return "mp4";
}

// TARGET-ACTION-YYYYMMDD-HHMMSS.EXT in the current directory.
std::string DefaultFileName(const std::string& target, const std::string& action, const std::string& mime_type) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  std::string name = action;
  for (auto& c : name) {
    if (c == '.') c = '-';
  }
  return target + "-" + name + "-" + stamp + "." + Extension(mime_type);
}

core::Status WriteOutput(const std::string& path, const std::string& data) {
  if (path == "-") {
    WriteAll(STDOUT_FILENO, data);
    return core::Ok();
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return core::MakeError(core::ErrorCode::kIo, "cannot write " + path + ": " + std::strerror(errno));
  WriteAll(fd, data);
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return core::MakeError(core::ErrorCode::kIo, "cannot write " + path + ": " + std::strerror(errno));
  return core::Ok();
}

}  // namespace

int CaptureVerb(const Args& args) {
  const std::string capability = args.verb;
  auto call = CallFromArgs(capability, args);
  if (!call) return Fail(call.error().message, kExitUsage);
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);

  nlohmann::json report;
  std::string text;
  std::string data;
  if (GatewayRunning(*inv)) {
    // Nodes are connected to the daemon: the capture goes through its pipeline.
    nlohmann::json params = {{"selector", call->selector}};
    auto request = call->request;
    if (request.timeout_ms == 0) request.timeout_ms = capabilities::DefaultCaptureTimeoutMs(request, inv->gateway.default_timeout_ms);
    params["request"] = capabilities::EncodeCaptureRequest(request);
    if (call->max_age_ms) params["maxAgeMs"] = *call->max_age_ms;
    auto answer = CallGateway(*inv, args, "capture", params, request.timeout_ms + 30000);
    if (!answer) return Fail(answer.error().message);
    report = (*answer)["report"];
    text = answer->value("text", "");
    if (answer->contains("data")) {
      auto bytes = core::Base64Decode((*answer)["data"].get<std::string>());
      if (!bytes) return Fail("the gateway sent a damaged capture: " + bytes.error().message);
      data = std::move(*bytes);
    }
  } else {
    gateway::Runtime runtime(std::move(*inv), gateway::Runtime::Mode::kOneShot, ConfigHint(args));
    audit::Actor actor{"cli", "labgate-cli", LABGATE_VERSION, core::CurrentUserName(), ""};
    core::CancelToken never;
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    auto human = TerminalHuman();
    auto result = runtime.gateway().Capture(
        actor, *call, never,
        [&](std::int64_t elapsed, std::int64_t total) {
          if (tty) std::fprintf(stderr, "\rrecording %.1f of %.1f s\033[K", elapsed / 1000.0, total / 1000.0);
        },
        human.get());
    if (tty && call->request.IsVideo()) std::fprintf(stderr, "\r\033[K");
    report = gateway::CaptureReportJson(result);
    text = gateway::CaptureReportText(result);
    if (result.result) data = std::move(result.result->data);
  }

  const bool failed = !report["error"].is_null();
  std::string file;
  if (!failed && !data.empty()) {
    file = args.get("--output");
    if (file.empty()) file = DefaultFileName(report.value("target", "target"), report.value("action", capability),
                                             report.value("mimeType", ""));
    if (auto ok = WriteOutput(file, data); !ok) return Fail(ok.error().message);
    if (file != "-") report["file"] = file;
  }
  // With -o - the bytes own stdout, so the summary goes to stderr.
  std::ostream& out = file == "-" ? std::cerr : std::cout;
  if (args.has("--json")) {
    out << report.dump(2) << "\n";
  } else if (failed) {
    return Fail(report["error"].get<std::string>(), report.value("decision", "") == "refused" ? kExitLabgateError : 1);
  } else {
    out << text << "\n";
    if (!file.empty() && file != "-") out << "wrote " << file << "\n";
  }
  return failed ? 1 : 0;
}

}  // namespace labgate::cli
