#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "core/result.h"

namespace labgate::mcp {

/// What a 2026-07-28 requestState is bound to: the exact call it was issued for and who made it.
struct StateBinding {
  std::string method;     // "tools/call"
  std::string name;       // the tool
  std::string arguments;  // SHA-256 of the arguments as the client sent them (canonical JSON)
  std::string principal;  // "mcp alice", "mcp-http http 127.0.0.1": who may bring it back
};

/// Issues and checks the opaque requestState of an input_required result. The state carries its
/// binding, an expiry and a nonce, authenticated with HMAC-SHA256 under a key this process made
/// at start and never lets out; a state is accepted once. Thread-safe.
class RequestStates {
 public:
  explicit RequestStates(std::chrono::seconds lifetime);

  std::string Issue(const StateBinding& binding);
  /// Ok when `state` was issued by this process for exactly `binding`, has not expired and was
  /// not used before (it is used up now); else what is wrong with it, for the audit record.
  core::Status Redeem(const std::string& state, const StateBinding& binding);

 private:
  std::string key_;
  std::chrono::seconds lifetime_;
  std::mutex mutex_;
  std::map<std::string, std::chrono::system_clock::time_point> used_;  // nonce -> expiry
};

}  // namespace labgate::mcp
