#include <chrono>
#include <iostream>

#include "cli/common.h"
#include "core/clock.h"
#include "core/process_runner.h"
#include "gateway/checks.h"
#include "gateway/gateway.h"
#include "gateway/runtime.h"

namespace labgate::cli {
namespace {

using nlohmann::json;

std::string StatePath(const inventory::Inventory& inv) { return inv.gateway.state_dir + "/checks.json"; }

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int List(const Args& args, inventory::Inventory inv) {
  json checks;
  const bool daemon = GatewayRunning(inv);
  if (daemon) {
    auto answer = CallGateway(inv, args, "checks.list", json::object());
    if (!answer) return Fail(answer.error().message);
    checks = (*answer)["checks"];
  } else {
    auto state = gateway::LoadCheckState(StatePath(inv));
    if (!state) return Fail(state.error().message);
    checks = gateway::ChecksJson(inv, *state, NowMs());
  }
  if (args.has("--json")) {
    std::cout << json{{"checks", checks}, {"gatewayRunning", daemon}}.dump(2) << "\n";
    return 0;
  }
  std::cout << gateway::ChecksText(checks);
  if (!daemon && !checks.empty()) {
    std::cout << "\nNo gateway is running for " << inv.source << ": nothing runs on schedule until `labgate gateway"
              << ConfigHint(args) << "` starts.\n";
  }
  return 0;
}

int RunChecks(const Args& args, inventory::Inventory inv) {
  if (args.positional.size() != 2) return Fail("usage: labgate checks run NAME [--target ID] [--json]", kExitUsage);
  const std::string name = args.positional[1];
  const std::string target = args.get("--target");
  json results;
  if (GatewayRunning(inv)) {
    const std::int64_t wait = inv.gateway.max_timeout_ms + 30000;
    auto answer = CallGateway(inv, args, "checks.run", {{"name", name}, {"target", target}}, wait);
    if (!answer) return Fail(answer.error().message);
    results = (*answer)["results"];
  } else {
    // No daemon: run it here, through an embedded gateway, and record the result in the same state file.
    const std::string path = StatePath(inv);
    gateway::Runtime runtime(std::move(inv), gateway::Runtime::Mode::kEmbedded, ConfigHint(args));
    core::SystemClock clock;
    gateway::CheckScheduler scheduler(runtime.gateway(), runtime.approvals(), runtime.audit(), path, clock,
                                      runtime.runner());
    if (auto ok = scheduler.Load(); !ok) return Fail(ok.error().message);
    auto ran = scheduler.RunNow(name, target);
    if (!ran) return Fail(ran.error().message);
    results = json::array();
    for (const auto& r : *ran) results.push_back(gateway::CheckRunResultJson(r));
  }
  bool all_pass = true;
  for (const auto& r : results) all_pass = all_pass && r["status"] == "pass";
  if (args.has("--json")) {
    std::cout << json{{"results", results}}.dump(2) << "\n";
    return all_pass ? 0 : 1;
  }
  for (const auto& r : results) {
    std::string status = r["status"].get<std::string>();
    for (auto& c : status) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::cout << status << "  " << r["summary"].get<std::string>() << "\n";
    if (r["alerted"].get<bool>()) std::cout << "      a new failure: its alert ran\n";
    if (r["approvalId"].is_string()) {
      std::cout << "      remediation filed for approval: labgate approvals approve "
                << r["approvalId"].get<std::string>() << "\n      " << gateway::kApprovalNeedsAServer << "\n";
    }
  }
  return all_pass ? 0 : 1;
}

}  // namespace

int ChecksVerb(const Args& args) {
  const std::string sub = args.positional.empty() ? "list" : args.positional[0];
  if (sub != "list" && sub != "run") return Fail("unknown checks subcommand '" + sub + "' (list or run)", kExitUsage);
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);
  return sub == "list" ? List(args, std::move(*inv)) : RunChecks(args, std::move(*inv));
}

}  // namespace labgate::cli
