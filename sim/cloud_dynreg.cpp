// SPDX-License-Identifier: MIT
// Dynamic registration (§4) and the emulator's activation control; see sim/cloud_dynreg.hpp.
#include "sim/cloud_dynreg.hpp"

#include "cloud/crypto.hpp"
#include "cloud/signer.hpp"
#include "core/text.hpp"

#include <cctype>
#include <iostream>
#include <optional>

namespace iot::sim::cloud {

namespace {

using iot::cloud::HmacAlgorithm;

bool is_form(std::string_view content_type) {
  constexpr std::string_view form = "application/x-www-form-urlencoded";
  return content_type.size() >= form.size() &&
         core::iequals(content_type.substr(0, form.size()), form);
}

// signMethod, case-insensitively (§4: "hmacsha256"; doc samples also show "HmacMD5").
std::optional<HmacAlgorithm> sign_algorithm(std::string_view method) {
  const std::string m = core::to_lower(method);
  if (m == "hmacmd5") {
    return HmacAlgorithm::md5;
  }
  if (m == "hmacsha1") {
    return HmacAlgorithm::sha1;
  }
  if (m == "hmacsha256") {
    return HmacAlgorithm::sha256;
  }
  return std::nullopt;
}

const std::string* non_empty(const Params& params, const char* name) {
  const auto it = params.find(name);
  return it == params.end() || it->second.empty() ? nullptr : &it->second;
}

bool activated(const DeviceRow& d) {
  return d.active_ms != 0 || d.status == k_online || d.status == k_offline;
}

AdminReply admin_error(int status, std::string message) {
  return AdminReply{status, json{{"error", std::move(message)}}};
}

} // namespace

DynregReply dynreg_error(int code, std::string_view message, int status) {
  DynregReply r;
  r.status = status;
  r.code = code;
  r.body = json::object();
  r.body["code"] = code;
  r.body["message"] = std::string(message);
  return r;
}

std::variant<DynregReply, DynregRequest> dynreg_authenticate(const CloudRequest& request,
                                                             const CloudStore& store) {
  const DynregReply bad_request = dynreg_error(k_dynreg_bad_request, "request parameter error");
  // The fields are a form body (§4); the query string is not read.
  if (!is_form(request.content_type)) {
    return bad_request;
  }
  const auto form = iot::cloud::parse_form(request.body);
  if (!form) {
    return bad_request;
  }
  const Params& params = *form;
  const std::string* pk = non_empty(params, "productKey");
  const std::string* dn = non_empty(params, "deviceName");
  const std::string* random = non_empty(params, "random");
  const std::string* sign = non_empty(params, "sign");
  const std::string* method = non_empty(params, "signMethod");
  if (pk == nullptr || dn == nullptr || random == nullptr || sign == nullptr || method == nullptr) {
    return bad_request;
  }
  const auto algorithm = sign_algorithm(*method);
  if (!algorithm) {
    return bad_request;
  }
  // No instance parameter exists in §4 (one host for public and enterprise instances), so the
  // scenario's iot_instance_id does not hide products here.
  const ProductRow* product = valid_product_key(*pk) ? store.product(*pk) : nullptr;
  if (product == nullptr) {
    return dynreg_error(k_dynreg_no_product, "product not found");
  }
  // sign = hex(HMAC(ProductSecret, "deviceName"+dn+"productKey"+pk+"random"+random)); the
  // platform's hex case is UNVERIFIED (§4), so either case is accepted.
  const std::string content = "deviceName" + *dn + "productKey" + *pk + "random" + *random;
  const std::string expected =
      iot::cloud::hex(iot::cloud::hmac(*algorithm, product->secret, content));
  if (!iot::cloud::constant_time_equal(core::to_lower(*sign), expected)) {
    return dynreg_error(k_dynreg_bad_sign, "request auth error");
  }
  return DynregRequest{*pk, *dn};
}

DynregReply dynreg_register(CloudStore& store,
                            SharedRng& rng,
                            const DynregRequest& request,
                            std::int64_t now_ms) {
  const ProductRow* product = store.product(request.product_key);
  if (product == nullptr) {
    return dynreg_error(k_dynreg_no_product, "product not found");
  }
  if (!product->dynamic_register) {
    return dynreg_error(k_dynreg_not_enabled, "product dynamic register is not enabled");
  }
  if (!valid_device_name(request.device_name)) {
    return dynreg_error(k_dynreg_bad_name, "devicename not meet specs");
  }
  auto done = store.write([&](Conn& c) -> DynregReply {
    const auto found = CloudStore::device(c, request.product_key, request.device_name);
    if (!found) {
      return dynreg_error(k_dynreg_no_device, "device not found");
    }
    if (found->status == k_disable) {
      return dynreg_error(k_dynreg_disabled, "device is disabled");
    }
    if (activated(*found)) {
      return dynreg_error(k_dynreg_active, "device is already active");
    }
    // Before activation every registration issues a new secret and the newest wins (§4).
    DeviceRow after = *found;
    after.device_secret = rng.with([](Rng& r) { return random_hex(r, 32); });
    after.modified_ms = now_ms;
    CloudStore::update_device(c, *found, after);
    DynregReply ok;
    ok.issued = true;
    ok.body = json::object();
    ok.body["code"] = k_dynreg_ok;
    ok.body["data"] = json{{"productKey", after.product_key},
                           {"deviceName", after.device_name},
                           {"deviceSecret", after.device_secret}};
    ok.body["message"] = "success";
    return ok;
  });
  if (!done) {
    std::cerr << "iotfleet-sim cloud: state error: " << done.error().message << '\n';
    return dynreg_error(k_dynreg_system_error, "system error");
  }
  return std::move(*done);
}

AdminReply emulator_activate(const CloudRequest& request,
                             CloudStore& store,
                             SharedRng& rng,
                             std::int64_t now_ms) {
  if (request.method != "POST") {
    return admin_error(405, "use POST");
  }
  auto query = iot::cloud::parse_form(request.query);
  if (!query) {
    return admin_error(400, "malformed query string");
  }
  Params params = std::move(*query);
  if (is_form(request.content_type)) {
    auto form = iot::cloud::parse_form(request.body);
    if (!form) {
      return admin_error(400, "malformed form body");
    }
    for (auto& [k, v] : *form) {
      params[k] = std::move(v);
    }
  }
  const std::string* pk = non_empty(params, "productKey");
  const std::string* dn = non_empty(params, "deviceName");
  if (pk == nullptr || dn == nullptr) {
    return admin_error(400, "productKey and deviceName are required");
  }
  const std::string* wanted = non_empty(params, "status");
  const std::string status = wanted != nullptr ? *wanted : std::string(k_online);
  if (status != k_online && status != k_offline) {
    return admin_error(400, "status must be ONLINE or OFFLINE");
  }
  if (store.product(*pk) == nullptr) {
    return admin_error(404, "product not found");
  }
  auto done = store.write([&](Conn& c) -> AdminReply {
    const auto found = CloudStore::device(c, *pk, *dn);
    if (!found) {
      return admin_error(404, "device not found");
    }
    if (found->status == k_disable) {
      return admin_error(409, "device is disabled: it cannot connect");
    }
    // As if the device had connected: activated (first time only), online now; OFFLINE = it
    // connected and went away again.
    DeviceRow after = *found;
    after.status = status;
    after.enabled_status = status;
    if (after.active_ms == 0) {
      after.active_ms = now_ms;
    }
    after.online_ms = now_ms;
    after.status_ms = now_ms;
    after.modified_ms = now_ms;
    if (after.ip.empty()) {
      after.ip = rng.with([](Rng& r) {
        std::uniform_int_distribution<int> octet(1, 254);
        return "117.136." + std::to_string(octet(r)) + "." + std::to_string(octet(r));
      });
    }
    CloudStore::update_device(c, *found, after);
    return AdminReply{200,
                      json{{"productKey", after.product_key},
                           {"deviceName", after.device_name},
                           {"status", after.status},
                           {"utcActive", utc_iso(after.active_ms)},
                           {"utcOnline", utc_iso(after.online_ms)}}};
  });
  if (!done) {
    std::cerr << "iotfleet-sim cloud: state error: " << done.error().message << '\n';
    return admin_error(500, "state error");
  }
  return std::move(*done);
}

} // namespace iot::sim::cloud
