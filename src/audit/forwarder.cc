#include "audit/forwarder.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include <spdlog/spdlog.h>

#include "core/json_parse.h"

namespace labgate::audit {

using Clock = std::chrono::steady_clock;

struct AuditForwarder::State {
  explicit State(std::unique_ptr<ForwardSink> s) : sink(std::move(s)), destination(sink->Describe()) {}

  std::unique_ptr<ForwardSink> sink;
  const std::string destination;
  mutable std::mutex mutex;
  std::condition_variable wake;     // the thread: a line was queued, or Stop
  mutable std::condition_variable changed;  // waiters: a line was sent, delivery failed, stop
  std::deque<std::string> queue;
  std::uint64_t queued_total = 0;  // lines ever queued: ticket numbers
  std::uint64_t done_total = 0;    // lines sent or dropped
  std::uint64_t sent = 0;
  std::uint64_t lost = 0;
  std::uint64_t lost_reported = 0;
  bool failing = false;
  bool failing_reported = false;
  std::optional<Clock::time_point> last_failing_report;
  int ok_streak = 0;
  std::string last_error;
  bool stopping = false;
  bool exited = false;
  Clock::time_point stop_deadline{};
  TroubleHandler trouble;
};

AuditForwarder::AuditForwarder(std::unique_ptr<ForwardSink> sink)
    : state_(std::make_shared<State>(std::move(sink))) {
  std::thread thread([state = state_] { Loop(state); });
  thread_id_ = thread.get_id();
  // Stop waits for the thread through `exited`, with a limit; the thread owns its share of the
  // state, so one stuck in a send can finish after this object is gone.
  thread.detach();
}

AuditForwarder::~AuditForwarder() { Stop(); }

void AuditForwarder::SetTroubleHandler(TroubleHandler handler) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->trouble = std::move(handler);
}

std::uint64_t AuditForwarder::Forward(std::string line) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.stopping) {
    ++s.lost;
    return 0;
  }
  if (s.queue.size() >= kMaxQueued) {
    // The oldest line that is not being sent right now goes.
    s.queue.erase(s.queue.begin() + (s.queue.size() > 1 ? 1 : 0));
    ++s.lost;
    ++s.done_total;
  }
  s.queue.push_back(std::move(line));
  s.wake.notify_one();
  return ++s.queued_total;
}

void AuditForwarder::WaitSent(std::uint64_t ticket, Clock::time_point deadline) const {
  if (ticket == 0 || std::this_thread::get_id() == thread_id_) return;
  const State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  s.changed.wait_until(lock, deadline, [&] { return s.done_total >= ticket || s.failing || s.stopping; });
}

void AuditForwarder::Loop(const std::shared_ptr<State>& state) {
  State& s = *state;
  std::chrono::milliseconds backoff{100};
  std::unique_lock<std::mutex> lock(s.mutex);
  for (;;) {
    s.wake.wait(lock, [&] { return s.stopping || !s.queue.empty(); });
    if (s.queue.empty() || (s.stopping && Clock::now() >= s.stop_deadline)) break;
    const std::string line = s.queue.front();
    lock.unlock();
    const Json record = core::ParseUntrustedJson(line);
    core::Status status = core::Ok();
    try {
      status = s.sink->Send(line, record);
    } catch (const std::exception& e) {
      status = core::MakeError(core::ErrorCode::kInternal, std::string("sending failed: ") + e.what());
    }
    lock.lock();
    TroubleHandler report;
    Json details;
    if (status) {
      s.queue.pop_front();
      ++s.sent;
      ++s.done_total;
      if (++s.ok_streak >= 2) backoff = std::chrono::milliseconds{100};
      if (s.failing && s.ok_streak >= kResumeAfter) {
        s.failing = false;
        if (s.failing_reported) {
          report = s.trouble;
          details = {{"state", "resumed"}, {"destination", s.destination}, {"lost", s.lost - s.lost_reported}};
          s.lost_reported = s.lost;
        }
      }
    } else {
      s.ok_streak = 0;
      s.last_error = status.error().message;
      if (!s.failing) {
        s.failing = true;
        const auto now = Clock::now();
        s.failing_reported = !s.last_failing_report || now - *s.last_failing_report >= kTroubleInterval;
        if (s.failing_reported) {
          s.last_failing_report = now;
          report = s.trouble;
          details = {{"state", "failing"},
                     {"destination", s.destination},
                     {"error", status.error().message},
                     {"queued", s.queue.size()},
                     {"why", "copies wait here and are sent again, oldest first, once the log store answers"}};
        }
      }
    }
    s.changed.notify_all();
    if (report) {
      lock.unlock();
      report(details);
      lock.lock();
    }
    if (!status) {
      // Wait before trying again; a Stop during the wait ends it, and then the drain deadline
      // bounds every wait.
      auto until = Clock::now() + backoff;
      if (s.stopping) until = std::min(until, s.stop_deadline);
      const bool was_stopping = s.stopping;
      s.wake.wait_until(lock, until, [&] { return s.stopping && !was_stopping; });
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }
  s.lost += s.queue.size();
  s.done_total += s.queue.size();
  s.queue.clear();
  s.exited = true;
  s.changed.notify_all();
}

void AuditForwarder::Stop() {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  if (!s.stopping) {
    s.stopping = true;
    // A store that is already failing gets no drain time: a CLI command on a machine whose
    // journald is gone must not hang on its way out.
    s.stop_deadline = Clock::now() + (s.failing ? std::chrono::milliseconds(0) : kDrainTime);
  }
  s.wake.notify_all();
  s.changed.notify_all();
  // The thread checks the deadline between sends; one send may take the sink's own timeouts.
  if (!s.changed.wait_until(lock, s.stop_deadline + std::chrono::seconds(3), [&] { return s.exited; })) {
    spdlog::warn("audit copies to {}: a send is still stuck after the drain time; leaving it", s.destination);
    s.lost += s.queue.size();
  }
  s.trouble = nullptr;
}

std::string AuditForwarder::Describe() const { return state_->destination; }

std::uint64_t AuditForwarder::sent() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->sent;
}

std::uint64_t AuditForwarder::lost() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->lost;
}

AuditForwarder::Health AuditForwarder::health() const {
  const State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  return Health{s.destination, s.sent, s.lost, s.queue.size(), s.failing, s.failing ? s.last_error : std::string()};
}

namespace {

// The lines the storage appends during one Append on this thread: the gap record's composer
// runs inside the inner storage's Append, so it finds the list through here.
thread_local std::vector<std::string>* t_appended = nullptr;
// Copies a kSynced append still waits for, in AfterAppend.
thread_local std::vector<std::pair<AuditForwarder*, std::uint64_t>> t_waits;

class AppendedLines {
 public:
  explicit AppendedLines(std::vector<std::string>& lines) : outer_(t_appended) { t_appended = &lines; }
  ~AppendedLines() { t_appended = outer_; }
  AppendedLines(const AppendedLines&) = delete;
  AppendedLines& operator=(const AppendedLines&) = delete;

 private:
  std::vector<std::string>* outer_;
};

}  // namespace

ForwardingAuditStorage::ForwardingAuditStorage(AuditStorage& inner, std::vector<AuditForwarder*> forwarders)
    : inner_(inner), forwarders_(std::move(forwarders)) {}

void ForwardingAuditStorage::SetGapComposer(ComposeGap compose) {
  if (!compose) {
    inner_.SetGapComposer(nullptr);
    return;
  }
  inner_.SetGapComposer([compose = std::move(compose)](std::string_view last, std::string_view dropped) {
    auto line = compose(last, dropped);
    if (line && t_appended) t_appended->push_back(*line);
    return line;
  });
}

core::Status ForwardingAuditStorage::Append(const ComposeLine& compose, Durability durability) {
  std::vector<std::string> lines;
  core::Status status = core::Ok();
  {
    AppendedLines scope(lines);
    status = inner_.Append(
        [&](std::string_view last) {
          auto line = compose(last);
          if (line) lines.push_back(line->line);
          return line;
        },
        durability);
  }
  if (!status) return status;
  for (AuditForwarder* f : forwarders_) {
    std::uint64_t ticket = 0;
    for (auto& line : lines) ticket = f->Forward(line);
    if (durability == Durability::kSynced) t_waits.emplace_back(f, ticket);
  }
  return status;
}

core::Status ForwardingAuditStorage::AfterAppend() {
  // The file first: a record the disk does not hold is not waited for elsewhere either.
  core::Status synced = inner_.AfterAppend();
  // One deadline for all destinations: two slow stores cost one wait, not two.
  const auto deadline = Clock::now() + kSyncWait;
  auto waits = std::move(t_waits);
  t_waits.clear();
  if (synced) {
    for (const auto& [forwarder, ticket] : waits) forwarder->WaitSent(ticket, deadline);
  }
  return synced;
}

}  // namespace labgate::audit
