// SPDX-License-Identifier: MIT
// An Output that keeps what a command emits and says, for running run_* in-process in tests.
#pragma once

#include "commands/context.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace iot::test {

class CaptureOutput final : public commands::Output {
public:
  std::vector<core::Table> tables;
  std::vector<std::string> warnings;
  std::vector<std::string> infos;
  void emit(const core::Table& t) override { tables.push_back(t); }
  void warn(std::string_view m) override { warnings.emplace_back(m); }
  void info(std::string_view m) override { infos.emplace_back(m); }
  void debug(std::string_view) override {}
  std::unique_ptr<core::ProgressSink> progress(std::string_view) override {
    return std::make_unique<core::NullProgress>();
  }
  std::unique_ptr<core::BoardSink> board(std::vector<std::string>, std::size_t) override {
    return std::make_unique<core::NullBoard>();
  }
};

} // namespace iot::test
