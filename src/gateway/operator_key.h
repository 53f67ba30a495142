#pragma once

#include <string>

#include "core/result.h"

namespace labgate::gateway {

/// STATE_DIR/operator.key: the credential every call on an operator socket must present.
///
/// The socket alone is not enough: any process of the gateway's user could connect to it. The
/// key is a file only the gateway's user can read, inside the state directory that the local
/// sandbox hides, so a command labgate runs for an assistant cannot present it, while the
/// operator's own shell (same user, or a member of the gateway's group) can.
std::string OperatorKeyPath(const std::string& state_dir);

/// The request parameter that carries the key; the service takes it out before anything else
/// sees the parameters, so it never reaches a handler or an audit record.
inline constexpr const char* kOperatorKeyParam = "operatorKey";

/// Reads the key, creating it (32 random bytes as hex, mode 0600) when there is none yet. Two
/// gateways starting at once end up with the same key. Refuses a key that others can read or
/// that belongs to another user.
core::Result<std::string> EnsureOperatorKey(const std::string& state_dir);

/// The same for any such key file (`what` names it in errors: "HTTP token"): read it when it is
/// there and private, else create it.
core::Result<std::string> EnsureKeyFile(const std::string& path, const std::string& what);

/// Reads an existing key, for callers of the socket; the error says what to do.
core::Result<std::string> ReadOperatorKey(const std::string& state_dir);

/// Constant-time comparison of a presented key with the real one (false when either is empty).
bool OperatorKeyMatches(const std::string& presented, const std::string& key);

}  // namespace labgate::gateway
