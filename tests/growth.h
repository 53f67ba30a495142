#pragma once

// Whether work grows linearly with its input, judged without a wall-clock ceiling: the same
// work on an input 4 times larger costs about 4 times as much when it is linear and 16 times
// when it is quadratic, on a fast machine or under ThreadSanitizer on a busy one alike.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <limits>

namespace labgate::testing {

/// How many times longer `work(4 * n)` takes than `work(n)`, each the fastest of three runs
/// so that a pause of the machine does not count as growth.
template <class Work>
double GrowthOverFourfoldInput(Work&& work, std::size_t n) {
  auto fastest = [&](std::size_t size) {
    double best = std::numeric_limits<double>::max();
    for (int round = 0; round < 3; ++round) {
      const auto start = std::chrono::steady_clock::now();
      work(size);
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      best = std::min(best, took.count());
    }
    return std::max(best, 1e-6);
  };
  const double small = fastest(n);
  return fastest(4 * n) / small;
}

/// Linear work grows about 4x on a fourfold input; quadratic work 16x. The bound between
/// leaves room for caches and allocators.
constexpr double kLinearGrowthBound = 8.0;

}  // namespace labgate::testing
