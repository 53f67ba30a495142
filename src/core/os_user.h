#pragma once

#include <string>

namespace labgate::core {

/// Login name of the effective uid (from the passwd database, else "uid:N").
std::string CurrentUserName();

/// Home directory: $HOME when set, else the passwd entry.
std::string HomeDirectory();

/// Expands a leading `~` or `~/` to the home directory; other paths are returned as they are.
std::string ExpandHome(const std::string& path);

/// This machine's host name.
std::string HostName();

}  // namespace labgate::core
