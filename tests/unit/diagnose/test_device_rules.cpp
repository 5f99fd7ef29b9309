// SPDX-License-Identifier: MIT
#include "diagnose/device_rules.hpp"

#include <doctest/doctest.h>

using namespace iot;
using namespace iot::diagnose;

namespace {

constexpr std::string_view k_secret = "0123456789abcdef0123456789abcdef";
constexpr std::string_view k_other = "ffffffffffffffffffffffffffffffff";

DeviceFacts base() {
  DeviceFacts d;
  d.product_key = "a1B2c3D4e5F";
  d.device_name = "861234567890126";
  return d;
}

CloudFacts healthy_cloud() {
  CloudFacts c;
  c.product_found = true;
  c.device_found = true;
  c.status = core::DeviceStatus::offline;
  c.active_ms = 1;
  c.secret = std::string(k_secret);
  return c;
}

ModuleFacts healthy_module() {
  ModuleFacts m;
  m.port = "/dev/ttyUSB0";
  m.imei = "861234567890126";
  m.has_credentials = true;
  m.product_key = "a1B2c3D4e5F";
  m.device_name = "861234567890126";
  m.secret = std::string(k_secret);
  m.sim = "READY";
  m.rssi_dbm = -71;
  m.reg_stat = 1;
  m.reg_status = "registered, home";
  m.attached = true;
  return m;
}

std::vector<std::string> kinds(const std::vector<Finding>& found) {
  std::vector<std::string> out;
  for (const auto& f : found) {
    out.push_back(f.kind);
  }
  return out;
}

bool has(const std::vector<Finding>& found, std::string_view kind) {
  for (const auto& f : found) {
    if (f.kind == kind) {
      return true;
    }
  }
  return false;
}

} // namespace

TEST_SUITE("diagnose::device_rules") {
  TEST_CASE("a healthy device with every source: no cause") {
    auto d = base();
    d.cloud = healthy_cloud();
    d.module = healthy_module();
    d.snapshot =
        SnapshotFacts{true, std::string(k_secret), "a1B2c3D4e5F", core::DeviceStatus::online};
    LedgerFacts l;
    l.found = true;
    l.state = "burned";
    l.imei = d.module->imei;
    l.secret = std::string(k_secret);
    l.module_imei_holds = d.device_name;
    d.ledger = l;
    d.log = FleetReport{};
    CHECK(device_findings(d).empty());
  }

  TEST_CASE("ProductKey in another letter case: from the cloud and from the module") {
    auto d = base();
    d.cloud = CloudFacts{};
    d.cloud->product_key_other_case = "A1b2C3d4E5f";
    auto found = device_findings(d);
    REQUIRE(!found.empty());
    CHECK(found[0].kind == k_product_key_case);
    CHECK(found[0].fix.find("A1b2C3d4E5f") != std::string::npos);

    auto m = base();
    m.module = healthy_module();
    m.module->product_key = "A1B2C3D4E5F";
    found = device_findings(m);
    REQUIRE(!found.empty());
    CHECK(found[0].kind == k_product_key_case);

    auto negative = base();
    negative.cloud = CloudFacts{}; // no product, and none in another case
    found = device_findings(negative);
    REQUIRE(found.size() == 1);
    CHECK(found[0].kind == k_product_not_found);
  }

  TEST_CASE("device missing, disabled, never activated") {
    auto d = base();
    d.cloud = healthy_cloud();
    d.cloud->device_found = false;
    CHECK(kinds(device_findings(d)) == std::vector<std::string>{std::string(k_device_not_found)});
    d.cloud = healthy_cloud();
    d.cloud->status = core::DeviceStatus::disable;
    CHECK(device_findings(d).at(0).kind == k_device_disabled);
    d.cloud->status = core::DeviceStatus::unactive;
    CHECK(device_findings(d).at(0).kind == k_never_activated);
    d.cloud->status = core::DeviceStatus::online;
    CHECK(device_findings(d).empty());
  }

  TEST_CASE("IMEI never written outranks the symptoms it causes") {
    auto d = base();
    d.cloud = healthy_cloud();
    d.cloud->status = core::DeviceStatus::unactive;
    d.module = healthy_module();
    d.module->imei = "352099001761481";
    d.module->imei_problem = "placeholder";
    const auto found = device_findings(d);
    REQUIRE(found.size() >= 2);
    CHECK(found[0].kind == k_imei_not_written);
    CHECK(found[0].fix.find("label IMEI") != std::string::npos);
    CHECK(found.back().kind == k_never_activated);

    auto ok = base();
    ok.module = healthy_module();
    CHECK_FALSE(has(device_findings(ok), k_imei_not_written));
  }

  TEST_CASE("label IMEI differs from the module's") {
    auto d = base();
    d.module = healthy_module();
    d.module->label_imei = "861234567890134";
    CHECK(device_findings(d).at(0).kind == k_label_imei_differs);
    d.module->label_imei = d.module->imei;
    CHECK(device_findings(d).empty());
  }

  TEST_CASE("secrets with a snapshot: module side, cloud side, without: a mismatch") {
    auto d = base();
    d.cloud = healthy_cloud();
    d.module = healthy_module();
    d.module->secret = std::string(k_other);
    d.snapshot =
        SnapshotFacts{true, std::string(k_secret), "a1B2c3D4e5F", core::DeviceStatus::online};
    auto found = device_findings(d);
    REQUIRE(!found.empty());
    CHECK(found[0].kind == k_secret_module_side);
    for (const auto& f : found) { // a secret is compared, never shown
      CHECK(f.detail.find(std::string(k_other)) == std::string::npos);
      CHECK(f.detail.find(std::string(k_secret)) == std::string::npos);
    }

    d.module->secret = std::string(k_secret);
    d.cloud->secret = std::string(k_other);
    CHECK(device_findings(d).at(0).kind == k_secret_cloud_side);

    d.snapshot.reset();
    found = device_findings(d);
    REQUIRE(!found.empty());
    CHECK(found[0].kind == "secret-mismatch");
    CHECK(found[0].confidence == Confidence::high);

    d.cloud->secret = std::string(k_secret);
    CHECK(device_findings(d).empty());
  }

  TEST_CASE("a module without credentials, or holding another device") {
    auto d = base();
    d.module = healthy_module();
    d.module->has_credentials = false;
    d.module->secret.clear();
    CHECK(device_findings(d).at(0).kind == k_module_no_credentials);
    d.module = healthy_module();
    d.module->device_name = "861234567890134";
    CHECK(device_findings(d).at(0).kind == k_module_other_device);
  }

  TEST_CASE("SIM, registration, attach") {
    auto d = base();
    d.module = healthy_module();
    d.module->sim = "NOT INSERTED";
    d.module->reg_stat = 2;
    d.module->reg_status = "searching";
    d.module->attached = false;
    const auto found = device_findings(d);
    CHECK(kinds(found) == std::vector<std::string>{std::string(k_sim_not_ready),
                                                   std::string(k_not_registered),
                                                   std::string(k_not_attached)});
    d.module->reg_stat = 5; // roaming is registered
    d.module->sim = "READY";
    d.module->attached = true;
    CHECK(device_findings(d).empty());
  }

  TEST_CASE("weak signal is high when the log shows the drops it causes") {
    auto d = base();
    d.module = healthy_module();
    d.module->rssi_dbm = -109;
    auto found = device_findings(d);
    REQUIRE(found.size() == 1);
    CHECK(found[0].kind == k_weak_signal);
    CHECK(found[0].confidence == Confidence::medium);

    FleetReport log;
    Finding resets;
    resets.kind = std::string(k_frequent_resets);
    resets.confidence = Confidence::medium;
    log.findings.push_back(resets);
    d.log = log;
    found = device_findings(d);
    REQUIRE(found.size() == 2);
    CHECK(found[0].kind == k_weak_signal);
    CHECK(found[0].confidence == Confidence::high);
    CHECK(found[1].kind == k_frequent_resets);

    d.module->rssi_dbm = -75;
    CHECK(kinds(device_findings(d)) == std::vector<std::string>{std::string(k_frequent_resets)});
  }

  TEST_CASE("the log's findings join the ranking, fleet-wide ones are left out") {
    auto d = base();
    FleetReport log;
    Finding dup;
    dup.kind = std::string(k_duplicate_identity);
    dup.confidence = Confidence::high;
    Finding cluster;
    cluster.kind = std::string(k_keepalive_cluster);
    cluster.confidence = Confidence::high;
    Finding keepalive;
    keepalive.kind = std::string(k_keepalive_too_long);
    keepalive.confidence = Confidence::high;
    log.findings = {keepalive, cluster, dup};
    d.log = log;
    CHECK(kinds(device_findings(d)) == std::vector<std::string>{std::string(k_duplicate_identity),
                                                                std::string(k_keepalive_too_long)});
  }

  TEST_CASE("the ledger burned the device into another module") {
    auto d = base();
    d.module = healthy_module();
    LedgerFacts l;
    l.found = true;
    l.state = "burned";
    l.imei = "861234567890134";
    l.secret = std::string(k_secret);
    d.ledger = l;
    CHECK(device_findings(d).at(0).kind == k_ledger_other_module);
    d.ledger->imei = d.module->imei;
    CHECK(device_findings(d).empty());
  }

  TEST_CASE("among frequent disconnect reasons the one with more records leads") {
    auto d = base();
    FleetReport log;
    Finding keepalive;
    keepalive.kind = std::string(k_frequent_keepalive);
    keepalive.confidence = Confidence::medium;
    keepalive.events = 86;
    Finding resets;
    resets.kind = std::string(k_frequent_resets);
    resets.confidence = Confidence::medium;
    resets.events = 253;
    log.findings = {keepalive, resets};
    d.log = log;
    CHECK(kinds(device_findings(d)) == std::vector<std::string>{std::string(k_frequent_resets),
                                                                std::string(k_frequent_keepalive)});
  }

  TEST_CASE("the endpoint refusing the module's secret is the first secret cause") {
    auto d = base();
    d.cloud = healthy_cloud();
    d.module = healthy_module();
    d.module->secret = std::string(k_other); // the cloud's record differs too
    d.probe = ProbeFacts{false, true, "module", "CONNACK 5: not authorized"};
    const auto found = device_findings(d);
    REQUIRE_FALSE(found.empty());
    CHECK(found.front().kind == k_secret_refused);
    CHECK(found.front().confidence == Confidence::high);
    CHECK(found.front().detail.find("module's DeviceSecret (CONNACK 5") != std::string::npos);
    CHECK(found.front().fix.find("provision --port P --overwrite") != std::string::npos);
    CHECK(has(found, "secret-mismatch")); // the cloud comparison stays as further evidence
    CHECK(found.front().detail.find(k_other) == std::string::npos);

    d.probe = ProbeFacts{false, true, "ledger", "CONNACK 4: bad user name or password"};
    const auto ledger = device_findings(d);
    REQUIRE_FALSE(ledger.empty());
    CHECK(ledger.front().kind == k_secret_refused);
    CHECK(ledger.front().fix.find("the cloud side changed") != std::string::npos);

    d.module->secret = std::string(k_secret);
    d.probe = ProbeFacts{true, false, "module", ""};
    CHECK_FALSE(has(device_findings(d), k_secret_refused));
    CHECK(cause_rank(k_secret_refused) < cause_rank(k_secret_module_side));
  }

  TEST_CASE("cause_rank puts identity before symptoms") {
    CHECK(cause_rank(k_imei_not_written) < cause_rank(k_keepalive_too_long));
    CHECK(cause_rank(k_product_key_case) < cause_rank(k_never_activated));
    CHECK(cause_rank("unknown-kind") > cause_rank(k_never_activated));
  }
}
