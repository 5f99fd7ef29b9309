// SPDX-License-Identifier: MIT
// iotfleet-sim: the emulators (test and demo equipment). Each emulator is one subcommand,
// registered here with one call.
#include "sim/cloud_cmd.hpp"
#include "sim/fleetlog_cmd.hpp"
#include "sim/load_cmd.hpp"
#include "sim/modules_cmd.hpp"

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"iotfleet-sim: module and cloud emulators for testing iotfleet"};
  app.set_version_flag("--version", std::string("iotfleet-sim ") + IOTFLEET_VERSION);
  app.require_subcommand(1);
  iot::sim::register_modules(app);
  iot::sim::register_cloud(app);
  iot::sim::register_fleetlog(app);
  iot::sim::register_load(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code(); // the callback already printed the error
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e); // prints help, version or the usage error
    return code == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "iotfleet-sim: internal error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
