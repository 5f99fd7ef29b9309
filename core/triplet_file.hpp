// SPDX-License-Identifier: MIT
// Triplet pool files: what `iotfleet pool import FILE` reads (formats in docs/pool-files.md).
// Pure (std only): the caller reads the file, this parses and validates its content.
//
// Accepted formats, chosen from the first non-blank line:
//   - CSV with a header (`ProductKey,DeviceName,DeviceSecret`, the Aliyun console's batch
//     download, is "aliyun-csv"; any other order / spelling of the known columns is "csv");
//   - CSV without a header ("csv-no-header"): ProductKey,DeviceName,DeviceSecret per line, or
//     ProductKey,ProductSecret,DeviceName with Scheme::product;
//   - NDJSON ("ndjson"): one flat JSON object per line with the same keys (productKey, …).
// Every value is checked with the whitelist validators of core/validate.hpp. Messages never
// contain a DeviceSecret or ProductSecret, nor a DeviceName (which a misread header-less file
// could hold a secret in); they may contain a ProductKey.
#pragma once

#include "core/error.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace iot::core {

// 一机一密 (device: PK, DN, DeviceSecret) or 一型一密 (product: PK, ProductSecret, DN).
enum class Scheme { device, product };

struct TripletRow {
  std::string product_key;
  std::string device_name;
  std::string secret; // DeviceSecret (Scheme::device) or ProductSecret (Scheme::product). SECRET.
  Scheme scheme = Scheme::device;
  std::size_t line = 0; // 1-based physical line of the file
};

// A row left out of TripletFile::rows. `message` names the field and the fix, e.g.
// "DeviceSecret contains '=' at position 1; only letters, digits and _ - @ . : are allowed (…)";
// it does not repeat the line number (print `FILE:LINE: message`), but may name another line
// ("DeviceName repeats line 3; …"). It never contains a secret or a DeviceName.
struct RowProblem {
  std::size_t line = 0;
  std::string message;
};

struct TripletFile {
  std::string format;               // "aliyun-csv", "csv", "csv-no-header" or "ndjson"
  std::vector<TripletRow> rows;     // the valid rows, in file order
  std::vector<RowProblem> problems; // the rejected rows, in file order, one problem each
  std::size_t lines = 0; // physical lines in the file (a last line without newline counts)
};

struct TripletParseOptions {
  Scheme scheme = Scheme::device;
  // A line longer than this (line terminator excluded) is a problem, not parsed. 0: no limit.
  std::size_t max_line_bytes = 4096;
};

// Parses a whole pool file. Lines end with LF, CRLF or a lone CR (mixed is fine); a UTF-8 BOM is
// skipped; blank lines (only spaces and tabs) are skipped but counted for line numbers.
//
// Whole-file problems are ErrorKind::usage with a message naming the fix: an empty file (or only
// blank lines), a NUL byte anywhere (binary or UTF-16 file), a first line that is neither a known
// header, nor a triplet, nor a JSON object (incl. a JSON array or pretty-printed JSON), a header
// without the scheme's three columns or with a column twice, a first line over max_line_bytes.
//
// Row problems (the row is left out of `rows`): a line over max_line_bytes, a CSV quoting error,
// a field count different from the header's (or from the first line's, without header), a
// missing / empty field, a value failing validate_product_key / validate_device_name /
// validate_device_secret / validate_product_secret, a ProductKey different from the first valid
// row's, a DeviceName already seen on an earlier line (exact, case-sensitive), a row whose three
// values are column names (a repeated header); for NDJSON also invalid JSON, a line that is not
// an object, a missing key, a known key twice or with a non-string value. A header-only file is
// fine: zero rows.
[[nodiscard]] Result<TripletFile> parse_triplet_file(std::string_view content,
                                                     const TripletParseOptions& options);

} // namespace iot::core
