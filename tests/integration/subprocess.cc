#include "subprocess.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace labgate::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<char*> CArgv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

Subprocess::Subprocess(const std::vector<std::string>& argv, const std::string& cwd) {
  int in_pipe[2];
  int out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) std::abort();
  char tmpl[] = "/tmp/labgate-stderr-XXXXXX";
  int err_fd = ::mkostemp(tmpl, O_CLOEXEC);
  stderr_path_ = tmpl;
  auto args = CArgv(argv);
  pid_ = ::fork();
  if (pid_ == 0) {
    // No controlling terminal: labgate must never find a human to prompt in a test.
    ::setsid();
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_fd, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_fd);
  in_ = in_pipe[1];
  out_ = out_pipe[0];
}

Subprocess::~Subprocess() {
  CloseStdin();
  if (out_ >= 0) ::close(out_);
  if (!status_) {
    if (!Wait(std::chrono::seconds(5))) {
      ::kill(pid_, SIGKILL);
      Wait(std::chrono::seconds(5));
    }
  }
  ::unlink(stderr_path_.c_str());
}

void Subprocess::Write(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(in_, bytes.data() + off, bytes.size() - off);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

void Subprocess::CloseStdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

std::optional<std::string> Subprocess::ReadLine(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(out_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

nlohmann::json Subprocess::ReadResponse(const nlohmann::json& id, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (const auto& m : seen_) {
    if (m.contains("id") && m["id"] == id && !m.contains("method")) return m;
  }
  while (Clock::now() < deadline) {
    auto line = ReadLine(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!line) break;
    auto m = nlohmann::json::parse(*line);
    seen_.push_back(m);
    if (m.contains("id") && m["id"] == id && !m.contains("method")) return m;
  }
  return nullptr;
}

std::optional<int> Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return status_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string Subprocess::Stderr() const {
  std::ifstream in(stderr_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Completed RunToCompletion(const std::vector<std::string>& argv, const std::string& cwd) {
  Completed c;
  Subprocess p(argv, cwd);
  p.CloseStdin();
  while (auto line = p.ReadLine(std::chrono::seconds(60))) c.out += *line + "\n";
  auto status = p.Wait(std::chrono::seconds(60));
  c.status = status.value_or(-1);
  c.err = p.Stderr();
  return c;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/labgate-test-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() { std::filesystem::remove_all(path_); }

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  std::string p = path_ + "/" + name;
  std::ofstream(p) << content;
  return p;
}

std::string UniqueSleep(int whole_seconds) {
  std::random_device rd;
  return std::to_string(whole_seconds) + "." + std::to_string(100000 + rd() % 800000);
}

std::vector<pid_t> PidsWithMarker(const std::string& marker) {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  if (!proc) return pids;
  const std::string self = std::to_string(::getpid());
  while (dirent* e = ::readdir(proc)) {
    std::string name = e->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos || name == self) continue;
    // Read with read(2): a process that exits meanwhile fails the read with ESRCH, which
    // libstdc++'s filebuf would throw as an exception.
    std::string cmdline;
    const int fd = ::open(("/proc/" + name + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[4096];
      ssize_t got = 0;
      while ((got = ::read(fd, buf, sizeof buf)) > 0) cmdline.append(buf, static_cast<std::size_t>(got));
      ::close(fd);
    }
    // A zombie has an empty cmdline, so anything found here is alive.
    if (cmdline.find(marker) != std::string::npos) pids.push_back(std::stoi(name));
  }
  ::closedir(proc);
  return pids;
}

bool ProcessWithMarkerExists(const std::string& marker) { return !PidsWithMarker(marker).empty(); }

bool WaitUntilPresent(const std::string& marker, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!ProcessWithMarkerExists(marker)) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool WaitUntilGone(const std::string& marker, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!ProcessWithMarkerExists(marker)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !ProcessWithMarkerExists(marker);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::trunc);
  for (const auto& l : lines) out << l << "\n";
}

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string PairNode(const std::string& config, const std::string& id, const std::string& device_dir,
                     const std::string& cwd) {
  auto code = RunToCompletion({LABGATE_BINARY, "pair", "new", "--config", config, "--node", id, "--json"}, cwd);
  if (code.status != 0) return "pair new: " + code.err;
  const nlohmann::json answer = nlohmann::json::parse(code.out, nullptr, false);
  if (!answer.is_object() || !answer.contains("code")) return "pair new printed no code: " + code.out;
  auto paired = RunToCompletion(
      {LABGATE_BINARY, "node", "pair", answer["code"].get<std::string>(), "--state-dir", device_dir}, cwd);
  if (paired.status != 0) return "node pair: " + paired.err;
  return "";
}

bool NodeListedOnline(const Completed& listing, const std::string& id) {
  if (listing.status != 0) return false;
  const nlohmann::json list = nlohmann::json::parse(listing.out, nullptr, false);
  if (!list.is_object() || !list.contains("nodes")) return false;
  for (const auto& n : list["nodes"]) {
    if (n.value("id", "") == id && n.value("online", false)) return true;
  }
  return false;
}

bool GatewayAnswers(const std::string& config, const std::string& cwd, std::chrono::milliseconds timeout) {
  return PollUntil([&] { return RunToCompletion({LABGATE_BINARY, "nodes", "list", "--config", config}, cwd).status == 0; },
                   timeout);
}

bool NodeOnline(const std::string& config, const std::string& id, const std::string& cwd,
                std::chrono::milliseconds timeout) {
  return PollUntil(
      [&] {
        return NodeListedOnline(RunToCompletion({LABGATE_BINARY, "nodes", "list", "--json", "--config", config}, cwd), id);
      },
      timeout);
}

}  // namespace labgate::testing
