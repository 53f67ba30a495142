#include "inventory/inventory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "inventory/selector.h"

namespace labgate::inventory {
namespace {

core::Result<Inventory> Parse(const std::string& text) { return ParseInventory(text, "hosts.toml", "/etc/labgate"); }

std::string ErrorOf(const std::string& text) {
  auto inv = Parse(text);
  EXPECT_FALSE(inv.ok()) << "expected an error for:\n" << text;
  return inv.ok() ? "" : inv.error().message;
}

TEST(Inventory, EmptyFileGivesOnlyLocal) {
  auto inv = Parse("");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  ASSERT_EQ(inv->targets.size(), 1u);
  EXPECT_EQ(inv->targets[0].id, "local");
  EXPECT_TRUE(inv->targets[0].HasCapability("run"));
  EXPECT_EQ(inv->gateway.default_timeout_ms, 20000);
}

TEST(Inventory, AuditForwardingIsOffUnlessAskedForAndReadsEachAddressForm) {
  auto off = Parse("");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->audit.journald);
  EXPECT_FALSE(off->audit.syslog);
  auto both = Parse("[audit]\nforward = [\"journald\", \"syslog\"]\nsyslog_address = \"udp:[fd00::1]:514\"\n"
                    "syslog_facility = \"local5\"\n");
  ASSERT_TRUE(both.ok()) << both.error().message;
  EXPECT_TRUE(both->audit.journald);
  EXPECT_TRUE(both->audit.syslog);
  EXPECT_EQ(both->audit.syslog_transport, "udp");
  EXPECT_EQ(both->audit.syslog_host, "fd00::1");
  EXPECT_EQ(both->audit.syslog_port, "514");
  EXPECT_EQ(both->audit.syslog_facility, 21);
  auto tcp = Parse("[audit]\nforward = \"syslog\"\nsyslog_address = \"tcp:logs.lan:6514\"\n");
  ASSERT_TRUE(tcp.ok()) << tcp.error().message;
  EXPECT_EQ(tcp->audit.syslog_host, "logs.lan");
  auto unix_socket = Parse("[audit]\nforward = \"syslog\"\n");
  ASSERT_TRUE(unix_socket.ok());
  EXPECT_EQ(unix_socket->audit.syslog_transport, "unix");
  EXPECT_EQ(unix_socket->audit.syslog_path, "/dev/log");
  EXPECT_EQ(unix_socket->audit.syslog_facility, 10);
}

TEST(Inventory, AuditForwardingMistakesNameTheKey) {
  EXPECT_NE(ErrorOf("[audit]\nforward = \"splunk\"\n").find("hosts.toml:2: audit.forward: 'splunk' is not"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[audit]\nforward = 1\n").find("audit.forward: must be"), std::string::npos);
  EXPECT_NE(ErrorOf("[audit]\nsyslog_address = \"logs.lan:514\"\n").find("audit.syslog_address: 'logs.lan:514' is not"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[audit]\nsyslog_address = \"udp:logs.lan:70000\"\n").find("port '70000'"), std::string::npos);
  EXPECT_NE(ErrorOf("[audit]\nsyslog_address = \"tcp:-oProxy=x y:514\"\n").find("not a host name"), std::string::npos);
  EXPECT_NE(ErrorOf("[audit]\nsyslog_address = \"unix:dev/log\"\n").find("absolute socket path"), std::string::npos);
  EXPECT_NE(ErrorOf("[audit]\nsyslog_facility = \"security\"\n").find("not a syslog facility"), std::string::npos);
  EXPECT_NE(ErrorOf("[audit]\njournald_socket = \"journal\"\n").find("audit.journald_socket"), std::string::npos);
  EXPECT_NE(ErrorOf("[audit]\nforwrd = \"journald\"\n").find("audit.forwrd: unknown key"), std::string::npos);
}

TEST(Inventory, HttpIsOffUnlessListedAndTokenFilesResolveAgainstTheConfig) {
  auto off = Parse("");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->gateway.http_listen, "");
  auto on = Parse("[gateway]\nhttp_listen = \"127.0.0.1:7023\"\nhttp_token_file = \"http.token\"\n"
                  "http_allowed_origins = [\"https://assistant.example\"]\n");
  ASSERT_TRUE(on.ok()) << on.error().message;
  EXPECT_EQ(on->gateway.http_listen, "127.0.0.1:7023");
  EXPECT_EQ(on->gateway.http_token_file, "/etc/labgate/http.token");
  EXPECT_EQ(on->gateway.http_allowed_origins, std::vector<std::string>{"https://assistant.example"});
  ASSERT_TRUE(Parse("[gateway]\nhttp_listen = \"unix:/run/labgate/http.sock\"\n").ok());
  ASSERT_TRUE(Parse("[gateway]\nhttp_listen = \"[::1]:7023\"\n").ok());
}

// The bearer token would cross the network in clear text: refused unless the operator says a
// TLS proxy is in front, or gives a certificate.
TEST(Inventory, HttpBeyondLoopbackWithoutTlsIsRefused) {
  for (const char* addr : {"0.0.0.0:7023", "192.168.1.5:7023", "[::]:7023"}) {
    std::string err = ErrorOf(std::string("[gateway]\nhttp_listen = \"") + addr + "\"\n");
    EXPECT_NE(err.find("hosts.toml:2: gateway.http_listen"), std::string::npos) << err;
    EXPECT_NE(err.find("clear text"), std::string::npos) << err;
  }
  EXPECT_TRUE(Parse("[gateway]\nhttp_listen = \"0.0.0.0:7023\"\nhttp_plaintext_beyond_loopback = true\n").ok());
  EXPECT_TRUE(Parse("[gateway]\nhttp_listen = \"0.0.0.0:7023\"\nhttp_tls_cert_file = \"c.pem\"\n"
                    "http_tls_key_file = \"k.pem\"\n")
                  .ok());
  EXPECT_TRUE(IsLoopbackListen("127.8.9.1:1"));
  EXPECT_TRUE(IsLoopbackListen("localhost:1"));
  EXPECT_FALSE(IsLoopbackListen("128.0.0.1:1"));
  EXPECT_FALSE(IsLoopbackListen("[::ffff:127.0.0.1]:1"));
}

TEST(Inventory, HttpMistakesNameTheKey) {
  EXPECT_NE(ErrorOf("[gateway]\nhttp_token = \"s3cret\"\n").find("use http_token_env"), std::string::npos);
  EXPECT_NE(ErrorOf("[gateway]\nhttp_listen = \"example.com:80\"\n").find("not an IP address"), std::string::npos);
  EXPECT_NE(ErrorOf("[gateway]\nhttp_listen = \"127.0.0.1:0\"\n").find("not a port"), std::string::npos);
  EXPECT_NE(ErrorOf("[gateway]\nhttp_listen = \"unix:relative\"\n").find("absolute path"), std::string::npos);
  EXPECT_NE(ErrorOf("[gateway]\nhttp_tls_cert_file = \"c.pem\"\n").find("needs both"), std::string::npos);
  EXPECT_NE(ErrorOf("[gateway]\nhttp_token_env = \"A\"\nhttp_token_file = \"f\"\n").find("not both"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[gateway]\nhttp_allowed_origins = [\"https://a.example/path\"]\n").find("not an origin"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[gateway]\nhttp_max_body_bytes = 10\n").find("gateway.http_max_body_bytes"), std::string::npos);
}

TEST(Inventory, FullExampleLoads) {
  auto inv = Parse(R"(
[gateway]
listen = "127.0.0.1:7022"
state_dir = "state"
default_timeout_ms = 5000

[policies.camera]
enabled = true
approved_nodes = ["phone-node"]

[[hosts]]
id = "prox4"
address = "10.0.0.4"
port = 2222
user = "ops"
identity_file = "keys/id_ed25519"
groups = ["servers"]
tags = ["proxmox"]
device = "Proxmox node 4"
owner = "homelab"
purpose = "hypervisor"

[[nodes]]
id = "phone-node"
device = "Pixel 8"
capabilities = ["camera", "location"]
)");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->gateway.state_dir, "/etc/labgate/state");
  EXPECT_EQ(inv->gateway.audit_log, "/etc/labgate/state/audit.jsonl");
  EXPECT_EQ(inv->gateway.default_timeout_ms, 5000);
  const Target* prox = inv->Find("prox4");
  ASSERT_NE(prox, nullptr);
  EXPECT_EQ(prox->kind, TargetKind::kHost);
  EXPECT_EQ(prox->port, 2222);
  EXPECT_EQ(prox->identity_file, "/etc/labgate/keys/id_ed25519");
  EXPECT_EQ(prox->groups, std::vector<std::string>{"servers"});
  EXPECT_EQ(prox->line, 11);
  const Target* phone = inv->Find("phone-node");
  ASSERT_NE(phone, nullptr);
  EXPECT_EQ(phone->kind, TargetKind::kNode);
  EXPECT_TRUE(phone->HasCapability("camera"));
  ASSERT_NE(inv->Policy("camera"), nullptr);
  EXPECT_EQ(inv->Policy("camera")->approved_nodes->at(0), "phone-node");
}

TEST(Inventory, UnknownKeyNamesFileLineAndKey) {
  std::string e = ErrorOf("[gateway]\nlisten = \"127.0.0.1:7022\"\ntimeout = 5\n");
  EXPECT_NE(e.find("hosts.toml:3: gateway.timeout: unknown key"), std::string::npos) << e;
}

TEST(Inventory, WrongTypeNamesFileLineAndKey) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\nport = \"22\"\n");
  EXPECT_NE(e.find("hosts.toml:4: hosts[0].port: must be an integer"), std::string::npos) << e;
}

TEST(Inventory, DuplicateIdsNameBothLines) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\n\n[[nodes]]\nid = \"a\"\n");
  EXPECT_NE(e.find("hosts.toml:6: nodes[0].id: duplicate id 'a' (first declared on line 1)"), std::string::npos) << e;
}

TEST(Inventory, AFleetOf10000NodesLoadsInOrderAndADuplicateDeepInItNamesTheFirstLine) {
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "[[nodes]]\nid = \"n" + std::to_string(i) + "\"\ngroups = [\"fleet\"]\n\n";
  auto inv = ParseInventory(text, "hosts.toml", "/etc/labgate");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  ASSERT_EQ(inv->targets.size(), 10001u);  // local first
  EXPECT_EQ(inv->targets[1].id, "n0");
  EXPECT_EQ(inv->targets.back().id, "n9999");
  EXPECT_EQ(inv->Find("n9999")->line, 4 * 9999 + 1);
  std::string e = ErrorOf(text + "[[nodes]]\nid = \"n7777\"\n");
  EXPECT_NE(e.find("hosts.toml:40002: nodes[10000].id: duplicate id 'n7777' (first declared on line 31109)"),
            std::string::npos) << e;
}

TEST(Inventory, LocalIsReserved) {
  std::string e = ErrorOf("[[nodes]]\nid = \"local\"\n");
  EXPECT_NE(e.find("hosts.toml:2: nodes[0].id: 'local' is the built-in target"), std::string::npos) << e;
}

TEST(Inventory, BadNamesAreRefused) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\ngroups = [\"ok\", \"bad group\"]\n");
  EXPECT_NE(e.find("hosts.toml:4: hosts[0].groups: 'bad group' is not a valid name"), std::string::npos) << e;
}

TEST(Inventory, PolicyNamingUnknownTargetIsRefused) {
  std::string e = ErrorOf("[policies.camera]\napproved_nodes = [\"phnoe\"]\n");
  EXPECT_NE(e.find("hosts.toml:2: policies.camera.approved_nodes: unknown target 'phnoe'"), std::string::npos) << e;
}

TEST(Inventory, PolicyListingHostAsNodeIsRefused) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\n[policies.run]\napproved_nodes = [\"a\"]\n");
  EXPECT_NE(e.find("'a' is an SSH host (list it in approved_hosts)"), std::string::npos) << e;
}

TEST(Inventory, UnknownCapabilityIsRefused) {
  std::string e = ErrorOf("[[nodes]]\nid = \"n\"\ncapabilities = [\"teleport\"]\n");
  EXPECT_NE(e.find("hosts.toml:3: nodes[0].capabilities: unknown capability 'teleport'"), std::string::npos) << e;
}

TEST(Inventory, InlineSecretsAreRefusedWithTheAlternative) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\naddress = \"x\"\npassword = \"hunter2\"\n");
  EXPECT_NE(e.find("hosts.toml:4: hosts[0].password: secrets never go in hosts.toml; use password_env"),
            std::string::npos)
      << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << "the secret itself must not be echoed";
}

TEST(Inventory, MissingAddressIsRefused) {
  std::string e = ErrorOf("[[hosts]]\nid = \"a\"\n");
  EXPECT_NE(e.find("hosts[0].address: missing"), std::string::npos) << e;
}

TEST(Inventory, OutOfRangeNumbersAreRefused) {
  std::string e = ErrorOf("[gateway]\ndefault_timeout_ms = 0\n");
  EXPECT_NE(e.find("hosts.toml:2: gateway.default_timeout_ms: must be between 1 and"), std::string::npos) << e;
}

TEST(Inventory, AuditMaxBytesDefaultsTo64MiBAndRefusesTinyValues) {
  auto defaults = Parse("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->gateway.audit_max_bytes, 64LL * 1024 * 1024);
  auto set = Parse("[gateway]\naudit_max_bytes = 1048576\n");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->gateway.audit_max_bytes, 1048576);
  for (const char* bad : {"0", "4095", "-1"}) {
    std::string e = ErrorOf(std::string("[gateway]\naudit_max_bytes = ") + bad + "\n");
    EXPECT_NE(e.find("hosts.toml:2: gateway.audit_max_bytes: must be between 4096 and"), std::string::npos) << e;
  }
}

TEST(Inventory, TomlSyntaxErrorNamesLine) {
  std::string e = ErrorOf("[gateway]\nlisten = \n");
  EXPECT_NE(e.find("hosts.toml:2:"), std::string::npos) << e;
}

TEST(Inventory, AllProblemsAreReportedAtOnce) {
  std::string e = ErrorOf("[gateway]\nbogus = 1\n[[hosts]]\nid = \"a\"\naddress = \"x\"\nport = 0\n");
  EXPECT_NE(e.find("2 problems"), std::string::npos) << e;
}

TEST(Inventory, LocalCanBeDisabled) {
  auto inv = Parse("[local]\nenabled = false\n");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->Find("local"), nullptr);
}

// Debian always has root (uid 0, group root) and nobody (uid 65534, primary group nogroup).
TEST(Inventory, OperatorsNameUsersUidsAndGroupsThisMachineHas) {
  auto inv = Parse("[gateway]\noperators = [\"root\", \"uid:1234\", \"group:nogroup\", \"gid:4321\"]\n");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->gateway.operators.size(), 4u);
  std::string e = ErrorOf("[gateway]\noperators = [\"no-such-user-xq\", \"group:no-such-group-xq\", \"uid:x\", \"a:b\"]\n");
  EXPECT_NE(e.find("hosts.toml:2: gateway.operators: 'no-such-user-xq': this machine has no user"), std::string::npos) << e;
  EXPECT_NE(e.find("'group:no-such-group-xq': this machine has no group"), std::string::npos) << e;
  EXPECT_NE(e.find("'uid:x': uid: takes a number"), std::string::npos) << e;
  EXPECT_NE(e.find("'a:b' is not a user name"), std::string::npos) << e;
}

TEST(Inventory, IsListedOperator_ByNameUidAndGroupMembership) {
  EXPECT_TRUE(IsListedOperator({"root"}, 0));
  EXPECT_TRUE(IsListedOperator({"uid:0"}, 0));
  EXPECT_TRUE(IsListedOperator({"group:root"}, 0));
  EXPECT_TRUE(IsListedOperator({"gid:65534"}, 65534));  // nobody's primary group
  EXPECT_TRUE(IsListedOperator({"group:nogroup"}, 65534));
  EXPECT_FALSE(IsListedOperator({"group:root"}, 65534));
  EXPECT_FALSE(IsListedOperator({"root"}, 65534));
  EXPECT_FALSE(IsListedOperator({"group:nogroup"}, 65533));  // no account, so no groups
  EXPECT_FALSE(IsListedOperator({}, 0));
  // The groups a connected process really has decide, not the group database.
  EXPECT_FALSE(IsListedOperator({"group:nogroup"}, 65534, std::vector<gid_t>{65533}));
  EXPECT_TRUE(IsListedOperator({"group:root"}, 65534, std::vector<gid_t>{65534, 0}));
  EXPECT_TRUE(IsListedOperator({"uid:65534"}, 65534, std::vector<gid_t>{}));
}

TEST(Inventory, OperatorIdsOutOfRange_AreRefusedNotWrapped) {
  // 4294967296 would wrap to 0 (root) in a uid_t; 4294967295 is the kernel's "no id".
  std::string e = ErrorOf("[gateway]\noperators = [\"uid:4294967296\", \"gid:4294967295\", \"uid:99999999999\"]\n");
  EXPECT_NE(e.find("'uid:4294967296': uid: takes a number from 0 to 4294967294"), std::string::npos) << e;
  EXPECT_NE(e.find("'gid:4294967295': gid: takes a number"), std::string::npos) << e;
  EXPECT_NE(e.find("'uid:99999999999'"), std::string::npos) << e;
  EXPECT_FALSE(IsListedOperator({"uid:4294967296"}, 0));
  // A bare number is a user name, never a uid.
  std::string bare = ErrorOf("[gateway]\noperators = [\"0\"]\n");
  EXPECT_NE(bare.find("this machine has no user 0 (write uid:N for a bare uid)"), std::string::npos) << bare;
}

TEST(Inventory, CommandUserWhoIsAlsoAnOperator_IsRefused) {
  const std::string off = "[local]\nenabled = false\n";
  auto ok = Parse("[gateway]\noperators = [\"root\"]\ncommand_user = \"nobody\"\n" + off);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->gateway.command_user, "nobody");
  for (const char* operators : {"\"nobody\"", "\"uid:65534\"", "\"group:nogroup\""}) {
    std::string e = ErrorOf(std::string("[gateway]\noperators = [") + operators + "]\ncommand_user = \"nobody\"\n" + off);
    EXPECT_NE(e.find("hosts.toml:3: gateway.command_user: nobody is also listed in gateway.operators"),
              std::string::npos) << operators << ": " << e;
  }
  std::string root = ErrorOf("[gateway]\ncommand_user = \"root\"\n" + off);
  EXPECT_NE(root.find("gateway.command_user: root may not be the command account"), std::string::npos) << root;
  std::string missing = ErrorOf("[gateway]\ncommand_user = \"no-such-user-xq\"\n" + off);
  EXPECT_NE(missing.find("gateway.command_user: this machine has no user no-such-user-xq"), std::string::npos) << missing;
}

TEST(Inventory, CommandUserWithLocalStillOn_IsRefused) {
  std::string e = ErrorOf("[gateway]\ncommand_user = \"nobody\"\n");
  EXPECT_NE(e.find("hosts.toml:2: gateway.command_user: commands on this machine go through the node agent running "
                   "as nobody, but [local] is still on"),
            std::string::npos) << e;
}

TEST(Inventory, BundledExampleLoadsAndLocalWorks) {
  auto inv = LoadInventory(std::string(LABGATE_SOURCE_DIR) + "/hosts.toml");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  ASSERT_NE(inv->Find("local"), nullptr);
  EXPECT_TRUE(inv->Find("local")->HasCapability("run"));
}

TEST(Selector, ResolvesIdsGroupsTagsAndStar) {
  auto inv = Parse(R"(
[[hosts]]
id = "a"
address = "x"
groups = ["servers"]
[[hosts]]
id = "b"
address = "y"
groups = ["servers"]
tags = ["nas"]
)");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  auto ids = [&](std::vector<std::string> sel) {
    std::vector<std::string> out;
    auto r = Resolve(*inv, sel);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (r.ok()) {
      for (const auto* t : *r) out.push_back(t->id);
    }
    return out;
  };
  EXPECT_EQ(ids({"a"}), (std::vector<std::string>{"a"}));
  EXPECT_EQ(ids({"group:servers"}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ids({"tag:nas", "b"}), (std::vector<std::string>{"b"}));
  EXPECT_EQ(ids({"*"}), (std::vector<std::string>{"local", "a", "b"}));
}

TEST(Selector, UnknownTargetListsKnownOnes) {
  Inventory inv = DefaultInventory();
  auto r = Resolve(inv, {"prox9"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "unknown target 'prox9': known targets are local (see `labgate targets`)");
}

TEST(Selector, MalformedSelectorsAreRefused) {
  EXPECT_FALSE(ValidateSelector("group:").ok());
  EXPECT_FALSE(ValidateSelector("rm -rf").ok());
  EXPECT_FALSE(ValidateSelector("tag:a;b").ok());
  EXPECT_TRUE(ValidateSelector("tag:a.b").ok());
  EXPECT_FALSE(Resolve(DefaultInventory(), {"group:nope"}).ok());
}

// --- capture backends: [hosts.screen], [local.camera], ..., and a node's device.toml ---

TEST(Inventory, CaptureTables_FillTheTargetsDeviceConfig) {
  auto inv = Parse(R"(
[local]
capabilities = ["run", "screen", "camera", "location"]
[local.screen]
backend = "x11"
display = ":1"
[local.camera]
backend = "v4l2"
device = "/dev/video0"
input_format = "v4l2"
front = "/dev/video2"
back = "/dev/video0"
[local.location]
backend = "static"
latitude = 47.3769
longitude = 8
accuracy_m = 25
altitude_m = 408.5

[[hosts]]
id = "maul"
address = "10.0.0.5"
capabilities = ["run", "screen", "location"]
[hosts.screen]
backend = "wayland"
outputs = ["DP-1", "HDMI-A-1"]
[hosts.location]
backend = "gpsd"
gpsd = "127.0.0.1:2947"
)");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  const auto& local = inv->Find("local")->capture;
  EXPECT_EQ(local.screen.backend, "x11");
  EXPECT_EQ(local.screen.display, ":1");
  EXPECT_EQ(local.camera.backend, "v4l2");
  EXPECT_EQ(local.camera.device, "/dev/video0");
  EXPECT_EQ(local.camera.input_format, "v4l2");
  EXPECT_EQ(local.camera.front, "/dev/video2");
  EXPECT_EQ(local.camera.back, "/dev/video0");
  EXPECT_EQ(local.location.backend, "static");
  ASSERT_TRUE(local.location.latitude && local.location.longitude && local.location.altitude_m);
  EXPECT_DOUBLE_EQ(*local.location.latitude, 47.3769);
  EXPECT_DOUBLE_EQ(*local.location.longitude, 8.0);
  EXPECT_DOUBLE_EQ(local.location.accuracy_m, 25.0);
  EXPECT_DOUBLE_EQ(*local.location.altitude_m, 408.5);

  const auto& maul = inv->Find("maul")->capture;
  EXPECT_EQ(maul.screen.backend, "wayland");
  EXPECT_EQ(maul.screen.outputs, (std::vector<std::string>{"DP-1", "HDMI-A-1"}));
  EXPECT_EQ(maul.camera.backend, "auto");
  EXPECT_EQ(maul.location.backend, "gpsd");
  EXPECT_EQ(maul.location.gpsd, "127.0.0.1:2947");
  EXPECT_FALSE(maul.location.latitude);
}

TEST(Inventory, CaptureTablesAbsent_EverythingAuto) {
  auto inv = Parse("[[hosts]]\nid = \"maul\"\naddress = \"10.0.0.5\"\n");
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  for (const auto& t : inv->targets) {
    EXPECT_EQ(t.capture.screen.backend, "auto") << t.id;
    EXPECT_EQ(t.capture.camera.backend, "auto") << t.id;
    EXPECT_EQ(t.capture.location.backend, "auto") << t.id;
  }
}

TEST(Inventory, UnknownCaptureBackend_NamesFileLineAndKey) {
  std::string e = ErrorOf("[[hosts]]\nid = \"maul\"\naddress = \"10.0.0.5\"\n[hosts.screen]\nbackend = \"x12\"\n");
  EXPECT_NE(e.find("hosts.toml:5: hosts[0].screen.backend: unknown backend 'x12' (auto, x11, wayland or macos)"),
            std::string::npos)
      << e;
}

TEST(Inventory, UnknownLocalCameraBackend_NamesKey) {
  std::string e = ErrorOf("[local]\n[local.camera]\nbackend = \"gphoto\"\n");
  EXPECT_NE(e.find("hosts.toml:3: local.camera.backend: unknown backend 'gphoto'"), std::string::npos) << e;
}

TEST(Inventory, StaticLocationWithoutLatitude_Refused) {
  std::string e = ErrorOf("[local.location]\nbackend = \"static\"\nlongitude = 8.5\n");
  EXPECT_NE(e.find("hosts.toml:2: local.location.backend: static needs latitude and longitude"), std::string::npos)
      << e;
}

TEST(Inventory, LatitudeOutOfRange_Refused) {
  std::string e = ErrorOf("[local.location]\nlatitude = 95\nlongitude = 8.5\n");
  EXPECT_NE(e.find("hosts.toml:2: local.location.latitude: must be between"), std::string::npos) << e;
}

TEST(Inventory, UnknownKeyInCaptureTable_Refused) {
  std::string e = ErrorOf("[local.camera]\nresolution = \"1080p\"\n");
  EXPECT_NE(e.find("hosts.toml:2: local.camera.resolution: unknown key"), std::string::npos) << e;
}

TEST(Inventory, CaptureTableUnderNodes_RefusedPointingToDeviceToml) {
  std::string e = ErrorOf("[[nodes]]\nid = \"phone\"\n[nodes.camera]\nbackend = \"termux\"\n");
  EXPECT_NE(e.find("nodes[0].camera"), std::string::npos) << e;
  EXPECT_NE(e.find("device.toml"), std::string::npos) << e;
}

class DeviceConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labgate-device-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/device.toml";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }

  std::string dir_;
  std::string path_;
};

TEST_F(DeviceConfigFile, Valid_FillsTheConfig) {
  Write(
      "[screen]\nbackend = \"x11\"\ndisplay = \":0\"\n[camera]\nbackend = \"termux\"\nfront = \"1\"\n"
      "[location]\nbackend = \"termux\"\n");
  auto config = LoadDeviceConfig(path_);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->screen.backend, "x11");
  EXPECT_EQ(config->screen.display, ":0");
  EXPECT_EQ(config->camera.backend, "termux");
  EXPECT_EQ(config->camera.front, "1");
  EXPECT_EQ(config->location.backend, "termux");
}

TEST_F(DeviceConfigFile, BadKey_NamesFileAndLine) {
  Write("[screen]\nbackend = \"x11\"\n[camera]\nbogus = 1\n");
  auto config = LoadDeviceConfig(path_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find(path_ + ":4: camera.bogus: unknown key"), std::string::npos)
      << config.error().message;
}

TEST_F(DeviceConfigFile, UnknownTopLevelTable_NamesFileAndLine) {
  Write("[screen]\nbackend = \"x11\"\n[microphone]\nbackend = \"alsa\"\n");
  auto config = LoadDeviceConfig(path_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find(path_ + ":3: microphone: unknown key"), std::string::npos)
      << config.error().message;
}

TEST_F(DeviceConfigFile, BadBackend_NamesFileLineAndKey) {
  Write("\n[location]\nbackend = \"galileo\"\n");
  auto config = LoadDeviceConfig(path_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find(path_ + ":3: location.backend: unknown backend 'galileo'"), std::string::npos)
      << config.error().message;
}

TEST_F(DeviceConfigFile, TomlSyntaxError_NamesFileAndLine) {
  Write("[screen]\nbackend = x11\n");
  auto config = LoadDeviceConfig(path_);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, core::ErrorCode::kParse);
  EXPECT_NE(config.error().message.find(path_ + ":2:"), std::string::npos) << config.error().message;
}

TEST_F(DeviceConfigFile, Missing_NotFoundNamingThePath) {
  auto config = LoadDeviceConfig(dir_ + "/nope.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(config.error().message.find(dir_ + "/nope.toml"), std::string::npos) << config.error().message;
}

}  // namespace
}  // namespace labgate::inventory
