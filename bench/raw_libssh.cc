// Baseline for the benchmark: the fastest a libssh client can run `true` on an open session
// (one channel per command, nothing else). Prints the median and p90 in microseconds as JSON.
#include <libssh/libssh.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 7 && argc != 8) {
    std::fprintf(stderr, "usage: %s HOST PORT USER KEY KNOWN_HOSTS ITERATIONS [COMMAND]\n", argv[0]);
    return 2;
  }
  ssh_session s = ssh_new();
  unsigned int port = static_cast<unsigned int>(std::atoi(argv[2]));
  int one = 1;
  ssh_options_set(s, SSH_OPTIONS_HOST, argv[1]);
  ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  ssh_options_set(s, SSH_OPTIONS_USER, argv[3]);
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, argv[5]);
  ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  ssh_options_set(s, SSH_OPTIONS_NODELAY, &one);
  if (ssh_connect(s) != SSH_OK || ssh_session_is_known_server(s) != SSH_KNOWN_HOSTS_OK) {
    std::fprintf(stderr, "connect/host key failed: %s\n", ssh_get_error(s));
    return 1;
  }
  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_file(argv[4], nullptr, nullptr, nullptr, &key) != SSH_OK ||
      ssh_userauth_publickey(s, nullptr, key) != SSH_AUTH_SUCCESS) {
    std::fprintf(stderr, "auth failed: %s\n", ssh_get_error(s));
    return 1;
  }
  const int n = std::atoi(argv[6]);
  const char* command = argc == 8 ? argv[7] : "true";
  std::vector<double> us;
  char buf[4096];
  for (int i = 0; i < n + 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    ssh_channel ch = ssh_channel_new(s);
    if (ssh_channel_open_session(ch) != SSH_OK || ssh_channel_request_exec(ch, command) != SSH_OK) return 1;
    while (ssh_channel_read(ch, buf, sizeof buf, 0) > 0) {
    }
    (void)ssh_channel_get_exit_status(ch);
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    auto t1 = std::chrono::steady_clock::now();
    if (i >= 5) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("{\"median_us\": %.0f, \"p90_us\": %.0f, \"n\": %d}\n", us[us.size() / 2], us[us.size() * 9 / 10], n);
  ssh_key_free(key);
  ssh_disconnect(s);
  ssh_free(s);
  return 0;
}
