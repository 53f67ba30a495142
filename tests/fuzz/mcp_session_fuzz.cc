// MCP request handling: what any MCP client sends on stdio or the socket, through the real
// session, tools and gateway pipeline (policy, confirmation, audit), with a fake executor so
// nothing runs. Every line of the input is one message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "audit/audit_log.h"
#include "fakes.h"
#include "gateway/gateway.h"
#include "inventory/inventory.h"
#include "mcp/session.h"
#include "mcp/tools.h"

namespace {

using namespace labgate;

class Discard final : public mcp::Outbox {
 public:
  void Send(const nlohmann::json& message, const nlohmann::json& related) override {
    (void)message.dump();
    (void)related.dump();
  }
};

// Two targets besides local, one in read-only mode, so policy, selectors and roles all decide.
constexpr char kInventory[] = R"([[hosts]]
id = "web"
address = "127.0.0.1"
user = "labgate"
groups = ["prod"]

[[hosts]]
id = "nas"
address = "127.0.0.2"
user = "labgate"
mode = "read-only"
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto inventory = [] {
    auto parsed = inventory::ParseInventory(kInventory, "hosts.toml", "/");
    if (!parsed.ok()) __builtin_trap();
    return std::make_shared<const inventory::Inventory>(*parsed);
  }();
  fakes::FakeClock clock;
  fakes::FakeAuditStorage storage;
  audit::AuditLog audit(storage, clock);
  fakes::FakeExecutor local(&storage);
  fakes::FakeExecutor ssh(&storage);
  gateway::Gateway gateway(inventory, audit, local, clock, &ssh);
  Discard outbox;
  mcp::ThreadTaskRunner tasks(4);
  mcp::Session session(outbox, tasks, mcp::MakeTools(gateway), "fuzz");
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    session.HandleLine(bytes.substr(0, nl));
    bytes.remove_prefix(nl == std::string_view::npos ? bytes.size() : nl + 1);
  }
  session.Shutdown();  // cancels calls waiting for a confirmation nobody will send
  return 0;
}
