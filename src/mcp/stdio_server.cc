#include "mcp/stdio_server.h"

#include <unistd.h>

#include <cerrno>
#include <optional>
#include <spdlog/spdlog.h>

#include "core/line_framer.h"
#include "core/os_user.h"
#include "mcp/outbox.h"
#include "mcp/resources.h"
#include "mcp/session.h"
#include "mcp/tasks.h"
#include "mcp/tools.h"

namespace labgate::mcp {

int ServeStdio(gateway::Gateway& gateway, int in_fd, int out_fd, const std::string& os_user) {
  FdOutbox outbox(out_fd);
  ThreadTaskRunner tasks(256);
  std::optional<ArtifactResources> artifacts;
  if (gateway.artifacts()) artifacts.emplace(*gateway.artifacts());
  Session session(outbox, tasks, MakeTools(gateway), os_user, artifacts ? &*artifacts : nullptr);
  BindToGateway(session, gateway);
  core::LineFramer framer(kMaxLineBytes);

  char buf[65536];
  for (;;) {
    ssize_t n = ::read(in_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (auto& frame : framer.Feed(std::string_view(buf, static_cast<std::size_t>(n)))) {
      if (frame.oversized) {
        session.HandleOversized(frame.dropped_bytes, kMaxLineBytes);
      } else {
        session.HandleLine(frame.line);
      }
    }
    if (outbox.broken()) break;
  }
  if (auto last = framer.Finish()) session.HandleLine(last->line);
  spdlog::info("MCP client closed the connection; stopping calls in flight");
  session.Shutdown();
  return 0;
}

}  // namespace labgate::mcp
