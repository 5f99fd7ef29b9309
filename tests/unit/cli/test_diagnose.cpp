// SPDX-License-Identifier: MIT
// diagnose fleet in process: run_diagnose_fleet on small logs (views, skipped lines, --strict,
// filters, options refused, the HTML file) and the exit codes through cli::run.
#include "cli/app.hpp"
#include "commands/diagnose.hpp"
#include "unit/cli/capture_output.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace iot;
using namespace iot::commands;
namespace fs = std::filesystem;

namespace {

using iot::test::CaptureOutput;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "iotfleet-diag-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path / name;
    std::ofstream(p) << text;
    return p.string();
  }
};

// dupdev: two IPs taking turns with kicks; calm: one session.
std::string sample_log() {
  std::string s = "time,ProductKey,DeviceName,status,content,clientIp\n";
  s += "2024-01-01 08:00:00,a1B2c3D4e5F,calm,online,online,9.9.9.9\n";
  s += "2024-01-01 08:00:00,a1B2c3D4e5F,dupdev,online,online,1.1.1.1\n";
  for (int i = 0; i < 6; ++i) {
    const bool b = i % 2 == 0;
    const std::string t = "2024-01-01 0" + std::to_string(i + 1 < 10 ? 9 : 9) + ":" +
                          std::to_string(10 + i * 5) + ":00";
    s += t + ",a1B2c3D4e5F,dupdev,online,online," + (b ? "2.2.2.2" : "1.1.1.1") + "\n";
    s += t + ".200,a1B2c3D4e5F,dupdev,offline,Kicked by the same device," +
         (b ? "1.1.1.1" : "2.2.2.2") + "\n";
  }
  s += "2024-01-01 12:00:00,a1B2c3D4e5F,calm,offline,Connection reset by peer,9.9.9.9\n";
  return s;
}

Context make_ctx(CaptureOutput& out) {
  Context ctx;
  ctx.output = &out;
  return ctx;
}

std::size_t column(const core::Table& t, std::string_view name) {
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    if (t.columns[i] == name) {
      return i;
    }
  }
  FAIL("no column " << name);
  return 0;
}

} // namespace

TEST_CASE("diagnose fleet: findings of a small log") {
  TempDir dir;
  CaptureOutput out;
  auto ctx = make_ctx(out);
  DiagnoseFleetOptions o;
  o.log = dir.write("log.csv", sample_log());
  auto r = run_diagnose_fleet(o, ctx);
  REQUIRE(r);
  CHECK(r->findings == 1);
  REQUIRE(r->table.rows.size() == 1);
  const auto& row = r->table.rows[0];
  CHECK(std::get<std::string>(row[column(r->table, "finding")]) == "duplicate-identity");
  CHECK(std::get<std::string>(row[column(r->table, "subject")]) == "dupdev");
  CHECK(std::get<std::string>(row[column(r->table, "client_ips")]) == "1.1.1.1 2.2.2.2");
  CHECK(r->summary.find("device list: not available") != std::string::npos);
  CHECK(r->summary.find("1 duplicate-identity") != std::string::npos);
}

TEST_CASE("diagnose fleet: views") {
  TempDir dir;
  CaptureOutput out;
  auto ctx = make_ctx(out);
  DiagnoseFleetOptions o;
  o.log = dir.write("log.csv", sample_log());
  o.show = "days";
  auto r = run_diagnose_fleet(o, ctx);
  REQUIRE(r);
  REQUIRE(r->table.rows.size() == 1);
  CHECK(std::get<std::string>(r->table.rows[0][0]) == "2024-01-01");
  CHECK(std::get<std::int64_t>(r->table.rows[0][column(r->table, "kicked")]) == 6);
  CHECK(std::get<std::int64_t>(r->table.rows[0][column(r->table, "disconnects")]) == 7);
  o.show = "devices";
  o.top = 1;
  r = run_diagnose_fleet(o, ctx);
  REQUIRE(r);
  REQUIRE(r->table.rows.size() == 1);
  CHECK(std::get<std::string>(r->table.rows[0][0]) == "dupdev");
  o.show = "summary";
  o.utc_offset = "Z";
  r = run_diagnose_fleet(o, ctx);
  REQUIRE(r);
  CHECK(r->table.single);
  CHECK(std::get<std::string>(r->table.rows[0][column(r->table, "first_record")]) ==
        "2024-01-01 08:00:00");
}

TEST_CASE("diagnose fleet: bad lines skipped and named, --strict stops") {
  TempDir dir;
  CaptureOutput out;
  auto ctx = make_ctx(out);
  DiagnoseFleetOptions o;
  o.log = dir.write("log.csv", sample_log() + "oops\n");
  auto r = run_diagnose_fleet(o, ctx);
  REQUIRE(r);
  CHECK(r->skipped == 1);
  REQUIRE(out.warnings.size() == 1);
  CHECK(out.warnings[0].find("log.csv: line 17: has 1 field") != std::string::npos);
  o.strict = true;
  r = run_diagnose_fleet(o, ctx);
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::usage);
  CHECK(r.error().message.find("line 17") != std::string::npos);
}

TEST_CASE("diagnose fleet: refused options and inputs are usage errors") {
  TempDir dir;
  CaptureOutput out;
  auto ctx = make_ctx(out);
  DiagnoseFleetOptions o;
  o.log = (dir.path / "missing.csv").string();
  auto r = run_diagnose_fleet(o, ctx);
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::usage);
  o.log = dir.write("log.csv", sample_log());
  for (auto bad : {std::function<void(DiagnoseFleetOptions&)>(
                       [](DiagnoseFleetOptions& x) { x.utc_offset = "+8"; }),
                   std::function<void(DiagnoseFleetOptions&)>(
                       [](DiagnoseFleetOptions& x) { x.since = "soon"; }),
                   std::function<void(DiagnoseFleetOptions&)>([](DiagnoseFleetOptions& x) {
                     x.since = "2024-01-02";
                     x.until = "2024-01-01";
                   }),
                   std::function<void(DiagnoseFleetOptions&)>(
                       [](DiagnoseFleetOptions& x) { x.product_key = "bad key!"; }),
                   std::function<void(DiagnoseFleetOptions&)>(
                       [](DiagnoseFleetOptions& x) { x.show = "everything"; })}) {
    DiagnoseFleetOptions x = o;
    bad(x);
    auto e = run_diagnose_fleet(x, ctx);
    REQUIRE_FALSE(e);
    CHECK(e.error().kind == ErrorKind::usage);
  }
}

TEST_CASE("diagnose fleet: --html writes a 0644 file atomically") {
  TempDir dir;
  CaptureOutput out;
  auto ctx = make_ctx(out);
  DiagnoseFleetOptions o;
  o.log = dir.write("log.csv", sample_log());
  o.html = (dir.path / "report.html").string();
  REQUIRE(run_diagnose_fleet(o, ctx));
  struct stat st {};
  REQUIRE(::stat(o.html->c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  std::ifstream in(*o.html);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("<svg class=\"chart\" id=\"chart-days\"") != std::string::npos);
  o.html = (dir.path / "nodir" / "report.html").string();
  auto r = run_diagnose_fleet(o, ctx);
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::io);
}

TEST_CASE("diagnose fleet: exit codes through the command line") {
  TempDir dir;
  const std::string log = dir.write("log.csv", sample_log());
  const std::string calm =
      dir.write("calm.csv", "time,DeviceName,content\n2024-01-01 08:00:00,calm,online\n");
  const auto exit_of = [](std::vector<std::string> args) {
    std::vector<const char*> argv{"iotfleet"};
    for (const auto& a : args) {
      argv.push_back(a.c_str());
    }
    std::ostringstream o;
    std::ostringstream e;
    cli::AppStreams streams{o, e, false, false};
    return cli::run(static_cast<int>(argv.size()), argv.data(), streams);
  };
  CHECK(exit_of({"diagnose", "fleet", "--log", log}) == 6);
  CHECK(exit_of({"diagnose", "fleet", "--log", calm}) == 0);
  CHECK(exit_of({"diagnose", "fleet", "--log", log + ".missing"}) == 2);
  CHECK(exit_of({"diagnose", "fleet"}) == 2);
  CHECK(exit_of({"diagnose"}) == 2);
}
