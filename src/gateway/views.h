#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gateway/gateway.h"

/// How results look to callers: one JSON shape for MCP structuredContent and `--json`, and one
/// text rendering for people and for MCP text content.
namespace labgate::gateway {

nlohmann::json TargetRunResultJson(const TargetRunResult& r);
/// {summary, results[], error?}
nlohmann::json RunReportJson(const RunReport& report);
/// "local: exit 0 in 12 ms" (or what went wrong instead).
std::string OneLineSummary(const TargetRunResult& r);
/// Summary first, then each target's output.
std::string RunReportText(const RunReport& report);

nlohmann::json TargetsJson(const std::vector<TargetView>& views);
/// Aligns rows into columns separated by two spaces; the first row is the header.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

/// A table: id, kind, online, capabilities, groups, device, purpose.
std::string TargetsText(const std::vector<TargetView>& views);

}  // namespace labgate::gateway
