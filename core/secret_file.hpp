// SPDX-License-Identifier: MIT
// Secrets files for `secrets compare`, read fast (a million rows in well under a second): pure
// (std only), the caller reads or maps the file.
//
// A snapshot (SecretFileRole::snapshot) is what `secrets export` writes:
//   - CSV "csv": a header `product_key,device_name,device_secret,status,iot_id` (any order, any
//     other columns ignored; names case-insensitive, snake_case or the console's PascalCase);
//   - CSV "aliyun-csv": the console's batch download `ProductKey,DeviceName,DeviceSecret`;
//   - CSV "csv-no-header": that download without its header (a first line with no known column
//     name, a valid ProductKey first and a digit in one of the first three fields);
//   - "json" (`secrets export --format json`): a JSON array with one flat object per line,
//     `[` and `]` on lines of their own or around the first and last object;
//   - "ndjson": one flat object per line.
// The format is decided by the first non-blank byte (`[`, `{`, else CSV). RFC 4180 quoting,
// LF or CRLF line ends, a UTF-8 BOM is skipped. Every row needs a DeviceName and a DeviceSecret.
//
// A devices file (SecretFileRole::devices) is any of those with the secret optional (e.g. what
// `module info -o csv --show-secrets` or `pool export -O F` writes), or "names": one DeviceName
// per line. A row whose device_name is empty but whose `imei` is set (a `module info` reading of a
// module with no credentials; Luat's DeviceName is the IMEI) names the device by its IMEI.
//
// Values are checked with core/validate.hpp. Error messages name the column and the fix; they
// never hold a secret or a DeviceName (a misread header-less file could have either anywhere).
#pragma once

#include "core/error.hpp"
#include "core/secret_verdict.hpp"

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace iot::core {

enum class SecretFileRole { snapshot, devices };

// One row. The views point into the line given to SecretRecordParser::parse (valid while it is)
// or, for a value that had to be unescaped, into the parser (valid while the parser is).
struct SecretRecord {
  std::string_view product_key;   // "" when the file has none for this row
  std::string_view device_name;   // never empty
  std::string_view device_secret; // "" when the row has none (only in a devices file)
  std::string_view status;        // as written, "" when none
  // device_name was empty and is the row's IMEI: a module reading without credentials.
  bool name_from_imei = false;
};

class SecretRecordParser {
public:
  explicit SecretRecordParser(SecretFileRole role);
  SecretRecordParser(const SecretRecordParser&) = delete;
  SecretRecordParser& operator=(const SecretRecordParser&) = delete;

  // One physical line without its LF (a trailing CR is dropped). true: `out` holds a record;
  // false: the line holds none (blank, the header, a JSON array's brackets). ErrorKind::usage
  // with the problem and its fix, without the line number (the caller prefixes "FILE: line N: ").
  [[nodiscard]] Result<bool> parse(std::string_view line, SecretRecord& out);

  // A parser for the later lines of the same file (format and columns as this one's, its own
  // unescaped values): to read parts of a file in parallel.
  [[nodiscard]] std::unique_ptr<SecretRecordParser> for_later_lines() const;

  // "csv", "aliyun-csv", "csv-no-header", "json", "ndjson" or "names"; "" before the first
  // non-blank line.
  [[nodiscard]] std::string_view format() const;
  // The file has a DeviceSecret column / key (always, for a snapshot).
  [[nodiscard]] bool has_secret_column() const { return m_has_secret; }

private:
  enum class Format : std::uint8_t { none, csv, aliyun_csv, csv_no_header, json, ndjson, names };
  enum class Field : std::uint8_t { none, product_key, device_name, device_secret, status, imei };
  struct Values {
    std::string_view v[6];
  };

  Result<bool> first_line(std::string_view line, SecretRecord& out);
  Result<bool> csv_row(std::string_view line, SecretRecord& out);
  Result<bool> json_row(std::string_view line, SecretRecord& out);
  Result<bool> names_row(std::string_view line, SecretRecord& out);
  Result<bool> finish(const Values& values, SecretRecord& out);
  std::string_view keep(std::string value);

  SecretFileRole m_role;
  Format m_format = Format::none;
  bool m_has_secret = false;
  bool m_started = false;
  std::vector<Field> m_columns; // CSV: the field each column holds
  std::size_t m_needed_columns = 0;
  std::deque<std::string> m_arena; // unescaped values; a deque keeps their addresses
  std::string m_last_product_key;  // validated already
};

// One device of a snapshot. Points into the snapshot's content (or its parser's arena).
struct SnapshotEntry {
  const char* name = nullptr;
  const char* secret = nullptr;
  std::uint8_t name_size = 0; // DeviceName: at most 32 bytes, DeviceSecret at most 64
  std::uint8_t secret_size = 0;
  DeviceStatus status = DeviceStatus::unknown;

  [[nodiscard]] std::string_view device_name() const { return {name, name_size}; }
  [[nodiscard]] std::string_view device_secret() const { return {secret, secret_size}; }
};

// A whole snapshot indexed by DeviceName: a flat vector of entries (24 bytes each) and an
// open-addressing table of 8-byte slots, no string copied. One ProductKey, each DeviceName once.
class SecretSnapshot {
public:
  // Parses `content`, which must outlive the snapshot, in `threads` parts (0: up to 2, as the
  // machine has cores; small files in one). ErrorKind::usage naming the line ("line 7: …") and
  // the fix for: an empty file or one without a device, a first line that is none of the
  // formats, a bad row, a DeviceName on two lines, two ProductKeys.
  [[nodiscard]] static Result<SecretSnapshot> parse(std::string_view content, unsigned threads = 0);

  // The entry of device_name, or nullptr.
  [[nodiscard]] const SnapshotEntry* find(std::string_view device_name) const;
  // out[i] = find(names[i]) for every i (out.size() >= names.size()), a group of lookups at a
  // time with their memory prefetched: several times faster than find() one by one.
  void find_many(std::span<const std::string_view> names,
                 std::span<const SnapshotEntry*> out) const;
  [[nodiscard]] std::size_t size() const { return m_entries.size(); }
  [[nodiscard]] std::span<const SnapshotEntry> entries() const { return m_entries; }
  [[nodiscard]] const std::string& product_key() const { return m_product_key; } // "" if none
  [[nodiscard]] std::string_view format() const { return m_parsers.front()->format(); }

private:
  SecretSnapshot() = default;
  // Indexes every entry; the index of the first whose DeviceName is already there, if any.
  std::optional<std::uint32_t> insert_all();

  std::vector<std::unique_ptr<SecretRecordParser>> m_parsers; // own the unescaped values
  std::vector<SnapshotEntry> m_entries;
  std::vector<std::uint64_t> m_slots; // high 32 bits: hash tag; low 32: entry index + 1
  std::uint64_t m_mask = 0;
  std::string m_product_key;
};

// The hash SecretSnapshot uses for DeviceNames (exposed for tests).
[[nodiscard]] std::uint64_t hash_device_name(std::string_view name);

// Calls `line(text, line_number)` for each physical line of `content` (LF ends a line, a CR
// before it is dropped, a last line without LF counts; line numbers from `first_line`). Stops
// at the first error the callback returns. Returns the number of the last line seen.
template <class F>
Result<std::size_t> for_each_line(std::string_view content, std::size_t first_line, F&& line) {
  std::size_t n = first_line - 1;
  const char* p = content.data();
  const char* const end = p + content.size();
  while (p < end) {
    const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
    const char* stop = nl ? static_cast<const char*>(nl) : end;
    std::size_t len = static_cast<std::size_t>(stop - p);
    if (len > 0 && p[len - 1] == '\r') {
      --len;
    }
    ++n;
    if (auto ok = line(std::string_view(p, len), n); !ok) {
      return std::unexpected(ok.error());
    }
    p = nl ? stop + 1 : end;
  }
  return n;
}

} // namespace iot::core
