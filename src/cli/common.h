#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/args.h"
#include "core/result.h"
#include "gateway/gateway.h"
#include "inventory/inventory.h"

/// What the CLI verbs share: exit codes, error printing, config loading, the operator socket.
namespace labgate::cli {

inline constexpr int kExitUsage = 2;
inline constexpr int kExitLabgateError = 255;  // like ssh: labgate itself failed, not the command
inline constexpr int kExitTimeout = 124;       // like timeout(1)
inline constexpr int kExitNodeRefused = 78;    // EX_CONFIG: the gateway refuses this node; re-pair, do not restart

/// Prints "labgate: MESSAGE" to stderr and returns `code`.
int Fail(const std::string& message, int code = kExitLabgateError);

core::Result<inventory::Inventory> LoadInventoryFor(const Args& args);

/// " --config FILE" when the user named one, for commands we suggest in messages.
std::string ConfigHint(const Args& args);

/// Whether a gateway daemon serves this config (its operator socket answers).
bool GatewayRunning(const inventory::Inventory& inv);

/// Calls the running gateway's operator socket. kUnavailable (with what to run) when no gateway
/// serves this config.
core::Result<nlohmann::json> CallGateway(const inventory::Inventory& inv, const Args& args, const std::string& method,
                                         nlohmann::json params, std::int64_t timeout_ms = 60000);

/// Calls the operator socket of the gateway daemon, or else of any running embedded gateway
/// (`labgate mcp`) of this state dir: approvals live in the shared state dir, so any will do.
core::Result<nlohmann::json> CallOperator(const inventory::Inventory& inv, const Args& args, const std::string& method,
                                          nlohmann::json params);

/// Writes every byte (stdout/stderr passthrough of command output).
void WriteAll(int fd, const std::string& data);

/// Verbs of the gateway daemon and nodes (gateway_commands.cc).
int GatewayVerb(const Args& args);
int PairVerb(const Args& args);
int NodesVerb(const Args& args);
int NodeVerb(const Args& args);
/// `labgate mcp`: bridges to a running gateway's MCP socket, else serves an embedded gateway.
int McpVerb(const Args& args);
/// A human at this process's controlling terminal (/dev/tty), or null when there is none.
std::unique_ptr<gateway::Confirmer> TerminalHuman();
/// `labgate approvals list|approve|deny|grant|grants|revoke`.
int ApprovalsVerb(const Args& args);
/// `labgate screen|camera|location TARGET ...` (capture_commands.cc): writes the file, prints its metadata.
int CaptureVerb(const Args& args);
int FileVerb(const Args& args);
/// `labgate audit verify|tail|query` (audit_commands.cc): reads the audit log, never changes it.
int AuditVerb(const Args& args);
/// `labgate checks list|run` (checks_commands.cc): routine checks, through the daemon or in-process.
int ChecksVerb(const Args& args);
/// `labgate doctor` (doctor_commands.cc): the guide's final checklist; exit 0 all pass, 1 any fails.
int DoctorVerb(const Args& args);
/// `labgate hosts check` (doctor_commands.cc): inventory validation, reachability, stale keys, owner/purpose.
int HostsCheckVerb(const Args& args);
/// `labgate hosts add|remove|set` (hosts_commands.cc): edits hosts.toml in place, keeping its comments.
int HostsEditVerb(const Args& args);

}  // namespace labgate::cli
