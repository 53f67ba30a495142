#include "mcp/http_server.h"

// Asio's awaitable needs <utility> before it (std::exchange) with this Boost.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "core/base64.h"
#include "core/files.h"
#include "core/hashing.h"
#include "core/json_parse.h"
#include "core/json_rpc.h"
#include "gateway/operator_key.h"
#include "mcp/outbox.h"
#include "mcp/resources.h"
#include "mcp/session.h"
#include "mcp/tasks.h"
#include "mcp/tools.h"

namespace labgate::mcp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace rpc = core::jsonrpc;
using asio::ip::tcp;
using core::ErrorCode;
using core::MakeError;
using Request = http::request<http::string_body>;

// Named rather than anonymous: the coroutine frames of HttpServer::Impl hold these types, and GCC
// warns when a type with external linkage has fields of internal linkage.
namespace http_internal {

constexpr const char* kEndpoint = "/mcp";
constexpr const char* kMetadataPath = "/.well-known/oauth-protected-resource";
// A call that has not answered within this long switches its POST to an event stream, so a
// keep-alive can flow and proxies do not drop the connection.
constexpr auto kJsonAnswerWait = std::chrono::seconds(10);
constexpr auto kKeepAlive = std::chrono::seconds(15);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr std::size_t kHeaderLimit = 16 * 1024;
// After refusing an oversized body, read and discard this much so the client sees the 413
// instead of a reset connection.
constexpr std::size_t kDrainLimit = 64 * 1024 * 1024;

std::string_view View(beast::string_view s) { return std::string_view(s.data(), s.size()); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return Lower(haystack).find(Lower(needle)) != std::string::npos;
}

// Splits "HOST:PORT" ("[v6]:PORT") into the address to bind and the port (validated at load).
std::pair<std::string, std::string> SplitListen(const std::string& listen) {
  auto split = inventory::SplitHostPort(listen).value_or(std::make_pair(listen, std::string()));
  if (split.first == "localhost") split.first = "127.0.0.1";
  return split;
}

// The host of an authority as a Host header or an origin carries it: lower-case, without port or
// an IPv6 literal's brackets.
std::string AuthorityHost(std::string_view authority) {
  std::string host = Lower(authority);
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    return host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  if (auto colon = host.rfind(':'); colon != std::string::npos) host.resize(colon);
  return host;
}

/// The messages the server sends for one client request, handed from session workers to the
/// connection that writes them.
class ResponseStream {
 public:
  explicit ResponseStream(std::function<void()> wake) : wake_(std::move(wake)) {}

  /// Queues an encoded message; `final` for the response, after which nothing more is taken.
  /// An empty final message means the request ended without a response.
  void Push(std::string message, bool final) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (ended_) return;
      queue_.push_back(std::move(message));
      ended_ = final;
    }
    wake_();
  }

  /// Whether Take would return something. Checked right before waiting: a wake posted while the
  /// connection was busy writing found no wait to cut short.
  bool HasQueued() {
    std::lock_guard<std::mutex> lock(mutex_);
    return !queue_.empty();
  }

  /// Everything queued so far; `ended` says the final message is the last of them.
  std::deque<std::string> Take(bool& ended) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::deque<std::string> out;
    out.swap(queue_);
    ended = ended_;
    return out;
  }

 private:
  std::function<void()> wake_;
  std::mutex mutex_;
  std::deque<std::string> queue_;
  bool ended_ = false;
};

/// Sends each message on the stream of the request it belongs to. A message of the session as a
/// whole has no stream to go to (this server offers no GET stream) and is dropped.
class RoutingOutbox final : public Outbox {
 public:
  void Send(const Json& message, const Json& related) override {
    if (related.is_null()) return;
    const bool final = message.contains("id") && message["id"] == related &&
                       (message.contains("result") || message.contains("error"));
    if (auto stream = Route(related, final)) stream->Push(rpc::Encode(message), final);
  }
  void Unanswered(const Json& request_id) override {
    if (auto stream = Route(request_id, true)) stream->Push("", true);
  }
  bool NeedsRequestStream() const override { return true; }
  /// Registers the stream of a request; false when that id already has one.
  bool Open(const Json& request_id, std::shared_ptr<ResponseStream> stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    return streams_.emplace(rpc::Encode(request_id), std::move(stream)).second;
  }
  /// The connection is done with `stream` (answered, or gone).
  void Close(const Json& request_id, const ResponseStream* stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(rpc::Encode(request_id));
    if (it != streams_.end() && it->second.get() == stream) streams_.erase(it);
  }

 private:
  std::shared_ptr<ResponseStream> Route(const Json& related, bool final) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(rpc::Encode(related));
    if (it == streams_.end()) return nullptr;
    auto stream = it->second;
    if (final) streams_.erase(it);
    return stream;
  }

  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<ResponseStream>> streams_;
};

/// One MCP session over HTTP. Its bookkeeping fields belong to the I/O thread.
struct HttpSession {
  HttpSession(gateway::Gateway& gateway, ResourceProvider* resources, const std::string& peer)
      : tasks(256),
        session(std::make_unique<Session>(outbox, tasks, MakeTools(gateway), "http " + peer, resources, "mcp-http")),
        id(core::HexEncode(core::RandomBytes(16))) {
    BindToGateway(*session, gateway);
  }

  RoutingOutbox outbox;
  ThreadTaskRunner tasks;
  std::unique_ptr<Session> session;
  const std::string id;  // Mcp-Session-Id
  std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
  int active = 0;  // requests whose connection waits for an answer
};

/// Shuts ended sessions down (cancelling their calls and waiting for them) off the I/O thread.
class Reaper {
 public:
  Reaper() : thread_([this] { Loop(); }) {}
  ~Reaper() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Add(std::shared_ptr<HttpSession> s) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(s));
    }
    cv_.notify_all();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto s = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      s->session->Shutdown();
      s.reset();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<HttpSession>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

core::Result<std::string> ReadTokenFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
    return MakeError(ErrorCode::kRefused, "the HTTP token file " + path + " can be read or written by others; run `chmod 600 " +
                                              path + "`");
  }
  auto text = core::ReadFile(path);
  if (!text) return MakeError(text.error().code, "cannot read the HTTP token file: " + text.error().message);
  std::string token = *text;
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

}  // namespace http_internal

using namespace http_internal;

std::string BearerToken(std::string_view authorization) {
  if (authorization.size() < 7 || Lower(authorization.substr(0, 7)) != "bearer ") return "";
  std::string_view token = authorization.substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return std::string(token);
}

bool OriginAllowed(std::string_view origin, const std::string& listen, bool tls, const std::vector<std::string>& extra) {
  const std::string o = Lower(origin);
  for (const auto& e : extra) {
    if (Lower(e) == o) return true;
  }
  if (listen.rfind("unix:", 0) == 0) return false;
  const std::string scheme = tls ? "https://" : "http://";
  auto [host, port] = SplitListen(listen);
  std::vector<std::string> own;
  if (inventory::IsLoopbackListen(listen)) {
    for (const char* name : {"localhost", "127.0.0.1", "[::1]"}) own.push_back(scheme + name + ":" + port);
  }
  own.push_back(scheme + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port);
  return std::find(own.begin(), own.end(), o) != own.end();
}

bool HostAllowed(std::string_view host_header, const std::string& listen, const std::vector<std::string>& extra) {
  if (listen.rfind("unix:", 0) == 0 || !inventory::IsLoopbackListen(listen) || host_header.empty()) return true;
  const std::string host = AuthorityHost(host_header);
  if (host == "localhost" || host == "::1") return true;
  unsigned char buf[4];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1 && buf[0] == 127) return true;
  for (const auto& origin : extra) {
    const auto scheme_end = origin.find("://");
    if (scheme_end != std::string::npos && AuthorityHost(std::string_view(origin).substr(scheme_end + 3)) == host) {
      return true;
    }
  }
  return false;
}

core::Result<HttpSettings> HttpSettingsFor(const inventory::GatewaySettings& g) {
  HttpSettings s;
  s.listen = g.http_listen;
  s.tls_cert_file = g.http_tls_cert_file;
  s.tls_key_file = g.http_tls_key_file;
  s.allowed_origins = g.http_allowed_origins;
  s.max_body_bytes = static_cast<std::size_t>(g.http_max_body_bytes);
  s.max_connections = static_cast<std::size_t>(g.http_max_connections);
  s.session_idle = std::chrono::seconds(g.http_session_idle_s);
  if (!g.http_token_env.empty()) {
    const char* value = std::getenv(g.http_token_env.c_str());
    if (!value || !*value) {
      return MakeError(ErrorCode::kNotFound, "gateway.http_token_env names $" + g.http_token_env +
                                                 ", which is not set in the gateway's environment");
    }
    s.token = value;
    s.token_source = "$" + g.http_token_env;
  } else if (!g.http_token_file.empty()) {
    auto token = ReadTokenFile(g.http_token_file);
    if (!token) return token.error();
    s.token = *token;
    s.token_source = g.http_token_file;
  } else {
    const std::string path = g.state_dir + "/http.token";
    if (::mkdir(g.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return MakeError(ErrorCode::kIo, "cannot create state_dir " + g.state_dir + ": " + std::strerror(errno));
    }
    auto token = gateway::EnsureKeyFile(path, "HTTP token");
    if (!token) return token.error();
    s.token = *token;
    s.token_source = path;
  }
  if (s.token.size() < kMinHttpTokenLength || s.token.find_first_of(" \t\r\n") != std::string::npos) {
    return MakeError(ErrorCode::kRefused, "the HTTP bearer token from " + s.token_source + " is shorter than " +
                                              std::to_string(kMinHttpTokenLength) +
                                              " characters or contains white space; make one with `openssl rand "
                                              "-hex 32`");
  }
  return s;
}

struct HttpServer::Impl {
  Impl(gateway::Gateway& gw, HttpSettings s, HttpRefusedFn r) : gateway(gw), settings(std::move(s)), refused(std::move(r)) {
    if (gateway.artifacts()) artifacts.emplace(*gateway.artifacts());
  }

  gateway::Gateway& gateway;
  HttpSettings settings;
  HttpRefusedFn refused;
  std::optional<ArtifactResources> artifacts;
  asio::io_context io{1};
  std::optional<asio::ssl::context> tls;
  std::optional<tcp::acceptor> tcp_acceptor;
  std::optional<asio::local::stream_protocol::acceptor> unix_acceptor;
  std::string url;
  std::thread thread;
  Reaper reaper;
  // I/O thread only:
  std::map<std::string, std::shared_ptr<HttpSession>> sessions;
  std::size_t connections = 0;
  // Connections waiting for their next request, each with a way to close it: at the connection
  // cap, the oldest of them gives way to a new client.
  std::map<std::uint64_t, std::function<void()>> idle;
  std::uint64_t next_connection = 0;
  std::chrono::steady_clock::time_point refused_window{};
  int refused_in_window = 0;
  int refused_suppressed = 0;
  bool stopped = false;

  std::string ResourceMetadataUrl(const Request& req) const {
    std::string host(req[http::field::host]);
    if (host.empty()) host = settings.listen;
    return std::string(tls ? "https://" : "http://") + host + kMetadataPath + kEndpoint;
  }

  // A wrong token is audited; a flood of them is summarised (20 records a minute at most).
  void Refuse(const std::string& peer, const std::string& why) {
    const auto now = std::chrono::steady_clock::now();
    if (now - refused_window > std::chrono::minutes(1)) {
      refused_window = now;
      refused_in_window = 0;
    }
    if (++refused_in_window > 20) {
      ++refused_suppressed;
      return;
    }
    std::string text = why;
    if (refused_suppressed > 0) {
      text += " (and " + std::to_string(refused_suppressed) + " more refusals in the last minute, not recorded one by one)";
      refused_suppressed = 0;
    }
    spdlog::warn("MCP over HTTP: refused a request from {}: {}", peer, text);
    if (refused) refused(peer, text);
  }

  // The session serving 2026-07-28 requests from one address: stateless for the protocol, one per
  // address so that audit records and requestState bindings name it.
  std::map<std::string, std::shared_ptr<HttpSession>> modern_sessions;

  std::shared_ptr<HttpSession> ModernSession(const std::string& address) {
    auto& s = modern_sessions[address];
    if (!s) s = std::make_shared<HttpSession>(gateway, artifacts ? &*artifacts : nullptr, address);
    s->last_used = std::chrono::steady_clock::now();
    return s;
  }

  // The 2026-07-28 rule: MCP-Protocol-Version, Mcp-Method and (for tools/call, resources/read)
  // Mcp-Name must say what the body says. "" when they do.
  static std::string ModernHeaderMismatch(const Request& req, const std::string& method, const Json& params) {
    auto header = [&](const char* name) {
      std::string v(View(req[name]));
      // Values that are not plain ASCII come base64-wrapped: =?base64?...?=
      if (v.size() > 11 && v.rfind("=?base64?", 0) == 0 && v.compare(v.size() - 2, 2, "?=") == 0) {
        if (auto decoded = core::Base64Decode(v.substr(9, v.size() - 11))) v = *decoded;
      }
      return v;
    };
    const std::string version = core::StringOr(params.value("_meta", Json::object()), kMetaProtocolVersion);
    if (header("MCP-Protocol-Version") != version) {
      return "the MCP-Protocol-Version header (" + header("MCP-Protocol-Version") + ") must equal params._meta's " +
             version;
    }
    if (header("Mcp-Method") != method) return "the Mcp-Method header must name the body's method, " + method;
    if (method == "tools/call" || method == "resources/read" || method == "prompts/get" || method.rfind("tasks/", 0) == 0) {
      const char* field = method == "resources/read" ? "uri" : method.rfind("tasks/", 0) == 0 ? "taskId" : "name";
      const std::string name = core::StringOr(params, field);
      if (header("Mcp-Name") != name) return "the Mcp-Name header must be the body's " + name;
    }
    return "";
  }

  // The HTTP status of a 2026-07-28 error answer.
  static http::status ModernStatus(const std::string& message) {
    if (message.find("\"error\"") == std::string::npos) return http::status::ok;
    const Json m = core::ParseUntrustedJson(message);
    const int code = m.is_object() && m.contains("error") ? m["error"].value("code", 0) : 0;
    if (code == rpc::kMethodNotFound) return http::status::not_found;
    if (code == rpc::kInvalidParams || code == rpc::kInvalidRequest || code == kHeaderMismatch ||
        code == kMissingRequiredClientCapability || code == kUnsupportedProtocolVersion) {
      return http::status::bad_request;
    }
    return http::status::ok;
  }

  void EndSession(const std::string& id) {
    auto it = sessions.find(id);
    if (it == sessions.end()) return;
    reaper.Add(std::move(it->second));
    sessions.erase(it);
  }

  // Ends sessions nobody used for session_idle, and when the table is full the least recently used idle one.
  void ExpireSessions(bool make_room) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::string> ended;
    std::string oldest;
    auto oldest_time = now;
    for (const auto& [id, s] : sessions) {
      if (s->active > 0 || s->session->busy()) continue;
      if (now - s->last_used > settings.session_idle) ended.push_back(id);
      if (s->last_used <= oldest_time) {
        oldest_time = s->last_used;
        oldest = id;
      }
    }
    for (const auto& id : ended) EndSession(id);
    for (auto it = modern_sessions.begin(); it != modern_sessions.end();) {
      auto& s = it->second;
      if (s->active == 0 && !s->session->busy() && now - s->last_used > settings.session_idle) {
        reaper.Add(std::move(s));
        it = modern_sessions.erase(it);
      } else {
        ++it;
      }
    }
    if (make_room && sessions.size() >= settings.max_sessions && !oldest.empty()) EndSession(oldest);
  }

  asio::awaitable<void> Janitor() {
    asio::steady_timer timer(io);
    while (!stopped) {
      timer.expires_after(std::chrono::seconds(15));
      beast::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (stopped) break;
      ExpireSessions(false);
    }
  }

  template <class Stream>
  asio::awaitable<void> Write(Stream& stream, http::response<http::string_body>& res) {
    beast::get_lowest_layer(stream).expires_after(kWriteTimeout);
    res.prepare_payload();
    co_await http::async_write(stream, res, asio::use_awaitable);
  }

  // Coroutine parameters are kept simple (GCC 12 mishandles string literals and braced lists
  // in them): responses are built by these plain functions and sent by Send.
  static http::response<http::string_body> MakeReply(const Request& req, http::status status, std::string body,
                                                     const char* content_type = "text/plain; charset=utf-8",
                                                     std::vector<std::pair<http::field, std::string>> headers = {}) {
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::server, "labgate/" LABGATE_VERSION);
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    for (auto& [field, value] : headers) res.set(field, value);
    res.body() = std::move(body);
    res.keep_alive(req.keep_alive());
    return res;
  }

  static http::response<http::string_body> RpcError(const Request& req, http::status status, int code,
                                                    const std::string& message) {
    return MakeReply(req, status, rpc::Encode(rpc::MakeError(nullptr, code, message)), "application/json");
  }

  http::response<http::string_body> Unauthorized(const Request& req, bool wrong_token) const {
    std::string challenge = "Bearer ";
    if (wrong_token) challenge += "error=\"invalid_token\", ";
    challenge += "resource_metadata=\"" + ResourceMetadataUrl(req) + "\"";
    return MakeReply(req, http::status::unauthorized,
                     wrong_token ? "the bearer token is not the gateway's\n"
                                 : "labgate needs `Authorization: Bearer TOKEN`; the token is in the file or variable "
                                   "[gateway] http_token_file / http_token_env names (by default STATE_DIR/http.token)\n",
                     "text/plain; charset=utf-8", {{http::field::www_authenticate, challenge}});
  }

  static http::response<http::string_body> UnsupportedVersion(const Request& req, const std::string& version) {
    Json supported = Json::array();
    for (auto v : kModernProtocolVersions) supported.push_back(std::string(v));
    for (auto v : kProtocolVersions) supported.push_back(std::string(v));
    return MakeReply(req, http::status::bad_request,
                     rpc::Encode(rpc::MakeError(nullptr, kUnsupportedProtocolVersion,
                                                "unsupported MCP-Protocol-Version " + version + "; this server speaks " +
                                                    supported.dump(),
                                                Json{{"supported", supported}, {"requested", version}})),
                     "application/json");
  }

  static http::response<http::string_body> MethodNotAllowed(const Request& req) {
    return MakeReply(req, http::status::method_not_allowed,
                     "POST a JSON-RPC message to /mcp (this server opens no GET event stream)\n",
                     "text/plain; charset=utf-8", {{http::field::allow, "POST, DELETE"}});
  }

  static http::response<http::string_body> TooManySessions(const Request& req) {
    return MakeReply(req, http::status::service_unavailable, "too many MCP sessions are in use; retry when one ends\n",
                     "text/plain; charset=utf-8", {{http::field::retry_after, "5"}});
  }

  template <class Stream>
  asio::awaitable<bool> Send(Stream& stream, http::response<http::string_body> res) {
    co_await Write(stream, res);
    co_return res.keep_alive();
  }

  template <class Stream>
  asio::awaitable<bool> Handle(Stream& stream, Request& req, const std::string& peer) {
    std::string path(req.target());
    if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
    if (path == kMetadataPath || path == std::string(kMetadataPath) + kEndpoint) {
      if (req.method() != http::verb::get) co_return co_await Send(stream, MakeReply(req, http::status::method_not_allowed, "GET only\n"));
      std::string host(req[http::field::host]);
      Json doc = {{"resource", std::string(tls ? "https://" : "http://") + (host.empty() ? settings.listen : host) + kEndpoint},
                  {"resource_name", "labgate MCP gateway"},
                  {"bearer_methods_supported", Json::array({"header"})},
                  {"authorization_servers", Json::array()}};
      co_return co_await Send(stream, MakeReply(req, http::status::ok, doc.dump(), "application/json"));
    }
    if (path != kEndpoint) {
      co_return co_await Send(stream, MakeReply(req, http::status::not_found, "labgate serves MCP at /mcp\n"));
    }
    if (auto origin = View(req[http::field::origin]);
        !origin.empty() && !OriginAllowed(origin, settings.listen, tls.has_value(), settings.allowed_origins)) {
      spdlog::warn("MCP over HTTP: refused a request from {} with Origin {}", peer, std::string(origin));
      co_return co_await Send(stream, MakeReply(req, http::status::forbidden,
                               "Origin " + std::string(origin) +
                                   " may not use this endpoint; an operator can list it in [gateway] "
                                   "http_allowed_origins\n"));
    }
    if (auto host = View(req[http::field::host]); !HostAllowed(host, settings.listen, settings.allowed_origins)) {
      spdlog::warn("MCP over HTTP: refused a request from {} for Host {}", peer, std::string(host));
      co_return co_await Send(stream, MakeReply(req, http::status::forbidden,
                                                "Host " + std::string(host) +
                                                    " is not this gateway (a DNS rebinding attempt?); a reverse proxy "
                                                    "that keeps its own host name lists it in [gateway] "
                                                    "http_allowed_origins\n"));
    }
    const std::string token = BearerToken(View(req[http::field::authorization]));
    if (token.empty()) {
      co_return co_await Send(stream, Unauthorized(req, false));
    }
    if (token.size() != settings.token.size() ||
        CRYPTO_memcmp(token.data(), settings.token.data(), token.size()) != 0) {
      Refuse(peer, "wrong bearer token");
      co_return co_await Send(stream, Unauthorized(req, true));
    }
    if (auto version = View(req["MCP-Protocol-Version"]); !version.empty()) {
      if (std::find(std::begin(kProtocolVersions), std::end(kProtocolVersions), version) == std::end(kProtocolVersions) &&
          std::find(std::begin(kModernProtocolVersions), std::end(kModernProtocolVersions), version) ==
              std::end(kModernProtocolVersions)) {
        co_return co_await Send(stream, UnsupportedVersion(req, std::string(version)));
      }
    }
    if (req.method() == http::verb::delete_) {
      const std::string id(req["Mcp-Session-Id"]);
      if (!sessions.count(id)) co_return co_await Send(stream, MakeReply(req, http::status::not_found, "no such session\n"));
      spdlog::info("MCP over HTTP: session {} ended by the client at {}", sessions[id]->session->id(), peer);
      EndSession(id);
      co_return co_await Send(stream, MakeReply(req, http::status::ok, ""));
    }
    if (req.method() != http::verb::post) {
      co_return co_await Send(stream, MethodNotAllowed(req));
    }
    co_return co_await Post(stream, req, peer);
  }

  template <class Stream>
  asio::awaitable<bool> Post(Stream& stream, Request& req, const std::string& peer) {
    const auto accept = View(req[http::field::accept]);
    const bool events_ok = accept.empty() || Contains(accept, "text/event-stream") || Contains(accept, "*/*");
    if (!accept.empty() && !events_ok && !Contains(accept, "application/json")) {
      co_return co_await Send(stream, MakeReply(req, http::status::not_acceptable,
                               "Accept must include application/json and text/event-stream\n"));
    }
    if (auto type = View(req[http::field::content_type]); !type.empty() && !Contains(type, "application/json")) {
      co_return co_await Send(stream, MakeReply(req, http::status::unsupported_media_type, "send Content-Type: application/json\n"));
    }
    std::string why;
    Json msg = core::ParseUntrustedJson(req.body(), &why);
    if (msg.is_discarded()) {
      co_return co_await Send(stream, RpcError(req, http::status::bad_request, rpc::kParseError, "parse error: " + why));
    }
    if (msg.is_array()) {
      co_return co_await Send(stream, RpcError(req, http::status::bad_request, rpc::kInvalidRequest,
                                  "send one JSON-RPC message per POST; batches are not accepted"));
    }
    const bool is_request = msg.is_object() && msg.contains("method") && msg.contains("id");
    const bool is_message = msg.is_object() && (msg.contains("method") || msg.contains("result") || msg.contains("error"));
    if (!is_message || (is_request && !rpc::IsValidId(msg["id"]))) {
      co_return co_await Send(stream, RpcError(req, http::status::bad_request, rpc::kInvalidRequest,
                                  "not a JSON-RPC request, notification or response (a request id is a string or an "
                                  "integer)"));
    }
    const std::string method = msg.is_object() && msg.contains("method") && msg["method"].is_string()
                                   ? msg["method"].get<std::string>()
                                   : "";
    std::shared_ptr<HttpSession> hs;
    const Json params = msg.contains("params") ? msg["params"] : Json();
    const bool modern = is_request && IsModernRequest(method, params);
    if (!is_request && !msg.contains("method") && req["Mcp-Session-Id"].empty()) {
      co_return co_await Send(stream, RpcError(req, http::status::bad_request, rpc::kInvalidRequest,
                                               "a 2026-07-28 client never POSTs responses; an earlier one sends "
                                               "Mcp-Session-Id with them"));
    }
    if (modern) {
      // Stateless: no session id is minted or read. The headers must repeat what the body says.
      if (std::string mismatch = ModernHeaderMismatch(req, method, params); !mismatch.empty()) {
        co_return co_await Send(stream, RpcError(req, http::status::bad_request, kHeaderMismatch, mismatch));
      }
      hs = ModernSession(peer.substr(0, peer.rfind(':')));
    } else if (is_request && method == "initialize") {
      if (sessions.size() >= settings.max_sessions) ExpireSessions(true);
      if (sessions.size() >= settings.max_sessions) {
        co_return co_await Send(stream, TooManySessions(req));
      }
      hs = std::make_shared<HttpSession>(gateway, artifacts ? &*artifacts : nullptr, peer.substr(0, peer.rfind(':')));
      sessions[hs->id] = hs;
    } else {
      const std::string id(req["Mcp-Session-Id"]);
      if (id.empty()) {
        co_return co_await Send(stream, RpcError(req, http::status::bad_request, rpc::kInvalidRequest,
                                    "Mcp-Session-Id header missing: send initialize first, then the id its answer "
                                    "carried with every message"));
      }
      auto it = sessions.find(id);
      if (it == sessions.end()) {
        co_return co_await Send(stream, RpcError(req, http::status::not_found, rpc::kInvalidRequest,
                                    "session unknown or ended; start a new one with initialize"));
      }
      hs = it->second;
    }
    hs->last_used = std::chrono::steady_clock::now();
    if (!is_request) {
      hs->session->HandleLine(req.body());
      co_return co_await Send(stream, MakeReply(req, http::status::accepted, ""));
    }

    // A request: its answer, and whatever the call sends before it, come back on this connection.
    const Json id = msg["id"];
    auto timer = std::make_shared<asio::steady_timer>(io);
    std::weak_ptr<asio::steady_timer> weak = timer;
    auto wake = [this, weak] {
      asio::post(io, [weak] {
        if (auto t = weak.lock()) t->cancel();
      });
    };
    auto answers = std::make_shared<ResponseStream>(wake);
    if (!hs->outbox.Open(id, answers)) {
      co_return co_await Send(stream, RpcError(req, http::status::conflict, rpc::kInvalidRequest,
                                  "request id " + rpc::Encode(id) + " is already in use by a call in flight"));
    }
    struct Guard {
      std::shared_ptr<HttpSession> hs;
      Json id;
      const ResponseStream* answers;
      ~Guard() {
        hs->outbox.Close(id, answers);
        --hs->active;
        hs->last_used = std::chrono::steady_clock::now();
      }
    } guard{hs, id, answers.get()};
    ++hs->active;
    hs->session->HandleLine(req.body());
    bool answered = false;
    try {
      answered = co_await Answer(stream, req, *hs, method == "initialize", *answers, *timer, events_ok, modern);
    } catch (const std::exception&) {
      // The client closed the response stream: for a 2026-07-28 request that is its cancellation.
      if (modern) {
        hs->session->HandleLine(rpc::Encode(rpc::MakeNotification("notifications/cancelled",
                                                                  Json{{"requestId", id}, {"reason", "stream closed"}})));
      }
      throw;
    }
    co_return answered;
  }

  // Writes the answers to one request: a single JSON response when the answer comes first and
  // soon, else an event stream carrying progress, elicitations and finally the answer.
  template <class Stream>
  asio::awaitable<bool> Answer(Stream& stream, Request& req, HttpSession& hs, bool initialize, ResponseStream& answers,
                               asio::steady_timer& timer, bool events_ok, bool modern) {
    const auto json_until = std::chrono::steady_clock::now() + kJsonAnswerWait;
    // For 2026-07-28, a client that closes the connection has cancelled the request: watch for
    // that without reading (a plain socket turns readable with nothing to peek at). Over TLS the
    // next keep-alive write finds out instead.
    auto closed = std::make_shared<bool>(false);
    if constexpr (!std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      if (modern) {
        auto& socket = beast::get_lowest_layer(stream).socket();
        const int fd = socket.native_handle();
        std::weak_ptr<bool> flag = closed;
        socket.async_wait(asio::socket_base::wait_read, [fd, flag, &timer](const beast::error_code& ec) {
          auto still = flag.lock();
          if (ec || !still) return;
          char c;
          if (::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
            *still = true;
            timer.cancel();
          }
        });
      }
    }
    std::optional<http::response<http::empty_body>> head;
    std::optional<http::response_serializer<http::empty_body>> serializer;
    auto& lowest = beast::get_lowest_layer(stream);
    for (;;) {
      bool ended = false;
      auto messages = answers.Take(ended);
      if (!head) {
        if (ended && messages.size() == 1) {
          if (messages.front().empty()) co_return co_await Send(stream, MakeReply(req, http::status::accepted, ""));
          const bool started = initialize && hs.session->initialized();
          if (started) spdlog::info("MCP over HTTP: session {} started", hs.session->id());
          if (initialize && !started) EndSession(hs.id);
          http::response<http::string_body> res{modern ? ModernStatus(messages.front()) : http::status::ok,
                                                req.version()};
          res.set(http::field::content_type, "application/json");
          res.set(http::field::cache_control, "no-store");
          if (started) res.set("Mcp-Session-Id", hs.id);
          res.body() = std::move(messages.front());
          res.keep_alive(req.keep_alive());
          co_await Write(stream, res);
          co_return req.keep_alive();
        }
        const bool switch_now = !messages.empty() || std::chrono::steady_clock::now() >= json_until;
        if (switch_now && events_ok) {
          head.emplace(http::status::ok, req.version());
          head->set(http::field::content_type, "text/event-stream");
          head->set(http::field::cache_control, "no-store");
          head->set("X-Accel-Buffering", "no");  // nginx and friends must pass events through at once
          if (initialize) head->set("Mcp-Session-Id", hs.id);
          head->chunked(true);
          head->keep_alive(req.keep_alive());
          serializer.emplace(*head);
          lowest.expires_after(kWriteTimeout);
          co_await http::async_write_header(stream, *serializer, asio::use_awaitable);
        } else if (!events_ok && !ended) {
          messages.clear();  // this client takes no event stream: only the answer can reach it
        }
      }
      if (head) {
        for (auto& m : messages) {
          if (m.empty()) continue;
          const std::string event = "event: message\ndata: " + m + "\n\n";
          lowest.expires_after(kWriteTimeout);
          co_await asio::async_write(stream, http::make_chunk(asio::buffer(event)), asio::use_awaitable);
        }
        if (ended) {
          lowest.expires_after(kWriteTimeout);
          co_await asio::async_write(stream, http::make_chunk_last(), asio::use_awaitable);
          co_return req.keep_alive();
        }
      } else if (ended && !messages.empty()) {
        // Several messages but no event stream allowed: the last one is the answer.
        if (messages.back().empty()) co_return co_await Send(stream, MakeReply(req, http::status::accepted, ""));
        co_return co_await Send(stream, MakeReply(req, http::status::ok, std::move(messages.back()), "application/json"));
      }
      if (answers.HasQueued()) continue;
      lowest.expires_never();
      timer.expires_after(head ? std::chrono::steady_clock::duration(kKeepAlive)
                               : std::max(std::chrono::steady_clock::duration(std::chrono::milliseconds(1)),
                                          std::chrono::steady_clock::duration(json_until - std::chrono::steady_clock::now())));
      beast::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (stopped) co_return false;
      if (*closed) throw std::runtime_error("the client closed the connection");
      if (!ec && head) {
        static const std::string kComment = ": keep-alive\n\n";
        lowest.expires_after(kWriteTimeout);
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(kComment)), asio::use_awaitable);
      }
    }
  }

  // After a refused oversized body: answer 413, then read and drop what the client still sends
  // (bounded), so it reads the answer instead of a reset.
  template <class Stream>
  asio::awaitable<void> RefuseTooLarge(Stream& stream, unsigned version) {
    http::response<http::string_body> res{http::status::payload_too_large, version};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "the request body exceeds " + std::to_string(settings.max_body_bytes) +
                 " bytes ([gateway] http_max_body_bytes)\n";
    res.keep_alive(false);
    co_await Write(stream, res);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    std::vector<char> sink(64 * 1024);
    std::size_t drained = 0;
    beast::error_code ec;
    while (drained < kDrainLimit) {
      std::size_t n = co_await stream.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      drained += n;
    }
  }

  template <class Stream>
  asio::awaitable<void> Serve(Stream stream, std::string peer) {
    beast::flat_buffer buffer;
    const std::uint64_t me = next_connection++;
    try {
      for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(kHeaderLimit);
        parser.body_limit(settings.max_body_bytes);
        beast::get_lowest_layer(stream).expires_after(settings.read_timeout);
        beast::error_code ec;
        if (buffer.size() == 0) idle[me] = [&stream] { beast::get_lowest_layer(stream).cancel(); };
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
        idle.erase(me);
        if (ec == http::error::body_limit) {
          spdlog::warn("MCP over HTTP: refused a request body from {} above {} bytes", peer, settings.max_body_bytes);
          co_await RefuseTooLarge(stream, parser.get().version());
          break;
        }
        if (ec) break;  // closed, timed out, or not HTTP
        Request& req = parser.get();
        if (!co_await Handle(stream, req, peer)) break;
        if (stopped) break;
      }
    } catch (const std::exception& e) {
      spdlog::debug("MCP over HTTP: connection from {} ended: {}", peer, e.what());
    }
    idle.erase(me);
    --connections;
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(asio::socket_base::shutdown_both, ignored);
  }

  asio::awaitable<void> ServeTls(beast::tcp_stream tcp, std::string peer) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp), *tls);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    beast::error_code ec;
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      spdlog::debug("MCP over HTTPS: TLS handshake with {} failed: {}", peer, ec.message());
      --connections;
      co_return;
    }
    co_await Serve(std::move(stream), std::move(peer));
  }

  template <class Acceptor>
  asio::awaitable<void> Accept(Acceptor& acceptor) {
    while (!stopped) {
      beast::error_code ec;
      auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (stopped || ec == asio::error::operation_aborted) break;
      if (ec) continue;
      std::string peer = "unix";
      if constexpr (std::is_same_v<Acceptor, tcp::acceptor>) {
        beast::error_code peer_ec;
        auto ep = socket.remote_endpoint(peer_ec);
        peer = peer_ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
        socket.set_option(tcp::no_delay(true), peer_ec);
      }
      if (connections >= settings.max_connections && !idle.empty()) {
        auto oldest = idle.begin();
        auto close = std::move(oldest->second);
        idle.erase(oldest);
        close();
      } else if (connections >= settings.max_connections) {
        // Plain HTTP gets a short answer; over TLS there is no way to say it before a handshake.
        if (!tls) {
          static const std::string kBusy =
              "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
          beast::error_code ignored;
          asio::write(socket, asio::buffer(kBusy), ignored);
        }
        continue;
      }
      ++connections;
      if constexpr (std::is_same_v<Acceptor, tcp::acceptor>) {
        if (tls) {
          asio::co_spawn(io, ServeTls(beast::tcp_stream(std::move(socket)), std::move(peer)), asio::detached);
          continue;
        }
        asio::co_spawn(io, Serve(beast::tcp_stream(std::move(socket)), std::move(peer)), asio::detached);
      } else {
        asio::co_spawn(io, Serve(beast::basic_stream<asio::local::stream_protocol>(std::move(socket)), std::move(peer)),
                       asio::detached);
      }
    }
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

std::string HttpServer::url() const { return impl_->url; }

core::Result<std::unique_ptr<HttpServer>> HttpServer::Start(gateway::Gateway& gateway, HttpSettings settings,
                                                             HttpRefusedFn refused) {
  auto impl = std::make_unique<Impl>(gateway, std::move(settings), std::move(refused));
  Impl& s = *impl;
  const std::string& listen = s.settings.listen;
  try {
    if (!s.settings.tls_cert_file.empty()) {
      s.tls.emplace(asio::ssl::context::tls_server);
      s.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
      s.tls->use_certificate_chain_file(s.settings.tls_cert_file);
      s.tls->use_private_key_file(s.settings.tls_key_file, asio::ssl::context::pem);
    }
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInvalidArgument, "cannot use the TLS certificate " + s.settings.tls_cert_file + " and key " +
                                             s.settings.tls_key_file + " ([gateway] http_tls_*): " + e.what());
  }
  beast::error_code ec;
  if (listen.rfind("unix:", 0) == 0) {
    const std::string path = listen.substr(5);
    std::error_code ignored;
    if (std::filesystem::is_socket(path, ignored)) std::filesystem::remove(path, ignored);
    s.unix_acceptor.emplace(s.io);
    asio::local::stream_protocol::endpoint ep(path);
    s.unix_acceptor->open(ep.protocol(), ec);
    if (!ec) s.unix_acceptor->bind(ep, ec);
    if (!ec) ::chmod(path.c_str(), 0660);
    if (!ec) s.unix_acceptor->listen(asio::socket_base::max_listen_connections, ec);
    s.url = listen + " (path /mcp)";
  } else {
    auto [host, port] = SplitListen(listen);
    auto address = asio::ip::make_address(host, ec);
    if (!ec) {
      tcp::endpoint ep(address, static_cast<unsigned short>(std::stoi(port)));
      s.tcp_acceptor.emplace(s.io);
      s.tcp_acceptor->open(ep.protocol(), ec);
      if (!ec) s.tcp_acceptor->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) s.tcp_acceptor->bind(ep, ec);
      if (!ec) s.tcp_acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (!ec) {
        auto bound = s.tcp_acceptor->local_endpoint(ec);
        std::string shown = bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
        s.url = std::string(s.tls ? "https://" : "http://") + shown + ":" + std::to_string(bound.port()) + kEndpoint;
      }
    }
  }
  if (ec) {
    return MakeError(ErrorCode::kIo, "cannot listen for MCP over HTTP on " + listen + " ([gateway] http_listen): " +
                                         ec.message());
  }
  if (s.tcp_acceptor) asio::co_spawn(s.io, s.Accept(*s.tcp_acceptor), asio::detached);
  if (s.unix_acceptor) asio::co_spawn(s.io, s.Accept(*s.unix_acceptor), asio::detached);
  asio::co_spawn(s.io, s.Janitor(), asio::detached);
  s.thread = std::thread([&s] {
    for (;;) {
      try {
        s.io.run();
        return;
      } catch (const std::exception& e) {
        // A handler bug must not end MCP over HTTP for everyone; the connection that hit it is gone.
        spdlog::error("MCP over HTTP: {}", e.what());
      }
    }
  });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  Impl& s = *impl_;
  // End the sessions while the I/O thread still runs, so their last messages find it.
  std::promise<std::vector<std::shared_ptr<HttpSession>>> taken;
  auto future = taken.get_future();
  asio::post(s.io, [&s, &taken] {
    s.stopped = true;
    beast::error_code ignored;
    if (s.tcp_acceptor) s.tcp_acceptor->close(ignored);
    if (s.unix_acceptor) s.unix_acceptor->close(ignored);
    std::vector<std::shared_ptr<HttpSession>> all;
    for (auto& [id, session] : s.sessions) all.push_back(session);
    for (auto& [address, session] : s.modern_sessions) all.push_back(session);
    s.sessions.clear();
    s.modern_sessions.clear();
    taken.set_value(std::move(all));
  });
  for (auto& session : future.get()) session->session->Shutdown();
  s.io.stop();
  s.thread.join();
  if (s.unix_acceptor) ::unlink(s.settings.listen.substr(5).c_str());
}

}  // namespace labgate::mcp
