#include "core/os_user.h"

#include <pwd.h>
#include <unistd.h>

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

}  // namespace labgate::core
