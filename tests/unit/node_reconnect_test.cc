// How a node agent comes back after losing its gateway: spread over the whole window, so a
// fleet that lost the gateway together does not return in one wave.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "nodes/node_agent.h"

namespace labgate::nodes {
namespace {

using std::chrono::milliseconds;

TEST(ReconnectDelay, StaysWithinTheSpreadAndNeverSpins) {
  std::mt19937_64 rng(7);
  for (const milliseconds spread : {kFirstReconnectSpread, milliseconds(4000), kMaxReconnectSpread}) {
    for (int i = 0; i < 2000; ++i) {
      const milliseconds wait = ReconnectDelay(spread, rng);
      EXPECT_GE(wait, spread / 10) << spread.count();
      EXPECT_LE(wait, spread) << spread.count();
    }
  }
}

// 10,000 agents whose links dropped at the same moment: no tenth of the first window gets more
// than 1.3 times its share of the first attempts. With the old +-25% jitter around 250 ms,
// every attempt fell within 125 ms.
TEST(ReconnectDelay, AFleetThatLostItsGatewayTogetherComesBackSpreadOut) {
  std::mt19937_64 rng(11);
  constexpr int kAgents = 10000;
  const auto window = kFirstReconnectSpread;
  std::vector<int> per_tenth(10, 0);
  for (int i = 0; i < kAgents; ++i) {
    const milliseconds wait = ReconnectDelay(window, rng);
    per_tenth[std::min<std::size_t>(9, static_cast<std::size_t>(wait * 10 / window))]++;
  }
  const int busiest = *std::max_element(per_tenth.begin() + 1, per_tenth.end());
  EXPECT_EQ(per_tenth[0], 0);  // never within the first tenth: no tight retry loop
  EXPECT_LE(busiest, kAgents / 9 * 13 / 10);
}

// A gateway that is stopping or starting refuses connections at once: those attempts cost it
// nothing, so for a minute after the link dropped they do not push the node's next try out by
// more than kRestartSpread. Attempts that reached a gateway (or got no answer) double as before,
// and so does refusal once the gateway has been away longer than a restart takes.
TEST(NextReconnectSpread, NothingListeningWithinAMinuteKeepsTheSpreadShort_AnythingElseDoubles) {
  struct Case {
    milliseconds spread;
    bool nothing_listened;
    milliseconds since_lost;
    milliseconds next;
  };
  const Case cases[] = {
      {kFirstReconnectSpread, true, milliseconds(500), kRestartSpread},
      {kRestartSpread, true, milliseconds(5000), kRestartSpread},
      {kRestartSpread, true, kRestartWindow - milliseconds(1), kRestartSpread},
      {kRestartSpread, true, kRestartWindow, milliseconds(4000)},
      {kFirstReconnectSpread, false, milliseconds(500), milliseconds(2000)},
      {kRestartSpread, false, milliseconds(5000), milliseconds(4000)},
      {milliseconds(16000), false, milliseconds(5000), kMaxReconnectSpread},
      {kMaxReconnectSpread, false, milliseconds(5000), kMaxReconnectSpread},
      // A spread that grew against a busy gateway does not shrink because it then went away.
      {milliseconds(8000), true, milliseconds(5000), milliseconds(8000)},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(NextReconnectSpread(c.spread, c.nothing_listened, c.since_lost), c.next)
        << c.spread.count() << " ms, nothing listened: " << c.nothing_listened << ", " << c.since_lost.count()
        << " ms after the link dropped";
  }
  // A gateway away for good: ten refusals after the window reach the ceiling.
  milliseconds spread = kRestartSpread;
  for (int i = 0; i < 10; ++i) spread = NextReconnectSpread(spread, true, kRestartWindow + milliseconds(i));
  EXPECT_EQ(spread, kMaxReconnectSpread);
}

}  // namespace
}  // namespace labgate::nodes
