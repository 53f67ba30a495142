#include "core/os_user.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <vector>

namespace labgate::core {
namespace {

const passwd* PasswdEntry(std::vector<char>& buf, passwd& pw) {
  buf.resize(16384);
  passwd* found = nullptr;
  if (getpwuid_r(geteuid(), &pw, buf.data(), buf.size(), &found) != 0) return nullptr;
  return found;
}

}  // namespace

std::string CurrentUserName() {
  std::vector<char> buf;
  passwd pw{};
  if (const passwd* entry = PasswdEntry(buf, pw)) return entry->pw_name;
  return "uid:" + std::to_string(geteuid());
}

std::string HomeDirectory() {
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') return home;
  std::vector<char> buf;
  passwd pw{};
  if (const passwd* entry = PasswdEntry(buf, pw)) return entry->pw_dir;
  return "/";
}

std::string ExpandHome(const std::string& path) {
  if (path == "~") return HomeDirectory();
  if (path.rfind("~/", 0) == 0) return HomeDirectory() + path.substr(1);
  return path;
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

namespace {

std::optional<Account> FromPasswd(bool by_uid, uid_t uid, const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  const int rc = by_uid ? getpwuid_r(uid, &pw, buf.data(), buf.size(), &found)
                        : getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr) return std::nullopt;
  return Account{found->pw_uid, found->pw_gid, found->pw_name};
}

}  // namespace

std::optional<std::uint32_t> ParseId(const std::string& text) {
  if (text.empty() || text.size() > 10 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const unsigned long long value = std::stoull(text);
  if (value >= 4294967295ULL) return std::nullopt;
  return static_cast<std::uint32_t>(value);
}

std::optional<Account> AccountOf(uid_t uid) { return FromPasswd(true, uid, ""); }

std::optional<Account> FindAccount(const std::string& name) {
  if (name.empty()) return std::nullopt;
  return FromPasswd(false, 0, name);
}

std::optional<gid_t> FindGroup(const std::string& name) {
  if (name.empty()) return std::nullopt;
  std::vector<char> buf(65536);
  group gr{};
  group* found = nullptr;
  if (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) return std::nullopt;
  return found->gr_gid;
}

std::vector<gid_t> GroupsOf(const Account& account) {
  if (account.name.empty()) return {};
  std::vector<gid_t> groups(64);
  for (;;) {
    int n = static_cast<int>(groups.size());
    if (getgrouplist(account.name.c_str(), account.gid, groups.data(), &n) >= 0) {
      groups.resize(static_cast<std::size_t>(n));
      return groups;
    }
    groups.resize(static_cast<std::size_t>(n) > groups.size() ? static_cast<std::size_t>(n) : groups.size() * 2);
  }
}

}  // namespace labgate::core
