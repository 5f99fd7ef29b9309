// SPDX-License-Identifier: MIT
// A file of records, written the one way every `-O FILE` of iotfleet is: `--format csv` (a header
// line, then RFC 4180 rows), `json` (an array, one flat object per line) or `ndjson` (one flat
// object per line; empty values are left out of both JSON forms). Created 0600 before any byte is
// written and committed atomically, so the target holds its old content or the whole new one.
// Every reader of iotfleet (pool import, secrets compare, --devices lists) takes all three.
//
// Create it *before* anything that cannot be undone (a cloud write): a directory that does not
// exist or is not writable then fails the command while nothing has happened yet.
#pragma once

#include "core/error.hpp"
#include "store/atomic_file.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace iot::commands {

class RecordFile {
public:
  // ErrorKind::usage for an unknown format, ErrorKind::io (naming the directory and the fix) when
  // the file cannot be created there.
  [[nodiscard]] static Result<RecordFile>
  create(const std::string& path, std::string_view format, std::vector<std::string> columns);

  // One record: one field per column.
  [[nodiscard]] Status write(const std::vector<std::string>& fields);
  // The records become the file's content. At most once.
  [[nodiscard]] Status commit();

  [[nodiscard]] const std::string& path() const { return m_path; }
  [[nodiscard]] std::size_t records() const { return m_records; }

private:
  RecordFile(store::AtomicFile file,
             std::string path,
             std::string format,
             std::vector<std::string> columns);
  store::AtomicFile m_file;
  std::string m_path;
  std::string m_format;
  std::vector<std::string> m_columns;
  std::size_t m_records = 0;
};

// The formats a RecordFile writes, for --format: "csv", "json", "ndjson".
[[nodiscard]] bool is_record_format(std::string_view format);

} // namespace iot::commands
