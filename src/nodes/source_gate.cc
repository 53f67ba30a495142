#include "nodes/source_gate.h"

#include "core/clock.h"
#include "core/net.h"

namespace labgate::nodes {
namespace {

constexpr std::chrono::seconds kReportEvery{60};
constexpr std::size_t kMaxTrackedSources = 4096;  // a scan from many addresses cannot grow memory without bound

// The IPv4 address of "a.b.c.d" or an IPv4-mapped IPv6 address; nullopt for other IPv6.
std::optional<std::uint32_t> Ipv4Of(const std::string& address) {
  const std::string mapped = "::ffff:";
  if (address.rfind(mapped, 0) == 0) return core::ParseIpv4(address.substr(mapped.size()));
  return core::ParseIpv4(address);
}

}  // namespace

std::optional<SourceGate::Refusal> SourceGate::Admit(const std::string& address, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (sources_.size() >= kMaxTrackedSources) Forget(now);
  if (!settings_.allowed_networks.empty()) {
    auto ip = Ipv4Of(address);
    if (!ip || !core::InAnyNetwork(*ip, settings_.allowed_networks)) {
      std::string list;
      for (const auto& n : settings_.allowed_networks) list += (list.empty() ? "" : ", ") + n;
      return Refuse(sources_[address], "gateway.allowed_networks",
                    address + " is outside [gateway] allowed_networks (" + list +
                        "); add its network there if this device should connect",
                    now);
    }
  }
  auto it = sources_.find(address);
  if (it == sources_.end()) return std::nullopt;
  Source& source = it->second;
  if (auto left = LockedFor(source, now)) {
    const auto wait = std::chrono::duration_cast<std::chrono::seconds>(*left);
    const auto until = std::chrono::system_clock::now() + wait + std::chrono::seconds(1);
    return Refuse(source, "gateway.auth_fail_limit",
                  address + " failed to log in " + std::to_string(source.failures.size()) + " times within " +
                      std::to_string(settings_.fail_window.count()) + " s; refused for another " +
                      std::to_string(wait.count() + 1) + " s, until " + core::FormatTimestamp(until) +
                      " (a device with a stale key? stop its agent and re-pair it)",
                  now);
  }
  return std::nullopt;
}

std::optional<SourceGate::Refusal> SourceGate::Refuse(Source& source, std::string rule, std::string reason,
                                                      Clock::time_point now) {
  Refusal refusal{std::move(rule), std::move(reason), true, 0};
  if (source.last_report && now - *source.last_report < kReportEvery) {
    refusal.report = false;
    ++source.suppressed;
  } else {
    refusal.suppressed = source.suppressed;
    source.suppressed = 0;
    source.last_report = now;
  }
  return refusal;
}

void SourceGate::RecordFailure(const std::string& address, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (sources_.size() >= kMaxTrackedSources) Forget(now);
  Source& source = sources_[address];
  source.failures.push_back(now);
  while (source.failures.size() > static_cast<std::size_t>(settings_.fail_limit)) source.failures.pop_front();
}

void SourceGate::Update(Settings settings) {
  std::lock_guard<std::mutex> lock(mutex_);
  settings_ = std::move(settings);
}

std::optional<SourceGate::Clock::duration> SourceGate::LockedFor(Source& source, Clock::time_point now) const {
  while (!source.failures.empty() && now - source.failures.front() >= settings_.fail_window) source.failures.pop_front();
  if (source.failures.size() < static_cast<std::size_t>(settings_.fail_limit)) return std::nullopt;
  return settings_.fail_window - (now - source.failures.front());
}

std::vector<SourceGate::Lockout> SourceGate::LockedOut(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Lockout> out;
  const auto wall = std::chrono::system_clock::now();
  for (auto& [address, source] : sources_) {
    auto left = LockedFor(source, now);
    if (!left) continue;
    out.push_back({address, source.failures.size(),
                   wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(*left)});
  }
  return out;
}

void SourceGate::Forget(Clock::time_point now) {
  for (auto it = sources_.begin(); it != sources_.end();) {
    Source& s = it->second;
    while (!s.failures.empty() && now - s.failures.front() >= settings_.fail_window) s.failures.pop_front();
    // Past twice the limit, sources that only await their next report are dropped too: a scan
    // from many addresses then costs some extra audit records, never unbounded memory.
    const bool reported_lately = s.last_report && now - *s.last_report < kReportEvery &&
                                 sources_.size() < 2 * kMaxTrackedSources;
    it = s.failures.empty() && !reported_lately ? sources_.erase(it) : std::next(it);
  }
}

}  // namespace labgate::nodes
