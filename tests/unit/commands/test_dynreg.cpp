// SPDX-License-Identifier: MIT
// dynreg (commands/register.cpp) decisions against the cloud emulator in-process: skip what the
// ledger has, --force supersedes, a lost answer is in doubt and registered anew by the next run,
// a refusal fails and is recorded, an unwritable -O stops the run before anything is sent.
#include "commands/register.hpp"
#include "unit/commands/bench.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace iot;
using namespace iot::commands;
using namespace iot::commands::testing;

namespace {

constexpr std::string_view k_pk = "a1DynRegUt01";
constexpr std::string_view k_ps = "DynRegProductSecret01";

std::string dynreg_scenario() {
  return scenario(R"([{"product_key": ")" + std::string(k_pk) + R"(", "product_secret": ")" +
                  std::string(k_ps) + R"(", "dynamic_register": true,
      "devices": [{"name": "dev01"}, {"name": "dev02"}, {"name": "dev03"}]}])");
}

struct DynregBench {
  CloudEmu emu{dynreg_scenario()};
  Bench b;
  DynregBench() {
    b.use_cloud(emu);
    b.vars["IOTFLEET_PRODUCT_SECRET"] = std::string(k_ps);
  }

  Result<RegisterReport> run(std::vector<std::string> names,
                             bool force = false,
                             std::optional<std::string> out_file = std::nullopt) {
    RegisterOptions o;
    o.registrar.product_key = std::string(k_pk);
    o.registrar.max_attempts = 1;
    o.devices.positional = std::move(names);
    o.force = force;
    o.concurrency = 1;
    o.out_file = std::move(out_file);
    return run_register(o, b.ctx);
  }

  [[nodiscard]] std::uint64_t requests() const { return emu.service->counters().register_requests; }
  // The DeviceSecret the cloud holds for dn now.
  std::string cloud_secret(const std::string& dn) {
    return emu.read([&](sim::cloud::Conn& c) {
      auto d = sim::cloud::CloudStore::device(c, k_pk, dn);
      REQUIRE(d.has_value());
      return d->device_secret;
    });
  }
  std::optional<store::TripletRecord> pool_row(const std::string& dn) {
    auto found = b.ledger()->find(dn, std::string(k_pk));
    REQUIRE(found.has_value());
    return found->empty() ? std::nullopt : std::optional(found->front());
  }
  std::vector<store::Registration> history(const std::string& dn) {
    auto h = b.ledger()->registrations({std::string(k_pk), dn});
    REQUIRE(h.has_value());
    return *h;
  }
};

} // namespace

TEST_CASE("dynreg: a device in the ledger is skipped without a request, --force supersedes it") {
  DynregBench t;
  auto first = t.run({"dev01"});
  REQUIRE(first.has_value());
  CHECK_FALSE(first->failure.has_value());
  CHECK(cell(first->devices, 0, "result") == "registered");
  const auto secret = t.pool_row("dev01")->secret;
  CHECK(secret == t.cloud_secret("dev01"));
  CHECK(t.requests() == 1);

  auto again = t.run({"dev01"});
  REQUIRE(again.has_value());
  CHECK(cell(again->devices, 0, "result") == "skipped");
  CHECK(cell(again->devices, 0, "device_secret") == secret);
  CHECK(t.requests() == 1); // nothing sent

  auto forced = t.run({"dev01"}, true);
  REQUIRE(forced.has_value());
  CHECK_FALSE(forced->failure.has_value());
  CHECK(cell(forced->devices, 0, "result") == "registered");
  CHECK(cell(forced->devices, 0, "detail").find("superseded") != std::string::npos);
  CHECK(t.requests() == 2);
  const auto renewed = t.pool_row("dev01")->secret;
  CHECK(renewed != secret);
  CHECK(renewed == t.cloud_secret("dev01")); // the newest secret wins, in both places
  const auto h = t.history("dev01");
  REQUIRE(h.size() == 2);
  CHECK(h[0].status == store::RegistrationStatus::superseded);
  CHECK(h[1].status == store::RegistrationStatus::issued);
}

TEST_CASE("dynreg: --force never registers a device already burned into a module") {
  DynregBench t;
  REQUIRE(t.run({"dev01"}).has_value());
  {
    auto ledger = t.b.ledger();
    const store::Actor actor{"line-1", "/dev/ttyUSB0", 1};
    store::ClaimRequest req;
    req.imei = "490154203237518";
    req.actor = actor;
    req.device_name = "dev01";
    auto claim = ledger->claim(req);
    REQUIRE(claim.has_value());
    REQUIRE(claim->has_value());
    REQUIRE(ledger->mark_attempted({std::string(k_pk), "dev01"}, actor).has_value());
    REQUIRE(ledger->mark_burned({std::string(k_pk), "dev01"}, actor, "ok").has_value());
  }
  const auto secret = t.cloud_secret("dev01");
  auto forced = t.run({"dev01"}, true);
  REQUIRE(forced.has_value());
  CHECK(cell(forced->devices, 0, "result") == "failed");
  REQUIRE(forced->failure.has_value());
  CHECK(forced->failure->message.find("IMEI 490154203237518") != std::string::npos);
  CHECK(forced->failure->message.find("pool release dev01 --force") != std::string::npos);
  CHECK(t.requests() == 1);
  CHECK(t.cloud_secret("dev01") == secret);
}

TEST_CASE("dynreg: a lost answer is in doubt, and the next run registers the device anew") {
  DynregBench t;
  t.emu.lose_answers = 1;
  auto lost = t.run({"dev02"});
  REQUIRE(lost.has_value());
  CHECK(cell(lost->devices, 0, "result") == "in_doubt");
  REQUIRE(lost->failure.has_value());
  CHECK(lost->failure->message.find("run again to register dev02 anew") != std::string::npos);
  CHECK(t.b.said("in doubt"));
  CHECK_FALSE(t.pool_row("dev02").has_value()); // the secret nobody read is not in the pool
  REQUIRE(t.history("dev02").size() == 1);
  CHECK(t.history("dev02")[0].status == store::RegistrationStatus::pending);
  const auto unread = t.cloud_secret("dev02"); // issued by the cloud, never seen by iotfleet

  // Not skipped: the pending row makes the next run register it again (no --force needed).
  auto next = t.run({"dev02"});
  REQUIRE(next.has_value());
  CHECK_FALSE(next->failure.has_value());
  CHECK(cell(next->devices, 0, "result") == "registered");
  CHECK(cell(next->devices, 0, "detail").find("answer had been lost") != std::string::npos);
  const auto secret = t.pool_row("dev02")->secret;
  CHECK(secret != unread);
  CHECK(secret == t.cloud_secret("dev02"));
  const auto h = t.history("dev02");
  REQUIRE(h.size() == 2);
  CHECK(h[0].status == store::RegistrationStatus::superseded);
  CHECK(h[1].status == store::RegistrationStatus::issued);
}

TEST_CASE("dynreg: a refusal fails the device, is recorded, and puts nothing in the pool") {
  DynregBench t;
  auto refused = t.run({"nosuchdev"});
  REQUIRE(refused.has_value());
  CHECK(cell(refused->devices, 0, "result") == "failed");
  CHECK(cell(refused->devices, 0, "code") == "6100");
  REQUIRE(refused->failure.has_value());
  CHECK(refused->failure->kind != ErrorKind::partial); // one device: its own error
  CHECK_FALSE(t.pool_row("nosuchdev").has_value());
  const auto h = t.history("nosuchdev");
  REQUIRE(h.size() == 1);
  CHECK(h[0].status == store::RegistrationStatus::failed);

  // Among others: a partial result naming the first device that was not registered.
  auto mixed = t.run({"dev03", "nosuchdev"});
  REQUIRE(mixed.has_value());
  REQUIRE(mixed->failure.has_value());
  CHECK(mixed->failure->kind == ErrorKind::partial);
  CHECK(mixed->failure->message.find("1 of 2 devices were not registered; first: nosuchdev") !=
        std::string::npos);
  CHECK(t.pool_row("dev03").has_value());
}

TEST_CASE("dynreg: an -O file that cannot be written stops the run before any request") {
  DynregBench t;
  auto refused = t.run({"dev01", "dev02"}, false, t.b.file("missing-dir/triplets.csv"));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("missing-dir") != std::string::npos);
  CHECK(t.requests() == 0);
  CHECK(t.history("dev01").empty());

  // Written: the triplets of every device holding a secret, registered or skipped.
  REQUIRE(t.run({"dev01"}).has_value());
  const auto out = t.b.file("triplets.csv");
  auto written = t.run({"dev01", "dev02"}, false, out);
  REQUIRE(written.has_value());
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("dev01," + t.pool_row("dev01")->secret) != std::string::npos);
  CHECK(text.find("dev02," + t.pool_row("dev02")->secret) != std::string::npos);
  CHECK((fs::status(out).permissions() & fs::perms::group_all) == fs::perms::none);
}
