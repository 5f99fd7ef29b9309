// SPDX-License-Identifier: MIT
// Value validation for everything that may reach a module or the cloud: Aliyun triplet fields and
// IMEIs. Pure (std only). Every validator is a whitelist: a value that passes contains no `"`, `\`,
// `,`, `;`, `|`, space, CR, LF or other control byte, so it can be put inside an AT command line
// without escaping (docs/at-modules.md §5.4).
//
// Each failure is ErrorKind::usage with a message that names the field, the offending character
// (as `'x'` or `0x0d`) and its 1-based position, or the length, and says what is allowed.
// Messages for secret fields never contain the value itself.
#pragma once

#include "core/error.hpp"

#include <string_view>

namespace iot::core {

// ProductKey: 1-20 of [A-Za-z0-9] (every real key is 11; the device SDK buffer holds 20).
[[nodiscard]] Status validate_product_key(std::string_view value);

// DeviceName: 4-32 of [A-Za-z0-9_-@.:] (Aliyun's documented rule).
[[nodiscard]] Status validate_device_name(std::string_view value);

// DeviceSecret: 1-64 of [A-Za-z0-9_-@.:]. Platform-generated secrets are 32 alphanumerics and
// imported ones 1-32 of that set; we accept up to 64 (the device SDK's buffer) so a secret of a
// future format is not refused by us before the platform gets a say. Never echoed in messages.
[[nodiscard]] Status validate_device_secret(std::string_view value);

// ProductSecret: 1-64 of [A-Za-z0-9]. Never echoed in messages.
[[nodiscard]] Status validate_product_secret(std::string_view value);

// True when `digits` (all ASCII digits, any length >= 2) passes the Luhn check, i.e. its last
// digit is the check digit of the others. False for empty input or any non-digit.
[[nodiscard]] bool imei_luhn_ok(std::string_view digits);

// The Luhn check digit (0-9) for the given digits (without a check digit), as 3GPP TS 23.003
// Annex B computes it for the 14 digits TAC+SNR. -1 if the input is empty or not all digits.
[[nodiscard]] int luhn_check_digit(std::string_view digits);

enum class ImeiClass {
  valid,               // 15 digits, Luhn OK, not a known placeholder
  bad_length_or_chars, // not exactly 15 ASCII digits
  bad_check_digit,     // 15 digits but the Luhn check digit is wrong
  placeholder,         // passes Luhn but is a factory default / test value (at-modules.md §6)
};

// Placeholders: 000000000000000, 004999010640000, 352099001761481, 358673013795895, every
// all-same-digit value, and ascending/descending runs of digits ("123456789012347",
// "987654321098765"-style: each digit but the check digit is the previous one +1 (or -1) mod 10).
[[nodiscard]] ImeiClass classify_imei(std::string_view imei);

// "valid", "bad length or characters", "bad check digit", "placeholder".
[[nodiscard]] std::string_view to_string(ImeiClass c);

// Status form of classify_imei for a value that must be a real IMEI (e.g. a DeviceName that
// is the IMEI): ErrorKind::usage unless valid, naming `field` and saying why.
[[nodiscard]] Status validate_imei(std::string_view imei, std::string_view field = "IMEI");

} // namespace iot::core
