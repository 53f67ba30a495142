#include "nodes/agent_protocol.h"

#include <algorithm>
#include <stdexcept>

#include "core/base64.h"
#include "core/json_parse.h"
#include "core/net.h"

namespace labgate::nodes {

using core::ErrorCode;
using core::MakeError;

std::string_view CapabilityOfMethod(std::string_view method) {
  if (method == "system.run") return "run";
  if (method == "screen.snapshot" || method == "screen.record") return "screen";
  if (method == "camera.snap" || method == "camera.clip" || method == "camera.list") return "camera";
  if (method == "location.get") return "location";
  if (method.substr(0, 5) == "file.") return "file";
  return "";
}

Json EncodeRunRequest(const capabilities::RunRequest& request) {
  Json params;
  if (request.command.shell) {
    params["shell"] = *request.command.shell;
  } else {
    params["argv"] = request.command.argv;
  }
  params["cwd"] = request.cwd;
  params["timeoutMs"] = request.timeout.count();
  params["outputCap"] = request.output_cap;
  Json env = Json::array();
  for (const auto& [k, v] : request.env) env.push_back({k, v});
  params["env"] = env;
  if (request.sudo) params["sudo"] = true;  // the password goes beside it, never in the request
  return params;
}

core::Result<capabilities::RunRequest> DecodeRunRequest(const Json& params) {
  try {
    capabilities::RunRequest r;
    if (params.contains("shell")) {
      r.command.shell = params.at("shell").get<std::string>();
    } else {
      r.command.argv = params.at("argv").get<std::vector<std::string>>();
    }
    r.cwd = params.value("cwd", "");
    const auto timeout = core::IntegerIn(params.at("timeoutMs"), 1, 24LL * 3600 * 1000);
    if (!timeout) return MakeError(ErrorCode::kInvalidArgument, "timeoutMs must be an integer from 1 to 86400000");
    r.timeout = std::chrono::milliseconds(*timeout);
    if (params.contains("outputCap")) {
      const auto cap = core::IntegerIn(params.at("outputCap"), 1, 1LL << 30);
      if (!cap) return MakeError(ErrorCode::kInvalidArgument, "outputCap must be an integer from 1 to 2^30");
      r.output_cap = static_cast<decltype(r.output_cap)>(*cap);
    }
    for (const auto& pair : params.value("env", Json::array())) {
      r.env.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
    }
    r.sudo = params.value("sudo", false);
    if (r.timeout.count() < 1) return MakeError(ErrorCode::kInvalidArgument, "timeoutMs must be positive");
    if (auto ok = capabilities::ValidateCommand(r.command); !ok) return ok.error();
    return r;
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInvalidArgument, std::string("malformed system.run parameters: ") + e.what());
  }
}

namespace {

Json EncodeStream(const core::CapturedStream& s) {
  return {{"data", core::Base64Encode(s.text)},
          {"totalBytes", s.total_bytes},
          {"truncated", s.truncated},
          {"sha256", s.sha256}};
}

core::Result<core::CapturedStream> DecodeStream(const Json& j) {
  core::CapturedStream s;
  auto data = core::Base64Decode(j.at("data").get<std::string>());
  if (!data) return data.error();
  s.text = std::move(*data);
  s.total_bytes = j.at("totalBytes").get<std::uint64_t>();
  s.truncated = j.at("truncated").get<bool>();
  s.sha256 = j.at("sha256").get<std::string>();
  return s;
}

}  // namespace

Json EncodeOutcome(const core::ProcessOutcome& o) {
  Json j;
  j["exitCode"] = o.exit_code ? Json(*o.exit_code) : Json(nullptr);
  j["signal"] = o.signal ? Json(*o.signal) : Json(nullptr);
  j["timedOut"] = o.timed_out;
  j["cancelled"] = o.cancelled;
  j["durationMs"] = o.duration.count();
  j["stdout"] = EncodeStream(o.out);
  j["stderr"] = EncodeStream(o.err);
  return j;
}

core::Result<core::ProcessOutcome> DecodeOutcome(const Json& j) {
  try {
    core::ProcessOutcome o;
    // Integers in range only: a float such as 1e10 converted to int would be undefined behaviour.
    auto integer = [&](const char* key, std::int64_t min, std::int64_t max) -> std::int64_t {
      auto v = core::IntegerIn(j.at(key), min, max);
      if (!v) throw std::out_of_range(std::string(key) + " is not an integer from " + std::to_string(min) + " to " +
                                      std::to_string(max));
      return *v;
    };
    if (!j.at("exitCode").is_null()) o.exit_code = static_cast<int>(integer("exitCode", 0, 255));
    if (!j.at("signal").is_null()) o.signal = static_cast<int>(integer("signal", 1, 128));
    o.timed_out = j.at("timedOut").get<bool>();
    o.cancelled = j.at("cancelled").get<bool>();
    o.duration = std::chrono::milliseconds(integer("durationMs", 0, 366LL * 24 * 3600 * 1000));
    auto out = DecodeStream(j.at("stdout"));
    if (!out) return out.error();
    auto err = DecodeStream(j.at("stderr"));
    if (!err) return err.error();
    o.out = std::move(*out);
    o.err = std::move(*err);
    return o;
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kIo, std::string("the node sent a malformed result: ") + e.what());
  }
}

bool ChannelOut::Flush(ssh_channel channel) {
  if (flushing_) return true;  // called from inside our own ssh_channel_write: the outer call goes on
  flushing_ = true;
  auto take_pending = [this] {
    if (pending_.empty()) return;
    if (offset_ == buffer_.size()) {
      buffer_.clear();
      offset_ = 0;
    }
    buffer_ += pending_;
    pending_.clear();
  };
  bool ok = true;
  for (;;) {
    take_pending();
    if (offset_ >= buffer_.size()) break;
    const std::uint32_t window = ssh_channel_window_size(channel);
    if (window == 0) break;  // the peer has not read yet; try again after the next poll
    const std::size_t chunk = std::min<std::size_t>({buffer_.size() - offset_, window, 32768});
    const int n = ssh_channel_write(channel, buffer_.data() + offset_, static_cast<std::uint32_t>(chunk));
    if (n == SSH_ERROR) {
      ok = false;
      break;
    }
    if (n == 0) break;
    offset_ += static_cast<std::size_t>(n);
  }
  take_pending();
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
  flushing_ = false;
  return ok;
}

void TuneSocket(int fd) {
  // The heartbeat drops a silent link after 15 s; the kernel should give up no later.
  core::TuneTcpSocket(fd, {std::chrono::seconds(5), std::chrono::seconds(5), 3, kHeartbeatTimeout, true});
}

}  // namespace labgate::nodes
