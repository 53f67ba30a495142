#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace labgate::core {

/// Replaces `path` with `text` atomically and durably: writes PATH.tmp with `mode`, fsyncs it,
/// renames it over PATH and fsyncs the directory. A crash leaves the old or the new file.
/// `sync` false skips the fsyncs: the rename is still atomic for readers, but a crash may leave
/// the file short (for caches whose readers check the size).
Status WriteFileAtomic(const std::string& path, std::string_view text, int mode = 0600, bool sync = true);

/// Reads a whole file; kNotFound when it does not exist.
Result<std::string> ReadFile(const std::string& path);

/// An exclusive flock(2) on a lock file (created 0600), held for the object's lifetime.
/// Serialises read-modify-write of state files between labgate processes.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& path);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace labgate::core
