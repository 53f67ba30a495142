#include "gateway/ssh_executor.h"

#include "core/os_user.h"
#include "core/text.h"

namespace labgate::gateway {
namespace {

// Parses "[user@]host[:port]" for a jump host that is not in the inventory.
ssh::HostSpec ParseJumpSpec(const std::string& text, const ssh::HostSpec& base) {
  ssh::HostSpec jump = base;
  jump.jump.reset();
  jump.identity_file.clear();
  jump.passphrase.clear();
  jump.password.clear();
  jump.user.clear();
  jump.port = 0;
  std::string rest = text;
  if (auto at = rest.find('@'); at != std::string::npos) {
    jump.user = rest.substr(0, at);
    rest = rest.substr(at + 1);
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.find(']') == std::string::npos) {
    jump.port = std::atoi(rest.c_str() + colon + 1);
    rest = rest.substr(0, colon);
  }
  jump.address = rest;
  jump.id = "jump " + text;
  jump.accept_new = false;
  return jump;
}

core::Result<ssh::HostSpec> SpecFor(const inventory::Inventory& inv, const inventory::Target& t, int depth) {
  ssh::HostSpec spec;
  spec.id = t.id;
  spec.address = t.address;
  spec.port = t.port;
  spec.user = t.user;
  spec.identity_file = t.identity_file;
  spec.accept_new = t.host_key_policy == "accept-new";
  spec.known_hosts = inv.gateway.state_dir + "/known_hosts";
  spec.user_known_hosts = core::HomeDirectory() + "/.ssh/known_hosts";
  auto passphrase = ssh::ResolveSecret(t.passphrase_env, t.passphrase_file, "passphrase for " + t.id);
  if (!passphrase) return passphrase.error();
  spec.passphrase = *passphrase;
  auto password = ssh::ResolveSecret(t.password_env, t.password_file, "password for " + t.id);
  if (!password) return password.error();
  spec.password = *password;
  if (!t.proxy_jump.empty()) {
    if (depth > 0) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "proxy_jump of " + t.id + " chains through more than one jump host, which labgate does not do");
    }
    if (const inventory::Target* jt = inv.Find(t.proxy_jump); jt && jt->kind == inventory::TargetKind::kHost) {
      auto jump = SpecFor(inv, *jt, depth + 1);
      if (!jump) return jump.error();
      spec.jump = std::make_shared<const ssh::HostSpec>(*jump);
    } else {
      spec.jump = std::make_shared<const ssh::HostSpec>(ParseJumpSpec(t.proxy_jump, spec));
    }
  }
  return spec;
}

}  // namespace

core::Result<ssh::HostSpec> HostSpecFor(const inventory::Inventory& inventory, const inventory::Target& target) {
  return SpecFor(inventory, target, 0);
}

core::Result<core::ProcessOutcome> SshExecutor::Run(const inventory::Target& target,
                                                    const capabilities::RunRequest& request,
                                                    const core::CancelToken& cancel) {
  if (auto ok = capabilities::ValidateCommand(request.command); !ok) return ok.error();
  auto spec = HostSpecFor(*inventory_, target);
  if (!spec) return spec.error();
  ssh::ExecRequest exec;
  exec.argv = request.command.argv;
  exec.shell = request.command.shell;
  exec.cwd = request.cwd;
  exec.env = request.env;
  exec.timeout = request.timeout;
  exec.output_cap = request.output_cap;
  exec.listener = request.listener;
  int retries = 0;
  auto outcome = pool_.Exec(*spec, exec, cancel, &retries);
  if (!outcome) return outcome.error();
  outcome->retries = retries;
  return outcome;
}

core::Result<std::unique_ptr<capabilities::FileAccessor>> SshExecutor::Files(const inventory::Target& target,
                                                                             std::chrono::steady_clock::time_point deadline,
                                                                             const core::CancelToken& cancel) {
  auto spec = HostSpecFor(*inventory_, target);
  if (!spec) return spec.error();
  // Replacing a file is rename(2) on the host: `mv -f` over the command channel (argv, quoted by
  // the one quoting function like every remote command), within what is left of the deadline.
  ssh::HostSpec host = *spec;
  auto rename_over = [this, host, deadline, &cancel](const std::string& from, const std::string& to) -> core::Status {
    ssh::ExecRequest exec;
    exec.argv = {"mv", "-f", from, to};
    exec.timeout = std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                              deadline - std::chrono::steady_clock::now()));
    auto outcome = pool_.Exec(host, exec, cancel);
    if (!outcome) return outcome.error();
    if (outcome->exit_code != 0) {
      return core::MakeError(core::ErrorCode::kIo, "mv on the host failed: " + core::Clip(outcome->err.text, 300));
    }
    return core::Ok();
  };
  return sftp_.Take(*spec, deadline, cancel, rename_over);
}

}  // namespace labgate::gateway
