// SPDX-License-Identifier: MIT
#include "commands/secret_input.hpp"

#include "core/file.hpp"
#include "core/text.hpp"

#include <sys/stat.h>

namespace iot::commands {

Result<std::string>
read_secret_input(const std::string& path, std::string_view what, Context& ctx) {
  const std::string where = path == "-" ? std::string("stdin") : path;
  std::string text;
  if (path == "-") {
    auto in = IOT_TRY_CTX(ctx.env.read_stdin(), "read the " + std::string(what) + " from stdin");
    text = std::move(in);
  } else {
    // A secret is one short line; a directory or a huge file is a wrong path.
    text = IOT_TRY(core::read_file(
        path, "the " + std::string(what) + " file", {ErrorKind::usage, 64U * 1024U}));
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      ctx.output->warn(path + " holds a " + std::string(what) +
                       " and is readable by group or others: run chmod 600 " + path);
    }
  }
  std::string value(core::trim(text));
  if (value.empty()) {
    return fail(ErrorKind::usage, "the " + std::string(what) + " from " + where + " is empty");
  }
  if (value.find_first_of("\r\n") != std::string::npos) {
    return fail(ErrorKind::usage,
                "the " + std::string(what) + " from " + where +
                    " has more than one line: the file must hold the secret alone");
  }
  return value;
}

Result<std::string> read_group_secret(const std::string& path, Context& ctx) {
  constexpr std::size_t k_min = 16;
  auto secret = IOT_TRY(read_secret_input(path, "group secret", ctx));
  if (secret.size() < k_min) {
    return fail(ErrorKind::usage,
                "the group secret in " + path + " is shorter than " + std::to_string(k_min) +
                    " characters: every device's key derives from it, so make it long and "
                    "random (e.g. openssl rand -hex 32)");
  }
  return secret;
}

} // namespace iot::commands
