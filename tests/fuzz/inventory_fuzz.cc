// hosts.toml: the parser and validation, and the scanner the editing commands use.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "inventory/edit.h"
#include "inventory/inventory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)labgate::inventory::ParseInventory(text, "hosts.toml", "/");
  (void)labgate::inventory::LocateEntry(text, "box");
  (void)labgate::inventory::RemoveEntry(text, "box");
  return 0;
}
