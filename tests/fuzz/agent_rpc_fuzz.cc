// The agent channel above the codec: what a node (or anyone holding a pairing login) sends the
// gateway, and what the gateway sends a node. Requests are decoded as the node decodes
// system.run and captures; responses go to outstanding requests the way the gateway reads run
// outcomes and capture results; streamed notifications go to their request's listener.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "capabilities/capture.h"
#include "nodes/agent_protocol.h"
#include "nodes/rpc_peer.h"

namespace {

using labgate::nodes::Json;

void Decode(const std::string& method, const Json& params) {
  if (method == "system.run") (void)labgate::nodes::DecodeRunRequest(params);
  (void)labgate::capabilities::DecodeCaptureRequest(params);
  (void)labgate::nodes::CapabilityOfMethod(method);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::size_t sent = 0;
  labgate::nodes::RpcPeer* self = nullptr;
  labgate::nodes::RpcPeer peer(
      [&sent](std::string bytes) { sent += bytes.size(); },
      [&self](const Json& id, const std::string& method, const Json& params) {
        Decode(method, params);
        self->Respond(id, Json::object());
      },
      [](const std::string& method, const Json& params) { Decode(method, params); },
      64 * 1024);
  self = &peer;
  // Ids 1 to 3 are outstanding, as a gateway with three calls on this node would have them.
  peer.Request("system.run", Json::object(),
               [](labgate::core::Result<Json> r) {
                 if (r.ok()) (void)labgate::nodes::DecodeOutcome(*r);
               },
               [](const std::string&, const Json& params) { (void)params.dump(); });
  peer.Request("screen.snapshot", Json::object(), [](labgate::core::Result<Json> r) {
    if (r.ok()) (void)labgate::capabilities::DecodeCaptureResult(*r);
  });
  peer.Request("node.hello", Json::object(), [](labgate::core::Result<Json> r) {
    if (r.ok()) (void)r->dump();
  });
  peer.Feed(std::string_view(reinterpret_cast<const char*>(data), size));
  peer.FailAll(labgate::core::MakeError(labgate::core::ErrorCode::kUnavailable, "fuzz input ended"));
  return 0;
}
