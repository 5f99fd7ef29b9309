// SPDX-License-Identifier: MIT
// libFuzzer target for form data (core/form.cpp), the first thing a service facing devices
// reads. Input: one option byte (bit 0: strict rules), then the text. Invariants checked:
//   - a failure is ErrorKind::usage, its message short and free of control bytes;
//   - strict: every name is 1..32 of [A-Za-z0-9_.-], no value has a control byte or more than
//     256 bytes, at most 16 fields; a field given again is refused by its name alone;
//   - whatever parses, written back with form_encode, parses back to the same fields, under the
//     same rules.
#include "core/form.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace iot;
using namespace iot::core;

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool no_controls(std::string_view s) {
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      return false;
    }
  }
  return true;
}

bool name_ok(std::string_view name) {
  if (name.empty() || name.size() > 32) {
    return false;
  }
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  FormRules rules;
  rules.strict = (data[0] & 1U) != 0;
  rules.max_fields = 16;
  rules.max_name = 32;
  rules.max_value = 256;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto parsed = parse_form(text, rules);
  if (!parsed) {
    check(parsed.error().kind == ErrorKind::usage);
    check(parsed.error().message.size() < 200);
    check(no_controls(parsed.error().message));
    return 0;
  }
  if (rules.strict) {
    check(parsed->size() <= rules.max_fields);
    for (const auto& [name, value] : *parsed) {
      check(name_ok(name));
      check(value.size() <= rules.max_value);
      check(no_controls(value));
    }
  }
  auto again = parse_form(form_encode(*parsed), rules);
  check(again.has_value());
  check(*again == *parsed);
  // A rule broken after a valid prefix: the message names the field, not its value.
  if (rules.strict && !parsed->empty()) {
    const auto& [name, value] = *parsed->begin();
    auto twice = parse_form(std::string(text) + "&" + form_encode({{name, value}}), rules);
    check(!twice.has_value());
    check(twice.error().message == "form field " + name + " is given twice");
  }
  return 0;
}
