// The audit log as `labgate audit verify` reads it: lines that may have been tampered with; and
// the same lines as a copy for `verify --against` (journalctl JSON, syslog lines), compared.
#include <cstddef>
#include <cstdint>
#include <chrono>
#include <string_view>

#include <map>
#include <vector>

#include "audit/audit_reader.h"
#include "audit/forward_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The first line doubles as an `audit query --since` bound (dates and durations overflowed).
  (void)labgate::audit::ParseTimeBound(bytes.substr(0, bytes.find('\n')), std::chrono::system_clock::now());
  labgate::audit::ChainVerifier verifier(std::nullopt, "audit.jsonl.head");
  verifier.StartFile("audit.jsonl");
  std::vector<labgate::audit::ForwardedCopy> copies;
  std::map<std::uint64_t, std::string> local;
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    verifier.AddLine(bytes.substr(0, nl), nl != std::string_view::npos);
    if (auto copy = labgate::audit::ParseForwardedLine(bytes.substr(0, nl))) {
      local.emplace(copy->seq, copy->hash);
      copies.push_back(std::move(*copy));
    }
    bytes.remove_prefix(nl == std::string_view::npos ? bytes.size() : nl + 1);
  }
  (void)verifier.Finish();
  (void)labgate::audit::CompareWithCopy(local, local.empty() ? 0 : local.rbegin()->first, copies);
  return 0;
}
