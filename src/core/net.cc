#include "core/net.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace labgate::core {

void TuneTcpSocket(int fd, const KeepaliveSettings& s) {
  int on = 1;
  int idle = static_cast<int>(s.idle.count());
  int intvl = static_cast<int>(s.interval.count());
  int cnt = s.count;
  unsigned int user_timeout = static_cast<unsigned int>(s.user_timeout.count());
  if (s.nodelay) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
}

std::optional<std::uint32_t> ParseIpv4(std::string_view text) {
  std::uint32_t ip = 0;
  int parts = 0;
  std::size_t i = 0;
  while (parts < 4) {
    if (i >= text.size() || text[i] < '0' || text[i] > '9') return std::nullopt;
    unsigned value = 0;
    std::size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      value = value * 10 + static_cast<unsigned>(text[i] - '0');
      if (++digits > 3 || value > 255) return std::nullopt;
      ++i;
    }
    ip = (ip << 8) | value;
    if (++parts < 4) {
      if (i >= text.size() || text[i] != '.') return std::nullopt;
      ++i;
    }
  }
  if (i != text.size()) return std::nullopt;
  return ip;
}

std::optional<Ipv4Network> ParseIpv4Network(std::string_view text) {
  Ipv4Network net;
  std::string_view address = text;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    address = text.substr(0, slash);
    std::string_view bits = text.substr(slash + 1);
    if (bits.empty() || bits.size() > 2) return std::nullopt;
    int prefix = 0;
    for (char c : bits) {
      if (c < '0' || c > '9') return std::nullopt;
      prefix = prefix * 10 + (c - '0');
    }
    if (prefix > 32) return std::nullopt;
    net.prefix = prefix;
  }
  auto ip = ParseIpv4(address);
  if (!ip) return std::nullopt;
  const std::uint32_t mask = net.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - net.prefix);
  net.address = *ip & mask;
  return net;
}

bool Ipv4Network::Contains(std::uint32_t ip) const {
  const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return (ip & mask) == address;
}

bool InAnyNetwork(std::uint32_t ip, const std::vector<std::string>& networks) {
  for (const auto& text : networks) {
    if (auto net = ParseIpv4Network(text); net && net->Contains(ip)) return true;
  }
  return false;
}

}  // namespace labgate::core
