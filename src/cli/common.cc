#include "cli/common.h"

#include <unistd.h>

#include <iostream>

#include "gateway/control_socket.h"
#include "gateway/runtime.h"

namespace labgate::cli {

int Fail(const std::string& message, int code) {
  std::cerr << "labgate: " << message << "\n";
  return code;
}

core::Result<inventory::Inventory> LoadInventoryFor(const Args& args) {
  return inventory::LoadConfigured(args.get("--config"));
}

std::string ConfigHint(const Args& args) {
  return args.has("--config") ? " --config " + args.get("--config") : "";
}

bool GatewayRunning(const inventory::Inventory& inv) {
  auto fd = gateway::ConnectControl(gateway::PathsFor(inv.gateway).operator_socket);
  if (!fd) return false;
  ::close(*fd);
  return true;
}

core::Result<nlohmann::json> CallGateway(const inventory::Inventory& inv, const Args& args, const std::string& method,
                                         nlohmann::json params, std::int64_t timeout_ms) {
  const std::string socket = gateway::PathsFor(inv.gateway).operator_socket;
  if (!GatewayRunning(inv)) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "no gateway is running for " + inv.source + " (nothing answers on " + socket +
                               "); start it with `labgate gateway" + ConfigHint(args) + "`");
  }
  return gateway::OperatorCall(socket, method, std::move(params), std::chrono::milliseconds(timeout_ms));
}

void WriteAll(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace labgate::cli
