// SPDX-License-Identifier: MIT
// One way to say each thing: the options several commands share, registered here and nowhere
// else, so a flag spells and means the same in every command (docs/cli-conventions.md).
//
//   DEVICE_NAME...   positional DeviceNames, the same as --device-name DN (repeatable);
//   --devices FILE   a DeviceName list (one per line, or any file iotfleet writes with a
//                    device_name column); - reads standard input;
//   --product-key PK, --concurrency N, --format csv|json|ndjson, -O/--out FILE;
//   DURATION         500ms, 30s, 10m, 2h, 1d, or a bare number in the option's documented unit;
//   the serial connection: --port, --module (the AT driver: the built-in profiles' names or
//                    auto), --module-profile, --baud, --trace, --layout.
// A renamed option keeps its old spelling for one release as a hidden alias that warns.
#pragma once

#include "commands/context.hpp"
#include "commands/module_session.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iot::commands {

// Value names shown in --help (and checked by the convention test).
namespace value_name {
inline constexpr std::string_view device_name = "DEVICE_NAME";
inline constexpr std::string_view file = "FILE";
inline constexpr std::string_view file_or_stdin = "FILE|-";
inline constexpr std::string_view duration = "DURATION";
inline constexpr std::string_view product_key = "PK";
inline constexpr std::string_view port = "PORT";
inline constexpr std::string_view count = "N";
inline constexpr std::string_view formats = "csv|json|ndjson";
} // namespace value_name

// ---- DeviceNames ----

// How many devices a command acts on.
enum class DeviceArity { one, many };

struct DeviceNamesInput {
  std::vector<std::string> positional;
  std::vector<std::string> flagged; // --device-name
  std::optional<std::string> file;  // --devices FILE|-
};

struct DeviceNamesSpec {
  DeviceArity arity = DeviceArity::many;
  bool list_file = true;                // --devices FILE|- (many only)
  bool required = true;                 // at least one name
  std::string_view what = "DeviceName"; // "the device to diagnose", for help texts
};

// Adds DEVICE_NAME... (positional), --device-name DN and, for many, --devices FILE|-.
void add_device_names(CLI::App* cmd, DeviceNamesInput& input, const DeviceNamesSpec& spec);

// The names in the order given (positional, --device-name, then the file), each validated, the
// same name given twice kept once. ErrorKind::usage naming the name or the file line and the fix;
// with arity one, exactly one name. `-` as the file reads ctx.env.read_stdin.
[[nodiscard]] Result<std::vector<std::string>>
resolve_device_names(const DeviceNamesInput& input, const DeviceNamesSpec& spec, Context& ctx);

// For a callback: the one DeviceName of a DeviceArity::one input (CommandFailure otherwise).
[[nodiscard]] std::string one_device_name(const DeviceNamesInput& input, Context& ctx);

// A DeviceName list file's names (path or "-"): what --devices reads.
[[nodiscard]] Result<std::vector<std::string>> read_device_list(const std::string& path,
                                                                Context& ctx);

// ---- other shared values ----

// --product-key PK; `default_from` ends the help text: "(default: <default_from>)".
void add_product_key(CLI::App* cmd,
                     std::optional<std::string>& product_key,
                     std::string_view default_from = "the config's product_key");

// --concurrency N: how many requests (or connections) are in flight at most.
void add_concurrency(CLI::App* cmd,
                     std::size_t& concurrency,
                     Context& ctx,
                     std::size_t max = 64,
                     std::string_view deprecated_name = {});

// --format csv|json|ndjson for a file written with -O.
void add_file_format(CLI::App* cmd, std::string& format);

// -O, --out FILE: written 0600 and atomically (`holds` says what, for the help).
void add_out_file(CLI::App* cmd, std::optional<std::string>& out, std::string_view holds);

struct DurationSpec {
  std::chrono::milliseconds bare_unit{1000}; // what a bare number means
  std::chrono::milliseconds min{0};
  std::chrono::milliseconds max{std::chrono::hours(24 * 30)};
  std::string_view deprecated_name = {}; // an old spelling kept as a hidden alias
  // When set, the value must be a whole number of this unit (e.g. minutes for the platform).
  std::chrono::milliseconds granularity{0};
};

// A DURATION option (core::parse_duration); the help says the syntax, the bare unit and the
// default (the value `target` holds when registered).
CLI::Option* add_duration(CLI::App* cmd,
                          const std::string& name,
                          std::chrono::milliseconds& target,
                          std::string_view description,
                          const DurationSpec& spec,
                          Context& ctx);
// The same with a setter, for a value kept in another unit (e.g. whole seconds).
CLI::Option* add_duration(CLI::App* cmd,
                          const std::string& name,
                          std::function<void(std::chrono::milliseconds)> set,
                          std::optional<std::chrono::milliseconds> default_value,
                          std::string_view description,
                          const DurationSpec& spec,
                          Context& ctx);
// The same for a duration that has no default (unset unless given).
CLI::Option* add_duration(CLI::App* cmd,
                          const std::string& name,
                          std::optional<std::chrono::milliseconds>& target,
                          std::string_view description,
                          const DurationSpec& spec,
                          Context& ctx);

// ---- the serial connection ----

enum class PortUse {
  one,          // -p/--port PORT, required (module info / at)
  many,         // -p/--port PORT, repeatable (provision)
  optional,     // -p/--port PORT, repeatable, optional (secrets compare: read modules too)
  optional_one, // -p/--port PORT into connect.port, optional (diagnose device: on the bench)
};

// --port (as `use` says; `ports` gets them, `one_port` the single one), --module,
// --module-profile, --baud, --trace and (when layout is given) --layout.
void add_connection_options(CLI::App* cmd,
                            ModuleConnectOptions& connect,
                            std::optional<std::string>* layout,
                            PortUse use,
                            std::vector<std::string>* ports = nullptr);

// The driver names --module takes: the built-in profiles' names, then "auto".
[[nodiscard]] std::vector<std::string> driver_names();

// ---- renamed options and exit codes ----

// An old spelling of an option, kept hidden for one release: it sets what `replacement`'s
// binding sets (via `apply`) and warns that it is deprecated, naming the new spelling.
void add_deprecated_option(CLI::App* cmd,
                           const std::string& old_name,
                           const std::string& new_name,
                           std::function<void(const std::string&)> apply,
                           Context& ctx);
// The same for a flag without a value.
void add_deprecated_flag(CLI::App* cmd,
                         const std::string& old_name,
                         const std::string& new_name,
                         std::function<void()> apply,
                         Context& ctx);
[[nodiscard]] std::string deprecation_warning(std::string_view old_name, std::string_view new_name);

// The "Exit codes:" section of a command's help: what each code means for this command. The
// codes and their general meaning are in `iotfleet --help`.
void add_exit_codes(CLI::App* cmd, std::vector<std::pair<int, std::string>> codes);
inline constexpr std::string_view k_exit_codes_heading = "Exit codes:";

} // namespace iot::commands
