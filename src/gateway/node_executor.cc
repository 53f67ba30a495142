#include "gateway/node_executor.h"

#include "core/base64.h"
#include "core/json_parse.h"
#include "nodes/agent_protocol.h"

namespace labgate::gateway {

using core::ErrorCode;
using core::MakeError;

namespace {
// How long past the command's own deadline the gateway waits for the node to report it: the
// node stops the process group itself (TERM, 1 s grace, KILL) and answers with timedOut.
constexpr std::chrono::milliseconds kNodeGrace{5000};
}  // namespace

TargetState NodeExecutor::State(const inventory::Target& target) const {
  TargetState state;
  if (store_ == nullptr) return state;  // unknown: no daemon in this process
  auto record = store_->Find(target.id);
  state.online = server_ != nullptr && server_->Link(target.id).has_value();
  if (!record) {
    state.granted = std::vector<std::string>{};
    return state;
  }
  if (record->last_seen) state.last_seen = nodes::FormatTime(*record->last_seen);
  state.key_since = nodes::FormatTime(record->key_since());
  state.fingerprint = record->key.fingerprint;
  state.granted = record->revoked() ? std::vector<std::string>{} : record->capabilities;
  if (record->revoked()) state.revoked_at = nodes::FormatTime(*record->revoked_at);
  return state;
}

core::Result<nodes::Json> NodeExecutor::Call(const inventory::Target& target, const std::string& method,
                                             nodes::Json params, std::chrono::milliseconds timeout,
                                             const core::CancelToken& cancel, const std::string& what,
                                             nodes::RpcPeer::NotificationHandler on_notification) {
  if (server_ == nullptr || store_ == nullptr) {
    return MakeError(ErrorCode::kUnavailable,
                     target.id + " is a paired node, and nodes connect to the gateway daemon, which is not running "
                     "for this config; start it with `labgate gateway" + config_hint_ + "` (see README: Pair a device)");
  }
  auto record = store_->Find(target.id);
  if (!record) {
    return MakeError(ErrorCode::kUnavailable, "node " + target.id + " is not paired yet; run `labgate pair new --node " +
                                                  target.id + "` and `labgate node pair CODE` on the device");
  }
  if (record->revoked()) {
    return MakeError(ErrorCode::kRefused, "node " + target.id + " was revoked at " +
                                              nodes::FormatTime(*record->revoked_at) + "; pair it again to use it");
  }
  if (!server_->Link(target.id)) {
    return MakeError(ErrorCode::kUnavailable,
                     "node " + target.id + " is offline (last seen " +
                         (record->last_seen ? nodes::FormatTime(*record->last_seen) : std::string("never")) +
                         "); check that `labgate node run` is running on the device");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout + kNodeGrace;
  auto answer = server_->Call(target.id, method, std::move(params), deadline, cancel, std::move(on_notification));
  if (answer) return answer;
  const auto& e = answer.error();
  if (e.code == ErrorCode::kIo) {
    return MakeError(ErrorCode::kIo, e.message + " while " + what + " was running; it may have run in part");
  }
  if (e.code == ErrorCode::kCancelled) return e;
  if (e.code == ErrorCode::kTimeout) {
    return MakeError(ErrorCode::kTimeout, "node " + target.id + " did not report the end of " + what +
                                              " within its deadline; the gateway asked it to stop");
  }
  return MakeError(e.code, "node " + target.id + ": " + e.message);
}

core::Result<core::ProcessOutcome> NodeExecutor::Run(const inventory::Target& target,
                                                     const capabilities::RunRequest& request,
                                                     const core::CancelToken& cancel) {
  // The node streams output as it arrives (system.output); a listener (a task's live view) sees it.
  nodes::RpcPeer::NotificationHandler relay;
  if (request.listener) {
    relay = [listener = request.listener](const std::string& method, const nodes::Json& params) {
      if (method != "system.output" || !params.is_object()) return;
      auto data = core::Base64Decode(core::StringOr(params, "data"));
      if (!data) return;
      listener->OnOutput(core::StringOr(params, "stream") == "stderr" ? core::StreamId::kStderr : core::StreamId::kStdout,
                         *data);
    };
  }
  auto answer = Call(target, "system.run", nodes::EncodeRunRequest(request), request.timeout, cancel, "the command",
                     std::move(relay));
  if (!answer) {
    if (answer.error().code != ErrorCode::kCancelled) return answer.error();
    core::ProcessOutcome o;
    o.cancelled = true;
    return o;
  }
  return nodes::DecodeOutcome(*answer);
}

core::Result<capabilities::CaptureResult> NodeExecutor::Capture(const inventory::Target& target,
                                                                const capabilities::CaptureRequest& request,
                                                                const core::CancelToken& cancel) {
  auto answer = Call(target, request.Method(), capabilities::EncodeCaptureRequest(request),
                     std::chrono::milliseconds(request.timeout_ms), cancel, request.Method());
  if (!answer) {
    if (answer.error().code == ErrorCode::kCancelled) {
      return MakeError(ErrorCode::kCancelled, request.Method() + " on " + target.id + " was cancelled; the node stopped it");
    }
    return answer.error();
  }
  return capabilities::DecodeCaptureResult(*answer);
}

}  // namespace labgate::gateway
