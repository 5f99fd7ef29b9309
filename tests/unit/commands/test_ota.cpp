// SPDX-License-Identifier: MIT
// ota upload | rollout decisions against the cloud emulator in-process, through the seams no
// real run can time: a firmware block corrupted after it was hashed (tamper_upload), a crash
// right after a wave's job was created (after_job_created) and its resume; and the exit status
// of a rollout some devices never react to.
#include "commands/ota.hpp"
#include "commands/ota_plan.hpp"
#include "unit/commands/bench.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace iot;
using namespace iot::commands;
using namespace iot::commands::testing;

namespace {

constexpr std::string_view k_pk = "a1OtaUnit001";

std::string ota_scenario() {
  std::string devices;
  for (int i = 1; i <= 4; ++i) {
    devices += std::string(i > 1 ? ", " : "") + R"({"name": "on0)" + std::to_string(i) +
               R"(", "status": "ONLINE", "firmware": "V1"})";
  }
  devices += R"(, {"name": "off01", "status": "OFFLINE", "firmware": "V1"})";
  return scenario(R"([{"product_key": ")" + std::string(k_pk) + R"(", "devices": [)" + devices +
                      "]}]",
                  R"("ota": {"speed": {"pickup_s": 1, "download_s": 4, "verify_s": 1,
                      "burn_s": 2, "jitter": 0}},)");
}

sim::cloud::ServiceOptions fast_devices() {
  sim::cloud::ServiceOptions o;
  o.time_scale = 100; // a task's 8 simulated seconds take 80 ms
  return o;
}

struct OtaBench {
  CloudEmu emu{ota_scenario(), fast_devices()};
  Bench b;
  OtaBench() { b.use_cloud(emu); }

  std::string firmware_file(std::size_t size = 3000) {
    const auto path = b.file("fw.bin");
    std::ofstream out(path, std::ios::binary);
    for (std::size_t i = 0; i < size; ++i) {
      out.put(static_cast<char>('A' + i % 26));
    }
    return path;
  }
  Result<core::Table> upload() {
    OtaUploadOptions o;
    o.files = {firmware_file()};
    o.product_key = std::string(k_pk);
    o.version = "V2";
    return run_ota_upload(o, b.ctx);
  }
  std::string firmware() {
    auto up = upload();
    REQUIRE_MESSAGE(up.has_value(), (up ? std::string() : up.error().message));
    return cell(*up, 0, "firmware_id");
  }
  OtaRolloutOptions rollout(const std::string& fw, std::vector<std::string> devices) {
    OtaRolloutOptions o;
    o.firmware_id = fw;
    o.devices.positional = std::move(devices);
    o.journal = b.file("rollout.json");
    o.poll_interval = std::chrono::milliseconds(100);
    o.notified_grace = std::chrono::seconds(1);
    return o;
  }
  ota::RolloutState journal() {
    auto s = ota::load_state(b.file("rollout.json"));
    REQUIRE_MESSAGE(s.has_value(), (s ? std::string() : s.error().message));
    return *s;
  }
  std::string version_of(const std::string& dn) {
    return emu.read([&](sim::cloud::Conn& c) {
      auto d = sim::cloud::CloudStore::device(c, k_pk, dn);
      REQUIRE(d.has_value());
      return d->firmware;
    });
  }
};

} // namespace

TEST_CASE("ota upload: a block corrupted after it was hashed is detected and no firmware made") {
  OtaBench t;
  int tampered = 0;
  t.b.ctx.seams.tamper_upload = [&](char* block, std::size_t size, std::int64_t offset) {
    if (offset == 0 && size > 10) {
      block[10] = static_cast<char>(block[10] ^ 0x20);
      ++tampered;
    }
  };
  auto corrupted = t.upload();
  REQUIRE_FALSE(corrupted.has_value());
  CHECK(tampered >= 1);
  CHECK(corrupted.error().message.find("the upload was corrupted on the way") != std::string::npos);
  CHECK(corrupted.error().message.find("upload again") != std::string::npos);
  CHECK(t.emu.calls("CreateOTAFirmware") == 1);
  const auto errors = t.emu.service->counters().errors;
  CHECK(errors.contains("iot.ota.FirmwareSignMismatch"));

  // The same file, untouched: the firmware exists with the file's own MD5.
  t.b.ctx.seams.tamper_upload = nullptr;
  auto clean = t.upload();
  REQUIRE_MESSAGE(clean.has_value(), (clean ? std::string() : clean.error().message));
  CHECK(cell(*clean, 0, "sign_method") == "MD5");
  CHECK(cell(*clean, 0, "sign").size() == 32);
  CHECK(t.emu.calls("CreateOTAFirmware") == 2);
}

TEST_CASE("ota rollout: devices that never react to the push make the result partial") {
  OtaBench t;
  const auto fw = t.firmware();
  auto o = t.rollout(fw, {"on01", "on02", "off01"});
  o.waves = "100%";
  auto r = run_ota_rollout(o, t.b.ctx);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == ErrorKind::partial);
  CHECK(r.error().message.find("rollout finished: 2 of 3 devices at V2") != std::string::npos);
  CHECK(r.error().message.find("1 never reacted to the push") != std::string::npos);
  CHECK(t.version_of("on01") == "V2");
  CHECK(t.version_of("off01") == "V1");
  // The journal says the rollout is over (a resume has nothing left to do), the wave counted it.
  const auto j = t.journal();
  CHECK(j.status == ota::RolloutStatus::done);
  REQUIRE(j.waves.size() == 1);
  CHECK(j.waves[0].counts.succeeded == 2);
  CHECK(j.waves[0].counts.notified == 1);
  REQUIRE_FALSE(t.b.output.tables.empty()); // the wave table is shown before the failure
}

TEST_CASE("ota rollout: a crash right after a job was created resumes without a second job") {
  OtaBench t;
  const auto fw = t.firmware();
  auto o = t.rollout(fw, {"on01", "on02", "on03", "on04"});
  o.waves = "50%,100%";
  int crashes = 0;
  t.b.ctx.seams.after_job_created = [&](int wave) -> Status {
    if (wave == 2) {
      ++crashes;
      return fail(ErrorKind::interrupted, "simulated crash after wave 2's job was created");
    }
    return {};
  };
  auto crashed = run_ota_rollout(o, t.b.ctx);
  REQUIRE_FALSE(crashed.has_value());
  CHECK(crashes == 1);
  CHECK(crashed.error().message.find("simulated crash") != std::string::npos);
  CHECK(t.emu.calls("CreateOTAStaticUpgradeJob") == 2);
  {
    const auto j = t.journal();
    REQUIRE(j.waves.size() == 2);
    CHECK(j.waves[0].state == ota::WaveState::finished);
    CHECK(j.waves[1].state == ota::WaveState::creating); // the intent, without a JobId
    CHECK(j.waves[1].job_id.empty());
  }

  t.b.ctx.seams.after_job_created = nullptr;
  OtaRolloutOptions resume;
  resume.resume = t.b.file("rollout.json");
  auto resumed = run_ota_rollout(resume, t.b.ctx);
  REQUIRE_MESSAGE(resumed.has_value(), (resumed ? std::string() : resumed.error().message));
  CHECK(t.emu.calls("CreateOTAStaticUpgradeJob") == 2); // found by its tags, not created again
  CHECK(t.b.said("wave 2/2: found job"));
  const auto j = t.journal();
  CHECK(j.status == ota::RolloutStatus::done);
  CHECK_FALSE(j.waves[1].job_id.empty());
  for (const auto* dn : {"on01", "on02", "on03", "on04"}) {
    CHECK(t.version_of(dn) == "V2");
  }
}
