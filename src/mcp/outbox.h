#pragma once

#include <mutex>
#include <nlohmann/json.hpp>

namespace labgate::mcp {

/// Sends one JSON-RPC message to the client. Implementations are thread-safe.
class Outbox {
 public:
  virtual ~Outbox() = default;
  virtual void Send(const nlohmann::json& message) = 0;
};

/// Writes newline-delimited messages to a file descriptor (stdout). Only MCP messages ever go
/// there. After the peer goes away, sends are dropped.
class FdOutbox final : public Outbox {
 public:
  explicit FdOutbox(int fd) : fd_(fd) {}
  void Send(const nlohmann::json& message) override;
  bool broken() const;

 private:
  int fd_;
  mutable std::mutex mutex_;
  bool broken_ = false;
};

}  // namespace labgate::mcp
