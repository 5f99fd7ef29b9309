// SPDX-License-Identifier: MIT
#include "core/form.hpp"

#include <utility>

namespace iot::core {
namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

bool is_name_byte(unsigned char c) {
  return is_unreserved(c) && c != '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

Result<std::string> form_decode(std::string_view text, std::size_t offset) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      const int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return fail(ErrorKind::usage,
                    "malformed %-escape in form data at offset " + std::to_string(offset + i));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Status check_strict(const std::string& name,
                    const std::string& value,
                    bool has_equals,
                    const FormFields& fields,
                    const FormRules& rules) {
  if (name.empty() || name.size() > rules.max_name) {
    return fail(ErrorKind::usage,
                "form field names are 1 to " + std::to_string(rules.max_name) + " characters");
  }
  for (const char c : name) {
    if (!is_name_byte(static_cast<unsigned char>(c))) {
      return fail(ErrorKind::usage,
                  "a form field name has a character other than A-Z a-z 0-9 _ . -");
    }
  }
  if (!has_equals) {
    return fail(ErrorKind::usage, "form field " + name + " has no '=' and no value");
  }
  if (fields.contains(name)) {
    return fail(ErrorKind::usage, "form field " + name + " is given twice");
  }
  if (value.size() > rules.max_value) {
    return fail(ErrorKind::usage,
                "form field " + name + " is longer than " + std::to_string(rules.max_value) +
                    " bytes");
  }
  for (const char c : value) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      return fail(ErrorKind::usage, "form field " + name + " has a control byte");
    }
  }
  if (fields.size() >= rules.max_fields) {
    return fail(ErrorKind::usage,
                "a form has at most " + std::to_string(rules.max_fields) + " fields");
  }
  return {};
}

} // namespace

Result<FormFields> parse_form(std::string_view text, const FormRules& rules) {
  FormFields fields;
  std::size_t offset = 0;
  while (offset <= text.size()) {
    const std::size_t amp = text.find('&', offset);
    const std::size_t end = amp == std::string_view::npos ? text.size() : amp;
    const std::string_view pair = text.substr(offset, end - offset);
    const std::size_t pair_offset = offset;
    offset = end + 1;
    if (pair.empty()) {
      if (rules.strict && !(text.empty() && pair_offset == 0)) {
        return fail(ErrorKind::usage,
                    "an empty pair in form data at offset " + std::to_string(pair_offset) +
                        " ('&&' or a '&' at an end)");
      }
      continue;
    }
    const std::size_t eq = pair.find('=');
    auto name = IOT_TRY(form_decode(pair.substr(0, eq), pair_offset));
    auto value =
        IOT_TRY(form_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1),
                            pair_offset + eq + 1));
    if (rules.strict) {
      IOT_TRY(check_strict(name, value, eq != std::string_view::npos, fields, rules));
    }
    fields[std::move(name)] = std::move(value);
  }
  return fields;
}

std::string percent_encode(std::string_view text) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(k_hex[c >> 4U]);
      out.push_back(k_hex[c & 0x0FU]);
    }
  }
  return out;
}

std::string form_encode(const FormFields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) {
      out.push_back('&');
    }
    out += percent_encode(name);
    out.push_back('=');
    out += percent_encode(value);
  }
  return out;
}

} // namespace iot::core
