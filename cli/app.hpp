// SPDX-License-Identifier: MIT
// The iotfleet command line: global options, every command registered in one place, the one
// error funnel that turns failures into exit codes.
#pragma once

#include "commands/context.hpp"

#include <iosfwd>
#include <memory>

namespace CLI {
class App;
}

namespace iot::cli {

struct AppStreams {
  std::ostream& out; // data
  std::ostream& err; // messages, progress, errors
  bool out_is_tty = false;
  bool err_is_tty = false;
};

// The whole command tree with every option bound to ctx: what run parses, and what the
// convention test walks.
[[nodiscard]] std::unique_ptr<CLI::App> build_app(commands::Context& ctx);

// Parses argv, runs the command, returns the process exit code. env replaces the process
// environment (tests use a fake HOME and variables).
[[nodiscard]] int run(int argc,
                      const char* const* argv,
                      const AppStreams& streams,
                      cloud::Environment env = cloud::Environment::process());

} // namespace iot::cli
