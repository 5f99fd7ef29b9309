// SPDX-License-Identifier: MIT
#include "core/form.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace iot;
using namespace iot::core;

namespace {

FormRules strict() {
  FormRules rules;
  rules.strict = true;
  rules.max_fields = 3;
  rules.max_name = 8;
  rules.max_value = 10;
  return rules;
}

std::string strict_error(std::string_view text) {
  auto parsed = parse_form(text, strict());
  REQUIRE_FALSE(parsed.has_value());
  CHECK(parsed.error().kind == ErrorKind::usage);
  return parsed.error().message;
}

} // namespace

TEST_SUITE("core::form") {
  TEST_CASE("lenient: '+' is a space, %XX a byte, empty pairs skipped, a later duplicate wins") {
    auto f = parse_form("a=1+2&&b=%41%2b&c&a=3");
    REQUIRE(f.has_value());
    CHECK(*f == FormFields{{"a", "3"}, {"b", "A+"}, {"c", ""}});
    CHECK(parse_form("").value().empty());
    CHECK_FALSE(parse_form("a=%G1").has_value());
    CHECK_FALSE(parse_form("a=%4").has_value());
  }

  TEST_CASE("strict: every rule broken is named, no value is quoted") {
    CHECK(parse_form("a=1&b=x+y", strict()).value() == FormFields{{"a", "1"}, {"b", "x y"}});
    CHECK(parse_form("", strict()).value().empty());
    CHECK(strict_error("a=1&a=2").find("a is given twice") != std::string::npos);
    CHECK(strict_error("a=1&&b=2").find("empty pair") != std::string::npos);
    CHECK(strict_error("a=1&").find("empty pair") != std::string::npos);
    CHECK(strict_error("a").find("has no '='") != std::string::npos);
    CHECK(strict_error("=1").find("1 to 8 characters") != std::string::npos);
    CHECK(strict_error("toolongname=1").find("1 to 8 characters") != std::string::npos);
    CHECK(strict_error("a%20b=1").find("other than") != std::string::npos);
    const auto control = strict_error("a=s3cr3t%0A");
    CHECK(control.find("control byte") != std::string::npos);
    CHECK(control.find("s3cr3t") == std::string::npos);
    CHECK(strict_error("a=s3cr3tvalue1").find("longer than 10") != std::string::npos);
    CHECK(strict_error("a=1&b=2&c=3&d=4").find("at most 3 fields") != std::string::npos);
    CHECK(strict_error("a=%zz").find("offset 2") != std::string::npos);
  }

  TEST_CASE("percent_encode keeps RFC 3986's unreserved bytes, form_encode round-trips") {
    CHECK(percent_encode("a-Z_0.~ /+&=\xc3\xa9") == "a-Z_0.~%20%2F%2B%26%3D%C3%A9");
    const FormFields fields{{"name", "a b&c=d"}, {"sign", "ABC+/="}, {"z", ""}};
    CHECK(form_encode(fields) == "name=a%20b%26c%3Dd&sign=ABC%2B%2F%3D&z=");
    CHECK(parse_form(form_encode(fields)).value() == fields);
  }
}
