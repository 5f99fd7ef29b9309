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

#include "cloud/enrollment.hpp"
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

// §4 answer codes, as a customer's server answers them too (cloud/enrollment.hpp); 6288 is the
// emulator's own (§4 found no code for "dynamic registration not enabled").
inline constexpr int k_dynreg_ok = iot::cloud::enroll_code::ok;
inline constexpr int k_dynreg_bad_request = iot::cloud::enroll_code::bad_request;
inline constexpr int k_dynreg_bad_sign = iot::cloud::enroll_code::bad_sign;
inline constexpr int k_dynreg_no_product = iot::cloud::enroll_code::no_product;
inline constexpr int k_dynreg_bad_name = iot::cloud::enroll_code::bad_name;
inline constexpr int k_dynreg_no_device = iot::cloud::enroll_code::no_device;
inline constexpr int k_dynreg_disabled = iot::cloud::enroll_code::disabled;
inline constexpr int k_dynreg_not_enabled = 6288; // ours: product's switch off
inline constexpr int k_dynreg_active =
    iot::cloud::enroll_code::bound_elsewhere; // "device is already active"
inline constexpr int k_dynreg_throttled = iot::cloud::enroll_code::throttled; // --throttle-burst
inline constexpr int k_dynreg_system_error =
    iot::cloud::enroll_code::system_error; // --fail-5xx (half), state errors
inline constexpr int k_dynreg_unavailable =
    iot::cloud::enroll_code::unavailable;       // --fail-5xx (half), HTTP 503 too
inline constexpr int k_dynreg_bad_method = 405; // not POST, HTTP 405 too

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
