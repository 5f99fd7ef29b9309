// SPDX-License-Identifier: MIT
#include "core/interrupt.hpp"
#include "serial/ports.hpp"
#include "serial/profile.hpp"
#include "serial/serial_port.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

using namespace iot;
using namespace iot::serial;

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

// A pseudo-terminal whose other end nobody answers (a dead fixture); closed at the end.
struct DeadPty {
  int master = -1;
  std::string slave;
  DeadPty() {
    master = ::posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(master >= 0);
    REQUIRE(::grantpt(master) == 0);
    REQUIRE(::unlockpt(master) == 0);
    slave = ::ptsname(master);
  }
  ~DeadPty() {
    ::close(master);
    core::clear_interrupt();
  }
  DeadPty(const DeadPty&) = delete;
  DeadPty& operator=(const DeadPty&) = delete;
};

} // namespace

TEST_SUITE("serial::ports") {
  TEST_CASE("the simulator registry lists live simulators and skips dead or broken files") {
    const auto dir =
        std::filesystem::temp_directory_path() / ("iot-reg-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "sim-1.json")
        << R"({"pid":)" << ::getpid()
        << R"(,"module":"luat","ports":[{"path":"/dev/pts/7","imei":"490154203237518","index":1},{"path":"/dev/pts/5","imei":"","index":0}]})";
    std::ofstream(dir / "sim-2.json")
        << R"({"pid":2147483000,"module":"quectel","ports":[{"path":"/dev/pts/9"}]})";
    std::ofstream(dir / "sim-3.json") << "{not json";
    std::ofstream(dir / "other.json") << R"({"pid":1,"ports":[{"path":"/dev/pts/11"}]})";
    auto ports = read_sim_registry(dir);
    std::filesystem::remove_all(dir);
    REQUIRE(ports.size() == 2);
    CHECK(ports[0].path == "/dev/pts/5");
    CHECK(ports[1].path == "/dev/pts/7");
    CHECK(ports[1].kind == "simulated");
    CHECK(ports[1].module == "luat");
    CHECK(ports[1].imei == "490154203237518");
    CHECK(ports[1].description == "iotfleet-sim luat #1");
    CHECK(read_sim_registry(dir).empty());
  }

  TEST_CASE("open_port: a pty goes through termios, is exclusive, and round-trips bytes") {
    const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(master >= 0);
    REQUIRE(::grantpt(master) == 0);
    REQUIRE(::unlockpt(master) == 0);
    const std::string slave = ::ptsname(master);
    auto port = open_port(slave);
    REQUIRE(port);
    CHECK((*port)->path() == slave);
    auto second = open_port(slave);
    REQUIRE_FALSE(second);
    CHECK(second.error().kind == ErrorKind::serial);
    CHECK(second.error().message.starts_with("open " + slave + ": in use by another process"));
    REQUIRE((*port)->write("AT\r"));
    char buf[16] = {};
    CHECK(::read(master, buf, sizeof buf) == 3);
    CHECK(std::string(buf, 3) == "AT\r");
    CHECK(::write(master, "\r\nOK\r\n", 6) == 6);
    auto got = (*port)->read_some(std::chrono::milliseconds(500));
    REQUIRE(got);
    CHECK(*got == "\r\nOK\r\n");
    auto nothing = (*port)->read_some(std::chrono::milliseconds(10));
    REQUIRE(nothing);
    CHECK(nothing->empty());
    ::close(master);
  }

  TEST_CASE("a read on a dead pty gives way to Ctrl-C within a slice, a poll does not") {
    DeadPty pty;
    auto port = open_port(pty.slave);
    REQUIRE(port);
    const auto start = Clock::now();
    std::thread signal([] {
      std::this_thread::sleep_for(milliseconds(30));
      core::request_interrupt();
    });
    auto r = (*port)->read_some(milliseconds(3000));
    const auto waited = since(start);
    signal.join();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::interrupted);
    CHECK(r.error().message.starts_with("read " + pty.slave + ": interrupted (Ctrl-C / SIGTERM)"));
    CHECK(waited < milliseconds(30) + 2 * k_interrupt_slice);
    // Bytes already there are still handed out by a poll (nothing waits).
    REQUIRE(::write(pty.master, "OK", 2) == 2);
    std::this_thread::sleep_for(milliseconds(20));
    CHECK((*port)->read_some(milliseconds(0)).value() == "OK");
  }

  TEST_CASE("a read inside FinishInFlight waits its whole timeout despite Ctrl-C") {
    DeadPty pty;
    auto port = open_port(pty.slave);
    REQUIRE(port);
    core::request_interrupt();
    FinishInFlight in_flight(**port);
    const auto start = Clock::now();
    auto r = (*port)->read_some(milliseconds(150));
    REQUIRE(r);
    CHECK(r->empty());
    CHECK(since(start) >= milliseconds(150));
  }

  TEST_CASE("a write the device does not take gives way to Ctrl-C, saying how much left") {
    DeadPty pty;
    auto port = open_port(pty.slave);
    REQUIRE(port);
    core::request_interrupt();
    const std::string big(1 << 20, 'x'); // far more than a pty buffer holds
    const auto start = Clock::now();
    auto w = (*port)->write(big);
    REQUIRE_FALSE(w);
    CHECK(w.error().kind == ErrorKind::interrupted);
    CHECK(w.error().message.starts_with("write " + pty.slave + ": interrupted (Ctrl-C / SIGTERM)"));
    CHECK(w.error().message.ends_with(" of 1048576 bytes had left"));
    CHECK(since(start) < 2 * k_interrupt_slice);
  }

  TEST_CASE("open_port errors name the port and the fix") {
    auto missing = open_port("/dev/ttyNOPE99");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == ErrorKind::serial);
    CHECK(missing.error().message == "open /dev/ttyNOPE99: No such file or directory — check the "
                                     "cable / run 'iotfleet ports'");
    auto baud = open_port("/dev/ttyNOPE99", PortSettings{12345});
    REQUIRE_FALSE(baud);
    CHECK(baud.error().kind == ErrorKind::usage);
    CHECK(port_error_hint(EACCES) ==
          "add yourself to the dialout group (sudo usermod -aG dialout $USER, then log in again)");
  }
}

TEST_SUITE("serial::profile") {
  TEST_CASE("the built-in profiles parse") {
    for (const auto& name : builtin_profile_names()) {
      CAPTURE(name);
      auto p = builtin_profile(name);
      REQUIRE(p);
      CHECK(p->name == name);
      CHECK_FALSE(p->layouts.empty());
    }
  }

  TEST_CASE("bad profiles are config errors naming the member") {
    auto bad_json = parse_profile("{", "x.json");
    REQUIRE_FALSE(bad_json);
    CHECK(bad_json.error().kind == ErrorKind::config);
    CHECK(bad_json.error().message.starts_with("x.json: not valid JSON"));

    const std::string base = R"({"name":"m","layouts":{"triplet":{"slots":[{"name":"S",
      "write":"AT+X=\"{pk}\",\"{dn}\",\"{ds}\"","read":{"command":"AT+X?","pattern":"PATTERN"},
      "fields":{"ds":1}}]}}})";
    auto ok = parse_profile(std::string(base).replace(base.find("PATTERN"), 7, "^(.*)$"), "m.json");
    CHECK(ok.has_value());
    auto bad_re =
        parse_profile(std::string(base).replace(base.find("PATTERN"), 7, "^(.*$"), "m.json");
    REQUIRE_FALSE(bad_re);
    CHECK(bad_re.error().message.starts_with(
        "m.json: layouts.triplet.slots[0].read.pattern: invalid regular expression"));
    auto no_group =
        parse_profile(std::string(base).replace(base.find("PATTERN"), 7, "^.*$"), "m.json");
    REQUIRE_FALSE(no_group);
    CHECK(no_group.error().message.starts_with(
        "m.json: layouts.triplet.slots[0].fields.ds: must be a capture group of read.pattern"));
    std::string unknown = base;
    unknown.replace(unknown.find("{pk}"), 4, "{secret}");
    auto ph = parse_profile(unknown.replace(unknown.find("PATTERN"), 7, "^(.*)$"), "m.json");
    REQUIRE_FALSE(ph);
    CHECK(ph.error().message.starts_with(
        "m.json: layouts.triplet.slots[0].write: unknown placeholder {secret}"));
  }

  TEST_CASE("a layout's secret_copy parses into its read query and DeviceSecret group") {
    const std::string profile = R"({"name":"m","layouts":{
      "triplet":{"slots":[{"name":"S","write":"AT+X=\"{pk}\",\"{dn}\",\"{ds}\"",
        "read":{"command":"AT+X?","pattern":"^(.*)$"},"fields":{"ds":1}}],
        "secret_copy":{"name":"NVM copy","read":{"command":"AT+NVMDS?","prefix":"+NVMDS:",
          "pattern":"^\\+NVMDS: *(\"?)([^\"]*)\\1$","absent":"^\\+NVMDS: *\"\"$",
          "timeout_ms":700,"optional":false},"fields":{"ds":2}}},
      "secret":{"slots":[{"name":"S","value":"{ds}","write":"AT+X=\"{value}\"",
        "read":{"command":"AT+X?","pattern":"^(.*)$"},"fields":{"ds":1}}]}}})";
    auto p = parse_profile(profile, "m.json");
    REQUIRE_MESSAGE(p, (p ? std::string() : p.error().message));
    const ProfileLayout* triplet = p->layout("triplet");
    REQUIRE(triplet != nullptr);
    REQUIRE(triplet->secret_copy.has_value());
    const ProfileSecretCopy& copy = *triplet->secret_copy;
    CHECK(copy.name == "NVM copy");
    CHECK(copy.read.command == "AT+NVMDS?");
    CHECK(copy.read.prefix == std::optional<std::string>("+NVMDS:"));
    CHECK(copy.read.timeout == std::chrono::milliseconds(700));
    CHECK_FALSE(copy.read.optional);
    CHECK(copy.read.secret); // forced: the copy is a DeviceSecret
    CHECK(copy.read.absent_re.has_value());
    CHECK(copy.ds_group == 2);
    const ProfileLayout* secret = p->layout("secret");
    REQUIRE(secret != nullptr);
    CHECK_FALSE(secret->secret_copy.has_value());
    for (const auto& name : builtin_profile_names()) {
      CAPTURE(name);
      auto b = builtin_profile(name);
      REQUIRE(b);
      for (const auto& l : b->layouts) {
        CHECK_FALSE(l.secret_copy.has_value()); // a copy needs the customer's script
      }
    }
  }

  TEST_CASE("a bad secret_copy is a config error naming its JSON path and the fix") {
    const std::string base = R"({"name":"m","layouts":{"secret":{"slots":[{"name":"S",
      "value":"{ds}","write":"AT+X=\"{value}\"","read":{"command":"AT+X?","pattern":"^(.*)$"},
      "fields":{"ds":1}}],"secret_copy":COPY}}})";
    const auto with = [&](const std::string& copy) {
      std::string text = base;
      return parse_profile(text.replace(text.find("COPY"), 4, copy), "m.json");
    };
    const std::string read = R"("read":{"command":"AT+NVMDS?","pattern":"^\\+NVMDS: \"(.*)\"$"})";
    REQUIRE(with(R"({"name":"NVM copy",)" + read + R"(,"fields":{"ds":1}})"));
    const std::pair<std::string, std::string> cases[] = {
        {"[1]", "m.json: layouts.secret.secret_copy: must be an object like"},
        {R"({)" + read + R"(,"fields":{"ds":1}})",
         "m.json: layouts.secret.secret_copy: missing \"name\""},
        {R"({"name":"",)" + read + R"(,"fields":{"ds":1}})",
         "m.json: layouts.secret.secret_copy.name: must not be empty"},
        {R"({"name":"C","fields":{"ds":1}})",
         "m.json: layouts.secret.secret_copy: missing \"read\""},
        {R"({"name":"C","read":{"command":"AT+NVMDS?"},"fields":{"ds":1}})",
         "m.json: layouts.secret.secret_copy.read: missing \"pattern\""},
        {R"({"name":"C","read":{"command":"AT+N?","pattern":"^(.*$"},"fields":{"ds":1}})",
         "m.json: layouts.secret.secret_copy.read.pattern: invalid regular expression"},
        {R"({"name":"C","read":{"command":"AT+N?","pattern":"^(.*)$","optional":"yes"},
           "fields":{"ds":1}})",
         "m.json: layouts.secret.secret_copy.read.optional: must be true or false"},
        {R"({"name":"C",)" + read + "}",
         "m.json: layouts.secret.secret_copy.fields: must be {\"ds\": N}"},
        {R"({"name":"C",)" + read + R"(,"fields":{"pk":1}})",
         "m.json: layouts.secret.secret_copy.fields: must be {\"ds\": N}"},
        {R"({"name":"C",)" + read + R"(,"fields":{"ds":1,"dn":1}})",
         "m.json: layouts.secret.secret_copy.fields: must be {\"ds\": N}"},
        {R"({"name":"C",)" + read + R"(,"fields":{"ds":2}})",
         "m.json: layouts.secret.secret_copy.fields.ds: must be a capture group of read.pattern "
         "(1..1)"},
        {R"({"name":"C",)" + read + R"(,"fields":{"ds":"1"}})",
         "m.json: layouts.secret.secret_copy.fields.ds: must be a capture group"},
        {R"({"name":"C","write":"AT+NVMDS=\"{ds}\"",)" + read + R"(,"fields":{"ds":1}})",
         "m.json: layouts.secret.secret_copy.write: a secret copy is written by the module's own "
         "software"},
    };
    for (const auto& [copy, want] : cases) {
      CAPTURE(copy);
      auto p = with(copy);
      REQUIRE_FALSE(p);
      CHECK(p.error().kind == ErrorKind::config);
      CHECK_MESSAGE(p.error().message.starts_with(want), p.error().message);
      CHECK(p.error().message.ends_with("(see docs/module-profiles.md)"));
    }
  }

  TEST_CASE("render_template") {
    CHECK(render_template("AT+WISN=\"{value}\"", {{"value", "abc"}}) == "AT+WISN=\"abc\"");
    CHECK(render_template("{pk}|{dn}|{ds}", {{"pk", "P"}, {"dn", "D"}, {"ds", "S"}}) == "P|D|S");
    CHECK(render_template("{nope}x", {}) == "{nope}x");
  }

  TEST_CASE("load_profile reads a file, a missing file is a config error") {
    auto missing = load_profile("/nonexistent/p.json");
    REQUIRE_FALSE(missing);
    CHECK(missing.error() == Error{ErrorKind::config,
                                   "cannot read module profile /nonexistent/p.json: No such file "
                                   "or directory — check the path"});
    // A directory is refused with the fix (a stream would have read it as empty or thrown).
    const auto dir = std::filesystem::temp_directory_path();
    auto directory = load_profile(dir);
    REQUIRE_FALSE(directory);
    CHECK(directory.error().kind == ErrorKind::config);
    CHECK(directory.error().message.ends_with("give a file, not a directory"));
    const auto path = std::filesystem::temp_directory_path() /
                      ("iot-profile-" + std::to_string(::getpid()) + ".json");
    std::ofstream(path) << builtin_profile_json("quectel");
    auto p = load_profile(path);
    std::filesystem::remove(path);
    REQUIRE(p);
    CHECK(p->name == "quectel");
  }
}
