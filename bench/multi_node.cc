// Node benchmark helper (bench/nodes.sh builds and runs it).
//
//   labgate_bench_multi_node STATE_DIR...   one NodeAgent per paired state dir, each on its own
//                                           thread and its own SSH session to the gateway, all
//                                           sharing one process runner; stops on SIGTERM/SIGINT.
//   labgate_bench_multi_node --fork-exec N  the floor for running `true`: N rounds of
//                                           posix_spawn(/bin/true) + waitpid, after 20 warm-up
//                                           rounds; prints {"median_us", "p90_us", "cpu_us", "n"}
//                                           (cpu_us: this process's own CPU per round).
//   labgate_bench_multi_node --socket-floor SESSIONS ROUNDS
//                                           the least any agent driven over a socket does per
//                                           command, as a second floor: a forked client sends a
//                                           request on each of SESSIONS loopback TCP connections
//                                           at once, ROUNDS times; this process reads it,
//                                           posix_spawns /bin/true, waits for it through a pidfd
//                                           in epoll and writes a reply. No SSH, no JSON, no
//                                           output pipes. Prints {"cpu_us", "n"} (this process's
//                                           own CPU per command; the client's is not in it).
//   labgate_bench_multi_node --pair FILE    pairs many state dirs at once: each line of FILE is
//                                           "STATE_DIR CODE"; the same PairDevice as
//                                           `labgate node pair`, 8 at a time, without a process
//                                           per device. Prints how many paired, then each state
//                                           dir that failed; exits 1 if any failed.
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/cancel.h"
#include "core/process_runner.h"
#include "nodes/node_agent.h"

extern char** environ;

namespace {

// This process's own CPU so far (user + system), in microseconds.
double OwnCpuUs() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

int ForkExec(int n) {
  char path[] = "/bin/true";
  char* argv[] = {path, nullptr};
  std::vector<double> us;
  double cpu_start = 0;
  for (int i = 0; i < n + 20; ++i) {
    if (i == 20) cpu_start = OwnCpuUs();
    const auto t0 = std::chrono::steady_clock::now();
    pid_t pid = 0;
    if (int rc = ::posix_spawn(&pid, path, nullptr, nullptr, argv, environ); rc != 0) {
      std::fprintf(stderr, "posix_spawn %s failed: %s\n", path, std::strerror(rc));
      return 1;
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "%s did not exit 0\n", path);
      return 1;
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= 20) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  const double cpu_per_round = (OwnCpuUs() - cpu_start) / n;
  std::sort(us.begin(), us.end());
  std::printf("{\"median_us\": %.0f, \"p90_us\": %.0f, \"cpu_us\": %.1f, \"n\": %d}\n", us[us.size() / 2],
              us[us.size() * 9 / 10], cpu_per_round, n);
  return 0;
}

// The same loop through labgate's own runner (pipes, output digest, deadline, group kill).
int RunnerExec(int n) {
  labgate::core::SystemProcessRunner runner;
  labgate::core::CancelToken never;
  labgate::core::ProcessSpec spec;
  spec.argv = {"/bin/true"};
  double cpu_start = 0;
  for (int i = 0; i < n + 20; ++i) {
    if (i == 20) cpu_start = OwnCpuUs();
    auto out = runner.Run(spec, never, nullptr);
    if (!out || out->exit_code != 0) return 1;
  }
  std::printf("{\"cpu_us\": %.1f, \"n\": %d}\n", (OwnCpuUs() - cpu_start) / n, n);
  return 0;
}

int SocketFloor(int sessions, int rounds) {
  constexpr std::size_t kMessage = 128;  // about a framed `system.run` request and its answer
  const int one = 1;
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || ::listen(listener, 4096) != 0) {
    std::perror("socket-floor: listen on 127.0.0.1");
    return 1;
  }
  const pid_t client = ::fork();
  if (client < 0) return 1;
  if (client == 0) {
    std::vector<int> fds(static_cast<std::size_t>(sessions));
    for (int& fd : fds) {
      fd = ::socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(1);
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    char buf[kMessage] = {};
    for (int r = 0; r < rounds; ++r) {
      for (int fd : fds) {
        if (::write(fd, buf, kMessage) != static_cast<ssize_t>(kMessage)) ::_exit(1);
      }
      for (int fd : fds) {
        for (std::size_t got = 0; got < kMessage;) {
          const ssize_t n = ::read(fd, buf, kMessage - got);
          if (n <= 0) ::_exit(1);
          got += static_cast<std::size_t>(n);
        }
      }
    }
    ::_exit(0);
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<int> conns(static_cast<std::size_t>(sessions));
  for (std::size_t i = 0; i < conns.size(); ++i) {
    conns[i] = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ::setsockopt(conns[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i], &ev);
  }
  // A request is its connection's index; a running command is 1 << 63 | pidfd << 32 | index.
  constexpr std::uint64_t kChild = std::uint64_t{1} << 63;
  char path[] = "/bin/true";
  char* argv[] = {path, nullptr};
  const long total = static_cast<long>(sessions) * rounds;
  long done = 0;
  const double cpu_start = OwnCpuUs();
  std::vector<epoll_event> ready(256);
  char buf[kMessage];
  while (done < total) {
    const int n = ::epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), 30000);
    if (n <= 0) {
      std::fprintf(stderr, "socket-floor: stalled after %ld of %ld commands\n", done, total);
      return 1;
    }
    for (int k = 0; k < n; ++k) {
      const std::uint64_t tag = ready[static_cast<std::size_t>(k)].data.u64;
      const auto index = static_cast<std::size_t>(tag & 0xffffffffU);
      if ((tag & kChild) == 0) {
        if (::read(conns[index], buf, kMessage) <= 0) continue;
        pid_t pid = 0;
        if (::posix_spawn(&pid, path, nullptr, nullptr, argv, environ) != 0) return 1;
        const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kChild | (static_cast<std::uint64_t>(pidfd) << 32) | index;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev);
      } else {
        const int pidfd = static_cast<int>((tag & ~kChild) >> 32);
        siginfo_t info{};
        ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED);
        ::epoll_ctl(ep, EPOLL_CTL_DEL, pidfd, nullptr);
        ::close(pidfd);
        if (::write(conns[index], buf, kMessage) != static_cast<ssize_t>(kMessage)) return 1;
        ++done;
      }
    }
  }
  const double cpu_per_command = (OwnCpuUs() - cpu_start) / static_cast<double>(total);
  int status = 0;
  ::waitpid(client, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  std::printf("{\"cpu_us\": %.1f, \"n\": %ld}\n", cpu_per_command, total);
  return 0;
}

int PairMany(const char* list_path) {
  std::ifstream list(list_path);
  std::vector<std::pair<std::string, std::string>> jobs;
  for (std::string dir, code; list >> dir >> code;) jobs.emplace_back(dir, code);
  std::mutex mutex;
  std::size_t next = 0, paired = 0;
  std::vector<std::string> failures;
  labgate::core::CancelToken never;
  std::vector<std::thread> workers;
  for (int w = 0; w < 8; ++w) {
    workers.emplace_back([&] {
      for (;;) {
        std::size_t i;
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (next == jobs.size()) return;
          i = next++;
        }
        labgate::nodes::PairRequest request;
        request.state_dir = jobs[i].first;
        request.code = jobs[i].second;
        request.version = LABGATE_VERSION;
        std::ostringstream progress;
        const auto started = std::chrono::steady_clock::now();
        auto done = labgate::nodes::PairDevice(request, progress, never);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        std::lock_guard<std::mutex> lock(mutex);
        if (done) {
          ++paired;
        } else {
          failures.push_back(jobs[i].first + ": after " + std::to_string(ms.count()) + " ms: " + done.error().message);
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  // Each failed state dir on stdout after the count, so the caller can issue new codes for them
  // (a code the gateway redeemed whose answer was lost is used up).
  for (const auto& f : failures) std::fprintf(stderr, "pairing failed: %s\n", f.c_str());
  std::printf("%zu\n", paired);
  for (const auto& f : failures) std::printf("%s\n", f.substr(0, f.find(':')).c_str());
  return failures.empty() ? 0 : 1;
}

int RunAgents(const std::vector<std::string>& state_dirs) {
  // Blocked before any thread starts, so every agent thread inherits the mask and only
  // sigwait below receives the shutdown signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  labgate::core::CancelToken stop;
  labgate::core::SystemProcessRunner runner;
  std::vector<std::thread> agents;
  agents.reserve(state_dirs.size());
  for (const auto& dir : state_dirs) {
    agents.emplace_back([&stop, &runner, dir] {
      labgate::nodes::NodeAgent agent(dir, runner, LABGATE_VERSION);
      if (auto ran = agent.Run(stop); !ran) {
        std::fprintf(stderr, "agent %s stopped: %s\n", dir.c_str(), ran.error().message.c_str());
      }
    });
  }
  std::fprintf(stderr, "started %zu node agents\n", agents.size());
  int sig = 0;
  sigwait(&signals, &sig);
  stop.Cancel();
  for (auto& t : agents) t.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A gateway that drops a link mid-write must not kill every agent in this process.
  std::signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && std::strcmp(argv[1], "--fork-exec") == 0) return ForkExec(std::max(1, std::atoi(argv[2])));
  if (argc == 3 && std::strcmp(argv[1], "--pair") == 0) return PairMany(argv[2]);
  if (argc == 4 && std::strcmp(argv[1], "--socket-floor") == 0) {
    return SocketFloor(std::max(1, std::atoi(argv[2])), std::max(1, std::atoi(argv[3])));
  }
  if (argc == 3 && std::strcmp(argv[1], "--runner-exec") == 0) return RunnerExec(std::max(1, std::atoi(argv[2])));
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: %s STATE_DIR... | %s --fork-exec N | %s --pair FILE\n", argv[0], argv[0], argv[0]);
    return 2;
  }
  return RunAgents(std::vector<std::string>(argv + 1, argv + argc));
}
