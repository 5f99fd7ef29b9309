// SPDX-License-Identifier: MIT
#include "cli/board.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <cstdio>

namespace iot::cli {
namespace {

constexpr std::size_t k_max_cell = 60; // long messages are cut on the board (full text in events)

std::string cut(const std::string& text) {
  if (core::display_width(text) <= k_max_cell) {
    return text;
  }
  std::string out;
  for (std::size_t i = 0; i < text.size() && core::display_width(out) < k_max_cell - 1; ++i) {
    out += text[i];
    // keep UTF-8 sequences whole
    while (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      out += text[++i];
    }
  }
  return out + "…";
}

} // namespace

TerminalBoard::TerminalBoard(std::vector<std::string> columns,
                             std::size_t rows,
                             std::ostream& err,
                             bool tty)
    : m_columns(std::move(columns)), m_rows(rows), m_err(err), m_tty(tty) {
  if (m_tty) {
    m_thread = std::thread([this] {
      std::unique_lock lock(m_mutex);
      while (!m_finished) {
        draw_locked();
        m_wake.wait_for(lock, std::chrono::milliseconds(250));
      }
    });
  }
}

TerminalBoard::~TerminalBoard() {
  finish();
}

void TerminalBoard::set_row(std::size_t row,
                            std::vector<std::string> cells,
                            std::optional<std::chrono::steady_clock::time_point> since) {
  std::lock_guard lock(m_mutex);
  if (row < m_rows.size()) {
    m_rows[row] = Row{std::move(cells), since};
  }
}

void TerminalBoard::set_footer(std::string footer) {
  std::lock_guard lock(m_mutex);
  m_footer = std::move(footer);
}

void TerminalBoard::finish() {
  {
    std::lock_guard lock(m_mutex);
    if (m_finished) {
      return;
    }
    m_finished = true;
    if (m_tty) {
      draw_locked();
    }
  }
  m_wake.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

std::vector<std::string> TerminalBoard::lines() const {
  std::lock_guard lock(m_mutex);
  return lines_locked();
}

std::vector<std::string> TerminalBoard::lines_locked() const {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> header = m_columns;
  header.emplace_back("elapsed");
  table.push_back(header);
  for (const auto& row : m_rows) {
    std::vector<std::string> cells;
    for (const auto& c : row.cells) {
      cells.push_back(cut(c));
    }
    cells.resize(m_columns.size());
    if (row.since) {
      char buf[32];
      std::snprintf(
          buf, sizeof buf, "%.1fs", std::chrono::duration<double>(now - *row.since).count());
      cells.emplace_back(buf);
    } else {
      cells.emplace_back();
    }
    table.push_back(std::move(cells));
  }
  std::vector<std::size_t> widths(header.size(), 0);
  for (const auto& cells : table) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      widths[i] = std::max(widths[i], core::display_width(cells[i]));
    }
  }
  std::vector<std::string> out;
  for (const auto& cells : table) {
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      line += cells[i];
      if (i + 1 < cells.size()) {
        line += std::string(widths[i] - core::display_width(cells[i]) + 2, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') {
      line.pop_back();
    }
    out.push_back(std::move(line));
  }
  out.push_back(m_footer);
  return out;
}

void TerminalBoard::draw_locked() {
  const auto lines = lines_locked();
  std::string frame;
  if (m_drawn_lines > 0) {
    frame += "\x1b[" + std::to_string(m_drawn_lines) + "A"; // back to the board's first line
  }
  for (const auto& line : lines) {
    frame += "\r\x1b[2K" + line + "\n";
  }
  m_err << frame << std::flush;
  m_drawn_lines = lines.size();
}

} // namespace iot::cli
