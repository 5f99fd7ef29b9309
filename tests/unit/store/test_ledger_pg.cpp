// SPDX-License-Identifier: MIT
// What only the PostgreSQL ledger has: a URL, a server that may be unreachable or restarted, a
// schema many stations create and migrate at once, locks another station holds. The cases every
// ledger must pass are in test_ledger.cpp (LEDGER_TEST), run on both databases.
#include "store/ledger.hpp"
#include "store/pg.hpp"
#include "unit/store/ledger_fixtures.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace iot;
using namespace iot::store;
using namespace iot::store::test;

namespace {

LedgerOptions mode(OpenMode m) {
  return LedgerOptions(m);
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("pg: ?N parameters become $N, quoted text is left alone") {
  CHECK(pg::dollar_parameters("SELECT a FROM t WHERE b = ?1 AND c IN (?2, ?10)") ==
        "SELECT a FROM t WHERE b = $1 AND c IN ($2, $10)");
  CHECK(pg::dollar_parameters("SELECT '?1', \"?2\", 'it''s ?3' WHERE x = ?4") ==
        "SELECT '?1', \"?2\", 'it''s ?3' WHERE x = $4");
  CHECK(pg::dollar_parameters("a ? b") == "a ? b");
}

TEST_CASE("pg: a password in a URL never reaches a message") {
  CHECK(pg::redact_url("postgresql://station:hunter2@db.line1:5432/iot") ==
        "postgresql://station:***@db.line1:5432/iot");
  CHECK(pg::redact_url("postgresql://db.line1/iot?user=s&password=hunter2&sslmode=verify-full") ==
        "postgresql://db.line1/iot?user=s&password=***&sslmode=verify-full");
  CHECK(pg::redact_url("postgresql://station@db.line1/iot") == "postgresql://station@db.line1/iot");
  CHECK(pg::redact_url("host=db password=hunter2 dbname=iot") == "host=db password=*** dbname=iot");

  std::vector<std::string> warnings;
  LedgerOptions options(OpenMode::create);
  options.warn = [&](const std::string& w) { warnings.push_back(w); };
  auto ledger = open_ledger("postgresql://iotfleet:hunter2@127.0.0.1:1/iotfleet", options);
  REQUIRE_FALSE(ledger.has_value());
  CHECK_FALSE(contains(ledger.error().message, "hunter2"));
  REQUIRE(warnings.size() == 1);
  CHECK(contains(warnings[0], "~/.pgpass"));
  CHECK_FALSE(contains(warnings[0], "hunter2"));
}

TEST_CASE(
    "pg: an unreachable server is a network error, a refusal auth or config, a bad URL config") {
  auto down = open_ledger("postgresql://iotfleet@127.0.0.1:1/iotfleet", mode(OpenMode::read));
  REQUIRE_FALSE(down.has_value());
  CHECK(down.error().kind == ErrorKind::network);
  CHECK(contains(down.error().message, "cannot reach the PostgreSQL server"));

  // The server answers but refuses: an unknown role is auth, a missing database config.
  const auto server = test_server_url();
  const auto at_host = server.find('@');
  const auto slash = server.rfind('/');
  auto role =
      open_ledger("postgresql://no_such_role" + server.substr(at_host), mode(OpenMode::read));
  REQUIRE_FALSE(role.has_value());
  CHECK(role.error().kind == ErrorKind::auth);
  CHECK(contains(role.error().message, "pg_hba.conf"));
  auto database = open_ledger(server.substr(0, slash) + "/no_such_database", mode(OpenMode::read));
  REQUIRE_FALSE(database.has_value());
  CHECK(database.error().kind == ErrorKind::config);
  CHECK(contains(database.error().message, "createdb"));

  auto bad = open_ledger("postgresql://iotfleet@127.0.0.1:1/iotfleet?nosuchoption=1",
                         mode(OpenMode::read));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().kind == ErrorKind::config);
  CHECK(contains(bad.error().message, "postgresql://USER@HOST"));
}

TEST_CASE("pg: created on first use and versioned, existing and read need a ledger there") {
  PostgresAt at;
  for (auto m : {OpenMode::existing, OpenMode::read}) {
    auto missing = open_ledger(at.location(), mode(m));
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().kind == ErrorKind::config);
    CHECK(contains(missing.error().message, "no ledger in this database yet"));
  }
  REQUIRE(open_or_die(at.location())->import(rows(3), "a.csv", k_actor, false));
  auto reader = open_or_die(at.location(), mode(OpenMode::read));
  CHECK(reader->find("dev1001", std::nullopt).value().size() == 1);
  // A reader changes nothing.
  auto refused = reader->import(rows(4), "b.csv", k_actor, false);
  REQUIRE_FALSE(refused.has_value());
  CHECK(contains(refused.error().message, "reading only"));
  CHECK(open_or_die(at.location(), mode(OpenMode::existing))->counts().value().size() == 1);
}

TEST_CASE("pg: refuses a database that is not a ledger, and a newer schema") {
  SUBCASE("someone else's tables") {
    PostgresAt at;
    REQUIRE(at.exec("CREATE TABLE orders (id int)"));
    auto ledger = open_ledger(at.location());
    REQUIRE_FALSE(ledger.has_value());
    CHECK(ledger.error().kind == ErrorKind::io);
    CHECK(contains(ledger.error().message, "not an iotfleet ledger"));
  }
  SUBCASE("newer schema") {
    PostgresAt at;
    (void)open_or_die(at.location());
    REQUIRE(at.exec("UPDATE ledger_schema SET version = 99"));
    for (auto m : {OpenMode::create, OpenMode::read}) {
      auto ledger = open_ledger(at.location(), mode(m));
      REQUIRE_FALSE(ledger.has_value());
      CHECK(ledger.error().kind == ErrorKind::config);
      CHECK(contains(ledger.error().message, "newer"));
    }
  }
}

TEST_CASE("pg: stations starting together create the schema once") {
  PostgresAt at;
  std::atomic<int> failures{0};
  std::vector<std::thread> stations;
  for (int i = 0; i < 6; ++i) {
    stations.emplace_back([&] {
      auto ledger = open_ledger(at.location());
      if (!ledger) {
        ++failures;
      }
    });
  }
  for (auto& s : stations) {
    s.join();
  }
  CHECK(failures == 0);
  CHECK(at.exec("DO $$ BEGIN IF (SELECT count(*) FROM ledger_schema) <> 1 OR (SELECT "
                "max(version) FROM ledger_schema) <> " +
                std::to_string(ledger_schema_version()) +
                " THEN RAISE EXCEPTION 'schema table wrong'; END IF; END $$"));
}

TEST_CASE("pg: two stations importing the same file at once: the second is a no-op") {
  PostgresAt at;
  (void)open_or_die(at.location());
  const auto batch = rows(400);
  std::vector<ImportSummary> summaries(2);
  std::vector<std::thread> stations;
  for (int i = 0; i < 2; ++i) {
    stations.emplace_back([&, i] {
      auto ledger = open_or_die(at.location());
      const Actor actor{"station-" + std::to_string(i + 1), "", 100 + i};
      summaries[static_cast<std::size_t>(i)] =
          ledger->import(batch, "batch.csv", actor, false).value();
    });
  }
  for (auto& s : stations) {
    s.join();
  }
  CHECK(summaries[0].added + summaries[1].added == 400);
  CHECK(summaries[0].unchanged + summaries[1].unchanged == 400);
  CHECK(summaries[0].conflicts.empty());
  CHECK(summaries[1].conflicts.empty());
  auto ledger = open_or_die(at.location());
  std::int64_t total = 0;
  const auto counts = ledger->counts().value();
  for (const auto& c : counts) {
    total += c.count;
  }
  CHECK(total == 400);
}

TEST_CASE("pg: a connection the server dropped is opened again, nothing lost or doubled") {
  PostgresAt at;
  // Its own application_name, so only this test's connection is cut.
  const auto location = at.location() + "&application_name=" + at.schema;
  auto ledger = open_or_die(location);
  REQUIRE(ledger->import(rows(3), "a.csv", k_actor, false));
  ClaimRequest request;
  request.imei = "861234567890123";
  request.actor = k_actor;
  REQUIRE(ledger->claim(request).value());
  // OFFSET 0: the name is matched before anything is terminated.
  const std::string cut_sql =
      "DO $$ BEGIN IF (SELECT count(*) FROM (SELECT pid FROM pg_stat_activity WHERE "
      "application_name = '" +
      at.schema +
      "' OFFSET 0) AS ours WHERE pg_terminate_backend(ours.pid)) <> 1 THEN RAISE EXCEPTION 'the "
      "ledger had no connection to cut'; END IF; END $$";
  const auto cut = at.exec(cut_sql);
  REQUIRE_MESSAGE(cut.has_value(), (cut ? "" : cut.error().message));
  // The next change reconnects and is done once.
  auto again = ledger->claim(request);
  REQUIRE_MESSAGE(again.has_value(), (again ? "" : again.error().message));
  REQUIRE(again->has_value());
  CHECK((*again)->kind == ClaimKind::resumed);
  CHECK((*again)->record.device_name == "dev1000");
  // A reader too: cut again, and the next read reconnects.
  const auto cut_again = at.exec(cut_sql);
  REQUIRE_MESSAGE(cut_again.has_value(), (cut_again ? "" : cut_again.error().message));
  const auto claimed = ledger->find_by_imei("861234567890123");
  REQUIRE_MESSAGE(claimed.has_value(), (claimed ? "" : claimed.error().message));
  REQUIRE(*claimed);
  CHECK((*claimed)->device_name == "dev1000");
}

TEST_CASE("pg: a lock another session holds fails the step after lock_timeout, with the fix") {
  PostgresAt at;
  {
    auto ledger = open_or_die(at.location());
    REQUIRE(ledger->import(rows(2), "a.csv", k_actor, false));
  }
  LedgerOptions quick(OpenMode::existing);
  quick.busy_timeout_ms = 300;
  auto ledger = open_or_die(at.location(), quick);
  auto holder = pg::Database::connect(at.location(), {}).value();
  REQUIRE(holder.exec("BEGIN; LOCK TABLE triplets IN EXCLUSIVE MODE"));
  ClaimRequest request;
  request.imei = "861234567890123";
  request.actor = k_actor;
  const auto start = std::chrono::steady_clock::now();
  auto blocked = ledger->claim(request);
  const auto waited = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(blocked.has_value());
  CHECK(blocked.error().kind == ErrorKind::io);
  CHECK(contains(blocked.error().message, "another station or an operator holds"));
  CHECK(waited >= std::chrono::milliseconds(250));
  REQUIRE(holder.exec("ROLLBACK"));
  CHECK(ledger->claim(request).value().has_value()); // nothing was left half done
}

TEST_CASE("pg: a station's role claims, burns and returns a claim, only the owner releases") {
  PostgresAt at;
  {
    auto ledger = open_or_die(at.location());
    REQUIRE(ledger->import(rows(3), "a.csv", k_actor, false));
  }
  // A role like scripts/ledger-roles.sql's: it may change the pool's rows, it owns nothing.
  const std::string role = "st_" + at.schema;
  REQUIRE(at.exec("DROP ROLE IF EXISTS " + role + "; CREATE ROLE " + role + " LOGIN; " +
                  "GRANT USAGE ON SCHEMA " + at.schema + " TO " + role + "; " +
                  "GRANT SELECT ON ledger_schema TO " + role + "; " +
                  "GRANT SELECT, INSERT, UPDATE ON triplets, registrations, recreations TO " +
                  role + "; GRANT SELECT, INSERT ON events TO " + role));
  auto station_url = at.location();
  station_url.replace(station_url.find("iotfleet@"), std::string("iotfleet").size(), role);
  {
    auto station = open_or_die(station_url, LedgerOptions(OpenMode::existing));
    auto c = station->claim(request_for("861111111111116")).value().value();
    const TripletKey claimed{c.record.product_key, c.record.device_name};
    CHECK(station->release(claimed, k_actor, "never written", false)); // nothing reached it
    c = station->claim(request_for("861111111111116")).value().value();
    REQUIRE(station->mark_attempted(claimed, k_actor));
    auto refused = station->release(claimed, k_actor, "module scrapped", false);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == ErrorKind::auth);
    CHECK(contains(refused.error().message, "needs the ledger's admin role"));
    const auto b = station->claim(request_for("862222222222222")).value().value();
    const TripletKey burned{b.record.product_key, b.record.device_name};
    REQUIRE(station->mark_attempted(burned, k_actor));
    REQUIRE(station->mark_burned(burned, k_actor, ""));
    CHECK_FALSE(station->release(burned, k_actor, "x", true).has_value());
    CHECK(totals(*station)[TripletState::bound] == 1);
    CHECK(totals(*station)[TripletState::burned] == 1);
    // The owner (the admin role) releases both.
    auto admin = open_or_die(at.location(), LedgerOptions(OpenMode::existing));
    CHECK(admin->release(claimed, k_actor, "module scrapped", false));
    CHECK(admin->release(burned, k_actor, "module destroyed", true));
    CHECK(totals(*admin)[TripletState::available] == 3);
  }
  REQUIRE(at.exec("DROP OWNED BY " + role + "; DROP ROLE " + role));
}

TEST_CASE("pg: each statement is prepared once per connection, and again after a reconnect") {
  PostgresAt at;
  auto db = pg::Database::connect(at.location(), {}).value();
  const auto prepared_here = [&]() {
    auto s = pg::Statement::query(
                 db, "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'iotfleet_%'")
                 .value();
    REQUIRE(s.step().value());
    return s.integer(0);
  };
  const auto add = [&](std::int64_t a, std::int64_t b) {
    auto s = pg::Statement::query(db, "SELECT ?1::bigint + ?2", a, b).value();
    REQUIRE(s.step().value());
    return s.integer(0);
  };
  CHECK(add(2, 3) == 5);
  CHECK(add(40, 2) == 42);     // the same statement, other values
  CHECK(prepared_here() == 2); // the sum and the count, each once
  CHECK(add(1, 1) == 2);
  CHECK(prepared_here() == 2);
  // A statement the server refuses to prepare fails with the server's reason.
  auto bad = pg::Statement::query(db, "SELECT no_such_column FROM ledger_schema");
  REQUIRE(bad.has_value());
  auto stepped = bad->step();
  REQUIRE_FALSE(stepped.has_value());
  CHECK(contains(stepped.error().message, "no_such_column"));
  // The server drops the connection: the statements are prepared again on the new one.
  auto pid = pg::Statement::query(db, "SELECT pg_backend_pid()").value();
  REQUIRE(pid.step().value());
  auto killer = pg::Database::connect(at.location(), {}).value();
  auto cut =
      pg::Statement::query(killer, "SELECT pg_terminate_backend(?1::int)", pid.integer(0)).value();
  REQUIRE(cut.step().value());
  REQUIRE(cut.integer(0) == 1);
  CHECK(add(7, 8) == 15); // reconnected: the name of the old connection is not used
  CHECK(prepared_here() == 2);
}
