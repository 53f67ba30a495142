#include "audit/forwarder.h"

#include <algorithm>

#include "core/json_parse.h"

namespace labgate::audit {

AuditForwarder::AuditForwarder(std::unique_ptr<ForwardSink> sink) : sink_(std::move(sink)) {
  thread_ = std::thread([this] { Loop(); });
}

AuditForwarder::~AuditForwarder() { Stop(); }

void AuditForwarder::SetTroubleHandler(TroubleHandler handler) {
  std::lock_guard<std::mutex> lock(mutex_);
  trouble_ = std::move(handler);
}

void AuditForwarder::Forward(std::string line, bool wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) {
    ++lost_;
    return;
  }
  if (queue_.size() >= kMaxQueued) {
    // The oldest line that is not being sent right now goes.
    queue_.erase(queue_.begin() + (queue_.size() > 1 ? 1 : 0));
    ++lost_;
    ++done_total_;
  }
  queue_.push_back(std::move(line));
  const std::uint64_t ticket = ++queued_total_;
  wake_.notify_one();
  // The forwarder's own thread appends its trouble events: it must not wait for itself.
  if (!wait || std::this_thread::get_id() == thread_.get_id()) return;
  sent_cv_.wait_for(lock, kSyncWait, [&] { return done_total_ >= ticket || failing_ || stopping_; });
}

void AuditForwarder::Loop() {
  std::chrono::milliseconds backoff{100};
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() || (stopping_ && std::chrono::steady_clock::now() >= stop_deadline_)) break;
    const std::string line = queue_.front();
    lock.unlock();
    const Json record = core::ParseUntrustedJson(line);
    core::Status status = sink_->Send(line, record);
    lock.lock();
    TroubleHandler report;
    Json details;
    if (status) {
      backoff = std::chrono::milliseconds{100};
      queue_.pop_front();
      ++sent_;
      ++done_total_;
      if (failing_) {
        failing_ = false;
        report = trouble_;
        details = {{"state", "resumed"}, {"destination", sink_->Describe()}, {"lost", lost_ - lost_reported_}};
        lost_reported_ = lost_;
      }
      sent_cv_.notify_all();
    } else {
      last_error_ = status.error().message;
      if (!failing_) {
        failing_ = true;
        report = trouble_;
        details = {{"state", "failing"},
                   {"destination", sink_->Describe()},
                   {"error", status.error().message},
                   {"queued", queue_.size()},
                   {"why", "copies wait here and are sent again, oldest first, once the log store answers"}};
        sent_cv_.notify_all();
      }
    }
    if (report) {
      lock.unlock();
      report(details);
      lock.lock();
    }
    if (!status) {
      // Wait before trying again; a Stop during the wait ends it, and then the drain deadline
      // bounds every wait.
      auto until = std::chrono::steady_clock::now() + backoff;
      if (stopping_) until = std::min(until, stop_deadline_);
      const bool was_stopping = stopping_;
      wake_.wait_until(lock, until, [&] { return stopping_ && !was_stopping; });
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }
}

void AuditForwarder::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      // A store that is already failing gets no drain time: a CLI
      // command on a machine whose journald is gone must not hang on its way out.
      stop_deadline_ = std::chrono::steady_clock::now() + (failing_ ? std::chrono::milliseconds(0) : kDrainTime);
    }
    wake_.notify_all();
    sent_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  lost_ += queue_.size();
  done_total_ += queue_.size();
  queue_.clear();
  trouble_ = nullptr;
}

std::uint64_t AuditForwarder::sent() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sent_;
}

AuditForwarder::Health AuditForwarder::health() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return Health{sink_->Describe(), sent_, lost_, queue_.size(), failing_, failing_ ? last_error_ : std::string()};
}

std::uint64_t AuditForwarder::lost() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lost_;
}

namespace {
// The lines the storage appends during one Append on this thread: the gap record's composer
// runs inside the inner storage's Append, so it finds the list through here.
thread_local std::vector<std::string>* t_appended = nullptr;
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
  std::vector<std::string>* outer = t_appended;
  t_appended = &lines;
  core::Status status = inner_.Append(
      [&](std::string_view last) {
        auto line = compose(last);
        if (line) lines.push_back(*line);
        return line;
      },
      durability);
  t_appended = outer;
  if (!status) return status;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const bool wait = durability == Durability::kSynced && i + 1 == lines.size();
    for (AuditForwarder* f : forwarders_) f->Forward(lines[i], wait);
  }
  return status;
}

}  // namespace labgate::audit
