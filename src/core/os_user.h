#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace labgate::core {

/// Login name of the effective uid (from the passwd database, else "uid:N").
std::string CurrentUserName();

/// Home directory: $HOME when set, else the passwd entry.
std::string HomeDirectory();

/// Expands a leading `~` or `~/` to the home directory; other paths are returned as they are.
std::string ExpandHome(const std::string& path);

/// This machine's host name.
std::string HostName();

/// An account: its uid, primary gid and name.
struct Account {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

/// The account with this login name (a name, even when it is all digits); nullopt when the
/// passwd database has none.
std::optional<Account> FindAccount(const std::string& name);
std::optional<Account> AccountOf(uid_t uid);

/// The gid of the group with this name; nullopt when there is none.
std::optional<gid_t> FindGroup(const std::string& name);

/// A uid or gid written in decimal: 0 to 4294967294 (4294967295 is the kernel's "none").
std::optional<std::uint32_t> ParseId(const std::string& text);

/// Every group `account` belongs to: its primary group and the supplementary ones.
std::vector<gid_t> GroupsOf(const Account& account);

}  // namespace labgate::core
