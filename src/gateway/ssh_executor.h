#pragma once

#include <memory>

#include "core/result.h"
#include "gateway/executor.h"
#include "gateway/live_inventory.h"
#include "inventory/inventory.h"
#include "ssh/host_spec.h"
#include "ssh/pool.h"
#include "ssh/sftp.h"

namespace labgate::gateway {

/// Builds the connection parameters of an SSH host from the inventory: secrets read from their
/// *_env / *_file references, known_hosts files, and the jump host named by proxy_jump (another
/// [[hosts]] id, or [user@]host[:port]).
core::Result<ssh::HostSpec> HostSpecFor(const inventory::Inventory& inventory, const inventory::Target& target);

/// A host's or node's sudo password, read from its sudo_password_env / sudo_password_file when a
/// call asks for sudo; an error that says what to set when there is none.
core::Result<std::string> SudoPasswordOf(const inventory::Target& target);

/// `run` on [[hosts]] entries, through the shared SSH connection pool.
class SshExecutor final : public Executor {
 public:
  SshExecutor(const LiveInventory& inventory, ssh::Pool& pool) : inventory_(inventory), pool_(pool) {}
  const char* via() const override { return "ssh"; }
  core::Result<core::ProcessOutcome> Run(const inventory::Target& target, const capabilities::RunRequest& request,
                                         const core::CancelToken& cancel) override;
  /// Over the host's SFTP server, on a session of its own (see ssh::SftpPool).
  core::Result<std::unique_ptr<capabilities::FileAccessor>> Files(const inventory::Target& target,
                                                                  std::chrono::steady_clock::time_point deadline,
                                                                  const core::CancelToken& cancel) override;

 private:
  const LiveInventory& inventory_;
  ssh::Pool& pool_;
  ssh::SftpPool sftp_;
};

}  // namespace labgate::gateway
