// SPDX-License-Identifier: MIT
#include "cloud/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <random>
#include <stdexcept>

namespace iot::cloud {

namespace {

const EVP_MD* digest_for(HmacAlgorithm algorithm) {
  switch (algorithm) {
  case HmacAlgorithm::md5:
    return EVP_md5();
  case HmacAlgorithm::sha1:
    return EVP_sha1();
  case HmacAlgorithm::sha256:
    return EVP_sha256();
  }
  return EVP_sha256();
}

const EVP_MD* digest_for(HashAlgorithm algorithm) {
  return algorithm == HashAlgorithm::md5 ? EVP_md5() : EVP_sha256();
}

struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

} // namespace

std::string hmac(HmacAlgorithm algorithm, std::string_view key, std::string_view message) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int length = 0;
  // HMAC() only fails on allocation failure or an unknown digest; neither can be handled here.
  const unsigned char* ok = HMAC(digest_for(algorithm),
                                 key.data(),
                                 static_cast<int>(key.size()),
                                 reinterpret_cast<const unsigned char*>(message.data()),
                                 message.size(),
                                 out.data(),
                                 &length);
  if (ok == nullptr) {
    throw std::runtime_error("HMAC failed (OpenSSL)");
  }
  return std::string(reinterpret_cast<const char*>(out.data()), length);
}

std::string hex(std::string_view bytes, HexCase letter_case) {
  const char* digits = letter_case == HexCase::upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(digits[byte >> 4U]);
    out.push_back(digits[byte & 0x0FU]);
  }
  return out;
}

std::string base64(std::string_view bytes) {
  static constexpr std::string_view k_alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v =
        (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16U) |
        (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8U) |
        static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(k_alphabet[(v >> 18U) & 0x3FU]);
    out.push_back(k_alphabet[(v >> 12U) & 0x3FU]);
    out.push_back(k_alphabet[(v >> 6U) & 0x3FU]);
    out.push_back(k_alphabet[v & 0x3FU]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16U;
    if (rest == 2) {
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8U;
    }
    out.push_back(k_alphabet[(v >> 18U) & 0x3FU]);
    out.push_back(k_alphabet[(v >> 12U) & 0x3FU]);
    out.push_back(rest == 2 ? k_alphabet[(v >> 6U) & 0x3FU] : '=');
    out.push_back('=');
  }
  return out;
}

struct Hasher::Impl {
  const EVP_MD* md = nullptr;
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> ctx;

  void reset() {
    if (EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
      throw std::runtime_error("EVP_DigestInit_ex failed (OpenSSL)");
    }
  }
};

Hasher::Hasher(HashAlgorithm algorithm) : m_impl(std::make_unique<Impl>()) {
  m_impl->md = digest_for(algorithm);
  m_impl->ctx.reset(EVP_MD_CTX_new());
  if (!m_impl->ctx) {
    throw std::bad_alloc();
  }
  m_impl->reset();
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(std::string_view bytes) {
  if (!bytes.empty()) {
    EVP_DigestUpdate(m_impl->ctx.get(), bytes.data(), bytes.size());
  }
}

std::string Hasher::finish() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(m_impl->ctx.get(), out.data(), &length);
  m_impl->reset();
  return std::string(reinterpret_cast<const char*>(out.data()), length);
}

std::string md5(std::string_view bytes) {
  Hasher hasher(HashAlgorithm::md5);
  hasher.update(bytes);
  return hasher.finish();
}

std::string sha256(std::string_view bytes) {
  Hasher hasher(HashAlgorithm::sha256);
  hasher.update(bytes);
  return hasher.finish();
}

std::string random_bytes(std::size_t count) {
  std::string out(count, '\0');
  if (count == 0) {
    return out;
  }
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count)) != 1) {
    // Nonces need uniqueness more than secrecy; the OS generator is good enough for that.
    std::random_device device;
    for (char& c : out) {
      c = static_cast<char>(device() & 0xFFU);
    }
  }
  return out;
}

std::string uuid_v4() {
  std::string bytes = random_bytes(16);
  bytes[6] = static_cast<char>((static_cast<unsigned char>(bytes[6]) & 0x0FU) | 0x40U);
  bytes[8] = static_cast<char>((static_cast<unsigned char>(bytes[8]) & 0x3FU) | 0x80U);
  const std::string h = hex(bytes);
  return h.substr(0, 8) + '-' + h.substr(8, 4) + '-' + h.substr(12, 4) + '-' + h.substr(16, 4) +
         '-' + h.substr(20);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace iot::cloud
