// SPDX-License-Identifier: MIT
// devices register | batch-register decisions against the cloud emulator in-process: an -O file
// that cannot be created stops them before the first cloud call; once devices exist, a failure
// says which (the ApplyId) and how to get their secrets back.
#include "commands/devices.hpp"
#include "unit/commands/bench.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace iot;
using namespace iot::commands;
using namespace iot::commands::testing;

namespace {

constexpr std::string_view k_pk = "a1DevicesUt1";

struct DevicesBench {
  CloudEmu emu{scenario(R"([{"product_key": ")" + std::string(k_pk) +
                        R"(", "devices": [{"name": "taken01"}]}])"),
               fast_batches()};
  Bench b;
  DevicesBench() { b.use_cloud(emu); }

  static sim::cloud::ServiceOptions fast_batches() {
    sim::cloud::ServiceOptions o;
    o.batch_delay_ms = 20;
    return o;
  }
  bool in_cloud(const std::string& dn) {
    return emu.read([&](sim::cloud::Conn& c) {
      return sim::cloud::CloudStore::device(c, k_pk, dn).has_value();
    });
  }
  std::string cloud_secret(const std::string& dn) {
    return emu.read([&](sim::cloud::Conn& c) {
      auto d = sim::cloud::CloudStore::device(c, k_pk, dn);
      REQUIRE(d.has_value());
      return d->device_secret;
    });
  }
  DevicesBatchRegisterOptions batch(std::vector<std::string> names, std::string out) {
    DevicesBatchRegisterOptions o;
    o.product_key = std::string(k_pk);
    o.devices.positional = std::move(names);
    o.out_file = std::move(out);
    o.poll = std::chrono::milliseconds(10);
    o.timeout = std::chrono::seconds(10);
    return o;
  }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST_CASE("devices register: an -O file that cannot be created means no cloud call") {
  DevicesBench t;
  DevicesRegisterOptions o;
  o.product_key = std::string(k_pk);
  o.devices.positional = {"new01", "new02"};
  o.out_file = t.b.file("nodir/triplets.csv");
  auto refused = run_devices_register(o, t.b.ctx);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("nodir") != std::string::npos);
  CHECK(t.emu.calls("RegisterDevice") == 0);
  CHECK_FALSE(t.in_cloud("new01"));

  // One name taken: the others are registered and written, the result is partial.
  o.devices.positional = {"new01", "taken01", "new02"};
  o.out_file = t.b.file("triplets.csv");
  auto partial = run_devices_register(o, t.b.ctx);
  REQUIRE_FALSE(partial.has_value());
  CHECK(partial.error().kind == ErrorKind::partial);
  CHECK(partial.error().message == "1 of 3 devices were not registered");
  REQUIRE(t.b.output.tables.size() == 1); // the registered ones are still shown
  CHECK(t.b.output.tables[0].rows.size() == 2);
  const auto text = slurp(*o.out_file);
  CHECK(text.find("new01," + t.cloud_secret("new01")) != std::string::npos);
  CHECK(text.find("new02," + t.cloud_secret("new02")) != std::string::npos);
  CHECK(text.find("taken01") == std::string::npos);
}

TEST_CASE("devices batch-register: -O is required and must be creatable before any call") {
  DevicesBench t;
  auto o = t.batch({"batch01", "batch02"}, t.b.file("nodir/batch.csv"));
  auto refused = run_devices_batch_register(o, t.b.ctx);
  REQUIRE_FALSE(refused.has_value());
  INFO(refused.error().message);
  CHECK(t.emu.total_calls() == 0);

  o.out_file.reset();
  auto no_file = run_devices_batch_register(o, t.b.ctx);
  REQUIRE_FALSE(no_file.has_value());
  CHECK(no_file.error().kind == ErrorKind::usage);
  CHECK(no_file.error().message.find("-O FILE is required") != std::string::npos);
  CHECK(t.emu.total_calls() == 0);
}

TEST_CASE("devices batch-register: a taken name fails the check and nothing is created") {
  DevicesBench t;
  auto o = t.batch({"batch01", "taken01"}, t.b.file("batch.csv"));
  auto refused = run_devices_batch_register(o, t.b.ctx);
  REQUIRE_FALSE(refused.has_value());
  INFO(refused.error().message);
  CHECK(refused.error().message.find("CHECK_FAILED") != std::string::npos);
  CHECK(refused.error().message.find("nothing registered") != std::string::npos);
  CHECK(t.emu.calls("BatchRegisterDeviceWithApplyId") == 0);
  CHECK_FALSE(t.in_cloud("batch01"));
  CHECK_FALSE(fs::exists(*o.out_file));
}

TEST_CASE("devices batch-register: devices created but the file lost: the ApplyId and the fix") {
  DevicesBench t;
  const auto dir = t.b.dir.path / "out";
  fs::create_directories(dir);
  auto o = t.batch({"batch01", "batch02", "batch03"}, (dir / "batch.csv").string());
  // The devices are created; then the file's directory disappears before the secrets are saved.
  t.emu.on_answer = [&](const std::string& action) {
    if (action == "QueryPageByApplyId") {
      fs::remove_all(dir);
    }
  };
  auto lost = run_devices_batch_register(o, t.b.ctx);
  REQUIRE_FALSE(lost.has_value());
  INFO(lost.error().message);
  CHECK(t.in_cloud("batch01"));
  CHECK(t.in_cloud("batch03"));
  const auto& m = lost.error().message;
  CHECK(m.find("3 devices of " + std::string(k_pk) + " were registered in the cloud (apply ") !=
        std::string::npos);
  CHECK(m.find("`iotfleet secrets export --product-key " + std::string(k_pk) + " -O FILE`") !=
        std::string::npos);
  // The ApplyId is named.
  const auto open = m.find("(apply ");
  REQUIRE(open != std::string::npos);
  const auto id = m.substr(open + 7, m.find(')', open) - open - 7);
  CHECK_FALSE(id.empty());
  CHECK(id.find_first_not_of("0123456789") == std::string::npos);
}

TEST_CASE("devices batch-register: every created device's secret lands in -O") {
  DevicesBench t;
  auto o = t.batch({"batch01", "batch02"}, t.b.file("batch.csv"));
  auto ok = run_devices_batch_register(o, t.b.ctx);
  REQUIRE_MESSAGE(ok.has_value(), (ok ? std::string() : ok.error().message));
  CHECK(cell(*ok, 0, "registered") == "2");
  const auto text = slurp(*o.out_file);
  CHECK(text.find("batch01," + t.cloud_secret("batch01")) != std::string::npos);
  CHECK(text.find("batch02," + t.cloud_secret("batch02")) != std::string::npos);
  CHECK(cell(*ok, 0, "apply_ids").find_first_not_of("0123456789") == std::string::npos);
}
