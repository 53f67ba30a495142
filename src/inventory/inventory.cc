#include "inventory/inventory.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <re2/re2.h>
#include <toml++/toml.h>

#include "capabilities/device_config.h"
#include "core/net.h"
#include "core/os_user.h"
#include "inventory/selector.h"

namespace labgate::inventory {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::MakeError;

constexpr std::string_view kBuiltinSource = "(built-in defaults)";

std::string KnownCapabilityList() {
  std::string out;
  for (std::string_view c : kKnownCapabilities) out += (out.empty() ? "" : ", ") + std::string(c);
  return out;
}

bool IsKnownCapability(std::string_view name) {
  return std::find(std::begin(kKnownCapabilities), std::end(kKnownCapabilities), name) != std::end(kKnownCapabilities);
}

int LineOf(const toml::node& node) { return static_cast<int>(node.source().begin.line); }

std::string ResolvePath(const std::string& raw, const std::string& base_dir) {
  std::string expanded = core::ExpandHome(raw);
  fs::path p(expanded);
  if (p.is_relative() && !base_dir.empty()) p = fs::path(base_dir) / p;
  return p.lexically_normal().string();
}

// Reads one table's keys against a schema, collecting every problem as "SOURCE:LINE: key: what".
class TableReader {
 public:
  TableReader(const toml::table& table, std::string path, const std::string& source, std::vector<std::string>& errors)
      : table_(table), path_(std::move(path)), source_(source), errors_(errors) {}

  ~TableReader() {
    for (auto&& [key, node] : table_) {
      if (seen_.count(std::string(key.str()))) continue;
      std::string hint;
      std::string k(key.str());
      if (k == "password" || k == "passphrase" || k == "http_token") {
        hint = ": secrets never go in hosts.toml; use " + k + "_env (an environment variable) or " + k + "_file";
      } else {
        hint = ": unknown key (allowed here: " + Allowed() + ")";
      }
      Error(static_cast<int>(key.source().begin.line), Name(k), hint.substr(2));
    }
  }

  std::optional<std::string> String(const char* key) {
    const toml::node* node = Get(key);
    if (!node) return std::nullopt;
    if (!node->is_string()) return TypeError(*node, key, "a string"), std::nullopt;
    return node->value<std::string>();
  }
  std::optional<bool> Bool(const char* key) {
    const toml::node* node = Get(key);
    if (!node) return std::nullopt;
    if (!node->is_boolean()) return TypeError(*node, key, "true or false"), std::nullopt;
    return node->value<bool>();
  }
  std::optional<std::int64_t> Integer(const char* key, std::int64_t min, std::int64_t max) {
    const toml::node* node = Get(key);
    if (!node) return std::nullopt;
    if (!node->is_integer()) return TypeError(*node, key, "an integer"), std::nullopt;
    auto v = *node->value<std::int64_t>();
    if (v < min || v > max) {
      Error(LineOf(*node), Name(key), "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                                          ", got " + std::to_string(v));
      return std::nullopt;
    }
    return v;
  }
  // An array of strings, each checked by `valid` (which returns an error text or "").
  std::optional<std::vector<std::string>> Strings(const char* key,
                                                  const std::function<std::string(const std::string&)>& valid) {
    const toml::node* node = Get(key);
    if (!node) return std::nullopt;
    const toml::array* array = node->as_array();
    if (!array) return TypeError(*node, key, "an array of strings"), std::nullopt;
    std::vector<std::string> out;
    bool ok = true;
    for (const auto& item : *array) {
      if (!item.is_string()) {
        TypeError(item, key, "an array of strings");
        ok = false;
        continue;
      }
      std::string value = *item.value<std::string>();
      if (std::string why = valid(value); !why.empty()) {
        Error(LineOf(item), Name(key), why);
        ok = false;
        continue;
      }
      if (std::find(out.begin(), out.end(), value) != out.end()) {
        Error(LineOf(item), Name(key), "'" + value + "' is listed twice");
        ok = false;
        continue;
      }
      out.push_back(std::move(value));
    }
    if (!ok) return std::nullopt;
    return out;
  }
  /// A sub-table such as [hosts.screen]; nullptr (with an error when present but not a table).
  const toml::table* Table(const char* key) {
    const toml::node* node = Get(key);
    if (!node) return nullptr;
    if (!node->is_table()) return TypeError(*node, key, "a table"), nullptr;
    return node->as_table();
  }
  std::optional<double> Number(const char* key, double min, double max) {
    const toml::node* node = Get(key);
    if (!node) return std::nullopt;
    if (!node->is_number()) return TypeError(*node, key, "a number"), std::nullopt;
    double v = node->is_integer() ? static_cast<double>(*node->value<std::int64_t>()) : *node->value<double>();
    if (!(v >= min && v <= max)) {
      Error(LineOf(*node), Name(key), "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return std::nullopt;
    }
    return v;
  }
  std::vector<std::string>& errors() { return errors_; }
  /// Whether `key` is present; marks it handled without offering it in "allowed here" lists.
  bool Present(const char* key) {
    seen_.insert(key);
    return table_.contains(key);
  }
  const toml::node* Get(const char* key) {
    seen_.insert(key);
    allowed_.push_back(key);
    return table_.get(key);
  }
  const std::string& source() const { return source_; }
  int Line(const char* key) const {
    const toml::node* node = table_.get(key);
    return node ? LineOf(*node) : LineOf(table_);
  }
  std::string Name(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }
  void Error(int line, const std::string& key, const std::string& what) {
    errors_.push_back(source_ + ":" + std::to_string(line) + ": " + key + ": " + what);
  }

 private:
  void TypeError(const toml::node& node, const char* key, const char* expected) {
    Error(LineOf(node), Name(key), std::string("must be ") + expected);
  }
  std::string Allowed() const {
    std::string out;
    for (const auto& a : allowed_) out += (out.empty() ? "" : ", ") + a;
    return out;
  }

  const toml::table& table_;
  std::string path_;
  const std::string& source_;
  std::vector<std::string>& errors_;
  std::set<std::string> seen_;
  std::vector<std::string> allowed_;
};

std::string CheckName(const std::string& v) {
  return IsValidName(v) ? "" : "'" + v + "' is not a valid name (letters, digits, '.', '_', '-'; at most 63)";
}
std::string CheckCapability(const std::string& v) {
  return IsKnownCapability(v) ? "" : "unknown capability '" + v + "' (known: " + KnownCapabilityList() + ")";
}

// A path rule: absolute or under ~/, and narrower than everything.
std::string CheckPathPattern(const std::string& v) {
  if (v.empty() || (v[0] != '/' && v.rfind("~/", 0) != 0)) {
    return "path pattern '" + v + "' must start with / or ~/ (paths are matched after they are made absolute)";
  }
  if (v.find_first_not_of("/*~") == std::string::npos) {
    return "path pattern '" + v + "' matches every path; name the directory or files it is for";
  }
  return "";
}

std::string CheckPattern(const std::string& v) {
  return v.find_first_not_of(" \t*") == std::string::npos ? "pattern '" + v + "' matches everything or nothing; write the command it is for" : "";
}

// mode / allow / deny of one scope; each rule remembers where it was written.
void ReadCommandRules(TableReader& r, const std::string& source, CommandRules& rules) {
  if (auto v = r.String("mode")) {
    if (std::find(std::begin(kRunModes), std::end(kRunModes), *v) == std::end(kRunModes)) {
      r.Error(r.Line("mode"), r.Name("mode"),
              "unknown mode '" + *v + "' (read-only, confirm-mutating, confirm-destructive or full)");
    } else {
      rules.mode = *v;
      rules.mode_source = source + ":" + std::to_string(r.Line("mode")) + " " + r.Name("mode");
    }
  }
  for (const char* key : {"allow", "deny"}) {
    auto patterns = r.Strings(key, CheckPattern);
    if (!patterns) continue;
    auto& list = std::string(key) == "allow" ? rules.allow : rules.deny;
    for (auto& p : *patterns) list.push_back({p, source + ":" + std::to_string(r.Line(key)) + " " + r.Name(key)});
  }
}

// The path rules of one scope: `read_allow`, ... in [policies.file]; `file_read_allow`, ... in
// groups and targets, beside their command rules.
void ReadFileRules(TableReader& r, const std::string& source, const std::string& prefix, FileRules& rules) {
  const std::pair<std::string, std::vector<CommandRule>*> keys[] = {{prefix + "read_allow", &rules.read_allow},
                                                                     {prefix + "read_deny", &rules.read_deny},
                                                                     {prefix + "write_allow", &rules.write_allow},
                                                                     {prefix + "write_deny", &rules.write_deny}};
  for (const auto& [key, list] : keys) {
    auto patterns = r.Strings(key.c_str(), CheckPathPattern);
    if (!patterns) continue;
    for (auto& p : *patterns) {
      list->push_back({p, source + ":" + std::to_string(r.Line(key.c_str())) + " " + r.Name(key)});
    }
  }
}

template <std::size_t N>
std::optional<std::string> ReadBackend(TableReader& r, const std::string_view (&backends)[N]) {
  auto v = r.String("backend");
  if (v && !capabilities::IsBackend(backends, *v)) {
    r.Error(r.Line("backend"), r.Name("backend"),
            "unknown backend '" + *v + "' (" + capabilities::BackendList(backends) + ")");
    return std::nullopt;
  }
  return v;
}

// [X.screen], [X.camera] and [X.location]: which backend serves each capture capability on
// this machine. The same keys make up a node's device.toml.
void ReadDeviceConfig(TableReader& parent, capabilities::DeviceConfig& d) {
  auto child = [&](const char* key) { return parent.Name(key); };
  const std::string& source = parent.source();
  std::vector<std::string>& errors = parent.errors();
  if (const toml::table* t = parent.Table("screen")) {
    TableReader r(*t, child("screen"), source, errors);
    if (auto v = ReadBackend(r, capabilities::kScreenBackends)) d.screen.backend = *v;
    if (auto v = r.String("display")) d.screen.display = *v;
    if (auto v = r.Strings("outputs", [](const std::string&) { return std::string(); })) d.screen.outputs = *v;
  }
  if (const toml::table* t = parent.Table("camera")) {
    TableReader r(*t, child("camera"), source, errors);
    if (auto v = ReadBackend(r, capabilities::kCameraBackends)) d.camera.backend = *v;
    if (auto v = r.String("device")) d.camera.device = *v;
    if (auto v = r.String("input_format")) d.camera.input_format = *v;
    if (auto v = r.String("front")) d.camera.front = *v;
    if (auto v = r.String("back")) d.camera.back = *v;
  }
  if (const toml::table* t = parent.Table("location")) {
    TableReader r(*t, child("location"), source, errors);
    if (auto v = ReadBackend(r, capabilities::kLocationBackends)) d.location.backend = *v;
    if (auto v = r.String("gpsd")) d.location.gpsd = *v;
    d.location.latitude = r.Number("latitude", -90, 90);
    d.location.longitude = r.Number("longitude", -180, 180);
    if (auto v = r.Number("accuracy_m", 0, 1e7)) d.location.accuracy_m = *v;
    d.location.altitude_m = r.Number("altitude_m", -1e5, 1e6);
    if (d.location.backend == "static" && (!d.location.latitude || !d.location.longitude)) {
      r.Error(r.Line("backend"), r.Name("backend"), "static needs latitude and longitude");
    }
  }
}

void ReadCommonTargetKeys(TableReader& r, Target& t) {
  if (auto v = r.Strings("groups", CheckName)) t.groups = *v;
  if (auto v = r.Strings("tags", CheckName)) t.tags = *v;
  if (auto v = r.String("device")) t.device = *v;
  if (auto v = r.String("owner")) t.owner = *v;
  if (auto v = r.String("purpose")) t.purpose = *v;
  if (auto v = r.Strings("capabilities", CheckCapability)) t.capabilities = *v;
  if (auto v = r.String("role")) {
    if (std::find(std::begin(kRoles), std::end(kRoles), *v) == std::end(kRoles)) {
      r.Error(r.Line("role"), r.Name("role"), "unknown role '" + *v + "' (admin or daily)");
    } else {
      t.role = *v;
      t.role_line = r.Line("role");
    }
  }
  ReadCommandRules(r, r.source(), t.rules);
  ReadFileRules(r, r.source(), "file_", t.rules.files);
}

std::string CheckRole(const std::string& v) {
  return std::find(std::begin(kRoles), std::end(kRoles), v) != std::end(kRoles) ? ""
                                                                                 : "unknown role '" + v + "' (admin or daily)";
}

// "A.B.C.D/N" with N in 0..32, or "A.B.C.D" (a /32).
std::string CheckNetwork(const std::string& v) {
  return core::ParseIpv4Network(v) ? "" : "'" + v + "' is not an IPv4 network (write it as 100.64.0.0/10)";
}

// "alice", "uid:1001", "group:labops" or "gid:1002", naming an account or group this machine has.
// Names are only ever names (a user called "1000" is "1000"); numbers come only after uid:/gid:.
std::string CheckOperator(const std::string& v) {
  for (const char* prefix : {"uid:", "gid:"}) {
    if (v.rfind(prefix, 0) == 0) {
      return core::ParseId(v.substr(4)) ? ""
                                        : "'" + v + "': " + prefix + " takes a number from 0 to 4294967294";
    }
  }
  if (v.rfind("group:", 0) == 0) {
    return core::FindGroup(v.substr(6)) ? "" : "'" + v + "': this machine has no group " + v.substr(6);
  }
  if (v.find(':') != std::string::npos) return "'" + v + "' is not a user name, uid:N, group:NAME or gid:N";
  return core::FindAccount(v) ? "" : "'" + v + "': this machine has no user " + v + " (write uid:N for a bare uid)";
}

// "" when `v` is an http_listen value the gateway can bind, else why not.
std::string CheckHttpListen(const std::string& v) {
  if (v.rfind("unix:", 0) == 0) {
    return v.size() > 6 && v[5] == '/' ? "" : "a unix socket needs an absolute path: \"unix:/run/labgate/mcp-http.sock\"";
  }
  auto split = SplitHostPort(v);
  if (!split || split->first.empty() || split->second.empty()) {
    return "must be HOST:PORT (\"127.0.0.1:7023\", \"[::1]:7023\") or unix:/PATH";
  }
  const auto& [host, port] = *split;
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) == 0 ||
      std::stoi(port) > 65535) {
    return "'" + port + "' is not a port (1-65535)";
  }
  if (host == "localhost") return "";
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) != 1 && inet_pton(AF_INET6, host.c_str(), buf) != 1) {
    return "'" + host + "' is not an IP address (write an address such as 127.0.0.1 or [::1], or localhost)";
  }
  return "";
}

// "" when `v` is an origin as browsers send it: scheme://host[:port], nothing after.
std::string CheckOrigin(const std::string& v) {
  auto scheme_end = v.find("://");
  if (scheme_end == std::string::npos || (v.substr(0, scheme_end) != "http" && v.substr(0, scheme_end) != "https") ||
      scheme_end + 3 == v.size() || v.find('/', scheme_end + 3) != std::string::npos) {
    return "'" + v + "' is not an origin: write scheme://host[:port], e.g. \"https://assistant.example\"";
  }
  return "";
}

}  // namespace

std::optional<std::pair<std::string, std::string>> SplitHostPort(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(std::move(host), listen.substr(colon + 1));
}

bool IsLoopbackListen(const std::string& listen) {
  if (listen.rfind("unix:", 0) == 0) return true;
  const auto split = SplitHostPort(listen);
  const std::string host = split ? split->first : listen;
  if (host == "localhost") return true;
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) return buf[0] == 127;
  if (inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    static const unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(buf, kLoopback6, 16) == 0;
  }
  return false;
}

namespace {

void ReadGatewayHttp(TableReader& r, const std::string& base_dir, GatewaySettings& g) {
  if (auto v = r.String("http_listen")) {
    if (std::string why = CheckHttpListen(*v); !v->empty() && !why.empty()) {
      r.Error(r.Line("http_listen"), "gateway.http_listen", why);
    } else {
      g.http_listen = *v;
    }
  }
  if (auto v = r.String("http_token_env")) g.http_token_env = *v;
  if (auto v = r.String("http_token_file")) g.http_token_file = ResolvePath(*v, base_dir);
  if (!g.http_token_env.empty() && !g.http_token_file.empty()) {
    r.Error(r.Line("http_token_file"), "gateway.http_token_file", "set http_token_env or http_token_file, not both");
  }
  if (auto v = r.String("http_tls_cert_file")) g.http_tls_cert_file = ResolvePath(*v, base_dir);
  if (auto v = r.String("http_tls_key_file")) g.http_tls_key_file = ResolvePath(*v, base_dir);
  if (g.http_tls_cert_file.empty() != g.http_tls_key_file.empty()) {
    r.Error(r.Line(g.http_tls_cert_file.empty() ? "http_tls_key_file" : "http_tls_cert_file"),
            "gateway.http_tls_cert_file", "TLS needs both http_tls_cert_file and http_tls_key_file");
  }
  if (auto v = r.Bool("http_plaintext_beyond_loopback")) g.http_plaintext_beyond_loopback = *v;
  if (auto v = r.Strings("http_allowed_origins", CheckOrigin)) g.http_allowed_origins = *v;
  if (auto v = r.Integer("http_max_body_bytes", 1024, 256LL * 1024 * 1024)) g.http_max_body_bytes = *v;
  if (auto v = r.Integer("http_max_connections", 1, 100000)) g.http_max_connections = *v;
  if (auto v = r.Integer("http_session_idle_s", 10, 7 * 24 * 3600)) g.http_session_idle_s = *v;
  if (!g.http_listen.empty() && g.http_listen.rfind("unix:", 0) == 0 && !g.http_tls_cert_file.empty()) {
    r.Error(r.Line("http_tls_cert_file"), "gateway.http_tls_cert_file",
            "TLS on a unix socket protects nothing the socket's permissions do not; remove it or listen on HOST:PORT");
  }
  if (!g.http_listen.empty() && !IsLoopbackListen(g.http_listen) && g.http_tls_cert_file.empty() &&
      !g.http_plaintext_beyond_loopback) {
    r.Error(r.Line("http_listen"), "gateway.http_listen",
            g.http_listen + " is reachable beyond this machine and the bearer token would cross the network in "
                            "clear text: set http_tls_cert_file and http_tls_key_file, or, when a TLS proxy on this "
                            "machine's network is in front, http_plaintext_beyond_loopback = true");
  }
}

// udp:HOST:PORT, tcp:HOST:PORT ([v6] in brackets) or unix:/absolute/path -> the parts, or why not.
std::string ParseSyslogAddress(const std::string& v, AuditForwarding& a) {
  const auto colon = v.find(':');
  const std::string scheme = colon == std::string::npos ? "" : v.substr(0, colon);
  const std::string rest = colon == std::string::npos ? "" : v.substr(colon + 1);
  if (scheme == "unix") {
    if (rest.empty() || rest[0] != '/') return "unix: takes an absolute socket path, e.g. unix:/dev/log";
    if (rest.size() > 107) return "the socket path is longer than a unix socket address allows (107 bytes)";
    a.syslog_transport = scheme;
    a.syslog_path = rest;
    a.syslog_host.clear();
    a.syslog_port.clear();
    return "";
  }
  if (scheme != "udp" && scheme != "tcp") {
    return "'" + v + "' is not udp:HOST:PORT, tcp:HOST:PORT or unix:/PATH (e.g. \"udp:logs.lan:514\")";
  }
  std::string host;
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return "write an IPv6 server as " + scheme + ":[ADDRESS]:PORT";
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    const auto last = rest.rfind(':');
    if (last == std::string::npos) return scheme + ": needs HOST:PORT (syslog's port is usually 514)";
    host = rest.substr(0, last);
    port = rest.substr(last + 1);
  }
  const bool host_ok = !host.empty() && std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '_';
  });
  if (!host_ok) return "'" + host + "' is not a host name or IP address";
  auto n = core::ParseId(port);
  if (port.empty() || !n || *n < 1 || *n > 65535) return "port '" + port + "' is not a number from 1 to 65535";
  a.syslog_transport = scheme;
  a.syslog_host = host;
  a.syslog_port = port;
  a.syslog_path.clear();
  return "";
}

void ReadAudit(const toml::table& table, const std::string& source, AuditForwarding& a, std::vector<std::string>& errors) {
  TableReader r(table, "audit", source, errors);
  std::vector<std::string> forward;
  if (const toml::node* node = r.Get("forward")) {
    // One destination as a string, or both as an array.
    if (node->is_string()) {
      forward.push_back(*node->value<std::string>());
    } else if (const toml::array* list = node->as_array()) {
      for (const auto& item : *list) {
        if (item.is_string()) {
          forward.push_back(*item.value<std::string>());
        } else {
          r.Error(LineOf(item), "audit.forward", "must be \"journald\", \"syslog\" or an array of them");
        }
      }
    } else {
      r.Error(LineOf(*node), "audit.forward", "must be \"journald\", \"syslog\" or an array of them");
    }
  }
  for (const auto& f : forward) {
    if (f == "journald") {
      a.journald = true;
    } else if (f == "syslog") {
      a.syslog = true;
    } else {
      r.Error(r.Line("forward"), "audit.forward", "'" + f + "' is not \"journald\" or \"syslog\"");
    }
  }
  if (auto v = r.String("journald_socket")) {
    if (v->empty() || (*v)[0] != '/' || v->size() > 107) {
      r.Error(r.Line("journald_socket"), "audit.journald_socket", "must be an absolute socket path of at most 107 bytes");
    } else {
      a.journald_socket = *v;
    }
  }
  if (auto v = r.String("syslog_address")) {
    if (std::string why = ParseSyslogAddress(*v, a); !why.empty()) {
      r.Error(r.Line("syslog_address"), "audit.syslog_address", why);
    } else {
      a.syslog_address = *v;
    }
  }
  if (auto v = r.String("syslog_facility")) {
    if (auto f = SyslogFacility(*v)) {
      a.syslog_facility = *f;
      a.syslog_facility_name = *v;
    } else {
      r.Error(r.Line("syslog_facility"), "audit.syslog_facility",
              "'" + *v + "' is not a syslog facility (authpriv, auth, daemon, user, local0 ... local7)");
    }
  }
}

void ReadGateway(const toml::table& table, const std::string& source, const std::string& base_dir,
                 GatewaySettings& g, std::vector<std::string>& errors) {
  TableReader r(table, "gateway", source, errors);
  if (auto v = r.String("listen")) {
    auto colon = v->rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == v->size()) {
      r.Error(r.Line("listen"), "gateway.listen", "must be HOST:PORT, e.g. \"127.0.0.1:7022\"");
    } else {
      g.listen = *v;
    }
  }
  if (auto v = r.String("state_dir")) g.state_dir = ResolvePath(*v, base_dir);
  if (auto v = r.String("audit_log")) g.audit_log = ResolvePath(*v, base_dir);
  if (auto v = r.Integer("audit_max_bytes", 4096, 1LL << 40)) g.audit_max_bytes = *v;
  if (auto v = r.Bool("allow_pairing")) g.allow_pairing = *v;
  if (auto v = r.Bool("require_node_key")) g.require_node_key = *v;
  if (auto v = r.Integer("default_timeout_ms", 1, 24LL * 3600 * 1000)) g.default_timeout_ms = *v;
  if (auto v = r.Integer("max_timeout_ms", 1, 24LL * 3600 * 1000)) g.max_timeout_ms = *v;
  if (auto v = r.Integer("max_parallel", 1, 1024)) g.max_parallel = *v;
  if (auto v = r.Integer("output_cap_bytes", 1024, 64LL * 1024 * 1024)) g.output_cap_bytes = *v;
  if (auto v = r.Integer("key_max_age_days", 1, 3650)) g.key_max_age_days = *v;
  if (auto v = r.Integer("approval_ttl_s", 1, 7 * 24 * 3600)) g.approval_ttl_s = *v;
  if (auto v = r.Integer("elicitation_timeout_s", 5, 3600)) g.elicitation_timeout_s = *v;
  if (auto v = r.Integer("task_after_ms", 0, 3600 * 1000)) g.task_after_ms = *v;
  if (auto v = r.Integer("artifact_max_bytes", 1LL << 20, 1LL << 40)) g.artifact_max_bytes = *v;
  if (auto v = r.Integer("artifact_max_age_s", 60, 365LL * 24 * 3600)) g.artifact_max_age_s = *v;
  if (auto v = r.Strings("allowed_networks", CheckNetwork)) g.allowed_networks = *v;
  if (auto v = r.Integer("auth_fail_limit", 1, 100000)) g.auth_fail_limit = *v;
  if (auto v = r.Integer("auth_fail_window_s", 1, 7 * 24 * 3600)) g.auth_fail_window_s = *v;
  if (auto v = r.Strings("operators", CheckOperator)) g.operators = *v;
  if (auto v = r.String("command_user")) {
    if (auto account = core::FindAccount(*v); !account || account->name.empty()) {
      r.Error(r.Line("command_user"), "gateway.command_user", "this machine has no user " + *v);
    } else if (IsListedOperator(g.operators, account->uid)) {
      r.Error(r.Line("command_user"), "gateway.command_user",
              *v + " is also listed in gateway.operators (by name, uid or group): the account that runs the "
                   "assistant's commands would be able to approve them; use separate accounts");
    } else if (account->uid == 0) {
      r.Error(r.Line("command_user"), "gateway.command_user",
              "root may not be the command account: it can read the gateway's key and state; use an unprivileged "
              "account (sudo rules on it stay guarded as privileged commands)");
    } else {
      g.command_user = *v;
    }
  }
  if (g.default_timeout_ms > g.max_timeout_ms) {
    r.Error(r.Line("default_timeout_ms"), "gateway.default_timeout_ms", "is larger than gateway.max_timeout_ms");
  }
  ReadGatewayHttp(r, base_dir, g);
}

void ReadTargetList(const toml::table& root, const char* list_key, TargetKind kind, const std::string& source,
                    const std::string& base_dir, Inventory& inv, std::vector<std::string>& errors) {
  const toml::node* node = root.get(list_key);
  if (!node) return;
  const toml::array* array = node->as_array();
  if (!array || !array->is_array_of_tables()) {
    errors.push_back(source + ":" + std::to_string(LineOf(*node)) + ": " + list_key + ": must be written as [[" +
                     list_key + "]] tables");
    return;
  }
  // Where each id was first declared: a fleet of 10,000 nodes must not cost 10,000 scans.
  std::unordered_map<std::string, int> declared;
  for (const auto& known : inv.targets) declared.emplace(known.id, known.line);
  inv.targets.reserve(inv.targets.size() + array->size());  // a Target is large: move each once
  std::size_t index = 0;
  for (const auto& item : *array) {
    const toml::table& table = *item.as_table();
    std::string path = std::string(list_key) + "[" + std::to_string(index++) + "]";
    TableReader r(table, path, source, errors);
    Target t;
    t.kind = kind;
    t.line = LineOf(table);
    if (auto id = r.String("id")) {
      t.id = *id;
      if (!IsValidName(t.id)) {
        r.Error(r.Line("id"), r.Name("id"), "'" + t.id + "' is not a valid id (letters, digits, '.', '_', '-'; at most 63)");
      } else if (t.id == kLocalTargetId) {
        r.Error(r.Line("id"), r.Name("id"), "'local' is the built-in target for this machine; pick another id");
      } else if (auto first = declared.find(t.id); first != declared.end()) {
        r.Error(r.Line("id"), r.Name("id"),
                "duplicate id '" + t.id + "' (first declared on line " + std::to_string(first->second) + ")");
      }
    } else {
      r.Error(t.line, r.Name("id"), "missing: every entry needs an id");
    }
    // Hosts and nodes: sudo's password, by reference (read when a call asks for sudo).
    if (auto v = r.String("sudo_password_env")) t.sudo_password_env = *v;
    if (auto v = r.String("sudo_password_file")) t.sudo_password_file = ResolvePath(*v, base_dir);
    if (kind == TargetKind::kHost) {
      if (auto v = r.String("address")) t.address = *v;
      if (t.address.empty()) r.Error(r.Line("address"), r.Name("address"), "missing: an IP, DNS name or ~/.ssh/config alias");
      if (auto v = r.Integer("port", 1, 65535)) t.port = static_cast<int>(*v);
      if (auto v = r.String("user")) t.user = *v;
      if (auto v = r.String("identity_file")) t.identity_file = ResolvePath(*v, base_dir);
      if (auto v = r.String("passphrase_env")) t.passphrase_env = *v;
      if (auto v = r.String("passphrase_file")) t.passphrase_file = ResolvePath(*v, base_dir);
      if (auto v = r.String("password_env")) t.password_env = *v;
      if (auto v = r.String("password_file")) t.password_file = ResolvePath(*v, base_dir);
      if (auto v = r.String("proxy_jump")) t.proxy_jump = *v;
      if (auto v = r.String("host_key_policy")) {
        if (*v != "strict" && *v != "accept-new") {
          r.Error(r.Line("host_key_policy"), r.Name("host_key_policy"), "must be \"strict\" or \"accept-new\"");
        } else {
          t.host_key_policy = *v;
        }
      }
      t.capabilities = {"run"};
      ReadDeviceConfig(r, t.capture);
    } else {
      if (auto v = r.String("key_fingerprint")) {
        if (v->rfind("SHA256:", 0) != 0) {
          r.Error(r.Line("key_fingerprint"), r.Name("key_fingerprint"),
                  "must be a key fingerprint as `labgate nodes list` shows it (SHA256:...)");
        } else {
          t.key_fingerprint = *v;
        }
      }
      for (const char* key : {"screen", "camera", "location"}) {
        if (r.Present(key)) {
          r.Error(r.Line(key), r.Name(key),
                  "a node's capture backends are set on the device, in its device.toml (see README: Screen, "
                  "camera and location), not in hosts.toml");
        }
      }
    }
    ReadCommonTargetKeys(r, t);
    if (!t.id.empty() && IsValidName(t.id) && t.id != kLocalTargetId && declared.emplace(t.id, t.line).second) {
      inv.targets.push_back(std::move(t));
    }
  }
}

void ReadLocal(const toml::table& table, const std::string& source, Inventory& inv, std::vector<std::string>& errors) {
  TableReader r(table, "local", source, errors);
  bool enabled = r.Bool("enabled").value_or(true);
  Target& local = inv.targets.front();
  local.line = LineOf(table);
  ReadCommonTargetKeys(r, local);
  ReadDeviceConfig(r, local.capture);
  if (!enabled) inv.targets.erase(inv.targets.begin());
}

void ReadPolicies(const toml::table& table, const std::string& source, Inventory& inv, std::vector<std::string>& errors) {
  for (auto&& [key, node] : table) {
    std::string cap(key.str());
    int line = static_cast<int>(key.source().begin.line);
    if (!IsKnownCapability(cap)) {
      errors.push_back(source + ":" + std::to_string(line) + ": policies." + cap +
                       ": unknown capability (known: " + KnownCapabilityList() + ")");
      continue;
    }
    const toml::table* t = node.as_table();
    if (!t) {
      errors.push_back(source + ":" + std::to_string(line) + ": policies." + cap + ": must be a table [policies." + cap + "]");
      continue;
    }
    TableReader r(*t, "policies." + cap, source, errors);
    CapabilityPolicy p;
    p.capability = cap;
    p.line = LineOf(*t);
    if (auto v = r.Bool("enabled")) p.enabled = *v;
    if (auto v = r.Bool("confirm")) p.confirm = *v;
    p.approved_nodes = r.Strings("approved_nodes", CheckName);
    p.approved_hosts = r.Strings("approved_hosts", CheckName);
    p.roles = r.Strings("roles", CheckRole);
    if (cap == "run") {
      ReadCommandRules(r, source, inv.run_rules);
      if (auto v = r.Strings("env_allow", [](const std::string& pattern) {
            if (pattern.empty() || pattern.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_*") !=
                                       std::string::npos) {
              return "'" + pattern + "' is not a variable name (letters, digits, _ and * for any run of them)";
            }
            if (pattern.find_first_not_of('*') == std::string::npos) {
              return "'" + pattern + "' allows every variable, PATH and LD_PRELOAD among them; name the ones you mean";
            }
            return std::string();
          })) {
        inv.run_env_allow = *v;
      }
      if (auto v = r.Strings("diagnostics", [](const std::string& c) {
            return c.empty() ? std::string("a diagnostic command may not be empty") : std::string();
          })) {
        inv.diagnostics.clear();
        for (auto& c : *v) {
          inv.diagnostics.push_back({c, source + ":" + std::to_string(r.Line("diagnostics")) + " policies.run.diagnostics"});
        }
      }
    }
    if (cap == "file") {
      ReadFileRules(r, source, "", inv.file_rules);
      const std::int64_t kMaxCap = 64LL * 1024 * 1024 * 1024;
      if (auto v = r.Integer("max_read_bytes", 1, kMaxCap)) inv.file_max_read_bytes = *v;
      if (auto v = r.Integer("max_write_bytes", 1, kMaxCap)) inv.file_max_write_bytes = *v;
    }
    inv.policies.emplace(cap, std::move(p));
  }
}

// [groups.NAME]: mode, allow and deny for every target in the group.
void ReadGroups(const toml::table& table, const std::string& source, Inventory& inv, std::vector<std::string>& errors) {
  for (auto&& [key, node] : table) {
    std::string name(key.str());
    int line = static_cast<int>(key.source().begin.line);
    const toml::table* t = node.as_table();
    if (!t) {
      errors.push_back(source + ":" + std::to_string(line) + ": groups." + name + ": must be a table [groups." + name + "]");
      continue;
    }
    bool used = std::any_of(inv.targets.begin(), inv.targets.end(), [&](const Target& target) {
      return std::find(target.groups.begin(), target.groups.end(), name) != target.groups.end();
    });
    if (!used) {
      errors.push_back(source + ":" + std::to_string(line) + ": groups." + name +
                       ": no target is in group '" + name + "' (a typo? rules here would apply to nothing)");
      continue;
    }
    TableReader r(*t, "groups." + name, source, errors);
    ReadCommandRules(r, source, inv.groups[name]);
    ReadFileRules(r, source, "file_", inv.groups[name].files);
  }
}

// [classify]: patterns per risk class.
void ReadClassify(const toml::table& table, const std::string& source, Inventory& inv, std::vector<std::string>& errors) {
  TableReader r(table, "classify", source, errors);
  const std::pair<const char*, const char*> keys[] = {
      {"read_only", "read-only"}, {"mutating", "mutating"}, {"destructive", "destructive"}, {"privileged", "privileged"}};
  for (const auto& [key, risk] : keys) {
    auto patterns = r.Strings(key, CheckPattern);
    if (!patterns) continue;
    for (auto& p : *patterns) {
      inv.classify.push_back({p, risk, source + ":" + std::to_string(r.Line(key)) + " classify." + key});
    }
  }
}

// "HH:MM" (24-hour) -> minutes after midnight.
std::optional<int> ParseClock(const std::string& text) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  for (int i : {0, 1, 3, 4}) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
  }
  const int hour = (text[0] - '0') * 10 + (text[1] - '0');
  const int minute = (text[3] - '0') * 10 + (text[4] - '0');
  if (hour > 23 || minute > 59) return std::nullopt;
  return hour * 60 + minute;
}

// A duration key of a check: "15m", "24h", "1h30m".
std::optional<std::int64_t> ReadDuration(TableReader& r, const char* key, std::int64_t min_ms) {
  auto v = r.String(key);
  if (!v) return std::nullopt;
  auto ms = ParseCheckDuration(*v);
  if (!ms || *ms < min_ms) {
    r.Error(r.Line(key), r.Name(key),
            "'" + *v + "' is not a duration of at least " + (min_ms >= 1000 ? std::to_string(min_ms / 1000) + "s" : std::to_string(min_ms) + "ms") +
                " (write it as 30s, 15m, 24h or 1h30m)");
    return std::nullopt;
  }
  return ms;
}

// [[checks]]: after the targets, which their selectors name.
void ReadChecks(const toml::table& root, const std::string& source, Inventory& inv, std::vector<std::string>& errors) {
  const toml::node* node = root.get("checks");
  if (!node) return;
  const toml::array* array = node->as_array();
  if (!array || !array->is_array_of_tables()) {
    errors.push_back(source + ":" + std::to_string(LineOf(*node)) + ": checks: must be written as [[checks]] tables");
    return;
  }
  std::size_t index = 0;
  std::map<std::string, int> names;  // name -> line, valid or not, for duplicates
  for (const auto& item : *array) {
    const toml::table& table = *item.as_table();
    const std::string path = "checks[" + std::to_string(index++) + "]";
    TableReader r(table, path, source, errors);
    const std::size_t errors_before = errors.size();
    Check c;
    c.line = LineOf(table);
    c.source = source + ":" + std::to_string(c.line) + ": " + path;
    if (auto v = r.String("name")) {
      if (!IsValidName(*v)) {
        r.Error(r.Line("name"), r.Name("name"), "'" + *v + "' is not a valid name (letters, digits, '.', '_', '-'; at most 63)");
      } else {
        if (auto same = names.find(*v); same != names.end()) {
          r.Error(r.Line("name"), r.Name("name"), "duplicate check name '" + *v + "' (first declared on line " +
                                                      std::to_string(same->second) + ")");
        } else {
          names.emplace(*v, c.line);
        }
        c.name = *v;
      }
    } else {
      r.Error(c.line, r.Name("name"), "missing: every check needs a name");
    }

    // targets: one selector or an array of them, each resolving to something.
    if (const toml::node* t = table.get("targets")) {
      if (t->is_string()) {
        c.targets = {*r.String("targets")};
      } else if (auto list = r.Strings("targets", [](const std::string&) { return std::string(); })) {
        c.targets = *list;
        if (c.targets.empty()) {
          r.Error(r.Line("targets"), r.Name("targets"), "names no target (write an id, group:NAME, tag:NAME or *)");
        }
      }
    } else {
      r.Get("targets");
      r.Error(c.line, r.Name("targets"), "missing: name the targets to check (an id, group:NAME, tag:NAME, * or an array)");
    }
    std::vector<const Target*> resolved;
    if (!c.targets.empty()) {
      auto targets = Resolve(inv, c.targets);
      if (!targets) {
        r.Error(r.Line("targets"), r.Name("targets"), targets.error().message);
      } else {
        resolved = *targets;
      }
    }

    // What runs: a command or a snapshot.
    if (auto v = r.String("command")) {
      c.command = *v;
      c.command_source = source + ":" + std::to_string(r.Line("command")) + ": " + r.Name("command");
      if (v->find_first_not_of(" \t\n") == std::string::npos) r.Error(r.Line("command"), r.Name("command"), "is empty");
    }
    if (auto v = r.String("capture")) {
      if (*v != "camera" && *v != "screen") {
        r.Error(r.Line("capture"), r.Name("capture"), "unknown capture '" + *v + "' (camera or screen: a snapshot)");
      } else {
        c.capture = *v;
        for (const Target* t : resolved) {
          if (!t->HasCapability(c.capture)) {
            r.Error(r.Line("capture"), r.Name("capture"),
                    t->id + " does not list " + c.capture + " in its capabilities; narrow targets or add it there");
          }
        }
      }
    }
    if (!c.command.empty() && !c.capture.empty()) {
      r.Error(r.Line("capture"), r.Name("capture"), "give either command or capture, not both");
    } else if (c.command.empty() && c.capture.empty() && !r.Present("command") && !r.Present("capture")) {
      r.Error(c.line, r.Name("command"), "missing: what to check (command = \"...\", or capture = \"camera\")");
    }

    // When: exactly one of every, at and on.
    const bool has_every = r.Present("every");
    const bool has_at = r.Present("at");
    const bool has_on = r.Present("on");
    if (auto ms = ReadDuration(r, "every", 1000)) c.every_ms = *ms;
    if (auto v = r.String("at")) {
      if (auto minute = ParseClock(*v)) {
        c.at_minute = *minute;
        c.at = *v;
      } else {
        r.Error(r.Line("at"), r.Name("at"), "'" + *v + "' is not a time of day (HH:MM, 24-hour, gateway local time)");
      }
    }
    if (auto v = r.String("on")) {
      if (std::find(std::begin(kCheckEvents), std::end(kCheckEvents), *v) == std::end(kCheckEvents)) {
        r.Error(r.Line("on"), r.Name("on"), "unknown event '" + *v + "' (node-online-after-offline)");
      } else {
        c.on = *v;
        if (!resolved.empty() && std::none_of(resolved.begin(), resolved.end(), [](const Target* t) {
              return t->kind == TargetKind::kNode;
            })) {
          r.Error(r.Line("targets"), r.Name("targets"), "covers no node; node-online-after-offline fires only for paired nodes");
        }
      }
    }
    const int whens = int{has_every} + int{has_at} + int{has_on};
    if (whens != 1) {
      r.Error(whens == 0 ? c.line : r.Line(has_on ? "on" : "at"), r.Name(whens == 0 ? "every" : has_on ? "on" : "at"),
              whens == 0 ? "missing: say when it runs (every = \"15m\", at = \"03:00\" or on = \"node-online-after-offline\")"
                         : "give exactly one of every, at and on");
    }
    if (auto ms = ReadDuration(r, "offline_for", 1000)) {
      if (!has_on) {
        r.Error(r.Line("offline_for"), r.Name("offline_for"), "only means something with on = \"node-online-after-offline\"");
      }
      c.offline_for_ms = *ms;
    }
    if (auto ms = ReadDuration(r, "timeout", 1)) {
      if (*ms > inv.gateway.max_timeout_ms) {
        r.Error(r.Line("timeout"), r.Name("timeout"),
                "is longer than [gateway] max_timeout_ms (" + std::to_string(inv.gateway.max_timeout_ms) + " ms)");
      } else {
        c.timeout_ms = *ms;
      }
    }

    if (const toml::table* e = r.Table("expect")) {
      if (!c.capture.empty()) {
        r.Error(r.Line("expect"), r.Name("expect"), "a capture check passes when the snapshot is taken; expect is for commands");
      }
      TableReader er(*e, r.Name("expect"), source, errors);
      if (auto v = er.Integer("exit_code", 0, 255)) c.expect.exit_code = static_cast<int>(*v);
      if (auto v = er.String("stdout_matches")) {
        // RE2: matching time is linear in the output, whatever the pattern (no backreferences).
        const RE2 re(*v, RE2::Quiet);
        if (re.ok()) {
          c.expect.stdout_matches = *v;
        } else {
          er.Error(er.Line("stdout_matches"), er.Name("stdout_matches"),
                   "'" + *v + "' is not a regular expression RE2 accepts (" + re.error() + ")");
        }
      }
      c.expect.below = er.Number("below", -1e15, 1e15);
      c.expect.above = er.Number("above", -1e15, 1e15);
      if (c.expect.below && c.expect.above && *c.expect.above >= *c.expect.below) {
        er.Error(er.Line("above"), er.Name("above"), "must be less than below, or nothing could pass");
      }
    }
    if (auto v = r.String("alert")) c.alert = *v;
    if (auto v = r.String("remediation")) {
      if (!c.capture.empty()) {
        r.Error(r.Line("remediation"), r.Name("remediation"), "a capture check has nothing to remediate");
      } else if (v->find_first_not_of(" \t\n") == std::string::npos) {
        r.Error(r.Line("remediation"), r.Name("remediation"), "is empty");
      } else {
        c.remediation = *v;
      }
    }
    if (errors.size() == errors_before) inv.checks.push_back(std::move(c));
  }
}

// Names in approved_nodes / approved_hosts must exist and be of the right kind: a typo there
// would otherwise silently approve nothing (or the wrong thing).
void CheckPolicyReferences(const toml::table& root, const std::string& source, const Inventory& inv,
                           std::vector<std::string>& errors) {
  for (const auto& entry : inv.policies) {
    // Named, not structured bindings: clang 14 (the fuzz build) cannot capture those.
    const std::string& cap = entry.first;
    const CapabilityPolicy& policy = entry.second;
    auto check = [&](const std::optional<std::vector<std::string>>& ids, const char* key, bool hosts) {
      if (!ids) return;
      const toml::node* node = root.at_path("policies." + cap + "." + key).node();
      int line = node ? LineOf(*node) : policy.line;
      for (const auto& id : *ids) {
        const Target* t = inv.Find(id);
        std::string where = source + ":" + std::to_string(line) + ": policies." + cap + "." + key + ": ";
        if (!t) {
          errors.push_back(where + "unknown target '" + id + "'");
        } else if (hosts != (t->kind == TargetKind::kHost)) {
          errors.push_back(where + "'" + id + "' is " + (hosts ? "not an SSH host (list it in approved_nodes)"
                                                               : "an SSH host (list it in approved_hosts)"));
        }
      }
    };
    check(policy.approved_nodes, "approved_nodes", false);
    check(policy.approved_hosts, "approved_hosts", true);
  }
}

Target MakeLocalTarget() {
  Target local;
  local.id = std::string(kLocalTargetId);
  local.kind = TargetKind::kLocal;
  local.device = core::HostName();
  local.purpose = "the gateway's own machine";
  local.capabilities = {"run"};
  return local;
}

}  // namespace

const char* TargetKindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kLocal: return "local";
    case TargetKind::kHost: return "host";
    case TargetKind::kNode: return "node";
  }
  return "local";
}

bool Target::HasCapability(std::string_view capability) const {
  return std::find(capabilities.begin(), capabilities.end(), capability) != capabilities.end();
}

void Inventory::Reindex() {
  id_index.clear();
  id_index.reserve(targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) id_index.emplace(targets[i].id, i);
}

const Target* Inventory::Find(std::string_view id) const {
  // The index is checked against the list, so a list changed after the last Reindex (tests and
  // the CLI's own edits do that) is still answered right, by the scan.
  if (auto it = id_index.find(id); it != id_index.end() && it->second < targets.size() &&
                                                targets[it->second].id == id) {
    return &targets[it->second];
  }
  for (const auto& t : targets) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

const CapabilityPolicy* Inventory::Policy(std::string_view capability) const {
  auto it = policies.find(capability);
  return it == policies.end() ? nullptr : &it->second;
}

Inventory DefaultInventory() {
  Inventory inv;
  inv.source = std::string(kBuiltinSource);
  inv.gateway.state_dir = core::ExpandHome("~/.local/state/labgate");
  inv.gateway.audit_log = inv.gateway.state_dir + "/audit.jsonl";
  inv.targets.push_back(MakeLocalTarget());
  // Read-only by construction; systemctl only where systemd is running (a machine with the
  // binary but booted without systemd would print "System has not been booted with systemd").
  for (const char* c : {"uptime", "df -h", "test -d /run/systemd/system && systemctl --failed --no-legend || true"}) {
    inv.diagnostics.push_back({c, "built-in diagnostics"});
  }
  return inv;
}

bool IsListedOperator(const std::vector<std::string>& operators, uid_t uid,
                      const std::optional<std::vector<gid_t>>& groups) {
  std::optional<std::vector<gid_t>> member_of = groups;
  for (const auto& entry : operators) {
    std::optional<uid_t> listed_uid;
    std::optional<gid_t> listed_gid;
    if (entry.rfind("uid:", 0) == 0) {
      listed_uid = core::ParseId(entry.substr(4));
    } else if (entry.rfind("gid:", 0) == 0) {
      listed_gid = core::ParseId(entry.substr(4));
    } else if (entry.rfind("group:", 0) == 0) {
      listed_gid = core::FindGroup(entry.substr(6));
    } else if (auto account = core::FindAccount(entry)) {
      listed_uid = account->uid;
    }
    if (listed_uid && *listed_uid == uid) return true;
    if (!listed_gid) continue;
    if (!member_of) {
      const auto account = core::AccountOf(uid);
      member_of = account ? core::GroupsOf(*account) : std::vector<gid_t>{};
    }
    if (std::find(member_of->begin(), member_of->end(), *listed_gid) != member_of->end()) return true;
  }
  return false;
}

std::optional<int> SyslogFacility(std::string_view name) {
  static constexpr std::pair<std::string_view, int> kNames[] = {
      {"kern", 0},    {"user", 1},    {"mail", 2},    {"daemon", 3},  {"auth", 4},      {"syslog", 5},  {"lpr", 6},
      {"news", 7},    {"uucp", 8},    {"cron", 9},    {"authpriv", 10}, {"ftp", 11},    {"local0", 16}, {"local1", 17},
      {"local2", 18}, {"local3", 19}, {"local4", 20}, {"local5", 21}, {"local6", 22},   {"local7", 23}};
  for (const auto& [n, v] : kNames) {
    if (n == name) return v;
  }
  return std::nullopt;
}

core::Result<Inventory> ParseInventory(std::string_view text, const std::string& source, const std::string& base_dir) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return MakeError(ErrorCode::kParse, source + ":" + std::to_string(e.source().begin.line) + ": " +
                                            std::string(e.description()) + " (TOML syntax)");
  }

  Inventory inv = DefaultInventory();
  inv.source = source;
  std::vector<std::string> errors;
  bool state_dir_set = false;
  bool audit_log_set = false;
  {
    TableReader top(root, "", source, errors);
    auto section = [&](const char* key, auto&& read) {
      const toml::node* node = top.Get(key);
      if (!node) return;
      if (const toml::table* t = node->as_table()) {
        read(*t);
      } else {
        top.Error(LineOf(*node), key, std::string("must be a table [") + key + "]");
      }
    };
    section("gateway", [&](const toml::table& t) {
      state_dir_set = t.contains("state_dir");
      audit_log_set = t.contains("audit_log");
      ReadGateway(t, source, base_dir, inv.gateway, errors);
    });
    section("audit", [&](const toml::table& t) { ReadAudit(t, source, inv.audit, errors); });
    section("local", [&](const toml::table& t) { ReadLocal(t, source, inv, errors); });
    // Hosts and nodes before policies, which refer to them.
    top.Get("hosts");
    top.Get("nodes");
    ReadTargetList(root, "hosts", TargetKind::kHost, source, base_dir, inv, errors);
    ReadTargetList(root, "nodes", TargetKind::kNode, source, base_dir, inv, errors);
    section("policies", [&](const toml::table& t) { ReadPolicies(t, source, inv, errors); });
    section("groups", [&](const toml::table& t) { ReadGroups(t, source, inv, errors); });
    section("classify", [&](const toml::table& t) { ReadClassify(t, source, inv, errors); });
    top.Get("checks");
    ReadChecks(root, source, inv, errors);
  }
  if (state_dir_set && !audit_log_set) inv.gateway.audit_log = inv.gateway.state_dir + "/audit.jsonl";
  if (!inv.gateway.command_user.empty() && inv.Find(kLocalTargetId)) {
    // `local` runs as the gateway's own user, which is exactly what a command account avoids.
    const toml::node* node = root.at_path("gateway.command_user").node();
    errors.push_back(source + ":" + std::to_string(node ? LineOf(*node) : 0) +
                     ": gateway.command_user: commands on this machine go through the node agent running as " +
                     inv.gateway.command_user + ", but [local] is still on and would run them as the gateway's user; "
                     "set enabled = false under [local]");
  }
  CheckPolicyReferences(root, source, inv, errors);

  if (!errors.empty()) {
    std::sort(errors.begin(), errors.end(), [&](const std::string& a, const std::string& b) {
      auto line = [&](const std::string& e) { return std::atoi(e.c_str() + source.size() + 1); };
      return line(a) < line(b);
    });
    std::string message = "invalid inventory " + source + " (" + std::to_string(errors.size()) + " problem" +
                          (errors.size() == 1 ? "" : "s") + "):";
    for (const auto& e : errors) message += "\n  " + e;
    return MakeError(ErrorCode::kInvalidArgument, message);
  }
  inv.Reindex();
  return inv;
}

core::Result<Inventory> LoadInventory(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(ErrorCode::kNotFound, "cannot read inventory " + path + ": " + std::strerror(errno) +
                                               " (pass --config FILE, or copy the bundled hosts.toml)");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  fs::path abs = fs::absolute(path);
  return ParseInventory(buffer.str(), path, abs.parent_path().string());
}

core::Result<capabilities::DeviceConfig> LoadDeviceConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(ErrorCode::kNotFound, "cannot read device config " + path + ": " + std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  toml::table root;
  try {
    root = toml::parse(buffer.str(), path);
  } catch (const toml::parse_error& e) {
    return MakeError(ErrorCode::kParse, path + ":" + std::to_string(e.source().begin.line) + ": " +
                                            std::string(e.description()) + " (TOML syntax)");
  }
  capabilities::DeviceConfig config;
  std::vector<std::string> errors;
  {
    TableReader top(root, "", path, errors);
    ReadDeviceConfig(top, config);
  }
  if (!errors.empty()) {
    std::string message = "invalid device config " + path + ":";
    for (const auto& e : errors) message += "\n  " + e;
    return MakeError(ErrorCode::kInvalidArgument, message);
  }
  return config;
}

std::optional<std::int64_t> ParseCheckDuration(std::string_view text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t digits = i;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == i || digits - i > 9) return std::nullopt;
    const std::int64_t value = std::stoll(std::string(text.substr(i, digits - i)));
    std::size_t unit_end = digits;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) ++unit_end;
    const std::string_view unit = text.substr(digits, unit_end - digits);
    std::int64_t scale = 0;
    if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60 * 1000;
    else if (unit == "h") scale = 3600 * 1000;
    else if (unit == "d") scale = 24LL * 3600 * 1000;
    else return std::nullopt;
    total += value * scale;
    i = unit_end;
  }
  if (total <= 0 || total > 366LL * 24 * 3600 * 1000) return std::nullopt;
  return total;
}

std::string DefaultConfigPath() {
  if (fs::exists("hosts.toml")) return "hosts.toml";
  std::string user = core::ExpandHome("~/.config/labgate/hosts.toml");
  if (fs::exists(user)) return user;
  return "";
}

core::Result<Inventory> LoadConfigured(const std::string& explicit_path) {
  std::string path = explicit_path.empty() ? DefaultConfigPath() : explicit_path;
  if (path.empty()) return DefaultInventory();
  return LoadInventory(path);
}

}  // namespace labgate::inventory
