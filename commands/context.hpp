// SPDX-License-Identifier: MIT
// What every command gets: the global options, an Output to report through, the process
// environment. cli/ builds it; tests build one with fakes and call run_* directly.
#pragma once

#include "cloud/settings.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "core/table.hpp"

#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace iot::commands {

struct GlobalOptions {
  core::OutputFormat output = core::OutputFormat::table;
  cloud::SettingsFlags settings;
  int verbosity = 0; // -v count
  bool quiet = false;
  bool show_secrets = false;
  bool no_color = false;
};

// Where a command's results and messages go. emit() writes data to stdout in the chosen format;
// everything else goes to stderr, so stdout stays parseable.
class Output {
public:
  virtual ~Output() = default;
  virtual void emit(const core::Table& table) = 0;
  virtual void warn(std::string_view message) = 0;  // always shown
  virtual void info(std::string_view message) = 0;  // hidden by -q
  virtual void debug(std::string_view message) = 0; // shown with -v
  // A bar on a TTY, nothing animated otherwise (and nothing at all with -q).
  [[nodiscard]] virtual std::unique_ptr<core::ProgressSink> progress(std::string_view label) = 0;
  // A live board on a TTY (columns + "elapsed" when rows give a start time), a NullBoard
  // otherwise (and with -q).
  [[nodiscard]] virtual std::unique_ptr<core::BoardSink> board(std::vector<std::string> columns,
                                                               std::size_t rows) = 0;
};

struct Context {
  GlobalOptions global;
  Output* output = nullptr;
  cloud::Environment env = cloud::Environment::process();
};

// Thrown by a command callback when run_* failed; cli/ catches it once and picks the exit code
// from the error kind. run_* functions themselves never throw it: they return Result.
class CommandFailure : public std::runtime_error {
public:
  explicit CommandFailure(Error error)
      : std::runtime_error(error.message), m_error(std::move(error)) {}
  [[nodiscard]] const Error& error() const { return m_error; }

private:
  Error m_error;
};

// For callbacks: the value, or a CommandFailure carrying the error.
template <class T> T value_or_throw(Result<T> result) {
  if (!result) {
    throw CommandFailure(std::move(result.error()));
  }
  if constexpr (!std::is_void_v<T>) {
    return std::move(*result);
  }
}

} // namespace iot::commands
