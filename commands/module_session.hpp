// SPDX-License-Identifier: MIT
// Talking to one module on one port: shared by `module info|at` and `provision`.
#pragma once

#include "commands/context.hpp"
#include "serial/at_channel.hpp"
#include "serial/driver.hpp"
#include "serial/serial_port.hpp"

#include <memory>
#include <optional>
#include <string>

namespace iot::commands {

// How to reach a module: shared by every command that talks to one.
struct ModuleConnectOptions {
  std::string port;
  std::optional<std::string> module;       // luat | quectel | esp-at | auto (default: config)
  std::optional<std::string> profile_file; // a user's JSON module profile
  int baud = 115200;
  bool trace = false; // the AT conversation on stderr, secrets masked
};

struct ModuleSession {
  std::unique_ptr<serial::SerialPort> port;
  std::unique_ptr<serial::AtChannel> channel;
  std::unique_ptr<serial::ModuleDriver> driver; // null until attach_driver
};

// Opens the port and an AT channel on it (no I/O with the module yet). ErrorKind::serial when
// the port cannot be opened.
[[nodiscard]] Result<ModuleSession> open_module_port(const ModuleConnectOptions& opts,
                                                     Context& ctx);

// The driver name to use: --module, else the config's `module`, else "auto".
[[nodiscard]] Result<std::string> resolve_module_name(const ModuleConnectOptions& opts,
                                                      Context& ctx);

// Makes the session's driver for `module` (or the profile file). With a forced driver, warns
// when the module answers like another one (warn_mismatch).
[[nodiscard]] Status attach_driver(ModuleSession& s,
                                   const ModuleConnectOptions& opts,
                                   const std::string& module,
                                   Context& ctx,
                                   bool warn_mismatch);

// open_module_port, then sync, then attach_driver (each when asked).
[[nodiscard]] Result<ModuleSession>
open_session(const ModuleConnectOptions& opts, Context& ctx, bool sync, bool need_driver);

struct ModuleReading {
  serial::Identity identity;
  std::optional<serial::Credentials> credentials;
  // The layout's second copy of the DeviceSecret (a profile's "secret_copy", seed FAQ §3.2: kept
  // by the device script in NVM after each successful connection): std::nullopt when the profile
  // declares no copy for the layout read, "" when it declares one but the module holds none.
  // A secret in clear, like credentials->device_secret.
  std::optional<std::string> secret_copy;

  [[nodiscard]] bool same_as(const ModuleReading& o) const {
    return identity.imei == o.identity.imei && identity.mac == o.identity.mac &&
           identity.iccid == o.identity.iccid && identity.sn == o.identity.sn &&
           credentials == o.credentials && secret_copy == o.secret_copy;
  }
};

// Whether the SN storage and the layout's second copy agree (module info's secret_copy_state):
// "same"; "differs" (one of them changed since the last successful connection); "no-copy" (a copy
// is declared but none is stored: the module has not connected since its script was installed);
// "" when the profile declares no copy.
[[nodiscard]] std::string secret_copy_state(const ModuleReading& reading);

enum class ReadScope {
  full,  // every identity field (module info)
  brief, // IMEI / MAC and ICCID only (provision)
};

// Identity + stored credentials, read until two readings agree (a garbled digit must never
// show as a wrong IMEI or secret); re-syncs after a failed read. ErrorKind::module when no two
// of six readings agree.
[[nodiscard]] Result<ModuleReading> read_stable(ModuleSession& s,
                                                serial::Layout layout,
                                                const std::string& port,
                                                ReadScope scope = ReadScope::full);

// "" for a valid IMEI, else why it is not one and what to do (IMEI not written …).
[[nodiscard]] std::string imei_verdict(const std::string& imei);

} // namespace iot::commands
