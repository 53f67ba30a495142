#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

/// JSON-RPC 2.0 codec shared by MCP (stdio) and the node agent channel. Pure functions over values.
namespace labgate::core::jsonrpc {

using Json = nlohmann::json;

inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;

/// The error member of a response.
struct ErrorObject {
  int code = kInternalError;
  std::string message;
  Json data;  // null when absent
};

enum class MessageKind { kRequest, kNotification, kResponse };

/// One decoded, well-formed message.
struct Message {
  MessageKind kind = MessageKind::kNotification;
  Json id;                           // requests and responses: a string or an integer
  std::string method;                // requests and notifications
  Json params;                       // null when absent, else an object or array
  Json result;                       // successful responses
  std::optional<ErrorObject> error;  // error responses
};

/// Why a line could not be decoded, with the id to answer with (null when unknown) and
/// whether an answer is owed at all (a broken notification gets none).
struct DecodeFailure {
  ErrorObject error;
  Json id;
  bool answer = true;
};

using DecodeOutcome = std::variant<Message, DecodeFailure>;

/// Decodes one framed line. Never throws.
DecodeOutcome Decode(std::string_view line);

/// True when `id` is a valid request id (a string or an integer, never null, bool or fraction).
bool IsValidId(const Json& id);

Json MakeRequest(const Json& id, std::string_view method, Json params);
Json MakeNotification(std::string_view method, Json params);
Json MakeResult(const Json& id, Json result);
Json MakeError(const Json& id, int code, std::string_view message, Json data = nullptr);

/// Serialises a message as one line without the trailing newline. Invalid UTF-8 is replaced
/// with U+FFFD so encoding never fails.
std::string Encode(const Json& message);

}  // namespace labgate::core::jsonrpc
