#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace labgate::core {

/// Returns `bytes` as valid UTF-8: each invalid sequence becomes U+FFFD.
std::string ToValidUtf8(std::string_view bytes);

/// True for a valid environment variable name: letters, digits and '_', not starting with a digit.
bool IsValidEnvName(std::string_view name);

/// Quotes one word for a POSIX shell so it reads back as exactly that word.
std::string ShellQuote(std::string_view word);

/// argv rendered for people and audit summaries: words joined by spaces, quoted where needed.
std::string JoinArgv(const std::vector<std::string>& argv);

/// Masks secrets in text meant for callers and logs: PEM private keys, `Authorization:`
/// headers, bearer tokens and `password=`/`token=`/`secret=`/`api_key=` style assignments.
/// Runs in linear time.
std::string Redact(std::string_view text);

}  // namespace labgate::core
