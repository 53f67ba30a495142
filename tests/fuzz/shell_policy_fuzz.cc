// The shell parser and classifier: every command an assistant sends, on every target.
#include <cstddef>
#include <cstdint>
#include <string>

#include "policy/classify.h"
#include "policy/command_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto parsed = labgate::policy::ParseShell(text);
  const std::vector<std::string> protected_paths = {"~/.local/state/labgate", "/etc/labgate/hosts.toml"};
  (void)labgate::policy::Classify(parsed, {}, protected_paths);
  (void)labgate::policy::FindPrivilegedPart(parsed, {}, protected_paths);
  return 0;
}
