// SPDX-License-Identifier: MIT
#include "cloud/dynreg_client.hpp"
#include "fake_http.hpp"

#include <doctest/doctest.h>

using namespace iot;
using namespace iot::cloud;
using iot::cloud::test::FakeHttpClient;

namespace {

constexpr std::string_view k_ok =
    R"({"code":200,"data":{"productKey":"a1b2c3d4e5f","deviceName":"dev01",)"
    R"("deviceSecret":"90f5a3b0d2f60f21cf4a3962cff0ee33"},"message":"success"})";

DynamicRegisterClient make(FakeHttpClient& http, int attempts = 4) {
  DynregConfig config;
  config.auth_endpoint = "https://iot-auth.cn-shanghai.aliyuncs.com/";
  config.product_key = "a1b2c3d4e5f";
  config.product_secret = "0123456789ABCDEF";
  config.retry.max_attempts = attempts;
  config.qps = 0;
  DynregHooks hooks;
  hooks.sleep = [](std::chrono::nanoseconds) {};
  hooks.jitter = [] { return 0.0; };
  hooks.random = [] { return std::string("8Ygb7ULYh53B6OA"); };
  return DynamicRegisterClient(http, std::move(config), std::move(hooks));
}

std::string refusal(int code, std::string_view message) {
  return R"({"code":)" + std::to_string(code) + R"(,"message":")" + std::string(message) + "\"}";
}

} // namespace

TEST_SUITE("cloud::dynreg_client") {
  TEST_CASE("success: the §4 form, signed, to <endpoint>/auth/register/device") {
    FakeHttpClient http;
    http.reply(200, std::string(k_ok));
    auto client = make(http);
    const auto r = client.register_device("dev01");
    REQUIRE(r.ok());
    CHECK(r.device_secret == "90f5a3b0d2f60f21cf4a3962cff0ee33");
    CHECK(r.code == 200);
    CHECK(r.attempts == 1);
    CHECK_FALSE(r.answer_lost);
    const auto sent = http.requests().at(0);
    CHECK(sent.method == "POST");
    CHECK(sent.url == "https://iot-auth.cn-shanghai.aliyuncs.com/auth/register/device");
    CHECK(sent.body == "productKey=a1b2c3d4e5f&deviceName=dev01&random=8Ygb7ULYh53B6OA"
                       "&sign=118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9"
                       "&signMethod=hmacsha256");
    bool form = false;
    for (const auto& [k, v] : sent.headers) {
      form = form || (k == "Content-Type" && v == "application/x-www-form-urlencoded");
    }
    CHECK(form);
  }

  TEST_CASE("refusals are final, named, and carry their fix") {
    struct Case {
      int code;
      ErrorKind kind;
      std::string_view needle;
    };
    for (const auto& c : {Case{6289, ErrorKind::cloud, "devices reset dev01"},
                          Case{6250, ErrorKind::usage, "letter case"},
                          Case{401, ErrorKind::auth, "ProductSecret"},
                          Case{460, ErrorKind::usage, "malformed"},
                          Case{6280, ErrorKind::usage, "4–32"},
                          Case{6100, ErrorKind::cloud, "devices register dev01"},
                          Case{6204, ErrorKind::cloud, "EnableThing"},
                          Case{6288, ErrorKind::cloud, "switch it on"}}) {
      CAPTURE(c.code);
      FakeHttpClient http;
      http.reply(200, refusal(c.code, "x"));
      auto client = make(http);
      const auto r = client.register_device("dev01");
      REQUIRE_FALSE(r.ok());
      CHECK(r.code == c.code);
      CHECK(r.attempts == 1);
      CHECK_FALSE(r.answer_lost);
      CHECK(r.error->kind == c.kind);
      CHECK(r.error->message.find(std::string(c.needle)) != std::string::npos);
      CHECK(r.error->message.starts_with("register a1b2c3d4e5f/dev01: code " +
                                         std::to_string(c.code)));
    }
  }

  TEST_CASE("busy and failing service: retried, a refusal issued nothing") {
    FakeHttpClient http;
    http.reply(503, refusal(503, "service unavailable"))
        .reply(200, refusal(429, "request too many"))
        .reply(200, refusal(500, "system error"))
        .reply(200, std::string(k_ok));
    auto client = make(http);
    const auto r = client.register_device("dev01");
    REQUIRE(r.ok());
    CHECK(r.attempts == 4);
    CHECK_FALSE(r.answer_lost);
  }

  TEST_CASE("retries run out on a busy service: failed, not in doubt") {
    FakeHttpClient http;
    http.reply(503, "<html>gateway</html>").reply(503, "<html>gateway</html>");
    auto client = make(http, 2);
    const auto r = client.register_device("dev01");
    REQUIRE_FALSE(r.ok());
    CHECK(r.attempts == 2);
    CHECK_FALSE(r.answer_lost);
    CHECK(r.error->message.find("after 2 attempts") != std::string::npos);
  }

  TEST_CASE("a lost answer is retried, and a later success overtakes it") {
    FakeHttpClient http;
    http.reply_error(ErrorKind::network, "POST …: Connection reset by peer")
        .reply(200, R"({"code":200,"data":{"productKey":"a1b2c3d4e5f","deviceN)")
        .reply(200, std::string(k_ok));
    auto client = make(http);
    const auto r = client.register_device("dev01");
    REQUIRE(r.ok());
    CHECK(r.attempts == 3);
    CHECK_FALSE(r.answer_lost);
  }

  TEST_CASE("lost answers until the end: in doubt") {
    FakeHttpClient http;
    http.reply(200, R"({"code":200,"da)")
        .reply_error(ErrorKind::network, "timed out")
        .reply(503, refusal(503, "service unavailable"));
    auto client = make(http, 3);
    const auto r = client.register_device("dev01");
    REQUIRE_FALSE(r.ok());
    CHECK(r.answer_lost); // the first attempt may have issued a secret nobody read
  }

  TEST_CASE("a lost answer followed by a definite refusal: nothing was issued") {
    FakeHttpClient http;
    http.reply_error(ErrorKind::network, "reset").reply(200, refusal(6100, "device not found"));
    auto client = make(http);
    const auto r = client.register_device("dev01");
    REQUIRE_FALSE(r.ok());
    CHECK(r.code == 6100);
    CHECK_FALSE(r.answer_lost);
  }

  TEST_CASE("an answer for another device is not used") {
    FakeHttpClient http;
    http.reply(200,
               R"({"code":200,"data":{"productKey":"a1b2c3d4e5f","deviceName":"dev02",)"
               R"("deviceSecret":"aa"},"message":"success"})");
    auto client = make(http);
    const auto r = client.register_device("dev01");
    REQUIRE_FALSE(r.ok());
    CHECK(r.answer_lost);
    CHECK(r.device_secret.empty());
  }

  TEST_CASE("not a registration service: a usage error naming --auth-endpoint, not retried") {
    FakeHttpClient http;
    http.reply(404, "<html>Not Found</html>");
    auto client = make(http);
    const auto r = client.register_device("dev01");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error->kind == ErrorKind::usage);
    CHECK(r.error->message.find("--auth-endpoint") != std::string::npos);
    CHECK(http.count() == 1);
  }

  TEST_CASE("dynreg_url trims trailing slashes") {
    CHECK(dynreg_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/auth/register/device");
    CHECK(dynreg_url("http://127.0.0.1:8080//") == "http://127.0.0.1:8080/auth/register/device");
  }
}
