// SPDX-License-Identifier: MIT
#include "cloud/crypto.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace iot::cloud;

TEST_SUITE("cloud::crypto") {
  TEST_CASE("HMAC-SHA1 of the Python core vector") {
    CHECK(base64(hmac(HmacAlgorithm::sha1, "secret", "source")) == "Jv4yi8SobFhg5t1C7nWLbhBSFZQ=");
  }

  TEST_CASE("HMAC digests have the algorithm's size (RFC 2104/4231 vectors)") {
    // RFC 2202 test case 2 (MD5 and SHA-1), RFC 4231 test case 2 (SHA-256).
    CHECK(hex(hmac(HmacAlgorithm::md5, "Jefe", "what do ya want for nothing?")) ==
          "750c783e6ab0b503eaa86e310a5db738");
    CHECK(hex(hmac(HmacAlgorithm::sha1, "Jefe", "what do ya want for nothing?")) ==
          "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    CHECK(hex(hmac(HmacAlgorithm::sha256, "Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }

  TEST_CASE("hex in both cases") {
    CHECK(hex(std::string("\x00\xab\xff", 3)) == "00abff");
    CHECK(hex(std::string("\x00\xab\xff", 3), HexCase::upper) == "00ABFF");
    CHECK(hex("") == "");
  }

  TEST_CASE("base64 with every padding length (RFC 4648 §10)") {
    CHECK(base64("") == "");
    CHECK(base64("f") == "Zg==");
    CHECK(base64("fo") == "Zm8=");
    CHECK(base64("foo") == "Zm9v");
    CHECK(base64("foob") == "Zm9vYg==");
    CHECK(base64("fooba") == "Zm9vYmE=");
    CHECK(base64("foobar") == "Zm9vYmFy");
    CHECK(base64(std::string("\xff\xfe\xfd", 3)) == "//79");
  }

  TEST_CASE("streaming hashers equal one-shot digests") {
    CHECK(hex(md5("")) == "d41d8cd98f00b204e9800998ecf8427e");
    CHECK(hex(md5("abc")) == "900150983cd24fb0d6963f7d28e17f72");
    CHECK(hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    Hasher hasher(HashAlgorithm::sha256);
    hasher.update("a");
    hasher.update("");
    hasher.update("bc");
    CHECK(hex(hasher.finish()) == hex(sha256("abc")));
    // finish() starts over.
    hasher.update("abc");
    CHECK(hex(hasher.finish()) == hex(sha256("abc")));
    Hasher moved = std::move(hasher);
    moved.update("abc");
    CHECK(hex(moved.finish()) == hex(sha256("abc")));
  }

  TEST_CASE("UUID v4 nonces are well-formed and unique") {
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
      const std::string id = uuid_v4();
      REQUIRE(id.size() == 36);
      CHECK(id[8] == '-');
      CHECK(id[13] == '-');
      CHECK(id[14] == '4');
      CHECK(id[18] == '-');
      CHECK(std::string("89ab").find(id[19]) != std::string::npos);
      CHECK(id[23] == '-');
      seen.insert(id);
    }
    CHECK(seen.size() == 200);
    CHECK(random_bytes(0).empty());
    CHECK(random_bytes(33).size() == 33);
  }

  TEST_CASE("constant-time comparison") {
    CHECK(constant_time_equal("abc", "abc"));
    CHECK_FALSE(constant_time_equal("abc", "abd"));
    CHECK_FALSE(constant_time_equal("abc", "ab"));
    CHECK(constant_time_equal("", ""));
  }
}
