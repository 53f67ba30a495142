#include "mcp/resources.h"

#include "core/base64.h"

namespace labgate::mcp {
namespace {

constexpr std::size_t kMaxListed = 100;

Json Describe(const gateway::Artifact& a) {
  return Json{{"uri", a.Uri()},
              {"name", a.action + "-" + a.target + "-" + a.id},
              {"title", a.action + " on " + a.target + " at " + a.created_at},
              {"mimeType", a.mime_type},
              {"size", a.bytes}};
}

}  // namespace

Json ArtifactResources::List() {
  Json out = Json::array();
  for (const auto& a : store_.List()) {
    if (out.size() == kMaxListed) break;
    out.push_back(Describe(a));
  }
  return out;
}

Json ArtifactResources::Templates() {
  return Json::array({{{"uriTemplate", "labgate://artifacts/{id}"},
                       {"name", "capture"},
                       {"title", "A screen, camera or video capture labgate kept"},
                       {"description", "Captures are kept for the gateway's artifact_max_age_s within artifact_max_bytes."}}});
}

core::Result<Json> ArtifactResources::Read(const std::string& uri) {
  auto id = gateway::ArtifactStore::IdFromUri(uri);
  if (!id) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "unknown resource '" + uri + "': labgate serves labgate://artifacts/ID (see resources/list)");
  }
  auto found = store_.Read(*id);
  if (!found) return found.error();
  const auto& [artifact, data] = *found;
  return Json::array({{{"uri", artifact.Uri()}, {"mimeType", artifact.mime_type}, {"blob", core::Base64Encode(data)}}});
}

}  // namespace labgate::mcp
