#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

/// Edits of hosts.toml that change one [[hosts]] or [[nodes]] entry and keep every other byte
/// (comments, blank lines, order, line endings) as it was.
///
/// What belongs to an entry: its `[[hosts]]`/`[[nodes]]` header line; the comment lines directly
/// above that header (no blank line between); its keys and the subtables that follow it
/// (`[hosts.screen]` ...); and comment lines directly after its last key (no blank line between)
/// unless they run straight into the next header, in which case they are that header's. Blank
/// lines and comment blocks separated by a blank line from the entry are not its.
namespace labgate::inventory {

/// A new [[hosts]] entry as `labgate hosts add` writes it; empty or unset fields are left out.
struct HostEntry {
  std::string id;
  std::string address;
  std::optional<std::int64_t> port;
  std::string user;
  std::string identity_file;
  std::vector<std::string> groups;
  std::vector<std::string> tags;
  std::vector<std::string> capabilities;
  std::string device;
  std::string owner;
  std::string purpose;
  std::string role;
  std::string proxy_jump;
  std::string comment;  // a `# ...` line above the entry (control characters become spaces)
};

/// Where one [[hosts]] or [[nodes]] entry sits in the text (1-based, inclusive).
struct EntryLocation {
  std::string list;     // "hosts" or "nodes"
  int header_line = 0;  // the [[hosts]] line
  int first_line = 0;   // its first line, attached comments included
  int last_line = 0;    // its last line, subtables included
};

/// Finds the entry with this id; kNotFound when no [[hosts]] or [[nodes]] entry has it.
core::Result<EntryLocation> LocateEntry(std::string_view text, std::string_view id);

/// Appends a [[hosts]] entry right after the last [[hosts]] entry (and its subtables), or at the
/// end when there is none. Refuses an id that `local` or any [[hosts]]/[[nodes]] entry uses.
core::Result<std::string> AddHost(std::string_view text, const HostEntry& entry);

/// Removes the [[hosts]] or [[nodes]] entry with this id (see the namespace comment for what
/// belongs to it) and one blank line that separated it, so blocks stay one blank line apart.
core::Result<std::string> RemoveEntry(std::string_view text, std::string_view id);

/// Sets keys of the entry's own table (never its subtables), in order: an existing value is
/// replaced in place (an inline `# comment` after it stays), a new key goes after the entry's last
/// key, and an empty value removes the key's line(s). Refuses `id`, `password` and `passphrase`.
core::Result<std::string> SetKeys(std::string_view text, std::string_view id,
                                  const std::vector<std::pair<std::string, std::string>>& assignments);

/// The TOML text `SetKeys` writes for KEY=VALUE: `port` an integer (a string when VALUE is not
/// one, so validation names the key); groups, tags, capabilities, allow and deny arrays of strings
/// ("a,b" or a TOML array literal); anything else a basic string.
core::Result<std::string> TomlValueFor(std::string_view key, std::string_view value);

/// A TOML basic string: "..." with quotes, backslashes and control characters escaped.
std::string TomlString(std::string_view value);

/// Read-modify-write of an inventory file under an exclusive flock on PATH.lock (0600): reads the
/// file, applies `edit`, runs `validate` on the result and only then replaces the file atomically
/// (temp file in the same directory with the original's mode, fsync, rename, fsync of the
/// directory). A symlinked PATH edits the file it points to. On any error the file is untouched
/// and the error says why. Waits at most `lock_wait` for another editor. Safe across threads and
/// processes.
core::Status EditInventoryFile(const std::string& path,
                               const std::function<core::Result<std::string>(const std::string&)>& edit,
                               const std::function<core::Status(const std::string& new_text)>& validate,
                               std::chrono::milliseconds lock_wait = std::chrono::seconds(10));

}  // namespace labgate::inventory
