// SPDX-License-Identifier: MIT
// What the store tests share: a temporary directory, triplet rows, an opened ledger, and where a
// test's ledger lives on each database (SqliteAt, PostgresAt), for the cases run on both
// (LEDGER_TEST).
#pragma once

#include "store/ledger.hpp"
#include "store/pg.hpp"
#include "store/sqlite.hpp"

#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace iot::store::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/iot-ledger-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline std::vector<core::TripletRow> rows(int n, const std::string& pk = "a1B2c3D4e5F") {
  std::vector<core::TripletRow> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({pk,
                   "dev" + std::to_string(1000 + i),
                   "S3cretValue" + std::to_string(i) + "xxxxxxxxxxxxxxxxxxxx",
                   core::Scheme::device,
                   static_cast<std::size_t>(i + 1)});
  }
  return out;
}

inline std::unique_ptr<Ledger> open_or_die(const std::string& location,
                                           const LedgerOptions& options = {}) {
  auto ledger = open_ledger(location, options);
  REQUIRE_MESSAGE(ledger.has_value(), (ledger ? "" : ledger.error().message));
  return std::move(*ledger);
}

inline const Actor k_actor{"station-1", "/dev/ttyUSB0", 4242};

inline ClaimRequest request_for(const std::string& imei, Actor actor = k_actor) {
  ClaimRequest r;
  r.imei = imei;
  r.iccid = "89860400000000000001";
  r.actor = std::move(actor);
  return r;
}

// Triplets per state, over every product and station.
inline std::map<TripletState, std::int64_t> totals(Ledger& ledger) {
  std::map<TripletState, std::int64_t> out;
  const auto counts = ledger.counts().value();
  for (const auto& c : counts) {
    out[c.state] += c.count;
  }
  return out;
}

// A fresh SQLite ledger file.
struct SqliteAt {
  TempDir dir;
  [[nodiscard]] std::string location() const { return (dir.path / "l.db").string(); }
  // SQL as someone with the file runs it, outside iotfleet.
  [[nodiscard]] Status exec(const std::string& sql) const {
    auto db = IOT_TRY(sqlite::Database::open(location(), sqlite::Access::read_write));
    return db.exec(sql);
  }
};

// The test server's URL: $IOT_TEST_PG_URL, or the one scripts/pg-local.sh started in
// $IOT_TEST_PG_DIR (CTest's `pg` fixture starts it). Neither set is a failure, never a skip.
inline std::string test_server_url() {
  if (const char* url = std::getenv("IOT_TEST_PG_URL"); url && *url) {
    return url;
  }
  const char* dir = std::getenv("IOT_TEST_PG_DIR");
  REQUIRE_MESSAGE((dir && *dir),
                  "no PostgreSQL test server: run through ctest (fixture `pg`), or start one "
                  "with scripts/pg-local.sh start DIR and set IOT_TEST_PG_DIR=DIR");
  std::string port;
  std::ifstream(std::filesystem::path(dir) / "port") >> port;
  REQUIRE_MESSAGE(!port.empty(), "no server running in IOT_TEST_PG_DIR " << dir);
  return "postgresql://iotfleet@127.0.0.1:" + port + "/iotfleet";
}

// A fresh PostgreSQL ledger: its own schema in the test server's database, dropped afterwards.
struct PostgresAt {
  std::string server = test_server_url();
  std::string schema;
  PostgresAt() {
    static std::atomic<int> counter{0};
    schema = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
             std::to_string(std::rand() % 100000);
    admin_exec("CREATE SCHEMA " + schema);
  }
  ~PostgresAt() { admin_exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE"); }
  PostgresAt(const PostgresAt&) = delete;
  PostgresAt& operator=(const PostgresAt&) = delete;

  [[nodiscard]] std::string location() const {
    return server + "?options=-csearch_path%3D" + schema;
  }
  // SQL as the server's owner runs it, outside iotfleet (on the ledger's schema).
  [[nodiscard]] Status exec(const std::string& sql) const {
    auto db = IOT_TRY(pg::Database::connect(location(), {}));
    return db.exec(sql);
  }

private:
  void admin_exec(const std::string& sql) const {
    auto db = pg::Database::connect(server, {});
    REQUIRE_MESSAGE(db.has_value(), (db ? "" : db.error().message));
    auto done = db->exec(sql);
    REQUIRE_MESSAGE(done.has_value(), (done ? "" : done.error().message));
  }
};

} // namespace iot::store::test

TYPE_TO_STRING_AS("sqlite", iot::store::test::SqliteAt);
TYPE_TO_STRING_AS("postgresql", iot::store::test::PostgresAt);

// A test case run once on each database: `At at;` is where its ledger lives.
#define LEDGER_TEST(name) TEST_CASE_TEMPLATE(name, At, SqliteAt, PostgresAt)

namespace iot::store::test {} // namespace iot::store::test
