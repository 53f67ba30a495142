#include "audit/audit_storage.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "audit/audit_files.h"
#include "core/json_parse.h"
#include "core/text.h"

namespace labgate::audit {
namespace {

using core::ErrorCode;
using core::MakeError;

core::Status EnsureDirectory(const std::filesystem::path& dir) {
  if (dir.empty()) return core::Ok();
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return core::Ok();
  if (auto parent = dir.parent_path(); parent != dir) {
    if (auto ok = EnsureDirectory(parent); !ok) return ok;
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return MakeError(ErrorCode::kIo, "cannot create directory " + dir.string() + ": " + core::ErrnoText());
  }
  return core::Ok();
}

// The last complete line of the file, read backwards in blocks.
core::Result<std::string> ReadLastLine(int fd, off_t size) {
  std::string tail;
  off_t pos = size;
  constexpr off_t kBlock = 8192;
  while (pos > 0) {
    off_t start = pos > kBlock ? pos - kBlock : 0;
    std::string block(static_cast<std::size_t>(pos - start), '\0');
    ssize_t got = ::pread(fd, block.data(), block.size(), start);
    if (got != static_cast<ssize_t>(block.size())) {
      return MakeError(ErrorCode::kIo, "cannot read the end of the audit log: " + core::ErrnoText());
    }
    tail.insert(0, block);
    pos = start;
    // The file ends with '\n'; the line starts after the previous '\n'.
    std::size_t body_end = tail.size() - 1;
    std::size_t nl = body_end == 0 ? std::string::npos : tail.rfind('\n', body_end - 1);
    if (nl != std::string::npos) return tail.substr(nl + 1, body_end - nl - 1);
  }
  return tail.empty() ? std::string() : tail.substr(0, tail.size() - 1);
}

void SyncDirectoryOf(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  int dir = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

// Whether `fd` is still the file at `path` (it was not renamed away or replaced).
bool SameFile(int fd, const std::string& path, dev_t dev, ino_t inode) {
  struct stat by_path {};
  return fd >= 0 && ::stat(path.c_str(), &by_path) == 0 && by_path.st_ino == inode && by_path.st_dev == dev;
}

core::Status WriteFully(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError(ErrorCode::kIo, "cannot write " + what + ": " + core::ErrnoText());
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return core::Ok();
}

core::Error IncompleteRecord(const std::string& file) {
  return MakeError(ErrorCode::kIo, "audit log " + file +
                                       " ends in an incomplete record (a crash mid-write?); nothing was run. "
                                       "Inspect it with `labgate audit verify`; labgate never deletes records");
}

// The last complete line of an audit file open at `fd` with `size` bytes; "" when empty.
core::Result<std::string> LastLineOf(int fd, off_t size, const std::string& file) {
  if (size == 0) return std::string();
  char end = 0;
  if (::pread(fd, &end, 1, size - 1) != 1)
    return MakeError(ErrorCode::kIo, "cannot read audit log " + file + ": " + core::ErrnoText());
  if (end != '\n') return IncompleteRecord(file);
  return ReadLastLine(fd, size);
}

// Renames without ever replacing an existing file: a rotated log must not overwrite another.
core::Status RenameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return core::Ok();
  if (errno == EINVAL || errno == ENOSYS) {
    // A file system without RENAME_NOREPLACE: check, then rename (we hold the writers' lock).
    struct stat st {};
    if (::lstat(to.c_str(), &st) == 0) {
      errno = EEXIST;
    } else if (errno == ENOENT && ::rename(from.c_str(), to.c_str()) == 0) {
      return core::Ok();
    }
  }
  return MakeError(ErrorCode::kIo, "cannot rotate audit log " + from + " to " + to + ": " + core::ErrnoText() +
                                       " (nothing was written; labgate never overwrites an audit file)");
}

}  // namespace

FileAuditStorage::FileAuditStorage(std::string path, std::uint64_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {
  flusher_ = std::thread([this] { FlushLoop(); });
}

FileAuditStorage::~FileAuditStorage() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  flush_cv_.notify_all();
  flusher_.join();
  CloseLog();
  if (head_fd_ >= 0) {
    if (head_dirty_) ::fsync(head_fd_);
    ::close(head_fd_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void FileAuditStorage::FlushLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    flush_cv_.wait(lock, [&] { return stopping_ || dirty_ || head_dirty_; });
    if (stopping_) return;
    flush_cv_.wait_for(lock, kSoonDelay, [&] { return stopping_; });
    // The log before the head, so a synced head never names a record the disk does not have.
    if (dirty_ && fd_ >= 0) (void)SyncLogLocked();
    dirty_ = false;
    if (head_dirty_ && head_fd_ >= 0) ::fsync(head_fd_);
    head_dirty_ = false;
  }
}

void FileAuditStorage::NoteSyncLocked(std::uint64_t written, bool ok, const std::string& why) {
  ++syncs_;
  if (ok) {
    durable_ = std::max(durable_, written);
  } else {
    sync_error_ = why;
    if (written > durable_) {
      failed_.emplace_back(durable_, written);
      durable_ = written;  // settled: failed, never to be called durable
    }
  }
  synced_cv_.notify_all();
}

bool FileAuditStorage::SyncLogLocked() {
  const bool ok = ::fsync(fd_) == 0;
  NoteSyncLocked(written_, ok, ok ? "" : core::ErrnoText());
  return ok;
}

std::uint64_t FileAuditStorage::syncs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return syncs_;
}

std::uint64_t FileAuditStorage::durable_records() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return durable_;
}

void FileAuditStorage::CloseLog() {
  if (fd_ < 0) return;
  if (dirty_) (void)SyncLogLocked();
  dirty_ = false;
  ::close(fd_);
  fd_ = -1;
}

core::Status FileAuditStorage::OpenLockFile() {
  if (lock_fd_ >= 0) return core::Ok();
  if (auto ok = EnsureDirectory(std::filesystem::path(path_).parent_path()); !ok) return ok;
  const std::string lock_path = LockPath(path_);
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return MakeError(ErrorCode::kIo, "cannot open audit lock file " + lock_path + ": " + core::ErrnoText());
  return core::Ok();
}

core::Status FileAuditStorage::OpenLogLocked() {
  if (SameFile(fd_, path_, dev_, inode_)) return core::Ok();
  // First use, or another process rotated the file (or someone removed it): use the file at PATH.
  CloseLog();
  fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return MakeError(ErrorCode::kIo, "cannot open audit log " + path_ + ": " + core::ErrnoText());
  struct stat st {};
  ::fstat(fd_, &st);
  dev_ = st.st_dev;
  inode_ = st.st_ino;
  known_size_ = -1;
  // A new file is durable only once its directory entry is.
  if (st.st_size == 0) SyncDirectoryOf(path_);
  return core::Ok();
}

core::Status FileAuditStorage::OpenHeadLocked() {
  const std::string head_path = HeadPath(path_);
  if (SameFile(head_fd_, head_path, head_dev_, head_inode_)) return core::Ok();
  if (head_fd_ >= 0) {
    if (head_dirty_) ::fsync(head_fd_);
    head_dirty_ = false;
    ::close(head_fd_);
  }
  head_fd_ = ::open(head_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (head_fd_ < 0) return MakeError(ErrorCode::kIo, "cannot open audit head file " + head_path + ": " + core::ErrnoText());
  struct stat st {};
  ::fstat(head_fd_, &st);
  head_dev_ = st.st_dev;
  head_inode_ = st.st_ino;
  if (st.st_size == 0) SyncDirectoryOf(head_path);
  return core::Ok();
}

core::Status FileAuditStorage::LoadLastLineLocked(off_t size) {
  last_line_.clear();
  if (size > 0) {
    char end = 0;
    if (::pread(fd_, &end, 1, size - 1) != 1) return MakeError(ErrorCode::kIo, "cannot read audit log " + path_ + ": " + core::ErrnoText());
    if (end != '\n' && compose_gap_) {
      // A record cut off by a crash or a full disk: take it off the end (we hold the writers'
      // lock) and record what was there, so the chain stays whole and labgate goes on without an
      // operator editing files. The bytes themselves go into the gap record as evidence.
      constexpr off_t kMaxTail = 1 << 20;
      off_t start = size > kMaxTail ? size - kMaxTail : 0;
      std::string tail(static_cast<std::size_t>(size - start), '\0');
      if (::pread(fd_, tail.data(), tail.size(), start) != static_cast<ssize_t>(tail.size())) {
        return MakeError(ErrorCode::kIo, "cannot read audit log " + path_ + ": " + core::ErrnoText());
      }
      const auto nl = tail.rfind('\n');
      const off_t keep = nl == std::string::npos ? start : start + static_cast<off_t>(nl) + 1;
      if (nl == std::string::npos && start > 0) return IncompleteRecord(path_);  // a megabyte without a newline
      if (::ftruncate(fd_, keep) != 0) return MakeError(ErrorCode::kIo, "cannot repair audit log " + path_ + ": " + core::ErrnoText());
      cut_tail_ += tail.substr(nl == std::string::npos ? 0 : nl + 1);
      size = keep;
    }
  }
  if (size > 0) {
    auto line = LastLineOf(fd_, size, path_);
    if (!line) return line.error();
    last_line_ = std::move(*line);
  } else {
    // A fresh PATH (after a rotation, ours or logrotate's): the chain goes on from the newest
    // rotated file that holds anything.
    auto indices = RotatedIndices(path_);
    for (auto it = indices.rbegin(); it != indices.rend() && last_line_.empty(); ++it) {
      const std::string file = RotatedPath(path_, *it);
      int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return MakeError(ErrorCode::kIo, "cannot open rotated audit log " + file + ": " + core::ErrnoText());
      struct stat st {};
      ::fstat(fd, &st);
      auto line = LastLineOf(fd, st.st_size, file);
      ::close(fd);
      if (!line) return line.error();
      last_line_ = std::move(*line);
    }
  }

  // The head says where the chain had reached. If the files end earlier, records were removed
  // from the end: continuing would overwrite the only evidence of that, so refuse.
  std::string bytes(kHeadSize + 1, '\0');
  ssize_t got = ::pread(head_fd_, bytes.data(), bytes.size(), 0);
  if (got < 0) return MakeError(ErrorCode::kIo, "cannot read audit head file " + HeadPath(path_) + ": " + core::ErrnoText());
  if (got == 0) return core::Ok();  // a log written before head files existed, or a new one
  bytes.resize(static_cast<std::size_t>(got));
  const std::string head_path = HeadPath(path_);
  auto head = ParseHead(bytes);
  if (!head) {
    return MakeError(ErrorCode::kIo, head_path +
                                         " is not a labgate audit head file; nothing was run. Run `labgate "
                                         "audit verify`; move the file aside to continue the chain without it");
  }
  std::optional<AuditHead> last = last_line_.empty() ? std::optional<AuditHead>(AuditHead{}) : HeadOfRecord(last_line_);
  if (!last) return core::Ok();  // not a record: composing the next one fails with its own message
  if (head->seq > last->seq) {
    return MakeError(ErrorCode::kIo,
                     "audit log " + path_ + " ends at seq " + std::to_string(last->seq) + " but " + head_path +
                         " says the chain reached seq " + std::to_string(head->seq) +
                         ": records were removed from its end (or lost in a power failure); nothing was run. Run "
                         "`labgate audit verify`; to go on appending after seq " +
                         std::to_string(last->seq) + ", move " + head_path + " aside and keep it as evidence");
  }
  if (head->seq == last->seq && head->hash != last->hash) {
    return MakeError(ErrorCode::kIo, "the newest record of audit log " + path_ + " (seq " + std::to_string(last->seq) +
                                         ") is not the one " + head_path +
                                         " recorded: it was replaced; nothing was run. Run `labgate audit verify`; "
                                         "to go on appending, move " +
                                         head_path + " aside and keep it as evidence");
  }
  return core::Ok();
}

core::Status FileAuditStorage::RotateLocked() {
  auto indices = RotatedIndices(path_);
  const std::string rotated = RotatedPath(path_, indices.empty() ? 1 : indices.back() + 1);
  // The rotated file must be complete on disk before the chain continues in another file.
  if (dirty_ && !SyncLogLocked()) return MakeError(ErrorCode::kIo, "cannot sync audit log " + path_ + ": " + sync_error_);
  dirty_ = false;
  if (auto ok = RenameNoReplace(path_, rotated); !ok) return ok;
  CloseLog();
  if (auto ok = OpenLogLocked(); !ok) return ok;
  return core::Ok();
}

core::Status FileAuditStorage::WriteHeadLocked(const AuditHead& head) {
  const std::string bytes = EncodeHead(head);
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(head_fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError(ErrorCode::kIo, "cannot write audit head file " + HeadPath(path_) + ": " + core::ErrnoText());
    done += static_cast<std::size_t>(n);
  }
  return core::Ok();
}

void FileAuditStorage::SetGapComposer(ComposeGap compose) {
  std::lock_guard<std::mutex> guard(mutex_);
  compose_gap_ = std::move(compose);
}

namespace {
// The kSynced record this thread appended last and has not yet waited for.
thread_local std::pair<const FileAuditStorage*, std::uint64_t> t_must_sync{nullptr, 0};
}  // namespace

core::Status FileAuditStorage::AfterAppend() {
  if (t_must_sync.first != this) return core::Ok();
  const std::uint64_t mine = t_must_sync.second;
  t_must_sync = {nullptr, 0};
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    for (const auto& [after, through] : failed_) {
      if (mine > after && mine <= through) {
        return MakeError(ErrorCode::kIo, "cannot sync audit log " + path_ + ": " + sync_error_);
      }
    }
    if (durable_ >= mine) return core::Ok();
    if (syncing_) {
      // Another thread's fsync is under way; it may have begun before this record was written,
      // so wait for it and look again.
      synced_cv_.wait(lock);
      continue;
    }
    if (fd_ < 0) return MakeError(ErrorCode::kIo, "audit log " + path_ + " was closed before its record was synced");
    // Lead: one fsync for every record written so far. A duplicate descriptor, because a
    // rotation may close fd_ while this one waits on the disk.
    syncing_ = true;
    const std::uint64_t covered = written_;
    const int fd = ::dup(fd_);
    lock.unlock();
    const bool ok = fd >= 0 && ::fsync(fd) == 0;
    const std::string why = ok ? "" : core::ErrnoText();
    if (fd >= 0) ::close(fd);
    lock.lock();
    syncing_ = false;
    NoteSyncLocked(covered, ok, why);
    if (ok && durable_ >= written_) dirty_ = false;
  }
}

core::Status FileAuditStorage::Append(const ComposeLine& compose, Durability durability) {
  std::lock_guard<std::mutex> guard(mutex_);
  const bool flusher_idle = !dirty_ && !head_dirty_;  // FlushLoop waits for one of these
  if (auto ok = OpenLockFile(); !ok) return ok;
  while (::flock(lock_fd_, LOCK_EX) != 0) {
    if (errno != EINTR) return MakeError(ErrorCode::kIo, "cannot lock audit log " + LockPath(path_) + ": " + core::ErrnoText());
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::flock(fd, LOCK_UN); }
  } unlock{lock_fd_};

  // Another process may have rotated PATH while we waited for the lock.
  if (auto ok = OpenLogLocked(); !ok) return ok;
  if (auto ok = OpenHeadLocked(); !ok) return ok;
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return MakeError(ErrorCode::kIo, "cannot stat audit log " + path_ + ": " + core::ErrnoText());
  off_t size = st.st_size;
  if (size != known_size_) {
    // Another process appended (or this is our first append): read the real last line.
    if (auto ok = LoadLastLineLocked(size); !ok) {
      known_size_ = -1;
      return ok;
    }
  }
  if (!cut_tail_.empty()) {
    // First the record of what a crash or a full disk cut off, then the new one.
    auto gap = compose_gap_(last_line_, cut_tail_);
    if (!gap) return gap.error();
    const std::string gap_line = *gap + "\n";
    if (auto ok = WriteFully(fd_, gap_line, "audit log " + path_); !ok) {
      (void)::ftruncate(fd_, size);
      known_size_ = -1;
      return ok;
    }
    size += static_cast<off_t>(gap_line.size());
    last_line_ = std::move(*gap);
    cut_tail_.clear();
  }
  auto next = compose(last_line_);
  if (!next) return next.error();
  const std::string data = next->line + "\n";
  if (size > 0 && static_cast<std::uint64_t>(size) + data.size() > max_bytes_) {
    if (auto ok = RotateLocked(); !ok) {
      known_size_ = -1;
      return ok;
    }
    size = 0;
  }
  if (auto ok = WriteFully(fd_, data, "audit log " + path_); !ok) {
    // A full disk cuts the line at a block boundary: take the part that made it back off, so
    // the log still ends in a whole record and the next append (once there is space) goes on.
    (void)::ftruncate(fd_, size);
    known_size_ = -1;
    return ok;
  }
  known_size_ = size + static_cast<off_t>(data.size());
  last_line_ = std::move(next->line);
  ++written_;
  dirty_ = true;
  // Only a flusher waiting for work needs waking: one already counting down its kSoonDelay
  // covers this record too, and waking it for nothing cost every append a futex round trip.
  // Woken here, before anything below can return: a record on disk with the flusher asleep
  // would stay unsynced, and so would every later one, since they find it not idle.
  if (flusher_idle) flush_cv_.notify_all();
  // A kSynced record waits for its fsync in AfterAppend, without the locks, so that threads
  // appending meanwhile share that fsync instead of queueing one each behind the lock.
  if (durability == Durability::kSynced) t_must_sync = {this, written_};
  // The head is synced by the flusher, after the log: a head that lags the log after a crash
  // is one verify accepts, and syncing it here would double the fsyncs before every command.
  // Its seq and hash come from the composer that sealed it; parsing the line again for them
  // cost each append as much as sealing it.
  std::optional<AuditHead> head = next->head.seq > 0 ? std::move(next->head) : HeadOfRecord(last_line_);
  if (!head) return core::Ok();
  if (auto ok = WriteHeadLocked(*head); !ok) return ok;
  head_dirty_ = true;
  return core::Ok();
}

}  // namespace labgate::audit
