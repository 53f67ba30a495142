// hosts.toml: the parser and validation, the scanner the editing commands use, and the Ansible
// export of whatever loads; the same bytes as an ~/.ssh/config for `hosts import`.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "inventory/ansible_export.h"
#include "inventory/edit.h"
#include "inventory/inventory.h"
#include "inventory/ssh_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto inv = labgate::inventory::ParseInventory(text, "hosts.toml", "/"); inv.ok()) {
    (void)labgate::inventory::ToYaml(labgate::inventory::ExportAnsible(*inv).inventory);
  }
  (void)labgate::inventory::LocateEntry(text, "box");
  (void)labgate::inventory::RemoveEntry(text, "box");
  // Every Include names this same file again: the depth limit must hold.
  const std::string config(text);
  labgate::inventory::SshConfigFiles files{
      [&config](const std::string&) -> labgate::core::Result<std::string> { return config; },
      [](const std::string& pattern) { return std::vector<std::string>{pattern}; }};
  (void)labgate::inventory::ReadSshConfig("/home/u/.ssh/config", files, "/home/u");
  return 0;
}
