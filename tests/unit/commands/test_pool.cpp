// SPDX-License-Identifier: MIT
// pool import | release | log decisions, against a ledger on a temp file: conflicting rows stop
// an import (or are skipped with --skip-invalid), a burned triplet is released only with
// --force, log --limit keeps the newest events.
#include "commands/pool.hpp"
#include "unit/commands/bench.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace iot;
using namespace iot::commands;
using namespace iot::commands::testing;

namespace {

constexpr std::string_view k_pk = "a1PoolTest01";

std::string secret(char c) {
  return std::string(32, c);
}

std::string write_pool(Bench& b, const std::string& name, const std::vector<std::string>& rows) {
  const auto path = b.file(name);
  std::ofstream out(path);
  out << "ProductKey,DeviceName,DeviceSecret\n";
  for (const auto& r : rows) {
    out << r << '\n';
  }
  return path;
}

std::string row(const std::string& dn, char c) {
  return std::string(k_pk) + "," + dn + "," + secret(c);
}

Result<core::Table> import(Bench& b, const std::string& file, bool skip_invalid = false) {
  PoolImportOptions o;
  o.file = file;
  o.skip_invalid = skip_invalid;
  return run_pool_import(o, b.ctx);
}

std::optional<store::TripletRecord> find(Bench& b, const std::string& dn) {
  auto found = b.ledger()->find(dn, std::string(k_pk));
  REQUIRE(found.has_value());
  if (found->empty()) {
    return std::nullopt;
  }
  return found->front();
}

// dn claimed by the module with this IMEI and verified as burned.
void burn(Bench& b, const std::string& dn, const std::string& imei) {
  auto ledger = b.ledger();
  const store::Actor actor{"line-1", "/dev/ttyUSB0", 1};
  store::ClaimRequest req;
  req.imei = imei;
  req.actor = actor;
  req.device_name = dn;
  auto claim = ledger->claim(req);
  REQUIRE(claim.has_value());
  REQUIRE(claim->has_value());
  const store::TripletKey key{std::string(k_pk), dn};
  REQUIRE(ledger->mark_attempted(key, actor).has_value());
  REQUIRE(ledger->mark_burned(key, actor, "read-back matched").has_value());
}

} // namespace

TEST_CASE("pool import: a row whose secret differs from the ledger's stops the whole file") {
  Bench b;
  REQUIRE(import(b, write_pool(b, "first.csv", {row("dev01", 'a'), row("dev02", 'b')})));

  // dev01 again with another secret, plus a new dev03 and an unchanged dev02.
  const auto second =
      write_pool(b, "second.csv", {row("dev01", 'z'), row("dev02", 'b'), row("dev03", 'c')});
  auto refused = import(b, second);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::usage);
  CHECK(refused.error().message.find("1 rows conflict with the ledger") != std::string::npos);
  CHECK(refused.error().message.find("--skip-invalid") != std::string::npos);
  // The conflict is named by its line, without either secret.
  REQUIRE(b.output.warnings.size() == 1);
  CHECK(b.output.warnings[0].find("second.csv:2:") != std::string::npos);
  CHECK(b.output.warnings[0].find(secret('z')) == std::string::npos);
  CHECK(b.output.warnings[0].find(secret('a')) == std::string::npos);
  CHECK_FALSE(find(b, "dev03").has_value()); // nothing imported
  CHECK(find(b, "dev01")->secret == secret('a'));

  // --skip-invalid imports the rest and leaves the ledger's dev01 as it was.
  auto skipped = import(b, second, true);
  REQUIRE(skipped.has_value());
  CHECK(cell(*skipped, 0, "added") == "1");
  CHECK(cell(*skipped, 0, "already_present") == "1");
  CHECK(cell(*skipped, 0, "skipped_conflicts") == "1");
  REQUIRE(find(b, "dev03").has_value());
  CHECK(find(b, "dev01")->secret == secret('a'));
}

TEST_CASE("pool import: a bad row refuses the file before the ledger is created") {
  Bench b;
  const auto file = write_pool(b, "bad.csv", {row("dev01", 'a'), row("bad name!", 'b')});
  auto refused = import(b, file);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("1 bad rows") != std::string::npos);
  CHECK_FALSE(fs::exists(b.ledger_path()));
}

TEST_CASE("pool release: a burned triplet needs --force, a claimed one does not") {
  Bench b;
  REQUIRE(import(b, write_pool(b, "pool.csv", {row("dev01", 'a'), row("dev02", 'b')})));
  burn(b, "dev01", "490154203237518");

  PoolReleaseOptions o;
  o.device.positional = {"dev01"};
  o.reason = "module scrapped";
  auto refused = run_pool_release(o, b.ctx);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::usage);
  CHECK(refused.error().message.find("burned into IMEI 490154203237518") != std::string::npos);
  CHECK(refused.error().message.find("--force") != std::string::npos);
  CHECK(find(b, "dev01")->state == store::TripletState::burned);

  o.force = true;
  auto released = run_pool_release(o, b.ctx);
  REQUIRE(released.has_value());
  CHECK(cell(*released, 0, "was") == "burned");
  CHECK(cell(*released, 0, "imei") == "490154203237518");
  const auto after = find(b, "dev01");
  CHECK(after->state == store::TripletState::available);
  CHECK(after->imei.empty());

  // Releasing it again: nothing to release. Without --reason: refused before the ledger.
  auto again = run_pool_release(o, b.ctx);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().message.find("already available") != std::string::npos);
  o.reason = "  ";
  auto no_reason = run_pool_release(o, b.ctx);
  REQUIRE_FALSE(no_reason.has_value());
  CHECK(no_reason.error().message.find("--reason is required") != std::string::npos);
}

TEST_CASE("pool release: a claimed triplet goes back to the pool without --force") {
  Bench b;
  REQUIRE(import(b, write_pool(b, "pool.csv", {row("dev01", 'a')})));
  {
    auto ledger = b.ledger();
    store::ClaimRequest req;
    req.imei = "490154203237518";
    req.actor = {"line-1", "/dev/ttyUSB0", 1};
    auto claim = ledger->claim(req);
    REQUIRE(claim.has_value());
    REQUIRE(claim->has_value());
  }
  PoolReleaseOptions o;
  o.device.positional = {"dev01"};
  o.reason = "module gone";
  auto released = run_pool_release(o, b.ctx);
  REQUIRE(released.has_value());
  CHECK(cell(*released, 0, "was") == "claimed");
  CHECK(find(b, "dev01")->state == store::TripletState::available);
}

TEST_CASE("pool log: --limit keeps the newest events, a DeviceName only its own") {
  Bench b;
  REQUIRE(import(b, write_pool(b, "pool.csv", {row("dev01", 'a'), row("dev02", 'b')})));
  burn(b, "dev01", "490154203237518");
  burn(b, "dev02", "490154203237526");

  PoolLogOptions all;
  all.limit = 1000;
  auto every = run_pool_log(all, b.ctx);
  REQUIRE(every.has_value());
  REQUIRE(every->rows.size() >= 4);
  const auto last = every->rows.size() - 1;

  PoolLogOptions two;
  two.limit = 2;
  auto newest = run_pool_log(two, b.ctx);
  REQUIRE(newest.has_value());
  REQUIRE(newest->rows.size() == 2);
  // The newest two, oldest first: the same rows the full log ends with.
  CHECK(newest->rows[1] == every->rows[last]);
  CHECK(newest->rows[0] == every->rows[last - 1]);
  CHECK(cell(*newest, 1, "device_name") == "dev02");

  PoolLogOptions one_device;
  one_device.limit = 1000;
  one_device.device.positional = {"dev01"};
  auto own = run_pool_log(one_device, b.ctx);
  REQUIRE(own.has_value());
  REQUIRE_FALSE(own->rows.empty());
  for (std::size_t i = 0; i < own->rows.size(); ++i) {
    CHECK(cell(*own, i, "device_name") == "dev01");
  }
  CHECK(own->rows.size() < every->rows.size());
}
