#include "mcp/outbox.h"

#include <unistd.h>

#include <cerrno>

#include "core/json_rpc.h"

namespace labgate::mcp {

void FdOutbox::Send(const nlohmann::json& message, const nlohmann::json& /*related*/) {
  std::string line = core::jsonrpc::Encode(message);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mutex_);
  if (broken_) return;
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken_ = true;
      return;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

bool FdOutbox::broken() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return broken_;
}

}  // namespace labgate::mcp
