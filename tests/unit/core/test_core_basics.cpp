// SPDX-License-Identifier: MIT
#include "core/csv.hpp"
#include "core/error.hpp"
#include "core/mask.hpp"
#include "core/table.hpp"
#include "core/text.hpp"

#include <doctest/doctest.h>

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
  TEST_CASE("every kind has a name") {
    CHECK(to_string(ErrorKind::difference) == "difference");
    CHECK(to_string(ErrorKind::interrupted) == "interrupted");
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
  TEST_CASE("csv_line joins quoted fields") {
    CHECK(core::csv_line({"pk", "dev,01", "", "x\"y"}) == "pk,\"dev,01\",,\"x\"\"y\"");
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

TEST_CASE("iso8601_utc") {
  CHECK(iot::core::iso8601_utc(0).empty());
  CHECK(iot::core::iso8601_utc(1550628969123) == "2019-02-20T02:16:09.123Z");
}
