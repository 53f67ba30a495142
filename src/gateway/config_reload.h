#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "core/result.h"
#include "gateway/runtime.h"

namespace labgate::gateway {

/// What the filesystem says about a file's current content: inode, size and modification time.
/// Two different stamps mean the file was replaced or written.
struct FileStamp {
  ino_t inode = 0;
  off_t size = 0;
  long long mtime_ns = 0;
  bool operator==(const FileStamp& other) const {
    return inode == other.inode && size == other.size && mtime_ns == other.mtime_ns;
  }
  bool operator!=(const FileStamp& other) const { return !(*this == other); }
};

/// The file's stamp, or nullopt when it cannot be read (deleted, mid-rename).
std::optional<FileStamp> StampOf(const std::string& path);

/// Loads `path`, validates it exactly as startup does, and puts it in force in `runtime`
/// (node sessions and pooled SSH connections stay). On any problem the running inventory stays
/// in force, the problem is audited (`policy.reload_refused`, with `why`) and returned.
/// On success the notes say which settings need a restart to change.
core::Result<std::vector<std::string>> ReloadInventory(Runtime& runtime, const std::string& path, const std::string& why);

}  // namespace labgate::gateway
