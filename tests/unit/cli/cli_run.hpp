// SPDX-License-Identifier: MIT
// Runs the whole command line in-process (cli::run) with a fake environment: a HOME that does not
// exist, the given variables and stdin, a fixed hostname. What a user would see: exit code,
// stdout and stderr.
#pragma once

#include "cli/app.hpp"

#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace iot::testing {

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

inline CliRun run_cli(std::vector<const char*> args,
                      std::map<std::string, std::string> vars = {},
                      std::string stdin_text = {}) {
  vars.emplace("HOME", "/nonexistent-home-for-tests");
  cloud::Environment env;
  env.getenv = [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    return it == vars.end() ? std::nullopt : std::optional(it->second);
  };
  env.read_stdin = [stdin_text]() -> Result<std::string> { return stdin_text; };
  env.hostname = [] { return std::string("test-host"); };
  args.insert(args.begin(), "iotfleet");
  std::ostringstream out;
  std::ostringstream err;
  CliRun r;
  r.code = cli::run(static_cast<int>(args.size()), args.data(), cli::AppStreams{out, err}, env);
  r.out = out.str();
  r.err = err.str();
  return r;
}

} // namespace iot::testing
