// SPDX-License-Identifier: MIT
#include "core/secret_verdict.hpp"

#include <cctype>
#include <optional>
#include <vector>

namespace iot::core {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool module_pk_differs(const SecretEvidence& e) {
  return !e.module_product_key.empty() && !e.snapshot_product_key.empty() &&
         e.module_product_key != e.snapshot_product_key;
}

bool module_differs(const SecretEvidence& e) {
  return e.module == SecretEvidence::Module::secret &&
         (e.module_secret != e.snapshot_secret || module_pk_differs(e));
}

bool ledger_known(const SecretEvidence& e) {
  return e.ledger_checked && e.in_ledger && !e.ledger_secret.empty();
}

bool cloud_known(const SecretEvidence& e) {
  return e.cloud_checked && e.in_cloud && !e.cloud_secret.empty();
}

bool copy_known(const SecretEvidence& e) {
  return e.module_copy_checked && !e.module_copy_secret.empty();
}

// What the module's secret is held against to say which side changed: the healthy-time
// snapshot, else the module's own copy of the secret that last connected (§3.2), else the
// secret the factory burned (the ledger).
struct Reference {
  std::string_view secret;
  std::string_view name; // "the snapshot", "the module's saved copy", "the ledger"
};
std::optional<Reference> reference(const SecretEvidence& e) {
  if (e.snapshot_checked && e.in_snapshot && !e.snapshot_secret.empty()) {
    return Reference{e.snapshot_secret, "the healthy-time snapshot"};
  }
  if (copy_known(e)) {
    return Reference{e.module_copy_secret,
                     "the module's saved copy (the secret it last connected "
                     "with)"};
  }
  if (ledger_known(e)) {
    return Reference{e.ledger_secret, "the factory ledger's burned secret"};
  }
  return std::nullopt;
}

DeviceStatus effective_status(const SecretEvidence& e) {
  if (e.cloud_checked && e.in_cloud && e.cloud_status != DeviceStatus::unknown) {
    return e.cloud_status;
  }
  return e.snapshot_status;
}

// "the module, the snapshot and the live cloud": the sources that agree for a match.
std::string agreeing_sources(const SecretEvidence& e) {
  std::vector<std::string_view> parts;
  if (e.module == SecretEvidence::Module::secret) {
    parts.emplace_back("the module");
  }
  if (copy_known(e) && e.module_copy_secret == e.module_secret) {
    parts.emplace_back("its saved copy");
  }
  if (e.snapshot_checked && e.in_snapshot) {
    parts.emplace_back("the snapshot");
  }
  if (cloud_known(e)) {
    parts.emplace_back("the live cloud");
  }
  if (ledger_known(e)) {
    parts.emplace_back("the ledger");
  }
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) {
      out += i + 1 == parts.size() ? " and " : ", ";
    }
    out += parts[i];
  }
  if (parts.empty()) {
    return "nothing known holds";
  }
  return out + (parts.size() == 1 ? " holds" : " hold");
}

std::string probe_note(const SecretEvidence& e) {
  switch (e.probe) {
  case SecretEvidence::Probe::accepted:
    return "; the MQTT endpoint accepted the module's secret (probe)";
  case SecretEvidence::Probe::refused:
    return "; the MQTT endpoint refused the module's secret (probe)";
  case SecretEvidence::Probe::none:
    break;
  }
  return "";
}

// The §3.2 copy, when it tells something the verdict does not already say.
std::string copy_note(const SecretEvidence& e) {
  if (!e.module_copy_checked || e.module != SecretEvidence::Module::secret) {
    return "";
  }
  if (e.module_copy_secret.empty()) {
    return "; the module has no saved copy (it has not connected since its script saves one)";
  }
  return e.module_copy_secret == e.module_secret
             ? "; its saved copy equals the SN (the secret has not changed on the module since "
               "it last connected)"
             : "; its saved copy differs from the SN (the SN changed since the module last "
               "connected)";
}

std::string ledger_note(const SecretEvidence& e) {
  if (!e.ledger_checked) {
    return "";
  }
  if (!e.in_ledger || e.ledger_secret.empty()) {
    return "; the ledger has no DeviceSecret for it";
  }
  return "";
}

std::string status_note(const SecretEvidence& e) {
  const auto status = effective_status(e);
  if (status == DeviceStatus::unknown) {
    return "";
  }
  return std::string("; status ") + std::string(to_string(status)) +
         (e.cloud_checked && e.in_cloud && e.cloud_status != DeviceStatus::unknown ? " (live)"
                                                                                   : " (snapshot)");
}

} // namespace

DeviceStatus parse_device_status(std::string_view text) {
  // As the cloud writes them first (a million rows a second come through here).
  if (text == "ONLINE") {
    return DeviceStatus::online;
  }
  if (text == "OFFLINE") {
    return DeviceStatus::offline;
  }
  if (text.empty()) {
    return DeviceStatus::unknown;
  }
  if (iequals(text, "ONLINE")) {
    return DeviceStatus::online;
  }
  if (iequals(text, "OFFLINE")) {
    return DeviceStatus::offline;
  }
  if (iequals(text, "UNACTIVE")) {
    return DeviceStatus::unactive;
  }
  if (iequals(text, "DISABLE")) {
    return DeviceStatus::disable;
  }
  return DeviceStatus::unknown;
}

std::string_view to_string(DeviceStatus status) {
  switch (status) {
  case DeviceStatus::online:
    return "ONLINE";
  case DeviceStatus::offline:
    return "OFFLINE";
  case DeviceStatus::unactive:
    return "UNACTIVE";
  case DeviceStatus::disable:
    return "DISABLE";
  case DeviceStatus::unknown:
    break;
  }
  return "";
}

std::string_view to_string(SecretVerdict verdict) {
  switch (verdict) {
  case SecretVerdict::match:
    return "match";
  case SecretVerdict::module_side:
    return "module-side";
  case SecretVerdict::cloud_side:
    return "cloud-side";
  case SecretVerdict::not_in_cloud:
    return "not-in-cloud";
  case SecretVerdict::not_in_snapshot:
    return "not-in-snapshot";
  case SecretVerdict::unactivated:
    return "unactivated";
  case SecretVerdict::ledger_differs:
    return "ledger-differs";
  case SecretVerdict::no_secret_on_module:
    return "no-secret-on-module";
  case SecretVerdict::mismatch:
    return "mismatch";
  }
  return "match";
}

bool is_difference(SecretVerdict verdict) {
  return verdict != SecretVerdict::match && verdict != SecretVerdict::unactivated;
}

namespace {

// The module's secret is not the cloud's: which side changed, by the reference.
SecretVerdict side_of(const SecretEvidence& e) {
  if (e.probe == SecretEvidence::Probe::refused && cloud_known(e) &&
      e.cloud_secret == e.module_secret) {
    return SecretVerdict::cloud_side; // the record holds it, authentication refuses it
  }
  const auto ref = reference(e);
  if (!ref) {
    return SecretVerdict::mismatch;
  }
  const bool snapshot_ref = ref->secret.data() == e.snapshot_secret.data();
  if (e.module_secret != ref->secret || (snapshot_ref && module_pk_differs(e))) {
    if (snapshot_ref && ledger_known(e) && e.ledger_secret == e.module_secret &&
        !module_pk_differs(e)) {
      return SecretVerdict::ledger_differs;
    }
    return SecretVerdict::module_side;
  }
  return SecretVerdict::cloud_side;
}

SecretVerdict by_status(const SecretEvidence& e) {
  return effective_status(e) == DeviceStatus::unactive ? SecretVerdict::unactivated
                                                       : SecretVerdict::match;
}

} // namespace

SecretVerdict decide(const SecretEvidence& e) {
  if (e.cloud_checked && !e.in_cloud) {
    return SecretVerdict::not_in_cloud;
  }
  if (e.module == SecretEvidence::Module::empty) {
    return SecretVerdict::no_secret_on_module;
  }
  const bool has_secret = e.module == SecretEvidence::Module::secret;
  if (has_secret && e.probe == SecretEvidence::Probe::accepted) {
    return ledger_known(e) && e.ledger_secret != e.module_secret ? SecretVerdict::ledger_differs
                                                                 : SecretVerdict::match;
  }
  if (has_secret && e.probe == SecretEvidence::Probe::refused) {
    return side_of(e);
  }
  if (!e.snapshot_checked) {
    if (has_secret && cloud_known(e)) {
      return e.module_secret == e.cloud_secret ? by_status(e) : side_of(e);
    }
    if (has_secret && copy_known(e) && e.module_copy_secret != e.module_secret) {
      return SecretVerdict::module_side;
    }
    if (ledger_known(e) && cloud_known(e) && e.ledger_secret != e.cloud_secret) {
      return SecretVerdict::ledger_differs;
    }
    return by_status(e);
  }
  if (!e.in_snapshot) {
    return SecretVerdict::not_in_snapshot;
  }
  if (module_differs(e)) {
    if (ledger_known(e) && e.ledger_secret == e.module_secret && !module_pk_differs(e)) {
      return SecretVerdict::ledger_differs;
    }
    return SecretVerdict::module_side;
  }
  if (cloud_known(e) && e.cloud_secret != e.snapshot_secret) {
    return SecretVerdict::cloud_side;
  }
  if (ledger_known(e) && e.ledger_secret != e.snapshot_secret) {
    return SecretVerdict::ledger_differs;
  }
  if (effective_status(e) == DeviceStatus::unactive) {
    return SecretVerdict::unactivated;
  }
  return SecretVerdict::match;
}

VerdictText explain(SecretVerdict verdict, const SecretEvidence& e, std::string_view dn) {
  const std::string name(dn);
  const std::string pk(!e.snapshot_product_key.empty() ? e.snapshot_product_key
                                                       : e.module_product_key);
  const std::string of_product = pk.empty() ? std::string() : " of product " + pk;
  const auto ref = reference(e);
  const bool snapshot_ref = ref && ref->secret.data() == e.snapshot_secret.data();
  const bool refused = e.probe == SecretEvidence::Probe::refused;
  const std::string recreate = "iotfleet devices recreate " + name + " --yes";
  VerdictText t;
  switch (verdict) {
  case SecretVerdict::match: {
    t.explanation = agreeing_sources(e) + " the same secret" + probe_note(e) + copy_note(e) +
                    ledger_note(e) + status_note(e);
    if (e.probe == SecretEvidence::Probe::accepted && e.snapshot_checked && e.in_snapshot &&
        e.snapshot_secret != e.module_secret) {
      t.explanation += "; the snapshot holds another secret: it was not taken while the device "
                       "was healthy (export a new one)";
    }
    if (effective_status(e) == DeviceStatus::disable) {
      t.action = "the secret is not the cause: the device is disabled in the console; enable it";
    } else {
      t.action = "the secret is not the cause: look at the connection instead (keepalive, "
                 "duplicate IMEI / clientId, kicked by the same device: seed FAQ §4-6)";
    }
    break;
  }
  case SecretVerdict::module_side:
    if (snapshot_ref && module_pk_differs(e)) {
      t.explanation = "the module holds ProductKey " + std::string(e.module_product_key) +
                      " but the snapshot is of product " + std::string(e.snapshot_product_key);
      t.action = "burn the module with this product's triplet, or compare it against a "
                 "snapshot of product " +
                 std::string(e.module_product_key);
      break;
    }
    if (snapshot_ref) {
      t.explanation = "the module's secret differs from the one the cloud had while the device "
                      "was healthy (snapshot): a module-side problem (seed FAQ §3)";
      if (ledger_known(e) && e.ledger_secret == e.snapshot_secret) {
        t.explanation += "; the ledger's burned secret equals the snapshot, so the module's "
                         "stored secret changed after burning";
      } else if (ledger_known(e)) {
        t.explanation += "; the ledger's burned secret differs from both";
      }
    } else {
      t.explanation = "the module's secret differs from " +
                      std::string(ref ? ref->name : "its saved copy") +
                      ": a module-side problem (seed FAQ §3)";
    }
    if (cloud_known(e) && snapshot_ref) {
      t.explanation += e.cloud_secret == e.snapshot_secret
                           ? "; the live cloud still equals the snapshot"
                           : "; the live cloud differs from the snapshot too";
    } else if (cloud_known(e) && ref && e.cloud_secret == ref->secret) {
      t.explanation += "; the live cloud holds that one";
    }
    t.explanation += probe_note(e) + copy_note(e) + status_note(e);
    t.action = "the module's stored secret changed: re-burn it from the snapshot/ledger "
               "(iotfleet provision --overwrite), keep the module for analysis and report it to "
               "the module vendor";
    break;
  case SecretVerdict::cloud_side:
    if (e.module != SecretEvidence::Module::secret) {
      t.explanation =
          "the live cloud's secret differs from the snapshot: a cloud-side problem (seed FAQ §3)";
    } else if (refused && cloud_known(e) && e.cloud_secret == e.module_secret) {
      t.explanation = "the cloud's record holds the module's secret but the MQTT endpoint "
                      "refuses it: a cloud-side problem (seed FAQ §3)";
    } else {
      t.explanation =
          "the module's secret equals " +
          std::string(ref ? ref->name : "the healthy-time snapshot") + " but " +
          (refused ? "the MQTT endpoint refuses it (probe)" : "the live cloud holds another one") +
          ": a cloud-side problem (seed FAQ §3)";
    }
    t.explanation += copy_note(e) + status_note(e);
    t.action = "delete and re-register the device (seed FAQ §3.3; `" + recreate +
               "` keeps its nickname, tags and groups) and burn the secret it gets (一型一密: it "
               "registers itself again); report it to Alibaba Cloud with the device's IotId and "
               "the RequestId of a query of it";
    break;
  case SecretVerdict::not_in_cloud:
    t.explanation = "the live cloud does not know " + name + of_product +
                    ": deleted, never registered, or registered under another product";
    if (e.in_snapshot) {
      t.explanation += " (the snapshot has it: it was deleted after the snapshot)";
    }
    t.action = "register it again (console or OpenAPI RegisterDevice) and burn the secret it "
               "gets, or check the ProductKey";
    break;
  case SecretVerdict::not_in_snapshot:
    t.explanation = "the snapshot has no " + name +
                    ": it was taken before the device was registered, or of another product";
    if (e.module == SecretEvidence::Module::secret && cloud_known(e)) {
      t.explanation += e.module_secret == e.cloud_secret
                           ? "; the module equals the live cloud"
                           : "; the module differs from the live cloud";
    }
    t.explanation += copy_note(e);
    t.action = "export a snapshot that includes it while the device is healthy (iotfleet "
               "secrets export); meanwhile compare it with --cloud or --probe";
    break;
  case SecretVerdict::unactivated:
    t.explanation = "status UNACTIVE: the device never connected to the cloud; " +
                    agreeing_sources(e) + " the same secret" + ledger_note(e);
    t.action = "not a secret difference: check its first connection (SIM, network, "
               "iotfleet module info)";
    break;
  case SecretVerdict::ledger_differs:
    if (e.module == SecretEvidence::Module::secret && e.module_secret == e.ledger_secret) {
      t.explanation = "the module holds the secret the factory burned (ledger), but the cloud "
                      "had another one in the snapshot: the ledger's batch does not match the "
                      "cloud's device (re-registered after burning, or imported from another "
                      "batch file)";
      t.action = "find which is right: if the cloud's is, re-burn the module from the snapshot; "
                 "check the batch it came from (iotfleet pool log --device-name " +
                 name + ")";
    } else {
      const std::string against = e.probe == SecretEvidence::Probe::accepted
                                      ? "the module's, which the MQTT endpoint accepts"
                                  : !e.snapshot_checked ? "the live cloud's"
                                                        : "the snapshot";
      t.explanation = "the ledger's burned secret (state " + std::string(e.ledger_state) +
                      ") differs from " + against +
                      (e.module == SecretEvidence::Module::secret &&
                               e.probe == SecretEvidence::Probe::none && e.snapshot_checked
                           ? std::string(", which the module holds")
                           : std::string());
      t.action = "the ledger is out of step with the cloud: check the batch imported for it "
                 "(iotfleet pool log --device-name " +
                 name + "); the module is not at fault";
    }
    t.explanation += status_note(e);
    break;
  case SecretVerdict::no_secret_on_module:
    t.explanation = "the module was read and holds no secret (SN / credential store empty)";
    t.action = "burn it again (iotfleet provision); if it held a secret before, its storage was "
               "wiped: keep the module for analysis";
    break;
  case SecretVerdict::mismatch:
    t.explanation = std::string("the module's secret is not the cloud's (") +
                    (refused ? "the MQTT endpoint refused it" : "the live cloud holds another") +
                    ") and no healthy-time reference (a snapshot, the module's saved copy, the "
                    "ledger) says which side changed" +
                    status_note(e);
    t.action = "burn the cloud's current secret (iotfleet secrets export, then provision "
               "--overwrite) and probe again: accepted means the module side had changed; if "
               "the cloud's own secret is refused too, the cloud side: `" +
               recreate + "`";
    break;
  }
  return t;
}

} // namespace iot::core
