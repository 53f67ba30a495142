// JSON-RPC framing and codec: what every MCP client, operator and node sends.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/json_rpc.h"
#include "core/line_framer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  labgate::core::LineFramer framer(64 * 1024);
  for (auto& frame : framer.Feed(bytes)) {
    if (frame.oversized) continue;
    auto decoded = labgate::core::jsonrpc::Decode(frame.line);
    if (auto* msg = std::get_if<labgate::core::jsonrpc::Message>(&decoded)) {
      (void)labgate::core::jsonrpc::Encode(msg->params);
      (void)labgate::core::jsonrpc::Encode(msg->result);
    }
  }
  (void)framer.Finish();
  return 0;
}
