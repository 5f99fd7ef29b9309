// SPDX-License-Identifier: MIT
// store/sqlite's statement cache: each SQL text is prepared once per connection and reused; a
// statement still in use when the same SQL is asked for again gets one of its own; a statement
// given back is reset and unbound, so nothing of its last use leaks into the next.
#include "store/sqlite.hpp"
#include "unit/store/ledger_fixtures.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace iot::store::sqlite;

namespace {

Database numbers(const iot::store::test::TempDir& dir) {
  auto db = Database::open(dir.path / "t.db", Access::create);
  REQUIRE(db.has_value());
  REQUIRE(db->exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);").has_value());
  return std::move(*db);
}

std::int64_t next(Statement& s) {
  const auto row = s.step();
  REQUIRE(row.has_value());
  REQUIRE(*row);
  return s.integer(0);
}

} // namespace

TEST_CASE("sqlite statements: the same SQL twice at once steps independently") {
  iot::store::test::TempDir dir;
  Database db = numbers(dir);
  constexpr std::string_view sql = "SELECT x FROM t ORDER BY x";
  auto outer = Statement::prepare(db, sql);
  REQUIRE(outer.has_value());
  CHECK(next(*outer) == 1);
  {
    auto inner = Statement::prepare(db, sql); // the cached one is in use: a fresh one
    REQUIRE(inner.has_value());
    CHECK(next(*inner) == 1);
    CHECK(next(*inner) == 2);
  }
  CHECK(next(*outer) == 2); // undisturbed
  CHECK(next(*outer) == 3);
}

TEST_CASE("sqlite statements: one given back starts over, its bindings cleared") {
  iot::store::test::TempDir dir;
  Database db = numbers(dir);
  {
    auto s = Statement::prepare(db, "SELECT x FROM t ORDER BY x");
    REQUIRE(s.has_value());
    CHECK(next(*s) == 1); // left mid-way
  }
  {
    auto s = Statement::prepare(db, "SELECT x FROM t ORDER BY x");
    REQUIRE(s.has_value());
    CHECK(next(*s) == 1);
  }
  {
    auto s = Statement::query(db, "SELECT ?1", std::int64_t{42});
    REQUIRE(s.has_value());
    CHECK(next(*s) == 42);
  }
  auto s = Statement::prepare(db, "SELECT ?1");
  REQUIRE(s.has_value());
  const auto row = s->step();
  REQUIRE(row.has_value());
  CHECK(s->is_null(0));
  // A statement left mid-way ended its read: another connection can write.
  auto other = Database::open(dir.path / "t.db", Access::read_write);
  REQUIRE(other.has_value());
  CHECK(other->exec("INSERT INTO t VALUES (4)").has_value());
}

TEST_CASE("sqlite statements: bad SQL fails with the database's message and is not kept") {
  iot::store::test::TempDir dir;
  Database db = numbers(dir);
  for (int i = 0; i < 2; ++i) {
    auto s = Statement::prepare(db, "SELECT nope FROM t");
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error().message.find("no such column: nope") != std::string::npos);
  }
  CHECK(db.exec("ALTER TABLE t ADD COLUMN nope INTEGER").has_value());
  CHECK(Statement::prepare(db, "SELECT nope FROM t").has_value()); // the schema changed
}
