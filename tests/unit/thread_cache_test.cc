#include "core/thread_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

namespace labgate::core {
namespace {

using std::chrono::milliseconds;

// Polls `done` for up to 10 s.
template <typename F>
bool Eventually(F done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

TEST(ThreadCache, ATaskAfterAnotherEndedReusesItsThread) {
  ThreadCache cache;
  std::mutex mutex;
  std::set<std::thread::id> seen;
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) {
    cache.Run([&] {
      std::lock_guard<std::mutex> lock(mutex);
      seen.insert(std::this_thread::get_id());
      ++done;
    });
    ASSERT_TRUE(Eventually([&] { return done == i + 1; }));
    // Wait until the thread is back waiting, so the next task can take it: on a busy machine
    // it may still be between its task and the wait when the next task arrives.
    ASSERT_TRUE(Eventually([&] { return cache.idle() == 1; }));
    EXPECT_EQ(cache.threads(), 1u);
  }
  EXPECT_EQ(seen.size(), 1u);
}

TEST(ThreadCache, ATaskNeverWaitsForABusyOne) {
  // 20 tasks that each wait until all 20 run at once: a bounded pool would deadlock here.
  ThreadCache cache;
  std::mutex mutex;
  std::condition_variable all_in;
  int inside = 0;
  std::atomic<int> finished{0};
  for (int i = 0; i < 20; ++i) {
    cache.Run([&] {
      std::unique_lock<std::mutex> lock(mutex);
      ++inside;
      all_in.notify_all();
      all_in.wait_for(lock, std::chrono::seconds(10), [&] { return inside == 20; });
      if (inside == 20) ++finished;
    });
  }
  ASSERT_TRUE(Eventually([&] { return finished == 20; }));
  EXPECT_EQ(cache.threads(), 20u);
}

TEST(ThreadCache, IdleThreadsEndAfterTheLimit) {
  ThreadCache cache(milliseconds(50));
  std::atomic<int> done{0};
  for (int i = 0; i < 5; ++i) cache.Run([&] { std::this_thread::sleep_for(milliseconds(20)), ++done; });
  ASSERT_TRUE(Eventually([&] { return done == 5; }));
  EXPECT_TRUE(Eventually([&] { return cache.threads() == 0; }));
  cache.Run([&] { ++done; });  // and a new one starts when needed
  EXPECT_TRUE(Eventually([&] { return done == 6; }));
}

TEST(ThreadCache, WhatATaskCapturedIsReleasedWhenItEnds) {
  ThreadCache cache;
  auto owned = std::make_shared<int>(7);
  std::weak_ptr<int> watch = owned;
  std::atomic<bool> ran{false};
  cache.Run([owned = std::move(owned), &ran] { ran = *owned == 7; });
  ASSERT_TRUE(Eventually([&] { return ran.load(); }));
  // The thread now waits for work; it must not keep the finished task's captures alive.
  EXPECT_TRUE(Eventually([&] { return watch.expired(); }));
}

TEST(ThreadCache, DestructionWaitsForRunningTasks) {
  std::atomic<bool> finished{false};
  {
    ThreadCache cache;
    cache.Run([&] {
      std::this_thread::sleep_for(milliseconds(100));
      finished = true;
    });
  }
  EXPECT_TRUE(finished);
}

}  // namespace
}  // namespace labgate::core
