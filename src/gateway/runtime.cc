#include "gateway/runtime.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "core/files.h"
#include "core/hashing.h"
#include "core/os_user.h"

namespace labgate::gateway {

StatePaths PathsFor(const inventory::GatewaySettings& settings) {
  const std::string& dir = settings.state_dir;
  return {dir + "/gateway_host_key", dir + "/nodes.json", dir + "/mcp.sock", dir + "/operator.sock"};
}

/// Turns what the node listener sees into audit records.
class Runtime::AuditObserver final : public nodes::AgentObserver {
 public:
  explicit AuditObserver(audit::AuditLog& audit) : audit_(audit) {}
  void OnAgentEvent(const nodes::AgentEvent& e) override {
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
  }

 private:
  audit::AuditLog& audit_;
};

namespace {

// Secrets the inventory names by reference: their values must never reach a caller or the log.
std::vector<std::string> ReferencedSecrets(const inventory::Inventory& inv) {
  std::vector<std::string> values;
  for (const auto& t : inv.targets) {
    for (const std::string* name : {&t.passphrase_env, &t.password_env}) {
      if (name->empty()) continue;
      if (const char* value = std::getenv(name->c_str()); value && *value) values.emplace_back(value);
    }
  }
  return values;
}

}  // namespace

Runtime::Runtime(inventory::Inventory inventory, Mode mode, std::string config_hint)
    : inventory_(std::make_shared<const inventory::Inventory>(std::move(inventory))),
      mode_(mode),
      config_hint_(std::move(config_hint)),
      redactor_(ReferencedSecrets(*inventory_)),
      audit_storage_(inventory_->gateway.audit_log, static_cast<std::uint64_t>(inventory_->gateway.audit_max_bytes)),
      audit_(audit_storage_, clock_),
      local_(runner_),
      ssh_pool_(ssh::PoolSettings{}),
      ssh_(*inventory_, ssh_pool_),
      nodes_(nullptr, nullptr, config_hint_),
      approvals_(inventory_->gateway.state_dir, clock_, std::chrono::seconds(inventory_->gateway.approval_ttl_s)),
      artifacts_(inventory_->gateway.state_dir + "/artifacts",
                 static_cast<std::uint64_t>(inventory_->gateway.artifact_max_bytes),
                 std::chrono::seconds(inventory_->gateway.artifact_max_age_s), clock_),
      gateway_(inventory_, audit_, local_, clock_, &ssh_, &nodes_, &approvals_,
               [this](std::string_view text) { return redactor_.Redact(text); }, &artifacts_) {}

Runtime::~Runtime() {
  if (server_) server_->Stop();
  if (store_) (void)store_->Flush();
}

void Runtime::RecordPolicyLoaded(const std::string& mode_name) {
  const auto& inv = *inventory_;
  audit::Json details = {{"source", inv.source}, {"process", mode_name}, {"pid", ::getpid()}};
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

core::Status Runtime::Start() {
  if (mode_ != Mode::kDaemon) return core::Status();
  const auto& settings = inventory_->gateway;
  if (::mkdir(settings.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return core::MakeError(core::ErrorCode::kIo,
                           "cannot create state_dir " + settings.state_dir + ": " + std::strerror(errno));
  }
  const StatePaths paths = PathsFor(settings);
  auto store = nodes::PairingStore::Open(paths.pairing, clock_);
  if (!store) return store.error();
  store_ = std::move(*store);
  observer_ = std::make_unique<AuditObserver>(audit_);
  nodes::AgentServerSettings agent;
  agent.listen = settings.listen;
  agent.host_key_path = paths.host_key;
  agent.allow_pairing = settings.allow_pairing;
  agent.loops = static_cast<int>(std::max(1u, std::min(4u, std::thread::hardware_concurrency())));
  agent.version = LABGATE_VERSION;
  server_ = std::make_unique<nodes::AgentServer>(*store_, agent, *observer_);
  if (auto ok = server_->Start(); !ok) return ok.error();
  nodes_ = NodeExecutor(store_.get(), server_.get(), config_hint_);
  return core::Status();
}

}  // namespace labgate::gateway
