#include "capabilities/file_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <random>

#include "core/hashing.h"
#include "core/os_user.h"
#include "core/text.h"

namespace labgate::capabilities {

// Outside the anonymous namespace: LocalFileWriter::State holds them.
// Owns a descriptor.
class FileOpsFd {
 public:
  explicit FileOpsFd(int fd = -1) : fd_(fd) {}
  ~FileOpsFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileOpsFd(FileOpsFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileOpsFd& operator=(FileOpsFd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

namespace {

using core::ErrorCode;
using core::MakeError;

constexpr std::size_t kIoChunk = 256 * 1024;

core::Error FileErrno(const std::string& what, const std::string& path, int err) {
  ErrorCode code = ErrorCode::kIo;
  std::string hint;
  switch (err) {
    case ENOENT:
      code = ErrorCode::kNotFound;
      hint = "; check the path with file list on its directory";
      break;
    case EACCES:
    case EPERM:
      code = ErrorCode::kRefused;
      hint = "; the login labgate uses on this target may not do that";
      break;
    case ELOOP:
      code = ErrorCode::kRefused;
      hint = "; a component of the path is a symlink, which labgate does not follow (give the path it points to)";
      break;
    case ENOTDIR:
      code = ErrorCode::kInvalidArgument;
      hint = "; a component of the path is not a directory";
      break;
    case ENOSPC:
    case EDQUOT:
      hint = "; the file system is full: nothing was changed";
      break;
    default:
      break;
  }
  return MakeError(code, what + " " + path + ": " + std::strerror(err) + hint);
}

std::string TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISLNK(mode)) return "symlink";
  return "other";
}

std::string OwnerName(uid_t uid) {
  auto account = core::AccountOf(uid);
  return account ? account->name : std::to_string(uid);
}

std::string GroupName(gid_t gid) {
  std::vector<char> buf(4096);
  struct group gr{};
  struct group* out = nullptr;
  if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &out) == 0 && out) return out->gr_name;
  return std::to_string(gid);
}

FileInfo InfoOf(const std::string& path, const struct stat& st) {
  FileInfo info;
  info.path = path;
  info.name = std::string(core::Basename(path));
  if (path == "/") info.name = "/";
  info.type = TypeOf(st.st_mode);
  info.size = static_cast<std::uint64_t>(st.st_size);
  info.mode = st.st_mode & 07777;
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  info.owner = OwnerName(st.st_uid);
  info.group = GroupName(st.st_gid);
  info.mtime = st.st_mtim.tv_sec;
  return info;
}

std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

core::Status CheckAbsolute(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return MakeError(ErrorCode::kInvalidArgument, "the path " + core::Clip(path, 120) + " is not absolute");
  }
  for (const auto& part : Components(path)) {
    if (part == "." || part == "..") {
      return MakeError(ErrorCode::kInvalidArgument, "the path " + core::Clip(path, 120) + " is not normalised");
    }
  }
  return core::Ok();
}

// Opens the directory holding `path`'s last component without following a symlink anywhere on
// the way, and says what that component is called. `read` opens it readable (for fsync and
// listing) rather than as a bare O_PATH handle.
core::Result<std::pair<FileOpsFd, std::string>> OpenParent(const std::string& path, bool readable) {
  if (auto ok = CheckAbsolute(path); !ok) return ok.error();
  std::vector<std::string> parts = Components(path);
  if (parts.empty()) return MakeError(ErrorCode::kInvalidArgument, "/ has no parent directory");
  std::string name = parts.back();
  parts.pop_back();
  FileOpsFd dir(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.ok()) return FileErrno("cannot open", "/", errno);
  std::string walked;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    walked += "/" + parts[i];
    const bool last = i + 1 == parts.size();
    const int flags = (last && readable ? O_RDONLY : O_PATH) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    FileOpsFd next(::openat(dir.get(), parts[i].c_str(), flags));
    if (!next.ok()) {
      const int err = errno;
      struct stat st{};
      if (::fstatat(dir.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        return FileErrno("cannot reach", walked, ELOOP);
      }
      return FileErrno("cannot open directory", walked, err);
    }
    dir = std::move(next);
  }
  if (parts.empty() && readable) {
    dir = FileOpsFd(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.ok()) return FileErrno("cannot open", "/", errno);
  }
  return std::make_pair(std::move(dir), name);
}

// Opens a regular file for reading through OpenParent, refusing a symlink or anything else.
core::Result<FileOpsFd> OpenRegular(const std::string& path, struct stat& st) {
  auto parent = OpenParent(path, false);
  if (!parent) return parent.error();
  FileOpsFd fd(::openat(parent->first.get(), parent->second.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.ok()) return FileErrno("cannot open", path, errno);
  if (::fstat(fd.get(), &st) != 0) return FileErrno("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     path + " is a " + TypeOf(st.st_mode) + ", not a regular file; use file list or stat on it");
  }
  return fd;
}

core::Result<std::string> DigestOf(int fd) {
  core::Sha256 digest;
  std::string buf(kIoChunk, '\0');
  off_t at = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return MakeError(ErrorCode::kIo, std::string("cannot read: ") + std::strerror(errno));
    }
    if (n == 0) break;
    digest.Update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    at += n;
  }
  return digest.HexDigest();
}

std::string TempName(const std::string& name) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  std::string base = name.size() > 200 ? name.substr(0, 200) : name;
  return "." + base + ".labgate-" + suffix;
}

class LocalFileAccessor final : public FileAccessor {
 public:
  core::Result<std::string> Home() override {
    std::string home = core::HomeDirectory();
    if (home.empty() || home[0] != '/') return MakeError(ErrorCode::kNotFound, "this machine's home directory is unknown");
    return home;
  }

  core::Result<std::string> RealPath(const std::string& path) override {
    if (auto ok = CheckAbsolute(path); !ok) return ok.error();
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf) != nullptr) return std::string(buf);
    if (errno != ENOENT || path == "/") return FileErrno("cannot resolve", path, errno);
    // A file that does not exist yet: its directory must.
    const std::size_t slash = path.rfind('/');
    const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    const std::string name = path.substr(slash + 1);
    if (::realpath(dir.c_str(), buf) == nullptr) return FileErrno("cannot resolve", dir, errno);
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      return MakeError(ErrorCode::kRefused, path + " is a symlink to a missing file; labgate does not follow it");
    }
    const std::string d = buf;
    return (d == "/" ? "" : d) + "/" + name;
  }

  core::Result<FileInfo> Stat(const std::string& path) override {
    if (path == "/") {
      struct stat st{};
      if (::lstat("/", &st) != 0) return FileErrno("cannot stat", path, errno);
      return InfoOf(path, st);
    }
    auto parent = OpenParent(path, false);
    if (!parent) return parent.error();
    struct stat st{};
    if (::fstatat(parent->first.get(), parent->second.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return FileErrno("cannot stat", path, errno);
    }
    FileInfo info = InfoOf(path, st);
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      const ssize_t n = ::readlinkat(parent->first.get(), parent->second.c_str(), target, sizeof target - 1);
      if (n > 0) info.link_target.assign(target, static_cast<std::size_t>(n));
    }
    return info;
  }

  core::Result<std::vector<FileInfo>> List(const std::string& path, std::size_t max_entries, bool* truncated) override {
    FileOpsFd dir;
    if (path == "/") {
      dir = FileOpsFd(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    } else {
      auto parent = OpenParent(path, false);
      if (!parent) return parent.error();
      dir = FileOpsFd(::openat(parent->first.get(), parent->second.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!dir.ok()) {
      const int err = errno;
      if (err == ENOTDIR) {
        return MakeError(ErrorCode::kInvalidArgument, path + " is not a directory; use file stat or read on it");
      }
      return FileErrno("cannot list", path, err);
    }
    const int dup = ::dup(dir.get());
    DIR* d = ::fdopendir(dup);
    if (d == nullptr) {
      ::close(dup);
      return FileErrno("cannot list", path, errno);
    }
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    if (truncated) *truncated = names.size() > max_entries;
    if (names.size() > max_entries) names.resize(max_entries);
    std::vector<FileInfo> out;
    out.reserve(names.size());
    const std::string prefix = path == "/" ? "" : path;
    for (const auto& name : names) {
      struct stat st{};
      if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
      FileInfo info = InfoOf(prefix + "/" + name, st);
      if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        const ssize_t n = ::readlinkat(dir.get(), name.c_str(), target, sizeof target - 1);
        if (n > 0) info.link_target.assign(target, static_cast<std::size_t>(n));
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  core::Result<FileData> Read(const std::string& path, std::uint64_t offset, std::uint64_t length,
                              std::uint64_t max_bytes) override {
    struct stat st{};
    auto fd = OpenRegular(path, st);
    if (!fd) return fd.error();
    FileData data;
    data.offset = offset;
    data.file_size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t available = offset >= data.file_size ? 0 : data.file_size - offset;
    const std::uint64_t want = length == 0 ? available : std::min(length, available);
    if (want > max_bytes) {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + " holds " + std::to_string(want) + " bytes from offset " + std::to_string(offset) +
                           ", more than the " + std::to_string(max_bytes) +
                           " allowed; read a range (offset/length) or raise [policies.file] max_read_bytes");
    }
    const bool whole = offset == 0 && want == data.file_size;
    data.bytes.resize(want);
    std::uint64_t got = 0;
    while (got < want) {
      const ssize_t n = ::pread(fd->get(), data.bytes.data() + got, std::min<std::uint64_t>(want - got, kIoChunk),
                                static_cast<off_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return FileErrno("cannot read", path, errno);
      }
      if (n == 0) break;  // shrank meanwhile
      got += static_cast<std::uint64_t>(n);
    }
    data.bytes.resize(got);
    if (whole && got == want) data.sha256 = core::Sha256Hex(data.bytes);
    return data;
  }

  core::Result<WriteOutcome> Write(const std::string& path, std::string_view content, const WriteOptions& options) override {
    auto writer = LocalFileWriter::Open(path, options);
    if (!writer) return writer.error();
    if (auto ok = (*writer)->Append(content); !ok) return ok.error();
    return (*writer)->Commit();
  }
};

}  // namespace

struct LocalFileWriter::State {
  std::string path;
  WriteOptions options;
  FileOpsFd dir;
  std::string name;
  std::string temp;
  FileOpsFd out;
  bool exists = false;
  struct stat old{};
  mode_t mode = 0644;
  core::Sha256 digest;
  WriteOutcome outcome;
  bool done = false;
};

core::Result<std::unique_ptr<LocalFileWriter>> LocalFileWriter::Open(const std::string& path, const WriteOptions& options) {
  if (options.as_root) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "sudo is for SSH hosts and paired nodes (with sudo_password_env or sudo_password_file); `local` files are "
                     "written as the account labgate runs under");
  }
  auto parent = OpenParent(path, true);
  if (!parent) return parent.error();
  auto state = std::make_unique<State>();
  state->path = path;
  state->options = options;
  state->dir = std::move(parent->first);
  state->name = parent->second;
  const int dir = state->dir.get();
  const std::string& name = state->name;
  struct stat& old = state->old;
  const bool exists = ::fstatat(dir, name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists && errno != ENOENT) return FileErrno("cannot stat", path, errno);
  state->exists = exists;
  WriteOutcome& outcome = state->outcome;
  if (exists) {
    if (S_ISLNK(old.st_mode)) {
      return MakeError(ErrorCode::kRefused, path + " is a symlink; labgate writes files, never through links "
                                                   "(write the path it points to)");
    }
    if (!S_ISREG(old.st_mode)) {
      return MakeError(ErrorCode::kInvalidArgument, path + " is a " + TypeOf(old.st_mode) + ", not a regular file");
    }
    if (options.create_only || !options.overwrite) {
      return MakeError(ErrorCode::kRefused, path + " exists; nothing was written (drop createOnly, or set "
                                                   "overwrite, to replace it)");
    }
    FileOpsFd current(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!current.ok()) return FileErrno("cannot read the current", path, errno);
    auto digest = DigestOf(current.get());
    if (!digest) return digest.error();
    outcome.previous_sha256 = *digest;
    outcome.previous_size = static_cast<std::uint64_t>(old.st_size);
  }
  if (auto ok = CheckExpectedDigest(path, options, outcome.previous_sha256); !ok) return ok.error();
  state->mode = options.mode ? static_cast<mode_t>(*options.mode & 07777)
                             : (exists ? (old.st_mode & 07777) : static_cast<mode_t>(0644));
  state->temp = TempName(name);
  state->out = FileOpsFd(::openat(dir, state->temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!state->out.ok()) return FileErrno("cannot create a temporary file beside", path, errno);
  std::unique_ptr<LocalFileWriter> writer(new LocalFileWriter());
  writer->state_ = std::move(state);
  return writer;
}

LocalFileWriter::~LocalFileWriter() {
  if (state_ && !state_->done) ::unlinkat(state_->dir.get(), state_->temp.c_str(), 0);
}

core::Status LocalFileWriter::Append(std::string_view content) {
  State& s = *state_;
  if (s.done) return MakeError(ErrorCode::kInvalidArgument, "the write of " + s.path + " is already finished");
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(s.out.get(), content.data() + done, std::min(content.size() - done, kIoChunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileErrno("cannot write", s.path, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  s.digest.Update(content);
  size_ += content.size();
  return core::Ok();
}

core::Result<WriteOutcome> LocalFileWriter::Commit(const std::string& content_sha256) {
  State& s = *state_;
  if (s.done) return MakeError(ErrorCode::kInvalidArgument, "the write of " + s.path + " is already finished");
  const std::string digest = s.digest.HexDigest();
  if (!content_sha256.empty() && content_sha256 != digest) {
    return MakeError(ErrorCode::kIo, "the content of " + s.path + " arrived damaged (sha256 " + digest + ", expected " +
                                         content_sha256 + "); nothing was written");
  }
  const int dir = s.dir.get();
  const int out = s.out.get();
  if (s.exists && (s.old.st_uid != ::geteuid() || s.old.st_gid != ::getegid())) {
    // Keep the owner where the login may (root may; others may keep their own group).
    if (::fchown(out, s.old.st_uid, s.old.st_gid) != 0 && ::geteuid() == 0) return FileErrno("cannot set the owner of", s.path, errno);
  }
  if (::fchmod(out, s.mode) != 0) return FileErrno("cannot set the mode of", s.path, errno);
  if (::fsync(out) != 0) return FileErrno("cannot sync", s.path, errno);
  const WriteOptions& o = s.options;
  if (!s.exists && (o.create_only || !o.overwrite || (o.expected_sha256 && o.expected_sha256->empty()))) {
    // link() never replaces: a file that appeared since Open stays as it is.
    if (::linkat(dir, s.temp.c_str(), dir, s.name.c_str(), 0) != 0) {
      const int err = errno;
      if (err == EEXIST) {
        return MakeError(ErrorCode::kRefused, s.path + " appeared while it was being written; nothing was replaced");
      }
      return FileErrno("cannot create", s.path, err);
    }
    ::unlinkat(dir, s.temp.c_str(), 0);
  } else if (::renameat(dir, s.temp.c_str(), dir, s.name.c_str()) != 0) {
    return FileErrno("cannot replace", s.path, errno);
  }
  s.done = true;
  (void)::fsync(dir);
  s.outcome.created = !s.exists;
  s.outcome.sha256 = digest;
  s.outcome.size = size_;
  s.outcome.mode = s.mode;
  return s.outcome;
}

nlohmann::json EncodeFileInfo(const FileInfo& info) {
  nlohmann::json j = {{"path", info.path}, {"name", info.name},   {"type", info.type},   {"size", info.size},
                      {"mode", info.mode}, {"uid", info.uid},     {"gid", info.gid},     {"owner", info.owner},
                      {"group", info.group}, {"mtime", info.mtime}};
  if (!info.link_target.empty()) j["linkTarget"] = info.link_target;
  return j;
}

core::Result<FileInfo> DecodeFileInfo(const nlohmann::json& j) {
  try {
    FileInfo info;
    info.path = j.at("path").get<std::string>();
    info.name = j.at("name").get<std::string>();
    info.type = j.at("type").get<std::string>();
    info.size = j.at("size").get<std::uint64_t>();
    info.mode = j.at("mode").get<std::uint32_t>();
    info.uid = j.at("uid").get<std::uint32_t>();
    info.gid = j.at("gid").get<std::uint32_t>();
    info.owner = j.at("owner").get<std::string>();
    info.group = j.at("group").get<std::string>();
    info.mtime = j.at("mtime").get<std::int64_t>();
    if (j.contains("linkTarget")) info.link_target = j["linkTarget"].get<std::string>();
    return info;
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInvalidArgument, std::string("malformed file entry: ") + e.what());
  }
}

core::Status CheckExpectedDigest(const std::string& path, const WriteOptions& options,
                                 const std::optional<std::string>& current) {
  if (!options.expected_sha256) return core::Ok();
  const std::string& want = *options.expected_sha256;
  if (want.empty() ? !current.has_value() : (current && want == *current)) return core::Ok();
  return MakeError(ErrorCode::kRefused,
                   path + (current ? " now has SHA-256 " + *current : std::string(" does not exist")) +
                       ", not the expected " + (want.empty() ? std::string("(no file)") : want) +
                       ": someone changed it since it was read; nothing was written. Read it again and retry");
}

nlohmann::json EncodeWriteOutcome(const WriteOutcome& o) {
  nlohmann::json j = {{"created", o.created}, {"sha256", o.sha256}, {"size", o.size}, {"mode", o.mode},
                      {"previousSize", o.previous_size}};
  if (o.previous_sha256) j["previousSha256"] = *o.previous_sha256;
  return j;
}

core::Result<WriteOutcome> DecodeWriteOutcome(const nlohmann::json& j) {
  try {
    WriteOutcome o;
    o.created = j.at("created").get<bool>();
    o.sha256 = j.at("sha256").get<std::string>();
    o.size = j.at("size").get<std::uint64_t>();
    o.mode = j.at("mode").get<std::uint32_t>();
    o.previous_size = j.value("previousSize", std::uint64_t{0});
    if (j.contains("previousSha256")) o.previous_sha256 = j["previousSha256"].get<std::string>();
    return o;
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInvalidArgument, std::string("malformed write result: ") + e.what());
  }
}

nlohmann::json EncodeWriteOptions(const WriteOptions& o) {
  nlohmann::json j = {{"createOnly", o.create_only}, {"overwrite", o.overwrite}};
  if (o.mode) j["mode"] = *o.mode;
  if (o.expected_sha256) j["expectedSha256"] = *o.expected_sha256;
  return j;
}

core::Result<WriteOptions> DecodeWriteOptions(const nlohmann::json& j) {
  try {
    WriteOptions o;
    o.create_only = j.value("createOnly", false);
    o.overwrite = j.value("overwrite", true);
    if (j.contains("mode")) o.mode = j["mode"].get<std::uint32_t>() & 07777;
    if (j.contains("expectedSha256")) o.expected_sha256 = j["expectedSha256"].get<std::string>();
    return o;
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInvalidArgument, std::string("malformed write options: ") + e.what());
  }
}

std::unique_ptr<FileAccessor> LocalFiles() { return std::make_unique<LocalFileAccessor>(); }

bool LooksLikeText(std::string_view bytes) {
  if (bytes.find('\0') != std::string_view::npos) return false;
  return core::ToValidUtf8(bytes) == bytes;
}

}  // namespace labgate::capabilities
