#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>
#include <string_view>
#include <thread>

#include "audit/audit_files.h"
#include "core/result.h"

namespace labgate::audit {

/// A record's line, with where it ends the chain when its composer knows that (seq 0: read
/// it from the line). PATH.head is written from it on every append.
struct ComposedLine {
  std::string line;
  AuditHead head;
};

/// Builds the next line from the last complete line of the log ("" when the log is empty).
using ComposeLine = std::function<core::Result<ComposedLine>(std::string_view last_line)>;

/// How soon an appended record must be on disk.
enum class Durability {
  kSynced,  // on disk when AfterAppend returns (intents: nothing runs before its record is durable)
  kSoon,    // written when Append returns, on disk within a bounded delay (results)
};

/// Builds a record saying that `dropped` (the bytes of a record cut off by a crash or a full
/// disk) was taken off the end of the log, chained after `last_line`.
using ComposeGap = std::function<core::Result<std::string>(std::string_view last_line, std::string_view dropped)>;

/// Where audit lines go. Appends are serialised across threads and processes.
class AuditStorage {
 public:
  virtual ~AuditStorage() = default;
  /// How to record a cut-off tail before going on (storages that can find one use it).
  virtual void SetGapComposer(ComposeGap) {}
  /// Under an exclusive lock: reads the last line, asks `compose` for the next and appends it
  /// with a newline. Nothing is written when `compose` fails. A kSynced record is durable once
  /// AfterAppend, on the same thread, returned success.
  virtual core::Status Append(const ComposeLine& compose, Durability durability) = 0;
  /// Called by AuditLog after each Append, on the same thread, once its own lock is released:
  /// where a storage waits for what must not hold up other writers (FileAuditStorage's fsync of
  /// a kSynced record, shared by every record written meanwhile; ForwardingAuditStorage's
  /// copies). An error means the kSynced record may not be on disk: its action must not run.
  virtual core::Status AfterAppend() { return core::Ok(); }
  /// Human-readable location, for messages.
  virtual std::string Describe() const = 0;
};

/// An append-only JSONL file, mode 0600 in a 0700 directory, shared by every labgate process on
/// the machine. Each append holds an exclusive flock(2) on PATH.lock (not on the log itself, so
/// rotation never moves the lock), re-checks that its descriptor is still the file at PATH, and
/// after writing the line rewrites PATH.head (see audit_files.h) with that record's seq and hash.
/// When PATH would grow past `max_bytes`, it is renamed to PATH.<n> and the chain continues in a
/// fresh PATH; nothing is ever deleted. kSoon records are fsynced by a background thread within
/// kSoonDelay (or by the next kSynced append, whichever comes first). A kSynced append waits in
/// AfterAppend for an fsync that started after its record was written; threads appending at the
/// same time share one (group commit), and none holds the lock while it waits. Thread-safe.
class FileAuditStorage final : public AuditStorage {
 public:
  static constexpr std::chrono::milliseconds kSoonDelay{50};
  static constexpr std::uint64_t kDefaultMaxBytes = 64ULL * 1024 * 1024;

  /// `max_bytes` is not clamped here (tests rotate tiny files); the inventory enforces >= 4096.
  explicit FileAuditStorage(std::string path, std::uint64_t max_bytes = kDefaultMaxBytes);
  ~FileAuditStorage() override;  // syncs anything still pending
  core::Status Append(const ComposeLine& compose, Durability durability) override;
  core::Status AfterAppend() override;
  std::string Describe() const override { return path_; }
  /// fsyncs of the log so far, and how many of the records this object appended are known to be
  /// on disk (tests count them).
  std::uint64_t syncs() const;
  std::uint64_t durable_records() const;
  void SetGapComposer(ComposeGap compose) override;

 private:
  // All of these run with mutex_ held; the *Locked ones also with the flock on PATH.lock.
  core::Status OpenLockFile();
  core::Status OpenLogLocked();   // (re)opens PATH when missing or replaced
  core::Status OpenHeadLocked();  // (re)opens PATH.head when missing or replaced
  core::Status LoadLastLineLocked(off_t size);
  core::Status RotateLocked();
  core::Status WriteHeadLocked(const AuditHead& head);
  void CloseLog();
  void FlushLoop();
  // After an fsync of the log that began when `written` records were written: on success they
  // are durable; on failure the ones not yet durable never will be (a later fsync may succeed
  // without them).
  void NoteSyncLocked(std::uint64_t written, bool ok, const std::string& why);
  // fsyncs fd_ under the lock and notes it for everything written so far; false on failure
  // (sync_error_ says why).
  bool SyncLogLocked();

  std::string path_;
  std::uint64_t max_bytes_;
  mutable std::mutex mutex_;
  std::condition_variable flush_cv_;
  std::condition_variable synced_cv_;
  std::uint64_t written_ = 0;  // records this object appended
  std::uint64_t durable_ = 0;  // of those, the first durable_ are known to be on disk
  std::vector<std::pair<std::uint64_t, std::uint64_t>> failed_;  // (after, through]: their fsync failed
  std::string sync_error_;
  bool syncing_ = false;  // a thread is in AfterAppend's fsync, without the lock
  std::uint64_t syncs_ = 0;
  int lock_fd_ = -1;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t inode_ = 0;
  int head_fd_ = -1;
  dev_t head_dev_ = 0;
  ino_t head_inode_ = 0;
  off_t known_size_ = -1;  // file size after our last append: the cached last line is valid
  std::string last_line_;
  ComposeGap compose_gap_;
  std::string cut_tail_;     // an incomplete last record taken off the end, to be recorded next
  bool dirty_ = false;       // log written but not yet fsynced
  bool head_dirty_ = false;  // head written but not yet fsynced
  bool stopping_ = false;
  std::thread flusher_;
};

}  // namespace labgate::audit
