#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "core/process_runner.h"

namespace labgate::core {

/// What a sandboxed command must not reach: directories it sees as empty (the state directory
/// with its sockets, keys and approvals), and files or directories it may read but not change
/// (hosts.toml, the audit log, the labgate executable).
struct SandboxPolicy {
  std::vector<std::string> hidden;
  std::vector<std::string> read_only;
};

/// The bubblewrap command line that runs `argv` under `policy`: the whole file system as it is,
/// except the hidden and read-only places; as root, without the capabilities that could undo
/// the mounts or reach into the gateway's memory (SYS_ADMIN, SYS_PTRACE, DAC_READ_SEARCH, ...).
std::vector<std::string> BubblewrapArgv(const std::string& bwrap, const SandboxPolicy& policy,
                                        const std::vector<std::string>& argv);

/// A process runner whose commands start inside a bubblewrap sandbox (Debian's `bubblewrap`:
/// mount namespaces, no home-made path filter). The first command, or the first question about
/// the sandbox, checks once that one can be set up here (starting bwrap costs about 35 ms, which
/// a CLI call that only reaches SSH hosts or nodes no longer pays); when it cannot, `active()`
/// is false and commands run unsandboxed, which the gateway answers by failing closed (see
/// Gateway::SetLocalSandbox). Thread-safe as `inner`.
class SandboxedRunner final : public ProcessRunner {
 public:
  SandboxedRunner(ProcessRunner& inner, SandboxPolicy policy, std::string bwrap = "");

  Result<ProcessOutcome> Run(const ProcessSpec& spec, const CancelToken& cancel, OutputListener* listener) override;

  bool active() const {
    Probe();
    return active_;
  }
  /// For doctor and logs: "bubblewrap 0.8.0: hides ..., read-only ..." or why there is none.
  const std::string& description() const {
    Probe();
    return description_;
  }
  const SandboxPolicy& policy() const { return policy_; }

 private:
  void Probe() const;  // once; sets active_ and description_

  ProcessRunner& inner_;
  SandboxPolicy policy_;
  std::string bwrap_;  // as given, or found on PATH; empty when there is none
  mutable std::once_flag probed_;
  mutable bool active_ = false;
  mutable std::string description_;
};

}  // namespace labgate::core
