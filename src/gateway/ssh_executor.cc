#include "gateway/ssh_executor.h"

#include "capabilities/run_as_root.h"

#include "core/base64.h"
#include "core/hashing.h"
#include "core/os_user.h"
#include "core/text.h"

namespace labgate::gateway {
namespace {

// Collects a command's stdout whole (reserved up front; the connection hashes every byte);
// stderr up to a few KiB for the message.
class WholeOutput final : public core::OutputListener {
 public:
  explicit WholeOutput(std::uint64_t expected) { bytes_.reserve(static_cast<std::size_t>(expected)); }
  void OnOutput(core::StreamId stream, std::string_view bytes) override {
    if (stream == core::StreamId::kStderr) {
      if (err_.size() < 4096) err_.append(bytes.substr(0, 4096 - err_.size()));
      return;
    }
    if (bytes_.size() + bytes.size() > bytes_.capacity()) {  // more than the file held: it grew
      grew_ = true;
      return;
    }
    bytes_.append(bytes);
  }
  std::string& bytes() { return bytes_; }
  const std::string& err() const { return err_; }
  bool grew() const { return grew_; }

 private:
  std::string bytes_;
  std::string err_;
  bool grew_ = false;
};

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

core::Result<std::string> SudoPasswordOf(const inventory::Target& target) {
  auto password = ssh::ResolveSecret(target.sudo_password_env, target.sudo_password_file, "sudo password for " + target.id);
  if (!password) return password.error();
  if (password->empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           target.id + " has no sudo password: set sudo_password_env or sudo_password_file for it in "
                                       "hosts.toml (the password is given to sudo on stdin, never in argv)");
  }
  return password;
}

core::Result<ssh::HostSpec> HostSpecFor(const inventory::Inventory& inventory, const inventory::Target& target) {
  return SpecFor(inventory, target, 0);
}

core::Result<core::ProcessOutcome> SshExecutor::Run(const inventory::Target& target,
                                                    const capabilities::RunRequest& request,
                                                    const core::CancelToken& cancel) {
  if (auto ok = capabilities::ValidateCommand(request.command); !ok) return ok.error();
  auto spec = HostSpecFor(*inventory_.Current(), target);
  if (!spec) return spec.error();
  ssh::ExecRequest exec;
  exec.argv = request.command.argv;
  exec.shell = request.command.shell;
  exec.cwd = request.cwd;
  exec.env = request.env;
  exec.timeout = request.timeout;
  exec.output_cap = request.output_cap;
  if (request.sudo) {
    auto password = SudoPasswordOf(target);
    if (!password) return password.error();
    exec.sudo_password = *password;
  }
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
  auto spec = HostSpecFor(*inventory_.Current(), target);
  if (!spec) return spec.error();
  // What libssh 0.10's SFTP does slowly or not at all runs on the command channel: argv
  // commands, quoted by the one quoting function like every remote command, each within what is
  // left of the call's deadline.
  ssh::HostSpec host = *spec;
  auto exec = [this, host, deadline, &cancel](std::vector<std::string> argv, std::shared_ptr<const std::string> input,
                                              core::OutputListener* listener = nullptr) -> core::Result<core::ProcessOutcome> {
    ssh::ExecRequest request;
    request.argv = std::move(argv);
    request.stdin_data = std::move(input);
    request.listener = listener;
    request.timeout = std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                 deadline - std::chrono::steady_clock::now()));
    auto outcome = pool_.Exec(host, request, cancel);
    if (!outcome) return outcome.error();
    if (outcome->timed_out) return core::MakeError(core::ErrorCode::kTimeout, "the deadline passed");
    if (outcome->cancelled) return core::MakeError(core::ErrorCode::kCancelled, "cancelled");
    return outcome;
  };
  ssh::HostFileCommands commands;
  commands.rename_over = [exec](const std::string& from, const std::string& to) -> core::Status {
    auto outcome = exec({"mv", "-f", from, to}, nullptr);
    if (!outcome) return outcome.error();
    if (outcome->exit_code != 0) {
      return core::MakeError(core::ErrorCode::kIo, "mv on the host failed: " + core::Clip(outcome->err.text, 300));
    }
    return core::Ok();
  };
  commands.write_into = [exec](const std::string& path, std::shared_ptr<const std::string> content) -> core::Status {
    // The path is an argument ($1), never part of the script text.
    auto outcome = exec({"/bin/sh", "-c", "exec cat > \"$1\"", "sh", path}, std::move(content));
    if (!outcome) return outcome.error();
    if (outcome->exit_code != 0) {
      return core::MakeError(core::ErrorCode::kIo, "writing on the host failed: " + core::Clip(outcome->err.text, 300));
    }
    return core::Ok();
  };
  commands.sha256 = [exec](const std::string& path) -> core::Result<std::optional<std::string>> {
    // openssl hashes several times faster than coreutils; either prints the hex digest first.
    auto outcome = exec({"/bin/sh", "-c",
                         "command -v openssl >/dev/null 2>&1 && exec openssl dgst -sha256 -r \"$1\"; exec sha256sum \"$1\"",
                         "sh", path},
                        nullptr);
    if (!outcome) return outcome.error();
    const std::string& out = outcome->out.text;
    if (outcome->exit_code != 0 || out.size() < 64 || out.find_first_not_of("0123456789abcdef") < 64) {
      return std::optional<std::string>();  // no sha256sum there: read the file instead
    }
    return std::optional<std::string>(out.substr(0, 64));
  };
  commands.read_whole = [exec, id = target.id](const std::string& path,
                                              std::uint64_t size) -> core::Result<capabilities::FileData> {
    WholeOutput output(size);
    auto outcome = exec({"cat", path}, nullptr, &output);
    if (!outcome) return outcome.error();
    if (outcome->exit_code != 0) {
      return core::MakeError(core::ErrorCode::kIo, "reading " + path + " on " + id + " failed: " + core::Clip(output.err(), 300));
    }
    if (output.grew() || output.bytes().size() != size) {
      return core::MakeError(core::ErrorCode::kIo, path + " on " + id + " changed while it was being read; read it again");
    }
    capabilities::FileData data;
    data.file_size = size;
    data.sha256 = outcome->out.sha256;
    data.bytes = std::move(output.bytes());
    return data;
  };
  commands.write_as_root = [this, host, deadline, &cancel, target](
                              const std::string& path, std::shared_ptr<const std::string> content,
                              const capabilities::WriteOptions& options) -> core::Result<capabilities::WriteOutcome> {
    auto password = SudoPasswordOf(target);
    if (!password) return password.error();
    // stdin: (the password, taken by sudo), a marker line, then the content, so a password sudo
    // did not need never ends up in the file.
    const std::string marker = "labgate-content-" + core::HexEncode(core::RandomBytes(8));
    ssh::ExecRequest request;
    request.argv = capabilities::RootPutArgv(path, options, marker, "");
    auto input = std::make_shared<std::string>();
    input->reserve(marker.size() + 1 + content->size());
    *input += marker + "\n";
    *input += *content;
    request.stdin_data = std::move(input);
    request.sudo_password = *password;
    request.sudo_keeps_stdin = true;
    request.timeout = std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                 deadline - std::chrono::steady_clock::now()));
    auto outcome = pool_.Exec(host, request, cancel);
    if (!outcome) return outcome.error();
    return capabilities::RootPutResult(*outcome, path, target.id,
                                       options.content_sha256.empty() ? core::Sha256Hex(*content) : options.content_sha256,
                                       content->size());
  };
  return sftp_.Take(*spec, deadline, cancel, std::move(commands));
}

}  // namespace labgate::gateway
