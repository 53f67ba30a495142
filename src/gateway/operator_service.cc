#include "gateway/operator_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <spdlog/spdlog.h>
#include <sstream>

#include "core/base64.h"
#include "core/clock.h"
#include "core/json_rpc.h"
#include "core/line_framer.h"
#include "gateway/doctor.h"
#include "gateway/operator_key.h"
#include "gateway/views.h"
#include "inventory/selector.h"
#include "nodes/pairing_code.h"
#include "nodes/rpc_peer.h"

namespace labgate::gateway {

using core::ErrorCode;
using core::MakeError;
using Json = nlohmann::json;

namespace {

std::string Text(const Json& params, const char* key) {
  auto it = params.find(key);
  return it != params.end() && it->is_string() ? it->get<std::string>() : "";
}

core::Result<std::vector<std::string>> Capabilities(const Json& params, const inventory::Target& node) {
  std::vector<std::string> caps = node.capabilities;
  if (auto it = params.find("capabilities"); it != params.end() && !it->is_null()) {
    caps.clear();
    for (const auto& c : *it) {
      std::string cap = c.get<std::string>();
      if (!node.HasCapability(cap)) {
        std::string listed;
        for (const auto& l : node.capabilities) listed += (listed.empty() ? "" : ",") + l;
        return MakeError(ErrorCode::kInvalidArgument, "node " + node.id + " does not list " + cap +
                                                          " in hosts.toml (it lists " + listed +
                                                          "); add it there first");
      }
      caps.push_back(cap);
    }
  }
  return caps;
}

int RpcCode(const core::Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument: return core::jsonrpc::kInvalidParams;
    case ErrorCode::kRefused: return nodes::kErrRefused;
    default: return nodes::kErrFailed;
  }
}

}  // namespace

core::Status OperatorService::Record(const std::string& event, const audit::Actor& actor, const std::string& node_id,
                                     Json details) {
  spdlog::info("{}{} by {}", event, node_id.empty() ? "" : " " + node_id, actor.os_user.empty() ? "?" : actor.os_user);
  audit::Event e{event, actor, node_id, std::move(details)};
  return runtime_.audit().Append(audit::EncodeEvent(e));
}

OperatorService::OperatorService(Runtime& runtime) : runtime_(runtime), key_(runtime.AdoptOperatorKey()) {}

void OperatorService::Serve(int fd, const SocketPeer& peer) {
  const audit::Actor actor{"cli", "labgate-cli", LABGATE_VERSION, peer.user, "pid:" + std::to_string(peer.pid)};
  // A `file put` carries its content (base64) in the request: room for [policies.file]
  // max_write_bytes. Only an operator reaches this socket.
  const auto max_write = static_cast<std::size_t>(runtime_.inventory()->file_max_write_bytes);
  core::LineFramer framer(std::max<std::size_t>(8 * 1024 * 1024, max_write / 3 * 4 + 1024 * 1024));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    for (auto& frame : framer.Feed(std::string_view(buf, static_cast<std::size_t>(n)))) {
      Json reply;
      auto decoded = core::jsonrpc::Decode(frame.line);
      if (auto* failure = std::get_if<core::jsonrpc::DecodeFailure>(&decoded)) {
        reply = core::jsonrpc::MakeError(failure->id, failure->error.code, failure->error.message);
      } else {
        auto& msg = std::get<core::jsonrpc::Message>(decoded);
        if (msg.kind != core::jsonrpc::MessageKind::kRequest) continue;
        core::Result<Json> result = MakeError(ErrorCode::kInternal, "unhandled");
        Json params = msg.params.is_null() ? Json::object() : std::move(msg.params);
        std::string presented;
        if (auto it = params.is_object() ? params.find(kOperatorKeyParam) : params.end();
            params.is_object() && it != params.end()) {
          if (it->is_string()) presented = it->get<std::string>();
          params.erase(kOperatorKeyParam);
        }
        if (!key_) {
          result = MakeError(ErrorCode::kUnavailable, "this gateway has no operator key, so it answers no operator: " +
                                                          key_.error().message);
        } else if (peer.uid != ::getuid() && !runtime_.IsOperatorPeer(peer.uid, peer.groups)) {
          // The listener checks this too; a reload may have removed the operator since it connected.
          result = MakeError(ErrorCode::kRefused, msg.method + " refused: " + peer.user + " is not in gateway.operators");
        } else if (peer.uid == ::getuid() && !OperatorKeyMatches(presented, *key_)) {
          // The same uid reached the socket without the key: a process that cannot read the state
          // directory (a sandboxed command) or a client that is not labgate's CLI.
          audit::Event e{"socket.refused", actor, "",
                         {{"method", msg.method}, {"pid", peer.pid},
                          {"why", presented.empty() ? "no operator key" : "wrong operator key"}}};
          (void)runtime_.audit().Append(audit::EncodeEvent(e));
          result = MakeError(ErrorCode::kRefused,
                             msg.method + " refused: the call did not carry the operator key from " +
                                 OperatorKeyPath(runtime_.inventory()->gateway.state_dir) +
                                 "; use labgate's CLI as the gateway's user");
        } else {
          try {
            result = Handle(msg.method, params, actor, peer.pid);
          } catch (const std::exception& e) {
            result = MakeError(ErrorCode::kInvalidArgument, std::string("malformed parameters: ") + e.what());
          }
        }
        reply = result ? core::jsonrpc::MakeResult(msg.id, *result)
                       : core::jsonrpc::MakeError(msg.id, RpcCode(result.error()), result.error().message);
      }
      SendAll(fd, core::jsonrpc::Encode(reply) + "\n");
    }
  }
}

core::Result<Json> OperatorService::Handle(const std::string& method, const Json& params, const audit::Actor& actor,
                                          pid_t peer_pid) {
  static const char* kHumanOnly[] = {"approvals.approve", "approvals.grant", "pair.new", "nodes.approve"};
  const bool human_only = std::find_if(std::begin(kHumanOnly), std::end(kHumanOnly),
                                       [&](const char* m) { return method == m; }) != std::end(kHumanOnly);
  if (human_only && peer_pid > 0) {
    if (auto launcher = LabgateAncestor(peer_pid)) {
      audit::Event e{"socket.refused", actor, "",
                     {{"method", method}, {"pid", peer_pid}, {"launchedBy", *launcher},
                      {"why", "a process labgate started may not grant trust"}}};
      (void)runtime_.audit().Append(audit::EncodeEvent(e));
      return MakeError(ErrorCode::kRefused,
                       method + " refused: the caller (pid " + std::to_string(peer_pid) + ") was started by `" + *launcher +
                           "`, so it may be a command an AI asked labgate to run. Approvals come from an operator's own "
                           "shell");
    }
  }
  if (method.rfind("approvals.", 0) == 0) return Approvals(method, params, actor);
  const bool node_method = method == "pair.new" || method.rfind("nodes.", 0) == 0;
  if (node_method && runtime_.pairing() == nullptr) {
    return MakeError(ErrorCode::kUnavailable, "this is an embedded gateway inside `labgate mcp`, which does not serve "
                                              "nodes; start `labgate gateway" + runtime_.config_hint() + "` for " + method);
  }
  if (method == "pair.new") return PairNew(params, actor);
  if (method == "nodes.list") return NodesList();
  if (method == "nodes.pending") return NodesPending();
  if (method == "nodes.approve" || method == "nodes.reject") return Decide(method, params, actor);
  if (method == "nodes.revoke") return Revoke(params, actor);
  if (method == "nodes.rotate") return Rotate(params, actor);
  if (method == "run") return RunCommand(params, actor);
  if (method == "capture") return CaptureCommand(params, actor);
  if (method == "file") return FileCommand(params, actor);
  if (method == "checks.list" || method == "checks.run") {
    CheckScheduler* checks = runtime_.checks();
    if (checks == nullptr) {
      return MakeError(ErrorCode::kUnavailable, "routine checks run in the gateway daemon, not in `labgate mcp`; start "
                                                "`labgate gateway" + runtime_.config_hint() + "` for " + method);
    }
    if (method == "checks.list") return Json{{"checks", checks->List()}};
    auto ran = checks->RunNow(Text(params, "name"), Text(params, "target"));
    if (!ran) return ran.error();
    Json results = Json::array();
    for (const auto& r : *ran) results.push_back(CheckRunResultJson(r));
    return Json{{"results", results}};
  }
  if (method == "targets") {
    auto views = runtime_.gateway().Targets(params.value("selectors", std::vector<std::string>{}));
    if (!views) return views.error();
    return Json{{"targets", TargetsJson(*views)}};
  }
  if (method == "doctor") {
    // The checklist with the daemon's pairing store and live node links; its probes are audited
    // as the doctor acting for this peer.
    DoctorOptions options;
    options.capture_target = Text(params, "capture");
    options.hosts_only = params.value("hostsOnly", false);
    options.config_hint = Text(params, "configHint");
    audit::Actor doctor = actor;
    doctor.via = "doctor";
    return DoctorReportJson(RunDoctor(runtime_, doctor, options));
  }
  if (method == "gateway.status") {
    if (runtime_.agents() == nullptr) {
      return Json{{"version", LABGATE_VERSION}, {"pid", ::getpid()}, {"embedded", true},
                  {"config", runtime_.inventory()->source}};
    }
    return Json{{"version", LABGATE_VERSION},
                {"pid", ::getpid()},
                {"listen", runtime_.agents()->address()},
                {"fingerprint", runtime_.agents()->fingerprint()},
                {"nodesOnline", runtime_.agents()->online_count()},
                {"config", runtime_.inventory()->source}};
  }
  return MakeError(ErrorCode::kInvalidArgument, "the gateway has no operator method " + method);
}

core::Result<Json> OperatorService::PairNew(const Json& params, const audit::Actor& actor) {
  const std::string id = Text(params, "nodeId");
  const auto snapshot = runtime_.inventory();  // holds *node
  const inventory::Target* node = snapshot->Find(id);
  if (node == nullptr || node->kind != inventory::TargetKind::kNode) {
    return MakeError(ErrorCode::kInvalidArgument,
                     (node ? id + " is not a node in " : "no [[nodes]] entry has id = \"" + id + "\" in ") +
                         snapshot->source + "; add one (id, device, owner, purpose, capabilities), then "
                         "restart the gateway, and pair again");
  }
  auto caps = Capabilities(params, *node);
  if (!caps) return caps.error();
  const std::int64_t ttl_ms = params.value("ttlMs", std::int64_t{600000});
  if (ttl_ms < 1000 || ttl_ms > 7LL * 24 * 3600 * 1000) {
    return MakeError(ErrorCode::kInvalidArgument, "--ttl must be between 1s and 7 days");
  }
  auto secret = runtime_.pairing()->IssueCode(id, *caps, std::chrono::milliseconds(ttl_ms));
  if (!secret) return secret.error();
  nodes::PairingCode code{runtime_.agents()->address(), runtime_.agents()->fingerprint(), id, *secret};
  const auto expires = std::chrono::system_clock::now() + std::chrono::milliseconds(ttl_ms);
  if (auto ok = Record("pairing.code_issued", actor, id,
                       {{"capabilities", *caps}, {"expiresAt", nodes::FormatTime(expires)}});
      !ok) {
    return ok.error();
  }
  return Json{{"code", nodes::EncodePairingCode(code)},
              {"nodeId", id},
              {"capabilities", *caps},
              {"expiresAt", nodes::FormatTime(expires)},
              {"gateway", code.address},
              {"fingerprint", code.fingerprint}};
}

core::Result<Json> OperatorService::NodesList() {
  const auto snapshot = runtime_.inventory();  // holds the targets found below
  const std::int64_t max_age_days = snapshot->gateway.key_max_age_days;
  const auto now = std::chrono::system_clock::now();
  Json rows = Json::array();
  auto records = runtime_.pairing()->Nodes();
  const auto links = runtime_.agents()->Links();
  for (const auto& r : records) {
    const auto found = links.find(r.id);
    const nodes::NodeLink* link = found != links.end() ? &found->second : nullptr;
    const inventory::Target* target = snapshot->Find(r.id);
    rows.push_back({{"id", r.id},
                    {"online", link != nullptr},
                    {"peer", link ? Json(link->peer) : Json(nullptr)},
                    {"lastSeen", r.last_seen ? Json(nodes::FormatTime(*r.last_seen)) : Json(nullptr)},
                    {"fingerprint", r.key.fingerprint},
                    {"capabilities", r.capabilities},
                    {"pairedAt", nodes::FormatTime(r.paired_at)},
                    {"rotatedAt", r.rotated_at ? Json(nodes::FormatTime(*r.rotated_at)) : Json(nullptr)},
                    {"revokedAt", r.revoked_at ? Json(nodes::FormatTime(*r.revoked_at)) : Json(nullptr)},
                    {"stale", r.KeyStale(now, max_age_days)},
                    {"inInventory", target != nullptr && target->kind == inventory::TargetKind::kNode},
                    {"device", {{"platform", r.device.platform}, {"hostname", r.device.hostname},
                                {"version", r.device.version}}}});
  }
  // Addresses refused for failed logins: a device there cannot connect or re-pair until then.
  Json locked = Json::array();
  for (const auto& l : runtime_.agents()->LockedOut()) {
    locked.push_back({{"address", l.address}, {"failures", l.failures}, {"until", core::FormatTimestamp(l.until)}});
  }
  return Json{{"nodes", rows},
              {"gateway", {{"listen", runtime_.agents()->address()}, {"fingerprint", runtime_.agents()->fingerprint()}}},
              {"keyMaxAgeDays", max_age_days},
              {"lockedOut", locked}};
}

core::Result<Json> OperatorService::NodesPending() {
  Json rows = Json::array();
  for (const auto& p : runtime_.pairing()->Pending()) {
    rows.push_back({{"id", p.id},
                    {"fingerprint", p.key.fingerprint},
                    {"capabilities", p.capabilities},
                    {"requestedAt", nodes::FormatTime(p.requested_at)},
                    {"device", {{"platform", p.device.platform}, {"hostname", p.device.hostname},
                                {"version", p.device.version}}}});
  }
  return Json{{"pending", rows}};
}

core::Result<Json> OperatorService::Decide(const std::string& method, const Json& params, const audit::Actor& actor) {
  const std::string id = Text(params, "nodeId");
  if (method == "nodes.reject") {
    auto rejected = runtime_.pairing()->Reject(id);
    if (!rejected) return rejected.error();
    (void)Record("node.rejected", actor, id, {{"fingerprint", rejected->key.fingerprint}});
    runtime_.agents()->PairingDecided(id);
    return Json{{"nodeId", id}, {"fingerprint", rejected->key.fingerprint}};
  }
  const auto snapshot = runtime_.inventory();  // holds *node
  const inventory::Target* node = snapshot->Find(id);
  if (node == nullptr || node->kind != inventory::TargetKind::kNode) {
    return MakeError(ErrorCode::kInvalidArgument, "no [[nodes]] entry has id = \"" + id + "\" in " +
                                                      snapshot->source + "; add it before approving");
  }
  std::optional<std::vector<std::string>> caps;
  if (params.contains("capabilities") && !params["capabilities"].is_null()) {
    auto narrowed = Capabilities(params, *node);
    if (!narrowed) return narrowed.error();
    caps = *narrowed;
  } else if (auto pending = runtime_.pairing()->FindPending(id); pending && pending->capabilities.empty()) {
    // A device that asked for nothing (`node pair --gateway ... --node ID` without --caps)
    // leaves its capabilities to the operator: what its [[nodes]] entry lists.
    caps = node->capabilities;
  }
  auto approved = runtime_.pairing()->Approve(id, caps);
  if (!approved) return approved.error();
  (void)Record("node.approved", actor, id,
               {{"fingerprint", approved->key.fingerprint}, {"capabilities", approved->capabilities}});
  runtime_.agents()->PairingDecided(id);
  return Json{{"nodeId", id}, {"fingerprint", approved->key.fingerprint}, {"capabilities", approved->capabilities}};
}

core::Result<Json> OperatorService::Revoke(const Json& params, const audit::Actor& actor) {
  const std::string id = Text(params, "nodeId");
  auto revoked = runtime_.pairing()->Revoke(id);
  if (!revoked) return revoked.error();
  runtime_.agents()->Disconnect(id, "the operator revoked this node's key");
  (void)Record("node.revoked", actor, id, {{"fingerprint", revoked->key.fingerprint}});
  return Json{{"nodeId", id}, {"fingerprint", revoked->key.fingerprint},
              {"revokedAt", nodes::FormatTime(*revoked->revoked_at)}};
}

core::Result<Json> OperatorService::Rotate(const Json& params, const audit::Actor& actor) {
  const std::string id = Text(params, "nodeId");
  auto record = runtime_.pairing()->Find(id);
  if (!record || record->revoked()) return MakeError(ErrorCode::kNotFound, "node " + id + " is not paired");
  if (!runtime_.agents()->Link(id)) {
    return MakeError(ErrorCode::kUnavailable, "node " + id + " is offline; rotation happens over its live, "
                                              "authenticated channel. Start `labgate node run` on the device and retry");
  }
  core::CancelToken never;
  const auto deadline = [] { return std::chrono::steady_clock::now() + std::chrono::seconds(15); };
  auto made = runtime_.agents()->Call(id, "key.rotate", Json::object(), deadline(), never);
  if (!made) return MakeError(made.error().code, "node " + id + " could not make a new key: " + made.error().message);
  nodes::PublicKey key{made->value("type", ""), made->value("base64", ""), made->value("fingerprint", "")};
  if (auto valid = nodes::ImportPublicKey(key); !valid) {
    return MakeError(ErrorCode::kRefused, "node " + id + " offered an unusable key: " + valid.error().message);
  }
  auto rotated = runtime_.pairing()->Rotate(id, key);
  if (!rotated) return rotated.error();
  (void)Record("node.rotated", actor, id, {{"oldFingerprint", record->key.fingerprint}, {"newFingerprint", key.fingerprint}});
  Json answer = {{"nodeId", id}, {"oldFingerprint", record->key.fingerprint}, {"newFingerprint", key.fingerprint},
                 {"rotatedAt", nodes::FormatTime(*rotated->rotated_at)}};
  if (auto committed = runtime_.agents()->Call(id, "key.commit", {{"fingerprint", key.fingerprint}}, deadline(), never);
      !committed) {
    // The gateway already holds the new key; the node finishes the switch when it reconnects.
    answer["warning"] = "the node did not confirm the switch (" + committed.error().message +
                        "); it will use the new key when it reconnects";
  }
  return answer;
}

core::Result<Json> OperatorService::CaptureCommand(const Json& params, const audit::Actor& actor) {
  CaptureCall call;
  call.selector = params.at("selector").get<std::string>();
  auto request = capabilities::DecodeCaptureRequest(params.at("request"));
  if (!request) return request.error();
  call.request = *request;
  if (params.contains("maxAgeMs")) call.max_age_ms = params.at("maxAgeMs").get<std::int64_t>();
  core::CancelToken never;
  CaptureReport report = runtime_.gateway().Capture(actor, call, never);
  Json answer = {{"report", CaptureReportJson(report)}, {"text", CaptureReportText(report)}};
  if (report.result && !report.result->data.empty()) answer["data"] = core::Base64Encode(report.result->data);
  return answer;
}

core::Result<Json> OperatorService::FileCommand(const Json& params, const audit::Actor& actor) {
  auto call = DecodeFileCall(params.at("call"));
  if (!call) return call.error();
  core::CancelToken never;
  FileReport report = runtime_.gateway().File(actor, *call, never);
  Json answer = {{"report", FileReportJson(report)}, {"text", FileReportText(report)}};
  if (report.data) answer["data"] = core::Base64Encode(report.data->bytes);
  if (report.artifact && runtime_.gateway().artifacts()) {
    if (auto art = runtime_.gateway().artifacts()->Read(report.artifact->id)) answer["data"] = core::Base64Encode(art->second);
  }
  return answer;
}

core::Result<Json> OperatorService::RunCommand(const Json& params, const audit::Actor& actor) {
  RunCall call;
  call.selectors = params.at("selectors").get<std::vector<std::string>>();
  if (params.contains("shell")) {
    call.command.shell = params.at("shell").get<std::string>();
  } else {
    call.command.argv = params.at("argv").get<std::vector<std::string>>();
  }
  if (params.contains("timeoutMs")) call.timeout_ms = params.at("timeoutMs").get<std::int64_t>();
  call.cwd = params.value("cwd", "");
  call.dry_run = params.value("dryRun", false);
  call.sudo = params.value("sudo", false);
  if (params.contains("env")) {
    for (const auto& [k, v] : params["env"].items()) call.env.emplace_back(k, v.get<std::string>());
  }
  core::CancelToken never;
  return RunReportJson(runtime_.gateway().Run(actor, call, never));
}

namespace {

Json RequestJson(const ApprovalRequest& r) {
  return Json{{"id", r.id},           {"status", r.status},     {"createdAt", r.created_at}, {"expiresAt", r.expires_at},
              {"targets", r.binding.value("targets", Json::array())},
              {"command", r.binding.value("command", Json::object())},
              {"cwd", r.binding.value("cwd", "")},
              {"env", r.binding.value("env", Json::object())},
              {"risk", r.risk},       {"rule", r.rule},         {"reason", r.reason},
              {"requestedBy", r.requested_by}, {"decidedBy", r.decided_by}, {"decidedAt", r.decided_at},
              {"usedAt", r.used_at}};
}

Json GrantJson(const GrantRecord& g) {
  return Json{{"id", g.id},           {"target", g.target},         {"pattern", g.pattern},
              {"createdBy", g.created_by}, {"createdAt", g.created_at}, {"expiresAt", g.expires_at},
              {"revokedAt", g.revoked_at}};
}

}  // namespace

core::Result<Json> OperatorService::Approvals(const std::string& method, const Json& params, const audit::Actor& actor) {
  ApprovalStore& store = runtime_.approvals();
  const std::string who = actor.os_user + " (operator socket, " + actor.session_id + ")";
  if (method == "approvals.list") {
    auto list = store.List(params.value("all", false));
    if (!list) return list.error();
    Json out = Json::array();
    for (const auto& r : *list) out.push_back(RequestJson(r));
    return Json{{"requests", out}};
  }
  if (method == "approvals.approve" || method == "approvals.deny") {
    const bool approve = method == "approvals.approve";
    auto decided = store.Decide(Text(params, "id"), approve, who);
    if (!decided) return decided.error();
    Json details = RequestJson(*decided);
    (void)Record(approve ? "approval.approved" : "approval.denied", actor, "", details);
    return details;
  }
  if (method == "approvals.grant") {
    const std::string pattern = Text(params, "pattern");
    if (pattern.find_first_not_of(" *") == std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument, "--pattern must name a command (a grant for everything is `mode = \"full\"`)");
    }
    const std::int64_t seconds = params.value("seconds", std::int64_t{3600});
    if (seconds < 1 || seconds > 30LL * 24 * 3600) return MakeError(ErrorCode::kInvalidArgument, "--for must be between 1s and 30 days");
    const auto snapshot = runtime_.inventory();  // holds the targets resolved
    auto targets = inventory::Resolve(*snapshot, {Text(params, "target")});
    if (!targets) return targets.error();
    Json out = Json::array();
    for (const auto* t : *targets) {
      auto grant = store.AddGrant(t->id, pattern, std::chrono::seconds(seconds), who);
      if (!grant) return grant.error();
      Json g = GrantJson(*grant);
      (void)Record("grant.created", actor, t->id, g);
      out.push_back(g);
    }
    return Json{{"grants", out}};
  }
  if (method == "approvals.grants") {
    auto grants = store.ActiveGrants();
    if (!grants) return grants.error();
    Json out = Json::array();
    for (const auto& g : *grants) out.push_back(GrantJson(g));
    return Json{{"grants", out}};
  }
  if (method == "approvals.revoke") {
    auto revoked = store.RevokeGrant(Text(params, "id"), who);
    if (!revoked) return revoked.error();
    Json g = GrantJson(*revoked);
    (void)Record("grant.revoked", actor, revoked->target, g);
    return g;
  }
  return MakeError(ErrorCode::kInvalidArgument, "the gateway has no operator method " + method);
}

std::optional<std::string> LabgateAncestor(pid_t pid) {
  // Walk the parent chain: a labgate mcp/gateway/node process above the caller means the caller
  // may be a command labgate ran for an AI. A process counts as labgate when its executable is
  // this very binary (argv[0] is the caller's to choose; the caller itself, labgate's CLI, is
  // exempt) or its command line says so. The check
  // fails closed: a caller whose process cannot be read (it exited right after connecting, or
  // /proc hides it) is treated as labgate's. (A process that daemonised away from its parent
  // escapes this walk; the operator key, the sandbox and a separate command account cover that.)
  struct stat self {};
  const bool know_self = ::stat("/proc/self/exe", &self) == 0;
  for (int steps = 0; pid > 1 && steps < 64; ++steps) {
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream stat_file(dir + "/stat");
    std::string line;
    if (!stat_file || !std::getline(stat_file, line)) {
      return "an unknown process (pid " + std::to_string(pid) + " could not be read in /proc; it may have exited)";
    }
    // The caller itself is labgate's CLI; above it, this binary means a labgate process.
    struct stat exe {};
    if (steps > 0 && know_self && ::stat((dir + "/exe").c_str(), &exe) == 0 && exe.st_dev == self.st_dev &&
        exe.st_ino == self.st_ino) {
      return "labgate (pid " + std::to_string(pid) + ")";
    }
    std::string cmdline;
    {
      std::ifstream in(dir + "/cmdline", std::ios::binary);
      cmdline.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::vector<std::string> argv;
    for (std::size_t start = 0; start < cmdline.size();) {
      std::size_t end = cmdline.find('\0', start);
      if (end == std::string::npos) end = cmdline.size();
      argv.push_back(cmdline.substr(start, end - start));
      start = end + 1;
    }
    if (argv.size() >= 2 && std::filesystem::path(argv[0]).filename() == "labgate" &&
        (argv[1] == "mcp" || argv[1] == "gateway" || argv[1] == "node")) {
      return argv[0] + " " + argv[1];
    }
    const auto close = line.rfind(')');
    if (close == std::string::npos) return "an unreadable process (pid " + std::to_string(pid) + ")";
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    if (parent == pid) return std::nullopt;
    pid = parent;
  }
  return std::nullopt;
}

}  // namespace labgate::gateway
