// SPDX-License-Identifier: MIT
#include "core/json_scan.hpp"

#include "core/text.hpp"

namespace iot::core {

bool json_hex4(const char* p, const char* end, std::uint32_t& out) {
  if (end - p < 4) {
    return false;
  }
  out = 0;
  for (int i = 0; i < 4; ++i) {
    const char c = p[i];
    out <<= 4;
    if (c >= '0' && c <= '9') {
      out |= static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      out |= static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      out |= static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      return false;
    }
  }
  return true;
}

std::string_view describe(JsonStringError error) {
  switch (error) {
  case JsonStringError::none:
    return "";
  case JsonStringError::not_closed:
    return "a string is not closed";
  case JsonStringError::bad_escape:
    return "unknown escape after a backslash";
  case JsonStringError::bad_hex:
    return "expected 4 hex digits after \\u";
  case JsonStringError::control_character:
    return "a control character inside a string must be escaped";
  case JsonStringError::lone_low_surrogate:
    return "a \\u escape has a low surrogate without a high one";
  case JsonStringError::lone_high_surrogate:
    return "a \\u escape has a high surrogate without a low one";
  }
  return "?";
}

JsonStringError json_string_checked(const char*& p,
                                    const char* end,
                                    std::string_view& out,
                                    std::string& buf,
                                    bool& unescaped,
                                    bool strict) {
  const auto plain = [strict](char c) {
    return c != '"' && c != '\\' && !(strict && static_cast<unsigned char>(c) < 0x20);
  };
  const char* start = p;
  unescaped = false;
  while (p < end && plain(*p)) {
    ++p;
  }
  if (p < end && *p == '"') {
    out = std::string_view(start, static_cast<std::size_t>(p - start));
    ++p;
    return JsonStringError::none;
  }
  buf.assign(start, p);
  while (p < end) {
    const char c = *p;
    if (c == '"') {
      ++p;
      unescaped = true;
      out = buf;
      return JsonStringError::none;
    }
    if (strict && static_cast<unsigned char>(c) < 0x20) {
      return JsonStringError::control_character;
    }
    ++p;
    if (c != '\\') {
      buf += c;
      continue;
    }
    if (p >= end) {
      return JsonStringError::not_closed;
    }
    const char e = *p;
    switch (e) {
    case '"':
    case '\\':
    case '/':
      buf += e;
      break;
    case 'b':
      buf += '\b';
      break;
    case 'f':
      buf += '\f';
      break;
    case 'n':
      buf += '\n';
      break;
    case 'r':
      buf += '\r';
      break;
    case 't':
      buf += '\t';
      break;
    case 'u': {
      std::uint32_t cp = 0;
      if (!json_hex4(p + 1, end, cp)) {
        ++p;
        return JsonStringError::bad_hex;
      }
      p += 5;
      if (strict && cp >= 0xDC00 && cp <= 0xDFFF) {
        return JsonStringError::lone_low_surrogate;
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        std::uint32_t lo = 0;
        if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && json_hex4(p + 2, end, lo) &&
            lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        } else if (strict) {
          return JsonStringError::lone_high_surrogate;
        }
      }
      append_utf8(buf, cp);
      continue;
    }
    default:
      return JsonStringError::bad_escape;
    }
    ++p;
  }
  return JsonStringError::not_closed;
}

bool json_string(
    const char*& p, const char* end, std::string_view& out, std::string& buf, bool& unescaped) {
  return json_string_checked(p, end, out, buf, unescaped, false) == JsonStringError::none;
}

bool json_skip_value(const char*& p, const char* end) {
  int depth = 0;
  while (p < end) {
    const char c = *p;
    if (c == '"') {
      ++p;
      while (p < end && *p != '"') {
        p += (*p == '\\') ? 2 : 1;
      }
      if (p >= end) {
        return false;
      }
      ++p;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) {
        return true;
      }
      --depth;
    } else if (c == ',' && depth == 0) {
      return true;
    }
    ++p;
  }
  return depth == 0;
}

} // namespace iot::core
