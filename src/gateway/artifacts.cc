#include "gateway/artifacts.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/clock.h"
#include "core/files.h"
#include "core/hashing.h"
#include "core/json_parse.h"

namespace labgate::gateway {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::MakeError;
using Json = nlohmann::json;

constexpr std::string_view kUriPrefix = "labgate://artifacts/";

bool ValidId(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}


std::optional<Artifact> FromJson(const Json& j) {
  try {
    Artifact a;
    a.id = j.at("id").get<std::string>();
    a.mime_type = j.at("mimeType").get<std::string>();
    a.target = j.at("target").get<std::string>();
    a.action = j.at("action").get<std::string>();
    a.created_at = j.at("createdAt").get<std::string>();
    a.bytes = j.at("bytes").get<std::uint64_t>();
    a.sha256 = j.at("sha256").get<std::string>();
    if (!ValidId(a.id)) return std::nullopt;
    return a;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string Artifact::Uri() const { return std::string(kUriPrefix) + id; }

ArtifactStore::ArtifactStore(std::string dir, std::uint64_t max_bytes, std::chrono::seconds max_age,
                             const core::Clock& clock)
    : dir_(std::move(dir)), max_bytes_(max_bytes), max_age_(max_age), clock_(clock) {}

std::optional<std::string> ArtifactStore::IdFromUri(std::string_view uri) {
  if (uri.substr(0, kUriPrefix.size()) != kUriPrefix) return std::nullopt;
  std::string id(uri.substr(kUriPrefix.size()));
  if (!ValidId(id)) return std::nullopt;
  return id;
}

core::Result<Artifact> ArtifactStore::Save(std::string_view data, const std::string& mime_type,
                                           const std::string& target, const std::string& action,
                                           const std::string& sha256) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  ::chmod(dir_.c_str(), 0700);
  Artifact a;
  a.id = core::HexEncode(core::RandomBytes(16));
  a.mime_type = mime_type;
  a.target = target;
  a.action = action;
  a.created_at = core::FormatTimestamp(clock_.Now());
  a.bytes = data.size();
  a.sha256 = sha256.empty() ? core::Sha256Hex(data) : sha256;
  // Data first, then the metadata that makes it visible: a reader never sees half a file.
  // The data is not synced: artifacts are a cache, a crash may only cut one short, and Read
  // checks the size the metadata records. (Syncing cost a 100 MB `file get` a fifth of its time.)
  if (auto ok = core::WriteFileAtomic(dir_ + "/" + a.id + ".data", data, 0600, false); !ok) return ok.error();
  Json meta = {{"id", a.id},           {"mimeType", a.mime_type}, {"target", a.target}, {"action", a.action},
               {"createdAt", a.created_at}, {"bytes", a.bytes},   {"sha256", a.sha256},
               {"createdAtMs", std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch()).count()}};
  if (auto ok = core::WriteFileAtomic(dir_ + "/" + a.id + ".json", meta.dump()); !ok) {
    ::unlink((dir_ + "/" + a.id + ".data").c_str());
    return ok.error();
  }
  Prune(a.id);
  return a;
}

core::Result<std::pair<Artifact, std::string>> ArtifactStore::Read(std::string_view id) const {
  const std::string sid(id);
  if (!ValidId(sid)) return MakeError(ErrorCode::kNotFound, "no artifact '" + sid + "' (ids are 32 hex digits)");
  auto meta = core::ReadFile(dir_ + "/" + sid + ".json");
  if (!meta) {
    return MakeError(ErrorCode::kNotFound, "no artifact " + sid + ": it never existed here or was pruned (artifacts "
                                           "are kept for [gateway] artifact_max_age_s within artifact_max_bytes)");
  }
  const Json j = core::ParseUntrustedJson(*meta);
  auto a = FromJson(j);
  if (!a || a->id != sid) return MakeError(ErrorCode::kNotFound, "artifact " + sid + " has damaged metadata");
  const std::int64_t created = j.contains("createdAtMs") && j["createdAtMs"].is_number_integer() ? j["createdAtMs"].get<std::int64_t>() : 0;
  if (created < core::EpochMs(clock_.Now()) - std::chrono::duration_cast<std::chrono::milliseconds>(max_age_).count()) {
    return MakeError(ErrorCode::kNotFound, "artifact " + sid + " has expired ([gateway] artifact_max_age_s)");
  }
  auto data = core::ReadFile(dir_ + "/" + sid + ".data");
  if (!data) return MakeError(ErrorCode::kNotFound, "artifact " + sid + " was pruned while being read");
  if (data->size() != a->bytes) {
    return MakeError(ErrorCode::kNotFound, "artifact " + sid + " is damaged (" + std::to_string(data->size()) + " of " +
                                               std::to_string(a->bytes) + " bytes; cut short by a crash?)");
  }
  return std::make_pair(*a, std::move(*data));
}

static std::vector<std::pair<std::int64_t, Artifact>> ScanNewestFirst(const std::string& dir) {
  std::vector<std::pair<std::int64_t, Artifact>> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".json") continue;
    auto text = core::ReadFile(it->path().string());
    if (!text) continue;
    Json j = core::ParseUntrustedJson(*text);
    auto a = FromJson(j);
    if (!a || !j.contains("createdAtMs") || !j["createdAtMs"].is_number_integer()) continue;
    found.emplace_back(j["createdAtMs"].get<std::int64_t>(), *a);
  }
  std::sort(found.begin(), found.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  return found;
}

std::vector<Artifact> ArtifactStore::List() const {
  auto found = ScanNewestFirst(dir_);
  // Expired ones are gone for callers even before the next Save prunes them.
  const std::int64_t oldest_ms = core::EpochMs(clock_.Now()) - std::chrono::duration_cast<std::chrono::milliseconds>(max_age_).count();
  found.erase(std::remove_if(found.begin(), found.end(), [&](const auto& f) { return f.first < oldest_ms; }), found.end());
  std::vector<Artifact> out;
  for (auto& [when, a] : found) out.push_back(std::move(a));
  return out;
}

void ArtifactStore::Prune(const std::string& keep) {
  auto all = ScanNewestFirst(dir_);
  const std::int64_t now_ms = core::EpochMs(clock_.Now());
  const std::int64_t oldest_ms = now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(max_age_).count();
  std::uint64_t total = 0;
  for (const auto& [when, a] : all) {
    total += a.bytes;
    if (a.id == keep) continue;
    if (when < oldest_ms || total > max_bytes_) {
      // Metadata first: once it is gone the artifact is invisible, whatever happens next.
      ::unlink((dir_ + "/" + a.id + ".json").c_str());
      ::unlink((dir_ + "/" + a.id + ".data").c_str());
      total -= a.bytes;
    }
  }
}

}  // namespace labgate::gateway
