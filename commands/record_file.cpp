// SPDX-License-Identifier: MIT
#include "commands/record_file.hpp"

#include "core/csv.hpp"

#include <nlohmann/json.hpp>

namespace iot::commands {

bool is_record_format(std::string_view format) {
  return format == "csv" || format == "json" || format == "ndjson";
}

RecordFile::RecordFile(store::AtomicFile file,
                       std::string path,
                       std::string format,
                       std::vector<std::string> columns)
    : m_file(std::move(file)), m_path(std::move(path)), m_format(std::move(format)),
      m_columns(std::move(columns)) {}

Result<RecordFile> RecordFile::create(const std::string& path,
                                      std::string_view format,
                                      std::vector<std::string> columns) {
  if (!is_record_format(format)) {
    return fail(ErrorKind::usage, "--format " + std::string(format) + ": use csv, json or ndjson");
  }
  auto file = IOT_TRY_CTX(store::AtomicFile::create(path, 0600), "-O " + path);
  RecordFile out(std::move(file), path, std::string(format), std::move(columns));
  if (out.m_format == "csv") {
    IOT_TRY(out.m_file.write(core::csv_line(out.m_columns) + "\n"));
  } else if (out.m_format == "json") {
    IOT_TRY(out.m_file.write("["));
  }
  return out;
}

Status RecordFile::write(const std::vector<std::string>& fields) {
  std::string line;
  if (m_format == "csv") {
    line = core::csv_line(fields) + "\n";
  } else {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < m_columns.size() && i < fields.size(); ++i) {
      if (!fields[i].empty()) {
        j[m_columns[i]] = fields[i];
      }
    }
    line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    line = m_format == "json" ? (m_records == 0 ? "\n" : ",\n") + line : line + "\n";
  }
  ++m_records;
  return m_file.write(line);
}

Status RecordFile::commit() {
  if (m_format == "json") {
    IOT_TRY(m_file.write(m_records == 0 ? "]\n" : "\n]\n"));
  }
  return m_file.commit();
}

} // namespace iot::commands
