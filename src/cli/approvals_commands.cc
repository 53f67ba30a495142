#include <fcntl.h>
#include <unistd.h>

#include <iostream>

#include "cli/common.h"
#include "core/os_user.h"
#include "gateway/views.h"

namespace labgate::cli {
namespace {

using Json = nlohmann::json;

std::string CommandText(const Json& command) {
  if (command.contains("shell")) return command["shell"].get<std::string>();
  std::string out;
  for (const auto& w : command.value("argv", Json::array())) {
    std::string word = w.get<std::string>();
    out += (out.empty() ? "" : " ") + (word.find_first_of(" '\"$`\\;&|<>*?") == std::string::npos ? word : "'" + word + "'");
  }
  return out;
}

std::string Joined(const Json& list) {
  std::string out;
  for (const auto& item : list) out += (out.empty() ? "" : ",") + item.get<std::string>();
  return out.empty() ? "-" : out;
}

void PrintRequest(const Json& r) {
  std::cout << r["id"].get<std::string>() << "  " << r["status"].get<std::string>() << "  expires "
            << r["expiresAt"].get<std::string>() << "\n"
            << "  targets:  " << Joined(r["targets"]) << "\n"
            << "  command:  " << CommandText(r["command"]) << "\n"
            << "  cwd:      " << (r["cwd"].get<std::string>().empty() ? "(default)" : r["cwd"].get<std::string>()) << "\n";
  if (!r["env"].empty()) std::cout << "  env:      " << r["env"].dump() << "\n";
  std::cout << "  risk:     " << r["risk"].get<std::string>() << " (" << r["rule"].get<std::string>() << ")\n"
            << "  why:      " << r["reason"].get<std::string>() << "\n";
  const Json& who = r["requestedBy"];
  std::string asker = who.value("via", "?") + " " + who.value("osUser", "");
  if (who.contains("client")) asker += " via " + who["client"].value("name", "") + " " + who["client"].value("version", "");
  std::cout << "  asked by: " << asker << " at " << r["createdAt"].get<std::string>() << "\n";
  if (!r["decidedBy"].get<std::string>().empty()) {
    std::cout << "  decided:  " << r["decidedBy"].get<std::string>() << " at " << r["decidedAt"].get<std::string>() << "\n";
  }
}

// A human at this process's controlling terminal. Commands labgate itself runs have none (they
// run in their own session without a terminal), so an AI cannot answer this prompt.
class TerminalConfirmer final : public gateway::Confirmer {
 public:
  explicit TerminalConfirmer(int fd) : fd_(fd) {}
  ~TerminalConfirmer() override { ::close(fd_); }

  gateway::ConfirmAnswer Ask(const gateway::ConfirmQuestion& q, const core::CancelToken&) override {
    std::string targets;
    for (const auto& t : q.targets) targets += (targets.empty() ? "" : ", ") + t;
    std::string prompt = "labgate: this command is " + q.risk + " (" + q.rule + ")\n  targets: " + targets +
                         "\n  command: " + q.command + "\n  cwd:     " + (q.cwd.empty() ? "(default)" : q.cwd) +
                         "\n  why:     " + q.reason + "\nRun it? [y/N] ";
    WriteAll(fd_, prompt);
    std::string line;
    char c = 0;
    while (::read(fd_, &c, 1) == 1 && c != '\n') line.push_back(c);
    gateway::ConfirmAnswer answer;
    answer.who = core::CurrentUserName() + " at the terminal (" + (ttyname(fd_) ? ttyname(fd_) : "/dev/tty") + ")";
    answer.detail = "answered '" + line + "'";
    answer.kind = (line == "y" || line == "Y" || line == "yes") ? gateway::ConfirmAnswer::Kind::kAccept
                                                                : gateway::ConfirmAnswer::Kind::kDecline;
    return answer;
  }

 private:
  int fd_;
};

}  // namespace

std::unique_ptr<gateway::Confirmer> TerminalHuman() {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return nullptr;
  return std::make_unique<TerminalConfirmer>(fd);
}

int ApprovalsVerb(const Args& args) {
  const std::string sub = args.positional.empty() ? "list" : args.positional[0];
  auto inv = LoadInventoryFor(args);
  if (!inv) return Fail(inv.error().message);
  auto call = [&](const std::string& method, Json params) { return CallOperator(*inv, args, method, std::move(params)); };
  auto need_id = [&]() -> std::optional<std::string> {
    if (args.positional.size() != 2) return std::nullopt;
    return args.positional[1];
  };
  if (sub == "list") {
    auto answer = call("approvals.list", {{"all", args.has("--all")}});
    if (!answer) return Fail(answer.error().message);
    if (args.has("--json")) {
      std::cout << answer->dump(2) << "\n";
      return 0;
    }
    if ((*answer)["requests"].empty()) {
      std::cout << (args.has("--all") ? "no approval requests\n" : "no open approval requests\n");
      return 0;
    }
    for (const auto& r : (*answer)["requests"]) PrintRequest(r);
    return 0;
  }
  if (sub == "approve" || sub == "deny") {
    auto id = need_id();
    if (!id) return Fail("usage: labgate approvals " + sub + " ID (see `labgate approvals list`)", kExitUsage);
    auto answer = call("approvals." + sub, {{"id", *id}});
    if (!answer) return Fail(answer.error().message);
    if (args.has("--json")) {
      std::cout << answer->dump(2) << "\n";
    } else {
      PrintRequest(*answer);
      std::cout << (sub == "approve" ? "approved: the same call, repeated, runs once\n" : "denied: it will not run\n");
    }
    return 0;
  }
  if (sub == "grant") {
    if (!args.has("--target") || !args.has("--pattern")) {
      return Fail("usage: labgate approvals grant --target SELECTOR --pattern 'COMMAND *' [--for 1h]", kExitUsage);
    }
    std::int64_t seconds = 3600;
    if (args.has("--for")) {
      auto ms = ParseDurationMs(args.get("--for"));
      if (!ms) return Fail(ms.error().message, kExitUsage);
      seconds = std::max<std::int64_t>(1, *ms / 1000);
    }
    auto answer = call("approvals.grant", {{"target", args.get("--target")}, {"pattern", args.get("--pattern")},
                                           {"seconds", seconds}});
    if (!answer) return Fail(answer.error().message);
    if (args.has("--json")) {
      std::cout << answer->dump(2) << "\n";
      return 0;
    }
    for (const auto& g : (*answer)["grants"]) {
      std::cout << g["id"].get<std::string>() << ": `" << g["pattern"].get<std::string>() << "` on "
                << g["target"].get<std::string>() << " runs without asking until " << g["expiresAt"].get<std::string>()
                << "\n";
    }
    return 0;
  }
  if (sub == "grants") {
    auto answer = call("approvals.grants", Json::object());
    if (!answer) return Fail(answer.error().message);
    if (args.has("--json")) {
      std::cout << answer->dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {{"ID", "TARGET", "PATTERN", "EXPIRES", "BY"}};
    for (const auto& g : (*answer)["grants"]) {
      rows.push_back({g["id"].get<std::string>(), g["target"].get<std::string>(), g["pattern"].get<std::string>(),
                      g["expiresAt"].get<std::string>(), g["createdBy"].get<std::string>()});
    }
    std::cout << gateway::FormatTable(rows);
    return 0;
  }
  if (sub == "revoke") {
    auto id = need_id();
    if (!id) return Fail("usage: labgate approvals revoke GRANT-ID (see `labgate approvals grants`)", kExitUsage);
    auto answer = call("approvals.revoke", {{"id", *id}});
    if (!answer) return Fail(answer.error().message);
    std::cout << "revoked grant " << *id << "\n";
    return 0;
  }
  return Fail("unknown approvals subcommand '" + sub + "' (list, approve, deny, grant, grants, revoke)", kExitUsage);
}

}  // namespace labgate::cli
