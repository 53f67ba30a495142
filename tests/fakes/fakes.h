#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "audit/audit_storage.h"
#include "audit/forwarder.h"
#include "core/clock.h"
#include "core/process_runner.h"
#include "gateway/executor.h"
#include "gateway/gateway.h"
#include "mcp/outbox.h"
#include "mcp/tasks.h"

namespace labgate::fakes {

/// A clock that stands still until told to move.
class FakeClock final : public core::Clock {
 public:
  std::chrono::system_clock::time_point Now() const override { return now_; }
  std::chrono::steady_clock::time_point SteadyNow() const override { return steady_; }
  void Advance(std::chrono::milliseconds d) { now_ += d, steady_ += d; }

 private:
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));
  std::chrono::steady_clock::time_point steady_{};
};

/// Audit storage in memory: records every line, or fails when told to.
class FakeAuditStorage final : public audit::AuditStorage {
 public:
  core::Status Append(const audit::ComposeLine& compose, audit::Durability durability) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (fail_) return core::MakeError(core::ErrorCode::kIo, "disk full (fake)");
    auto line = compose(lines_.empty() ? std::string_view() : std::string_view(lines_.back()));
    if (!line) return line.error();
    if (std::exchange(lose_next_write_, false)) {
      return core::MakeError(core::ErrorCode::kIo, "disk full during the write (fake): the line was taken back off");
    }
    lines_.push_back(line->line);
    durabilities_.push_back(durability);
    return core::Ok();
  }
  std::string Describe() const override { return "fake audit storage"; }

  void set_fail(bool fail) {
    std::lock_guard<std::mutex> lock(mutex_);
    fail_ = fail;
  }
  /// The next append composes its line and then fails to write it (a full disk mid-write).
  void lose_next_write() {
    std::lock_guard<std::mutex> lock(mutex_);
    lose_next_write_ = true;
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  std::vector<nlohmann::json> records() const {
    std::vector<nlohmann::json> out;
    for (const auto& l : lines()) out.push_back(nlohmann::json::parse(l));
    return out;
  }
  std::vector<audit::Durability> durabilities() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return durabilities_;
  }
  void set_lines(std::vector<std::string> lines) {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_ = std::move(lines);
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
  std::vector<audit::Durability> durabilities_;
  bool fail_ = false;
  bool lose_next_write_ = false;
};

/// A log store for audit copies: records every line it was sent; while `down`, refuses them.
/// Shared with the test through a shared_ptr (the forwarder owns the sink).
class FakeForwardSink final : public audit::ForwardSink {
 public:
  struct State {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::string> received;
    int refused = 0;
    bool down = false;
    bool flap = false;  // every second send fails
    int sends = 0;
    bool hold = false;  // Send waits while set
    int entered = 0;    // Send calls begun
    std::chrono::milliseconds delay{0};  // each send takes this long
  };
  explicit FakeForwardSink(std::shared_ptr<State> state) : state_(std::move(state)) {}
  core::Status Send(std::string_view line, const audit::Json&) override {
    std::unique_lock<std::mutex> lock(state_->mutex);
    ++state_->entered;
    state_->changed.notify_all();
    state_->changed.wait(lock, [&] { return !state_->hold; });
    if (state_->delay.count() > 0) {
      lock.unlock();
      std::this_thread::sleep_for(state_->delay);
      lock.lock();
    }
    if (state_->down || (state_->flap && ++state_->sends % 2 == 0)) {
      ++state_->refused;
      state_->changed.notify_all();
      return core::MakeError(core::ErrorCode::kUnavailable, "log store down (fake)");
    }
    state_->received.emplace_back(line);
    state_->changed.notify_all();
    return core::Ok();
  }
  std::string Describe() const override { return "fake log store"; }

 private:
  std::shared_ptr<State> state_;
};

/// Outcomes a fake replays in the order they were scripted, then `fallback`. Unlocked: its owner
/// holds its own mutex around every use.
class ScriptedOutcomes {
 public:
  void Push(core::Result<core::ProcessOutcome> reply) { replies_.push_back(std::move(reply)); }
  core::Result<core::ProcessOutcome> Next(core::ProcessOutcome fallback) {
    if (replies_.empty()) return fallback;
    auto reply = replies_.front();
    replies_.pop_front();
    return reply;
  }

 private:
  std::deque<core::Result<core::ProcessOutcome>> replies_;
};

/// Records what it was asked to run and replays scripted outcomes (default: exit 0).
class FakeProcessRunner final : public core::ProcessRunner {
 public:
  core::Result<core::ProcessOutcome> Run(const core::ProcessSpec& spec, const core::CancelToken&,
                                         core::OutputListener*) override {
    bool stop = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      specs_.push_back(spec);
      stop = spec.on_stop && deadline_passes_;
    }
    if (stop) {
      // As the real runner does on a deadline: the hook first (it may run processes itself).
      spec.on_stop();
      core::ProcessOutcome late;
      late.timed_out = true;
      return late;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    core::ProcessOutcome ok;
    ok.exit_code = 0;
    return replies_.Next(ok);
  }
  /// From now on, a process with an on_stop hook runs past its deadline.
  void DeadlinesPass() {
    std::lock_guard<std::mutex> lock(mutex_);
    deadline_passes_ = true;
  }
  void Script(core::Result<core::ProcessOutcome> reply) {
    std::lock_guard<std::mutex> lock(mutex_);
    replies_.Push(std::move(reply));
  }
  std::vector<core::ProcessSpec> specs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return specs_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<core::ProcessSpec> specs_;
  ScriptedOutcomes replies_;
  bool deadline_passes_ = false;
};

/// An executor that records each target and request, and what the audit log held at that moment.
class FakeExecutor final : public gateway::Executor {
 public:
  explicit FakeExecutor(const FakeAuditStorage* audit = nullptr) : audit_(audit) {}
  const char* via() const override { return "local"; }
  /// What State reports for every target (a node's pairing grants, revocation).
  gateway::TargetState state;
  gateway::TargetState State(const inventory::Target&) const override { return state; }
  core::Result<core::ProcessOutcome> Run(const inventory::Target& target, const capabilities::RunRequest& request,
                                         const core::CancelToken&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    calls_.push_back(Call{target.id, request, audit_ ? audit_->lines().size() : 0});
    if (responder_) return responder_(target, request);
    core::ProcessOutcome ok;
    ok.exit_code = 0;
    ok.out.text = "ran on " + target.id + "\n";
    return replies_.Next(ok);
  }
  /// Answers every Run from now on (instead of the scripted outcomes): a machine with state.
  using Responder = std::function<core::Result<core::ProcessOutcome>(const inventory::Target&,
                                                                     const capabilities::RunRequest&)>;
  void set_responder(Responder responder) {
    std::lock_guard<std::mutex> lock(mutex_);
    responder_ = std::move(responder);
  }
  /// The next Run answers with this instead of "exit 0".
  void Script(core::Result<core::ProcessOutcome> reply) {
    std::lock_guard<std::mutex> lock(mutex_);
    replies_.Push(std::move(reply));
  }
  struct Call {
    std::string target;
    capabilities::RunRequest request;
    std::size_t audit_lines_before = 0;
  };
  std::vector<Call> calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

  /// Records each capture; answers with the scripted results in order, after `capture_delay`.
  /// With nothing scripted it does what every executor does (the target's backends through Run).
  core::Result<capabilities::CaptureResult> Capture(const inventory::Target& target,
                                                    const capabilities::CaptureRequest& request,
                                                    const core::CancelToken& cancel) override {
    std::optional<core::Result<capabilities::CaptureResult>> reply;
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      captures_.push_back(CaptureCall{target.id, request, audit_ ? audit_->lines().size() : 0});
      if (!capture_replies_.empty()) {
        reply = capture_replies_.front();
        capture_replies_.pop_front();
      }
      delay = capture_delay_;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    if (reply) return *reply;
    return gateway::Executor::Capture(target, request, cancel);
  }
  /// The next Capture answers with this.
  void ScriptCapture(core::Result<capabilities::CaptureResult> reply) {
    std::lock_guard<std::mutex> lock(mutex_);
    capture_replies_.push_back(std::move(reply));
  }
  /// How long each Capture takes (a recording in progress).
  void set_capture_delay(std::chrono::milliseconds delay) {
    std::lock_guard<std::mutex> lock(mutex_);
    capture_delay_ = delay;
  }
  struct CaptureCall {
    std::string target;
    capabilities::CaptureRequest request;
    std::size_t audit_lines_before = 0;
  };
  std::vector<CaptureCall> captures() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return captures_;
  }

 private:
  const FakeAuditStorage* audit_;
  mutable std::mutex mutex_;
  std::vector<Call> calls_;
  ScriptedOutcomes replies_;
  Responder responder_;
  std::vector<CaptureCall> captures_;
  std::deque<core::Result<capabilities::CaptureResult>> capture_replies_;
  std::chrono::milliseconds capture_delay_{0};
};

/// A human who gives a scripted answer and records each question.
class FakeConfirmer final : public gateway::Confirmer {
 public:
  explicit FakeConfirmer(gateway::ConfirmAnswer::Kind kind) : kind_(kind) {}
  gateway::ConfirmAnswer Ask(const gateway::ConfirmQuestion& q, const core::CancelToken&) override {
    questions_.push_back(q);
    return {kind_, "fake human", ""};
  }
  const std::vector<gateway::ConfirmQuestion>& questions() const { return questions_; }

 private:
  gateway::ConfirmAnswer::Kind kind_;
  std::vector<gateway::ConfirmQuestion> questions_;
};

/// Records every message a session sends; tests can wait for a given one.
class RecordingOutbox final : public mcp::Outbox {
 public:
  void Send(const nlohmann::json& message, const nlohmann::json& related) override {
    std::lock_guard<std::mutex> lock(mutex_);
    messages_.push_back(message);
    related_.push_back(related);
    cv_.notify_all();
  }
  /// For each message, the request it was sent for (null: the session as a whole).
  std::vector<nlohmann::json> related() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return related_;
  }
  std::vector<nlohmann::json> messages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }
  /// Waits (up to 10 s) for a message matching `pred`; returns it or null.
  nlohmann::json WaitFor(const std::function<bool(const nlohmann::json&)>& pred) {
    std::unique_lock<std::mutex> lock(mutex_);
    nlohmann::json found;
    cv_.wait_for(lock, std::chrono::seconds(10), [&] {
      for (const auto& m : messages_) {
        if (pred(m)) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  nlohmann::json WaitForId(const nlohmann::json& id) {
    return WaitFor([&](const nlohmann::json& m) { return m.contains("id") && m["id"] == id && !m.contains("method"); });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<nlohmann::json> messages_;
  std::vector<nlohmann::json> related_;
};

/// A machine for the capture code: records each command it was asked to run and replays
/// scripted outcomes in order (then: exit 0, no output).
class FakeCommandHost final : public capabilities::CommandHost {
 public:
  explicit FakeCommandHost(std::string name = "maul") : name_(std::move(name)) {}
  std::string Name() const override { return name_; }
  core::Result<core::ProcessOutcome> Run(const capabilities::RunRequest& request, const core::CancelToken&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(request);
    core::ProcessOutcome ok;
    ok.exit_code = 0;
    return replies_.Next(ok);
  }
  void Script(core::Result<core::ProcessOutcome> reply) {
    std::lock_guard<std::mutex> lock(mutex_);
    replies_.Push(std::move(reply));
  }
  std::vector<capabilities::RunRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  std::string name_;
  mutable std::mutex mutex_;
  std::vector<capabilities::RunRequest> requests_;
  ScriptedOutcomes replies_;
};

}  // namespace labgate::fakes
