#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <tuple>

#include "inventory/edit.h"
#include "inventory/inventory.h"
#include "policy/decide.h"

namespace labgate::inventory {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The bundled, commented hosts.toml (no live entries), then live entries with comments, an inline
// comment, a multi-line array, a subtable, a node and a [[checks]] table.
const std::string kRepo = Slurp(LABGATE_SOURCE_DIR "/hosts.toml");
const std::string kProx =
    "# The hypervisor in the rack.\n"
    "[[hosts]]\n"
    "id = \"prox4\"\n"
    "address = \"127.0.0.4\"   # the lab LAN\n"
    "port = 22\n"
    "user = \"ops\"\n"
    "groups = [\n"
    "  \"servers\",   # main group\n"
    "  \"lab\",\n"
    "]\n"
    "capabilities = [\"run\", \"screen\"]\n"
    "# port was 2222 before the reinstall\n"
    "[hosts.screen]                     # backends\n"
    "backend = \"x11\"\n"
    "display = \":0\"\n";
const std::string kNas =
    "[[hosts]]\n"
    "id = \"nas\"\n"
    "address = \"127.0.0.5\"\n"
    "groups = [\"servers\"]\n"
    "deny = [\"zpool destroy*\"]\n"
    "# still on the old key\n";
const std::string kNode =
    "# Paired devices.\n"
    "[[nodes]]\n"
    "id = \"phone-node\"\n"
    "device = \"Pixel 8\"\n"
    "capabilities = [\"camera\", \"location\"]\n";
const std::string kTail =
    "# Checks are neither hosts nor nodes.\n"
    "[[checks]]\n"
    "name = \"disk\"\n"
    "targets = \"group:servers\"\n"
    "command = \"df -h /\"\n"
    "every = \"15m\"\n"
    "\n"
    "[policies.camera]\n"
    "enabled = true\n"
    "approved_nodes = [\"phone-node\"]\n";

std::string Base() { return kRepo + "\n" + kProx + "\n" + kNas + "\n" + kNode + "\n" + kTail; }

core::Status Validate(const std::string& text) {
  auto inv = ParseInventory(text, "hosts.toml", "/etc/labgate");
  if (!inv) return inv.error();
  return policy::CheckInventory(*inv);
}

Inventory MustParse(const std::string& text) {
  auto inv = ParseInventory(text, "hosts.toml", "/etc/labgate");
  EXPECT_TRUE(inv.ok()) << inv.error().message << "\n--- text:\n" << text;
  return inv.ok() ? std::move(*inv) : DefaultInventory();
}

TEST(InventoryEdit, BaseFixture_Loads) {
  ASSERT_NE(kRepo.find("[policies.run]"), std::string::npos);
  ASSERT_TRUE(Validate(Base()).ok()) << Validate(Base()).error().message;
}

TEST(InventoryEdit, AddHost_AfterLastHost_OtherBytesIdentical) {
  HostEntry e;
  e.id = "nas2";
  e.address = "127.0.0.6";
  e.port = 2222;
  e.groups = {"servers"};
  auto out = AddHost(Base(), e);
  ASSERT_TRUE(out.ok()) << out.error().message;
  const std::string block = "[[hosts]]\nid = \"nas2\"\naddress = \"127.0.0.6\"\nport = 2222\ngroups = [\"servers\"]\n";
  EXPECT_EQ(*out, kRepo + "\n" + kProx + "\n" + kNas + "\n" + block + "\n" + kNode + "\n" + kTail);
  auto inv = MustParse(*out);
  ASSERT_NE(inv.Find("nas2"), nullptr);
  EXPECT_EQ(inv.Find("nas2")->port, 2222);
  EXPECT_EQ(inv.Find("nas2")->groups, std::vector<std::string>{"servers"});
  EXPECT_EQ(inv.checks.size(), 1u);
}

TEST(InventoryEdit, AddHost_NoHostsYet_AppendedAtEndAfterABlankLine) {
  HostEntry e;
  e.id = "prox4";
  e.address = "127.0.0.4";
  auto out = AddHost(kRepo, e);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, kRepo + "\n[[hosts]]\nid = \"prox4\"\naddress = \"127.0.0.4\"\n");
  EXPECT_NE(MustParse(*out).Find("prox4"), nullptr);
}

TEST(InventoryEdit, AddHost_EmptyFile_JustTheEntry) {
  HostEntry e;
  e.id = "a";
  e.address = "127.0.0.7";
  auto out = AddHost("", e);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, "[[hosts]]\nid = \"a\"\naddress = \"127.0.0.7\"\n");
}

TEST(InventoryEdit, AddHost_EveryField_WrittenAndEscaped) {
  HostEntry e;
  e.id = "desk";
  e.address = "127.0.0.8";
  e.port = 22;
  e.user = "me";
  e.identity_file = "~/.ssh/id_ed25519";
  e.groups = {"desktops"};
  e.tags = {"x11", "home"};
  e.capabilities = {"run", "screen"};
  e.device = "ThinkPad \"T14\"";
  e.owner = "back\\slash";
  e.purpose = "daily driver\twith a tab";
  e.role = "daily";
  auto out = AddHost(kNode, e);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_NE(out->find("device = \"ThinkPad \\\"T14\\\"\"\n"), std::string::npos) << *out;
  auto inv = MustParse(*out);
  const Target* t = inv.Find("desk");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->device, "ThinkPad \"T14\"");
  EXPECT_EQ(t->owner, "back\\slash");
  EXPECT_EQ(t->purpose, "daily driver\twith a tab");
  EXPECT_EQ(t->role, "daily");
  EXPECT_EQ(t->tags, (std::vector<std::string>{"x11", "home"}));
  EXPECT_EQ(t->capabilities, (std::vector<std::string>{"run", "screen"}));
  EXPECT_EQ(out->rfind(kNode, 0), 0u);  // the node stays first, untouched
}

TEST(InventoryEdit, AddHost_IdOfAHostOrNode_Refused) {
  HostEntry e;
  e.address = "127.0.0.9";
  for (const char* id : {"prox4", "phone-node"}) {
    e.id = id;
    auto out = AddHost(Base(), e);
    ASSERT_FALSE(out.ok()) << id;
    EXPECT_NE(out.error().message.find("already used"), std::string::npos) << out.error().message;
  }
  e.id = "local";
  auto out = AddHost(Base(), e);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("built-in"), std::string::npos) << out.error().message;
}

TEST(InventoryEdit, AddHost_NotToml_RefusedWithLine) {
  HostEntry e;
  e.id = "a";
  e.address = "b";
  auto out = AddHost("[gateway\nlisten = 1\n", e);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("line 1"), std::string::npos) << out.error().message;
}

TEST(InventoryEdit, RemoveEntry_HostWithSubtable_RemovesItsCommentsAndOneBlankLine) {
  auto out = RemoveEntry(Base(), "prox4");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, kRepo + "\n" + kNas + "\n" + kNode + "\n" + kTail);
  auto inv = MustParse(*out);
  EXPECT_EQ(inv.Find("prox4"), nullptr);
  EXPECT_NE(inv.Find("nas"), nullptr);
}

TEST(InventoryEdit, RemoveEntry_TrailingComment_GoesCommentAboveNextHeaderStays) {
  auto out = RemoveEntry(Base(), "nas");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, kRepo + "\n" + kProx + "\n" + kNode + "\n" + kTail);
}

TEST(InventoryEdit, RemoveEntry_Node_Removed) {
  auto out = RemoveEntry(Base(), "phone-node");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, kRepo + "\n" + kProx + "\n" + kNas + "\n" + kTail);
}

TEST(InventoryEdit, RemoveEntry_CommentDirectlyBeforeNextHeader_StaysWithIt) {
  const std::string text =
      "[[hosts]]\nid = \"a\"\naddress = \"x\"\n# about b\n[[hosts]]\nid = \"b\"\naddress = \"y\"\n";
  auto out = RemoveEntry(text, "a");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, "# about b\n[[hosts]]\nid = \"b\"\naddress = \"y\"\n");
  auto out_b = RemoveEntry(text, "b");
  ASSERT_TRUE(out_b.ok()) << out_b.error().message;
  EXPECT_EQ(*out_b, "[[hosts]]\nid = \"a\"\naddress = \"x\"\n");
}

TEST(InventoryEdit, RemoveEntry_LastInFile_LeavesNoTrailingBlankLine) {
  const std::string head = "[gateway]\nlisten = \"127.0.0.1:7022\"\n";
  const std::string text = head + "\n[[hosts]]\nid = \"a\"\naddress = \"x\"\n";
  auto out = RemoveEntry(text, "a");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, head);
}

TEST(InventoryEdit, RemoveEntry_NoTrailingNewline_StateKept) {
  const std::string text = "[[hosts]]\nid = \"a\"\naddress = \"x\"\n\n[[hosts]]\nid = \"b\"\naddress = \"y\"";
  auto out = RemoveEntry(text, "b");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, "[[hosts]]\nid = \"a\"\naddress = \"x\"");
}

TEST(InventoryEdit, RemoveEntry_UnknownOrLocalOrCheck_Refused) {
  auto unknown = RemoveEntry(Base(), "prox9");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(unknown.error().message.find("'prox9'"), std::string::npos);
  EXPECT_FALSE(RemoveEntry(Base(), "local").ok());
  EXPECT_FALSE(RemoveEntry(Base(), "disk").ok());  // a [[checks]] name is not an entry id
  EXPECT_FALSE(RemoveEntry(Base(), "").ok());
}

TEST(InventoryEdit, SetKeys_ExistingValue_ReplacedInPlaceInlineCommentKept) {
  auto out = SetKeys(Base(), "prox4", {{"address", "127.0.0.40"}, {"port", "2222"}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  std::string prox = kProx;
  prox.replace(prox.find("\"127.0.0.4\""), 11, "\"127.0.0.40\"");
  prox.replace(prox.find("port = 22\n"), 10, "port = 2222\n");
  EXPECT_EQ(*out, kRepo + "\n" + prox + "\n" + kNas + "\n" + kNode + "\n" + kTail);
  EXPECT_NE(out->find("address = \"127.0.0.40\"   # the lab LAN\n"), std::string::npos);
  EXPECT_EQ(MustParse(*out).Find("prox4")->port, 2222);
}

TEST(InventoryEdit, SetKeys_MultiLineArray_ReplacedWhole) {
  auto out = SetKeys(Base(), "prox4", {{"groups", "servers, rack"}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  std::string prox = kProx;
  const auto at = prox.find("groups = [\n");
  prox.replace(at, prox.find("]\n", at) + 1 - at, "groups = [\"servers\", \"rack\"]");
  EXPECT_EQ(*out, kRepo + "\n" + prox + "\n" + kNas + "\n" + kNode + "\n" + kTail);
  EXPECT_EQ(MustParse(*out).Find("prox4")->groups, (std::vector<std::string>{"servers", "rack"}));
}

TEST(InventoryEdit, SetKeys_NewKey_AfterLastOwnKeyNotInSubtable) {
  auto out = SetKeys(Base(), "prox4", {{"purpose", "hypervisor"}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  std::string prox = kProx;
  const std::string caps = "capabilities = [\"run\", \"screen\"]\n";
  prox.insert(prox.find(caps) + caps.size(), "purpose = \"hypervisor\"\n");
  EXPECT_EQ(*out, kRepo + "\n" + prox + "\n" + kNas + "\n" + kNode + "\n" + kTail);
  auto inv = MustParse(*out);
  EXPECT_EQ(inv.Find("prox4")->purpose, "hypervisor");
  EXPECT_EQ(inv.Find("prox4")->capture.screen.display, ":0");
}

TEST(InventoryEdit, SetKeys_EmptyValue_RemovesTheKeyLines) {
  auto out = SetKeys(Base(), "prox4", {{"groups", ""}, {"user", ""}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  std::string prox = kProx;
  const auto at = prox.find("groups = [\n");
  prox.erase(at, prox.find("]\n", at) + 2 - at);
  prox.erase(prox.find("user = \"ops\"\n"), 13);
  EXPECT_EQ(*out, kRepo + "\n" + prox + "\n" + kNas + "\n" + kNode + "\n" + kTail);
  auto missing = SetKeys(Base(), "prox4", {{"tags", ""}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no key 'tags'"), std::string::npos) << missing.error().message;
}

TEST(InventoryEdit, SetKeys_Node_ArrayLiteralAccepted) {
  auto out = SetKeys(Base(), "phone-node", {{"capabilities", "[\"camera\", 'location', \"run\"]"}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(MustParse(*out).Find("phone-node")->capabilities, (std::vector<std::string>{"camera", "location", "run"}));
  EXPECT_NE(out->find("capabilities = [\"camera\", \"location\", \"run\"]\n\n# Checks"), std::string::npos) << *out;
}

TEST(InventoryEdit, SetKeys_IdPasswordOrSubtableKey_Refused) {
  auto id = SetKeys(Base(), "prox4", {{"id", "prox5"}});
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.error().message.find("remove the entry and add it again"), std::string::npos);
  for (const char* key : {"password", "passphrase"}) {
    auto secret = SetKeys(Base(), "prox4", {{key, "hunter2"}});
    ASSERT_FALSE(secret.ok());
    EXPECT_NE(secret.error().message.find(std::string(key) + "_env"), std::string::npos) << secret.error().message;
  }
  EXPECT_FALSE(SetKeys(Base(), "prox4", {{"screen.display", ":1"}}).ok());
  EXPECT_FALSE(SetKeys(Base(), "prox9", {{"user", "x"}}).ok());
}

TEST(InventoryEdit, SetKeys_UnknownKeyOrBadValue_ValidationNamesLineAndKey) {
  auto port = SetKeys(Base(), "prox4", {{"port", "abc"}});
  ASSERT_TRUE(port.ok()) << port.error().message;
  auto bad = Validate(*port);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("hosts[0].port: must be an integer"), std::string::npos) << bad.error().message;
  auto role = SetKeys(Base(), "nas", {{"role", "root"}});
  ASSERT_TRUE(role.ok());
  bad = Validate(*role);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("hosts[1].role: unknown role 'root'"), std::string::npos) << bad.error().message;
  auto unknown = SetKeys(Base(), "phone-node", {{"address", "127.0.0.1"}});
  ASSERT_TRUE(unknown.ok());
  bad = Validate(*unknown);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("nodes[0].address: unknown key"), std::string::npos) << bad.error().message;
}

TEST(InventoryEdit, TomlValueFor_TypesByKey) {
  EXPECT_EQ(*TomlValueFor("port", "2222"), "2222");
  EXPECT_EQ(*TomlValueFor("port", "22x"), "\"22x\"");
  EXPECT_EQ(*TomlValueFor("groups", "a,b , c"), "[\"a\", \"b\", \"c\"]");
  EXPECT_EQ(*TomlValueFor("deny", "[]"), "[]");
  EXPECT_EQ(*TomlValueFor("user", "o\"ps"), "\"o\\\"ps\"");
  EXPECT_FALSE(TomlValueFor("tags", "[1, 2]").ok());
  EXPECT_FALSE(TomlValueFor("tags", "[\"a\"").ok());
}

TEST(InventoryEdit, Crlf_LinesWrittenWithCrlfAndRestKept) {
  std::string text =
      "[gateway]\r\nlisten = \"127.0.0.1:7022\"\r\n\r\n[[hosts]]\r\nid = \"a\"\r\naddress = \"x\"  # lan\r\n";
  HostEntry e;
  e.id = "b";
  e.address = "y";
  auto added = AddHost(text, e);
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(*added, text + "\r\n[[hosts]]\r\nid = \"b\"\r\naddress = \"y\"\r\n");
  auto set = SetKeys(*added, "a", {{"address", "z"}, {"user", "ops"}});
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_NE(set->find("address = \"z\"  # lan\r\nuser = \"ops\"\r\n\r\n[[hosts]]"), std::string::npos) << *set;
  auto removed = RemoveEntry(*added, "b");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, text);
}

TEST(InventoryEdit, ByteOrderMark_KeptAndEditsWork) {
  const std::string text = "\xEF\xBB\xBF# hosts\n[[hosts]]\nid = \"a\"\naddress = \"x\"\n";
  auto out = SetKeys(text, "a", {{"user", "ops"}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, text + "user = \"ops\"\n");
}

TEST(InventoryEdit, SetKeys_NewKeyAtEndWithoutNewline_StateKept) {
  auto out = SetKeys("[[hosts]]\nid = \"a\"\naddress = \"x\"", "a", {{"port", "2"}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, "[[hosts]]\nid = \"a\"\naddress = \"x\"\nport = 2");
}

TEST(InventoryEdit, Scanner_BracketsAndHashesInsideStrings_NotTakenForHeaders) {
  const std::string text =
      "[[hosts]]\nid = \"a\"\naddress = \"x\"\n"
      "allow = [\"echo [x] # not a comment\", '''\n[[hosts]]''']\n"
      "purpose = \"\"\"\n[[nodes]]\nid = \"fake\"\n\"\"\"\n";
  ASSERT_TRUE(ParseInventory(text, "h.toml", "/").ok()) << ParseInventory(text, "h.toml", "/").error().message;
  auto out = SetKeys(text, "a", {{"purpose", "real"}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out,
            "[[hosts]]\nid = \"a\"\naddress = \"x\"\n"
            "allow = [\"echo [x] # not a comment\", '''\n[[hosts]]''']\n"
            "purpose = \"real\"\n");
  EXPECT_FALSE(RemoveEntry(text, "fake").ok());
}

TEST(InventoryEdit, LocateEntry_LinesOfEntry) {
  const std::string text = Base();
  auto at = LocateEntry(text, "prox4");
  ASSERT_TRUE(at.ok()) << at.error().message;
  const int repo_lines = static_cast<int>(std::count(kRepo.begin(), kRepo.end(), '\n'));
  EXPECT_EQ(at->list, "hosts");
  EXPECT_EQ(at->first_line, repo_lines + 2);
  EXPECT_EQ(at->header_line, repo_lines + 3);
  EXPECT_EQ(at->last_line, repo_lines + 1 + static_cast<int>(std::count(kProx.begin(), kProx.end(), '\n')));
  EXPECT_EQ(LocateEntry(text, "phone-node")->list, "nodes");
}

// EditInventoryFile on real files.
class InventoryEditFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labgate-edit-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/hosts.toml";
    Write(Base());
    ASSERT_EQ(::chmod(path_.c_str(), 0640), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) { std::ofstream(path_, std::ios::binary) << text; }
  int Mode() const {
    struct stat st {};
    EXPECT_EQ(::stat(path_.c_str(), &st), 0);
    return static_cast<int>(st.st_mode & 07777);
  }
  std::vector<std::string> DirEntries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  core::Status AddHostTo(const std::string& id) {
    HostEntry e;
    e.id = id;
    e.address = "127.0.0.10";
    return EditInventoryFile(
        path_, [&](const std::string& text) { return AddHost(text, e); }, Validate);
  }
  std::string dir_;
  std::string path_;
};

TEST_F(InventoryEditFile, ValidEdit_WrittenWithSameModeAndNoTempLeft) {
  auto ok = AddHostTo("nas2");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_NE(MustParse(Slurp(path_)).Find("nas2"), nullptr);
  EXPECT_EQ(Mode(), 0640);
  EXPECT_EQ(DirEntries(), (std::vector<std::string>{"hosts.toml", "hosts.toml.lock"}));
  struct stat st {};
  ASSERT_EQ(::stat((path_ + ".lock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(InventoryEditFile, InvalidEdit_FileByteIdentical) {
  const std::string before = Slurp(path_);
  // The line of `needle` at the start of a line (the bundled file has it commented out too).
  const auto line_of = [&](const std::string& needle, int plus = 0) {
    const auto at = before.find("\n" + needle) + 1;
    return std::to_string(std::count(before.begin(), before.begin() + static_cast<long>(at), '\n') + 1 + plus);
  };
  for (const auto& [key, value, expected] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"port", "abc", "hosts.toml:" + line_of("port = 22\n") + ": hosts[0].port: must be an integer"},
           {"role", "root", "hosts.toml:" + line_of("capabilities = [\"run\", \"screen\"]", 1) + ": hosts[0].role"},
           {"port", "70000",
            "hosts.toml:" + line_of("port = 22\n") + ": hosts[0].port: must be between 1 and 65535"}}) {
    auto status = EditInventoryFile(
        path_,
        [&](const std::string& text) {
          return SetKeys(text, "prox4", {{key, value}});
        },
        Validate);
    ASSERT_FALSE(status.ok()) << key << "=" << value;
    EXPECT_NE(status.error().message.find(expected), std::string::npos) << status.error().message;
    EXPECT_NE(status.error().message.find("left unchanged"), std::string::npos) << status.error().message;
    EXPECT_EQ(Slurp(path_), before);
  }
  // An edit that itself fails leaves it too.
  auto status = EditInventoryFile(
      path_, [&](const std::string& text) { return RemoveEntry(text, "prox9"); }, Validate);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(Slurp(path_), before);
  EXPECT_EQ(Mode(), 0640);
  EXPECT_EQ(DirEntries(), (std::vector<std::string>{"hosts.toml", "hosts.toml.lock"}));
}

TEST_F(InventoryEditFile, ConcurrentAdds_NoneLost) {
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto ok = AddHostTo("h" + std::to_string(i));
      if (!ok) errors[i] = ok.error().message;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  auto inv = MustParse(Slurp(path_));
  for (int i = 0; i < kThreads; ++i) EXPECT_NE(inv.Find("h" + std::to_string(i)), nullptr) << i;
  EXPECT_NE(inv.Find("prox4"), nullptr);
}

TEST_F(InventoryEditFile, ConcurrentAddsFromProcesses_NoneLost) {
  constexpr int kChildren = 6;
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(AddHostTo("p" + std::to_string(i)).ok() ? 0 : 1);
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto inv = MustParse(Slurp(path_));
  for (int i = 0; i < kChildren; ++i) EXPECT_NE(inv.Find("p" + std::to_string(i)), nullptr) << i;
}

TEST_F(InventoryEditFile, LockHeldByAnother_FailsAfterWaitFileUnchanged) {
  int fd = ::open((path_ + ".lock").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  const std::string before = Slurp(path_);
  HostEntry e;
  e.id = "late";
  e.address = "127.0.0.11";
  const auto start = std::chrono::steady_clock::now();
  auto status = EditInventoryFile(
      path_, [&](const std::string& text) { return AddHost(text, e); }, Validate, std::chrono::milliseconds(300));
  const auto waited = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, core::ErrorCode::kTimeout);
  EXPECT_NE(status.error().message.find("another edit"), std::string::npos) << status.error().message;
  EXPECT_GE(waited, std::chrono::milliseconds(300));
  EXPECT_EQ(Slurp(path_), before);
}

TEST_F(InventoryEditFile, Symlink_TargetEditedLinkKept) {
  const std::string link = dir_ + "/link.toml";
  ASSERT_EQ(::symlink(path_.c_str(), link.c_str()), 0);
  HostEntry e;
  e.id = "via-link";
  e.address = "127.0.0.12";
  auto status = EditInventoryFile(
      link, [&](const std::string& text) { return AddHost(text, e); }, Validate);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_NE(MustParse(Slurp(path_)).Find("via-link"), nullptr);
}

TEST_F(InventoryEditFile, MissingFile_ClearError) {
  auto status = EditInventoryFile(
      dir_ + "/nope.toml", [](const std::string& text) { return core::Result<std::string>(text); }, Validate);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("nope.toml"), std::string::npos);
}

}  // namespace
}  // namespace labgate::inventory
