#include "gateway/operator_key.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // renameat2
#include <cstring>

#include "core/base64.h"
#include "core/hashing.h"

namespace labgate::gateway {

using core::ErrorCode;
using core::MakeError;

namespace {

constexpr std::size_t kKeyHexLength = 64;

bool IsHexKey(const std::string& text) {
  if (text.size() != kKeyHexLength) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}


// Opens without following a link (a planted symlink must not redirect the read) and checks the
// file is ours and private before trusting or handing out what it holds.
core::Result<std::string> ReadKeyFile(const std::string& path, const std::string& what = "operator key") {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return MakeError(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot read the " + what + " " + path + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return MakeError(ErrorCode::kRefused, "the " + what + " " + path + " is not a regular file; remove it and restart "
                                          "the gateway to make a new one");
  }
  // Another user's file, or a second name for one (a hard link planted where the key should
  // be), is not the key this gateway made. Root, reading the gateway user's key, is the exception.
  if ((st.st_uid != ::geteuid() && ::geteuid() != 0) || st.st_nlink != 1) {
    ::close(fd);
    return MakeError(ErrorCode::kRefused, "the " + what + " " + path + " belongs to uid " + std::to_string(st.st_uid) +
                                              " or has other names (" + std::to_string(st.st_nlink) +
                                              " links); remove it and restart the gateway to make a new one");
  }
  if ((st.st_mode & (S_IRWXO | S_IWGRP | S_IXGRP)) != 0) {
    ::close(fd);
    return MakeError(ErrorCode::kRefused, "the " + what + " " + path + " has mode " +
                                              std::to_string((st.st_mode >> 6) & 7) +
                                              std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) +
                                              ", so others could use it; run `chmod 600 " + path +
                                              "` (or 640 for an operators' group) and restart the gateway");
  }
  char buf[kKeyHexLength + 2];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  std::string text(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!IsHexKey(text)) {
    return MakeError(ErrorCode::kParse, "the " + what + " " + path + " is not 64 hex digits; remove it and restart "
                                        "the gateway to make a new one");
  }
  return text;
}

}  // namespace

std::string OperatorKeyPath(const std::string& state_dir) { return state_dir + "/operator.key"; }

core::Result<std::string> ReadOperatorKey(const std::string& state_dir) {
  auto key = ReadKeyFile(OperatorKeyPath(state_dir));
  if (!key && key.error().code == ErrorCode::kNotFound) {
    return MakeError(ErrorCode::kNotFound, key.error().message +
                                               "; it is made when a gateway or `labgate mcp` starts, and only the "
                                               "gateway's user can read it");
  }
  if (!key && key.error().code == ErrorCode::kIo) {
    return MakeError(ErrorCode::kIo, key.error().message + "; operator commands must run as the gateway's user");
  }
  return key;
}

core::Result<std::string> EnsureOperatorKey(const std::string& state_dir) {
  if (::mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return MakeError(ErrorCode::kIo, "cannot create state_dir " + state_dir + ": " + std::strerror(errno));
  }
  return EnsureKeyFile(OperatorKeyPath(state_dir), "operator key");
}

core::Result<std::string> EnsureKeyFile(const std::string& path, const std::string& what) {
  auto existing = ReadKeyFile(path, what);
  if (existing || existing.error().code != ErrorCode::kNotFound) return existing;

  // Written in full under a private name, then linked into place: link() never replaces a key
  // another gateway made a moment ago, and nobody ever reads a half-written one.
  const std::string key = core::HexEncode(core::RandomBytes(kKeyHexLength / 2));
  const std::string temp = path + ".new-" + core::HexEncode(core::RandomBytes(8));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError(ErrorCode::kIo, "cannot create " + temp + ": " + std::strerror(errno));
  const std::string line = key + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written) {
    ::unlink(temp.c_str());
    return MakeError(ErrorCode::kIo, "cannot write the " + what + " " + temp + ": " + std::strerror(errno));
  }
  // A rename that refuses to replace never gives the key a second name, which ReadKeyFile
  // refuses: with link() and unlink(), a gateway starting at that moment saw two links and
  // failed. A filesystem without RENAME_NOREPLACE (EINVAL), or a kernel or seccomp filter
  // without renameat2 (ENOSYS), gets link() and unlink().
  int placed = ::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
  int place_errno = errno;
  if (placed != 0 && (place_errno == EINVAL || place_errno == ENOSYS)) {
    placed = ::link(temp.c_str(), path.c_str());
    place_errno = errno;
  }
  ::unlink(temp.c_str());  // still there unless the rename moved it
  if (placed != 0 && place_errno != EEXIST) {
    return MakeError(ErrorCode::kIo, "cannot put the " + what + " in place at " + path + ": " + std::strerror(place_errno));
  }
  return ReadKeyFile(path, what);
}

bool OperatorKeyMatches(const std::string& presented, const std::string& key) {
  if (presented.size() != key.size() || key.empty()) return false;
  return CRYPTO_memcmp(presented.data(), key.data(), key.size()) == 0;
}

}  // namespace labgate::gateway
