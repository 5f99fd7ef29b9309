// SPDX-License-Identifier: MIT
// Secrets given to a command: from a file or "-" (stdin), never from argv (visible in ps).
#pragma once

#include "commands/context.hpp"

#include <string>
#include <string_view>

namespace iot::commands {

// The secret in `path` ("-" = stdin): one line, surrounding whitespace dropped, never echoed.
// A file readable by group or others draws a chmod 600 warning. ErrorKind::usage for an
// unreadable, empty or multi-line file, naming `what` ("ProductSecret") and the file.
[[nodiscard]] Result<std::string>
read_secret_input(const std::string& path, std::string_view what, Context& ctx);

// A group secret of the device-key enrollment scheme (read_secret_input), at least 16
// characters: every device's key derives from it. ErrorKind::usage otherwise, naming the file.
[[nodiscard]] Result<std::string> read_group_secret(const std::string& path, Context& ctx);

} // namespace iot::commands
