#include "inventory/ssh_config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

namespace labgate::inventory {
namespace {

constexpr int kMaxIncludeDepth = 16;  // as OpenSSH's readconf.c
// Depth alone allows a file that includes itself twice to be read 2^16 times.
constexpr int kMaxFilesRead = 256;

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Splits a config line into its keyword and arguments: the keyword ends at whitespace or `=`
// (`Port=22`, `Port = 22`, `Port 22`); arguments are separated by whitespace, and double quotes
// group one. kInvalidArgument for an unterminated quote.
core::Result<std::vector<std::string>> Words(const std::string& line) {
  auto space = [&](std::size_t at) { return std::isspace(static_cast<unsigned char>(line[at])) != 0; };
  std::size_t i = 0;
  while (i < line.size() && space(i)) ++i;
  std::string keyword;
  while (i < line.size() && !space(i) && line[i] != '=') keyword += line[i++];
  while (i < line.size() && space(i)) ++i;
  if (i < line.size() && line[i] == '=') ++i;
  std::vector<std::string> words = {keyword};
  while (true) {
    while (i < line.size() && space(i)) ++i;
    if (i >= line.size()) break;
    std::string word;
    if (line[i] == '"') {
      const std::size_t close = line.find('"', i + 1);
      if (close == std::string::npos) return core::MakeError(core::ErrorCode::kInvalidArgument, "unterminated quote");
      word = line.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      while (i < line.size() && !space(i)) word += line[i++];
    }
    words.push_back(std::move(word));
  }
  return words;
}

// One line that sets a value, with the block it sits in.
struct Setting {
  int block = -1;  // index into Blocks; -1 before the first Host line (applies to every host)
  std::string keyword;  // lower case
  std::string value;
};

struct Block {
  std::vector<std::string> patterns;  // empty for a Match block
  bool match = false;
  std::string source;
};

struct Reader {
  const SshConfigFiles& files;
  std::string home;
  std::vector<Block> blocks;
  std::vector<Setting> settings;
  std::vector<std::string> notes;
  int current = -1;
  int files_read = 0;

  std::string Resolve(const std::string& name) const {
    std::string path = name;
    if (path.rfind("~/", 0) == 0) path = home + path.substr(1);
    if (!path.empty() && path[0] != '/') path = home + "/.ssh/" + path;
    return path;
  }

  core::Status Read(const std::string& path, int depth) {
    if (++files_read > kMaxFilesRead) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             path + ": more than " + std::to_string(kMaxFilesRead) + " files read through Include");
    }
    auto text = files.read(path);
    if (!text) return text.error();
    std::size_t start = 0;
    int line_no = 0;
    while (start <= text->size()) {
      std::size_t end = text->find('\n', start);
      if (end == std::string::npos) end = text->size();
      std::string line = text->substr(start, end - start);
      start = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const std::string where = path + ":" + std::to_string(line_no);
      auto first = line.find_first_not_of(" \t");
      if (first == std::string::npos || line[first] == '#') {
        if (end == text->size()) break;
        continue;
      }
      auto words = Words(line);
      if (!words) return core::MakeError(core::ErrorCode::kInvalidArgument, where + ": " + words.error().message);
      const std::string keyword = Lower((*words)[0]);
      std::vector<std::string> args(words->begin() + 1, words->end());
      if (keyword == "host") {
        if (args.empty()) return core::MakeError(core::ErrorCode::kInvalidArgument, where + ": Host needs a pattern");
        blocks.push_back(Block{args, false, where});
        current = static_cast<int>(blocks.size()) - 1;
      } else if (keyword == "match") {
        blocks.push_back(Block{{}, true, where});
        current = static_cast<int>(blocks.size()) - 1;
        notes.push_back(where + ": Match block skipped: labgate does not evaluate Match conditions, so its settings "
                                "are not applied to any host");
      } else if (keyword == "include") {
        if (current >= 0 && blocks[static_cast<std::size_t>(current)].match) continue;  // inside a skipped Match
        if (depth >= kMaxIncludeDepth) {
          return core::MakeError(core::ErrorCode::kInvalidArgument,
                                 where + ": Include nested more than " + std::to_string(kMaxIncludeDepth) + " deep");
        }
        // An included file's Host lines do not reach back into this file (as in ssh).
        const int including_block = current;
        for (const auto& name : args) {
          auto matches = files.glob(Resolve(name));
          if (matches.empty()) notes.push_back(where + ": Include " + name + " matches no file");
          for (const auto& included : matches) {
            if (auto ok = Read(included, depth + 1); !ok) {
              if (ok.error().code == core::ErrorCode::kNotFound) {
                notes.push_back(where + ": Include " + included + " could not be read: " + ok.error().message);
                continue;
              }
              return ok;
            }
            current = including_block;
          }
        }
      } else if (!args.empty()) {
        settings.push_back(Setting{current, keyword, args[0]});
      }
      if (end == text->size()) break;
    }
    return core::Ok();
  }
};

bool Concrete(const std::string& pattern) {
  return pattern.find_first_of("*?!") == std::string::npos;
}

bool BlockApplies(const Block& block, const std::string& alias) {
  if (block.match) return false;
  bool positive = false;
  for (const auto& pattern : block.patterns) {
    if (!pattern.empty() && pattern[0] == '!') {
      if (SshPatternMatches(pattern.substr(1), alias)) return false;
    } else if (SshPatternMatches(pattern, alias)) {
      positive = true;
    }
  }
  return positive;
}

std::string ExpandHostToken(const std::string& value, const std::string& alias) {
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 1 < value.size() && value[i + 1] == 'h') {
      out += alias;
      ++i;
    } else if (value[i] == '%' && i + 1 < value.size() && value[i + 1] == '%') {
      out += '%';
      ++i;
    } else {
      out += value[i];
    }
  }
  return out;
}

}  // namespace

bool SshPatternMatches(const std::string& pattern, const std::string& name) {
  // Iterative glob with backtracking over the last `*`; case-insensitive, as ssh matches hosts.
  std::size_t p = 0, n = 0, star = std::string::npos, resume = 0;
  auto same = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  };
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || (pattern[p] != '*' && same(pattern[p], name[n])))) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

core::Result<SshConfig> ReadSshConfig(const std::string& path, const SshConfigFiles& files, const std::string& home) {
  Reader reader{files, home, {}, {}, {}, -1, 0};
  if (auto ok = reader.Read(path, 0); !ok) return ok.error();
  SshConfig out;
  out.notes = std::move(reader.notes);
  std::map<std::string, bool> seen;
  for (std::size_t b = 0; b < reader.blocks.size(); ++b) {
    const Block& block = reader.blocks[b];
    for (const auto& alias : block.patterns) {
      if (!Concrete(alias) || seen[Lower(alias)]) continue;
      seen[Lower(alias)] = true;
      SshConfigHost host;
      host.alias = alias;
      host.source = block.source;
      std::map<std::string, std::string> values;  // first value wins
      for (const auto& setting : reader.settings) {
        if (setting.block >= 0 && !BlockApplies(reader.blocks[static_cast<std::size_t>(setting.block)], alias)) continue;
        values.emplace(setting.keyword, setting.value);
      }
      host.hostname = values.count("hostname") ? ExpandHostToken(values["hostname"], alias) : alias;
      if (values.count("port")) {
        int port = 0;
        const std::string& text = values["port"];
        auto parsed = std::from_chars(text.data(), text.data() + text.size(), port);
        if (parsed.ec != std::errc() || parsed.ptr != text.data() + text.size() || port < 1 || port > 65535) {
          out.notes.push_back(block.source + ": " + alias + ": Port '" + text + "' is not a port; left out");
        } else {
          host.port = port;
        }
      }
      if (values.count("user")) host.user = values["user"];
      if (values.count("identityfile") && Lower(values["identityfile"]) != "none") {
        host.identity_file = values["identityfile"];
      }
      if (values.count("proxyjump") && Lower(values["proxyjump"]) != "none") host.proxy_jump = values["proxyjump"];
      if (values.count("proxycommand") && Lower(values["proxycommand"]) != "none") {
        out.notes.push_back(block.source + ": " + alias +
                            ": ProxyCommand is not imported (labgate runs no local command to connect); use "
                            "proxy_jump");
      }
      out.hosts.push_back(std::move(host));
    }
  }
  return out;
}

}  // namespace labgate::inventory
