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

bool json_string(
    const char*& p, const char* end, std::string_view& out, std::string& buf, bool& unescaped) {
  const char* start = p;
  unescaped = false;
  while (p < end && *p != '"' && *p != '\\') {
    ++p;
  }
  if (p < end && *p == '"') {
    out = std::string_view(start, static_cast<std::size_t>(p - start));
    ++p;
    return true;
  }
  buf.assign(start, p);
  while (p < end) {
    const char c = *p++;
    if (c == '"') {
      unescaped = true;
      out = buf;
      return true;
    }
    if (c != '\\') {
      buf += c;
      continue;
    }
    if (p >= end) {
      return false;
    }
    const char e = *p++;
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
      if (!json_hex4(p, end, cp)) {
        return false;
      }
      p += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
        std::uint32_t lo = 0;
        if (json_hex4(p + 2, end, lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
      }
      append_utf8(buf, cp);
      break;
    }
    default:
      return false;
    }
  }
  return false;
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
