#pragma once

#include <string>

#include "core/result.h"

namespace labgate::core {

/// Replaces `path` with `text` atomically and durably: writes PATH.tmp with `mode`, fsyncs it,
/// renames it over PATH and fsyncs the directory. A crash leaves the old or the new file.
Status WriteFileAtomic(const std::string& path, const std::string& text, int mode = 0600);

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
