// SPDX-License-Identifier: MIT
#include "core/rate_limit.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using iot::core::RateLimit;
using namespace std::chrono_literals;

namespace {

// A clock the test moves by hand, starting at an arbitrary point (not zero, not a minute boundary).
struct FakeClock {
  std::chrono::steady_clock::time_point t{std::chrono::hours(1000) + 59s};
  RateLimit::Clock clock() {
    return [this] { return t; };
  }
};

// How many of `n` events of `key` are let through at the current time.
int admitted(RateLimit& limit, const std::string& key, int n) {
  int count = 0;
  for (int i = 0; i < n; ++i) {
    count += limit.refuse(key) ? 0 : 1;
  }
  return count;
}

} // namespace

TEST_SUITE("core::RateLimit") {
  TEST_CASE("a quiet key may use its whole limit at once, then waits") {
    FakeClock fake;
    RateLimit limit(10, fake.clock());
    CHECK(admitted(limit, "a", 25) == 10);
    // The next event is 6 s (60 s / 10) after the burst's first: that is the Retry-After.
    const auto wait = limit.refuse("a");
    REQUIRE(wait);
    CHECK(*wait == 6);
  }

  TEST_CASE("never more than the limit in any minute, across a minute boundary too") {
    // A fixed window counted per clock minute lets 2 × limit through around a boundary: the test
    // starts one second before one (the clock's 59 s).
    FakeClock fake;
    RateLimit limit(2, fake.clock());
    CHECK(admitted(limit, "dev", 10) == 2);
    fake.t += 1s; // now past the minute boundary
    CHECK(admitted(limit, "dev", 10) == 0);
    fake.t += 28s; // 29 s after the burst: still none
    CHECK(admitted(limit, "dev", 10) == 0);
    fake.t += 1s; // 30 s: the first event's share is back
    CHECK(admitted(limit, "dev", 10) == 1);
    fake.t += 30s;
    CHECK(admitted(limit, "dev", 10) == 1);
    // Over a long steady run, exactly the limit a minute.
    int total = 0;
    for (int second = 0; second < 600; ++second) {
      fake.t += 1s;
      total += admitted(limit, "dev", 3);
    }
    CHECK(total == 20);
  }

  TEST_CASE("the Retry-After is when one more fits, in whole seconds, at least one") {
    FakeClock fake;
    RateLimit limit(3, fake.clock()); // one every 20 s
    CHECK(admitted(limit, "k", 3) == 3);
    fake.t += 5500ms;
    const auto wait = limit.refuse("k");
    REQUIRE(wait);
    CHECK(*wait == 15); // 14.5 s, rounded up
    fake.t += 14s;
    CHECK(limit.refuse("k").value_or(0) == 1); // 0.5 s left: one second
    fake.t += 500ms;
    CHECK_FALSE(limit.refuse("k"));
  }

  TEST_CASE("refusals count nothing: hammering does not push the next event further away") {
    FakeClock fake;
    RateLimit limit(1, fake.clock());
    CHECK_FALSE(limit.refuse("k"));
    for (int i = 0; i < 1000; ++i) {
      CHECK(limit.refuse("k"));
    }
    fake.t += 60s;
    CHECK_FALSE(limit.refuse("k"));
  }

  TEST_CASE("keys are independent") {
    FakeClock fake;
    RateLimit limit(2, fake.clock());
    CHECK(admitted(limit, "a", 5) == 2);
    CHECK(admitted(limit, "b", 5) == 2);
    CHECK(admitted(limit, "a", 1) == 0);
  }

  TEST_CASE("a key quiet for a minute is forgotten: memory follows the last minute's keys") {
    FakeClock fake;
    RateLimit limit(5, fake.clock());
    for (int i = 0; i < 1000; ++i) {
      CHECK_FALSE(limit.refuse("device-" + std::to_string(i)));
    }
    CHECK(limit.keys() == 1000);
    fake.t += 59s;
    CHECK_FALSE(limit.refuse("late"));
    CHECK(limit.keys() == 1001); // idle since 12 s, but the sweep runs once a minute
    fake.t += 2min;
    CHECK_FALSE(limit.refuse("again"));
    CHECK(limit.keys() == 1);
  }

  TEST_CASE("limit 0 is no limit") {
    FakeClock fake;
    RateLimit limit(0, fake.clock());
    CHECK(admitted(limit, "k", 10000) == 10000);
    CHECK(limit.keys() == 0);
  }
}
