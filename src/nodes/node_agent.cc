#include "nodes/node_agent.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <random>
#include <spdlog/spdlog.h>
#include <sstream>
#include <thread>
#include <utility>

#include "capabilities/capture.h"
#include "capabilities/file_ops.h"
#include "capabilities/run_as_root.h"
#include "capabilities/system_run.h"
#include "core/base64.h"
#include "core/files.h"
#include "core/hashing.h"
#include "core/json_parse.h"
#include "core/json_rpc.h"
#include "core/os_user.h"
#include "core/text.h"
#include "core/thread_cache.h"
#include "nodes/agent_client.h"
#include "nodes/node_key.h"
#include "nodes/pairing_code.h"

namespace labgate::nodes {

using core::ErrorCode;
using core::MakeError;
using std::chrono::milliseconds;

namespace {

std::string KeyPath(const std::string& dir) { return dir + "/node_key"; }
std::string NextKeyPath(const std::string& dir) { return dir + "/node_key.next"; }

core::Status EnsureDir(const std::string& dir) {
  std::string partial;
  std::stringstream parts(dir);
  std::string part;
  while (std::getline(parts, part, '/')) {
    partial += part + "/";
    if (part.empty()) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return MakeError(ErrorCode::kIo, "cannot create " + partial + ": " + std::strerror(errno));
    }
  }
  return core::Status();
}

bool Contains(const std::vector<std::string>& set, std::string_view item) {
  return std::find(set.begin(), set.end(), item) != set.end();
}

/// Streams a running command's output to the gateway as `system.output` notifications, up to
/// the output cap per stream (the final answer carries the authoritative head + tail).
class OutputRelay final : public core::OutputListener {
 public:
  /// `on_link_thread`: the output is read on the link's own thread, which sends it at once;
  /// otherwise it is posted there.
  OutputRelay(std::shared_ptr<AgentClient> client, std::int64_t request_id, std::size_t cap, bool on_link_thread = false)
      : client_(std::move(client)), request_id_(request_id), cap_(cap), on_link_thread_(on_link_thread) {}
  void OnOutput(core::StreamId stream, std::string_view bytes) override {
    std::size_t& sent = stream == core::StreamId::kStdout ? out_sent_ : err_sent_;
    if (sent >= cap_) return;
    std::string chunk(bytes.substr(0, cap_ - sent));
    sent += chunk.size();
    Json params = {{"requestId", request_id_},
                   {"stream", stream == core::StreamId::kStdout ? "stdout" : "stderr"},
                   {"data", core::Base64Encode(chunk)}};
    if (on_link_thread_) return client_->rpc().Notify("system.output", std::move(params));
    auto client = client_;
    client->Post([client, params = std::move(params)]() mutable { client->rpc().Notify("system.output", std::move(params)); });
  }

 private:
  std::shared_ptr<AgentClient> client_;
  std::int64_t request_id_;
  std::size_t cap_;
  bool on_link_thread_;
  std::size_t out_sent_ = 0;
  std::size_t err_sent_ = 0;
};

/// What one connection serves; lives as long as the link.
class LinkService {
 public:
  LinkService(std::shared_ptr<AgentClient> client, NodeConfig& config, const std::string& state_dir,
              core::ProcessRunner& runner, const capabilities::DeviceConfig& device)
      : client_(std::move(client)), config_(config), state_dir_(state_dir), runner_(runner), device_(device) {
    client_->SetAfterPass([this] { return StepLoopRuns(); });
  }

  ~LinkService() {
    // Nobody is left to hear the answers: stop what still runs and wait for it.
    core::CancelToken never;
    // All stopped at once, then waited for: one by one, each that ignores TERM would hold the
    // next for a whole grace.
    for (auto& [rid, run] : loop_runs_) {
      for (int fd : run.watched) client_->Unwatch(fd);
      run.process->Cancel();
      (void)run.process->Advance();  // sends the TERM now; Wait below sends the KILL after the grace
    }
    for (auto& [rid, run] : loop_runs_) run.process->Wait(never, nullptr);
    loop_runs_.clear();
    client_->SetAfterPass(nullptr);
    std::unique_lock<std::mutex> lock(mutex_);
    for (auto& [id, token] : running_) token->Cancel();
    idle_.wait(lock, [&] { return running_.empty(); });
  }

  void OnRequest(const Json& id, const std::string& method, const Json& params) {
    RpcPeer& rpc = client_->rpc();
    if (method == "ping") return rpc.Respond(id, Json::object());
    std::string_view capability = CapabilityOfMethod(method);
    if (!capability.empty() && !Contains(config_.capabilities, capability)) {
      spdlog::warn("refused {}: capability {} was not approved for this node", method, capability);
      return rpc.RespondError(id, kErrNotApproved,
                              "node " + config_.node_id + " was not approved for " + std::string(capability) +
                                  " (approved: " + core::Join(config_.capabilities, ",", "nothing") + "); pair it again to change that");
    }
    if (method == "system.run") return StartRun(id, params);
    if (capability == "screen" || capability == "camera" || capability == "location") {
      return StartCapture(id, method, params);
    }
    if (capability == "file") return StartFile(id, method, params);
    if (method == "key.rotate") return RotateKey(id);
    if (method == "key.commit") return CommitKey(id, params);
    rpc.RespondError(id, core::jsonrpc::kMethodNotFound, "this node does not serve " + method);
  }

  void OnNotification(const std::string& method, const Json& params) {
    if (method == "$/cancel" && params.contains("id") && params["id"].is_number_integer()) {
      // On the link's thread, like the loop's own runs: the next pass acts on it.
      if (auto run = loop_runs_.find(params["id"].get<std::int64_t>()); run != loop_runs_.end()) {
        return run->second.process->Cancel();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = running_.find(params["id"].get<std::int64_t>());
      if (it != running_.end()) it->second->Cancel();
    } else if (method == "node.closing") {
      spdlog::warn("the gateway is closing this link: {}", core::StringOr(params, "reason", "no reason given"));
    }
  }

 private:
  void StartRun(const Json& id, const Json& params) {
    auto request = DecodeRunRequest(params);
    if (!request) return client_->rpc().RespondError(id, core::jsonrpc::kInvalidParams, request.error().message);
    // With sudo, the gateway sends this account's sudo password beside the request (it holds the
    // reference in hosts.toml); it goes to sudo's stdin and is never logged or kept.
    std::string password = request->sudo ? core::StringOr(params, "sudoPassword") : std::string();
    if (request->sudo && password.empty()) {
      return client_->rpc().RespondError(id, core::jsonrpc::kInvalidParams, "sudo needs the account's password and none came");
    }
    if (!request->sudo && runner_.CanStart()) return StartOnLink(id, *request);
    Spawn(id, [this, request = std::move(*request), password = std::move(password)](
                  std::int64_t rid, const core::CancelToken& token) -> core::Result<Json> {
      OutputRelay relay(client_, rid, request.output_cap);
      core::Result<core::ProcessOutcome> outcome = core::MakeError(ErrorCode::kUnavailable, "not run");
      if (request.sudo) {
        auto root = AsRoot(password);
        if (!root) return root.error();
        outcome = capabilities::RunAsRootOnThisMachine(runner_, request, *root, token, &relay);
      } else {
        outcome = capabilities::RunOnThisMachine(runner_, request, token, &relay);
      }
      if (!outcome) return outcome.error();
      return EncodeOutcome(*outcome);
    });
  }

  // A plain run (no sudo to feed) costs no thread: the process starts here, on the link's own
  // thread, and its pipes and pidfd join the link's poll; StepLoopRuns reads and answers.
  void StartOnLink(const Json& id, const capabilities::RunRequest& request) {
    if (!id.is_number_integer()) return client_->rpc().RespondError(id, core::jsonrpc::kInvalidParams, "integer ids only");
    const std::int64_t rid = id.get<std::int64_t>();
    if (IdInUse(rid)) return client_->rpc().RespondError(id, core::jsonrpc::kInvalidParams, "request id in use");
    auto spec = capabilities::SpecOnThisMachine(request);
    if (!spec) return client_->rpc().RespondError(id, kErrFailed, spec.error().message);
    auto process = runner_.Start(*spec);
    if (!process) return client_->rpc().RespondError(id, kErrFailed, process.error().message);
    LoopRun& run = loop_runs_[rid];
    run.process = std::move(*process);
    run.relay = std::make_unique<OutputRelay>(client_, rid, request.output_cap, true);
  }

  // After every pass of the link's loop: reads what the runs' descriptors have ready, acts on
  // deadlines and cancels, answers the runs that ended, and keeps the loop's watch list in step.
  // Returns when the next deadline, grace or drain falls due.
  std::chrono::steady_clock::time_point StepLoopRuns() {
    auto wake = std::chrono::steady_clock::time_point::max();
    for (auto it = loop_runs_.begin(); it != loop_runs_.end();) {
      LoopRun& run = it->second;
      for (int fd : std::exchange(run.ready, {})) run.process->OnReadable(fd, run.relay.get());
      const bool done = run.process->Advance();
      const core::FdList now_watched = done ? core::FdList{} : run.process->Watched();
      for (int fd : run.watched) {
        if (!now_watched.contains(fd)) client_->Unwatch(fd);
      }
      for (int fd : now_watched) {
        // Once per pass, however often a nested poll (libssh's, inside a send) reports it.
        if (!run.watched.contains(fd)) {
          client_->Watch(fd, [&run, fd] {
            if (!run.ready.contains(fd)) run.ready.push_back(fd);
          });
        }
      }
      run.watched = now_watched;
      if (!done) {
        wake = std::min(wake, run.process->WakeAt());
        ++it;
        continue;
      }
      client_->rpc().Respond(it->first, EncodeOutcome(run.process->Finish()));
      it = loop_runs_.erase(it);
    }
    return wake;
  }

  // screen.*, camera.*, location.get: this device's own backends, from its device.toml.
  void StartCapture(const Json& id, const std::string& method, const Json& params) {
    auto request = capabilities::DecodeCaptureRequest(params);
    if (!request) return client_->rpc().RespondError(id, core::jsonrpc::kInvalidParams, request.error().message);
    if (request->Method() != method) {
      return client_->rpc().RespondError(id, core::jsonrpc::kInvalidParams, method + " carried a " + request->Method() + " request");
    }
    Spawn(id, [this, request = std::move(*request)](std::int64_t, const core::CancelToken& token) -> core::Result<Json> {
      capabilities::ThisMachine machine(runner_, config_.node_id);
      auto result = capabilities::Perform(machine, device_, request, token);
      if (!result) return result.error();
      return capabilities::EncodeCaptureResult(*result);
    });
  }

  // file.*: this device's files through the same local code as the gateway's `local`. The
  // gateway decided the path; the node still refuses its own state directory (its key lives
  // there), whatever the gateway says.
  void StartFile(const Json& id, const std::string& method, const Json& params) {
    Spawn(id, [this, method, params](std::int64_t, const core::CancelToken& token) -> core::Result<Json> {
      return FileMethod(method, params, token);
    });
  }

  core::Result<Json> FileMethod(const std::string& method, const Json& params, const core::CancelToken& token) {
    auto files = capabilities::LocalFiles();
    if (method == "file.home") {
      auto home = files->Home();
      if (!home) return home.error();
      return Json{{"home", *home}};
    }
    if (method == "file.write.chunk" || method == "file.write.commit" || method == "file.write.abort") {
      const std::string handle = core::StringOr(params, "handle");
      std::unique_ptr<capabilities::LocalFileWriter> writer;
      std::optional<RootPut> root;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = writers_.find(handle);
        if (it == writers_.end()) return MakeError(ErrorCode::kNotFound, "no open write " + core::Clip(handle, 40));
        writer = std::move(it->second);
        writers_.erase(it);
        if (auto r = root_puts_.find(handle); r != root_puts_.end() && method != "file.write.chunk") {
          root = std::move(r->second);
          root_puts_.erase(r);
        }
      }
      if (method == "file.write.abort") return Json::object();  // the writer removes its temporary file
      if (method == "file.write.commit") {
        const std::string digest = core::StringOr(params, "sha256");
        auto outcome = writer->Commit(digest);
        if (!outcome || !root) {
          if (!outcome) return outcome.error();
          return capabilities::EncodeWriteOutcome(*outcome);
        }
        std::int64_t timeout_ms = 600000;
        if (params.contains("timeoutMs")) {
          auto given = core::IntegerIn(params["timeoutMs"], 1, 24LL * 3600 * 1000);
          if (!given) return MakeError(ErrorCode::kInvalidArgument, "timeoutMs must be an integer from 1 to 86400000");
          timeout_ms = *given;
        }
        return CommitAsRoot(*root, outcome->sha256, outcome->size, std::chrono::milliseconds(timeout_ms), token);
      }
      // A chunk that fails ends the write: the writer goes, and with it what a root write held.
      auto drop_root = [&] {
        std::lock_guard<std::mutex> lock(mutex_);
        root_puts_.erase(handle);
      };
      auto data = core::Base64Decode(core::StringOr(params, "data"));
      if (!data) {
        drop_root();
        return data.error();
      }
      if (data->size() > kFileChunkBytes) {
        drop_root();
        return MakeError(ErrorCode::kInvalidArgument, "a chunk is at most 4 MiB");
      }
      if (auto ok = writer->Append(*data); !ok) {
        drop_root();
        return ok.error();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      writers_[handle] = std::move(writer);
      return Json{{"size", writers_[handle]->size()}};
    }
    const std::string path = core::StringOr(params, "path");
    if (auto own = OwnStateDir(path); !own) return own.error();
    if (method == "file.realpath") {
      auto real = files->RealPath(path);
      if (!real) return real.error();
      if (auto own = OwnStateDir(*real); !own) return own.error();
      return Json{{"path", *real}};
    }
    if (method == "file.stat") {
      auto info = files->Stat(path);
      if (!info) return info.error();
      return capabilities::EncodeFileInfo(*info);
    }
    if (method == "file.list") {
      bool truncated = false;
      auto entries = files->List(path, params.value("maxEntries", std::size_t{1000}), &truncated);
      if (!entries) return entries.error();
      Json list = Json::array();
      for (const auto& e : *entries) list.push_back(capabilities::EncodeFileInfo(e));
      return Json{{"entries", list}, {"truncated", truncated}};
    }
    if (method == "file.read") {
      const std::uint64_t length = std::min<std::uint64_t>(params.value("length", std::uint64_t{0}), kFileChunkBytes);
      if (length == 0) return MakeError(ErrorCode::kInvalidArgument, "file.read needs a length of 1 to 4 MiB");
      auto info = files->Stat(path);
      if (!info) return info.error();
      auto data = files->Read(path, params.value("offset", std::uint64_t{0}), length, length);
      if (!data) return data.error();
      return Json{{"data", core::Base64Encode(data->bytes)}, {"offset", data->offset}, {"fileSize", data->file_size},
                  {"mtime", info->mtime}};
    }
    if (method == "file.write.open") {
      auto options = capabilities::DecodeWriteOptions(params.value("options", Json::object()));
      if (!options) return options.error();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (writers_.size() >= kMaxOpenFileWrites) {
          return MakeError(ErrorCode::kUnavailable, "this node already has " + std::to_string(kMaxOpenFileWrites) +
                                                        " writes open; finish or abort one first");
        }
      }
      const std::string handle = core::HexEncode(core::RandomBytes(16));
      std::optional<RootPut> root;
      std::string write_to = path;
      capabilities::WriteOptions write_options = *options;
      if (params.value("asRoot", false)) {
        // The content is staged in this node's own state directory (only this account can
        // write there), then copied into place as root by the constant script under sudo.
        root = RootPut{path, *options, core::StringOr(params, "sudoPassword"), state_dir_ + "/staging/" + handle};
        if (root->password.empty()) return MakeError(ErrorCode::kInvalidArgument, "a write as root needs the account's sudo password and none came");
        if (::mkdir((state_dir_ + "/staging").c_str(), 0700) != 0 && errno != EEXIST) {
          return MakeError(ErrorCode::kIo, "cannot make " + state_dir_ + "/staging: " + std::strerror(errno));
        }
        write_to = root->staged;
        write_options = capabilities::WriteOptions{};
        write_options.create_only = true;
        write_options.mode = 0600;
      }
      auto writer = capabilities::LocalFileWriter::Open(write_to, write_options);
      if (!writer) return writer.error();
      std::lock_guard<std::mutex> lock(mutex_);
      writers_[handle] = std::move(*writer);
      if (root) root_puts_[handle] = std::move(*root);
      return Json{{"handle", handle}};
    }
    return MakeError(ErrorCode::kNotFound, "this node does not serve " + method);
  }

  // A path inside this node's state directory (its key, node.json): never through file.
  // A write as root whose content is staged at `staged` until it is committed.
  struct RootPut {
    std::string dest;
    capabilities::WriteOptions options;
    std::string password;
    std::string staged;
  };

  // How this node runs as root: the sudo found in a root-owned place, never through PATH.
  static core::Result<capabilities::AsRoot> AsRoot(const std::string& password) {
    auto sudo = capabilities::TrustedSudo();
    if (!sudo) return sudo.error();
    capabilities::AsRoot root;
    root.password = password;
    root.sudo = *sudo;
    return root;
  }

  // Copies the staged (and digest-checked) content into place as root. The node opens the
  // staged file itself (no link followed) and feeds it to the script's stdin, so root never
  // reads a path this account controls; the script checks the digest of its own copy, so
  // content changed after the node's check is never installed.
  core::Result<Json> CommitAsRoot(const RootPut& put, const std::string& sha256, std::uint64_t size,
                                  std::chrono::milliseconds timeout, const core::CancelToken& token) {
    struct Unlink {
      const std::string& path;
      ~Unlink() { ::unlink(path.c_str()); }
    } unlink_staged{put.staged};
    const int staged = ::open(put.staged.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (staged < 0) return MakeError(ErrorCode::kIo, "cannot open the staged content: " + std::string(std::strerror(errno)));
    struct Close {
      int fd;
      ~Close() { ::close(fd); }
    } close_staged{staged};
    auto root = AsRoot(put.password);
    if (!root) return root.error();
    const std::string marker = "labgate-content-" + core::HexEncode(core::RandomBytes(8));
    root->feed = [&](int fd) {
      const std::string line = marker + "\n";
      if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return;
      char buf[65536];
      std::uint64_t left = size;
      while (left > 0) {
        const ssize_t got = ::read(staged, buf, static_cast<std::size_t>(std::min<std::uint64_t>(left, sizeof buf)));
        if (got <= 0) return;
        for (ssize_t at = 0; at < got;) {
          const ssize_t n = ::write(fd, buf + at, static_cast<std::size_t>(got - at));
          if (n <= 0) return;
          at += n;
        }
        left -= static_cast<std::uint64_t>(got);
      }
    };
    capabilities::RunRequest request;
    request.command.argv = capabilities::RootPutArgv(put.dest, put.options, marker, sha256);
    request.timeout = timeout;
    auto outcome = capabilities::RunAsRootOnThisMachine(runner_, request, *root, token, nullptr);
    if (!outcome) return outcome.error();
    auto written = capabilities::RootPutResult(*outcome, put.dest, config_.node_id, sha256, size);
    if (!written) return written.error();
    return capabilities::EncodeWriteOutcome(*written);
  }

  core::Status OwnStateDir(const std::string& path) const {
    char buf[PATH_MAX];
    const std::string own = ::realpath(state_dir_.c_str(), buf) ? std::string(buf) : state_dir_;
    if (path == own || (path.size() > own.size() && path.compare(0, own.size(), own) == 0 && path[own.size()] == '/')) {
      return MakeError(ErrorCode::kRefused, path + " is in this node's own state directory (" + own +
                                                "), which file never touches");
    }
    return core::Ok();
  }

  // Runs `work` on a thread of its own (from the process's thread cache), cancellable by
  // $/cancel, and answers with what it returns.
  void Spawn(const Json& id, std::function<core::Result<Json>(std::int64_t, const core::CancelToken&)> work) {
    if (!id.is_number_integer()) return client_->rpc().RespondError(id, core::jsonrpc::kInvalidParams, "integer ids only");
    const std::int64_t rid = id.get<std::int64_t>();
    if (IdInUse(rid)) return client_->rpc().RespondError(id, core::jsonrpc::kInvalidParams, "request id in use");
    auto token = std::make_shared<core::CancelToken>();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_[rid] = token;
    }
    auto done = [this, rid] {
      std::lock_guard<std::mutex> lock(mutex_);
      running_.erase(rid);
      idle_.notify_all();
    };
    auto task = [this, rid, token, done, work = std::move(work)] {
      core::Result<Json> answer = core::MakeError(ErrorCode::kInvalidArgument, "not run");
      try {
        answer = work(rid, *token);
      } catch (const std::exception& e) {
        // Params of the wrong type (nlohmann's value() throws): an answer, not the agent's end.
        answer = core::MakeError(ErrorCode::kInvalidArgument, std::string("malformed request: ") + e.what());
      }
      auto client = client_;
      if (answer) {
        client->Post([client, rid, body = std::move(*answer)]() mutable { client->rpc().Respond(rid, std::move(body)); });
      } else {
        // A refusal stays one on the gateway's side (a symlink, the node's own state directory).
        const int code = answer.error().code == ErrorCode::kRefused ? kErrRefused : kErrFailed;
        client->Post([client, rid, code, msg = answer.error().message] { client->rpc().RespondError(rid, code, msg); });
      }
      done();
    };
    try {
      core::SharedThreadCache().Run(std::move(task));
    } catch (const std::exception& e) {
      // No thread to be had: say so, and leave nothing that the link's end would wait for.
      done();
      client_->rpc().RespondError(id, kErrFailed, std::string("the node cannot start a thread for this request: ") + e.what());
    }
  }

  // An id the gateway already has a request running under (its ids are unique per link; a
  // repeated one would make two requests share one answer and one cancel).
  bool IdInUse(std::int64_t rid) {
    if (loop_runs_.count(rid) != 0) return true;
    std::lock_guard<std::mutex> lock(mutex_);
    return running_.count(rid) != 0;
  }

  void RotateKey(const Json& id) {
    auto key = CreateKeyFile(NextKeyPath(state_dir_));
    if (!key) return client_->rpc().RespondError(id, kErrFailed, key.error().message);
    auto pub = PublicKeyOf(key->get());
    if (!pub) return client_->rpc().RespondError(id, kErrFailed, pub.error().message);
    spdlog::info("made a new node key {} for rotation", pub->fingerprint);
    client_->rpc().Respond(id, {{"type", pub->type}, {"base64", pub->base64}, {"fingerprint", pub->fingerprint}});
  }

  void CommitKey(const Json& id, const Json& params) {
    auto next = LoadKeyFile(NextKeyPath(state_dir_));
    if (!next) return client_->rpc().RespondError(id, kErrFailed, next.error().message);
    if (Fingerprint(next->get()) != core::StringOr(params, "fingerprint")) {
      return client_->rpc().RespondError(id, kErrFailed, "the gateway recorded another key than the one made here");
    }
    if (::rename(NextKeyPath(state_dir_).c_str(), KeyPath(state_dir_).c_str()) != 0) {
      return client_->rpc().RespondError(id, kErrFailed, std::string("cannot replace the node key: ") + std::strerror(errno));
    }
    spdlog::info("node key rotated; now {}", Fingerprint(next->get()));
    client_->rpc().Respond(id, Json::object());
  }

  std::shared_ptr<AgentClient> client_;
  NodeConfig& config_;
  const std::string& state_dir_;
  core::ProcessRunner& runner_;
  const capabilities::DeviceConfig& device_;
  std::mutex mutex_;
  std::condition_variable idle_;
  std::map<std::int64_t, std::shared_ptr<core::CancelToken>> running_;
  // Runs the link's own thread steps (StartOnLink); only that thread touches them.
  struct LoopRun {
    std::unique_ptr<core::RunningProcess> process;
    std::unique_ptr<OutputRelay> relay;
    core::FdList watched;  // what the link's poll watches for it
    core::FdList ready;    // what the poll found readable since the last step
  };
  std::map<std::int64_t, LoopRun> loop_runs_;
  std::map<std::string, std::unique_ptr<capabilities::LocalFileWriter>> writers_;  // open file.write.* by handle
  std::map<std::string, RootPut> root_puts_;  // the writes among them that go into place as root
};

}  // namespace

std::string DefaultNodeStateDir() {
  if (const char* env = std::getenv("LABGATE_NODE_STATE_DIR"); env && *env) return env;
  return core::ExpandHome("~/.local/state/labgate-node");
}

core::Result<NodeConfig> LoadNodeConfig(const std::string& state_dir) {
  std::ifstream in(state_dir + "/node.json");
  if (!in) {
    return MakeError(ErrorCode::kNotFound, "this device is not paired (no " + state_dir +
                                               "/node.json); run `labgate node pair CODE` with a code from "
                                               "`labgate pair new` on the gateway");
  }
  std::stringstream text;
  text << in.rdbuf();
  auto j = core::ParseUntrustedJson(text.str());
  try {
    NodeConfig c;
    c.node_id = j.at("nodeId").get<std::string>();
    c.gateway = j.at("gateway").get<std::string>();
    c.fingerprint = j.at("fingerprint").get<std::string>();
    c.capabilities = j.at("capabilities").get<std::vector<std::string>>();
    c.paired_at = j.value("pairedAt", "");
    return c;
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kParse, state_dir + "/node.json is damaged (" + e.what() + "); pair again");
  }
}

core::Status SaveNodeConfig(const std::string& state_dir, const NodeConfig& c) {
  nlohmann::json j = {{"nodeId", c.node_id},
                      {"gateway", c.gateway},
                      {"fingerprint", c.fingerprint},
                      {"capabilities", c.capabilities},
                      {"pairedAt", c.paired_at}};
  const std::string path = state_dir + "/node.json";
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out) return MakeError(ErrorCode::kIo, "cannot write " + path + ".tmp");
  }
  ::chmod((path + ".tmp").c_str(), 0600);
  if (::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
    return MakeError(ErrorCode::kIo, "cannot write " + path + ": " + std::strerror(errno));
  }
  return core::Status();
}

std::chrono::milliseconds ReconnectDelay(std::chrono::milliseconds spread, std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int64_t> pick(spread.count() / 10, spread.count());
  return milliseconds(pick(rng));
}

std::chrono::milliseconds NextReconnectSpread(milliseconds spread, bool nothing_listened, milliseconds since_link_lost) {
  const milliseconds doubled = std::min(kMaxReconnectSpread, spread * 2);
  if (nothing_listened && since_link_lost < kRestartWindow) return std::min(doubled, std::max(spread, kRestartSpread));
  return doubled;
}

namespace {

std::string PendingPath(const std::string& state_dir) { return state_dir + "/pairing-pending.json"; }

}  // namespace

std::optional<PendingRequest> LoadPendingRequest(const std::string& state_dir) {
  auto text = core::ReadFile(PendingPath(state_dir));
  if (!text) return std::nullopt;
  const auto j = core::ParseUntrustedJson(*text);
  if (!j.is_object()) return std::nullopt;
  return PendingRequest{core::StringOr(j, "nodeId", ""), core::StringOr(j, "gateway", ""),
                        core::StringOr(j, "keyFingerprint", ""), core::StringOr(j, "requestedAt", "")};
}

DeviceInfo ThisDevice(const std::string& version) {
  utsname u{};
  ::uname(&u);
  std::string system = u.sysname;
  std::transform(system.begin(), system.end(), system.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (std::getenv("TERMUX_VERSION") != nullptr) system = "android";
  return {system + "-" + u.machine, core::HostName(), version};
}

core::Result<NodeConfig> PairDevice(const PairRequest& request, std::ostream& progress, const core::CancelToken& stop) {
  NodeConfig config;
  std::string secret;
  if (!request.code.empty()) {
    auto code = DecodePairingCode(request.code);
    if (!code) return code.error();
    config.node_id = code->node_id;
    config.gateway = code->address;
    config.fingerprint = code->fingerprint;
    secret = code->secret;
  } else {
    config.node_id = request.node_id;
    config.gateway = request.gateway;
    config.fingerprint = request.fingerprint;
    if (config.node_id.empty() || config.gateway.empty() || config.fingerprint.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "without a code, pairing needs --gateway HOST:PORT, --fingerprint SHA256:... and --node ID");
    }
  }
  auto address = ParseGatewayAddress(config.gateway, config.fingerprint);
  if (!address) return address.error();
  if (auto ok = EnsureDir(request.state_dir); !ok) return ok.error();
  if (auto existing = LoadNodeConfig(request.state_dir); existing && existing->node_id != config.node_id) {
    progress << "note: this state dir was paired as " << existing->node_id << "; it becomes " << config.node_id << "\n";
  }
  // A fresh key for every pairing: a key that was revoked must never come back.
  auto key = CreateKeyFile(KeyPath(request.state_dir));
  if (!key) return key.error();
  ::unlink(NextKeyPath(request.state_dir).c_str());
  progress << "node key " << Fingerprint(key->get()) << " written to " << KeyPath(request.state_dir) << "\n";

  auto client = AgentClient::Connect(*address, kPairUser, key->get(), milliseconds(10000));
  if (!client) return client.error();
  std::shared_ptr<AgentClient> link = std::move(*client);
  progress << "gateway " << address->Display() << " presented the expected host key " << address->fingerprint << "\n";

  const DeviceInfo device = ThisDevice(request.version);
  nlohmann::json params = {{"nodeId", config.node_id},
                           {"capabilities", request.capabilities},
                           {"platform", device.platform},
                           {"hostname", device.hostname},
                           {"version", device.version}};
  if (!secret.empty()) params["secret"] = secret;

  std::optional<core::Result<Json>> answer;
  core::CancelToken done;
  link->Post([&] {
    link->rpc().Request("pair.request", params, [&](core::Result<Json> r) {
      answer.emplace(std::move(r));
      done.Cancel();
    });
  });
  if (secret.empty()) {
    // Kept until the operator decides, so `labgate node status` can show what is waiting.
    const nlohmann::json pending = {{"nodeId", config.node_id},
                                    {"gateway", config.gateway},
                                    {"keyFingerprint", Fingerprint(key->get())},
                                    {"requestedAt", FormatTime(std::chrono::system_clock::now())}};
    (void)core::WriteFileAtomic(PendingPath(request.state_dir), pending.dump(2) + "\n");
    // Flushed: the operator compares this fingerprint with `labgate nodes pending` now, also
    // when this output goes to a log or a pipe.
    progress << "waiting for the operator to run `labgate nodes approve " << config.node_id << "` on the gateway "
             << "(key " << Fingerprint(key->get()) << ")" << std::endl;
  }
  std::thread watchdog([&] {
    auto until = std::chrono::steady_clock::now() + request.wait;
    while (!done.cancelled() && !stop.cancelled() && std::chrono::steady_clock::now() < until) {
      done.WaitFor(milliseconds(100));
    }
    done.Cancel();
  });
  auto served = link->Serve([&](const Json& id, const std::string&, const Json&) {
                              link->rpc().RespondError(id, core::jsonrpc::kMethodNotFound, "not paired yet");
                            },
                            nullptr, done);
  // The link may end before any answer (the gateway closed it): the watchdog must not go on
  // waiting out request.wait (15 minutes) for an answer that can no longer come.
  done.Cancel();
  watchdog.join();
  if (!answer) {
    if (stop.cancelled()) return MakeError(ErrorCode::kCancelled, "pairing interrupted");
    if (!served) return served.error();
    return MakeError(ErrorCode::kTimeout, "no approval arrived in time; the request stays pending on the gateway");
  }
  // An answer the link's end made up (no reply came) is no refusal: say why the link ended.
  if (!*answer && !served) return MakeError(served.error().code, "no answer to the pairing request: " + served.error().message);
  ::unlink(PendingPath(request.state_dir).c_str());  // decided, one way or the other
  if (!*answer) return MakeError(answer->error().code, "the gateway refused to pair: " + answer->error().message);
  const Json& result = **answer;
  config.capabilities = result.value("capabilities", std::vector<std::string>{});
  config.paired_at = FormatTime(std::chrono::system_clock::now());
  if (auto ok = SaveNodeConfig(request.state_dir, config); !ok) return ok.error();
  return config;
}

NodeAgent::NodeAgent(std::string state_dir, core::ProcessRunner& runner, std::string version,
                     capabilities::DeviceConfig device)
    : state_dir_(std::move(state_dir)), runner_(runner), version_(std::move(version)), device_(std::move(device)) {}

core::Status NodeAgent::Run(const core::CancelToken& stop) {
  // The commands this agent runs share its account: they may not ptrace it, read its memory or
  // descriptors through /proc, or make it dump core, where its key and, for a moment, a sudo
  // password are.
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  auto config = LoadNodeConfig(state_dir_);
  if (!config) return config.error();
  auto address = ParseGatewayAddress(config->gateway, config->fingerprint);
  if (!address) return address.error();
  const DeviceInfo device = ThisDevice(version_);
  // Content staged for a root write that a crash interrupted: never installed, only in the way.
  // Opened without following a link, and only handle-named entries go.
  if (const int dir = ::open((state_dir_ + "/staging").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); dir >= 0) {
    if (DIR* d = ::fdopendir(dir)) {
      while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() == 32 && name.find_first_not_of("0123456789abcdef") == std::string::npos) {
          (void)::unlinkat(::dirfd(d), e->d_name, 0);
        }
      }
      ::closedir(d);
    } else {
      ::close(dir);
    }
  }
  std::mt19937_64 rng(std::random_device{}());
  milliseconds backoff = kFirstReconnectSpread;
  auto link_lost = std::chrono::steady_clock::now();  // or the agent started

  while (!stop.cancelled()) {
    auto key = LoadKeyFile(KeyPath(state_dir_));
    if (!key) return key.error();
    // A gateway busy with a whole fleet's handshakes answers late, not never: giving up after a
    // fixed time threw that work away and came back to queue again. The limit is for the whole
    // attempt: a connect that was slow to be answered leaves the login what remains of it.
    const milliseconds connect_timeout = kConnectTimeout + backoff;
    bool nothing_listened = false;
    auto client = AgentClient::Connect(*address, config->node_id, key->get(), connect_timeout, &nothing_listened);
    if (!client && client.error().code == ErrorCode::kRefused) {
      // A rotation whose commit never arrived: the gateway may already hold the new key.
      if (auto next = LoadKeyFile(NextKeyPath(state_dir_))) {
        auto retry = AgentClient::Connect(*address, config->node_id, next->get(), connect_timeout);
        if (retry) {
          ::rename(NextKeyPath(state_dir_).c_str(), KeyPath(state_dir_).c_str());
          spdlog::info("finished an interrupted key rotation; node key is now {}", Fingerprint(next->get()));
          client = std::move(retry);
        }
      }
    }
    if (!client && client.error().code == ErrorCode::kRefused) {
      // Refused by the gateway itself (revoked, replaced, or another gateway): retrying can only
      // add failed logins against this address until it is locked out, also for the re-pairing
      // that is the way back. Stop and say why.
      spdlog::error("{}", client.error().message);
      spdlog::error("the agent stops: it will not reconnect with this pairing");
      return client.error();
    }
    std::string ended;
    if (client) {
      std::shared_ptr<AgentClient> link = std::move(*client);
      auto started = std::chrono::steady_clock::now();
      {
        LinkService service(link, *config, state_dir_, runner_, device_);
        link->Post([&] {
          link->rpc().Request("node.hello",
                              {{"nodeId", config->node_id},
                               {"platform", device.platform},
                               {"hostname", device.hostname},
                               {"version", device.version},
                               {"capabilities", config->capabilities}},
                              [&](core::Result<Json> r) {
                                if (!r) {
                                  spdlog::error("the gateway refused hello: {}", r.error().message);
                                  return;
                                }
                                // The gateway may narrow what this node serves, never widen it.
                                std::vector<std::string> granted;
                                for (const auto& cap : r->value("capabilities", std::vector<std::string>{})) {
                                  if (Contains(config->capabilities, cap)) granted.push_back(cap);
                                }
                                config->capabilities = granted;
                                spdlog::info("connected to gateway {} as {}; serving {}", address->Display(),
                                             config->node_id, core::Join(granted, ",", "nothing"));
                              });
        });
        auto served = link->Serve([&](const Json& id, const std::string& m, const Json& p) { service.OnRequest(id, m, p); },
                                  [&](const std::string& m, const Json& p) { service.OnNotification(m, p); }, stop);
        ended = served ? "link to gateway " + address->Display() + " ended"
                       : "link to gateway " + address->Display() + " ended: " + served.error().message;
      }
      link_lost = std::chrono::steady_clock::now();
      if (link_lost - started > std::chrono::seconds(10)) backoff = kFirstReconnectSpread;
    } else {
      ended = client.error().message;
    }
    if (stop.cancelled()) break;
    // One line per attempt: a gateway away for a while is retried every 30 s, and the journal
    // should say why and when next without doubling that.
    const milliseconds wait = ReconnectDelay(backoff, rng);
    spdlog::warn("{}; reconnecting in {} ms", ended, wait.count());
    stop.WaitFor(wait);
    backoff = NextReconnectSpread(
        backoff, nothing_listened,
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - link_lost));
  }
  return core::Status();
}

}  // namespace labgate::nodes
