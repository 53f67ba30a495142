#include "cli/commands.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/args.h"
#include "core/cancel.h"
#include "core/os_user.h"
#include "gateway/runtime.h"
#include "gateway/views.h"
#include "inventory/inventory.h"
#include "mcp/stdio_server.h"

namespace labgate::cli {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitLabgateError = 255;  // like ssh: labgate itself failed, not the command
constexpr int kExitTimeout = 124;       // like timeout(1)

struct Verb {
  const char* summary;
  const char* usage;
};

const std::map<std::string, Verb>& Verbs() {
  static const std::map<std::string, Verb> verbs = {
      {"mcp",
       {"serve MCP on stdin/stdout for an AI client",
        "usage: labgate mcp [--config FILE]\n\n"
        "Speaks the Model Context Protocol (2025-11-25 down to 2024-11-05) on stdin/stdout and publishes the\n"
        "tools `run` and `targets`. stdout carries only MCP messages; logs go to stderr (LABGATE_LOG=debug\n"
        "for more). Exits when stdin closes, stopping any command still running.\n\n"
        "  --config FILE   inventory to use (default: ./hosts.toml, then ~/.config/labgate/hosts.toml,\n"
        "                  else built-in defaults with only the `local` target)\n"}},
      {"run",
       {"run a command on targets, like the MCP `run` tool",
        "usage: labgate run TARGET [options] [--] PROGRAM [ARGS...]\n"
        "       labgate run TARGET [options] --shell 'COMMAND'\n\n"
        "TARGET is an id, group:NAME, tag:NAME or *. PROGRAM and ARGS run without a shell; --shell runs\n"
        "COMMAND with sh -c. Output streams are printed as they were captured (capped head+tail).\n"
        "Exit code: the command's own for one target; 124 on timeout; 128+N when killed by signal N;\n"
        "255 when labgate could not run it (refused, unknown target, audit log unwritable); for several\n"
        "targets 0 when all succeeded, else 1.\n\n"
        "  --shell CMD      run CMD via sh -c instead of an argv\n"
        "  --timeout DUR    deadline (500ms, 30s, 5m; default [gateway] default_timeout_ms); stops the\n"
        "                   whole process group\n"
        "  --cwd DIR        working directory on the target\n"
        "  --json           print the structured result (same shape as the MCP tool)\n"
        "  --config FILE    inventory to use\n"}},
      {"targets",
       {"list targets and what they can do",
        "usage: labgate targets [SELECTOR] [--json] [--config FILE]\n\n"
        "Lists the built-in `local` target, SSH hosts and nodes from the inventory with kind, online\n"
        "state, capabilities, groups, device and purpose. SELECTOR is an id, group:NAME, tag:NAME or *.\n"}},
      {"help", {"show help for labgate or one verb", "usage: labgate help [VERB]\n"}},
  };
  return verbs;
}

void PrintOverview() {
  std::cout << "labgate " << LABGATE_VERSION
            << " - act on your homelab's machines from an AI assistant or the shell, with guardrails\n\n"
               "usage: labgate VERB [options]\n\nverbs:\n";
  for (const auto& [name, verb] : Verbs()) std::printf("  %-9s %s\n", name.c_str(), verb.summary);
  std::cout << "\nglobal options: --config FILE, --json, --help, --version\n"
               "Run `labgate help VERB` or `labgate VERB --help` for details.\n";
}

void SetUpLogging(spdlog::level::level_enum fallback) {
  auto logger = spdlog::stderr_logger_mt("labgate");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  const char* env = std::getenv("LABGATE_LOG");
  spdlog::set_level(env ? spdlog::level::from_str(env) : fallback);
}

core::Result<inventory::Inventory> LoadInventoryFor(const Args& args) {
  return inventory::LoadConfigured(args.get("--config"));
}

int Fail(const std::string& message, int code = kExitLabgateError) {
  std::cerr << "labgate: " << message << "\n";
  return code;
}

void WriteAll(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
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

  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);
  gateway::Runtime runtime(std::move(*inv));
  audit::Actor actor{"cli", "labgate-cli", LABGATE_VERSION, core::CurrentUserName(), ""};
  core::CancelToken never;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  auto report = runtime.gateway().Run(actor, call, never, [&](std::size_t done, std::size_t total, const auto& r) {
    if (tty && total > 1) std::cerr << "\r[" << done << "/" << total << "] " << gateway::OneLineSummary(r) << "\033[K";
  });
  if (tty && report.results.size() > 1) std::cerr << "\r\033[K";

  if (args.has("--json")) {
    std::cout << gateway::RunReportJson(report).dump(2) << "\n";
  } else if (report.error) {
    return Fail(report.error->message);
  } else if (report.results.size() == 1) {
    const auto& r = report.results[0];
    WriteAll(STDOUT_FILENO, r.stdout_text);
    WriteAll(STDERR_FILENO, r.stderr_text);
    if (!r.ok() && (r.error || r.signal)) std::cerr << "labgate: " << gateway::OneLineSummary(r) << "\n";
  } else {
    std::cout << gateway::RunReportText(report);
  }

  if (report.error) return kExitLabgateError;
  if (report.results.size() == 1) {
    const auto& r = report.results[0];
    if (r.timed_out) return kExitTimeout;
    if (r.signal) {
      for (int sig = 1; sig < 65; ++sig) {
        if (core::SignalName(sig) == *r.signal) return 128 + sig;
      }
      return kExitLabgateError;
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
  gateway::Runtime runtime(std::move(*inv));
  auto views = runtime.gateway().Targets(args.positional);
  if (!views) return Fail(views.error().message);
  if (args.has("--json")) {
    std::cout << nlohmann::json{{"targets", gateway::TargetsJson(*views)}}.dump(2) << "\n";
  } else {
    std::cout << gateway::TargetsText(*views);
  }
  return 0;
}

int Mcp(const Args& args) {
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message, 1);
  spdlog::info("labgate {} serving MCP on stdio with inventory {} (audit log {})", LABGATE_VERSION, inv->source,
               inv->gateway.audit_log);
  gateway::Runtime runtime(std::move(*inv));
  return mcp::ServeStdio(runtime.gateway(), STDIN_FILENO, STDOUT_FILENO);
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
  SetUpLogging(args.verb == "mcp" ? spdlog::level::info : spdlog::level::warn);
  if (args.verb == "run") return Run(args);
  if (args.verb == "targets") return Targets(args);
  if (args.verb == "mcp") return Mcp(args);
  return Fail("verb '" + args.verb + "' is not wired", kExitUsage);
}

}  // namespace labgate::cli
