#include "inventory/ssh_config.h"

#include <gtest/gtest.h>

#include <map>

namespace labgate::inventory {
namespace {

// Files by path, and the globs the reader asked for.
struct FakeFiles {
  std::map<std::string, std::string> files;
  std::vector<std::string> globbed;
  SshConfigFiles Access() {
    return {[this](const std::string& path) -> core::Result<std::string> {
              auto it = files.find(path);
              if (it == files.end()) return core::MakeError(core::ErrorCode::kNotFound, "no such file");
              return it->second;
            },
            [this](const std::string& pattern) {
              globbed.push_back(pattern);
              std::vector<std::string> out;
              for (const auto& [path, text] : files) {
                if (SshPatternMatches(pattern, path)) out.push_back(path);
              }
              return out;
            }};
  }
};

const SshConfigHost* Host(const SshConfig& config, const std::string& alias) {
  for (const auto& h : config.hosts) {
    if (h.alias == alias) return &h;
  }
  return nullptr;
}

bool Noted(const SshConfig& config, const std::string& part) {
  for (const auto& n : config.notes) {
    if (n.find(part) != std::string::npos) return true;
  }
  return false;
}

SshConfig Read(FakeFiles& fs, const std::string& path = "/home/me/.ssh/config") {
  auto config = ReadSshConfig(path, fs.Access(), "/home/me");
  EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
  return config.ok() ? *config : SshConfig{};
}

TEST(SshConfig, TheFirstValueObtainedWinsAsInSsh) {
  FakeFiles fs;
  fs.files["/home/me/.ssh/config"] =
      "# my hosts\n"
      "Host nas\n"
      "  HostName 10.0.0.9\n"
      "  Port 2222\n"
      "  User ops\n"
      "  IdentityFile ~/.ssh/nas\n"
      "\n"
      "Host web1 web2\n"
      "  HostName %h.lan\n"
      "\n"
      "Host *\n"
      "  User admin\n"
      "  IdentityFile ~/.ssh/id_ed25519\n"
      "  Port 22\n";
  auto config = Read(fs);
  ASSERT_EQ(config.hosts.size(), 3u);
  const auto* nas = Host(config, "nas");
  ASSERT_NE(nas, nullptr);
  EXPECT_EQ(nas->hostname, "10.0.0.9");
  EXPECT_EQ(nas->port, 2222);
  EXPECT_EQ(nas->user, "ops");
  EXPECT_EQ(nas->identity_file, "~/.ssh/nas");
  EXPECT_EQ(nas->source, "/home/me/.ssh/config:2");
  const auto* web2 = Host(config, "web2");
  ASSERT_NE(web2, nullptr);
  EXPECT_EQ(web2->hostname, "web2.lan");
  EXPECT_EQ(web2->user, "admin");  // from Host *
  EXPECT_EQ(web2->identity_file, "~/.ssh/id_ed25519");
  EXPECT_EQ(web2->port, 22);
}

TEST(SshConfig, DefaultsAboveAHostBlockWinOverIt) {
  FakeFiles fs;
  fs.files["/home/me/.ssh/config"] = "User everyone\nHost *\n  Port 2200\nHost box\n  User me\n  Port 22\n";
  auto config = Read(fs);
  ASSERT_EQ(config.hosts.size(), 1u);
  EXPECT_EQ(config.hosts[0].user, "everyone");
  EXPECT_EQ(config.hosts[0].port, 2200);
  EXPECT_EQ(config.hosts[0].hostname, "box");
}

TEST(SshConfig, PatternsAreNotHostsAndNegationExcludes) {
  FakeFiles fs;
  fs.files["/home/me/.ssh/config"] =
      "Host *.lan !printer.lan\n  User lan\n"
      "Host nas.lan printer.lan db?\n  Port 2\n"
      "Host NAS.lan\n  Port 3\n";
  auto config = Read(fs);
  ASSERT_EQ(config.hosts.size(), 2u);  // NAS.lan is nas.lan again: ssh matches names without case
  EXPECT_EQ(Host(config, "nas.lan")->user, "lan");
  EXPECT_EQ(Host(config, "printer.lan")->user, "");
  EXPECT_EQ(Host(config, "db?"), nullptr);
}

TEST(SshConfig, IncludeFollowsGlobsUnderDotSshAndMatchIsSkippedWithItsLine) {
  FakeFiles fs;
  fs.files["/home/me/.ssh/config"] =
      "Include conf.d/*.conf\n"
      "Match host *.work exec \"true\"\n"
      "  User worker\n"
      "  Include secret.conf\n"
      "Host after\n  HostName 10.0.0.2\n";
  fs.files["/home/me/.ssh/conf.d/a.conf"] = "Host fromA\n  HostName 10.0.0.1\n";
  fs.files["/home/me/.ssh/secret.conf"] = "Host secret\n";
  auto config = Read(fs);
  EXPECT_EQ(fs.globbed, std::vector<std::string>{"/home/me/.ssh/conf.d/*.conf"});
  ASSERT_NE(Host(config, "fromA"), nullptr);
  EXPECT_EQ(Host(config, "fromA")->source, "/home/me/.ssh/conf.d/a.conf:1");
  EXPECT_EQ(Host(config, "secret"), nullptr);  // its Include sits in the skipped Match block
  ASSERT_NE(Host(config, "after"), nullptr);
  EXPECT_EQ(Host(config, "after")->user, "");  // the Match block's User is not applied
  EXPECT_TRUE(Noted(config, "/home/me/.ssh/config:2: Match block skipped"));
}

TEST(SshConfig, AnIncludedFilesHostLinesDoNotReachBackIntoTheIncludingFile) {
  FakeFiles fs;
  fs.files["/home/me/.ssh/config"] = "Host a\n  Include /etc/extra.conf\n  User a-user\n";
  fs.files["/etc/extra.conf"] = "  Port 2001\nHost b\n  Port 2002\n";
  auto config = Read(fs);
  ASSERT_EQ(config.hosts.size(), 2u);
  EXPECT_EQ(Host(config, "a")->user, "a-user");
  EXPECT_EQ(Host(config, "a")->port, 2001);  // before its first Host line, the file is in a's block
  EXPECT_EQ(Host(config, "b")->user, "");
  EXPECT_EQ(Host(config, "b")->port, 2002);
}

TEST(SshConfig, KeywordFormsQuotesCaseAndLineEndings) {
  FakeFiles fs;
  fs.files["/home/me/.ssh/config"] =
      "HOST box\r\n"
      "\tHostName=10.0.0.3\r\n"
      "  port = 2022\r\n"
      "  USER \"ops team\"\r\n"
      "  identityfile \"~/keys/my key\"\r\n"
      "  ProxyJump jump@bastion:22\r\n";
  auto config = Read(fs);
  ASSERT_EQ(config.hosts.size(), 1u);
  EXPECT_EQ(config.hosts[0].hostname, "10.0.0.3");
  EXPECT_EQ(config.hosts[0].port, 2022);
  EXPECT_EQ(config.hosts[0].user, "ops team");
  EXPECT_EQ(config.hosts[0].identity_file, "~/keys/my key");
  EXPECT_EQ(config.hosts[0].proxy_jump, "jump@bastion:22");
}

TEST(SshConfig, WhatCannotBeImportedIsNoted) {
  FakeFiles fs;
  fs.files["/home/me/.ssh/config"] =
      "Host a\n  ProxyCommand nc %h %p\n  Port http\n  IdentityFile none\n  ProxyJump none\n"
      "Include missing/*\n";
  auto config = Read(fs);
  ASSERT_EQ(config.hosts.size(), 1u);
  EXPECT_FALSE(config.hosts[0].port.has_value());
  EXPECT_EQ(config.hosts[0].identity_file, "");
  EXPECT_EQ(config.hosts[0].proxy_jump, "");
  EXPECT_TRUE(Noted(config, "a: ProxyCommand is not imported"));
  EXPECT_TRUE(Noted(config, "a: Port 'http' is not a port"));
  EXPECT_TRUE(Noted(config, ":6: Include missing/* matches no file"));
}

TEST(SshConfig, BrokenFilesAreErrorsThatNameTheLine) {
  FakeFiles fs;
  fs.files["/home/me/.ssh/config"] = "Host a\n  User \"unterminated\n";
  auto bad = ReadSshConfig("/home/me/.ssh/config", fs.Access(), "/home/me");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("/home/me/.ssh/config:2: unterminated quote"), std::string::npos);

  fs.files["/home/me/.ssh/config"] = "Include config\n";  // includes itself
  auto loop = ReadSshConfig("/home/me/.ssh/config", fs.Access(), "/home/me");
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.error().message.find("nested more than 16 deep"), std::string::npos) << loop.error().message;

  // Ten files, each including the next twice: 2^10 reads without a limit on the files read.
  fs.files["/home/me/.ssh/config"] = "Include f1\nInclude f1\n";
  for (int i = 1; i < 10; ++i) {
    const std::string next = "f" + std::to_string(i + 1);
    fs.files["/home/me/.ssh/f" + std::to_string(i)] = "Include " + next + "\nInclude " + next + "\n";
  }
  fs.files["/home/me/.ssh/f10"] = "Host leaf\n";
  auto wide = ReadSshConfig("/home/me/.ssh/config", fs.Access(), "/home/me");
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.error().message.find("more than 256 files read through Include"), std::string::npos)
      << wide.error().message;

  auto missing = ReadSshConfig("/home/me/.ssh/nothing", fs.Access(), "/home/me");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, core::ErrorCode::kNotFound);

  fs.files["/home/me/.ssh/config"] = "Host\n";
  auto empty_host = ReadSshConfig("/home/me/.ssh/config", fs.Access(), "/home/me");
  ASSERT_FALSE(empty_host.ok());
  EXPECT_NE(empty_host.error().message.find(":1: Host needs a pattern"), std::string::npos);
}

TEST(SshConfig, PatternMatching) {
  EXPECT_TRUE(SshPatternMatches("*", "anything"));
  EXPECT_TRUE(SshPatternMatches("*.lan", "nas.lan"));
  EXPECT_TRUE(SshPatternMatches("*.LAN", "nas.lan"));
  EXPECT_FALSE(SshPatternMatches("*.lan", "nas.lan.example"));
  EXPECT_TRUE(SshPatternMatches("web?", "web1"));
  EXPECT_FALSE(SshPatternMatches("web?", "web10"));
  EXPECT_TRUE(SshPatternMatches("a*b*c", "axxbyyc"));
  EXPECT_FALSE(SshPatternMatches("a*b*c", "axxbyy"));
  EXPECT_TRUE(SshPatternMatches("", ""));
  EXPECT_FALSE(SshPatternMatches("", "x"));
}

}  // namespace
}  // namespace labgate::inventory
