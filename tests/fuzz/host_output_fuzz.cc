// What hosts and devices send back: media headers of captures, location fixes, pairing codes,
// base64 payloads.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "capabilities/location_fix.h"
#include "capabilities/media_info.h"
#include "core/base64.h"
#include "nodes/pairing_code.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)labgate::capabilities::ReadMediaInfo(bytes);
  (void)labgate::capabilities::ParseGpsdReport(bytes);
  (void)labgate::capabilities::ParseTermuxLocation(bytes, std::chrono::system_clock::time_point{});
  (void)labgate::nodes::DecodePairingCode(bytes);
  (void)labgate::core::Base64Decode(bytes);
  (void)labgate::core::Base64UrlDecode(bytes);
  return 0;
}
