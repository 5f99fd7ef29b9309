// SPDX-License-Identifier: MIT
#include "core/csv.hpp"
#include "core/duration.hpp"
#include "core/error.hpp"
#include "core/file.hpp"
#include "core/interrupt.hpp"
#include "core/json_scan.hpp"
#include "core/mask.hpp"
#include "core/table.hpp"
#include "core/text.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>

using namespace iot;

TEST_SUITE("core::Error") {
  TEST_CASE("context prefixes what the caller was doing, outermost first") {
    Error e{ErrorKind::serial, "Permission denied"};
    const Error outer = e.context("open /dev/ttyUSB3").context("burn");
    CHECK(outer.message == "burn: open /dev/ttyUSB3: Permission denied");
    CHECK(outer.kind == ErrorKind::serial);
    CHECK(e.message == "Permission denied"); // the original is untouched
  }
  TEST_CASE("with_context turns a failed result into an unexpected with context") {
    const Result<int> r = fail(ErrorKind::usage, "bad");
    const Result<std::string> up = with_context(r, "parse");
    REQUIRE_FALSE(up.has_value());
    CHECK(up.error() == Error{ErrorKind::usage, "parse: bad"});
  }
  TEST_CASE("every kind has its own name") {
    std::set<std::string_view> names;
    for (int k = 0; k <= static_cast<int>(ErrorKind::interrupted); ++k) {
      const auto name = to_string(static_cast<ErrorKind>(k));
      CHECK(names.insert(name).second);
      CHECK(name != "");
    }
    CHECK(names.size() == 12);
    CHECK(to_string(ErrorKind::difference) == "difference");
  }
}

namespace {
int g_evaluated = 0;
Result<int> number(bool ok) {
  if (!ok) {
    return fail(ErrorKind::io, "disk full");
  }
  return 7;
}
Status step(bool ok) {
  if (!ok) {
    return fail(ErrorKind::serial, "no answer");
  }
  return {};
}
std::string context_text() {
  ++g_evaluated;
  return "write ledger";
}
Result<std::string> twice(bool ok) {
  const int n = IOT_TRY(number(ok));
  return std::to_string(n * 2);
}
Result<int> chain(bool first, bool second) {
  IOT_TRY(step(first));
  return IOT_TRY_CTX(number(second), context_text()) + 1;
}
Result<std::unique_ptr<int>> owned(bool ok) {
  auto p = IOT_TRY(Result<std::unique_ptr<int>>(
      ok ? Result<std::unique_ptr<int>>(std::make_unique<int>(3)) : fail(ErrorKind::io, "none")));
  return p;
}
} // namespace

TEST_SUITE("core::IOT_TRY") {
  TEST_CASE("yields the value, or returns the error from the enclosing function") {
    CHECK(twice(true).value() == "14");
    REQUIRE_FALSE(twice(false));
    CHECK(twice(false).error() == Error{ErrorKind::io, "disk full"});
  }
  TEST_CASE("a Status is a statement, and IOT_TRY_CTX adds context only when it fails") {
    g_evaluated = 0;
    CHECK(chain(true, true).value() == 8);
    CHECK(g_evaluated == 0);
    CHECK(chain(false, true).error() == Error{ErrorKind::serial, "no answer"});
    CHECK(chain(true, false).error() == Error{ErrorKind::io, "write ledger: disk full"});
    CHECK(g_evaluated == 1);
  }
  TEST_CASE("move-only values are moved out") {
    auto p = owned(true);
    REQUIRE(p);
    CHECK(**p == 3);
    CHECK_FALSE(owned(false));
  }
}

TEST_SUITE("core::mask") {
  TEST_CASE("long secrets keep four characters at each end") {
    CHECK(core::mask_secret("sLefbFmN9SYfnWLJTePG893XNuRVabcd") == "sLef\u2026abcd");
    CHECK(core::mask_secret("0123456789AB") == "0123\u2026"
                                               "89AB");
  }
  TEST_CASE("short secrets are hidden whole, empty stays empty") {
    CHECK(core::mask_secret("0123456789A") == "****");
    CHECK(core::mask_secret("x") == "****");
    CHECK(core::mask_secret("") == "");
  }
  TEST_CASE("mask_all replaces every occurrence, longest secret first") {
    const std::string secret = "abcdefghijklmnopqrstuvwxyz012345";
    const std::string text = "AT+WISN=\"" + secret + "\" then " + secret;
    CHECK(core::mask_all(text, {secret, "abcdefghijklmnop"}) == "AT+WISN=\"abcd\u2026"
                                                                "2345\" then abcd\u2026"
                                                                "2345");
    CHECK(core::mask_all("nothing here", {"", "secretsecret"}) == "nothing here");
  }
  TEST_CASE("secret_like_tokens: letters and digits, 16 to 64 long, never an IMEI or an ICCID") {
    const std::string device_secret = "sLefbFmN9SYfnWLJTePG893XNuRVabcd";
    const std::string line = "+NVMDS: \"a1B2c3D4e5F|dev0001|" + device_secret + "\"";
    CHECK(core::secret_like_tokens(line) == std::vector<std::string>{device_secret});
    CHECK(core::mask_all(line, core::secret_like_tokens(line)) ==
          "+NVMDS: \"a1B2c3D4e5F|dev0001|sLef\u2026abcd\"");
    CHECK(core::secret_like_tokens("hlfp0aI0d0CQa5RJ") ==
          std::vector<std::string>{"hlfp0aI0d0CQa5RJ"});                         // a ProductSecret
    CHECK(core::secret_like_tokens("+CGSN: 869939451296205").empty());           // an IMEI
    CHECK(core::secret_like_tokens("+ICCID: 89860400000000000001").empty());     // an ICCID
    CHECK(core::secret_like_tokens("Luat_V4003_ASR1802_FLOAT").empty());         // a version
    CHECK(core::secret_like_tokens("abcdefghijklmnopqrstuvwxyzABCDEF").empty()); // no digit
    CHECK(core::secret_like_tokens("a1b2c3d4e5f6g7h").empty());                  // 15: too short
    CHECK(core::secret_like_tokens(std::string(65, 'a') + "1").empty());         // 66: not a secret
    CHECK(core::secret_like_tokens("").empty());
  }
}

TEST_SUITE("core::csv") {
  TEST_CASE("plain fields are unchanged") {
    CHECK(core::csv_field("a1B2c3") == "a1B2c3");
  }
  TEST_CASE("RFC 4180: commas, quotes, CR and LF force quoting, quotes are doubled") {
    CHECK(core::csv_field("a,b") == "\"a,b\"");
    CHECK(core::csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
    CHECK(core::csv_field("line1\nline2") == "\"line1\nline2\"");
    CHECK(core::csv_field("cr\r") == "\"cr\r\"");
    CHECK(core::csv_field(" padded") == "\" padded\"");
    CHECK(core::csv_field("") == "");
  }
  TEST_CASE("CsvCursor: views into the line, decoded fields in its own storage") {
    const std::string line = R"( plain , "quoted, with comma" ,"say ""hi""",)";
    iot::core::CsvCursor cursor(line);
    std::vector<std::string_view> got;
    std::vector<bool> decoded;
    while (true) {
      auto field = cursor.next();
      REQUIRE(field);
      if (!*field) {
        break;
      }
      got.push_back(**field);
      decoded.push_back(cursor.decoded());
    }
    REQUIRE(got.size() == 4);
    CHECK(got[0] == "plain");
    CHECK(got[1] == "quoted, with comma");
    CHECK(got[2] == R"(say "hi")");
    CHECK(got[3].empty());
    CHECK(decoded == std::vector<bool>{false, false, true, false});
    // Only the decoded field lives outside the line.
    const auto inside = [&](std::string_view v) {
      return v.data() >= line.data() && v.data() <= line.data() + line.size();
    };
    CHECK(inside(got[1]));
    CHECK_FALSE(inside(got[2]));
    CHECK(cursor.count() == 4);
  }
  TEST_CASE("CsvCursor: an empty line is one empty unquoted field, errors name the field") {
    iot::core::CsvCursor empty("");
    auto first = empty.next();
    REQUIRE(first);
    REQUIRE(*first);
    CHECK((*first)->empty());
    CHECK_FALSE(empty.quoted());
    auto second = empty.next();
    REQUIRE(second);
    CHECK_FALSE(*second);
    iot::core::CsvCursor open(R"(a,"b""c)");
    REQUIRE(open.next());
    auto bad = open.next();
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.starts_with("field 2: a quote is still open"));
  }
  TEST_CASE("csv_line joins quoted fields") {
    CHECK(core::csv_line({"pk", "dev,01", "", "x\"y"}) == "pk,\"dev,01\",,\"x\"\"y\"");
  }
}

TEST_SUITE("core::json_scan") {
  TEST_CASE("json_string_checked: lenient by default, RFC 8259 rules when strict") {
    const auto scan = [](std::string_view text, bool strict, std::string& value) {
      const char* p = text.data();
      std::string_view out;
      std::string buf;
      bool unescaped = false;
      const auto e =
          iot::core::json_string_checked(p, text.data() + text.size(), out, buf, unescaped, strict);
      value.assign(out);
      return e;
    };
    using iot::core::JsonStringError;
    std::string v;
    CHECK(scan(R"(plain" rest)", true, v) == JsonStringError::none);
    CHECK(v == "plain");
    CHECK(scan(R"(a\u00e9\ud83d\ude00b")", true, v) == JsonStringError::none);
    CHECK(v == "a\u00e9\U0001F600b");
    CHECK(scan("tab\there\"", false, v) == JsonStringError::none);
    CHECK(scan("tab\there\"", true, v) == JsonStringError::control_character);
    CHECK(scan(R"(\udc00")", false, v) == JsonStringError::none);
    CHECK(scan(R"(\udc00")", true, v) == JsonStringError::lone_low_surrogate);
    CHECK(scan(R"(\ud83dx")", true, v) == JsonStringError::lone_high_surrogate);
    CHECK(scan(R"(\u12g4")", false, v) == JsonStringError::bad_hex);
    CHECK(scan(R"(\q")", false, v) == JsonStringError::bad_escape);
    CHECK(scan(R"(never closed)", false, v) == JsonStringError::not_closed);
    CHECK(iot::core::describe(JsonStringError::not_closed) == "a string is not closed");
  }
}

TEST_SUITE("core::text") {
  TEST_CASE("display width counts CJK as two columns") {
    CHECK(core::display_width("abc") == 3);
    CHECK(core::display_width("一机一密") == 8);
    CHECK(core::display_width("设备A") == 5);
    CHECK(core::display_width("ｆｕｌｌ") == 8); // fullwidth forms
    CHECK(core::display_width("e\u0301") == 1);  // combining accent adds nothing
    CHECK(core::display_width("\xff\xfe") == 2); // invalid bytes count one each
  }
  TEST_CASE("trim removes surrounding whitespace only") {
    CHECK(core::trim("  a b\r\n") == "a b");
    CHECK(core::trim("\t\n") == "");
  }
  TEST_CASE("trim_blanks takes spaces and tabs only, has_digit finds a digit anywhere") {
    CHECK(core::trim_blanks(" \ta b\t ") == "a b");
    CHECK(core::trim_blanks(" x\r") == "x\r"); // a CR ends a line: not a blank
    CHECK(core::trim_blanks("\n ") == "\n");
    CHECK(core::trim_blanks(" \t") == "");
    CHECK(core::is_blank(' '));
    CHECK(core::is_blank('\t'));
    CHECK_FALSE(core::is_blank('\r'));
    CHECK(core::has_digit("dev-7a"));
    CHECK(core::has_digit("9"));
    CHECK_FALSE(core::has_digit("device"));
    CHECK_FALSE(core::has_digit(""));
  }
}

TEST_SUITE("core::Table") {
  TEST_CASE("a row must have one cell per column") {
    core::Table t;
    t.columns = {"a", "b"};
    t.add_row({std::string("x"), std::int64_t{1}});
    CHECK(t.rows.size() == 1);
    CHECK_THROWS_AS(t.add_row({std::string("only one")}), std::logic_error);
  }
}

TEST_CASE("civil dates and days since the epoch agree, leap days included") {
  CHECK(iot::core::days_from_civil(1970, 1, 1) == 0);
  CHECK(iot::core::days_from_civil(2000, 3, 1) - iot::core::days_from_civil(2000, 2, 28) == 2);
  CHECK(iot::core::days_from_civil(1900, 3, 1) - iot::core::days_from_civil(1900, 2, 28) == 1);
  for (const std::int64_t day : {-1LL, 0LL, 11'016LL, 19'782LL, 2'932'896LL}) {
    const auto [y, m, d] = iot::core::civil_from_days(day);
    CHECK(iot::core::days_from_civil(y, m, d) == day);
  }
  const auto leap = iot::core::civil_from_days(iot::core::days_from_civil(2024, 2, 29));
  CHECK(leap.year == 2024);
  CHECK(leap.month == 2);
  CHECK(leap.day == 29);
}

TEST_CASE("iso8601_utc") {
  CHECK(iot::core::iso8601_utc(0).empty());
  CHECK(iot::core::iso8601_utc(1550628969123) == "2019-02-20T02:16:09.123Z");
}

TEST_SUITE("core::duration") {
  using namespace std::chrono_literals;
  TEST_CASE("a unit is taken as given, a bare number is in the option unit") {
    CHECK(core::parse_duration("500ms", 1s).value() == 500ms);
    CHECK(core::parse_duration("30s", 1ms).value() == 30s);
    CHECK(core::parse_duration("10m", 1s).value() == 10min);
    CHECK(core::parse_duration("2h", 1s).value() == 2h);
    CHECK(core::parse_duration("1d", 1s).value() == 24h);
    CHECK(core::parse_duration("1.5s", 1s).value() == 1500ms);
    CHECK(core::parse_duration(" 5000 ", 1ms).value() == 5000ms);
    CHECK(core::parse_duration("600", 1s).value() == 10min);
    CHECK(core::parse_duration("0", 1min).value() == 0ms);
  }
  TEST_CASE("anything else is a usage error naming the text and the syntax") {
    for (const char* bad : {"", "s", "-1s", "5 sec", "1e3", "ten", "5x", "1..2s", "99999d"}) {
      CAPTURE(bad);
      auto r = core::parse_duration(bad, 1s);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == ErrorKind::usage);
      CHECK(r.error().message.find("500ms, 30s") != std::string::npos);
    }
    CHECK(core::parse_duration("x", 1s).error().message ==
          "duration 'x': give a number with a unit — 500ms, 30s, 10m, 2h, 1d — or a bare number "
          "of seconds");
  }
  TEST_CASE("format picks the largest exact unit and parses back") {
    CHECK(core::format_duration(0ms) == "0");
    CHECK(core::format_duration(250ms) == "250ms");
    CHECK(core::format_duration(1500ms) == "1500ms");
    CHECK(core::format_duration(30s) == "30s");
    CHECK(core::format_duration(10min) == "10m");
    CHECK(core::format_duration(2h) == "2h");
    for (const std::chrono::milliseconds d :
         std::initializer_list<std::chrono::milliseconds>{1ms, 999ms, 61s, 90min, 48h}) {
      CHECK(core::parse_duration(core::format_duration(d), 1s).value() == d);
    }
  }
}

TEST_SUITE("core::read_file") {
  namespace fs = std::filesystem;
  struct TempDir {
    fs::path path = fs::temp_directory_path() / ("iot-file-" + std::to_string(::getpid()));
    TempDir() { fs::create_directories(path); }
    ~TempDir() { fs::remove_all(path); }
  };
  TEST_CASE("reads a file whole") {
    TempDir d;
    std::ofstream(d.path / "a.txt") << "one\ntwo\n";
    CHECK(core::read_file(d.path / "a.txt", "list").value() == "one\ntwo\n");
  }
  TEST_CASE("a missing file, a directory and a limit name the file, the reason and the fix") {
    TempDir d;
    const auto missing = core::read_file(d.path / "nope.txt", "device list");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == ErrorKind::usage);
    CHECK(missing.error().message == "cannot read device list " + (d.path / "nope.txt").string() +
                                         ": No such file or directory — check the path");
    const auto dir = core::read_file(d.path, "config file", {ErrorKind::config, 0});
    REQUIRE_FALSE(dir);
    CHECK(dir.error().kind == ErrorKind::config);
    CHECK(dir.error().message == "cannot read config file " + d.path.string() +
                                     ": Is a directory — give a file, not a directory");
    std::ofstream(d.path / "big") << std::string(100, 'x');
    const auto big = core::read_file(d.path / "big", "pool file", {ErrorKind::usage, 10});
    REQUIRE_FALSE(big);
    CHECK(big.error().message.find("100 bytes, more than the 10 accepted: split it") !=
          std::string::npos);
  }
  TEST_CASE("an unreadable file says so with the permissions fix") {
    if (::geteuid() == 0) {
      // root reads any file: check the wording from the errno alone.
      CHECK(core::file_error(ErrorKind::usage, "snapshot", "/x", EACCES).message ==
            "cannot read snapshot /x: Permission denied — check its permissions (ls -l /x)");
      return;
    }
    TempDir d;
    std::ofstream(d.path / "s") << "x";
    fs::permissions(d.path / "s", fs::perms::none);
    CHECK(core::read_file(d.path / "s", "snapshot").error().message.find("Permission denied") !=
          std::string::npos);
  }
}

TEST_SUITE("core::read_line_blocks") {
  TEST_CASE("read_line_blocks: lines split across blocks arrive whole, numbered") {
    char path[] = "/tmp/iotfleet-unit-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    std::string text;
    for (int i = 1; i <= 1000; ++i) {
      text += "line-" + std::to_string(i) + "\n";
    }
    text += "last-without-lf";
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::lseek(fd, 0, SEEK_SET);
    std::vector<std::string> got;
    std::size_t first_of_second_block = 0;
    int blocks = 0;
    auto ok = iot::core::read_line_blocks(
        fd, "t.csv", 64, [&](std::string_view lines, std::size_t first) -> iot::Status {
          if (++blocks == 2) {
            first_of_second_block = first;
          }
          std::size_t s = 0;
          while (s < lines.size()) {
            auto nl = lines.find('\n', s);
            got.emplace_back(lines.substr(s, nl == lines.npos ? lines.npos : nl - s));
            s = nl == lines.npos ? lines.size() : nl + 1;
          }
          return {};
        });
    ::close(fd);
    ::unlink(path);
    REQUIRE(ok);
    REQUIRE(got.size() == 1001);
    CHECK(got[0] == "line-1");
    CHECK(got[999] == "line-1000");
    CHECK(got[1000] == "last-without-lf");
    CHECK(blocks > 100);
    CHECK(first_of_second_block > 1);
  }

  TEST_CASE("read_line_blocks: a line longer than a block is an error") {
    char path[] = "/tmp/iotfleet-unit-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    const std::string text(200, 'x');
    REQUIRE(::write(fd, text.data(), text.size()) == 200);
    ::lseek(fd, 0, SEEK_SET);
    auto ok = iot::core::read_line_blocks(
        fd, "t.csv", 64, [](std::string_view, std::size_t) -> iot::Status { return {}; });
    ::close(fd);
    ::unlink(path);
    REQUIRE_FALSE(ok);
    CHECK(ok.error().kind == iot::ErrorKind::usage);
    CHECK(ok.error().message.starts_with("t.csv: line 1 is longer than 64 bytes"));
  }

  TEST_CASE("read_line_blocks: an interruption wins over a pipe that stays silent") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(::write(fds[1], "one\n", 4) == 4);
    iot::core::clear_interrupt();
    int calls = 0;
    auto ok = iot::core::read_line_blocks(
        fds[0], "a pipe", 64, [&](std::string_view text, std::size_t) -> iot::Status {
          ++calls;
          CHECK(text == "one\n");
          iot::core::request_interrupt(); // as the SIGINT handler does; the writer stays open
          return {};
        });
    iot::core::clear_interrupt();
    ::close(fds[0]);
    ::close(fds[1]);
    REQUIRE_FALSE(ok);
    CHECK(ok.error().kind == iot::ErrorKind::interrupted);
    CHECK(calls == 1);
  }
}
