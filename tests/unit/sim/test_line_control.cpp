// SPDX-License-Identifier: MIT
// The production line: control commands, fixtures whose modules are pulled and replaced, the
// per-generation NVM files, modules.ndjson and ports.json, restarts; and the real ptys.
#include "sim/identity.hpp"
#include "sim/line_control.hpp"
#include "sim/module_model.hpp"
#include "sim/nvm.hpp"
#include "sim/pty_server.hpp"
#include "unit/sim/model_bench.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace iot::sim;
using namespace iot::sim::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using Verb = ControlCommand::Verb;

struct TempDir {
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "iot-line-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    out.push_back(line);
  }
  return out;
}

Nvm load(const fs::path& file) {
  auto loaded = load_nvm(file);
  REQUIRE(loaded);
  REQUIRE(loaded->has_value());
  return **loaded;
}

// A line over a PtyServer that is not running: commands are applied by hand with a chosen time.
struct LineBench {
  explicit LineBench(const fs::path& dir,
                     std::size_t count = 2,
                     ModuleKind kind = ModuleKind::luat,
                     IdentityOverrides overrides = {})
      : server(PtyServerOptions{115200, false}) {
    LineOptions o;
    o.config.kind = kind;
    o.config.urcs_per_minute = 0;
    o.config.nvm_latency_min = 1ms;
    o.config.nvm_latency_max = 1ms;
    o.state_dir = dir;
    o.base_seed = 42;
    o.swap_gap = 300ms;
    o.ports_files = {dir / "ports.json"};
    o.pid = ::getpid();
    o.log = &log;
    auto history = ModuleHistory::open(dir / "modules.ndjson", kind);
    REQUIRE(history);
    line.emplace(server, o, std::move(*history));
    REQUIRE(line->start(count, overrides));
    REQUIRE(line->publish());
  }

  void command(std::string_view text) { line->handle_line(text, now); }

  nlohmann::json ports(const fs::path& dir) const {
    return nlohmann::json::parse(slurp(dir / "ports.json"));
  }

  std::ostringstream log;
  PtyServer server;
  std::optional<ProductionLine> line;
  TimePoint now = SimClock::now();
};

} // namespace

TEST_SUITE("sim::line control commands") {
  TEST_CASE("the documented command lines parse") {
    auto c = parse_control_line("remove 3", ModuleKind::luat, 4);
    REQUIRE(c);
    CHECK(c->verb == Verb::remove);
    CHECK(c->index == 3u);

    c = parse_control_line("  insert 0   123456789012345 ", ModuleKind::luat, 4);
    REQUIRE(c);
    CHECK(c->verb == Verb::insert);
    CHECK(c->index == 0u);
    CHECK(c->identity == "123456789012345"); // any 15 digits, Luhn-valid or not

    c = parse_control_line("swap 2", ModuleKind::quectel, 4);
    REQUIRE(c);
    CHECK(c->verb == Verb::swap);
    CHECK(c->identity.empty());

    c = parse_control_line("swap all", ModuleKind::luat, 4);
    REQUIRE(c);
    CHECK_FALSE(c->index.has_value());

    c = parse_control_line("insert 1 24:0a:c4:aa:bb:cc", ModuleKind::esp_at, 2);
    REQUIRE(c);
    CHECK(c->identity == "24:0a:c4:aa:bb:cc");

    c = parse_control_line("set-sn 1 abc def|x", ModuleKind::luat, 2);
    REQUIRE(c);
    CHECK(c->verb == Verb::set_sn);
    CHECK(c->value == "abc def|x");
  }

  TEST_CASE("bad command lines are refused with a reason that never shows a set-sn value") {
    const char* bad[] = {"eject 1",
                         "remove",
                         "remove 4",
                         "remove x",
                         "remove -1",
                         "remove 1 2",
                         "remove all",
                         "insert 1 12345",
                         "insert 1 49015420323751a",
                         "insert 1 490154203237518 extra",
                         "swap all 490154203237518",
                         "set-sn 1",
                         "set-sn all s3cret",
                         "set-sn 9 s3cret"};
    for (const char* line : bad) {
      CAPTURE(line);
      const auto c = parse_control_line(line, ModuleKind::luat, 4);
      REQUIRE_FALSE(c);
      CHECK(c.error().kind == iot::ErrorKind::usage);
      CHECK(c.error().message.find("s3cret") == std::string::npos);
    }
    CHECK_FALSE(parse_control_line("insert 0 490154203237518", ModuleKind::esp_at, 1));
    CHECK_FALSE(parse_control_line("insert 0 24:0a:c4:aa:bb:cc", ModuleKind::luat, 1));
  }

  TEST_CASE("connected and set-copy parse on a luat line") {
    auto c = parse_control_line("connected 1", ModuleKind::luat, 2);
    REQUIRE(c);
    CHECK(c->verb == Verb::connected);
    CHECK(c->index == 1u);
    CHECK(c->value.empty());
    CHECK(to_string(c->verb) == "connected");

    c = parse_control_line("  set-copy 0   an0ther copy|x ", ModuleKind::luat, 2);
    REQUIRE(c);
    CHECK(c->verb == Verb::set_copy);
    CHECK(c->index == 0u);
    CHECK(c->value == "an0ther copy|x");
    CHECK(to_string(c->verb) == "set-copy");
  }

  TEST_CASE("bad connected and set-copy lines are refused, never quoting the value") {
    const char* bad[] = {"connected",
                         "connected 2",
                         "connected x",
                         "connected all",
                         "connected 1 s3cret",
                         "set-copy 1",
                         "set-copy 1   ",
                         "set-copy s3cret",
                         "set-copy all s3cret",
                         "set-copy 7 s3cret"};
    for (const char* line : bad) {
      CAPTURE(line);
      const auto c = parse_control_line(line, ModuleKind::luat, 2);
      REQUIRE_FALSE(c);
      CHECK(c.error().kind == iot::ErrorKind::usage);
      CHECK(c.error().message.find("s3cret") == std::string::npos);
    }
    const auto missing = parse_control_line("set-copy 1", ModuleKind::luat, 2);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message == "set-copy needs a value");
    for (const auto kind : {ModuleKind::quectel, ModuleKind::esp_at}) {
      CAPTURE(to_string(kind));
      const auto c = parse_control_line("set-copy 0 s3cret", kind, 1);
      REQUIRE_FALSE(c);
      CHECK(c.error().message.find("modelled on luat modules only") != std::string::npos);
      CHECK(c.error().message.find("s3cret") == std::string::npos);
      CHECK_FALSE(parse_control_line("connected 0", kind, 1));
    }
  }
}

TEST_SUITE("sim::ModuleModel set-sn") {
  TEST_CASE("Luat: the SN is overwritten, persisted, and AT+WISN? answers it") {
    std::optional<Nvm> persisted;
    Bench b(ModuleKind::luat, {}, 1, [&](const Nvm& n) -> iot::Status {
      persisted = n;
      return {};
    });
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    REQUIRE(b.at("AT+WISN=\"goodSecret\"") == "\r\nOK\r\n");
    REQUIRE(b.model.overwrite_sn_storage("c0rrupted"));
    CHECK(b.at("AT+WISN?") == "\r\nc0rrupted\r\n\r\nOK\r\n");
    REQUIRE(persisted);
    CHECK(persisted->sn == "c0rrupted");
  }

  TEST_CASE("Quectel: the aliauth DeviceSecret changes, PK and DN stay") {
    Bench b(ModuleKind::quectel);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    REQUIRE(b.at("AT+QMTCFG=\"aliauth\",0,\"pk1\",\"dn1\",\"ds1\"") == "\r\nOK\r\n");
    REQUIRE(b.model.overwrite_sn_storage("bad"));
    CHECK(b.at("AT+QMTCFG=\"aliauth\",0") ==
          "\r\n+QMTCFG: \"aliauth\",\"pk1\",\"dn1\",\"bad\"\r\n\r\nOK\r\n");
  }

  TEST_CASE("ESP-AT: aliyun-key/DeviceSecret is a string key with the new value") {
    Bench b(ModuleKind::esp_at);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    REQUIRE(b.model.overwrite_sn_storage("xyz"));
    CHECK(b.at("AT+SYSMFG=1,\"aliyun-key\",\"DeviceSecret\"") ==
          "\r\n+SYSMFG:\"aliyun-key\",\"DeviceSecret\",7,3,xyz\r\n\r\nOK\r\n");
  }

  TEST_CASE("a value the storage cannot hold, or a failed save, changes nothing") {
    Bench b(ModuleKind::luat);
    CHECK_FALSE(b.model.overwrite_sn_storage(std::string(65, 'a')));
    CHECK_FALSE(b.model.overwrite_sn_storage(""));
    CHECK_FALSE(b.model.nvm().sn.has_value());
    Bench broken(ModuleKind::luat, {}, 1, [](const Nvm&) -> iot::Status {
      return iot::fail(iot::ErrorKind::io, "disk full");
    });
    CHECK_FALSE(broken.model.overwrite_sn_storage("abc"));
    CHECK_FALSE(broken.model.nvm().sn.has_value());
  }
}

TEST_SUITE("sim::ModuleModel secret copy") {
  TEST_CASE("Luat: AT+NVMDS? answers an empty copy until a connection copies the SN") {
    std::optional<Nvm> persisted;
    Bench b(ModuleKind::luat, {}, 1, [&](const Nvm& n) -> iot::Status {
      persisted = n;
      return {};
    });
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+NVMDS?") == "\r\n+NVMDS: \"\"\r\n\r\nOK\r\n");
    REQUIRE(b.at("AT+WISN=\"goodSecret\"") == "\r\nOK\r\n");
    CHECK(b.at("AT+NVMDS?") == "\r\n+NVMDS: \"\"\r\n\r\nOK\r\n"); // burned, never connected
    REQUIRE(b.model.simulate_connection());
    CHECK(b.at("AT+NVMDS?") == "\r\n+NVMDS: \"goodSecret\"\r\n\r\nOK\r\n");
    REQUIRE(persisted);
    CHECK(persisted->secret_copy == "goodSecret");
    // The SN changes behind the copy's back: the copy keeps what last connected.
    REQUIRE(b.model.overwrite_sn_storage("c0rrupted"));
    CHECK(b.at("AT+NVMDS?") == "\r\n+NVMDS: \"goodSecret\"\r\n\r\nOK\r\n");
    REQUIRE(b.model.overwrite_secret_copy("badCopy"));
    CHECK(b.at("AT+NVMDS?") == "\r\n+NVMDS: \"badCopy\"\r\n\r\nOK\r\n");
    CHECK(persisted->secret_copy == "badCopy");
    CHECK(b.at("AT+WISN?") == "\r\nc0rrupted\r\n\r\nOK\r\n");
  }

  TEST_CASE("Luat: a PK|DN|DS SN copies only the DeviceSecret, the copy is read-only over AT") {
    Bench b(ModuleKind::luat);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    REQUIRE(b.at("AT+CMEE=1") == "\r\nOK\r\n");
    REQUIRE(b.at("AT+WISN=\"a1B2c3D4e5F|dev-1|theSecret\"") == "\r\nOK\r\n");
    REQUIRE(b.model.simulate_connection());
    CHECK(b.model.nvm().secret_copy == "theSecret");
    CHECK(b.at("AT+NVMDS=\"x\"") == "\r\n+CME ERROR: 3\r\n");
    CHECK(b.at("AT+NVMDS=?") == "\r\nOK\r\n");
    CHECK(b.model.nvm().secret_copy == "theSecret");
  }

  TEST_CASE("no SN, a value the copy cannot hold, a failed save or another kind change nothing") {
    Bench b(ModuleKind::luat);
    const auto none = b.model.simulate_connection();
    REQUIRE_FALSE(none);
    CHECK(none.error().message.find("holds no SN") != std::string::npos);
    CHECK_FALSE(b.model.overwrite_secret_copy(std::string(65, 'a')));
    CHECK_FALSE(b.model.overwrite_secret_copy(""));
    CHECK_FALSE(b.model.nvm().secret_copy.has_value());
    Bench broken(ModuleKind::luat, {}, 1, [](const Nvm&) -> iot::Status {
      return iot::fail(iot::ErrorKind::io, "disk full");
    });
    CHECK_FALSE(broken.model.overwrite_secret_copy("abc"));
    CHECK_FALSE(broken.model.nvm().secret_copy.has_value());
    Bench quectel(ModuleKind::quectel);
    REQUIRE(quectel.model.overwrite_sn_storage("abc"));
    CHECK_FALSE(quectel.model.simulate_connection());
    CHECK_FALSE(quectel.model.overwrite_secret_copy("abc"));
    CHECK_FALSE(quectel.model.nvm().secret_copy.has_value());
  }

  TEST_CASE("the copy round-trips through the NVM file") {
    Nvm nvm = test_nvm();
    nvm.sn = "sn";
    nvm.secret_copy = std::string("c\"o\0py", 6);
    const auto back = nvm_from_json(nvm_to_json(nvm, ModuleKind::luat));
    REQUIRE(back);
    CHECK(back->secret_copy == nvm.secret_copy);
    CHECK(*back == nvm);
    nvm.secret_copy.reset();
    const auto unset = nvm_from_json(nvm_to_json(nvm, ModuleKind::luat));
    REQUIRE(unset);
    CHECK_FALSE(unset->secret_copy.has_value());
  }
}

TEST_SUITE("sim::ModuleHistory") {
  TEST_CASE("records are appended as lines and removal keeps every line valid and its length") {
    TempDir dir;
    const fs::path file = dir.path / "modules.ndjson";
    {
      auto h = ModuleHistory::open(file, ModuleKind::luat);
      REQUIRE(h);
      CHECK(h->records().empty());
      REQUIRE(h->append(
          {0, 0, "490154203237518", dir.path / "luat-0.json", "2024-05-01T08:00:00.000Z", {}}));
      REQUIRE(h->append(
          {0, 1, "863525666982618", dir.path / "luat-0-g1.json", "2024-05-01T08:00:01.000Z", {}}));
      const auto before = slurp(file);
      REQUIRE(h->mark_removed(0, 0, "2024-05-01T08:00:00.500Z"));
      const auto after = slurp(file);
      CHECK(after.size() == before.size());
      const auto lines = lines_of(after);
      REQUIRE(lines.size() == 2);
      const auto first = nlohmann::json::parse(lines[0]);
      CHECK(first.at("index") == 0);
      CHECK(first.at("generation") == 0);
      CHECK(first.at("imei") == "490154203237518");
      CHECK(first.at("nvm") == (dir.path / "luat-0.json").string());
      CHECK(first.at("inserted_at") == "2024-05-01T08:00:00.000Z");
      CHECK(first.at("removed_at") == "2024-05-01T08:00:00.500Z");
      CHECK(nlohmann::json::parse(lines[1]).at("removed_at").is_null());
      CHECK(h->latest(0)->generation == 1);
      CHECK(h->latest(1) == nullptr);
      CHECK_FALSE(h->mark_removed(3, 0, "2024-05-01T08:00:00.500Z"));
    }
    // A kill in the middle of an append leaves a torn line: it is cut off at the next open.
    {
      std::ofstream torn(file, std::ios::app | std::ios::binary);
      torn << "{\"index\":1,\"gener";
    }
    auto again = ModuleHistory::open(file, ModuleKind::luat);
    REQUIRE(again);
    REQUIRE(again->records().size() == 2);
    CHECK(again->records()[0].removed_at == "2024-05-01T08:00:00.500Z");
    CHECK_FALSE(again->records()[1].removed_at.has_value());
    CHECK(slurp(file).ends_with("}\n"));
    // The padded null of a record read back is still overwritable in place.
    REQUIRE(again->mark_removed(0, 1, "2024-05-01T08:00:02.000Z"));
    CHECK(nlohmann::json::parse(lines_of(slurp(file))[1]).at("removed_at") ==
          "2024-05-01T08:00:02.000Z");
  }

  TEST_CASE("esp-at records name the identity mac, a line that is no record is an error") {
    TempDir dir;
    const fs::path file = dir.path / "modules.ndjson";
    {
      auto h = ModuleHistory::open(file, ModuleKind::esp_at);
      REQUIRE(h);
      REQUIRE(h->append({0, 0, "24:0a:c4:01:02:03", dir.path / "esp-at-0.json", "t", {}}));
    }
    CHECK(nlohmann::json::parse(slurp(file)).at("mac") == "24:0a:c4:01:02:03");
    std::ofstream(file, std::ios::app) << "garbage\n";
    CHECK_FALSE(ModuleHistory::open(file, ModuleKind::esp_at));
  }
}

TEST_SUITE("sim::ProductionLine") {
  TEST_CASE("start-up modules keep today's file names and are recorded as generation 0") {
    TempDir dir;
    LineBench lb(dir.path, 2);
    CHECK(fs::exists(dir.path / "luat-0.json"));
    CHECK(fs::exists(dir.path / "luat-1.json"));
    const auto& records = lb.line->history().records();
    REQUIRE(records.size() == 2);
    CHECK(records[1].index == 1);
    CHECK(records[1].generation == 0);
    CHECK(records[1].identity == load(dir.path / "luat-1.json").imei);
    CHECK(luhn_valid(records[1].identity));
    const auto ports = lb.ports(dir.path);
    CHECK(ports.at("ports")[0].at("imei") == lb.line->identity(0));
    CHECK(ports.at("ports")[0].at("present") == true);
    CHECK(ports.at("ports")[0].at("generation") == 0);
  }

  TEST_CASE("remove empties the fixture, insert brings a new module with empty NVM that boots") {
    TempDir dir;
    LineBench lb(dir.path, 2);
    const std::string old_imei = lb.line->identity(0);
    // The module in fixture 0 gets burned, then is pulled out.
    REQUIRE(lb.server.model(0)->overwrite_sn_storage("burnedSecret"));
    lb.command("remove 0");
    CHECK(lb.server.model(0) == nullptr);
    CHECK_FALSE(lb.line->present(0));
    CHECK(lb.log.str().find("control: remove 0 (" + old_imei + ", generation 0)") !=
          std::string::npos);
    CHECK(lb.line->history().records()[0].removed_at.has_value());
    auto ports = lb.ports(dir.path);
    CHECK(ports.at("ports")[0].at("imei").is_null());
    CHECK(ports.at("ports")[0].at("present") == false);
    CHECK(ports.at("ports")[1].at("imei") == lb.line->identity(1));

    lb.command("insert 0 123456789012345");
    REQUIRE(lb.server.model(0) != nullptr);
    CHECK(lb.line->identity(0) == "123456789012345");
    CHECK(lb.line->generation(0) == 1);
    const Nvm fresh = load(dir.path / "luat-0-g1.json");
    CHECK(fresh.imei == "123456789012345");
    CHECK_FALSE(fresh.sn.has_value());
    CHECK(fresh.iccid != load(dir.path / "luat-0.json").iccid);
    // The pulled module keeps what it holds, in its own file.
    CHECK(load(dir.path / "luat-0.json").sn == "burnedSecret");
    CHECK(load(dir.path / "luat-0.json").imei == old_imei);
    // It boots like a module at start-up, echo on.
    ModuleModel& m = *lb.server.model(0);
    CHECK(m.take_due(lb.now + 2s) == "\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n");
    CHECK(m.echo());
    m.feed("AT+WISN?\r", lb.now + 2s);
    CHECK(m.take_due(lb.now + 3s) == "AT+WISN?\r\r\n*CME ERROR: Missing SN\r\n\r\nOK\r\n");

    const auto& records = lb.line->history().records();
    REQUIRE(records.size() == 3);
    CHECK(records[2].index == 0);
    CHECK(records[2].generation == 1);
    CHECK(records[2].identity == "123456789012345");
    CHECK(records[2].nvm == dir.path / "luat-0-g1.json");
    CHECK_FALSE(records[2].removed_at.has_value());
    ports = lb.ports(dir.path);
    CHECK(ports.at("ports")[0].at("imei") == "123456789012345");
    CHECK(ports.at("ports")[0].at("generation") == 1);

    // Without an IMEI: a random Luhn-valid one; inserting into a full fixture replaces its module.
    lb.command("insert 0");
    CHECK(lb.line->generation(0) == 2);
    CHECK(luhn_valid(lb.line->identity(0)));
    CHECK(lb.line->identity(0) != "123456789012345");
    CHECK(lb.line->history().records()[2].removed_at.has_value());
  }

  TEST_CASE("swap removes now and inserts after the gap, swap all does every fixture") {
    TempDir dir;
    LineBench lb(dir.path, 3);
    const std::string before = lb.line->identity(1);
    lb.command("swap 1 490154203237518");
    CHECK_FALSE(lb.line->present(1));
    REQUIRE(lb.line->next_deadline() == lb.now + 300ms);
    lb.line->advance(lb.now + 299ms);
    CHECK_FALSE(lb.line->present(1));
    lb.line->advance(lb.now + 300ms);
    REQUIRE(lb.line->present(1));
    CHECK(lb.line->identity(1) == "490154203237518");
    CHECK(lb.line->identity(1) != before);
    CHECK_FALSE(lb.line->next_deadline().has_value());
    CHECK(lb.log.str().find("control: swap 1 -> 490154203237518 (generation 1)") !=
          std::string::npos);

    const std::vector<std::string> old = {
        lb.line->identity(0), lb.line->identity(1), lb.line->identity(2)};
    lb.command("swap all");
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK_FALSE(lb.line->present(i));
    }
    lb.line->advance(lb.now + 300ms);
    for (std::size_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      REQUIRE(lb.line->present(i));
      CHECK(lb.line->identity(i) != old[i]);
      CHECK(luhn_valid(lb.line->identity(i)));
    }
    CHECK(lb.line->generation(0) == 1);
    CHECK(lb.line->generation(1) == 2);
    CHECK(fs::exists(dir.path / "luat-1-g2.json"));
    CHECK(lb.line->history().records().size() == 3 + 1 + 3);

    // A remove during the gap cancels the pending insert.
    lb.command("swap 2");
    lb.command("remove 2");
    CHECK_FALSE(lb.line->next_deadline().has_value());
    lb.line->advance(lb.now + 1s);
    CHECK_FALSE(lb.line->present(2));
  }

  TEST_CASE("set-sn rewrites the module's NVM file and logs no secret") {
    TempDir dir;
    LineBench lb(dir.path, 2, ModuleKind::luat);
    lb.command("set-sn 1 notTheRightSecret");
    CHECK(load(dir.path / "luat-1.json").sn == "notTheRightSecret");
    CHECK(lb.server.model(1)->nvm().sn == "notTheRightSecret");
    lb.command("remove 1");
    lb.command("set-sn 1 another");
    lb.command("set-sn 0 " + std::string(65, 'x'));
    const std::string log = lb.log.str();
    CHECK(log.find("control: set-sn 1\n") != std::string::npos);
    CHECK(log.find("control: set-sn 1: fixture empty, ignored") != std::string::npos);
    CHECK(log.find("control: set-sn 0 failed") != std::string::npos);
    CHECK(log.find("notTheRightSecret") == std::string::npos);
    CHECK(log.find("another") == std::string::npos);
    CHECK(log.find("xxxx") == std::string::npos);
  }

  TEST_CASE("connected and set-copy rewrite the NVM file and log no secret") {
    TempDir dir;
    {
      LineBench lb(dir.path, 2, ModuleKind::luat);
      lb.command("connected 0"); // no SN yet: refused
      CHECK_FALSE(load(dir.path / "luat-0.json").secret_copy.has_value());
      lb.command("set-sn 0 theBurnedSecret");
      lb.command("connected 0");
      CHECK(load(dir.path / "luat-0.json").secret_copy == "theBurnedSecret");
      CHECK(lb.server.model(0)->nvm().secret_copy == "theBurnedSecret");
      lb.command("set-copy 0 aCorruptedCopy");
      CHECK(load(dir.path / "luat-0.json").secret_copy == "aCorruptedCopy");
      CHECK(load(dir.path / "luat-0.json").sn == "theBurnedSecret");
      lb.command("set-copy 0 " + std::string(65, 'y'));
      CHECK(load(dir.path / "luat-0.json").secret_copy == "aCorruptedCopy");
      lb.command("set-copy mistypedSecret");
      lb.command("remove 1");
      lb.command("connected 1");
      lb.command("set-copy 1 yetAnother");
      const std::string log = lb.log.str();
      CHECK(log.find("control: connected 0 failed: the module holds no SN") != std::string::npos);
      CHECK(log.find("control: connected 0\n") != std::string::npos);
      CHECK(log.find("control: set-copy 0\n") != std::string::npos);
      CHECK(log.find("control: set-copy 0 failed: the secret copy holds 1-64 bytes, got 65") !=
            std::string::npos);
      CHECK(log.find("control: ignored 'set-copy ...': the fixture index must be a number") !=
            std::string::npos);
      CHECK(log.find("control: connected 1: fixture empty, ignored") != std::string::npos);
      CHECK(log.find("control: set-copy 1: fixture empty, ignored") != std::string::npos);
      for (const char* secret :
           {"theBurnedSecret", "aCorruptedCopy", "yyyy", "mistypedSecret", "yetAnother"}) {
        CAPTURE(secret);
        CHECK(log.find(secret) == std::string::npos);
      }
      // A fresh module in the fixture has no copy.
      lb.command("insert 1");
      CHECK_FALSE(lb.server.model(1)->nvm().secret_copy.has_value());
    }
    // A restart gives fixture 0 its copy back.
    LineBench again(dir.path, 2, ModuleKind::luat);
    CHECK(again.server.model(0)->nvm().secret_copy == "aCorruptedCopy");
    CHECK_FALSE(again.server.model(1)->nvm().secret_copy.has_value());
  }

  TEST_CASE("an ignored set-sn line without its index does not log the value") {
    TempDir dir;
    LineBench lb(dir.path, 1);
    lb.command("set-sn s3cretValue");
    lb.command("set-sn s3cretValue more");
    const auto lines = lines_of(lb.log.str());
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "control: ignored 'set-sn ...': the fixture index must be a number");
    CHECK(lines[1] == "control: ignored 'set-sn ...': the fixture index must be a number");
  }

  TEST_CASE("bad lines are logged and ignored, comments and blank lines silently") {
    TempDir dir;
    LineBench lb(dir.path, 1);
    const std::string imei = lb.line->identity(0);
    lb.command("bogus 0 s3cret");
    lb.command("remove 5");
    lb.command("# a comment");
    lb.command("   ");
    CHECK(lb.line->identity(0) == imei);
    const auto lines = lines_of(lb.log.str());
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].starts_with("control: ignored 'bogus 0 ...': unknown command"));
    CHECK(lines[1] == "control: ignored 'remove 5': no fixture 5 (0-0)");
  }

  TEST_CASE("a restart restores each fixture's latest generation, an empty one stays empty") {
    TempDir dir;
    std::string imei0;
    std::string imei1;
    {
      LineBench lb(dir.path, 3);
      lb.command("swap 0");
      lb.line->advance(lb.now + 1s);
      lb.command("set-sn 0 kept");
      imei0 = lb.line->identity(0);
      imei1 = lb.line->identity(1);
      lb.command("remove 2");
    }
    LineBench again(dir.path, 3);
    CHECK(again.line->identity(0) == imei0);
    CHECK(again.line->generation(0) == 1);
    CHECK(again.server.model(0)->nvm().sn == "kept");
    CHECK(again.line->identity(1) == imei1);
    CHECK_FALSE(again.line->present(2));
    CHECK(again.log.str().find("fixture 2 is empty") != std::string::npos);
    CHECK(again.line->history().records().size() == 4); // nothing new recorded
    CHECK(again.ports(dir.path).at("ports")[2].at("present") == false);
    again.command("insert 2");
    CHECK(again.line->generation(2) == 1);
    CHECK(fs::exists(dir.path / "luat-2-g1.json"));
  }

  TEST_CASE("a state dir from before modules.ndjson keeps its modules") {
    TempDir dir;
    Nvm old = test_nvm();
    old.sn = "fromBefore";
    REQUIRE(save_nvm(nvm_path(dir.path, ModuleKind::luat, 0), old, ModuleKind::luat));
    LineBench lb(dir.path, 1);
    CHECK(lb.line->identity(0) == "490154203237518");
    CHECK(lb.server.model(0)->nvm().sn == "fromBefore");
    REQUIRE(lb.line->history().records().size() == 1);
    CHECK(lb.line->history().records()[0].identity == "490154203237518");
  }

  TEST_CASE("identity flags apply to the modules present at start-up") {
    TempDir dir;
    LineBench lb(
        dir.path, 2, ModuleKind::luat, IdentityOverrides{{"123456789012345"}, true, false});
    CHECK(lb.line->identity(0) == "123456789012345");
    CHECK(lb.line->identity(1) == "123456789012345"); // --duplicate-imei
    lb.command("swap 1");
    lb.line->advance(lb.now + 1s);
    CHECK(lb.line->identity(1) != "123456789012345");
  }

  TEST_CASE("commands arrive as lines on the control fd, split across reads") {
    TempDir dir;
    LineBench lb(dir.path, 2);
    int p[2];
    REQUIRE(::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    lb.line->set_control_fd(p[0]);
    CHECK(lb.line->control_fd() == p[0]);
    const std::string part1 = "remove 0\nrem";
    REQUIRE(::write(p[1], part1.data(), part1.size()) == static_cast<ssize_t>(part1.size()));
    lb.line->on_readable(lb.now);
    CHECK_FALSE(lb.line->present(0));
    CHECK(lb.line->present(1));
    const std::string part2 = "ove 1\n" + std::string(5000, 'z') + "\ninsert 0";
    REQUIRE(::write(p[1], part2.data(), part2.size()) == static_cast<ssize_t>(part2.size()));
    lb.line->on_readable(lb.now);
    CHECK_FALSE(lb.line->present(1));
    CHECK(lb.log.str().find("ignored a line longer than 4096 bytes") != std::string::npos);
    CHECK_FALSE(lb.line->present(0)); // no newline yet
    ::close(p[1]);
    lb.line->on_readable(lb.now); // EOF: the last line counts, the fd is no longer polled
    CHECK(lb.line->present(0));
    CHECK(lb.line->control_fd() == -1);
    ::close(p[0]);
  }
}

TEST_SUITE("sim::PtyServer fixtures") {
  // The server on its own thread, as in `iotfleet-sim modules`; the test is the host on the pty.
  TEST_CASE("a removed module's port is silent, an inserted one boots and has a new identity") {
    TempDir dir;
    LineBench lb(dir.path, 1);
    const std::string old_imei = lb.line->identity(0);
    int control[2];
    int stop[2];
    REQUIRE(::pipe2(control, O_NONBLOCK | O_CLOEXEC) == 0);
    REQUIRE(::pipe2(stop, O_CLOEXEC) == 0);
    lb.line->set_control_fd(control[0]);
    const int host = ::open(lb.server.path(0).c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(host >= 0);
    iot::Status served;
    std::thread thread([&] { served = lb.server.run(stop[0], &*lb.line); });

    auto read_for = [host](Duration d) {
      std::string out;
      const auto end = SimClock::now() + d;
      char buf[512];
      while (SimClock::now() < end) {
        pollfd pfd{host, POLLIN, 0};
        ::poll(&pfd, 1, 20);
        const ssize_t n = ::read(host, buf, sizeof buf);
        if (n > 0) {
          out.append(buf, static_cast<std::size_t>(n));
        }
      }
      return out;
    };
    auto send = [](int fd, std::string_view s) {
      return ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
    };

    read_for(900ms); // the start-up banner
    REQUIRE(send(host, "AT+CGSN\r"));
    CHECK(read_for(300ms) == "AT+CGSN\r\r\n" + old_imei + "\r\n\r\nOK\r\n");

    REQUIRE(send(control[1], "remove 0\n"));
    read_for(100ms);
    REQUIRE(send(host, "AT\r"));
    CHECK(read_for(400ms).empty()); // no echo, no reply

    REQUIRE(send(control[1], "insert 0 490154203237518\n"));
    const std::string banner = read_for(900ms);
    CHECK(banner == "\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n");
    REQUIRE(send(host, "AT+CGSN\r"));
    CHECK(read_for(300ms) == "AT+CGSN\r\r\n490154203237518\r\n\r\nOK\r\n");

    REQUIRE(send(control[1], "set-sn 0 c0rrupt\n"));
    read_for(100ms);
    REQUIRE(send(host, "AT+WISN?\r"));
    CHECK(read_for(300ms) == "AT+WISN?\r\r\nc0rrupt\r\n\r\nOK\r\n");

    REQUIRE(send(stop[1], "x"));
    thread.join();
    CHECK(served);
    ::close(host);
    for (const int fd : {control[0], control[1], stop[0], stop[1]}) {
      ::close(fd);
    }
  }
}
