// Malformed device output and stale artifacts: errors, never exceptions or stale answers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "capabilities/capture.h"
#include "capabilities/location_fix.h"
#include "fakes/fakes.h"
#include "gateway/artifacts.h"
#include "inventory/inventory.h"

namespace labgate {
namespace {

TEST(CaptureRobustness, GpsdReportWrongTypes_ErrorNotException) {
  EXPECT_NO_THROW({ EXPECT_FALSE(capabilities::ParseGpsdReport(R"({"class":5})").ok()); });
  EXPECT_NO_THROW({ EXPECT_FALSE(capabilities::ParseGpsdReport(R"({"class":"TPV","mode":"3","lat":1,"lon":2})").ok()); });
}

TEST(CaptureRobustness, TermuxLocationProviderNotAString_NoException) {
  EXPECT_NO_THROW({
    auto fix = capabilities::ParseTermuxLocation(R"({"latitude":1,"longitude":2,"provider":7})",
                                                 std::chrono::system_clock::now());
    EXPECT_TRUE(fix.ok());
  });
}

TEST(CaptureRobustness, TermuxCameraListFacingNotAString_NoException) {
  fakes::FakeCommandHost host("phone");
  capabilities::DeviceConfig config;
  config.camera.backend = "termux";
  core::ProcessOutcome o;
  o.exit_code = 0;
  o.out.text = R"([{"id":"0","facing":1}])";
  host.Script(o);
  capabilities::CaptureRequest r;
  r.capability = "camera";
  r.action = "list";
  r.timeout_ms = 1000;
  core::CancelToken cancel;
  EXPECT_NO_THROW({ (void)capabilities::Perform(host, config, r, cancel); });
}

TEST(CaptureRobustness, ArtifactReadPastMaxAge_NotFound) {
  char tmpl[] = "/tmp/labgate-srcbug-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  fakes::FakeClock clock;
  gateway::ArtifactStore store(std::string(tmpl) + "/a", 1 << 20, std::chrono::seconds(60), clock);
  auto saved = store.Save("x", "image/png", "local", "screen.snapshot");
  ASSERT_TRUE(saved.ok());
  clock.Advance(std::chrono::milliseconds(61000));
  auto read = store.Read(saved->id);
  EXPECT_FALSE(read.ok()) << "artifacts.h: Read gives kNotFound for an expired id";
  EXPECT_TRUE(store.List().empty());
  std::filesystem::remove_all(tmpl);
}

TEST(CaptureRobustness, UnknownKeyUnderNodes_HintDoesNotOfferCaptureTables) {
  auto inv = inventory::ParseInventory("[[nodes]]\nid = \"p\"\nfoo = 1\n", "hosts.toml", "/");
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.error().message.find("allowed here: id, screen"), std::string::npos) << inv.error().message;
}

}  // namespace
}  // namespace labgate
