#pragma once

#include "gateway/gateway.h"

namespace labgate::mcp {

/// Largest accepted message line. Bigger lines are answered with an error and skipped.
inline constexpr std::size_t kMaxLineBytes = 8 * 1024 * 1024;

/// Serves one MCP session on `in_fd`/`out_fd` until the input ends; then cancels the calls in
/// flight, waits for them and returns 0. Only MCP messages are written to `out_fd`.
/// `os_user` is who the audit log names as the OS user (the peer, for a socket).
int ServeStdio(gateway::Gateway& gateway, int in_fd, int out_fd, const std::string& os_user);

}  // namespace labgate::mcp
