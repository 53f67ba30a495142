#pragma once

#include <mutex>
#include <nlohmann/json.hpp>

namespace labgate::mcp {

/// Sends one JSON-RPC message to the client. Implementations are thread-safe.
class Outbox {
 public:
  virtual ~Outbox() = default;
  /// `related` is the id of the client's request this message answers or belongs to (a result,
  /// a progress notification, an elicitation asked during a call), or null for a message of the
  /// session as a whole. A stream transport sends on one connection and ignores it; Streamable
  /// HTTP sends it on that request's response stream.
  virtual void Send(const nlohmann::json& message, const nlohmann::json& related) = 0;
  /// The request `request_id` ended without a response (the client cancelled it, or the session
  /// closed): a transport that holds a connection open for the answer can let it go.
  virtual void Unanswered(const nlohmann::json& request_id) { (void)request_id; }
  /// Whether a message reaches the client only on the stream of a request it relates to
  /// (Streamable HTTP without a GET stream); stdio reaches it any time.
  virtual bool NeedsRequestStream() const { return false; }
};

/// Writes newline-delimited messages to a file descriptor (stdout). Only MCP messages ever go
/// there. After the peer goes away, sends are dropped.
class FdOutbox final : public Outbox {
 public:
  explicit FdOutbox(int fd) : fd_(fd) {}
  void Send(const nlohmann::json& message, const nlohmann::json& related) override;
  bool broken() const;

 private:
  int fd_;
  mutable std::mutex mutex_;
  bool broken_ = false;
};

}  // namespace labgate::mcp
