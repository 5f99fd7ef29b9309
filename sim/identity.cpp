// SPDX-License-Identifier: MIT
#include "sim/identity.hpp"

#include <array>
#include <cstddef>

namespace iot::sim {
namespace {

std::string random_digits(Rng& rng, std::size_t count) {
  std::uniform_int_distribution<int> digit(0, 9);
  std::string out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(static_cast<char>('0' + digit(rng)));
  }
  return out;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

} // namespace

char luhn_check_digit(std::string_view digits) {
  int sum = 0;
  bool doubled = true; // the rightmost payload digit is doubled (check digit goes to its right)
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (doubled) {
      d *= 2;
      if (d > 9) {
        d -= 9;
      }
    }
    sum += d;
    doubled = !doubled;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

bool luhn_valid(std::string_view text) {
  if (text.size() < 2) {
    return false;
  }
  for (const char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return luhn_check_digit(text.substr(0, text.size() - 1)) == text.back();
}

bool is_imei_shaped(std::string_view text) {
  if (text.size() != 15) {
    return false;
  }
  for (const char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

bool is_mac_shaped(std::string_view text) {
  if (text.size() != 17) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i % 3 == 2 ? text[i] != ':' : !is_hex(text[i])) {
      return false;
    }
  }
  return true;
}

std::string random_imei(Rng& rng) {
  // Real TACs of Chinese LTE Cat.1 modules start with 86; the rest of the TAC is random here.
  std::string payload = "86" + random_digits(rng, 12);
  payload.push_back(luhn_check_digit(payload));
  return payload;
}

std::string random_iccid(Rng& rng) {
  std::string payload = "898604" + random_digits(rng, 13);
  payload.push_back(luhn_check_digit(payload));
  return payload;
}

std::string random_imsi(Rng& rng) {
  return "46000" + random_digits(rng, 10);
}

std::string random_mac(Rng& rng) {
  static constexpr std::array<char, 16> k_hex = {
      '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::uniform_int_distribution<int> byte(0, 255);
  std::string out = "24:0a:c4";
  for (int i = 0; i < 3; ++i) {
    const int b = byte(rng);
    out.push_back(':');
    out.push_back(k_hex[static_cast<std::size_t>(b >> 4)]);
    out.push_back(k_hex[static_cast<std::size_t>(b & 0xf)]);
  }
  return out;
}

std::string random_module_sn(Rng& rng) {
  return "MPY23LA" + random_digits(rng, 8);
}

std::uint64_t derive_seed(std::uint64_t base, std::uint64_t stream) {
  std::uint64_t z = base + (stream + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

} // namespace iot::sim
