#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <spdlog/spdlog.h>
#include <filesystem>
#include <thread>

#include "cli/common.h"
#include "audit/interrupted.h"
#include "core/cancel.h"
#include "core/json_parse.h"
#include "core/os_user.h"
#include "gateway/config_reload.h"
#include "gateway/control_socket.h"
#include "gateway/operator_service.h"
#include "gateway/runtime.h"
#include "gateway/views.h"
#include "inventory/selector.h"
#include "mcp/http_server.h"
#include "mcp/stdio_server.h"
#include "nodes/node_agent.h"
#include "nodes/node_key.h"

namespace labgate::cli {
namespace {

// Calls a killed labgate left without a result get one now, saying they were interrupted.
void RecordInterruptedCalls(gateway::Runtime& runtime) {
  auto n = audit::RecordInterrupted(runtime.audit(), runtime.inventory()->gateway.audit_log);
  if (!n) {
    spdlog::warn("could not look for interrupted calls in the audit log: {}", n.error().message);
  } else if (*n > 0) {
    spdlog::warn("{} call(s) of a labgate process that was killed had no result; recorded as interrupted "
                 "(`labgate audit query` shows them)", *n);
  }
}

using nlohmann::json;

/// Blocks the shutdown signals in this thread and every thread it starts afterwards, so that
/// WaitForShutdown receives them synchronously.
sigset_t BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int WaitForShutdown(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

// Reloads hosts.toml on SIGHUP and whenever the file changes (checked every second: an edit by
// `labgate hosts`, an editor or config management), until SIGTERM or SIGINT; returns that signal.
int ServeUntilShutdown(gateway::Runtime& runtime, const sigset_t& signals) {
  const std::string config = runtime.inventory()->source;
  auto stamp = gateway::StampOf(config);
  const bool has_file = stamp.has_value();
  for (;;) {
    timespec tick{1, 0};
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) return sig;
    std::string why;
    if (sig == SIGHUP) {
      why = "SIGHUP";
    } else if (has_file) {
      auto now = gateway::StampOf(config);
      if (now && now != stamp) why = "file changed";
    }
    if (why.empty()) continue;
    if (!has_file) {
      spdlog::warn("SIGHUP: the gateway runs on built-in defaults; there is no hosts.toml to reload");
      continue;
    }
    stamp = gateway::StampOf(config);
    auto notes = gateway::ReloadInventory(runtime, config, why);
    if (!notes) {
      spdlog::error("reload of {} ({}) refused: {}", config, why, notes.error().message);
      continue;
    }
    spdlog::info("reloaded {} ({}): {} targets", config, why, runtime.inventory()->targets.size());
    for (const auto& note : *notes) spdlog::warn("{}", note);
  }
}

std::vector<std::string> SplitCaps(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char ch : text + ",") {
    if (ch == ',') {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else if (ch != ' ') {
      word.push_back(ch);
    }
  }
  return out;
}

std::string Join(const json& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ",") + w.get<std::string>();
  return out.empty() ? "-" : out;
}

std::string Or(const json& v, const std::string& fallback = "-") {
  return v.is_string() ? v.get<std::string>() : fallback;
}

void Print(const Args& args, const json& answer, const std::string& text) {
  if (args.has("--json")) {
    std::cout << answer.dump(2) << "\n";
  } else {
    std::cout << text;
  }
}

/// Copies bytes from `from` to `to` until `from` ends or fails.
void Relay(int from, int to) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    WriteAll(to, std::string(buf, static_cast<std::size_t>(n)));
  }
}

/// Relays stdin to the gateway's MCP socket and its answers to stdout until either side ends.
int Bridge(int sock) {
  std::thread up([sock] {
    Relay(STDIN_FILENO, sock);
    ::shutdown(sock, SHUT_WR);  // the gateway then finishes the session's calls and closes
  });
  Relay(sock, STDOUT_FILENO);
  ::close(sock);
  // The gateway went away (or answered the end of input): nothing more to relay.
  up.detach();
  return 0;
}

// Writes a refused connection on a control socket to the audit log.
gateway::ControlListener::RefusedFn RefusedPeerAuditor(gateway::Runtime& runtime, const std::string& socket) {
  return [&runtime, socket](const gateway::SocketPeer& peer) {
    audit::Event event{"socket.refused", {"socket", "", "", peer.user, "pid:" + std::to_string(peer.pid)}, "",
                       {{"socket", socket}, {"uid", peer.uid}, {"pid", peer.pid}}};
    (void)runtime.audit().Append(audit::EncodeEvent(event), audit::Durability::kSoon);
  };
}

}  // namespace

int McpVerb(const Args& args) {
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message, 1);
  const auto paths = gateway::PathsFor(inv->gateway);
  if (auto sock = gateway::ConnectControl(paths.mcp_socket)) {
    spdlog::info("bridging MCP on stdio to the running gateway at {}", paths.mcp_socket);
    return Bridge(*sock);
  }
  spdlog::info("labgate {} serving MCP on stdio with inventory {} (audit log {})", LABGATE_VERSION, inv->source,
               inv->gateway.audit_log);
  gateway::Runtime runtime(std::move(*inv), gateway::Runtime::Mode::kEmbedded, ConfigHint(args));
  // The operator answers approval requests through this process's own operator socket.
  runtime.RecordPolicyLoaded("mcp");
  RecordInterruptedCalls(runtime);
  gateway::OperatorService operators(runtime);
  const std::string socket = runtime.inventory()->gateway.state_dir + "/operator-" + std::to_string(::getpid()) + ".sock";
  auto op = gateway::ControlListener::Listen(
      socket, [&](int fd, const gateway::SocketPeer& peer) { operators.Serve(fd, peer); },
      RefusedPeerAuditor(runtime, socket));
  if (!op) spdlog::warn("no operator socket for approvals: {}", op.error().message);
  const int rc = mcp::ServeStdio(runtime.gateway(), STDIN_FILENO, STDOUT_FILENO, core::CurrentUserName());
  if (op) (*op)->Stop();
  return rc;
}

int GatewayVerb(const Args& args) {
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message, 1);
  sigset_t signals = BlockShutdownSignals();
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts, so all inherit it
  const auto paths = gateway::PathsFor(inv->gateway);
  gateway::Runtime runtime(std::move(*inv), gateway::Runtime::Mode::kDaemon, ConfigHint(args));
  if (auto ok = runtime.Start(); !ok) return Fail(ok.error().message, 1);
  runtime.RecordPolicyLoaded("gateway");
  RecordInterruptedCalls(runtime);
  gateway::OperatorService operators(runtime);
  auto refused = [&runtime](const std::string& socket) { return RefusedPeerAuditor(runtime, socket); };
  gateway::ControlListener::AllowFn other_operators;
  if (!runtime.inventory()->gateway.operators.empty()) {
    other_operators = [&runtime](const gateway::SocketPeer& peer) { return runtime.IsOperatorPeer(peer.uid, peer.groups); };
  }
  auto op = gateway::ControlListener::Listen(
      paths.operator_socket, [&](int fd, const gateway::SocketPeer& peer) { operators.Serve(fd, peer); },
      refused(paths.operator_socket), other_operators);
  if (!op) return Fail(op.error().message, 1);
  auto mcp_listener = gateway::ControlListener::Listen(
      paths.mcp_socket,
      [&](int fd, const gateway::SocketPeer& peer) { mcp::ServeStdio(runtime.gateway(), fd, fd, peer.user); },
      refused(paths.mcp_socket));
  if (!mcp_listener) return Fail(mcp_listener.error().message, 1);
  std::unique_ptr<mcp::HttpServer> http;
  if (!runtime.inventory()->gateway.http_listen.empty()) {
    auto settings = mcp::HttpSettingsFor(runtime.inventory()->gateway);
    if (!settings) return Fail(settings.error().message, 1);
    const std::string token_source = settings->token_source;
    auto started = mcp::HttpServer::Start(runtime.gateway(), std::move(*settings),
                                          [&runtime](const std::string& peer, const std::string& why) {
                                            audit::Event event{"http.refused", {"mcp-http", "", "", "http " + peer, ""}, "",
                                                               {{"peer", peer}, {"reason", why}}};
                                            (void)runtime.audit().Append(audit::EncodeEvent(event), audit::Durability::kSoon);
                                          });
    if (!started) return Fail(started.error().message, 1);
    http = std::move(*started);
    spdlog::info("MCP over HTTP at {} (bearer token from {})", http->url(), token_source);
  }
  spdlog::info("labgate gateway {} ready: inventory {}, nodes on {} (host key {}), MCP {}, operator {}",
               LABGATE_VERSION, runtime.inventory()->source, runtime.agents()->address(),
               runtime.agents()->fingerprint(), paths.mcp_socket, paths.operator_socket);
  const int sig = ServeUntilShutdown(runtime, signals);
  spdlog::info("received SIG{}; closing sockets and node sessions", sig == SIGTERM ? "TERM" : "INT");
  if (http) http->Stop();
  (*mcp_listener)->Stop();
  (*op)->Stop();
  // The checks before the node sessions: a check that found a node online just before the
  // loops ended would post its call to a loop that is gone.
  if (runtime.checks() != nullptr) runtime.checks()->Stop();
  runtime.agents()->Stop();
  return 0;
}

int PairVerb(const Args& args) {
  if (args.positional.empty() || args.positional[0] != "new") {
    return Fail("usage: labgate pair new --node ID|group:NAME|tag:NAME|* [--caps run,screen] [--ttl 10m]", kExitUsage);
  }
  if (!args.has("--node")) return Fail("pair new needs --node ID (a [[nodes]] entry in hosts.toml)", kExitUsage);
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);
  json params = json::object();
  if (args.has("--caps")) params["capabilities"] = SplitCaps(args.get("--caps"));
  if (args.has("--ttl")) {
    auto ms = ParseDurationMs(args.get("--ttl"));
    if (!ms) return Fail(ms.error().message, kExitUsage);
    params["ttlMs"] = *ms;
  }
  const std::string selector = args.get("--node");
  if (inventory::IsValidName(selector)) {
    // One node: the gateway checks the id, so a typo is explained the same way as over MCP.
    params["nodeId"] = selector;
    auto answer = CallGateway(*inv, args, "pair.new", params);
    if (!answer) return Fail(answer.error().message);
    Print(args, *answer,
          "Pairing code for node " + (*answer)["nodeId"].get<std::string>() + " (capabilities " +
              Join((*answer)["capabilities"]) + "; single use; expires " + (*answer)["expiresAt"].get<std::string>() +
              "):\n\n  " + (*answer)["code"].get<std::string>() + "\n\nOn the device run:\n\n  labgate node pair " +
              (*answer)["code"].get<std::string>() + "\n  labgate node run\n\nThe code carries the gateway address " +
              (*answer)["gateway"].get<std::string>() + " and its host key " +
              (*answer)["fingerprint"].get<std::string>() + ".\n");
    return 0;
  }
  // Many devices at once (a batch of Raspberry Pis): one code per [[nodes]] entry the selector
  // matches; SSH hosts in a group are left out, as they are not paired.
  auto matched = inventory::Resolve(*inv, {selector});
  if (!matched) return Fail(matched.error().message, kExitUsage);
  std::vector<std::string> ids;
  for (const inventory::Target* t : *matched) {
    if (t->kind == inventory::TargetKind::kNode) ids.push_back(t->id);
  }
  if (ids.empty()) return Fail(selector + " matches no [[nodes]] entry; only nodes are paired", kExitUsage);
  json codes = json::array();
  std::string text;
  for (const auto& id : ids) {
    params["nodeId"] = id;
    auto answer = CallGateway(*inv, args, "pair.new", params);
    if (!answer) {
      // The codes issued so far are valid: show them, then say where it stopped.
      Print(args, json{{"codes", codes}}, text);
      return Fail("stopped at node " + id + " after " + std::to_string(codes.size()) + " of " +
                  std::to_string(ids.size()) + " codes: " + answer.error().message);
    }
    text += "  " + id + "  " + (*answer)["code"].get<std::string>() + "\n";
    codes.push_back(std::move(*answer));
  }
  Print(args, json{{"codes", codes}},
        "Pairing codes for " + std::to_string(codes.size()) + " nodes (single use; expire " +
            codes.back()["expiresAt"].get<std::string>() + "):\n\n" + text +
            "\nOn each device run `labgate node pair CODE` with its own code, then `labgate node run`.\n");
  return 0;
}

int NodesVerb(const Args& args) {
  const std::string sub = args.positional.empty() ? "list" : args.positional[0];
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);
  auto need_id = [&]() -> std::optional<std::string> {
    if (args.positional.size() != 2) return std::nullopt;
    return args.positional[1];
  };
  if (sub == "list") {
    auto answer = CallGateway(*inv, args, "nodes.list", json::object());
    if (!answer) return Fail(answer.error().message);
    std::vector<std::vector<std::string>> rows = {
        {"ID", "ONLINE", "LAST SEEN", "FINGERPRINT", "CAPABILITIES", "PAIRED", "ROTATED", "STATE"}};
    for (const auto& n : (*answer)["nodes"]) {
      std::string state = n["revokedAt"].is_string() ? "revoked " + n["revokedAt"].get<std::string>()
                          : n["stale"].get<bool>()   ? "stale (key older than " +
                                                         std::to_string((*answer)["keyMaxAgeDays"].get<int>()) +
                                                         " days; run `labgate nodes rotate " +
                                                         n["id"].get<std::string>() + "`)"
                                                     : "ok";
      if (!n["inInventory"].get<bool>()) state += ", not in hosts.toml";
      rows.push_back({n["id"].get<std::string>(), n["online"].get<bool>() ? "yes" : "no", Or(n["lastSeen"]),
                      n["fingerprint"].get<std::string>(), Join(n["capabilities"]), n["pairedAt"].get<std::string>(),
                      Or(n["rotatedAt"]), state});
    }
    std::string locked;
    for (const auto& l : answer->value("lockedOut", json::array())) {
      locked += "locked out: " + core::StringOr(l, "address") + " until " + core::StringOr(l, "until") + " after " +
                std::to_string(l.value("failures", 0)) +
                " failed logins (a device there cannot connect or re-pair until then; stop its agent)\n";
    }
    Print(args, *answer,
          "gateway " + (*answer)["gateway"]["listen"].get<std::string>() + " host key " +
              (*answer)["gateway"]["fingerprint"].get<std::string>() + "\n" + gateway::FormatTable(rows) + locked);
    return 0;
  }
  if (sub == "pending") {
    auto answer = CallGateway(*inv, args, "nodes.pending", json::object());
    if (!answer) return Fail(answer.error().message);
    std::vector<std::vector<std::string>> rows = {{"ID", "FINGERPRINT", "ASKS FOR", "DEVICE", "REQUESTED"}};
    for (const auto& p : (*answer)["pending"]) {
      rows.push_back({p["id"].get<std::string>(), p["fingerprint"].get<std::string>(), Join(p["capabilities"]),
                      p["device"]["hostname"].get<std::string>() + " (" + p["device"]["platform"].get<std::string>() +
                          ")",
                      p["requestedAt"].get<std::string>()});
    }
    Print(args, *answer,
          (*answer)["pending"].empty() ? std::string("no pairing requests are waiting\n") : gateway::FormatTable(rows));
    return 0;
  }
  auto id = need_id();
  if (!id) return Fail("usage: labgate nodes " + sub + " ID", kExitUsage);
  json params = {{"nodeId", *id}};
  if (sub == "approve") {
    if (args.has("--caps")) params["capabilities"] = SplitCaps(args.get("--caps"));
    auto answer = CallGateway(*inv, args, "nodes.approve", params);
    if (!answer) return Fail(answer.error().message);
    Print(args, *answer,
          "approved " + *id + ": key " + (*answer)["fingerprint"].get<std::string>() + ", capabilities " +
              Join((*answer)["capabilities"]) + "\n");
    return 0;
  }
  if (sub == "reject") {
    auto answer = CallGateway(*inv, args, "nodes.reject", params);
    if (!answer) return Fail(answer.error().message);
    Print(args, *answer, "rejected the request of " + *id + " (key " + (*answer)["fingerprint"].get<std::string>() + ")\n");
    return 0;
  }
  if (sub == "revoke") {
    auto answer = CallGateway(*inv, args, "nodes.revoke", params);
    if (!answer) return Fail(answer.error().message);
    Print(args, *answer,
          "revoked " + *id + ": key " + (*answer)["fingerprint"].get<std::string>() +
              " is refused from now on and its session was dropped\n");
    return 0;
  }
  if (sub == "rotate") {
    auto answer = CallGateway(*inv, args, "nodes.rotate", params);
    if (!answer) return Fail(answer.error().message);
    std::string text = "rotated " + *id + ": " + (*answer)["oldFingerprint"].get<std::string>() + " -> " +
                       (*answer)["newFingerprint"].get<std::string>() + "; the old key is refused from now on\n";
    if (answer->contains("warning")) text += "warning: " + (*answer)["warning"].get<std::string>() + "\n";
    Print(args, *answer, text);
    return 0;
  }
  return Fail("unknown nodes subcommand '" + sub + "' (list, pending, approve, reject, rotate, revoke)", kExitUsage);
}

int NodeVerb(const Args& args) {
  const std::string sub = args.positional.empty() ? "" : args.positional[0];
  const std::string state_dir = args.has("--state-dir") ? core::ExpandHome(args.get("--state-dir"))
                                                        : nodes::DefaultNodeStateDir();
  if (sub == "pair") {
    nodes::PairRequest request;
    request.state_dir = state_dir;
    request.version = LABGATE_VERSION;
    if (args.positional.size() == 2) {
      request.code = args.positional[1];
    } else if (args.positional.size() == 1) {
      request.gateway = args.get("--gateway");
      request.fingerprint = args.get("--fingerprint");
      request.node_id = args.get("--node");
    } else {
      return Fail("usage: labgate node pair CODE | labgate node pair --gateway HOST:PORT --fingerprint SHA256:... "
                  "--node ID",
                  kExitUsage);
    }
    if (args.has("--caps")) request.capabilities = SplitCaps(args.get("--caps"));
    core::CancelToken stop;
    auto paired = nodes::PairDevice(request, std::cout, stop);
    if (!paired) return Fail(paired.error().message);
    std::string caps;
    for (const auto& c : paired->capabilities) caps += (caps.empty() ? "" : ",") + c;
    std::cout << "paired as " << paired->node_id << " with gateway " << paired->gateway << " (capabilities "
              << (caps.empty() ? "none" : caps) << "); state in " << state_dir
              << "\nStart the agent with `labgate node run" << (args.has("--state-dir") ? " --state-dir " + state_dir : "")
              << "` (or the labgate-node systemd unit).\n";
    return 0;
  }
  if (sub == "run") {
    // Which backends serve screen, camera and location here: --device-config, else
    // STATE_DIR/device.toml when present, else `auto` for all three.
    capabilities::DeviceConfig device;
    const std::string device_path = args.has("--device-config") ? core::ExpandHome(args.get("--device-config"))
                                                                : state_dir + "/device.toml";
    if (args.has("--device-config") || std::filesystem::exists(device_path)) {
      auto loaded = inventory::LoadDeviceConfig(device_path);
      if (!loaded) return Fail(loaded.error().message, 1);
      device = std::move(*loaded);
    }
    const sigset_t signals = BlockShutdownSignals();
    core::CancelToken stop;
    std::thread waiter([&] {
      WaitForShutdown(signals);
      stop.Cancel();
    });
    core::SystemProcessRunner runner;
    nodes::NodeAgent agent(state_dir, runner, LABGATE_VERSION, std::move(device));
    auto ran = agent.Run(stop);
    if (!ran) {
      // Unblock the waiter thread so the process can exit.
      ::kill(::getpid(), SIGTERM);
      waiter.join();
      return Fail(ran.error().message, ran.error().code == core::ErrorCode::kRefused ? kExitNodeRefused : 1);
    }
    waiter.join();
    return 0;
  }
  if (sub == "status") {
    auto config = nodes::LoadNodeConfig(state_dir);
    // A request the operator has not decided yet: the key to compare with `nodes pending`.
    if (auto pending = nodes::LoadPendingRequest(state_dir)) {
      std::cout << "pairing request pending: node " << pending->node_id << " at gateway " << pending->gateway
                << ", key " << pending->key_fingerprint << ", asked " << pending->requested_at
                << "\n  the operator compares that key with `labgate nodes pending` and runs `labgate nodes approve "
                << pending->node_id << "` while `labgate node pair` waits\n";
      if (!config) return 0;
    }
    if (!config) return Fail(config.error().message, 1);
    auto key = nodes::LoadKeyFile(state_dir + "/node_key");
    std::string caps;
    for (const auto& c : config->capabilities) caps += (caps.empty() ? "" : ",") + c;
    std::cout << "node " << config->node_id << "\ngateway " << config->gateway << " (host key " << config->fingerprint
              << ")\nkey " << (key ? nodes::Fingerprint(key->get()) : "unreadable: " + key.error().message)
              << "\ncapabilities " << (caps.empty() ? "none" : caps) << "\npaired " << config->paired_at << "\n";
    return 0;
  }
  return Fail("usage: labgate node pair CODE | labgate node run | labgate node status  [--state-dir DIR]", kExitUsage);
}

}  // namespace labgate::cli
