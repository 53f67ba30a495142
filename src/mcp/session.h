#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_log.h"
#include "core/cancel.h"
#include "core/result.h"
#include "mcp/outbox.h"
#include "mcp/request_state.h"
#include "mcp/tasks.h"

namespace labgate::mcp {

using Json = nlohmann::json;

/// Protocol revisions this server speaks through `initialize` (the legacy era), newest first.
inline constexpr std::string_view kProtocolVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};
/// Revisions served statelessly, with the version and client capabilities in each request's
/// _meta (the modern era).
inline constexpr std::string_view kModernProtocolVersions[] = {"2026-07-28"};

/// The per-request _meta keys of the modern era.
inline constexpr const char* kMetaProtocolVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr const char* kMetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr const char* kMetaClientInfo = "io.modelcontextprotocol/clientInfo";
inline constexpr const char* kMetaServerInfo = "io.modelcontextprotocol/serverInfo";

/// Error codes of the 2026-07-28 revision.
inline constexpr int kHeaderMismatch = -32020;
inline constexpr int kMissingRequiredClientCapability = -32021;
inline constexpr int kUnsupportedProtocolVersion = -32022;

/// Whether a request belongs to the modern era: server/discover, or the version in its _meta.
bool IsModernRequest(const std::string& method, const Json& params);

/// A modern-era call's confirmation: asked by answering input_required, answered in the
/// client's retry of the same call, which carries the requestState labgate issued.
struct InputExchange {
  bool can_elicit = false;  // this request declared the elicitation capability
  std::string answer;       // "accept", "decline" or "cancel" from a verified retry; "" on the first try
  std::string who;          // who answered, for the audit
  Json elicitation;         // elicitation/create params, set when a human must be asked
};

/// The revision to answer `initialize` with: the client's when supported, else the newest.
std::string NegotiateProtocolVersion(std::string_view requested);

/// RFC 5424 severities as MCP names them, least severe first.
enum class LogLevel { kDebug, kInfo, kNotice, kWarning, kError, kCritical, kAlert, kEmergency };
std::optional<LogLevel> ParseLogLevel(std::string_view name);
const char* LogLevelName(LogLevel level);

class Session;

/// What a tool handler may use while it runs. Lives for the duration of one call.
struct ToolContext {
  const audit::Actor& actor;
  const core::CancelToken& cancel;
  Session& session;
  /// The id of the client's tools/call request, so messages sent during the call travel with it.
  Json request_id;
  /// Set when the call runs as a task (the client polls tasks/get for it).
  std::string task_id;
  /// For a task: takes each target's output as it arrives, for tasks/get. Null otherwise.
  std::function<void(const std::string& target, std::string_view bytes)> output;
  /// Sends notifications/progress when the request carried a progressToken; else does nothing.
  std::function<void(double progress, std::optional<double> total, const std::string& message)> progress;
  /// Set for a modern-era call: confirmations go back to the client as input_required.
  InputExchange* input = nullptr;
};

/// A tool's answer: content blocks, optional structured content, and whether it failed.
struct ToolResult {
  Json content = Json::array();
  std::optional<Json> structured;
  bool is_error = false;
};

/// A published tool: its descriptor for tools/list and its handler (run on a worker thread).
struct ToolDefinition {
  Json descriptor;  // name, title, description, inputSchema, outputSchema, annotations
  std::function<ToolResult(ToolContext&, const Json& arguments)> handler;
};

/// What resources/list, resources/templates/list and resources/read serve. Thread-safe.
class ResourceProvider {
 public:
  virtual ~ResourceProvider() = default;
  /// The `resources` array of resources/list.
  virtual Json List() = 0;
  /// The `resourceTemplates` array of resources/templates/list.
  virtual Json Templates() = 0;
  /// The `contents` array of resources/read; kNotFound for an unknown URI.
  virtual core::Result<Json> Read(const std::string& uri) = 0;
};

/// One MCP session over a message stream (DESIGN §5). HandleLine is called from a single reader
/// thread; requests are answered from worker threads; everything else is thread-safe.
class Session {
 public:
  /// `resources` may be null: the session then declares no resources capability. `via` names the
  /// transport in the audit log ("mcp" on stdio and the MCP socket, "mcp-http" over HTTP).
  Session(Outbox& outbox, TaskRunner& tasks, std::vector<ToolDefinition> tools, std::string os_user,
          ResourceProvider* resources = nullptr, std::string via = "mcp");
  ~Session();

  /// Handles one framed line from the client.
  void HandleLine(std::string_view line);
  /// Answers a line that exceeded the frame cap.
  void HandleOversized(std::size_t bytes, std::size_t limit);
  /// Cancels every call in flight and waits for the handlers to return (stdin closed).
  void Shutdown();

  /// Sends a request to the client during the call `related` and waits for its answer
  /// (elicitation needs this). Fails on timeout, cancellation, an error response, or shutdown.
  core::Result<Json> RequestFromClient(std::string_view method, Json params, std::chrono::milliseconds timeout,
                                       const core::CancelToken& cancel, const Json& related);

  /// Asks the client during a tool call: directly, or for a task by marking it input_required and
  /// sending the request on the client's tasks/result stream (related-task in _meta).
  core::Result<Json> AskClient(const ToolContext& ctx, std::string_view method, Json params,
                               std::chrono::milliseconds timeout);

  /// Whether a call or a task is still running (an idle HTTP session without one may end).
  bool busy() const;

  /// Sends notifications/message, during the call `related` (or null), when `level` passes the
  /// client's logging/setLevel.
  void Log(LogLevel level, std::string_view logger, Json data, const Json& related);

  /// The session's id in the audit log.
  const std::string& id() const { return actor_.session_id; }

  /// Where the session writes audit events of its own (a refused requestState); set before the
  /// first line is handled.
  using Auditor = std::function<void(const std::string& event, const audit::Actor& actor, Json details)>;
  void set_auditor(Auditor auditor) { auditor_ = std::move(auditor); }
  /// How long a 2026-07-28 tools/call may run before it is answered with a task handle (when the
  /// request declared the tasks extension); read at each call. Set before the first line.
  void set_task_after(std::function<std::chrono::milliseconds()> after) { task_after_ = std::move(after); }
  /// The server's `instructions`, shared by initialize and server/discover.
  static const char* Instructions();

  bool initialized() const;
  std::string protocol_version() const;
  /// The client's declared capabilities from initialize (e.g. "elicitation").
  Json client_capabilities() const;

 private:
  void HandleRequest(const Json& id, const std::string& method, const Json& params);
  /// A 2026-07-28 request, served from its own _meta alone.
  void HandleModernRequest(const Json& id, const std::string& method, const Json& params);
  void CallToolModern(const Json& id, const Json& params, const Json& capabilities, audit::Actor actor);
  void SendModernResult(const Json& id, Json result, std::optional<std::int64_t> ttl_ms = std::nullopt,
                        const char* cache_scope = "private");
  void HandleNotification(const std::string& method, const Json& params);
  void HandleResponse(const Json& id, const Json& result, const Json& error);
  Json Initialize(const Json& params);
  void CallTool(const Json& id, const Json& params);
  const ToolDefinition* FindTool(const std::string& name) const;
  std::string UnknownTool(const std::string& name) const;  // the error text, naming the tools there are
  /// Sees each progress report first; returns whether the client is sent notifications/progress.
  using ProgressHook = std::function<bool(double, std::optional<double>, const std::string&)>;
  /// Runs a tool handler with its progress plumbing; the result's body, or null when cancelled.
  Json RunHandler(const ToolDefinition& tool, ToolContext& ctx, const Json& arguments, const Json& progress_token,
                  const ProgressHook& hook);
  void StartTask(const Json& id, const ToolDefinition& tool, const Json& arguments, const Json& progress_token,
                 const Json& task_params);
  void HandleTaskRequest(const Json& id, const std::string& method, const Json& params);
  /// tasks/get, tasks/update and tasks/cancel of the 2026-07-28 tasks extension.
  void HandleModernTaskRequest(const Json& id, const std::string& method, const Json& params, const Json& capabilities,
                               const audit::Actor& actor);

  /// A tools/call running as a task: one the client asked to run so (2025-11-25 experimental
  /// tasks), or one labgate answered with a task handle because it ran long (2026-07-28 extension).
  struct Task {
    std::string id;
    bool modern = false;      // a 2026-07-28 task: seen only by that era's tasks/* methods
    bool registered = false;  // in mcp_tasks_: the client holds its id
    bool answered = false;    // a modern call that finished before it became a task
    Json input_requests = Json::object();  // modern: the question waiting for tasks/update
    std::string answer;                     // ... and the answer it brought: accept, decline, cancel
    std::string answer_who;
    int questions = 0;  // inputRequests keys are never reused within a task
    std::string status = "working";  // working, input_required, completed, failed, cancelled
    std::string status_message;
    std::string stop_reason;  // why it was cancelled: by the client, or its ttl passed
    Json partial = Json::array();  // one line per target finished so far
    std::map<std::string, std::string> live;  // the latest output of each target, while it runs
    std::chrono::system_clock::time_point created;
    std::chrono::system_clock::time_point updated;
    std::int64_t ttl_ms = 0;
    std::shared_ptr<core::CancelToken> cancel;
    Json result;          // the tools/call result once completed
    Json waiter;          // the id of a tasks/result request waiting for it, or null
    bool terminal() const { return status == "completed" || status == "failed" || status == "cancelled"; }
  };
  Json TaskJson(const Task& task) const;            // with mutex_ held
  Json ModernTaskJson(const Task& task) const;      // with mutex_ held
  /// A task not yet registered, with a fresh 128-bit id; `modern` for the 2026-07-28 extension.
  static std::shared_ptr<Task> NewTask(std::int64_t ttl_ms, bool modern);
  /// The task `task_id` of that era, expired ones forgotten first; null when there is none.
  std::shared_ptr<Task> FindTask(const std::string& task_id, bool modern);
  bool RegisterTask(const std::shared_ptr<Task>& t);  // with mutex_ held; false when the session is full
  /// Feeds a task's live output and progress lines (what tasks/get shows while it runs).
  std::function<void(const std::string&, std::string_view)> LiveOutput(const std::shared_ptr<Task>& t);
  ProgressHook PartialInto(const std::shared_ptr<Task>& t);
  /// Records the handler's answer (null: cancelled) as the task's end.
  void FinishTask(const std::shared_ptr<Task>& t, Json body);
  void ExpireTasks();                               // with mutex_ held
  void SetTaskStatus(const std::string& task_id, const std::string& status, const std::string& message = "");
  void SendResult(const Json& id, Json result);
  void SendError(const Json& id, int code, std::string_view message);

  Outbox& outbox_;
  TaskRunner& tasks_;
  std::vector<ToolDefinition> tools_;
  ResourceProvider* resources_;
  audit::Actor actor_;
  Auditor auditor_;
  std::unique_ptr<RequestStates> states_;  // requestState of input_required results
  std::function<std::chrono::milliseconds()> task_after_;

  mutable std::mutex mutex_;
  bool initialized_ = false;
  bool shutting_down_ = false;
  std::string protocol_version_;
  Json client_capabilities_ = Json::object();
  LogLevel log_level_ = LogLevel::kWarning;
  std::map<std::string, std::shared_ptr<core::CancelToken>> in_flight_;  // by encoded request id
  std::map<std::string, std::shared_ptr<Task>> mcp_tasks_;              // by task id
  std::condition_variable task_cv_;

  struct Pending {
    bool done = false;
    Json result;
    Json error;
  };
  std::condition_variable pending_cv_;
  std::map<std::int64_t, std::shared_ptr<Pending>> pending_;
  std::int64_t next_request_id_ = 1;
};

}  // namespace labgate::mcp
