#include "policy/classify.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <optional>
#include <utility>

#include "core/text.h"
#include "policy/glob.h"

// How the built-in table judges, where it chooses (see also command_parse.cc):
//
// - Each simple command is judged on its own; the line's class is the highest, and the first
//   command with that class names the rule. A wrapper (`nice`, `env`, `timeout`, `sh -c`,
//   `ssh HOST CMD`, ...) is itself read-only because the command it wraps is listed and judged
//   separately; privilege wrappers (`sudo`, `su`, `doas`, `chroot`, ...) are privileged.
// - Operator rules are matched first; the first matching rule gives the program's class: a
//   `read-only` rule sets exactly that, any other rule sets at least its class (a built-in
//   verdict that is higher still wins). Rules never lower what is not about the program: a
//   dynamic command stays destructive, a writing redirection still raises, `curl | sh` still
//   counts, and an incomplete parse stays at least destructive.
// - Writing redirections (and the destinations of cp, mv, tee, sed -i, ...) into /etc, /boot,
//   /bin, /sbin, /lib*, /usr (not /usr/local) or block devices are destructive; into /etc/sudoers*, the account
//   files (/etc/passwd, shadow, group, gshadow) or any authorized_keys they are privileged;
//   anywhere else (but /dev/null, /dev/std*, /dev/fd/*) they make a read-only command
//   mutating. Relative paths are not resolved (the working directory is unknown).
// - `awk` is read-only unless its program calls system(), pipes (`|`, not `||`), redirects
//   inside print/printf, or comes from a file (-f) or edits in place (-i): regex alternation
//   like /a|b/ is counted as a pipe, erring toward mutating. `sed` is read-only without -i/-f
//   and when its script has no w/W/e commands and no w/e flags on `s`.
// - A shell without -c reads its commands from a file (mutating, like any unknown program) or
//   from its input (destructive: labgate cannot see what it runs).
// - `curl|sh`: a downloader (curl, wget, fetch, nc, ncat) whose output reaches, later in the
//   same pipeline, a shell, an interpreter, a privilege wrapper or a dynamic command; or a shell
//   or interpreter whose words or redirections hold a substitution that mentions a downloader.

namespace labgate::policy {
namespace {

using core::Basename;
using core::OneOf;
using Words = std::vector<std::string>;

struct Verdict {
  Risk risk = Risk::kReadOnly;
  std::string rule;
  std::string reason;
};

Verdict Builtin(Risk risk, std::string_view short_form, std::string reason) {
  return Verdict{risk, "builtin:" + std::string(short_form), std::move(reason)};
}

void Raise(Verdict& v, Verdict other) {
  if (other.risk > v.risk) v = std::move(other);
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string Quoted(std::string_view text) {
  constexpr size_t kMax = 60;
  return "`" + (text.size() <= kMax ? std::string(text) : std::string(text.substr(0, kMax)) + "...") + "`";
}

// ---------------------------------------------------------------------------------------------
// Arguments, GNU style: options may appear anywhere before `--`.

struct Args {
  std::vector<std::string_view> operands;
  std::vector<std::string_view> longs;                           // option names as written before any `=`: "--force"
  std::vector<std::pair<std::string, std::string_view>> values;  // "-o" / "--output" -> value
  std::string shorts;                                            // every letter of every short cluster

  bool Short(char c) const { return shorts.find(c) != std::string::npos; }
  bool AnyShort(std::string_view letters) const { return shorts.find_first_of(letters) != std::string::npos; }
  bool Long(std::string_view name) const { return std::find(longs.begin(), longs.end(), name) != longs.end(); }
  // GNU getopt accepts unambiguous prefixes: `--rec` for `--recursive`.
  bool LongPrefix(std::string_view name, size_t min_size) const {
    return std::any_of(longs.begin(), longs.end(), [&](std::string_view l) {
      return l.size() >= min_size && l.size() <= name.size() && name.substr(0, l.size()) == l;
    });
  }
  bool LongStartingWith(std::string_view prefix) const {
    return std::any_of(longs.begin(), longs.end(), [&](std::string_view l) { return StartsWith(l, prefix); });
  }
  const std::string_view* Value(std::string_view a, std::string_view b = {}) const {
    for (const auto& v : values) {
      if (v.first == a || (!b.empty() && v.first == b)) return &v.second;
    }
    return nullptr;
  }
  std::string_view Operand(size_t i) const { return i < operands.size() ? operands[i] : std::string_view(); }
};

// `short_values`: letters taking a value (attached or the next word); `long_values`: long
// options taking the next word as value. `permute` false stops at the first operand.
Args ParseArgs(const Words& w, std::string_view short_values = "",
               std::initializer_list<std::string_view> long_values = {}, size_t from = 1, bool permute = true) {
  Args a;
  bool options_done = false;
  for (size_t i = from; i < w.size(); ++i) {
    std::string_view arg = w[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      a.operands.push_back(arg);
      if (!permute) options_done = true;
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg[1] == '-') {
      const size_t eq = arg.find('=');
      const std::string_view name = arg.substr(0, eq);
      a.longs.push_back(name);
      if (eq != std::string_view::npos) {
        a.values.emplace_back(std::string(name), arg.substr(eq + 1));
      } else if (OneOf(name, long_values) && i + 1 < w.size()) {
        a.values.emplace_back(std::string(name), w[++i]);
      }
      continue;
    }
    for (size_t k = 1; k < arg.size(); ++k) {
      a.shorts += arg[k];
      if (short_values.find(arg[k]) == std::string_view::npos) continue;
      std::string_view value;
      if (k + 1 < arg.size()) {
        value = arg.substr(k + 1);
      } else if (i + 1 < w.size()) {
        value = w[++i];
      }
      a.values.emplace_back(std::string("-") + arg[k], value);
      break;
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Paths.

std::string NormalizePath(std::string_view p) {
  if (p.empty() || p[0] != '/') return std::string(p);
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/') ++i;
    const size_t j = std::min(p.find('/', i), p.size());
    const std::string_view part = p.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j;
  }
  std::string out;
  for (std::string_view part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

bool Under(std::string_view path, std::string_view dir) {
  return path == dir || (StartsWith(path, dir) && path.size() > dir.size() && path[dir.size()] == '/');
}

// Places where writing is harmless: the null device, the process's own streams.
bool HarmlessTarget(std::string_view target) {
  const std::string n = NormalizePath(target);
  return OneOf(n, {"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty"}) || Under(n, "/dev/fd") ||
         Under(n, "/proc/self/fd");
}

bool IsDevicePath(std::string_view n) {
  for (std::string_view prefix :
       {"/dev/sd", "/dev/hd", "/dev/vd", "/dev/xvd", "/dev/nvme", "/dev/mmcblk", "/dev/disk/", "/dev/mapper/",
        "/dev/md", "/dev/dm-", "/dev/loop", "/dev/zd", "/dev/zvol/", "/dev/sr"}) {
    if (StartsWith(n, prefix)) return true;
  }
  return OneOf(n, {"/dev/mem", "/dev/kmem", "/dev/port"});
}

// The verdict for changing (writing, moving onto, deleting, chmod-ing) `path`, when it is a
// system place; nullopt for ordinary paths.
std::optional<Verdict> SystemWrite(std::string_view path) {
  const std::string n = NormalizePath(path);
  const std::string_view base = Basename(n);
  if (base == "authorized_keys" || base == "authorized_keys2") {
    return Builtin(Risk::kPrivileged, "write authorized_keys",
                   "changing " + Quoted(path) + " decides who can log in over SSH");
  }
  if (OneOf(base, {".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc", ".zshenv",
                   ".zprofile", ".zlogin", ".kshrc", ".mkshrc", ".xprofile", ".xsession", ".xinitrc", ".pam_environment",
                   ".gitconfig", ".npmrc", ".pypirc", ".curlrc", ".wgetrc"}) ||
      path.find(".config/autostart") != std::string_view::npos ||
      path.find(".config/systemd") != std::string_view::npos ||
      path.find(".config/environment.d") != std::string_view::npos || path.find(".ssh/") != std::string_view::npos) {
    return Builtin(Risk::kDestructive, "write start-up file",
                   "changing " + Quoted(path) + " makes programs run other commands later, where labgate cannot see");
  }
  if (n.empty() || n[0] != '/') return std::nullopt;
  if (StartsWith(n, "/etc/sudoers")) {
    return Builtin(Risk::kPrivileged, "write /etc/sudoers", "changing " + Quoted(path) + " changes who may use sudo");
  }
  for (std::string_view accounts : {"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"}) {
    if (StartsWith(n, accounts) && (n.size() == accounts.size() || n[accounts.size()] == '-')) {
      return Builtin(Risk::kPrivileged, "write accounts", "changing " + Quoted(path) + " changes user accounts");
    }
  }
  if (Under(n, "/etc")) {
    return Builtin(Risk::kDestructive, "write /etc", "changing " + Quoted(path) + " changes system configuration");
  }
  if (Under(n, "/proc") && !Under(n, "/proc/self/fd")) {
    return Builtin(Risk::kDestructive, "write /proc",
                   "writing " + Quoted(path) + " changes the running kernel (e.g. sysrq-trigger reboots at once)");
  }
  if (Under(n, "/sys")) {
    return Builtin(Risk::kDestructive, "write /sys", "writing " + Quoted(path) + " changes devices or power state");
  }
  if (Under(n, "/boot")) {
    return Builtin(Risk::kDestructive, "write /boot", "changing " + Quoted(path) + " can leave the machine unbootable");
  }
  if (IsDevicePath(n)) {
    return Builtin(Risk::kDestructive, "write device",
                   "writing to " + Quoted(path) + " overwrites a disk or memory device directly");
  }
  for (std::string_view dir : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/usr"}) {
    if (Under(n, dir) && !Under(n, "/usr/local")) {  // /usr/local is the administrator's own
      return Builtin(Risk::kDestructive, "write system",
                     "changing " + Quoted(path) + " changes installed system files");
    }
  }
  return std::nullopt;
}

// The highest SystemWrite verdict among `paths`.
std::optional<Verdict> SystemWrites(const std::vector<std::string_view>& paths) {
  std::optional<Verdict> worst;
  for (std::string_view p : paths) {
    std::optional<Verdict> v = SystemWrite(p);
    if (v && (!worst || v->risk > worst->risk)) worst = std::move(v);
  }
  return worst;
}

// `/`, `/*` or one component below it (`/etc`, `/home`).
bool IsTopLevel(std::string_view path) {
  const std::string n = NormalizePath(path);
  return !n.empty() && n[0] == '/' && n.find('/', 1) == std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Program families.

bool IsShell(std::string_view prog) {
  return OneOf(prog, {"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "rbash", "fish"});
}

bool IsInterpreter(std::string_view prog) {
  return StartsWith(prog, "python") || StartsWith(prog, "perl") || StartsWith(prog, "ruby") ||
         StartsWith(prog, "php") || StartsWith(prog, "lua") ||
         OneOf(prog, {"node", "nodejs", "deno", "bun", "tclsh", "Rscript", "osascript"});
}

bool IsDownloader(std::string_view prog) { return OneOf(prog, {"curl", "wget", "fetch", "nc", "ncat"}); }

bool IsPrivilegeWrapper(std::string_view prog) {
  return OneOf(prog, {"sudo", "sudo-rs", "doas", "su", "pkexec", "runuser", "gosu", "su-exec", "run0", "pfexec",
                      "setuidgid", "s6-setuidgid", "chpst"});
}

// The program name as the classifier sees it: the basename of words[0].
std::string_view Program(const SimpleCommand& c) { return c.words.empty() ? "" : Basename(c.words[0]); }

// A word holding a substitution that mentions a downloader: `$(curl ...)`, `<(wget ...)`.
bool SubstitutionDownloads(std::string_view word) {
  if (word.find("$(") == std::string_view::npos && word.find('`') == std::string_view::npos &&
      word.find("<(") == std::string_view::npos) {
    return false;
  }
  size_t i = 0;
  while (i < word.size()) {
    while (i < word.size() && !(std::isalnum(static_cast<unsigned char>(word[i])) || word[i] == '_')) ++i;
    size_t j = i;
    while (j < word.size() && (std::isalnum(static_cast<unsigned char>(word[j])) || word[j] == '_')) ++j;
    if (j > i && IsDownloader(word.substr(i, j - i))) return true;
    i = j;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Script checks for sed and awk.

// What a sed script can do beyond printing.
enum class SedEffect { kPrints, kWrites, kRuns };

SedEffect SedScriptEffect(std::string_view s) {
  SedEffect effect = SedEffect::kPrints;
  size_t i = 0;
  auto skip_delimited = [&](char delim) {  // past the next unescaped `delim`
    while (i < s.size() && s[i] != delim) {
      if (s[i] == '\\') ++i;
      ++i;
    }
    ++i;
  };
  auto skip_line = [&] {
    while (i < s.size() && s[i] != '\n') ++i;
  };
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c)) || c == ';' || c == '{' || c == '}' || c == '!' || c == ',' ||
        c == '~' || c == '+' || c == '$' || std::isdigit(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '/') {  // address /regex/ with optional I or M
      ++i;
      skip_delimited('/');
      continue;
    }
    if (c == '\\' && i + 1 < s.size()) {  // address \cREGEXc
      const char delim = s[i + 1];
      i += 2;
      skip_delimited(delim);
      continue;
    }
    ++i;
    switch (c) {
      case 's': {
        if (i >= s.size()) return SedEffect::kRuns;
        const char delim = s[i++];
        skip_delimited(delim);
        skip_delimited(delim);
        while (i < s.size() && s[i] != ';' && s[i] != '\n' && s[i] != '}') {
          if (s[i] == 'e') return SedEffect::kRuns;
          if (s[i] == 'w' || s[i] == 'W') effect = SedEffect::kWrites;
          ++i;
        }
        break;
      }
      case 'y': {
        if (i >= s.size()) return SedEffect::kRuns;
        const char delim = s[i++];
        skip_delimited(delim);
        skip_delimited(delim);
        break;
      }
      case 'w':
      case 'W':
        effect = SedEffect::kWrites;
        skip_line();
        break;
      case 'e':
        return SedEffect::kRuns;
      case 'a':
      case 'i':
      case 'c':
      case 'r':
      case 'R':
      case '#':
        skip_line();
        break;
      case ':':
      case 'b':
      case 't':
      case 'T':
      case 'v':
        while (i < s.size() && s[i] != ';' && s[i] != '\n') ++i;
        break;
      case 'I':
      case 'M':
      case '=':
      case 'd':
      case 'D':
      case 'g':
      case 'G':
      case 'h':
      case 'H':
      case 'n':
      case 'N':
      case 'p':
      case 'P':
      case 'x':
      case 'z':
      case 'F':
      case 'q':
      case 'Q':
      case 'l':
      case 'L':
        break;
      default:
        return SedEffect::kRuns;  // unknown: assume the worst
    }
  }
  return effect;
}

// Whether an awk program can run commands: system(), or a pipe to or from a command.
bool AwkProgramRuns(std::string_view p) {
  if (p.find("system") != std::string_view::npos) return true;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '|' && !(i + 1 < p.size() && p[i + 1] == '|') && !(i > 0 && p[i - 1] == '|')) return true;
  }
  return false;
}

bool AwkProgramIsSafe(std::string_view p) {
  if (p.find("system") != std::string_view::npos) return false;
  bool in_print = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '"') {  // string literals may hold `>` and `|` harmlessly
      for (++i; i < p.size() && p[i] != '"'; ++i) {
        if (p[i] == '\\') ++i;
      }
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      size_t j = i;
      while (j < p.size() && (std::isalnum(static_cast<unsigned char>(p[j])) || p[j] == '_')) ++j;
      const std::string_view word = p.substr(i, j - i);
      if (word == "print" || word == "printf") in_print = true;
      i = j - 1;
      continue;
    }
    if (c == ';' || c == '\n' || c == '}' || c == '{') in_print = false;
    if (c == '>' && in_print) return false;
    if (c == '|') {
      if (i + 1 < p.size() && p[i + 1] == '|') {
        ++i;
        continue;
      }
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The built-in table.

/// Subcommands of one program by class, each list `|`-separated (see InList); a verb may be two
/// words ("system prune"). Verbs in neither list get the caller's fallback class.
struct Verbs {
  std::string_view read_only;
  std::string_view destructive;
};

// Whether `name` is one of the `|`-separated names in `list`.
bool InList(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    const size_t bar = std::min(list.find('|'), list.size());
    if (list.substr(0, bar) == name) return true;
    list.remove_prefix(std::min(bar + 1, list.size()));
  }
  return false;
}

const char* RiskSentence(Risk risk) {
  switch (risk) {
    case Risk::kReadOnly:
      return "only reads state";
    case Risk::kMutating:
      return "changes state";
    case Risk::kDestructive:
      return "can stop services, delete data or cut access";
    case Risk::kPrivileged:
      return "acts with elevated privileges";
  }
  return "";
}

// Looks the first operands up in `verbs` (two-word verbs first). `label` names the program in
// the rule ("docker", "apt").
Verdict ByVerb(std::string_view label, const std::vector<std::string_view>& ops, Verbs verbs, Risk fallback,
               Risk no_verb) {
  if (ops.empty()) {
    return Builtin(no_verb, label, Quoted(label) + " without a subcommand " + RiskSentence(no_verb));
  }
  auto judge = [&](std::string_view verb) -> std::optional<Verdict> {
    std::optional<Risk> risk;
    if (InList(verbs.read_only, verb)) risk = Risk::kReadOnly;
    if (InList(verbs.destructive, verb)) risk = Risk::kDestructive;
    if (!risk) return std::nullopt;
    const std::string form = std::string(label) + " " + std::string(verb);
    return Builtin(*risk, form, Quoted(form) + " " + RiskSentence(*risk));
  };
  if (ops.size() >= 2) {
    if (std::optional<Verdict> v = judge(std::string(ops[0]) + " " + std::string(ops[1]))) return *v;
  }
  if (std::optional<Verdict> v = judge(ops[0])) return *v;
  const std::string form = std::string(label) + " " + std::string(ops[0]);
  return Builtin(fallback, form, Quoted(form) + " " + RiskSentence(fallback));
}

constexpr Risk kRO = Risk::kReadOnly;
constexpr Risk kMut = Risk::kMutating;
constexpr Risk kDes = Risk::kDestructive;
constexpr Risk kPriv = Risk::kPrivileged;

Verdict ReadOnly(std::string_view prog) { return Builtin(kRO, prog, Quoted(prog) + " only reads state"); }

Verdict Mutating(std::string_view form, std::string reason) { return Builtin(kMut, form, std::move(reason)); }

// Read-only programs whatever their arguments (writing redirections are judged separately).
constexpr std::string_view kReadOnlyPrograms =
    "true|false|:|echo|printf|test|[|[[|ls|dir|vdir|cat|tac|nl|head|tail|less|more|wc|grep|egrep|fgrep|"
    "zgrep|zegrep|zfgrep|rg|ag|cut|tr|paste|join|column|fold|fmt|expand|unexpand|rev|comm|diff|cmp|stat|"
    "file|locate|plocate|which|whereis|type|readlink|realpath|basename|dirname|pwd|id|whoami|who|w|last|"
    "lastb|lastlog|groups|users|logname|uname|arch|uptime|cal|ncal|df|du|free|vmstat|iostat|mpstat|"
    "pidstat|sar|top|htop|atop|btop|iotop|ps|pgrep|pidof|pstree|lsof|ss|netstat|ping|ping6|fping|arping|"
    "traceroute|traceroute6|tracepath|mtr|dig|nslookup|host|getent|whois|ssh-keyscan|lsblk|blkid|findmnt|"
    "lscpu|lsusb|lspci|lsmod|lshw|lsns|lslocks|lsipc|lsattr|dmidecode|inxi|lsb_release|hostid|sleep|"
    "md5sum|sha1sum|sha224sum|sha256sum|sha384sum|sha512sum|b2sum|cksum|sum|base32|base64|basenc|hexdump|"
    "od|strings|jq|zcat|bzcat|xzcat|zstdcat|lz4cat|zless|zmore|zipinfo|nproc|getconf|locale|tty|yes|seq|"
    "expr|bc|dc|factor|numfmt|printenv|tree|namei|ldd|nm|objdump|readelf|size|apt-cache|dpkg-query|lvs|"
    "vgs|pvs|lvdisplay|vgdisplay|pvdisplay|lvscan|vgscan|pvscan|iptables-save|ip6tables-save|vnstat|"
    "lsinitramfs|systemd-analyze|systemd-cgls|systemd-cgtop|ipcs|tput|clear|sync|cd|pushd|popd|dirs|"
    "export|declare|typeset|local|readonly|set|unset|shift|read|unalias|ulimit|umask|getopts|"
    "wait|exit|return|break|continue|times|jobs|history|help|shopt|"
    // Everyday diagnostics of storage, network, hardware and services.
    "lsscsi|lsmem|lsirq|lslogins|lsfd|nstat|ifstat|pveversion|pveperf|acpi|upower|getfacl|debsums|"
    "checkrestart|iwgetid|pinky|zdump|whatis|apropos|ntpq|ntpstat|ipcalc|sipcalc|lsinitrd|dpkg-architecture|"
    "apcaccess|upsc|inxi|neofetch|fastfetch|screenfetch|"
    "systemd-detect-virt|virt-what|nmblookup|avahi-browse|showmount|ps_mem|smem|"
    "delv|drill|kdig|resolveip|tcptraceroute|nfsstat|man";

// Programs that only run the command they wrap; that command is listed and judged on its own.
constexpr std::string_view kPlainWrappers =
    "env|nice|timeout|nohup|stdbuf|xargs|exec|command|time|setsid|flock|watch|busybox|builtin|trap|parallel|"
    "strace|ltrace|unbuffer";

// Programs that run as another user or with other privileges, or manage accounts and kernels.
struct Privileged {
  std::string_view program;
  std::string_view reason;
};
constexpr Privileged kPrivilegedPrograms[] = {
    {"sudo", "runs a command as another user, usually root"},
    {"doas", "runs a command as another user, usually root"},
    {"su", "runs a shell or command as another user, usually root"},
    {"pkexec", "runs a command as another user, usually root"},
    {"runuser", "runs a command as another user"},
    {"setpriv", "runs a command with changed user ids or capabilities"},
    {"chroot", "runs a command as root in another root directory"},
    {"nsenter", "runs a command inside other namespaces, e.g. a container's or the host's"},
    {"unshare", "runs a command in new namespaces, often as root"},
    {"capsh", "runs a shell with changed capabilities"},
    {"visudo", "edits the sudo rules"},
    {"passwd", "changes passwords"},
    {"chpasswd", "changes passwords"},
    {"chage", "changes password ageing"},
    {"usermod", "changes user accounts"},
    {"useradd", "creates user accounts"},
    {"adduser", "creates user accounts"},
    {"userdel", "deletes user accounts"},
    {"deluser", "deletes user accounts"},
    {"groupadd", "creates groups"},
    {"addgroup", "creates groups"},
    {"groupdel", "deletes groups"},
    {"delgroup", "deletes groups"},
    {"groupmod", "changes groups"},
    {"gpasswd", "changes group membership"},
    {"vipw", "edits the account files"},
    {"vigr", "edits the group files"},
    {"chsh", "changes a user's login shell"},
    {"insmod", "loads code into the kernel"},
    {"rmmod", "unloads kernel modules"},
    {"modprobe", "loads or unloads kernel modules"},
    {"setcap", "grants capabilities to a program"},
    {"sudo-rs", "runs a command as another user, usually root"},
    {"gosu", "runs a command as another user"},
    {"su-exec", "runs a command as another user"},
    {"run0", "runs a command as another user, usually root, through systemd"},
    {"pfexec", "runs a command with a privileged profile"},
    {"setuidgid", "runs a command as another user"},
    {"s6-setuidgid", "runs a command as another user"},
    {"chpst", "runs a command with another user or limits"},
    {"machinectl", "opens shells and runs commands in containers and as other users"},
    {"labgate", "is labgate's own operator command line: approving, pairing and editing policy are for a human"},
};

// Known programs that change files or state (named so the rule is clearer than unknown-program).
constexpr std::string_view kMutatingPrograms =
    "touch|mkdir|rmdir|ln|unlink|rsync|scp|sftp|curl|wget|unzip|gzip|gunzip|bzip2|bunzip2|xz|unxz|zstd|"
    "patch|chattr|umount|swapon|swapoff|ifup|ifdown|pvcreate|vgcreate|lvcreate|lvextend|lvresize|"
    "vgextend|vgreduce|dpkg-reconfigure|update-grub|grub-install|update-initramfs|make|logger|at|batch|"
    "chronyc|ntpdate|mktemp|split|csplit|ssh-keygen|gpg|openssl|atrm|swapon|strace|ltrace";

// Programs labgate does not know need a human (fail closed): labgate cannot show that they are
// harmless. Operators teach it their own tools with [classify] rules.
Verdict Unknown(std::string_view prog) {
  return Builtin(kDes, "unknown-program",
                 Quoted(prog) +
                     " is not in labgate's table, so labgate cannot tell what it does and a human confirms it; an "
                     "operator can classify it with a [classify] rule");
}

// What file-changing programs change, judged by where.
Verdict FileWriter(std::string_view form, const std::vector<std::string_view>& targets, std::string reason) {
  if (std::optional<Verdict> system = SystemWrites(targets)) return *system;
  return Mutating(form, std::move(reason));
}

Verdict Rm(const Words& w) {
  const Args a = ParseArgs(w);
  if (a.AnyShort("rR") || a.LongPrefix("--recursive", 3)) {
    return Builtin(kDes, "rm -r", "rm -r deletes whole directory trees");
  }
  if (a.Long("--no-preserve-root")) return Builtin(kDes, "rm -r", "rm --no-preserve-root may delete everything");
  for (std::string_view op : a.operands) {
    if (IsTopLevel(op)) return Builtin(kDes, "rm /", "rm " + Quoted(op) + " deletes at the top of the file system");
  }
  return FileWriter("rm", a.operands, "rm deletes files");
}

Verdict Find(const Words& w) {
  for (size_t i = 1; i < w.size(); ++i) {
    if (w[i] == "-delete") return Builtin(kDes, "find -delete", "find -delete deletes every file it matches");
    if (OneOf(w[i], {"-exec", "-execdir", "-ok", "-okdir"}) && i + 1 < w.size() &&
        OneOf(Basename(w[i + 1]), {"rm", "unlink", "shred", "rmdir"})) {
      return Builtin(kDes, "find -exec rm",
                     "find -exec " + std::string(Basename(w[i + 1])) + " deletes every file it matches");
    }
  }
  for (size_t i = 1; i < w.size(); ++i) {
    if (OneOf(w[i], {"-fprint", "-fprint0", "-fprintf", "-fls"})) {
      return Mutating("find -fprint", "find " + w[i] + " writes a file");
    }
  }
  return Builtin(kRO, "find", "find only reads (commands run by -exec are judged on their own)");
}

Verdict Git(const Words& w) {
  const Args global = ParseArgs(w, "Cc", {"--git-dir", "--work-tree", "--namespace", "--exec-path"}, 1, false);
  if (global.operands.empty()) return ReadOnly("git");
  const std::string_view sub = global.operands[0];
  size_t at = 1;
  while (at < w.size() && w[at] != sub) ++at;
  const Args a = ParseArgs(w, "", {}, at + 1);
  const std::string form = "git " + std::string(sub);
  auto mutating = [&] { return Mutating(form, Quoted(form) + " changes the repository"); };
  if (OneOf(sub, {"status",     "log",         "diff",        "show",    "rev-parse",    "ls-files",   "ls-tree",
                  "ls-remote",  "describe",    "shortlog",    "blame",   "grep",         "cat-file",   "rev-list",
                  "show-ref",   "show-branch", "whatchanged", "version", "help",         "fsck",       "count-objects",
                  "merge-base", "name-rev",    "cherry",      "var",     "check-ignore", "check-attr", "verify-commit",
                  "verify-tag", "annotate",    "for-each-ref"})) {
    return Builtin(kRO, form, Quoted(form) + " only reads the repository");
  }
  if (sub == "clean") {
    if (a.Short('n') || a.Long("--dry-run")) return Builtin(kRO, form, "git clean -n only lists what it would delete");
    if (a.Short('f') || a.Long("--force")) {
      return Builtin(kDes, "git clean -f", "git clean -f deletes untracked files for good");
    }
    return mutating();
  }
  if (sub == "reset" && a.Long("--hard")) {
    return Builtin(kDes, "git reset --hard", "git reset --hard throws away uncommitted changes");
  }
  if (sub == "push") {
    const bool force_ref = std::any_of(a.operands.begin(), a.operands.end(), [](std::string_view op) {
      return !op.empty() && (op[0] == '+' || op[0] == ':');
    });
    if (a.AnyShort("fd") || a.Long("--force") || a.Long("--force-with-lease") || a.Long("--force-if-includes") ||
        a.Long("--mirror") || a.Long("--delete") || a.Long("--prune") || force_ref) {
      return Builtin(kDes, "git push --force", "a forced or deleting git push can destroy history on the remote");
    }
    return mutating();
  }
  if (sub == "checkout" && (a.Short('f') || a.Long("--force"))) {
    return Builtin(kDes, "git checkout -f", "git checkout -f throws away local changes");
  }
  if (OneOf(sub, {"filter-branch", "filter-repo"})) {
    return Builtin(kDes, form, Quoted(form) + " rewrites the repository's history");
  }
  if (sub == "branch") {
    if (a.Short('D') || (a.Short('d') && (a.Short('f') || a.Long("--force")))) {
      return Builtin(kDes, "git branch -D", "git branch -D deletes a branch even if it is not merged");
    }
    const bool changes = a.AnyShort("dmMcCu") || a.Long("--delete") || a.Long("--move") || a.Long("--copy") ||
                         a.LongStartingWith("--set-upstream") || a.Long("--unset-upstream") ||
                         a.Long("--edit-description");
    const bool lists = a.Short('l') || a.Long("--list");
    if (!changes && (a.operands.empty() || lists)) return Builtin(kRO, form, "git branch only lists branches");
    return mutating();
  }
  if (sub == "remote") {
    if (a.operands.empty() || OneOf(a.operands[0], {"show", "get-url"})) {
      return Builtin(kRO, form, "git remote only lists remotes");
    }
    return mutating();
  }
  if (sub == "tag") {
    if (!a.Short('d') && (a.operands.empty() || a.Short('l') || a.Long("--list"))) {
      return Builtin(kRO, form, "git tag only lists tags");
    }
    return mutating();
  }
  if (sub == "stash") {
    if (a.operands.empty()) return mutating();
    if (OneOf(a.operands[0], {"list", "show"}))
      return Builtin(kRO, "git stash " + std::string(a.operands[0]), "only reads");
    if (OneOf(a.operands[0], {"drop", "clear"})) {
      return Builtin(kDes, "git stash " + std::string(a.operands[0]), "deletes stashed changes for good");
    }
    return mutating();
  }
  if (sub == "config") {
    const bool sets = a.LongStartingWith("--unset") || a.Long("--add") || a.Long("--replace-all") || a.Long("--edit") ||
                      a.Short('e') || a.LongStartingWith("--rename-section") || a.LongStartingWith("--remove-section");
    const bool gets = a.LongStartingWith("--get") || a.Long("--list") || a.Short('l');
    if (!sets && (gets || a.operands.size() <= 1)) return Builtin(kRO, form, "git config only reads settings");
    return mutating();
  }
  if (sub == "reflog" && (a.operands.empty() || a.operands[0] == "show")) {
    return Builtin(kRO, form, "git reflog only reads");
  }
  return mutating();
}

Verdict Tar(const Words& w) {
  std::string modes;  // function letters
  if (w.size() > 1 && !w[1].empty() && w[1][0] != '-') {
    modes = w[1];  // old style: `tar tzf x.tar`
  }
  constexpr std::string_view kValueLetters = "fCTXbgKNVLHIF";
  for (size_t i = 1; i < w.size(); ++i) {
    const std::string_view a = w[i];
    if (a == "--") break;
    if (StartsWith(a, "--")) {
      const std::string_view name = a.substr(0, a.find('='));
      if (name == "--list") modes += 't';
      if (OneOf(name, {"--extract", "--get"})) modes += 'x';
      if (OneOf(name, {"--create", "--append", "--update", "--concatenate", "--catenate", "--delete"})) modes += 'c';
      continue;
    }
    if (a.size() < 2 || a[0] != '-') continue;
    for (size_t k = 1; k < a.size(); ++k) {
      modes += a[k];
      if (kValueLetters.find(a[k]) != std::string_view::npos) break;
    }
  }
  const bool writes = modes.find_first_of("xcruA") != std::string::npos;
  if (modes.find('t') != std::string::npos && !writes) return Builtin(kRO, "tar -t", "tar -t only lists an archive");
  return Mutating("tar", "tar creates or extracts files");
}

Verdict Sed(const Words& w) {
  const Args a = ParseArgs(w, "efl", {"--expression", "--file", "--line-length"});
  std::vector<std::string_view> scripts;
  std::vector<std::string_view> files = a.operands;
  for (const auto& v : a.values) {
    if (v.first == "-e" || v.first == "--expression") scripts.push_back(v.second);
  }
  if (scripts.empty() && !files.empty()) {
    scripts.push_back(files.front());
    files.erase(files.begin());
  }
  if (a.Short('i') || a.LongPrefix("--in-place", 4)) {
    return FileWriter("sed -i", files, "sed -i edits files in place");
  }
  if (a.Value("-f", "--file")) return Builtin(kDes, "sed -f", "sed -f runs a script file labgate does not read");
  for (std::string_view s : scripts) {
    const SedEffect effect = SedScriptEffect(s);
    if (effect == SedEffect::kRuns) {
      return Builtin(kDes, "sed e", "the sed script runs commands (e) or holds what labgate cannot read");
    }
    if (effect == SedEffect::kWrites) return Mutating("sed w", "the sed script writes files (w or W)");
  }
  return Builtin(kRO, "sed", "sed without -i only prints");
}

Verdict Awk(std::string_view prog, const Words& w) {
  const Args a = ParseArgs(w, "fvFiel", {"--file", "--assign", "--field-separator", "--include", "--source", "--load"});
  if (a.Value("-i", "--include") || a.Value("-l", "--load")) {
    return Mutating(prog, Quoted(prog) + " -i/-l loads extensions (e.g. inplace) that can write files");
  }
  if (a.Value("-f", "--file")) {
    return Builtin(kDes, std::string(prog) + " -f", Quoted(prog) + " -f runs a program file labgate does not read");
  }
  std::vector<std::string_view> programs;
  for (const auto& v : a.values) {
    if (v.first == "-e" || v.first == "--source") programs.push_back(v.second);
  }
  if (programs.empty() && !a.operands.empty()) programs.push_back(a.operands[0]);
  for (std::string_view p : programs) {
    if (AwkProgramRuns(p)) {
      return Builtin(kDes, std::string(prog) + " system",
                     "the " + std::string(prog) + " program runs commands (system() or a pipe), which labgate cannot see");
    }
    if (!AwkProgramIsSafe(p)) {
      return Mutating(prog, "the " + std::string(prog) + " program runs commands or writes files (system, | or >)");
    }
  }
  return Builtin(kRO, prog, Quoted(prog) + " only reads (its program has no system(), pipes or output files)");
}

Verdict Docker(std::string_view label, const Words& w, bool compose_program) {
  const Args a = ParseArgs(w, "Hclfp",
                           {"--host", "--context", "--log-level", "--config", "--file", "--project-name", "--profile",
                            "--env-file", "--project-directory", "--ansi", "--progress"});
  std::vector<std::string_view> ops = a.operands;
  if (compose_program) ops.insert(ops.begin(), "compose");
  const std::string_view verb = ops.empty() ? "" : ops[0];
  if (verb == "run" || verb == "create" ||
      (ops.size() > 1 && verb == "container" && (ops[1] == "run" || ops[1] == "create"))) {
    for (size_t i = 1; i < w.size(); ++i) {
      const std::string_view arg = w[i];
      const std::string_view next = i + 1 < w.size() ? std::string_view(w[i + 1]) : std::string_view();
      const bool host_ns = arg == "--privileged" || arg == "--pid=host" || arg == "--userns=host" ||
                           arg == "--ipc=host" || ((arg == "--pid" || arg == "--userns") && next == "host");
      const bool all_caps = arg == "--cap-add=ALL" || arg == "--cap-add=SYS_ADMIN" ||
                            (arg == "--cap-add" && (next == "ALL" || next == "SYS_ADMIN"));
      std::string_view volume;
      if ((arg == "-v" || arg == "--volume" || arg == "--mount") && !next.empty()) volume = next;
      if (StartsWith(arg, "--volume=") || StartsWith(arg, "--mount=")) volume = arg.substr(arg.find('=') + 1);
      if (StartsWith(arg, "-v") && arg.size() > 2 && arg[2] != '-') volume = arg.substr(2);
      const bool host_root = StartsWith(volume, "/:") || volume.find("source=/,") != std::string_view::npos ||
                             volume.find("src=/,") != std::string_view::npos || volume == "/";
      if (host_ns || all_caps || host_root) {
        return Builtin(kPriv, std::string(label) + " run --privileged",
                       Quoted(arg) + " gives the container root access to the host");
      }
    }
  }
  return ByVerb(
      label, ops,
      Verbs{"ps|images|inspect|logs|info|version|stats|top|port|diff|history|events|search|system df|system "
            "info|system events|image ls|image list|image inspect|image history|container ls|container list|container "
            "ps|container inspect|container logs|container top|container port|container diff|container stats|volume "
            "ls|volume list|volume inspect|network ls|network list|network inspect|context ls|context show|context "
            "inspect|node ls|service ls|service ps|service logs|service inspect|stack ls|stack ps|stack "
            "services|buildx ls|plugin ls|manifest inspect|compose ps|compose logs|compose config|compose ls|compose "
            "images|compose top|compose version|compose events|compose port",
            "rm|rmi|kill|stop|restart|system prune|system reset|image prune|image rm|container prune|container rm|container "
            "kill|container stop|container restart|volume prune|volume rm|network prune|network rm|builder "
            "prune|buildx prune|swarm leave|node rm|service rm|stack rm|compose up|compose down|compose pull|compose "
            "rm|compose restart|compose stop|compose kill"},
      kMut, kRO);
}

Verdict Systemctl(const Words& w) {
  const Args a = ParseArgs(w, "HMtpnos",
                           {"--host", "--machine", "--type", "--property", "--lines", "--output", "--state", "--signal",
                            "--kill-whom", "--job-mode", "--root", "--what", "--kill-value"});
  if (a.operands.empty()) {
    return Builtin(kRO, "systemctl", "systemctl without a command only lists units");
  }
  return ByVerb("systemctl", a.operands,
                Verbs{"status|is-active|is-enabled|is-failed|is-system-running|list-units|list-unit-files|list-timers|"
                      "list-sockets|list-jobs|list-dependencies|list-machines|list-automounts|list-paths|show|cat|help|"
                      "get-default|show-environment",
                      "stop|restart|try-restart|reload-or-restart|try-reload-or-restart|condrestart|force-reload|"
                      "disable|mask|kill|poweroff|reboot|halt|isolate|kexec|emergency|rescue|suspend|hibernate|hybrid-"
                      "sleep|suspend-then-hibernate|soft-reboot|default|switch-root|clean|exit"},
                kMut, kRO);
}

Verdict IptablesLike(std::string_view prog, const Words& w) {
  const Args a = ParseArgs(w, "tjpsdiomgwW",
                           {"--table", "--jump", "--protocol", "--source", "--destination", "--in-interface",
                            "--out-interface", "--match", "--goto", "--wait"});
  const bool lists = a.AnyShort("LS") || a.Long("--list") || a.Long("--list-rules");
  const bool changes = a.AnyShort("ADIRFZNXPE") || std::any_of(a.longs.begin(), a.longs.end(), [](std::string_view l) {
                         return OneOf(l, {"--append", "--delete", "--insert", "--replace", "--flush", "--zero",
                                          "--new-chain", "--delete-chain", "--policy", "--rename-chain"});
                       });
  if (lists && !changes) return Builtin(kRO, std::string(prog) + " -L", Quoted(prog) + " -L/-S only lists rules");
  return Builtin(kDes, prog, Quoted(prog) + " changes the firewall, which can cut the machine off");
}

Verdict Ip(const Words& w) {
  std::vector<std::string_view> ops;
  for (size_t i = 1; i < w.size(); ++i) {
    const std::string_view a = w[i];
    if (!a.empty() && a[0] == '-') {
      if (OneOf(a, {"-b", "-batch", "-force"})) return Mutating("ip -batch", "ip -batch runs commands from a file");
      if (OneOf(a, {"-n", "-netns", "-f", "-family", "-rc", "-rcvbuf", "-l", "-loops"})) ++i;
      continue;
    }
    ops.push_back(a);
  }
  if (ops.size() < 2) return Builtin(kRO, "ip", "ip without a command only shows state");
  const std::string_view object = ops[0], verb = ops[1];
  auto is = [](std::string_view abbrev, std::string_view full) { return !abbrev.empty() && StartsWith(full, abbrev); };
  if (object == "monitor" || is(verb, "show") || is(verb, "list") || verb == "lst" || is(verb, "get")) {
    return Builtin(kRO, "ip " + std::string(object) + " show", "ip ... show only shows state");
  }
  const std::string form = "ip " + std::string(object) + " " + std::string(verb);
  if (is(verb, "flush")) return Builtin(kDes, form, Quoted(form) + " removes every address or route it matches");
  if ((is(verb, "delete") && verb.size() >= 3) || verb == "del" || is(verb, "replace") || is(verb, "change")) {
    return Builtin(kDes, form, Quoted(form) + " removes or replaces addresses or routes, which can cut the machine off");
  }
  if (is(object, "link")) {
    if (OneOf(verb, {"del", "delete"})) return Builtin(kDes, form, Quoted(form) + " deletes a network interface");
    if (verb == "set" && std::find(ops.begin(), ops.end(), "down") != ops.end()) {
      return Builtin(kDes, "ip link set down", "taking an interface down can cut the machine off");
    }
  }
  return Mutating(form, Quoted(form) + " changes the network configuration");
}

Verdict Pacman(std::string_view prog, const Words& w) {
  const Args a = ParseArgs(w);
  char op = 0;
  for (char c : a.shorts) {
    if (std::string_view("DFQRSTUV").find(c) != std::string_view::npos) {
      op = c;
      break;
    }
  }
  if (a.Long("--remove")) op = 'R';
  if (a.Long("--sync")) op = 'S';
  if (a.Long("--query")) op = 'Q';
  const std::string name(prog);
  if (op == 'R') return Builtin(kDes, name + " -R", name + " -R removes packages");
  if (op == 'S') {
    if (a.Short('u') || a.Long("--sysupgrade"))
      return Builtin(kDes, name + " -Syu", name + " -Syu upgrades every package");
    if (a.AnyShort("silg") && !a.Short('y')) return Builtin(kRO, name + " -Ss", name + " -Ss/-Si/-Sl only reads");
    return Mutating(name + " -S", name + " -S installs packages or refreshes databases");
  }
  if (op == 'Q' || op == 'T' || op == 'V' || (op == 'F' && !a.Short('y'))) {
    return Builtin(kRO, name + " -Q", name + " -Q only reads the package database");
  }
  return Mutating(name, name + " changes packages");
}

Verdict Dpkg(const Words& w) {
  const Args a = ParseArgs(w);
  if (a.AnyShort("rP") || a.Long("--remove") || a.Long("--purge")) {
    return Builtin(kDes, "dpkg -r", "dpkg -r/-P removes packages");
  }
  if (a.Short('i') || a.Long("--install") || a.Long("--unpack") || a.Long("--configure") ||
      a.Long("--set-selections") || a.Long("--clear-selections")) {
    return Mutating("dpkg -i", "dpkg -i installs or configures packages");
  }
  const bool reads =
      a.AnyShort("lLsSpcIC") || std::any_of(a.longs.begin(), a.longs.end(), [](std::string_view l) {
        return OneOf(l, {"--list", "--listfiles", "--status", "--search", "--print-avail", "--get-selections",
                         "--print-architecture", "--print-foreign-architectures", "--contents", "--info", "--audit",
                         "--verify", "--compare-versions", "--version", "--help"});
      });
  if (reads) return Builtin(kRO, "dpkg -l", "dpkg -l/-L/-s only reads the package database");
  return Mutating("dpkg", "dpkg changes packages");
}

Verdict Rpm(const Words& w) {
  const Args a = ParseArgs(w);
  if (a.Short('e') || a.Long("--erase")) return Builtin(kDes, "rpm -e", "rpm -e removes packages");
  const bool query = (w.size() > 1 && StartsWith(w[1], "-q")) || a.Long("--query") || a.Short('V') ||
                     a.Long("--verify") || a.Short('K') || a.Long("--checksig") || a.Short('q');
  if (query && !a.AnyShort("iUF")) return Builtin(kRO, "rpm -q", "rpm -q only reads the package database");
  return Mutating("rpm", "rpm changes packages");
}

Verdict NvidiaSmi(const Words& w) {
  if (w.size() > 1 && OneOf(w[1], {"dmon", "pmon", "topo"})) return ReadOnly("nvidia-smi");
  for (size_t i = 1; i < w.size(); ++i) {
    const std::string_view a = w[i];
    if (OneOf(a, {"-q", "--query", "-L", "--list-gpus", "-x", "--xml-format", "-u", "--unit", "-a", "-s", "-d", "-m",
                  "--matrix"})) {
      continue;
    }
    if (StartsWith(a, "--query-") || StartsWith(a, "--format=") || StartsWith(a, "--id=") ||
        StartsWith(a, "--display=") || StartsWith(a, "--loop=") || StartsWith(a, "--loop-ms=")) {
      continue;
    }
    if (OneOf(a, {"-i", "--id", "-l", "--loop", "-lms", "--loop-ms", "--display", "--format"}) && i + 1 < w.size()) {
      ++i;
      continue;
    }
    return Mutating("nvidia-smi", "nvidia-smi " + Quoted(a) + " changes GPU settings");
  }
  return ReadOnly("nvidia-smi");
}

// Disk partitioners: read-only when they only print.
Verdict Partitioner(std::string_view prog, const Words& w) {
  const Args a = ParseArgs(w, "i", {});
  const std::string name(prog);
  bool reads = false;
  if (prog == "fdisk" || prog == "gdisk" || prog == "cfdisk") reads = a.Short('l') || a.Long("--list");
  if (prog == "sfdisk") {
    reads = a.AnyShort("ldJsgV") || a.Long("--list") || a.Long("--dump") || a.Long("--json") || a.Long("--show-size") ||
            a.Long("--show-geometry") || a.Long("--verify");
  }
  if (prog == "sgdisk") {
    const bool print_only_longs = std::all_of(a.longs.begin(), a.longs.end(), [](std::string_view l) {
      return OneOf(l, {"--print", "--info", "--verify", "--print-mbr", "--list-types"});
    });
    const bool print_only_shorts = a.shorts.find_first_not_of("piOLv") == std::string::npos;
    reads = print_only_longs && print_only_shorts && !(a.shorts.empty() && a.longs.empty());
  }
  if (prog == "parted") {
    reads = a.Short('l') || a.Long("--list");
    const bool prints = std::find(a.operands.begin(), a.operands.end(), "print") != a.operands.end();
    const bool changes = std::any_of(a.operands.begin(), a.operands.end(), [](std::string_view op) {
      return OneOf(op, {"mklabel", "mktable", "mkpart", "rm", "resizepart", "resize", "name", "set", "toggle", "rescue",
                        "move", "cp", "mkfs", "mkpartfs", "disk_set", "disk_toggle", "type"});
    });
    reads = reads || (prints && !changes);
  }
  if (reads) return Builtin(kRO, name + " -l", name + " only prints the partition table");
  return Builtin(kDes, name, name + " rewrites partition tables");
}

Verdict Kill(std::string_view prog, const Words& w) {
  const Args a = ParseArgs(w);
  if (prog == "kill") {
    if (a.AnyShort("lL") || a.Long("--list") || a.Long("--table") || (w.size() > 1 && w[1] == "-0")) {
      return Builtin(kRO, "kill -l", "kill -l/-0 only lists signals or probes a process");
    }
  }
  if (prog == "killall" && (a.Short('l') || a.Long("--list"))) return Builtin(kRO, "killall -l", "only lists signals");
  return Builtin(kDes, prog, Quoted(prog) + " stops processes");
}

Verdict Service(const Words& w) {
  const Args a = ParseArgs(w);
  if (a.operands.empty()) {
    if (a.Long("--status-all")) return Builtin(kRO, "service --status-all", "only lists services");
    return Mutating("service", "service changes services");
  }
  if (a.operands.size() < 2) return Mutating("service", "service changes services");
  const std::string form = "service " + std::string(a.operands[1]);
  if (a.operands[1] == "status") return Builtin(kRO, form, "service status only reads");
  if (OneOf(a.operands[1], {"stop", "restart", "force-reload", "try-restart", "condrestart", "force-stop"})) {
    return Builtin(kDes, form, Quoted(form) + " stops or restarts a service");
  }
  return Mutating(form, Quoted(form) + " changes a service");
}

Verdict Shell(std::string_view prog, const Words& w) {
  bool command_string = false;
  size_t i = 1;
  bool version = false;
  while (i < w.size()) {
    const std::string& a = w[i];
    if (a == "--" || a == "-") {
      ++i;
      break;
    }
    if (a.size() < 2 || (a[0] != '-' && a[0] != '+')) break;
    if (a[0] == '-' && a[1] == '-') {
      version = version || a == "--version" || a == "--help";
      i += OneOf(a, {"--rcfile", "--init-file"}) ? 2 : 1;
      continue;
    }
    size_t skip = 1;
    for (size_t k = 1; k < a.size(); ++k) {
      if (a[k] == 'c' && a[0] == '-') command_string = true;
      if (a[k] == 'o' || a[k] == 'O') ++skip;
    }
    i += skip;
  }
  const std::string name(prog);
  if (command_string || version) {
    return Builtin(kRO, name + " -c", name + " -c only runs its script, whose commands are judged on their own");
  }
  if (i < w.size()) {
    return Builtin(kDes, name + " script",
                   name + " runs the script file " + Quoted(w[i]) + ", which labgate does not read");
  }
  return Builtin(kDes, name + " stdin", name + " runs commands read from its input, which labgate cannot see");
}

Verdict Pihole(const Words& w) {
  const std::string_view verb = w.size() > 1 ? std::string_view(w[1]) : std::string_view();
  if (verb.empty() ||
      OneOf(verb, {"status", "version", "-v", "-q", "query", "-c", "chronometer", "-t", "tail", "-h", "--help"})) {
    return Builtin(kRO, "pihole status", "pihole " + std::string(verb) + " only reads");
  }
  if (OneOf(verb, {"restartdns", "uninstall", "disable", "-d"})) {
    return Builtin(kDes, "pihole " + std::string(verb),
                   "pihole " + std::string(verb) + " interrupts DNS for the network");
  }
  return Mutating("pihole " + std::string(verb), "pihole " + std::string(verb) + " changes Pi-hole's settings");
}

// Whether `path` (a program named with a slash) lies in one of the system's bin directories,
// where a program's name says what it is; `/usr/../bin/rm` counts as /bin/rm.
bool InSystemBin(std::string_view path) {
  const std::string n = NormalizePath(path);
  const std::string_view dir = std::string_view(n).substr(0, n.rfind('/'));
  return OneOf(dir, {"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"});
}

// Bash evaluates `[...]` in a variable name as arithmetic, which can run `$(...)` hidden in
// quotes: `printf -v 'a[$(cmd)]' x`. These builtins take variable names.
bool TakesVariableNames(std::string_view prog) {
  return OneOf(prog, {"printf", "read", "declare", "typeset", "local", "export", "readonly", "unset", "getopts",
                      "mapfile", "readarray", "wait", "test", "["});
}

// Names whose value no program runs as code or uses to find code: locale, time zone, terminal.
bool InertVariable(std::string_view name) {
  if (OneOf(name, {"LANG", "LANGUAGE", "TZ", "TERM", "COLUMNS", "LINES", "NO_COLOR", "CLICOLOR", "SYSTEMD_COLORS",
                   "DEBIAN_FRONTEND", "FORCE_COLOR", "LABGATE_CHECK", "LABGATE_CHECK_TARGET"}) ||
      StartsWith(name, "LC_")) {
    return true;
  }
  // Lower-case names are the shell's own by convention; no common program reads them as code.
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
  }) && !OneOf(name, {"http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy"});
}

// The verdict for `NAME=value` (a prefix, a plain assignment, `export`, `env`) when NAME is one
// that can change what programs run: PATH, LD_PRELOAD, BASH_ENV, IFS, PAGER, GIT_SSH_COMMAND, ...
std::optional<Verdict> AssignmentVerdict(std::string_view assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  std::string_view name = assignment.substr(0, eq);
  if (!name.empty() && name.back() == '+') name.remove_suffix(1);
  if (InertVariable(name)) return std::nullopt;
  return Builtin(kDes, "environment",
                 "setting " + std::string(name) +
                     " can change which program runs or make a program run other code (search paths, loaders, "
                     "shell start-up files, pagers, editors); a human confirms it");
}

Verdict Interpreter(std::string_view prog, const Words& w) {
  const bool only_version = w.size() == 2 && OneOf(w[1], {"--version", "-V", "-v", "--help", "-h", "version"});
  if (only_version) return Builtin(kRO, std::string(prog) + " --version", "only prints its version");
  return Builtin(kDes, std::string(prog),
                 Quoted(prog) + " runs program code (inline, from a file or from its input) that labgate cannot judge");
}

// Programs that run code or commands they were handed: interpreters, editors, shell builtins
// that take names or assignments, schedulers and multiplexers.
std::optional<Verdict> CodeRunners(std::string_view prog, const Words& w) {
  const std::string name(prog);
  if (IsInterpreter(prog) || OneOf(prog, {"expect", "gdb", "jshell", "irb", "pwsh", "wish", "guile"})) {
    return Interpreter(prog, w);
  }
  if (OneOf(prog, {"vi", "vim", "nvim", "view", "ex", "vimdiff", "emacs", "nano", "ed", "mcedit", "joe"})) {
    return Builtin(kDes, "editor", Quoted(prog) + " is an editor: its commands can write any file and run programs");
  }
  if (OneOf(prog, {"let", "alias", "enable"})) {
    return Builtin(kDes, name,
                   name + " can rename commands or run code hidden in its arguments (aliases, bash arithmetic, "
                          "loadable builtins)");
  }
  if (prog == "hash") {
    if (w.size() == 1 || (w.size() == 2 && w[1] == "-r")) return ReadOnly("hash");
    return Builtin(kDes, "hash -p", "hash -p makes a command name run another program");
  }
  if (TakesVariableNames(prog)) {
    for (size_t i = 1; i < w.size(); ++i) {
      // Which words are variable names: after -v for printf and test, after -p for wait, the
      // second operand of getopts, every non-option word for the others.
      const bool after_flag = OneOf(prog, {"printf", "test", "[", "wait"});
      const bool is_name = after_flag ? (w[i - 1] == (prog == "wait" ? "-p" : "-v"))
                                      : (prog == "getopts" ? i == 2 : !StartsWith(w[i], "-"));
      if (is_name && w[i].find('[') != std::string::npos) {
        return Builtin(kDes, name + " NAME[...]",
                       "bash evaluates the subscript of " + Quoted(w[i]) + " as arithmetic, which can run commands");
      }
    }
    if (OneOf(prog, {"export", "declare", "typeset", "local", "readonly"})) {
      for (size_t i = 1; i < w.size(); ++i) {
        if (w[i].size() > 1 && (w[i][0] == '-' || w[i][0] == '+') && w[i].find_first_of("in") != std::string::npos) {
          return Builtin(kDes, name + " -i", name + " -i/-n makes later assignments evaluate code (bash)");
        }
        if (std::optional<Verdict> v = AssignmentVerdict(w[i])) return v;
      }
    }
    return std::nullopt;
  }
  if (prog == "env") {
    for (size_t i = 1; i < w.size() && w[i].find('=') != std::string::npos; ++i) {
      if (std::optional<Verdict> v = AssignmentVerdict(w[i])) return v;
    }
    return std::nullopt;
  }
  if (prog == "systemd-run") {
    return Builtin(kDes, "systemd-run",
                   "systemd-run starts the command as a service, outside labgate's deadline and sandbox");
  }
  if (prog == "at" || prog == "batch") {
    const Args a = ParseArgs(w, "qfMt", {});
    if (prog == "at" && (a.AnyShort("lc") || (w.size() > 1 && w[1] == "-l"))) return Builtin(kRO, "at -l", "only lists jobs");
    return Builtin(kDes, name, name + " schedules commands read from its input or a file, which labgate cannot see");
  }
  if (prog == "atq") return ReadOnly("atq");
  if (prog == "tmux") {
    const Args a = ParseArgs(w, "cfLSTM", {}, 1, false);
    const std::string_view verb = a.Operand(0);
    if (OneOf(verb, {"ls", "list-sessions", "list-windows", "lsw", "list-panes", "lsp", "has-session", "has",
                     "list-clients", "lsc", "list-buffers", "show-options", "show", "info", "capture-pane", "capturep",
                     "display-message"}) &&
        !a.Short('c')) {
      return Builtin(kRO, "tmux " + std::string(verb), "only lists or shows");
    }
    return Builtin(kDes, "tmux", "tmux runs commands or types keys in sessions that outlive the call, unseen by labgate");
  }
  if (prog == "screen") {
    if (w.size() == 2 && OneOf(w[1], {"-ls", "-list", "-v", "--version"})) return Builtin(kRO, "screen -ls", "only lists");
    return Builtin(kDes, "screen", "screen runs commands or types keys in sessions that outlive the call, unseen by labgate");
  }
  if (prog == "script") {
    const Args a = ParseArgs(w, "cEIOBTm", {"--command"});
    if (!a.Value("-c", "--command")) {
      return Builtin(kDes, "script", "script without -c runs a shell reading its input, which labgate cannot see");
    }
    return Mutating("script", "script records a typescript file");
  }
  if (prog == "chrt") {
    const Args a = ParseArgs(w);
    if (a.Short('p') && a.operands.size() <= 1) return Builtin(kRO, "chrt -p", "only shows a policy");
    return Mutating("chrt", "chrt changes scheduling priority");
  }
  return std::nullopt;
}

// Storage that can be detached and links that can be taken down.
std::optional<Verdict> MountsAndNetwork(std::string_view prog, const Words& w) {
  const std::string name(prog);
  if (OneOf(prog, {"umount", "swapoff"})) {
    return Builtin(kDes, name, name + " detaches storage in use, which can stop services or the machine");
  }
  if (prog == "swapon") {
    const Args a = ParseArgs(w);
    if (w.size() == 1 || a.Short('s') || a.Long("--show") || a.Long("--summary")) return ReadOnly("swapon");
    return std::nullopt;
  }
  if (prog == "mount") {
    for (size_t i = 1; i < w.size(); ++i) {
      if (w[i].find("remount") != std::string::npos || OneOf(w[i], {"--move", "-M", "--make-private"})) {
        return Builtin(kDes, "mount -o remount", "remounting (e.g. read-only) or moving a mount disturbs everything on it");
      }
    }
    const Args a = ParseArgs(w, "tOoL", {"--types", "--test-opts", "--options", "--label", "--uuid"});
    if (!a.operands.empty() || a.Short('a') || a.Long("--all")) {
      return Builtin(kDes, "mount DIR", "mounting over a directory hides or replaces what it holds");
    }
    return std::nullopt;
  }
  if (prog == "ifdown") return Builtin(kDes, "ifdown", "taking an interface down can cut the machine off");
  if (prog == "ifup") return Mutating("ifup", "ifup brings an interface up");
  if (prog == "nmcli") {
    const Args a = ParseArgs(w, "fgpemt", {"--fields", "--get-values", "--escape", "--mode", "--terse", "--wait"});
    for (std::string_view op : a.operands) {
      if (OneOf(op, {"down", "delete", "del", "disconnect", "off", "reload", "modify", "mod"})) {
        return Builtin(kDes, "nmcli " + std::string(op), "this nmcli command can cut the machine off the network");
      }
    }
    if (a.operands.size() <= 1 ||
        OneOf(a.operands[1], {"show", "status", "list", "monitor", "permissions", "logging", "connectivity", "s"})) {
      return Builtin(kRO, "nmcli show", "nmcli only shows state");
    }
    return Mutating("nmcli", "nmcli changes network settings");
  }
  if (prog == "wg-quick") {
    if (w.size() > 1 && w[1] == "down") return Builtin(kDes, "wg-quick down", "taking a VPN down can cut access");
    return Mutating("wg-quick", "wg-quick changes a VPN interface");
  }
  if (prog == "wg") {
    if (w.size() == 1 || OneOf(w[1], {"show", "showconf", "pubkey", "genkey", "genpsk", "--version"})) {
      return Builtin(kRO, "wg show", "only shows WireGuard state");
    }
    return Mutating("wg set", "wg set changes a VPN interface");
  }
  if (prog == "networkctl") {
    return ByVerb("networkctl", ParseArgs(w).operands, Verbs{"list|status|lldp|label|cat", "down|delete|forcerenew|reconfigure|reload"},
                  kMut, kRO);
  }
  if (prog == "rfkill") {
    return ByVerb("rfkill", ParseArgs(w).operands, Verbs{"list|event", "block"}, kMut, kRO);
  }
  if (prog == "iw") {
    const Args a = ParseArgs(w);
    for (std::string_view op : a.operands) {
      if (OneOf(op, {"del", "disconnect", "set", "connect", "add", "switch", "leave"})) {
        return Builtin(kDes, "iw set", "this iw command changes or drops a wireless link");
      }
    }
    return Builtin(kRO, "iw", "iw only shows wireless state");
  }
  if (prog == "iwconfig") return w.size() <= 2 ? ReadOnly("iwconfig") : Mutating("iwconfig", "iwconfig changes a link");
  if (prog == "resolvectl" || prog == "systemd-resolve") {
    const Args a = ParseArgs(w);
    if (a.operands.empty() ||
        OneOf(a.operands[0], {"status", "query", "service", "openpgp", "tlsa", "statistics", "monitor", "show-cache",
                              "show-server-state"}) ||
        (OneOf(a.operands[0], {"dns", "domain", "default-route", "llmnr", "mdns", "dnssec", "dnsovertls"}) &&
         a.operands.size() <= 2)) {
      return Builtin(kRO, "resolvectl status", "only shows or queries DNS");
    }
    return Mutating("resolvectl", "resolvectl changes DNS settings");
  }
  if (prog == "arp") {
    const Args a = ParseArgs(w);
    if (a.AnyShort("dsf") || a.Long("--delete") || a.Long("--set")) return Mutating("arp -s", "changes the ARP table");
    return ReadOnly("arp");
  }
  if (prog == "route") {
    const Args a = ParseArgs(w);
    if (std::any_of(a.operands.begin(), a.operands.end(), [](std::string_view op) { return OneOf(op, {"add", "del"}); })) {
      return Builtin(kDes, "route del", "changing routes can cut the machine off");
    }
    return ReadOnly("route");
  }
  return std::nullopt;
}

// Cluster, D-Bus, transfer and hardware tools: what they change, and their read-only verbs.
std::optional<Verdict> ServicesAndHardware(std::string_view prog, const Words& w) {
  const std::string name(prog);
  if (prog == "helm") {
    return ByVerb("helm", ParseArgs(w, "n", {"--namespace", "--kube-context", "--kubeconfig"}).operands,
                  Verbs{"list|ls|status|get|history|hist|show|inspect|search|repo list|version|env|template|lint|"
                        "verify|dependency list",
                        "uninstall|delete|del|un|rollback"},
                  kMut, kRO);
  }
  if (prog == "btrfs") {
    return ByVerb("btrfs", ParseArgs(w).operands,
                  Verbs{"filesystem show|filesystem df|filesystem usage|filesystem du|subvolume list|subvolume "
                        "show|subvolume get-default|device stats|device usage|scrub status|balance status|qgroup "
                        "show|property get|property list|version|fi show|fi df|fi usage|sub list|sub show|dev stats",
                        "subvolume delete|sub delete|sub del|device remove|device delete|dev remove|dev delete|balance "
                        "start|filesystem resize|fi resize|check|rescue|replace start|restore|subvolume set-default"},
                  kMut, kRO);
  }
  if (prog == "busctl") {
    return ByVerb("busctl", ParseArgs(w, "", {"--address", "--machine", "--host", "--match"}).operands,
                  Verbs{"list|status|monitor|capture|tree|introspect|get-property|help|version",
                        "call|set-property|emit|wait"},
                  kDes, kRO);
  }
  if (OneOf(prog, {"dbus-send", "gdbus", "qdbus", "dbus-monitor"})) {
    if (prog == "dbus-monitor") return ReadOnly("dbus-monitor");
    return Builtin(kDes, name, name + " calls D-Bus methods, which can power off, reboot or reconfigure the machine");
  }
  if (prog == "rsync" || prog == "scp" || prog == "sftp") {
    for (size_t i = 1; i < w.size(); ++i) {
      const std::string_view a = w[i];
      if (StartsWith(a, "--rsh") || a == "-e" || (prog == "rsync" && StartsWith(a, "-e") && a.size() > 2) ||
          StartsWith(a, "--rsync-path") || (prog != "rsync" && (a == "-S" || a == "-D" || StartsWith(a, "-oProxyCommand") ||
                                                                  a == "-o")) ||
          StartsWith(a, "--config")) {
        return Builtin(kDes, name + " -e", Quoted(a) + " makes " + name + " run a program labgate cannot judge");
      }
    }
    return std::nullopt;
  }
  if (prog == "apt-mark") {
    return ByVerb("apt-mark", ParseArgs(w).operands, Verbs{"showhold|showmanual|showauto|showinstall|showremove|showpurge", ""},
                  kMut, kRO);
  }
  if (prog == "pvecm" || prog == "pvesm" || prog == "ha-manager") {
    return ByVerb(prog, ParseArgs(w).operands,
                  Verbs{"status|nodes|qdevice status|list|path|scan|config|groupconfig|help|mtunnel",
                        "delnode|expected|remove|free|crm-command"},
                  kMut, kRO);
  }
  if (prog == "vcgencmd") {
    const std::string_view verb = w.size() > 1 ? std::string_view(w[1]) : std::string_view();
    if (verb.empty() || StartsWith(verb, "measure_") || StartsWith(verb, "get_") ||
        OneOf(verb, {"version", "commands", "otp_dump", "codec_enabled", "mem_oom", "mem_reloc_stats", "read_ring_osc",
                     "pmic_read_adc", "bootloader_version", "bootloader_config"})) {
      return Builtin(kRO, "vcgencmd measure", "only reads the Raspberry Pi firmware's state");
    }
    return Mutating("vcgencmd", "vcgencmd " + std::string(verb) + " changes firmware settings");
  }
  if (prog == "chronyc") {
    return ByVerb("chronyc", ParseArgs(w, "h", {}).operands,
                  Verbs{"tracking|sources|sourcestats|activity|ntpdata|serverstats|clients|selectdata|authdata|rtcdata|"
                        "smoothing|waitsync",
                        ""},
                  kMut, kRO);
  }
  if (prog == "ethtool") {
    const Args a = ParseArgs(w);
    if (a.AnyShort("sKAGCLEfeWrp") || std::any_of(a.longs.begin(), a.longs.end(), [](std::string_view l) {
          return OneOf(l, {"--change", "--offload", "--pause", "--set-ring", "--coalesce", "--set-channels",
                           "--change-eeprom", "--flash", "--negotiate", "--identify", "--reset", "--set-eee"});
        })) {
      return Mutating("ethtool -s", "ethtool -s/-K changes a network interface");
    }
    return ReadOnly("ethtool");
  }
  if (prog == "hdparm") {
    const Args a = ParseArgs(w);
    if (a.shorts.find_first_not_of("iICtTgrv") == std::string::npos && a.longs.empty()) return ReadOnly("hdparm");
    return Builtin(kDes, "hdparm", "hdparm settings can corrupt data or make a drive unusable");
  }
  if (prog == "nvme") {
    return ByVerb("nvme", ParseArgs(w).operands,
                  Verbs{"list|list-subsys|smart-log|id-ctrl|id-ns|error-log|fw-log|show-regs|get-feature|version|help",
                        "format|sanitize|delete-ns|detach-ns|fw-download|fw-commit|reset|write-zeroes|set-feature"},
                  kMut, kRO);
  }
  if (prog == "udevadm") {
    return ByVerb("udevadm", ParseArgs(w).operands, Verbs{"info|monitor|test|test-builtin|verify|cat", ""}, kMut, kRO);
  }
  if (prog == "ipset") {
    return ByVerb("ipset", ParseArgs(w).operands, Verbs{"list|save|test|version|help", "destroy|flush|x|del"}, kMut, kRO);
  }
  if (prog == "conntrack") {
    const Args a = ParseArgs(w);
    if (a.AnyShort("LGEC") || a.Long("--dump") || a.Long("--get") || a.Long("--event") || a.Long("--count")) {
      return ReadOnly("conntrack");
    }
    return Mutating("conntrack", "conntrack changes tracked connections");
  }
  if (prog == "bridge") {
    const Args a = ParseArgs(w);
    if (a.operands.size() >= 2 && OneOf(a.operands[1], {"show", "list", "lst"})) return ReadOnly("bridge");
    if (a.operands.size() <= 1) return ReadOnly("bridge");
    return Mutating("bridge", "bridge changes a bridge");
  }
  if (prog == "brctl") {
    if (w.size() > 1 && OneOf(w[1], {"show", "showmacs", "showstp"})) return ReadOnly("brctl");
    return Mutating("brctl", "brctl changes a bridge");
  }
  if (prog == "crictl" || prog == "ctr") {
    return ByVerb(prog, ParseArgs(w).operands,
                  Verbs{"ps|images|img|logs|inspect|inspecti|inspectp|pods|stats|info|version|containers list|images "
                        "list|tasks list|c ls|i ls|t ls",
                        "rm|rmi|rmp|stop|stopp|kill"},
                  kMut, kRO);
  }
  if (prog == "lxc" || prog == "incus") {
    return ByVerb(prog, ParseArgs(w).operands,
                  Verbs{"list|ls|info|config show|version|image list|network list|storage list|profile list|remote "
                        "list|operation list|warning list",
                        "delete|rm|stop|restart|snapshot delete|restore"},
                  kMut, kRO);
  }
  if (prog == "fail2ban-client") {
    return ByVerb("fail2ban-client", ParseArgs(w).operands, Verbs{"status|ping|version|get|banned", "stop|unban"}, kMut, kRO);
  }
  if (prog == "zramctl") return w.size() == 1 ? ReadOnly("zramctl") : Mutating("zramctl", "zramctl changes zram devices");
  if (prog == "efibootmgr") {
    const Args a = ParseArgs(w);
    if (a.shorts.find_first_not_of("v") == std::string::npos && a.longs.size() <= 1 &&
        (a.longs.empty() || a.longs[0] == "--verbose")) {
      return ReadOnly("efibootmgr");
    }
    return Builtin(kDes, "efibootmgr", "efibootmgr changes how the machine boots");
  }
  if (prog == "bootctl") {
    return ByVerb("bootctl", ParseArgs(w).operands, Verbs{"status|list|is-installed|random-seed-status", "remove"}, kDes, kRO);
  }
  if (prog == "certbot") {
    return ByVerb("certbot", ParseArgs(w).operands, Verbs{"certificates|plugins|show_account", "delete|revoke"}, kMut, kMut);
  }
  if (prog == "hwclock") {
    const Args a = ParseArgs(w);
    if (w.size() == 1 || a.Short('r') || a.Long("--show") || a.Long("--get") || a.Long("--verbose")) return ReadOnly("hwclock");
    return Mutating("hwclock", "hwclock sets a clock");
  }
  return std::nullopt;
}

// Pagers and VCS with command options, archives, power, package managers, cron.
std::optional<Verdict> ArchivesAndPackages(std::string_view prog, const Words& w) {
  const std::string name(prog);
  if (prog == "man" || prog == "git" || prog == "less" || prog == "more") {
    // Pagers, editors and config given on the command line can run programs.
    for (size_t i = 1; i < w.size(); ++i) {
      const std::string_view a = w[i];
      if ((prog == "man" && (a == "-P" || StartsWith(a, "--pager") || a == "-H" || StartsWith(a, "--html"))) ||
          (prog == "git" && (a == "-c" || StartsWith(a, "--config-env") || StartsWith(a, "--exec-path=") ||
                             (a == "-u" && std::any_of(w.begin(), w.end(), [](const std::string& x) {
                                return OneOf(x, {"clone", "fetch", "pull", "ls-remote", "archive"});
                              })) ||
                             StartsWith(a, "--upload-pack") || StartsWith(a, "--receive-pack") ||
                             StartsWith(a, "--exec=") || a.find("ext::") != std::string_view::npos)) ||
          ((prog == "less" || prog == "more") && (StartsWith(a, "+") || a == "-k"))) {
        return Builtin(kDes, name + " " + std::string(a),
                       Quoted(std::string(prog) + " " + std::string(a)) + " can make it run another program");
      }
    }
    return std::nullopt;
  }
  if (prog == "tar") {
    const Args a = ParseArgs(w, "fCTXbgKNVLHIF", {"--directory", "--file", "--to-command", "--use-compress-program",
                                                  "--info-script", "--new-volume-script", "--checkpoint-action"});
    for (std::string_view l : a.longs) {
      if (OneOf(l, {"--to-command", "--use-compress-program", "--info-script", "--new-volume-script",
                    "--checkpoint-action", "--rsh-command", "--absolute-names"})) {
        return Builtin(kDes, "tar " + std::string(l), "tar " + std::string(l) + " runs a program or writes anywhere");
      }
    }
    if (a.AnyShort("IFP") || (w.size() > 1 && !w[1].empty() && w[1][0] != '-' && w[1].find_first_of("P") != std::string::npos)) {
      return Builtin(kDes, "tar -I", "tar -I/-F runs a program, and -P writes to absolute paths");
    }
    if (const std::string_view* dir = a.Value("-C", "--directory")) {
      if (IsTopLevel(*dir)) return Builtin(kDes, "tar -C /", "extracting into " + Quoted(*dir) + " can overwrite the system");
      if (std::optional<Verdict> system = SystemWrite(*dir)) return system;
    }
    if (const std::string_view* file = a.Value("-f", "--file")) {
      const std::string n = NormalizePath(*file);
      if (IsDevicePath(n)) return Builtin(kDes, "tar -f device", "tar on " + Quoted(*file) + " can overwrite a disk");
    }
    return std::nullopt;
  }
  if (prog == "unzip") {
    const Args a = ParseArgs(w, "dxP", {});
    if (const std::string_view* dir = a.Value("-d")) {
      if (IsTopLevel(*dir)) return Builtin(kDes, "unzip -d /", "extracting into " + Quoted(*dir) + " can overwrite the system");
      if (std::optional<Verdict> system = SystemWrite(*dir)) return system;
    }
    if (a.Short(':')) return Builtin(kDes, "unzip -:", "unzip -: writes outside the target directory");
    if (a.Short('l') || a.Short('Z') || a.Short('t') || a.Short('v')) return Builtin(kRO, "unzip -l", "only lists");
    return std::nullopt;
  }
  if (prog == "cpio") {
    const Args a = ParseArgs(w, "DEFHIMORs", {"--directory", "--file", "--format", "--rsh-command"});
    if (a.Short('t') || a.Long("--list")) return Builtin(kRO, "cpio -t", "only lists");
    if ((a.Short('i') || a.Long("--extract")) && !a.Long("--no-absolute-filenames")) {
      return Builtin(kDes, "cpio -i", "cpio -i writes every path the archive names, absolute ones too");
    }
    return Mutating("cpio", "cpio writes files");
  }
  if (prog == "loginctl") {
    const Args a = ParseArgs(w);
    if (!a.operands.empty() && OneOf(a.operands[0], {"poweroff", "reboot", "halt", "suspend", "hibernate",
                                                     "hybrid-sleep", "suspend-then-hibernate", "kexec", "soft-reboot",
                                                     "lock-sessions", "terminate-session", "terminate-user",
                                                     "kill-session", "kill-user", "disable-linger"})) {
      return Builtin(kDes, "loginctl " + std::string(a.operands[0]),
                     "loginctl " + std::string(a.operands[0]) + " powers off, reboots or ends sessions");
    }
    return std::nullopt;
  }
  if (prog == "numactl") {
    const Args a = ParseArgs(w);
    if (a.Short('H') || a.Long("--hardware") || a.Short('s') || a.Long("--show")) return ReadOnly("numactl");
    return Builtin(kDes, "numactl", "numactl runs a command labgate does not unwrap");
  }
  if (prog == "split") {
    for (size_t i = 1; i < w.size(); ++i) {
      if (StartsWith(w[i], "--filter")) return Builtin(kDes, "split --filter", "split --filter runs a shell command");
    }
    return std::nullopt;
  }
  if (prog == "apt" || prog == "apt-get" || prog == "aptitude") {
    for (size_t i = 1; i < w.size(); ++i) {
      const std::string_view a = w[i];
      if (a == "-o" || a == "-c" || StartsWith(a, "--option") || StartsWith(a, "--config-file") ||
          (StartsWith(a, "-o") && a.size() > 2)) {
        return Builtin(kDes, name + " -o", "apt options can name hooks that run commands");
      }
      if (i > 1 && (a.find('/') != std::string_view::npos || a.find(".deb") != std::string_view::npos)) {
        return Builtin(kDes, name + " install ./file", "installing a package file runs its maintainer scripts as root");
      }
    }
    return std::nullopt;
  }
  if (prog == "dpkg") {
    const Args a = ParseArgs(w);
    if (a.Short('i') || a.Long("--install") || a.Long("--unpack")) {
      return Builtin(kDes, "dpkg -i", "installing a package file runs its maintainer scripts as root");
    }
    return std::nullopt;
  }
  if (StartsWith(prog, "pip") || OneOf(prog, {"npm", "pnpm", "yarn", "gem", "cargo", "go"})) {
    const Args a = ParseArgs(w);
    if (!a.operands.empty() && OneOf(a.operands[0], {"install", "i", "add", "ci", "exec", "run", "x", "dlx", "get"})) {
      return Builtin(kDes, name + " install",
                     name + " " + std::string(a.operands[0]) + " runs the package's own build or install code");
    }
    return std::nullopt;
  }
  if (prog == "crontab") {
    const Args a = ParseArgs(w, "u", {});
    if (a.Short('l')) return Builtin(kRO, "crontab -l", "crontab -l only lists");
    return Builtin(kDes, "crontab", "crontab installs or deletes commands that cron runs later, unseen by labgate");
  }
  return std::nullopt;
}

// Setuid modes, encrypted devices, kernel settings, logs, downloads.
std::optional<Verdict> PermissionsAndDownloads(std::string_view prog, const Words& w) {
  const std::string name(prog);
  if (prog == "install" || prog == "chmod") {
    for (size_t i = 1; i < w.size(); ++i) {
      std::string_view mode = w[i];
      if (prog == "install" && (mode == "-m" || mode == "--mode") && i + 1 < w.size()) mode = w[++i];
      else if (prog == "install" && StartsWith(mode, "--mode=")) mode = mode.substr(7);
      else if (prog == "install" && StartsWith(mode, "-m") && mode.size() > 2) mode = mode.substr(2);
      else if (prog == "install") continue;
      const bool octal_set = mode.size() == 4 && std::all_of(mode.begin(), mode.end(), [](char ch) {
                               return ch >= '0' && ch <= '7';
                             }) && (mode[0] == '2' || mode[0] == '4' || mode[0] == '6');
      const bool symbolic_set = !mode.empty() && mode[0] != '-' && mode.find_first_of("+=") != std::string_view::npos &&
                                mode.find('s', mode.find_first_of("+=")) != std::string_view::npos;
      if (octal_set || symbolic_set) {
        return Builtin(kPriv, name + " setuid", Quoted(mode) + " makes a set-user-id or set-group-id program");
      }
    }
    return std::nullopt;
  }
  if (prog == "cryptsetup") {
    const Args a = ParseArgs(w);
    if (!a.operands.empty() && OneOf(a.operands[0], {"close", "luksClose", "remove", "luksSuspend", "suspend"})) {
      return Builtin(kDes, "cryptsetup close", "closing an encrypted device cuts off the file systems on it");
    }
    return std::nullopt;
  }
  if (prog == "sysctl") {
    const Args a = ParseArgs(w);
    if (a.AnyShort("wp") || a.Long("--write") || a.Long("--load") || a.Long("--system") ||
        std::any_of(a.operands.begin(), a.operands.end(),
                    [](std::string_view op) { return op.find('=') != std::string_view::npos; })) {
      return Builtin(kDes, "sysctl -w", "changing kernel settings can cut the network or destabilise the machine");
    }
    return std::nullopt;
  }
  if (prog == "journalctl" || prog == "dmesg") {
    for (size_t i = 1; i < w.size(); ++i) {
      if (StartsWith(w[i], "--vacuum") || (prog == "dmesg" && (w[i] == "-C" || w[i] == "-c" || w[i] == "--clear" ||
                                                               w[i] == "--read-clear"))) {
        return Builtin(kDes, name + " " + w[i], name + " " + w[i] + " deletes logs");
      }
    }
    return std::nullopt;
  }
  if (prog == "curl" || prog == "wget") {
    std::vector<std::string_view> outputs;
    for (size_t i = 1; i < w.size(); ++i) {
      const std::string_view a = w[i];
      const bool takes = (prog == "curl" && (a == "-o" || a == "--output" || a == "--output-dir" || a == "-K" ||
                                             a == "--config" || a == "-c" || a == "--cookie-jar" || a == "-D" ||
                                             a == "--dump-header")) ||
                         (prog == "wget" && (a == "-O" || a == "--output-document" || a == "-P" ||
                                             a == "--directory-prefix" || a == "-o" || a == "-a" || a == "-i"));
      if (takes && i + 1 < w.size()) outputs.push_back(w[++i]);
      const size_t eq = a.find('=');
      if (StartsWith(a, "--") && eq != std::string_view::npos) outputs.push_back(a.substr(eq + 1));
      if (a.size() > 2 && a[0] == '-' && a[1] != '-' && OneOf(a.substr(0, 2), {"-o", "-O", "-P"})) {
        outputs.push_back(a.substr(2));
      }
    }
    if (std::optional<Verdict> system = SystemWrites(outputs)) return system;
    return std::nullopt;
  }
  if (prog == "flatpak-spawn") {
    return Builtin(kDes, "flatpak-spawn", "flatpak-spawn --host runs a command outside the sandbox");
  }
  return std::nullopt;
}

// Families of programs the original table treated as unknown or too leniently. nullopt: not one.
std::optional<Verdict> FamilyVerdict(std::string_view prog, const Words& w) {
  for (auto family : {CodeRunners, MountsAndNetwork, ServicesAndHardware, ArchivesAndPackages,
                      PermissionsAndDownloads}) {
    if (std::optional<Verdict> v = family(prog, w)) return v;
  }
  return std::nullopt;
}

// The class of one simple command's program and arguments (not its redirections).
Verdict ProgramVerdict(const SimpleCommand& c) {
  const Words& w = c.words;
  const std::string_view prog = Basename(w[0]);
  const std::string name(prog);

  if (w[0].find('/') != std::string::npos && !InSystemBin(w[0])) {
    return Builtin(kDes, "program path",
                   Quoted(w[0]) + " is a program outside the system's bin directories (perhaps just written or "
                                  "downloaded); labgate cannot tell what it does, so a human confirms it");
  }
  if (std::optional<Verdict> v = FamilyVerdict(prog, w)) return *v;

  for (const Privileged& p : kPrivilegedPrograms) {
    if (p.program == prog) return Builtin(kPriv, prog, name + " " + std::string(p.reason));
  }
  if (prog == "ionice") {
    const Args a = ParseArgs(w, "cnpPu", {});
    if (a.AnyShort("pPu")) return Mutating("ionice -p", "ionice -p changes another process's I/O priority");
  }
  if (prog == "taskset") {
    const Args a = ParseArgs(w);
    if (a.Short('p') && a.operands.size() > 1) return Mutating("taskset -p", "taskset -p moves a running process");
    return Builtin(kRO, "taskset", "taskset only runs the command it wraps, which is judged on its own");
  }
  if (prog == "ionice" || InList(kPlainWrappers, prog)) {
    return Builtin(kRO, prog, name + " only runs the command it wraps, which is judged on its own");
  }
  if (IsShell(prog)) return Shell(prog, w);
  if (prog == "ssh") {
    return Builtin(kDes, "ssh",
                   "ssh runs commands on another machine (or this one) outside labgate's guardrails and sandbox; "
                   "make that machine a labgate target instead");
  }
  if (InList(kReadOnlyPrograms, prog)) return ReadOnly(prog);

  if (prog == "rm") return Rm(w);
  if (OneOf(prog, {"rmdir", "unlink", "touch", "mkdir", "chattr"})) {
    return FileWriter(prog, ParseArgs(w, "m", {"--mode"}).operands, name + " changes files");
  }
  if (OneOf(prog, {"chmod", "chown", "chgrp"})) {
    const Args a = ParseArgs(w, "", {"--reference", "--from"});
    if (a.Short('R') || a.LongPrefix("--recursive", 5)) {
      return Builtin(kDes, name + " -R", name + " -R changes ownership or permissions of whole trees");
    }
    return FileWriter(prog, a.operands, name + " changes ownership or permissions");
  }
  if (OneOf(prog, {"cp", "mv", "ln", "install", "rsync"})) {
    const Args a = ParseArgs(w, prog == "install" ? "mogtS" : (prog == "rsync" ? "eBTfM" : "tS"),
                             {"--target-directory", "--suffix", "--mode", "--owner", "--group", "--rsh", "--filter"});
    if (prog == "rsync" && a.LongStartingWith("--delete")) {
      return Builtin(kDes, "rsync --delete", "rsync --delete deletes files missing from the source");
    }
    std::vector<std::string_view> targets;
    if (const std::string_view* dir = a.Value("-t", "--target-directory")) targets.push_back(*dir);
    if (prog == "mv" || (prog == "install" && a.Short('d'))) {
      targets.insert(targets.end(), a.operands.begin(), a.operands.end());  // mv changes its sources too
    } else if (!a.operands.empty()) {
      targets.push_back(a.operands.back());
    }
    return FileWriter(prog, targets, name + " writes files");
  }
  if (prog == "tee") {
    const std::vector<std::string_view> files = ParseArgs(w).operands;
    if (std::all_of(files.begin(), files.end(), HarmlessTarget)) return ReadOnly("tee");
    return FileWriter("tee", files, "tee writes files");
  }
  if (prog == "truncate") {
    const Args a = ParseArgs(w, "sr", {"--size", "--reference"});
    if (std::optional<Verdict> system = SystemWrites(a.operands); system && system->risk > kDes) return *system;
    return Builtin(kDes, "truncate", "truncate cuts files short, losing their contents");
  }
  if (prog == "dd") {
    for (size_t i = 1; i < w.size(); ++i) {
      if (StartsWith(w[i], "of=")) {
        if (std::optional<Verdict> system = SystemWrite(std::string_view(w[i]).substr(3));
            system && system->risk > kDes) {
          return *system;
        }
      }
    }
    return Builtin(kDes, "dd", "dd copies raw blocks and overwrites whatever its of= names");
  }
  if (prog == "shred") return Builtin(kDes, "shred", "shred overwrites files so they cannot be recovered");
  if (prog == "wipefs") {
    const Args a = ParseArgs(w);
    if (a.Short('n') || a.Long("--no-act") || (!a.AnyShort("ao") && !a.Long("--all") && !a.Long("--offset"))) {
      return Builtin(kRO, "wipefs -n", "wipefs without -a only lists signatures");
    }
    return Builtin(kDes, "wipefs", "wipefs erases file system signatures");
  }
  if (StartsWith(prog, "mkfs") || OneOf(prog, {"mke2fs", "mkdosfs", "mkntfs", "mkexfatfs"})) {
    return Builtin(kDes, "mkfs", name + " creates a file system, erasing what was there");
  }
  if (OneOf(prog, {"mkswap", "blkdiscard", "zerofree"})) {
    return Builtin(kDes, prog, name + " overwrites a device's contents");
  }
  if (OneOf(prog, {"fdisk", "sfdisk", "parted", "gdisk", "sgdisk", "cfdisk"})) return Partitioner(prog, w);
  if (prog == "cryptsetup") {
    return ByVerb("cryptsetup", ParseArgs(w, "cdshSbo", {"--cipher", "--key-file", "--key-size", "--hash"}).operands,
                  Verbs{"status|luksDump|isLuks|luksUUID|tcryptDump|benchmark",
                        "luksFormat|erase|luksErase|reencrypt|luksKillSlot|luksRemoveKey|format"},
                  kMut, kRO);
  }
  if (OneOf(prog, {"lvremove", "vgremove", "pvremove", "lvreduce"})) {
    return Builtin(kDes, prog, name + " deletes LVM storage");
  }
  if (prog == "mdadm") {
    const Args a = ParseArgs(w);
    if (a.AnyShort("SCfr") || a.Long("--stop") || a.Long("--zero-superblock") || a.Long("--remove") ||
        a.Long("--fail") || a.Long("--create")) {
      return Builtin(kDes, "mdadm", "mdadm stops, fails or rebuilds RAID arrays");
    }
    if (a.AnyShort("DEQ") || a.Long("--detail") || a.Long("--examine") || a.Long("--query")) {
      return Builtin(kRO, "mdadm --detail", "mdadm --detail only reads");
    }
    return Mutating("mdadm", "mdadm changes RAID arrays");
  }
  if (OneOf(prog, {"shutdown", "reboot", "poweroff", "halt"})) {
    if (prog == "shutdown" && ParseArgs(w).Short('c')) return Mutating("shutdown -c", "shutdown -c cancels a shutdown");
    return Builtin(kDes, prog, name + " takes the machine down");
  }
  if (prog == "init" || prog == "telinit") {
    const Args a = ParseArgs(w);
    if (prog == "telinit" || OneOf(a.Operand(0), {"0", "6", "1", "s", "S", "single"})) {
      return Builtin(kDes, name + " " + std::string(a.Operand(0)), name + " changes the run level (halt or reboot)");
    }
    return Mutating(prog, name + " changes the run level");
  }
  if (prog == "systemctl") return Systemctl(w);
  if (prog == "service") return Service(w);
  if (OneOf(prog, {"docker", "podman", "nerdctl"})) return Docker(prog, w, false);
  if (prog == "docker-compose" || prog == "podman-compose") {
    return Docker(prog == "docker-compose" ? "docker" : "podman", w, true);
  }
  if (prog == "kubectl" || prog == "k3s" || prog == "oc") {
    Words words = w;
    if (prog == "k3s" && words.size() > 1 && words[1] == "kubectl") words.erase(words.begin());
    return ByVerb("kubectl",
                  ParseArgs(words, "nslcof",
                            {"--namespace", "--server", "--selector", "--container", "--output", "--filename",
                             "--context", "--kubeconfig", "--cluster", "--user"})
                      .operands,
                  Verbs{"get|describe|logs|top|version|explain|api-resources|api-versions|cluster-info|events|diff|"
                        "wait|config view|config get-contexts|config current-context|config get-clusters|config "
                        "get-users|rollout status|rollout history|auth can-i|auth whoami",
                        "delete|drain|rollout restart|rollout undo"},
                  kMut, kRO);
  }
  if (prog == "zfs") {
    return ByVerb("zfs", ParseArgs(w).operands,
                  Verbs{"list|get|holds|userspace|groupspace|projectspace|diff|version", "destroy|rollback"}, kMut,
                  kRO);
  }
  if (prog == "zpool") {
    return ByVerb("zpool", ParseArgs(w).operands,
                  Verbs{"list|status|iostat|get|history|events|version",
                        "destroy|labelclear|create|add|attach|replace|detach|remove|offline|export|split"},
                  kMut, kRO);
  }
  if (prog == "apt" || prog == "apt-get") {
    const Args a = ParseArgs(w, "otc", {"--option", "--target-release", "--config-file"});
    if (a.Short('s') || a.Long("--simulate") || a.Long("--dry-run") || a.Long("--just-print") || a.Long("--no-act")) {
      return Builtin(kRO, name + " -s", name + " -s only simulates");
    }
    return ByVerb(prog, a.operands,
                  Verbs{"list|show|policy|search|depends|rdepends|showsrc|madison|changelog",
                        "remove|purge|autoremove|autopurge|upgrade|dist-upgrade|full-upgrade"},
                  kMut, kRO);
  }
  if (OneOf(prog, {"dnf", "yum", "microdnf", "dnf5"})) {
    return ByVerb(prog, ParseArgs(w, "cx", {"--config", "--exclude", "--setopt", "--releasever"}).operands,
                  Verbs{"list|info|search|provides|whatprovides|repolist|repoinfo|repoquery|check-update|history|"
                        "history list|history info|deplist",
                        "remove|erase|upgrade|update|distro-sync|distrosync|autoremove|downgrade|upgrade-minimal|"
                        "update-minimal|history undo|history rollback|swap"},
                  kMut, kRO);
  }
  if (prog == "zypper") {
    return ByVerb(
        prog, ParseArgs(w).operands,
        Verbs{"search|se|info|if|list-updates|lu|patches|repos|lr", "remove|rm|update|up|dist-upgrade|dup|patch"}, kMut,
        kRO);
  }
  if (prog == "apk") {
    return ByVerb(prog, ParseArgs(w).operands, Verbs{"info|search|list|policy|version|dot", "del|upgrade"}, kMut, kRO);
  }
  if (prog == "snap" || prog == "flatpak") {
    return ByVerb(
        prog, ParseArgs(w).operands,
        Verbs{"list|info|find|search|version|changes|services", "remove|uninstall|stop|restart|disable|refresh|update"},
        kMut, kRO);
  }
  if (StartsWith(prog, "pip")) {
    return ByVerb(prog, ParseArgs(w).operands, Verbs{"list|show|freeze|check|search|help", "uninstall"}, kMut, kRO);
  }
  if (OneOf(prog, {"pacman", "yay", "paru"})) return Pacman(prog, w);
  if (prog == "dpkg") return Dpkg(w);
  if (prog == "rpm") return Rpm(w);
  if (OneOf(prog, {"kill", "pkill", "killall", "skill", "slay"})) return Kill(prog, w);
  if (prog == "fuser") {
    const Args a = ParseArgs(w);
    if (a.Short('k') || a.Long("--kill")) return Builtin(kDes, "fuser -k", "fuser -k kills processes");
    return ReadOnly("fuser");
  }
  if (OneOf(prog, {"iptables", "ip6tables", "iptables-legacy", "iptables-nft", "ip6tables-legacy", "ip6tables-nft",
                   "ebtables", "arptables"})) {
    return IptablesLike(prog, w);
  }
  if (OneOf(prog, {"iptables-restore", "ip6tables-restore", "iptables-legacy-restore", "iptables-nft-restore"})) {
    return Builtin(kDes, prog, name + " replaces the firewall rules");
  }
  if (prog == "nft") {
    const Args a = ParseArgs(w, "fI", {"--file", "--includepath"});
    if (a.Short('v') || a.Long("--version")) return ReadOnly("nft");
    if (a.Value("-f", "--file")) return Builtin(kDes, "nft -f", "nft -f loads firewall rules");
    return ByVerb("nft", a.operands, Verbs{"list|monitor|describe", ""}, kDes, kDes);
  }
  if (prog == "ufw") {
    const Args a = ParseArgs(w);
    if (a.Long("--version")) return ReadOnly("ufw");
    return ByVerb("ufw", a.operands, Verbs{"status|show|version|app list|app info", ""}, kDes, kRO);
  }
  if (prog == "firewall-cmd") {
    const Args a = ParseArgs(w);
    const bool reads = std::all_of(a.longs.begin(), a.longs.end(), [](std::string_view l) {
      return StartsWith(l, "--list") || StartsWith(l, "--get") || StartsWith(l, "--query") || l == "--state" ||
             StartsWith(l, "--info") || l == "--zone" || l == "--version" || l == "--help";
    });
    if (reads) return Builtin(kRO, "firewall-cmd --list", "firewall-cmd --list/--get/--query only reads");
    return Builtin(kDes, "firewall-cmd", "firewall-cmd changes the firewall, which can cut the machine off");
  }
  if (prog == "find") return Find(w);
  if (prog == "git") return Git(w);
  if (prog == "sed") return Sed(w);
  if (OneOf(prog, {"awk", "gawk", "mawk", "nawk", "busybox-awk"})) return Awk(prog, w);
  if (prog == "tar") return Tar(w);
  if (prog == "ip") return Ip(w);
  if (prog == "ifconfig") {
    const Args a = ParseArgs(w);
    if (std::find(a.operands.begin(), a.operands.end(), "down") != a.operands.end()) {
      return Builtin(kDes, "ifconfig down", "taking an interface down can cut the machine off");
    }
    if (a.operands.size() <= 1) return ReadOnly("ifconfig");
    return Mutating("ifconfig", "ifconfig with settings changes an interface");
  }
  if (prog == "mount") {
    const Args a = ParseArgs(w, "tOo", {"--types", "--test-opts", "--options"});
    if (a.operands.empty() && !a.Short('a') && !a.Long("--all")) return ReadOnly("mount");
    return Mutating("mount", "mount attaches file systems");
  }
  if (prog == "dmesg") {
    const Args a = ParseArgs(w, "nlfF", {});
    if (a.AnyShort("cCDEn") || a.Long("--clear") || a.Long("--read-clear") || a.Long("--console-off") ||
        a.Long("--console-on") || a.Long("--console-level")) {
      return Mutating("dmesg -c", "dmesg -c/-C/-n changes the kernel log");
    }
    return ReadOnly("dmesg");
  }
  if (prog == "journalctl") {
    const Args a = ParseArgs(w);
    for (std::string_view l : a.longs) {
      if (StartsWith(l, "--vacuum") || OneOf(l, {"--rotate", "--flush", "--sync", "--relinquish-var",
                                                 "--smart-relinquish-var", "--setup-keys", "--update-catalog"})) {
        return Mutating("journalctl " + std::string(l), "journalctl " + std::string(l) + " changes the journal");
      }
    }
    return ReadOnly("journalctl");
  }
  if (prog == "smartctl") {
    const Args a = ParseArgs(w, "tsoSXldTvFPbBrn", {});
    if (a.AnyShort("tXsoS") || a.Long("--test") || a.Long("--abort") || a.Long("--smart") || a.Long("--offlineauto") ||
        a.Long("--saveauto") || a.Long("--set")) {
      return Mutating("smartctl -t", "smartctl -t/-s changes or tests the drive");
    }
    return ReadOnly("smartctl");
  }
  if (prog == "sensors") {
    if (ParseArgs(w).Short('s')) return Mutating("sensors -s", "sensors -s writes chip settings");
    return ReadOnly("sensors");
  }
  if (prog == "nvidia-smi") return NvidiaSmi(w);
  if (prog == "hostname") {
    const Args a = ParseArgs(w, "F", {"--file"});
    if (!a.operands.empty() || a.Value("-F", "--file"))
      return Mutating("hostname", "hostname NAME renames the machine");
    return ReadOnly("hostname");
  }
  if (prog == "date") {
    const Args a = ParseArgs(w, "dfrI", {"--date", "--file", "--reference"});
    const bool sets =
        a.Short('s') || a.Long("--set") ||
        std::any_of(a.operands.begin(), a.operands.end(), [](std::string_view op) { return !StartsWith(op, "+"); });
    if (sets) return Mutating("date -s", "date -s sets the clock");
    return ReadOnly("date");
  }
  if (prog == "sort") {
    const Args a =
        ParseArgs(w, "okStT", {"--output", "--key", "--buffer-size", "--field-separator", "--temporary-directory"});
    if (const std::string_view* out = a.Value("-o", "--output")) {
      if (!HarmlessTarget(*out)) return FileWriter("sort -o", {*out}, "sort -o writes a file");
    }
    return ReadOnly("sort");
  }
  if (prog == "uniq") {
    const Args a = ParseArgs(w, "fsw", {});
    if (a.operands.size() >= 2 && !HarmlessTarget(a.operands[1])) {
      return FileWriter("uniq", {a.operands[1]}, "uniq IN OUT writes OUT");
    }
    return ReadOnly("uniq");
  }
  if (prog == "xxd") {
    const Args a = ParseArgs(w, "cgloOsn", {});
    if (a.operands.size() >= 2 && !HarmlessTarget(a.operands[1])) {
      return FileWriter("xxd", {a.operands[1]}, "xxd IN OUT writes OUT");
    }
    return ReadOnly("xxd");
  }
  if (prog == "yq") {
    const Args a = ParseArgs(w);
    if (a.Short('i') || a.Long("--inplace")) return Mutating("yq -i", "yq -i edits files in place");
    return ReadOnly("yq");
  }
  if (prog == "stty") {
    const Args a = ParseArgs(w, "F", {"--file"});
    if (a.operands.empty()) return ReadOnly("stty");
    return Mutating("stty", "stty changes terminal settings");
  }
  if (prog == "sysctl") return ReadOnly("sysctl");  // changing settings is destructive (FamilyVerdict)
  if (prog == "pihole") return Pihole(w);
  if (prog == "tailscale") {
    return ByVerb("tailscale", ParseArgs(w).operands,
                  Verbs{"status|ip|version|netcheck|ping|whois|dns status|exit-node list|serve status|funnel status",
                        "down|logout"},
                  kMut, kRO);
  }
  if (prog == "loginctl") {
    return ByVerb("loginctl", ParseArgs(w).operands,
                  Verbs{"list-sessions|list-users|list-seats|show-session|show-user|show-seat|session-status|user-"
                        "status|seat-status",
                        "terminate-session|terminate-user|terminate-seat|kill-session|kill-user"},
                  kMut, kRO);
  }
  if (prog == "timedatectl") {
    return ByVerb("timedatectl", ParseArgs(w).operands,
                  Verbs{"status|show|list-timezones|timesync-status|show-timesync", ""}, kMut, kRO);
  }
  if (prog == "hostnamectl") {
    const Args a = ParseArgs(w);
    if (a.operands.size() == 1 &&
        OneOf(a.operands[0], {"hostname", "icon-name", "chassis", "deployment", "location"})) {
      return Builtin(kRO, "hostnamectl status", "hostnamectl without a value only reads");
    }
    return ByVerb("hostnamectl", a.operands, Verbs{"status|show", ""}, kMut, kRO);
  }
  if (prog == "qm" || prog == "pct") {
    return ByVerb(prog, ParseArgs(w).operands,
                  Verbs{"list|status|config|pending|listsnapshot|showcmd|df",
                        "stop|destroy|shutdown|reset|reboot|rollback|delsnapshot|unlink|suspend"},
                  kMut, kRO);
  }
  if (prog == "pvesh") {
    return ByVerb("pvesh", ParseArgs(w).operands, Verbs{"get|ls|usage", "delete"}, kMut, kRO);
  }
  if (prog == "virsh") {
    return ByVerb("virsh", ParseArgs(w, "c", {"--connect"}).operands,
                  Verbs{"list|dominfo|domstate|dumpxml|net-list|pool-list|vol-list|nodeinfo|version|capabilities|"
                        "domblklist|domiflist|snapshot-list",
                        "destroy|undefine|shutdown|reboot|reset|snapshot-revert|snapshot-delete|vol-delete|pool-"
                        "destroy|pool-delete|net-destroy|net-undefine"},
                  kMut, kMut);
  }
  if (InList(kMutatingPrograms, prog)) return Mutating(prog, name + " changes files or state");
  return Unknown(prog);
}

// ---------------------------------------------------------------------------------------------
// Whole commands.

// The next command of the same pipeline as cmds[i]: same depth, skipping deeper commands
// (substitutions) and cmds[i]'s own unwrapped commands. npos when the level ends.
size_t NextAtSameLevel(const std::vector<SimpleCommand>& cmds, size_t i) {
  const int depth = cmds[i].depth;
  for (size_t k = i + 1; k < cmds.size(); ++k) {
    if (cmds[k].depth > depth) continue;
    if (cmds[k].depth < depth) return std::string_view::npos;
    if (cmds[k].wrappers.size() > cmds[i].wrappers.size()) continue;
    return k;
  }
  return std::string_view::npos;
}

bool IsReceiver(const SimpleCommand& c) {
  const std::string_view prog = Program(c);
  return c.dynamic || IsShell(prog) || IsInterpreter(prog) || IsPrivilegeWrapper(prog) ||
         OneOf(prog, {"eval", "source", "."});
}

// cmds[j] or what it unwraps to runs input as code.
bool ReceivesCode(const std::vector<SimpleCommand>& cmds, size_t j) {
  if (IsReceiver(cmds[j])) return true;
  for (size_t k = j + 1; k < cmds.size() && cmds[k].depth >= cmds[j].depth; ++k) {
    if (cmds[k].depth > cmds[j].depth) continue;
    if (cmds[k].wrappers.size() <= cmds[j].wrappers.size()) break;
    if (IsReceiver(cmds[k])) return true;
  }
  return false;
}

/// For each simple command that pipes on: whether a later command of its pipeline runs its input
/// as code. Memoised, so a pipeline of n downloaders costs O(n), not O(n^2).
class Downstream {
 public:
  explicit Downstream(const std::vector<SimpleCommand>& cmds) : cmds_(cmds), memo_(cmds.size(), kUnknown) {}

  bool RunsCode(size_t i) {
    // Walk forward to the first known answer, then fill in the answers on the way back.
    std::vector<size_t> path;
    bool answer = false;
    size_t k = i;
    while (true) {
      if (memo_[k] != kUnknown) {
        answer = memo_[k] == kYes;
        break;
      }
      if (!cmds_[k].pipes_to_next) {
        answer = false;
        break;
      }
      const size_t j = NextAtSameLevel(cmds_, k);
      if (j == std::string_view::npos) {
        answer = false;
        break;
      }
      path.push_back(k);
      if (ReceivesCode(cmds_, j)) {
        answer = true;
        break;
      }
      k = j;
    }
    for (size_t p : path) memo_[p] = answer ? kYes : kNo;
    return answer;
  }

 private:
  static constexpr char kUnknown = 0, kYes = 1, kNo = 2;
  const std::vector<SimpleCommand>& cmds_;
  std::vector<char> memo_;
};

std::optional<Verdict> DownloadRuns(const std::vector<SimpleCommand>& cmds, size_t i, Downstream& downstream) {
  const SimpleCommand& c = cmds[i];
  const std::string_view prog = Program(c);
  const Verdict run = Builtin(kDes, "curl|sh",
                              "downloaded text is run as code (" + std::string(prog) +
                                  " feeding a shell or interpreter); labgate cannot see it");
  if (IsDownloader(prog) && c.pipes_to_next && downstream.RunsCode(i)) return run;
  if (IsShell(prog) || IsInterpreter(prog) || OneOf(prog, {"source", "."})) {
    for (size_t k = 1; k < c.words.size(); ++k) {
      if (SubstitutionDownloads(c.words[k])) return run;
    }
    for (const Redirect& r : c.redirects) {
      if (SubstitutionDownloads(r.target)) return run;
    }
  }
  return std::nullopt;
}

std::optional<Verdict> RedirectVerdict(const Redirect& r) {
  if (!r.writes || HarmlessTarget(r.target)) return std::nullopt;
  if (std::optional<Verdict> system = SystemWrite(r.target)) return system;
  return Builtin(kMut, "redirect", "`" + r.op + " " + r.target + "` writes a file");
}

// `$HOME/x` and `${HOME}/x` written as `~/x`, so one spelling of a protected path matches all.
std::string HomeAsTilde(std::string text) {
  for (std::string_view home : {"${HOME}", "$HOME"}) {
    for (size_t at = text.find(home); at != std::string::npos; at = text.find(home, at + 1)) {
      text.replace(at, home.size(), "~");
    }
  }
  return text;
}

// A word or redirection of `c` that names one of labgate's own files.
std::optional<Verdict> TouchesProtected(const SimpleCommand& c, const std::vector<std::string>& protected_paths) {
  if (protected_paths.empty()) return std::nullopt;
  auto names = [&](const std::string& text) -> const std::string* {
    const std::string word = HomeAsTilde(text);
    for (const std::string& p : protected_paths) {
      for (size_t at = word.find(p); at != std::string::npos; at = word.find(p, at + 1)) {
        // `/etc/labgate` names /etc/labgate/x and /etc/labgate.d, not /etc/labgate-guard.
        const size_t end = at + p.size();
        const char next = end < word.size() ? word[end] : '/';
        if (next == '/' || next == '.' || !(std::isalnum(static_cast<unsigned char>(next)) || next == '-' || next == '_')) {
          return &p;
        }
      }
    }
    return nullptr;
  };
  std::vector<const std::string*> texts;
  for (const std::string& w : c.words) texts.push_back(&w);
  for (const Redirect& r : c.redirects) texts.push_back(&r.target);
  for (const std::string& a : c.assignments) texts.push_back(&a);
  for (const std::string* text : texts) {
    if (const std::string* p = names(*text)) {
      return Builtin(kPriv, "labgate state",
                     Quoted(*text) + " names labgate's own configuration, state or audit log (" + *p +
                         "), which only an operator changes or reads");
    }
  }
  // Moving, removing or re-permissioning a directory above those files moves them out from
  // under the sandbox's mounts (the sandbox refuses it too; this says so before anything runs).
  if (!c.words.empty() && OneOf(Basename(c.words[0]), {"mv", "rename", "rm", "rmdir", "ln", "chmod", "chown", "chgrp",
                                                       "chattr", "mount", "umount", "setfacl"})) {
    for (size_t i = 1; i < c.words.size(); ++i) {
      std::string word = HomeAsTilde(c.words[i]);
      while (word.size() > 1 && word.back() == '/') word.pop_back();
      // `/` itself is judged by what is done to it (`rm -rf /` is destructive, and denied by default).
      if (word.empty() || word[0] == '-' || word == "/") continue;
      for (const std::string& p : protected_paths) {
        if (p.size() > word.size() && p.compare(0, word.size(), word) == 0 && p[word.size()] == '/') {
          return Builtin(kPriv, "labgate state",
                         Quoted(c.words[i]) + " holds labgate's own configuration, state or audit log (" + p +
                             "); moving or changing it is for an operator");
        }
      }
    }
  }
  return std::nullopt;
}

Verdict JudgeOne(const std::vector<SimpleCommand>& cmds, size_t i, const std::vector<ClassifyRule>& extra,
                 Downstream& downstream, const std::vector<std::string>& protected_paths) {
  const SimpleCommand& c = cmds[i];
  Verdict v;
  if (c.words.empty()) {
    v = Builtin(kRO, "no-program", "no program runs, only assignments or redirections");
  } else if (c.dynamic) {
    v = Builtin(kDes, "dynamic", "the program is computed at run time; labgate cannot see what it runs");
  } else {
    const std::string text = CommandText(c);
    const ClassifyRule* matched = nullptr;
    for (const ClassifyRule& rule : extra) {
      if (GlobMatch(rule.pattern, text)) {
        matched = &rule;
        break;
      }
    }
    if (matched && matched->risk == kRO) {
      v = Verdict{kRO, matched->source,
                  "an operator rule (" + matched->source + ") marks `" + matched->pattern + "` read-only"};
    } else {
      v = ProgramVerdict(c);
      if (matched && matched->risk >= v.risk) {
        v = Verdict{
            matched->risk, matched->source,
            "an operator rule (" + matched->source + ") marks `" + matched->pattern + "` " + RiskName(matched->risk)};
      }
    }
    // At equal risk, "downloaded code runs" says more than "an interpreter runs".
    if (std::optional<Verdict> download = DownloadRuns(cmds, i, downstream); download && download->risk >= v.risk) {
      v = std::move(*download);
    }
    // Under xargs, parallel and find -exec the arguments come from input or the file system:
    // a command that changes what it is given may change anything.
    const bool args_from_input = std::any_of(c.wrappers.begin(), c.wrappers.end(), [](const std::string& w) {
      return OneOf(w, {"xargs", "parallel", "find"});
    });
    if (args_from_input && v.risk == kMut) {
      v = Builtin(kDes, "input arguments",
                  Quoted(CommandText(c)) + " changes what it is given, and its arguments come from input labgate "
                                           "cannot see");
    }
  }
  for (const std::string& assignment : c.assignments) {
    if (std::optional<Verdict> set = AssignmentVerdict(assignment)) Raise(v, std::move(*set));
  }
  if (std::optional<Verdict> own = TouchesProtected(c, protected_paths)) Raise(v, std::move(*own));
  for (const Redirect& r : c.redirects) {
    if (std::optional<Verdict> written = RedirectVerdict(r)) Raise(v, std::move(*written));
  }
  return v;
}

}  // namespace

std::optional<std::string> NonInertAssignment(const SimpleCommand& command) {
  for (const std::string& assignment : command.assignments) {
    if (AssignmentVerdict(assignment)) return assignment.substr(0, assignment.find('='));
  }
  return std::nullopt;
}

const char* RiskName(Risk risk) {
  switch (risk) {
    case Risk::kReadOnly:
      return "read-only";
    case Risk::kMutating:
      return "mutating";
    case Risk::kDestructive:
      return "destructive";
    case Risk::kPrivileged:
      return "privileged";
  }
  return "unknown";
}

std::optional<Risk> ParseRisk(std::string_view name) {
  for (Risk r : {Risk::kReadOnly, Risk::kMutating, Risk::kDestructive, Risk::kPrivileged}) {
    if (name == RiskName(r)) return r;
  }
  return std::nullopt;
}

Classification Classify(const ParsedCommand& command, const std::vector<ClassifyRule>& extra,
                        const std::vector<std::string>& protected_paths) {
  Classification best;
  bool have = false;
  Downstream downstream(command.commands);
  for (size_t i = 0; i < command.commands.size(); ++i) {
    Verdict v = JudgeOne(command.commands, i, extra, downstream, protected_paths);
    if (!have || v.risk > best.risk) {
      best = Classification{v.risk, std::move(v.rule), std::move(v.reason), CommandText(command.commands[i])};
      have = true;
    }
  }
  if (!have) best = Classification{Risk::kReadOnly, "builtin:empty", "there is no command to run", ""};
  if (command.loops && command.backgrounds && best.risk < Risk::kDestructive) {
    best = Classification{Risk::kDestructive, "builtin:loop &",
                          "a loop that starts commands in the background can start processes without end", ""};
  }
  if (command.defines_function && best.risk < Risk::kDestructive) {
    best = Classification{Risk::kDestructive, "builtin:function",
                          "the command defines a shell function, which can shadow a program's name or recurse "
                          "without end (a fork bomb)",
                          ""};
  }
  if (!command.complete && best.risk < Risk::kDestructive) {
    best = Classification{
        Risk::kDestructive, "builtin:incomplete",
        "labgate could not read the whole command (" + command.problem + "), so it cannot see everything it would run",
        ""};
  }
  return best;
}

std::optional<Classification> FindPrivilegedPart(const ParsedCommand& command, const std::vector<ClassifyRule>& extra,
                                                 const std::vector<std::string>& protected_paths) {
  if (!command.complete) {
    return Classification{Risk::kDestructive, "builtin:incomplete",
                          "labgate could not read the whole command (" + command.problem + ")", ""};
  }
  Downstream downstream(command.commands);
  for (size_t i = 0; i < command.commands.size(); ++i) {
    Verdict v = JudgeOne(command.commands, i, extra, downstream, protected_paths);
    const bool system_write = OneOf(v.rule, {"builtin:write /etc", "builtin:write /boot", "builtin:write device",
                                             "builtin:write system"});
    if (v.risk == Risk::kPrivileged || system_write || v.rule == "builtin:dynamic") {
      return Classification{v.risk, std::move(v.rule), std::move(v.reason), CommandText(command.commands[i])};
    }
  }
  return std::nullopt;
}

Classification ClassifyWrite(std::string_view path, const std::vector<std::string>& protected_paths,
                             std::string_view home) {
  const std::string n = NormalizePath(path);
  for (const std::string& p : protected_paths) {
    std::string own = p;
    if (own.rfind("~/", 0) == 0) {
      if (home.empty()) continue;
      own = std::string(home) + own.substr(1);
    }
    if (Under(n, NormalizePath(own))) {
      return Classification{kPriv, "builtin:labgate state",
                            Quoted(n) + " is labgate's own configuration, state or audit log (" + p +
                                "), which only an operator changes",
                            n};
    }
  }
  if (std::optional<Verdict> v = SystemWrite(n)) return Classification{v->risk, v->rule, v->reason, n};
  return Classification{Risk::kMutating, "builtin:write file", "writing " + Quoted(n) + " changes a file", n};
}

}  // namespace labgate::policy
