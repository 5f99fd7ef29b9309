// SPDX-License-Identifier: MIT
#include "sim/cloud_util.hpp"

#include <array>
#include <charconv>
#include <cstdio>

namespace iot::sim::cloud {

namespace {

namespace chr = std::chrono;

struct Civil {
  int year;
  unsigned month;
  unsigned day;
  unsigned weekday; // 0 = Sunday
  int hour;
  int minute;
  int second;
  int millis;
};

Civil civil(std::int64_t ms) {
  const chr::sys_time<chr::milliseconds> t{chr::milliseconds(ms)};
  const auto days = chr::floor<chr::days>(t);
  const chr::year_month_day ymd{days};
  const chr::weekday wd{days};
  const auto in_day = t - days;
  const auto h = chr::duration_cast<chr::hours>(in_day);
  const auto m = chr::duration_cast<chr::minutes>(in_day - h);
  const auto s = chr::duration_cast<chr::seconds>(in_day - h - m);
  const auto f = chr::duration_cast<chr::milliseconds>(in_day - h - m - s);
  return Civil{static_cast<int>(ymd.year()),
               static_cast<unsigned>(ymd.month()),
               static_cast<unsigned>(ymd.day()),
               wd.c_encoding(),
               static_cast<int>(h.count()),
               static_cast<int>(m.count()),
               static_cast<int>(s.count()),
               static_cast<int>(f.count())};
}

bool digits(std::string_view text, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > text.size()) {
    return false;
  }
  int value = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return false;
    }
    value = value * 10 + (text[i] - '0');
  }
  out = value;
  return true;
}

std::optional<std::int64_t>
compose(int year, int month, int day, int hour, int minute, int second, int millis) {
  const chr::year_month_day ymd{chr::year{year},
                                chr::month{static_cast<unsigned>(month)},
                                chr::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  const auto days = chr::sys_days{ymd};
  const auto t = days + chr::hours(hour) + chr::minutes(minute) + chr::seconds(second) +
                 chr::milliseconds(millis);
  return chr::duration_cast<chr::milliseconds>(t.time_since_epoch()).count();
}

// "YYYY-MM-DDThh:mm:ss" at the start of text.
bool date_time(std::string_view text, int (&f)[6]) {
  return text.size() >= 19 && digits(text, 0, 4, f[0]) && text[4] == '-' &&
         digits(text, 5, 2, f[1]) && text[7] == '-' && digits(text, 8, 2, f[2]) &&
         text[10] == 'T' && digits(text, 11, 2, f[3]) && text[13] == ':' &&
         digits(text, 14, 2, f[4]) && text[16] == ':' && digits(text, 17, 2, f[5]);
}

constexpr std::string_view k_alnum =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

} // namespace

std::int64_t to_ms(WallClock::time_point t) {
  return chr::duration_cast<chr::milliseconds>(t.time_since_epoch()).count();
}

WallClock::time_point from_ms(std::int64_t ms) {
  return WallClock::time_point{chr::duration_cast<WallClock::duration>(chr::milliseconds(ms))};
}

std::string utc_iso(std::int64_t ms) {
  const Civil c = civil(ms);
  char buffer[40];
  std::snprintf(buffer,
                sizeof buffer,
                "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                c.year,
                c.month,
                c.day,
                c.hour,
                c.minute,
                c.second,
                c.millis);
  return buffer;
}

std::string gmt_cookie(std::int64_t ms) {
  static constexpr std::array<const char*, 7> k_days{
      "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> k_months{
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const Civil c = civil(ms);
  char buffer[48];
  std::snprintf(buffer,
                sizeof buffer,
                "%s, %02u-%s-%04d %02d:%02d:%02d GMT",
                k_days[c.weekday % 7],
                c.day,
                k_months[(c.month + 11) % 12],
                c.year,
                c.hour,
                c.minute,
                c.second);
  return buffer;
}

std::string china_local(std::int64_t ms) {
  const Civil c = civil(ms + 8LL * 3600 * 1000);
  char buffer[40];
  std::snprintf(buffer,
                sizeof buffer,
                "%04d-%02u-%02u %02d:%02d:%02d",
                c.year,
                c.month,
                c.day,
                c.hour,
                c.minute,
                c.second);
  return buffer;
}

std::optional<std::int64_t> parse_timestamp(std::string_view text) {
  int f[6];
  if (text.size() != 20 || !date_time(text, f) || text[19] != 'Z') {
    return std::nullopt;
  }
  return compose(f[0], f[1], f[2], f[3], f[4], f[5], 0);
}

std::optional<std::int64_t> parse_iso_utc(std::string_view text) {
  int f[6];
  if (!date_time(text, f)) {
    return std::nullopt;
  }
  int millis = 0;
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    if (rest.size() < 5 || !digits(rest, 1, 3, millis)) {
      return std::nullopt;
    }
    rest.remove_prefix(4);
  }
  if (rest != "Z") {
    return std::nullopt;
  }
  return compose(f[0], f[1], f[2], f[3], f[4], f[5], millis);
}

bool valid_device_name(std::string_view name) {
  if (name.size() < 4 || name.size() > 32) {
    return false;
  }
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '@' || c == '.' || c == ':';
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool valid_nickname(std::string_view nickname) {
  std::size_t units = 0;
  std::size_t i = 0;
  while (i < nickname.size()) {
    const auto c = static_cast<unsigned char>(nickname[i]);
    if (c < 0x80) {
      const bool ok =
          (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      if (!ok) {
        return false;
      }
      units += 1;
      i += 1;
      continue;
    }
    // Multi-byte UTF-8: CJK and Japanese characters are all 3 bytes (U+0800..U+FFFF).
    if ((c & 0xF0U) != 0xE0U || i + 2 >= nickname.size()) {
      return false;
    }
    const auto c1 = static_cast<unsigned char>(nickname[i + 1]);
    const auto c2 = static_cast<unsigned char>(nickname[i + 2]);
    if ((c1 & 0xC0U) != 0x80U || (c2 & 0xC0U) != 0x80U) {
      return false;
    }
    const unsigned cp = ((c & 0x0FU) << 12U) | ((c1 & 0x3FU) << 6U) | (c2 & 0x3FU);
    const bool cjk = (cp >= 0x3040 && cp <= 0x30FF) || // hiragana, katakana
                     (cp >= 0x3400 && cp <= 0x4DBF) || // CJK extension A
                     (cp >= 0x4E00 && cp <= 0x9FFF) || // CJK unified ideographs
                     (cp >= 0xF900 && cp <= 0xFAFF);   // CJK compatibility ideographs
    if (!cjk) {
      return false;
    }
    units += 2;
    i += 3;
  }
  return units >= 4 && units <= 64;
}

bool valid_product_key(std::string_view key) {
  if (key.empty() || key.size() > 20) {
    return false;
  }
  for (const char c : key) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    return std::nullopt;
  }
  return value;
}

std::string random_alnum(Rng& rng, std::size_t length) {
  std::uniform_int_distribution<std::size_t> pick(0, k_alnum.size() - 1);
  std::string out(length, '0');
  for (char& c : out) {
    c = k_alnum[pick(rng)];
  }
  return out;
}

std::string random_hex(Rng& rng, std::size_t length) {
  static constexpr std::string_view k_hex = "0123456789abcdef";
  std::string out(length, '0');
  std::uint64_t bits = 0;
  int left = 0;
  for (char& c : out) {
    if (left == 0) {
      bits = rng();
      left = 16;
    }
    c = k_hex[bits & 0xFU];
    bits >>= 4U;
    --left;
  }
  return out;
}

std::string random_request_id(Rng& rng) {
  static constexpr std::string_view k_hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(36);
  const std::uint64_t a = rng();
  const std::uint64_t b = rng();
  for (int i = 0; i < 32; ++i) {
    const std::uint64_t word = i < 16 ? a : b;
    const unsigned shift = static_cast<unsigned>((i % 16) * 4);
    out.push_back(k_hex[(word >> shift) & 0xFU]);
    if (i == 7 || i == 11 || i == 15 || i == 19) {
      out.push_back('-');
    }
  }
  return out;
}

std::string random_iot_id(Rng& rng) {
  return random_alnum(rng, 21) + "00100";
}

} // namespace iot::sim::cloud
