#include "inventory/edit.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "core/files.h"

namespace labgate::inventory {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::MakeError;

// One logical line of the file: a blank line, a comment, a table header or a key = value (which
// spans several physical lines when its value is a multi-line array or string).
enum class ItemKind { kBlank, kComment, kHeader, kKeyValue };

struct Item {
  ItemKind kind = ItemKind::kBlank;
  std::size_t begin = 0;  // first byte of its first line
  std::size_t end = 0;    // one past the line break of its last line (or the end of the text)
  int line = 0;           // 1-based line of `begin`
  int last_line = 0;
  std::vector<std::string> path;  // header or key path, unquoted
  bool array_table = false;       // [[...]]
  std::size_t value_begin = 0;    // key = value: the value's bytes, without the comment after it
  std::size_t value_end = 0;
};

// Splits TOML text into Items, tracking strings and brackets so that a `[` or `#` inside a value
// is never taken for a header or a comment. Only run on text toml++ has accepted.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : t_(text) {}

  core::Result<std::vector<Item>> Scan() {
    std::vector<Item> items;
    if (t_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // a UTF-8 byte order mark stays where it is
    while (pos_ < t_.size()) {
      Item item;
      item.begin = pos_;
      item.line = line_;
      SkipSpaces();
      bool ok = true;
      if (AtLineEnd()) {
        item.kind = ItemKind::kBlank;
      } else if (Peek() == '#') {
        item.kind = ItemKind::kComment;
        SkipToLineEnd();
      } else if (Peek() == '[') {
        item.kind = ItemKind::kHeader;
        ++pos_;
        if (Peek() == '[') {
          item.array_table = true;
          ++pos_;
        }
        ok = KeyPath(item.path) && Expect(']') && (!item.array_table || Expect(']')) && RestOfLine();
      } else {
        item.kind = ItemKind::kKeyValue;
        ok = KeyPath(item.path) && Expect('=');
        if (ok) {
          SkipSpaces();
          item.value_begin = pos_;
          ok = Value(item.value_end) && RestOfLine();
        }
      }
      if (!ok) {
        return MakeError(ErrorCode::kParse,
                         "cannot edit line " + std::to_string(line_) +
                             ": its syntax is more than this editor understands; edit the file by hand");
      }
      item.last_line = line_;
      ConsumeLineEnd();
      item.end = pos_;
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  char Peek(std::size_t k = 0) const { return pos_ + k < t_.size() ? t_[pos_ + k] : '\0'; }
  bool AtLineEnd() const { return pos_ >= t_.size() || t_[pos_] == '\n' || (t_[pos_] == '\r' && Peek(1) == '\n'); }
  void SkipSpaces() {
    while (Peek() == ' ' || Peek() == '\t') ++pos_;
  }
  void SkipToLineEnd() {
    while (!AtLineEnd()) ++pos_;
  }
  void ConsumeLineEnd() {
    if (pos_ >= t_.size()) return;
    if (t_[pos_] == '\r') ++pos_;
    if (pos_ < t_.size() && t_[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
  }
  bool Expect(char c) {
    SkipSpaces();
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  bool RestOfLine() {
    SkipSpaces();
    if (Peek() == '#') SkipToLineEnd();
    return AtLineEnd();
  }
  // A single-line quoted key or string starting at pos_ (at the quote); decodes simple escapes.
  bool Quoted(std::string* out) {
    const char quote = t_[pos_++];
    while (pos_ < t_.size() && t_[pos_] != quote) {
      if (t_[pos_] == '\n') return false;
      if (quote == '"' && t_[pos_] == '\\') {
        if (pos_ + 1 >= t_.size()) return false;
        const char e = t_[pos_ + 1];
        if (out) *out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        pos_ += 2;
        continue;
      }
      if (out) *out += t_[pos_];
      ++pos_;
    }
    if (pos_ >= t_.size()) return false;
    ++pos_;
    return true;
  }
  bool KeyPath(std::vector<std::string>& path) {
    while (true) {
      SkipSpaces();
      std::string part;
      if (Peek() == '"' || Peek() == '\'') {
        if (!Quoted(&part)) return false;
      } else {
        const std::size_t start = pos_;
        while (std::isalnum(static_cast<unsigned char>(Peek())) || Peek() == '_' || Peek() == '-') ++pos_;
        if (pos_ == start) return false;
        part = std::string(t_.substr(start, pos_ - start));
      }
      path.push_back(std::move(part));
      SkipSpaces();
      if (Peek() != '.') return true;
      ++pos_;
    }
  }
  // A multi-line string: pos_ at its opening triple quote.
  bool MultiLineString() {
    const char quote = Peek();
    pos_ += 3;
    while (pos_ < t_.size()) {
      const char c = t_[pos_];
      if (quote == '"' && c == '\\') {
        if (Peek(1) == '\n') ++line_;
        pos_ += 2;
        continue;
      }
      if (c == quote && Peek(1) == quote && Peek(2) == quote) {
        std::size_t n = 0;
        while (Peek(n) == quote && n < 5) ++n;  // up to two quotes may sit against the closing three
        pos_ += n;
        return true;
      }
      if (c == '\n') ++line_;
      ++pos_;
    }
    return false;
  }
  // The value of key = value; sets `end` to one past its last non-blank byte.
  bool Value(std::size_t& end) {
    int depth = 0;
    end = pos_;
    const std::size_t start = pos_;
    while (pos_ < t_.size()) {
      const char c = t_[pos_];
      if (AtLineEnd()) {
        if (depth == 0) break;
        ConsumeLineEnd();
        continue;
      }
      if (c == '#') {
        if (depth == 0) break;
        SkipToLineEnd();
        continue;
      }
      if (c == '"' || c == '\'') {
        if (Peek(1) == c && Peek(2) == c) {
          if (!MultiLineString()) return false;
        } else if (!Quoted(nullptr)) {
          return false;
        }
        end = pos_;
        continue;
      }
      if (c == '[' || c == '{') ++depth;
      if (c == ']' || c == '}') --depth;
      ++pos_;
      if (c != ' ' && c != '\t') end = pos_;
    }
    return depth == 0 && end > start;
  }

  std::string_view t_;
  std::size_t pos_ = 0;
  int line_ = 1;
};

// One [[hosts]] or [[nodes]] entry: item indexes into Doc::items.
struct Entry {
  std::string list;  // "hosts" or "nodes"
  std::string id;
  std::size_t header = 0;   // its [[list]] header
  std::size_t own_end = 0;  // one past its own keys: the first header after it
  std::size_t first = 0;    // first item it owns (comments attached above the header)
  std::size_t last = 0;     // one past the last item it owns
};

// The text, split into items, with the entries found in it.
struct Doc {
  std::string_view text;
  std::vector<Item> items;
  std::vector<Entry> entries;
  std::string eol = "\n";  // the file's own line break, for lines we write

  const Entry* Find(std::string_view id) const {
    for (const auto& e : entries) {
      if (!id.empty() && e.id == id) return &e;
    }
    return nullptr;
  }
  const Item& at(std::size_t i) const { return items[i]; }
  // Start of the run of comment lines directly above item i (i itself when there is none).
  std::size_t AttachedStart(std::size_t i) const {
    while (i > 0 && items[i - 1].kind == ItemKind::kComment) --i;
    return i;
  }
  std::size_t NextHeader(std::size_t after) const {
    for (std::size_t i = after + 1; i < items.size(); ++i) {
      if (items[i].kind == ItemKind::kHeader) return i;
    }
    return items.size();
  }
};

bool IsMemberHeader(const Item& item, const std::string& list) {
  return item.kind == ItemKind::kHeader && item.path.size() > 1 && item.path[0] == list;
}

core::Result<Doc> Analyze(std::string_view text) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return MakeError(ErrorCode::kParse, "the inventory is not valid TOML (line " +
                                            std::to_string(e.source().begin.line) + ": " +
                                            std::string(e.description()) + "); fix it by hand first");
  }
  Scanner scanner(text);
  auto items = scanner.Scan();
  if (!items) return items.error();
  Doc doc;
  doc.text = text;
  doc.items = std::move(*items);
  if (auto nl = text.find('\n'); nl != std::string_view::npos && nl > 0 && text[nl - 1] == '\r') doc.eol = "\r\n";

  for (const char* list : {"hosts", "nodes"}) {
    const toml::array* tables = root[list].as_array();
    std::size_t index = 0;
    for (std::size_t h = 0; h < doc.items.size(); ++h) {
      const Item& item = doc.items[h];
      if (item.kind != ItemKind::kHeader || !item.array_table || item.path != std::vector<std::string>{list}) continue;
      Entry e;
      e.list = list;
      e.header = h;
      if (tables && index < tables->size()) {
        if (const toml::table* t = (*tables)[index].as_table()) e.id = (*t)["id"].value_or(std::string());
      }
      ++index;
      e.own_end = doc.NextHeader(h);
      std::size_t next = e.own_end;
      while (next < doc.items.size() && IsMemberHeader(doc.items[next], list)) next = doc.NextHeader(next);
      std::size_t core_last = h;
      for (std::size_t i = h + 1; i < next; ++i) {
        if (doc.items[i].kind == ItemKind::kKeyValue || doc.items[i].kind == ItemKind::kHeader) core_last = i;
      }
      // Comments right after the last key are the entry's, unless they run straight into the next header.
      const std::size_t next_attached = next < doc.items.size() ? doc.AttachedStart(next) : doc.items.size();
      std::size_t last = core_last + 1;
      while (last < next_attached && doc.items[last].kind == ItemKind::kComment) ++last;
      e.first = doc.AttachedStart(h);
      e.last = last;
      doc.entries.push_back(std::move(e));
    }
  }
  return doc;
}

core::Error NoSuchEntry(std::string_view id) {
  if (id == "local") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "'local' is the built-in target for this machine, not an entry; switch it off with "
                     "`enabled = false` under [local]");
  }
  return MakeError(ErrorCode::kNotFound,
                   "no [[hosts]] or [[nodes]] entry has id '" + std::string(id) + "' (see `labgate targets`)");
}

bool EndsWithNewline(std::string_view text) { return !text.empty() && text.back() == '\n'; }

// Keeps the original's "ends with a line break or not" for edits that touched the last line.
std::string KeepTrailingNewline(std::string_view original, std::string result, const std::string& eol) {
  if (original.empty() || result.empty()) return result;
  if (EndsWithNewline(original) && !EndsWithNewline(result)) {
    result += eol;
  } else if (!EndsWithNewline(original) && EndsWithNewline(result)) {
    result.pop_back();
    if (!result.empty() && result.back() == '\r') result.pop_back();
  }
  return result;
}

bool IsBareKey(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string TomlArray(const std::vector<std::string>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + TomlString(values[i]);
  return out + "]";
}

std::string Trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

constexpr std::string_view kArrayKeys[] = {"groups", "tags", "capabilities", "allow", "deny"};
constexpr std::string_view kIntegerKeys[] = {"port"};

core::Result<std::string> SetOne(std::string_view text, std::string_view id, const std::string& key,
                                 const std::string& value) {
  if (key == "id") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the id cannot be changed in place; remove the entry and add it again under the new id");
  }
  if (key == "password" || key == "passphrase") {
    return MakeError(ErrorCode::kInvalidArgument, "secrets never go in hosts.toml; set " + key +
                                                      "_env (an environment variable) or " + key +
                                                      "_file (a file only you can read) instead");
  }
  if (!IsBareKey(key)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "'" + key +
                         "' is not a key of the entry's own table (letters, digits, '_' and '-'); "
                         "subtables such as [hosts.screen] are edited by hand");
  }
  auto doc = Analyze(text);
  if (!doc) return doc.error();
  const Entry* e = doc->Find(id);
  if (!e) return NoSuchEntry(id);
  std::optional<std::size_t> found;
  std::size_t last_key = e->header;
  for (std::size_t i = e->header + 1; i < e->own_end; ++i) {
    const Item& item = doc->at(i);
    if (item.kind != ItemKind::kKeyValue) continue;
    last_key = i;
    if (item.path == std::vector<std::string>{key}) found = i;
  }
  std::string out;
  if (value.empty()) {
    if (!found) {
      return MakeError(ErrorCode::kNotFound, "'" + std::string(id) + "' has no key '" + key + "'; nothing to remove");
    }
    const Item& item = doc->at(*found);
    out = std::string(text.substr(0, item.begin)) + std::string(text.substr(item.end));
    return KeepTrailingNewline(text, std::move(out), doc->eol);
  }
  auto rendered = TomlValueFor(key, value);
  if (!rendered) return rendered.error();
  if (found) {
    const Item& item = doc->at(*found);
    return std::string(text.substr(0, item.value_begin)) + *rendered + std::string(text.substr(item.value_end));
  }
  // A new key goes after the entry's last key, indented like its id line.
  const Item& after = doc->at(last_key);
  std::string_view first_line = text.substr(after.begin);
  std::string indent(first_line.substr(0, first_line.find_first_not_of(" \t")));
  std::string line = indent + key + " = " + *rendered;
  if (after.end == text.size() && !EndsWithNewline(text)) {
    return std::string(text) + doc->eol + line;
  }
  return std::string(text.substr(0, after.end)) + line + doc->eol + std::string(text.substr(after.end));
}

// An exclusive flock on `path`, waiting at most `wait`; closing the descriptor releases it.
core::Result<int> LockFor(const std::string& path, const std::string& edited, std::chrono::milliseconds wait) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError(ErrorCode::kIo, "cannot open lock file " + path + ": " + std::strerror(errno));
  const auto until = std::chrono::steady_clock::now() + wait;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK || std::chrono::steady_clock::now() >= until) {
      ::close(fd);
      if (err != EWOULDBLOCK) return MakeError(ErrorCode::kIo, "cannot lock " + path + ": " + std::strerror(err));
      return MakeError(ErrorCode::kTimeout, "another edit of " + edited + " has held " + path + " for more than " +
                                                (wait.count() % 1000 == 0 ? std::to_string(wait.count() / 1000) + " s"
                                                                          : std::to_string(wait.count()) + " ms") +
                                                "; try again, and if it persists look for a stuck "
                                                "`labgate hosts` process");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fd;
}

core::Status WriteAll(int fd, const std::string& text, const std::string& name) {
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError(ErrorCode::kIo, "cannot write " + name + ": " + std::strerror(errno));
    off += static_cast<std::size_t>(n);
  }
  return core::Ok();
}

// Writes `text` to a fresh temp file beside `target` with its mode and owner, then renames it over.
core::Status ReplaceFile(const std::string& target, const std::string& text, const struct stat& original) {
  const fs::path dir = fs::path(target).parent_path();
  std::string tmp = (dir / ("." + fs::path(target).filename().string() + ".XXXXXX")).string();
  int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    return MakeError(ErrorCode::kIo, "cannot create a temp file in " + dir.string() + ": " + std::strerror(errno));
  auto fail = [&](core::Error error) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return error;
  };
  if (::fchmod(fd, original.st_mode & 07777) != 0) {
    return fail(MakeError(ErrorCode::kIo, "cannot set the mode of " + tmp + ": " + std::strerror(errno)));
  }
  // Best effort: keeps the owner when root edits someone's file; an ordinary user already owns it.
  if (::fchown(fd, original.st_uid, original.st_gid) != 0) {
    // Not allowed to give it away: the file keeps our owner, which is its owner's anyway.
  }
  if (auto ok = WriteAll(fd, text, tmp); !ok) return fail(ok.error());
  if (::fsync(fd) != 0) return fail(MakeError(ErrorCode::kIo, "cannot sync " + tmp + ": " + std::strerror(errno)));
  ::close(fd);
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return MakeError(ErrorCode::kIo, "cannot replace " + target + ": " + std::strerror(err));
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return core::Ok();
}

}  // namespace

std::string TomlString(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          (void)std::snprintf(buf, sizeof buf, "\\u%04X", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

core::Result<std::string> TomlValueFor(std::string_view key, std::string_view value) {
  if (std::find(std::begin(kIntegerKeys), std::end(kIntegerKeys), key) != std::end(kIntegerKeys)) {
    const std::string v = Trim(value);
    const bool digits = !v.empty() && v.size() <= 18 && std::all_of(v.begin(), v.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
    // Not a number: written as a string, so validation names the file, line and key.
    return digits ? std::to_string(std::stoll(v)) : TomlString(value);
  }
  if (std::find(std::begin(kArrayKeys), std::end(kArrayKeys), key) == std::end(kArrayKeys)) return TomlString(value);
  const std::string v = Trim(value);
  std::vector<std::string> items;
  if (!v.empty() && v.front() == '[') {
    try {
      toml::table t = toml::parse("v = " + v);
      const toml::array* array = t["v"].as_array();
      if (!array) throw std::runtime_error("not an array");
      for (const auto& node : *array) {
        if (!node.is_string()) {
          return MakeError(ErrorCode::kInvalidArgument, std::string(key) + " takes strings: write " + std::string(key) +
                                                            "=a,b or " + std::string(key) + "='[\"a\", \"b\"]'");
        }
        items.push_back(*node.value<std::string>());
      }
    } catch (const std::exception&) {
      return MakeError(ErrorCode::kInvalidArgument, "'" + v + "' is not a TOML array of strings; write " +
                                                        std::string(key) + "=a,b or " + std::string(key) +
                                                        "='[\"a\", \"b\"]'");
    }
    return TomlArray(items);
  }
  std::size_t start = 0;
  while (start <= v.size()) {
    std::size_t comma = v.find(',', start);
    if (comma == std::string::npos) comma = v.size();
    if (std::string item = Trim(std::string_view(v).substr(start, comma - start)); !item.empty()) items.push_back(item);
    start = comma + 1;
  }
  return TomlArray(items);
}

core::Result<EntryLocation> LocateEntry(std::string_view text, std::string_view id) {
  auto doc = Analyze(text);
  if (!doc) return doc.error();
  const Entry* e = doc->Find(id);
  if (!e) return NoSuchEntry(id);
  return EntryLocation{e->list, doc->at(e->header).line, doc->at(e->first).line, doc->at(e->last - 1).last_line};
}

core::Result<std::string> AddHost(std::string_view text, const HostEntry& entry) {
  if (entry.id.empty()) return MakeError(ErrorCode::kInvalidArgument, "a host needs an id");
  if (entry.id == "local") {
    return MakeError(ErrorCode::kInvalidArgument, "'local' is the built-in target for this machine; pick another id");
  }
  auto doc = Analyze(text);
  if (!doc) return doc.error();
  if (const Entry* e = doc->Find(entry.id)) {
    return MakeError(ErrorCode::kInvalidArgument, "id '" + entry.id + "' is already used by the [[" + e->list +
                                                      "]] entry on line " + std::to_string(doc->at(e->header).line) +
                                                      "; pick another id, or change that entry with "
                                                      "`labgate hosts set " +
                                                      entry.id + " KEY=VALUE`");
  }
  const std::string& eol = doc->eol;
  std::string block;
  if (!entry.comment.empty()) {
    std::string comment = entry.comment;
    for (char& c : comment) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    }
    block += "# " + comment + eol;
  }
  block += "[[hosts]]" + eol;
  auto add = [&](const char* key, const std::string& rendered) { block += std::string(key) + " = " + rendered + eol; };
  auto add_string = [&](const char* key, const std::string& v) {
    if (!v.empty()) add(key, TomlString(v));
  };
  auto add_array = [&](const char* key, const std::vector<std::string>& v) {
    if (!v.empty()) add(key, TomlArray(v));
  };
  add_string("id", entry.id);
  add_string("address", entry.address);
  if (entry.port) add("port", std::to_string(*entry.port));
  add_string("user", entry.user);
  add_string("identity_file", entry.identity_file);
  add_string("proxy_jump", entry.proxy_jump);
  add_array("groups", entry.groups);
  add_array("tags", entry.tags);
  add_string("device", entry.device);
  add_string("owner", entry.owner);
  add_string("purpose", entry.purpose);
  add_string("role", entry.role);
  add_array("capabilities", entry.capabilities);

  // After the last [[hosts]] entry, or at the end; one blank line on each side.
  std::size_t at_item = doc->items.size();
  for (const auto& e : doc->entries) {
    if (e.list == "hosts") at_item = e.last;
  }
  const std::size_t at = at_item < doc->items.size() ? doc->at(at_item).begin : text.size();
  std::string before(text.substr(0, at));
  const std::string after(text.substr(at));
  if (!before.empty()) {
    if (!EndsWithNewline(before)) before += eol;
    const bool blank_before = at_item > 0 && doc->at(at_item - 1).kind == ItemKind::kBlank;
    if (!blank_before) before += eol;
  }
  if (!after.empty() && doc->at(at_item).kind != ItemKind::kBlank) block += eol;
  return KeepTrailingNewline(text, before + block + after, eol);
}

core::Result<std::string> RemoveEntry(std::string_view text, std::string_view id) {
  auto doc = Analyze(text);
  if (!doc) return doc.error();
  const Entry* e = doc->Find(id);
  if (!e) return NoSuchEntry(id);
  const auto& items = doc->items;
  std::size_t first = e->first;
  std::size_t last = e->last;
  const bool blank_before = first > 0 && items[first - 1].kind == ItemKind::kBlank;
  const bool blank_after = last < items.size() && items[last].kind == ItemKind::kBlank;
  // Drop one separating blank line so the neighbours stay one blank line apart.
  if (blank_after && (blank_before || first == 0)) {
    ++last;
  } else if (blank_before && last == items.size()) {
    --first;
  }
  const std::size_t begin = items[first].begin;
  const std::size_t end = last < items.size() ? items[last].begin : text.size();
  return KeepTrailingNewline(text, std::string(text.substr(0, begin)) + std::string(text.substr(end)), doc->eol);
}

core::Result<std::string> SetKeys(std::string_view text, std::string_view id,
                                  const std::vector<std::pair<std::string, std::string>>& assignments) {
  if (assignments.empty()) return MakeError(ErrorCode::kInvalidArgument, "nothing to set: give KEY=VALUE");
  std::string current(text);
  for (const auto& [key, value] : assignments) {
    auto next = SetOne(current, id, key, value);
    if (!next) return next.error();
    current = std::move(*next);
  }
  return current;
}

core::Status EditInventoryFile(const std::string& path,
                               const std::function<core::Result<std::string>(const std::string&)>& edit,
                               const std::function<core::Status(const std::string& new_text)>& validate,
                               std::chrono::milliseconds lock_wait) {
  std::error_code ec;
  // Edit what a symlink points to: renaming over the link would replace it with a plain file.
  const std::string target = fs::canonical(path, ec).string();
  if (ec) return MakeError(ErrorCode::kNotFound, "cannot edit " + path + ": " + ec.message());
  auto lock = LockFor(target + ".lock", path, lock_wait);
  if (!lock) return lock.error();
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{*lock};

  struct stat st {};
  if (::stat(target.c_str(), &st) != 0)
    return MakeError(ErrorCode::kIo, "cannot stat " + path + ": " + std::strerror(errno));
  auto text = core::ReadFile(target);
  if (!text) return text.error();
  auto edited = edit(*text);
  if (!edited) return MakeError(edited.error().code, edited.error().message + "; " + path + " was left unchanged");
  if (auto ok = validate(*edited); !ok) {
    return MakeError(ok.error().code,
                     "refused: " + ok.error().message + "\n" + path +
                         " was left unchanged (line numbers above are those the edited file would have)");
  }
  if (*edited == *text) return core::Ok();
  return ReplaceFile(target, *edited, st);
}

}  // namespace labgate::inventory
