#include "gateway/gateway.h"

#include <gtest/gtest.h>

#include "fakes/fakes.h"
#include "gateway/views.h"

namespace labgate::gateway {
namespace {

class GatewayTest : public ::testing::Test {
 protected:
  void Use(const std::string& toml) {
    auto inv = inventory::ParseInventory(toml, "hosts.toml", "/");
    ASSERT_TRUE(inv.ok()) << inv.error().message;
    gateway_ = std::make_unique<Gateway>(std::make_shared<const inventory::Inventory>(*inv), audit_, executor_, clock_);
  }
  void SetUp() override { Use(""); }

  RunCall Call(std::vector<std::string> selectors, std::vector<std::string> argv) {
    RunCall call;
    call.selectors = std::move(selectors);
    call.command.argv = std::move(argv);
    return call;
  }

  fakes::FakeClock clock_;
  fakes::FakeAuditStorage storage_;
  audit::AuditLog audit_{storage_, clock_};
  fakes::FakeExecutor executor_{&storage_};
  audit::Actor actor_{"mcp", "test-client", "1.0", "alice", "s1"};
  core::CancelToken cancel_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(GatewayTest, Pipeline_Local_IntentIsDurableBeforeExecution) {
  auto report = gateway_->Run(actor_, Call({"local"}, {"uname", "-a"}), cancel_);
  ASSERT_FALSE(report.error) << report.error->message;
  ASSERT_EQ(executor_.calls().size(), 1u);
  EXPECT_EQ(executor_.calls()[0].audit_lines_before, 1u);
  auto records = storage_.records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["kind"], "intent");
  EXPECT_EQ(records[0]["payload"]["argv"], (nlohmann::json{"uname", "-a"}));
  EXPECT_EQ(records[0]["who"]["client"]["name"], "test-client");
  EXPECT_EQ(records[1]["kind"], "result");
  EXPECT_EQ(records[1]["exitCode"], 0);
  EXPECT_EQ(records[0]["actionId"], records[1]["actionId"]);
  EXPECT_EQ(report.results[0].action_id, records[0]["actionId"]);
  EXPECT_EQ(storage_.durabilities(),
            (std::vector<audit::Durability>{audit::Durability::kSynced, audit::Durability::kSoon}));
}

// Where no sandbox can be made (bwrap refused here), a command on local that changes anything
// needs a human, also when the question is first asked by that very command: the probe is put
// off until it matters (so CLI calls to other targets skip it), but never skipped.
TEST_F(GatewayTest, NoSandboxHere_ChangesOnLocalNeedAHumanAndTheProbeWaitsUntilAsked) {
  fakes::FakeProcessRunner probe_runner;
  core::ProcessOutcome refused;
  refused.exit_code = 1;
  refused.err.text = "bwrap: No permissions to create a new namespace\n";
  probe_runner.Script(refused);
  core::SandboxedRunner sandbox(probe_runner, core::SandboxPolicy{{"/state"}, {}}, "/usr/bin/bwrap");
  gateway_->SetLocalSandbox(&sandbox);
  EXPECT_TRUE(probe_runner.specs().empty());

  auto changed = gateway_->Run(actor_, Call({"local"}, {"touch", "/tmp/x"}), cancel_);
  ASSERT_EQ(changed.results.size(), 1u);
  EXPECT_EQ(changed.results[0].rule, "sandbox") << changed.results[0].reason;
  EXPECT_NE(changed.results[0].reason.find("No permissions to create a new namespace"), std::string::npos);
  EXPECT_TRUE(executor_.calls().empty());

  auto read = gateway_->Run(actor_, Call({"local"}, {"uname", "-a"}), cancel_);
  EXPECT_EQ(read.results[0].decision, "run");
  EXPECT_EQ(executor_.calls().size(), 1u);
  ASSERT_EQ(probe_runner.specs().size(), 1u);  // asked once, remembered
  EXPECT_EQ(probe_runner.specs()[0].argv.front(), "/usr/bin/bwrap");
  EXPECT_EQ(probe_runner.specs()[0].argv.back(), "true");
  EXPECT_FALSE(gateway_->local_sandboxed());
}

TEST_F(GatewayTest, Pipeline_AuditUnwritable_NothingRuns) {
  storage_.set_fail(true);
  auto report = gateway_->Run(actor_, Call({"local"}, {"touch", "/tmp/x"}), cancel_);
  ASSERT_EQ(report.results.size(), 1u);
  EXPECT_TRUE(executor_.calls().empty());
  ASSERT_TRUE(report.results[0].error);
  EXPECT_NE(report.results[0].error->find("audit log could not record the intent"), std::string::npos);
  EXPECT_FALSE(report.results[0].ok());
}

TEST_F(GatewayTest, Pipeline_UnknownTarget_RefusedAndAudited) {
  auto report = gateway_->Run(actor_, Call({"nope"}, {"true"}), cancel_);
  ASSERT_TRUE(report.error);
  EXPECT_NE(report.error->message.find("unknown target 'nope'"), std::string::npos);
  EXPECT_TRUE(executor_.calls().empty());
  auto records = storage_.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["kind"], "refusal");
  EXPECT_EQ(records[0]["targets"], (nlohmann::json{"nope"}));
}

TEST_F(GatewayTest, Pipeline_PolicyDisabled_RefusedWithRule) {
  Use("[policies.run]\nenabled = false\n");
  auto report = gateway_->Run(actor_, Call({"local"}, {"true"}), cancel_);
  ASSERT_EQ(report.results.size(), 1u);
  EXPECT_TRUE(executor_.calls().empty());
  ASSERT_TRUE(report.results[0].error);
  EXPECT_NE(report.results[0].error->find("policies.run.enabled"), std::string::npos);
  auto records = storage_.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["kind"], "refusal");
  EXPECT_EQ(records[0]["decision"]["rule"], "policies.run.enabled");
}

TEST_F(GatewayTest, Env_ThatChangesWhatRuns_NeedsAHumanEvenWhereTheCommandIsReadOnly) {
  // A read-only target, an allow rule for the command: LD_PRELOAD, BASH_ENV or PATH still run
  // foreign code, so none of them runs without a human, and read-only mode refuses them.
  Use("[local]\nmode = \"read-only\"\nallow = [\"uname*\"]\n");
  for (const char* name : {"LD_PRELOAD", "BASH_ENV", "PATH", "ENV", "PYTHONPATH", "GIT_SSH_COMMAND"}) {
    RunCall call = Call({"local"}, {"uname", "-a"});
    call.env = {{name, "/tmp/evil"}};
    auto report = gateway_->Run(actor_, call, cancel_);
    ASSERT_EQ(report.results.size(), 1u);
    EXPECT_EQ(report.results[0].decision, "refused") << name;
    EXPECT_EQ(report.results[0].risk, "destructive") << name;
  }
  EXPECT_TRUE(executor_.calls().empty());
  // Locale and terminal settings change nothing that runs.
  RunCall inert = Call({"local"}, {"uname", "-a"});
  inert.env = {{"LANG", "C.UTF-8"}, {"TERM", "dumb"}, {"TZ", "UTC"}};
  auto report = gateway_->Run(actor_, inert, cancel_);
  EXPECT_EQ(report.results[0].decision, "run");
  EXPECT_EQ(executor_.calls().size(), 1u);
}

TEST_F(GatewayTest, Env_NamesTheOperatorAllows_RunWithoutAHuman) {
  Use("[policies.run]\nenv_allow = [\"APP_*\", \"BUILD_ID\"]\n\n[local]\nmode = \"read-only\"\n");
  RunCall allowed = Call({"local"}, {"uname", "-a"});
  allowed.env = {{"APP_MODE", "debug"}, {"BUILD_ID", "7"}};
  EXPECT_EQ(gateway_->Run(actor_, allowed, cancel_).results[0].decision, "run");
  RunCall mixed = Call({"local"}, {"uname", "-a"});
  mixed.env = {{"APP_MODE", "debug"}, {"PATH", "/tmp/evil"}};
  EXPECT_EQ(gateway_->Run(actor_, mixed, cancel_).results[0].decision, "refused");
  EXPECT_EQ(executor_.calls().size(), 1u);
}

TEST_F(GatewayTest, Env_AllowListThatAllowsEverything_DoesNotLoad) {
  for (const char* bad : {"\"*\"", "\"**\"", "\"A B\"", "\"\""}) {
    auto inv = inventory::ParseInventory(std::string("[policies.run]\nenv_allow = [") + bad + "]\n", "hosts.toml", "/");
    EXPECT_FALSE(inv.ok()) << bad;
  }
}

TEST_F(GatewayTest, Env_LabgatesRunTag_IsRefused) {
  // LABGATE_RUN is how a deadline finds the command's processes on a host.
  for (const char* name : {"LABGATE_RUN"}) {
    RunCall call = Call({"local"}, {"true"});
    call.env = {{name, "x"}};
    auto report = gateway_->Run(actor_, call, cancel_);
    ASSERT_TRUE(report.error) << name;
    EXPECT_NE(report.error->message.find("is labgate's own"), std::string::npos) << report.error->message;
  }
  EXPECT_TRUE(executor_.calls().empty());
}

TEST_F(GatewayTest, CwdWithANulByte_IsRefusedNotTruncated) {
  RunCall call = Call({"local"}, {"pwd"});
  call.cwd = std::string("/tmp\0/etc", 9);
  auto report = gateway_->Run(actor_, call, cancel_);
  ASSERT_TRUE(report.error);
  EXPECT_NE(report.error->message.find("NUL"), std::string::npos);
  EXPECT_TRUE(executor_.calls().empty());
  ASSERT_EQ(storage_.records().size(), 1u);
  EXPECT_EQ(storage_.records()[0]["decision"]["rule"], "input.cwd");
}

TEST_F(GatewayTest, Pipeline_TimeoutAboveMaximum_Refused) {
  RunCall call = Call({"local"}, {"sleep", "1"});
  call.timeout_ms = 10LL * 3600 * 1000;
  auto report = gateway_->Run(actor_, call, cancel_);
  ASSERT_TRUE(report.error);
  EXPECT_NE(report.error->message.find("max_timeout_ms"), std::string::npos);
  EXPECT_TRUE(executor_.calls().empty());
}

TEST_F(GatewayTest, Pipeline_DefaultTimeoutComesFromInventory) {
  Use("[gateway]\ndefault_timeout_ms = 1234\n");
  (void)gateway_->Run(actor_, Call({"local"}, {"true"}), cancel_);
  ASSERT_EQ(executor_.calls().size(), 1u);
  EXPECT_EQ(executor_.calls()[0].request.timeout.count(), 1234);
  EXPECT_EQ(storage_.records()[0]["payload"]["timeoutMs"], 1234);
}

TEST_F(GatewayTest, Pipeline_EmptyArgv_RefusedBeforeResolve) {
  auto report = gateway_->Run(actor_, Call({"local"}, {}), cancel_);
  ASSERT_TRUE(report.error);
  EXPECT_TRUE(executor_.calls().empty());
}

TEST_F(GatewayTest, Pipeline_SecretsInArgv_RedactedInAudit) {
  (void)gateway_->Run(actor_, Call({"local"}, {"curl", "--password=hunter2"}), cancel_);
  ASSERT_EQ(executor_.calls().size(), 1u);
  EXPECT_EQ(executor_.calls()[0].request.command.argv[1], "--password=hunter2");
  EXPECT_EQ(storage_.lines()[0].find("hunter2"), std::string::npos);
}

TEST_F(GatewayTest, Pipeline_HostWithoutTransport_RefusedClearly) {
  Use("[[hosts]]\nid = \"nas\"\naddress = \"127.0.0.9\"\ngroups = [\"servers\"]\n");
  auto report = gateway_->Run(actor_, Call({"*"}, {"true"}), cancel_);
  ASSERT_EQ(report.results.size(), 2u);
  EXPECT_TRUE(report.results[0].ok());
  ASSERT_TRUE(report.results[1].error);
  EXPECT_NE(report.results[1].error->find("nas is an SSH host"), std::string::npos);
  EXPECT_EQ(executor_.calls().size(), 1u);
}

TEST_F(GatewayTest, Pipeline_FanOut_ReportsProgressPerTarget) {
  Use("[[nodes]]\nid = \"n1\"\ngroups = [\"g\"]\n[[nodes]]\nid = \"n2\"\ngroups = [\"g\"]\n[local]\ngroups = [\"g\"]\n");
  std::vector<std::size_t> done;
  auto report = gateway_->Run(actor_, Call({"group:g"}, {"true"}), cancel_,
                              [&](std::size_t d, std::size_t total, const TargetRunResult&) {
                                EXPECT_EQ(total, 3u);
                                done.push_back(d);
                              });
  EXPECT_EQ(report.results.size(), 3u);
  EXPECT_EQ(done, (std::vector<std::size_t>{1, 2, 3}));
  nlohmann::json j = RunReportJson(report);
  EXPECT_EQ(j["summary"]["total"], 3);
  EXPECT_EQ(j["summary"]["ok"], 1);
  EXPECT_EQ(j["summary"]["errors"], 2);
}

class NodeRouting : public GatewayTest {
 protected:
  void SetUp() override {
    auto inv = inventory::ParseInventory("[[nodes]]\nid = \"phone\"\ncapabilities = [\"run\"]\n", "hosts.toml", "/");
    ASSERT_TRUE(inv.ok()) << inv.error().message;
    gateway_ = std::make_unique<Gateway>(std::make_shared<const inventory::Inventory>(*inv), audit_, executor_, clock_,
                                         nullptr, &nodes_);
  }
  fakes::FakeExecutor nodes_{&storage_};
};

TEST_F(NodeRouting, Pipeline_NodeWithRunGranted_GoesToTheNodeExecutor) {
  nodes_.state.granted = std::vector<std::string>{"run"};
  auto report = gateway_->Run(actor_, Call({"phone"}, {"true"}), cancel_);
  ASSERT_EQ(report.results.size(), 1u);
  EXPECT_TRUE(report.results[0].ok()) << report.results[0].error.value_or("");
  EXPECT_EQ(report.results[0].via, "node");
  ASSERT_EQ(nodes_.calls().size(), 1u);
  EXPECT_TRUE(executor_.calls().empty());
  EXPECT_EQ(storage_.records()[0]["path"], "node");
}

TEST_F(NodeRouting, Pipeline_PairingDidNotGrantRun_RefusedWithRuleEvenThoughInventoryListsIt) {
  nodes_.state.granted = std::vector<std::string>{"camera"};
  auto report = gateway_->Run(actor_, Call({"phone"}, {"true"}), cancel_);
  EXPECT_TRUE(nodes_.calls().empty());
  ASSERT_TRUE(report.results[0].error);
  EXPECT_NE(report.results[0].error->find("pairing.capabilities"), std::string::npos);
  EXPECT_EQ(storage_.records()[0]["kind"], "refusal");
  EXPECT_EQ(storage_.records()[0]["decision"]["rule"], "pairing.capabilities");
}

TEST_F(NodeRouting, Pipeline_RevokedNode_RefusedWithRule) {
  nodes_.state.granted = std::vector<std::string>{};
  nodes_.state.revoked_at = "2026-11-24T10:00:00Z";
  auto report = gateway_->Run(actor_, Call({"phone"}, {"true"}), cancel_);
  EXPECT_TRUE(nodes_.calls().empty());
  ASSERT_TRUE(report.results[0].error);
  EXPECT_NE(report.results[0].error->find("pairing.revoked"), std::string::npos);
}

TEST_F(NodeRouting, Targets_ShowTheNodesLiveState) {
  nodes_.state.online = false;
  nodes_.state.last_seen = "2026-11-24T09:00:00Z";
  auto views = gateway_->Targets({"phone"});
  ASSERT_TRUE(views.ok());
  auto j = TargetsJson(*views);
  EXPECT_EQ(j[0]["online"], false);
  EXPECT_EQ(j[0]["lastSeen"], "2026-11-24T09:00:00Z");
  EXPECT_NE(TargetsText(*views).find("no (seen 2026-11-24T09:00:00Z)"), std::string::npos);
}

std::shared_ptr<const inventory::Inventory> Parsed(const std::string& toml) {
  auto inv = inventory::ParseInventory(toml, "hosts.toml", "/");
  EXPECT_TRUE(inv.ok()) << inv.error().message;
  return std::make_shared<const inventory::Inventory>(inv.ok() ? *inv : inventory::Inventory{});
}

TEST(LiveInventoryTest, AReplacedInventoryGoesWithItsLastSnapshot) {
  auto first = Parsed("[[nodes]]\nid = \"phone\"\n");
  std::weak_ptr<const inventory::Inventory> first_alive = first;
  LiveInventory live(std::move(first));
  auto held = live.Current();
  live.Replace(Parsed("[[nodes]]\nid = \"tablet\"\n"));
  ASSERT_FALSE(first_alive.expired());
  EXPECT_NE(held->Find("phone"), nullptr);
  EXPECT_NE(live.Current()->Find("tablet"), nullptr);
  EXPECT_EQ(live.Current()->Find("phone"), nullptr);
  held.reset();
  EXPECT_TRUE(first_alive.expired());
  // Nobody holding one: each reload frees the one before (they were all kept until the gateway
  // ended, 13.6 MB per reload of a 10,000-node hosts.toml).
  std::vector<std::weak_ptr<const inventory::Inventory>> replaced;
  for (int i = 0; i < 5; ++i) {
    replaced.push_back(live.Current());
    live.Replace(Parsed("[[nodes]]\nid = \"n" + std::to_string(i) + "\"\n"));
  }
  for (const auto& r : replaced) EXPECT_TRUE(r.expired());
}

// A reload while a call runs on a target of the old inventory: the call finishes on the
// inventory it started with (its target, its policy), which goes once the call is done, and the
// next call sees the new one.
TEST_F(GatewayTest, ReloadDuringACall_TheCallKeepsItsInventory_WhichGoesWithTheCall) {
  auto first = Parsed("[[nodes]]\nid = \"phone\"\ncapabilities = [\"run\"]\n");
  std::weak_ptr<const inventory::Inventory> first_alive = first;
  LiveInventory live(std::move(first));
  fakes::FakeExecutor nodes{&storage_};
  nodes.state.granted = std::vector<std::string>{"run"};
  Gateway gateway(live, audit_, executor_, clock_, nullptr, &nodes);
  bool held_during_call = false;
  nodes.set_responder([&](const inventory::Target& target, const capabilities::RunRequest&) {
    live.Replace(Parsed("[[nodes]]\nid = \"tablet\"\ncapabilities = [\"run\"]\n"));
    held_during_call = !first_alive.expired();
    core::ProcessOutcome ok;
    ok.exit_code = 0;
    ok.out.text = "ran on " + target.id + "\n";
    return core::Result<core::ProcessOutcome>(ok);
  });
  auto report = gateway.Run(actor_, Call({"phone"}, {"true"}), cancel_);
  ASSERT_EQ(report.results.size(), 1u);
  EXPECT_TRUE(report.results[0].ok()) << report.results[0].error.value_or("");
  EXPECT_EQ(report.results[0].target, "phone");
  EXPECT_EQ(report.results[0].stdout_text, "ran on phone\n");
  EXPECT_TRUE(held_during_call) << "the call lost its inventory to the reload";
  EXPECT_TRUE(first_alive.expired()) << "the replaced inventory outlived the call that held it";

  nodes.set_responder(nullptr);
  auto next = gateway.Run(actor_, Call({"phone"}, {"true"}), cancel_);
  ASSERT_TRUE(next.error);
  EXPECT_NE(next.error->message.find("phone"), std::string::npos) << next.error->message;
  auto views = gateway.Targets({"tablet"});
  ASSERT_TRUE(views.ok());
  live.Replace(Parsed(""));  // a view keeps its target readable across a reload, too
  EXPECT_EQ(TargetsJson(*views)[0]["id"], "tablet");
}

TEST_F(GatewayTest, Targets_ListsLocalOnline) {
  auto views = gateway_->Targets({});
  ASSERT_TRUE(views.ok());
  ASSERT_EQ(views->size(), 1u);
  auto j = TargetsJson(*views);
  EXPECT_EQ(j[0]["id"], "local");
  EXPECT_EQ(j[0]["online"], true);
  EXPECT_EQ(j[0]["capabilities"], (nlohmann::json{"run"}));
}

}  // namespace
}  // namespace labgate::gateway

namespace labgate::gateway {
namespace {

TargetRunResult Result(std::string target, int exit_code, std::string out) {
  TargetRunResult r;
  r.target = std::move(target);
  r.via = "ssh";
  r.exit_code = exit_code;
  r.stdout_text = std::move(out);
  return r;
}

TEST(RunReportText, FanOutGroupsIdenticalOutcomesAfterTheSummary) {
  RunReport report;
  report.results = {Result("a", 0, "ok\n"), Result("b", 1, "disk full\n"), Result("c", 0, "ok\n")};
  std::string text = RunReportText(report);
  EXPECT_EQ(text.rfind("3 targets: 2 ok, 1 failed, 0 timed out, 0 not run\n", 0), 0u) << text;
  EXPECT_NE(text.find("a, c: exit 0"), std::string::npos) << text;
  EXPECT_NE(text.find("b: exit 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("ok\n"), text.rfind("ok\n")) << "identical output is shown once:\n" << text;
}

}  // namespace
}  // namespace labgate::gateway
