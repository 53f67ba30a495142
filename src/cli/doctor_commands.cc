// `labgate doctor` and `labgate hosts check`: the guide's final checklist against the real lab.
#include <iostream>

#include "cli/common.h"
#include "core/os_user.h"
#include "gateway/doctor.h"
#include "gateway/runtime.h"

namespace labgate::cli {
namespace {

using Json = nlohmann::json;

// `doctor --strict` when every item passed but some warned.
constexpr int kExitDoctorWarnings = 3;

// A daemon answers within this; the probe itself is capped at 10 s per target.
constexpr std::int64_t kDoctorCallMs = 180000;

int Print(const Args& args, const gateway::DoctorReport& report, const std::string& what) {
  if (args.has("--json")) {
    std::cout << gateway::DoctorReportJson(report).dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    std::cout << gateway::DoctorReportText(report, what);
  }
  if (!report.ok()) return 1;
  // --strict: a check that passed with a warning (a listed host down) is not a pass.
  return args.has("--strict") && report.warnings() > 0 ? kExitDoctorWarnings : 0;
}

// Runs the checklist in the gateway daemon serving this config (nodes reachable, its pairing
// store), else in-process with an embedded gateway that reads nodes.json as it is.
core::Result<gateway::DoctorReport> Evaluate(const Args& args, inventory::Inventory inv,
                                             const gateway::DoctorOptions& options) {
  if (GatewayRunning(inv)) {
    Json params = {{"hostsOnly", options.hosts_only}, {"configHint", options.config_hint}};
    if (!options.capture_target.empty()) params["capture"] = options.capture_target;
    auto answer = CallGateway(inv, args, "doctor", params, kDoctorCallMs);
    if (!answer) return answer.error();
    return gateway::DoctorReportFromJson(*answer);
  }
  gateway::Runtime runtime(std::move(inv), gateway::Runtime::Mode::kEmbedded, ConfigHint(args));
  const audit::Actor actor{"doctor", "labgate-cli", LABGATE_VERSION, core::CurrentUserName(), ""};
  return gateway::RunDoctor(runtime, actor, options);
}

int Checklist(const Args& args, bool hosts_only) {
  const std::string what = hosts_only ? "hosts check" : "doctor";
  if (hosts_only && args.positional.size() > 1) return Fail("usage: labgate hosts check [--json] [--config FILE]", kExitUsage);
  if (!hosts_only && !args.positional.empty()) {
    return Fail("doctor takes no arguments (see `labgate doctor --help`)", kExitUsage);
  }
  if (args.has("--capture") && args.get("--capture").empty()) {
    return Fail("--capture needs a TARGET with screen or camera, e.g. --capture local", kExitUsage);
  }
  auto inv = LoadInventoryFor(args);
  if (!inv) {
    // A file that does not load is a finding, not labgate failing: show every error and fail.
    gateway::DoctorReport report;
    report.items.push_back(gateway::CheckInventoryLoads(args.get("--config"), inv));
    return Print(args, report, what);
  }
  gateway::DoctorOptions options;
  options.capture_target = hosts_only ? "" : args.get("--capture");
  options.hosts_only = hosts_only;
  options.config_hint = ConfigHint(args);
  gateway::DoctorItem loads = gateway::CheckInventoryLoads(inv->source, inv);
  auto report = Evaluate(args, std::move(*inv), options);
  if (!report) return Fail(what + " could not run: " + report.error().message);
  if (hosts_only) report->items.insert(report->items.begin(), loads);
  return Print(args, *report, what);
}

}  // namespace

int DoctorVerb(const Args& args) { return Checklist(args, false); }

int HostsCheckVerb(const Args& args) { return Checklist(args, true); }

}  // namespace labgate::cli
