#include "core/sandbox.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace labgate::core {
namespace {

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "-" : out;
}

}  // namespace

std::vector<std::string> BubblewrapArgv(const std::string& bwrap, const SandboxPolicy& policy,
                                        const std::vector<std::string>& argv) {
  // Paths as the kernel resolves them, so a symlink in the way (a home under /data) cannot
  // leave the real directory unprotected.
  auto resolved = [](const std::string& path) {
    std::error_code ec;
    std::filesystem::path real = std::filesystem::canonical(path, ec);
    return ec ? std::filesystem::path(path).lexically_normal() : real;
  };
  std::vector<std::filesystem::path> hidden, read_only;
  for (const auto& p : policy.hidden) hidden.push_back(resolved(p));
  for (const auto& p : policy.read_only) read_only.push_back(resolved(p));

  // Every directory above a protected path becomes a mount point of its own (bound onto
  // itself, still writable): a mount point cannot be renamed or removed, so a command cannot
  // move the state dir or hosts.toml out from under these mounts by renaming a parent
  // (`mv ~/.local/state ~/.local/s`) and find them unprotected at the next start.
  std::set<std::filesystem::path, std::less<>> anchors;
  for (const auto* list : {&hidden, &read_only}) {
    for (const auto& p : *list) {
      std::error_code ec;
      if (!std::filesystem::exists(std::filesystem::symlink_status(p, ec))) continue;
      for (auto dir = p.parent_path(); dir.has_relative_path(); dir = dir.parent_path()) anchors.insert(dir);
    }
  }
  std::vector<std::filesystem::path> ordered(anchors.begin(), anchors.end());
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return std::distance(a.begin(), a.end()) < std::distance(b.begin(), b.end());
  });

  // --die-with-parent: the command is killed when labgate is (its own PDEATHSIG covers bwrap).
  std::vector<std::string> out = {bwrap, "--die-with-parent", "--dev-bind", "/", "/"};
  for (const auto& dir : ordered) out.insert(out.end(), {"--bind", dir.string(), dir.string()});
  for (const auto& path : hidden) {
    std::error_code ec;
    const std::string dir = path.string();
    if (std::filesystem::is_directory(path, ec)) {
      out.insert(out.end(), {"--tmpfs", dir});
    } else if (std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
      out.insert(out.end(), {"--ro-bind", "/dev/null", dir});  // a socket or file: nothing to connect to
    }
  }
  for (const auto& path : read_only) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) out.insert(out.end(), {"--ro-bind", path.string(), path.string()});
  }
  if (::geteuid() == 0) {
    // Root keeps what ordinary administration needs, but not what would unmount the sandbox,
    // open files by handle around it, or read and write the gateway's memory.
    for (const char* cap : {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_SYS_MODULE",
                            "CAP_SYS_RAWIO", "CAP_MKNOD", "CAP_BPF", "CAP_PERFMON", "CAP_SETPCAP"}) {
      out.insert(out.end(), {"--cap-drop", cap});
    }
  }
  out.push_back("--");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

SandboxedRunner::SandboxedRunner(ProcessRunner& inner, SandboxPolicy policy, std::string bwrap)
    : inner_(inner), policy_(std::move(policy)), bwrap_(bwrap.empty() ? FindOnPath("bwrap") : std::move(bwrap)) {}

void SandboxedRunner::Probe() const {
  std::call_once(probed_, [this] {
    if (bwrap_.empty()) {
      description_ = "none: bubblewrap (bwrap) is not installed; install it (Debian: apt install bubblewrap)";
      return;
    }
    ProcessSpec probe;
    probe.argv = BubblewrapArgv(bwrap_, policy_, {"true"});
    probe.timeout = std::chrono::milliseconds(10000);
    CancelToken cancel;
    auto ran = inner_.Run(probe, cancel, nullptr);
    if (!ran || ran->exit_code != 0) {
      std::string why = ran ? ran->err.text : ran.error().message;
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      description_ = "none: bubblewrap could not set up a sandbox here (" + why +
                     "); it needs unprivileged user namespaces or root";
      return;
    }
    active_ = true;
    description_ = "bubblewrap (" + bwrap_ + "): hidden " + Joined(policy_.hidden) + "; read-only " +
                   Joined(policy_.read_only);
  });
}

Result<ProcessOutcome> SandboxedRunner::Run(const ProcessSpec& spec, const CancelToken& cancel,
                                            OutputListener* listener) {
  Probe();
  if (!active_) return inner_.Run(spec, cancel, listener);
  if (spec.argv.empty()) return inner_.Run(spec, cancel, listener);  // refused there, nothing runs
  // Resolve the program outside, so that "not found" reads as it does without a sandbox.
  auto program = ResolveProgram(spec.argv[0]);
  if (!program) return program.error();
  std::vector<std::string> argv = spec.argv;
  argv[0] = *program;
  ProcessSpec wrapped = spec;
  wrapped.argv = BubblewrapArgv(bwrap_, policy_, argv);
  return inner_.Run(wrapped, cancel, listener);
}

}  // namespace labgate::core
