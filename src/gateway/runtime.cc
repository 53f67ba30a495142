#include "gateway/runtime.h"

#include <sys/prctl.h>

#include <filesystem>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include "audit/forward_sinks.h"
#include "core/files.h"
#include "core/hashing.h"
#include "core/os_user.h"
#include "gateway/operator_key.h"
#include "inventory/diff.h"
#include <spdlog/spdlog.h>

namespace labgate::gateway {

StatePaths PathsFor(const inventory::GatewaySettings& settings) {
  const std::string& dir = settings.state_dir;
  return {dir + "/gateway_host_key", dir + "/nodes.json", dir + "/mcp.sock", dir + "/operator.sock"};
}

/// Turns what the node listener sees into audit records.
class Runtime::AuditObserver final : public nodes::AgentObserver {
 public:
  AuditObserver(audit::AuditLog& audit, CheckScheduler* checks) : audit_(audit), checks_(checks) {}
  void OnAgentEvent(const nodes::AgentEvent& e) override {
    // node-online-after-offline checks: the scheduler keeps when each node went away.
    if (checks_ && e.event == "node.offline") checks_->OnNodeOffline(e.node_id);
    if (checks_ && e.event == "node.online") checks_->OnNodeOnline(e.node_id);
    audit::Event event;
    event.event = e.event;
    event.actor = {"agent", "", "", "", ""};
    event.target = e.node_id;
    event.details = e.data;
    event.details["peer"] = e.peer;
    event.details["fingerprint"] = e.fingerprint;
    event.details["detail"] = e.detail;
    // Pairing changes trust: sync it. Online/offline and refusals may follow shortly.
    const bool trust = e.event.rfind("pairing.", 0) == 0;
    (void)audit_.Append(audit::EncodeEvent(event), trust ? audit::Durability::kSynced : audit::Durability::kSoon);
    // Operators read the log too: pairing, nodes coming and going, keys and refusals.
    const bool refusal = e.event.find("refused") != std::string::npos;
    spdlog::log(refusal ? spdlog::level::warn : spdlog::level::info, "{}{}{}{}", e.event,
                e.node_id.empty() ? "" : " " + e.node_id, e.peer.empty() ? "" : " from " + e.peer,
                e.detail.empty() ? "" : ": " + e.detail);
  }

 private:
  audit::AuditLog& audit_;
  CheckScheduler* checks_;
};

namespace {

// Secrets the inventory names by reference: their values must never reach a caller or the log.
std::vector<std::string> ReferencedSecrets(const inventory::Inventory& inv) {
  std::vector<std::string> values;
  for (const auto& t : inv.targets) {
    for (const std::string* name : {&t.passphrase_env, &t.password_env, &t.sudo_password_env}) {
      if (name->empty()) continue;
      if (const char* value = std::getenv(name->c_str()); value && *value) values.emplace_back(value);
    }
    for (const std::string* file : {&t.password_file, &t.sudo_password_file}) {
      if (file->empty()) continue;
      if (auto value = ssh::ResolveSecret("", *file, "a secret"); value && !value->empty()) values.push_back(*value);
    }
  }
  return values;
}

std::vector<std::unique_ptr<audit::AuditForwarder>> MakeForwarders(const inventory::Inventory& inv) {
  std::vector<std::unique_ptr<audit::AuditForwarder>> out;
  const auto& a = inv.audit;
  if (a.journald) {
    out.push_back(std::make_unique<audit::AuditForwarder>(audit::MakeJournaldSink(a.journald_socket, inv.gateway.audit_log)));
  }
  if (a.syslog) {
    audit::SyslogDestination to;
    to.transport = a.syslog_transport == "udp"   ? audit::SyslogDestination::Transport::kUdp
                   : a.syslog_transport == "tcp" ? audit::SyslogDestination::Transport::kTcp
                                                 : audit::SyslogDestination::Transport::kUnix;
    to.host = a.syslog_host;
    to.port = a.syslog_port;
    to.path = a.syslog_path;
    to.text = a.syslog_address;
    out.push_back(std::make_unique<audit::AuditForwarder>(audit::MakeSyslogSink(std::move(to), a.syslog_facility, inv.gateway.audit_log)));
  }
  return out;
}

std::unique_ptr<audit::ForwardingAuditStorage> MakeForwardingStorage(
    audit::AuditStorage& file, const std::vector<std::unique_ptr<audit::AuditForwarder>>& forwarders) {
  if (forwarders.empty()) return nullptr;
  std::vector<audit::AuditForwarder*> list;
  for (const auto& f : forwarders) list.push_back(f.get());
  return std::make_unique<audit::ForwardingAuditStorage>(file, std::move(list));
}

}  // namespace

Runtime::Runtime(inventory::Inventory inventory, Mode mode, std::string config_hint)
    : Runtime(std::make_shared<const inventory::Inventory>(std::move(inventory)), mode, std::move(config_hint)) {}

Runtime::Runtime(std::shared_ptr<const inventory::Inventory> first, Mode mode, std::string config_hint)
    : inventory_(first),
      mode_(mode),
      config_hint_(std::move(config_hint)),
      redactor_(std::make_shared<const core::Redactor>(ReferencedSecrets(*first))),
      audit_storage_(first->gateway.audit_log, static_cast<std::uint64_t>(first->gateway.audit_max_bytes)),
      forwarders_(MakeForwarders(*first)),
      forwarding_storage_(MakeForwardingStorage(audit_storage_, forwarders_)),
      audit_(forwarding_storage_ ? static_cast<audit::AuditStorage&>(*forwarding_storage_) : audit_storage_, clock_),
      runner_(system_runner_, SandboxPolicyFor(*first)),
      local_(runner_),
      ssh_pool_([mode] {
        ssh::PoolSettings settings;
        settings.channels.spare_channel = mode != Mode::kOneShot;
        return settings;
      }()),
      ssh_(inventory_, ssh_pool_),
      nodes_(nullptr, nullptr, config_hint_),
      approvals_(first->gateway.state_dir, clock_, std::chrono::seconds(first->gateway.approval_ttl_s)),
      artifacts_(first->gateway.state_dir + "/artifacts", static_cast<std::uint64_t>(first->gateway.artifact_max_bytes),
                 std::chrono::seconds(first->gateway.artifact_max_age_s), clock_),
      gateway_(inventory_, audit_, local_, clock_, &ssh_, &nodes_, &approvals_,
               [this](std::string_view text) {
                 std::shared_ptr<const core::Redactor> redactor;
                 {
                   std::lock_guard<std::mutex> lock(redactor_mutex_);
                   redactor = redactor_;
                 }
                 return redactor->Redact(text);
               },
               &artifacts_) {
  gateway_.SetLocalSandbox(&runner_);
  for (const auto& f : forwarders_) {
    // The local log says when the copy elsewhere has holes, and why.
    f->SetTroubleHandler([this, trouble = forward_trouble_](const audit::Json& details) {
      std::lock_guard<std::mutex> lock(trouble->mutex);
      if (!trouble->open) return;
      if (details.value("state", "") == "failing") {
        spdlog::warn("audit copies to {} are not getting through ({}); they wait and are sent again",
                     details.value("destination", ""), details.value("error", ""));
      }
      (void)audit_.Append(audit::EncodeEvent(audit::Event{"audit.forward", {"gateway", "", "", core::CurrentUserName(), ""},
                                                          "", details}),
                          audit::Durability::kSoon);
    });
  }
  // Same-user processes (the sandboxed commands among them) may not ptrace this process or
  // open its /proc/PID/mem; root commands lose CAP_SYS_PTRACE in the sandbox for the same reason.
  // Set whether or not a sandbox can be made here: that is known only once `local` is used.
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

core::SandboxPolicy SandboxPolicyFor(const inventory::Inventory& inv) {
  core::SandboxPolicy policy;
  const auto& settings = inv.gateway;
  policy.hidden.push_back(settings.state_dir);
  // The HTTP bearer token and TLS key, wherever the operator keeps them: a command run for an
  // assistant must not be able to read its way into a session of its own.
  for (const std::string* secret : {&settings.http_token_file, &settings.http_tls_key_file}) {
    if (!secret->empty()) policy.hidden.push_back(*secret);
  }
  if (settings.http_listen.rfind("unix:", 0) == 0) policy.hidden.push_back(settings.http_listen.substr(5));
  const std::string audit_dir = std::filesystem::path(settings.audit_log).parent_path().string();
  if (audit_dir != settings.state_dir) policy.read_only.push_back(audit_dir);
  if (!inv.source.empty() && inv.source[0] == '/') policy.read_only.push_back(inv.source);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) policy.read_only.push_back(exe.string());
  // A system-wide gateway's files, wherever this labgate's own are: commands an operator's own
  // `labgate mcp` runs must not reach the service's operator socket or its policy either.
  for (const char* system_state : {"/var/lib/labgate"}) {
    if (system_state != settings.state_dir) policy.hidden.push_back(system_state);
  }
  policy.read_only.push_back("/etc/labgate");
  const std::string run_user = "/run/user/" + std::to_string(::getuid());
  policy.hidden.push_back(run_user + "/systemd");
  policy.hidden.push_back(run_user + "/bus");
  return policy;
}

Runtime::~Runtime() {
  if (checks_) checks_->Stop();
  if (server_) server_->Stop();
  if (store_) (void)store_->Flush();
  // Send what is queued while audit_ can still record a failure: a short CLI command's last
  // copies (its result) go out here, and a UDP refusal shows only on the send after one.
  for (const auto& f : forwarders_) f->Stop();
  {
    std::lock_guard<std::mutex> lock(forward_trouble_->mutex);
    forward_trouble_->open = false;
  }
}

std::vector<audit::AuditForwarder::Health> Runtime::forwarding() const {
  std::vector<audit::AuditForwarder::Health> out;
  for (const auto& f : forwarders_) out.push_back(f->health());
  return out;
}

void Runtime::RecordPolicyLoaded(const std::string& mode_name, const std::vector<std::string>* changes) {
  const auto snapshot = inventory_.Current();
  const auto& inv = *snapshot;
  audit::Json details = {{"source", inv.source}, {"process", mode_name}, {"pid", ::getpid()}};
  if (changes) details["changes"] = *changes;
  if (auto text = core::ReadFile(inv.source)) details["sha256"] = core::Sha256Hex(*text);
  audit::Json scopes = audit::Json::object();
  auto rules = [](const inventory::CommandRules& r) {
    return audit::Json{{"mode", r.mode}, {"allow", r.allow.size()}, {"deny", r.deny.size()}};
  };
  scopes["policies.run"] = rules(inv.run_rules);
  for (const auto& [name, r] : inv.groups) scopes["groups." + name] = rules(r);
  for (const auto& t : inv.targets) {
    if (!t.rules.mode.empty() || !t.rules.allow.empty() || !t.rules.deny.empty()) scopes["targets." + t.id] = rules(t.rules);
  }
  details["scopes"] = scopes;
  details["classify"] = inv.classify.size();
  details["targets"] = inv.targets.size();
  audit::Event event{"policy.loaded", {"gateway", "", "", core::CurrentUserName(), ""}, "", details};
  (void)audit_.Append(audit::EncodeEvent(event));
}

std::vector<std::string> Runtime::Reload(inventory::Inventory next) {
  std::lock_guard<std::mutex> lock(reload_mutex_);
  const auto before = inventory_.Current();
  const auto& running = before->gateway;
  std::vector<std::string> notes;
  // These are bound to open files, sockets and the listener: changing them needs a restart.
  auto keep = [&](auto& value, const auto& current, const char* key) {
    if (value == current) return;
    std::ostringstream was, now;
    was << current;
    now << value;
    notes.push_back(std::string("gateway.") + key + " changed to " + now.str() + "; still using " + was.str() +
                    " until `labgate gateway` restarts");
    value = current;
  };
  auto& g = next.gateway;
  keep(g.listen, running.listen, "listen");
  keep(g.state_dir, running.state_dir, "state_dir");
  keep(g.audit_log, running.audit_log, "audit_log");
  keep(g.audit_max_bytes, running.audit_max_bytes, "audit_max_bytes");
  keep(g.approval_ttl_s, running.approval_ttl_s, "approval_ttl_s");
  keep(g.artifact_max_bytes, running.artifact_max_bytes, "artifact_max_bytes");
  keep(g.artifact_max_age_s, running.artifact_max_age_s, "artifact_max_age_s");
  if (!(next.audit == before->audit)) {
    notes.push_back("[audit] changed; records are still forwarded as before until `labgate gateway` restarts");
    next.audit = before->audit;
  }
  const std::vector<std::string> changes = inventory::DescribeChanges(*before, next);
  std::vector<std::string> secrets = ReferencedSecrets(next);
  inventory_.Replace(std::make_shared<const inventory::Inventory>(std::move(next)));
  {
    std::lock_guard<std::mutex> redactor_lock(redactor_mutex_);
    if (!operator_key_.empty()) secrets.push_back(operator_key_);
    redactor_ = std::make_shared<const core::Redactor>(std::move(secrets));
  }
  const auto snapshot = inventory_.Current();
  const auto& now = *snapshot;
  if (server_) {
    server_->UpdateSourceRules(now.gateway.allowed_networks, static_cast<int>(now.gateway.auth_fail_limit),
                               std::chrono::seconds(now.gateway.auth_fail_window_s));
  }
  // A policy change made by editing the file is the operator's to notice: say it where they look.
  if (!changes.empty()) {
    // The audit record has every change; the log, the first 40 (widening ones first).
    std::string summary;
    for (std::size_t i = 0; i < changes.size() && i < 40; ++i) summary += "\n  " + changes[i];
    if (changes.size() > 40) summary += "\n  ... and " + std::to_string(changes.size() - 40) + " more in the audit log";
    spdlog::warn("{} changed policy on reload:{}", now.source, summary);
  }
  RecordPolicyLoaded("reload", &changes);
  return notes;
}

bool Runtime::IsOperatorPeer(uid_t uid, const std::vector<gid_t>& groups) const {
  const auto snapshot = inventory_.Current();
  const auto& g = snapshot->gateway;
  if (g.operators.empty()) return false;
  if (!g.command_user.empty()) {
    if (auto account = core::FindAccount(g.command_user); account && account->uid == uid) return false;
  }
  return inventory::IsListedOperator(g.operators, uid, groups);
}

core::Result<std::string> Runtime::AdoptOperatorKey() {
  const auto snapshot = inventory_.Current();
  auto key = EnsureOperatorKey(snapshot->gateway.state_dir);
  if (!key) return key;
  std::vector<std::string> secrets = ReferencedSecrets(*snapshot);
  secrets.push_back(*key);
  std::lock_guard<std::mutex> lock(redactor_mutex_);
  operator_key_ = *key;
  redactor_ = std::make_shared<const core::Redactor>(std::move(secrets));
  return key;
}

core::Status Runtime::Start() {
  if (mode_ != Mode::kDaemon) return core::Status();
  const auto snapshot = inventory_.Current();
  const auto& settings = snapshot->gateway;
  if (!settings.command_user.empty() && core::CurrentUserName() == settings.command_user) {
    return core::MakeError(core::ErrorCode::kRefused,
                           "the gateway runs as " + settings.command_user + ", which gateway.command_user names as "
                           "the account that runs the assistant's commands; run the gateway as its own user "
                           "(packaging/system/ has the units)");
  }
  if (::mkdir(settings.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return core::MakeError(core::ErrorCode::kIo,
                           "cannot create state_dir " + settings.state_dir + ": " + std::strerror(errno));
  }
  // Other operators reach the operator socket by name; nobody but the gateway's user may list
  // the directory, and every file in it is private (0600) on its own.
  ::chmod(settings.state_dir.c_str(), settings.operators.empty() ? 0700 : 0711);
  const StatePaths paths = PathsFor(settings);
  auto store = nodes::PairingStore::Open(paths.pairing, clock_);
  if (!store) return store.error();
  store_ = std::move(*store);
  checks_ = std::make_unique<CheckScheduler>(gateway_, approvals_, audit_, settings.state_dir + "/checks.json", clock_,
                                             runner_);
  if (auto ok = checks_->Load(); !ok) return ok.error();
  observer_ = std::make_unique<AuditObserver>(audit_, checks_.get());
  nodes::AgentServerSettings agent;
  agent.listen = settings.listen;
  agent.host_key_path = paths.host_key;
  agent.allow_pairing = settings.allow_pairing;
  agent.loops = static_cast<int>(std::max(1u, std::min(4u, std::thread::hardware_concurrency())));
  agent.version = LABGATE_VERSION;
  agent.allowed_networks = settings.allowed_networks;
  agent.auth_fail_limit = static_cast<int>(settings.auth_fail_limit);
  agent.auth_fail_window = std::chrono::seconds(settings.auth_fail_window_s);
  agent.listed = [this](const std::string& node_id) {
    const auto in_force = inventory_.Current();  // the inventory of this moment, not Start's
    const inventory::Target* t = in_force->Find(node_id);
    return t != nullptr && t->kind == inventory::TargetKind::kNode;
  };
  server_ = std::make_unique<nodes::AgentServer>(*store_, agent, *observer_);
  if (auto ok = server_->Start(); !ok) return ok.error();
  nodes_ = NodeExecutor(store_.get(), server_.get(), config_hint_);
  checks_->Start();
  return core::Status();
}

}  // namespace labgate::gateway
