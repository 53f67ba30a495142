#include "policy/file_policy.h"

#include <algorithm>

#include "core/text.h"

namespace labgate::policy {
namespace {

bool FileUnder(std::string_view path, std::string_view dir) {
  return path == dir || (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

bool FileEndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Whether some component of `path` before its last is `dir` (".ssh" in /home/a/.ssh/id_rsa).
bool InDirectoryNamed(std::string_view path, std::string_view dir) {
  const std::string needle = "/" + std::string(dir) + "/";
  return path.find(needle) != std::string_view::npos;
}

Classification SecretReason(std::string_view path, std::string_view what) {
  return Classification{Risk::kPrivileged, "builtin:secret file",
                        "`" + std::string(path) + "` is " + std::string(what) +
                            "; reading it hands a credential to the caller. An operator can admit it with a read "
                            "allow rule for this path",
                        std::string(path)};
}

}  // namespace

core::Result<std::string> NormalizeFilePath(std::string_view path, std::string_view home) {
  if (path.empty()) return core::MakeError(core::ErrorCode::kInvalidArgument, "the path is empty: give an absolute path");
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "the path " + core::Clip(path, 120) +
                                 " holds a control character (newline, tab, escape, ...); such names cannot be shown "
                                 "faithfully in rules or the audit log, so labgate does not handle them");
    }
  }
  std::string full;
  if (path == "~" || path.substr(0, 2) == "~/") {
    if (home.empty() || home[0] != '/') {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "the path " + std::string(path) + " starts with ~ but the target's home directory is "
                                                               "unknown; give an absolute path");
    }
    full = std::string(home) + std::string(path.substr(1));
  } else if (path[0] == '~') {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the path " + core::Clip(path, 120) + " names another user's home (~user); give it as an "
                                                                  "absolute path");
  } else if (path[0] != '/') {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the path " + core::Clip(path, 120) + " is relative; give an absolute path (or ~/...)");
  } else {
    full = std::string(path);
  }
  std::vector<std::string_view> parts;
  std::string_view rest = full;
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (std::string_view part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? std::string("/") : out;
}

std::optional<Classification> SecretFile(std::string_view path, const std::vector<std::string>& protected_paths,
                                         std::string_view home) {
  for (const std::string& p : protected_paths) {
    std::string own = p;
    if (own.rfind("~/", 0) == 0) {
      if (home.empty()) continue;
      own = std::string(home) + own.substr(1);
    }
    while (own.size() > 1 && own.back() == '/') own.pop_back();
    if (FileUnder(path, own)) {
      return Classification{Risk::kPrivileged, "builtin:labgate state",
                            "`" + std::string(path) + "` is labgate's own configuration, state or audit log (" + p +
                                "), which only an operator reads or changes",
                            std::string(path)};
    }
  }
  const std::string_view base = core::Basename(path);
  if (InDirectoryNamed(path, ".ssh") && base.rfind("id_", 0) == 0 && !FileEndsWith(base, ".pub")) {
    return SecretReason(path, "an SSH private key");
  }
  if (FileUnder(path, "/etc/ssh") && base.rfind("ssh_host_", 0) == 0 && FileEndsWith(base, "_key")) {
    return SecretReason(path, "an SSH host private key");
  }
  if (core::OneOf(path, {"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/security/opasswd"})) {
    return SecretReason(path, "the password hashes of this machine's accounts");
  }
  if (FileUnder(path, "/etc/ssl/private") || FileUnder(path, "/etc/letsencrypt/archive") ||
      (FileUnder(path, "/etc/letsencrypt/live") && base.rfind("privkey", 0) == 0) || FileUnder(path, "/etc/labgate")) {
    return SecretReason(path, "a TLS private key or a service's secret store");
  }
  if (core::OneOf(base, {".netrc", ".pgpass", ".git-credentials", ".vault-token", ".my.cnf", ".boto", ".s3cfg"})) {
    return SecretReason(path, "a credential store");
  }
  struct Store {
    const char* dir;   // a directory component
    const char* file;  // a file below it, or "" for everything below it
    const char* what;
  };
  static constexpr Store kStores[] = {
      {".aws", "credentials", "cloud credentials"},
      {".docker", "config.json", "container registry credentials"},
      {".kube", "config", "Kubernetes credentials"},
      {".gnupg", "", "a GnuPG keyring"},
      {".password-store", "", "a password store"},
      {"gh", "hosts.yml", "GitHub CLI credentials"},
      {".config/rclone", "rclone.conf", "cloud storage credentials"},
  };
  for (const Store& s : kStores) {
    if (!InDirectoryNamed(path, s.dir)) continue;
    if (s.file[0] == '\0' || base == s.file) return SecretReason(path, s.what);
  }
  return std::nullopt;
}

bool HoldsPrivateKey(std::string_view content) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  constexpr std::string_view kKey = "PRIVATE KEY-----";
  for (std::size_t at = content.find(kBegin); at != std::string_view::npos; at = content.find(kBegin, at + 1)) {
    const std::size_t eol = std::min(content.find('\n', at), content.size());
    const std::string_view line = content.substr(at, eol - at);
    if (line.find(kKey) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace labgate::policy
