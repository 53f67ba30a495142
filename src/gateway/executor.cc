#include "gateway/executor.h"

namespace labgate::gateway {
namespace {

// The target as a machine the capture backends run their scripts on.
class TargetMachine final : public capabilities::CommandHost {
 public:
  TargetMachine(Executor& executor, const inventory::Target& target) : executor_(executor), target_(target) {}
  std::string Name() const override { return target_.id; }
  core::Result<core::ProcessOutcome> Run(const capabilities::RunRequest& request,
                                         const core::CancelToken& cancel) override {
    return executor_.Run(target_, request, cancel);
  }

 private:
  Executor& executor_;
  const inventory::Target& target_;
};

}  // namespace

core::Result<capabilities::CaptureResult> Executor::Capture(const inventory::Target& target,
                                                            const capabilities::CaptureRequest& request,
                                                            const core::CancelToken& cancel) {
  TargetMachine machine(*this, target);
  return capabilities::Perform(machine, target.capture, request, cancel);
}

core::Result<std::unique_ptr<capabilities::FileAccessor>> Executor::Files(const inventory::Target& target,
                                                                          std::chrono::steady_clock::time_point,
                                                                          const core::CancelToken&) {
  return core::MakeError(core::ErrorCode::kUnavailable,
                         "file is not available on " + target.id + " (" + via() + ") in this labgate build");
}

}  // namespace labgate::gateway
