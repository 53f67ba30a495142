#include "core/cancel.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace labgate::core {

CancelToken::CancelToken() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) {
    std::perror("labgate: eventfd for a cancel token");
    std::abort();
  }
}

CancelToken::~CancelToken() { ::close(fd_); }

void CancelToken::Cancel() {
  if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
  std::uint64_t one = 1;
  // A full counter is impossible here: it is written once.
  [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
}

bool CancelToken::WaitFor(std::chrono::milliseconds timeout) const {
  if (cancelled()) return true;
  pollfd p{fd_, POLLIN, 0};
  ::poll(&p, 1, static_cast<int>(timeout.count()));
  return cancelled();
}

}  // namespace labgate::core
