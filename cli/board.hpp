// SPDX-License-Identifier: MIT
// The terminal board (core::BoardSink): a header, one line per row and a footer, redrawn in
// place on stderr four times a second by its own thread when stderr is a TTY. Without a TTY it
// draws nothing (commands report through stdout events instead). Thread-safe.
#pragma once

#include "core/progress.hpp"

#include <condition_variable>
#include <mutex>
#include <ostream>
#include <thread>

namespace iot::cli {

class TerminalBoard final : public core::BoardSink {
public:
  TerminalBoard(std::vector<std::string> columns, std::size_t rows, std::ostream& err, bool tty);
  ~TerminalBoard() override;
  TerminalBoard(const TerminalBoard&) = delete;
  TerminalBoard& operator=(const TerminalBoard&) = delete;

  void set_row(std::size_t row,
               std::vector<std::string> cells,
               std::optional<std::chrono::steady_clock::time_point> since) override;
  void set_footer(std::string footer) override;
  void finish() override;

  // The lines as they would be drawn now (header, rows, footer); for tests.
  [[nodiscard]] std::vector<std::string> lines() const;

private:
  struct Row {
    std::vector<std::string> cells;
    std::optional<std::chrono::steady_clock::time_point> since;
  };
  [[nodiscard]] std::vector<std::string> lines_locked() const;
  void draw_locked();

  mutable std::mutex m_mutex;
  std::condition_variable m_wake;
  std::vector<std::string> m_columns;
  std::vector<Row> m_rows;
  std::string m_footer;
  std::ostream& m_err;
  bool m_tty;
  bool m_finished = false;
  std::size_t m_drawn_lines = 0;
  std::thread m_thread;
};

} // namespace iot::cli
