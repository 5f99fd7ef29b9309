// SPDX-License-Identifier: MIT
// Progress reporting seam: commands report, cli/ draws (a bar on a TTY, nothing animated
// otherwise). Implementations must be safe to call from several worker threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::core {

class ProgressSink {
public:
  virtual ~ProgressSink() = default;
  // Total units of work; 0 means unknown (a counter, no percentage).
  virtual void set_total(std::uint64_t total) = 0;
  virtual void advance(std::uint64_t units = 1) = 0;
  // Short text shown after the bar (current item); may be empty.
  virtual void set_detail(std::string_view detail) = 0;
  // Clears the bar; later calls are ignored.
  virtual void finish() = 0;
};

// A sink that ignores everything (tests, --quiet, no TTY).
class NullProgress final : public ProgressSink {
public:
  void set_total(std::uint64_t) override {}
  void advance(std::uint64_t) override {}
  void set_detail(std::string_view) override {}
  void finish() override {}
};

// A live status board: a fixed number of rows (one per fixture), each a list of cells under
// the board's columns, redrawn in place on a TTY; nothing at all otherwise. Thread-safe.
class BoardSink {
public:
  virtual ~BoardSink() = default;
  // Replaces row `row`'s cells. With `since`, an "elapsed" cell (seconds since then) is appended
  // and kept ticking by the board itself.
  virtual void set_row(std::size_t row,
                       std::vector<std::string> cells,
                       std::optional<std::chrono::steady_clock::time_point> since) = 0;
  // One line under the rows (totals).
  virtual void set_footer(std::string footer) = 0;
  // Draws a last time and stops; the final board stays on screen. Later calls are ignored.
  virtual void finish() = 0;
};

class NullBoard final : public BoardSink {
public:
  void set_row(std::size_t,
               std::vector<std::string>,
               std::optional<std::chrono::steady_clock::time_point>) override {}
  void set_footer(std::string) override {}
  void finish() override {}
};

} // namespace iot::core
