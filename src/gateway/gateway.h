#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "capabilities/system_run.h"
#include "core/cancel.h"
#include "core/clock.h"
#include "gateway/executor.h"
#include "inventory/inventory.h"

namespace labgate::gateway {

/// A `run` as a caller asked for it, before resolution.
struct RunCall {
  std::vector<std::string> selectors;
  capabilities::Command command;
  std::optional<std::int64_t> timeout_ms;
  std::string cwd;
  std::vector<std::pair<std::string, std::string>> env;  // added to the command's environment
};

/// What happened on one target.
struct TargetRunResult {
  std::string target;
  std::string via;
  std::optional<int> exit_code;
  std::optional<std::string> signal;
  bool timed_out = false;
  bool cancelled = false;
  std::string stdout_text;  // valid UTF-8, redacted, capped
  std::string stderr_text;
  bool truncated = false;
  std::int64_t duration_ms = 0;
  std::optional<std::string> error;  // set when it could not run at all (refused, unreachable, ...)
  std::string action_id;

  bool ok() const { return !error && !timed_out && !cancelled && exit_code == 0; }
};

/// The whole answer to a `run`: per-target results, or an error before any target was tried.
struct RunReport {
  std::vector<TargetRunResult> results;
  std::optional<core::Error> error;
};

/// Told about each finished target of a fan-out, in completion order. Called from worker
/// threads, one call at a time.
using ProgressFn = std::function<void(std::size_t done, std::size_t total, const TargetRunResult&)>;

/// A target as `targets` shows it.
struct TargetView {
  const inventory::Target* target = nullptr;
  TargetState state;
};

/// The one guardrail pipeline every action passes (DESIGN §3): resolve, decide, audit intent,
/// execute, audit result, redact. Thread-safe; concurrent calls share nothing mutable.
class Gateway {
 public:
  /// `local` executes the built-in target; SSH and node executors are added by later modules.
  Gateway(std::shared_ptr<const inventory::Inventory> inventory, audit::AuditLog& audit, Executor& local,
          const core::Clock& clock, Executor* ssh = nullptr, Executor* nodes = nullptr);

  RunReport Run(const audit::Actor& actor, const RunCall& call, const core::CancelToken& cancel,
                const ProgressFn& progress = nullptr);

  core::Result<std::vector<TargetView>> Targets(const std::vector<std::string>& selectors) const;

  const inventory::Inventory& inventory() const { return *inventory_; }

 private:
  TargetRunResult RunOne(const audit::Actor& actor, const inventory::Target& target, const RunCall& call,
                         std::chrono::milliseconds timeout, const core::CancelToken& cancel);
  Executor* ExecutorFor(const inventory::Target& target) const;
  void AuditRefusal(const audit::Actor& actor, const RunCall& call, const std::string& rule, const std::string& why);

  std::shared_ptr<const inventory::Inventory> inventory_;
  audit::AuditLog& audit_;
  Executor& local_;
  const core::Clock& clock_;
  Executor* ssh_;
  Executor* nodes_;
};

/// The audit payload of a run: exact argv or shell string, cwd and timeout, redacted.
audit::Json RunPayload(const RunCall& call, std::int64_t timeout_ms);

}  // namespace labgate::gateway
