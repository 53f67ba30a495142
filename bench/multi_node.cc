// Node benchmark helper (bench/nodes.sh builds and runs it).
//
//   labgate_bench_multi_node STATE_DIR...   one NodeAgent per paired state dir, each on its own
//                                           thread and its own SSH session to the gateway, all
//                                           sharing one process runner; stops on SIGTERM/SIGINT.
//   labgate_bench_multi_node --fork-exec N  the floor for running `true`: N rounds of
//                                           posix_spawn(/bin/true) + waitpid, after 20 warm-up
//                                           rounds; prints {"median_us", "p90_us", "n"}.
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/cancel.h"
#include "core/process_runner.h"
#include "nodes/node_agent.h"

extern char** environ;

namespace {

int ForkExec(int n) {
  char path[] = "/bin/true";
  char* argv[] = {path, nullptr};
  std::vector<double> us;
  for (int i = 0; i < n + 20; ++i) {
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
  std::sort(us.begin(), us.end());
  std::printf("{\"median_us\": %.0f, \"p90_us\": %.0f, \"n\": %d}\n", us[us.size() / 2], us[us.size() * 9 / 10], n);
  return 0;
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
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: %s STATE_DIR... | %s --fork-exec N\n", argv[0], argv[0]);
    return 2;
  }
  return RunAgents(std::vector<std::string>(argv + 1, argv + argc));
}
