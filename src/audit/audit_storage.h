#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace labgate::audit {

/// Builds the next line from the last complete line of the log ("" when the log is empty).
using ComposeLine = std::function<core::Result<std::string>(std::string_view last_line)>;

/// Where audit lines go. Appends are serialised across threads and processes, and durable
/// (on disk) when Append returns success.
class AuditStorage {
 public:
  virtual ~AuditStorage() = default;
  /// Under an exclusive lock: reads the last line, asks `compose` for the next, appends it
  /// with a newline and syncs it to disk. Nothing is written when `compose` fails.
  virtual core::Status Append(const ComposeLine& compose) = 0;
  /// Human-readable location, for messages.
  virtual std::string Describe() const = 0;
};

/// An append-only JSONL file, mode 0600 in a 0700 directory, locked with flock(2) so several
/// labgate processes on one machine can share it. Thread-safe.
class FileAuditStorage final : public AuditStorage {
 public:
  explicit FileAuditStorage(std::string path) : path_(std::move(path)) {}
  core::Status Append(const ComposeLine& compose) override;
  std::string Describe() const override { return path_; }

 private:
  std::string path_;
};

}  // namespace labgate::audit
