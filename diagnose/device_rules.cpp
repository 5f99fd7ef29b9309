// SPDX-License-Identifier: MIT
#include "diagnose/device_rules.hpp"

#include "core/keepalive.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace iot::diagnose {
namespace {

constexpr std::string_view k_secret_mismatch = "secret-mismatch";

// Root causes first, their symptoms last (within one confidence).
constexpr std::array<std::string_view, 27> k_order = {
    k_product_key_case,      k_product_not_found,
    k_device_not_found,      k_device_disabled,
    k_imei_not_written,      k_label_imei_differs,
    k_duplicate_identity,    k_module_other_device,
    k_module_no_credentials, k_secret_refused,
    k_secret_module_side,    k_secret_cloud_side,
    k_secret_factory,        k_secret_mismatch,
    k_ledger_other_module,   k_sim_not_ready,
    k_not_registered,        k_not_attached,
    k_keepalive_too_long,    k_keepalive_too_short,
    k_weak_signal,           k_auth_failures,
    k_frequent_disconnect,   k_frequent_keepalive,
    k_frequent_resets,       k_reboots,
    k_never_activated,
};

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

class Builder {
public:
  explicit Builder(const DeviceFacts& facts) : m_facts(facts) {}

  Finding& add(std::string_view kind, Confidence confidence, std::string detail, std::string fix) {
    Finding f;
    f.kind = std::string(kind);
    f.subject = m_facts.device_name;
    f.confidence = confidence;
    f.detail = std::move(detail);
    f.fix = std::move(fix);
    m_out.push_back(std::move(f));
    return m_out.back();
  }
  [[nodiscard]] bool has(std::string_view kind) const {
    return std::any_of(
        m_out.begin(), m_out.end(), [&](const Finding& f) { return f.kind == kind; });
  }
  std::vector<Finding> take() { return std::move(m_out); }

private:
  const DeviceFacts& m_facts;
  std::vector<Finding> m_out;
};

void cloud_rules(const DeviceFacts& d, Builder& b) {
  if (!d.cloud) {
    return;
  }
  const auto& c = *d.cloud;
  if (!c.product_found) {
    if (!c.product_key_other_case.empty()) {
      b.add(k_product_key_case,
            Confidence::high,
            "ProductKey " + d.product_key + " does not exist, but " + c.product_key_other_case +
                " does: they differ only in letter case",
            "ProductKeys are case-sensitive: burn " + c.product_key_other_case +
                " exactly as the console shows it (seed FAQ §4)")
          .evidence.push_back("cloud: QueryProduct " + d.product_key + " → not found");
      return;
    }
    b.add(k_product_not_found,
          Confidence::high,
          "no product " + d.product_key + " in this account and region",
          "check the ProductKey burned into the module and the region (--region); a module with "
          "a wrong ProductKey never connects")
        .evidence.push_back("cloud: QueryProduct " + d.product_key + " → not found");
    return;
  }
  if (!c.device_found) {
    b.add(k_device_not_found,
          Confidence::high,
          "no device " + d.device_name + " in product " + d.product_key,
          "register it (`iotfleet devices register " + d.device_name +
              "`) or correct the DeviceName burned into the module")
        .evidence.push_back("cloud: QueryDeviceDetail → not found");
    return;
  }
  const std::string status(core::to_string(c.status));
  if (c.status == core::DeviceStatus::disable) {
    b.add(k_device_disabled,
          Confidence::high,
          d.device_name + " is disabled in the cloud: the platform refuses its connections",
          "enable it (console, or EnableThing) if it was disabled by mistake")
        .evidence.push_back("cloud: status DISABLE");
  } else if (c.status == core::DeviceStatus::unactive) {
    b.add(k_never_activated,
          Confidence::medium,
          d.device_name + " has never connected (no activation time)",
          (d.module ? std::string("it has not connected since burning: ")
                    : "check what the module holds (`iotfleet diagnose device " + d.device_name +
                          " --port P`), ") +
              "its SIM and network, and that its firmware connects to this region")
        .evidence.push_back("cloud: status UNACTIVE, no activation time");
  }
}

void module_rules(const DeviceFacts& d, Builder& b) {
  if (!d.module) {
    return;
  }
  const auto& m = *d.module;
  const std::string where = "module on " + m.port + ": ";
  if (m.cellular && !m.imei_problem.empty()) {
    b.add(k_imei_not_written,
          Confidence::high,
          "the module's IMEI " + m.imei + " is " + m.imei_problem +
              ": the IMEI was never written. Every module like it reports the same IMEI, so with "
              "DeviceName = IMEI they are all one device and kick each other off",
          "write the label IMEI into the module (factory rework), then provision it again "
          "(seed FAQ §6)")
        .evidence.push_back(where + "IMEI " + m.imei + " (" + m.imei_problem + ")");
  }
  if (!m.label_imei.empty() && m.label_imei != m.imei) {
    b.add(k_label_imei_differs,
          Confidence::high,
          "the module reports IMEI " + m.imei + " but its label says " + m.label_imei,
          "the IMEI was rewritten or the module swapped: write the label IMEI back; two modules "
          "with one IMEI are kicked by the same device (seed FAQ §6)")
        .evidence.push_back(where + "IMEI " + m.imei + ", label " + m.label_imei);
  }
  if (!m.has_credentials) {
    b.add(k_module_no_credentials,
          Confidence::high,
          "the module holds no credentials",
          "burn its triplet (`iotfleet provision --port " + m.port + "`)")
        .evidence.push_back(where + "no triplet stored");
  } else {
    if (!m.product_key.empty() && m.product_key != d.product_key &&
        iequal(m.product_key, d.product_key) && !b.has(k_product_key_case)) {
      b.add(k_product_key_case,
            Confidence::high,
            "the module holds ProductKey " + m.product_key + ", the device's is " + d.product_key +
                ": they differ only in letter case",
            "ProductKeys are case-sensitive: burn " + d.product_key +
                " exactly as the console shows it (seed FAQ §4)")
          .evidence.push_back(where + "ProductKey " + m.product_key);
    } else if ((!m.device_name.empty() && m.device_name != d.device_name) ||
               (!m.product_key.empty() && !iequal(m.product_key, d.product_key))) {
      b.add(k_module_other_device,
            Confidence::high,
            "the module holds " + (m.product_key.empty() ? d.product_key : m.product_key) + "/" +
                (m.device_name.empty() ? d.device_name : m.device_name) + ", not " + d.product_key +
                "/" + d.device_name,
            "this module is another device, or was burned with the wrong triplet: check the "
            "label and the ledger (`iotfleet pool log`)")
          .evidence.push_back(where + "holds DeviceName " + m.device_name);
    }
  }
  if (!m.cellular) {
    return;
  }
  if (!m.sim.empty() && m.sim != "READY") {
    b.add(k_sim_not_ready,
          Confidence::high,
          "the SIM is not ready (" + m.sim + ")",
          "insert or reseat the SIM; unlock it if it asks for a PIN; check the card in another "
          "module")
        .evidence.push_back(where + "AT+CPIN? → " + m.sim);
  }
  if (m.reg_stat && *m.reg_stat != 1 && *m.reg_stat != 5) {
    b.add(k_not_registered,
          Confidence::high,
          "the module is not registered on the network (" + m.reg_status + ")",
          "check coverage, the antenna, the SIM's service (data plan, not suspended) and the "
          "band configuration")
        .evidence.push_back(where + "registration stat " + std::to_string(*m.reg_stat));
  }
  if (m.attached && !*m.attached) {
    b.add(k_not_attached,
          Confidence::medium,
          "the module is not attached to packet data",
          "check the APN and the SIM's data service")
        .evidence.push_back(where + "AT+CGATT? → 0");
  }
  if (m.rssi_dbm && *m.rssi_dbm < k_weak_signal_dbm) {
    const bool drops =
        d.log && std::any_of(d.log->findings.begin(), d.log->findings.end(), [](const Finding& f) {
          return f.kind == k_frequent_keepalive || f.kind == k_frequent_resets ||
                 f.kind == k_keepalive_too_short;
        });
    auto& f = b.add(k_weak_signal,
                    drops ? Confidence::high : Confidence::medium,
                    "weak signal (" + std::to_string(*m.rssi_dbm) + " dBm)" +
                        (drops ? ": packets are lost, so the server sees keepalive timeouts and "
                                 "resets"
                               : ""),
                    "improve the antenna or its placement; keep the keepalive at " +
                        std::to_string(core::keepalive::advised_s) + " s, not below " +
                        std::to_string(core::keepalive::advised_min_s) + " s (seed FAQ §5)");
    f.evidence.push_back(where + "signal " + std::to_string(*m.rssi_dbm) + " dBm");
  }
}

// The endpoint's own answer: the strongest cloud-side evidence there is.
void probe_rules(const DeviceFacts& d, Builder& b) {
  if (!d.probe || !d.probe->refused) {
    return;
  }
  const bool from_module = d.probe->secret_from == "module";
  b.add(k_secret_refused,
        Confidence::high,
        "the MQTT endpoint refused a connection signed with the " + d.probe->secret_from +
            "'s DeviceSecret (" + d.probe->detail + "): the cloud holds another one",
        from_module
            ? "module side unless the cloud changed: burn the ledger's secret again (`iotfleet "
              "pool release DN --force --reason rework`, then `iotfleet provision --port P "
              "--overwrite`) and `iotfleet creds probe --port P`; if the endpoint refuses the "
              "ledger's secret too, the cloud side changed: delete the device and enter it again "
              "(seed FAQ §3.3)"
            : "the cloud's secret is not the one the factory ledger holds: the cloud side "
              "changed (seed FAQ §3); export the cloud's (`iotfleet secrets export`) and burn "
              "it, or delete the device and enter it again (§3.3)")
      .evidence.push_back("probe: the MQTT endpoint itself refused the " + d.probe->secret_from +
                          "'s secret (the strongest cloud-side evidence)");
}

void secret_rules(const DeviceFacts& d, Builder& b) {
  const bool module_secret = d.module && d.module->has_credentials && !d.module->secret.empty();
  core::SecretEvidence e;
  if (d.module) {
    e.module =
        module_secret ? core::SecretEvidence::Module::secret : core::SecretEvidence::Module::empty;
    e.module_secret = d.module->secret;
  }
  if (d.snapshot) {
    e.in_snapshot = d.snapshot->found;
    e.snapshot_secret = d.snapshot->secret;
    e.snapshot_product_key = d.snapshot->product_key;
    e.snapshot_status = d.snapshot->status;
  }
  if (d.cloud && d.cloud->device_found && !d.cloud->secret.empty()) {
    e.cloud_checked = true;
    e.in_cloud = true;
    e.cloud_secret = d.cloud->secret;
    e.cloud_status = d.cloud->status;
  }
  if (d.ledger) {
    e.ledger_checked = true;
    e.in_ledger = d.ledger->found;
    e.ledger_secret = d.ledger->secret;
    e.ledger_state = d.ledger->state;
  }
  if (d.snapshot && d.snapshot->found) {
    const auto verdict = core::decide(e);
    const auto text = core::explain(verdict, e, d.device_name);
    std::string_view kind;
    switch (verdict) {
    case core::SecretVerdict::module_side:
      kind = k_secret_module_side;
      break;
    case core::SecretVerdict::cloud_side:
      kind = k_secret_cloud_side;
      break;
    case core::SecretVerdict::ledger_differs:
      kind = k_secret_factory;
      break;
    default:
      return;
    }
    b.add(kind, Confidence::high, text.explanation, text.action)
        .evidence.push_back("secrets: " + std::string(core::to_string(verdict)) +
                            " (module, healthy-time snapshot" + (e.cloud_checked ? ", cloud" : "") +
                            (e.ledger_checked ? ", ledger" : "") + " compared)");
    return;
  }
  // No snapshot: the sides cannot be told apart, but a difference is still the cause.
  if (module_secret && e.cloud_checked && d.module->secret != d.cloud->secret) {
    b.add(k_secret_mismatch,
          Confidence::high,
          "the module's DeviceSecret is not the cloud's: the platform refuses its password",
          "find out which side changed with a healthy-time snapshot (`iotfleet secrets compare`, "
          "seed FAQ §3); then burn the cloud's secret or restore the module's")
        .evidence.push_back("secrets: module and cloud differ (compared, not shown)");
  } else if (module_secret && d.ledger && d.ledger->found && d.module->secret != d.ledger->secret) {
    b.add(k_secret_mismatch,
          Confidence::medium,
          "the module's DeviceSecret is not the one the factory ledger burned",
          "the module's storage was changed after burning (firmware writing the SN area?): "
          "compare with the cloud (`iotfleet secrets compare --cloud`)")
        .evidence.push_back("secrets: module and ledger differ (compared, not shown)");
  }
}

void ledger_rules(const DeviceFacts& d, Builder& b) {
  if (!d.ledger || !d.module || d.module->imei.empty()) {
    return;
  }
  const auto& l = *d.ledger;
  if (l.found && !l.imei.empty() && l.imei != d.module->imei) {
    b.add(k_ledger_other_module,
          Confidence::medium,
          d.device_name + " was " + l.state + " into the module with IMEI " + l.imei +
              (l.station.empty() ? "" : " at " + l.station) + "; this module is IMEI " +
              d.module->imei,
          "this is not the module the factory burned " + d.device_name +
              " into, or its IMEI changed: two modules may share the identity")
        .evidence.push_back("ledger: " + d.device_name + " " + l.state + " to IMEI " + l.imei);
  }
  if (!l.module_imei_holds.empty() && l.module_imei_holds != d.device_name &&
      !b.has(k_module_other_device)) {
    b.add(k_module_other_device,
          Confidence::medium,
          "the ledger bound this module (IMEI " + d.module->imei + ") to " + l.module_imei_holds +
              ", not " + d.device_name,
          "check the label: this module is probably " + l.module_imei_holds)
        .evidence.push_back("ledger: IMEI " + d.module->imei + " → " + l.module_imei_holds);
  }
}

void log_rules(const DeviceFacts& d, Builder& b, std::vector<Finding>& out) {
  if (!d.log) {
    return;
  }
  for (const auto& f : d.log->findings) {
    if (f.kind == k_keepalive_cluster || f.kind == k_never_online) {
      continue; // fleet-wide findings
    }
    if (b.has(f.kind)) {
      continue;
    }
    out.push_back(f);
  }
}

} // namespace

int cause_rank(std::string_view kind) {
  // The frequent-* reasons are the same kind of symptom: the one with more records leads.
  if (kind == k_frequent_keepalive || kind == k_frequent_resets) {
    kind = k_frequent_disconnect;
  }
  const auto it = std::find(k_order.begin(), k_order.end(), kind);
  return static_cast<int>(it - k_order.begin());
}

std::vector<Finding> device_findings(const DeviceFacts& facts) {
  Builder b(facts);
  cloud_rules(facts, b);
  module_rules(facts, b);
  probe_rules(facts, b);
  secret_rules(facts, b);
  ledger_rules(facts, b);
  std::vector<Finding> from_log;
  log_rules(facts, b, from_log);
  auto out = b.take();
  for (auto& f : from_log) {
    out.push_back(std::move(f));
  }
  std::stable_sort(out.begin(), out.end(), [](const Finding& x, const Finding& y) {
    if (x.confidence != y.confidence) {
      return static_cast<int>(x.confidence) < static_cast<int>(y.confidence);
    }
    if (cause_rank(x.kind) != cause_rank(y.kind)) {
      return cause_rank(x.kind) < cause_rank(y.kind);
    }
    return x.events > y.events;
  });
  return out;
}

} // namespace iot::diagnose
