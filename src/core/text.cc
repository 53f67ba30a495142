#include "core/text.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <optional>

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

std::string Clip(std::string_view text, std::size_t max) {
  if (text.size() <= max) return std::string(text);
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
  return std::string(text.substr(0, cut)) + "\u2026(" + std::to_string(text.size()) + " bytes)";
}

std::string ShellQuote(std::string_view word, QuoteMode mode) {
  if (mode == QuoteMode::kIfNeeded && !word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
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

std::string_view Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool OneOf(std::string_view s, std::initializer_list<std::string_view> options) {
  return std::find(options.begin(), options.end(), s) != options.end();
}

std::string ErrnoText() { return std::strerror(errno); }

std::string Join(const std::vector<std::string>& items, std::string_view sep, std::string_view if_empty) {
  if (items.empty()) return std::string(if_empty);
  std::string out = items.front();
  for (std::size_t i = 1; i < items.size(); ++i) out.append(sep).append(items[i]);
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

namespace {

// Names whose assigned value is a secret: `NAME=value`, `NAME: value`, `"NAME": "value"`.
constexpr std::array<std::string_view, 10> kSecretKeys = {
    "password", "passwd", "passphrase", "secret", "token", "api_key", "api-key", "apikey", "access_key", "access-key"};
// Flags whose next word is a secret: `--password X`, `--auth-token X`.
constexpr std::array<std::string_view, 8> kSecretFlags = {"password", "passwd",  "passphrase", "token",
                                                          "secret",   "api-key", "api_key",    "apikey"};

struct TokenShape {
  std::string_view prefix;
  bool (*body)(char);
  std::size_t min_len;
  bool exact;  // exactly min_len body characters, then a word boundary
};

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsAlnumUnderscore(char c) { return IsAlnum(c) || c == '_'; }
bool IsAlnumDash(char c) { return IsAlnum(c) || c == '-'; }
bool IsUpperOrDigit(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsBase64Url(char c) { return IsAlnum(c) || c == '-' || c == '_'; }
// The characters of base64 (both alphabets) without '=' padding.
bool IsBase64(char c) { return IsBase64Url(c) || c == '+' || c == '/'; }

constexpr std::array<TokenShape, 20> kTokenShapes = {{
    {"github_pat_", IsAlnumUnderscore, 20, false},
    {"ghp_", IsAlnum, 20, false},
    {"gho_", IsAlnum, 20, false},
    {"ghs_", IsAlnum, 20, false},
    {"ghu_", IsAlnum, 20, false},
    {"ghr_", IsAlnum, 20, false},
    {"glpat-", IsBase64Url, 20, false},
    {"xoxa-", IsAlnumDash, 10, false},
    {"xoxb-", IsAlnumDash, 10, false},
    {"xoxp-", IsAlnumDash, 10, false},
    {"xoxo-", IsAlnumDash, 10, false},
    {"xoxs-", IsAlnumDash, 10, false},
    {"xoxr-", IsAlnumDash, 10, false},
    {"AKIA", IsUpperOrDigit, 16, true},
    {"ASIA", IsUpperOrDigit, 16, true},
    {"sk_live_", IsAlnum, 16, false},
    {"sk_test_", IsAlnum, 16, false},
    {"rk_live_", IsAlnum, 16, false},
    {"rk_test_", IsAlnum, 16, false},
    {"sk-", IsBase64Url, 20, false},
}};

constexpr std::size_t kMinEntropyRun = 24;
constexpr double kMinEntropyBits = 4.0;

bool EndsWithAnyNoCase(std::string_view word, const auto& suffixes) {
  for (std::string_view suffix : suffixes) {
    if (word.size() >= suffix.size() && StartsWithNoCase(word, word.size() - suffix.size(), suffix)) return true;
  }
  return false;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Appends the masked value that starts at `i` and returns where it ends. A quoted value keeps
// its quotes and runs to the closing one (or, unclosed, to the end of the line: what was
// scanned is consumed, which keeps the whole pass linear). A bare value ends at whitespace, a
// quote or one of `stops`.
std::size_t MaskValue(std::string_view text, std::size_t i, std::string_view stops, std::string& out) {
  if (i < text.size() && (text[i] == '"' || text[i] == '\'')) {
    const char quote = text[i];
    std::size_t end = i + 1;
    while (end < text.size() && text[end] != quote && text[end] != '\n') ++end;
    out.push_back(quote);
    out.append(kMask);
    if (end < text.size() && text[end] == quote) {
      out.push_back(quote);
      return end + 1;
    }
    return end;
  }
  std::size_t end = i;
  while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) && text[end] != '"' &&
         text[end] != '\'' && stops.find(text[end]) == std::string_view::npos) {
    ++end;
  }
  if (end > i) out.append(kMask);
  return end;
}

// PEM private key blocks: keep the armour lines, drop the body.
std::optional<std::size_t> MaskPrivateKey(std::string_view text, std::size_t i, std::string& out) {
  static constexpr std::string_view kPemBegin = "-----BEGIN ";
  static constexpr std::string_view kPemEnd = "-----END ";
  if (text.compare(i, kPemBegin.size(), kPemBegin) != 0) return std::nullopt;
  std::size_t line_end = text.find('\n', i);
  std::string_view header = text.substr(i, line_end == std::string_view::npos ? text.size() - i : line_end - i);
  if (header.find("PRIVATE KEY-----") == std::string_view::npos) return std::nullopt;
  std::size_t end = text.find(kPemEnd, i + header.size());
  out.append(header);
  out.append("\n");
  out.append(kMask);
  if (end == std::string_view::npos) return text.size();
  out.append("\n");
  return end;
}

// scheme://user:PASSWORD@host keeps everything but the password.
std::optional<std::size_t> MaskUrlPassword(std::string_view text, std::size_t i, std::string& out) {
  if (text.compare(i, 3, "://") != 0) return std::nullopt;
  const std::size_t start = i + 3;
  std::size_t colon = std::string_view::npos;
  std::size_t at = std::string_view::npos;
  for (std::size_t j = start; j < text.size(); ++j) {
    const char c = text[j];
    if (std::isspace(static_cast<unsigned char>(c)) || c == '/' || c == '?' || c == '#' || c == '"' || c == '\'' ||
        c == '<' || c == '>' || c == '`') {
      break;
    }
    if (c == '@') {
      at = j;  // the last '@' ends the user info, so a stray '@' in the password stays masked
    } else if (c == ':' && colon == std::string_view::npos && at == std::string_view::npos) {
      colon = j;
    }
  }
  if (at == std::string_view::npos || colon == std::string_view::npos || colon + 1 >= at) return std::nullopt;
  out.append(text.substr(i, colon + 1 - i));
  out.append(kMask);
  out.push_back('@');
  return at + 1;
}

// `Authorization: Basic x`, `Bearer x`, `DB_PASSWORD=x`, `token: x`, `"password": "x"`.
std::optional<std::size_t> MaskAssignment(std::string_view text, std::size_t i, std::string& out) {
  std::size_t key_len = 0;
  const bool header = StartsWithNoCase(text, i, "authorization:");
  if (header) {
    key_len = std::string_view("authorization:").size();
  } else if (StartsWithNoCase(text, i, "bearer ")) {
    key_len = std::string_view("bearer ").size();
  } else {
    // A key ending in one of the secret words, e.g. DB_PASSWORD= or github_token:
    std::size_t end = i;
    while (end < text.size() && IsWordChar(text[end])) ++end;
    if (end == i || !EndsWithAnyNoCase(text.substr(i, end - i), kSecretKeys)) return std::nullopt;
    std::size_t sep = end;
    if (sep < text.size() && (text[sep] == '"' || text[sep] == '\'')) ++sep;  // a JSON or YAML key's closing quote
    if (sep >= text.size() || (text[sep] != '=' && text[sep] != ':')) return std::nullopt;
    key_len = sep + 1 - i;
  }
  out.append(text.substr(i, key_len));
  i += key_len;
  while (i < text.size() && text[i] == ' ') out.push_back(text[i++]);
  if (header) {
    // "Authorization: Basic x" keeps the scheme word and masks the credential after it.
    std::size_t word_end = i;
    while (word_end < text.size() && std::isalpha(static_cast<unsigned char>(text[word_end]))) ++word_end;
    std::string_view scheme = text.substr(i, word_end - i);
    if (word_end < text.size() && text[word_end] == ' ' &&
        (StartsWithNoCase(scheme, 0, "bearer") || StartsWithNoCase(scheme, 0, "basic") ||
         StartsWithNoCase(scheme, 0, "token") || StartsWithNoCase(scheme, 0, "digest"))) {
      out.append(scheme);
      out.push_back(' ');
      return MaskValue(text, word_end + 1, "", out);
    }
  }
  return MaskValue(text, i, ",;", out);
}

// `--password X`, `--api-key X`, `--auth-token 'X'`; not `--no-password`, not `-p`.
std::optional<std::size_t> MaskFlagValue(std::string_view text, std::size_t i, std::string& out) {
  if (text.compare(i, 2, "--") != 0) return std::nullopt;
  std::size_t end = i + 2;
  while (end < text.size() && IsWordChar(text[end])) ++end;
  std::string_view flag = text.substr(i, end - i);
  if (StartsWithNoCase(flag, 0, "--no-") || !EndsWithAnyNoCase(flag, kSecretFlags)) return std::nullopt;
  std::size_t value = end;
  while (value < text.size() && IsBlank(text[value])) ++value;
  if (value == end || value >= text.size() || text[value] == '-' || text[value] == '\n' || text[value] == '\r') {
    return std::nullopt;
  }
  out.append(text.substr(i, value - i));
  // An unquoted ';' ends a shell command, so it cannot be part of the value there.
  return MaskValue(text, value, ";", out);
}

// Known token formats; the prefix stays so a reader knows what kind of secret was there.
std::optional<std::size_t> MaskTokenShape(std::string_view text, std::size_t i, std::string& out) {
  for (const TokenShape& shape : kTokenShapes) {
    if (text.compare(i, shape.prefix.size(), shape.prefix) != 0) continue;
    const std::size_t body = i + shape.prefix.size();
    std::size_t end = body;
    while (end < text.size() && shape.body(text[end])) ++end;
    const std::size_t len = end - body;
    const bool fits =
        shape.exact ? len == shape.min_len && (end == text.size() || !IsWordChar(text[end])) : len >= shape.min_len;
    if (!fits) continue;
    out.append(shape.prefix);
    out.append(kMask);
    return end;
  }
  // JWT: header.payload.signature, both JSON parts base64url of "{\"...".
  if (text.compare(i, 3, "eyJ") == 0) {
    std::size_t a = i;
    while (a < text.size() && IsBase64Url(text[a])) ++a;
    if (a - i < 10 || a >= text.size() || text[a] != '.' || text.compare(a + 1, 3, "eyJ") != 0) return std::nullopt;
    std::size_t b = a + 1;
    while (b < text.size() && IsBase64Url(text[b])) ++b;
    if (b - a - 1 < 10 || b >= text.size() || text[b] != '.') return std::nullopt;
    std::size_t c = b + 1;
    while (c < text.size() && IsBase64Url(text[c])) ++c;
    out.append(kMask);
    return c;
  }
  return std::nullopt;
}

// A run at `i` that is a digest or fingerprint (`SHA256:…`, `sha512-…`) or an SSH public key blob.
bool IsPublicDigestOrKey(std::string_view text, std::size_t i) {
  for (std::string_view label : {"sha1:", "sha256:", "sha384:", "sha512:", "md5:"}) {
    if (i >= label.size() && StartsWithNoCase(text, i - label.size(), label)) return true;
  }
  for (std::string_view prefix : {"sha256-", "sha384-", "sha512-"}) {
    if (StartsWithNoCase(text, i, prefix)) return true;
  }
  for (std::string_view blob : {"AAAAB3NzaC1", "AAAAC3NzaC1", "AAAAE2VjZHNh"}) {
    if (text.compare(i, blob.size(), blob) == 0) return true;
  }
  return false;
}

// Where the high-entropy runs are, as [begin, end) in text order (see Redactor in text.h).
std::vector<std::pair<std::size_t, std::size_t>> HighEntropySpans(std::string_view text) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  std::array<std::uint32_t, 256> counts{};
  std::vector<unsigned char> seen;
  seen.reserve(64);
  auto judge = [&](std::size_t begin, std::size_t end, std::size_t padded_end) {
    if (padded_end - begin < kMinEntropyRun) return;
    bool upper = false, lower = false, digit = false;
    for (std::size_t k = begin; k < end; ++k) {
      const auto c = static_cast<unsigned char>(text[k]);
      if (counts[c]++ == 0) seen.push_back(c);
      upper |= std::isupper(c) != 0;
      lower |= std::islower(c) != 0;
      digit |= std::isdigit(c) != 0;
    }
    double bits = 0;
    const double n = static_cast<double>(end - begin);
    for (unsigned char c : seen) {
      const double p = counts[c] / n;
      bits -= p * std::log2(p);
      counts[c] = 0;
    }
    seen.clear();
    if (upper && lower && digit && bits >= kMinEntropyBits) spans.emplace_back(begin, padded_end);
  };
  std::size_t i = 0;
  while (i < text.size()) {
    if (!IsBase64(text[i])) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && IsBase64(text[end])) ++end;
    std::size_t pad = end;
    while (pad < text.size() && text[pad] == '=') ++pad;
    // '=' followed by more run characters is an assignment, not padding.
    const std::size_t padded_end = pad > end && (pad == text.size() || !IsBase64(text[pad])) ? pad : end;
    if (IsPublicDigestOrKey(text, i)) {
      // Fingerprints, SRI digests and SSH public keys: public by nature, and people read them.
    } else if (text[i] == '/') {
      // A path: each part between slashes on its own.
      std::size_t part = i;
      while (part < end) {
        while (part < end && text[part] == '/') ++part;
        std::size_t part_end = part;
        while (part_end < end && text[part_end] != '/') ++part_end;
        if (part_end > part) judge(part, part_end, part_end == end ? padded_end : part_end);
        part = part_end;
      }
    } else {
      judge(i, end, padded_end);
    }
    i = end;
  }
  return spans;
}

// Every rule but the literal secrets, in one left-to-right pass.
std::string ApplyRules(std::string_view text) {
  const auto spans = HighEntropySpans(text);
  std::size_t next_span = 0;
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    std::optional<std::size_t> next = MaskPrivateKey(text, i, out);
    if (!next) next = MaskUrlPassword(text, i, out);
    if (!next && (i == 0 || !IsWordChar(text[i - 1]))) {
      next = MaskAssignment(text, i, out);
      if (!next) next = MaskFlagValue(text, i, out);
      if (!next) next = MaskTokenShape(text, i, out);
    }
    if (next) {
      i = *next;
      continue;
    }
    while (next_span < spans.size() && spans[next_span].first < i) ++next_span;
    if (next_span < spans.size() && spans[next_span].first == i) {
      out.append(kMask);
      i = spans[next_span].second;
      continue;
    }
    out.push_back(text[i++]);
  }
  return out;
}

}  // namespace

Redactor::Redactor(const std::vector<std::string>& literal_secrets) {
  for (const auto& value : literal_secrets) {
    if (value.size() < kMinLiteralSecret) continue;
    if (std::any_of(literals_.begin(), literals_.end(), [&](const Literal& l) { return l.value == value; })) continue;
    Literal literal{value, std::vector<std::size_t>(value.size(), 0)};
    for (std::size_t k = 1, len = 0; k < value.size();) {
      if (value[k] == value[len]) {
        literal.failure[k++] = ++len;
      } else if (len > 0) {
        len = literal.failure[len - 1];
      } else {
        literal.failure[k++] = 0;
      }
    }
    literals_.push_back(std::move(literal));
  }
}

std::string Redactor::MaskLiterals(std::string_view text) const {
  if (literals_.empty()) return std::string(text);
  // depth[k] > 0 while position k lies inside some occurrence of some secret.
  std::vector<int> delta(text.size() + 1, 0);
  bool any = false;
  for (const Literal& literal : literals_) {
    const std::string& v = literal.value;
    for (std::size_t k = 0, matched = 0; k < text.size(); ++k) {
      while (matched > 0 && text[k] != v[matched]) matched = literal.failure[matched - 1];
      if (text[k] == v[matched]) ++matched;
      if (matched == v.size()) {
        ++delta[k + 1 - v.size()];
        --delta[k + 1];
        any = true;
        matched = literal.failure[matched - 1];
      }
    }
  }
  if (!any) return std::string(text);
  std::string out;
  out.reserve(text.size());
  int depth = 0;
  for (std::size_t k = 0; k < text.size(); ++k) {
    const bool was_inside = depth > 0;
    depth += delta[k];
    if (depth > 0) {
      if (!was_inside) out.append(kMask);
    } else {
      out.push_back(text[k]);
    }
  }
  return out;
}

std::string Redactor::Redact(std::string_view text) const {
  if (literals_.empty()) return ApplyRules(text);
  return ApplyRules(MaskLiterals(text));
}

std::string Redact(std::string_view text) {
  static const Redactor kRules;
  return kRules.Redact(text);
}

}  // namespace labgate::core
