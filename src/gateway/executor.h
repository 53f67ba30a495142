#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "capabilities/capture.h"
#include "capabilities/file_ops.h"
#include "capabilities/system_run.h"
#include "core/cancel.h"
#include "core/process_runner.h"
#include "core/result.h"
#include "inventory/inventory.h"

namespace labgate::gateway {

/// What the gateway knows about a target without probing it.
struct TargetState {
  std::optional<bool> online;                       // null when unknown without probing
  std::optional<std::string> last_seen;             // nodes: when the link was last up
  std::optional<std::string> key_since;             // nodes: paired, or last rotated
  std::string fingerprint;                          // nodes: the key the gateway accepts
  std::optional<std::vector<std::string>> granted;  // nodes: capabilities the pairing approved
  std::optional<std::string> revoked_at;            // nodes: set once the operator revoked the key
};

/// Carries out a `run` on one kind of target (local today; SSH hosts and nodes plug in here).
class Executor {
 public:
  virtual ~Executor() = default;
  /// The transport name recorded in results and audit: "local", "ssh" or "node".
  virtual const char* via() const = 0;
  /// Fails only when the command could not be started; a started command returns its outcome.
  virtual core::Result<core::ProcessOutcome> Run(const inventory::Target& target,
                                                 const capabilities::RunRequest& request,
                                                 const core::CancelToken& cancel) = 0;
  /// Reachability and key facts for `targets`; the default knows nothing.
  virtual TargetState State(const inventory::Target&) const { return {}; }
  /// A screen, camera or location action. The default runs the target's capture backends
  /// (`target.capture`) through Run, so `local` and SSH hosts run the very same scripts; nodes
  /// override it and let the device use its own backends.
  virtual core::Result<capabilities::CaptureResult> Capture(const inventory::Target& target,
                                                            const capabilities::CaptureRequest& request,
                                                            const core::CancelToken& cancel);
  /// File access on the target for one `file` call, until the accessor is destroyed; every
  /// wait inside it ends by `deadline` or when `cancel` fires. The default: not on this path.
  virtual core::Result<std::unique_ptr<capabilities::FileAccessor>> Files(const inventory::Target& target,
                                                                          std::chrono::steady_clock::time_point deadline,
                                                                          const core::CancelToken& cancel);
};

/// The built-in `local` target: runs in-process with the same code a node agent uses.
class LocalExecutor final : public Executor {
 public:
  explicit LocalExecutor(core::ProcessRunner& runner) : runner_(runner) {}
  const char* via() const override { return "local"; }
  core::Result<core::ProcessOutcome> Run(const inventory::Target&, const capabilities::RunRequest& request,
                                         const core::CancelToken& cancel) override {
    if (request.sudo) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "sudo is for SSH hosts and paired nodes (with sudo_password_env or sudo_password_file); `local` runs as "
                             "the gateway's own user");
    }
    return capabilities::RunOnThisMachine(runner_, request, cancel);
  }
  /// This machine's files, opened by the gateway's own process (not through the sandbox):
  /// policy keeps labgate's own files out of reach, and no path component is followed as a
  /// symlink, so what was decided is what is touched.
  core::Result<std::unique_ptr<capabilities::FileAccessor>> Files(const inventory::Target&,
                                                                  std::chrono::steady_clock::time_point,
                                                                  const core::CancelToken&) override {
    return capabilities::LocalFiles();
  }

 private:
  core::ProcessRunner& runner_;
};

}  // namespace labgate::gateway
