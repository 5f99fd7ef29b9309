// SPDX-License-Identifier: MIT
// QPS limits (§2, per account and Action, Throttling.User) and fault injection of the cloud
// emulator: what is refused changes nothing, what is lost has happened, the seed decides.
#include "unit/sim/test_cloud_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace iot::sim::testing;
using iot::sim::cloud::Delivery;
using iot::sim::cloud::ServiceOptions;
using nlohmann::json;

namespace {

const std::string k_scenario = scenario_with(R"([
  {"product_key": "a1LimitProd1", "generate": {"count": 60}}
])");

ServiceOptions limited(double scale = 1.0) {
  ServiceOptions o;
  o.qps_scale = scale;
  return o;
}

// Sends n QueryDevice calls at the bench's current time; returns how many were throttled.
int burst(CloudBench& b, int n, Fields params = {{"ProductKey", "a1LimitProd1"}}, Call how = {}) {
  int throttled = 0;
  for (int i = 0; i < n; ++i) {
    const auto r = b.call("QueryDevice", params, how);
    if (r.code == "Throttling.User") {
      CHECK(r.status == 400);
      ++throttled;
    } else {
      CHECK(r.code.empty());
    }
  }
  return throttled;
}

std::int64_t device_count(CloudBench& b) {
  b.start(CloudBench::no_limits());
  return b.json("QueryProduct", {{"ProductKey", "a1LimitProd1"}})["Data"]["DeviceCount"];
}

} // namespace

TEST_SUITE("sim::cloud limits and faults") {
  TEST_CASE("QueryDevice: 50 calls in one instant pass, the 51st is Throttling.User") {
    CloudBench b(k_scenario, limited());
    CHECK(burst(b, 50) == 0);
    CHECK(burst(b, 1) == 1);
    b.now_ms += 20; // 1/50 s: one token back
    CHECK(burst(b, 1) == 0);
    CHECK(burst(b, 1) == 1);
    b.now_ms += 1000;
    CHECK(burst(b, 60) == 10); // capacity is one second of calls
    const auto c = b.service->counters();
    const auto query_device = std::find_if(c.actions.begin(), c.actions.end(), [](const auto& a) {
      return a.action == "QueryDevice";
    });
    REQUIRE(query_device != c.actions.end()); // counted under its name, not skipped
    CHECK(query_device->throttled == 12);
    CHECK(query_device->requests == 113);
  }

  TEST_CASE("limits are per Action") {
    CloudBench b(k_scenario, limited());
    CHECK(burst(b, 60) == 10);
    const auto r = b.call("QueryProduct", {{"ProductKey", "a1LimitProd1"}});
    CHECK(r.code.empty());
    // BatchQueryDeviceDetail: QPS 5.
    int throttled = 0;
    for (int i = 0; i < 6; ++i) {
      throttled += b.call("BatchQueryDeviceDetail",
                          {{"ProductKey", "a1LimitProd1"}, {"DeviceName.1", "dev000001"}})
                       .code == "Throttling.User";
    }
    CHECK(throttled == 1);
  }

  TEST_CASE("limits are per account: AccessKeys of one account share them") {
    CloudBench b(k_scenario, limited());
    CHECK(burst(b, 50) == 0);
    Call same_account;
    same_account.ak = "LTAI5tTestKeyB";
    same_account.secret = "testSecretB";
    CHECK(burst(b, 1, {{"ProductKey", "a1LimitProd1"}}, same_account) == 1);
    Call other_account;
    other_account.ak = "LTAI5tTestKeyC";
    other_account.secret = "testSecretC";
    CHECK(burst(b, 50, {{"ProductKey", "a1LimitProd1"}}, other_account) == 0);
  }

  TEST_CASE("QueryDevice deep pages (CurrentPage × PageSize ≥ 100 000): QPS 2") {
    CloudBench b(k_scenario, limited());
    Fields deep{{"ProductKey", "a1LimitProd1"},
                {"PageSize", "50"},
                {"CurrentPage", "2000"},
                {"NextToken", "0000000000000000000000000000000000000000"}};
    int throttled = 0;
    for (int i = 0; i < 3; ++i) {
      throttled += b.call("QueryDevice", deep).code == "Throttling.User";
    }
    CHECK(throttled == 1);
    // Below the threshold only the QueryDevice bucket (47 tokens left) counts.
    CHECK(burst(b,
                10,
                {{"ProductKey", "a1LimitProd1"}, {"PageSize", "50"}, {"CurrentPage", "2"}}) == 0);
  }

  TEST_CASE("--qps-scale scales every limit, --no-limits removes them") {
    {
      CloudBench b(k_scenario, limited(0.1));
      CHECK(burst(b, 6) == 1); // QPS 5
    }
    {
      CloudBench b(k_scenario, limited(4));
      CHECK(burst(b, 201) == 1);
    }
    CloudBench b(k_scenario, CloudBench::no_limits());
    CHECK(burst(b, 300) == 0);
  }

  TEST_CASE("--fail-5xx: 503 ServiceUnavailable or iot.system.SystemException, nothing runs") {
    ServiceOptions o = CloudBench::no_limits();
    o.faults.fail_5xx = 1.0;
    CloudBench b(k_scenario, o, 3);
    int unavailable = 0;
    int system = 0;
    for (int i = 0; i < 40; ++i) {
      const json j = b.json(
          "RegisterDevice",
          {{"ProductKey", "a1LimitProd1"}, {"DeviceName", "faulted-" + std::to_string(1000 + i)}});
      if (b.last.status == 503) {
        CHECK(j["Code"] == "ServiceUnavailable");
        CHECK(j.contains("HostId"));
        ++unavailable;
      } else {
        CHECK(b.last.status == 200);
        CHECK(j["Success"] == false);
        CHECK(j["Code"] == "iot.system.SystemException");
        ++system;
      }
    }
    CHECK(unavailable > 0);
    CHECK(system > 0);
    CHECK(b.service->counters().fault_5xx == 40);
    CHECK(device_count(b) == 60);
  }

  TEST_CASE("--throttle-burst: Throttling, nothing runs") {
    ServiceOptions o = CloudBench::no_limits();
    o.faults.throttle_burst = 1.0;
    CloudBench b(k_scenario, o);
    const json j =
        b.json("RegisterDevice", {{"ProductKey", "a1LimitProd1"}, {"DeviceName", "burst-0001"}});
    CHECK(b.last.status == 400);
    CHECK(j["Code"] == "Throttling");
    CHECK(b.service->counters().fault_throttle == 1);
    CHECK(device_count(b) == 60);
  }

  TEST_CASE("--reset and --truncate: the request ran, the answer is lost") {
    for (const bool reset : {true, false}) {
      CAPTURE(reset);
      ServiceOptions o = CloudBench::no_limits();
      (reset ? o.faults.reset : o.faults.truncate) = 1.0;
      CloudBench b(k_scenario, o);
      const auto r =
          b.call("RegisterDevice", {{"ProductKey", "a1LimitProd1"}, {"DeviceName", "lost-0001"}});
      CHECK(r.delivery == (reset ? Delivery::reset : Delivery::truncate));
      CHECK(r.status == 200);
      CHECK(device_count(b) == 61);
    }
  }

  TEST_CASE("faults are not drawn when off, and a seed repeats them") {
    auto run = [](std::uint64_t seed) {
      ServiceOptions o = CloudBench::no_limits();
      o.seed = seed;
      o.faults.fail_5xx = 0.2;
      o.faults.throttle_burst = 0.2;
      o.faults.truncate = 0.2;
      o.faults.reset = 0.2;
      o.faults.latency_min_ms = 5;
      o.faults.latency_max_ms = 50;
      CloudBench b(k_scenario, o);
      std::string trace;
      for (int i = 0; i < 60; ++i) {
        const auto r = b.call("QueryProduct", {{"ProductKey", "a1LimitProd1"}});
        CHECK(r.delay.count() >= 5);
        CHECK(r.delay.count() <= 50);
        trace += std::to_string(r.status) + r.code + std::to_string(static_cast<int>(r.delivery)) +
                 ":" + std::to_string(r.delay.count()) + " ";
      }
      return trace;
    };
    const std::string a = run(11);
    CHECK(a == run(11));
    CHECK(a != run(12));
    CHECK((a.find("503") != std::string::npos || a.find("SystemException") != std::string::npos));
    CHECK(a.find("Throttling") != std::string::npos);

    CloudBench quiet(k_scenario);
    for (int i = 0; i < 50; ++i) {
      const auto r = quiet.call("QueryProduct", {{"ProductKey", "a1LimitProd1"}});
      CHECK(r.delivery == Delivery::normal);
      CHECK(r.delay.count() == 0);
      CHECK(r.code.empty());
    }
  }

  TEST_CASE("RateLimiter: every bucket or none") {
    iot::sim::cloud::RateLimiter limiter;
    const std::vector<std::pair<std::string, double>> both{{"a", 1}, {"b", 3}};
    CHECK(limiter.try_acquire(both, 0));
    CHECK_FALSE(limiter.try_acquire(both, 0)); // a is empty
    CHECK(limiter.try_acquire({{"b", 3}}, 0)); // b kept its tokens
    CHECK(limiter.try_acquire({{"b", 3}}, 0));
    CHECK_FALSE(limiter.try_acquire({{"b", 3}}, 0));
    CHECK(limiter.try_acquire(both, 1000));
  }
}
