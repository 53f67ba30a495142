#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/args.h"
#include "cli/common.h"
#include "cli/help_formats.h"
#include "cli/logging.h"
#include "cli/verbs.h"
#include "core/cancel.h"
#include "core/os_user.h"
#include "gateway/runtime.h"
#include "gateway/ssh_executor.h"
#include "ssh/connection.h"
#include "gateway/views.h"
#include "inventory/ansible_export.h"
#include "inventory/inventory.h"
#include "mcp/stdio_server.h"

namespace labgate::cli {
namespace {

void PrintOverview() {
  std::cout << "labgate " << LABGATE_VERSION
            << " - " << kTagline << "\n\n"
               "usage: labgate VERB [options]\n\nverbs:\n";
  for (const auto& [name, verb] : Verbs()) std::printf("  %-9s %s\n", name.c_str(), verb.summary);
  std::cout << "\nglobal options: --config FILE, --json, --help, --version\n"
               "Run `labgate help VERB` or `labgate VERB --help` for details.\n";
}

int Run(const Args& args) {
  if (args.positional.empty()) return Fail("run needs a TARGET (see `labgate run --help`)", kExitUsage);
  if (args.positional.size() > 1) return Fail("run takes one TARGET; use group:NAME or * for several", kExitUsage);
  gateway::RunCall call;
  call.selectors = {args.positional[0]};
  if (args.has("--shell")) {
    if (!args.rest.empty()) return Fail("give either --shell 'COMMAND' or an argv after --, not both", kExitUsage);
    call.command.shell = args.get("--shell");
  } else {
    if (args.rest.empty()) return Fail("run needs a command: labgate run TARGET -- PROGRAM [ARGS...]", kExitUsage);
    call.command.argv = args.rest;
  }
  if (args.has("--timeout")) {
    auto ms = ParseDurationMs(args.get("--timeout"));
    if (!ms) return Fail(ms.error().message, kExitUsage);
    call.timeout_ms = *ms;
  }
  call.cwd = args.get("--cwd");
  call.dry_run = args.has("--dry-run");
  call.sudo = args.has("--sudo");

  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);
  gateway::RunReport report;
  if (GatewayRunning(*inv)) {
    // Nodes are connected to the daemon: the run goes through its pipeline.
    nlohmann::json params = {{"selectors", call.selectors}, {"cwd", call.cwd}};
    if (call.command.shell) {
      params["shell"] = *call.command.shell;
    } else {
      params["argv"] = call.command.argv;
    }
    if (call.timeout_ms) params["timeoutMs"] = *call.timeout_ms;
    if (call.dry_run) params["dryRun"] = true;
    if (call.sudo) params["sudo"] = true;
    const std::int64_t wait = call.timeout_ms.value_or(inv->gateway.max_timeout_ms) + 30000;
    auto answer = CallGateway(*inv, args, "run", params, wait);
    if (!answer) return Fail(answer.error().message);
    auto parsed = gateway::RunReportFromJson(*answer);
    if (!parsed) return Fail(parsed.error().message);
    report = std::move(*parsed);
    // The daemon filed an approval request; a person at this terminal can answer it now.
    const auto pending = std::find_if(report.results.begin(), report.results.end(),
                                      [](const auto& r) { return r.decision == "approval-pending"; });
    if (pending != report.results.end()) {
      if (auto human = TerminalHuman()) {
        gateway::ConfirmQuestion q;
        for (const auto& r : report.results) {
          if (r.decision == "approval-pending") q.targets.push_back(r.target);
        }
        q.command = call.command.Display();
        q.cwd = call.cwd;
        q.risk = pending->risk;
        q.rule = pending->rule;
        q.reason = pending->reason;
        core::CancelToken never;
        if (human->Ask(q, never).kind == gateway::ConfirmAnswer::Kind::kAccept) {
          auto approved = CallGateway(*inv, args, "approvals.approve", {{"id", pending->approval_id}});
          if (!approved) return Fail(approved.error().message);
          auto again = CallGateway(*inv, args, "run", params, wait);
          if (!again) return Fail(again.error().message);
          auto reparsed = gateway::RunReportFromJson(*again);
          if (!reparsed) return Fail(reparsed.error().message);
          report = std::move(*reparsed);
        }
      }
    }
  } else {
    gateway::Runtime runtime(std::move(*inv), gateway::Runtime::Mode::kOneShot, ConfigHint(args));
    audit::Actor actor{"cli", "labgate-cli", LABGATE_VERSION, core::CurrentUserName(), ""};
    core::CancelToken never;
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    auto human = TerminalHuman();
    report = runtime.gateway().Run(
        actor, call, never,
        [&](std::size_t done, std::size_t total, const auto& r) {
          if (tty && total > 1) std::cerr << "\r[" << done << "/" << total << "] " << gateway::OneLineSummary(r) << "\033[K";
        },
        human.get());
    if (tty && report.results.size() > 1) std::cerr << "\r\033[K";
  }

  if (args.has("--json")) {
    std::cout << gateway::RunReportJson(report).dump(2) << "\n";
  } else if (report.error) {
    return Fail(report.error->message);
  } else if (report.dry_run) {
    std::cout << gateway::RunReportText(report);
    return 0;
  } else if (report.results.size() == 1) {
    const auto& r = report.results[0];
    WriteAll(STDOUT_FILENO, r.stdout_text);
    WriteAll(STDERR_FILENO, r.stderr_text);
    if (!r.ok() && (r.error || r.signal)) std::cerr << "labgate: " << gateway::OneLineSummary(r) << "\n";
    if (r.escalated) {
      std::string text = gateway::RunReportText(report);
      const auto at = text.find(r.target + ": escalated");
      if (at != std::string::npos) std::cerr << text.substr(at);
    }
  } else {
    std::cout << gateway::RunReportText(report);
  }

  if (report.error) return kExitLabgateError;
  if (report.dry_run) return 0;
  if (report.results.size() == 1) {
    const auto& r = report.results[0];
    if (r.timed_out) return kExitTimeout;
    if (r.signal) {
      auto number = core::SignalNumber(*r.signal);
      return number ? 128 + *number : kExitLabgateError;
    }
    if (r.exit_code) return *r.exit_code;
    return kExitLabgateError;
  }
  for (const auto& r : report.results) {
    if (!r.ok()) return 1;
  }
  return 0;
}

int Targets(const Args& args) {
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);
  nlohmann::json listing;
  if (GatewayRunning(*inv)) {
    auto answer = CallGateway(*inv, args, "targets", {{"selectors", args.positional}});
    if (!answer) return Fail(answer.error().message);
    listing = std::move(*answer);
  } else {
    gateway::Runtime runtime(std::move(*inv), gateway::Runtime::Mode::kOneShot, ConfigHint(args));
    auto views = runtime.gateway().Targets(args.positional);
    if (!views) return Fail(views.error().message);
    listing = {{"targets", gateway::TargetsJson(*views)}};
  }
  if (args.has("--json")) {
    std::cout << listing.dump(2) << "\n";
  } else {
    std::cout << gateway::TargetsTextFromJson(listing["targets"]);
  }
  return 0;
}

int Hosts(const Args& args) {
  const std::string sub = args.positional.empty() ? "list" : args.positional[0];
  // Edits validate the file they produce, so they need not (and, to repair it, must not) load it first.
  if (sub == "add" || sub == "remove" || sub == "set" || sub == "import") return HostsEditVerb(args);
  if (sub == "check") return HostsCheckVerb(args);  // reports a file that does not load as a finding
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);
  if (sub == "list") {
    nlohmann::json rows = nlohmann::json::array();
    std::vector<std::vector<std::string>> table = {{"ID", "ADDRESS", "USER", "GROUPS", "JUMP", "HOST KEY"}};
    for (const auto& t : inv->targets) {
      if (t.kind != inventory::TargetKind::kHost) continue;
      auto spec = gateway::HostSpecFor(*inv, t);
      std::string key = spec ? ssh::RecordedHostKeyStatus(*spec) : "error: " + spec.error().message;
      std::string groups;
      for (const auto& g : t.groups) groups += (groups.empty() ? "" : ",") + g;
      std::string user = t.user.empty() ? "-" : t.user;
      rows.push_back({{"id", t.id}, {"address", t.address}, {"port", t.port}, {"user", t.user}, {"groups", t.groups},
                      {"proxyJump", t.proxy_jump}, {"hostKey", key}, {"hostKeyPolicy", t.host_key_policy},
                      {"device", t.device}, {"owner", t.owner}, {"purpose", t.purpose}});
      table.push_back({t.id, t.address + ":" + std::to_string(t.port), user, groups.empty() ? "-" : groups,
                       t.proxy_jump.empty() ? "-" : t.proxy_jump, key});
    }
    if (args.has("--json")) {
      std::cout << nlohmann::json{{"hosts", rows}}.dump(2) << "\n";
    } else {
      std::cout << gateway::FormatTable(table);
    }
    return 0;
  }
  if (sub == "trust") {
    if (args.positional.size() != 2) return Fail("usage: labgate hosts trust ID [--fingerprint SHA256:...]", kExitUsage);
    const inventory::Target* t = inv->Find(args.positional[1]);
    if (!t || t->kind != inventory::TargetKind::kHost) {
      return Fail("no SSH host '" + args.positional[1] + "' in " + inv->source + " (see `labgate hosts list`)");
    }
    auto spec = gateway::HostSpecFor(*inv, *t);
    if (!spec) return Fail(spec.error().message);
    const auto timeout = std::chrono::milliseconds(inv->gateway.default_timeout_ms);
    auto probe = ssh::ProbeHostKey(*spec, timeout);
    if (!probe) return Fail(probe.error().message);
    std::cout << t->id << " (" << probe->endpoint << ") offers host key " << probe->fingerprint << "\n";
    if (probe->status == "known") {
      std::cout << "already trusted; nothing to do\n";
      return 0;
    }
    std::string expected = args.get("--fingerprint");
    if (expected.empty()) {
      if (!::isatty(STDIN_FILENO)) {
        return Fail("not a terminal: confirm by passing --fingerprint " + probe->fingerprint +
                    " after checking it on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)");
      }
      std::cout << "Check it on the host with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`.\n"
                << "Trust this key for " << t->id << "? [y/N] " << std::flush;
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != "y" && answer != "Y" && answer != "yes") return Fail("not trusted; nothing was recorded", 1);
      expected = probe->fingerprint;
    }
    if (auto ok = ssh::TrustHostKey(*spec, expected, timeout); !ok) return Fail(ok.error().message);
    std::cout << "recorded in " << spec->known_hosts << "\n";
    return 0;
  }
  if (sub == "export") {
    const std::string format = args.get("--format", "ansible-yaml");
    if (format != "ansible-yaml" && format != "ansible-json") {
      return Fail("--format must be ansible-yaml or ansible-json, not '" + format + "'", kExitUsage);
    }
    auto exported = inventory::ExportAnsible(*inv);
    for (const auto& note : exported.notes) std::cerr << "labgate: note: " << note << "\n";
    std::cout << (format == "ansible-json" ? exported.inventory.dump(2) + "\n" : inventory::ToYaml(exported.inventory));
    return 0;
  }
  return Fail("unknown hosts subcommand '" + sub + "' (list, trust, add, remove, set, check or export)", kExitUsage);
}

// `labgate completion bash|zsh|words`. `words` must stay quiet and quick: the shell calls it
// on every Tab, so it loads the inventory only when a target is expected and prints nothing
// but candidates.
int CompletionVerb(const Args& args) {
  const std::string what = args.positional.empty() ? "" : args.positional[0];
  if (what == "bash") {
    std::cout << BashCompletionScript();
    return 0;
  }
  if (what == "zsh") {
    std::cout << ZshCompletionScript();
    return 0;
  }
  if (what != "words") return Fail("usage: labgate completion bash|zsh (see `labgate completion --help`)", kExitUsage);
  spdlog::set_level(spdlog::level::off);
  const std::vector<std::string>& words = args.rest;
  auto targets = [&words]() {
    Args typed;  // only --config matters: the inventory the completed command would use
    for (std::size_t i = 0; i + 1 < words.size(); ++i) {
      if (words[i] == "--config" || words[i] == "-c") {
        if (i + 2 < words.size()) typed.options["--config"] = words[i + 1];
      } else if (words[i].rfind("--config=", 0) == 0) {
        typed.options["--config"] = words[i].substr(9);
      }
    }
    std::vector<std::string> out;
    auto inv = LoadInventoryFor(typed);
    if (!inv) return out;
    std::set<std::string> groups;
    std::set<std::string> tags;
    for (const auto& target : inv->targets) {
      out.push_back(target.id);
      groups.insert(target.groups.begin(), target.groups.end());
      tags.insert(target.tags.begin(), target.tags.end());
    }
    for (const auto& group : groups) out.push_back("group:" + group);
    for (const auto& tag : tags) out.push_back("tag:" + tag);
    return out;
  };
  for (const auto& candidate : CompleteWords(Verbs(), words, targets)) std::cout << candidate << "\n";
  return 0;
}

}  // namespace

int Main(const std::vector<std::string>& argv) {
  auto parsed = ParseArgs(argv);
  if (!parsed) return Fail(parsed.error().message, kExitUsage);
  const Args& args = *parsed;
  if (args.has("--version")) {
    std::cout << "labgate " << LABGATE_VERSION << "\n";
    return 0;
  }
  if (args.verb.empty()) {
    PrintOverview();
    return args.has("--help") ? 0 : kExitUsage;
  }
  if (args.verb == "help") {
    if (args.has("--man")) {
      std::cout << ManPage(Verbs(), LABGATE_VERSION);
      return 0;
    }
    if (args.has("--help")) {
      std::cout << Verbs().at("help").usage;
      return 0;
    }
    if (args.positional.empty()) {
      PrintOverview();
      return 0;
    }
    auto it = Verbs().find(args.positional[0]);
    if (it == Verbs().end()) return Fail("no verb '" + args.positional[0] + "' (see `labgate help`)", kExitUsage);
    std::cout << it->second.usage;
    return 0;
  }
  auto verb = Verbs().find(args.verb);
  if (verb == Verbs().end()) return Fail("unknown verb '" + args.verb + "' (see `labgate help`)", kExitUsage);
  if (args.has("--help")) {
    std::cout << verb->second.usage;
    return 0;
  }
  const bool daemon = args.verb == "mcp" || args.verb == "gateway" || (args.verb == "node" && !args.positional.empty() &&
                                                                       args.positional[0] == "run");
  SetUpLogging(daemon ? spdlog::level::info : spdlog::level::warn);
  if (args.verb == "run") return Run(args);
  if (args.verb == "targets") return Targets(args);
  if (args.verb == "mcp") return McpVerb(args);
  if (args.verb == "gateway") return GatewayVerb(args);
  if (args.verb == "pair") return PairVerb(args);
  if (args.verb == "nodes") return NodesVerb(args);
  if (args.verb == "node") return NodeVerb(args);
  if (args.verb == "hosts") return Hosts(args);
  if (args.verb == "approvals") return ApprovalsVerb(args);
  if (args.verb == "audit") return AuditVerb(args);
  if (args.verb == "checks") return ChecksVerb(args);
  if (args.verb == "doctor") return DoctorVerb(args);
  if (args.verb == "screen" || args.verb == "camera" || args.verb == "location") return CaptureVerb(args);
  if (args.verb == "file") return FileVerb(args);
  if (args.verb == "completion") return CompletionVerb(args);
  return Fail("verb '" + args.verb + "' is not wired", kExitUsage);
}

}  // namespace labgate::cli
