// SPDX-License-Identifier: MIT
// Progress reporting seam: commands report, cli/ draws (a bar on a TTY, nothing animated
// otherwise). Implementations must be safe to call from several worker threads.
#pragma once

#include <cstdint>
#include <string_view>

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

} // namespace iot::core
