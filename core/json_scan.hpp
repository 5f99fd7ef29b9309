// SPDX-License-Identifier: MIT
// Scanning flat JSON objects one line at a time, for the streaming readers (secrets files in
// core, device logs in diagnose): no DOM, and a view into the line wherever a string has no
// escape. RFC 8259 string escapes, \u surrogate pairs joined into one UTF-8 character.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace iot::core {

// The four hex digits at p, as a number. False: fewer than four left, or not hex.
[[nodiscard]] bool json_hex4(const char* p, const char* end, std::uint32_t& out);

// A JSON string whose opening quote is just before p. On success p is after the closing quote
// and `out` views the line (no escape in it) or `buf` (escapes decoded; `unescaped` true).
// False: no closing quote, or a bad escape.
[[nodiscard]] bool json_string(
    const char*& p, const char* end, std::string_view& out, std::string& buf, bool& unescaped);

// Why json_string_checked stopped.
enum class JsonStringError {
  none,
  not_closed,         // the line ends inside the string
  bad_escape,         // a backslash before anything but " \\ / b f n r t u
  bad_hex,            // \u without four hex digits
  control_character,  // strict: a byte below 0x20 that is not escaped
  lone_low_surrogate, // strict: \uDC00–\uDFFF without a high surrogate before it
  lone_high_surrogate // strict: \uD800–\uDBFF not followed by a low surrogate
};
// The fix-it text for an error ("" for none).
[[nodiscard]] std::string_view describe(JsonStringError error);

// json_string with the reason; `strict` adds RFC 8259's rules (control characters escaped,
// surrogates in pairs). On an error p is on the offending character (or at end).
[[nodiscard]] JsonStringError json_string_checked(const char*& p,
                                                  const char* end,
                                                  std::string_view& out,
                                                  std::string& buf,
                                                  bool& unescaped,
                                                  bool strict);

// Skips a value that is not a string (number, literal, object, array), nested strings included,
// up to the `,` / `}` / `]` that ends it (p is left on it). False: an object or array not closed.
[[nodiscard]] bool json_skip_value(const char*& p, const char* end);

} // namespace iot::core
