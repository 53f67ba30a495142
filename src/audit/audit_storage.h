#pragma once

#include <condition_variable>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <thread>

#include "core/result.h"

namespace labgate::audit {

/// Builds the next line from the last complete line of the log ("" when the log is empty).
using ComposeLine = std::function<core::Result<std::string>(std::string_view last_line)>;

/// How soon an appended record must be on disk.
enum class Durability {
  kSynced,  // on disk when Append returns (intents: nothing runs before its record is durable)
  kSoon,    // written when Append returns, on disk within a bounded delay (results)
};

/// Where audit lines go. Appends are serialised across threads and processes.
class AuditStorage {
 public:
  virtual ~AuditStorage() = default;
  /// Under an exclusive lock: reads the last line, asks `compose` for the next and appends it
  /// with a newline, durable as `durability` says. Nothing is written when `compose` fails.
  virtual core::Status Append(const ComposeLine& compose, Durability durability) = 0;
  /// Human-readable location, for messages.
  virtual std::string Describe() const = 0;
};

/// An append-only JSONL file, mode 0600 in a 0700 directory, locked with flock(2) so several
/// labgate processes on one machine can share it. kSoon records are fsynced by a background
/// thread within kSoonDelay (or by the next kSynced append, whichever comes first). Thread-safe.
class FileAuditStorage final : public AuditStorage {
 public:
  static constexpr std::chrono::milliseconds kSoonDelay{50};

  explicit FileAuditStorage(std::string path);
  ~FileAuditStorage() override;  // syncs anything still pending
  core::Status Append(const ComposeLine& compose, Durability durability) override;
  std::string Describe() const override { return path_; }

 private:
  core::Status OpenLocked();  // (re)opens the file when missing or replaced; mutex_ held
  void FlushLoop();

  std::string path_;
  std::mutex mutex_;
  std::condition_variable flush_cv_;
  int fd_ = -1;
  ino_t inode_ = 0;
  off_t known_size_ = -1;  // file size after our last append: the cached last line is valid
  std::string last_line_;
  bool dirty_ = false;  // written but not yet fsynced
  bool stopping_ = false;
  std::thread flusher_;
};

}  // namespace labgate::audit
