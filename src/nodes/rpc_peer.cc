#include "nodes/rpc_peer.h"

#include "core/json_rpc.h"

#include <spdlog/spdlog.h>

namespace labgate::nodes {

namespace jsonrpc = core::jsonrpc;

core::Error RemoteError(int code, const std::string& message) {
  core::ErrorCode kind = core::ErrorCode::kInternal;
  if (code == kErrNotApproved || code == kErrRefused) kind = core::ErrorCode::kRefused;
  if (code == kErrFailed) kind = core::ErrorCode::kUnavailable;
  if (code == jsonrpc::kMethodNotFound || code == jsonrpc::kInvalidParams) kind = core::ErrorCode::kInvalidArgument;
  return core::MakeError(kind, message);
}

RpcPeer::RpcPeer(Sender send, RequestHandler on_request, NotificationHandler on_notification,
                 std::size_t max_frame_bytes)
    : send_(std::move(send)),
      on_request_(std::move(on_request)),
      on_notification_(std::move(on_notification)),
      framer_(max_frame_bytes) {}

void RpcPeer::Feed(std::string_view bytes) {
  for (auto& frame : framer_.Feed(bytes)) {
    if (frame.oversized) {
      // Nothing to answer: we cannot know the id. The peer's request will time out.
      continue;
    }
    Dispatch(frame.line);
  }
}

void RpcPeer::Dispatch(std::string_view line) {
  // An exception out of here would leave a libssh callback and terminate the process: a
  // malformed frame from one node must cost that frame, nothing more.
  try {
    DispatchDecoded(line);
  } catch (const std::exception& e) {
    spdlog::warn("agent channel: a message could not be handled: {}", e.what());
  }
}

void RpcPeer::DispatchDecoded(std::string_view line) {
  auto decoded = jsonrpc::Decode(line);
  if (auto* failure = std::get_if<jsonrpc::DecodeFailure>(&decoded)) {
    if (failure->answer) send_(jsonrpc::Encode(jsonrpc::MakeError(failure->id, failure->error.code, failure->error.message)) + "\n");
    return;
  }
  auto& msg = std::get<jsonrpc::Message>(decoded);
  switch (msg.kind) {
    case jsonrpc::MessageKind::kRequest:
      on_request_(msg.id, msg.method, msg.params);
      return;
    case jsonrpc::MessageKind::kNotification: {
      if (msg.params.is_object()) {
        auto rid = msg.params.find("requestId");
        if (rid != msg.params.end() && rid->is_number_integer()) {
          auto it = pending_.find(rid->get<std::int64_t>());
          if (it != pending_.end()) {
            if (it->second.on_notification) it->second.on_notification(msg.method, msg.params);
            return;
          }
        }
      }
      if (on_notification_) on_notification_(msg.method, msg.params);
      return;
    }
    case jsonrpc::MessageKind::kResponse: {
      if (!msg.id.is_number_integer()) return;
      auto it = pending_.find(msg.id.get<std::int64_t>());
      if (it == pending_.end()) return;  // forgotten (deadline passed) or never asked
      ResponseHandler done = std::move(it->second.done);
      pending_.erase(it);
      if (msg.error) {
        done(RemoteError(msg.error->code, msg.error->message));
      } else {
        done(std::move(msg.result));
      }
      return;
    }
  }
}

std::int64_t RpcPeer::Request(const std::string& method, Json params, ResponseHandler done,
                              NotificationHandler on_notification) {
  std::int64_t id = next_id_++;
  pending_[id] = Pending{std::move(done), std::move(on_notification)};
  send_(jsonrpc::Encode(jsonrpc::MakeRequest(id, method, std::move(params))) + "\n");
  return id;
}

void RpcPeer::Notify(const std::string& method, Json params) {
  send_(jsonrpc::Encode(jsonrpc::MakeNotification(method, std::move(params))) + "\n");
}

void RpcPeer::Respond(const Json& id, Json result) {
  send_(jsonrpc::Encode(jsonrpc::MakeResult(id, std::move(result))) + "\n");
}

void RpcPeer::RespondError(const Json& id, int code, const std::string& message) {
  send_(jsonrpc::Encode(jsonrpc::MakeError(id, code, message)) + "\n");
}

void RpcPeer::Forget(std::int64_t id) { pending_.erase(id); }

void RpcPeer::FailAll(const core::Error& error) {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) p.done(error);
}

}  // namespace labgate::nodes
