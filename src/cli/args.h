#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace labgate::cli {

/// Parsed command line: the verb, its options and positional words. Pure.
struct Args {
  std::string verb;
  std::map<std::string, std::string> options;  // "--config" -> "x"; flags map to ""
  std::vector<std::string> positional;          // words before `--`
  std::vector<std::string> rest;                // words after `--` (or after the first command word for run)
  bool has(const std::string& option) const { return options.count(option) > 0; }
  std::string get(const std::string& option, const std::string& fallback = "") const {
    auto it = options.find(option);
    return it == options.end() ? fallback : it->second;
  }
};

/// Whether `option` (a long option, "--config") takes a value.
bool TakesValue(const std::string& option);

/// Splits argv. Options that take a value are listed in `valued`; every other `--x` is a flag.
/// For `run`, the first positional after the target starts the command (so `--` is optional).
core::Result<Args> ParseArgs(const std::vector<std::string>& argv);

/// "500", "500ms", "5s", "2m" -> milliseconds.
core::Result<std::int64_t> ParseDurationMs(const std::string& text);

}  // namespace labgate::cli
