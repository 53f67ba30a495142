#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
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

/// What SFTP in libssh 0.10 cannot do well, done on the host's command channel instead (the
/// executor supplies these; each runs one argv command, quoted by the one quoting function):
struct HostFileCommands {
  /// Renames `from` over `to`, replacing `to` atomically (rename(2)). libssh 0.10's sftp_rename
  /// sends a plain SSH_FXP_RENAME, which OpenSSH refuses when `to` exists, and has no way to ask
  /// for posix-rename@openssh.com.
  std::function<core::Status(const std::string& from, const std::string& to)> rename_over;
  /// Streams `content` into the existing file `path` (truncating it). libssh 0.10 has only a
  /// synchronous sftp_write (one request in flight); the command channel streams at the
  /// window's pace.
  std::function<core::Status(const std::string& path, std::shared_ptr<const std::string> content)> write_into;
  /// The SHA-256 (hex) of a file, computed on the host (sha256sum) instead of reading the file
  /// back; nullopt when the host cannot (the caller then reads it over SFTP).
  std::function<core::Result<std::optional<std::string>>(const std::string& path)> sha256;
  /// The whole of a regular file of `size` bytes streamed over the command channel (as scp
  /// does), with its SHA-256; an error when it is not exactly `size` bytes any more.
  std::function<core::Result<capabilities::FileData>(const std::string& path, std::uint64_t size)> read_whole;
  /// The whole put as root, through sudo on the command channel (options.as_root).
  std::function<core::Result<capabilities::WriteOutcome>(const std::string& path, std::shared_ptr<const std::string> content,
                                                         const capabilities::WriteOptions& options)>
      write_as_root;
};

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
                                                                 HostFileCommands commands);
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
