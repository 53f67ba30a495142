#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/line_framer.h"
#include "core/result.h"

namespace labgate::nodes {

using Json = nlohmann::json;

/// Application error codes on the agent channel (JSON-RPC reserves -32768..-32000 for itself).
inline constexpr int kErrNotApproved = -32001;  // the node refuses a capability it was not approved for
inline constexpr int kErrFailed = -32002;       // the method ran into a failure (could not start, ...)
inline constexpr int kErrRefused = -32003;      // the gateway refuses (pairing, revoked, ...)

/// One end of the agent channel: newline-delimited JSON-RPC 2.0 in both directions. Transport-
/// agnostic and single-threaded: bytes come in through Feed, go out through `send`, and every
/// callback runs inside Feed or FailAll. Notifications whose params carry `requestId` are handed
/// to the matching outstanding request's listener (streamed output).
class RpcPeer {
 public:
  using Sender = std::function<void(std::string bytes)>;
  using RequestHandler = std::function<void(const Json& id, const std::string& method, const Json& params)>;
  using NotificationHandler = std::function<void(const std::string& method, const Json& params)>;
  using ResponseHandler = std::function<void(core::Result<Json>)>;

  RpcPeer(Sender send, RequestHandler on_request, NotificationHandler on_notification, std::size_t max_frame_bytes);

  /// Takes bytes from the transport and dispatches every complete message.
  /// Lowers (or raises) the longest line accepted from now on.
  void SetMaxFrameBytes(std::size_t max) { framer_.set_max_line_bytes(max); }
  void Feed(std::string_view bytes);

  /// Sends a request; `done` gets the result or the error. `on_notification` (optional) gets the
  /// notifications the peer sends about this request. Returns the request id.
  std::int64_t Request(const std::string& method, Json params, ResponseHandler done,
                       NotificationHandler on_notification = nullptr);
  void Notify(const std::string& method, Json params);
  void Respond(const Json& id, Json result);
  void RespondError(const Json& id, int code, const std::string& message);

  /// Stops waiting for `id` (deadline, cancellation); its handler is dropped uncalled.
  void Forget(std::int64_t id);
  /// The link is gone: every outstanding request fails with `error`.
  void FailAll(const core::Error& error);
  std::size_t outstanding() const { return pending_.size(); }

 private:
  struct Pending {
    ResponseHandler done;
    NotificationHandler on_notification;
  };
  void Dispatch(std::string_view line);
  void DispatchDecoded(std::string_view line);

  Sender send_;
  RequestHandler on_request_;
  NotificationHandler on_notification_;
  core::LineFramer framer_;
  std::int64_t next_id_ = 1;
  std::map<std::int64_t, Pending> pending_;
};

/// The error a remote JSON-RPC error object stands for, with the peer's message.
core::Error RemoteError(int code, const std::string& message);

}  // namespace labgate::nodes
