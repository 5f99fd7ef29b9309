// SPDX-License-Identifier: MIT
#include "core/csv.hpp"

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

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

} // namespace

Result<std::vector<std::string>> csv_split_line(std::string_view line) {
  std::vector<std::string> fields;
  const std::size_t n = line.size();
  std::size_t i = 0;
  while (true) {
    const std::size_t number = fields.size() + 1;
    while (i < n && is_blank(line[i])) {
      ++i;
    }
    std::string field;
    if (i < n && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        const std::size_t quote = line.find('"', i);
        if (quote == std::string_view::npos) {
          break;
        }
        field.append(line.substr(i, quote - i));
        if (quote + 1 < n && line[quote + 1] == '"') {
          field += '"';
          i = quote + 2;
          continue;
        }
        i = quote + 1;
        closed = true;
        break;
      }
      if (!closed) {
        return fail(ErrorKind::usage,
                    "field " + std::to_string(number) +
                        " opens a double quote that is not closed on the same line; close it, "
                        "or double a quote that is part of the value (\"\")");
      }
      while (i < n && is_blank(line[i])) {
        ++i;
      }
      if (i < n && line[i] != ',') {
        return fail(ErrorKind::usage,
                    "field " + std::to_string(number) +
                        " has text after its closing double quote; quote the whole field and "
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
      field.assign(line.substr(start, end - start));
    }
    fields.push_back(std::move(field));
    if (i >= n) {
      break;
    }
    ++i; // the comma
  }
  return fields;
}

} // namespace iot::core
