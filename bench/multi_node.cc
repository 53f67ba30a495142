// Node benchmark helper (bench/nodes.sh builds and runs it).
//
//   labgate_bench_multi_node STATE_DIR...   one NodeAgent per paired state dir, each on its own
//                                           thread and its own SSH session to the gateway, all
//                                           sharing one process runner; stops on SIGTERM/SIGINT.
//   labgate_bench_multi_node --fork-exec N  the floor for running `true`: N rounds of
//                                           posix_spawn(/bin/true) + waitpid, after 20 warm-up
//                                           rounds; prints {"median_us", "p90_us", "cpu_us", "n"}
//                                           (cpu_us: this process's own CPU per round).
//   labgate_bench_multi_node --pair FILE    pairs many state dirs at once: each line of FILE is
//                                           "STATE_DIR CODE"; the same PairDevice as
//                                           `labgate node pair`, 8 at a time, without a process
//                                           per device. Prints how many paired, then each state
//                                           dir that failed; exits 1 if any failed.
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

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

int ForkExec(int n) {
  char path[] = "/bin/true";
  char* argv[] = {path, nullptr};
  std::vector<double> us;
  auto cpu_us = [] {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
  };
  double cpu_start = 0;
  for (int i = 0; i < n + 20; ++i) {
    if (i == 20) cpu_start = cpu_us();
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
  const double cpu_per_round = (cpu_us() - cpu_start) / n;
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
  rusage u0{}, u1{};
  for (int i = 0; i < n + 20; ++i) {
    if (i == 20) ::getrusage(RUSAGE_SELF, &u0);
    auto out = runner.Run(spec, never, nullptr);
    if (!out || out->exit_code != 0) return 1;
  }
  ::getrusage(RUSAGE_SELF, &u1);
  auto us = [](const rusage& u) {
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
  };
  std::printf("{\"cpu_us\": %.1f, \"n\": %d}\n", (us(u1) - us(u0)) / n, n);
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
  if (argc == 3 && std::strcmp(argv[1], "--runner-exec") == 0) return RunnerExec(std::max(1, std::atoi(argv[2])));
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: %s STATE_DIR... | %s --fork-exec N | %s --pair FILE\n", argv[0], argv[0], argv[0]);
    return 2;
  }
  return RunAgents(std::vector<std::string>(argv + 1, argv + argc));
}
