#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "capabilities/file_ops.h"
#include "core/cancel.h"
#include "core/result.h"
#include "ssh/host_spec.h"

namespace labgate::ssh {

class SftpFiles;

/// Renames `from` over `to` on the host, replacing `to` atomically (rename(2)). libssh 0.10's
/// sftp_rename sends a plain SSH_FXP_RENAME, which OpenSSH refuses when `to` exists, and has no
/// way to send posix-rename@openssh.com; the executor supplies one that runs `mv -f` on the
/// host's command channel.
using RenameOver = std::function<core::Status(const std::string& from, const std::string& to)>;

/// SFTP sessions per host, each on its own blocking libssh session (libssh 0.10's SFTP calls
/// wait inside libssh, and the command pool's I/O thread must never wait). A session serves one
/// file call at a time; an idle one is kept for the next call to the same host. Thread-safe.
class SftpPool {
 public:
  explicit SftpPool(std::chrono::milliseconds idle_timeout = std::chrono::minutes(5));
  ~SftpPool();

  /// File access to the host until the accessor is destroyed. Every wait inside it ends by
  /// `deadline`, or as soon as `cancel` fires (the session is then dropped, not reused).
  core::Result<std::unique_ptr<capabilities::FileAccessor>> Take(const HostSpec& spec,
                                                                 std::chrono::steady_clock::time_point deadline,
                                                                 const core::CancelToken& cancel,
                                                                 RenameOver rename_over);
  void Clear();

 private:
  friend class SftpLease;
  void Give(const std::string& id, std::unique_ptr<SftpFiles> files);

  struct Idle {
    std::unique_ptr<SftpFiles> files;
    std::chrono::steady_clock::time_point since;
  };
  std::chrono::milliseconds idle_timeout_;
  std::mutex mutex_;
  std::map<std::string, std::vector<Idle>> idle_;
};

}  // namespace labgate::ssh
