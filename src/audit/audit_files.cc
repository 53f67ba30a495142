#include "audit/audit_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/json_parse.h"

namespace labgate::audit {
namespace {

constexpr int kHeadVersion = 1;

}  // namespace

std::string HeadPath(const std::string& path) { return path + ".head"; }
std::string LockPath(const std::string& path) { return path + ".lock"; }
std::string RotatedPath(const std::string& path, std::uint64_t index) { return path + "." + std::to_string(index); }

std::vector<std::uint64_t> RotatedIndices(const std::string& path) {
  const std::filesystem::path log(path);
  const std::string prefix = log.filename().string() + ".";
  const std::filesystem::path dir = log.parent_path().empty() ? std::filesystem::path(".") : log.parent_path();
  std::vector<std::uint64_t> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    // Up to 18 digits always fits; a leading zero would name the same index twice.
    if (digits.size() > 18 || digits[0] == '0' ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    out.push_back(std::stoull(digits));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> AuditFiles(const std::string& path) {
  std::vector<std::string> files;
  for (std::uint64_t index : RotatedIndices(path)) files.push_back(RotatedPath(path, index));
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) files.push_back(path);
  return files;
}

std::string EncodeHead(const AuditHead& head) {
  nlohmann::json j = {{"v", kHeadVersion}, {"seq", head.seq}, {"hash", head.hash}};
  std::string out = j.dump();
  if (out.size() > kHeadSize - 1) {
    // Hashes are 64 hex digits; anything longer is a broken invariant, not an input error.
    (void)std::fprintf(stderr, "labgate: audit head record too long (%zu bytes)\n", out.size());
    std::abort();
  }
  out.resize(kHeadSize - 1, ' ');
  out.push_back('\n');
  return out;
}

std::optional<AuditHead> HeadOfRecord(std::string_view line) {
  nlohmann::json j = core::ParseUntrustedJson(line);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto seq = j.find("seq");
  auto hash = j.find("hash");
  if (seq == j.end() || !seq->is_number_unsigned() || hash == j.end() || !hash->is_string()) return std::nullopt;
  return AuditHead{seq->get<std::uint64_t>(), hash->get<std::string>()};
}

std::optional<AuditHead> ParseHead(std::string_view bytes) {
  nlohmann::json j = core::ParseUntrustedJson(bytes);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto v = j.find("v");
  auto seq = j.find("seq");
  auto hash = j.find("hash");
  if (v == j.end() || !v->is_number_integer() || v->get<int>() != kHeadVersion) return std::nullopt;
  if (seq == j.end() || !seq->is_number_unsigned()) return std::nullopt;
  if (hash == j.end() || !hash->is_string()) return std::nullopt;
  return AuditHead{seq->get<std::uint64_t>(), hash->get<std::string>()};
}

core::Result<std::optional<AuditHead>> ReadHeadFile(const std::string& head_path) {
  int fd = ::open(head_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<AuditHead>();
    return core::MakeError(core::ErrorCode::kIo, "cannot open " + head_path + ": " + std::strerror(errno));
  }
  std::string bytes(kHeadSize + 1, '\0');
  ssize_t got = ::pread(fd, bytes.data(), bytes.size(), 0);
  const int err = errno;
  ::close(fd);
  if (got < 0) return core::MakeError(core::ErrorCode::kIo, "cannot read " + head_path + ": " + std::strerror(err));
  bytes.resize(static_cast<std::size_t>(got));
  if (bytes.empty()) return std::optional<AuditHead>();
  auto head = ParseHead(bytes);
  if (!head) {
    return core::MakeError(
        core::ErrorCode::kParse,
        head_path + " is not a labgate audit head file (expected {\"v\":1,\"seq\":N,\"hash\":\"...\"})");
  }
  return std::optional<AuditHead>(std::move(*head));
}

}  // namespace labgate::audit
