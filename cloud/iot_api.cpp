// SPDX-License-Identifier: MIT
#include "cloud/iot_api.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <utility>

namespace iot::cloud {

using json = nlohmann::json;

namespace {

// Parsing throws BadShape internally (kept inside this file); parse() turns it into a Result.
struct BadShape {
  std::string path;
  std::string what;
};

std::string join_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// Member `key` of `obj`, or nullptr when absent or null.
const json* member(const json& obj, std::string_view key, const std::string& path) {
  if (!obj.is_object()) {
    throw BadShape{path, "expected an object"};
  }
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return nullptr;
  }
  return &*it;
}

std::string text(const json& obj, std::string_view key, const std::string& path) {
  const json* value = member(obj, key, path);
  if (value == nullptr) {
    return {};
  }
  if (value->is_string()) {
    return value->get<std::string>();
  }
  if (value->is_number() || value->is_boolean()) {
    return value->dump();
  }
  throw BadShape{join_path(path, key), "expected text"};
}

std::optional<std::int64_t>
opt_integer(const json& obj, std::string_view key, const std::string& path) {
  const json* value = member(obj, key, path);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (value->is_number_integer()) {
    return value->get<std::int64_t>();
  }
  if (value->is_number_float()) {
    return static_cast<std::int64_t>(value->get<double>());
  }
  if (value->is_string()) {
    const auto& s = value->get_ref<const std::string&>();
    if (s.empty()) {
      return std::nullopt;
    }
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc{} && end == s.data() + s.size()) {
      return n;
    }
  }
  throw BadShape{join_path(path, key), "expected an integer"};
}

std::int64_t integer(const json& obj, std::string_view key, const std::string& path) {
  return opt_integer(obj, key, path).value_or(0);
}

std::optional<bool> opt_bool(const json& obj, std::string_view key, const std::string& path) {
  const json* value = member(obj, key, path);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (value->is_boolean()) {
    return value->get<bool>();
  }
  if (value->is_string() && (*value == "true" || *value == "false")) {
    return *value == "true";
  }
  throw BadShape{join_path(path, key), "expected true or false"};
}

// A list at obj[key]. Aliyun's JSON wraps lists in an object named after the element type
// ({"DeviceInfo": [...]}) in some places and not in others; both are accepted, as is a lone
// object where a one-element list was meant. Absent = empty.
std::vector<std::pair<const json*, std::string>>
list(const json& obj, std::string_view key, const std::string& path) {
  std::vector<std::pair<const json*, std::string>> out;
  const json* value = member(obj, key, path);
  std::string at = join_path(path, key);
  if (value == nullptr) {
    return out;
  }
  if (value->is_object() && value->size() == 1 && value->begin()->is_array()) {
    at = join_path(at, value->begin().key());
    value = &*value->begin();
  }
  if (value->is_array()) {
    for (std::size_t i = 0; i < value->size(); ++i) {
      out.emplace_back(&(*value)[i], at + "[" + std::to_string(i) + "]");
    }
    return out;
  }
  if (value->is_object() && !value->empty()) {
    out.emplace_back(value, at);
    return out;
  }
  if (value->is_object()) {
    return out;
  }
  throw BadShape{at, "expected a list"};
}

std::vector<std::string>
string_list(const json& obj, std::string_view key, const std::string& path) {
  std::vector<std::string> out;
  for (const auto& [item, at] : list(obj, key, path)) {
    if (item->is_string()) {
      out.push_back(item->get<std::string>());
    } else if (item->is_object() && item->contains("Name")) {
      out.push_back(text(*item, "Name", at));
    } else {
      throw BadShape{at, "expected text"};
    }
  }
  return out;
}

const json& object_or_empty(const json& obj, std::string_view key, const std::string& path) {
  static const json k_empty = json::object();
  const json* value = member(obj, key, path);
  if (value == nullptr) {
    return k_empty;
  }
  if (!value->is_object()) {
    throw BadShape{join_path(path, key), "expected an object"};
  }
  return *value;
}

template <class F>
auto parse(std::string_view action, const ApiResponse& response, F&& f)
    -> Result<decltype(f(json{}))> {
  const json body = json::parse(response.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return fail(ErrorKind::cloud,
                "unexpected response from " + std::string(action) + ": not a JSON object");
  }
  try {
    return f(body);
  } catch (const BadShape& bad) {
    return fail(ErrorKind::cloud,
                "unexpected response from " + std::string(action) + ": " + bad.path + ": " +
                    bad.what);
  } catch (const json::exception& e) {
    return fail(ErrorKind::cloud,
                "unexpected response from " + std::string(action) + ": " + e.what());
  }
}

// One Action: the call (retried as ApiCall says), then the answer through `f` as parse() does.
template <class F>
auto call_parsed(OpenApiClient& client, const ApiCall& call, F&& f) -> Result<decltype(f(json{}))> {
  const auto response = IOT_TRY(client.call(call));
  return parse(call.action, response, std::forward<F>(f));
}

DeviceInfo device_info(const json& j, const std::string& at) {
  DeviceInfo d;
  d.product_key = text(j, "ProductKey", at);
  d.device_name = text(j, "DeviceName", at);
  d.device_secret = text(j, "DeviceSecret", at);
  d.iot_id = text(j, "IotId", at);
  d.status = text(j, "DeviceStatus", at);
  if (d.status.empty()) {
    d.status = text(j, "Status", at);
  }
  d.nickname = text(j, "Nickname", at);
  d.device_type = text(j, "DeviceType", at);
  d.device_id = text(j, "DeviceId", at);
  d.utc_create = text(j, "UtcCreate", at);
  d.utc_modified = text(j, "UtcModified", at);
  d.gmt_create = text(j, "GmtCreate", at);
  d.gmt_modified = text(j, "GmtModified", at);
  return d;
}

DeviceDetail device_detail(const json& j, const std::string& at) {
  DeviceDetail d;
  d.product_key = text(j, "ProductKey", at);
  d.product_name = text(j, "ProductName", at);
  d.device_name = text(j, "DeviceName", at);
  d.device_secret = text(j, "DeviceSecret", at);
  d.iot_id = text(j, "IotId", at);
  d.nickname = text(j, "Nickname", at);
  d.status = text(j, "Status", at);
  d.firmware_version = text(j, "FirmwareVersion", at);
  d.ip_address = text(j, "IpAddress", at);
  d.region = text(j, "Region", at);
  d.node_type = opt_integer(j, "NodeType", at);
  d.owner = opt_bool(j, "Owner", at);
  d.utc_create = text(j, "UtcCreate", at);
  d.utc_active = text(j, "UtcActive", at);
  d.utc_online = text(j, "UtcOnline", at);
  d.gmt_create = text(j, "GmtCreate", at);
  d.gmt_active = text(j, "GmtActive", at);
  d.gmt_online = text(j, "GmtOnline", at);
  return d;
}

ProductInfo product_info(const json& j, const std::string& at) {
  ProductInfo p;
  p.product_key = text(j, "ProductKey", at);
  p.product_name = text(j, "ProductName", at);
  p.product_secret = text(j, "ProductSecret", at);
  p.device_count = opt_integer(j, "DeviceCount", at);
  p.node_type = opt_integer(j, "NodeType", at);
  p.data_format = opt_integer(j, "DataFormat", at);
  p.auth_type = text(j, "AuthType", at);
  p.id2 = opt_bool(j, "Id2", at);
  p.net_type = opt_integer(j, "NetType", at);
  p.product_status = text(j, "ProductStatus", at);
  p.aliyun_commodity_code = text(j, "AliyunCommodityCode", at);
  p.validate_type = opt_integer(j, "ValidateType", at);
  p.protocol_type = text(j, "ProtocolType", at);
  p.category_key = text(j, "CategoryKey", at);
  p.category_name = text(j, "CategoryName", at);
  p.owner = opt_bool(j, "Owner", at);
  p.gmt_create = opt_integer(j, "GmtCreate", at);
  p.description = text(j, "Description", at);
  return p;
}

void add_device_ref(Params& params, const DeviceRef& device) {
  if (!device.iot_id.empty()) {
    params["IotId"] = device.iot_id;
  } else {
    params["ProductKey"] = device.product_key;
    params["DeviceName"] = device.device_name;
  }
}

Status check_device_ref(std::string_view action, const DeviceRef& device) {
  if (device.iot_id.empty() && (device.product_key.empty() || device.device_name.empty())) {
    return fail(ErrorKind::usage,
                std::string(action) + ": a device needs an IotId or a ProductKey and DeviceName");
  }
  return {};
}

void set_opt(Params& params, const char* name, const std::optional<int>& value) {
  if (value) {
    params[name] = std::to_string(*value);
  }
}

void add_job_settings(Params& params, const UpgradeJobSettings& r) {
  set_opt(params, "MaximumPerMinute", r.max_per_minute);
  set_opt(params, "RetryInterval", r.retry_interval);
  set_opt(params, "RetryCount", r.retry_count);
  set_opt(params, "TimeoutInMinutes", r.timeout_minutes);
  set_opt(params, "OverwriteMode", r.overwrite_mode);
  if (r.multi_module_mode) {
    params["MultiModuleMode"] = *r.multi_module_mode ? "true" : "false";
  }
  for (std::size_t i = 0; i < r.tags.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    params["Tag." + n + ".Key"] = r.tags[i].key;
    params["Tag." + n + ".Value"] = r.tags[i].value;
  }
}

// The JobId of a Create*Job answer.
std::string created_job_id(const json& body) {
  std::string id = text(object_or_empty(body, "Data", ""), "JobId", "Data");
  if (id.empty()) {
    throw BadShape{"Data.JobId", "missing"};
  }
  return id;
}

// Every page of a {Page, PageCount, Data.SimpleDeviceInfo[]} list (QueryDeviceByTags,
// QueryDeviceListByDeviceGroup) as device refs.
Result<std::vector<DeviceRef>>
all_device_pages(OpenApiClient& client, std::string_view action, const Params& base, int size) {
  std::vector<DeviceRef> out;
  for (int page = 1;; ++page) {
    Params params = base;
    params["PageSize"] = std::to_string(size);
    params["CurrentPage"] = std::to_string(page);
    auto count = IOT_TRY(
        call_parsed(client, ApiCall{std::string(action), std::move(params)}, [&](const json& body) {
          const json& data = object_or_empty(body, "Data", "");
          std::size_t n = 0;
          for (const auto& [item, at] : list(data, "SimpleDeviceInfo", "Data")) {
            DeviceRef d;
            d.product_key = text(*item, "ProductKey", at);
            d.device_name = text(*item, "DeviceName", at);
            d.iot_id = text(*item, "IotId", at);
            if (d.device_name.empty()) {
              throw BadShape{at + ".DeviceName", "missing"};
            }
            out.push_back(std::move(d));
            ++n;
          }
          return std::pair<std::size_t, std::int64_t>(n, integer(body, "PageCount", ""));
        }));
    if (count.first == 0 || page >= count.second) {
      return out;
    }
  }
}

std::string range_text(std::size_t first, std::size_t last) {
  return "names " + std::to_string(first + 1) + "-" + std::to_string(last);
}

// A page of the OTA list Actions: Total / PageCount / CurrentPage at the top, the items in
// Data.<list_name>, each read by parse_item(item, path).
template <class Page, class Item, class Parse>
Page ota_page(const json& body,
              std::string_view list_name,
              std::vector<Item> Page::*items,
              Parse parse_item) {
  Page page;
  page.total = integer(body, "Total", "");
  page.page_count = integer(body, "PageCount", "");
  page.current_page = integer(body, "CurrentPage", "");
  const json& data = object_or_empty(body, "Data", "");
  for (const auto& [item, at] : list(data, list_name, "Data")) {
    (page.*items).push_back(parse_item(*item, at));
  }
  return page;
}

// A page of QueryDevice / QueryDeviceByStatus: counters at the top, devices in Data.<list_name>.
DevicePage device_page(const json& body, std::string_view list_name) {
  DevicePage page;
  page.total = integer(body, "Total", "");
  page.page_size = integer(body, "PageSize", "");
  page.page_count = integer(body, "PageCount", "");
  page.page = integer(body, "Page", "");
  page.next_token = text(body, "NextToken", "");
  const json& data = object_or_empty(body, "Data", "");
  for (const auto& [item, at] : list(data, list_name, "Data")) {
    page.devices.push_back(device_info(*item, at));
  }
  return page;
}

// Splits `names` into calls of at most `batch` DeviceName.N each, runs them concurrently, and
// concatenates what parse_items (json body -> std::vector<T>) returns for each response. Errors
// name the range of names of the failed call.
template <class T, class ParseItems>
Result<std::vector<T>> batched_by_name(OpenApiClient& client,
                                       std::size_t concurrency,
                                       std::string_view action,
                                       const std::string& product_key,
                                       const std::vector<std::string>& names,
                                       std::size_t batch,
                                       ParseItems parse_items) {
  std::vector<ApiCall> calls;
  for (std::size_t first = 0; first < names.size(); first += batch) {
    ApiCall call{std::string(action), {{"ProductKey", product_key}}, true};
    const std::size_t last = std::min(names.size(), first + batch);
    for (std::size_t i = first; i < last; ++i) {
      call.params["DeviceName." + std::to_string(i - first + 1)] = names[i];
    }
    calls.push_back(std::move(call));
  }
  auto responses = client.call_all(calls, concurrency);
  std::vector<T> out;
  for (std::size_t c = 0; c < responses.size(); ++c) {
    const std::size_t first = c * batch;
    const std::string what = range_text(first, std::min(names.size(), first + batch));
    if (!responses[c]) {
      return fail(responses[c].error().context(what));
    }
    auto parsed = IOT_TRY_CTX(parse(action, *responses[c], parse_items), what);
    std::move(parsed.begin(), parsed.end(), std::back_inserter(out));
  }
  return out;
}

} // namespace

IotApi::IotApi(OpenApiClient& client, std::size_t concurrency)
    : m_client(client), m_concurrency(std::max<std::size_t>(1, concurrency)) {}

Result<DevicePage> IotApi::query_device(const QueryDeviceRequest& request) {
  static constexpr std::string_view k_action = "QueryDevice";
  if (request.page_size < 1 || request.page_size > k_query_device_max_page_size) {
    return fail(ErrorKind::usage,
                "QueryDevice: PageSize must be 1-50, not " + std::to_string(request.page_size));
  }
  if (request.current_page < 1) {
    return fail(ErrorKind::usage, "QueryDevice: CurrentPage must be 1 or more");
  }
  if (static_cast<std::int64_t>(request.page_size) * request.current_page >
          k_query_device_token_threshold &&
      request.next_token.empty()) {
    return fail(ErrorKind::usage,
                "QueryDevice: NextToken is required when PageSize x CurrentPage exceeds 10000");
  }
  Params params{{"ProductKey", request.product_key},
                {"PageSize", std::to_string(request.page_size)},
                {"CurrentPage", std::to_string(request.current_page)}};
  if (!request.next_token.empty()) {
    params["NextToken"] = request.next_token;
  }
  return call_parsed(m_client, ApiCall{std::string(k_action), params}, [](const json& body) {
    return device_page(body, "DeviceInfo");
  });
}

Result<std::vector<DeviceInfo>> IotApi::query_all_devices(const std::string& product_key,
                                                          const PageProgress& progress) {
  std::vector<DeviceInfo> devices;
  QueryDeviceRequest request{product_key, k_query_device_max_page_size, 1, {}};
  for (;;) {
    auto page = IOT_TRY_CTX(query_device(request), "page " + std::to_string(request.current_page));
    const std::size_t rows = page.devices.size();
    std::move(page.devices.begin(), page.devices.end(), std::back_inserter(devices));
    if (progress) {
      progress(devices.size(), page.total);
    }
    const bool short_page = rows < static_cast<std::size_t>(request.page_size);
    const bool past_count = page.page_count > 0 && request.current_page >= page.page_count;
    const bool past_total =
        page.total > 0 && static_cast<std::int64_t>(devices.size()) >= page.total;
    if (rows == 0 || short_page || past_count || past_total) {
      break;
    }
    ++request.current_page;
    request.next_token = page.next_token;
    if (request.next_token.empty() &&
        static_cast<std::int64_t>(request.page_size) * request.current_page >
            k_query_device_token_threshold) {
      return fail(ErrorKind::cloud,
                  "QueryDevice: no NextToken after " + std::to_string(devices.size()) +
                      " rows; the platform requires one past 10000 rows");
    }
  }
  return devices;
}

Result<DeviceDetail> IotApi::query_device_detail(const DeviceRef& device) {
  static constexpr std::string_view k_action = "QueryDeviceDetail";
  IOT_TRY(check_device_ref(k_action, device));
  Params params;
  add_device_ref(params, device);
  return call_parsed(m_client, ApiCall{std::string(k_action), params}, [](const json& body) {
    return device_detail(object_or_empty(body, "Data", ""), "Data");
  });
}

Result<std::vector<DeviceDetail>>
IotApi::batch_query_device_detail(const std::string& product_key,
                                  const std::vector<std::string>& names) {
  return batched_by_name<DeviceDetail>(m_client,
                                       m_concurrency,
                                       "BatchQueryDeviceDetail",
                                       product_key,
                                       names,
                                       k_batch_detail_max,
                                       [](const json& body) {
                                         std::vector<DeviceDetail> details;
                                         const json& data = object_or_empty(body, "Data", "");
                                         for (const auto& [item, at] : list(data, "Data", "Data")) {
                                           details.push_back(device_detail(*item, at));
                                         }
                                         return details;
                                       });
}

Result<std::vector<DeviceState>>
IotApi::batch_get_device_state(const std::string& product_key,
                               const std::vector<std::string>& names) {
  return batched_by_name<DeviceState>(m_client,
                                      m_concurrency,
                                      "BatchGetDeviceState",
                                      product_key,
                                      names,
                                      k_batch_state_max,
                                      [](const json& body) {
                                        std::vector<DeviceState> states;
                                        for (const auto& [item, at] :
                                             list(body, "DeviceStatusList", "")) {
                                          DeviceState s;
                                          s.device_name = text(*item, "DeviceName", at);
                                          s.iot_id = text(*item, "IotId", at);
                                          s.status = text(*item, "Status", at);
                                          s.as_address = text(*item, "AsAddress", at);
                                          s.last_online_time = text(*item, "LastOnlineTime", at);
                                          s.device_id = text(*item, "DeviceId", at);
                                          states.push_back(std::move(s));
                                        }
                                        return states;
                                      });
}

Result<DevicePage> IotApi::query_device_by_status(const std::string& product_key,
                                                  int status,
                                                  int page_size,
                                                  int current_page) {
  static constexpr std::string_view k_action = "QueryDeviceByStatus";
  if (page_size < 1 || page_size > k_query_device_max_page_size) {
    return fail(ErrorKind::usage,
                "QueryDeviceByStatus: PageSize must be 1-50, not " + std::to_string(page_size));
  }
  Params params{{"ProductKey", product_key},
                {"Status", std::to_string(status)},
                {"PageSize", std::to_string(page_size)},
                {"CurrentPage", std::to_string(current_page)}};
  return call_parsed(m_client, ApiCall{std::string(k_action), params}, [](const json& body) {
    return device_page(body, "SimpleDeviceInfo");
  });
}

Result<DeviceInfo> IotApi::register_device(const std::string& product_key,
                                           const std::string& device_name,
                                           const std::string& nickname) {
  static constexpr std::string_view k_action = "RegisterDevice";
  ApiCall call{std::string(k_action), {{"ProductKey", product_key}}, !device_name.empty()};
  if (!device_name.empty()) {
    call.params["DeviceName"] = device_name;
  }
  if (!nickname.empty()) {
    call.params["Nickname"] = nickname;
  }
  return call_parsed(m_client, call, [](const json& body) {
    return device_info(object_or_empty(body, "Data", ""), "Data");
  });
}

Result<CheckNamesResult>
IotApi::batch_check_device_names(const std::string& product_key,
                                 const std::vector<DeviceNameEntry>& names) {
  static constexpr std::string_view k_action = "BatchCheckDeviceNames";
  if (names.empty() || names.size() > k_check_names_max) {
    return fail(ErrorKind::usage,
                "BatchCheckDeviceNames: 1-10000 names per call, not " +
                    std::to_string(names.size()));
  }
  const bool with_nicknames =
      std::any_of(names.begin(), names.end(), [](const auto& n) { return !n.nickname.empty(); });
  Params params{{"ProductKey", product_key}};
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    if (with_nicknames) {
      params["DeviceNameList." + n + ".DeviceName"] = names[i].device_name;
      if (!names[i].nickname.empty()) {
        params["DeviceNameList." + n + ".DeviceNickname"] = names[i].nickname;
      }
    } else {
      params["DeviceName." + n] = names[i].device_name;
    }
  }
  return call_parsed(m_client, ApiCall{std::string(k_action), params}, [](const json& body) {
    CheckNamesResult r;
    const json& data = object_or_empty(body, "Data", "");
    r.apply_id = integer(data, "ApplyId", "Data");
    r.invalid_device_names = string_list(data, "InvalidDeviceNameList", "Data");
    r.invalid_nicknames = string_list(data, "InvalidDeviceNicknameList", "Data");
    return r;
  });
}

Result<BatchRegisterStatus>
IotApi::query_batch_register_device_status(const std::string& product_key, std::int64_t apply_id) {
  static constexpr std::string_view k_action = "QueryBatchRegisterDeviceStatus";
  return call_parsed(m_client,
                     ApiCall{std::string(k_action),
                             {{"ProductKey", product_key}, {"ApplyId", std::to_string(apply_id)}}},
                     [](const json& body) {
                       BatchRegisterStatus s;
                       const json& data = object_or_empty(body, "Data", "");
                       s.status = text(data, "Status", "Data");
                       s.valid = string_list(data, "ValidList", "Data");
                       s.invalid = string_list(data, "InvalidList", "Data");
                       return s;
                     });
}

Result<std::int64_t> IotApi::batch_register_device_with_apply_id(const std::string& product_key,
                                                                 std::int64_t apply_id) {
  static constexpr std::string_view k_action = "BatchRegisterDeviceWithApplyId";
  return call_parsed(m_client,
                     ApiCall{std::string(k_action),
                             {{"ProductKey", product_key}, {"ApplyId", std::to_string(apply_id)}}},
                     [apply_id](const json& body) {
                       const json& data = object_or_empty(body, "Data", "");
                       return opt_integer(data, "ApplyId", "Data").value_or(apply_id);
                     });
}

Result<ApplyPage>
IotApi::query_page_by_apply_id(std::int64_t apply_id, int page_size, int current_page) {
  static constexpr std::string_view k_action = "QueryPageByApplyId";
  if (page_size < 1 || page_size > k_query_device_max_page_size) {
    return fail(ErrorKind::usage,
                "QueryPageByApplyId: PageSize must be 1-50, not " + std::to_string(page_size));
  }
  return call_parsed(m_client,
                     ApiCall{std::string(k_action),
                             {{"ApplyId", std::to_string(apply_id)},
                              {"PageSize", std::to_string(page_size)},
                              {"CurrentPage", std::to_string(current_page)}}},
                     [](const json& body) {
                       ApplyPage page;
                       page.total = integer(body, "Total", "");
                       page.page = integer(body, "Page", "");
                       page.page_size = integer(body, "PageSize", "");
                       page.page_count = integer(body, "PageCount", "");
                       for (const auto& [item, at] : list(body, "ApplyDeviceList", "")) {
                         page.devices.push_back(device_info(*item, at));
                       }
                       return page;
                     });
}

Result<ProductInfo> IotApi::query_product(const std::string& product_key) {
  static constexpr std::string_view k_action = "QueryProduct";
  return call_parsed(
      m_client,
      ApiCall{std::string(k_action), {{"ProductKey", product_key}}},
      [](const json& body) { return product_info(object_or_empty(body, "Data", ""), "Data"); });
}

Result<ProductPage>
IotApi::query_product_list(int current_page, int page_size, const std::string& commodity_code) {
  static constexpr std::string_view k_action = "QueryProductList";
  if (page_size < 1 || page_size > 200) {
    return fail(ErrorKind::usage,
                "QueryProductList: PageSize must be 1-200, not " + std::to_string(page_size));
  }
  Params params{{"CurrentPage", std::to_string(current_page)},
                {"PageSize", std::to_string(page_size)}};
  if (!commodity_code.empty()) {
    params["AliyunCommodityCode"] = commodity_code;
  }
  return call_parsed(m_client, ApiCall{std::string(k_action), params}, [](const json& body) {
    ProductPage page;
    const json& data = object_or_empty(body, "Data", "");
    page.current_page = integer(data, "CurrentPage", "Data");
    page.page_count = integer(data, "PageCount", "Data");
    page.page_size = integer(data, "PageSize", "Data");
    page.total = integer(data, "Total", "Data");
    for (const auto& [item, at] : list(data, "List", "Data")) {
      page.products.push_back(product_info(*item, at));
    }
    return page;
  });
}

Status IotApi::delete_device(const DeviceRef& device) {
  static constexpr std::string_view k_action = "DeleteDevice";
  if (auto ok = check_device_ref(k_action, device); !ok) {
    return ok;
  }
  Params params;
  add_device_ref(params, device);
  IOT_TRY(m_client.call(k_action, params));
  return {};
}

Result<std::vector<DeviceTag>> IotApi::query_device_prop(const DeviceRef& device) {
  static constexpr std::string_view k_action = "QueryDeviceProp";
  IOT_TRY(check_device_ref(k_action, device));
  Params params;
  add_device_ref(params, device);
  return call_parsed(m_client, ApiCall{std::string(k_action), params}, [](const json& body) {
    std::vector<DeviceTag> tags;
    const std::string props = text(body, "Props", "");
    if (props.empty()) {
      return tags;
    }
    const json parsed = json::parse(props, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      throw BadShape{"Props", "expected a JSON object of tags (as text)"};
    }
    for (const auto& [key, value] : parsed.items()) {
      tags.push_back(DeviceTag{key, value.is_string() ? value.get<std::string>() : value.dump()});
    }
    return tags;
  });
}

Status IotApi::save_device_prop(const DeviceRef& device, const std::vector<DeviceTag>& tags) {
  static constexpr std::string_view k_action = "SaveDeviceProp";
  IOT_TRY(check_device_ref(k_action, device));
  if (tags.empty()) {
    return fail(ErrorKind::usage, "SaveDeviceProp: no tags to save");
  }
  json props = json::object();
  for (const auto& t : tags) {
    props[t.key] = t.value;
  }
  Params params;
  add_device_ref(params, device);
  params["Props"] = props.dump();
  IOT_TRY(m_client.call(k_action, params));
  return {};
}

Result<std::vector<DeviceGroup>>
IotApi::query_device_group_by_device(const std::string& product_key,
                                     const std::string& device_name) {
  static constexpr std::string_view k_action = "QueryDeviceGroupByDevice";
  return call_parsed(
      m_client,
      ApiCall{std::string(k_action), {{"ProductKey", product_key}, {"DeviceName", device_name}}},
      [](const json& body) {
        std::vector<DeviceGroup> groups;
        for (const auto& [item, at] : list(body, "GroupInfos", "")) {
          DeviceGroup g;
          g.id = text(*item, "GroupId", at);
          g.name = text(*item, "GroupName", at);
          g.description = text(*item, "GroupDesc", at);
          g.type = text(*item, "GroupType", at);
          g.utc_create = text(*item, "UtcCreate", at);
          if (g.id.empty()) {
            throw BadShape{at + ".GroupId", "missing"};
          }
          groups.push_back(std::move(g));
        }
        return groups;
      });
}

Result<GroupAddResult>
IotApi::batch_add_device_group_relations(const std::string& group_id,
                                         const std::vector<DeviceRef>& devices) {
  static constexpr std::string_view k_action = "BatchAddDeviceGroupRelations";
  if (group_id.empty() || devices.empty() || devices.size() > k_group_add_max) {
    return fail(ErrorKind::usage,
                "BatchAddDeviceGroupRelations: a GroupId and 1-" + std::to_string(k_group_add_max) +
                    " devices per call, not " + std::to_string(devices.size()));
  }
  Params params{{"GroupId", group_id}};
  for (std::size_t i = 0; i < devices.size(); ++i) {
    const std::string n = "Device." + std::to_string(i + 1) + ".";
    params[n + "ProductKey"] = devices[i].product_key;
    params[n + "DeviceName"] = devices[i].device_name;
  }
  return call_parsed(m_client, ApiCall{std::string(k_action), params}, [](const json& body) {
    GroupAddResult r;
    r.valid = integer(body, "ValidDeviceCount", "");
    r.added = integer(body, "SuccessAddedDeviceCount", "");
    r.already_related = integer(body, "AlreadyRelatedGroupDeviceCount", "");
    r.exceed_ten_groups = integer(body, "ExceedTenGroupDeviceCount", "");
    return r;
  });
}

Result<std::string> IotApi::reset_thing(const DeviceRef& device) {
  static constexpr std::string_view k_action = "ResetThing";
  IOT_TRY(check_device_ref(k_action, device));
  Params params;
  add_device_ref(params, device);
  return call_parsed(m_client, ApiCall{std::string(k_action), params}, [](const json& body) {
    return text(body, "JobId", "");
  });
}

// ---- OTA ----

namespace {

UploadGrant upload_grant(const json& data, std::string_view url_field) {
  UploadGrant g;
  g.url = text(data, url_field, "Data");
  g.host = text(data, "Host", "Data");
  g.key = text(data, "Key", "Data");
  g.access_key_id = text(data, "OSSAccessKeyId", "Data");
  if (g.access_key_id.empty()) {
    g.access_key_id = text(data, "AccessKeyId", "Data");
  }
  g.policy = text(data, "Policy", "Data");
  g.signature = text(data, "Signature", "Data");
  g.object_storage = text(data, "ObjectStorage", "Data");
  if (g.url.empty() || g.host.empty() || g.key.empty() || g.policy.empty() || g.signature.empty()) {
    throw BadShape{"Data",
                   "an upload grant needs " + std::string(url_field) +
                       ", Host, Key, Policy and Signature"};
  }
  return g;
}

std::vector<OtaTag> ota_tags(const json& j, const std::string& at) {
  std::vector<OtaTag> out;
  for (const auto& [item, item_at] : list(j, "Tags", at)) {
    out.push_back(OtaTag{text(*item, "Key", item_at), text(*item, "Value", item_at)});
  }
  return out;
}

OtaJobInfo ota_job(const json& j, const std::string& at) {
  OtaJobInfo o;
  o.job_id = text(j, "JobId", at);
  o.job_status = text(j, "JobStatus", at);
  o.job_type = text(j, "JobType", at);
  o.firmware_id = text(j, "FirmwareId", at);
  o.product_key = text(j, "ProductKey", at);
  o.target_selection = text(j, "TargetSelection", at);
  o.selection_type = text(j, "SelectionType", at);
  o.dest_version = text(j, "DestVersion", at);
  o.utc_create = text(j, "UtcCreate", at);
  o.utc_start_time = text(j, "UtcStartTime", at);
  o.utc_end_time = text(j, "UtcEndTime", at);
  o.tags = ota_tags(j, at);
  return o;
}

OtaTaskInfo ota_task(const json& j, const std::string& at) {
  OtaTaskInfo t;
  t.task_id = text(j, "TaskId", at);
  t.job_id = text(j, "JobId", at);
  t.device_name = text(j, "DeviceName", at);
  t.src_version = text(j, "SrcVersion", at);
  t.dest_version = text(j, "DestVersion", at);
  t.task_status = text(j, "TaskStatus", at);
  t.progress = text(j, "Progress", at);
  t.task_desc = text(j, "TaskDesc", at);
  t.utc_modified = text(j, "UtcModified", at);
  return t;
}

} // namespace

Result<UploadGrant> IotApi::generate_ota_upload_url(const std::string& file_suffix) {
  static constexpr std::string_view k_action = "GenerateOTAUploadURL";
  return call_parsed(m_client,
                     ApiCall{std::string(k_action), Params{{"FileSuffix", file_suffix}}},
                     [](const json& body) {
                       return upload_grant(object_or_empty(body, "Data", ""), "FirmwareUrl");
                     });
}

Result<UploadGrant> IotApi::generate_device_name_list_url() {
  static constexpr std::string_view k_action = "GenerateDeviceNameListURL";
  return call_parsed(m_client, ApiCall{std::string(k_action), Params{}}, [](const json& body) {
    return upload_grant(object_or_empty(body, "Data", ""), "FileUrl");
  });
}

Result<std::string> IotApi::create_ota_firmware(const CreateFirmwareRequest& r) {
  static constexpr std::string_view k_action = "CreateOTAFirmware";
  Params params{{"DestVersion", r.dest_version},
                {"FirmwareName", r.firmware_name},
                {"FirmwareUrl", r.firmware_url},
                {"Type", std::to_string(r.type)}};
  if (!r.product_key.empty()) {
    params["ProductKey"] = r.product_key;
  }
  if (r.firmware_size > 0) {
    params["FirmwareSize"] = std::to_string(r.firmware_size);
  }
  if (!r.firmware_sign.empty()) {
    params["FirmwareSign"] = r.firmware_sign;
    params["SignMethod"] = r.sign_method.empty() ? "MD5" : r.sign_method;
  }
  if (!r.module_name.empty()) {
    params["ModuleName"] = r.module_name;
  }
  if (!r.src_version.empty()) {
    params["SrcVersion"] = r.src_version;
  }
  if (r.need_to_verify) {
    params["NeedToVerify"] = *r.need_to_verify ? "true" : "false";
  }
  if (!r.description.empty()) {
    params["FirmwareDesc"] = r.description;
  }
  if (r.files.size() > k_firmware_files_max) {
    return fail(ErrorKind::usage,
                std::string(k_action) + ": at most " + std::to_string(k_firmware_files_max) +
                    " files, not " + std::to_string(r.files.size()));
  }
  for (std::size_t i = 0; i < r.files.size(); ++i) {
    const std::string n = "MultiFiles." + std::to_string(i + 1) + ".";
    params[n + "Name"] = r.files[i].name;
    params[n + "Size"] = std::to_string(r.files[i].size);
    params[n + "Url"] = r.files[i].url;
    params[n + "SignValue"] = r.files[i].sign_value;
    params[n + "FileMd5"] = r.files[i].file_md5;
  }
  // Retried like any call: a retry after a lost answer can leave a second, unused firmware
  // record (harmless: nothing rolls it out), never a second rollout.
  return call_parsed(
      m_client, ApiCall{std::string(k_action), std::move(params), true}, [](const json& body) {
        std::string id = text(object_or_empty(body, "Data", ""), "FirmwareId", "Data");
        if (id.empty()) {
          throw BadShape{"Data.FirmwareId", "missing"};
        }
        return id;
      });
}

Result<FirmwareInfo> IotApi::query_ota_firmware(const std::string& firmware_id) {
  static constexpr std::string_view k_action = "QueryOTAFirmware";
  return call_parsed(m_client,
                     ApiCall{std::string(k_action), Params{{"FirmwareId", firmware_id}}},
                     [](const json& body) {
                       // Top-level FirmwareInfo as the SDKs have it; Data.FirmwareInfo / Data
                       // accepted too.
                       const json* j = member(body, "FirmwareInfo", "");
                       std::string at = "FirmwareInfo";
                       if (j == nullptr) {
                         const json& data = object_or_empty(body, "Data", "");
                         j = member(data, "FirmwareInfo", "Data");
                         at = "Data.FirmwareInfo";
                         if (j == nullptr) {
                           j = &data;
                           at = "Data";
                         }
                       }
                       FirmwareInfo f;
                       f.firmware_id = text(*j, "FirmwareId", at);
                       f.firmware_name = text(*j, "FirmwareName", at);
                       f.dest_version = text(*j, "DestVersion", at);
                       f.src_version = text(*j, "SrcVersion", at);
                       f.module_name = text(*j, "ModuleName", at);
                       f.product_key = text(*j, "ProductKey", at);
                       f.firmware_url = text(*j, "FirmwareUrl", at);
                       f.sign = text(*j, "FirmwareSign", at);
                       f.sign_method = text(*j, "SignMethod", at);
                       f.size = opt_integer(*j, "FirmwareSize", at);
                       f.type = opt_integer(*j, "Type", at);
                       f.status = opt_integer(*j, "Status", at);
                       f.verify_progress = text(*j, "VerifyProgress", at);
                       for (const auto& [item, where] : list(*j, "MultiFiles", at)) {
                         FirmwareFile file;
                         file.name = text(*item, "Name", where);
                         file.size = opt_integer(*item, "Size", where).value_or(0);
                         file.url = text(*item, "Url", where);
                         file.sign_value = text(*item, "SignValue", where);
                         file.file_md5 = text(*item, "FileMd5", where);
                         f.files.push_back(std::move(file));
                       }
                       return f;
                     });
}

Result<std::string> IotApi::create_ota_verify_job(const std::string& product_key,
                                                  const std::string& firmware_id,
                                                  const std::vector<std::string>& names,
                                                  int timeout_minutes) {
  static constexpr std::string_view k_action = "CreateOTAVerifyJob";
  if (names.empty() || names.size() > k_ota_verify_devices_max) {
    return fail(ErrorKind::usage,
                std::string(k_action) + ": 1 to " + std::to_string(k_ota_verify_devices_max) +
                    " devices, not " + std::to_string(names.size()));
  }
  Params params{{"ProductKey", product_key},
                {"FirmwareId", firmware_id},
                {"TimeoutInMinutes", std::to_string(timeout_minutes)}};
  for (std::size_t i = 0; i < names.size(); ++i) {
    params["TargetDeviceName." + std::to_string(i + 1)] = names[i];
  }
  return call_parsed(
      m_client, ApiCall{std::string(k_action), std::move(params), false}, [](const json& body) {
        return text(object_or_empty(body, "Data", ""), "JobId", "Data");
      });
}

Result<std::string> IotApi::create_ota_static_upgrade_job(const StaticJobRequest& r) {
  static constexpr std::string_view k_action = "CreateOTAStaticUpgradeJob";
  if (r.device_names.size() > k_ota_names_per_job) {
    return fail(ErrorKind::usage,
                std::string(k_action) + ": at most " + std::to_string(k_ota_names_per_job) +
                    " TargetDeviceName per call, not " + std::to_string(r.device_names.size()) +
                    " (use a device-name list file)");
  }
  if (!r.device_names.empty() && !r.dn_list_file_url.empty()) {
    return fail(ErrorKind::usage,
                std::string(k_action) + ": TargetDeviceName and DnListFileUrl are exclusive");
  }
  Params params{{"ProductKey", r.product_key},
                {"FirmwareId", r.firmware_id},
                {"TargetSelection", r.target_selection}};
  for (std::size_t i = 0; i < r.device_names.size(); ++i) {
    params["TargetDeviceName." + std::to_string(i + 1)] = r.device_names[i];
  }
  if (!r.dn_list_file_url.empty()) {
    params["DnListFileUrl"] = r.dn_list_file_url;
  }
  set_opt(params, "GrayPercent", r.gray_percent);
  for (std::size_t i = 0; i < r.src_versions.size(); ++i) {
    params["SrcVersion." + std::to_string(i + 1)] = r.src_versions[i];
  }
  add_job_settings(params, r);
  return call_parsed(
      m_client, ApiCall{std::string(k_action), std::move(params), false}, created_job_id);
}

Result<OtaJobInfo> IotApi::query_ota_job(const std::string& job_id) {
  static constexpr std::string_view k_action = "QueryOTAJob";
  return call_parsed(
      m_client, ApiCall{std::string(k_action), Params{{"JobId", job_id}}}, [](const json& body) {
        return ota_job(object_or_empty(body, "Data", ""), "Data");
      });
}

Result<OtaTaskPage> IotApi::list_ota_task_by_job(const std::string& job_id,
                                                 const std::string& status,
                                                 int page_size,
                                                 int current_page) {
  static constexpr std::string_view k_action = "ListOTATaskByJob";
  if (page_size < 1 || page_size > k_ota_task_page_max || current_page < 1) {
    return fail(ErrorKind::usage, std::string(k_action) + ": PageSize 1..100, CurrentPage ≥ 1");
  }
  Params params{{"JobId", job_id},
                {"PageSize", std::to_string(page_size)},
                {"CurrentPage", std::to_string(current_page)}};
  if (!status.empty()) {
    params["TaskStatus"] = status;
  }
  return call_parsed(m_client, ApiCall{std::string(k_action), params}, [](const json& body) {
    return ota_page(body, "SimpleOTATaskInfo", &OtaTaskPage::tasks, ota_task);
  });
}

Result<std::vector<OtaTaskInfo>> IotApi::list_all_ota_tasks(const std::string& job_id,
                                                            const std::string& status) {
  std::vector<OtaTaskInfo> out;
  for (int page = 1;; ++page) {
    auto p = IOT_TRY(list_ota_task_by_job(job_id, status, k_ota_task_page_max, page));
    std::move(p.tasks.begin(), p.tasks.end(), std::back_inserter(out));
    if (p.tasks.empty() || page >= p.page_count) {
      return out;
    }
  }
}

Result<std::int64_t> IotApi::count_ota_tasks(const std::string& job_id, const std::string& status) {
  auto p = IOT_TRY(list_ota_task_by_job(job_id, status, 1, 1));
  return p.total;
}

Status IotApi::cancel_ota_task_by_job(const std::string& job_id, const CancelTasks& which) {
  static constexpr std::string_view k_action = "CancelOTATaskByJob";
  if (!which.scheduled && !which.queued && !which.notified && !which.unconfirmed &&
      !which.in_progress) {
    return fail(ErrorKind::usage, std::string(k_action) + ": nothing to cancel");
  }
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  IOT_TRY(m_client.call(k_action,
                        Params{{"JobId", job_id},
                               {"CancelScheduledTask", b(which.scheduled)},
                               {"CancelQueuedTask", b(which.queued)},
                               {"CancelNotifiedTask", b(which.notified)},
                               {"CancelUnconfirmedTask", b(which.unconfirmed)},
                               {"CancelInProgressTask", b(which.in_progress)}}));
  return {};
}

Result<OtaJobPage>
IotApi::list_ota_job_by_firmware(const std::string& firmware_id, int page_size, int current_page) {
  static constexpr std::string_view k_action = "ListOTAJobByFirmware";
  return call_parsed(m_client,
                     ApiCall{std::string(k_action),
                             Params{{"FirmwareId", firmware_id},
                                    {"PageSize", std::to_string(page_size)},
                                    {"CurrentPage", std::to_string(current_page)}}},
                     [](const json& body) {
                       return ota_page(body, "SimpleOTAJobInfo", &OtaJobPage::jobs, ota_job);
                     });
}

Result<std::vector<OtaJobInfo>>
IotApi::list_all_ota_jobs_by_firmware(const std::string& firmware_id) {
  std::vector<OtaJobInfo> out;
  for (int page = 1;; ++page) {
    auto p = IOT_TRY(list_ota_job_by_firmware(firmware_id, 100, page));
    std::move(p.jobs.begin(), p.jobs.end(), std::back_inserter(out));
    if (p.jobs.empty() || page >= p.page_count) {
      return out;
    }
  }
}

Result<std::string> IotApi::create_ota_dynamic_upgrade_job(const DynamicJobRequest& r) {
  static constexpr std::string_view k_action = "CreateOTADynamicUpgradeJob";
  if (r.src_versions.empty()) {
    return fail(ErrorKind::usage, std::string(k_action) + ": at least one SrcVersion");
  }
  Params params{{"ProductKey", r.product_key},
                {"FirmwareId", r.firmware_id},
                {"DynamicMode", std::to_string(r.dynamic_mode)}};
  for (std::size_t i = 0; i < r.src_versions.size(); ++i) {
    params["SrcVersion." + std::to_string(i + 1)] = r.src_versions[i];
  }
  if (!r.group_id.empty()) {
    params["GroupId"] = r.group_id;
    params["GroupType"] = r.group_type.empty() ? "LINK_PLATFORM" : r.group_type;
  }
  add_job_settings(params, r);
  // Never retried after an ambiguous failure, like the static job: the rollout's journal
  // finds a job that was created after all by its tags.
  return call_parsed(
      m_client, ApiCall{std::string(k_action), std::move(params), false}, created_job_id);
}

Status IotApi::cancel_ota_strategy_by_job(const std::string& job_id) {
  static constexpr std::string_view k_action = "CancelOTAStrategyByJob";
  IOT_TRY(m_client.call(k_action, Params{{"JobId", job_id}}));
  return {};
}

Result<SqlPage> IotApi::query_device_by_sql(const std::string& sql) {
  static constexpr std::string_view k_action = "QueryDeviceBySQL";
  return call_parsed(
      m_client, ApiCall{std::string(k_action), Params{{"SQL", sql}}}, [](const json& body) {
        SqlPage page;
        page.total_count = integer(body, "TotalCount", "");
        for (const auto& [item, at] : list(body, "Data", "")) {
          SqlDevice d;
          d.product_key = text(*item, "ProductKey", at);
          d.device_name = text(*item, "DeviceName", at);
          d.status = text(*item, "Status", at);
          for (const auto& [module, where] : list(*item, "OTAModules", at)) {
            const std::string name = text(*module, "ModuleName", where);
            if (name.empty() || name == "default") {
              d.firmware_version = text(*module, "FirmwareVersion", where);
            }
          }
          if (d.device_name.empty()) {
            throw BadShape{at + ".DeviceName", "missing"};
          }
          page.devices.push_back(std::move(d));
        }
        return page;
      });
}

Result<std::vector<DeviceRef>> IotApi::query_devices_by_tag(const DeviceTag& tag) {
  Params base{{"Tag.1.TagKey", tag.key}};
  if (!tag.value.empty()) {
    base["Tag.1.TagValue"] = tag.value;
  }
  return all_device_pages(m_client, "QueryDeviceByTags", base, k_tag_query_page_max);
}

Result<std::vector<DeviceRef>> IotApi::query_group_devices(const std::string& group_id) {
  return all_device_pages(
      m_client, "QueryDeviceListByDeviceGroup", Params{{"GroupId", group_id}}, k_group_page_max);
}

Result<std::vector<DeviceGroup>> IotApi::query_device_groups(const std::string& name) {
  static constexpr std::string_view k_action = "QueryDeviceGroupList";
  std::vector<DeviceGroup> out;
  for (int page = 1;; ++page) {
    Params params{{"PageSize", std::to_string(k_group_page_max)},
                  {"CurrentPage", std::to_string(page)}};
    if (!name.empty()) {
      params["GroupName"] = name;
    }
    auto page_count = IOT_TRY(call_parsed(
        m_client, ApiCall{std::string(k_action), std::move(params)}, [&](const json& body) {
          const json& data = object_or_empty(body, "Data", "");
          std::size_t n = 0;
          for (const auto& [item, at] : list(data, "GroupInfo", "Data")) {
            DeviceGroup g;
            g.id = text(*item, "GroupId", at);
            g.name = text(*item, "GroupName", at);
            g.description = text(*item, "GroupDesc", at);
            g.type = text(*item, "GroupType", at);
            g.utc_create = text(*item, "UtcCreate", at);
            out.push_back(std::move(g));
            ++n;
          }
          return n == 0 ? std::int64_t{0} : integer(body, "PageCount", "");
        }));
    if (page >= page_count) {
      return out;
    }
  }
}

} // namespace iot::cloud
