// SPDX-License-Identifier: MIT
// application/x-www-form-urlencoded text (a form body or a query string): name=value pairs
// joined by '&', '+' for a space, %XX for any byte, and RFC 3986 percent-encoding back. The
// OpenAPI signer and the cloud emulator read forms leniently; a service facing devices
// (`iotfleet serve`) reads them with FormRules::strict and limits. Pure functions.
#pragma once

#include "core/error.hpp"

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace iot::core {

// std::map orders names bytewise, the order Aliyun's signatures need.
using FormFields = std::map<std::string, std::string>;

struct FormRules {
  // Lenient (false): empty pairs are skipped, a pair without '=' has an empty value, a later
  // duplicate wins. Strict (true): every pair is name=value, each name at most once, names are
  // 1..max_name of [A-Za-z0-9_.-], decoded values have no control byte and at most max_value
  // bytes, at most max_fields pairs.
  bool strict = false;
  std::size_t max_fields = 32;
  std::size_t max_name = 64;
  std::size_t max_value = 1024;
};

// ErrorKind::usage for malformed text (a bad %-escape; under strict rules any rule broken). A
// message names the rule and, for a valid name, the field; it never quotes a value (a form may
// carry a sign or a secret).
[[nodiscard]] Result<FormFields> parse_form(std::string_view text, const FormRules& rules = {});

// RFC 3986 percent-encoding of the bytes: A-Z a-z 0-9 - _ . ~ stay, everything else is %XX with
// uppercase hex (space is %20, never '+').
[[nodiscard]] std::string percent_encode(std::string_view text);

// name=value pairs in name order, both percent-encoded, joined by '&'.
[[nodiscard]] std::string form_encode(const FormFields& fields);

} // namespace iot::core
