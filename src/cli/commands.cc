#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/args.h"
#include "cli/common.h"
#include "core/cancel.h"
#include "core/os_user.h"
#include "gateway/runtime.h"
#include "gateway/ssh_executor.h"
#include "ssh/connection.h"
#include "gateway/views.h"
#include "inventory/inventory.h"
#include "mcp/stdio_server.h"

namespace labgate::cli {
namespace {

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
        "tools `run`, `screen`, `camera`, `location`, `file` and `targets`. When a gateway daemon runs for the same\n"
        "config, it relays to it (so paired nodes are reachable); otherwise it runs an embedded gateway.\n"
        "stdout carries only MCP messages; logs go to stderr (LABGATE_LOG=debug for more). Exits when stdin\n"
        "closes, stopping any command still running.\n\n"
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
        "  --dry-run        show the decision, rule, risk class and targets; run nothing\n"
        "  --sudo           run as root through sudo -S with the host's sudo_password_env/_file\n"
        "                   (on stdin, never in argv); privileged: refused on daily-use targets\n"
        "  --json           print the structured result (same shape as the MCP tool)\n"
        "A command that policy says needs a human's yes is asked about on your terminal; without a\n"
        "terminal, an approval request is filed (see `labgate approvals`).\n"
        "  --config FILE    inventory to use\n"}},
      {"targets",
       {"list targets and what they can do",
        "usage: labgate targets [SELECTOR] [--json] [--config FILE]\n\n"
        "Lists the built-in `local` target, SSH hosts and nodes from the inventory with kind, online\n"
        "state, capabilities, groups, device and purpose. SELECTOR is an id, group:NAME, tag:NAME or *.\n"}},
      {"hosts",
       {"list, add, remove and change SSH hosts; trust their host keys",
        "usage: labgate hosts list [--json] [--config FILE]\n"
        "       labgate hosts trust ID [--fingerprint SHA256:...] [--config FILE]\n"
        "       labgate hosts add ID --address ADDRESS [--port N] [--user USER] [--identity-file FILE]\n"
        "                         [--groups a,b] [--tags a,b] [--caps run,...] [--device TEXT] [--owner TEXT]\n"
        "                         [--purpose TEXT] [--role admin|daily] [--config FILE]\n"
        "       labgate hosts remove ID [--config FILE]\n"
        "       labgate hosts set ID KEY=VALUE [KEY=VALUE ...] [--config FILE]\n"
        "       labgate hosts check [--json] [--config FILE]\n\n"
        "list   shows every [[hosts]] entry: address, user, groups, jump host, and whether its host key\n"
        "       is recorded (labgate's known_hosts in state_dir, or ~/.ssh/known_hosts).\n"
        "trust  connects to ID, shows the fingerprint of the key it offers and, after you confirm (or when\n"
        "       it equals --fingerprint), records it in labgate's known_hosts. A different key already\n"
        "       recorded is never overwritten: remove the old line first.\n"
        "add    appends a [[hosts]] entry after the last one; refuses an id already in use\n"
        "remove deletes the [[hosts]] or [[nodes]] entry ID with its subtables ([hosts.screen] ...) and the\n"
        "       comment lines directly above it; a removed node should also be `labgate nodes revoke`d\n"
        "set    changes keys of entry ID (a host or a node): port=2222, groups=servers,lab (or a TOML array),\n"
        "       user= removes a key. Secrets stay out: use passphrase_env=VAR or passphrase_file=PATH.\n"
        "add, remove and set keep every other line and comment of the file as it was, take a lock, and\n"
        "write only when the edited file still loads (else it is left unchanged and the problem named).\n"
        "They need a hosts.toml (--config, ./hosts.toml or ~/.config/labgate/hosts.toml).\n"
        "check  the inventory's part of `labgate doctor`: the file loads (else every file:line: key: error),\n"
        "       every host and node answers `uname -n`, no node key is stale, every entry has owner and\n"
        "       purpose. Exit 0 when all pass, 1 when any fails.\n"}},
      {"gateway",
       {"run the gateway daemon: node listener, MCP and operator sockets",
        "usage: labgate gateway [--config FILE]\n\n"
        "Runs in the foreground (use packaging/labgate-gateway.service under systemd). Listens for nodes on\n"
        "[gateway] listen (default 127.0.0.1:7022) with an Ed25519 host key made at first start in state_dir,\n"
        "and serves MCP (mcp.sock) and the operator CLI (operator.sock) on Unix sockets in state_dir that\n"
        "only the gateway's own user may use. `labgate mcp` with the same config bridges to it, so MCP\n"
        "clients reach paired nodes. SIGTERM closes everything cleanly.\n"}},
      {"pair",
       {"issue a pairing code for a device",
        "usage: labgate pair new --node ID|group:NAME|tag:NAME|* [--caps run,screen,camera,location]\n"
        "                        [--ttl 10m] [--json]\n\n"
        "Prints a single-use code that expires (default 10 minutes) for the [[nodes]] entry ID. It carries the\n"
        "gateway's address and host-key fingerprint; `labgate node pair CODE` on the device uses it. --caps\n"
        "narrows the capabilities to grant (default: those the node lists in hosts.toml). A group, tag or *\n"
        "prints one code per [[nodes]] entry it matches (with --json: {\"codes\": [...]}), for setting up\n"
        "many devices at once. Needs a running gateway.\n"}},
      {"nodes",
       {"list, approve, rotate and revoke paired nodes",
        "usage: labgate nodes list|pending [--json]\n"
        "       labgate nodes approve ID [--caps run,...]\n"
        "       labgate nodes reject|rotate|revoke ID\n\n"
        "list     every paired node: online or last seen, key fingerprint, capabilities, paired and rotated\n"
        "         dates, and `stale` once the key is older than [gateway] key_max_age_days (default 90)\n"
        "pending  pairing requests that came without a code (allow_pairing = true), with their key\n"
        "         fingerprints: compare with `labgate node status` on the device before approving\n"
        "approve  pairs a pending request; --caps may narrow what it asked for\n"
        "reject   drops a pending request\n"
        "rotate   the node makes a new key over its live channel; the old key is refused from then on\n"
        "revoke   refuses the node's key and drops its session at once\n"
        "All of these reach the gateway through its operator socket and are written to the audit log.\n"}},
      {"node",
       {"the agent on a device: pair it, run it",
        "usage: labgate node pair CODE [--state-dir DIR] [--caps run,...]\n"
        "       labgate node pair --gateway HOST:PORT --fingerprint SHA256:... --node ID [--caps ...]\n"
        "       labgate node run [--state-dir DIR] [--device-config FILE]\n"
        "       labgate node status [--state-dir DIR]\n\n"
        "pair    makes this device's Ed25519 key (0600) in the state dir (default\n"
        "        ~/.local/state/labgate-node), checks the gateway's host key and pairs; without a code the\n"
        "        request waits until the operator runs `labgate nodes approve ID`\n"
        "run     connects out to the gateway, serves the approved capabilities, reconnects with backoff;\n"
        "        screen, camera and location use the backends of --device-config FILE (default\n"
        "        STATE_DIR/device.toml when it exists, else auto-detection)\n"
        "status  shows the node id, gateway, key fingerprint and approved capabilities\n"}},
      {"approvals",
       {"approve or deny what an AI asked to run; time-boxed grants",
        "usage: labgate approvals list [--all] [--json]\n"
        "       labgate approvals approve|deny ID\n"
        "       labgate approvals grant --target SELECTOR --pattern 'COMMAND *' [--for 1h]\n"
        "       labgate approvals grants [--json]\n"
        "       labgate approvals revoke GRANT-ID\n\n"
        "list     open requests: targets, exact command, cwd, env, risk class, the rule that asked, who\n"
        "         asked and when it expires (default 15 minutes; [gateway] approval_ttl_s)\n"
        "approve  lets exactly that call (same targets, command, cwd and env) run once when it is repeated\n"
        "deny     closes the request\n"
        "grant    lets commands matching PATTERN (a glob; * matches anything) run on the targets without\n"
        "         asking until the grant expires; deny rules still refuse\n"
        "revoke   ends a grant early\n"
        "These talk to the running gateway or `labgate mcp` through its operator socket; a command that\n"
        "labgate itself started is refused, so an AI cannot approve its own requests.\n"}},
      {"audit",
       {"verify, tail and query the audit log",
        "usage: labgate audit verify [--json] [--config FILE]\n"
        "       labgate audit tail [-n N] [-f] [--json] [--config FILE]\n"
        "       labgate audit query [--target ID] [--since TIME] [--until TIME] [--decision allowed|refused]\n"
        "                           [--actor TEXT] [--json] [--config FILE]\n\n"
        "Reads [gateway] audit_log and its rotated files (PATH.1, PATH.2, ... oldest first); changes nothing.\n\n"
        "verify  checks every record of every file: JSON, format version, seq, the prev link, the hash, and\n"
        "        that the newest record is the one PATH.head names (so records cut off the end show).\n"
        "        Exit 0 when intact, 1 with the first broken seq and what is wrong, 255 when unreadable.\n"
        "        Keep the printed last hash elsewhere to notice a chain rewritten as a whole.\n"
        "tail    the last N records (-n, default 20), one line each or JSON lines with --json; -f keeps\n"
        "        printing new records, across rotations, until Ctrl-C\n"
        "query   the records that match every filter given, as lines or one JSON array with --json:\n"
        "          --target ID         the target (or one of a refusal's targets)\n"
        "          --since/--until T   ISO-8601 UTC (2026-11-18T09:30:00Z, 2026-11-18) or a duration ago\n"
        "                              (30m, 1h, 2d)\n"
        "          --decision D        allowed or refused; results follow their intent\n"
        "          --actor TEXT        part of the OS user, MCP client name, via (mcp, cli, agent) or session\n"}},
      {"screen",
       {"take a screenshot or record a target's screen",
        "usage: labgate screen TARGET [--record 5s] [--fps 10] [--screen N] [-o FILE|-] [--json] [--config FILE]\n\n"
        "Without --record: a PNG snapshot. With it: an mp4 of that length (at most 60s).\n"
        "The file goes to -o FILE (- for stdout) or TARGET-screen-snapshot-TIME.png here; the metadata is\n"
        "printed. Backends: x11 (ffmpeg x11grab), wayland (grim / wf-recorder), macos (screencapture).\n"}},
      {"camera",
       {"take a photo or a clip with a target's camera; list its cameras",
        "usage: labgate camera TARGET [--facing back|front] [--device ID] [--quality 1-100] [--max-width PX]\n"
        "                      [--clip 3s] [-o FILE|-] [--json] [--config FILE]\n"
        "       labgate camera list TARGET [--json]\n\n"
        "Without --clip: a JPEG photo. With it: an mp4 of that length (at most 60s).\n"
        "Backends: v4l2 (ffmpeg), termux (termux-camera-photo).\n"}},
      {"file",
       {"read, stat, list, fetch and write files on a target",
        "usage: labgate file read TARGET PATH [--offset N] [--length N] [--json]\n"
        "       labgate file stat|list TARGET PATH [--max-entries N] [--json]\n"
        "       labgate file get TARGET PATH [-o FILE|-] [--json]\n"
        "       labgate file put TARGET PATH --from LOCAL-FILE|- [--mode 0644] [--create-only] [--no-overwrite]\n"
        "                        [--expect SHA256] [--sudo] [--json]\n"
        "       (all: [--timeout 20s] [--config FILE])\n\n"
        "PATH is absolute or ~/...; it is normalised and its symlinks resolved on the target before\n"
        "[policies.file] judges it. Private keys and credential stores are refused unless a read_allow rule\n"
        "names them; writes into system paths ask a human; labgate's own files are never touched.\n"
        "put writes atomically (a temporary file beside PATH, fsync, rename) and keeps mode and owner;\n"
        "--expect refuses the write unless the current content has that SHA-256 (\"\" : must not exist).\n"
        "get keeps the file as an artifact and writes it to -o FILE (default: its name here).\n"
        "Hosts are reached over SFTP; every action is audited with sizes and digests, never content.\n"}},
      {"location",
       {"where a target is: gpsd, Termux or a fixed position",
        "usage: labgate location TARGET [--accuracy coarse|balanced|precise] [--timeout 30s] [--max-age 5m]\n"
        "                        [--json] [--config FILE]\n\n"
        "--max-age accepts a fix the gateway got no longer ago than that. precise waits for a 3D fix.\n"}},
      {"doctor",
       {"check the whole setup: pairing, remote commands, capture, audit log, keys",
        "usage: labgate doctor [--capture TARGET] [--strict] [--json] [--config FILE]\n\n"
        "The guide's final checklist against the real lab, one line per item (PASS/FAIL, the facts, and\n"
        "what to do next). Exit 0 when every item passes, 1 when any fails, 255 when labgate itself failed.\n"
        "An item can pass with warnings (a listed host that does not answer while two others do): they are\n"
        "shown under it and counted in the summary; with --strict they make the exit status 3.\n\n"
        "  pairing      [[nodes]] entries vs the pairing store: never paired, paired but not listed, or a\n"
        "               key that differs from the entry's key_fingerprint\n"
        "  remote-exec  `uname -n` (read-only, 10 s) on every target with run (nodes: when online), with\n"
        "               timings; passes when at least two answer\n"
        "  capture      the last screen or camera capture that worked (STATE_DIR/last-capture.json);\n"
        "               --capture TARGET takes one now (a screen snapshot, else a camera photo)\n"
        "  audit        the hash chain verifies and run/capture records carry who, target, payload,\n"
        "               timestamps and exit code or outcome\n"
        "  keys         every node key is younger than [gateway] key_max_age_days, no revoked node is\n"
        "               still listed, and where docs/key-rotation.md is\n"
        "With a gateway running it checks through it (nodes reachable); otherwise in-process, where\n"
        "nodes cannot be reached. Its probes are written to the audit log like any other action.\n"
        "  --json   {ok, warnings, items:[{id, title, ok, details[], next, warnings[]}]}\n"}},
      {"checks",
       {"routine checks from hosts.toml: status, next run, run one now",
        "usage: labgate checks list [--json] [--config FILE]\n"
        "       labgate checks run NAME [--target ID] [--json] [--config FILE]\n\n"
        "[[checks]] in hosts.toml are read-only commands (or a camera/screen snapshot) that the gateway daemon\n"
        "runs on their targets every DURATION, at HH:MM, or when a node comes back after being offline.\n"
        "A failure runs the check's alert once (until it passes again) and, when it has a remediation,\n"
        "files an approval request: the remediation runs once, through policy and the audit log, only after\n"
        "`labgate approvals approve ID`.\n\n"
        "list  every check and target: last status and summary, when it last ran, when it runs next, and a\n"
        "      remediation waiting for approval\n"
        "run   runs NAME now on its targets (or only --target ID); exit 0 when all pass, 1 otherwise.\n"
        "      Without a running gateway it runs in this process and still records the result.\n"}},
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
    gateway::Runtime runtime(std::move(*inv), gateway::Runtime::Mode::kEmbedded, ConfigHint(args));
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
    gateway::Runtime runtime(std::move(*inv), gateway::Runtime::Mode::kEmbedded, ConfigHint(args));
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
  if (sub == "add" || sub == "remove" || sub == "set") return HostsEditVerb(args);
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
  return Fail("unknown hosts subcommand '" + sub + "' (list, trust, add, remove, set or check)", kExitUsage);
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
  return Fail("verb '" + args.verb + "' is not wired", kExitUsage);
}

}  // namespace labgate::cli
