#pragma once

#include "gateway/artifacts.h"
#include "mcp/session.h"

namespace labgate::mcp {

/// Stored captures as MCP resources: `labgate://artifacts/ID`, newest first (at most 100 listed).
class ArtifactResources final : public ResourceProvider {
 public:
  explicit ArtifactResources(gateway::ArtifactStore& store) : store_(store) {}
  Json List() override;
  Json Templates() override;
  core::Result<Json> Read(const std::string& uri) override;

 private:
  gateway::ArtifactStore& store_;
};

}  // namespace labgate::mcp
