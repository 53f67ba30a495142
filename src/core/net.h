#pragma once

#include <chrono>

namespace labgate::core {

/// How a long-lived TCP connection notices a vanished peer.
struct KeepaliveSettings {
  std::chrono::seconds idle{30};
  std::chrono::seconds interval{10};
  int count = 3;
  std::chrono::milliseconds user_timeout{60000};  // TCP_USER_TIMEOUT: unacknowledged data
  bool nodelay = false;                           // TCP_NODELAY: small messages go out at once
};

/// Applies `settings` to a connected TCP socket; failures are ignored (the defaults still work).
void TuneTcpSocket(int fd, const KeepaliveSettings& settings);

}  // namespace labgate::core
