// `labgate hosts add|remove|set`: edits of hosts.toml that keep the rest of the file as it was.
#include <charconv>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>

#include "cli/common.h"
#include "inventory/edit.h"
#include "inventory/inventory.h"
#include "policy/decide.h"

namespace labgate::cli {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

// The file to edit: --config, else the default search. Built-in defaults have no file to edit.
core::Result<std::string> EditablePath(const Args& args) {
  std::string path = args.has("--config") ? args.get("--config") : inventory::DefaultConfigPath();
  if (path.empty()) {
    return core::MakeError(
        core::ErrorCode::kNotFound,
        "there is no hosts.toml to edit: labgate is running on its built-in defaults (no ./hosts.toml, "
        "no ~/.config/labgate/hosts.toml). Create one first, e.g. copy the bundled, commented "
        "hosts.toml from the labgate sources to ~/.config/labgate/hosts.toml, or pass --config FILE");
  }
  return path;
}

// Edits `path` under its lock; the new text must load exactly as `labgate targets` would load it.
// Returns the inventory the edited file gives.
core::Result<inventory::Inventory> Edit(const std::string& path,
                                        const std::function<core::Result<std::string>(const std::string&)>& edit) {
  std::optional<inventory::Inventory> loaded;
  const std::string base_dir = fs::absolute(path).parent_path().string();
  auto validate = [&](const std::string& text) -> core::Status {
    auto inv = inventory::ParseInventory(text, path, base_dir);
    if (!inv) return inv.error();
    if (auto ok = policy::CheckInventory(*inv); !ok) return ok.error();
    loaded = std::move(*inv);
    return core::Ok();
  };
  if (auto ok = inventory::EditInventoryFile(path, edit, validate); !ok) return ok.error();
  return std::move(*loaded);
}

void NoteGateway(const inventory::Inventory& inv, const std::string& path) {
  if (GatewayRunning(inv)) {
    std::cout << "a gateway daemon is running for this config; it reloads " << path << " when the file changes\n";
  }
}

int Add(const Args& args, const std::string& path) {
  if (args.positional.size() != 2) {
    return Fail("usage: labgate hosts add ID --address ADDRESS [--port N] [--user U] ... (see `labgate hosts --help`)",
                kExitUsage);
  }
  inventory::HostEntry entry;
  entry.id = args.positional[1];
  entry.address = args.get("--address");
  if (entry.address.empty()) {
    return Fail("hosts add needs --address (an IP, a DNS name or a Host alias from ~/.ssh/config)", kExitUsage);
  }
  if (args.has("--port")) {
    const std::string text = args.get("--port");
    std::int64_t port = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return Fail("--port must be a number between 1 and 65535, got '" + text + "'", kExitUsage);
    }
    entry.port = port;
  }
  entry.user = args.get("--user");
  entry.identity_file = args.get("--identity-file");
  entry.groups = SplitList(args.get("--groups"));
  entry.tags = SplitList(args.get("--tags"));
  entry.capabilities = SplitList(args.get("--caps"));
  entry.device = args.get("--device");
  entry.owner = args.get("--owner");
  entry.purpose = args.get("--purpose");
  entry.role = args.get("--role");
  auto inv = Edit(path, [&](const std::string& text) { return inventory::AddHost(text, entry); });
  if (!inv) return Fail(inv.error().message);
  const inventory::Target* t = inv->Find(entry.id);
  std::cout << "added host " << entry.id << " to " << path << " (line " << (t ? t->line : 0) << ")\n";
  std::cout << "check its host key with `labgate hosts trust " << entry.id << ConfigHint(args) << "`\n";
  NoteGateway(*inv, path);
  return 0;
}

int Remove(const Args& args, const std::string& path) {
  if (args.positional.size() != 2) return Fail("usage: labgate hosts remove ID", kExitUsage);
  const std::string id = args.positional[1];
  inventory::EntryLocation where;
  auto inv = Edit(path, [&](const std::string& text) -> core::Result<std::string> {
    auto found = inventory::LocateEntry(text, id);
    if (!found) return found.error();
    where = *found;
    return inventory::RemoveEntry(text, id);
  });
  if (!inv) return Fail(inv.error().message);
  const bool node = where.list == "nodes";
  std::cout << "removed " << (node ? "node " : "host ") << id << " from " << path << " (it was lines "
            << where.first_line << "-" << where.last_line << ")\n";
  if (node) {
    std::cout << "if " << id << " was paired, also run `labgate nodes revoke " << id << ConfigHint(args)
              << "` so its key is refused\n";
  }
  NoteGateway(*inv, path);
  return 0;
}

int Set(const Args& args, const std::string& path) {
  if (args.positional.size() < 3) {
    return Fail("usage: labgate hosts set ID KEY=VALUE [KEY=VALUE ...] (KEY= removes the key)", kExitUsage);
  }
  const std::string id = args.positional[1];
  std::vector<std::pair<std::string, std::string>> assignments;
  std::string summary;
  for (std::size_t i = 2; i < args.positional.size(); ++i) {
    const std::string& word = args.positional[i];
    const auto eq = word.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail("'" + word + "' is not KEY=VALUE (write port=2222, groups=servers,lab, or user= to remove)",
                  kExitUsage);
    }
    std::string key = word.substr(0, eq);
    std::string value = word.substr(eq + 1);
    if (value.empty()) {
      summary += (summary.empty() ? "" : ", ") + ("removed " + key);
    } else {
      auto rendered = inventory::TomlValueFor(key, value);
      if (!rendered) return Fail(rendered.error().message, kExitUsage);
      summary += (summary.empty() ? "" : ", ") + key + " = " + *rendered;
    }
    assignments.emplace_back(std::move(key), std::move(value));
  }
  inventory::EntryLocation where;
  auto inv = Edit(path, [&](const std::string& text) -> core::Result<std::string> {
    auto edited = inventory::SetKeys(text, id, assignments);
    if (!edited) return edited;
    auto found = inventory::LocateEntry(*edited, id);
    if (found) where = *found;
    return edited;
  });
  if (!inv) return Fail(inv.error().message);
  std::cout << "updated " << (where.list == "nodes" ? "node " : "host ") << id << " in " << path << " (line "
            << where.header_line << "): " << summary << "\n";
  NoteGateway(*inv, path);
  return 0;
}

}  // namespace

int HostsEditVerb(const Args& args) {
  auto path = EditablePath(args);
  if (!path) return Fail(path.error().message);
  const std::string& sub = args.positional[0];
  if (sub == "add") return Add(args, *path);
  if (sub == "remove") return Remove(args, *path);
  if (sub == "set") return Set(args, *path);
  return Fail("unknown hosts subcommand '" + sub + "' (list, trust, add, remove, set or check)", kExitUsage);
}

}  // namespace labgate::cli
