#pragma once

#include <map>
#include <string>

namespace labgate::cli {

inline constexpr const char* kTagline =
    "act on your homelab's machines from an AI assistant or the shell, with guardrails";

/// One verb's help: the line `labgate help` lists and the text `labgate help VERB` prints. The
/// man page and shell completion are generated from these texts (help_formats.h), so a verb's
/// subcommands, options and their values are written down here and nowhere else.
struct VerbHelp {
  const char* summary;
  const char* usage;
};

/// Every verb, by name.
const std::map<std::string, VerbHelp>& Verbs();

}  // namespace labgate::cli
