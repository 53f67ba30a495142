#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

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

/// Looks for `secret` in ProcessTable() every `interval`, on a thread of its own, from its
/// construction until Stop() (or its end).
class SecretSampler {
 public:
  SecretSampler(std::string secret, std::chrono::milliseconds interval);
  ~SecretSampler() { Stop(); }
  SecretSampler(const SecretSampler&) = delete;
  SecretSampler& operator=(const SecretSampler&) = delete;

  void Stop();
  int samples() const { return samples_.load(); }
  int leaks() const { return leaks_.load(); }  // samples that held the secret

 private:
  std::atomic<bool> done_{false};
  std::atomic<int> samples_{0};
  std::atomic<int> leaks_{0};
  std::thread thread_;
};

}  // namespace labgate::testing
