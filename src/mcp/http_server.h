#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gateway/gateway.h"
#include "inventory/inventory.h"

namespace labgate::mcp {

/// What the Streamable HTTP listener needs, resolved from [gateway] http_* (DESIGN §5).
struct HttpSettings {
  std::string listen;        // "127.0.0.1:7023", "[::1]:7023" or "unix:/path"
  std::string token;         // the bearer token itself; never logged
  std::string token_source;  // where it came from, for messages: a file path or "$NAME"
  std::string tls_cert_file;
  std::string tls_key_file;
  std::vector<std::string> allowed_origins;
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::size_t max_connections = 512;
  std::size_t max_sessions = 1024;
  std::chrono::seconds session_idle{1800};
  std::chrono::seconds read_timeout{30};  // a request's header and body, and an idle keep-alive
};

/// The shortest token accepted from the operator's file or variable.
inline constexpr std::size_t kMinHttpTokenLength = 32;

/// Resolves the token reference of `g` (http_token_env, http_token_file, or STATE_DIR/http.token,
/// which is created on first use) and copies the limits. Fails with what to do.
core::Result<HttpSettings> HttpSettingsFor(const inventory::GatewaySettings& g);

/// Called for a request refused in a way worth an audit record (a wrong token), with the peer's
/// address and why; never with the token.
using HttpRefusedFn = std::function<void(const std::string& peer, const std::string& why)>;

/// MCP over Streamable HTTP at /mcp, on one I/O thread; tool calls run on session workers as on
/// stdio. Sessions are kept by Mcp-Session-Id; a call's progress and elicitations travel on its
/// POST's event stream.
class HttpServer {
 public:
  /// Binds and starts serving; fails when the address cannot be bound or TLS files are unusable.
  static core::Result<std::unique_ptr<HttpServer>> Start(gateway::Gateway& gateway, HttpSettings settings,
                                                          HttpRefusedFn refused);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// The endpoint clients use: "http://127.0.0.1:7023/mcp", "https://…", or "unix:/path (/mcp)".
  std::string url() const;
  /// Ends every session (cancelling its calls), closes the listener and joins the I/O thread.
  void Stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The token of an `Authorization: Bearer TOKEN` header value; "" for anything else.
std::string BearerToken(std::string_view authorization);

/// Whether a request carrying `Origin: origin` may use the endpoint on `listen`: the listener's
/// own origins (localhost names for a loopback address) and `extra` pass, everything else,
/// including "null", does not. Compared case-insensitively.
bool OriginAllowed(std::string_view origin, const std::string& listen, bool tls, const std::vector<std::string>& extra);

/// DNS-rebinding protection: on a loopback listener a request must name a loopback host
/// (localhost, 127.x, [::1]) or the host of one of `extra` origins in its Host header. Any Host
/// passes on other listeners, where a reverse proxy or a LAN name is expected.
bool HostAllowed(std::string_view host, const std::string& listen, const std::vector<std::string>& extra);

}  // namespace labgate::mcp
