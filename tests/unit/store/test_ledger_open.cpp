// SPDX-License-Identifier: MIT
// Opening the ledger: the three modes, what a read leaves behind (nothing), the file modes, the
// messages; and the statement helper the SQLite ledger is written with.
#include "store/ledger.hpp"
#include "store/sqlite.hpp"
#include "unit/store/ledger_fixtures.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace iot;
using namespace iot::store;
using namespace iot::store::test;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st;
}

mode_t mode_of(const fs::path& p) {
  return stat_of(p).st_mode & 0777;
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

fs::path beside(const fs::path& p, std::string_view suffix) {
  return fs::path(p.string() + std::string(suffix));
}

struct Warnings {
  std::vector<std::string> seen;
  LedgerOptions options(OpenMode mode) {
    LedgerOptions o(mode);
    o.warn = [this](const std::string& w) { seen.push_back(w); };
    return o;
  }
};

LedgerOptions mode(OpenMode m) {
  return LedgerOptions(m);
}

std::int64_t available(Ledger& ledger) {
  std::int64_t n = 0;
  const auto counts = ledger.counts().value();
  for (const auto& c : counts) {
    n += c.state == TripletState::available ? c.count : 0;
  }
  return n;
}

// A ledger of schema 1 (before registrations), as an older iotfleet left it.
void make_schema_1(const fs::path& path) {
  open_or_die(path)->import(rows(2), "a.csv", k_actor, false).value();
  auto db = sqlite::Database::open(path, sqlite::Access::read_write).value();
  REQUIRE(db.exec("DROP TABLE registrations; DROP TABLE recreations; DROP TABLE status_checks; "
                  "PRAGMA user_version = 1")
              .has_value());
}

template <class R> std::string error_of(const R& result) {
  REQUIRE_FALSE(result.has_value());
  return result.error().message;
}

int user_version(const fs::path& path) {
  auto db = sqlite::Database::open(path, sqlite::Access::read_only).value();
  auto s = sqlite::Statement::query(db, "PRAGMA user_version").value();
  REQUIRE(s.step().value());
  return static_cast<int>(s.integer(0));
}

} // namespace

TEST_CASE("sqlite: Statement binds by type, rebinds, and reports a parameter it lacks") {
  TempDir dir;
  auto db = sqlite::Database::open(dir.path / "t.db", sqlite::Access::create).value();
  REQUIRE(db.exec("CREATE TABLE t (a, b, c, d, e)").has_value());
  REQUIRE(sqlite::Statement::run(db,
                                 "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
                                 "text",
                                 42,
                                 std::optional<std::string>{},
                                 std::optional<std::int64_t>{7},
                                 std::nullopt)
              .has_value());
  auto s = sqlite::Statement::query(db,
                                    "SELECT typeof(a), a, typeof(b), b, typeof(c), typeof(d), d, "
                                    "typeof(e) FROM t")
               .value();
  REQUIRE(s.step().value());
  CHECK(s.text(0) == "text");
  CHECK(s.text(1) == "text");
  CHECK(s.text(2) == "integer");
  CHECK(s.integer(3) == 42);
  CHECK(s.text(4) == "null");
  CHECK(s.text(5) == "integer");
  CHECK(s.integer(6) == 7);
  CHECK(s.text(7) == "null");
  CHECK_FALSE(s.step().value());

  // A vector fills consecutive parameters; rebind starts over.
  auto joined =
      sqlite::Statement::query(db, "SELECT ?1 || ?2 || ?3", std::vector<std::string>{"a", "b"}, "c")
          .value();
  REQUIRE(joined.step().value());
  CHECK(joined.text(0) == "abc");
  joined.rebind(std::vector<std::string>{"x", "y", "z"});
  REQUIRE(joined.step().value());
  CHECK(joined.text(0) == "xyz");

  auto extra = sqlite::Statement::run(db, "SELECT ?1", 1, 2);
  REQUIRE_FALSE(extra.has_value());
  CHECK(extra.error().kind == ErrorKind::failure);
  CHECK(extra.error().message ==
        "ledger: cannot bind parameter 2: column index out of range (in: SELECT ?1)");
}

TEST_CASE("ledger open: existing and read need a ledger, and create nothing without one") {
  TempDir dir;
  const auto path = dir.path / "none.db";
  for (auto m : {OpenMode::existing, OpenMode::read}) {
    CAPTURE(static_cast<int>(m));
    auto ledger = open_ledger(path, mode(m));
    REQUIRE_FALSE(ledger.has_value());
    CHECK(ledger.error().kind == ErrorKind::config);
    CHECK(ledger.error().message ==
          "no ledger at " + path.string() + ": `iotfleet pool import FILE` creates a ledger");

    LedgerOptions hinted = mode(m);
    hinted.missing_hint = [] { return std::string(" (from flag --ledger): check it"); };
    ledger = open_ledger(dir.path / "sub" / "l.db", hinted);
    REQUIRE_FALSE(ledger.has_value());
    CHECK(ledger.error().message == "no ledger at " + (dir.path / "sub" / "l.db").string() +
                                        " (from flag --ledger): check it");
    CHECK(names_in(dir.path).empty());
  }
  // create makes it, 0600.
  open_or_die(path, mode(OpenMode::create));
  CHECK(mode_of(path) == 0600);
  CHECK(open_ledger(path, mode(OpenMode::existing)).has_value());
  CHECK(open_ledger(path, mode(OpenMode::read)).has_value());
}

TEST_CASE("ledger open: a URL of an unknown database is refused, naming the two kinds") {
  auto ledger = open_ledger("mysql://db.line1/iot", mode(OpenMode::read));
  REQUIRE_FALSE(ledger.has_value());
  CHECK(ledger.error().kind == ErrorKind::config);
  CHECK(ledger.error().message ==
        "ledger mysql://db.line1/iot: a mysql:// ledger is not supported: give a file path "
        "(SQLite, one station) or a postgresql://USER@HOST[:PORT]/DATABASE URL (a ledger shared "
        "by a line)");
}

TEST_CASE("ledger open: read writes nothing, leaves no -wal or -shm, and refuses changes") {
  TempDir dir;
  const auto path = dir.path / "l.db";
  {
    auto writer = open_or_die(path);
    REQUIRE(writer->import(rows(3), "a.csv", k_actor, false).value().added == 3);
    auto reg = writer->begin_registration({"a1B2c3D4e5F", "dev1000"}, k_actor).value();
    REQUIRE(writer->fail_registration(reg, k_actor, "refused"));
  }
  REQUIRE(names_in(dir.path) == std::set<std::string>{"l.db"});
  const auto bytes = slurp(path);
  const auto before = stat_of(path);
  {
    auto reader = open_or_die(path, mode(OpenMode::read));
    CHECK(available(*reader) == 3);
    CHECK(reader->find("dev1001", std::nullopt).value().size() == 1);
    CHECK_FALSE(reader->find_by_imei("861234567890123").value().has_value());
    CHECK(reader->events(10, std::nullopt).value().size() == 3);
    CHECK(reader->registrations({"a1B2c3D4e5F", "dev1000"}).value().size() == 1);
    std::size_t records = 0;
    REQUIRE(reader->for_each({}, [&](const TripletRecord&) -> Status {
      ++records;
      return {};
    }));
    CHECK(records == 3);
    CHECK(names_in(dir.path) == std::set<std::string>{"l.db"});

    const std::string refused = "ledger " + path.string() +
                                " is open for reading only, so it cannot be changed (a command "
                                "that writes must open it with OpenMode::create or existing)";
    auto imported = reader->import(rows(4), "b.csv", k_actor, false);
    REQUIRE_FALSE(imported.has_value());
    CHECK(imported.error().kind == ErrorKind::failure);
    CHECK(imported.error().message == refused);
    ClaimRequest claim;
    claim.imei = "861234567890123";
    claim.actor = k_actor;
    CHECK(error_of(reader->claim(claim)) == refused);
    claim.dry_run = true;
    CHECK(error_of(reader->claim(claim)) == refused);
    CHECK(error_of(reader->record_event(Event{})) == refused);
    CHECK(error_of(reader->mark_attempted({"a1B2c3D4e5F", "dev1000"}, k_actor)) == refused);
  }
  CHECK(names_in(dir.path) == std::set<std::string>{"l.db"});
  CHECK(slurp(path) == bytes);
  const auto after = stat_of(path);
  CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  CHECK(after.st_ctim.tv_nsec == before.st_ctim.tv_nsec); // not even its mode changed
  CHECK(after.st_mode == before.st_mode);
}

TEST_CASE("ledger open: read follows a writer that has the ledger open") {
  TempDir dir;
  const auto path = dir.path / "l.db";
  auto writer = open_or_die(path);
  REQUIRE(writer->import(rows(2), "a.csv", k_actor, false));
  REQUIRE(fs::exists(beside(path, "-wal")));
  auto reader = open_or_die(path, mode(OpenMode::read));
  CHECK(available(*reader) == 2);
  REQUIRE(writer->import(rows(5), "b.csv", k_actor, false));
  CHECK(available(*reader) == 5);
}

TEST_CASE("ledger open: a writer that comes and goes during a read cannot checkpoint under it") {
  TempDir dir;
  const auto path = dir.path / "l.db";
  open_or_die(path)->import(rows(2), "a.csv", k_actor, false).value();
  REQUIRE_FALSE(fs::exists(beside(path, "-wal")));
  auto reader = open_or_die(path, mode(OpenMode::read));
  {
    auto writer = open_or_die(path, mode(OpenMode::existing));
    REQUIRE(writer->import(rows(4), "b.csv", k_actor, false));
  }
  // The writer closed last but could not take the file to checkpoint into it: its changes wait
  // in the -wal, and the reader goes on reading the file as it was.
  CHECK(fs::exists(beside(path, "-wal")));
  CHECK(available(*reader) == 2);
  reader.reset();
  CHECK(available(*open_or_die(path, mode(OpenMode::read))) == 4);
  CHECK(available(*open_or_die(path, mode(OpenMode::existing))) == 4);
}

TEST_CASE("ledger open: an older schema reads as it is, and is migrated by a writer") {
  TempDir dir;
  const auto path = dir.path / "old.db";
  make_schema_1(path);
  REQUIRE(user_version(path) == 1);
  {
    auto reader = open_or_die(path, mode(OpenMode::read));
    CHECK(available(*reader) == 2);
    CHECK(reader->registrations({"a1B2c3D4e5F", "dev1000"}).value().empty());
    CHECK(reader->recreations(std::nullopt, false).value().empty());
  }
  CHECK(user_version(path) == 1);
  auto writer = open_or_die(path, mode(OpenMode::existing));
  CHECK(user_version(path) == ledger_schema_version());
  CHECK(writer->begin_registration({"a1B2c3D4e5F", "dev1000"}, k_actor).has_value());
  CHECK(writer->claim_status_check("a1B2c3D4e5F", "serve", 1000, 1000, 2000).value());
}

TEST_CASE("ledger open: read refuses an empty file and a newer schema") {
  TempDir dir;
  SUBCASE("empty") {
    const auto path = dir.path / "e.db";
    std::ofstream{path};
    auto ledger = open_ledger(path, mode(OpenMode::read));
    REQUIRE_FALSE(ledger.has_value());
    CHECK(ledger.error().kind == ErrorKind::config);
    CHECK(ledger.error().message ==
          "ledger " + path.string() +
              ": the file is empty, not a ledger yet: importing triplets into it (`iotfleet pool "
              "import FILE`) makes it one");
    CHECK(fs::file_size(path) == 0);
  }
  SUBCASE("newer") {
    const auto path = dir.path / "n.db";
    open_or_die(path);
    {
      auto db = sqlite::Database::open(path, sqlite::Access::read_write).value();
      REQUIRE(db.exec("PRAGMA user_version = 99").has_value());
    }
    auto ledger = open_ledger(path, mode(OpenMode::read));
    REQUIRE_FALSE(ledger.has_value());
    CHECK(ledger.error().kind == ErrorKind::config);
    CHECK(ledger.error().message == "ledger " + path.string() +
                                        ": its schema version is 99, newer than this iotfleet "
                                        "understands (" +
                                        std::to_string(ledger_schema_version()) +
                                        "): use a newer iotfleet");
  }
}

TEST_CASE("ledger open: a ledger others can read is set to 0600 by a writer, once, with a "
          "warning") {
  TempDir dir;
  const auto path = dir.path / "l.db";
  SUBCASE("touched, then filled by create") {
    const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::fchmod(fd, 0644) == 0);
    ::close(fd);
    Warnings w;
    auto ledger = open_or_die(path, w.options(OpenMode::create));
    REQUIRE(w.seen.size() == 1);
    CHECK(w.seen[0] == "ledger " + path.string() +
                           " was readable by group or others (l.db 0644): it holds secrets, so "
                           "iotfleet set it to 0600");
    CHECK(mode_of(path) == 0600);
    REQUIRE(ledger->import(rows(1), "a.csv", k_actor, false).value().added == 1);
    CHECK(mode_of(beside(path, "-wal")) == 0600);
    Warnings again;
    open_or_die(path, again.options(OpenMode::create));
    CHECK(again.seen.empty());
  }
  SUBCASE("with its -wal and -shm, by existing") {
    auto other = open_or_die(path);
    REQUIRE(other->import(rows(1), "a.csv", k_actor, false));
    for (const char* suffix : {"", "-wal", "-shm"}) {
      REQUIRE(::chmod(beside(path, suffix).c_str(), 0640) == 0);
    }
    Warnings w;
    open_or_die(path, w.options(OpenMode::existing));
    REQUIRE(w.seen.size() == 1);
    CHECK(w.seen[0] == "ledger " + path.string() +
                           " was readable by group or others (l.db 0640, l.db-wal 0640, l.db-shm "
                           "0640): it holds secrets, so iotfleet set them to 0600");
    for (const char* suffix : {"", "-wal", "-shm"}) {
      CHECK(mode_of(beside(path, suffix)) == 0600);
    }
  }
}

TEST_CASE("ledger open: read only warns about a ledger others can read") {
  TempDir dir;
  const auto path = dir.path / "l.db";
  open_or_die(path)->import(rows(1), "a.csv", k_actor, false).value();
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  Warnings w;
  open_or_die(path, w.options(OpenMode::read));
  REQUIRE(w.seen.size() == 1);
  CHECK(w.seen[0] == "ledger " + path.string() +
                         " holds secrets and is readable by group or others (l.db 0644): run "
                         "chmod 600 " +
                         path.string() + " (a command that writes to the ledger does it itself)");
  CHECK(mode_of(path) == 0644);
}

TEST_CASE("ledger open: a ledger of another user is left as it is, with the chmod to run") {
  TempDir dir;
  if (::geteuid() == 0) {
    const auto path = dir.path / "l.db";
    open_or_die(path)->import(rows(1), "a.csv", k_actor, false).value();
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
    Warnings w;
    auto ledger = open_or_die(path, w.options(OpenMode::existing));
    REQUIRE(w.seen.size() == 1);
    CHECK(w.seen[0] == "ledger " + path.string() +
                           " holds secrets and is readable by group or others (l.db 0644): its "
                           "owner should run chmod 600 " +
                           path.string());
    CHECK(mode_of(path) == 0644);
    CHECK(ledger->import(rows(2), "b.csv", k_actor, false).has_value());
  } else {
    // Without root no file can be given away: a world-readable file of root's stands in (read
    // mode, so nothing is changed; it is not a ledger, so the open then fails).
    Warnings w;
    (void)open_ledger("/etc/passwd", w.options(OpenMode::read));
    REQUIRE(w.seen.size() == 1);
    CHECK(w.seen[0] == "ledger /etc/passwd holds secrets and is readable by group or others "
                       "(passwd 0644): its owner should run chmod 600 /etc/passwd");
  }
}
