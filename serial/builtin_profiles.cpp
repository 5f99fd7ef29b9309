// SPDX-License-Identifier: MIT
// The built-in module profiles, as the same JSON a user would write (docs/module-profiles.md).
// Facts and their sources: docs/at-modules.md; UNVERIFIED items are listed in the doc.
#include "serial/profile.hpp"

namespace iot::serial {
namespace {

constexpr std::string_view k_luat = R"json({
  "name": "luat",
  "description": "Luat / OpenLuat AT firmware (Air724UG, Air720, Air780E): DS in the 64-byte SN",
  "kind": "cellular",
  "line_ending": "\r",
  "detect": ["AirM2M", "Air7[0-9]{2}", "Air2[0-9]{2}", "[Ll]uat", "LUAT"],
  "timeouts_ms": {"query": 2000, "write": 5000},
  "identity": {
    "imei": [{"command": "AT+CGSN", "prefix": "", "pattern": "^([0-9]{14,17})$", "optional": false}],
    "iccid": [
      {"command": "AT+ICCID", "prefix": "+ICCID:", "pattern": "^\\+ICCID: *([0-9A-Fa-f]{18,22})$"},
      {"command": "AT+CCID", "prefix": "", "pattern": "^([0-9A-Fa-f]{18,22})$"}
    ],
    "firmware": [{"command": "AT+CGMR", "prefix": "", "pattern": "^(?:\\+CGMR: *)?\"?([^\"]+)\"?$"}],
    "manufacturer": [{"command": "AT+CGMI", "prefix": "", "pattern": "^(?:\\+CGMI: *)?\"?([^\"]+)\"?$"}],
    "model": [{"command": "AT+CGMM", "prefix": "", "pattern": "^(?:\\+CGMM: *)?\"?([^\"]+)\"?$"}],
    "sn": [{"command": "AT+WISN?", "prefix": "", "pattern": "^(.+)$",
            "absent": "^\\*CME ERROR: *Missing SN$", "secret": true}]
  },
  "default_layout": "secret",
  "layouts": {
    "secret": {
      "dn_is_imei": true,
      "slots": [{
        "name": "SN", "value": "{ds}", "max_bytes": 64,
        "write": "AT+WISN=\"{value}\"", "method": "plain", "timeout_ms": 5000,
        "read": {"command": "AT+WISN?", "prefix": "", "pattern": "^(.+)$",
                 "absent": "^\\*CME ERROR: *Missing SN$"},
        "fields": {"ds": 1}
      }]
    },
    "triplet": {
      "slots": [{
        "name": "SN", "value": "{pk}|{dn}|{ds}", "max_bytes": 64,
        "too_long_hint": "use --layout secret (SN = DeviceSecret, DeviceName = IMEI) or shorter DeviceNames",
        "write": "AT+WISN=\"{value}\"", "method": "plain", "timeout_ms": 5000,
        "read": {"command": "AT+WISN?", "prefix": "", "pattern": "^([^|]*)\\|([^|]*)\\|(.*)$",
                 "absent": "^\\*CME ERROR: *Missing SN$"},
        "fields": {"pk": 1, "dn": 2, "ds": 3}
      }]
    }
  },
  "health": {"type": "3gpp", "registration": ["AT+CEREG?", "AT+CREG?"]}
})json";

constexpr std::string_view k_quectel = R"json({
  "name": "quectel",
  "description": "Quectel EC200/EC600/EG9x/BG95: triplet in the MQTT stack (AT+QMTCFG=\"aliauth\")",
  "kind": "cellular",
  "line_ending": "\r",
  "detect": ["Quectel", "QUECTEL", "\\bE[CG][0-9]{2,3}[A-Z]", "\\bBG9[0-9]", "\\bBC[0-9]{2}"],
  "timeouts_ms": {"query": 2000, "write": 5000},
  "identity": {
    "imei": [
      {"command": "AT+GSN", "prefix": "", "pattern": "^([0-9]{14,17})$", "optional": false},
      {"command": "AT+CGSN", "prefix": "", "pattern": "^([0-9]{14,17})$"}
    ],
    "iccid": [{"command": "AT+QCCID", "prefix": "+QCCID:", "pattern": "^\\+QCCID: *([0-9A-Fa-f]{18,22})$"}],
    "firmware": [{"command": "AT+CGMR", "prefix": "", "pattern": "^(?:Revision: *)?([A-Za-z0-9_.\\-]+)$"}],
    "manufacturer": [{"command": "AT+CGMI", "prefix": "", "pattern": "^(?:\\+CGMI: *)?([A-Za-z][A-Za-z0-9 _.\\-]*)$"}],
    "model": [{"command": "AT+CGMM", "prefix": "", "pattern": "^(?:\\+CGMM: *)?([A-Za-z0-9_.\\-]+)$"}],
    "sn": [{"command": "AT+EGMR=0,5", "prefix": "+EGMR:", "pattern": "^\\+EGMR: *\"([^\"]*)\"$"}]
  },
  "default_layout": "triplet",
  "layouts": {
    "triplet": {
      "slots": [{
        "name": "aliauth",
        "write": "AT+QMTCFG=\"aliauth\",0,\"{pk}\",\"{dn}\",\"{ds}\"", "method": "plain", "timeout_ms": 5000,
        "read": {"command": "AT+QMTCFG=\"aliauth\",0", "prefix": "+QMTCFG:",
                 "pattern": "^\\+QMTCFG: *\"aliauth\",(?:[0-9]+,)?\"([^\"]*)\",\"([^\"]*)\",\"([^\"]*)\"$",
                 "absent": "^\\+QMTCFG: *\"aliauth\",(?:[0-9]+,)?\"\",\"\",\"\"$"},
        "fields": {"pk": 1, "dn": 2, "ds": 3}
      }]
    }
  },
  "health": {"type": "3gpp", "registration": ["AT+CEREG?", "AT+CREG?"]}
})json";

constexpr std::string_view k_esp_at = R"json({
  "name": "esp-at",
  "description": "Espressif ESP-AT (ESP32): esp-aliyun keys in NVS namespace aliyun-key via AT+SYSMFG",
  "kind": "wifi",
  "line_ending": "\r\n",
  "detect": ["AT version:", "ESP32", "ESP8266", "esp-at"],
  "max_command_bytes": 256,
  "timeouts_ms": {"query": 2000, "write": 5000},
  "identity": {
    "mac": [{"command": "AT+CIPSTAMAC?", "prefix": "+CIPSTAMAC:",
             "pattern": "^\\+CIPSTAMAC: *\"([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\"$", "optional": false}],
    "firmware": [{"command": "AT+GMR", "prefix": "", "pattern": "^AT version: *(.+)$"}],
    "model": [{"command": "AT+SYSMFG=1,\"factory_param\",\"module_name\"", "prefix": "+SYSMFG:",
               "pattern": "^\\+SYSMFG: *\"factory_param\",\"module_name\",7,[0-9]+,(.*)$"}]
  },
  "default_layout": "triplet",
  "layouts": {
    "triplet": {
      "slots": [
        {"name": "ProductKey", "value": "{pk}", "method": "prompt",
         "write": "AT+SYSMFG=2,\"aliyun-key\",\"ProductKey\",7,{len}",
         "read": {"command": "AT+SYSMFG=1,\"aliyun-key\",\"ProductKey\"", "prefix": "+SYSMFG:",
                  "pattern": "^\\+SYSMFG: *\"aliyun-key\",\"ProductKey\",7,[0-9]+,(.*)$"},
         "fields": {"pk": 1}},
        {"name": "DeviceName", "value": "{dn}", "method": "prompt",
         "write": "AT+SYSMFG=2,\"aliyun-key\",\"DeviceName\",7,{len}",
         "read": {"command": "AT+SYSMFG=1,\"aliyun-key\",\"DeviceName\"", "prefix": "+SYSMFG:",
                  "pattern": "^\\+SYSMFG: *\"aliyun-key\",\"DeviceName\",7,[0-9]+,(.*)$"},
         "fields": {"dn": 1}},
        {"name": "DeviceSecret", "value": "{ds}", "method": "prompt",
         "write": "AT+SYSMFG=2,\"aliyun-key\",\"DeviceSecret\",7,{len}",
         "read": {"command": "AT+SYSMFG=1,\"aliyun-key\",\"DeviceSecret\"", "prefix": "+SYSMFG:",
                  "pattern": "^\\+SYSMFG: *\"aliyun-key\",\"DeviceSecret\",7,[0-9]+,(.*)$"},
         "fields": {"ds": 1}},
        {"name": "ProductSecret", "value": "{ps}", "method": "prompt", "optional": true,
         "write": "AT+SYSMFG=2,\"aliyun-key\",\"ProductSecret\",7,{len}",
         "read": {"command": "AT+SYSMFG=1,\"aliyun-key\",\"ProductSecret\"", "prefix": "+SYSMFG:",
                  "pattern": "^\\+SYSMFG: *\"aliyun-key\",\"ProductSecret\",7,[0-9]+,(.*)$"},
         "fields": {"ps": 1}}
      ]
    }
  },
  "health": {"type": "esp-wifi"}
})json";

} // namespace

const std::vector<std::string>& builtin_profile_names() {
  // Auto-detection order: ESP-AT's "AT version:" is the most specific marker.
  static const std::vector<std::string> k_names = {"esp-at", "luat", "quectel"};
  return k_names;
}

std::string_view builtin_profile_json(std::string_view name) {
  if (name == "luat") {
    return k_luat;
  }
  if (name == "quectel") {
    return k_quectel;
  }
  if (name == "esp-at") {
    return k_esp_at;
  }
  return {};
}

} // namespace iot::serial
