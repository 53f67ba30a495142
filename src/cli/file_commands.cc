// `labgate file`: read, stat, list, get and put through the gateway's pipeline.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "cli/common.h"
#include "core/base64.h"
#include "core/files.h"
#include "core/os_user.h"
#include "core/text.h"
#include "gateway/runtime.h"
#include "gateway/views.h"

namespace labgate::cli {
namespace {

core::Result<std::uint64_t> CountOption(const Args& args, const char* option) {
  const std::string text = args.get(option);
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || text[0] == '-') {
    return core::MakeError(core::ErrorCode::kInvalidArgument, std::string(option) + " must be a whole number");
  }
  return static_cast<std::uint64_t>(v);
}

core::Result<std::string> ReadAllFrom(const std::string& source) {
  if (source != "-") return core::ReadFile(source);
  std::string data;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return core::MakeError(core::ErrorCode::kIo, std::string("cannot read stdin: ") + std::strerror(errno));
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  return data;
}

core::Result<gateway::FileCall> FileCallFromArgs(const Args& args) {
  using core::ErrorCode;
  using core::MakeError;
  if (args.positional.size() != 3) {
    return MakeError(ErrorCode::kInvalidArgument, "file needs OP TARGET PATH (see `labgate file --help`)");
  }
  gateway::FileCall call;
  call.op = args.positional[0];
  call.selector = args.positional[1];
  call.path = args.positional[2];
  if (args.has("--offset")) {
    auto v = CountOption(args, "--offset");
    if (!v) return v.error();
    call.offset = *v;
  }
  if (args.has("--length")) {
    auto v = CountOption(args, "--length");
    if (!v) return v.error();
    call.length = *v;
  }
  if (args.has("--max-entries")) {
    auto v = CountOption(args, "--max-entries");
    if (!v) return v.error();
    call.max_entries = static_cast<std::size_t>(*v);
  }
  if (args.has("--timeout")) {
    auto ms = ParseDurationMs(args.get("--timeout"));
    if (!ms) return ms.error();
    call.timeout_ms = *ms;
  }
  if (args.has("--mode")) {
    const std::string m = args.get("--mode");
    if (m.empty() || m.size() > 5 || m.find_first_not_of("01234567") != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument, "--mode must be octal permission bits, such as 0644");
    }
    call.write.mode = static_cast<std::uint32_t>(std::stoul(m, nullptr, 8));
  }
  call.write.create_only = args.has("--create-only");
  call.sudo = args.has("--sudo");
  call.write.overwrite = !args.has("--no-overwrite");
  if (args.has("--expect")) call.write.expected_sha256 = args.get("--expect");
  if (call.op == "put") {
    if (!args.has("--from")) return MakeError(ErrorCode::kInvalidArgument, "put needs --from LOCAL-FILE (or - for stdin)");
    auto data = ReadAllFrom(args.get("--from"));
    if (!data) return data.error();
    call.content = std::move(*data);
  } else if (args.has("--from")) {
    return MakeError(ErrorCode::kInvalidArgument, "--from belongs to put");
  }
  return call;
}

}  // namespace

int FileVerb(const Args& args) {
  auto call = FileCallFromArgs(args);
  if (!call) return Fail(call.error().message, kExitUsage);
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);

  nlohmann::json report;
  std::string text;
  std::string data;
  bool have_data = false;
  if (GatewayRunning(*inv)) {
    const std::int64_t timeout = call->timeout_ms.value_or(inv->gateway.default_timeout_ms);
    auto answer = CallGateway(*inv, args, "file", {{"call", gateway::EncodeFileCall(*call)}}, timeout + 30000);
    if (!answer) return Fail(answer.error().message);
    report = (*answer)["report"];
    text = answer->value("text", "");
    if (answer->contains("data")) {
      auto bytes = core::Base64Decode((*answer)["data"].get<std::string>());
      if (!bytes) return Fail("the gateway sent damaged file content: " + bytes.error().message);
      data = std::move(*bytes);
      have_data = true;
    }
  } else {
    gateway::Runtime runtime(std::move(*inv), gateway::Runtime::Mode::kOneShot, ConfigHint(args));
    audit::Actor actor{"cli", "labgate-cli", LABGATE_VERSION, core::CurrentUserName(), ""};
    core::CancelToken never;
    auto human = TerminalHuman();
    auto result = runtime.gateway().File(actor, *call, never, human.get());
    report = gateway::FileReportJson(result);
    text = gateway::FileReportText(result);
    if (result.data) {
      data = result.data->bytes;
      have_data = true;
    }
    if (result.artifact && runtime.gateway().artifacts()) {
      if (auto art = runtime.gateway().artifacts()->Read(result.artifact->id)) {
        data = std::move(art->second);
        have_data = true;
      }
    }
  }

  const bool failed = !report["error"].is_null();
  if (failed) {
    if (args.has("--json")) {
      std::cout << report.dump(2) << "\n";
      return 1;
    }
    return Fail(report["error"].get<std::string>(), report.value("decision", "") == "refused" ? kExitLabgateError : 1);
  }
  if (call->op == "get" && have_data) {
    std::string file = args.get("--output");
    if (file.empty()) file = std::string(core::Basename(report.value("path", call->path)));
    if (file == "-") {
      WriteAll(STDOUT_FILENO, data);
      std::cerr << text << "\n";
      return 0;
    }
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Fail("cannot write " + file + ": " + std::strerror(errno));
    WriteAll(fd, data);
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return Fail("cannot write " + file + ": " + std::strerror(errno));
    report["file"] = file;
    text += "\nwrote " + file;
  }
  if (args.has("--json")) {
    if (call->op == "read" && have_data) {
      report["content"] = core::ToValidUtf8(data) == data ? nlohmann::json(data) : nlohmann::json(core::Base64Encode(data));
    }
    std::cout << report.dump(2) << "\n";
  } else if (call->op == "read" && have_data && !report.value("text", false)) {
    WriteAll(STDOUT_FILENO, data);  // binary: the bytes, as cat would
  } else {
    std::cout << text << "\n";
  }
  return 0;
}

}  // namespace labgate::cli
