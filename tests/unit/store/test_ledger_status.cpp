// SPDX-License-Identifier: MIT
// The shared cloud status check of `serve --status-refresh` (Ledger::claim_status_check and its
// kin) on both databases: of servers asking at once exactly one checks; a fresh check is not
// made again, a stale one is; a check in progress is the holder's until its lease ends; only
// the holder records; what it recorded reads back name for name.
#include "store/ledger.hpp"
#include "unit/store/ledger_fixtures.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace iot;
using namespace iot::store;
using namespace iot::store::test;

namespace {
constexpr std::int64_t k_t0 = 1'800'000'000'000; // ms
constexpr std::int64_t k_period = 60'000;
constexpr char k_pk[] = "a1B2c3D4e5F";

StatusCheck made_by(const std::string& holder, std::int64_t at, std::vector<std::string> disabled) {
  StatusCheck c;
  c.product_key = k_pk;
  c.holder = holder;
  c.checked_at_ms = at;
  c.checked = 120;
  c.missing = 2;
  c.disabled = std::move(disabled);
  return c;
}

bool claim(Ledger& ledger, const std::string& holder, std::int64_t now) {
  return ledger.claim_status_check(k_pk, holder, now, now - k_period, now + 10'000).value();
}
} // namespace

LEDGER_TEST("status check: claimed once, recorded by its holder, read back by everyone") {
  At at;
  auto a = open_or_die(at.location());
  auto b = open_or_die(at.location());
  CHECK_FALSE(a->status_check(k_pk).value());

  CHECK(claim(*a, "serve-1/10", k_t0));
  CHECK_FALSE(claim(*b, "serve-2/20", k_t0 + 1)); // in progress: serve-1's
  // Only the holder records: serve-2's result is dropped.
  REQUIRE(b->record_status_check(made_by("serve-2/20", k_t0 + 2, {"intruder"})));
  REQUIRE(a->record_status_check(made_by("serve-1/10", k_t0 + 3, {"dev-b", "dev-a"})));

  const auto read = b->status_check(k_pk).value();
  REQUIRE(read);
  CHECK(read->holder == "serve-1/10");
  CHECK(read->checked_at_ms == k_t0 + 3);
  CHECK(read->lease_until_ms == 0);
  CHECK(read->checked == 120);
  CHECK(read->missing == 2);
  CHECK(read->disabled == std::vector<std::string>{"dev-b", "dev-a"});

  // Fresh: nobody checks again within the period; once it is stale, one does.
  CHECK_FALSE(claim(*b, "serve-2/20", k_t0 + k_period));
  CHECK(claim(*b, "serve-2/20", k_t0 + k_period + 4));
  CHECK_FALSE(claim(*a, "serve-1/10", k_t0 + k_period + 5));
  // A server with a shorter period finds the same check stale sooner.
  REQUIRE(b->record_status_check(made_by("serve-2/20", k_t0 + k_period + 6, {})));
  CHECK_FALSE(
      a->claim_status_check(k_pk, "s", k_t0 + k_period + 10, k_t0 + k_period + 6, 0).value());
  CHECK(a->claim_status_check(
             k_pk, "s", k_t0 + k_period + 10, k_t0 + k_period + 7, k_t0 + k_period + 20)
            .value());
  // An empty disabled list reads back empty, not as one empty name.
  REQUIRE(a->record_status_check(made_by("s", k_t0 + k_period + 11, {})));
  CHECK(a->status_check(k_pk).value()->disabled.empty());
}

LEDGER_TEST("status check: a failed or abandoned check waits for its lease, then anyone may") {
  At at;
  auto a = open_or_die(at.location());
  auto b = open_or_die(at.location());
  CHECK(claim(*a, "serve-1/10", k_t0));
  // The holder died: nobody else until the lease (10 s) ends.
  CHECK_FALSE(claim(*b, "serve-2/20", k_t0 + 9'999));
  CHECK(claim(*b, "serve-2/20", k_t0 + 10'000));
  // serve-2's check failed: it defers the next one a minute; nobody claims before.
  REQUIRE(b->hold_status_check(k_pk, "serve-2/20", k_t0 + 70'000));
  CHECK_FALSE(claim(*a, "serve-1/10", k_t0 + 69'999));
  CHECK(claim(*a, "serve-1/10", k_t0 + 70'000));
  // A defer by a server that no longer holds it changes nothing.
  REQUIRE(b->hold_status_check(k_pk, "serve-2/20", k_t0 + 999'999));
  CHECK(a->status_check(k_pk).value()->lease_until_ms == k_t0 + 80'000);
  CHECK(a->status_check(k_pk).value()->checked_at_ms == 0); // no check ever completed
}

LEDGER_TEST("status check: of eight servers claiming at once, exactly one checks") {
  At at;
  {
    auto first = open_or_die(at.location()); // creates the schema before the race
  }
  for (int round = 0; round < 5; ++round) {
    std::vector<std::unique_ptr<Ledger>> servers;
    for (int i = 0; i < 8; ++i) {
      servers.push_back(open_or_die(at.location()));
    }
    std::atomic<int> winners{0};
    std::atomic<int> failures{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    const std::int64_t now = k_t0 + round * (k_period + 20'000);
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] {
        while (!go) {
          std::this_thread::yield();
        }
        auto won = servers[static_cast<std::size_t>(i)]->claim_status_check(
            k_pk, "serve-" + std::to_string(i), now, now - k_period, now + 10'000);
        if (!won) {
          ++failures;
        } else if (*won) {
          ++winners;
        }
      });
    }
    go = true;
    for (auto& t : threads) {
      t.join();
    }
    CHECK(failures == 0);
    CHECK(winners == 1);
  }
}

TEST_CASE("status check: a ledger from before it (schema 4) is migrated to have it") {
  SqliteAt at;
  open_or_die(at.location()); // the ledger, at this build's schema
  // Back to schema 4, as an older iotfleet left it.
  REQUIRE(at.exec("DROP TABLE status_checks; PRAGMA user_version = 4"));
  {
    auto read = open_or_die(at.location(), LedgerOptions(OpenMode::read));
    CHECK(read->schema_version() == 4);
    CHECK_FALSE(read->status_check(k_pk).value()); // read as what it holds: no check
    const auto claimed = read->claim_status_check(k_pk, "s", k_t0, k_t0, k_t0 + 1);
    REQUIRE_FALSE(claimed);
    CHECK(claimed.error().message.find("older than the shared status check") != std::string::npos);
  }
  auto ledger = open_or_die(at.location(), LedgerOptions(OpenMode::existing));
  CHECK(ledger->schema_version() == ledger_schema_version());
  CHECK(claim(*ledger, "s", k_t0));
}

TEST_CASE("pg: a station role granted before the status check may use it once migrated") {
  PostgresAt at;
  open_or_die(at.location()); // the ledger, at this build's schema
  // Back to schema 4, with a station role granted what scripts/ledger-roles.sql granted then.
  const std::string role = "st_" + at.schema;
  REQUIRE(at.exec("DROP TABLE status_checks; UPDATE ledger_schema SET version = 4; "
                  "DROP ROLE IF EXISTS " +
                  role + "; CREATE ROLE " + role + " LOGIN; GRANT USAGE ON SCHEMA " + at.schema +
                  " TO " + role + "; GRANT SELECT ON ledger_schema TO " + role +
                  "; GRANT SELECT, INSERT, UPDATE ON triplets, registrations, recreations TO " +
                  role + "; GRANT SELECT, INSERT ON events TO " + role));
  {
    auto admin = open_or_die(at.location(), LedgerOptions(OpenMode::existing)); // migrates
    CHECK(admin->schema_version() == ledger_schema_version());
  }
  auto station_url = at.location();
  station_url.replace(station_url.find("iotfleet@"), std::string("iotfleet").size(), role);
  {
    auto station = open_or_die(station_url, LedgerOptions(OpenMode::existing));
    CHECK(claim(*station, "serve-1/10", k_t0));
    REQUIRE(station->record_status_check(made_by("serve-1/10", k_t0 + 1, {"dev-x"})));
    CHECK(station->status_check(k_pk).value()->disabled == std::vector<std::string>{"dev-x"});
    // And nothing more: a station role deletes nothing.
    CHECK_FALSE(at.exec("SET ROLE " + role + "; DELETE FROM status_checks"));
  }
  REQUIRE(at.exec("DROP OWNED BY " + role + "; DROP ROLE " + role));
}
