// `labgate hosts add|remove|set`: edits of hosts.toml that keep the rest of the file as it was.
#include <charconv>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include <glob.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "core/cancel.h"
#include "core/process_runner.h"
#include "inventory/ansible_export.h"
#include "inventory/edit.h"
#include "inventory/inventory.h"
#include "inventory/selector.h"
#include "inventory/ssh_config.h"
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

// ---- hosts import ----

// What an import found: the entries to add, and what it left out and why.
struct ImportPlan {
  std::vector<inventory::HostEntry> entries;
  std::vector<std::string> skipped;
};

// An ssh config file: a regular file of at most 1 MiB (`Include /dev/zero` or a FIFO must not
// exhaust memory or hang the import).
core::Result<std::string> ReadWholeFile(const std::string& path) {
  constexpr std::uintmax_t kMaxBytes = 1u << 20;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return core::MakeError(core::ErrorCode::kNotFound, "cannot read " + path + ": " + (ec ? ec.message() : "no such file"));
  }
  if (!fs::is_regular_file(status)) {
    return core::MakeError(core::ErrorCode::kNotFound, "cannot read " + path + ": not a regular file");
  }
  if (fs::file_size(path, ec) > kMaxBytes || ec) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, path + " is larger than 1 MiB; not an ssh config");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::MakeError(core::ErrorCode::kNotFound, "cannot read " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> GlobFiles(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t found{};
  if (::glob(pattern.c_str(), 0, nullptr, &found) == 0) {
    for (std::size_t i = 0; i < found.gl_pathc; ++i) out.emplace_back(found.gl_pathv[i]);
  }
  ::globfree(&found);
  return out;  // glob(3) sorts
}

core::Result<ImportPlan> FromSshConfig(const Args& args) {
  const char* home_env = std::getenv("HOME");
  const std::string home = home_env ? home_env : "";
  const std::string file = args.positional.size() > 1 ? args.positional[1] : home + "/.ssh/config";
  auto config = inventory::ReadSshConfig(file, {ReadWholeFile, GlobFiles}, home);
  if (!config) return config.error();
  ImportPlan plan;
  plan.skipped = config->notes;
  const std::string match = args.get("--match");
  for (const auto& host : config->hosts) {
    if (!match.empty() && !inventory::SshPatternMatches(match, host.alias)) continue;
    if (!inventory::IsValidName(host.alias)) {
      plan.skipped.push_back(host.source + ": Host " + host.alias +
                             ": not a valid labgate id (letters, digits, '.', '_', '-'; at most 63)");
      continue;
    }
    inventory::HostEntry entry;
    entry.id = host.alias;
    entry.address = host.hostname;
    if (host.port) entry.port = *host.port;
    entry.user = host.user;
    // ~ in an ssh config is the home of whoever runs ssh: this user, not the gateway's account.
    entry.identity_file = host.identity_file;
    if (entry.identity_file.rfind("~/", 0) == 0 && !home.empty()) {
      entry.identity_file = home + entry.identity_file.substr(1);
    } else if (entry.identity_file.rfind("%d/", 0) == 0 && !home.empty()) {
      entry.identity_file = home + entry.identity_file.substr(2);
    }
    entry.proxy_jump = host.proxy_jump;
    if (entry.proxy_jump.find(',') != std::string::npos) {
      plan.skipped.push_back(host.source + ": Host " + host.alias + ": ProxyJump " + entry.proxy_jump +
                             " is a chain of jumps; labgate takes one (proxy_jump), so it was left out");
      entry.proxy_jump.clear();
    }
    entry.comment = "imported from " + host.source + " (Host " + host.alias + ")";
    plan.entries.push_back(std::move(entry));
  }
  return plan;
}

// An Ansible inventory as `ansible-inventory --list` resolves it: every format and plugin
// Ansible reads, group and host variables merged, by Ansible itself.
core::Result<ImportPlan> FromAnsible(const Args& args) {
  if (args.positional.size() < 2) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "usage: labgate hosts import --from-ansible INVENTORY");
  }
  const std::string source = args.positional[1];
  core::ProcessSpec spec;
  spec.argv = {"ansible-inventory", "--list", "-i", source};
  spec.timeout = std::chrono::seconds(120);
  spec.output_cap = 256u << 20;
  core::SystemProcessRunner runner;
  core::CancelToken never;
  auto ran = runner.Run(spec, never, nullptr);
  if (!ran) {
    return core::MakeError(ran.error().code, "cannot run ansible-inventory (apt install ansible-core): " +
                                                 ran.error().message);
  }
  if (ran->exit_code != 0 || ran->out.truncated) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "ansible-inventory could not read " + source + ": " + ran->err.text);
  }
  const nlohmann::json list = nlohmann::json::parse(ran->out.text, nullptr, false);
  if (!list.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "ansible-inventory printed no JSON inventory for " + source);
  }
  nlohmann::json hostvars = nlohmann::json::object();
  if (auto meta = list.find("_meta"); meta != list.end() && meta->is_object()) {
    if (auto found = meta->find("hostvars"); found != meta->end() && found->is_object()) hostvars = *found;
  }
  // Direct group memberships, in the order Ansible lists them.
  std::map<std::string, std::vector<std::string>> groups_of;
  std::vector<std::string> order;
  for (const auto& [group, body] : list.items()) {
    if (group == "_meta" || !body.is_object() || !body.contains("hosts") || !body["hosts"].is_array()) continue;
    for (const auto& host : body["hosts"]) {
      if (!host.is_string()) continue;
      const std::string name = host.get<std::string>();
      if (!groups_of.count(name)) order.push_back(name);
      auto& groups = groups_of[name];
      if (group != "all" && group != "ungrouped") groups.push_back(group);
    }
  }
  ImportPlan plan;
  for (const auto& name : order) {
    const nlohmann::json vars = hostvars.contains(name) && hostvars[name].is_object() ? hostvars[name]
                                                                                      : nlohmann::json::object();
    auto text = [&](const char* key) -> std::string {
      auto it = vars.find(key);
      if (it == vars.end()) return "";
      if (it->is_number_integer()) return std::to_string(it->get<long long>());
      return it->is_string() ? it->get<std::string>() : "";
    };
    const std::string label = "host " + name;
    if (!inventory::IsValidName(name)) {
      plan.skipped.push_back(label + ": not a valid labgate id (letters, digits, '.', '_', '-'; at most 63)");
      continue;
    }
    const std::string connection = text("ansible_connection");
    if (!connection.empty() && connection != "ssh" && connection != "paramiko" && connection != "smart") {
      plan.skipped.push_back(label + ": ansible_connection is " + connection + ", not SSH");
      continue;
    }
    inventory::HostEntry entry;
    entry.id = name;
    entry.address = text("ansible_host").empty() ? name : text("ansible_host");
    entry.user = text("ansible_user").empty() ? text("ansible_ssh_user") : text("ansible_user");
    entry.identity_file = text("ansible_ssh_private_key_file").empty() ? text("ansible_private_key_file")
                                                                       : text("ansible_ssh_private_key_file");
    const std::string port = text("ansible_port").empty() ? text("ansible_ssh_port") : text("ansible_port");
    if (!port.empty()) {
      std::int64_t value = 0;
      auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
      if (ec == std::errc() && end == port.data() + port.size()) {
        entry.port = value;
      } else {
        plan.skipped.push_back(label + ": ansible_port '" + port + "' is not a number; left out");
      }
    }
    const std::string common = text("ansible_ssh_common_args") + " " + text("ansible_ssh_extra_args");
    if (auto at = common.find("ProxyJump="); at != std::string::npos) {
      std::size_t end = common.find_first_of(" '\"", at + 10);
      entry.proxy_jump = common.substr(at + 10, end == std::string::npos ? std::string::npos : end - at - 10);
    }
    bool templated = false;
    for (std::string* field : {&entry.address, &entry.user, &entry.identity_file, &entry.proxy_jump}) {
      if (inventory::HasTemplate(*field)) templated = true;
    }
    if (templated || inventory::HasTemplate(port)) {
      plan.skipped.push_back(label + ": a connection variable is a Jinja template, which only Ansible can evaluate");
      continue;
    }
    for (const char* secret : {"ansible_password", "ansible_ssh_pass", "ansible_become_password", "ansible_become_pass"}) {
      if (vars.contains(secret)) {
        plan.skipped.push_back(label + ": " + secret +
                               " is not imported; labgate takes secrets by reference (password_env, "
                               "sudo_password_file, ...): add them with `labgate hosts set " + name + "`");
      }
    }
    // What `labgate hosts export` wrote back as labgate_*: owner, purpose, device, role, tags.
    entry.owner = text("labgate_owner");
    entry.purpose = text("labgate_purpose");
    entry.device = text("labgate_device");
    entry.role = text("labgate_role");
    std::set<std::string> tag_groups;
    if (auto tags = vars.find("labgate_tags"); tags != vars.end() && tags->is_array()) {
      for (const auto& tag : *tags) {
        if (!tag.is_string() || !inventory::IsValidName(tag.get<std::string>())) continue;
        entry.tags.push_back(tag.get<std::string>());
        tag_groups.insert("tag_" + inventory::AnsibleGroupName(tag.get<std::string>()));
      }
    }
    for (const auto& group : groups_of[name]) {
      if (tag_groups.count(group)) continue;  // the group export made of a tag
      if (inventory::IsValidName(group)) {
        entry.groups.push_back(group);
      } else {
        plan.skipped.push_back(label + ": group " + group + " is not a valid labgate group name; left out");
      }
    }
    for (std::string* field : {&entry.owner, &entry.purpose, &entry.device, &entry.role}) {
      if (inventory::HasTemplate(*field)) field->clear();
    }
    entry.comment = "imported from Ansible inventory " + source;
    plan.entries.push_back(std::move(entry));
  }
  return plan;
}

int Import(const Args& args, const std::string& path) {
  const bool ssh = args.has("--from-ssh-config");
  const bool ansible = args.has("--from-ansible");
  if (ssh == ansible) {
    return Fail("usage: labgate hosts import --from-ssh-config [FILE] [--match PATTERN] | --from-ansible INVENTORY",
                kExitUsage);
  }
  auto plan = ssh ? FromSshConfig(args) : FromAnsible(args);
  if (!plan) return Fail(plan.error().message, plan.error().code == core::ErrorCode::kInvalidArgument ? 1 : kExitLabgateError);
  std::vector<std::string> added;
  std::vector<std::string> skipped = plan->skipped;
  // Each host is added and the file checked on its own, so one bad value (a port out of range,
  // an unknown role) skips that host with the loader's reason, not the whole import.
  const std::string base_dir = fs::absolute(path).parent_path().string();
  auto inv = Edit(path, [&](const std::string& text) -> core::Result<std::string> {
    added.clear();
    std::string edited = text;
    for (const auto& entry : plan->entries) {
      auto next = inventory::AddHost(edited, entry);
      if (next) {
        auto loads = inventory::ParseInventory(*next, path, base_dir);
        if (!loads) {
          next = loads.error();
        } else if (auto checked = policy::CheckInventory(*loads); !checked) {
          next = checked.error();
        }
      }
      if (!next) {
        skipped.push_back("host " + entry.id + ": " + next.error().message);
        continue;
      }
      edited = std::move(*next);
      added.push_back(entry.id);
    }
    return edited;
  });
  if (!inv) return Fail(inv.error().message);
  std::string names;
  for (const auto& id : added) names += (names.empty() ? "" : ", ") + id;
  std::cout << "imported " << added.size() << " host(s) into " << path << (added.empty() ? "" : ": " + names) << "\n";
  for (const auto& why : skipped) std::cout << "skipped: " << why << "\n";
  if (!added.empty()) {
    std::cout << "check their host keys with `labgate hosts trust ID" << ConfigHint(args)
              << "`, and give each an owner and a purpose (`labgate hosts check`)\n";
    NoteGateway(*inv, path);
  }
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
  if (sub == "import") return Import(args, *path);
  return Fail("unknown hosts subcommand '" + sub + "' (list, trust, add, remove, set, check, import or export)",
              kExitUsage);
}

}  // namespace labgate::cli
