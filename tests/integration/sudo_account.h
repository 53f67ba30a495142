#pragma once

#include <string>

namespace labgate::testing {

/// A real account, `labgate-sudo` (shell /bin/sh), whose sudo needs its password, with a fresh
/// random password for as long as this object lives. Tests in several ctest processes take
/// turns (a lock file): each sets its own password and removes the sudoers entry at the end,
/// which also leaves the account without a usable password. Needs root and /usr/bin/sudo:
/// `Usable()` says whether this machine has them (CI does).
class SudoAccount {
 public:
  static constexpr const char* kUser = "labgate-sudo";
  static bool Usable();

  SudoAccount();  // blocks until the turn comes; check ok() after
  ~SudoAccount();
  SudoAccount(const SudoAccount&) = delete;
  SudoAccount& operator=(const SudoAccount&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& password() const { return password_; }

 private:
  int lock_fd_ = -1;
  std::string password_;
  std::string error_;
};

/// Every process's argv and environment on this machine, NULs as spaces: what a password must
/// never show up in.
std::string ProcessTable();

}  // namespace labgate::testing
