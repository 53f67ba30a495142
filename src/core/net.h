#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

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

/// Resolves `host`:`port` and connects a close-on-exec socket of `type` (SOCK_STREAM or
/// SOCK_DGRAM) to the first address that takes it; a TCP handshake may take `timeout` per
/// address. Returns the connected descriptor, blocking. Errors carry the bare reason
/// ("Connection refused"): kNotFound when the name does not resolve, kTimeout when the last
/// address did not answer in time, kUnavailable otherwise (refused, no route).
Result<int> ConnectSocket(const std::string& host, const std::string& port, int type,
                          std::chrono::milliseconds timeout);

/// An IPv4 network: address and prefix length, host bits cleared.
struct Ipv4Network {
  std::uint32_t address = 0;  // host byte order
  int prefix = 32;

  bool Contains(std::uint32_t ip) const;
};

/// "100.64.0.0/10" or "10.0.0.4" (a /32). nullopt for anything else, including IPv6.
std::optional<Ipv4Network> ParseIpv4Network(std::string_view text);

/// "127.0.0.1" -> host-order address; nullopt when not a dotted quad.
std::optional<std::uint32_t> ParseIpv4(std::string_view text);

/// Whether `ip` lies in any of `networks` (written as ParseIpv4Network accepts; others never match).
bool InAnyNetwork(std::uint32_t ip, const std::vector<std::string>& networks);

}  // namespace labgate::core
