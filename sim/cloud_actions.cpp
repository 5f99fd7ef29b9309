// SPDX-License-Identifier: MIT
// The action table and the helpers every handler uses.
#include "sim/cloud_actions.hpp"

#include <algorithm>
#include <array>
#include <iostream>

namespace iot::sim::cloud {

namespace {

// QPS per Alibaba Cloud account (§2). Rows marked false are our picks (docs/cloud-emulator.md).
constexpr std::array<ActionSpec, 37> k_actions{{
    {"QueryDevice", 50, true, DeepRule::deep_pages, &query_device},
    {"QueryDeviceDetail", 50, true, DeepRule::none, &query_device_detail},
    {"BatchQueryDeviceDetail", 5, true, DeepRule::none, &batch_query_device_detail},
    {"BatchGetDeviceState", 50, true, DeepRule::none, &batch_get_device_state},
    {"QueryDeviceByStatus", 50, false, DeepRule::none, &query_device_by_status},
    {"GetDeviceStatus", 50, false, DeepRule::none, &get_device_status},
    {"RegisterDevice", 30, true, DeepRule::none, &register_device},
    {"BatchCheckDeviceNames", 10, true, DeepRule::none, &batch_check_device_names},
    {"QueryBatchRegisterDeviceStatus",
     30,
     true,
     DeepRule::none,
     &query_batch_register_device_status},
    {"BatchRegisterDeviceWithApplyId",
     500,
     true,
     DeepRule::none,
     &batch_register_device_with_apply_id},
    {"QueryPageByApplyId", 50, true, DeepRule::none, &query_page_by_apply_id},
    {"QueryProduct", 50, true, DeepRule::none, &query_product},
    {"QueryProductList", 50, true, DeepRule::deep_pages, &query_product_list},
    {"DeleteDevice", 10, false, DeepRule::none, &delete_device},
    {"ResetThing", 10, false, DeepRule::none, &reset_thing},
    {"DisableThing", 10, false, DeepRule::none, &disable_thing},
    {"EnableThing", 10, false, DeepRule::none, &enable_thing},
    // Tags and groups (QPS ours).
    {"QueryDeviceProp", 50, false, DeepRule::none, &query_device_prop},
    {"SaveDeviceProp", 50, false, DeepRule::none, &save_device_prop},
    {"QueryDeviceGroupByDevice", 50, false, DeepRule::none, &query_device_group_by_device},
    {"BatchAddDeviceGroupRelations", 10, false, DeepRule::none, &batch_add_device_group_relations},
    {"QueryDeviceBySQL", 10, true, DeepRule::none, &query_device_by_sql},
    {"QueryDeviceByTags", 50, false, DeepRule::none, &query_device_by_tags},
    {"QueryDeviceListByDeviceGroup", 50, false, DeepRule::none, &query_device_list_by_device_group},
    {"QueryDeviceGroupList", 50, false, DeepRule::none, &query_device_group_list},
    // OTA (§3).
    {"GenerateOTAUploadURL", 10, true, DeepRule::none, &generate_ota_upload_url},
    {"CreateOTAFirmware", 10, false, DeepRule::none, &create_ota_firmware},
    {"QueryOTAFirmware", 10, false, DeepRule::none, &query_ota_firmware},
    {"CreateOTAVerifyJob", 10, true, DeepRule::none, &create_ota_verify_job},
    {"CreateOTAStaticUpgradeJob", 20, true, DeepRule::none, &create_ota_static_upgrade_job},
    {"CreateOTADynamicUpgradeJob", 20, false, DeepRule::none, &create_ota_dynamic_upgrade_job},
    {"GenerateDeviceNameListURL", 10, false, DeepRule::none, &generate_device_name_list_url},
    {"QueryOTAJob", 10, false, DeepRule::none, &query_ota_job},
    {"ListOTATaskByJob", 10, true, DeepRule::none, &list_ota_task_by_job},
    {"CancelOTATaskByJob", 10, false, DeepRule::none, &cancel_ota_task_by_job},
    {"ListOTAJobByFirmware", 10, false, DeepRule::none, &list_ota_job_by_firmware},
    {"CancelOTAStrategyByJob", 10, false, DeepRule::none, &cancel_ota_strategy_by_job},
}};

} // namespace

std::span<const ActionSpec> action_table() {
  return k_actions;
}

int find_action(std::string_view name) {
  for (std::size_t i = 0; i < k_actions.size(); ++i) {
    if (k_actions[i].name == name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::int64_t page_count(std::int64_t total, std::int64_t page_size) {
  return (total + page_size - 1) / page_size;
}

Reply page_reply(std::string_view page_field,
                 std::int64_t total,
                 std::int64_t page_size,
                 std::int64_t current,
                 std::string_view item,
                 json list) {
  json out;
  out["Total"] = total;
  out["PageSize"] = page_size;
  out["PageCount"] = page_count(total, page_size);
  out[std::string(page_field)] = current;
  out["Data"] = json{{std::string(item), std::move(list)}};
  return ok(std::move(out));
}

Reply ok(json fields) {
  Reply r;
  r.body = json::object();
  r.body["Success"] = true;
  for (auto& [key, value] : fields.items()) {
    r.body[key] = std::move(value);
  }
  return r;
}

Reply business_error(std::string code, std::string message) {
  Reply r;
  r.body["Success"] = false;
  r.body["Code"] = code;
  r.body["ErrorMessage"] = std::move(message);
  r.code = std::move(code);
  return r;
}

Reply gateway_error(int status, std::string code, std::string message) {
  Reply r;
  r.status = status;
  r.gateway = true;
  r.body["Code"] = code;
  r.body["Message"] = std::move(message);
  r.code = std::move(code);
  return r;
}

std::optional<std::string> ActionContext::param(std::string_view name) const {
  const auto it = m_params.find(std::string(name));
  if (it == m_params.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::string ActionContext::required(std::string_view name) const {
  auto value = param(name);
  if (!value || value->empty()) {
    throw ReplyError{gateway_error(400,
                                   "MissingParameter",
                                   "The input parameter \"" + std::string(name) +
                                       "\" that is mandatory for processing this request is "
                                       "not supplied.")};
  }
  return std::move(*value);
}

std::map<std::int64_t, std::string> ActionContext::repeated_map(std::string_view name,
                                                                std::string_view field) const {
  // Keys look like "Name.<n>" or "Name.<n>.<field>"; collect by n.
  std::map<std::int64_t, std::string> found;
  std::string prefix(name);
  prefix.push_back('.');
  for (auto it = m_params.lower_bound(prefix); it != m_params.end(); ++it) {
    const std::string& key = it->first;
    if (key.compare(0, prefix.size(), prefix) != 0) {
      break;
    }
    std::string_view rest(key);
    rest.remove_prefix(prefix.size());
    const std::size_t dot = rest.find('.');
    const std::string_view number = rest.substr(0, dot);
    const std::string_view tail =
        dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    if (tail != field) {
      continue;
    }
    const auto n = parse_int(number);
    if (!n || *n < 1) {
      continue;
    }
    found[*n] = it->second;
  }
  return found;
}

std::vector<std::string> ActionContext::repeated(std::string_view name,
                                                 std::string_view field) const {
  std::vector<std::string> out;
  for (auto& [n, value] : repeated_map(name, field)) {
    out.push_back(std::move(value));
  }
  return out;
}

std::int64_t ActionContext::page_param(std::string_view name,
                                       std::int64_t fallback,
                                       std::int64_t min,
                                       std::int64_t max) const {
  const auto value = param(name);
  if (!value || value->empty()) {
    return fallback;
  }
  const auto n = parse_int(*value);
  if (!n || *n < min || *n > max) {
    throw ReplyError{business_error("iot.common.InvalidPageParams",
                                    "The paging parameters are invalid: " + std::string(name) +
                                        " must be an integer in " + std::to_string(min) + ".." +
                                        std::to_string(max) + ".")};
  }
  return *n;
}

bool ActionContext::instance_matches() const {
  const std::string& instance = m_store.iot_instance_id();
  return instance.empty() || param("IotInstanceId").value_or("") == instance;
}

const ProductRow& ActionContext::product() const {
  return product(required("ProductKey"));
}

const ProductRow& ActionContext::product(std::string_view product_key) const {
  if (!valid_product_key(product_key)) {
    throw ReplyError{business_error("iot.prod.InvalidFormattedProductkey",
                                    "The format of the ProductKey is invalid.")};
  }
  const ProductRow* p = instance_matches() ? m_store.product(product_key) : nullptr;
  if (p == nullptr) {
    throw ReplyError{
        business_error("iot.prod.NotExistedProduct", "The specified product does not exist.")};
  }
  return *p;
}

DeviceRow ActionContext::device(Conn& c) const {
  std::optional<DeviceRow> found;
  if (const auto iot_id = param("IotId"); iot_id && !iot_id->empty()) {
    found = instance_matches() ? CloudStore::device_by_iot_id(c, *iot_id) : std::nullopt;
  } else {
    const ProductRow& p = product();
    const std::string name = required("DeviceName");
    found = CloudStore::device(c, p.product_key, name);
  }
  if (!found) {
    throw ReplyError{
        business_error("iot.device.NotExistedDevice", "The specified device does not exist.")};
  }
  return std::move(*found);
}

void ActionContext::state_error(const std::string& message) {
  std::cerr << "iotfleet-sim cloud: state error: " << message << '\n';
  throw ReplyError{business_error("iot.system.SystemException", "A system exception occurred.")};
}

DeviceRow new_device(SharedRng& rng,
                     std::string_view product_key,
                     std::string device_name,
                     std::string nickname,
                     std::int64_t now_ms) {
  DeviceRow d;
  d.product_key = std::string(product_key);
  d.device_name = std::move(device_name);
  d.nickname = std::move(nickname);
  rng.with([&](Rng& r) {
    d.device_secret = random_hex(r, 32);
    d.iot_id = random_iot_id(r);
  });
  d.status = std::string(k_unactive);
  d.enabled_status = d.status;
  d.created_ms = now_ms;
  d.modified_ms = now_ms;
  d.status_ms = now_ms;
  return d;
}

} // namespace iot::sim::cloud
