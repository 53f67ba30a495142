#pragma once

#include <sys/types.h>

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

/// The account with this login name, or written as a number; nullopt when the passwd database
/// has no such user (a bare number is then still accepted as a uid without a name).
std::optional<Account> FindAccount(const std::string& name_or_uid);
std::optional<Account> AccountOf(uid_t uid);

/// The gid of a group given by name or number; nullopt when there is no such group.
std::optional<gid_t> FindGroup(const std::string& name_or_gid);

/// Every group `account` belongs to: its primary group and the supplementary ones.
std::vector<gid_t> GroupsOf(const Account& account);

}  // namespace labgate::core
