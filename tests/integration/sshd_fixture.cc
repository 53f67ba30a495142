#include "sshd_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace labgate::testing {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

int BindLoopback(const std::string& address, int type) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind " + address);
  }
  return fd;
}

int PortOf(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

bool BannerArrives(const std::string& address, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[8] = {};
    ok = ::recv(fd, buf, 7, 0) == 7 && std::string(buf, 4) == "SSH-";
  }
  ::close(fd);
  return ok;
}

}  // namespace

std::string CurrentUser() {
  passwd* pw = ::getpwuid(::geteuid());
  return pw ? pw->pw_name : "root";
}

bool HaveSshd() { return ::access("/usr/sbin/sshd", X_OK) == 0; }

const ClientKey& TestClientKey() {
  static const ClientKey key = [] {
    static TempDir dir;  // lives for the whole test binary
    ClientKey k;
    k.private_path = dir.path() + "/client_ed25519";
    RunToCompletion({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labgate-test", "-f", k.private_path});
    k.public_line = Trim(ReadFile(k.private_path + ".pub"));
    return k;
  }();
  return key;
}

Sshd::Sshd(Options options) : address_(options.address) {
  if (::geteuid() == 0) std::filesystem::create_directories("/run/sshd");
  const std::string host_key = dir_.path() + "/host_ed25519";
  RunToCompletion({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", host_key});
  host_public_ = Trim(ReadFile(host_key + ".pub"));
  auto lf = RunToCompletion({"/usr/bin/ssh-keygen", "-l", "-E", "sha256", "-f", host_key + ".pub"});
  std::istringstream fields(lf.out);
  std::string bits;
  fields >> bits >> fingerprint_;
  dir_.Write("authorized_keys", TestClientKey().public_line + "\n");
  if (options.other_users) {
    // sshd reads authorized_keys as the account logging in.
    std::filesystem::permissions(dir_.path(), std::filesystem::perms(0755));
    std::filesystem::permissions(dir_.path() + "/authorized_keys", std::filesystem::perms(0644));
  }
  int probe = BindLoopback(address_, SOCK_STREAM);
  port_ = PortOf(probe);
  ::close(probe);
  std::string config = "ListenAddress " + address_ + ":" + std::to_string(port_) + "\n" +
                       "HostKey " + host_key + "\n" +
                       "PidFile " + dir_.path() + "/sshd.pid\n" +
                       "AuthorizedKeysFile " + dir_.path() + "/authorized_keys\n" +
                       "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                       "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nMaxSessions 10\n"
                       "MaxStartups 100:30:200\nLogLevel " + options.log_level + "\n" +
                       std::string("AllowTcpForwarding ") + (options.allow_tcp_forwarding ? "yes" : "no") + "\n" +
                       (options.sftp ? "Subsystem sftp internal-sftp\n" : "") + options.extra_config;
  const std::string config_path = dir_.Write("sshd_config", config);
  process_ = std::make_unique<Subprocess>(std::vector<std::string>{"/usr/sbin/sshd", "-D", "-e", "-f", config_path});
  for (int i = 0; i < 500; ++i) {
    if (BannerArrives(address_, port_)) return;
    if (process_->Wait(std::chrono::milliseconds(1))) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("sshd did not start on " + address_ + ":" + std::to_string(port_) + ": " + process_->Stderr());
}

Sshd::~Sshd() { Stop(); }

void Sshd::Stop() {
  if (!process_) return;
  Thaw();
  ::kill(process_->pid(), SIGTERM);
  process_->Wait(std::chrono::seconds(5));
  process_.reset();
}

std::string Sshd::KnownHostsLine() const {
  return "[" + address_ + "]:" + std::to_string(port_) + " " + host_public_;
}

void Sshd::KillSessions() {
  // Children of our listener are the per-connection sshd processes we caused.
  const std::string parent = std::to_string(process_->pid());
  DIR* proc = ::opendir("/proc");
  while (dirent* e = ::readdir(proc)) {
    std::string name = e->d_name;
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in("/proc/" + name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(close_paren + 2));
    std::string state, ppid;
    rest >> state >> ppid;
    if (ppid == parent) ::kill(std::stoi(name), SIGKILL);
  }
  ::closedir(proc);
}

namespace {

// The sshd processes below `root` (its per-connection children and their session processes).
std::vector<pid_t> SshdDescendants(pid_t root) {
  std::map<pid_t, pid_t> parent_of;
  std::map<pid_t, std::string> name_of;
  DIR* proc = ::opendir("/proc");
  while (dirent* e = ::readdir(proc)) {
    std::string name = e->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in("/proc/" + name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto open_paren = stat.find('(');
    auto close_paren = stat.rfind(')');
    if (open_paren == std::string::npos || close_paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(close_paren + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    parent_of[std::stoi(name)] = ppid;
    name_of[std::stoi(name)] = stat.substr(open_paren + 1, close_paren - open_paren - 1);
  }
  ::closedir(proc);
  std::vector<pid_t> out;
  for (const auto& [pid, ppid] : parent_of) {
    if (name_of[pid] != "sshd") continue;
    for (pid_t p = ppid; p > 1; p = parent_of.count(p) ? parent_of[p] : 0) {
      if (p == root) {
        out.push_back(pid);
        break;
      }
    }
  }
  return out;
}

}  // namespace

void Sshd::Freeze() {
  frozen_ = SshdDescendants(process_->pid());
  frozen_.push_back(process_->pid());
  for (pid_t pid : frozen_) ::kill(pid, SIGSTOP);
}

void Sshd::Thaw() {
  for (pid_t pid : frozen_) ::kill(pid, SIGCONT);
  frozen_.clear();
}

SilentListener::SilentListener(const std::string& address) {
  fd_ = BindLoopback(address, SOCK_STREAM);
  ::listen(fd_, 16);
  port_ = PortOf(fd_);
}

SilentListener::~SilentListener() { ::close(fd_); }

int ClosedPort(const std::string& address) {
  int fd = BindLoopback(address, SOCK_STREAM);
  int port = PortOf(fd);
  ::close(fd);
  return port;
}

}  // namespace labgate::testing
