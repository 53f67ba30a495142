#include "mcp/session.h"

#include "core/json_parse.h"

#include <algorithm>
#include <limits>
#include <random>
#include <spdlog/spdlog.h>

#include "core/base64.h"
#include "core/clock.h"
#include "core/hashing.h"
#include "core/json_rpc.h"

namespace labgate::mcp {
namespace {

namespace rpc = core::jsonrpc;

constexpr const char* kLevelNames[] = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};

std::string NewSessionId() {
  std::random_device rd;
  char buf[24];
  std::snprintf(buf, sizeof buf, "mcp-%08x%08x", rd(), rd());
  return buf;
}

bool IsProgressToken(const Json& token) { return token.is_string() || token.is_number_integer(); }

}  // namespace

const char* Session::Instructions() {
  return "labgate acts on the operator's homelab machines. Call `targets` to see what exists and what each "
         "target may do, then `run` with a target and a command (an argv array runs without a shell), or "
         "`screen`, `camera` and `location` where a target offers them. Every action is audited; refusals say which "
         "rule refused and what the operator can change.";
}

bool IsModernRequest(const std::string& method, const Json& params) {
  if (method == "server/discover") return true;
  return params.is_object() && params.contains("_meta") && params["_meta"].is_object() &&
         params["_meta"].contains(kMetaProtocolVersion);
}

std::string NegotiateProtocolVersion(std::string_view requested) {
  for (auto v : kProtocolVersions) {
    if (v == requested) return std::string(v);
  }
  return std::string(kProtocolVersions[0]);
}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (int i = 0; i < 8; ++i) {
    if (name == kLevelNames[i]) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

const char* LogLevelName(LogLevel level) { return kLevelNames[static_cast<int>(level)]; }

Session::Session(Outbox& outbox, TaskRunner& tasks, std::vector<ToolDefinition> tools, std::string os_user,
                 ResourceProvider* resources, std::string via)
    : outbox_(outbox),
      tasks_(tasks),
      tools_(std::move(tools)),
      resources_(resources),
      states_(std::make_unique<RequestStates>(std::chrono::minutes(10))) {
  actor_.via = std::move(via);
  actor_.os_user = std::move(os_user);
  actor_.session_id = NewSessionId();
}

Session::~Session() { Shutdown(); }

bool Session::initialized() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return initialized_;
}

std::string Session::protocol_version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return protocol_version_;
}

Json Session::client_capabilities() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return client_capabilities_;
}

void Session::SendResult(const Json& id, Json result) { outbox_.Send(rpc::MakeResult(id, std::move(result)), id); }

void Session::SendError(const Json& id, int code, std::string_view message) {
  outbox_.Send(rpc::MakeError(id, code, message), id);
}

void Session::HandleOversized(std::size_t bytes, std::size_t limit) {
  SendError(nullptr, rpc::kInvalidRequest,
            "message too large: " + std::to_string(bytes) + "+ bytes exceeds the " + std::to_string(limit) +
                "-byte limit per line; it was skipped");
}

void Session::HandleLine(std::string_view line) {
  auto decoded = rpc::Decode(line);
  if (auto* failure = std::get_if<rpc::DecodeFailure>(&decoded)) {
    if (failure->answer) SendError(failure->id, failure->error.code, failure->error.message);
    return;
  }
  auto& msg = std::get<rpc::Message>(decoded);
  // Whatever a client sends, an exception must not leave this function: on the daemon's MCP
  // socket it would end the gateway and every node session with it.
  try {
    switch (msg.kind) {
      case rpc::MessageKind::kRequest:
        if (IsModernRequest(msg.method, msg.params)) {
          HandleModernRequest(msg.id, msg.method, msg.params);
        } else {
          HandleRequest(msg.id, msg.method, msg.params);
        }
        break;
      case rpc::MessageKind::kNotification:
        HandleNotification(msg.method, msg.params);
        break;
      case rpc::MessageKind::kResponse:
        HandleResponse(msg.id, msg.result,
                       msg.error ? Json{{"code", msg.error->code}, {"message", msg.error->message}} : Json(nullptr));
        break;
    }
  } catch (const std::exception& e) {
    spdlog::warn("MCP {} '{}' could not be handled: {}", msg.kind == rpc::MessageKind::kRequest ? "request" : "message",
                 msg.method, e.what());
    if (msg.kind == rpc::MessageKind::kRequest) {
      SendError(msg.id, rpc::kInvalidParams, std::string("malformed parameters for ") + msg.method + ": " + e.what());
    }
  }
}

void Session::HandleRequest(const Json& id, const std::string& method, const Json& params) {
  if (method == "ping") return SendResult(id, Json::object());
  if (method == "initialize") {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (initialized_) {
        return SendError(id, rpc::kInvalidRequest, "already initialized: initialize may be sent once per session");
      }
    }
    if (!params.is_object() || !params.contains("protocolVersion") || !params["protocolVersion"].is_string()) {
      return SendError(id, rpc::kInvalidParams, "initialize needs params.protocolVersion (a string)");
    }
    return SendResult(id, Initialize(params));
  }
  if (!initialized()) {
    return SendError(id, rpc::kInvalidRequest, "the session is not initialized: send initialize first (only ping is allowed before it)");
  }
  if (method == "tools/list") {
    Json list = Json::array();
    for (const auto& tool : tools_) list.push_back(tool.descriptor);
    return SendResult(id, Json{{"tools", list}});
  }
  if (method == "tools/call") return CallTool(id, params);
  if (method == "tasks/get" || method == "tasks/result" || method == "tasks/list" || method == "tasks/cancel") {
    return HandleTaskRequest(id, method, params);
  }
  if (resources_ && method == "resources/list") return SendResult(id, Json{{"resources", resources_->List()}});
  if (resources_ && method == "resources/templates/list") {
    return SendResult(id, Json{{"resourceTemplates", resources_->Templates()}});
  }
  if (resources_ && method == "resources/read") {
    if (!params.is_object() || !params.contains("uri") || !params["uri"].is_string()) {
      return SendError(id, rpc::kInvalidParams, "resources/read needs params.uri (a string)");
    }
    auto contents = resources_->Read(params["uri"].get<std::string>());
    // -32002: the specification's "resource not found".
    if (!contents) return SendError(id, contents.error().code == core::ErrorCode::kNotFound ? -32002 : rpc::kInternalError,
                                    contents.error().message);
    return SendResult(id, Json{{"contents", *contents}});
  }
  if (method == "logging/setLevel") {
    std::optional<LogLevel> level;
    if (params.is_object() && params.contains("level") && params["level"].is_string()) {
      level = ParseLogLevel(params["level"].get<std::string>());
    }
    if (!level) {
      return SendError(id, rpc::kInvalidParams,
                       "logging/setLevel needs params.level: one of debug, info, notice, warning, error, critical, "
                       "alert, emergency");
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      log_level_ = *level;
    }
    return SendResult(id, Json::object());
  }
  SendError(id, rpc::kMethodNotFound, "method not found: " + method);
}

Json Session::Initialize(const Json& params) {
  std::string version = NegotiateProtocolVersion(params["protocolVersion"].get<std::string>());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    initialized_ = true;
    protocol_version_ = version;
    if (params.contains("capabilities") && params["capabilities"].is_object()) {
      client_capabilities_ = params["capabilities"];
    }
    if (params.contains("clientInfo") && params["clientInfo"].is_object()) {
      const Json& info = params["clientInfo"];
      if (info.contains("name") && info["name"].is_string()) actor_.client_name = info["name"];
      if (info.contains("version") && info["version"].is_string()) actor_.client_version = info["version"];
    }
  }
  spdlog::info("MCP session {} initialized by {} {} (protocol {})", actor_.session_id, actor_.client_name,
               actor_.client_version, version);
  Json capabilities = {{"tools", {{"listChanged", false}}},
                      {"logging", Json::object()},
                      {"tasks", {{"list", Json::object()},
                                 {"cancel", Json::object()},
                                 {"requests", {{"tools", {{"call", Json::object()}}}}}}}};
  if (resources_) capabilities["resources"] = {{"listChanged", false}, {"subscribe", false}};
  return Json{{"protocolVersion", version},
              {"capabilities", capabilities},
              {"serverInfo", {{"name", "labgate"}, {"title", "labgate homelab gateway"}, {"version", LABGATE_VERSION}}},
              {"instructions", Instructions()}};
}

void Session::CallTool(const Json& id, const Json& params) {
  if (!params.is_object() || !params.contains("name") || !params["name"].is_string()) {
    return SendError(id, rpc::kInvalidParams, "tools/call needs params.name (a string)");
  }
  Json arguments = params.value("arguments", Json::object());
  if (arguments.is_null()) arguments = Json::object();
  if (!arguments.is_object()) return SendError(id, rpc::kInvalidParams, "tools/call params.arguments must be an object");
  const std::string name = params["name"];
  const ToolDefinition* tool = FindTool(name);
  if (!tool) return SendError(id, rpc::kInvalidParams, UnknownTool(name));

  Json progress_token;
  if (params.contains("_meta") && params["_meta"].is_object() && params["_meta"].contains("progressToken") &&
      IsProgressToken(params["_meta"]["progressToken"])) {
    progress_token = params["_meta"]["progressToken"];
  }
  if (params.contains("task") && !params["task"].is_null()) {
    return StartTask(id, *tool, arguments, progress_token, params["task"]);
  }
  const std::string key = rpc::Encode(id);
  auto cancel = std::make_shared<core::CancelToken>();
  audit::Actor actor;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return outbox_.Unanswered(id);
    if (in_flight_.count(key)) {
      return SendError(id, rpc::kInvalidRequest, "request id " + key + " is already in use by a call in flight");
    }
    in_flight_[key] = cancel;
    actor = actor_;
  }
  auto task = [this, id, key, cancel, actor, tool, arguments, progress_token] {
    ToolContext ctx{actor, *cancel, *this, id, "", nullptr, nullptr};
    Json body = RunHandler(*tool, ctx, arguments, progress_token, nullptr);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_flight_.erase(key);
    }
    // A cancelled request gets no response (MCP cancellation semantics).
    if (body.is_null()) return outbox_.Unanswered(id);
    SendResult(id, std::move(body));
  };
  if (!tasks_.Spawn(std::move(task))) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_flight_.erase(key);
    }
    SendError(id, rpc::kInternalError, "too many calls in flight; wait for some to finish and retry");
  }
}

const ToolDefinition* Session::FindTool(const std::string& name) const {
  for (const auto& t : tools_) {
    if (t.descriptor["name"] == name) return &t;
  }
  return nullptr;
}

std::string Session::UnknownTool(const std::string& name) const {
  std::string names;
  for (const auto& t : tools_) names += (names.empty() ? "" : ", ") + t.descriptor["name"].get<std::string>();
  return "unknown tool '" + name + "': available tools are " + names;
}

Json Session::RunHandler(const ToolDefinition& tool, ToolContext& ctx, const Json& arguments, const Json& progress_token,
                         const ProgressHook& hook) {
  // The spec requires progress to increase with each notification; a capture that reports its
  // final value again (or a retry that starts over) must not break that, so such values are dropped.
  struct Sent {
    std::mutex mutex;
    std::optional<double> last;
  };
  auto sent = std::make_shared<Sent>();
  const Json id = ctx.request_id;
  ctx.progress = [this, id, progress_token, sent, hook](double progress, std::optional<double> total,
                                                        const std::string& message) {
    if (hook && !hook(progress, total, message)) return;
    if (progress_token.is_null()) return;
    {
      std::lock_guard<std::mutex> lock(sent->mutex);
      if (sent->last && progress <= *sent->last) return;
      sent->last = progress;
    }
    Json p = {{"progressToken", progress_token}, {"progress", progress}};
    if (total) p["total"] = *total;
    if (!message.empty()) p["message"] = message;
    outbox_.Send(rpc::MakeNotification("notifications/progress", std::move(p)), id);
  };
  ToolResult result;
  try {
    result = tool.handler(ctx, arguments);
  } catch (const std::exception& e) {
    // A handler bug must not take the session down; the caller learns what broke.
    spdlog::error("tool {} threw: {}", tool.descriptor["name"].get<std::string>(), e.what());
    result.is_error = true;
    result.content = Json::array({{{"type", "text"}, {"text", std::string("internal error: ") + e.what()}}});
    result.structured.reset();
  }
  if (ctx.cancel.cancelled()) return nullptr;
  Json body = {{"content", result.content}, {"isError", result.is_error}};
  if (result.structured) body["structuredContent"] = *result.structured;
  return body;
}

// ---- Tasks (2025-11-25 experimental): a call that outlives the client's request timeout ----

namespace {
constexpr const char* kRelatedTask = "io.modelcontextprotocol/related-task";
constexpr std::int64_t kDefaultTaskTtlMs = 3600 * 1000;
constexpr std::int64_t kMaxTaskTtlMs = 24 * 3600 * 1000;
constexpr std::int64_t kMinTaskTtlMs = 10 * 1000;
constexpr std::int64_t kTaskPollMs = 1000;
constexpr std::size_t kMaxTasks = 64;  // per session, finished ones included until they expire
constexpr std::size_t kLiveTailBytes = 4096;  // per target, the latest output tasks/get shows

// The last non-empty line of `text`, at most 160 bytes of it.
std::string LastLine(const std::string& text) {
  std::size_t end = text.find_last_not_of("\r\n");
  if (end == std::string::npos) return "";
  std::size_t begin = text.rfind('\n', end);
  begin = begin == std::string::npos ? 0 : begin + 1;
  std::string line = text.substr(begin, end + 1 - begin);
  if (line.size() > 160) line = line.substr(line.size() - 160);
  return line;
}
}  // namespace

Json Session::TaskJson(const Task& t) const {
  Json j = {{"taskId", t.id},
            {"status", t.status},
            {"createdAt", core::FormatTimestamp(t.created)},
            {"lastUpdatedAt", core::FormatTimestamp(t.updated)},
            {"ttl", t.ttl_ms},
            {"pollInterval", kTaskPollMs}};
  std::string message = t.status_message;
  if (t.status == "working") {
    // While it runs: how long, and the latest line of output, so a poller sees it move.
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - t.created);
    message = "running for " + std::to_string(secs.count()) + " s";
    if (!t.status_message.empty()) message += "; " + t.status_message;
    for (const auto& [target, tail] : t.live) {
      if (auto line = LastLine(tail); !line.empty()) message += "; " + target + ": " + line;
    }
  }
  if (!message.empty()) j["statusMessage"] = message;
  Json partial = Json::object();
  if (!t.partial.empty()) partial["finished"] = t.partial;
  if (!t.live.empty() && !t.terminal()) partial["output"] = t.live;  // stdout and stderr as they came
  if (!partial.empty()) j["_meta"] = {{"io.labgate/partial", partial}};
  return j;
}

void Session::ExpireTasks() {
  const auto now = std::chrono::system_clock::now();
  for (auto it = mcp_tasks_.begin(); it != mcp_tasks_.end();) {
    Task& t = *it->second;
    if (now - t.created < std::chrono::milliseconds(t.ttl_ms)) {
      ++it;
      continue;
    }
    if (!t.terminal()) {
      // Past its ttl nobody will fetch it: stop the work rather than leave it running unseen.
      spdlog::info("task {} expired after {} ms while {}; stopping it", t.id, t.ttl_ms, t.status);
      if (!t.cancel->cancelled()) t.stop_reason = "expired after its ttl of " + std::to_string(t.ttl_ms) + " ms; stopped";
      t.cancel->Cancel();
      ++it;
      continue;
    }
    it = mcp_tasks_.erase(it);
  }
}

void Session::SetTaskStatus(const std::string& task_id, const std::string& status, const std::string& message) {
  Json note;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = mcp_tasks_.find(task_id);
    if (it == mcp_tasks_.end() || it->second->terminal()) return;
    it->second->status = status;
    if (!message.empty()) it->second->status_message = message;
    it->second->updated = std::chrono::system_clock::now();
    note = TaskJson(*it->second);
  }
  task_cv_.notify_all();
  outbox_.Send(rpc::MakeNotification("notifications/tasks/status", std::move(note)), nullptr);
}

void Session::StartTask(const Json& id, const ToolDefinition& tool, const Json& arguments, const Json& progress_token,
                        const Json& task_params) {
  const Json support = tool.descriptor.value("execution", Json::object()).value("taskSupport", Json("forbidden"));
  if (support != "optional" && support != "required") {
    return SendError(id, rpc::kInvalidParams,
                     "tool '" + tool.descriptor["name"].get<std::string>() +
                         "' does not run as a task (it answers quickly); call it without params.task");
  }
  if (!task_params.is_object()) return SendError(id, rpc::kInvalidParams, "tools/call params.task must be an object");
  std::int64_t ttl = kDefaultTaskTtlMs;
  if (task_params.contains("ttl") && !task_params["ttl"].is_null()) {
    auto asked = core::IntegerIn(task_params["ttl"], 0, std::numeric_limits<std::int64_t>::max());
    if (!asked) return SendError(id, rpc::kInvalidParams, "tools/call params.task.ttl must be a whole number of ms");
    ttl = std::clamp<std::int64_t>(*asked, kMinTaskTtlMs, kMaxTaskTtlMs);
  }
  auto t = NewTask(ttl, /*modern=*/false);
  t->cancel = std::make_shared<core::CancelToken>();
  audit::Actor actor;
  Json created;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return outbox_.Unanswered(id);
    if (!RegisterTask(t)) {
      return SendError(id, rpc::kInvalidRequest,
                       "this session already holds " + std::to_string(kMaxTasks) +
                           " tasks; fetch or cancel some (tasks/list) or wait for them to expire");
    }
    actor = actor_;
    created = TaskJson(*t);
  }
  // The request is answered at once; the work goes on and is polled with tasks/get.
  SendResult(id, Json{{"task", created}});
  auto work = [this, t, id, actor, &tool, arguments, progress_token] {
    ToolContext ctx{actor, *t->cancel, *this, id, t->id, nullptr, nullptr};
    ctx.output = LiveOutput(t);
    FinishTask(t, RunHandler(tool, ctx, arguments, progress_token, PartialInto(t)));
  };
  if (!tasks_.Spawn(std::move(work))) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      t->status = "failed";
      t->status_message = "too many calls in flight; retry when some have finished";
      t->updated = std::chrono::system_clock::now();
    }
    task_cv_.notify_all();
  }
}

std::shared_ptr<Session::Task> Session::NewTask(std::int64_t ttl_ms, bool modern) {
  auto t = std::make_shared<Task>();
  t->id = "task-" + core::HexEncode(core::RandomBytes(16));  // unguessable: the id is all a poller shows
  t->modern = modern;
  t->created = t->updated = std::chrono::system_clock::now();
  t->ttl_ms = ttl_ms;
  return t;
}

std::shared_ptr<Session::Task> Session::FindTask(const std::string& task_id, bool modern) {
  std::lock_guard<std::mutex> lock(mutex_);
  ExpireTasks();
  auto it = mcp_tasks_.find(task_id);
  return it != mcp_tasks_.end() && it->second->modern == modern ? it->second : nullptr;
}

bool Session::RegisterTask(const std::shared_ptr<Task>& t) {
  ExpireTasks();
  if (mcp_tasks_.size() >= kMaxTasks) return false;
  mcp_tasks_[t->id] = t;
  t->registered = true;
  return true;
}

std::function<void(const std::string&, std::string_view)> Session::LiveOutput(const std::shared_ptr<Task>& t) {
  return [this, t](const std::string& target, std::string_view bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string& tail = t->live[target];
    tail.append(bytes);
    if (tail.size() > kLiveTailBytes) tail.erase(0, tail.size() - kLiveTailBytes);
    t->updated = std::chrono::system_clock::now();
  };
}

Session::ProgressHook Session::PartialInto(const std::shared_ptr<Task>& t) {
  return [this, t](double, std::optional<double>, const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!message.empty()) {
      t->status_message = message;
      if (t->partial.size() < 1000) t->partial.push_back(message);
    }
    t->updated = std::chrono::system_clock::now();
    // The 2026-07-28 extension has no progress on tasks: once the client holds the task, it polls.
    return !(t->modern && t->registered);
  };
}

void Session::FinishTask(const std::shared_ptr<Task>& t, Json body) {
  Json note;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (body.is_null()) {
      // tasks/cancel or the ttl said why; a session that closed did not.
      t->status_message = t->stop_reason.empty() ? "cancelled: the session closed" : t->stop_reason;
      t->status = "cancelled";
    } else {
      t->status = "completed";
      t->result = std::move(body);
      if (t->modern) {
        t->result["resultType"] = "complete";
      } else {
        t->result["_meta"] = {{kRelatedTask, {{"taskId", t->id}}}};
      }
      t->status_message = t->result.value("isError", false)
                              ? std::string("finished with an error (see ") + (t->modern ? "result)" : "tasks/result)")
                              : "finished";
    }
    t->updated = std::chrono::system_clock::now();
    if (!t->modern) note = TaskJson(*t);
  }
  task_cv_.notify_all();
  if (!note.is_null()) outbox_.Send(rpc::MakeNotification("notifications/tasks/status", std::move(note)), nullptr);
}

void Session::HandleTaskRequest(const Json& id, const std::string& method, const Json& params) {
  if (method == "tasks/list") {
    Json list = Json::array();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ExpireTasks();
      for (const auto& [task_id, t] : mcp_tasks_) {
        if (!t->modern) list.push_back(TaskJson(*t));
      }
    }
    return SendResult(id, Json{{"tasks", list}});
  }
  if (!params.is_object() || !params.contains("taskId") || !params["taskId"].is_string()) {
    return SendError(id, rpc::kInvalidParams, method + " needs params.taskId (a string)");
  }
  const std::string task_id = params["taskId"];
  std::shared_ptr<Task> t = FindTask(task_id, /*modern=*/false);
  if (!t) {
    return SendError(id, rpc::kInvalidParams,
                     "no task " + task_id + " in this session (it may have expired after its ttl; tasks/list shows them)");
  }
  if (method == "tasks/get") {
    Json task;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task = TaskJson(*t);
    }
    return SendResult(id, std::move(task));
  }
  if (method == "tasks/cancel") {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (t->terminal()) {
        return SendError(id, rpc::kInvalidParams, "task " + task_id + " is already " + t->status + "; nothing to cancel");
      }
      t->stop_reason = "cancelled by the client";
    }
    spdlog::info("task {} cancelled by the client", task_id);
    t->cancel->Cancel();
    // The work stops its process groups and then records itself as cancelled; the answer waits
    // for that briefly (on a worker: stopping a remote group can take seconds).
    auto wait = [this, id, t] {
      std::unique_lock<std::mutex> lock(mutex_);
      task_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return t->terminal(); });
      if (!t->terminal()) {
        t->status = "cancelled";
        t->status_message = "cancelled by the client; the work is still being stopped";
        t->updated = std::chrono::system_clock::now();
      }
      Json answer = TaskJson(*t);
      lock.unlock();
      task_cv_.notify_all();
      SendResult(id, std::move(answer));
    };
    if (!tasks_.Spawn(std::move(wait))) SendError(id, rpc::kInternalError, "too many requests in flight; retry shortly");
    return;
  }
  // tasks/result: blocks until the task is done, so it waits on a worker thread. While it waits,
  // its stream is where the task's questions to the client go.
  auto wait = [this, id, t] {
    std::unique_lock<std::mutex> lock(mutex_);
    t->waiter = id;
    task_cv_.notify_all();
    task_cv_.wait(lock, [&] { return t->terminal() || shutting_down_; });
    if (t->waiter == id) t->waiter = nullptr;
    if (t->status == "completed") {
      Json result = t->result;
      lock.unlock();
      return SendResult(id, std::move(result));
    }
    const std::string why = shutting_down_ ? "the session is closing" : "task " + t->id + " " + t->status + ": " + t->status_message;
    lock.unlock();
    SendError(id, rpc::kInternalError, why);
  };
  if (!tasks_.Spawn(std::move(wait))) SendError(id, rpc::kInternalError, "too many requests in flight; retry shortly");
}

core::Result<Json> Session::AskClient(const ToolContext& ctx, std::string_view method, Json params,
                                      std::chrono::milliseconds timeout) {
  if (ctx.task_id.empty()) return RequestFromClient(method, std::move(params), timeout, ctx.cancel, ctx.request_id);
  params["_meta"][kRelatedTask] = {{"taskId", ctx.task_id}};
  SetTaskStatus(ctx.task_id, "input_required", std::string("waiting for the client to answer ") + std::string(method));
  // The question travels on the stream of the client's tasks/result call, which a client makes
  // once it sees input_required; a stream transport (stdio) sends it at once.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Json related;
  if (outbox_.NeedsRequestStream()) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = mcp_tasks_.find(ctx.task_id);
    if (it != mcp_tasks_.end()) {
      auto t = it->second;
      while (t->waiter.is_null() && !shutting_down_ && !ctx.cancel.cancelled() &&
             std::chrono::steady_clock::now() < deadline) {
        task_cv_.wait_for(lock, std::chrono::milliseconds(100));
      }
      related = t->waiter;
    }
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  auto answer = RequestFromClient(method, std::move(params), std::max(left, std::chrono::milliseconds(1)), ctx.cancel,
                                  related);
  SetTaskStatus(ctx.task_id, "working", "running");
  return answer;
}

bool Session::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!in_flight_.empty()) return true;
  // A task is kept for its client until its ttl passes, finished or not.
  const auto now = std::chrono::system_clock::now();
  for (const auto& [id, t] : mcp_tasks_) {
    if (!t->terminal() || now - t->created < std::chrono::milliseconds(t->ttl_ms)) return true;
  }
  return false;
}

void Session::HandleNotification(const std::string& method, const Json& params) {
  if (method == "notifications/cancelled") {
    if (!params.is_object() || !params.contains("requestId")) return;
    const std::string key = rpc::Encode(params["requestId"]);
    std::shared_ptr<core::CancelToken> token;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = in_flight_.find(key);
      if (it != in_flight_.end()) token = it->second;
    }
    if (token) {
      spdlog::info("request {} cancelled by the client ({})", key, core::StringOr(params, "reason", "no reason given"));
      token->Cancel();
    }
    return;
  }
  if (method == "notifications/initialized") return;
  spdlog::debug("ignoring notification {}", method);
}

void Session::HandleResponse(const Json& id, const Json& result, const Json& error) {
  if (!id.is_number_integer()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find(id.get<std::int64_t>());
  if (it == pending_.end()) {
    spdlog::debug("response to unknown request {}", id.dump());
    return;
  }
  it->second->done = true;
  it->second->result = result;
  it->second->error = error;
  pending_.erase(it);
  pending_cv_.notify_all();
}

core::Result<Json> Session::RequestFromClient(std::string_view method, Json params, std::chrono::milliseconds timeout,
                                              const core::CancelToken& cancel, const Json& related) {
  auto pending = std::make_shared<Pending>();
  std::int64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return core::MakeError(core::ErrorCode::kCancelled, "the session is closing");
    id = next_request_id_++;
    pending_[id] = pending;
  }
  outbox_.Send(rpc::MakeRequest(id, method, std::move(params)), related);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!pending->done) {
    if (shutting_down_ || cancel.cancelled()) {
      pending_.erase(id);
      return core::MakeError(core::ErrorCode::kCancelled, std::string(method) + " was abandoned: the call was cancelled");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      pending_.erase(id);
      return core::MakeError(core::ErrorCode::kTimeout, std::string("the client did not answer ") + std::string(method) +
                                                            " within " + std::to_string(timeout.count()) + " ms");
    }
    // Wake periodically to notice cancellation, which is signalled on another primitive.
    pending_cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  if (!pending->error.is_null()) {
    return core::MakeError(core::ErrorCode::kRefused, std::string(method) + " failed on the client: " +
                                                          pending->error.value("message", std::string("error")));
  }
  return pending->result;
}

void Session::Log(LogLevel level, std::string_view logger, Json data, const Json& related) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!initialized_ || level < log_level_) return;
  }
  outbox_.Send(rpc::MakeNotification(
      "notifications/message", Json{{"level", LogLevelName(level)}, {"logger", logger}, {"data", std::move(data)}}),
      related);
}

void Session::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shutting_down_ = true;
    for (auto& [key, token] : in_flight_) token->Cancel();
    // Nobody can poll a task once its session is gone: stop the work rather than wait for it.
    for (auto& [task_id, t] : mcp_tasks_) {
      if (!t->terminal()) t->cancel->Cancel();
    }
    pending_cv_.notify_all();
  }
  task_cv_.notify_all();
  tasks_.WaitAll();
}

}  // namespace labgate::mcp

// ---- The modern era (2026-07-28): stateless requests, confirmations as input_required ----

namespace labgate::mcp {
namespace {

constexpr const char* kConfirmKey = "labgate-confirm";
constexpr const char* kTasksExtension = "io.modelcontextprotocol/tasks";
constexpr std::int64_t kStaticTtlMs = 3600 * 1000;  // tools and templates change only with the binary
constexpr std::chrono::milliseconds kDefaultTaskAfter{5000};

bool DeclaresTasks(const Json& capabilities) {
  return capabilities.contains("extensions") && capabilities["extensions"].is_object() &&
         capabilities["extensions"].contains(kTasksExtension) && capabilities["extensions"][kTasksExtension].is_object();
}

bool RunsAsTask(const ToolDefinition& tool) {
  const Json support = tool.descriptor.value("execution", Json::object()).value("taskSupport", Json("forbidden"));
  return support == "optional" || support == "required";
}

// A human's answer to the confirmation form: accept (only with confirm ticked), decline or
// cancel; "" when it is none of these.
std::string ConfirmAction(const Json& answer) {
  if (!answer.is_object()) return "";
  const std::string action = core::StringOr(answer, "action");
  if (action == "accept") {
    const Json content = answer.value("content", Json::object());
    return content.is_object() && content.value("confirm", false) == true ? "accept" : "decline";
  }
  return action == "decline" || action == "cancel" ? action : "";
}

Json SupportedVersions() {
  Json all = Json::array();
  for (auto v : kModernProtocolVersions) all.push_back(std::string(v));
  for (auto v : kProtocolVersions) all.push_back(std::string(v));
  return all;
}

}  // namespace

void Session::SendModernResult(const Json& id, Json result, std::optional<std::int64_t> ttl_ms, const char* cache_scope) {
  if (!result.contains("resultType")) result["resultType"] = "complete";
  result["_meta"][kMetaServerInfo] = {{"name", "labgate"}, {"version", LABGATE_VERSION}};
  if (ttl_ms) {
    result["ttlMs"] = *ttl_ms;
    result["cacheScope"] = cache_scope;
  }
  SendResult(id, std::move(result));
}

void Session::HandleModernRequest(const Json& id, const std::string& method, const Json& params) {
  const Json meta = params.is_object() && params.contains("_meta") ? params["_meta"] : Json::object();
  if (!meta.is_object() || !meta.contains(kMetaProtocolVersion) || !meta[kMetaProtocolVersion].is_string()) {
    return SendError(id, rpc::kInvalidParams,
                     std::string("a 2026-07-28 request needs params._meta[\"") + kMetaProtocolVersion +
                         "\"] (a string); a client of an earlier revision starts with initialize");
  }
  const std::string version = meta[kMetaProtocolVersion];
  if (std::find(std::begin(kModernProtocolVersions), std::end(kModernProtocolVersions), version) ==
      std::end(kModernProtocolVersions)) {
    outbox_.Send(rpc::MakeError(id, kUnsupportedProtocolVersion,
                                "unsupported protocol version " + version + "; this server speaks " +
                                    SupportedVersions().dump() + " (the earlier ones through initialize)",
                                Json{{"supported", SupportedVersions()}, {"requested", version}}),
                 id);
    return;
  }
  if (!meta.contains(kMetaClientCapabilities) || !meta[kMetaClientCapabilities].is_object()) {
    return SendError(id, rpc::kInvalidParams,
                     std::string("a 2026-07-28 request needs params._meta[\"") + kMetaClientCapabilities +
                         "\"] (an object; {} when the client offers none)");
  }
  const Json& capabilities = meta[kMetaClientCapabilities];
  audit::Actor actor;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    actor = actor_;
  }
  if (meta.contains(kMetaClientInfo) && meta[kMetaClientInfo].is_object()) {
    actor.client_name = core::StringOr(meta[kMetaClientInfo], "name");
    actor.client_version = core::StringOr(meta[kMetaClientInfo], "version");
  }

  if (method == "server/discover") {
    Json caps = {{"tools", Json::object()}, {"extensions", {{kTasksExtension, Json::object()}}}};
    if (resources_) caps["resources"] = Json::object();
    return SendModernResult(id,
                            Json{{"supportedVersions", SupportedVersions()},
                                 {"capabilities", caps},
                                 {"instructions", Instructions()}},
                            kStaticTtlMs, "public");
  }
  if (method == "tools/list") {
    Json list = Json::array();
    for (const auto& tool : tools_) {
      Json d = tool.descriptor;
      d.erase("execution");  // the 2025-11-25 task hint; the modern era has its own extension
      list.push_back(std::move(d));
    }
    return SendModernResult(id, Json{{"tools", list}}, kStaticTtlMs, "public");
  }
  if (method == "tools/call") return CallToolModern(id, params, capabilities, std::move(actor));
  if (method == "tasks/get" || method == "tasks/update" || method == "tasks/cancel") {
    return HandleModernTaskRequest(id, method, params, capabilities, actor);
  }
  if (resources_ && method == "resources/list") return SendModernResult(id, Json{{"resources", resources_->List()}}, 0);
  if (resources_ && method == "resources/templates/list") {
    return SendModernResult(id, Json{{"resourceTemplates", resources_->Templates()}}, kStaticTtlMs, "public");
  }
  if (resources_ && method == "resources/read") {
    if (!params.contains("uri") || !params["uri"].is_string()) {
      return SendError(id, rpc::kInvalidParams, "resources/read needs params.uri (a string)");
    }
    auto contents = resources_->Read(params["uri"].get<std::string>());
    // The modern era answers an unknown resource with -32602.
    if (!contents) {
      return SendError(id, contents.error().code == core::ErrorCode::kNotFound ? rpc::kInvalidParams : rpc::kInternalError,
                       contents.error().message);
    }
    // A capture never changes once kept.
    return SendModernResult(id, Json{{"contents", *contents}}, kStaticTtlMs);
  }
  SendError(id, rpc::kMethodNotFound,
            "method not found: " + method + " (2026-07-28 has no initialize, ping or logging/setLevel; this server "
                                            "answers server/discover, tools/list, tools/call, resources/* and, with "
                                            "the tasks extension, tasks/get, tasks/update and tasks/cancel)");
}

void Session::CallToolModern(const Json& id, const Json& params, const Json& capabilities, audit::Actor actor) {
  if (!params.contains("name") || !params["name"].is_string()) {
    return SendError(id, rpc::kInvalidParams, "tools/call needs params.name (a string)");
  }
  const std::string name = params["name"];
  Json arguments = params.value("arguments", Json::object());
  if (arguments.is_null()) arguments = Json::object();
  if (!arguments.is_object()) return SendError(id, rpc::kInvalidParams, "tools/call params.arguments must be an object");
  const ToolDefinition* tool = FindTool(name);
  if (!tool) return SendError(id, rpc::kInvalidParams, UnknownTool(name));

  auto input = std::make_shared<InputExchange>();
  input->can_elicit = capabilities.contains("elicitation") && capabilities["elicitation"].is_object();
  const StateBinding binding{"tools/call", name, core::Sha256Hex(arguments.dump()), actor.via + " " + actor.os_user};
  const bool has_state = params.contains("requestState") && !params["requestState"].is_null();
  const bool has_answers = params.contains("inputResponses") && params["inputResponses"].is_object() &&
                           !params["inputResponses"].empty();
  auto refuse = [&](const std::string& why) {
    Json details = {{"tool", name}, {"reason", why}};
    if (auditor_) auditor_("request-state.refused", actor, details);
    spdlog::warn("MCP: refused a tools/call retry from {}: {}", actor.client_name, why);
    SendModernResult(id, Json{{"content", Json::array({{{"type", "text"},
                                                        {"text", "refused: " + why +
                                                                     ". Nothing ran; repeat the call without "
                                                                     "requestState and inputResponses to ask a human "
                                                                     "again."}}})},
                              {"isError", true}});
  };
  if (has_answers && !has_state) {
    return refuse("inputResponses came without the requestState labgate issued with its question, so they are not "
                  "a human's answer to it");
  }
  if (has_state) {
    if (!params["requestState"].is_string()) return refuse("the requestState is not a string labgate issued");
    if (auto ok = states_->Redeem(params["requestState"].get<std::string>(), binding); !ok) {
      return refuse(ok.error().message);
    }
    const Json answer = has_answers ? params["inputResponses"].value(kConfirmKey, Json()) : Json();
    if (answer.is_object()) {
      input->answer = ConfirmAction(answer);
      input->who = "a human via MCP input_required in " + actor.client_name + " " + actor.client_version + " (OS user " +
                   actor.os_user + ")";
    }
  }

  // With the tasks extension, a call that runs long is answered with a task handle and goes on
  // (the Task is made now so that its live output is kept from the start).
  std::shared_ptr<Task> t;
  if (RunsAsTask(*tool) && DeclaresTasks(capabilities)) t = NewTask(kDefaultTaskTtlMs, /*modern=*/true);
  const auto after = !t ? std::chrono::milliseconds(0) : task_after_ ? task_after_() : kDefaultTaskAfter;
  const std::string key = rpc::Encode(id);
  auto cancel = std::make_shared<core::CancelToken>();
  Json handle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return outbox_.Unanswered(id);
    if (in_flight_.count(key)) {
      return SendError(id, rpc::kInvalidRequest, "request id " + key + " is already in use by a call in flight");
    }
    if (t) t->cancel = cancel;
    if (t && after.count() <= 0 && RegisterTask(t)) {
      handle = ModernTaskJson(*t);
    } else {
      in_flight_[key] = cancel;
    }
  }
  if (!handle.is_null()) {
    handle["resultType"] = "task";
    SendModernResult(id, std::move(handle));
  }
  Json progress_token;
  const Json meta = params["_meta"];
  if (meta.contains("progressToken") && IsProgressToken(meta["progressToken"])) progress_token = meta["progressToken"];
  auto work = [this, id, key, cancel, actor, tool, arguments, progress_token, input, binding, t] {
    ToolContext ctx{actor, *cancel, *this, id, "", nullptr, nullptr};
    ctx.input = input.get();
    ProgressHook hook;
    if (t) {
      ctx.output = LiveOutput(t);
      hook = PartialInto(t);
    }
    for (;;) {
      Json body = RunHandler(*tool, ctx, arguments, progress_token, hook);
      std::unique_lock<std::mutex> lock(mutex_);
      if (!t || !t->registered) {
        // Still an ordinary request: answer it.
        in_flight_.erase(key);
        if (t) t->answered = true;
        lock.unlock();
        task_cv_.notify_all();
        if (body.is_null()) return outbox_.Unanswered(id);
        if (!input->elicitation.is_null()) {
          // Nothing ran: the question goes back to the client, and its retry brings the answer.
          return SendModernResult(
              id,
              Json{{"resultType", "input_required"},
                   {"inputRequests", {{kConfirmKey, {{"method", "elicitation/create"}, {"params", input->elicitation}}}}},
                   {"requestState", states_->Issue(binding)}});
        }
        return SendModernResult(id, std::move(body));
      }
      if (body.is_null() || input->elicitation.is_null()) {
        lock.unlock();
        return FinishTask(t, std::move(body));
      }
      // The call became a task before labgate asked its question: nothing ran, and the question
      // waits in the task (tasks/get shows it, tasks/update answers it), then the call runs again.
      const std::string question = std::string(kConfirmKey) + "-" + std::to_string(++t->questions);
      t->input_requests = {{question, {{"method", "elicitation/create"}, {"params", input->elicitation}}}};
      t->status = "input_required";
      t->status_message = "waiting for a human to answer the confirmation (tasks/update)";
      t->answer.clear();
      t->updated = std::chrono::system_clock::now();
      input->elicitation = nullptr;
      const auto expires = t->created + std::chrono::milliseconds(t->ttl_ms);
      while (t->answer.empty() && !cancel->cancelled() && !shutting_down_ && std::chrono::system_clock::now() < expires) {
        // Cancellation is signalled on another primitive: wake to notice it.
        task_cv_.wait_for(lock, std::chrono::milliseconds(100));
      }
      t->input_requests = Json::object();
      if (t->answer.empty()) {
        if (!cancel->cancelled() && !shutting_down_) {
          t->stop_reason = "expired after its ttl of " + std::to_string(t->ttl_ms) + " ms waiting for an answer";
        }
        cancel->Cancel();
        lock.unlock();
        return FinishTask(t, nullptr);
      }
      input->answer = t->answer;
      input->who = t->answer_who;
      t->status = "working";
      t->status_message = "running with the human's answer";
      t->updated = std::chrono::system_clock::now();
    }
  };
  if (!tasks_.Spawn(std::move(work))) {
    std::unique_lock<std::mutex> lock(mutex_);
    in_flight_.erase(key);
    if (t && t->registered) {
      lock.unlock();
      return FinishTask(t, Json{{"content", Json::array({{{"type", "text"},
                                                          {"text", "too many calls in flight; nothing ran. Retry when "
                                                                   "some have finished."}}})},
                                {"isError", true}});
    }
    lock.unlock();
    return SendError(id, rpc::kInternalError, "too many calls in flight; wait for some to finish and retry");
  }
  if (!t || t->registered) return;
  // Past `after`, a call still running is answered with its task handle and goes on as the task.
  auto watch = [this, id, key, t, after] {
    std::unique_lock<std::mutex> lock(mutex_);
    if (task_cv_.wait_for(lock, after, [&] { return t->answered || shutting_down_; })) return;
    // A session holding its maximum of tasks keeps the call an ordinary request.
    if (!RegisterTask(t)) return;
    in_flight_.erase(key);  // from now on tasks/cancel stops it, not notifications/cancelled
    Json task = ModernTaskJson(*t);
    lock.unlock();
    spdlog::info("MCP: tools/call {} still running after {} ms; answered with task {}", key, after.count(), t->id);
    task["resultType"] = "task";
    SendModernResult(id, std::move(task));
  };
  // Without a thread to watch the clock, the call stays an ordinary request.
  (void)tasks_.Spawn(std::move(watch));
}

Json Session::ModernTaskJson(const Task& t) const {
  Json j = TaskJson(t);
  j["ttlMs"] = j["ttl"];
  j["pollIntervalMs"] = j["pollInterval"];
  j.erase("ttl");
  j.erase("pollInterval");
  if (t.status == "completed") j["result"] = t.result;
  if (t.status == "failed") j["error"] = {{"code", rpc::kInternalError}, {"message", t.status_message}};
  if (t.status == "input_required") j["inputRequests"] = t.input_requests;
  return j;
}

void Session::HandleModernTaskRequest(const Json& id, const std::string& method, const Json& params,
                                      const Json& capabilities, const audit::Actor& actor) {
  if (!DeclaresTasks(capabilities)) {
    outbox_.Send(rpc::MakeError(id, kMissingRequiredClientCapability,
                                method + " needs the " + kTasksExtension +
                                    " extension in the request's client capabilities (_meta[\"" +
                                    kMetaClientCapabilities + "\"].extensions)",
                                Json{{"requiredCapabilities", {{"extensions", {{kTasksExtension, Json::object()}}}}}}),
                 id);
    return;
  }
  if (!params.contains("taskId") || !params["taskId"].is_string()) {
    return SendError(id, rpc::kInvalidParams, method + " needs params.taskId (a string)");
  }
  const std::string task_id = params["taskId"];
  std::shared_ptr<Task> t = FindTask(task_id, /*modern=*/true);
  if (!t) {
    return SendError(id, rpc::kInvalidParams,
                     "Failed to retrieve task: no task " + task_id + " here (it expired after its ttl, or was never "
                                                                     "created by this server for this client)");
  }
  if (method == "tasks/get") {
    Json task;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task = ModernTaskJson(*t);
    }
    return SendModernResult(id, std::move(task));
  }
  if (method == "tasks/cancel") {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!t->terminal() && !t->cancel->cancelled()) t->stop_reason = "cancelled by the client";
    }
    if (!t->cancel->cancelled()) spdlog::info("task {} cancelled by the client", task_id);
    // The work stops its process groups and then records itself as cancelled; tasks/get shows when.
    t->cancel->Cancel();
    task_cv_.notify_all();
    return SendModernResult(id, Json::object());
  }
  // tasks/update: answers to the question the task is waiting on. Keys not outstanding are
  // ignored, as the extension says; an answer counts once.
  if (!params.contains("inputResponses") || !params["inputResponses"].is_object()) {
    return SendError(id, rpc::kInvalidParams,
                     "tasks/update needs params.inputResponses (an object keyed by the task's inputRequests)");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [question, answer] : params["inputResponses"].items()) {
      if (!t->input_requests.contains(question) || !t->answer.empty()) continue;
      t->answer = ConfirmAction(answer);
      t->answer_who = "a human via MCP tasks/update in " + actor.client_name + " " + actor.client_version +
                      " (OS user " + actor.os_user + ")";
    }
  }
  task_cv_.notify_all();
  SendModernResult(id, Json::object());
}

}  // namespace labgate::mcp
