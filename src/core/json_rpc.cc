#include "core/json_rpc.h"

#include "core/json_parse.h"

namespace labgate::core::jsonrpc {
namespace {

DecodeFailure Invalid(std::string message, Json id = nullptr) {
  return DecodeFailure{ErrorObject{kInvalidRequest, std::move(message), nullptr}, std::move(id), true};
}

}  // namespace

bool IsValidId(const Json& id) {
  return id.is_string() || id.is_number_integer() || id.is_number_unsigned();
}

DecodeOutcome Decode(std::string_view line) {
  std::string why;
  Json doc = ParseUntrustedJson(line, &why);
  if (doc.is_discarded()) {
    return DecodeFailure{ErrorObject{kParseError, "parse error: the line is " + why, nullptr}, nullptr, true};
  }
  if (doc.is_array()) {
    return Invalid("JSON-RPC batches are not supported; send one message per line");
  }
  if (!doc.is_object()) {
    return Invalid("a JSON-RPC message must be an object");
  }

  Json id = nullptr;
  const bool has_id = doc.contains("id");
  if (has_id && IsValidId(doc["id"])) id = doc["id"];

  auto version = doc.find("jsonrpc");
  if (version == doc.end() || *version != "2.0") {
    return Invalid(R"(missing or wrong "jsonrpc": it must be "2.0")", id);
  }

  Message msg;
  if (auto method = doc.find("method"); method != doc.end()) {
    if (!method->is_string()) return Invalid(R"("method" must be a string)", id);
    msg.method = method->get<std::string>();
    if (auto params = doc.find("params"); params != doc.end()) {
      if (!params->is_object() && !params->is_array()) {
        return Invalid(R"("params" must be an object or an array)", id);
      }
      msg.params = *params;
    }
    if (!has_id) {
      msg.kind = MessageKind::kNotification;
      return msg;
    }
    if (!IsValidId(doc["id"])) {
      return Invalid(R"("id" must be a string or an integer)");
    }
    msg.kind = MessageKind::kRequest;
    msg.id = id;
    return msg;
  }

  const bool has_result = doc.contains("result");
  const bool has_error = doc.contains("error");
  if (has_id && (has_result != has_error)) {
    msg.kind = MessageKind::kResponse;
    msg.id = doc["id"];
    if (has_result) {
      msg.result = doc["result"];
      return msg;
    }
    const Json& err = doc["error"];
    const auto code = err.is_object() && err.contains("code") ? IntegerIn(err["code"], INT32_MIN, INT32_MAX) : std::nullopt;
    if (!code) {
      return DecodeFailure{ErrorObject{kInvalidRequest, "malformed error response", nullptr}, nullptr, false};
    }
    ErrorObject eo;
    eo.code = static_cast<int>(*code);
    // A message that is not a string is still shown, as the JSON it is.
    auto message = err.find("message");
    eo.message = message == err.end() ? "" : message->is_string() ? message->get<std::string>() : message->dump();
    if (auto data = err.find("data"); data != err.end()) eo.data = *data;
    msg.error = std::move(eo);
    return msg;
  }
  return Invalid(R"(a message needs "method" (request or notification) or "result"/"error" (response))", id);
}

Json MakeRequest(const Json& id, std::string_view method, Json params) {
  Json msg = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) msg["params"] = std::move(params);
  return msg;
}

Json MakeNotification(std::string_view method, Json params) {
  Json msg = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) msg["params"] = std::move(params);
  return msg;
}

Json MakeResult(const Json& id, Json result) {
  return Json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

Json MakeError(const Json& id, int code, std::string_view message, Json data) {
  Json error = {{"code", code}, {"message", message}};
  if (!data.is_null()) error["data"] = std::move(data);
  return Json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

std::string Encode(const Json& message) {
  return message.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace labgate::core::jsonrpc
