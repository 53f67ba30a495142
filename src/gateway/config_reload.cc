#include "gateway/config_reload.h"

#include <sys/stat.h>

#include "core/os_user.h"
#include "policy/decide.h"

namespace labgate::gateway {

std::optional<FileStamp> StampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{st.st_ino, st.st_size, static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
}

core::Result<std::vector<std::string>> ReloadInventory(Runtime& runtime, const std::string& path, const std::string& why) {
  auto next = inventory::LoadInventory(path);
  core::Status valid = next ? policy::CheckInventory(*next) : core::Status(next.error());
  if (!valid) {
    const std::string message = valid.error().message + "\nthe gateway keeps the inventory it had; fix " + path +
                                " and save it again (or send SIGHUP)";
    audit::Event event{"policy.reload_refused",
                       {"gateway", "", "", core::CurrentUserName(), ""},
                       "",
                       {{"source", path}, {"trigger", why}, {"error", valid.error().message}}};
    (void)runtime.audit().Append(audit::EncodeEvent(event));
    return core::MakeError(valid.error().code, message);
  }
  return runtime.Reload(std::move(*next));
}

}  // namespace labgate::gateway
