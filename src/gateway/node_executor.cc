#include "gateway/node_executor.h"

#include "core/base64.h"
#include "core/hashing.h"
#include "core/json_parse.h"
#include "gateway/ssh_executor.h"
#include "nodes/agent_protocol.h"

namespace labgate::gateway {

using core::ErrorCode;
using core::MakeError;

namespace {
// How long past the command's own deadline the gateway waits for the node to report it: the
// node stops the process group itself (TERM, 1 s grace, KILL) and answers with timedOut.
constexpr std::chrono::milliseconds kNodeGrace{5000};
}  // namespace

TargetState NodeExecutor::State(const inventory::Target& target) const {
  TargetState state;
  if (store_ == nullptr) return state;  // unknown: no daemon in this process
  auto record = store_->Find(target.id);
  state.online = server_ != nullptr && server_->Link(target.id).has_value();
  if (!record) {
    state.granted = std::vector<std::string>{};
    return state;
  }
  if (record->last_seen) state.last_seen = nodes::FormatTime(*record->last_seen);
  state.key_since = nodes::FormatTime(record->key_since());
  state.fingerprint = record->key.fingerprint;
  state.granted = record->revoked() ? std::vector<std::string>{} : record->capabilities;
  if (record->revoked()) state.revoked_at = nodes::FormatTime(*record->revoked_at);
  return state;
}

core::Result<nodes::Json> NodeExecutor::Call(const inventory::Target& target, const std::string& method,
                                             nodes::Json params, std::chrono::milliseconds timeout,
                                             const core::CancelToken& cancel, const std::string& what,
                                             nodes::RpcPeer::NotificationHandler on_notification) {
  if (server_ == nullptr || store_ == nullptr) {
    return MakeError(ErrorCode::kUnavailable,
                     target.id + " is a paired node, and nodes connect to the gateway daemon, which is not running "
                     "for this config; start it with `labgate gateway" + config_hint_ + "` (see README: Pair a device)");
  }
  auto record = store_->Find(target.id);
  if (!record) {
    return MakeError(ErrorCode::kUnavailable, "node " + target.id + " is not paired yet; run `labgate pair new --node " +
                                                  target.id + "` and `labgate node pair CODE` on the device");
  }
  if (record->revoked()) {
    return MakeError(ErrorCode::kRefused, "node " + target.id + " was revoked at " +
                                              nodes::FormatTime(*record->revoked_at) + "; pair it again to use it");
  }
  if (!server_->Link(target.id)) {
    return MakeError(ErrorCode::kUnavailable,
                     "node " + target.id + " is offline (last seen " +
                         (record->last_seen ? nodes::FormatTime(*record->last_seen) : std::string("never")) +
                         "); check that `labgate node run` is running on the device");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout + kNodeGrace;
  auto answer = server_->Call(target.id, method, std::move(params), deadline, cancel, std::move(on_notification));
  if (answer) return answer;
  const auto& e = answer.error();
  if (e.code == ErrorCode::kIo) {
    return MakeError(ErrorCode::kIo, e.message + " while " + what + " was running; it may have run in part");
  }
  if (e.code == ErrorCode::kCancelled) return e;
  if (e.code == ErrorCode::kTimeout) {
    return MakeError(ErrorCode::kTimeout, "node " + target.id + " did not report the end of " + what +
                                              " within its deadline; the gateway asked it to stop");
  }
  return MakeError(e.code, "node " + target.id + ": " + e.message);
}

core::Result<core::ProcessOutcome> NodeExecutor::Run(const inventory::Target& target,
                                                     const capabilities::RunRequest& request,
                                                     const core::CancelToken& cancel) {
  auto params = nodes::EncodeRunRequest(request);
  if (request.sudo) {
    // The node hands it to sudo on stdin; it travels inside the agent channel and nowhere else.
    auto password = SudoPasswordOf(target);
    if (!password) return password.error();
    params["sudoPassword"] = *password;
  }
  // The node streams output as it arrives (system.output); a listener (a task's live view) sees it.
  nodes::RpcPeer::NotificationHandler relay;
  if (request.listener) {
    relay = [listener = request.listener](const std::string& method, const nodes::Json& note) {
      if (method != "system.output" || !note.is_object()) return;
      auto data = core::Base64Decode(core::StringOr(note, "data"));
      if (!data) return;
      listener->OnOutput(core::StringOr(note, "stream") == "stderr" ? core::StreamId::kStderr : core::StreamId::kStdout,
                         *data);
    };
  }
  auto answer = Call(target, "system.run", std::move(params), request.timeout, cancel, "the command",
                     std::move(relay));
  if (!answer) {
    if (answer.error().code != ErrorCode::kCancelled) return answer.error();
    core::ProcessOutcome o;
    o.cancelled = true;
    return o;
  }
  return nodes::DecodeOutcome(*answer);
}

core::Result<capabilities::CaptureResult> NodeExecutor::Capture(const inventory::Target& target,
                                                                const capabilities::CaptureRequest& request,
                                                                const core::CancelToken& cancel) {
  auto answer = Call(target, request.Method(), capabilities::EncodeCaptureRequest(request),
                     std::chrono::milliseconds(request.timeout_ms), cancel, request.Method());
  if (!answer) {
    if (answer.error().code == ErrorCode::kCancelled) {
      return MakeError(ErrorCode::kCancelled, request.Method() + " on " + target.id + " was cancelled; the node stopped it");
    }
    return answer.error();
  }
  return capabilities::DecodeCaptureResult(*answer);
}

/// File access on one node for one call: every method is an agent call bounded by what is left
/// of the call's deadline.
class NodeFiles final : public capabilities::FileAccessor {
 public:
  NodeFiles(NodeExecutor& executor, inventory::Target target, std::chrono::steady_clock::time_point deadline,
            const core::CancelToken& cancel)
      : executor_(executor), target_(std::move(target)), deadline_(deadline), cancel_(cancel) {}

  core::Result<std::string> Home() override {
    auto answer = Ask("file.home", nodes::Json::object());
    if (!answer) return answer.error();
    return core::StringOr(*answer, "home");
  }
  core::Result<std::string> RealPath(const std::string& path) override {
    auto answer = Ask("file.realpath", {{"path", path}});
    if (!answer) return answer.error();
    return core::StringOr(*answer, "path");
  }
  core::Result<capabilities::FileInfo> Stat(const std::string& path) override {
    auto answer = Ask("file.stat", {{"path", path}});
    if (!answer) return answer.error();
    return capabilities::DecodeFileInfo(*answer);
  }
  core::Result<std::vector<capabilities::FileInfo>> List(const std::string& path, std::size_t max_entries,
                                                         bool* truncated) override {
    auto answer = Ask("file.list", {{"path", path}, {"maxEntries", max_entries}});
    if (!answer) return answer.error();
    std::vector<capabilities::FileInfo> out;
    for (const auto& e : answer->value("entries", nodes::Json::array())) {
      auto info = capabilities::DecodeFileInfo(e);
      if (!info) return info.error();
      out.push_back(std::move(*info));
    }
    if (out.size() > max_entries) return MakeError(ErrorCode::kInvalidArgument, "the node listed more than asked");
    if (truncated) *truncated = answer->value("truncated", false);
    return out;
  }
  core::Result<capabilities::FileData> Read(const std::string& path, std::uint64_t offset, std::uint64_t length,
                                            std::uint64_t max_bytes) override {
    capabilities::FileData data;
    data.offset = offset;
    std::optional<std::pair<std::uint64_t, std::int64_t>> seen;  // size and mtime of the first chunk
    std::uint64_t at = offset;
    for (;;) {
      std::uint64_t want = nodes::kFileChunkBytes;
      if (length) want = std::min<std::uint64_t>(want, offset + length - at);
      if (want == 0) break;
      auto answer = Ask("file.read", {{"path", path}, {"offset", at}, {"length", want}});
      if (!answer) return answer.error();
      const auto size = answer->value("fileSize", std::uint64_t{0});
      const auto mtime = answer->value("mtime", std::int64_t{0});
      if (!seen) {
        seen = {size, mtime};
        const std::uint64_t available = offset >= size ? 0 : size - offset;
        const std::uint64_t total = length == 0 ? available : std::min(length, available);
        if (total > max_bytes) {
          return MakeError(ErrorCode::kInvalidArgument,
                           path + " holds " + std::to_string(total) + " bytes from offset " + std::to_string(offset) +
                               ", more than the " + std::to_string(max_bytes) +
                               " allowed; read a range (offset/length) or raise [policies.file] max_read_bytes");
        }
      } else if (seen->first != size || seen->second != mtime) {
        return MakeError(ErrorCode::kIo, path + " on " + target_.id + " changed while it was being read; read it again");
      }
      auto bytes = core::Base64Decode(core::StringOr(*answer, "data"));
      if (!bytes) return MakeError(ErrorCode::kIo, "node " + target_.id + " sent damaged file content");
      if (bytes->size() > want) return MakeError(ErrorCode::kIo, "node " + target_.id + " sent more than asked");
      data.file_size = size;
      data.bytes += *bytes;
      at += bytes->size();
      if (bytes->size() < want || at >= size) break;
    }
    if (offset == 0 && data.bytes.size() == data.file_size) data.sha256 = core::Sha256Hex(data.bytes);
    return data;
  }
  core::Result<capabilities::WriteOutcome> Write(const std::string& path, std::string_view content,
                                                 const capabilities::WriteOptions& options) override {
    nodes::Json open = {{"path", path}, {"options", capabilities::EncodeWriteOptions(options)}};
    if (options.as_root) {
      // The node stages the content and copies it into place under sudo with this password.
      auto password = SudoPasswordOf(target_);
      if (!password) return password.error();
      open["asRoot"] = true;
      open["sudoPassword"] = *password;
    }
    auto opened = Ask("file.write.open", std::move(open));
    if (!opened) return opened.error();
    const std::string handle = core::StringOr(*opened, "handle");
    for (std::size_t at = 0; at < content.size(); at += nodes::kFileChunkBytes) {
      auto chunk = content.substr(at, nodes::kFileChunkBytes);
      auto sent = Ask("file.write.chunk", {{"handle", handle}, {"data", core::Base64Encode(chunk)}});
      if (!sent) {
        (void)Ask("file.write.abort", {{"handle", handle}});
        return sent.error();
      }
    }
    // The node checks the digest before the rename, so damaged bytes never replace the file.
    const std::string digest = options.content_sha256.empty() ? core::Sha256Hex(content) : options.content_sha256;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
    auto committed = Ask("file.write.commit", {{"handle", handle}, {"sha256", digest}, {"timeoutMs", std::max<std::int64_t>(1, left.count())}});
    if (!committed) return committed.error();
    auto outcome = capabilities::DecodeWriteOutcome(*committed);
    if (outcome && outcome->sha256 != digest) {
      return MakeError(ErrorCode::kIo, "node " + target_.id + " wrote other bytes than were sent (sha256 " +
                                           outcome->sha256 + "); check " + path);
    }
    return outcome;
  }

 private:
  core::Result<nodes::Json> Ask(const std::string& method, nodes::Json params) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
    if (left.count() <= 0) return MakeError(ErrorCode::kTimeout, method + " on " + target_.id + ": the deadline passed");
    return executor_.Call(target_, method, std::move(params), left, cancel_, method);
  }

  NodeExecutor& executor_;
  inventory::Target target_;
  std::chrono::steady_clock::time_point deadline_;
  const core::CancelToken& cancel_;
};

core::Result<std::unique_ptr<capabilities::FileAccessor>> NodeExecutor::Files(const inventory::Target& target,
                                                                              std::chrono::steady_clock::time_point deadline,
                                                                              const core::CancelToken& cancel) {
  if (server_ == nullptr || store_ == nullptr) {
    return MakeError(ErrorCode::kUnavailable,
                     target.id + " is a paired node, and nodes connect to the gateway daemon, which is not running "
                     "for this config; start it with `labgate gateway" + config_hint_ + "` (see README: Pair a device)");
  }
  return std::unique_ptr<capabilities::FileAccessor>(new NodeFiles(*this, target, deadline, cancel));
}

}  // namespace labgate::gateway
