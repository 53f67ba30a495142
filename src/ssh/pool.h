#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/cancel.h"
#include "core/process_runner.h"
#include "core/result.h"
#include "ssh/connection.h"
#include "ssh/host_spec.h"

namespace labgate::ssh {

struct PoolSettings {
  std::chrono::milliseconds connect_timeout{10000};
  ChannelSettings channels;  // for each host's session
};

/// How an exec went through the pool: the outcome plus how many times it was retried.
struct PoolOutcome {
  core::ProcessOutcome outcome;
  int retries = 0;
};

/// One authenticated session per host, opened lazily on first use and reused for every command
/// (a new channel each). A broken or idle-reaped session is replaced on the next call. A
/// transient fault before the command started is retried once; a command that may have started
/// is never re-run. Thread-safe; a slow or dead host never blocks calls to other hosts.
class Pool {
 public:
  explicit Pool(PoolSettings settings) : settings_(settings) {}

  /// Runs `request` on the host. `retries` (if given) receives the number of retries made,
  /// also when the result is an error.
  core::Result<core::ProcessOutcome> Exec(const HostSpec& spec, const ExecRequest& request,
                                          const core::CancelToken& cancel, int* retries = nullptr);

  /// Closes every pooled session.
  void Clear();

 private:
  struct Entry {
    // One connect per host at a time (other hosts are unaffected), made outside the lock; a
    // call that finds one under way waits on `idle` until its own deadline. (Not a
    // std::timed_mutex: ThreadSanitizer cannot see pthread_mutex_clocklock.)
    std::mutex mutex;
    std::condition_variable idle;
    bool connecting = false;
    std::shared_ptr<Connection> connection;
  };
  std::shared_ptr<Entry> EntryFor(const std::string& id);
  core::Result<std::shared_ptr<Connection>> Acquire(Entry& entry, const HostSpec& spec,
                                                    std::chrono::steady_clock::time_point deadline);

  PoolSettings settings_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

}  // namespace labgate::ssh
