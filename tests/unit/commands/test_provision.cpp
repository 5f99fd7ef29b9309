// SPDX-License-Identifier: MIT
// provision decisions with simulated modules (sim::ModuleModel behind the open_port seam) and a
// temp ledger: a module holding credentials this ledger did not burn is refused and its claim
// given back, a triplet the layout cannot hold goes back to the pool, a failed write keeps the
// triplet bound to the IMEI for the next run, --dry-run changes nothing.
#include "commands/pool.hpp"
#include "commands/provision.hpp"
#include "unit/commands/bench.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace iot;
using namespace iot::commands;
using namespace iot::commands::testing;

namespace {

constexpr std::string_view k_pk = "a1ProvUnit01";
constexpr std::string_view k_port = "/dev/fake-fixture1";
constexpr std::string_view k_imei = "490154203237518";

std::string secret(char c) {
  return std::string(32, c);
}

struct ProvisionBench {
  Bench b;

  void import(const std::vector<std::pair<std::string, char>>& rows) {
    const auto path = b.file("pool.csv");
    std::ofstream out(path);
    out << "ProductKey,DeviceName,DeviceSecret\n";
    for (const auto& [dn, c] : rows) {
      out << k_pk << ',' << dn << ',' << secret(c) << '\n';
    }
    out.close();
    PoolImportOptions o;
    o.file = path;
    auto imported = run_pool_import(o, b.ctx);
    REQUIRE_MESSAGE(imported.has_value(), (imported ? std::string() : imported.error().message));
  }
  std::shared_ptr<sim::ModuleModel> plug(sim::ModuleKind kind,
                                         sim::ModuleModel::PersistFn persist = {},
                                         std::optional<sim::Nvm> nvm = std::nullopt) {
    auto m =
        make_module(kind, nvm ? *nvm : module_nvm(kind, std::string(k_imei)), std::move(persist));
    b.modules[std::string(k_port)] = m;
    return m;
  }
  ProvisionOptions options(const std::string& module) {
    ProvisionOptions o;
    o.ports = {std::string(k_port)};
    o.connect.module = module;
    return o;
  }
  ProvisionReport run(const ProvisionOptions& o) {
    auto r = run_provision(o, b.ctx);
    REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
    REQUIRE(r->events.rows.size() == 1);
    return std::move(*r);
  }
  store::TripletRecord row(const std::string& dn) {
    auto found = b.ledger()->find(dn, std::string(k_pk));
    REQUIRE(found.has_value());
    REQUIRE(found->size() == 1);
    return found->front();
  }
  std::size_t events() {
    auto e = b.ledger()->events(100000, std::nullopt);
    REQUIRE(e.has_value());
    return e->size();
  }
};

sim::AliAuth aliauth(const std::string& dn, char c) {
  return {std::string(k_pk), dn, secret(c)};
}

} // namespace

TEST_CASE("provision: a module holding another triplet is refused and the claim given back") {
  ProvisionBench t;
  t.import({{"dev01", 'a'}});
  // Credentials from elsewhere (another line, a returned unit): not this ledger's.
  auto nvm = module_nvm(sim::ModuleKind::quectel, std::string(k_imei));
  nvm.aliauth[0] = {"a1OtherLine1", "foreign", secret('f')};
  auto module = t.plug(sim::ModuleKind::quectel, {}, nvm);
  const auto foreign = module->nvm().aliauth.at(0);

  auto refused = t.run(t.options("quectel"));
  CHECK(cell(refused.events, 0, "event") == "refused");
  CHECK(cell(refused.events, 0, "error")
            .find("(DeviceName foreign) that this ledger did not "
                  "burn") != std::string::npos);
  CHECK(cell(refused.events, 0, "action").find("--overwrite") != std::string::npos);
  CHECK(cell(refused.events, 0, "device_secret").empty()); // nothing handed out
  const auto after = t.row("dev01");
  CHECK(after.state == store::TripletState::available); // the claim was given back
  CHECK(after.imei.empty());
  CHECK(module->nvm().aliauth.at(0) == foreign); // the module untouched

  // --overwrite replaces them with the pool's triplet, verified by read-back.
  auto o = t.options("quectel");
  o.overwrite = true;
  auto burned = t.run(o);
  CHECK(cell(burned.events, 0, "event") == "burned");
  CHECK(module->nvm().aliauth.at(0) == aliauth("dev01", 'a'));
  CHECK(t.row("dev01").state == store::TripletState::burned);
  CHECK(t.row("dev01").imei == k_imei);

  // Again on the same module: it holds its burned triplet, nothing is written.
  const auto writes = module->stats().nvm_writes;
  auto again = t.run(t.options("quectel"));
  CHECK(cell(again.events, 0, "event") == "already-provisioned");
  CHECK(module->stats().nvm_writes == writes);
}

TEST_CASE("provision: a triplet the layout cannot hold is refused and goes back to the pool") {
  ProvisionBench t;
  // Luat's triplet layout packs pk|dn|ds into the 64-byte SN: a 25-character DeviceName is too
  // long (11 + 25 + 32 + 2 separators = 70).
  t.import({{"a-device-name-of-25-chars", 'a'}});
  auto module = t.plug(sim::ModuleKind::luat);
  auto o = t.options("luat");
  o.layout = "triplet";
  auto r = t.run(o);
  CHECK(cell(r.events, 0, "event") == "refused");
  CHECK(cell(r.events, 0, "error").find("holds at most 64") != std::string::npos);
  CHECK(t.row("a-device-name-of-25-chars").state == store::TripletState::available);
  CHECK(t.row("a-device-name-of-25-chars").attempts == 0);
  CHECK_FALSE(module->nvm().sn.has_value());
  REQUIRE(r.failure.has_value());
}

TEST_CASE("provision: a failed write keeps the triplet bound, the next run burns the same one") {
  ProvisionBench t;
  t.import({{"dev01", 'a'}, {"dev02", 'b'}});
  auto broken = std::make_shared<std::atomic<bool>>(true);
  auto module = t.plug(sim::ModuleKind::quectel, [broken](const sim::Nvm&) -> Status {
    if (*broken) {
      return fail(ErrorKind::io, "flash write failed");
    }
    return {};
  });
  auto o = t.options("quectel");
  o.retries = 1;
  auto failed = t.run(o);
  CHECK(cell(failed.events, 0, "event") == "failed");
  CHECK(cell(failed.events, 0, "attempts") == "2"); // the first write and one retry
  const auto dn = cell(failed.events, 0, "device_name");
  CHECK(cell(failed.events, 0, "action").find("it gets the same triplet " + dn) !=
        std::string::npos);
  // A write may have reached the module: the triplet stays with this IMEI, never another's.
  const auto bound = t.row(dn);
  CHECK(bound.state == store::TripletState::bound);
  CHECK(bound.imei == k_imei);
  CHECK(bound.attempts == 2);
  CHECK(module->nvm().aliauth.empty());
  REQUIRE(failed.failure.has_value());

  *broken = false;
  auto burned = t.run(o);
  CHECK(cell(burned.events, 0, "event") == "burned");
  CHECK(cell(burned.events, 0, "device_name") == dn);
  CHECK(t.row(dn).state == store::TripletState::burned);
  const char c = dn == "dev01" ? 'a' : 'b';
  CHECK(module->nvm().aliauth.at(0) == aliauth(dn, c));
  const auto other = t.row(dn == "dev01" ? "dev02" : "dev01");
  CHECK(other.state == store::TripletState::available);
}

TEST_CASE("provision --dry-run: the plan, masked, and nothing claimed or written") {
  ProvisionBench t;
  t.import({{"dev01", 'a'}});
  auto module = t.plug(sim::ModuleKind::quectel);
  const auto events_before = t.events();
  auto o = t.options("quectel");
  o.dry_run = true;
  auto plan = run_provision_dry_run(o, t.b.ctx);
  REQUIRE_MESSAGE(plan.has_value(), (plan ? std::string() : plan.error().message));
  REQUIRE_FALSE(plan->rows.empty());
  bool writes_aliauth = false;
  for (std::size_t i = 0; i < plan->rows.size(); ++i) {
    CHECK(cell(*plan, i, "imei") == k_imei);
    CHECK(cell(*plan, i, "triplet") == std::string(k_pk) + "/dev01 (fresh)");
    const auto command = cell(*plan, i, "command");
    CHECK(command.find(secret('a')) == std::string::npos);
    writes_aliauth =
        writes_aliauth || command.find("AT+QMTCFG=\"aliauth\",0,\"" + std::string(k_pk) +
                                       "\",\"dev01\"") != std::string::npos;
  }
  CHECK(writes_aliauth);
  CHECK(t.row("dev01").state == store::TripletState::available);
  CHECK(t.events() == events_before);
  CHECK(module->nvm().aliauth.empty());
  CHECK(module->stats().nvm_writes == 0);
}
