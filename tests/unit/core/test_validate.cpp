// SPDX-License-Identifier: MIT
#include "core/validate.hpp"

#include <doctest/doctest.h>

using namespace iot;
using namespace iot::core;

TEST_SUITE("core::validate") {
  TEST_CASE("the Luhn check digit follows 3GPP TS 23.003 Annex B") {
    CHECK(luhn_check_digit("26053179311383") == 7);
    CHECK(luhn_check_digit("49015420323751") == 8);
    CHECK(luhn_check_digit("12345678901234") == 7);
    CHECK(luhn_check_digit("") == -1);
    CHECK(luhn_check_digit("12a4") == -1);
    CHECK(imei_luhn_ok("490154203237518"));
    CHECK_FALSE(imei_luhn_ok("490154203237519"));
    CHECK_FALSE(imei_luhn_ok(""));
  }

  TEST_CASE("IMEIs are classified as valid, malformed, bad check digit or placeholder") {
    CHECK(classify_imei("490154203237518") == ImeiClass::valid);
    CHECK(classify_imei("260531793113837") == ImeiClass::valid);
    CHECK(classify_imei("49015420323751") == ImeiClass::bad_length_or_chars);
    CHECK(classify_imei("4901542032375180") == ImeiClass::bad_length_or_chars);
    CHECK(classify_imei("49015420323751x") == ImeiClass::bad_length_or_chars);
    CHECK(classify_imei("490154203237519") == ImeiClass::bad_check_digit);
    CHECK(classify_imei("123456789012345") == ImeiClass::bad_check_digit);
    CHECK(classify_imei("000000000000000") == ImeiClass::placeholder);
    CHECK(classify_imei("004999010640000") == ImeiClass::placeholder);
    CHECK(classify_imei("352099001761481") == ImeiClass::placeholder);
    CHECK(classify_imei("123456789012347") == ImeiClass::placeholder);
    CHECK(classify_imei("555555555555555") == ImeiClass::bad_check_digit); // 5s fail Luhn
    CHECK(to_string(ImeiClass::placeholder) == "placeholder");
  }

  TEST_CASE("all-same-digit IMEIs: only 000000000000000 passes Luhn, and it is a placeholder") {
    // 15 times d: 8 plain digits and 7 doubled ones; the sum is a multiple of 10 only for 0.
    CHECK(imei_luhn_ok("000000000000000"));
    CHECK(classify_imei("000000000000000") == ImeiClass::placeholder);
    for (char d = '1'; d <= '9'; ++d) {
      const std::string imei(15, d);
      CAPTURE(imei);
      CHECK_FALSE(imei_luhn_ok(imei));
      CHECK(classify_imei(imei) == ImeiClass::bad_check_digit);
    }
  }

  TEST_CASE("validate_imei explains the problem") {
    CHECK(validate_imei("490154203237518").has_value());
    auto cd = validate_imei("490154203237519", "DeviceName");
    REQUIRE_FALSE(cd);
    CHECK(cd.error().kind == ErrorKind::usage);
    CHECK(cd.error().message ==
          "DeviceName 490154203237519 fails the Luhn check: the last digit should be 8 — check "
          "for a typo or a module without a written IMEI");
    auto ph = validate_imei("352099001761481");
    REQUIRE_FALSE(ph);
    CHECK(ph.error().message.find("known placeholder") != std::string::npos);
    auto len = validate_imei("1234");
    REQUIRE_FALSE(len);
    CHECK(len.error().message.find("has 4 digits") != std::string::npos);
  }

  TEST_CASE("ProductKey is 1-20 alphanumerics") {
    CHECK(validate_product_key("a1BwAGV1234").has_value());
    CHECK(validate_product_key(std::string(20, 'a')).has_value());
    auto too_long = validate_product_key(std::string(21, 'a'));
    REQUIRE_FALSE(too_long);
    CHECK(too_long.error().kind == ErrorKind::usage);
    CHECK(too_long.error().message ==
          "ProductKey has 21 characters; it must have 1-20 of letters A-Z a-z and digits 0-9");
    auto empty = validate_product_key("");
    REQUIRE_FALSE(empty);
    CHECK(empty.error().message.starts_with("ProductKey has 0 characters"));
    auto quote = validate_product_key("a1B\"x");
    REQUIRE_FALSE(quote);
    CHECK(quote.error().message.starts_with(
        "ProductKey contains '\"' (double quote) at position 4; only letters"));
  }

  TEST_CASE("DeviceName is 4-32 of letters, digits and _-@.:") {
    CHECK(validate_device_name("dev_01-a@b.c:d").has_value());
    CHECK(validate_device_name("490154203237518").has_value());
    CHECK_FALSE(validate_device_name("abc"));
    CHECK_FALSE(validate_device_name(std::string(33, 'a')));
    auto cr = validate_device_name("dev1\rAT+CFUN=1,1");
    REQUIRE_FALSE(cr);
    CHECK(cr.error().message.starts_with("DeviceName contains 0x0d (CR) at position 5"));
    auto comma = validate_device_name("dev,1");
    REQUIRE_FALSE(comma);
    CHECK(comma.error().message.starts_with("DeviceName contains ',' at position 4"));
    CHECK_FALSE(validate_device_name("dev 1"));
    CHECK_FALSE(validate_device_name("dev\\1"));
    CHECK_FALSE(validate_device_name("dev|1"));
  }

  TEST_CASE("secret validators never echo the value") {
    const std::string secret = "sLefbFmN9SYfnWLJTePG893XNuR\"abcd";
    auto r = validate_device_secret(secret);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("sLefbFmN") == std::string::npos);
    CHECK(
        r.error().message.starts_with("DeviceSecret contains '\"' (double quote) at position 28"));
    CHECK(validate_device_secret("sLefbFmN9SYfnWLJTePG893XNuRVabcd").has_value());
    CHECK(validate_device_secret(std::string(64, 'x')).has_value());
    CHECK_FALSE(validate_device_secret(std::string(65, 'x')));
    CHECK_FALSE(validate_device_secret(""));
    CHECK(validate_product_secret("Abcdef0123456789").has_value());
    auto ps = validate_product_secret("abc_def");
    REQUIRE_FALSE(ps);
    CHECK(ps.error().message.starts_with("ProductSecret contains '_' at position 4"));
    CHECK_FALSE(validate_product_secret(std::string(65, 'a')));
  }
}
