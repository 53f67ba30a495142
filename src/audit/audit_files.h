#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

/// How one audit log is laid out on disk. For a log at PATH:
///   PATH            the file records are appended to
///   PATH.1, PATH.2  rotated files, oldest first: rotation renames PATH to PATH.<highest + 1>
///   PATH.head       the newest record's seq and hash, rewritten in place after every append
///   PATH.lock       the file every writer holds an exclusive flock(2) on while appending
namespace labgate::audit {

std::string HeadPath(const std::string& path);
std::string LockPath(const std::string& path);
std::string RotatedPath(const std::string& path, std::uint64_t index);

/// Indices n of the rotated files PATH.<n> that exist, ascending.
std::vector<std::uint64_t> RotatedIndices(const std::string& path);

/// The log's files in chain order: PATH.1, PATH.2, … (older first), then PATH when it exists.
std::vector<std::string> AuditFiles(const std::string& path);

/// What PATH.head holds: where the chain ended when it was last written.
struct AuditHead {
  std::uint64_t seq = 0;
  std::string hash;
};

/// The head file is exactly this long, so it can be rewritten in place with one pwrite.
inline constexpr std::size_t kHeadSize = 128;

/// `{"v":1,"seq":N,"hash":"…"}` padded with spaces to kHeadSize - 1 bytes, then '\n'.
std::string EncodeHead(const AuditHead& head);

/// The seq and hash of a sealed record's line: where the chain stands after it. nullopt when
/// the line is not a labgate record.
std::optional<AuditHead> HeadOfRecord(std::string_view line);

/// Parses what EncodeHead wrote; nullopt when the bytes are not a head record.
std::optional<AuditHead> ParseHead(std::string_view bytes);

/// Reads PATH.head: nullopt when it does not exist or is empty; kParse when it holds something
/// else than a head record; kIo when it cannot be read.
core::Result<std::optional<AuditHead>> ReadHeadFile(const std::string& head_path);

}  // namespace labgate::audit
