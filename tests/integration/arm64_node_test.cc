// The arm64 package's `labgate node`, run under qemu-user against this build's (amd64) gateway,
// as a Raspberry Pi would run it: pair, run, a photo from the lavfi camera, rotate, revoke.
// The binary comes from dist/labgate_*_arm64.deb, which scripts/test.sh builds before the
// suites run (packaging/build-deb.sh); the arm64 libraries it loads are the ones that build
// installed through multiarch.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "subprocess.h"

namespace labgate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

const char* kQemu = "/usr/bin/qemu-aarch64-static";

// The newest arm64 package in dist/, or "".
std::string Arm64Package() {
  const std::filesystem::path dist = std::string(LABGATE_SOURCE_DIR) + "/dist";
  std::string newest;
  std::filesystem::file_time_type newest_time;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dist, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("labgate_", 0) != 0 || name.size() < 10 || name.substr(name.size() - 10) != "_arm64.deb") continue;
    if (newest.empty() || entry.last_write_time() > newest_time) {
      newest = entry.path().string();
      newest_time = entry.last_write_time();
    }
  }
  return newest;
}

// ELF e_machine of `path` (183 is EM_AARCH64).
int ElfMachine(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[20] = {};
  in.read(reinterpret_cast<char*>(header), sizeof header);
  if (!in || header[0] != 0x7f || header[1] != 'E' || header[2] != 'L' || header[3] != 'F') return -1;
  return header[18] | (header[19] << 8);  // little-endian
}

class Arm64Node : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string package = Arm64Package();
    if (package.empty()) {
      GTEST_SKIP() << "no dist/labgate_*_arm64.deb: build it with `packaging/build-deb.sh --arch arm64` "
                      "(scripts/test.sh does, before the suites)";
    }
    ASSERT_TRUE(std::filesystem::exists(kQemu)) << "qemu-user-static is missing (apt-get install qemu-user-static)";
    auto unpacked = RunToCompletion({"/usr/bin/dpkg-deb", "-x", package, dir_.path() + "/root"});
    ASSERT_EQ(unpacked.status, 0) << unpacked.err;
    arm64_ = dir_.path() + "/root/usr/bin/labgate";
    ASSERT_EQ(ElfMachine(arm64_), 183) << arm64_ << " is not an arm64 executable";

    const int port = FreePort();
    config_ = dir_.Write("hosts.toml", "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(port) +
                                           "\"\nstate_dir = \"" + dir_.path() + "/state\"\n\n"
                                           "[policies.camera]\nenabled = true\napproved_nodes = [\"pi\"]\n\n"
                                           "[[nodes]]\nid = \"pi\"\ncapabilities = [\"run\", \"camera\"]\n");
    gateway_ = std::make_unique<Subprocess>(std::vector<std::string>{LABGATE_BINARY, "gateway", "--config", config_});
    ASSERT_TRUE(GatewayAnswers(config_, dir_.path())) << gateway_->Stderr();
  }

  void TearDown() override {
    if (agent_) ::kill(agent_->pid(), SIGTERM);
    if (gateway_) ::kill(gateway_->pid(), SIGTERM);
  }

  // The amd64 CLI against the gateway.
  Completed Labgate(std::vector<std::string> args) {
    std::vector<std::string> argv = {LABGATE_BINARY, args[0], "--config", config_};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    return RunToCompletion(argv, dir_.path());
  }
  // The arm64 labgate, emulated.
  std::vector<std::string> Arm64(std::vector<std::string> args) const {
    std::vector<std::string> argv = {kQemu, arm64_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  void StartAgent() {
    agent_ = std::make_unique<Subprocess>(Arm64({"node", "run", "--state-dir", device_}), dir_.path());
  }
  bool Online(bool online) {
    return PollUntil(
        [&] {
          auto listed = Labgate({"nodes", "list", "--json"});
          Json list = Json::parse(listed.out, nullptr, false);
          if (!list.is_object()) return false;
          for (const auto& node : list.value("nodes", Json::array())) {
            if (node["id"] == "pi") return node["online"].get<bool>() == online;
          }
          return false;
        },
        milliseconds(20000));
  }

  TempDir dir_;
  std::string arm64_;
  std::string config_;
  std::string device_ = "";
  std::unique_ptr<Subprocess> gateway_;
  std::unique_ptr<Subprocess> agent_;
};

TEST_F(Arm64Node, PairsRunsTakesAPhotoRotatesAndIsRevoked) {
  auto version = RunToCompletion(Arm64({"--version"}));
  ASSERT_EQ(version.status, 0) << version.err;
  EXPECT_EQ(version.out, "labgate " LABGATE_VERSION "\n") << "the package is not of this build's version";

  // Pair with a code from the amd64 gateway.
  device_ = dir_.path() + "/pi";
  auto code = Labgate({"pair", "new", "--node", "pi", "--json"});
  ASSERT_EQ(code.status, 0) << code.err;
  auto paired = RunToCompletion(
      Arm64({"node", "pair", Json::parse(code.out)["code"].get<std::string>(), "--state-dir", device_}), dir_.path());
  ASSERT_EQ(paired.status, 0) << paired.out << paired.err;
  std::ofstream(device_ + "/device.toml")
      << "[camera]\nbackend = \"v4l2\"\ninput_format = \"lavfi\"\ndevice = \"testsrc=size=320x240:rate=5\"\n";
  StartAgent();
  ASSERT_TRUE(Online(true)) << agent_->Stderr();

  auto ran = Labgate({"run", "pi", "--", "echo", "from the pi"});
  EXPECT_EQ(ran.status, 0) << ran.err;
  EXPECT_EQ(ran.out, "from the pi\n");

  const std::string photo = dir_.path() + "/pi.jpg";
  auto snapped = Labgate({"camera", "pi", "--json", "-o", photo});
  ASSERT_EQ(snapped.status, 0) << snapped.out << snapped.err;
  Json meta = Json::parse(snapped.out);
  EXPECT_EQ(meta["format"], "jpeg");
  EXPECT_EQ(meta["width"], 320);
  EXPECT_EQ(meta["height"], 240);
  std::ifstream jpeg(photo, std::ios::binary);
  unsigned char soi[2] = {};
  jpeg.read(reinterpret_cast<char*>(soi), 2);
  EXPECT_TRUE(soi[0] == 0xff && soi[1] == 0xd8) << "not a JPEG";

  // Rotate: the arm64 agent writes its new key; restarted, it logs in with it.
  auto rotated = Labgate({"nodes", "rotate", "pi", "--json"});
  ASSERT_EQ(rotated.status, 0) << rotated.err;
  Json rotation = Json::parse(rotated.out);
  EXPECT_NE(rotation["newFingerprint"], rotation["oldFingerprint"]);
  ::kill(agent_->pid(), SIGTERM);
  ASSERT_TRUE(agent_->Wait(milliseconds(10000)).has_value());
  ASSERT_TRUE(Online(false));
  StartAgent();
  ASSERT_TRUE(Online(true)) << agent_->Stderr();
  auto after = Labgate({"run", "pi", "--", "echo", "new key"});
  EXPECT_EQ(after.out, "new key\n") << after.err;

  // Revoke: the session drops and the agent stops with the status its unit does not restart.
  auto revoked = Labgate({"nodes", "revoke", "pi"});
  ASSERT_EQ(revoked.status, 0) << revoked.err;
  EXPECT_EQ(agent_->Wait(milliseconds(20000)), 78) << agent_->Stderr();
  EXPECT_NE(agent_->Stderr().find("refused the login"), std::string::npos) << agent_->Stderr();
  auto refused = Labgate({"run", "pi", "--", "true"});
  EXPECT_EQ(refused.status, 255);
  agent_.reset();
}

}  // namespace
}  // namespace labgate::testing
