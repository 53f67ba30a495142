#include "ssh/pool.h"

namespace labgate::ssh {

using Steady = std::chrono::steady_clock;

std::shared_ptr<Pool::Entry> Pool::EntryFor(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& entry = entries_[id];
  if (!entry) entry = std::make_shared<Entry>();
  return entry;
}

core::Result<std::shared_ptr<Connection>> Pool::Acquire(Entry& entry, const HostSpec& spec,
                                                        Steady::time_point deadline) {
  // A call waits for another call's connect to the same host only until its own deadline.
  std::unique_lock<std::mutex> lock(entry.mutex);
  if (!entry.idle.wait_until(lock, deadline, [&entry] { return !entry.connecting; })) {
    return core::MakeError(core::ErrorCode::kTimeout, "still connecting to " + spec.id +
                                                          " (for another call) when the deadline passed; the host may "
                                                          "be frozen or overloaded (the command did not start)");
  }
  if (entry.connection && entry.connection->alive()) return entry.connection;
  entry.connection.reset();
  entry.connecting = true;
  lock.unlock();
  const auto connect_deadline = std::min(deadline, Steady::now() + settings_.connect_timeout);
  core::Result<std::shared_ptr<Connection>> conn =
      core::MakeError(core::ErrorCode::kUnavailable, "could not connect to " + spec.id);
  try {
    conn = Connection::Open(spec, connect_deadline, settings_.channels);
  } catch (...) {
    lock.lock();
    entry.connecting = false;  // the next call tries again instead of waiting forever
    entry.idle.notify_all();
    throw;
  }
  lock.lock();
  entry.connecting = false;
  entry.idle.notify_all();
  if (!conn) return conn.error();
  entry.connection = *conn;
  return entry.connection;
}

core::Result<core::ProcessOutcome> Pool::Exec(const HostSpec& spec, const ExecRequest& request,
                                              const core::CancelToken& cancel, int* retries) {
  auto entry = EntryFor(spec.id);
  const auto deadline = Steady::now() + request.timeout;
  ExecRequest attempt_request = request;
  for (int attempt = 0;; ++attempt) {
    if (retries) *retries = attempt;
    auto conn = Acquire(*entry, spec, deadline);
    core::Result<core::ProcessOutcome> result = conn ? (*conn)->Exec(attempt_request, cancel) : conn.error();
    if (result.ok()) return result;
    // Only faults before the command started (kUnavailable) are worth one more try, on a
    // fresh session: the pooled one may be what broke.
    const bool transient = result.error().code == core::ErrorCode::kUnavailable;
    if (conn && transient) {
      std::lock_guard<std::mutex> lock(entry->mutex);
      if (entry->connection == *conn) entry->connection.reset();
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
    if (!transient || attempt == 1 || cancel.cancelled() || left.count() <= 0) {
      if (attempt == 0) return result;
      return core::MakeError(result.error().code, result.error().message + " (after 1 retry)");
    }
    attempt_request.timeout = left;  // the retry gets what is left of the original deadline
  }
}

void Pool::Clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

}  // namespace labgate::ssh
