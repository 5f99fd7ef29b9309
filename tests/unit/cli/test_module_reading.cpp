// SPDX-License-Identifier: MIT
// ModuleReading with a second copy of the secret: the state module info shows, and the agreement
// read_stable requires.
#include "commands/module_session.hpp"

#include <doctest/doctest.h>

using namespace iot;
using iot::commands::ModuleReading;
using iot::commands::secret_copy_state;

namespace {

ModuleReading reading(std::optional<std::string> sn_secret, std::optional<std::string> copy) {
  ModuleReading r;
  r.identity.imei = "490154203237518";
  if (sn_secret) {
    r.credentials = serial::Credentials{"", "490154203237518", *sn_secret, ""};
  }
  r.secret_copy = std::move(copy);
  return r;
}

} // namespace

TEST_SUITE("commands::ModuleReading secret copy") {
  TEST_CASE("secret_copy_state: same, differs, no-copy, or empty without a declared copy") {
    CHECK(secret_copy_state(reading("s3cretOne", "s3cretOne")) == "same");
    CHECK(secret_copy_state(reading("s3cretOne", "s3cretTwo")) == "differs");
    CHECK(secret_copy_state(reading(std::nullopt, "s3cretOne")) == "differs"); // SN lost
    CHECK(secret_copy_state(reading("s3cretOne", "")) == "no-copy");
    CHECK(secret_copy_state(reading(std::nullopt, "")) == "no-copy");
    CHECK(secret_copy_state(reading("s3cretOne", std::nullopt)).empty());
    CHECK(secret_copy_state(reading(std::nullopt, std::nullopt)).empty());
  }

  TEST_CASE("two readings agree only when their copies agree") {
    CHECK(reading("a", "a").same_as(reading("a", "a")));
    CHECK_FALSE(reading("a", "a").same_as(reading("a", "b"))); // a garbled copy
    CHECK_FALSE(reading("a", "").same_as(reading("a", std::nullopt)));
    CHECK(reading("a", std::nullopt).same_as(reading("a", std::nullopt)));
  }
}
