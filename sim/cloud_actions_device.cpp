// SPDX-License-Identifier: MIT
// Device Actions (§2): QueryDevice, QueryDeviceDetail, BatchQueryDeviceDetail,
// BatchGetDeviceState, QueryDeviceByStatus, GetDeviceStatus, RegisterDevice, DeleteDevice,
// ResetThing, DisableThing, EnableThing.
#include "sim/cloud_actions.hpp"

#include <array>
#include <cinttypes>
#include <cstdio>
#include <unordered_set>

namespace iot::sim::cloud {

namespace {

constexpr std::int64_t k_token_rows = 10'000; // NextToken required above PageSize*CurrentPage
constexpr std::int64_t k_max_token_rows = 1'000'000; // ... and it must stay below this
constexpr std::size_t k_batch_detail_max = 100;
constexpr std::size_t k_batch_state_max = 50;

std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 14695981039346656037ULL) {
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

std::uint64_t token_check(std::string_view salt,
                          std::string_view product_key,
                          std::int64_t seq,
                          std::int64_t page) {
  std::string text(salt);
  text.push_back('|');
  text += product_key;
  text.push_back('|');
  text += std::to_string(seq);
  text.push_back('|');
  text += std::to_string(page);
  return fnv1a(text);
}

// NextToken: 48 hex digits = masked seq of the page's last row, page number, check value.
std::string make_token(std::string_view salt,
                       std::string_view product_key,
                       std::int64_t seq,
                       std::int64_t page) {
  const std::uint64_t mask = fnv1a(std::string(salt) + "|mask");
  char buffer[64];
  std::snprintf(buffer,
                sizeof buffer,
                "%016" PRIx64 "%08" PRIx64 "%016" PRIx64,
                static_cast<std::uint64_t>(seq) ^ mask,
                static_cast<std::uint64_t>(page),
                token_check(salt, product_key, seq, page));
  return buffer;
}

struct Token {
  std::int64_t seq = 0;
  std::int64_t page = 0;
};

std::optional<Token>
read_token(std::string_view salt, std::string_view product_key, std::string_view token) {
  if (token.size() != 40) {
    return std::nullopt;
  }
  for (const char c : token) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return std::nullopt;
    }
  }
  const auto hex = [&](std::size_t pos, std::size_t n) {
    return static_cast<std::uint64_t>(std::stoull(std::string(token.substr(pos, n)), nullptr, 16));
  };
  const std::uint64_t mask = fnv1a(std::string(salt) + "|mask");
  Token t{static_cast<std::int64_t>(hex(0, 16) ^ mask), static_cast<std::int64_t>(hex(16, 8))};
  if (hex(24, 16) != token_check(salt, product_key, t.seq, t.page)) {
    return std::nullopt;
  }
  return t;
}

ReplyError page_error(std::string message) {
  return ReplyError{business_error("iot.common.InvalidPageParams", std::move(message))};
}

std::string device_type(const ProductRow& p) {
  return p.node_type == 1 ? "GATEWAY" : "DEVICE";
}

json device_info(const DeviceRow& d, const ProductRow& p) {
  json j;
  j["DeviceId"] = d.iot_id;
  j["DeviceName"] = d.device_name;
  j["ProductKey"] = d.product_key;
  j["DeviceSecret"] = d.device_secret;
  j["GmtCreate"] = gmt_cookie(d.created_ms);
  j["GmtModified"] = gmt_cookie(d.modified_ms);
  j["UtcCreate"] = utc_iso(d.created_ms);
  j["UtcModified"] = utc_iso(d.modified_ms);
  j["IotId"] = d.iot_id;
  j["DeviceStatus"] = d.status;
  j["DeviceType"] = device_type(p);
  j["Nickname"] = d.nickname;
  return j;
}

json device_detail(const DeviceRow& d, const ProductRow& p, const std::string& region, bool full) {
  json j;
  j["IotId"] = d.iot_id;
  j["ProductKey"] = d.product_key;
  j["ProductName"] = p.name;
  j["DeviceName"] = d.device_name;
  j["DeviceSecret"] = d.device_secret;
  j["FirmwareVersion"] = d.firmware;
  j["GmtCreate"] = china_local(d.created_ms);
  j["UtcCreate"] = utc_iso(d.created_ms);
  if (d.active_ms > 0) {
    j["GmtActive"] = china_local(d.active_ms);
    j["UtcActive"] = utc_iso(d.active_ms);
  }
  if (full && d.online_ms > 0) {
    j["GmtOnline"] = china_local(d.online_ms);
    j["UtcOnline"] = utc_iso(d.online_ms);
  }
  j["Status"] = d.status;
  if (full) {
    j["IpAddress"] = d.ip;
    j["Owner"] = true;
  }
  j["NodeType"] = p.node_type;
  j["Region"] = region;
  j["Nickname"] = d.nickname;
  return j;
}

json simple_device_info(const DeviceRow& d) {
  json j;
  j["ProductKey"] = d.product_key;
  j["DeviceName"] = d.device_name;
  j["IotId"] = d.iot_id;
  j["DeviceSecret"] = d.device_secret;
  j["Status"] = d.status;
  j["Nickname"] = d.nickname;
  j["GmtCreate"] = gmt_cookie(d.created_ms);
  j["UtcCreate"] = utc_iso(d.created_ms);
  j["GmtModified"] = gmt_cookie(d.modified_ms);
  j["UtcModified"] = utc_iso(d.modified_ms);
  // The SDK's QueryDeviceByStatusResponseBodyDataSimpleDeviceInfo has no DeviceId and no
  // activation / last-online times: those are QueryDeviceDetail's (UtcActive, UtcOnline).
  return j;
}

// QueryDeviceByStatus Status codes.
std::optional<std::string_view> status_of_code(std::string_view code) {
  if (code == "0") {
    return k_unactive;
  }
  if (code == "1") {
    return k_online;
  }
  if (code == "3") {
    return k_offline;
  }
  if (code == "8") {
    return k_disable;
  }
  return std::nullopt;
}

// Names of a batch call, duplicates removed (first occurrence kept).
std::vector<std::string> unique(std::vector<std::string> names) {
  std::unordered_set<std::string> seen;
  std::vector<std::string> out;
  for (auto& n : names) {
    if (seen.insert(n).second) {
      out.push_back(std::move(n));
    }
  }
  return out;
}

ReplyError too_many(std::string_view param, std::size_t max) {
  return ReplyError{gateway_error(400,
                                  "InvalidParameter",
                                  "The parameter " + std::string(param) + ".N accepts at most " +
                                      std::to_string(max) + " values.")};
}

// Applies `change` to the device the request names, in one transaction.
Reply update(ActionContext& ctx, json fields, void (*change)(DeviceRow&, std::int64_t now)) {
  ctx.write([&](Conn& c) {
    const DeviceRow before = ctx.device(c);
    DeviceRow after = before;
    change(after, ctx.now_ms());
    if (after.status != before.status || after.enabled_status != before.enabled_status ||
        after.active_ms != before.active_ms) {
      after.modified_ms = ctx.now_ms();
      CloudStore::update_device(c, before, after);
    }
  });
  return ok(std::move(fields));
}

} // namespace

Reply query_device(ActionContext& ctx) {
  const ProductRow& p = ctx.product();
  const std::int64_t page_size = ctx.page_param("PageSize", 10, 1, 50);
  const std::int64_t current = ctx.page_param("CurrentPage", 1, 1, 1'000'000'000);
  const std::string token = ctx.param("NextToken").value_or("");
  const std::int64_t rows_end = page_size * current;
  if (token.empty() && rows_end > k_token_rows) {
    throw page_error("NextToken is required when PageSize*CurrentPage > 10000.");
  }
  if (rows_end >= k_max_token_rows) {
    throw page_error("PageSize*CurrentPage must be less than 1000000.");
  }
  std::optional<Token> position;
  if (!token.empty()) {
    position = read_token(ctx.store().token_salt(), p.product_key, token);
    if (!position) {
      throw page_error("The NextToken is invalid.");
    }
  }
  struct Page {
    std::int64_t total = 0;
    std::vector<DeviceRow> rows;
    bool more = false;
  };
  const Page page = ctx.read([&](Conn& c) {
    Page out;
    out.total = CloudStore::counts(c, p.product_key).total();
    out.rows = position
                   ? CloudStore::page_before(c, p.product_key, position->seq, page_size)
                   : ctx.store().page(c, p.product_key, {}, (current - 1) * page_size, page_size);
    if (static_cast<std::int64_t>(out.rows.size()) == page_size) {
      out.more = !CloudStore::page_before(c, p.product_key, out.rows.back().seq, 1).empty();
    }
    return out;
  });
  const std::int64_t page_no = position ? position->page + 1 : current;
  json list = json::array();
  for (const DeviceRow& d : page.rows) {
    list.push_back(device_info(d, p));
  }
  json fields;
  fields["Total"] = page.total;
  fields["PageSize"] = page_size;
  fields["PageCount"] = page_count(page.total, page_size);
  fields["Page"] = page_no;
  fields["NextToken"] =
      page.more ? make_token(ctx.store().token_salt(), p.product_key, page.rows.back().seq, page_no)
                : "";
  fields["Data"] = json{{"DeviceInfo", std::move(list)}};
  return ok(std::move(fields));
}

Reply query_device_detail(ActionContext& ctx) {
  const DeviceRow d = ctx.read([&](Conn& c) { return ctx.device(c); });
  const ProductRow& p = ctx.product(d.product_key);
  return ok(json{{"Data", device_detail(d, p, ctx.store().region(), true)}});
}

Reply batch_query_device_detail(ActionContext& ctx) {
  const ProductRow& p = ctx.product();
  const std::vector<std::string> names = unique(ctx.repeated("DeviceName"));
  if (names.empty()) {
    (void)ctx.required("DeviceName.1");
  }
  if (names.size() > k_batch_detail_max) {
    throw too_many("DeviceName", k_batch_detail_max);
  }
  const std::vector<DeviceRow> rows = ctx.read([&](Conn& c) {
    std::vector<DeviceRow> out;
    for (const std::string& name : names) {
      if (auto d = CloudStore::device(c, p.product_key, name)) {
        out.push_back(std::move(*d));
      }
    }
    return out;
  });
  json list = json::array();
  for (const DeviceRow& d : rows) {
    list.push_back(device_detail(d, p, ctx.store().region(), false));
  }
  return ok(json{{"Data", json{{"Data", std::move(list)}}}});
}

Reply batch_get_device_state(ActionContext& ctx) {
  const std::vector<std::string> iot_ids = unique(ctx.repeated("IotId"));
  std::vector<std::string> names;
  const ProductRow* product = nullptr;
  if (iot_ids.empty()) {
    product = &ctx.product();
    names = unique(ctx.repeated("DeviceName"));
    if (names.empty()) {
      (void)ctx.required("DeviceName.1");
    }
  }
  if (iot_ids.size() > k_batch_state_max) {
    throw too_many("IotId", k_batch_state_max);
  }
  if (names.size() > k_batch_state_max) {
    throw too_many("DeviceName", k_batch_state_max);
  }
  const bool visible = ctx.instance_matches();
  const std::vector<DeviceRow> rows = ctx.read([&](Conn& c) {
    std::vector<DeviceRow> out;
    for (const std::string& id : iot_ids) {
      if (auto d = visible ? CloudStore::device_by_iot_id(c, id) : std::nullopt) {
        out.push_back(std::move(*d));
      }
    }
    for (const std::string& name : names) {
      if (auto d = CloudStore::device(c, product->product_key, name)) {
        out.push_back(std::move(*d));
      }
    }
    return out;
  });
  json list = json::array();
  for (const DeviceRow& d : rows) {
    json j;
    j["DeviceName"] = d.device_name;
    j["IotId"] = d.iot_id;
    j["DeviceId"] = d.iot_id;
    j["Status"] = d.status;
    j["AsAddress"] = d.status == k_online ? d.ip : "";
    j["LastOnlineTime"] = d.online_ms > 0 ? china_local(d.online_ms) : "";
    // No Timestamp: the SDK's DeviceStatus model has none (GetDeviceStatus has it).
    list.push_back(std::move(j));
  }
  return ok(json{{"DeviceStatusList", json{{"DeviceStatus", std::move(list)}}}});
}

Reply query_device_by_status(ActionContext& ctx) {
  const std::string code = ctx.required("Status");
  const auto status = status_of_code(code);
  if (!status) {
    throw ReplyError{
        gateway_error(400, "InvalidParameter", "The parameter Status must be 0, 1, 3 or 8.")};
  }
  const ProductRow& p = ctx.product();
  const std::int64_t page_size = ctx.page_param("PageSize", 10, 1, 50);
  const std::int64_t current = ctx.page_param("CurrentPage", 1, 1, 1'000'000'000);
  struct Page {
    std::int64_t total = 0;
    std::vector<DeviceRow> rows;
  };
  const Page page = ctx.read([&](Conn& c) {
    Page out;
    out.total = CloudStore::counts(c, p.product_key).of(*status);
    if ((current - 1) * page_size < out.total) {
      out.rows = ctx.store().page(c, p.product_key, *status, (current - 1) * page_size, page_size);
    }
    return out;
  });
  json list = json::array();
  for (const DeviceRow& d : page.rows) {
    list.push_back(simple_device_info(d));
  }
  json fields;
  fields["Total"] = page.total;
  fields["PageSize"] = page_size;
  fields["PageCount"] = page_count(page.total, page_size);
  fields["Page"] = current;
  fields["Data"] = json{{"SimpleDeviceInfo", std::move(list)}};
  return ok(std::move(fields));
}

Reply get_device_status(ActionContext& ctx) {
  const DeviceRow d = ctx.read([&](Conn& c) { return ctx.device(c); });
  return ok(json{{"Data", json{{"Status", d.status}, {"Timestamp", d.status_ms}}}});
}

Reply register_device(ActionContext& ctx) {
  const ProductRow& p = ctx.product();
  std::string name = ctx.param("DeviceName").value_or("");
  if (name.empty()) {
    name = ctx.rng().with([](Rng& r) { return random_alnum(r, 20); });
  } else if (!valid_device_name(name)) {
    return business_error("iot.device.InvalidFormattedDeviceName",
                          "The format of the device name is invalid.");
  }
  std::string nickname = ctx.param("Nickname").value_or("");
  if (!nickname.empty() && !valid_nickname(nickname)) {
    return gateway_error(400,
                         "InvalidParameter",
                         "The Nickname must be 4-64 characters of letters, digits, underscores "
                         "and CJK characters (which count 2).");
  }
  DeviceRow d = new_device(ctx.rng(), p.product_key, name, nickname, ctx.now_ms());
  const bool created = ctx.write([&](Conn& c) {
    if (CloudStore::device(c, p.product_key, d.device_name)) {
      return false;
    }
    d.seq = CloudStore::insert_device(c, d);
    return true;
  });
  if (!created) {
    return business_error("iot.device.AlreadyExistedDeviceName", "The device name already exists.");
  }
  json data;
  data["IotId"] = d.iot_id;
  data["ProductKey"] = d.product_key;
  data["DeviceName"] = d.device_name;
  data["DeviceSecret"] = d.device_secret;
  data["Nickname"] = d.nickname;
  return ok(json{{"Data", std::move(data)}});
}

Reply delete_device(ActionContext& ctx) {
  ctx.write([&](Conn& c) { CloudStore::delete_device(c, ctx.device(c)); });
  return ok();
}

Reply reset_thing(ActionContext& ctx) {
  const std::string job_id = ctx.rng().with([](Rng& r) { return random_alnum(r, 20) + "010001"; });
  return update(ctx, json{{"JobId", job_id}}, [](DeviceRow& d, std::int64_t now) {
    // Back to "not activated": a device that used dynamic registration may register again.
    if (d.status == k_disable) {
      d.enabled_status = std::string(k_unactive);
    } else {
      d.status = std::string(k_unactive);
      d.enabled_status = d.status;
      d.status_ms = now;
    }
    d.active_ms = 0;
  });
}

Reply disable_thing(ActionContext& ctx) {
  return update(ctx, json::object(), [](DeviceRow& d, std::int64_t now) {
    if (d.status != k_disable) {
      // A disabled device is disconnected: enabling it later does not bring it back online.
      d.enabled_status = d.status == k_online ? std::string(k_offline) : d.status;
      d.status = std::string(k_disable);
      d.status_ms = now;
    }
  });
}

Reply enable_thing(ActionContext& ctx) {
  return update(ctx, json::object(), [](DeviceRow& d, std::int64_t now) {
    if (d.status == k_disable) {
      d.status = d.enabled_status;
      d.status_ms = now;
    }
  });
}

} // namespace iot::sim::cloud
