#pragma once

#include <libssh/libssh.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "capabilities/system_run.h"
#include "core/process_runner.h"
#include "core/result.h"

/// The agent channel between the gateway and its nodes (DESIGN §4): names, limits, and the
/// JSON shapes both ends encode and decode.
namespace labgate::nodes {

using Json = nlohmann::json;

inline constexpr char kSubsystem[] = "labgate-agent@v1";
/// The SSH user a device logs in as while pairing; after pairing it logs in as its node id.
inline constexpr char kPairUser[] = "labgate-pair";
/// Room for the largest capture (capabilities::kMaxCaptureBytes) in base64 plus its JSON.
inline constexpr std::size_t kMaxFrameBytes = 48 * 1024 * 1024;
/// A pairing session (any key may log in as labgate-pair) only ever sends one small
/// pair.request: anything longer is refused long before it could cost memory.
inline constexpr std::size_t kMaxPairingFrameBytes = 64 * 1024;
/// What a pairing session may leave unread: its answers are a few hundred bytes each, so a peer
/// past this is sending without reading, and its session is closed instead of queueing more.
inline constexpr std::size_t kMaxPairingUnsentBytes = 256 * 1024;
/// Pending pairing requests the gateway keeps for the operator, in all and from one address.
inline constexpr std::size_t kMaxPendingPairings = 32;
inline constexpr std::size_t kMaxPendingPairingsPerSource = 4;
/// The line the node listener sends instead of its SSH version to a source locked out after
/// failed logins, followed by why and until when.
inline constexpr char kLockedOutPrefix[] = "labgate-refused: ";
/// The gateway pings a node after this much silence (a node pings only after twice as much);
/// either side drops the link after kHeartbeatTimeout of silence.
inline constexpr std::chrono::milliseconds kHeartbeatInterval{5000};
inline constexpr std::chrono::milliseconds kHeartbeatTimeout{15000};

/// The most one file.read answer or file.write.chunk request carries (before base64).
inline constexpr std::size_t kFileChunkBytes = 4 * 1024 * 1024;
/// Writes a node keeps open at once per link (file.write.open ... commit or abort).
inline constexpr std::size_t kMaxOpenFileWrites = 8;

/// Agent methods a capability needs; a node refuses those of capabilities it was not approved for.
std::string_view CapabilityOfMethod(std::string_view method);

Json EncodeRunRequest(const capabilities::RunRequest& request);
core::Result<capabilities::RunRequest> DecodeRunRequest(const Json& params);
Json EncodeOutcome(const core::ProcessOutcome& outcome);
core::Result<core::ProcessOutcome> DecodeOutcome(const Json& result);

/// Bytes waiting for the peer's SSH window on one channel. Used from the loop thread only.
/// ssh_channel_write may handle incoming packets inside it (its flush does), so a data callback
/// can answer a ping and Append, even Flush, while an outer Flush is writing: such bytes wait
/// in `pending_` and the outer Flush sends them after what it was sending; a nested Flush does
/// nothing. (Before, a nested Flush re-sent the segment the outer write had just sent: a node
/// received a 4 MiB file chunk with 32 KiB of it twice.)
class ChannelOut {
 public:
  void Append(std::string bytes) { (flushing_ ? pending_ : buffer_) += bytes; }
  bool empty() const { return offset_ == buffer_.size() && pending_.empty(); }
  /// Bytes appended and not yet taken by the window.
  std::size_t size() const { return buffer_.size() - offset_ + pending_.size(); }
  /// Writes as much as the window takes; false when the channel is broken.
  bool Flush(ssh_channel channel);

 private:
  std::string buffer_;
  std::size_t offset_ = 0;
  std::string pending_;  // appended during a Flush
  bool flushing_ = false;
};

/// Sets TCP_NODELAY and keepalives with TCP_USER_TIMEOUT on a connected socket, so writes go out
/// at once and a vanished peer is noticed by the kernel too.
void TuneSocket(int fd);

}  // namespace labgate::nodes
