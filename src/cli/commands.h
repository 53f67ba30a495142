#pragma once

#include <string>
#include <vector>

namespace labgate::cli {

/// Runs the `labgate` command line and returns the process exit code.
int Main(const std::vector<std::string>& argv);

}  // namespace labgate::cli
