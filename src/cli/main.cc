#include <csignal>
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  // A closed stdout must surface as a write error, not kill the gateway mid-audit.
  std::signal(SIGPIPE, SIG_IGN);
  return labgate::cli::Main(std::vector<std::string>(argv + 1, argv + argc));
}
