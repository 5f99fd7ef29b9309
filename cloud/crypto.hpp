// SPDX-License-Identifier: MIT
// Cryptographic primitives the cloud layer needs (OpenSSL stays inside crypto.cpp):
// HMAC, hex, base64, streaming MD5/SHA-256 and a UUID v4 nonce generator.
//
// Byte strings are std::string holding raw bytes (not text): hmac() and Hasher::finish() return
// the raw digest; hex() and base64() turn raw bytes into text.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace iot::cloud {

enum class HmacAlgorithm { md5, sha1, sha256 };

// Raw HMAC digest (16, 20 or 32 bytes) of `message` under `key`.
[[nodiscard]] std::string
hmac(HmacAlgorithm algorithm, std::string_view key, std::string_view message);

enum class HexCase { lower, upper };

// Two hex digits per byte.
[[nodiscard]] std::string hex(std::string_view bytes, HexCase letter_case = HexCase::lower);

// Standard base64 (RFC 4648 alphabet, '=' padding, no line breaks).
[[nodiscard]] std::string base64(std::string_view bytes);

enum class HashAlgorithm { md5, sha256 };

// Incremental digest for data that does not fit in memory (firmware files).
// Not thread-safe; move-only.
class Hasher {
public:
  explicit Hasher(HashAlgorithm algorithm);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(std::string_view bytes);
  // Raw digest of everything passed to update(); the hasher then starts over empty.
  [[nodiscard]] std::string finish();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// One-shot digests (raw bytes).
[[nodiscard]] std::string md5(std::string_view bytes);
[[nodiscard]] std::string sha256(std::string_view bytes);

// `count` bytes from OpenSSL's CSPRNG (RAND_bytes); falls back to std::random_device should
// RAND_bytes ever fail, so it never fails itself.
[[nodiscard]] std::string random_bytes(std::size_t count);

// Random (version 4, RFC 4122 variant) UUID, lowercase: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".
// Used as SignatureNonce.
[[nodiscard]] std::string uuid_v4();

// Equality that takes the same time wherever the inputs first differ (for signatures).
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b);

} // namespace iot::cloud
