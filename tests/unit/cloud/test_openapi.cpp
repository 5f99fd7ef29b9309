// SPDX-License-Identifier: MIT
#include "cloud/openapi.hpp"
#include "fake_http.hpp"

#include <doctest/doctest.h>

#include <mutex>
#include <set>
#include <thread>

using namespace iot;
using namespace iot::cloud;
using namespace iot::cloud::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* k_ok = R"({"RequestId":"R-OK","Success":true,"Data":{"x":1}})";

// An OpenApiClient whose clocks, nonces, sleeps and jitter are all under the test's control.
struct Harness {
  FakeHttpClient http;
  ManualClock clock;
  std::vector<std::chrono::nanoseconds> backoffs;
  int nonce = 0;
  double jitter = 1.0;
  std::shared_ptr<RateLimiter> limiter;
  OpenApiConfig config;

  Harness() {
    RateLimiter::Options options;
    options.clock = clock.clock();
    options.sleep = clock.sleeper();
    limiter = std::make_shared<RateLimiter>(options);
    config.access_key = AccessKey{"ak-id", "ak-secret", ""};
    config.region_id = "cn-shanghai";
  }

  OpenApiClient client() {
    OpenApiHooks hooks;
    hooks.wall_clock = [this] {
      return std::chrono::system_clock::time_point{} +
             std::chrono::duration_cast<std::chrono::system_clock::duration>(
                 clock.now().time_since_epoch());
    };
    hooks.nonce = [this] { return "nonce-" + std::to_string(++nonce); };
    hooks.sleep = [this](std::chrono::nanoseconds d) {
      backoffs.push_back(d);
      clock.advance(d);
    };
    hooks.jitter = [this] { return jitter; };
    return OpenApiClient(http, config, limiter, hooks);
  }
};

} // namespace

TEST_SUITE("cloud::OpenApiClient") {
  TEST_CASE("a successful call is a signed form POST to the endpoint") {
    Harness h;
    h.http.reply(200, k_ok);
    auto client = h.client();
    auto r = client.call("QueryDevice", {{"ProductKey", "pk1"}});
    REQUIRE(r);
    CHECK(r->http_status == 200);
    CHECK(r->request_id == "R-OK");
    CHECK(r->attempts == 1);
    CHECK(r->body == k_ok);

    const auto requests = h.http.requests();
    REQUIRE(requests.size() == 1);
    const HttpRequest& req = requests[0];
    CHECK(req.method == "POST");
    CHECK(req.url == "https://iot.cn-shanghai.aliyuncs.com/");
    CHECK(req.timeout == 30'000ms);
    bool form = false;
    for (const auto& [name, value] : req.headers) {
      form = form || (name == "Content-Type" && value == "application/x-www-form-urlencoded");
    }
    CHECK(form);
    const Params p = form_of(req);
    CHECK(p.at("Action") == "QueryDevice");
    CHECK(p.at("ProductKey") == "pk1");
    CHECK(p.at("SignatureNonce") == "nonce-1");
    CHECK(p.at("Version") == "2018-01-20");
    CHECK(verify_rpc_signature("POST", p, "ak-secret").valid);
  }

  TEST_CASE("endpoints are normalised") {
    Harness h;
    h.config.endpoint = "127.0.0.1:8443";
    CHECK(h.client().endpoint() == "https://127.0.0.1:8443/");
    h.config.endpoint = "http://localhost:1234";
    CHECK(h.client().endpoint() == "http://localhost:1234/");
    h.config.endpoint = "";
    h.config.region_id = "ap-southeast-1";
    CHECK(h.client().endpoint() == "https://iot.ap-southeast-1.aliyuncs.com/");
  }

  TEST_CASE("IotInstanceId and SecurityToken are sent when configured") {
    Harness h;
    h.config.iot_instance_id = "iot-cn-abc";
    h.config.access_key.security_token = "sts-token";
    h.http.reply(200, k_ok);
    auto client = h.client();
    REQUIRE(client.call("QueryProduct", {{"ProductKey", "pk"}}));
    const Params p = form_of(h.http.requests().at(0));
    CHECK(p.at("IotInstanceId") == "iot-cn-abc");
    CHECK(p.at("SecurityToken") == "sts-token");
    CHECK(verify_rpc_signature("POST", p, "ak-secret").valid);
  }

  TEST_CASE("Success=false on HTTP 200 is a cloud error naming Action, Code, message, RequestId") {
    Harness h;
    h.http.reply(200,
                 R"({"RequestId":"R1","Success":false,"Code":"iot.device.NotExistedDevice",)"
                 R"("ErrorMessage":"The device does not exist."})");
    auto client = h.client();
    auto r = client.call("QueryDeviceDetail", {});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::cloud);
    CHECK(r.error().message ==
          "QueryDeviceDetail: iot.device.NotExistedDevice: The device does not exist. "
          "(HTTP 200, RequestId R1)");
    CHECK(h.http.count() == 1);
  }

  TEST_CASE("SignatureNonceUsed (libcurl re-sent a request) is retried with a fresh nonce") {
    Harness h;
    h.http.reply(
        400, R"({"RequestId":"R1","Code":"SignatureNonceUsed","Message":"used","Success":false})");
    h.http.reply(200, R"({"RequestId":"R2","Success":true})");
    auto client = h.client();
    auto r = client.call("QueryDevice", {});
    REQUIRE(r);
    CHECK(h.http.count() == 2);
    CHECK(is_retryable_code("SignatureNonceUsed"));
    CHECK_FALSE(is_auth_code("SignatureNonceUsed"));
  }

  TEST_CASE("gateway errors use Message, auth codes map to ErrorKind::auth and are not retried") {
    Harness h;
    std::string code;
    int status = 400;
    SUBCASE("SignatureDoesNotMatch") {
      code = "SignatureDoesNotMatch";
    }
    SUBCASE("InvalidAccessKeyId.NotFound") {
      code = "InvalidAccessKeyId.NotFound";
      status = 404;
    }
    SUBCASE("RAM permission") {
      code = "iot.common.RamActionPermissionDeny";
      status = 200;
    }
    SUBCASE("Forbidden.RAM") {
      code = "Forbidden.RAM";
      status = 403;
    }
    h.http.reply(status,
                 R"({"RequestId":"R2","HostId":"iot.cn-shanghai.aliyuncs.com","Code":")" + code +
                     R"(","Message":"nope","Success":false})");
    auto client = h.client();
    auto r = client.call("QueryDevice", {});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::auth);
    CHECK(r.error().message ==
          "QueryDevice: " + code + ": nope (HTTP " + std::to_string(status) + ", RequestId R2)");
    CHECK(h.http.count() == 1);
  }

  TEST_CASE("clock skew gets a hint") {
    Harness h;
    h.http.reply(400, R"({"RequestId":"R","Code":"InvalidTimeStamp.Expired","Message":"expired"})");
    auto client = h.client();
    auto r = client.call("QueryDevice", {});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::auth);
    CHECK(r.error().message.find("clock") != std::string::npos);
  }

  TEST_CASE("validation errors are cloud errors and not retried") {
    Harness h;
    h.http.reply(400, R"({"RequestId":"R3","Code":"InvalidParameter","Message":"bad"})");
    auto client = h.client();
    auto r = client.call("QueryDevice", {});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::cloud);
    CHECK(h.http.count() == 1);
    CHECK(h.backoffs.empty());
  }

  TEST_CASE("retryable failures are retried with a fresh nonce and timestamp") {
    Harness h;
    SUBCASE("Throttling.User") {
      h.http.reply(503, R"({"RequestId":"a","Code":"Throttling.User","Message":"slow down"})");
    }
    SUBCASE("ServiceUnavailable") {
      h.http.reply(503, R"({"RequestId":"a","Code":"ServiceUnavailable","Message":"x"})");
    }
    SUBCASE("iot.system on HTTP 200") {
      h.http.reply(200, R"({"RequestId":"a","Success":false,"Code":"iot.system.SystemException"})");
    }
    SUBCASE("bare 502 from a proxy") {
      h.http.reply(502, "<html>Bad Gateway</html>");
    }
    SUBCASE("network error") {
      h.http.reply_error(ErrorKind::network, "POST https://x/: Connection refused");
    }
    SUBCASE("truncated body") {
      h.http.reply(200, R"({"RequestId":"a","Succ)");
    }
    h.http.reply(500, R"({"RequestId":"b","Code":"InternalError","Message":"x"})");
    h.http.reply(200, k_ok);
    h.clock.advance(600ms); // so that the 750 ms of backoff cross a second boundary
    auto client = h.client();
    auto r = client.call("QueryDevice", {});
    REQUIRE(r);
    CHECK(r->attempts == 3);
    const auto requests = h.http.requests();
    REQUIRE(requests.size() == 3);
    std::set<std::string> nonces;
    std::set<std::string> timestamps;
    for (const auto& req : requests) {
      const Params p = form_of(req);
      nonces.insert(p.at("SignatureNonce"));
      timestamps.insert(p.at("Timestamp"));
      CHECK(verify_rpc_signature("POST", p, "ak-secret").valid);
    }
    CHECK(nonces.size() == 3);
    // Backoff (jitter 1.0 = the ceiling) 250 ms then 500 ms; the clock moved, so did Timestamp
    // with it.
    REQUIRE(h.backoffs.size() == 2);
    CHECK(h.backoffs[0] == 250ms);
    CHECK(h.backoffs[1] == 500ms);
    CHECK(timestamps.size() >= 2);
  }

  TEST_CASE("full jitter scales the ceiling") {
    Harness h;
    h.jitter = 0.5;
    h.http.reply(503, R"({"Code":"Throttling"})").reply(200, k_ok);
    auto client = h.client();
    REQUIRE(client.call("QueryDevice", {}));
    REQUIRE(h.backoffs.size() == 1);
    CHECK(h.backoffs[0] == 125ms);
  }

  TEST_CASE("attempts are bounded and the message says how many") {
    Harness h;
    h.config.retry.max_attempts = 3;
    h.http.set_handler([](const HttpRequest&) -> Result<HttpResponse> {
      return HttpResponse{
          500, {}, R"({"RequestId":"R9","Code":"iot.system.SystemException","Message":"boom"})"};
    });
    auto client = h.client();
    auto r = client.call("QueryDevice", {});
    REQUIRE_FALSE(r);
    CHECK(h.http.count() == 3);
    CHECK(r.error().kind == ErrorKind::cloud);
    CHECK(r.error().message == "QueryDevice: iot.system.SystemException: boom (HTTP 500, RequestId "
                               "R9) (after 3 attempts)");
  }

  TEST_CASE("backoff ceiling doubles up to the maximum") {
    RetryPolicy p{10, 250ms, 1000ms};
    CHECK(backoff_ceiling(p, 1) == 250ms);
    CHECK(backoff_ceiling(p, 2) == 500ms);
    CHECK(backoff_ceiling(p, 3) == 1000ms);
    CHECK(backoff_ceiling(p, 9) == 1000ms);
  }

  TEST_CASE("transport errors keep their kind, only network ones are retried") {
    Harness h;
    h.http.reply_error(ErrorKind::auth, "POST https://x/: TLS certificate verification failed");
    auto client = h.client();
    auto r = client.call("QueryDevice", {});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::auth);
    CHECK(r.error().message == "QueryDevice: POST https://x/: TLS certificate verification failed");
    CHECK(h.http.count() == 1);

    h.http.reply_error(ErrorKind::network, "POST https://x/: timed out")
        .reply_error(ErrorKind::network, "POST https://x/: timed out")
        .reply_error(ErrorKind::network, "POST https://x/: timed out")
        .reply_error(ErrorKind::network, "POST https://x/: timed out");
    r = client.call("QueryDevice", {});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::network);
    CHECK(r.error().message == "QueryDevice: POST https://x/: timed out (after 4 attempts)");
    CHECK(h.http.count() == 5);
  }

  TEST_CASE("non-idempotent calls are retried only when the request was refused") {
    Harness h;
    auto client = h.client();
    h.http.reply_error(ErrorKind::network, "POST https://x/: timed out");
    auto r = client.call(ApiCall{"RegisterDevice", {}, false});
    REQUIRE_FALSE(r);
    CHECK(h.http.count() == 1);

    h.http.reply(500, R"({"Code":"iot.system.SystemException"})");
    CHECK_FALSE(client.call(ApiCall{"RegisterDevice", {}, false}));
    CHECK(h.http.count() == 2);

    h.http.reply(503, R"({"Code":"Throttling.Api"})").reply(200, k_ok);
    auto ok = client.call(ApiCall{"RegisterDevice", {}, false});
    REQUIRE(ok);
    CHECK(ok->attempts == 2);
  }

  TEST_CASE("unparsable 4xx bodies are cloud errors with an excerpt") {
    Harness h;
    h.http.reply(404, "Not Found");
    auto client = h.client();
    auto r = client.call("QueryDevice", {});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::cloud);
    CHECK(r.error().message == "QueryDevice: HTTP 404: Not Found (HTTP 404)");
    CHECK(h.http.count() == 1);
  }

  TEST_CASE("requests are paced by the per-Action token bucket") {
    Harness h;
    h.http.set_handler([](const HttpRequest&) -> Result<HttpResponse> {
      return HttpResponse{200, {}, k_ok};
    });
    auto client = h.client();
    for (int i = 0; i < 5; ++i) {
      REQUIRE(client.call("BatchQueryDeviceDetail", {})); // 5 QPS
    }
    const auto sleeps = h.clock.sleeps();
    REQUIRE(sleeps.size() == 4);
    for (const auto s : sleeps) {
      CHECK(s == 200ms);
    }
  }

  TEST_CASE("call_all runs every call and keeps the order") {
    Harness h;
    h.http.set_handler([](const HttpRequest& req) -> Result<HttpResponse> {
      const Params p = form_of(req);
      return HttpResponse{200, {}, R"({"Success":true,"RequestId":")" + p.at("N") + R"("})"};
    });
    auto client = h.client();
    std::vector<ApiCall> calls;
    for (int i = 0; i < 40; ++i) {
      calls.push_back(ApiCall{"QueryDevice", {{"N", std::to_string(i)}}, true});
    }
    auto results = client.call_all(calls, 6);
    REQUIRE(results.size() == 40);
    for (int i = 0; i < 40; ++i) {
      REQUIRE(results[static_cast<std::size_t>(i)]);
      CHECK(results[static_cast<std::size_t>(i)]->request_id == std::to_string(i));
    }
    CHECK(h.http.count() == 40);
  }
}

TEST_SUITE("cloud::RateLimiter") {
  TEST_CASE("documented QPS, overrides and the default") {
    RateLimiter::Options options;
    options.qps["QueryDevice"] = 7;
    RateLimiter limiter(options);
    CHECK(limiter.qps("QueryDevice") == 7);
    CHECK(limiter.qps("BatchQueryDeviceDetail") == 5);
    CHECK(limiter.qps("BatchGetDeviceState") == 50);
    CHECK(limiter.qps("RegisterDevice") == 30);
    CHECK(limiter.qps("BatchCheckDeviceNames") == 10);
    CHECK(limiter.qps("QueryBatchRegisterDeviceStatus") == 30);
    CHECK(limiter.qps("BatchRegisterDeviceWithApplyId") == 500);
    CHECK(limiter.qps("QueryPageByApplyId") == 50);
    CHECK(limiter.qps("QueryDeviceDetail") == 50);
    CHECK(limiter.qps("QueryProduct") == 50);
    CHECK(limiter.qps("QueryProductList") == 50);
    CHECK(limiter.qps("SomethingElse") == 10);
  }

  TEST_CASE("reservations are spaced 1/QPS apart and refill with time") {
    ManualClock clock;
    RateLimiter::Options options;
    options.clock = clock.clock();
    options.sleep = clock.sleeper();
    RateLimiter limiter(options);
    CHECK(limiter.reserve("QueryDevice") == 0ns);
    CHECK(limiter.reserve("QueryDevice") == 20ms);
    CHECK(limiter.reserve("QueryDevice") == 40ms);
    // Other actions have their own bucket.
    CHECK(limiter.reserve("QueryProduct") == 0ns);
    clock.advance(1s);
    CHECK(limiter.reserve("QueryDevice") == 0ns);
    CHECK(limiter.reserve("QueryDevice") == 20ms);
  }

  TEST_CASE("a burst allowance lets saved-up tokens go at once") {
    ManualClock clock;
    RateLimiter::Options options;
    options.clock = clock.clock();
    options.sleep = clock.sleeper();
    options.burst = 3;
    RateLimiter limiter(options);
    CHECK(limiter.reserve("X") == 0ns);
    CHECK(limiter.reserve("X") == 0ns);
    CHECK(limiter.reserve("X") == 0ns);
    CHECK(limiter.reserve("X") == 100ms);
  }

  TEST_CASE("acquire sleeps for the reservation, paced over many calls") {
    ManualClock clock;
    RateLimiter::Options options;
    options.clock = clock.clock();
    options.sleep = clock.sleeper();
    RateLimiter limiter(options);
    const auto start = clock.now();
    for (int i = 0; i < 101; ++i) {
      limiter.acquire("QueryDevice");
    }
    // 100 waits of 20 ms: two seconds for 101 calls at 50 QPS.
    CHECK(clock.now() - start == 2s);
  }

  TEST_CASE("thread-safe: concurrent reservations never share a slot") {
    ManualClock clock;
    RateLimiter::Options options;
    options.clock = clock.clock();
    options.sleep = clock.sleeper();
    RateLimiter limiter(options);
    std::mutex mutex;
    std::set<std::int64_t> waits;
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 25; ++i) {
          const auto w = limiter.reserve("QueryDevice");
          const std::lock_guard lock(mutex);
          waits.insert(w.count());
        }
      });
    }
    threads.clear();
    CHECK(waits.size() == 200);
  }
}

TEST_SUITE("cloud::error codes") {
  TEST_CASE("classification") {
    CHECK(is_auth_code("SignatureDoesNotMatch"));
    CHECK(is_auth_code("InvalidAccessKeyId.NotFound"));
    CHECK(is_auth_code("InvalidSecurityToken.Expired"));
    CHECK(is_auth_code("iot.common.AuthActionPermissionDeny"));
    CHECK_FALSE(is_auth_code("iot.device.NotExistedDevice"));
    CHECK(is_retryable_code("Throttling"));
    CHECK(is_retryable_code("Throttling.User"));
    CHECK(is_retryable_code("ServiceUnavailable"));
    CHECK(is_retryable_code("iot.system.SystemException"));
    CHECK(is_retryable_code("iot.messagebroker.RateLimit"));
    CHECK_FALSE(is_retryable_code("MissingParameter"));
    CHECK_FALSE(is_retryable_code("iot.common.InvalidPageParams"));
    CHECK_FALSE(is_retryable_code("SignatureDoesNotMatch"));
  }
}
