#pragma once

#include <string>
#include <vector>

#include "capabilities/capture.h"
#include "capabilities/device_config.h"
#include "core/result.h"

/// Backends as command templates: each turns a request plus the machine's settings into one
/// POSIX sh script whose stdout is the result (a PNG, a JPEG, an mp4, gpsd JSON, ...). The same
/// script runs on this machine, on a node and over SSH. Pure functions, table-tested.
namespace labgate::capabilities {

/// What a machine has, as the probe script reports it.
struct MachineFacts {
  std::string os;  // uname -s
  std::string display;
  std::string wayland_display;
  bool termux = false;
  std::vector<std::string> tools;          // found in PATH
  std::vector<std::string> video_devices;  // /dev/video*

  bool Has(std::string_view tool) const;
};

/// One script that reports MachineFacts, for `auto`.
std::string ProbeScript();
MachineFacts ParseProbe(std::string_view output);

/// The backend `auto` stands for on a machine with `facts`; an error says what is missing.
core::Result<std::string> ChooseBackend(const std::string& capability, const DeviceConfig& config,
                                        const MachineFacts& facts, const std::string& machine);

/// A script ready to run, and what its output is.
struct BackendCommand {
  std::string backend;
  std::string script;     // for sh -c
  std::string mime_type;  // of stdout
};

/// The script for `request` with a concrete (not `auto`) backend. Fails for requests the
/// backend cannot serve ("termux cannot record clips") or devices it does not know.
core::Result<BackendCommand> BuildCommand(const std::string& backend, const DeviceConfig& config,
                                          const CaptureRequest& request);

/// Scripts report a missing program as a line "labgate-missing: PROGRAM" on stderr (exit 127)
/// and other setup problems as "labgate-error: TEXT". Turns such stderr into a message that
/// names the machine, the backend and the fix; nullopt when the stderr has neither.
std::optional<std::string> ExplainScriptFailure(std::string_view stderr_text, const std::string& capability,
                                                const std::string& backend, const std::string& machine);

}  // namespace labgate::capabilities
