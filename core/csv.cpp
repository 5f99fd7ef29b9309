// SPDX-License-Identifier: MIT
#include "core/csv.hpp"

#include "core/text.hpp"

namespace iot::core {

std::string csv_field(std::string_view field) {
  const bool needs_quotes = field.find_first_of(",\"\r\n") != std::string_view::npos ||
                            (!field.empty() && (field.front() == ' ' || field.back() == ' '));
  if (!needs_quotes) {
    return std::string(field);
  }
  std::string out;
  out.reserve(field.size() + 2);
  out += '"';
  for (char c : field) {
    if (c == '"') {
      out += '"';
    }
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) {
      line += ',';
    }
    line += csv_field(fields[i]);
  }
  return line;
}

Result<std::optional<std::string_view>> CsvCursor::next() {
  if (m_done) {
    return std::nullopt;
  }
  const std::string_view line = m_line;
  const std::size_t n = line.size();
  std::size_t& i = m_pos;
  const std::size_t number = ++m_count;
  while (i < n && is_blank(line[i])) {
    ++i;
  }
  std::string_view field;
  m_quoted = i < n && line[i] == '"';
  m_decoded_last = false;
  if (m_quoted) {
    const std::size_t start = ++i;
    std::size_t quote = line.find('"', i);
    if (quote != std::string_view::npos && quote + 1 < n && line[quote + 1] == '"') {
      // A doubled quote inside: decode into storage of our own.
      std::string decoded(line.substr(start, quote - start));
      while (quote != std::string_view::npos && quote + 1 < n && line[quote + 1] == '"') {
        decoded += '"';
        i = quote + 2;
        quote = line.find('"', i);
        decoded.append(line.substr(i, quote == std::string_view::npos ? 0 : quote - i));
      }
      if (quote != std::string_view::npos) {
        field = m_decoded.emplace_back(std::move(decoded));
        m_decoded_last = true;
      }
    } else if (quote != std::string_view::npos) {
      field = line.substr(start, quote - start);
    }
    if (quote == std::string_view::npos) {
      return fail(ErrorKind::usage,
                  "field " + std::to_string(number) +
                      ": a quote is still open at the end of the line; close it, or "
                      "double a quote that is part of the value (\"\"); a line break inside "
                      "quotes is not supported");
    }
    i = quote + 1;
    while (i < n && is_blank(line[i])) {
      ++i;
    }
    if (i < n && line[i] != ',') {
      return fail(ErrorKind::usage,
                  "field " + std::to_string(number) +
                      ": text after its closing double quote; quote the whole field and "
                      "double every quote inside it (\"\")");
    }
  } else {
    const std::size_t start = i;
    const std::size_t comma = line.find(',', i);
    i = comma == std::string_view::npos ? n : comma;
    std::size_t end = i;
    while (end > start && is_blank(line[end - 1])) {
      --end;
    }
    field = line.substr(start, end - start);
  }
  if (i >= n) {
    m_done = true;
  } else {
    ++i; // the comma
  }
  return field;
}

Result<std::vector<std::string>> csv_split_line(std::string_view line) {
  std::vector<std::string> fields;
  CsvCursor cursor(line);
  while (auto field = IOT_TRY(cursor.next())) {
    fields.emplace_back(*field);
  }
  return fields;
}

} // namespace iot::core
