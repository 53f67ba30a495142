#pragma once

#include <fstream>
#include <string>
#include <vector>

namespace labgate::testing {

/// The lines of tests/data/policy/NAME: '#' lines and blank lines skipped; on lines that start
/// with `NL:` every `\n` (backslash, n) becomes a newline.
inline std::vector<std::string> LoadPolicyCorpus(const std::string& name) {
  std::ifstream in(std::string(LABGATE_SOURCE_DIR) + "/tests/data/policy/" + name);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("NL:", 0) == 0) {
      line = line.substr(3);
      for (size_t at = line.find("\\n"); at != std::string::npos; at = line.find("\\n", at + 1)) {
        line.replace(at, 2, "\n");
      }
    }
    out.push_back(line);
  }
  return out;
}

}  // namespace labgate::testing
