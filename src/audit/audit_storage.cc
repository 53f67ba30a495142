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

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

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

core::Status FileAuditStorage::Append(const ComposeLine& compose) {
  std::filesystem::path path(path_);
  if (auto ok = EnsureDirectory(path.parent_path()); !ok) return ok;
  int fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError(ErrorCode::kIo, "cannot open audit log " + path_ + ": " + Errno());
  FdCloser closer(fd);
  if (::flock(fd, LOCK_EX) != 0) return MakeError(ErrorCode::kIo, "cannot lock audit log " + path_ + ": " + Errno());

  struct stat st {};
  if (::fstat(fd, &st) != 0) return MakeError(ErrorCode::kIo, "cannot stat audit log " + path_ + ": " + Errno());
  std::string last;
  if (st.st_size > 0) {
    char end = 0;
    if (::pread(fd, &end, 1, st.st_size - 1) != 1) {
      return MakeError(ErrorCode::kIo, "cannot read audit log " + path_ + ": " + Errno());
    }
    if (end != '\n') {
      return MakeError(ErrorCode::kIo, "audit log " + path_ +
                                           " ends in an incomplete record (a crash mid-write?); nothing was run. "
                                           "Inspect it with `labgate audit verify`; labgate never deletes records");
    }
    auto line = ReadLastLine(fd, st.st_size);
    if (!line) return line.error();
    last = std::move(*line);
  }
  auto next = compose(last);
  if (!next) return next.error();
  std::string data = *next + "\n";
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError(ErrorCode::kIo, "cannot write audit log " + path_ + ": " + Errno());
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return MakeError(ErrorCode::kIo, "cannot sync audit log " + path_ + ": " + Errno());
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

}  // namespace labgate::audit
