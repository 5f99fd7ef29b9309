// SPDX-License-Identifier: MIT
// What every command gets: the global options, an Output to report through, the process
// environment. cli/ builds it; tests build one with fakes and call run_* directly.
#pragma once

#include "cloud/http.hpp"
#include "cloud/settings.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "core/table.hpp"
#include "serial/serial_port.hpp"

#include <cstdint>
#include <functional>
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

// The process's outside world, replaceable by tests (docs/style.md "Seams"): the defaults are
// the real serial ports, libcurl and the clock. Shipping code reads no test switch of its own;
// a test that must reach a moment no real run can time (a crash between two steps, a corrupted
// transfer) sets the hook for it.
struct Seams {
  std::function<Result<std::unique_ptr<serial::SerialPort>>(const std::string& path,
                                                            const serial::PortSettings&)>
      open_port;
  std::function<Result<std::unique_ptr<cloud::HttpClient>>(const cloud::HttpOptions&)> make_http;
  // Wall-clock milliseconds since the epoch.
  std::function<std::int64_t()> now_ms;
  // ota rollout: called right after wave N's upgrade job was created and before the journal
  // records its JobId; a failed Status ends the run there, as a crash would.
  std::function<Status(int wave)> after_job_created;
  // ota upload: applied to every block of the firmware after it was hashed and before it is
  // sent (offset = the block's first byte in the file).
  std::function<void(char* block, std::size_t size, std::int64_t offset)> tamper_upload;

  [[nodiscard]] static Seams real();
};

struct Context {
  GlobalOptions global;
  Output* output = nullptr;
  cloud::Environment env = cloud::Environment::process();
  Seams seams = Seams::real();
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
