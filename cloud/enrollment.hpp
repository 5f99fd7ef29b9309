// SPDX-License-Identifier: MIT
// The device's side of a customer's own credential server (seed FAQ 000 §7, the second way: at
// first boot the device asks the customer's server for its DeviceSecret; docs/enrollment.md).
// The request is wire-compatible with Aliyun's HTTPS dynamic registration
// (docs/aliyun-iot-protocol.md §4): POST /auth/register/device, a form of productKey,
// deviceName, random, sign, signMethod, so firmware that registers dynamically works by being
// pointed at the server. Optional signed fields imei and iccid bind the request to a module; an
// optional timestamp (ms) lets a server refuse replays. Two ways to key the sign, per product:
//   - product: the product's enrollment secret (its ProductSecret, or one only the server knows);
//   - device-key: a key of each device, derived from a group secret (enrollment_device_key), that
//     a station burns in place of the DeviceSecret: one device's leak exposes one device.
// Pure functions.
#pragma once

#include "cloud/device_sign.hpp"
#include "core/form.hpp"

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace iot::cloud {

// The answer codes: §4's (200, 460, 401, 6250, 6280, 6289) and, where §4 has none, Alibaba's
// "error codes for devices" (6100, 6204, 429, 500, 503). The cloud emulator answers with the same.
namespace enroll_code {
inline constexpr int ok = 200;
inline constexpr int bad_request = 460;      // "request parameter error"
inline constexpr int bad_sign = 401;         // "request auth error"
inline constexpr int no_product = 6250;      // "product not found"
inline constexpr int bad_name = 6280;        // "devicename not meet specs"
inline constexpr int no_device = 6100;       // "device not found"
inline constexpr int disabled = 6204;        // "device is disabled"
inline constexpr int bound_elsewhere = 6289; // "device is already active": bound to another module
inline constexpr int throttled = 429;
inline constexpr int system_error = 500;
inline constexpr int unavailable = 503;
} // namespace enroll_code

struct EnrollRefusal {
  int code = enroll_code::bad_request;
  std::string message; // never holds a sign or a secret
};

struct EnrollRequest {
  std::string product_key;
  std::string device_name;
  std::string random;
  std::string sign; // hex, as sent
  SignMethod sign_method = SignMethod::hmacsha256;
  std::string imei;  // "" when not sent
  std::string iccid; // "" when not sent
  std::optional<std::int64_t> timestamp_ms;
  // Every field but sign and signMethod: what the sign covers (firmware may add its own).
  core::FormFields signed_fields;
};

// The form body of a request, read under strict form rules (core::FormRules): productKey,
// deviceName, random, sign and signMethod required; imei (a real IMEI: 15 digits, Luhn, not a
// factory placeholder), iccid (18-22 hex digits) and timestamp (ms since the epoch) optional.
// A refusal is 460, or 6280 for a DeviceName outside Aliyun's rule.
[[nodiscard]] std::expected<EnrollRequest, EnrollRefusal>
parse_enroll_request(std::string_view body);

// What the sign covers: the signed fields' names and values concatenated in name order, e.g.
// "deviceNamedev01imei869939451296205productKeya1b2c3d4e5frandom8Ygb7ULYh53B6OA" (§4's form).
[[nodiscard]] std::string enroll_sign_content(const EnrollRequest& request);

// Whether the request's sign is hex(HMAC(sign_method, key, content)), either letter case,
// compared in constant time.
[[nodiscard]] bool enroll_sign_valid(const EnrollRequest& request, std::string_view key);

// The device-key scheme's key of one device: the first 32 hex digits (lowercase) of
// HMAC-SHA256(group secret, DeviceName). 128 bits, as long as a DeviceSecret, so it fits every
// layout a DeviceSecret fits. SECRET.
[[nodiscard]] std::string enrollment_device_key(std::string_view group_secret,
                                                std::string_view device_name);

// The device's side: the form body of a request whose fields (sign and signMethod left out) are
// signed with `key` under `method`.
[[nodiscard]] std::string
enroll_request_body(const core::FormFields& fields, SignMethod method, std::string_view key);

// {"code":200,"data":{"productKey":…,"deviceName":…,"deviceSecret":…},"message":"success"}.
[[nodiscard]] std::string enroll_answer(std::string_view product_key,
                                        std::string_view device_name,
                                        std::string_view device_secret);
// {"code":…,"message":…}.
[[nodiscard]] std::string enroll_refusal_answer(const EnrollRefusal& refusal);

} // namespace iot::cloud
