// SPDX-License-Identifier: MIT
#include "cli/progress.hpp"

#include <cstdio>

namespace iot::cli {

TerminalProgress::TerminalProgress(std::string label,
                                   std::ostream& err,
                                   bool tty,
                                   std::size_t width)
    : m_label(std::move(label)), m_err(err), m_tty(tty), m_width(width),
      m_start(std::chrono::steady_clock::now()) {}

TerminalProgress::~TerminalProgress() {
  finish();
}

void TerminalProgress::set_total(std::uint64_t total) {
  std::lock_guard lock(m_mutex);
  m_total = total;
  draw_locked(false);
}

void TerminalProgress::advance(std::uint64_t units) {
  std::lock_guard lock(m_mutex);
  m_done += units;
  draw_locked(false);
}

void TerminalProgress::set_detail(std::string_view detail) {
  std::lock_guard lock(m_mutex);
  m_detail = detail;
  draw_locked(false);
}

void TerminalProgress::finish() {
  std::lock_guard lock(m_mutex);
  if (m_finished) {
    return;
  }
  m_finished = true;
  if (m_tty && m_last_length > 0) {
    m_err << '\r' << std::string(m_last_length, ' ') << '\r' << std::flush;
  }
}

std::string TerminalProgress::line() const {
  std::lock_guard lock(m_mutex);
  return line_locked();
}

std::string TerminalProgress::line_locked() const {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
  const double rate = seconds > 0 ? static_cast<double>(m_done) / seconds : 0.0;
  std::string line = m_label + " ";
  char buf[96];
  if (m_total > 0) {
    const double fraction =
        std::min(1.0, static_cast<double>(m_done) / static_cast<double>(m_total));
    const auto filled = static_cast<std::size_t>(fraction * static_cast<double>(m_width));
    line += "[" + std::string(filled, '#') + std::string(m_width - filled, '.') + "] ";
    std::snprintf(buf,
                  sizeof buf,
                  "%3d%% %llu/%llu %.1f/s",
                  static_cast<int>(fraction * 100),
                  static_cast<unsigned long long>(m_done),
                  static_cast<unsigned long long>(m_total),
                  rate);
  } else {
    std::snprintf(buf, sizeof buf, "%llu %.1f/s", static_cast<unsigned long long>(m_done), rate);
  }
  line += buf;
  if (!m_detail.empty()) {
    line += "  " + m_detail;
  }
  return line;
}

void TerminalProgress::draw_locked(bool force) {
  if (!m_tty || m_finished) {
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (!force && m_last_length > 0 && now - m_last_draw < std::chrono::milliseconds(100)) {
    return;
  }
  m_last_draw = now;
  const std::string text = line_locked();
  m_err << '\r' << text;
  if (text.size() < m_last_length) {
    m_err << std::string(m_last_length - text.size(), ' ');
  }
  m_err << std::flush;
  m_last_length = text.size();
}

} // namespace iot::cli
