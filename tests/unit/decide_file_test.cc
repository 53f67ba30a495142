// DecideFile: the path rules of the `file` capability, as an assistant would probe them.
#include <gtest/gtest.h>

#include "policy/decide.h"

namespace labgate::policy {
namespace {

constexpr const char* kInventory = R"(
[gateway]
state_dir = "/var/lib/labgate"

[policies.file]
read_deny = ["/srv/vault/*"]
write_allow = ["/srv/apps/*/compose.yml"]
read_allow = ["/home/alice/.ssh/id_deploy"]

[groups.servers]
file_write_deny = ["/srv/apps/frozen/*"]

[local]
capabilities = ["run", "file"]

[[hosts]]
id = "prox4"
address = "10.0.0.4"
groups = ["servers"]
capabilities = ["run", "file"]
file_write_allow = ["~/notes/*"]
file_read_deny = ["~/private/*"]

[[hosts]]
id = "ro"
address = "10.0.0.5"
mode = "read-only"
capabilities = ["run", "file"]

[[hosts]]
id = "lab"
address = "10.0.0.6"
mode = "full"
capabilities = ["run", "file"]

[[hosts]]
id = "laptop"
address = "10.0.0.7"
role = "daily"
mode = "full"
capabilities = ["run", "file"]

[[hosts]]
id = "nofile"
address = "10.0.0.8"
)";

struct FileCase {
  const char* target;
  FileAccess access;
  const char* path;
  CommandDecision::Verdict verdict;
  const char* rule;
};

TEST(DecideFile, Table) {
  auto inv = inventory::ParseInventory(kInventory, "/etc/labgate/hosts.toml", "/");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  using V = CommandDecision::Verdict;
  constexpr auto R = FileAccess::kRead;
  constexpr auto W = FileAccess::kWrite;
  const FileCase cases[] = {
      // Capability scope first.
      {"nofile", R, "/etc/hostname", V::kRefuse, "targets.nofile.capabilities"},
      // Reads: ordinary files run, secrets refuse, an operator's allow admits one, deny wins.
      {"prox4", R, "/etc/hostname", V::kRun, "builtin:read file"},
      {"prox4", R, "/etc/shadow", V::kRefuse, "builtin:secret file"},
      {"prox4", R, "/home/alice/.ssh/id_ed25519", V::kRefuse, "builtin:secret file"},
      {"prox4", R, "/home/alice/.ssh/id_deploy", V::kRun, "policies.file.read_allow"},
      {"prox4", R, "/srv/vault/token", V::kRefuse, "policies.file.read_deny"},
      {"prox4", R, "/home/alice/private/diary", V::kRefuse, "targets.prox4.file_read_deny"},
      {"ro", R, "/var/log/syslog", V::kRun, "builtin:read file"},
      // labgate's own files: never, not even with a mode of full.
      {"lab", R, "/var/lib/labgate/operator.key", V::kRefuse, "builtin:labgate state"},
      {"lab", W, "/var/lib/labgate/audit.jsonl", V::kRefuse, "builtin:labgate state"},
      {"lab", W, "/etc/labgate/hosts.toml", V::kRefuse, "builtin:labgate state"},
      {"lab", W, "/home/alice/.local/state/labgate/approvals.json", V::kRefuse, "builtin:labgate state"},
      // Writes: the mode judges the class; system paths are destructive.
      {"prox4", W, "/tmp/x", V::kRun, "mode.confirm-destructive"},
      {"prox4", W, "/etc/nginx/nginx.conf", V::kConfirm, "mode.confirm-destructive"},
      {"prox4", W, "/home/alice/.ssh/authorized_keys", V::kConfirm, "mode.confirm-destructive"},
      {"prox4", W, "/etc/systemd/system/x.service", V::kConfirm, "mode.confirm-destructive"},
      {"prox4", W, "/srv/apps/web/compose.yml", V::kRun, "policies.file.write_allow"},
      {"prox4", W, "/srv/apps/frozen/compose.yml", V::kRefuse, "groups.servers.file_write_deny"},
      {"prox4", W, "/home/alice/notes/today.md", V::kRun, "targets.prox4.file_write_allow"},
      {"ro", W, "/tmp/x", V::kRefuse, "mode.read-only"},
      {"lab", W, "/etc/motd", V::kRun, "mode.full"},
      // A daily-role target never takes writes into system paths, whatever its mode.
      {"laptop", W, "/etc/motd", V::kRefuse, "targets.laptop.role"},
      {"laptop", W, "/home/alice/todo.txt", V::kRun, "mode.full"},
  };
  for (const auto& c : cases) {
    const FileDecision d = DecideFile(*inv, *inv->Find(c.target), c.access, c.path, "/home/alice");
    EXPECT_EQ(d.verdict, c.verdict) << c.target << " " << c.path << ": " << d.rule << ": " << d.reason;
    EXPECT_EQ(d.rule, c.rule) << c.target << " " << c.path << ": " << d.reason;
    EXPECT_FALSE(d.reason.empty());
  }
}

TEST(DecideFile, HomeRulesNeverMatchWhereTheHomeIsUnknown) {
  auto inv = inventory::ParseInventory(kInventory, "hosts.toml", "/");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  // ~/notes/* admits nothing when the home is unknown: the write falls to the mode.
  const FileDecision d = DecideFile(*inv, *inv->Find("prox4"), FileAccess::kWrite, "/home/alice/notes/x", "");
  EXPECT_EQ(d.rule, "mode.confirm-destructive");
}

TEST(DecideFile, ConfirmAllAsksForWhatNoRuleAdmitted) {
  auto confirm = inventory::ParseInventory(
      "[policies.file]\nconfirm = true\nread_allow = [\"/etc/hostname\"]\n[local]\ncapabilities = [\"file\"]\nmode = \"full\"\n",
      "hosts.toml", "/");
  ASSERT_TRUE(confirm.ok()) << confirm.error().message;
  const auto& local = *confirm->Find("local");
  EXPECT_EQ(DecideFile(*confirm, local, FileAccess::kRead, "/etc/os-release", "").rule, "policies.file.confirm");
  EXPECT_EQ(DecideFile(*confirm, local, FileAccess::kWrite, "/tmp/x", "").rule, "policies.file.confirm");
  EXPECT_EQ(DecideFile(*confirm, local, FileAccess::kRead, "/etc/hostname", "").verdict, CommandDecision::Verdict::kRun);
}

TEST(DecideFile, InventoryRejectsPathRulesThatMatchEverythingOrAreRelative) {
  for (const char* bad : {"[policies.file]\nread_allow = [\"*\"]\n", "[policies.file]\nwrite_allow = [\"/*\"]\n",
                          "[policies.file]\nread_deny = [\"etc/*\"]\n", "[local]\nfile_write_allow = [\"~/*\"]\n",
                          "[policies.file]\nmax_read_bytes = 0\n", "[policies.file]\nwrite_alow = [\"/x\"]\n"}) {
    auto inv = inventory::ParseInventory(bad, "hosts.toml", "/");
    EXPECT_FALSE(inv.ok()) << bad;
    if (!inv.ok()) {
      EXPECT_NE(inv.error().message.find("hosts.toml:"), std::string::npos) << inv.error().message;
    }
  }
  auto good = inventory::ParseInventory("[policies.file]\nmax_read_bytes = 1000\nmax_write_bytes = 2000\n", "hosts.toml", "/");
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->file_max_read_bytes, 1000);
  EXPECT_EQ(good->file_max_write_bytes, 2000);
}

}  // namespace
}  // namespace labgate::policy
