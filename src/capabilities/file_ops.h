#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

/// The `file` capability's operations, and the local half of them (used by `local` and by a
/// node agent on its own machine).
namespace labgate::capabilities {

/// One directory entry or stat result, as every path (local, SFTP, node) reports it.
struct FileInfo {
  std::string path;  // absolute
  std::string name;  // the last component
  std::string type;  // "file", "directory", "symlink" or "other"
  std::uint64_t size = 0;
  std::uint32_t mode = 0;  // permission bits (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string owner;  // user name where known, else the uid as text
  std::string group;
  std::int64_t mtime = 0;   // seconds since the epoch
  std::string link_target;  // symlinks: what the link says (not followed)
};
nlohmann::json EncodeFileInfo(const FileInfo& info);
core::Result<FileInfo> DecodeFileInfo(const nlohmann::json& json);

/// Bytes read from a file.
struct FileData {
  std::string bytes;
  std::uint64_t offset = 0;
  std::uint64_t file_size = 0;  // the whole file's size when it was read
  /// The whole file's SHA-256 (hex): set when the read covered the whole file.
  std::optional<std::string> sha256;
};

/// How a write may treat what is there.
struct WriteOptions {
  std::optional<std::uint32_t> mode;  // permission bits; default: keep the old file's, else 0644 less umask
  bool create_only = false;           // refuse when the path exists (and never replace one that appears meanwhile)
  bool overwrite = true;              // false: refuse when the path exists
  /// The SHA-256 (hex) the current content must have, so a write never clobbers a file someone
  /// changed since it was read. An empty string means "the file must not exist".
  std::optional<std::string> expected_sha256;
  /// The content's own SHA-256 when the caller (the gateway) has computed it already, so a
  /// transport need not hash it again; never taken from a tool argument.
  std::string content_sha256;
  /// Write as root through sudo (SSH hosts with a sudo password); set by the gateway only.
  bool as_root = false;
};

/// What a write did.
struct WriteOutcome {
  bool created = false;                         // no file was there before
  std::optional<std::string> previous_sha256;   // the content it replaced
  std::uint64_t previous_size = 0;
  std::string sha256;                           // the new content
  std::uint64_t size = 0;
  std::uint32_t mode = 0;
};

/// Refuses a write whose expectedSha256 does not match `current` (the digest of what is there;
/// nullopt when nothing is), saying what changed.
core::Status CheckExpectedDigest(const std::string& path, const WriteOptions& options,
                                 const std::optional<std::string>& current);

nlohmann::json EncodeWriteOutcome(const WriteOutcome& outcome);
core::Result<WriteOutcome> DecodeWriteOutcome(const nlohmann::json& json);
nlohmann::json EncodeWriteOptions(const WriteOptions& options);
core::Result<WriteOptions> DecodeWriteOptions(const nlohmann::json& json);

/// File operations on one target, reached one way (this machine, SFTP, a node's agent). Paths
/// are absolute and normalised; none of the operations follows a symlink in the final
/// component, and the local one follows none anywhere in the path. One accessor serves one
/// call at a time.
class FileAccessor {
 public:
  virtual ~FileAccessor() = default;
  /// The login's home directory, for `~`.
  virtual core::Result<std::string> Home() = 0;
  /// `path` with every symlink resolved; when only the last component is missing, its
  /// resolved parent plus that name.
  virtual core::Result<std::string> RealPath(const std::string& path) = 0;
  /// The path itself (a symlink is reported as one).
  virtual core::Result<FileInfo> Stat(const std::string& path) = 0;
  /// A directory's entries, sorted by name, at most `max_entries` (`truncated` says if more).
  virtual core::Result<std::vector<FileInfo>> List(const std::string& path, std::size_t max_entries,
                                                   bool* truncated) = 0;
  /// `length` bytes from `offset` of a regular file (length 0: to the end). Refused when the
  /// bytes asked for exceed `max_bytes`.
  virtual core::Result<FileData> Read(const std::string& path, std::uint64_t offset, std::uint64_t length,
                                      std::uint64_t max_bytes) = 0;
  /// Replaces (or creates) a regular file atomically: readers see the old content or the new,
  /// never part of it.
  virtual core::Result<WriteOutcome> Write(const std::string& path, std::string_view content,
                                           const WriteOptions& options) = 0;
};

/// This machine's files, as the user labgate runs as.
std::unique_ptr<FileAccessor> LocalFiles();

/// One atomic write on this machine in steps, for content that arrives in chunks (a node's
/// agent): Open checks what is there (no symlink, expected digest, create-only) and creates the
/// temporary file beside the target; Append adds bytes; Commit syncs, sets mode and owner, and
/// renames (or links, for create-only) it into place. Destroyed before Commit, it removes the
/// temporary file and leaves the target as it was.
class LocalFileWriter {
 public:
  static core::Result<std::unique_ptr<LocalFileWriter>> Open(const std::string& path, const WriteOptions& options);
  ~LocalFileWriter();
  LocalFileWriter(const LocalFileWriter&) = delete;
  LocalFileWriter& operator=(const LocalFileWriter&) = delete;

  core::Status Append(std::string_view bytes);
  std::uint64_t size() const { return size_; }
  /// `content_sha256` (hex), when given, must be the digest of what was appended, or nothing
  /// replaces the target: bytes damaged on the way never land.
  core::Result<WriteOutcome> Commit(const std::string& content_sha256 = "");

 private:
  LocalFileWriter() = default;
  struct State;
  std::unique_ptr<State> state_;
  std::uint64_t size_ = 0;
};

/// `bytes` is text a caller can be shown as is: valid UTF-8 without NUL.
bool LooksLikeText(std::string_view bytes);

}  // namespace labgate::capabilities
