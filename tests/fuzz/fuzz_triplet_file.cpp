// SPDX-License-Identifier: MIT
// libFuzzer target for pool files (core/triplet_file.cpp, with core/csv.cpp and validate.cpp).
// Input: one option byte (bit 0: scheme, bits 1-2: max_line_bytes 4096 / 64 / 0 (none) / 17),
// then the file content. Invariants checked on every input:
//   - a failure is ErrorKind::usage; on success format is one of the four names;
//   - every row passes the validators, has the requested scheme, one ProductKey, a unique
//     DeviceName; rows and problems have distinct, increasing lines within 1..lines;
//   - every message is valid UTF-8 without control bytes, and contains no row's secret of 21+
//     characters (longer than any ProductKey, which messages may print);
//   - the same content with LF turned into CRLF, or with a UTF-8 BOM in front, parses the same;
//   - the rows written back as CSV (csv_line) parse back to the same rows with no problem.
#include "core/csv.hpp"
#include "core/triplet_file.hpp"
#include "core/validate.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace iot;
using namespace iot::core;

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool valid_utf8_no_controls(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      return false;
    }
    std::size_t len = 1;
    if (c >= 0x80) {
      if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
        len = 2;
      } else if ((c & 0xF0) == 0xE0) {
        len = 3;
      } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
        len = 4;
      } else {
        return false;
      }
      if (i + len > s.size()) {
        return false;
      }
      for (std::size_t k = 1; k < len; ++k) {
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
          return false;
        }
      }
    }
    i += len;
  }
  return true;
}

bool same_rows(const TripletRow& a, const TripletRow& b) {
  return a.product_key == b.product_key && a.device_name == b.device_name && a.secret == b.secret &&
         a.scheme == b.scheme && a.line == b.line;
}

bool same(const Result<TripletFile>& a, const Result<TripletFile>& b) {
  if (a.has_value() != b.has_value()) {
    return false;
  }
  if (!a) {
    return a.error().kind == b.error().kind;
  }
  if (a->format != b->format || a->lines != b->lines || a->rows.size() != b->rows.size() ||
      a->problems.size() != b->problems.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a->rows.size(); ++i) {
    if (!same_rows(a->rows[i], b->rows[i])) {
      return false;
    }
  }
  for (std::size_t i = 0; i < a->problems.size(); ++i) {
    if (a->problems[i].line != b->problems[i].line ||
        a->problems[i].message != b->problems[i].message) {
      return false;
    }
  }
  return true;
}

void check_file(const TripletFile& f, const TripletParseOptions& options) {
  check(f.format == "aliyun-csv" || f.format == "csv" || f.format == "csv-no-header" ||
        f.format == "ndjson");
  std::set<std::size_t> lines;
  std::set<std::string> names;
  std::size_t last = 0;
  for (const auto& row : f.rows) {
    check(row.scheme == options.scheme);
    check(validate_product_key(row.product_key).has_value());
    check(validate_device_name(row.device_name).has_value());
    check(options.scheme == Scheme::device ? validate_device_secret(row.secret).has_value()
                                           : validate_product_secret(row.secret).has_value());
    check(row.product_key == f.rows.front().product_key);
    check(names.insert(row.device_name).second);
    check(row.line > last && row.line <= f.lines);
    last = row.line;
    lines.insert(row.line);
  }
  last = 0;
  for (const auto& p : f.problems) {
    check(p.line > last && p.line <= f.lines);
    last = p.line;
    check(lines.insert(p.line).second);
    check(!p.message.empty() && valid_utf8_no_controls(p.message));
    for (const auto& row : f.rows) {
      check(row.secret.size() < 21 || p.message.find(row.secret) == std::string::npos);
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  static constexpr std::size_t k_limits[] = {4096, 64, 0, 17};
  TripletParseOptions options;
  options.scheme = (data[0] & 1U) != 0 ? Scheme::product : Scheme::device;
  options.max_line_bytes = k_limits[(data[0] >> 1) & 3U];
  const std::string_view content(reinterpret_cast<const char*>(data + 1), size - 1);

  const Result<TripletFile> parsed = parse_triplet_file(content, options);
  if (!parsed) {
    check(parsed.error().kind == ErrorKind::usage);
    check(valid_utf8_no_controls(parsed.error().message));
  } else {
    check_file(*parsed, options);
  }

  if (content.find('\r') == std::string_view::npos && !content.starts_with("\xEF\xBB\xBF")) {
    std::string crlf;
    crlf.reserve(content.size() * 2);
    for (char c : content) {
      if (c == '\n') {
        crlf += '\r';
      }
      crlf += c;
    }
    check(same(parsed, parse_triplet_file(crlf, options)));
    // A BOM in front changes nothing, unless the content starts with a UTF-16 BOM (then the BOM
    // hides it) or is empty after it either way.
    if (!content.starts_with("\xFF\xFE") && !content.starts_with("\xFE\xFF")) {
      check(same(parsed, parse_triplet_file("\xEF\xBB\xBF" + std::string(content), options)));
    }
  }

  if (parsed && !parsed->rows.empty()) {
    const bool device = options.scheme == Scheme::device;
    std::string csv =
        device ? "ProductKey,DeviceName,DeviceSecret\n" : "ProductKey,DeviceName,ProductSecret\n";
    for (const auto& row : parsed->rows) {
      csv += csv_line({row.product_key, row.device_name, row.secret});
      csv += '\n';
    }
    TripletParseOptions unlimited = options;
    unlimited.max_line_bytes = 0;
    const auto again = parse_triplet_file(csv, unlimited);
    check(again.has_value() && again->problems.empty() &&
          again->rows.size() == parsed->rows.size());
    for (std::size_t i = 0; i < again->rows.size(); ++i) {
      TripletRow expected = parsed->rows[i];
      expected.line = i + 2;
      check(same_rows(again->rows[i], expected));
    }
  }
  return 0;
}
