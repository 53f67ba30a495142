#pragma once

#include <sys/types.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace labgate::testing {

/// A child process with pipes to its stdin and stdout (stderr goes to a file) for driving
/// `labgate` in tests. The destructor kills only this child, by PID, if it still runs.
class Subprocess {
 public:
  Subprocess(const std::vector<std::string>& argv, const std::string& cwd = "");
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  void Write(const std::string& bytes);
  void WriteLine(const std::string& line) { Write(line + "\n"); }
  void Send(const nlohmann::json& message) { WriteLine(message.dump()); }
  void CloseStdin();
  /// The next stdout line, or nullopt at EOF or after `timeout`.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// Reads lines until one parses to a message with this id that is a response.
  nlohmann::json ReadResponse(const nlohmann::json& id, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// Every message read so far.
  const std::vector<nlohmann::json>& seen() const { return seen_; }
  /// Waits for exit; returns the exit status or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string Stderr() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string stderr_path_;
  std::string buffer_;
  std::vector<nlohmann::json> seen_;
  std::optional<int> status_;
};

/// A TCP port on 127.0.0.1 that was free a moment ago (for a gateway's agent listener).
int FreePort();

/// Polls `pred` every 50 ms until it holds or `timeout` passes; returns its last answer.
template <typename Pred>
bool PollUntil(Pred pred, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

/// Runs a command to completion; returns exit status, stdout and stderr.
struct Completed {
  int status = -1;
  std::string out;
  std::string err;
};
Completed RunToCompletion(const std::vector<std::string>& argv, const std::string& cwd = "");

/// A fresh directory under /tmp, removed with its contents at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

/// A `sleep` length no other process on the machine uses ("<whole>.<random digits>"), so /proc
/// finds exactly the processes a test started.
std::string UniqueSleep(int whole_seconds);

/// The processes whose command line contains `marker` (read from /proc), this one excepted.
std::vector<pid_t> PidsWithMarker(const std::string& marker);
/// True while any process's command line contains `marker` (read from /proc).
bool ProcessWithMarkerExists(const std::string& marker);
/// Polls until a process carries `marker`; false if none appeared within `timeout`.
bool WaitUntilPresent(const std::string& marker, std::chrono::milliseconds timeout = std::chrono::seconds(20));
/// Polls until no process carries `marker`; false if one is still there after `timeout`.
bool WaitUntilGone(const std::string& marker, std::chrono::milliseconds timeout);

/// Pairs node `id` with the running gateway of `config`: `labgate pair new --node ID`, then
/// `labgate node pair CODE --state-dir DEVICE_DIR`. "" when it worked, else what failed.
std::string PairNode(const std::string& config, const std::string& id, const std::string& device_dir,
                     const std::string& cwd = "");

/// True when `labgate nodes list --json` (its completed run) shows node `id` online.
bool NodeListedOnline(const Completed& listing, const std::string& id);

/// Waits until the gateway daemon of `config` answers on its operator socket (`labgate nodes list`).
bool GatewayAnswers(const std::string& config, const std::string& cwd,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
/// Waits until `labgate nodes list` for `config` shows node `id` online.
bool NodeOnline(const std::string& config, const std::string& id, const std::string& cwd,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// A file's bytes; "" when it cannot be read.
std::string ReadFile(const std::string& path);
/// A text file's lines, without their '\n'.
std::vector<std::string> ReadLines(const std::string& path);
/// Writes `lines`, each ended by '\n', over `path`.
void WriteLines(const std::string& path, const std::vector<std::string>& lines);

/// Lines of a JSONL file, parsed.
std::vector<nlohmann::json> ReadJsonLines(const std::string& path);

}  // namespace labgate::testing
