#include "cli/common.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "cli/logging.h"
#include "gateway/control_socket.h"
#include "gateway/runtime.h"
#include "policy/decide.h"

namespace labgate::cli {

int Fail(const std::string& message, int code) {
  // On the journal (a unit's ExecStart), an error line says so with its priority.
  std::cerr << (StderrIsJournal() ? "<3>labgate: " : "labgate: ") << message << "\n";
  return code;
}

core::Result<inventory::Inventory> LoadInventoryFor(const Args& args) {
  auto inv = inventory::LoadConfigured(args.get("--config"));
  if (!inv) return inv;
  if (auto ok = policy::CheckInventory(*inv); !ok) return ok.error();
  return inv;
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

core::Result<nlohmann::json> CallOperator(const inventory::Inventory& inv, const Args& args, const std::string& method,
                                          nlohmann::json params) {
  const auto& dir = inv.gateway.state_dir;
  std::vector<std::string> sockets = {gateway::PathsFor(inv.gateway).operator_socket};
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("operator-", 0) == 0 && name.size() > 5 && name.substr(name.size() - 5) == ".sock") {
      sockets.push_back(entry.path().string());
    }
  }
  for (const auto& socket : sockets) {
    auto fd = gateway::ConnectControl(socket);
    if (!fd) continue;
    ::close(*fd);
    return gateway::OperatorCall(socket, method, std::move(params), std::chrono::milliseconds(60000));
  }
  return core::MakeError(core::ErrorCode::kUnavailable,
                         "neither a gateway nor a `labgate mcp` is running for " + inv.source + " (nothing answers in " +
                             dir + "); approvals are handed to a running one: start `labgate gateway" + ConfigHint(args) +
                             "`, or repeat the call from your MCP client first");
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
