// SPDX-License-Identifier: MIT
// Ledger::issue_secret, a credential server's one transaction per request (docs/enrollment.md),
// on both databases: the first module to ask binds the name, the same module asking again gets
// the same secret, another module is a clone, a module holding a name cannot take a second one;
// a factory-burned module is the same as a served one; servers racing never bind a name twice.
#include "store/ledger.hpp"
#include "unit/store/ledger_fixtures.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace iot;
using namespace iot::store;
using namespace iot::store::test;

namespace {

const Actor k_server{"serve-1", "serve", 777};

IssueRequest ask(const TripletKey& key, const std::string& imei) {
  IssueRequest r;
  r.key = key;
  r.imei = imei;
  r.iccid = "89860400000000000001";
  r.address = "10.1.2.3";
  r.actor = k_server;
  return r;
}

std::vector<Event> events_of(Ledger& ledger, const std::string& device_name) {
  return ledger.events(100, device_name).value();
}

} // namespace

LEDGER_TEST("issue: the first module binds the name, asking again is the same secret") {
  At at;
  auto ledger = open_or_die(at.location());
  const auto pool = rows(3);
  REQUIRE(ledger->import(pool, "a.csv", k_actor, false));
  const TripletKey dev0{pool[0].product_key, pool[0].device_name};

  auto first = ledger->issue_secret(ask(dev0, "869939451296205")).value();
  CHECK(first.outcome == IssueOutcome::issued);
  CHECK(first.secret == pool[0].secret);
  const auto record = ledger->find(dev0.device_name, dev0.product_key).value().at(0);
  CHECK(record.state == TripletState::burned);
  CHECK(record.imei == "869939451296205");
  CHECK(record.station == "serve-1");
  CHECK(record.burned_at_ms > 0);
  CHECK(totals(*ledger)[TripletState::available] == 2);

  auto again = ledger->issue_secret(ask(dev0, "869939451296205")).value();
  CHECK(again.outcome == IssueOutcome::again);
  CHECK(again.secret == pool[0].secret);

  const auto events = events_of(*ledger, dev0.device_name);
  int issued = 0;
  int repeated = 0;
  for (const auto& e : events) {
    CHECK(e.detail.find(pool[0].secret) == std::string::npos);
    if (e.action == "serve-issue") {
      issued += e.outcome == "issued" ? 1 : 0;
      repeated += e.outcome == "again" ? 1 : 0;
      CHECK(e.detail.find("from 10.1.2.3") != std::string::npos);
      CHECK(e.station == "serve-1");
    }
  }
  CHECK(issued == 1);
  CHECK(repeated == 1);
}

LEDGER_TEST("issue: a clone, a module with a name already, unknown names and product rows") {
  At at;
  auto ledger = open_or_die(at.location());
  const auto pool = rows(3);
  REQUIRE(ledger->import(pool, "a.csv", k_actor, false));
  const TripletKey dev0{pool[0].product_key, pool[0].device_name};
  const TripletKey dev1{pool[1].product_key, pool[1].device_name};
  REQUIRE(ledger->issue_secret(ask(dev0, "869939451296205")).value().outcome ==
          IssueOutcome::issued);

  // Another module asking for dev0: refused, recorded, nothing changed.
  auto clone = ledger->issue_secret(ask(dev0, "490154203237518")).value();
  CHECK(clone.outcome == IssueOutcome::clone);
  CHECK(clone.secret.empty());
  CHECK(clone.other_imei == "869939451296205");
  CHECK(ledger->find(dev0.device_name, dev0.product_key).value().at(0).imei == "869939451296205");
  bool alert = false;
  for (const auto& e : events_of(*ledger, dev0.device_name)) {
    alert = alert || (e.outcome == "clone" && e.imei == "490154203237518" &&
                      e.detail.find("IMEI 869939451296205") != std::string::npos);
  }
  CHECK(alert);

  // dev0's module asking for dev1 too: one module, one identity.
  auto taken = ledger->issue_secret(ask(dev1, "869939451296205")).value();
  CHECK(taken.outcome == IssueOutcome::module_taken);
  CHECK(taken.other_name == dev0.device_name);
  CHECK(taken.secret.empty());
  CHECK(ledger->find(dev1.device_name, dev1.product_key).value().at(0).state ==
        TripletState::available);

  // A name not in the pool writes nothing.
  const auto before = ledger->events(1000, std::nullopt).value().size();
  auto unknown = ledger->issue_secret(ask({pool[0].product_key, "nobody"}, "490154203237518"));
  CHECK(unknown.value().outcome == IssueOutcome::unknown);
  CHECK(ledger->events(1000, std::nullopt).value().size() == before);

  // A one-type-one-secret row holds a ProductSecret, not a DeviceSecret to hand out.
  auto product_rows = rows(1, "a1Product01");
  product_rows[0].scheme = core::Scheme::product;
  REQUIRE(ledger->import(product_rows, "p.csv", k_actor, false));
  auto product =
      ledger->issue_secret(ask({"a1Product01", product_rows[0].device_name}, "490154203237518"));
  CHECK(product.value().outcome == IssueOutcome::not_device);
  CHECK(product.value().secret.empty());
}

LEDGER_TEST("issue: a module burned at a station fetches its secret, another module is a clone") {
  At at;
  auto ledger = open_or_die(at.location());
  REQUIRE(ledger->import(rows(2), "a.csv", k_actor, false));
  auto claim = ledger->claim(request_for("861234567890123")).value().value();
  const TripletKey key{claim.record.product_key, claim.record.device_name};
  REQUIRE(ledger->mark_attempted(key, k_actor));
  REQUIRE(ledger->mark_burned(key, k_actor, "verified"));
  auto refetch = ledger->issue_secret(ask(key, "861234567890123")).value();
  CHECK(refetch.outcome == IssueOutcome::again); // seed §3: the secret went bad in the module
  CHECK(refetch.secret == claim.record.secret);
  CHECK(ledger->issue_secret(ask(key, "490154203237518")).value().outcome == IssueOutcome::clone);
  // And the other way round: a served triplet is no station's to claim for another module.
  const TripletKey other{claim.record.product_key,
                         claim.record.device_name == "dev1000" ? "dev1001" : "dev1000"};
  REQUIRE(ledger->issue_secret(ask(other, "869939451296205")).value().outcome ==
          IssueOutcome::issued);
  CHECK_FALSE(ledger->claim(request_for("862222222222222")).value().has_value()); // pool empty
}

LEDGER_TEST("issue: servers racing for one name bind it once, to one module") {
  At at;
  open_or_die(at.location())->import(rows(1), "a.csv", k_actor, false).value();
  const TripletKey key{rows(1)[0].product_key, rows(1)[0].device_name};
  constexpr int k_servers = 4;
  std::vector<std::unique_ptr<Ledger>> servers;
  for (int i = 0; i < k_servers; ++i) {
    servers.push_back(open_or_die(at.location()));
  }
  std::atomic<int> issued{0};
  std::atomic<int> clones{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < k_servers; ++i) {
    threads.emplace_back([&, i] {
      // Each server is asked by its own module (a distinct IMEI).
      const std::string imei = "86993945129620" + std::to_string(i);
      auto got = servers[static_cast<std::size_t>(i)]->issue_secret(ask(key, imei));
      if (!got) {
        ++errors;
      } else if (got->outcome == IssueOutcome::issued) {
        ++issued;
      } else if (got->outcome == IssueOutcome::clone) {
        ++clones;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(errors == 0);
  CHECK(issued == 1);
  CHECK(clones == k_servers - 1);
}
