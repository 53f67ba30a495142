#include "policy/file_policy.h"

#include <gtest/gtest.h>

namespace labgate::policy {
namespace {

const std::vector<std::string> kOwn = {"/var/lib/labgate", "~/.local/state/labgate", "/etc/labgate"};
constexpr const char* kHome = "/home/alice";

std::string Normal(std::string_view path) {
  auto n = NormalizeFilePath(path, kHome);
  return n.ok() ? *n : "error: " + n.error().message;
}

TEST(FilePolicy, NormalizeFilePath_ResolvesDotsSlashesAndHome) {
  EXPECT_EQ(Normal("/srv/app/compose.yml"), "/srv/app/compose.yml");
  EXPECT_EQ(Normal("//etc///shadow"), "/etc/shadow");
  EXPECT_EQ(Normal("/tmp/../etc/./passwd"), "/etc/passwd");
  EXPECT_EQ(Normal("/../../../etc/shadow"), "/etc/shadow");
  EXPECT_EQ(Normal("~/.ssh/id_rsa"), "/home/alice/.ssh/id_rsa");
  EXPECT_EQ(Normal("~"), "/home/alice");
  EXPECT_EQ(Normal("/srv/"), "/srv");
  EXPECT_EQ(Normal("/"), "/");
}

TEST(FilePolicy, NormalizeFilePath_RefusesWhatNoRuleCouldJudge) {
  for (std::string_view bad : {"", "etc/shadow", "./x", "../etc/shadow", "~root/.ssh/id_rsa"}) {
    auto n = NormalizeFilePath(bad, kHome);
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_EQ(n.error().code, core::ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(NormalizeFilePath("~/x", "").ok());
  EXPECT_FALSE(NormalizeFilePath(std::string_view("/etc/shad\0ow", 12), kHome).ok());
  EXPECT_FALSE(NormalizeFilePath("/tmp/a\nb", kHome).ok());
  EXPECT_FALSE(NormalizeFilePath("/tmp/\x1b[31mred", kHome).ok());
}

TEST(FilePolicy, SecretFile_PrivateKeysAndCredentialStores_HoweverSpelled) {
  for (std::string_view path : {"~/.ssh/id_rsa", "~/.ssh/id_ed25519", "/root/.ssh/id_ecdsa", "~/.ssh/../.ssh/id_rsa",
                                "//etc//ssh/ssh_host_ed25519_key", "/etc/shadow", "/etc/gshadow-", "/tmp/../etc/shadow",
                                "~/.aws/credentials", "~/.docker/config.json", "~/.kube/config", "~/.netrc", "~/.pgpass",
                                "~/.git-credentials", "~/.gnupg/private-keys-v1.d/AB.key", "~/.password-store/x.gpg",
                                "~/.config/gh/hosts.yml", "/etc/ssl/private/site.key",
                                "/etc/letsencrypt/live/example.org/privkey.pem"}) {
    const std::string n = Normal(path);
    auto secret = SecretFile(n, kOwn, kHome);
    ASSERT_TRUE(secret.has_value()) << path << " -> " << n;
    EXPECT_EQ(secret->rule, "builtin:secret file") << path;
    EXPECT_NE(secret->reason.find("read allow rule"), std::string::npos) << secret->reason;
  }
}

TEST(FilePolicy, SecretFile_PublicHalvesAndOrdinaryFilesAreNot) {
  for (std::string_view path : {"~/.ssh/id_rsa.pub", "~/.ssh/authorized_keys", "~/.ssh/known_hosts",
                                "/etc/ssh/ssh_host_ed25519_key.pub", "/etc/passwd", "/var/log/syslog",
                                "/etc/letsencrypt/live/example.org/fullchain.pem", "/srv/app/compose.yml",
                                "/home/alice/id_rsa_notes.txt"}) {
    EXPECT_FALSE(SecretFile(Normal(path), kOwn, kHome).has_value()) << path;
  }
}

TEST(FilePolicy, SecretFile_LabgatesOwnFilesAreNeverRead) {
  for (std::string_view path : {"/var/lib/labgate/operator.key", "~/.local/state/labgate/http.token",
                                "/home/alice/.local/state/labgate/../labgate/audit.jsonl", "/etc/labgate/hosts.toml"}) {
    auto secret = SecretFile(Normal(path), kOwn, kHome);
    ASSERT_TRUE(secret.has_value()) << path;
    EXPECT_EQ(secret->rule, "builtin:labgate state") << path;
  }
  // A sibling whose name only starts the same is not labgate's.
  EXPECT_FALSE(SecretFile("/var/lib/labgate-backup/x", kOwn, kHome).has_value());
}

TEST(FilePolicy, ClassifyWrite_SystemPlacesAndLabgatesFiles) {
  struct Case {
    const char* path;
    Risk risk;
    const char* rule;
  };
  const Case cases[] = {
      {"/srv/app/compose.yml", Risk::kMutating, "builtin:write file"},
      {"/usr/local/bin/tool", Risk::kMutating, "builtin:write file"},
      {"/tmp/../etc/nginx/nginx.conf", Risk::kDestructive, "builtin:write /etc"},
      {"/boot/config.txt", Risk::kDestructive, "builtin:write /boot"},
      {"/usr/bin/ls", Risk::kDestructive, "builtin:write system"},
      {"~/.bashrc", Risk::kDestructive, "builtin:write start-up file"},
      {"~/.config/systemd/user/x.service", Risk::kDestructive, "builtin:write start-up file"},
      {"/etc/sudoers.d/alice", Risk::kPrivileged, "builtin:write /etc/sudoers"},
      {"/etc/passwd", Risk::kPrivileged, "builtin:write accounts"},
      {"~/.ssh/authorized_keys", Risk::kPrivileged, "builtin:write authorized_keys"},
      {"/var/lib/labgate/approvals.json", Risk::kPrivileged, "builtin:labgate state"},
      {"~/.local/state/labgate/audit.jsonl", Risk::kPrivileged, "builtin:labgate state"},
  };
  for (const auto& c : cases) {
    const Classification w = ClassifyWrite(Normal(c.path), kOwn, kHome);
    EXPECT_EQ(w.risk, c.risk) << c.path << ": " << w.rule;
    EXPECT_EQ(w.rule, c.rule) << c.path;
  }
}

TEST(FilePolicy, HoldsPrivateKey_AnyPrivateKeyBlock) {
  EXPECT_TRUE(HoldsPrivateKey("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n"));
  EXPECT_TRUE(HoldsPrivateKey("cert first\n-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
                              "-----BEGIN RSA PRIVATE KEY-----\nx\n"));
  EXPECT_TRUE(HoldsPrivateKey("-----BEGIN PRIVATE KEY-----"));
  EXPECT_TRUE(HoldsPrivateKey("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
  EXPECT_FALSE(HoldsPrivateKey("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"));
  EXPECT_FALSE(HoldsPrivateKey("-----BEGIN PUBLIC KEY-----\nx\n"));
  EXPECT_FALSE(HoldsPrivateKey("the words PRIVATE KEY----- alone\n"));
}

}  // namespace
}  // namespace labgate::policy
