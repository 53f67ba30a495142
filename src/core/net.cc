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

}  // namespace labgate::core
