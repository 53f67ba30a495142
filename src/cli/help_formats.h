#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cli/verbs.h"

/// The verbs' help texts in the forms a packaged command needs: a man page and shell completion.
/// Everything here is pure; the texts are the only source, so a new option is documented,
/// listed in the man page and completed by writing it once in verbs.cc.
namespace labgate::cli {

/// labgate(1) in roff: name, synopsis, description, one section per verb with its help text
/// verbatim, environment and files. Text is escaped so no help line can become a roff request.
std::string ManPage(const std::map<std::string, VerbHelp>& verbs, std::string_view version);

/// What a shell may offer for the word being completed. `words` are the words after `labgate`,
/// the last being the one under the cursor (maybe empty). `targets` is called only when a
/// target is expected, and returns ids, group:NAME and tag:NAME of the inventory in force.
/// Returns the candidates that start with the current word; none means "complete file names".
std::vector<std::string> CompleteWords(const std::map<std::string, VerbHelp>& verbs,
                                       const std::vector<std::string>& words,
                                       const std::function<std::vector<std::string>()>& targets);

/// The scripts `labgate completion bash|zsh` print; both ask `labgate completion words`.
std::string_view BashCompletionScript();
std::string_view ZshCompletionScript();

}  // namespace labgate::cli
