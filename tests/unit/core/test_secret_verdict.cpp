// SPDX-License-Identifier: MIT
// The verdict rules of `secrets compare` (core/secret_verdict.hpp): the seed's logic (FAQ §3) and
// its refinements (cloud, ledger, status), and that no text ever carries a secret.
#include "core/secret_verdict.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace iot::core;

namespace {

constexpr std::string_view k_a = "SecretAAAAAAAAAAAAAAAAAAAAAAAAAA";
constexpr std::string_view k_b = "SecretBBBBBBBBBBBBBBBBBBBBBBBBBB";
constexpr std::string_view k_c = "SecretCCCCCCCCCCCCCCCCCCCCCCCCCC";
constexpr std::string_view k_pk = "a1B2c3D4e5F";

// A device in the snapshot with secret A, ONLINE.
SecretEvidence in_snapshot() {
  SecretEvidence e;
  e.in_snapshot = true;
  e.snapshot_secret = k_a;
  e.snapshot_product_key = k_pk;
  e.snapshot_status = DeviceStatus::online;
  return e;
}

SecretEvidence with_module(SecretEvidence e, std::string_view secret) {
  e.module = SecretEvidence::Module::secret;
  e.module_secret = secret;
  return e;
}

SecretEvidence
with_cloud(SecretEvidence e, std::string_view secret, DeviceStatus status = DeviceStatus::online) {
  e.cloud_checked = true;
  e.in_cloud = true;
  e.cloud_secret = secret;
  e.cloud_status = status;
  return e;
}

SecretEvidence with_ledger(SecretEvidence e, std::string_view secret) {
  e.ledger_checked = true;
  e.in_ledger = true;
  e.ledger_secret = secret;
  e.ledger_state = "burned";
  return e;
}

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

} // namespace

TEST_SUITE("core::secret_verdict") {
  TEST_CASE("names and which verdicts are differences") {
    CHECK(to_string(SecretVerdict::match) == "match");
    CHECK(to_string(SecretVerdict::module_side) == "module-side");
    CHECK(to_string(SecretVerdict::cloud_side) == "cloud-side");
    CHECK(to_string(SecretVerdict::not_in_cloud) == "not-in-cloud");
    CHECK(to_string(SecretVerdict::not_in_snapshot) == "not-in-snapshot");
    CHECK(to_string(SecretVerdict::unactivated) == "unactivated");
    CHECK(to_string(SecretVerdict::ledger_differs) == "ledger-differs");
    CHECK(to_string(SecretVerdict::no_secret_on_module) == "no-secret-on-module");
    CHECK_FALSE(is_difference(SecretVerdict::match));
    CHECK_FALSE(is_difference(SecretVerdict::unactivated));
    CHECK(is_difference(SecretVerdict::module_side));
    CHECK(is_difference(SecretVerdict::cloud_side));
    CHECK(is_difference(SecretVerdict::not_in_cloud));
    CHECK(is_difference(SecretVerdict::not_in_snapshot));
    CHECK(is_difference(SecretVerdict::ledger_differs));
    CHECK(is_difference(SecretVerdict::no_secret_on_module));
  }

  TEST_CASE("device status names, any case") {
    CHECK(parse_device_status("ONLINE") == DeviceStatus::online);
    CHECK(parse_device_status("offline") == DeviceStatus::offline);
    CHECK(parse_device_status("Unactive") == DeviceStatus::unactive);
    CHECK(parse_device_status("DISABLE") == DeviceStatus::disable);
    CHECK(parse_device_status("") == DeviceStatus::unknown);
    CHECK(parse_device_status("ONLINE ") == DeviceStatus::unknown);
    CHECK(to_string(DeviceStatus::unactive) == "UNACTIVE");
    CHECK(to_string(DeviceStatus::unknown).empty());
  }

  TEST_CASE("the seed's rule: module vs healthy-time snapshot, then the live cloud") {
    CHECK(decide(with_module(in_snapshot(), k_a)) == SecretVerdict::match);
    CHECK(decide(with_module(in_snapshot(), k_b)) == SecretVerdict::module_side);
    // Module equals the snapshot: the cloud side changed.
    CHECK(decide(with_cloud(with_module(in_snapshot(), k_a), k_b)) == SecretVerdict::cloud_side);
    CHECK(decide(with_cloud(with_module(in_snapshot(), k_a), k_a)) == SecretVerdict::match);
    // Module differs from the snapshot: module-side whatever the cloud says now.
    CHECK(decide(with_cloud(with_module(in_snapshot(), k_b), k_a)) == SecretVerdict::module_side);
    CHECK(decide(with_cloud(with_module(in_snapshot(), k_b), k_b)) == SecretVerdict::module_side);
    // No module reading: the snapshot against the live cloud alone.
    CHECK(decide(with_cloud(in_snapshot(), k_c)) == SecretVerdict::cloud_side);
    CHECK(decide(in_snapshot()) == SecretVerdict::match);
  }

  TEST_CASE("presence: not in the cloud, not in the snapshot, nothing on the module") {
    SecretEvidence gone = with_module(in_snapshot(), k_b);
    gone.cloud_checked = true; // asked, not found
    CHECK(decide(gone) == SecretVerdict::not_in_cloud);

    SecretEvidence unknown;
    unknown.module = SecretEvidence::Module::secret;
    unknown.module_secret = k_a;
    CHECK(decide(unknown) == SecretVerdict::not_in_snapshot);
    CHECK(decide(with_cloud(unknown, k_a)) == SecretVerdict::not_in_snapshot);

    SecretEvidence blank = in_snapshot();
    blank.module = SecretEvidence::Module::empty;
    CHECK(decide(blank) == SecretVerdict::no_secret_on_module);
    SecretEvidence blank_unknown;
    blank_unknown.module = SecretEvidence::Module::empty;
    CHECK(decide(blank_unknown) == SecretVerdict::no_secret_on_module);
    // A cloud that does not know the device outranks an empty module.
    blank.cloud_checked = true;
    CHECK(decide(blank) == SecretVerdict::not_in_cloud);
  }

  TEST_CASE("a module holding another product's key is module-side") {
    SecretEvidence e = with_module(in_snapshot(), k_a);
    e.module_product_key = "a1OtherKey9";
    CHECK(decide(e) == SecretVerdict::module_side);
    const auto text = explain(SecretVerdict::module_side, e, "dev1");
    CHECK(contains(text.explanation, "a1OtherKey9"));
    e.module_product_key = k_pk;
    CHECK(decide(e) == SecretVerdict::match);
  }

  TEST_CASE("unactivated is a note, and only when the secrets agree") {
    SecretEvidence e = in_snapshot();
    e.snapshot_status = DeviceStatus::unactive;
    CHECK(decide(e) == SecretVerdict::unactivated);
    CHECK(decide(with_module(e, k_a)) == SecretVerdict::unactivated);
    CHECK(decide(with_module(e, k_b)) == SecretVerdict::module_side);
    // The live status wins over the snapshot's.
    CHECK(decide(with_cloud(e, k_a, DeviceStatus::online)) == SecretVerdict::match);
    CHECK(decide(with_cloud(in_snapshot(), k_a, DeviceStatus::unactive)) ==
          SecretVerdict::unactivated);
  }

  TEST_CASE("the ledger's burned secret") {
    // The module holds what was burned, the snapshot (the cloud) another one.
    CHECK(decide(with_ledger(with_module(in_snapshot(), k_b), k_b)) ==
          SecretVerdict::ledger_differs);
    // The module changed after burning: the ledger confirms the snapshot.
    CHECK(decide(with_ledger(with_module(in_snapshot(), k_b), k_a)) == SecretVerdict::module_side);
    // Module differs from both.
    CHECK(decide(with_ledger(with_module(in_snapshot(), k_b), k_c)) == SecretVerdict::module_side);
    // Module equals the snapshot, the ledger does not.
    CHECK(decide(with_ledger(with_module(in_snapshot(), k_a), k_c)) ==
          SecretVerdict::ledger_differs);
    CHECK(decide(with_ledger(in_snapshot(), k_c)) == SecretVerdict::ledger_differs);
    CHECK(decide(with_ledger(with_module(in_snapshot(), k_a), k_a)) == SecretVerdict::match);
    // A cloud-side change is named before a ledger one.
    CHECK(decide(with_cloud(with_ledger(in_snapshot(), k_c), k_b)) == SecretVerdict::cloud_side);
    // Not in the ledger: compared without it.
    SecretEvidence absent = with_module(in_snapshot(), k_a);
    absent.ledger_checked = true;
    CHECK(decide(absent) == SecretVerdict::match);
    CHECK(contains(explain(SecretVerdict::match, absent, "dev1").explanation,
                   "the ledger has no DeviceSecret"));
  }

  TEST_CASE("a cloud answer without a secret is not a cloud-side difference") {
    CHECK(decide(with_cloud(with_module(in_snapshot(), k_a), "")) == SecretVerdict::match);
  }

  TEST_CASE("a match names the agreeing sources in good grammar") {
    const auto one = explain(SecretVerdict::match, in_snapshot(), "dev1").explanation;
    CHECK(one.starts_with("the snapshot holds the same secret"));
    const auto two = explain(SecretVerdict::match, with_module(in_snapshot(), k_a), "dev1");
    CHECK(two.explanation.starts_with("the module and the snapshot hold the same secret"));
    const auto four = explain(SecretVerdict::match,
                              with_ledger(with_cloud(with_module(in_snapshot(), k_a), k_a), k_a),
                              "dev1");
    CHECK(four.explanation.starts_with(
        "the module, the snapshot, the live cloud and the ledger hold the same secret"));
  }
  TEST_CASE("explanations say what to do and never hold a secret") {
    struct Case {
      SecretEvidence e;
      SecretVerdict v;
      std::string_view must;
    };
    SecretEvidence gone = with_module(in_snapshot(), k_b);
    gone.cloud_checked = true;
    SecretEvidence blank = in_snapshot();
    blank.module = SecretEvidence::Module::empty;
    SecretEvidence unknown = with_cloud(with_module(SecretEvidence{}, k_a), k_b);
    SecretEvidence unactive = with_module(in_snapshot(), k_a);
    unactive.snapshot_status = DeviceStatus::unactive;
    const Case cases[] = {
        {with_cloud(with_ledger(with_module(in_snapshot(), k_a), k_a), k_a),
         SecretVerdict::match,
         "not the cause"},
        {with_ledger(with_module(in_snapshot(), k_b), k_a), SecretVerdict::module_side, "re-burn"},
        {with_cloud(with_module(in_snapshot(), k_a), k_b),
         SecretVerdict::cloud_side,
         "re-register"},
        {gone, SecretVerdict::not_in_cloud, "register it again"},
        {unknown, SecretVerdict::not_in_snapshot, "secrets export"},
        {unactive, SecretVerdict::unactivated, "not a secret difference"},
        {with_ledger(with_module(in_snapshot(), k_b), k_b),
         SecretVerdict::ledger_differs,
         "pool log --device-name dev1"},
        {with_ledger(in_snapshot(), k_c), SecretVerdict::ledger_differs, "not at fault"},
        {blank, SecretVerdict::no_secret_on_module, "burn it again"},
    };
    for (const auto& c : cases) {
      CAPTURE(to_string(c.v));
      REQUIRE(decide(c.e) == c.v);
      const auto text = explain(c.v, c.e, "dev1");
      CHECK_FALSE(text.explanation.empty());
      CHECK(contains(text.explanation + " " + text.action, c.must));
      for (const auto secret : {k_a, k_b, k_c}) {
        CHECK_FALSE(contains(text.explanation, secret));
        CHECK_FALSE(contains(text.action, secret));
      }
    }
    const auto cloud = explain(
        SecretVerdict::cloud_side, with_cloud(with_module(in_snapshot(), k_a), k_b), "dev1");
    CHECK(contains(cloud.action, "RequestId"));
    CHECK(contains(cloud.explanation, "module's secret equals the healthy-time snapshot"));
    const auto module = explain(
        SecretVerdict::module_side, with_ledger(with_module(in_snapshot(), k_b), k_a), "dev1");
    CHECK(contains(module.action, "keep the module for analysis"));
    CHECK(contains(module.explanation, "changed after burning"));
  }
}

// --probe, no snapshot, and the module's saved copy (seed FAQ §3.2).
namespace {

SecretEvidence probed(SecretEvidence e, SecretEvidence::Probe answer) {
  e.probe = answer;
  return e;
}

SecretEvidence with_copy(SecretEvidence e, std::string_view copy) {
  e.module_copy_checked = true;
  e.module_copy_secret = copy;
  return e;
}

// Neither a snapshot nor anything else: a module holding `secret`.
SecretEvidence no_snapshot(std::string_view secret) {
  SecretEvidence e;
  e.snapshot_checked = false;
  return with_module(e, secret);
}

} // namespace

TEST_SUITE("core::secret_verdict") {
  TEST_CASE("an accepted probe is a match whatever the snapshot says") {
    using P = SecretEvidence::Probe;
    // The snapshot holds B, the module A, the endpoint accepts A: the snapshot is stale.
    const auto stale = probed(with_cloud(with_module(in_snapshot(), k_b), k_b), P::accepted);
    REQUIRE(decide(probed(with_module(in_snapshot(), k_b), P::none)) == SecretVerdict::module_side);
    CHECK(decide(stale) == SecretVerdict::match);
    const auto text = explain(SecretVerdict::match, stale, "dev1");
    CHECK(contains(text.explanation, "MQTT endpoint accepted"));
    CHECK(contains(text.explanation, "not taken while the device was healthy"));
    // Accepted, but the factory burned another secret: the ledger is out of step.
    CHECK(decide(probed(with_ledger(no_snapshot(k_a), k_c), P::accepted)) ==
          SecretVerdict::ledger_differs);
    CHECK(decide(probed(with_ledger(no_snapshot(k_a), k_a), P::accepted)) == SecretVerdict::match);
  }
  TEST_CASE("a refused probe is held against the snapshot, the copy, the ledger") {
    using P = SecretEvidence::Probe;
    // The module equals the snapshot and the endpoint refuses it: the cloud changed.
    CHECK(decide(probed(with_module(in_snapshot(), k_a), P::refused)) == SecretVerdict::cloud_side);
    // The module differs from the snapshot: module-side, even when the cloud API agrees.
    CHECK(decide(probed(with_module(in_snapshot(), k_b), P::refused)) ==
          SecretVerdict::module_side);
    // No snapshot: the module's saved copy is the reference.
    const auto sn_changed = probed(with_copy(no_snapshot(k_b), k_a), P::refused);
    CHECK(decide(sn_changed) == SecretVerdict::module_side);
    const auto text = explain(SecretVerdict::module_side, sn_changed, "dev1");
    CHECK(contains(text.explanation, "saved copy"));
    CHECK(contains(text.explanation, "refused"));
    CHECK(decide(probed(with_copy(no_snapshot(k_a), k_a), P::refused)) ==
          SecretVerdict::cloud_side);
    // Nor a copy: the ledger.
    CHECK(decide(probed(with_ledger(no_snapshot(k_b), k_a), P::refused)) ==
          SecretVerdict::module_side);
    CHECK(decide(probed(with_ledger(no_snapshot(k_a), k_a), P::refused)) ==
          SecretVerdict::cloud_side);
    // An empty copy is no reference.
    CHECK(decide(probed(with_copy(no_snapshot(k_a), ""), P::refused)) == SecretVerdict::mismatch);
    // Nothing at all: which side is unknown.
    const auto nothing = probed(no_snapshot(k_a), P::refused);
    CHECK(decide(nothing) == SecretVerdict::mismatch);
    CHECK(is_difference(SecretVerdict::mismatch));
    CHECK(to_string(SecretVerdict::mismatch) == "mismatch");
    const auto unknown = explain(SecretVerdict::mismatch, nothing, "dev1");
    CHECK(contains(unknown.action, "devices recreate dev1"));
    // The cloud's record holds the module's secret, the endpoint refuses it: cloud-side.
    const auto record =
        probed(with_cloud(no_snapshot(k_a), k_a, DeviceStatus::offline), P::refused);
    CHECK(decide(record) == SecretVerdict::cloud_side);
    CHECK(contains(explain(SecretVerdict::cloud_side, record, "dev1").explanation,
                   "cloud's record holds the module's secret"));
  }
  TEST_CASE("without a snapshot or a probe answer the live cloud decides") {
    const auto same = with_cloud(no_snapshot(k_a), k_a, DeviceStatus::offline);
    CHECK(decide(same) == SecretVerdict::match);
    CHECK(explain(SecretVerdict::match, same, "dev1")
              .explanation.starts_with("the module and the live cloud hold the same secret"));
    CHECK(decide(with_cloud(no_snapshot(k_a), k_a, DeviceStatus::unactive)) ==
          SecretVerdict::unactivated);
    CHECK(decide(with_cloud(no_snapshot(k_a), k_b)) == SecretVerdict::mismatch);
    CHECK(decide(with_copy(with_cloud(no_snapshot(k_a), k_b), k_a)) == SecretVerdict::cloud_side);
    CHECK(decide(with_copy(with_cloud(no_snapshot(k_b), k_a), k_a)) == SecretVerdict::module_side);
    // A devices-file row without a secret: the ledger against the cloud.
    SecretEvidence row;
    row.snapshot_checked = false;
    CHECK(decide(with_ledger(with_cloud(row, k_a), k_b)) == SecretVerdict::ledger_differs);
    CHECK(decide(with_ledger(with_cloud(row, k_a), k_a)) == SecretVerdict::match);
  }
  TEST_CASE("the saved copy explains a snapshot verdict") {
    const auto e = with_copy(with_module(in_snapshot(), k_b), k_a);
    REQUIRE(decide(e) == SecretVerdict::module_side);
    CHECK(contains(explain(SecretVerdict::module_side, e, "dev1").explanation,
                   "the SN changed since the module last connected"));
    const auto none = with_copy(with_module(in_snapshot(), k_a), "");
    CHECK(contains(explain(decide(none), none, "dev1").explanation, "no saved copy"));
  }
}
