#include "ssh/sftp.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <future>
#include <random>
#include <thread>

#include "core/hashing.h"
#include "core/text.h"
#include "ssh/connection.h"

namespace labgate::ssh {

using core::ErrorCode;
using core::MakeError;
using Steady = std::chrono::steady_clock;

// Outside the anonymous namespace: SftpFiles holds them.
struct AttrDeleter {
  void operator()(sftp_attributes a) const { sftp_attributes_free(a); }
};
using AttrPtr = std::unique_ptr<sftp_attributes_struct, AttrDeleter>;

struct SftpFileCloser {
  void operator()(sftp_file f) const { sftp_close(f); }
};
using SftpFilePtr = std::unique_ptr<sftp_file_struct, SftpFileCloser>;

namespace {

constexpr std::uint32_t kReadChunk = 64 * 1024;   // OpenSSH's sftp-server answers reads up to 256 KiB
constexpr int kReadsInFlight = 16;
constexpr std::uint64_t kStreamAtLeast = 1024 * 1024;  // whole files this big go over the command channel
constexpr std::size_t kWriteChunk = 128 * 1024;   // one SSH_FXP_WRITE; sftp-server takes messages up to 256 KiB

std::string SftpTypeName(const sftp_attributes_struct& a) {
  switch (a.type) {
    case SSH_FILEXFER_TYPE_REGULAR:
      return "file";
    case SSH_FILEXFER_TYPE_DIRECTORY:
      return "directory";
    case SSH_FILEXFER_TYPE_SYMLINK:
      return "symlink";
    default:
      break;
  }
  if (S_ISREG(a.permissions)) return "file";
  if (S_ISDIR(a.permissions)) return "directory";
  if (S_ISLNK(a.permissions)) return "symlink";
  return "other";
}

// `ls -l` style longname: "-rw-r--r--    1 alice    staff  1234 Jan  1 00:00 name" -> owner, group.
void OwnerFromLongname(const char* longname, std::string& owner, std::string& group) {
  if (longname == nullptr) return;
  std::vector<std::string> words;
  std::string word;
  for (const char* p = longname; *p && words.size() < 4; ++p) {
    if (*p == ' ') {
      if (!word.empty()) words.push_back(std::move(word)), word.clear();
    } else {
      word += *p;
    }
  }
  if (words.size() >= 4) {
    owner = words[2];
    group = words[3];
  }
}

capabilities::FileInfo InfoOfAttributes(const std::string& path, const sftp_attributes_struct& a) {
  capabilities::FileInfo info;
  info.path = path;
  info.name = path == "/" ? "/" : std::string(core::Basename(path));
  info.type = SftpTypeName(a);
  info.size = a.size;
  info.mode = a.permissions & 07777;
  info.uid = a.uid;
  info.gid = a.gid;
  info.owner = a.owner ? a.owner : "";
  info.group = a.group ? a.group : "";
  if (info.owner.empty()) OwnerFromLongname(a.longname, info.owner, info.group);
  if (info.owner.empty()) info.owner = std::to_string(a.uid);
  if (info.group.empty()) info.group = std::to_string(a.gid);
  info.mtime = a.mtime64 ? static_cast<std::int64_t>(a.mtime64) : a.mtime;
  return info;
}

std::string ParentOf(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

std::string TempNameBeside(const std::string& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  std::string name(core::Basename(path));
  if (name.size() > 200) name.resize(200);
  const std::string dir = ParentOf(path);
  return (dir == "/" ? "" : dir) + "/." + name + ".labgate-" + suffix;
}

}  // namespace

/// File access over one host's SFTP server.
class SftpFiles final : public capabilities::FileAccessor {
 public:
  static core::Result<std::unique_ptr<SftpFiles>> Open(const HostSpec& spec, Steady::time_point deadline) {
    auto session = BlockingSession::Open(spec, deadline);
    if (!session) return session.error();
    std::unique_ptr<SftpFiles> files(new SftpFiles(spec.id, std::move(*session)));
    files->deadline_ = deadline;
    files->session_->Arm(deadline);
    // sftp_new opens the channel and asks for the subsystem; sftp_init speaks the protocol.
    files->sftp_ = sftp_new(files->session_->get());
    if (files->sftp_ == nullptr || sftp_init(files->sftp_) != SSH_OK) {
      const std::string why = ssh_get_error(files->session_->get());
      if (Steady::now() >= deadline) {
        return MakeError(ErrorCode::kTimeout, spec.id + " did not start its SFTP server before the deadline");
      }
      return MakeError(ErrorCode::kUnavailable,
                       spec.id + " has no SFTP server (" + why +
                           "); file on a host needs one: add `Subsystem sftp internal-sftp` (or the path of "
                           "sftp-server) to its sshd_config and reload sshd. run works without it");
    }
    return files;
  }

  ~SftpFiles() override {
    if (sftp_) sftp_free(sftp_);
  }

  void Bind(Steady::time_point deadline, HostFileCommands commands) {
    deadline_ = deadline;
    commands_ = std::move(commands);
  }
  BlockingSession& session() { return *session_; }
  bool healthy() const { return !broken_ && !session_->aborted(); }

  core::Result<std::string> Home() override {
    Arm();
    char* home = sftp_canonicalize_path(sftp_, ".");
    if (home == nullptr) return Failed("cannot find the home directory of the login on", id_);
    std::string out = home;
    ssh_string_free_char(home);
    return out;
  }

  core::Result<std::string> RealPath(const std::string& path) override {
    Arm();
    if (char* real = sftp_canonicalize_path(sftp_, path.c_str())) {
      std::string out = real;
      ssh_string_free_char(real);
      return out;
    }
    const int err = sftp_get_error(sftp_);
    if (err != SSH_FX_NO_SUCH_FILE && err != SSH_FX_NO_SUCH_PATH) return Failed("cannot resolve", path);
    if (path == "/") return Failed("cannot resolve", path);
    // Not there yet (a new file): its directory must be, and a dangling symlink is not followed.
    AttrPtr link(sftp_lstat(sftp_, path.c_str()));
    if (link) return MakeError(ErrorCode::kRefused, path + " is a symlink to a missing file; labgate does not follow it");
    const std::string dir = ParentOf(path);
    char* real = sftp_canonicalize_path(sftp_, dir.c_str());
    if (real == nullptr) return Failed("cannot resolve", dir);
    std::string d = real;
    ssh_string_free_char(real);
    return (d == "/" ? "" : d) + "/" + std::string(core::Basename(path));
  }

  core::Result<capabilities::FileInfo> Stat(const std::string& path) override {
    Arm();
    AttrPtr a(sftp_lstat(sftp_, path.c_str()));
    if (!a) return Failed("cannot stat", path);
    capabilities::FileInfo info = InfoOfAttributes(path, *a);
    if (info.type == "symlink") {
      if (char* target = sftp_readlink(sftp_, path.c_str())) {
        info.link_target = target;
        ssh_string_free_char(target);
      }
    }
    return info;
  }

  core::Result<std::vector<capabilities::FileInfo>> List(const std::string& path, std::size_t max_entries,
                                                         bool* truncated) override {
    Arm();
    AttrPtr self(sftp_lstat(sftp_, path.c_str()));
    if (!self) return Failed("cannot list", path);
    if (SftpTypeName(*self) != "directory") {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + " is a " + SftpTypeName(*self) + ", not a directory; use file stat or read on it");
    }
    sftp_dir dir = sftp_opendir(sftp_, path.c_str());
    if (dir == nullptr) return Failed("cannot list", path);
    std::vector<capabilities::FileInfo> out;
    const std::string prefix = path == "/" ? "" : path;
    while (sftp_attributes a = sftp_readdir(sftp_, dir)) {
      AttrPtr owned(a);
      const std::string name = a->name ? a->name : "";
      if (name.empty() || name == "." || name == "..") continue;
      out.push_back(InfoOfAttributes(prefix + "/" + name, *a));
    }
    const bool complete = sftp_dir_eof(dir) != 0;
    sftp_closedir(dir);
    if (!complete) return Failed("cannot list", path);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    if (truncated) *truncated = out.size() > max_entries;
    if (out.size() > max_entries) out.resize(max_entries);
    for (auto& info : out) {
      if (info.type != "symlink") continue;
      if (char* target = sftp_readlink(sftp_, info.path.c_str())) {
        info.link_target = target;
        ssh_string_free_char(target);
      }
    }
    return out;
  }

  core::Result<capabilities::FileData> Read(const std::string& path, std::uint64_t offset, std::uint64_t length,
                                            std::uint64_t max_bytes) override {
    Arm();
    auto file = OpenRegular(path);
    if (!file) return file.error();
    AttrPtr a(sftp_fstat(file->get()));
    if (!a) return Failed("cannot stat", path);
    capabilities::FileData data;
    data.offset = offset;
    data.file_size = a->size;
    const std::uint64_t available = offset >= a->size ? 0 : a->size - offset;
    const std::uint64_t want = length == 0 ? available : std::min(length, available);
    if (want > max_bytes) {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + " holds " + std::to_string(want) + " bytes from offset " + std::to_string(offset) +
                           ", more than the " + std::to_string(max_bytes) +
                           " allowed; read a range (offset/length) or raise [policies.file] max_read_bytes");
    }
    if (commands_.read_whole && offset == 0 && want == a->size && want >= kStreamAtLeast) {
      file->reset();
      auto whole = commands_.read_whole(path, want);
      if (!whole) return whole.error();
      return whole;
    }
    data.bytes.reserve(want);
    if (auto ok = ReadRange(file->get(), path, offset, want, [&](std::string_view chunk) { data.bytes.append(chunk); });
        !ok) {
      return ok.error();
    }
    if (offset == 0 && data.bytes.size() == data.file_size) data.sha256 = core::Sha256Hex(data.bytes);
    return data;
  }

  core::Result<capabilities::WriteOutcome> Write(const std::string& path, std::string_view content,
                                                 const capabilities::WriteOptions& options) override {
    Arm();
    if (options.as_root) {
      if (!commands_.write_as_root) return MakeError(ErrorCode::kUnavailable, "writing as root is not available on " + id_);
      return commands_.write_as_root(path, std::make_shared<const std::string>(content), options);
    }
    capabilities::WriteOutcome outcome;
    AttrPtr old(sftp_lstat(sftp_, path.c_str()));
    if (!old) {
      const int err = sftp_get_error(sftp_);
      if (err != SSH_FX_NO_SUCH_FILE && err != SSH_FX_NO_SUCH_PATH) return Failed("cannot stat", path);
    }
    const bool exists = old != nullptr;
    if (exists) {
      const std::string type = SftpTypeName(*old);
      if (type == "symlink") {
        return MakeError(ErrorCode::kRefused,
                         path + " is a symlink; labgate writes files, never through links (write the path it points to)");
      }
      if (type != "file") return MakeError(ErrorCode::kInvalidArgument, path + " is a " + type + ", not a regular file");
      if (options.create_only || !options.overwrite) {
        return MakeError(ErrorCode::kRefused,
                         path + " exists; nothing was written (drop createOnly, or set overwrite, to replace it)");
      }
      outcome.previous_size = old->size;
    }
    // The digest of what is there is taken on the host while the new content travels (two
    // channels); it is compared with expectedSha256 before anything replaces the file.
    std::future<core::Result<std::optional<std::string>>> host_digest;
    if (exists && commands_.sha256) host_digest = std::async(std::launch::async, commands_.sha256, path);
    auto check_previous = [&]() -> core::Status {
      if (exists) {
        std::optional<std::string> on_host;
        if (host_digest.valid()) {
          auto digest = host_digest.get();
          if (!digest) return digest.error();
          on_host = *digest;
        }
        if (on_host) {
          outcome.previous_sha256 = *on_host;
        } else {
          auto current = OpenRegular(path);
          if (!current) return current.error();
          core::Sha256 digest;
          std::uint64_t size = 0;
          if (auto ok = ReadRange(current->get(), path, 0, old->size,
                                  [&](std::string_view chunk) {
                                    digest.Update(chunk);
                                    size += chunk.size();
                                  });
              !ok) {
            return ok.error();
          }
          outcome.previous_sha256 = digest.HexDigest();
          outcome.previous_size = size;
        }
      }
      return capabilities::CheckExpectedDigest(path, options, outcome.previous_sha256);
    };
    // Without the host's help the check comes first: reading the file back and writing the
    // new one would share one SFTP channel anyway.
    if (!host_digest.valid()) {
      if (auto ok = check_previous(); !ok) return ok.error();
    }
    const std::uint32_t mode = options.mode ? (*options.mode & 07777) : (exists ? (old->permissions & 07777) : 0644);
    const bool must_be_new =
        !exists && (options.create_only || !options.overwrite || (options.expected_sha256 && options.expected_sha256->empty()));
    if (must_be_new) {
      // SFTP has no link(): claim the name first (O_EXCL), so a file that appears meanwhile is
      // never replaced; the content then arrives by rename like any other write.
      sftp_file claim = sftp_open(sftp_, path.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
      if (claim == nullptr) {
        if (sftp_get_error(sftp_) == SSH_FX_FILE_ALREADY_EXISTS || sftp_get_error(sftp_) == SSH_FX_FAILURE) {
          AttrPtr now(sftp_lstat(sftp_, path.c_str()));
          if (now) return MakeError(ErrorCode::kRefused, path + " appeared while it was being written; nothing was replaced");
        }
        return Failed("cannot create", path);
      }
      sftp_close(claim);
    }
    const std::string temp = TempNameBeside(path);
    SftpFilePtr out(sftp_open(sftp_, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600));
    if (!out) {
      auto error = Failed("cannot create a temporary file beside", path);
      if (must_be_new) sftp_unlink(sftp_, path.c_str());
      return error;
    }
    auto fail = [&](const std::string& what) {
      auto error = Failed(what, path);
      out.reset();
      if (healthy()) {
        sftp_unlink(sftp_, temp.c_str());
        if (must_be_new) sftp_unlink(sftp_, path.c_str());
      }
      return error;
    };
    if (commands_.write_into && !content.empty()) {
      // The bytes go over the command channel into the temporary file this session created.
      auto bytes = std::make_shared<const std::string>(content);
      if (auto ok = commands_.write_into(temp, bytes); !ok) {
        auto error = MakeError(ok.error().code, "cannot write " + path + " on " + id_ + ": " + ok.error().message +
                                                    "; nothing was replaced");
        out.reset();
        if (healthy()) {
          sftp_unlink(sftp_, temp.c_str());
          if (must_be_new) sftp_unlink(sftp_, path.c_str());
        }
        return error;
      }
      AttrPtr landed(sftp_stat(sftp_, temp.c_str()));
      if (!landed || landed->size != content.size()) return fail("the content did not arrive whole in");
    } else {
      std::size_t done = 0;
      while (done < content.size()) {
        const std::size_t n = std::min(content.size() - done, kWriteChunk);
        const ssize_t wrote = sftp_write(out.get(), content.data() + done, n);
        if (wrote <= 0) return fail("cannot write");
        done += static_cast<std::size_t>(wrote);
      }
    }
    if (sftp_extension_supported(sftp_, "fsync@openssh.com", "1") && sftp_fsync(out.get()) != 0) {
      return fail("cannot sync");
    }
    if (host_digest.valid()) {
      if (auto ok = check_previous(); !ok) {
        out.reset();
        if (healthy()) {
          sftp_unlink(sftp_, temp.c_str());
          if (must_be_new) sftp_unlink(sftp_, path.c_str());
        }
        return ok.error();
      }
    }
    if (sftp_close(out.release()) != 0) return fail("cannot finish writing");
    if (exists && (old->uid != 0 || old->gid != 0)) (void)sftp_chown(sftp_, temp.c_str(), old->uid, old->gid);
    if (sftp_chmod(sftp_, temp.c_str(), mode) != 0) return fail("cannot set the mode of");
    if (exists || must_be_new) {
      // Replacing needs rename(2) semantics, which libssh 0.10 cannot ask SFTP for.
      core::Status renamed = commands_.rename_over ? commands_.rename_over(temp, path)
                                                   : MakeError(ErrorCode::kUnavailable, "no way to replace a file atomically");
      if (!renamed) {
        if (healthy()) {
          sftp_unlink(sftp_, temp.c_str());
          if (must_be_new) sftp_unlink(sftp_, path.c_str());
        }
        return MakeError(renamed.error().code, "cannot replace " + path + " on " + id_ + ": " + renamed.error().message +
                                                   "; nothing was written");
      }
    } else if (sftp_rename(sftp_, temp.c_str(), path.c_str()) != 0) {
      return fail("cannot create");
    }
    outcome.created = !exists;
    outcome.sha256 = options.content_sha256.empty() ? core::Sha256Hex(content) : options.content_sha256;
    outcome.size = content.size();
    outcome.mode = mode;
    return outcome;
  }

 private:
  SftpFiles(std::string id, std::unique_ptr<BlockingSession> session) : id_(std::move(id)), session_(std::move(session)) {}

  void Arm() { session_->Arm(deadline_); }

  core::Error Failed(const std::string& what, const std::string& path) {
    const std::string where = what + " " + path + " on " + id_;
    if (session_->aborted() || Steady::now() >= deadline_) {
      broken_ = true;
      if (session_->aborted() && Steady::now() < deadline_) return MakeError(ErrorCode::kCancelled, where + ": cancelled");
      return MakeError(ErrorCode::kTimeout, where + ": the deadline passed; the host may be slow or frozen");
    }
    switch (sftp_get_error(sftp_)) {
      case SSH_FX_NO_SUCH_FILE:
      case SSH_FX_NO_SUCH_PATH:
        return MakeError(ErrorCode::kNotFound, where + ": no such file or directory");
      case SSH_FX_PERMISSION_DENIED:
        return MakeError(ErrorCode::kRefused, where + ": permission denied (the login labgate uses there may not do that)");
      case SSH_FX_FILE_ALREADY_EXISTS:
        return MakeError(ErrorCode::kRefused, where + ": it exists");
      case SSH_FX_OP_UNSUPPORTED:
        return MakeError(ErrorCode::kUnavailable, where + ": the host's SFTP server does not support that");
      case SSH_FX_FAILURE:
        return MakeError(ErrorCode::kIo, where + ": the host's SFTP server reported a failure (a full disk, or a "
                                                 "directory that is not empty?)");
      default:
        break;
    }
    if (!ssh_is_connected(session_->get())) {
      broken_ = true;
      return MakeError(ErrorCode::kIo, where + ": the connection broke (" +
                                           std::string(ssh_get_error(session_->get())) + ")");
    }
    return MakeError(ErrorCode::kIo, where + ": " + ssh_get_error(session_->get()));
  }

  // Opens a regular file for reading, refusing a symlink (SFTP open would follow it) or
  // anything that is not a plain file.
  core::Result<SftpFilePtr> OpenRegular(const std::string& path) {
    AttrPtr a(sftp_lstat(sftp_, path.c_str()));
    if (!a) return Failed("cannot open", path);
    const std::string type = SftpTypeName(*a);
    if (type == "symlink") {
      return MakeError(ErrorCode::kRefused,
                       path + " is a symlink, which labgate does not follow (give the path it points to)");
    }
    if (type != "file") {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + " is a " + type + ", not a regular file; use file list or stat on it");
    }
    SftpFilePtr file(sftp_open(sftp_, path.c_str(), O_RDONLY | O_NONBLOCK, 0));
    if (!file) return Failed("cannot open", path);
    return file;
  }

  // Reads [offset, offset + length) with several requests in flight, handing each chunk to
  // `sink` in order. Stops early at the end of the file.
  core::Status ReadRange(sftp_file file, const std::string& path, std::uint64_t offset, std::uint64_t length,
                         const std::function<void(std::string_view)>& sink) {
    if (length == 0) return core::Ok();
    if (sftp_seek64(file, offset) != 0) return Failed("cannot seek in", path);
    std::deque<std::pair<int, std::uint32_t>> in_flight;  // request id, length asked
    std::uint64_t asked = 0;
    std::uint64_t got = 0;
    std::string buf(kReadChunk, '\0');
    bool eof = false;
    while (got < length && !eof) {
      while (!eof && asked < length && static_cast<int>(in_flight.size()) < kReadsInFlight) {
        const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(kReadChunk, length - asked));
        const int id = sftp_async_read_begin(file, n);
        if (id < 0) return Failed("cannot read", path);
        in_flight.emplace_back(id, n);
        asked += n;
      }
      if (in_flight.empty()) break;
      auto [id, n] = in_flight.front();
      in_flight.pop_front();
      const int r = sftp_async_read(file, buf.data(), n, static_cast<std::uint32_t>(id));
      if (r < 0) return Failed("cannot read", path);
      if (r == 0) {
        eof = true;
        break;
      }
      sink(std::string_view(buf.data(), static_cast<std::size_t>(r)));
      got += static_cast<std::uint64_t>(r);
      if (static_cast<std::uint32_t>(r) < n) eof = true;  // a short read: the file ended (or shrank)
    }
    // Answers still on their way must be taken off the channel before the file is closed.
    while (!in_flight.empty()) {
      auto [id, n] = in_flight.front();
      in_flight.pop_front();
      if (sftp_async_read(file, buf.data(), n, static_cast<std::uint32_t>(id)) < 0) break;
    }
    return core::Ok();
  }

  std::string id_;
  std::unique_ptr<BlockingSession> session_;
  sftp_session sftp_ = nullptr;
  Steady::time_point deadline_{};
  HostFileCommands commands_;
  bool broken_ = false;
};

/// One file call's hold on a pooled SFTP session: a watchdog aborts the session when the call's
/// deadline passes or it is cancelled; on release a healthy session goes back to the pool.
class SftpLease final : public capabilities::FileAccessor {
 public:
  SftpLease(SftpPool& pool, std::string id, std::unique_ptr<SftpFiles> files, Steady::time_point deadline,
            const core::CancelToken& cancel, HostFileCommands commands)
      : pool_(pool), id_(std::move(id)), files_(std::move(files)) {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    files_->Bind(deadline, std::move(commands));
    BlockingSession* session = &files_->session();
    const int cancel_fd = cancel.fd();
    const int stop_fd = stop_fd_;
    watchdog_ = std::thread([session, cancel_fd, stop_fd, deadline] {
      for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()).count();
        if (left <= 0) {
          session->Abort();
          return;
        }
        pollfd fds[2] = {{stop_fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
        const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 60000)));
        if (n > 0 && (fds[0].revents & POLLIN)) return;
        if (n > 0 && (fds[1].revents & POLLIN)) {
          session->Abort();
          return;
        }
      }
    });
  }
  ~SftpLease() override {
    const std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    watchdog_.join();
    ::close(stop_fd_);
    if (files_->healthy()) pool_.Give(id_, std::move(files_));
  }

  core::Result<std::string> Home() override { return files_->Home(); }
  core::Result<std::string> RealPath(const std::string& path) override { return files_->RealPath(path); }
  core::Result<capabilities::FileInfo> Stat(const std::string& path) override { return files_->Stat(path); }
  core::Result<std::vector<capabilities::FileInfo>> List(const std::string& path, std::size_t max_entries,
                                                         bool* truncated) override {
    return files_->List(path, max_entries, truncated);
  }
  core::Result<capabilities::FileData> Read(const std::string& path, std::uint64_t offset, std::uint64_t length,
                                            std::uint64_t max_bytes) override {
    return files_->Read(path, offset, length, max_bytes);
  }
  core::Result<capabilities::WriteOutcome> Write(const std::string& path, std::string_view content,
                                                 const capabilities::WriteOptions& options) override {
    return files_->Write(path, content, options);
  }

 private:
  SftpPool& pool_;
  std::string id_;
  std::unique_ptr<SftpFiles> files_;
  int stop_fd_ = -1;
  std::thread watchdog_;
};

SftpPool::SftpPool(std::chrono::milliseconds idle_timeout) : idle_timeout_(idle_timeout) {}
SftpPool::~SftpPool() = default;

core::Result<std::unique_ptr<capabilities::FileAccessor>> SftpPool::Take(const HostSpec& spec,
                                                                         Steady::time_point deadline,
                                                                         const core::CancelToken& cancel,
                                                                         HostFileCommands commands) {
  if (cancel.cancelled()) return MakeError(ErrorCode::kCancelled, "cancelled before " + spec.id + " was reached");
  std::unique_ptr<SftpFiles> files;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& idle = idle_[spec.id];
    const auto now = Steady::now();
    while (!idle.empty()) {
      Idle entry = std::move(idle.back());
      idle.pop_back();
      if (now - entry.since < idle_timeout_) {
        files = std::move(entry.files);
        break;
      }
    }
  }
  if (!files) {
    auto opened = SftpFiles::Open(spec, deadline);
    if (!opened) return opened.error();
    files = std::move(*opened);
  }
  return std::unique_ptr<capabilities::FileAccessor>(new SftpLease(*this, spec.id, std::move(files), deadline, cancel,
                                                                      std::move(commands)));
}

void SftpPool::Give(const std::string& id, std::unique_ptr<SftpFiles> files) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& idle = idle_[id];
  files->Bind(Steady::time_point{}, {});
  if (idle.size() < 2) idle.push_back(Idle{std::move(files), Steady::now()});
}

void SftpPool::Clear() {
  std::map<std::string, std::vector<Idle>> gone;
  std::lock_guard<std::mutex> lock(mutex_);
  gone.swap(idle_);
}

}  // namespace labgate::ssh
