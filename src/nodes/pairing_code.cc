#include "nodes/pairing_code.h"

#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/json_parse.h"

namespace labgate::nodes {

namespace {
constexpr std::string_view kPrefix = "lgpair1.";
}

std::string EncodePairingCode(const PairingCode& code) {
  nlohmann::json body = {{"a", code.address}, {"f", code.fingerprint}, {"n", code.node_id}, {"s", code.secret}};
  return std::string(kPrefix) + core::Base64UrlEncode(body.dump());
}

core::Result<PairingCode> DecodePairingCode(std::string_view text) {
  auto bad = [](const std::string& why) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "this is not a labgate pairing code (" + why +
                               "); copy the whole line `labgate pair new` printed, starting with lgpair1.");
  };
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.substr(0, kPrefix.size()) != kPrefix) return bad("it does not start with lgpair1.");
  auto raw = core::Base64UrlDecode(text.substr(kPrefix.size()));
  if (!raw) return bad("it is damaged or cut short");
  auto body = core::ParseUntrustedJson(*raw);
  if (!body.is_object()) return bad("it is damaged or cut short");
  PairingCode code;
  for (auto [key, field] : {std::pair{"a", &code.address}, {"f", &code.fingerprint}, {"n", &code.node_id},
                            {"s", &code.secret}}) {
    auto it = body.find(key);
    if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) return bad("a field is missing");
    *field = it->get<std::string>();
  }
  if (code.fingerprint.rfind("SHA256:", 0) != 0) return bad("its host-key fingerprint is malformed");
  return code;
}

}  // namespace labgate::nodes
