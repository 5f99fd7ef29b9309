// SPDX-License-Identifier: MIT
// The verdict of `secrets compare` for one device: the seed's logic (FAQ §3, "secret mismatch
// after days online") as pure rules. Export every DeviceSecret while the fleet is healthy (the
// snapshot); when a device fails, compare the module's secret with the saved one: different ->
// module-side problem, equal -> cloud-side problem (confirmed by the live cloud's secret).
// Pure (std only); secrets are compared, never put in a text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace iot::core {

// A device's status as the cloud names it (QueryDevice / BatchQueryDeviceDetail).
enum class DeviceStatus : std::uint8_t { unknown, online, offline, unactive, disable };
// ONLINE, OFFLINE, UNACTIVE, DISABLE (any case); unknown for anything else, "" included.
[[nodiscard]] DeviceStatus parse_device_status(std::string_view text);
// "ONLINE", "OFFLINE", "UNACTIVE", "DISABLE"; "" for unknown.
[[nodiscard]] std::string_view to_string(DeviceStatus status);

enum class SecretVerdict : std::uint8_t {
  match,               // every secret known agrees
  module_side,         // the module's secret differs from the healthy-time snapshot
  cloud_side,          // the module (or nothing) agrees with the snapshot, the live cloud does not
  not_in_cloud,        // the live cloud does not know the DeviceName
  not_in_snapshot,     // the snapshot has no such DeviceName
  unactivated,         // UNACTIVE: never connected (a note, not a secret difference)
  ledger_differs,      // the factory ledger's burned secret differs from the snapshot
  no_secret_on_module, // the module was read and holds no secret
  mismatch, // the module's secret is not the cloud's and no healthy-time reference (snapshot,
            // the module's own copy, the ledger) says which side changed
};
// "match", "module-side", "cloud-side", "not-in-cloud", "not-in-snapshot", "unactivated",
// "ledger-differs", "no-secret-on-module", "mismatch".
[[nodiscard]] std::string_view to_string(SecretVerdict verdict);
// Everything but match and unactivated: what makes `secrets compare` exit 6.
[[nodiscard]] bool is_difference(SecretVerdict verdict);

// What is known of one device. Views are not owned; an empty view is "not known".
struct SecretEvidence {
  enum class Module : std::uint8_t {
    none,   // no module reading (a list of DeviceNames, a devices-file row without a secret)
    secret, // the module holds module_secret
    empty,  // the module was read and holds no secret
  };
  Module module = Module::none;
  std::string_view module_secret;
  std::string_view module_product_key; // "" when the module / the row does not say
  // The module's second stored copy (seed FAQ §3.2: the device script saves the secret in NVM
  // after each successful connection): read when its profile declares one; "" = nothing saved.
  bool module_copy_checked = false;
  std::string_view module_copy_secret;

  // The MQTT endpoint's answer to a CONNECT signed with module_secret (--probe): the strongest
  // cloud-side evidence, it is what the cloud authenticates with.
  enum class Probe : std::uint8_t { none, accepted, refused };
  Probe probe = Probe::none;

  bool snapshot_checked = true; // false: no snapshot was given (--probe without --snapshot)

  bool in_snapshot = false;
  std::string_view snapshot_secret;
  std::string_view snapshot_product_key; // "" when the snapshot has no ProductKey column
  DeviceStatus snapshot_status = DeviceStatus::unknown;

  bool cloud_checked = false; // --cloud: the live cloud was asked about this device
  bool in_cloud = false;
  std::string_view cloud_secret;
  DeviceStatus cloud_status = DeviceStatus::unknown;

  bool ledger_checked = false; // --ledger: the factory ledger was asked
  bool in_ledger = false;
  std::string_view ledger_secret;
  std::string_view ledger_state; // available, claimed, bound, burned
};

// The one verdict, first rule that applies (no allocation, for a million devices):
//   1. asked the cloud and it does not know the device         -> not-in-cloud
//   2. the module was read and holds no secret                  -> no-secret-on-module
//   P. the MQTT endpoint answered a probe of the module's secret:
//        accepted: the ledger's burned secret differs           -> ledger-differs
//                  otherwise                                    -> match
//        refused: against the healthy-time reference (the snapshot's secret, else the module's
//                 own copy, else the ledger's): the module differs -> module-side (ledger-differs
//                 when the reference is the snapshot and the ledger equals the module); equal
//                 -> cloud-side; no reference                   -> mismatch
//   S. no snapshot given: the module against the live cloud: equal -> 7./8.; different ->
//        against the reference as in P (refused); without a module secret the ledger against
//        the cloud (different -> ledger-differs), then 7./8.
//   3. not in the snapshot                                      -> not-in-snapshot
//   4. module's secret (or ProductKey) differs from the snapshot:
//        the ledger's burned secret equals the module's         -> ledger-differs (the module
//          holds what the factory burned; the cloud already had another secret)
//        otherwise                                              -> module-side
//   5. asked the cloud and its secret differs from the snapshot -> cloud-side
//   6. the ledger's secret differs from the snapshot            -> ledger-differs
//   7. status UNACTIVE (the live one with --cloud)              -> unactivated
//   8.                                                          -> match
[[nodiscard]] SecretVerdict decide(const SecretEvidence& evidence);

struct VerdictText {
  std::string explanation; // what the comparison shows (never a secret)
  std::string action;      // what to do
};
// The explanation and the action for a verdict decide() gave for `evidence`. `device_name` and
// the ProductKeys may appear in the text; secrets never do.
[[nodiscard]] VerdictText
explain(SecretVerdict verdict, const SecretEvidence& evidence, std::string_view device_name);

} // namespace iot::core
