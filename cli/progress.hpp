// SPDX-License-Identifier: MIT
// The terminal progress bar: redrawn in place on stderr (at most 10 times a second) when stderr
// is a TTY; when it is not, nothing animated is printed at all. Thread-safe.
#pragma once

#include "core/progress.hpp"

#include <chrono>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>

namespace iot::cli {

class TerminalProgress final : public core::ProgressSink {
public:
  // tty: whether to draw. width: columns of the bar itself.
  TerminalProgress(std::string label, std::ostream& err, bool tty, std::size_t width = 30);
  ~TerminalProgress() override;
  TerminalProgress(const TerminalProgress&) = delete;
  TerminalProgress& operator=(const TerminalProgress&) = delete;

  void set_total(std::uint64_t total) override;
  void advance(std::uint64_t units) override;
  void set_detail(std::string_view detail) override;
  void finish() override;

  // The line as it would be drawn now (without \r); for tests.
  [[nodiscard]] std::string line() const;

private:
  [[nodiscard]] std::string line_locked() const;
  void draw_locked(bool force);

  mutable std::mutex m_mutex;
  std::string m_label;
  std::ostream& m_err;
  bool m_tty;
  std::size_t m_width;
  std::uint64_t m_total = 0;
  std::uint64_t m_done = 0;
  std::string m_detail;
  bool m_finished = false;
  std::size_t m_last_length = 0;
  std::chrono::steady_clock::time_point m_start;
  std::chrono::steady_clock::time_point m_last_draw;
};

} // namespace iot::cli
