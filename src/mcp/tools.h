#pragma once

#include <vector>

#include "gateway/gateway.h"
#include "gateway/views.h"
#include "mcp/session.h"

namespace labgate::mcp {

/// The tools labgate publishes over MCP, bound to a gateway that outlives the session.
/// Only tools that work are listed; none of them approves, pairs, revokes or edits policy.
std::vector<ToolDefinition> MakeTools(gateway::Gateway& gateway);

/// What a session takes from the gateway besides its tools: where its own audit events go, and
/// when a long 2026-07-28 call becomes a task ([gateway] task_after_ms, read at each call).
void BindToGateway(Session& session, gateway::Gateway& gateway);

}  // namespace labgate::mcp
