#include "mcp/request_state.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <limits>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/hashing.h"
#include "core/json_parse.h"

namespace labgate::mcp {
namespace {

using core::ErrorCode;
using core::MakeError;

std::string Hmac(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RequestStates::RequestStates(std::chrono::seconds lifetime) : key_(core::RandomBytes(32)), lifetime_(lifetime) {}

std::string RequestStates::Issue(const StateBinding& b) {
  const nlohmann::json payload = {{"v", 1},
                                  {"m", b.method},
                                  {"n", b.name},
                                  {"a", b.arguments},
                                  {"p", b.principal},
                                  {"exp", NowMs() + std::chrono::milliseconds(lifetime_).count()},
                                  {"nonce", core::HexEncode(core::RandomBytes(16))}};
  const std::string body = core::Base64UrlEncode(payload.dump());
  return body + "." + core::Base64UrlEncode(Hmac(key_, body));
}

core::Status RequestStates::Redeem(const std::string& state, const StateBinding& b) {
  const auto dot = state.find('.');
  if (state.size() > 4096 || dot == std::string::npos) {
    return MakeError(ErrorCode::kRefused, "the requestState is not one labgate issued (malformed)");
  }
  const std::string body = state.substr(0, dot);
  auto mac = core::Base64UrlDecode(state.substr(dot + 1));
  const std::string expected = Hmac(key_, body);
  if (!mac || mac->size() != expected.size() || CRYPTO_memcmp(mac->data(), expected.data(), expected.size()) != 0) {
    return MakeError(ErrorCode::kRefused, "the requestState was not issued by this gateway or was altered");
  }
  auto text = core::Base64UrlDecode(body);
  if (!text) return MakeError(ErrorCode::kRefused, "the requestState is not one labgate issued (malformed)");
  const nlohmann::json p = core::ParseUntrustedJson(*text);
  if (!p.is_object()) return MakeError(ErrorCode::kRefused, "the requestState is not one labgate issued (malformed)");
  const auto exp = core::IntegerIn(p.value("exp", nlohmann::json()), 0, std::numeric_limits<std::int64_t>::max());
  if (!exp || *exp < NowMs()) {
    return MakeError(ErrorCode::kRefused, "the requestState has expired; ask the human again by repeating the call "
                                          "without it");
  }
  if (core::StringOr(p, "m") != b.method || core::StringOr(p, "n") != b.name) {
    return MakeError(ErrorCode::kRefused, "the requestState was issued for another tool (" + core::StringOr(p, "n") +
                                              "), not " + b.name);
  }
  if (core::StringOr(p, "a") != b.arguments) {
    return MakeError(ErrorCode::kRefused, "the requestState was issued for other arguments (another command, target "
                                          "or option) than this call carries");
  }
  if (core::StringOr(p, "p") != b.principal) {
    return MakeError(ErrorCode::kRefused, "the requestState was issued to another client (" + core::StringOr(p, "p") +
                                              ")");
  }
  const std::string nonce = core::StringOr(p, "nonce");
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::system_clock::now();
  for (auto it = used_.begin(); it != used_.end();) it = it->second < now ? used_.erase(it) : std::next(it);
  if (!used_.emplace(nonce, now + lifetime_).second) {
    return MakeError(ErrorCode::kRefused, "the requestState was already used: an answer counts once");
  }
  return core::Ok();
}

}  // namespace labgate::mcp
