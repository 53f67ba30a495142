#include "sudo_account.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "subprocess.h"

namespace labgate::testing {

namespace {

constexpr char kSudoers[] = "/etc/sudoers.d/labgate-sudo-test";

// A /proc file, or what could be read of it before its process went away (an ifstream would
// throw from underflow when the process exits mid-read).
std::string ReadProcFile(const std::string& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

bool SudoAccount::Usable() { return ::geteuid() == 0 && std::filesystem::exists("/usr/bin/sudo"); }

SudoAccount::SudoAccount() {
  lock_fd_ = ::open("/run/lock/labgate-sudo-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) lock_fd_ = ::open("/tmp/labgate-sudo-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX) != 0) {
    error_ = "cannot take the sudo test lock";
    return;
  }
  std::mt19937_64 rng(std::random_device{}());
  password_ = "pw-" + std::to_string(rng()) + "-x";
  RunToCompletion({"/usr/sbin/useradd", "-m", "-s", "/bin/sh", kUser});
  auto set = RunToCompletion({"/bin/sh", "-c", "printf '%s:%s\\n' \"$1\" \"$2\" | /usr/sbin/chpasswd", "sh", kUser, password_});
  if (set.status != 0) {
    error_ = "chpasswd: " + set.err;
    return;
  }
  std::ofstream(kSudoers) << kUser << " ALL=(ALL) ALL\n";
  std::filesystem::permissions(kSudoers, std::filesystem::perms(0440));
  auto check = RunToCompletion({"/usr/sbin/visudo", "-c", "-f", kSudoers});
  if (check.status != 0) error_ = "visudo: " + check.out + check.err;
}

SudoAccount::~SudoAccount() {
  if (lock_fd_ < 0) return;
  std::filesystem::remove(kSudoers);
  RunToCompletion({"/usr/sbin/usermod", "-p", "*", kUser});
  ::close(lock_fd_);  // releases the lock
}

SecretSampler::SecretSampler(std::string secret, std::chrono::milliseconds interval)
    : thread_([this, secret = std::move(secret), interval] {
        while (!done_) {
          if (ProcessTable().find(secret) != std::string::npos) ++leaks_;
          ++samples_;
          std::this_thread::sleep_for(interval);
        }
      }) {}

void SecretSampler::Stop() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string ProcessTable() {
  std::string all;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    for (const char* part : {"/cmdline", "/environ"}) {
      std::string text = ReadProcFile(it->path().string() + part);
      for (auto& c : text) {
        if (c == '\0') c = ' ';
      }
      all += text + "\n";
    }
  }
  return all;
}

}  // namespace labgate::testing
