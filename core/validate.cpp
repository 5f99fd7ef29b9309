// SPDX-License-Identifier: MIT
#include "core/validate.hpp"

#include <array>
#include <cstdio>
#include <string>

namespace iot::core {
namespace {

bool is_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_name_char(char c) {
  return is_alnum(c) || c == '_' || c == '-' || c == '@' || c == '.' || c == ':';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// `'x'` for printable ASCII, `0x0d (CR)`-style for anything else, so the message itself never
// carries a control byte or a quote that a terminal or a CSV would misread.
std::string describe_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u == '\r') {
    return "0x0d (CR)";
  }
  if (u == '\n') {
    return "0x0a (LF)";
  }
  if (u == '"') {
    return "'\"' (double quote)";
  }
  if (u == ' ') {
    return "' ' (space)";
  }
  if (u > 0x20 && u < 0x7f) {
    return std::string("'") + c + "'";
  }
  std::array<char, 8> buf{};
  std::snprintf(buf.data(), buf.size(), "0x%02x", static_cast<unsigned>(u));
  return buf.data();
}

Status check(std::string_view field,
             std::string_view value,
             std::size_t min_len,
             std::size_t max_len,
             bool (*allowed)(char),
             std::string_view allowed_text) {
  if (value.size() < min_len || value.size() > max_len) {
    std::string msg = std::string(field) + " has " + std::to_string(value.size()) +
                      (value.size() == 1 ? " character" : " characters") + "; it must have ";
    msg += min_len == max_len ? std::to_string(min_len)
                              : std::to_string(min_len) + "-" + std::to_string(max_len);
    msg += " of " + std::string(allowed_text);
    return fail(ErrorKind::usage, std::move(msg));
  }
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!allowed(value[i])) {
      return fail(ErrorKind::usage,
                  std::string(field) + " contains " + describe_char(value[i]) + " at position " +
                      std::to_string(i + 1) + "; only " + std::string(allowed_text) +
                      " are allowed (a quote, comma or line break would corrupt the AT command)");
    }
  }
  return {};
}

constexpr std::string_view k_alnum_text = "letters A-Z a-z and digits 0-9";
constexpr std::string_view k_name_text = "letters, digits and _ - @ . :";

} // namespace

Status validate_product_key(std::string_view value) {
  return check("ProductKey", value, 1, 20, is_alnum, k_alnum_text);
}

Status validate_device_name(std::string_view value) {
  return check("DeviceName", value, 4, 32, is_name_char, k_name_text);
}

Status validate_device_secret(std::string_view value) {
  return check("DeviceSecret", value, 1, 64, is_name_char, k_name_text);
}

Status validate_product_secret(std::string_view value) {
  return check("ProductSecret", value, 1, 64, is_alnum, k_alnum_text);
}

int luhn_check_digit(std::string_view digits) {
  if (digits.empty()) {
    return -1;
  }
  int sum = 0;
  bool dbl = true; // the rightmost digit of the payload is doubled
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (!is_digit(*it)) {
      return -1;
    }
    int d = *it - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) {
        d -= 9;
      }
    }
    sum += d;
    dbl = !dbl;
  }
  return (10 - sum % 10) % 10;
}

bool imei_luhn_ok(std::string_view digits) {
  if (digits.size() < 2 || !is_digit(digits.back())) {
    return false;
  }
  const int cd = luhn_check_digit(digits.substr(0, digits.size() - 1));
  return cd >= 0 && cd == digits.back() - '0';
}

namespace {

bool is_placeholder(std::string_view imei) {
  static constexpr std::array<std::string_view, 4> k_blocklist = {
      "000000000000000", "004999010640000", "352099001761481", "358673013795895"};
  for (auto p : k_blocklist) {
    if (imei == p) {
      return true;
    }
  }
  bool all_same = true;
  for (char c : imei) {
    all_same = all_same && c == imei.front();
  }
  if (all_same) {
    return true;
  }
  // Runs over the 14 payload digits: 12345678901234x, 98765432109876x.
  const std::string_view payload = imei.substr(0, 14);
  bool up = true;
  bool down = true;
  for (std::size_t i = 1; i < payload.size(); ++i) {
    const int prev = payload[i - 1] - '0';
    const int cur = payload[i] - '0';
    up = up && cur == (prev + 1) % 10;
    down = down && cur == (prev + 9) % 10;
  }
  return up || down;
}

} // namespace

ImeiClass classify_imei(std::string_view imei) {
  if (imei.size() != 15) {
    return ImeiClass::bad_length_or_chars;
  }
  for (char c : imei) {
    if (!is_digit(c)) {
      return ImeiClass::bad_length_or_chars;
    }
  }
  if (!imei_luhn_ok(imei)) {
    return ImeiClass::bad_check_digit;
  }
  if (is_placeholder(imei)) {
    return ImeiClass::placeholder;
  }
  return ImeiClass::valid;
}

std::string_view to_string(ImeiClass c) {
  switch (c) {
  case ImeiClass::valid:
    return "valid";
  case ImeiClass::bad_length_or_chars:
    return "bad length or characters";
  case ImeiClass::bad_check_digit:
    return "bad check digit";
  case ImeiClass::placeholder:
    return "placeholder";
  }
  return "placeholder";
}

Status validate_imei(std::string_view imei, std::string_view field) {
  const std::string f(field);
  switch (classify_imei(imei)) {
  case ImeiClass::valid:
    return {};
  case ImeiClass::bad_length_or_chars: {
    for (std::size_t i = 0; i < imei.size(); ++i) {
      if (!is_digit(imei[i])) {
        return fail(ErrorKind::usage,
                    f + " contains " + describe_char(imei[i]) + " at position " +
                        std::to_string(i + 1) + "; an IMEI is exactly 15 digits");
      }
    }
    return fail(ErrorKind::usage,
                f + " has " + std::to_string(imei.size()) +
                    " digits; an IMEI is exactly 15 digits (8 TAC + 6 serial + 1 check digit)");
  }
  case ImeiClass::bad_check_digit: {
    const int cd = luhn_check_digit(imei.substr(0, 14));
    return fail(ErrorKind::usage,
                f + " " + std::string(imei) + " fails the Luhn check: the last digit should be " +
                    std::to_string(cd) + " — check for a typo or a module without a written IMEI");
  }
  case ImeiClass::placeholder:
    return fail(
        ErrorKind::usage,
        f + " " + std::string(imei) +
            " is a known placeholder, not a real IMEI — write the module's real IMEI first");
  }
  return {};
}

} // namespace iot::core
