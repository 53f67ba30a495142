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
/// The inverse of RunReportJson, for reports that crossed the operator socket.
core::Result<RunReport> RunReportFromJson(const nlohmann::json& json);
/// "local: exit 0 in 12 ms" (or what went wrong instead).
std::string OneLineSummary(const TargetRunResult& r);
/// Summary first, then each target's output.
std::string RunReportText(const RunReport& report);

/// A capture's metadata, flat: the result's info (width, height, bytes, format, durationMs; or
/// the location fields; or devices) plus target, via, action, actionId, decision, rule,
/// backend, mimeType, uri, tookMs and error. Never the bytes.
nlohmann::json CaptureReportJson(const CaptureReport& report);
/// One line: "screen.snapshot on local: png 320x240, 1234 bytes (x11, 80 ms)" or the error.
std::string CaptureReportText(const CaptureReport& report);

/// A file action for tools and the CLI: structured (no content for read: the caller adds it)
/// and as text for people (a read's text content included).
nlohmann::json FileReportJson(const FileReport& report);
std::string FileReportText(const FileReport& report);

nlohmann::json TargetsJson(const std::vector<TargetView>& views);
/// Aligns rows into columns separated by two spaces; the first row is the header.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

/// A table: id, kind, online, capabilities, groups, device, purpose.
std::string TargetsText(const std::vector<TargetView>& views);
/// The same table from TargetsJson's rows (as they come over the operator socket).
std::string TargetsTextFromJson(const nlohmann::json& rows);

}  // namespace labgate::gateway
