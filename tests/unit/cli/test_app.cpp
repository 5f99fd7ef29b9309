// SPDX-License-Identifier: MIT
#include "cli/app.hpp"
#include "cli/signals.hpp"
#include "cli_run.hpp"
#include "core/interrupt.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <map>
#include <sstream>
#include <vector>

using namespace iot;

namespace {

using Run = testing::CliRun;
using testing::run_cli;

} // namespace

TEST_SUITE("cli::run") {
  TEST_CASE("config show -o json prints data on stdout only") {
    const Run r =
        run_cli({"config", "show", "-o", "json"}, {{"ALIBABA_CLOUD_REGION_ID", "cn-beijing"}});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    const auto doc = nlohmann::json::parse(r.out);
    bool found = false;
    for (const auto& row : doc) {
      if (row["setting"] == "region") {
        CHECK(row["value"] == "cn-beijing");
        CHECK(row["source"] == "env ALIBABA_CLOUD_REGION_ID");
        found = true;
      }
    }
    CHECK(found);
  }
  TEST_CASE("global options work after the command too") {
    const Run r = run_cli({"config", "show", "--region", "us-east-1", "-o", "csv"});
    CHECK(r.code == 0);
    CHECK(r.out.find("\nregion,us-east-1,flag --region\n") != std::string::npos);
  }
  TEST_CASE("a command error goes to stderr with the mapped exit code") {
    // config show prints every setting, then names the one that cannot be used (exit 2).
    const Run r = run_cli({"config", "show"}, {{"ALIBABA_CLOUD_ACCESS_KEY_ID", "X"}});
    CHECK(r.code == 2);
    CHECK(r.out.find("access_key_id") != std::string::npos);
    CHECK(r.err.find("iotfleet: error: ") != std::string::npos);
    CHECK(r.err.find("ALIBABA_CLOUD_ACCESS_KEY_ID is set but") != std::string::npos);
  }
  TEST_CASE("parse errors are usage errors (2), help and version are 0") {
    CHECK(run_cli({"--frobnicate"}).code == 2);
    CHECK(run_cli({"config", "show", "extra-arg"}).code == 2);
    CHECK(run_cli({"--help"}).code == 0);
    const Run v = run_cli({"--version"});
    CHECK(v.code == 0);
    CHECK(v.out.starts_with("iotfleet "));
  }
}

TEST_SUITE("cli::signals") {
  TEST_CASE("SIGINT sets the interrupt flag instead of killing the process") {
    cli::install_signal_handlers();
    core::clear_interrupt();
    std::raise(SIGINT);
    CHECK(core::interrupt_requested());
    core::clear_interrupt();
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
  }
}
