// SPDX-License-Identifier: MIT
#include "store/ledger.hpp"
#include "store/sqlite.hpp"
#include "unit/store/ledger_fixtures.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>

namespace fs = std::filesystem;
using namespace iot;
using namespace iot::store;
using namespace iot::store::test;

namespace {

bool contains_any(const std::vector<std::string>& texts, std::string_view part) {
  for (const auto& t : texts) {
    if (t.find(part) != std::string::npos) {
      return true;
    }
  }
  return false;
}

} // namespace

TEST_CASE("ledger: a new ledger file is 0600, versioned, and reopens") {
  TempDir dir;
  const auto path = dir.path / "ledger.db";
  {
    auto ledger = open_or_die(path);
    REQUIRE(ledger->import(rows(3), "a.csv", k_actor, false).value().added == 3);
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto again = open_or_die(path);
  CHECK(totals(*again)[TripletState::available] == 3);
  CHECK(ledger_schema_version() >= 1);
}

TEST_CASE("ledger: refuses files that are not a ledger, and a newer schema") {
  TempDir dir;
  SUBCASE("text file") {
    std::ofstream(dir.path / "x.db") << "hello, this is not a database at all, really not";
    auto ledger = open_ledger(dir.path / "x.db");
    REQUIRE_FALSE(ledger.has_value());
    CHECK(ledger.error().kind == ErrorKind::io);
  }
  SUBCASE("someone else's sqlite database") {
    auto db = sqlite::Database::open(dir.path / "other.db", sqlite::Access::create).value();
    REQUIRE(db.exec("CREATE TABLE t (x)").has_value());
    auto ledger = open_ledger(dir.path / "other.db");
    REQUIRE_FALSE(ledger.has_value());
    CHECK(ledger.error().message.find("not an iotfleet ledger") != std::string::npos);
  }
  SUBCASE("newer schema") {
    (void)open_or_die(dir.path / "new.db");
    {
      auto db = sqlite::Database::open(dir.path / "new.db", sqlite::Access::read_write).value();
      REQUIRE(db.exec("PRAGMA user_version = 99").has_value());
    }
    auto ledger = open_ledger(dir.path / "new.db");
    REQUIRE_FALSE(ledger.has_value());
    CHECK(ledger.error().kind == ErrorKind::config);
    CHECK(ledger.error().message.find("newer") != std::string::npos);
  }
  SUBCASE("missing directory") {
    auto ledger = open_ledger(dir.path / "nope" / "l.db");
    REQUIRE_FALSE(ledger.has_value());
    CHECK(ledger.error().message.find("does not exist") != std::string::npos);
  }
}

LEDGER_TEST("ledger: import is idempotent and all-or-nothing on conflicts") {
  At at;
  auto ledger = open_or_die(at.location());
  auto first = ledger->import(rows(5), "a.csv", k_actor, false).value();
  CHECK(first.added == 5);
  CHECK(first.committed);
  auto again = ledger->import(rows(5), "a.csv", k_actor, false).value();
  CHECK(again.added == 0);
  CHECK(again.unchanged == 5);

  auto changed = rows(7);
  changed[2].secret = "AnotherSecretValue";
  auto conflict = ledger->import(changed, "b.csv", k_actor, false).value();
  CHECK_FALSE(conflict.committed);
  REQUIRE(conflict.conflicts.size() == 1);
  CHECK(conflict.conflicts[0].line == 3);
  CHECK(conflict.conflicts[0].message.find("dev1002") != std::string::npos);
  CHECK(conflict.conflicts[0].message.find("AnotherSecretValue") == std::string::npos);
  CHECK(totals(*ledger)[TripletState::available] == 5); // nothing from b.csv

  auto skipped = ledger->import(changed, "b.csv", k_actor, true).value();
  CHECK(skipped.committed);
  CHECK(skipped.added == 2);
  CHECK(totals(*ledger)[TripletState::available] == 7);
  CHECK(ledger->find("dev1002", std::nullopt).value().at(0).secret ==
        rows(3)[2].secret); // the ledger's secret wins
}

LEDGER_TEST("ledger: claim, attempt, burn, the same IMEI always gets the same triplet") {
  At at;
  auto ledger = open_or_die(at.location());
  REQUIRE(ledger->import(rows(3), "a.csv", k_actor, false));

  auto c1 = ledger->claim(request_for("861234567890123")).value();
  REQUIRE(c1);
  CHECK(c1->kind == ClaimKind::fresh);
  CHECK(c1->record.device_name == "dev1000");
  CHECK(c1->record.state == TripletState::claimed);
  CHECK(c1->record.imei == "861234567890123");
  const TripletKey key{c1->record.product_key, c1->record.device_name};

  auto c2 = ledger->claim(request_for("861234567890123")).value();
  REQUIRE(c2);
  CHECK(c2->kind == ClaimKind::resumed);
  CHECK(c2->record.device_name == "dev1000");

  REQUIRE(ledger->mark_attempted(key, k_actor));
  CHECK(ledger->find("dev1000", std::nullopt).value().at(0).state == TripletState::bound);
  // Once a write was attempted nothing but an operator frees it.
  auto unclaimed = ledger->unclaim(key, k_actor, "test");
  REQUIRE_FALSE(unclaimed.has_value());
  CHECK(unclaimed.error().message.find("bound") != std::string::npos);

  // Another fixture, same module (re-seated): same triplet, attempts counted.
  Actor other{"station-1", "/dev/ttyUSB5", 4242};
  auto c3 = ledger->claim(request_for("861234567890123", other)).value();
  REQUIRE(c3);
  CHECK(c3->kind == ClaimKind::resumed);
  CHECK(c3->record.device_name == "dev1000");
  CHECK(c3->record.port == "/dev/ttyUSB5");
  REQUIRE(ledger->mark_attempted(key, other));
  REQUIRE(ledger->mark_burned(key, other, "read-back matched"));
  auto burned = ledger->find("dev1000", std::nullopt).value().at(0);
  CHECK(burned.state == TripletState::burned);
  CHECK(burned.attempts == 2);
  CHECK(burned.burned_at_ms > 0);

  auto c4 = ledger->claim(request_for("861234567890123")).value();
  REQUIRE(c4);
  CHECK(c4->kind == ClaimKind::burned);
  CHECK(c4->record.device_name == "dev1000");

  // A second module gets the next triplet, never the first one.
  auto c5 = ledger->claim(request_for("869999999999999")).value();
  REQUIRE(c5);
  CHECK(c5->record.device_name == "dev1001");

  // mark_burned needs an attempt first
  auto early = ledger->mark_burned({c5->record.product_key, "dev1001"}, k_actor, "");
  CHECK_FALSE(early.has_value());
}

LEDGER_TEST("ledger: unclaim returns a never-written triplet, release needs a reason and force "
            "for burned ones") {
  At at;
  auto ledger = open_or_die(at.location());
  REQUIRE(ledger->import(rows(2), "a.csv", k_actor, false));
  auto c = ledger->claim(request_for("861111111111116")).value().value();
  const TripletKey key{c.record.product_key, c.record.device_name};
  REQUIRE(ledger->unclaim(key, k_actor, "module removed before the write"));
  CHECK(totals(*ledger)[TripletState::available] == 2);
  CHECK_FALSE(ledger->find_by_imei("861111111111116").value().has_value());

  c = ledger->claim(request_for("861111111111116")).value().value();
  REQUIRE(ledger->mark_attempted(key, k_actor));
  auto released = ledger->release(key, k_actor, "module scrapped after a failed write", false);
  REQUIRE(released.has_value());
  CHECK(released->imei == "861111111111116");
  CHECK(totals(*ledger)[TripletState::available] == 2);

  c = ledger->claim(request_for("862222222222222")).value().value();
  REQUIRE(ledger->mark_attempted({c.record.product_key, c.record.device_name}, k_actor));
  REQUIRE(ledger->mark_burned({c.record.product_key, c.record.device_name}, k_actor, ""));
  auto refused = ledger->release({c.record.product_key, c.record.device_name}, k_actor, "x", false);
  CHECK_FALSE(refused.has_value());
  CHECK(ledger->release({c.record.product_key, c.record.device_name}, k_actor, "x", true));

  auto events = ledger->events(100, std::nullopt).value();
  bool saw_reason = false;
  for (const auto& e : events) {
    saw_reason =
        saw_reason || (e.action == "release" && e.detail.find("scrapped") != std::string::npos &&
                       e.imei == "861111111111116");
    for (const auto& row : rows(2)) {
      CHECK(e.detail.find(row.secret) == std::string::npos);
    }
  }
  CHECK(saw_reason);
}

LEDGER_TEST("ledger: --name-from imei claims exactly the DeviceName asked for") {
  At at;
  auto ledger = open_or_die(at.location());
  auto list = rows(3);
  list[1].device_name = "861234567890123";
  REQUIRE(ledger->import(list, "a.csv", k_actor, false));
  auto req = request_for("861234567890123");
  req.device_name = "861234567890123";
  auto c = ledger->claim(req).value();
  REQUIRE(c);
  CHECK(c->record.device_name == "861234567890123");

  auto missing = request_for("869999999999999");
  missing.device_name = "869999999999999";
  CHECK_FALSE(ledger->claim(missing).value().has_value());

  // The row exists but another IMEI holds it.
  auto taken = request_for("865555555555555");
  taken.device_name = "861234567890123";
  auto refused = ledger->claim(taken);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::module);
  CHECK(refused.error().message.find("pool release") != std::string::npos);
}

LEDGER_TEST("ledger: an empty pool gives nullopt, product filter is honoured") {
  At at;
  auto ledger = open_or_die(at.location());
  REQUIRE(ledger->import(rows(1, "pkAAAAAAAAA"), "a.csv", k_actor, false));
  auto other = request_for("861234567890123");
  other.product_key = "pkBBBBBBBBB";
  CHECK_FALSE(ledger->claim(other).value().has_value());
  CHECK(ledger->claim(request_for("861234567890123")).value().has_value());
  CHECK_FALSE(ledger->claim(request_for("869999999999999")).value().has_value());
}

LEDGER_TEST("ledger: a module burned at one station is already provisioned at another") {
  At at;
  auto station_a = open_or_die(at.location());
  auto station_b = open_or_die(at.location());
  REQUIRE(station_a->import(rows(3), "a.csv", k_actor, false));
  const Actor a{"station-a", "/dev/ttyUSB0", 111};
  const Actor b{"station-b", "/dev/ttyUSB3", 222};
  auto first = station_a->claim(request_for("861234567890123", a)).value().value();
  const TripletKey key{first.record.product_key, first.record.device_name};
  REQUIRE(station_a->mark_attempted(key, a));
  REQUIRE(station_a->mark_burned(key, a, "verified"));
  // Plugged into station B: the same identity, nothing consumed.
  auto moved = station_b->claim(request_for("861234567890123", b)).value().value();
  CHECK(moved.kind == ClaimKind::burned);
  CHECK(moved.record.device_name == first.record.device_name);
  CHECK(moved.record.station == "station-a");
  CHECK(totals(*station_b)[TripletState::available] == 2);
  // Station B cannot release what station A holds unless it says why (the operator's step).
  CHECK(station_b->expire_claims(b, [](std::int64_t) { return false; }).value() == 0);
}

LEDGER_TEST("ledger: a live process holding an IMEI's claim blocks another process") {
  At at;
  auto ledger = open_or_die(at.location());
  REQUIRE(ledger->import(rows(2), "a.csv", k_actor, false));
  Actor me{"station-1", "/dev/ttyUSB0", static_cast<std::int64_t>(::getpid())};
  REQUIRE(ledger->claim(request_for("861234567890123", me)).value());
  Actor other{"station-1", "/dev/ttyUSB1", static_cast<std::int64_t>(::getpid()) + 1000000};
  auto refused = ledger->claim(request_for("861234567890123", other));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("being burned right now") != std::string::npos);
}

LEDGER_TEST("ledger: expire_claims frees claims of dead processes, never bound triplets") {
  At at;
  auto ledger = open_or_die(at.location());
  REQUIRE(ledger->import(rows(3), "a.csv", k_actor, false));
  Actor dead{"station-1", "/dev/ttyUSB0", 999001};
  Actor alive{"station-1", "/dev/ttyUSB1", 999002};
  auto a = ledger->claim(request_for("861111111111116", dead)).value().value();
  auto b = ledger->claim(request_for("862222222222222", dead)).value().value();
  auto c = ledger->claim(request_for("863333333333333", alive)).value().value();
  REQUIRE(ledger->mark_attempted({b.record.product_key, b.record.device_name}, dead));
  auto expired = ledger->expire_claims(k_actor, [](std::int64_t pid) { return pid == 999002; });
  REQUIRE(expired.has_value());
  CHECK(*expired == 1);
  auto t = totals(*ledger);
  CHECK(t[TripletState::available] == 1);
  CHECK(t[TripletState::bound] == 1);
  CHECK(t[TripletState::claimed] == 1);
  // Another station's claims are not ours to expire.
  CHECK(ledger->expire_claims({"station-2", "", 1}, [](std::int64_t) { return false; }).value() ==
        0);
}

LEDGER_TEST("ledger: concurrent claims from many threads and connections never share a triplet") {
  At at;
  const auto path = at.location();
  constexpr int k_triplets = 120;
  open_or_die(path)->import(rows(k_triplets), "a.csv", k_actor, false).value();

  constexpr int k_connections = 3;
  constexpr int k_threads_per_connection = 4;
  std::vector<std::unique_ptr<Ledger>> ledgers;
  for (int i = 0; i < k_connections; ++i) {
    ledgers.push_back(open_or_die(path));
  }
  std::mutex mutex;
  std::multiset<std::string> claimed;
  std::atomic<int> next_imei{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < k_connections; ++c) {
    for (int t = 0; t < k_threads_per_connection; ++t) {
      threads.emplace_back([&, c, t] {
        Actor actor{"station-1", "port" + std::to_string(t), 100 + c};
        for (;;) {
          const auto imei = "86" + std::to_string(1000000000000 + next_imei++);
          auto claim = ledgers[static_cast<std::size_t>(c)]->claim(request_for(imei, actor));
          if (!claim) {
            ++errors;
            return;
          }
          if (!*claim) {
            return; // pool empty
          }
          const TripletKey key{(*claim)->record.product_key, (*claim)->record.device_name};
          if (!ledgers[static_cast<std::size_t>(c)]->mark_attempted(key, actor)) {
            ++errors;
          }
          std::lock_guard lock(mutex);
          claimed.insert((*claim)->record.device_name);
        }
      });
    }
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(errors == 0);
  CHECK(claimed.size() == k_triplets);
  CHECK(std::set<std::string>(claimed.begin(), claimed.end()).size() == k_triplets);
  CHECK(totals(*ledgers[0])[TripletState::bound] == k_triplets);
}

LEDGER_TEST("ledger: the audit trail is append-only") {
  At at;
  const auto path = at.location();
  open_or_die(path)->import(rows(1), "a.csv", k_actor, false).value();
  std::vector<std::string> refused = {"DELETE FROM events", "UPDATE events SET detail = 'x'"};
  if constexpr (std::is_same_v<At, PostgresAt>) {
    refused.emplace_back("TRUNCATE events");
  }
  for (const auto& sql : refused) {
    CAPTURE(sql);
    const auto done = at.exec(sql);
    REQUIRE_FALSE(done.has_value());
    CHECK(done.error().message.find("append-only") != std::string::npos);
  }
}

LEDGER_TEST("ledger: a dry-run claim says what would happen and changes nothing") {
  At at;
  auto ledger = open_or_die(at.location());
  REQUIRE(ledger->import(rows(2), "a.csv", k_actor, false));
  auto req = request_for("861234567890123");
  req.dry_run = true;
  auto c = ledger->claim(req).value();
  REQUIRE(c);
  CHECK(c->kind == ClaimKind::fresh);
  CHECK(c->record.device_name == "dev1000");
  CHECK(totals(*ledger)[TripletState::available] == 2);
  CHECK_FALSE(ledger->find_by_imei("861234567890123").value().has_value());
  CHECK(ledger->events(10, std::nullopt).value().size() == 1); // only the import
}

LEDGER_TEST("ledger: a failing change in a group commit leaves the others of its batch applied") {
  At at;
  auto ledger = open_or_die(at.location());
  constexpr int k_modules = 24;
  REQUIRE(ledger->import(rows(k_modules), "a.csv", k_actor, false));
  std::vector<TripletKey> keys;
  for (int i = 0; i < k_modules; ++i) {
    auto c = ledger->claim(request_for("86" + std::to_string(1000000000000 + i))).value().value();
    keys.push_back({c.record.product_key, c.record.device_name});
  }
  std::atomic<int> refused{0};
  std::atomic<int> applied{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < k_modules; ++i) {
    threads.emplace_back([&, i] {
      const auto& key = keys[static_cast<std::size_t>(i)];
      // Odd ones skip the attempt: burning a claimed triplet must fail, alone.
      if (i % 2 == 0 && !ledger->mark_attempted(key, k_actor)) {
        return;
      }
      if (ledger->mark_burned(key, k_actor, "test")) {
        ++applied;
      } else {
        ++refused;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(applied == k_modules / 2);
  CHECK(refused == k_modules / 2);
  auto t = totals(*ledger);
  CHECK(t[TripletState::burned] == k_modules / 2);
  CHECK(t[TripletState::claimed] == k_modules / 2);
}

LEDGER_TEST("ledger: dynamic registration is written ahead, the newest secret wins") {
  At at;
  auto ledger = open_or_die(at.location());
  const TripletKey key{"a1B2c3D4e5F", "reg-0001"};

  // Pending before the request: nothing in the pool yet.
  auto first = ledger->begin_registration(key, k_actor).value();
  CHECK(first.id > 0);
  CHECK(first.status == RegistrationStatus::pending);
  CHECK(ledger->find(key.device_name, key.product_key).value().empty());

  // The answer: issued, and in the pool as available.
  CHECK(ledger->record_registration(first, "secret-one-xxxxxxxxxxxxxxxxxxxxxx", k_actor).value() ==
        PoolUpdate::added);
  auto pool = ledger->find(key.device_name, key.product_key).value();
  REQUIRE(pool.size() == 1);
  CHECK(pool[0].state == TripletState::available);
  CHECK(pool[0].secret == "secret-one-xxxxxxxxxxxxxxxxxxxxxx");
  CHECK(pool[0].source == "dynamic registration");
  // An answered registration cannot be answered twice.
  CHECK_FALSE(ledger->record_registration(first, "another", k_actor).has_value());

  // A lost answer (pending forever), then a forced repeat that is answered.
  auto lost = ledger->begin_registration(key, k_actor).value();
  auto again = ledger->begin_registration(key, k_actor).value();
  CHECK(ledger->record_registration(again, "secret-two-xxxxxxxxxxxxxxxxxxxxxx", k_actor).value() ==
        PoolUpdate::updated);
  CHECK(ledger->find(key.device_name, key.product_key).value()[0].secret ==
        "secret-two-xxxxxxxxxxxxxxxxxxxxxx");
  auto history = ledger->registrations(key).value();
  REQUIRE(history.size() == 3);
  CHECK(history[0].status == RegistrationStatus::superseded);
  CHECK(history[0].secret == "secret-one-xxxxxxxxxxxxxxxxxxxxxx"); // kept, never forgotten
  CHECK(history[1].id == lost.id);
  CHECK(history[1].status == RegistrationStatus::superseded);
  CHECK(history[1].secret.empty());
  CHECK(history[2].status == RegistrationStatus::issued);
  CHECK(history[2].answered_at_ms >= history[2].requested_at_ms);

  // A refusal issued nothing: failed, with the reason; the pool is unchanged.
  auto refused = ledger->begin_registration(key, k_actor).value();
  REQUIRE(ledger->fail_registration(refused, k_actor, "code 6289: already active"));
  history = ledger->registrations(key).value();
  CHECK(history.back().status == RegistrationStatus::failed);
  CHECK(history.back().detail == "code 6289: already active");
  CHECK(ledger->find(key.device_name, key.product_key).value()[0].secret ==
        "secret-two-xxxxxxxxxxxxxxxxxxxxxx");

  // The audit trail has every step, and no secret.
  const auto events = ledger->events(100, std::string("reg-0001")).value();
  int register_events = 0;
  for (const auto& e : events) {
    CHECK(e.detail.find("secret-") == std::string::npos);
    register_events += e.action == "register" ? 1 : 0;
  }
  CHECK(register_events == 7); // 4 pending, 2 issued, 1 failed
}

LEDGER_TEST("ledger: a registration answered while the triplet is claimed keeps the module's") {
  At at;
  auto ledger = open_or_die(at.location());
  const TripletKey key{"a1B2c3D4e5F", "dev1000"};
  REQUIRE(ledger->import(rows(1), "a.csv", k_actor, false).value().added == 1);
  auto pending = ledger->begin_registration(key, k_actor).value();
  REQUIRE(ledger->claim(request_for("860000000000001")).value().has_value());
  CHECK(
      ledger->record_registration(pending, "new-secret-xxxxxxxxxxxxxxxxxxxxxx", k_actor).value() ==
      PoolUpdate::busy);
  CHECK(ledger->find("dev1000", std::nullopt).value()[0].secret == rows(1)[0].secret);
  CHECK(ledger->registrations(key).value().back().secret == "new-secret-xxxxxxxxxxxxxxxxxxxxxx");
}

LEDGER_TEST("ledger: registrations are never deleted and an issued secret never changes") {
  At at;
  const auto path = at.location();
  {
    auto ledger = open_or_die(path);
    auto p = ledger->begin_registration({"a1B2c3D4e5F", "reg-1"}, k_actor).value();
    REQUIRE(ledger->record_registration(p, "issued-secret-xxxxxxxxxxxxxxxxxxx", k_actor));
  }
  const auto deleted = at.exec("DELETE FROM registrations");
  REQUIRE_FALSE(deleted.has_value());
  CHECK(deleted.error().message.find("registrations are kept") != std::string::npos);
  const auto changed = at.exec("UPDATE registrations SET secret = 'other'");
  REQUIRE_FALSE(changed.has_value());
  CHECK(changed.error().message.find("never changed") != std::string::npos);
}

LEDGER_TEST("ledger: a recreation is journaled step by step and its new secret reaches the pool") {
  At at;
  auto ledger = open_or_die(at.location());
  REQUIRE(ledger->import(rows(2), "a.csv", k_actor, false).value().added == 2);
  const auto imported = ledger->find("dev1000", std::string("a1B2c3D4e5F")).value().at(0);
  // dev0001 is burned into a module; dev0002 is still available.
  auto claim = ledger->claim(request_for("356938035643809")).value();
  REQUIRE(claim);
  REQUIRE(claim->record.device_name == "dev1000");
  REQUIRE(ledger->mark_attempted({"a1B2c3D4e5F", "dev1000"}, k_actor));
  REQUIRE(ledger->mark_burned({"a1B2c3D4e5F", "dev1000"}, k_actor, "verified"));

  Recreation plan;
  plan.product_key = "a1B2c3D4e5F";
  plan.device_name = "dev1000";
  plan.old_iot_id = "old-iot-id";
  plan.old_secret = imported.secret;
  plan.metadata = R"({"nickname":"Pump_01","tags":[{"key":"site","value":"north"}]})";
  auto r = ledger->begin_recreation(plan, k_actor).value();
  CHECK(r.id > 0);
  CHECK(r.step == RecreateStep::planned);
  // One unfinished recreation per device.
  const auto twice = ledger->begin_recreation(plan, k_actor);
  REQUIRE_FALSE(twice.has_value());
  CHECK(twice.error().kind == ErrorKind::usage);
  CHECK(twice.error().message.find("--resume") != std::string::npos);

  r.step = RecreateStep::deleted;
  r.detail = "deleted";
  CHECK(ledger->advance_recreation(r, k_actor).value().empty());
  // A registered step needs the new secret.
  r.step = RecreateStep::registered;
  CHECK_FALSE(ledger->advance_recreation(r, k_actor).has_value());
  r.new_iot_id = "new-iot-id";
  r.new_secret = "new-secret-xxxxxxxxxxxxxxxxxxxxxx";
  const auto pool = ledger->advance_recreation(r, k_actor).value();
  CHECK(pool.find("bound to that module") != std::string::npos);
  auto now = ledger->find("dev1000", std::string("a1B2c3D4e5F")).value().at(0);
  CHECK(now.secret == "new-secret-xxxxxxxxxxxxxxxxxxxxxx");
  CHECK(now.state == TripletState::bound);
  CHECK(now.imei == "356938035643809"); // the same module gets it on its next provision
  // Steps never go back.
  r.step = RecreateStep::deleted;
  CHECK_FALSE(ledger->advance_recreation(r, k_actor).has_value());

  auto open = ledger->recreations(std::nullopt, true).value();
  REQUIRE(open.size() == 1);
  CHECK(open[0].step == RecreateStep::registered);
  CHECK(open[0].old_secret == imported.secret); // kept: the superseded secret
  CHECK(open[0].metadata == plan.metadata);
  r.step = RecreateStep::restored;
  REQUIRE(ledger->advance_recreation(r, k_actor));
  CHECK(ledger->recreations(std::nullopt, true).value().empty());
  CHECK(ledger->recreations(TripletKey{"a1B2c3D4e5F", "dev1000"}, false).value().size() == 1);
  // Finished: the device may be re-created again.
  CHECK(ledger->begin_recreation(plan, k_actor).has_value());

  // An available triplet keeps its state; a device not in the pool is added.
  Recreation other = plan;
  other.device_name = "dev1001";
  auto r2 = ledger->begin_recreation(other, k_actor).value();
  r2.step = RecreateStep::registered;
  r2.new_secret = "second-new-secret-xxxxxxxxxxxxxxxx";
  CHECK(ledger->advance_recreation(r2, k_actor).value().find("available") != std::string::npos);
  CHECK(ledger->find("dev1001", std::string("a1B2c3D4e5F")).value().at(0).state ==
        TripletState::available);
  Recreation fresh = plan;
  fresh.device_name = "dev0099";
  auto r3 = ledger->begin_recreation(fresh, k_actor).value();
  r3.step = RecreateStep::registered;
  r3.new_secret = "third-new-secret-xxxxxxxxxxxxxxxxx";
  CHECK(ledger->advance_recreation(r3, k_actor).value().find("added") != std::string::npos);
  // The audit trail has each step, never a secret.
  const auto events = ledger->events(100, std::string("dev1000")).value();
  CHECK(events.size() >= 5);
  for (const auto& e : events) {
    CHECK(e.detail.find("new-secret") == std::string::npos);
  }
}

LEDGER_TEST("ledger: a one-type-one-secret recreation frees the triplet for a new registration") {
  At at;
  auto ledger = open_or_die(at.location());
  const TripletKey key{"a1B2c3D4e5F", "356938035643809"};
  auto reg = ledger->begin_registration(key, k_actor).value();
  REQUIRE(ledger->record_registration(reg, "issued-secret-xxxxxxxxxxxxxxxxxxx", k_actor));
  auto claim = ledger->claim(request_for("356938035643809")).value();
  REQUIRE(claim);
  REQUIRE(ledger->mark_attempted(key, k_actor));
  REQUIRE(ledger->mark_burned(key, k_actor, "verified"));

  Recreation plan;
  plan.product_key = key.product_key;
  plan.device_name = key.device_name;
  plan.scheme = core::Scheme::product;
  auto r = ledger->begin_recreation(plan, k_actor).value();
  r.step = RecreateStep::registered;
  r.new_secret = "recreated-secret-xxxxxxxxxxxxxxxx";
  CHECK(ledger->advance_recreation(r, k_actor).value().find("registers dynamically") !=
        std::string::npos);
  const auto now = ledger->find(key.device_name, key.product_key).value().at(0);
  CHECK(now.state == TripletState::available);
  CHECK(now.imei.empty());
  const auto history = ledger->registrations(key).value();
  REQUIRE(history.size() == 1);
  CHECK(history[0].status == RegistrationStatus::superseded);
  CHECK(ledger->recreations(key, false).value().at(0).scheme == core::Scheme::product);
}

LEDGER_TEST("ledger: merge copies a station's ledger, refuses conflicts, and is a no-op again") {
  SqliteAt station_file; // a station's own ledger, moved into the target
  auto station = open_or_die(station_file.location());
  const Actor st{"station-7", "/dev/ttyUSB2", 777};
  REQUIRE(station->import(rows(6), "batch.csv", st, false));
  auto burned = station->claim(request_for("861111111111116", st)).value().value();
  const TripletKey key{burned.record.product_key, burned.record.device_name};
  REQUIRE(station->mark_attempted(key, st));
  REQUIRE(station->mark_burned(key, st, "verified"));
  auto reg = station->begin_registration({"a1B2c3D4e5F", "reg-7"}, st).value();
  REQUIRE(station->record_registration(reg, "issued-secret-xxxxxxxxxxxxxxxxxxx", st));
  const auto from = station->contents().value();
  CHECK(from.triplets.size() == 7);
  CHECK(from.registrations.size() == 1);

  At at;
  auto shared = open_or_die(at.location());
  REQUIRE(shared->import(rows(4), "batch.csv", k_actor, false)); // the same batch, in part
  const auto first_r = shared->merge(from, "station-7.db", k_actor);
  REQUIRE_MESSAGE(first_r.has_value(), (first_r ? "" : first_r.error().message));
  const auto& first = *first_r;
  CHECK(first.committed);
  CHECK(first.conflicts.empty());
  CHECK(first.triplets.added == 4);   // dev1000 (burned there) and dev1004, dev1005, reg-7
  CHECK(first.triplets.present == 3); // available in both
  CHECK(first.registrations.added == 1);
  CHECK(first.events.added == from.events.size());
  const auto moved = shared->find_by_imei("861111111111116").value();
  REQUIRE(moved);
  CHECK(moved->device_name == key.device_name);
  CHECK(moved->state == TripletState::burned);
  CHECK(moved->station == "station-7");
  CHECK(moved->owner_pid == 0);
  CHECK(shared->registrations({"a1B2c3D4e5F", "reg-7"}).value().size() == 1);

  const auto again_r = shared->merge(from, "station-7.db", k_actor);
  REQUIRE_MESSAGE(again_r.has_value(), (again_r ? "" : again_r.error().message));
  const auto& again = *again_r;
  CHECK(again.committed);
  CHECK(again.triplets.added + again.events.added + again.registrations.added == 0);
  CHECK(again.triplets.present == 7);

  // Conflicts: another secret for a DeviceName, an IMEI bound to another DeviceName.
  auto changed = from;
  changed.triplets[1].secret = "AnotherSecretValue";
  const auto other_claim = shared->claim(request_for("869999999999999"));
  REQUIRE_MESSAGE(other_claim.has_value(), (other_claim ? "" : other_claim.error().message));
  REQUIRE(other_claim->has_value());
  const auto& other_module = **other_claim;
  changed.triplets[2].state = TripletState::bound;
  changed.triplets[2].imei = "869999999999999";
  changed.triplets.push_back(changed.triplets[0]);
  changed.triplets.back().device_name = "dev-new";
  changed.triplets.back().imei = "861111111111116"; // dev1000's module, here
  const auto events_before = shared->events(1000, std::nullopt).value().size();
  const auto merged = shared->merge(changed, "station-7.db", k_actor);
  REQUIRE_MESSAGE(merged.has_value(), (merged ? "" : merged.error().message));
  const auto& refused = *merged;
  CHECK_FALSE(refused.committed);
  REQUIRE(refused.conflicts.size() == 3);
  CHECK(contains_any(refused.conflicts, "different secret"));
  CHECK(contains_any(refused.conflicts, "IMEI 869999999999999"));
  CHECK(contains_any(refused.conflicts, "IMEI 861111111111116"));
  for (const auto& c : refused.conflicts) {
    CHECK(c.find("AnotherSecretValue") == std::string::npos);
  }
  CHECK(shared->find("dev-new", std::nullopt).value().empty()); // nothing half-copied
  CHECK(shared->events(1000, std::nullopt).value().size() == events_before);
  CHECK(other_module.record.state == TripletState::claimed);
}
