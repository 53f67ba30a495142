#include "core/text.h"

#include <array>
#include <cctype>
#include <cstdint>

namespace labgate::core {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
constexpr std::string_view kMask = "[REDACTED]";

// Length of the valid UTF-8 sequence starting at s[i], or 0 when invalid.
std::size_t ValidSequenceLength(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr std::array<std::uint32_t, 5> kMin = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

bool StartsWithNoCase(std::string_view s, std::size_t at, std::string_view prefix) {
  if (at + prefix.size() > s.size()) return false;
  for (std::size_t k = 0; k < prefix.size(); ++k) {
    if (std::tolower(static_cast<unsigned char>(s[at + k])) != prefix[k]) return false;
  }
  return true;
}

// Words whose assigned value is a secret (`NAME=value`, `NAME: value`, `--NAME value` is not
// covered: flags are too ambiguous to mask without hiding ordinary output).
constexpr std::array<std::string_view, 8> kSecretKeys = {
    "password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "access_key"};

}  // namespace

bool IsValidEnvName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::string ToValidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t len = ValidSequenceLength(bytes, i);
    if (len == 0) {
      out.append(kReplacement);
      ++i;
    } else {
      out.append(bytes.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::string ShellQuote(std::string_view word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789_-./=:,+@%") == std::string_view::npos) {
    return std::string(word);
  }
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& word : argv) {
    if (!out.empty()) out.push_back(' ');
    out += ShellQuote(word);
  }
  return out;
}

std::string Redact(std::string_view text) {
  static constexpr std::string_view kPemBegin = "-----BEGIN ";
  static constexpr std::string_view kPemEndMarker = "-----END ";
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    // PEM private key blocks: keep the armour lines, drop the body.
    if (text.compare(i, kPemBegin.size(), kPemBegin) == 0) {
      std::size_t line_end = text.find('\n', i);
      std::string_view header = text.substr(i, line_end == std::string_view::npos ? text.size() - i : line_end - i);
      if (header.find("PRIVATE KEY-----") != std::string_view::npos) {
        std::size_t end = text.find(kPemEndMarker, i + header.size());
        out.append(header);
        out.append("\n");
        out.append(kMask);
        if (end == std::string_view::npos) return out;
        out.append("\n");
        i = end;
        continue;
      }
    }
    const bool at_word_start = i == 0 || !IsWordChar(text[i - 1]);
    if (at_word_start) {
      std::size_t key_len = 0;
      if (StartsWithNoCase(text, i, "authorization:")) {
        key_len = std::string_view("authorization:").size();
      } else if (StartsWithNoCase(text, i, "bearer ")) {
        key_len = std::string_view("bearer ").size();
      } else {
        // A key ending in one of the secret words, e.g. DB_PASSWORD= or github_token:
        std::size_t end = i;
        while (end < text.size() && IsWordChar(text[end])) ++end;
        if (end < text.size() && (text[end] == '=' || text[end] == ':')) {
          std::string_view word = text.substr(i, end - i);
          for (auto secret : kSecretKeys) {
            if (word.size() >= secret.size() &&
                StartsWithNoCase(word, word.size() - secret.size(), secret)) {
              key_len = end - i + 1;
              break;
            }
          }
        }
      }
      if (key_len > 0) {
        const std::size_t key_start = i;
        out.append(text.substr(i, key_len));
        i += key_len;
        while (i < text.size() && text[i] == ' ') out.push_back(text[i++]);
        std::size_t value_end = i;
        while (value_end < text.size() && !std::isspace(static_cast<unsigned char>(text[value_end])) &&
               text[value_end] != '"' && text[value_end] != '\'' && text[value_end] != ',' &&
               text[value_end] != ';') {
          ++value_end;
        }
        if (value_end > i) {
          std::string_view value = text.substr(i, value_end - i);
          const bool header = StartsWithNoCase(text, key_start, "authorization:");
          if (header && value_end < text.size() && text[value_end] == ' ' &&
              (StartsWithNoCase(value, 0, "bearer") || StartsWithNoCase(value, 0, "basic") ||
               StartsWithNoCase(value, 0, "token") || StartsWithNoCase(value, 0, "digest"))) {
            // "Authorization: Basic x" keeps the scheme word and masks the credential after it.
            out.append(value);
            out.push_back(' ');
            i = value_end + 1;
            value_end = i;
            while (value_end < text.size() && !std::isspace(static_cast<unsigned char>(text[value_end])) &&
                   text[value_end] != '"' && text[value_end] != '\'') {
              ++value_end;
            }
          }
          out.append(kMask);
          i = value_end;
        }
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

}  // namespace labgate::core
