#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <unordered_map>
#include <vector>

#include "capabilities/device_config.h"
#include "core/result.h"

/// The inventory: hosts.toml loaded, validated and resolved into targets.
namespace labgate::inventory {

/// The capabilities a target can offer. A target offers only `run` unless it lists others.
inline constexpr std::string_view kKnownCapabilities[] = {"run", "screen", "camera", "location", "file"};

/// "run, screen, camera, location, file": the list error messages name.
std::string KnownCapabilityList();

inline constexpr std::string_view kLocalTargetId = "local";

enum class TargetKind { kLocal, kHost, kNode };

/// "local", "host" or "node".
const char* TargetKindName(TargetKind kind);

/// [gateway]: where state lives and the defaults every action uses.
struct GatewaySettings {
  std::string listen = "127.0.0.1:7022";
  std::string state_dir;  // absolute
  std::string audit_log;  // absolute
  std::int64_t audit_max_bytes = 64LL * 1024 * 1024;  // rotate the audit log past this size
  bool allow_pairing = true;
  bool require_node_key = true;
  std::int64_t default_timeout_ms = 20000;
  std::int64_t max_timeout_ms = 3600000;
  std::int64_t max_parallel = 32;
  std::int64_t output_cap_bytes = 64 * 1024;
  std::int64_t key_max_age_days = 90;
  std::int64_t approval_ttl_s = 900;         // how long an approval request stays open
  std::int64_t elicitation_timeout_s = 300;  // how long a human has to answer an MCP elicitation
  /// A 2026-07-28 tools/call still running after this long is answered with a task handle (when
  /// the request declared the tasks extension); 0: such calls become tasks at once.
  std::int64_t task_after_ms = 5000;
  std::int64_t artifact_max_bytes = 512LL * 1024 * 1024;  // captures kept in state_dir/artifacts, oldest go first
  std::int64_t artifact_max_age_s = 24 * 3600;
  /// Source networks the agent listener accepts ("127.0.0.0/8", "100.64.0.0/10"); others are
  /// refused before the SSH handshake. Empty: every source may try.
  std::vector<std::string> allowed_networks;
  std::int64_t auth_fail_limit = 10;      // failed node logins per source address within the window
  std::int64_t auth_fail_window_s = 300;  // ... after which that address is refused until the window passes
  /// People who may use the operator socket besides the gateway's own user (who must present
  /// STATE_DIR/operator.key): "alice", "uid:1001", "group:labops", "gid:1002". The kernel vouches
  /// for their uid (SO_PEERCRED), so they need no key.
  std::vector<std::string> operators;
  /// The account whose `labgate node` agent runs commands on this machine, when the gateway has
  /// its own user and `local` is off; it may not be an operator.
  std::string command_user;

  /// MCP over Streamable HTTP (`labgate gateway` only). Off while `http_listen` is empty; else
  /// "HOST:PORT" (an IP literal or localhost; [v6]:PORT) or "unix:/absolute/path".
  std::string http_listen;
  /// The bearer token clients send, by reference only; with neither set, STATE_DIR/http.token
  /// (created on first start, 0600).
  std::string http_token_env;
  std::string http_token_file;
  std::string http_tls_cert_file;  // PEM chain; with the key, the listener speaks HTTPS only
  std::string http_tls_key_file;
  /// Listening beyond loopback without TLS is refused unless this says a TLS proxy is in front.
  bool http_plaintext_beyond_loopback = false;
  /// Browser origins allowed besides the listener's own ("https://assistant.example").
  std::vector<std::string> http_allowed_origins;
  std::int64_t http_max_body_bytes = 4LL * 1024 * 1024;
  std::int64_t http_max_connections = 512;
  std::int64_t http_session_idle_s = 1800;  // a session nobody used for this long ends
};

/// Whether `listen` (http_listen's HOST:PORT form) names a loopback address: 127.0.0.0/8, ::1 or
/// localhost. A unix socket counts as local too.
bool IsLoopbackListen(const std::string& listen);

/// http_listen's "HOST:PORT" split at its last colon, with an IPv6 host's brackets taken off
/// ("[::1]:7023" gives "::1" and "7023"); nullopt without a colon.
std::optional<std::pair<std::string, std::string>> SplitHostPort(const std::string& listen);

/// Whether the account `uid` is listed in `operators` (see GatewaySettings::operators): by name,
/// by uid, or as a member of a listed group. `groups`: the groups a connected process really
/// has (its gid and SO_PEERGROUPS), so one that dropped a group is not a member; without them,
/// the group database's answer for the account.
bool IsListedOperator(const std::vector<std::string>& operators, uid_t uid,
                      const std::optional<std::vector<gid_t>>& groups = std::nullopt);

/// Target roles: an admin target may receive privileged commands (sudo, doas, writes into system
/// paths) when policy allows them; a daily-use target never does.
inline constexpr std::string_view kRoles[] = {"admin", "daily"};

/// Modes of `run` on a target, least permissive first (see policy/decide.h).
inline constexpr std::string_view kRunModes[] = {"read-only", "confirm-mutating", "confirm-destructive", "full"};

/// One allow or deny pattern and where it was written ("hosts.toml:12 hosts[0].deny").
struct CommandRule {
  std::string pattern;
  std::string source;
};

/// The path rules of one scope for the `file` capability: globs over normalised absolute paths
/// (`*` matches across `/`; `~/` means the target's home). Deny wins; an allow rule admits a
/// path without a human, and is the only way to read a secret file.
struct FileRules {
  std::vector<CommandRule> read_allow;
  std::vector<CommandRule> read_deny;
  std::vector<CommandRule> write_allow;
  std::vector<CommandRule> write_deny;
};

/// The command rules of one scope: [policies.run], [groups.NAME] or one target.
struct CommandRules {
  std::string mode;         // "" when this scope does not set one
  std::string mode_source;  // "hosts.toml:7 policies.run.mode"
  std::vector<CommandRule> allow;
  std::vector<CommandRule> deny;
  FileRules files;  // file_read_allow, ... in [groups.NAME] and targets; [policies.file] read_allow, ... globally
};

/// [classify]: an operator's addition to the built-in command table.
struct ClassifyEntry {
  std::string pattern;
  std::string risk;  // "read-only", "mutating", "destructive" or "privileged"
  std::string source;
};

/// [policies.CAP]: scoping of one capability across targets.
struct CapabilityPolicy {
  std::string capability;
  bool enabled = true;
  std::optional<std::vector<std::string>> approved_nodes;  // ids of nodes (and `local`)
  std::optional<std::vector<std::string>> approved_hosts;  // ids of SSH hosts
  bool confirm = false;
  std::optional<std::vector<std::string>> roles;  // only targets of these roles may use the capability
  int line = 0;
};

/// A read-only command run after a failure, its output returned with the error.
struct DiagnosticCommand {
  std::string command;  // run by sh -c
  std::string source;
};

/// One thing actions can be sent to: the built-in `local`, an SSH host or a paired node.
struct Target {
  std::string id;
  TargetKind kind = TargetKind::kLocal;
  // SSH hosts only.
  std::string address;
  int port = 22;
  std::string user;
  std::string identity_file;
  std::string passphrase_env;
  std::string passphrase_file;
  std::string password_env;
  std::string password_file;
  std::string proxy_jump;
  std::string host_key_policy = "strict";
  // Every kind.
  /// The account's sudo password, by reference only: given to `sudo -S` on stdin for `run` and
  /// `file put` with sudo (on a node: the account its agent runs under), never in argv, an
  /// environment or a process list.
  std::string sudo_password_env;
  std::string sudo_password_file;
  std::vector<std::string> groups;
  std::vector<std::string> tags;
  std::string device;
  std::string owner;
  std::string purpose;
  std::vector<std::string> capabilities;
  std::string role = "admin";    // "admin" or "daily" (kRoles)
  int role_line = 0;             // where role was written; 0 when defaulted
  std::string key_fingerprint;   // nodes: the identity the pairing store must hold ("SHA256:..."), if pinned
  CommandRules rules;  // this target's own mode, allow and deny
  capabilities::DeviceConfig capture;  // `local` and SSH hosts: capture backends; nodes keep theirs on the device
  int line = 0;  // where it is declared in hosts.toml; 0 for built-ins

  bool HasCapability(std::string_view capability) const;
};

/// What a check's output must show to pass. Every part given must hold.
struct CheckExpect {
  int exit_code = 0;           // the command's exit code
  std::string stdout_matches;  // an RE2 regular expression searched in stdout; "" when not checked
  std::optional<double> below;  // the first number in stdout must be below this ...
  std::optional<double> above;  // ... and above this
};

/// [[checks]]: a read-only command (or a snapshot) run on targets on a schedule or an event,
/// with an alert on failure and a remediation that runs only after an operator approves it.
struct Check {
  std::string name;
  std::vector<std::string> targets;  // selectors
  std::string command;               // run by sh -c; empty for a capture check
  std::string capture;               // "camera" or "screen": take a snapshot instead of a command
  std::int64_t every_ms = 0;         // every = "15m": run this often
  int at_minute = -1;                // at = "03:00": minutes after local midnight
  std::string at;                    // as written
  std::string on;                    // "node-online-after-offline"
  std::int64_t offline_for_ms = 0;   // with `on`: how long the node must have been away
  std::optional<std::int64_t> timeout_ms;  // unset: [gateway] default_timeout_ms
  CheckExpect expect;
  std::string alert;        // run by /bin/sh -c on the gateway when a failure starts
  std::string remediation;  // run on the target only after `labgate approvals approve`
  std::string source;          // "hosts.toml:40: checks[0]", the start of error messages
  std::string command_source;  // "hosts.toml:43: checks[0].command"
  int line = 0;
};

/// The check events `on` accepts.
inline constexpr std::string_view kCheckEvents[] = {"node-online-after-offline"};

/// A loaded, validated inventory. Immutable once built; safe to share between threads.
/// [audit]: copies of every audit record for a log store the gateway's user cannot rewrite.
struct AuditForwarding {
  bool journald = false;  // forward includes "journald"
  bool syslog = false;    // forward includes "syslog"
  std::string journald_socket = "/run/systemd/journal/socket";
  std::string syslog_address = "unix:/dev/log";  // as written: udp:HOST:PORT, tcp:HOST:PORT, unix:/PATH
  std::string syslog_transport = "unix";         // "udp", "tcp" or "unix"
  std::string syslog_host;                       // udp, tcp
  std::string syslog_port;                       // udp, tcp
  std::string syslog_path = "/dev/log";          // unix
  int syslog_facility = 10;                      // authpriv (RFC 5424 number)
  std::string syslog_facility_name = "authpriv";

  bool operator==(const AuditForwarding&) const = default;
};

/// "authpriv" -> 10; nullopt for a name RFC 5424 does not define.
std::optional<int> SyslogFacility(std::string_view name);

struct Inventory {
  std::string source;  // the file it came from, or "(built-in defaults)"
  GatewaySettings gateway;
  AuditForwarding audit;
  std::map<std::string, CapabilityPolicy, std::less<>> policies;
  std::vector<Target> targets;  // `local` first when enabled, then hosts, then nodes
  CommandRules run_rules;       // [policies.run] mode, allow, deny: every target
  std::map<std::string, CommandRules, std::less<>> groups;  // [groups.NAME]
  std::vector<ClassifyEntry> classify;                      // [classify]
  std::vector<DiagnosticCommand> diagnostics;  // [policies.run] diagnostics, or the defaults
  /// [policies.run] env_allow: names (`*` globs) of variables a caller may pass in `env` without
  /// that alone needing a human, e.g. "APP_*". Locale, time zone and terminal names always may.
  std::vector<std::string> run_env_allow;
  FileRules file_rules;  // [policies.file] read_allow, read_deny, write_allow, write_deny: every target
  /// [policies.file] max_read_bytes / max_write_bytes: the largest file `file` reads or gets,
  /// and the largest it writes.
  std::int64_t file_max_read_bytes = 256LL * 1024 * 1024;
  std::int64_t file_max_write_bytes = 256LL * 1024 * 1024;
  std::vector<Check> checks;                   // [[checks]], in file order

  /// Position of each target by id, made by ParseInventory (Reindex): with 10,000 nodes a scan
  /// per lookup made `nodes list` quadratic. Find checks an entry against `targets` and falls
  /// back to a scan, so a list changed without Reindex is still answered right.
  /// Hashes a string_view and a std::string alike, so Find looks an id up without copying it.
  struct IdHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
  };
  std::unordered_map<std::string, std::size_t, IdHash, std::equal_to<>> id_index;

  const Target* Find(std::string_view id) const;
  void Reindex();
  const CapabilityPolicy* Policy(std::string_view capability) const;
};

/// Parses and validates hosts.toml text. Every problem is reported as `SOURCE:LINE: key: what`,
/// one per line, so an operator can fix them all in one pass. Relative paths resolve against
/// `base_dir`.
core::Result<Inventory> ParseInventory(std::string_view text, const std::string& source, const std::string& base_dir);

/// "90s", "15m", "24h", "1d", "1h30m", "500ms" -> milliseconds; nullopt when malformed or zero.
std::optional<std::int64_t> ParseCheckDuration(std::string_view text);

/// Reads and parses a hosts.toml file.
core::Result<Inventory> LoadInventory(const std::string& path);

/// The inventory a user gets with no hosts.toml: only `local`, state under ~/.local/state/labgate.
Inventory DefaultInventory();

/// Which file `labgate` reads when no --config is given: ./hosts.toml, then
/// ~/.config/labgate/hosts.toml; empty when neither exists (built-in defaults apply).
std::string DefaultConfigPath();

/// Reads a node's device.toml: [screen], [camera] and [location] as in a host entry.
core::Result<capabilities::DeviceConfig> LoadDeviceConfig(const std::string& path);

/// Loads `explicit_path` if given, else the default search; falls back to built-in defaults.
core::Result<Inventory> LoadConfigured(const std::string& explicit_path);

}  // namespace labgate::inventory
