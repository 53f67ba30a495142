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

}  // namespace labgate::gateway
