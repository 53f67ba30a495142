#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/result.h"

namespace labgate::gateway {

/// A stored capture, readable as `labgate://artifacts/ID` through MCP resources/read.
struct Artifact {
  std::string id;
  std::string mime_type;
  std::string target;
  std::string action;      // "screen.record", ...
  std::string created_at;  // RFC 3339
  std::uint64_t bytes = 0;
  std::string sha256;

  std::string Uri() const;
};

/// Captures kept in `dir` (0700, files 0600) within a total size and an age; the oldest go
/// first. Several labgate processes of one state dir may share it: every file is written
/// atomically and pruning tolerates files that vanish under it. Thread-safe.
class ArtifactStore {
 public:
  ArtifactStore(std::string dir, std::uint64_t max_bytes, std::chrono::seconds max_age, const core::Clock& clock);

  /// `sha256` (hex), when the caller has it already, saves hashing the data again.
  core::Result<Artifact> Save(std::string_view data, const std::string& mime_type, const std::string& target,
                              const std::string& action, const std::string& sha256 = "");
  /// The artifact and its bytes; kNotFound for an unknown, expired or malformed id.
  core::Result<std::pair<Artifact, std::string>> Read(std::string_view id) const;
  /// Newest first.
  std::vector<Artifact> List() const;

  /// The id in "labgate://artifacts/ID", or nullopt for any other URI.
  static std::optional<std::string> IdFromUri(std::string_view uri);

  /// Where the files are kept (STATE_DIR/artifacts in a Runtime).
  const std::string& dir() const { return dir_; }

 private:
  void Prune(const std::string& keep);

  std::string dir_;
  std::uint64_t max_bytes_;
  std::chrono::seconds max_age_;
  const core::Clock& clock_;
  mutable std::mutex mutex_;
};

}  // namespace labgate::gateway
