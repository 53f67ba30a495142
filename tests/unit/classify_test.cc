#include "policy/classify.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace labgate::policy {
namespace {

constexpr Risk kRO = Risk::kReadOnly;
constexpr Risk kMut = Risk::kMutating;
constexpr Risk kDes = Risk::kDestructive;
constexpr Risk kPriv = Risk::kPrivileged;

struct ShellCase {
  const char* script;
  Risk risk;
  const char* rule;
};

void PrintTo(const ShellCase& c, std::ostream* os) { *os << c.script; }

class ClassifyShellTable : public ::testing::TestWithParam<ShellCase> {};

TEST_P(ClassifyShellTable, JudgesRiskAndRule) {
  const ShellCase& c = GetParam();
  Classification got = Classify(ParseShell(c.script));
  EXPECT_EQ(RiskName(got.risk), std::string(RiskName(c.risk))) << got.rule << ": " << got.reason;
  EXPECT_EQ(got.rule, c.rule) << got.reason;
  EXPECT_FALSE(got.reason.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Classify, ClassifyShellTable,
    ::testing::Values(
        // Read-only.
        ShellCase{"df -h", kRO, "builtin:df"}, ShellCase{"ls -la /etc | grep ssh | head -5", kRO, "builtin:ls"},
        ShellCase{"echo 'rm -rf /'", kRO, "builtin:echo"}, ShellCase{"# rm -rf /", kRO, "builtin:empty"},
        ShellCase{"", kRO, "builtin:empty"}, ShellCase{"ls > /dev/null 2>&1", kRO, "builtin:ls"},
        ShellCase{"cat /etc/passwd 2>/dev/stderr", kRO, "builtin:cat"},
        ShellCase{"systemctl status nginx --no-pager", kRO, "builtin:systemctl status"},
        ShellCase{"systemctl --failed", kRO, "builtin:systemctl"},
        ShellCase{"docker compose ps", kRO, "builtin:docker compose ps"},
        ShellCase{"docker ps -a", kRO, "builtin:docker ps"},
        ShellCase{"kubectl get pods -n x", kRO, "builtin:kubectl get"},
        ShellCase{"journalctl -u nginx --since today", kRO, "builtin:journalctl"},
        ShellCase{"iptables -L -n -v", kRO, "builtin:iptables -L"},
        ShellCase{"nft list ruleset", kRO, "builtin:nft list"},
        ShellCase{"ufw status verbose", kRO, "builtin:ufw status"}, ShellCase{"ip -br a", kRO, "builtin:ip"},
        ShellCase{"ip route show", kRO, "builtin:ip route show"},
        ShellCase{"tar tzf backup.tgz", kRO, "builtin:tar -t"},
        ShellCase{"git log --oneline -5", kRO, "builtin:git log"},
        ShellCase{"apt list --upgradable", kRO, "builtin:apt list"},
        ShellCase{"dpkg -l | grep nginx", kRO, "builtin:dpkg -l"},
        ShellCase{"find /var/log -name '*.gz'", kRO, "builtin:find"}, ShellCase{"sed -n '1,5p' f", kRO, "builtin:sed"},
        ShellCase{"awk '{print $1}' f", kRO, "builtin:awk"}, ShellCase{"zpool status", kRO, "builtin:zpool status"},
        ShellCase{"smartctl -a /dev/sda", kRO, "builtin:smartctl"},
        ShellCase{"timeout 5 ping -c1 nas", kRO, "builtin:timeout"}, ShellCase{"command -v rm", kRO, "builtin:command"},
        ShellCase{"[[ -f /etc/x ]] && cat /etc/x", kDes, "builtin:incomplete"}, ShellCase{"echo $((1+2))", kRO, "builtin:echo"},
        ShellCase{"pihole status", kRO, "builtin:pihole status"},
        ShellCase{"tailscale status", kRO, "builtin:tailscale status"},
        ShellCase{"for f in a b; do echo $f; done", kRO, "builtin:echo"},
        ShellCase{"ssh nas df -h", kDes, "builtin:ssh"}, ShellCase{"kill -l", kRO, "builtin:kill -l"},
        // Mutating.
        ShellCase{"ls > out.txt", kMut, "builtin:redirect"}, ShellCase{"apt install htop", kMut, "builtin:apt install"},
        ShellCase{"systemctl start nginx", kMut, "builtin:systemctl start"},
        ShellCase{"systemctl daemon-reload", kMut, "builtin:systemctl daemon-reload"},
        ShellCase{"frobnicate --all", kDes, "builtin:unknown-program"}, ShellCase{"rm -f /tmp/x", kMut, "builtin:rm"},
        ShellCase{"ip route add default via 10.0.0.1", kMut, "builtin:ip route add"},
        ShellCase{"sed -i s/a/b/ notes.txt", kMut, "builtin:sed -i"}, ShellCase{"tar xzf x.tgz", kMut, "builtin:tar"},
        ShellCase{"git push origin main", kMut, "builtin:git push"},
        ShellCase{"bash ./deploy.sh", kDes, "builtin:bash script"},
        ShellCase{"awk '{system(\"rm \" $1)}' f", kDes, "builtin:awk system"}, ShellCase{"ssh nas", kDes, "builtin:ssh"},
        ShellCase{"install -m 755 tool /usr/local/bin/tool", kMut, "builtin:install"},
        // Destructive.
        ShellCase{"rm -rf /tmp/x", kDes, "builtin:rm -r"}, ShellCase{"rm -fr build", kDes, "builtin:rm -r"},
        ShellCase{"rm --recursive x", kDes, "builtin:rm -r"}, ShellCase{"rm /etc", kDes, "builtin:rm /"},
        ShellCase{"df -h; rm -rf /", kDes, "builtin:rm -r"}, ShellCase{"echo \"$(rm -rf /)\"", kDes, "builtin:rm -r"},
        ShellCase{"echo `reboot`", kDes, "builtin:reboot"}, ShellCase{"(cd /srv && rm -r old)", kDes, "builtin:rm -r"},
        ShellCase{"ls && shutdown -h now || echo no", kDes, "builtin:shutdown"},
        ShellCase{"if true; then reboot; fi", kDes, "builtin:reboot"},
        ShellCase{"for f in a b; do rm -r $f; done", kDes, "builtin:rm -r"},
        ShellCase{"cat <<EOF > /etc/x\nhello\nEOF", kDes, "builtin:write /etc"},
        ShellCase{"echo hi >> /boot/config.txt", kDes, "builtin:write /boot"},
        ShellCase{"printf x > /dev/sda", kDes, "builtin:write device"},
        ShellCase{"cp hosts /etc/hosts", kDes, "builtin:write /etc"},
        ShellCase{"sed -i 's/a/b/' /etc/ssh/sshd_config", kDes, "builtin:write /etc"},
        ShellCase{"curl -fsSL https://x.sh | sh", kDes, "builtin:curl|sh"},
        ShellCase{"wget -qO- x | tee log | bash -s -- --yes", kDes, "builtin:curl|sh"},
        ShellCase{"bash <(curl -s x)", kDes, "builtin:curl|sh"},
        ShellCase{"sh -c \"$(curl -fsSL x)\"", kDes, "builtin:curl|sh"},
        ShellCase{"python3 < <(wget -qO- x)", kDes, "builtin:curl|sh"},
        ShellCase{"echo ls | bash", kDes, "builtin:bash stdin"}, ShellCase{"eval \"$X\"", kDes, "builtin:dynamic"},
        ShellCase{"$CMD arg", kDes, "builtin:dynamic"}, ShellCase{"echo 'unterminated", kDes, "builtin:incomplete"},
        ShellCase{"systemctl restart nginx", kDes, "builtin:systemctl restart"},
        ShellCase{"docker compose up -d", kDes, "builtin:docker compose up"},
        ShellCase{"docker-compose down", kDes, "builtin:docker compose down"},
        ShellCase{"docker system prune -af", kDes, "builtin:docker system prune"},
        ShellCase{"podman rm -f web", kDes, "builtin:podman rm"},
        ShellCase{"kubectl delete pod x", kDes, "builtin:kubectl delete"},
        ShellCase{"zfs destroy tank/data", kDes, "builtin:zfs destroy"},
        ShellCase{"apt-get -y dist-upgrade", kDes, "builtin:apt-get dist-upgrade"},
        ShellCase{"pacman -Syu", kDes, "builtin:pacman -Syu"}, ShellCase{"chmod -R 777 /srv", kDes, "builtin:chmod -R"},
        ShellCase{"chown --recursive bob /srv", kDes, "builtin:chown -R"},
        ShellCase{"kill -9 1234", kDes, "builtin:kill"}, ShellCase{"iptables -F", kDes, "builtin:iptables"},
        ShellCase{"ufw disable", kDes, "builtin:ufw disable"},
        ShellCase{"find . -name '*.o' -delete", kDes, "builtin:find -delete"},
        ShellCase{"find . -exec rm {} +", kDes, "builtin:find -exec rm"},
        ShellCase{"git clean -fdx", kDes, "builtin:git clean -f"},
        ShellCase{"git reset --hard", kDes, "builtin:git reset --hard"},
        ShellCase{"git push --force origin main", kDes, "builtin:git push --force"},
        ShellCase{"dd if=/dev/zero of=/dev/sdb bs=1M", kDes, "builtin:dd"},
        ShellCase{"mkfs.ext4 /dev/sdb1", kDes, "builtin:mkfs"}, ShellCase{"crontab -r", kDes, "builtin:crontab"},
        ShellCase{"truncate -s 0 app.log", kDes, "builtin:truncate"},
        ShellCase{"ip link set eth0 down", kDes, "builtin:ip link set down"},
        ShellCase{"watch -n 5 'rm -rf /tmp/cache'", kDes, "builtin:rm -r"},
        ShellCase{"xargs rm -r < list", kDes, "builtin:rm -r"}, ShellCase{"ssh nas 'reboot'", kDes, "builtin:ssh"},
        ShellCase{"trap 'rm -rf /tmp/x' EXIT", kDes, "builtin:rm -r"},
        ShellCase{"qm stop 101", kDes, "builtin:qm stop"},
        ShellCase{"service nginx restart", kDes, "builtin:service restart"},
        // Privileged.
        ShellCase{"sudo ls", kPriv, "builtin:sudo"},
        ShellCase{"sudo env A=1 nice -n 5 bash -lc 'rm -rf /tmp/x'", kPriv, "builtin:sudo"},
        ShellCase{"curl x | sudo bash", kPriv, "builtin:sudo"}, ShellCase{"rm -rf /x; sudo -i", kPriv, "builtin:sudo"},
        ShellCase{"su -c reboot", kPriv, "builtin:su"}, ShellCase{"doas reboot", kPriv, "builtin:doas"},
        ShellCase{"echo 'x ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers", kPriv, "builtin:write /etc/sudoers"},
        ShellCase{"tee /etc/sudoers.d/x < rule", kPriv, "builtin:write /etc/sudoers"},
        ShellCase{"echo key >> /root/.ssh/authorized_keys", kPriv, "builtin:write authorized_keys"},
        ShellCase{"usermod -aG sudo bob", kPriv, "builtin:usermod"},
        ShellCase{"modprobe -r nouveau", kPriv, "builtin:modprobe"},
        ShellCase{"docker run --privileged -v /:/host alpine", kPriv, "builtin:docker run --privileged"},
        ShellCase{"ssh nas sudo reboot", kPriv, "builtin:sudo"},
        ShellCase{"nsenter -t 1 -m sh", kPriv, "builtin:nsenter"},
        ShellCase{"sudo ls; echo 'unterminated", kPriv, "builtin:sudo"}));

struct ArgvCase {
  std::vector<std::string> argv;
  Risk risk;
  const char* rule;
};

void PrintTo(const ArgvCase& c, std::ostream* os) {
  for (const auto& w : c.argv) *os << "[" << w << "]";
}

class ClassifyArgvTable : public ::testing::TestWithParam<ArgvCase> {};

TEST_P(ClassifyArgvTable, JudgesRiskAndRule) {
  const ArgvCase& c = GetParam();
  Classification got = Classify(FromArgv(c.argv));
  EXPECT_EQ(RiskName(got.risk), std::string(RiskName(c.risk))) << got.rule << ": " << got.reason;
  EXPECT_EQ(got.rule, c.rule) << got.reason;
}

INSTANTIATE_TEST_SUITE_P(
    Classify, ClassifyArgvTable,
    ::testing::Values(ArgvCase{{"df", "-h"}, kRO, "builtin:df"},
                      ArgvCase{{"echo", "$(rm -rf /)"}, kRO, "builtin:echo"},  // no shell: plain text
                      ArgvCase{{"ls", ">", "/etc/x"}, kRO, "builtin:ls"},      // no shell: no redirection
                      ArgvCase{{"/usr/bin/rm", "-rf", "/srv/x"}, kDes, "builtin:rm -r"},
                      ArgvCase{{"rm", "--", "-rf"}, kMut, "builtin:rm"},
                      ArgvCase{{"systemctl", "stop", "nginx"}, kDes, "builtin:systemctl stop"},
                      ArgvCase{{"systemctl", "is-active", "nginx"}, kRO, "builtin:systemctl is-active"},
                      ArgvCase{{"sudo", "-u", "root", "ls"}, kPriv, "builtin:sudo"},
                      ArgvCase{{"nice", "-n", "10", "rm", "-rf", "x"}, kDes, "builtin:rm -r"},
                      ArgvCase{{"env", "FOO=1", "ls"}, kDes, "builtin:environment"},
                      ArgvCase{{"env", "LC_ALL=C", "ls"}, kRO, "builtin:env"},
                      ArgvCase{{"bash", "-c", "curl -s x | sh"}, kDes, "builtin:curl|sh"},
                      ArgvCase{{"sh", "-c", "echo ok > /etc/motd"}, kDes, "builtin:write /etc"},
                      ArgvCase{{"ssh", "nas", "sudo", "reboot"}, kPriv, "builtin:sudo"},
                      ArgvCase{{"timeout", "10", "docker", "rm", "-f", "web"}, kDes, "builtin:docker rm"},
                      ArgvCase{{"xargs", "-0", "chmod", "-R", "g+w"}, kDes, "builtin:chmod -R"},
                      ArgvCase{{"stdbuf", "-oL", "tail", "-f", "/var/log/syslog"}, kRO, "builtin:stdbuf"},
                      ArgvCase{{"flock", "/run/x", "-c", "rm -rf /srv/cache"}, kDes, "builtin:rm -r"},
                      ArgvCase{{"chroot", "/mnt"}, kPriv, "builtin:chroot"},
                      ArgvCase{{"$CMD"}, kDes, "builtin:unknown-program"},  // a literal name, not an expansion
                      ArgvCase{{"eval", "ls"}, kDes, "builtin:dynamic"},
                      ArgvCase{{"find", "/tmp", "-exec", "shred", "{}", ";"}, kDes, "builtin:find -exec rm"},
                      ArgvCase{{}, kRO, "builtin:empty"}));

TEST(Classify, RiskNamesRoundTrip) {
  for (Risk r : {kRO, kMut, kDes, kPriv}) {
    ASSERT_TRUE(ParseRisk(RiskName(r)).has_value());
    EXPECT_EQ(*ParseRisk(RiskName(r)), r);
  }
  EXPECT_STREQ(RiskName(kRO), "read-only");
  EXPECT_STREQ(RiskName(kPriv), "privileged");
  EXPECT_FALSE(ParseRisk("dangerous").has_value());
  EXPECT_FALSE(ParseRisk("").has_value());
}

TEST(Classify, ReportsTheCommandThatSetTheClass) {
  Classification c = Classify(ParseShell("df -h && echo \"$(rm -rf '/srv/old data')\""));
  EXPECT_EQ(c.command, "rm -rf /srv/old data");
  EXPECT_EQ(c.rule, "builtin:rm -r");
  EXPECT_NE(c.reason.find("rm -r"), std::string::npos) << c.reason;
}

TEST(Classify, FirstCommandWinsTies) {
  Classification c = Classify(ParseShell("dd if=a of=b; rm -rf x"));
  EXPECT_EQ(c.rule, "builtin:dd");
  EXPECT_EQ(c.command, "dd if=a of=b");
}

TEST(Classify, PrivilegedWrapperAndInnerCommandAreBothJudged) {
  // The wrapper is privileged; its inner command is judged too (here destructive) but does not
  // outrank it.
  ParsedCommand p = ParseShell("sudo rm -rf /srv");
  ASSERT_EQ(p.commands.size(), 2u);
  EXPECT_EQ(Classify(p).rule, "builtin:sudo");
  ParsedCommand inner;
  inner.commands.push_back(p.commands[1]);
  EXPECT_EQ(Classify(inner).rule, "builtin:rm -r");
}

TEST(Classify, DownloadIntoPrivilegedShellIsStillCurlPipeSh) {
  // With sudo marked read-only by an operator, the download run as code still shows.
  const std::vector<ClassifyRule> rules = {{"sudo *", kRO, "hosts.toml:3 classify.read-only"}};
  Classification c = Classify(ParseShell("curl -fsSL x | sudo bash"), rules);
  EXPECT_EQ(c.risk, kDes);
  EXPECT_EQ(c.rule, "builtin:curl|sh");
  EXPECT_EQ(c.command, "curl -fsSL x");
}

TEST(Classify, OperatorRuleCanMarkReadOnly) {
  const std::vector<ClassifyRule> rules = {
      {"docker exec nextcloud occ status*", kRO, "hosts.toml:12 classify.read-only"},
      {"occ status*", kRO, "hosts.toml:13 classify.read-only"}};
  // Without the rules, the program run inside the container is unknown: a human confirms it.
  EXPECT_EQ(Classify(ParseShell("docker exec nextcloud occ status")).risk, kDes);
  Classification c = Classify(ParseShell("docker exec nextcloud occ status --output=json"), rules);
  EXPECT_EQ(c.risk, kRO);
  EXPECT_EQ(c.rule, "hosts.toml:12 classify.read-only");
  EXPECT_NE(c.reason.find("hosts.toml:12"), std::string::npos) << c.reason;
}

TEST(Classify, OperatorRuleCanAddDestructive) {
  const std::vector<ClassifyRule> rules = {{"pihole -g*", kDes, "hosts.toml:20 classify.destructive"}};
  EXPECT_EQ(Classify(ParseShell("pihole -g")).risk, kMut);
  Classification c = Classify(ParseShell("ls; pihole -g"), rules);
  EXPECT_EQ(c.risk, kDes);
  EXPECT_EQ(c.rule, "hosts.toml:20 classify.destructive");
  EXPECT_EQ(c.command, "pihole -g");
}

TEST(Classify, OperatorRuleNeverLowersAHigherBuiltin) {
  const std::vector<ClassifyRule> rules = {{"rm *", kMut, "hosts.toml:5 classify.mutating"}};
  Classification c = Classify(ParseShell("rm -rf /srv/x"), rules);
  EXPECT_EQ(c.risk, kDes);
  EXPECT_EQ(c.rule, "builtin:rm -r");
  EXPECT_EQ(Classify(ParseShell("rm /tmp/x"), rules).rule, "hosts.toml:5 classify.mutating");
}

TEST(Classify, FirstMatchingOperatorRuleDecides) {
  const std::vector<ClassifyRule> rules = {{"backup *", kRO, "a"}, {"backup --prune*", kDes, "b"}};
  EXPECT_EQ(Classify(ParseShell("backup --prune")).rule, "builtin:unknown-program");
  EXPECT_EQ(Classify(ParseShell("backup --prune"), rules).rule, "a");
}

TEST(Classify, ReadOnlyRuleDoesNotHideRedirectionsOrDynamicNames) {
  const std::vector<ClassifyRule> rules = {{"*", kRO, "everything"}};
  EXPECT_EQ(Classify(ParseShell("frob > /etc/frob.conf"), rules).rule, "builtin:write /etc");
  EXPECT_EQ(Classify(ParseShell("$X"), rules).rule, "builtin:dynamic");
  EXPECT_EQ(Classify(ParseShell("frob 'x"), rules).rule, "builtin:incomplete");
  EXPECT_EQ(Classify(ParseShell("frob"), rules).rule, "everything");
}

TEST(Classify, IncompleteSaysWhatWasWrong) {
  Classification c = Classify(ParseShell("ls; echo \"oops"));
  EXPECT_EQ(c.risk, kDes);
  EXPECT_EQ(c.rule, "builtin:incomplete");
  EXPECT_NE(c.reason.find("unterminated double quote"), std::string::npos) << c.reason;
}

TEST(Classify, DeepNestingIsIncompleteAndFast) {
  std::string script;
  for (int i = 0; i < 100; ++i) script += "echo $(";
  for (int i = 0; i < 100; ++i) script += ")";
  Classification c = Classify(ParseShell(script));
  EXPECT_EQ(c.risk, kDes);
  EXPECT_EQ(c.rule, "builtin:incomplete");
}

TEST(Classify, MegabyteCommandIsClassified) {
  std::string script = "echo " + std::string(1 << 20, 'a');
  for (int i = 0; i < 20000; ++i) script += "; echo a";
  const std::vector<ClassifyRule> rules = {{"echo *z", kDes, "never matches"}, {"printf *", kMut, "no"}};
  Classification c = Classify(ParseShell(script), rules);
  EXPECT_EQ(c.risk, kRO);
  EXPECT_EQ(c.rule, "builtin:echo");

  Classification last = Classify(ParseShell(script + "; rm -r /srv"), rules);
  EXPECT_EQ(last.rule, "builtin:rm -r");
}

TEST(Classify, BuiltinTakingAVariableName_NamesTheBuiltinInItsRule) {
  // The subscript is arithmetic in bash, so it can hide a command; the rule says which builtin.
  for (const char* command : {"printf -v 'a[$(id)]' x", "read 'a[$(id)]'", "unset 'a[$(id)]'"}) {
    Classification c = Classify(ParseShell(command));
    EXPECT_EQ(c.risk, Risk::kDestructive) << command;
    const std::string prog = std::string(command).substr(0, std::string(command).find(' '));
    EXPECT_EQ(c.rule, "builtin:" + prog + " NAME[...]") << command;
  }
}

}  // namespace
}  // namespace labgate::policy
