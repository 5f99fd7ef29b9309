// SPDX-License-Identifier: MIT
// open_configured_ledger: which commands may create a ledger, what a reader says when there is
// none (the path, its source, the configured default, the fix), and the store's warnings on
// ctx.output.
#include "commands/ledger_access.hpp"
#include "store/ledger.hpp"
#include "unit/cli/capture_output.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

using namespace iot;
using namespace iot::commands;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  fs::path dir;
  test::CaptureOutput output;
  Context ctx;
  std::map<std::string, std::string> vars;
  Fixture() {
    static int counter = 0;
    dir = fs::temp_directory_path() / ("iotfleet-ledger-access-" + std::to_string(::getpid()) +
                                       "-" + std::to_string(counter++));
    fs::create_directories(dir / "home");
    vars["HOME"] = (dir / "home").string();
    ctx.output = &output;
    ctx.env.getenv = [this](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      return it == vars.end() ? std::nullopt : std::optional(it->second);
    };
    ctx.env.read_stdin = []() -> Result<std::string> { return std::string(); };
    ctx.env.hostname = [] { return std::string("test-host"); };
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  [[nodiscard]] std::string default_ledger() const {
    return (dir / "home" / ".local" / "share" / "iotfleet" / "ledger.db").string();
  }
};

constexpr std::string_view k_fix = ": check --ledger, IOTFLEET_LEDGER and the config's \"ledger\"; "
                                   "`iotfleet pool import FILE` creates a ledger";

std::string error_of(Result<LedgerHandle> r) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == ErrorKind::config);
  return r.error().message;
}

} // namespace

TEST_CASE(
    "ledger access: readers name a missing --ledger, the default and the fix, and make nothing") {
  Fixture f;
  const auto typo = (f.dir / "typo.db").string();
  f.ctx.global.settings.ledger = typo;
  for (auto mode : {store::OpenMode::existing, store::OpenMode::read}) {
    CHECK(error_of(open_configured_ledger(f.ctx, mode)) ==
          "no ledger at " + typo + " (from flag --ledger; the default is " + f.default_ledger() +
              ")" + std::string(k_fix));
  }
  CHECK_FALSE(fs::exists(typo));
  CHECK_FALSE(fs::exists(f.dir / "home" / ".local"));

  // With IOTFLEET_LEDGER set, that is the configured ledger --ledger overrode.
  f.vars["IOTFLEET_LEDGER"] = (f.dir / "station.db").string();
  CHECK(error_of(open_configured_ledger(f.ctx, store::OpenMode::read)) ==
        "no ledger at " + typo + " (from flag --ledger; the configured ledger is " +
            (f.dir / "station.db").string() + ", from env IOTFLEET_LEDGER)" + std::string(k_fix));
  f.ctx.global.settings.ledger.reset();
  CHECK(error_of(open_configured_ledger(f.ctx, store::OpenMode::read)) ==
        "no ledger at " + (f.dir / "station.db").string() + " (from env IOTFLEET_LEDGER)" +
            std::string(k_fix));
  CHECK_FALSE(fs::exists(f.dir / "station.db"));
}

TEST_CASE("ledger access: the default and the config's ledger, missing, are named as such") {
  Fixture f;
  CHECK(error_of(open_configured_ledger(f.ctx, store::OpenMode::read)) ==
        "no ledger at " + f.default_ledger() +
            " (the default: no --ledger, IOTFLEET_LEDGER or config \"ledger\" is given)" +
            std::string(k_fix));
  CHECK_FALSE(fs::exists(f.dir / "home" / ".local"));

  const auto config = f.dir / "config.json";
  std::ofstream(config) << R"({"ledger": ")" + (f.dir / "line1.db").string() + R"("})";
  f.ctx.global.settings.config_file = config.string();
  CHECK(error_of(open_configured_ledger(f.ctx, store::OpenMode::existing)) ==
        "no ledger at " + (f.dir / "line1.db").string() + " (from config " + config.string() + ")" +
            std::string(k_fix));
}

TEST_CASE("ledger access: create makes the default ledger, readers then open it read-only") {
  Fixture f;
  {
    auto handle = open_configured_ledger(f.ctx, store::OpenMode::create);
    REQUIRE(handle.has_value());
    CHECK(handle->path == f.default_ledger());
    CHECK(handle->actor.station == "test-host");
  }
  struct stat st {};
  REQUIRE(::stat(fs::path(f.default_ledger()).parent_path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat(f.default_ledger().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto reader = open_configured_ledger(f.ctx, store::OpenMode::read);
  REQUIRE(reader.has_value());
  CHECK(reader->ledger->counts().value().empty());
  auto imported = reader->ledger->import({}, "x.csv", reader->actor, false);
  REQUIRE_FALSE(imported.has_value());
  CHECK(imported.error().kind == ErrorKind::failure);
}

TEST_CASE("ledger access: the store's warnings reach ctx.output") {
  Fixture f;
  const auto path = f.dir / "l.db";
  std::ofstream{path};
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  f.ctx.global.settings.ledger = path.string();
  REQUIRE(open_configured_ledger(f.ctx, store::OpenMode::create).has_value());
  REQUIRE(f.output.warnings.size() == 1);
  CHECK(f.output.warnings[0] == "ledger " + path.string() +
                                    " was readable by group or others (l.db 0644): it holds "
                                    "secrets, so iotfleet set it to 0600");
}
