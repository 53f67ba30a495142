#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "inventory/inventory.h"

/// hosts.toml's SSH hosts as an Ansible inventory, so a fleet that outgrows one gateway keeps
/// one source of truth (`labgate hosts export`). Pure.
namespace labgate::inventory {

struct AnsibleExport {
  /// The inventory in the YAML plugin's layout: {"all": {"hosts": {...}, "children": {...}}}.
  nlohmann::ordered_json inventory;
  /// What was left out or renamed, and why ("node pi: ...").
  std::vector<std::string> notes;
};

/// Every [[hosts]] entry with ansible_host, ansible_port, ansible_user,
/// ansible_ssh_private_key_file and a ProxyJump in ansible_ssh_common_args; owner, purpose,
/// device, role and tags as labgate_* variables. Groups become groups, tags groups named
/// tag_NAME; names Ansible does not accept are rewritten ([A-Za-z0-9_]) and noted. Nodes and
/// `local` are left out (Ansible cannot reach them over SSH), and so is every secret, even by
/// reference.
AnsibleExport ExportAnsible(const Inventory& inv);

/// Whether `value` holds a Jinja delimiter (`{{`, `{%`, `{#`). Ansible evaluates Jinja in
/// inventory variables when it uses them (ansible_host and ansible_user at every connection), so
/// such a value is neither exported (it would run on the Ansible controller) nor imported (only
/// Ansible can evaluate it).
bool HasTemplate(const std::string& value);

/// A labgate group or tag name as an Ansible group name: letters, digits and `_`, not starting
/// with a digit ("web-servers" -> "web_servers").
std::string AnsibleGroupName(const std::string& name);

/// YAML text of `value` (block style; strings double-quoted with JSON's escapes, which YAML
/// reads the same way).
std::string ToYaml(const nlohmann::ordered_json& value);

}  // namespace labgate::inventory
