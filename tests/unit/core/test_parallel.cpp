// SPDX-License-Identifier: MIT
#include "core/parallel.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

using iot::core::parallel_for;

namespace {

// Counts the calls in flight and the most seen at once.
struct InFlight {
  std::mutex mutex;
  std::size_t now = 0;
  std::size_t most = 0;
  std::multiset<std::size_t> seen;
  std::set<std::thread::id> threads;

  void enter(std::size_t i) {
    const std::lock_guard lock(mutex);
    most = std::max(most, ++now);
    seen.insert(i);
    threads.insert(std::this_thread::get_id());
  }
  void leave() {
    const std::lock_guard lock(mutex);
    --now;
  }
  // Holds the call until `n` are in flight at once (or 5 s passed): a pool that ran fewer at a
  // time never gets there.
  void wait_for_company(std::size_t n) {
    std::unique_lock lock(mutex);
    changed.notify_all();
    changed.wait_for(lock, std::chrono::seconds(5), [&] { return most >= n; });
  }
  std::condition_variable changed;
};

} // namespace

TEST_CASE("parallel: every index once, at most width at a time, and width at once when it can") {
  for (const std::size_t width : {2u, 4u, 8u}) {
    CAPTURE(width);
    InFlight f;
    const std::size_t started = parallel_for(40, width, [&](std::size_t i) {
      f.enter(i);
      f.wait_for_company(width);
      f.leave();
    });
    CHECK(started == 40);
    CHECK(f.seen.size() == 40);
    for (std::size_t i = 0; i < 40; ++i) {
      CHECK(f.seen.count(i) == 1);
    }
    CHECK(f.most <= width);
    CHECK(f.most == width);
    CHECK(f.threads.size() == width);
  }
}

TEST_CASE("parallel: width or count 1 runs on the calling thread, count 0 calls nothing") {
  InFlight f;
  CHECK(parallel_for(5, 1, [&](std::size_t i) {
          f.enter(i);
          f.leave();
        }) == 5);
  CHECK(f.threads == std::set<std::thread::id>{std::this_thread::get_id()});
  InFlight one;
  CHECK(parallel_for(1, 8, [&](std::size_t i) {
          one.enter(i);
          one.leave();
        }) == 1);
  CHECK(one.threads == std::set<std::thread::id>{std::this_thread::get_id()});
  bool called = false;
  CHECK(parallel_for(0, 8, [&](std::size_t) { called = true; }) == 0);
  CHECK_FALSE(called);
}

TEST_CASE("parallel: after an interruption no index is handed out and what ran is a prefix") {
  for (const std::size_t width : {1u, 3u}) {
    CAPTURE(width);
    InFlight f;
    const std::size_t started = parallel_for(1000, width, [&](std::size_t i) {
      f.enter(i);
      if (i == 10) {
        iot::core::request_interrupt();
      }
      f.leave();
    });
    iot::core::clear_interrupt();
    CHECK(started >= 11);
    CHECK(started < 1000);
    REQUIRE(f.seen.size() == started);
    std::size_t expect = 0;
    for (const std::size_t i : f.seen) {
      CHECK(i == expect++);
    }
  }
  iot::core::request_interrupt();
  bool called = false;
  CHECK(parallel_for(10, 4, [&](std::size_t) { called = true; }) == 0);
  iot::core::clear_interrupt();
  CHECK_FALSE(called);
}
