#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace labgate::core {

/// Returns `bytes` as valid UTF-8: each invalid sequence becomes U+FFFD.
std::string ToValidUtf8(std::string_view bytes);

/// True for a valid environment variable name: letters, digits and '_', not starting with a digit.
bool IsValidEnvName(std::string_view name);

/// How ShellQuote treats a word made only of characters that need no quoting.
enum class QuoteMode {
  kIfNeeded,  // leave it bare: `df`, `-h`, `/var/log`
  kAlways,    // quote it anyway: a command's first word, so `if` or `a=b` is never a keyword or an assignment
};

/// Quotes one word for a POSIX shell (dash, bash, zsh, ksh) so it reads back as exactly that word.
/// The one function that builds shell text from data: every string labgate sends to a shell
/// goes through it.
std::string ShellQuote(std::string_view word, QuoteMode mode = QuoteMode::kIfNeeded);

/// `text` when it is at most `max` bytes, else its first `max` bytes (not splitting a UTF-8
/// character) and "…(N bytes)": for echoing what a caller sent into messages and audit records.
std::string Clip(std::string_view text, std::size_t max = 256);

/// The last path component ("sh" for "/bin/sh"); the whole text when it has no '/'.
std::string_view Basename(std::string_view path);

/// True when `s` equals one of `options`.
bool OneOf(std::string_view s, std::initializer_list<std::string_view> options);

/// strerror(errno) as a string, for messages that say why a system call failed.
std::string ErrnoText();

/// `items` separated by `sep`; `if_empty` when there are none.
std::string Join(const std::vector<std::string>& items, std::string_view sep, std::string_view if_empty = "");

/// argv rendered for people and audit summaries: words joined by spaces, quoted where needed.
std::string JoinArgv(const std::vector<std::string>& argv);

/// Masks secrets in text meant for callers and logs, in time linear in the text (times the number
/// of literal secrets). Each secret becomes "[REDACTED]"; what is around it stays readable.
///
///  - literal values given to the constructor (e.g. of the `*_env` variables hosts.toml names),
///    wherever they appear; values shorter than kMinLiteralSecret are ignored (too likely to be
///    ordinary words);
///  - PEM private key bodies (the BEGIN/END lines stay);
///  - `Authorization:` credentials (the scheme word stays), `Bearer X`;
///  - values assigned to names ending in password, passwd, passphrase, secret, token, api_key,
///    api-key, apikey, access_key: `DB_PASSWORD=x`, `github_token: x`, `"password": "x"`,
///    `--password=x`;
///  - the value after the flags `--password`, `--passwd`, `--passphrase`, `--token`, `--secret`,
///    `--api-key` (and longer flags ending in those, like `--auth-token`); `-p` is too ambiguous
///    to mask;
///  - the password in URLs: `scheme://user:PASSWORD@host`;
///  - well-known token shapes, keeping their prefix: GitHub `ghp_`/`gho_`/`ghs_`/`ghu_`/`ghr_`
///    and `github_pat_`, GitLab `glpat-`, Slack `xoxa-`/`xoxb-`/`xoxp-`/`xoxo-`/`xoxs-`/`xoxr-`,
///    AWS key ids `AKIA`/`ASIA` + 16 of [A-Z0-9], `sk-`, `sk_live_`/`sk_test_`/`rk_live_`/`rk_test_`;
///    JWTs (`eyJ….eyJ….signature`) are masked whole;
///  - high-entropy strings: a run of at least 24 characters of [A-Za-z0-9+/_-] (plus trailing `=`
///    padding) that has an uppercase letter, a lowercase letter and a digit, and a Shannon
///    entropy of at least 4.0 bits per character. `=` inside a run splits it (`NAME=value` judges
///    the value alone), and a run that starts with `/` is a path, judged one `/`-separated part at
///    a time. Runs after `SHA256:` (or sha1/sha384/sha512/md5), SRI digests (`sha512-…`) and
///    SSH public key blobs (`AAAAC3NzaC1…`) are public and stay. So hex digests (no uppercase),
///    UUIDs, words, absolute paths, fingerprints and base64 of repetitive text stay readable; the
///    price is that a base64 secret starting with `/` is judged in parts, and long mixed-case
///    identifiers with digits (`ThisIsAVeryLongIdentifier2`) may be masked.
///
/// Thread-safe: const after construction.
class Redactor {
 public:
  static constexpr std::size_t kMinLiteralSecret = 6;

  Redactor() = default;
  explicit Redactor(const std::vector<std::string>& literal_secrets);

  std::string Redact(std::string_view text) const;

 private:
  struct Literal {
    std::string value;
    std::vector<std::size_t> failure;  // Knuth-Morris-Pratt table: linear search, no backtracking
  };
  std::string MaskLiterals(std::string_view text) const;

  std::vector<Literal> literals_;
};

/// Redactor without literal secrets: every rule above but the first.
std::string Redact(std::string_view text);

}  // namespace labgate::core
