#include "cli/args.h"

#include <cctype>
#include <set>

namespace labgate::cli {

bool TakesValue(const std::string& option) {
  static const std::set<std::string> kValued = {"--config", "--shell", "--timeout", "--cwd", "--fingerprint",
                                                "--node",   "--caps",  "--ttl",     "--state-dir", "--gateway",
                                                "--pattern", "--for",
                                                // audit tail / query
                                                "--lines", "--against", "--target", "--since", "--until", "--decision", "--actor",
                                                // screen / camera / location / node run
                                                "--record", "--fps", "--screen", "--output", "--facing", "--clip",
                                                "--quality", "--max-width", "--device", "--accuracy", "--max-age",
                                                "--device-config",
                                                // doctor
                                                "--capture",
                                                // hosts add
                                                "--address", "--port", "--user", "--identity-file", "--groups", "--tags",
                                                "--owner", "--purpose", "--role",
                                                // file
                                                "--offset", "--length", "--from", "--mode", "--expect",
                                                "--max-entries",
                                                // hosts export
                                                "--format",
                                                // hosts import
                                                "--match"};
  return kValued.count(option) > 0;
}

core::Result<Args> ParseArgs(const std::vector<std::string>& argv) {
  static const std::map<std::string, std::string> kShort = {{"-h", "--help"},   {"-c", "--config"}, {"-V", "--version"},
                                                            {"-n", "--lines"}, {"-f", "--follow"},
                                                            {"-o", "--output"}};
  Args args;
  std::size_t i = 0;
  for (; i < argv.size(); ++i) {
    std::string word = argv[i];
    if (word == "--") {
      ++i;
      break;
    }
    if (auto s = kShort.find(word); s != kShort.end()) word = s->second;
    if (word.size() > 2 && word.rfind("--", 0) == 0) {
      std::string value;
      bool inline_value = false;
      if (auto eq = word.find('='); eq != std::string::npos) {
        value = word.substr(eq + 1);
        word = word.substr(0, eq);
        inline_value = true;
      }
      if (TakesValue(word) && !inline_value) {
        if (i + 1 >= argv.size()) {
          return core::MakeError(core::ErrorCode::kInvalidArgument, word + " needs a value");
        }
        value = argv[++i];
      }
      args.options[word] = value;
      continue;
    }
    if (word.size() > 1 && word[0] == '-' && !std::isdigit(static_cast<unsigned char>(word[1]))) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "unknown option " + word + " (see `labgate help`)");
    }
    if (args.verb.empty()) {
      args.verb = word;
    } else if (args.verb == "run" && args.positional.size() == 1) {
      break;
    } else {
      args.positional.push_back(word);
    }
  }
  for (; i < argv.size(); ++i) args.rest.push_back(argv[i]);
  return args;
}

core::Result<std::int64_t> ParseDurationMs(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string unit = text.substr(digits);
  if (digits == 0 || digits > 12) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "bad duration '" + text + "': use e.g. 500ms, 30s or 5m");
  }
  std::int64_t value = std::stoll(text.substr(0, digits));
  if (unit.empty() || unit == "ms") return value;
  if (unit == "s") return value * 1000;
  if (unit == "m") return value * 60 * 1000;
  if (unit == "h") return value * 3600 * 1000;
  return core::MakeError(core::ErrorCode::kInvalidArgument, "bad duration '" + text + "': use e.g. 500ms, 30s or 5m");
}

}  // namespace labgate::cli
