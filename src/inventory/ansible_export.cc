#include "inventory/ansible_export.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <set>

namespace labgate::inventory {
namespace {

using Json = nlohmann::ordered_json;

// The -o ProxyJump=... argument for a host's jump: another [[hosts]] entry by id, or
// user@host:port as written.
std::string JumpSpec(const Inventory& inv, const std::string& jump) {
  for (const auto& t : inv.targets) {
    if (t.kind != TargetKind::kHost || t.id != jump) continue;
    std::string spec = t.user.empty() ? "" : t.user + "@";
    spec += t.address.find(':') != std::string::npos ? "[" + t.address + "]" : t.address;
    if (t.port != 22) spec += ":" + std::to_string(t.port);
    return spec;
  }
  return jump;
}

// What ssh takes as one word that is not an option: Ansible splits ansible_ssh_common_args
// like a shell, so a space or quote there would add ssh options (-oProxyCommand=...) that run
// commands on the Ansible machine.
bool SshWord(const std::string& value) {
  if (value.empty() || value[0] == '-') return false;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f || c == '"' || c == '\'' || c == '\\') return false;
  }
  return true;
}

// A key YAML reads as the string it is: no quoting needed, and not one of the words YAML 1.1
// (PyYAML, so Ansible) reads as a boolean or null in any case.
bool PlainKey(const std::string& key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
  std::string lower;
  for (char c : key) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  static const char* kReserved[] = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"};
  return std::none_of(std::begin(kReserved), std::end(kReserved), [&](const char* word) { return lower == word; });
}

// JSON's quoting, which YAML reads the same way, plus escapes for what JSON leaves raw but YAML
// does not accept in a document: DEL and the C1 controls (U+0080-U+009F).
std::string Scalar(const Json& value) {
  const std::string json = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::string out;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const auto c = static_cast<unsigned char>(json[i]);
    if (c == 0x7f) {
      out += "\\u007f";
    } else if (c == 0xc2 && i + 1 < json.size() && static_cast<unsigned char>(json[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(json[i + 1]) <= 0x9f) {
      static const char* kHex = "0123456789abcdef";
      const auto low = static_cast<unsigned char>(json[++i]);
      out += std::string("\\u00") + kHex[low >> 4] + kHex[low & 0xf];
    } else {
      out += json[i];
    }
  }
  return out;
}

void Emit(const Json& value, int indent, std::string& out) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      out += pad + (PlainKey(key) ? key : Scalar(Json(key))) + ":";
      if ((item.is_object() || item.is_array()) && !item.empty()) {
        out += "\n";
        Emit(item, indent + 2, out);
      } else {
        out += " " + (item.is_object() ? std::string("{}") : item.is_array() ? std::string("[]") : Scalar(item)) + "\n";
      }
    }
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if ((item.is_object() || item.is_array()) && !item.empty()) {
        out += pad + "-\n";
        Emit(item, indent + 2, out);
      } else {
        out += pad + "- " + (item.is_object() ? std::string("{}") : item.is_array() ? std::string("[]") : Scalar(item)) +
               "\n";
      }
    }
  } else {
    out += pad + Scalar(value) + "\n";
  }
}

}  // namespace

std::string AnsibleGroupName(const std::string& name) {
  std::string out;
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "_" + out;
  return out;
}

bool HasTemplate(const std::string& value) {
  return value.find("{{") != std::string::npos || value.find("{%") != std::string::npos ||
         value.find("{#") != std::string::npos;
}

AnsibleExport ExportAnsible(const Inventory& inv) {
  AnsibleExport out;
  Json hosts = Json::object();
  std::map<std::string, Json> groups;        // Ansible group name -> {"hosts": {...}}
  std::map<std::string, std::string> named;  // Ansible group name -> the label it came from
  // `raw` is a labgate group or tag name; `label` how a note names it ("group web-servers").
  auto add_to_group = [&](const std::string& label, const std::string& prefix, const std::string& raw,
                          const std::string& host) {
    const std::string name = prefix + AnsibleGroupName(raw);
    if (name == "all" || name == "ungrouped") {
      out.notes.push_back(label + ": '" + name + "' is a group Ansible reserves; not exported");
      return;
    }
    auto [it, fresh] = named.emplace(name, label);
    if (fresh && AnsibleGroupName(raw) != raw) {
      out.notes.push_back(label + " is exported as group " + name + " (Ansible allows letters, digits and _)");
    } else if (!fresh && it->second != label) {
      out.notes.push_back(label + " and " + it->second + " are both exported as group " + name);
      it->second = label;  // noted once per pair
    }
    groups[name]["hosts"][host] = Json::object();
  };
  std::vector<std::string> nodes;
  for (const auto& t : inv.targets) {
    if (t.kind == TargetKind::kNode) {
      nodes.push_back(t.id);
      continue;
    }
    if (t.kind != TargetKind::kHost) continue;
    if (!SshWord(t.address)) {
      out.notes.push_back("host " + t.id + ": its address is not one plain word for ssh (space, quote or a leading "
                          "'-'); not exported");
      continue;
    }
    Json vars = Json::object();
    vars["ansible_host"] = t.address;
    vars["ansible_port"] = t.port;
    if (!t.user.empty()) {
      if (SshWord(t.user)) {
        vars["ansible_user"] = t.user;
      } else {
        out.notes.push_back("host " + t.id + ": its user is not one plain word for ssh; not exported");
      }
    }
    if (!t.identity_file.empty()) vars["ansible_ssh_private_key_file"] = t.identity_file;
    if (!t.proxy_jump.empty()) {
      const std::string jump = JumpSpec(inv, t.proxy_jump);
      if (!SshWord(jump)) {
        // Ansible splits ansible_ssh_common_args into words: a space here would add ssh options.
        out.notes.push_back("host " + t.id + ": its jump (" + t.proxy_jump +
                            ") is not one plain word for ssh; ProxyJump not exported");
      } else {
        vars["ansible_ssh_common_args"] = "-o ProxyJump=" + jump;
        if (const Target* via = inv.Find(t.proxy_jump); via && !via->identity_file.empty()) {
          out.notes.push_back("host " + t.id + ": labgate reaches its jump host " + t.proxy_jump + " with " +
                              via->identity_file + "; Ansible's ProxyJump uses ssh's own keys for it");
        }
      }
    }
    if (!t.owner.empty()) vars["labgate_owner"] = t.owner;
    if (!t.purpose.empty()) vars["labgate_purpose"] = t.purpose;
    if (!t.device.empty()) vars["labgate_device"] = t.device;
    vars["labgate_role"] = t.role;
    if (!t.tags.empty()) vars["labgate_tags"] = t.tags;
    if (!t.password_env.empty() || !t.password_file.empty() || !t.passphrase_env.empty() ||
        !t.passphrase_file.empty() || !t.sudo_password_env.empty() || !t.sudo_password_file.empty()) {
      out.notes.push_back("host " + t.id + ": its password and passphrase references are not exported");
    }
    for (auto it = vars.begin(); it != vars.end();) {
      const bool templated = it->is_string() ? HasTemplate(it->get<std::string>())
                                             : it->is_array() && std::any_of(it->begin(), it->end(), [](const Json& v) {
                                                 return v.is_string() && HasTemplate(v.get<std::string>());
                                               });
      if (!templated) {
        ++it;
        continue;
      }
      out.notes.push_back("host " + t.id + ": " + it.key() +
                          " holds a Jinja delimiter ({{, {% or {#) that Ansible would evaluate; not exported");
      it = vars.erase(it);
    }
    hosts[t.id] = std::move(vars);
    for (const auto& g : t.groups) add_to_group("group " + g, "", g, t.id);
    for (const auto& tag : t.tags) add_to_group("tag " + tag, "tag_", tag, t.id);
  }
  if (!nodes.empty()) {
    std::string listed;
    for (std::size_t i = 0; i < nodes.size() && i < 5; ++i) listed += (i ? ", " : "") + nodes[i];
    if (nodes.size() > 5) listed += ", ...";
    out.notes.push_back(std::to_string(nodes.size()) + " node(s) left out (" + listed +
                        "): nodes connect out to the gateway, so Ansible cannot reach them over SSH");
  }
  Json all = Json::object();
  all["hosts"] = std::move(hosts);
  if (!groups.empty()) {
    Json children = Json::object();
    for (auto& [name, group] : groups) children[name] = std::move(group);
    all["children"] = std::move(children);
  }
  out.inventory["all"] = std::move(all);
  return out;
}

std::string ToYaml(const Json& value) {
  std::string out = "---\n";
  Emit(value, 0, out);
  return out;
}

}  // namespace labgate::inventory
