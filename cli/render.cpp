// SPDX-License-Identifier: MIT
#include "cli/render.hpp"

#include "core/csv.hpp"
#include "core/mask.hpp"
#include "core/text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

namespace iot::cli {
namespace {

using nlohmann::ordered_json;

bool is_number(const core::Cell& cell) {
  return std::holds_alternative<std::int64_t>(cell) || std::holds_alternative<double>(cell);
}

ordered_json cell_json(const core::Cell& cell, bool show_secrets) {
  return std::visit(
      [&](const auto& v) -> ordered_json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nullptr;
        } else if constexpr (std::is_same_v<T, core::Secret>) {
          return show_secrets ? v.value : core::mask_secret(v.value);
        } else if constexpr (std::is_same_v<T, core::TextList>) {
          return v.items();
        } else {
          return v;
        }
      },
      cell);
}

ordered_json
row_json(const core::Table& table, const std::vector<core::Cell>& row, bool show_secrets) {
  ordered_json obj = ordered_json::object();
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    obj[table.columns[i]] = cell_json(row[i], show_secrets);
  }
  return obj;
}

void pad(std::ostream& out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    out << ' ';
  }
}

void render_table(const core::Table& table, const RenderOptions& options, std::ostream& out) {
  const char* bold = options.color ? "\033[1m" : "";
  const char* reset = options.color ? "\033[0m" : "";
  if (table.single) {
    // One record: "field  value" lines.
    std::size_t key_width = 0;
    for (const auto& c : table.columns) {
      key_width = std::max(key_width, core::display_width(c));
    }
    const auto& row =
        table.rows.empty() ? std::vector<core::Cell>(table.columns.size()) : table.rows.front();
    for (std::size_t i = 0; i < table.columns.size(); ++i) {
      out << bold << table.columns[i] << reset;
      pad(out, key_width - core::display_width(table.columns[i]) + 2);
      const std::string text = cell_text(row[i], options.show_secrets);
      out << (text.empty() ? "-" : text) << '\n';
    }
    return;
  }

  const std::size_t n = table.columns.size();
  std::vector<std::vector<std::string>> texts;
  texts.reserve(table.rows.size());
  std::vector<std::size_t> width(n, 0);
  std::vector<bool> numeric(n, true);
  for (std::size_t i = 0; i < n; ++i) {
    width[i] = core::display_width(table.columns[i]);
  }
  for (const auto& row : table.rows) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < n; ++i) {
      std::string text = cell_text(row[i], options.show_secrets);
      if (text.empty()) {
        text = "-";
      } else if (!is_number(row[i])) {
        numeric[i] = false;
      }
      width[i] = std::max(width[i], core::display_width(text));
      line.push_back(std::move(text));
    }
    texts.push_back(std::move(line));
  }
  if (table.rows.empty()) {
    std::fill(numeric.begin(), numeric.end(), false);
  }
  const auto print_line = [&](const std::vector<std::string>& cells, bool header) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t gap = width[i] - core::display_width(cells[i]);
      const bool last = i + 1 == n;
      if (numeric[i] && !header) {
        pad(out, gap);
      }
      if (header) {
        out << bold;
      }
      out << cells[i];
      if (header) {
        out << reset;
      }
      if (!last && !(numeric[i] && !header)) {
        pad(out, gap);
      }
      if (!last) {
        out << "  ";
      }
    }
    out << '\n';
  };
  std::vector<std::string> header;
  for (const auto& c : table.columns) {
    std::string upper = c;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char ch) {
      return static_cast<char>(std::toupper(ch));
    });
    header.push_back(std::move(upper));
  }
  print_line(header, true);
  for (const auto& line : texts) {
    print_line(line, false);
  }
}

void render_csv(const core::Table& table, const RenderOptions& options, std::ostream& out) {
  out << core::csv_line(table.columns) << '\n';
  for (const auto& row : table.rows) {
    std::vector<std::string> fields;
    fields.reserve(row.size());
    for (const auto& cell : row) {
      fields.push_back(cell_text(cell, options.show_secrets));
    }
    out << core::csv_line(fields) << '\n';
  }
}

} // namespace

std::string cell_text(const core::Cell& cell, bool show_secrets) {
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return "";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, core::Secret>) {
          return show_secrets ? v.value : core::mask_secret(v.value);
        } else if constexpr (std::is_same_v<T, core::TextList>) {
          std::string joined;
          for (const auto& item : v.items()) {
            joined += (joined.empty() ? "" : "; ") + item;
          }
          return joined;
        } else if constexpr (std::is_same_v<T, double>) {
          std::ostringstream os;
          os << v;
          return os.str();
        } else {
          return std::to_string(v);
        }
      },
      cell);
}

void render(const core::Table& table, const RenderOptions& options, std::ostream& out) {
  switch (options.format) {
  case core::OutputFormat::table:
    render_table(table, options, out);
    break;
  case core::OutputFormat::csv:
    render_csv(table, options, out);
    break;
  case core::OutputFormat::json: {
    if (table.single) {
      const auto row =
          table.rows.empty() ? std::vector<core::Cell>(table.columns.size()) : table.rows.front();
      out << row_json(table, row, options.show_secrets)
                 .dump(2, ' ', false, ordered_json::error_handler_t::replace)
          << '\n';
    } else {
      ordered_json arr = ordered_json::array();
      for (const auto& row : table.rows) {
        arr.push_back(row_json(table, row, options.show_secrets));
      }
      out << arr.dump(2, ' ', false, ordered_json::error_handler_t::replace) << '\n';
    }
    break;
  }
  case core::OutputFormat::ndjson:
    for (const auto& row : table.rows) {
      out << row_json(table, row, options.show_secrets)
                 .dump(-1, ' ', false, ordered_json::error_handler_t::replace)
          << '\n';
    }
    break;
  }
  out.flush();
}

} // namespace iot::cli
