#include "audit/audit_storage.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace labgate::audit {
namespace {

using core::ErrorCode;
using core::MakeError;

std::string Errno() { return std::strerror(errno); }

core::Status EnsureDirectory(const std::filesystem::path& dir) {
  if (dir.empty()) return core::Ok();
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return core::Ok();
  if (auto parent = dir.parent_path(); parent != dir) {
    if (auto ok = EnsureDirectory(parent); !ok) return ok;
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return MakeError(ErrorCode::kIo, "cannot create directory " + dir.string() + ": " + Errno());
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
      return MakeError(ErrorCode::kIo, "cannot read the end of the audit log: " + Errno());
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

}  // namespace

FileAuditStorage::FileAuditStorage(std::string path) : path_(std::move(path)) {
  flusher_ = std::thread([this] { FlushLoop(); });
}

FileAuditStorage::~FileAuditStorage() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  flush_cv_.notify_all();
  flusher_.join();
  if (fd_ >= 0) {
    if (dirty_) ::fsync(fd_);
    ::close(fd_);
  }
}

void FileAuditStorage::FlushLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    flush_cv_.wait(lock, [&] { return stopping_ || dirty_; });
    if (stopping_) return;
    flush_cv_.wait_for(lock, kSoonDelay, [&] { return stopping_; });
    if (dirty_ && fd_ >= 0) {
      ::fsync(fd_);
      dirty_ = false;
    }
  }
}

core::Status FileAuditStorage::OpenLocked() {
  struct stat by_path {};
  if (fd_ >= 0 && ::stat(path_.c_str(), &by_path) == 0 && by_path.st_ino == inode_) return core::Ok();
  // First use, or the file was rotated or removed under us: start on the file at the path.
  if (fd_ >= 0) {
    if (dirty_) ::fsync(fd_);
    ::close(fd_);
    fd_ = -1;
    dirty_ = false;
  }
  std::filesystem::path path(path_);
  if (auto ok = EnsureDirectory(path.parent_path()); !ok) return ok;
  fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return MakeError(ErrorCode::kIo, "cannot open audit log " + path_ + ": " + Errno());
  struct stat st {};
  ::fstat(fd_, &st);
  inode_ = st.st_ino;
  known_size_ = -1;
  if (st.st_size == 0) {
    // A new file is durable only once its directory entry is.
    int dir = ::open(path.parent_path().empty() ? "." : path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }
  return core::Ok();
}

core::Status FileAuditStorage::Append(const ComposeLine& compose, Durability durability) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (auto ok = OpenLocked(); !ok) return ok;
  if (::flock(fd_, LOCK_EX) != 0) return MakeError(ErrorCode::kIo, "cannot lock audit log " + path_ + ": " + Errno());
  struct Unlock {
    int fd;
    ~Unlock() { ::flock(fd, LOCK_UN); }
  } unlock{fd_};

  struct stat st {};
  if (::fstat(fd_, &st) != 0) return MakeError(ErrorCode::kIo, "cannot stat audit log " + path_ + ": " + Errno());
  if (st.st_size != known_size_) {
    // Another process appended (or this is our first append): read the real last line.
    last_line_.clear();
    if (st.st_size > 0) {
      char end = 0;
      if (::pread(fd_, &end, 1, st.st_size - 1) != 1) {
        return MakeError(ErrorCode::kIo, "cannot read audit log " + path_ + ": " + Errno());
      }
      if (end != '\n') {
        return MakeError(ErrorCode::kIo, "audit log " + path_ +
                                             " ends in an incomplete record (a crash mid-write?); nothing was run. "
                                             "Inspect it with `labgate audit verify`; labgate never deletes records");
      }
      auto line = ReadLastLine(fd_, st.st_size);
      if (!line) return line.error();
      last_line_ = std::move(*line);
    }
  }
  auto next = compose(last_line_);
  if (!next) return next.error();
  std::string data = *next + "\n";
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      known_size_ = -1;
      return MakeError(ErrorCode::kIo, "cannot write audit log " + path_ + ": " + Errno());
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  known_size_ = st.st_size + static_cast<off_t>(data.size());
  last_line_ = std::move(*next);
  if (durability == Durability::kSynced) {
    if (::fsync(fd_) != 0) return MakeError(ErrorCode::kIo, "cannot sync audit log " + path_ + ": " + Errno());
    dirty_ = false;
  } else {
    dirty_ = true;
    flush_cv_.notify_all();
  }
  return core::Ok();
}

}  // namespace labgate::audit
