// SPDX-License-Identifier: MIT
// One-type-one-secret dynamic registration over HTTPS (docs/aliyun-iot-protocol.md §4), served
// by the cloud emulator next to the OpenAPI: POST /auth/register/device with the form fields
// productKey, deviceName, random, sign, signMethod. Pre-registration mode only (§4: HTTPS
// supports nothing else): the DeviceName must exist. Until the device is activated (first
// connect) every registration issues a new DeviceSecret, which replaces the device's secret in
// the state (the newest wins, §4); afterwards 6289 "device is already active" until ResetThing.
//
// Also the emulator-only control POST /_emulator/activate (productKey, deviceName[, status]):
// marks a device activated as if it had connected, so that tests can reach 6289 without an
// MQTT broker. Not part of Alibaba's API; unsigned.
//
// CloudService routes the paths here and adds fault injection and counters
// (sim/cloud_service.cpp); the behaviour is in docs/cloud-emulator.md, "Dynamic registration".
#pragma once

#include "sim/cloud_actions.hpp"
#include "sim/cloud_service.hpp"
#include "sim/cloud_store.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace iot::sim::cloud {

inline constexpr std::string_view k_register_path = "/auth/register/device";
inline constexpr std::string_view k_activate_path = "/_emulator/activate";

// §4 answer codes. 200, 460, 401, 6250, 6280, 6289 are §4's; 6100, 6204, 429, 500 come from
// Alibaba's "Error codes for devices" table (the same protocol family); 6288 is ours (§4 found
// no code for "dynamic registration not enabled").
inline constexpr int k_dynreg_ok = 200;
inline constexpr int k_dynreg_bad_request = 460;  // "request parameter error"
inline constexpr int k_dynreg_bad_sign = 401;     // "request auth error"
inline constexpr int k_dynreg_no_product = 6250;  // "product not found"
inline constexpr int k_dynreg_bad_name = 6280;    // "devicename not meet specs"
inline constexpr int k_dynreg_no_device = 6100;   // "device not found"
inline constexpr int k_dynreg_disabled = 6204;    // "device is disabled"
inline constexpr int k_dynreg_not_enabled = 6288; // ours: product's switch off
inline constexpr int k_dynreg_active = 6289;      // "device is already active"
inline constexpr int k_dynreg_throttled = 429;    // --throttle-burst
inline constexpr int k_dynreg_system_error = 500; // --fail-5xx (half), state errors
inline constexpr int k_dynreg_unavailable = 503;  // --fail-5xx (half), HTTP 503 too
inline constexpr int k_dynreg_bad_method = 405;   // not POST, HTTP 405 too

// A §4 answer: HTTP status and the body {"code", "data"?, "message"}.
struct DynregReply {
  int status = 200;
  json body;
  int code = k_dynreg_ok;
  bool issued = false; // a new DeviceSecret was committed
};

// {"code": code, "message": message} with HTTP `status`.
[[nodiscard]] DynregReply dynreg_error(int code, std::string_view message, int status = 200);

struct DynregRequest {
  std::string product_key;
  std::string device_name;
};

// Parameters (form body), product and sign: an error reply or the authenticated request.
// Nothing is written.
[[nodiscard]] std::variant<DynregReply, DynregRequest>
dynreg_authenticate(const CloudRequest& request, const CloudStore& store);

// The product's switch, the DeviceName, the device's state; then a new DeviceSecret, committed
// in one transaction with the checks.
[[nodiscard]] DynregReply dynreg_register(CloudStore& store,
                                          SharedRng& rng,
                                          const DynregRequest& request,
                                          std::int64_t now_ms);

struct AdminReply {
  int status = 200;
  json body;
};

// POST /_emulator/activate: productKey, deviceName, optional status ONLINE (default) | OFFLINE,
// from the form body or the query string.
[[nodiscard]] AdminReply emulator_activate(const CloudRequest& request,
                                           CloudStore& store,
                                           SharedRng& rng,
                                           std::int64_t now_ms);

} // namespace iot::sim::cloud
