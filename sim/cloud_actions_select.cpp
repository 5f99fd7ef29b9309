// SPDX-License-Identifier: MIT
// Device selection Actions: QueryDeviceBySQL (the subset of sim/device_sql.hpp),
// QueryDeviceByTags, QueryDeviceListByDeviceGroup and QueryDeviceGroupList. Wire names and
// types as the official SDK's models (@alicloud/iot20180120); page limits UNVERIFIED where
// marked. docs/cloud-emulator.md "Device search".
#include "sim/cloud_actions.hpp"
#include "sim/cloud_ota.hpp"
#include "sim/cloud_util.hpp"
#include "sim/device_sql.hpp"

#include <algorithm>

namespace iot::sim::cloud {

namespace {

constexpr std::int64_t k_tags_page_max = 50;   // QueryDeviceByTags PageSize (UNVERIFIED)
constexpr std::int64_t k_group_page_max = 200; // QueryDeviceListByDeviceGroup (UNVERIFIED)
constexpr std::size_t k_query_tags_max = 10;   // Tag.N of QueryDeviceByTags (UNVERIFIED)

std::string group_type(const GroupRow& g) {
  return g.dynamic() ? "LINK_PLATFORM_DYNAMIC" : "LINK_PLATFORM";
}

// DeviceName, IotId, ProductKey, ProductName: the simple device info of the tag and group
// queries.
json listed_device(const ActionContext& ctx, const DeviceRow& d) {
  return json{{"DeviceName", d.device_name},
              {"IotId", d.iot_id},
              {"ProductKey", d.product_key},
              {"ProductName", ctx.product(d.product_key).name}};
}

// One page of the devices whose seqs are given.
json device_page(ActionContext& ctx,
                 Conn& c,
                 const std::vector<std::int64_t>& seqs,
                 std::int64_t current,
                 std::int64_t page_size) {
  json list = json::array();
  const auto from = static_cast<std::size_t>((current - 1) * page_size);
  for (std::size_t i = from; i < seqs.size() && i < from + static_cast<std::size_t>(page_size);
       ++i) {
    if (auto d = CloudStore::device_by_seq(c, seqs[i])) {
      list.push_back(listed_device(ctx, *d));
    }
  }
  return list;
}

} // namespace

Reply query_device_by_sql(ActionContext& ctx) {
  const std::string sql = ctx.required("SQL");
  auto query = parse_device_sql(sql);
  if (!query) {
    return gateway_error(400, "InvalidParameter", "SQL: " + query.error().message + ".");
  }
  struct Found {
    std::int64_t total = 0;
    json rows = json::array();
  };
  const Found found = ctx.read([&](Conn& c) {
    Found out;
    if (!ctx.instance_matches()) {
      return out;
    }
    struct Hit {
      DeviceRow device;
      std::vector<std::pair<std::string, std::string>> tags;
      std::vector<GroupRow> groups;
    };
    std::vector<Hit> hits;
    for (const std::int64_t seq : CloudStore::device_seqs(c, "")) {
      auto d = CloudStore::device_by_seq(c, seq);
      if (!d) {
        continue;
      }
      std::optional<std::vector<std::pair<std::string, std::string>>> tags;
      std::optional<std::vector<GroupRow>> groups;
      auto values_of = [&](const std::string& field) -> std::vector<std::string> {
        if (field == "product_key") {
          return {d->product_key};
        }
        if (field == "device_name") {
          return {d->device_name};
        }
        if (field == "nickname") {
          return {d->nickname};
        }
        if (field == "status") {
          return {d->status};
        }
        if (field == "ota_module.version") {
          return {device_version(c, *d, k_default_module)};
        }
        if (field == "group_id") {
          if (!groups) {
            groups = CloudStore::groups_of(c, d->iot_id);
          }
          std::vector<std::string> ids;
          for (const GroupRow& g : *groups) {
            ids.push_back(g.group_id);
          }
          return ids;
        }
        if (!tags) {
          tags = CloudStore::tags(c, d->iot_id);
        }
        const std::string key = field.substr(4); // tag.KEY
        for (const auto& [k, v] : *tags) {
          if (k == key) {
            return {v};
          }
        }
        return {};
      };
      if (sql_matches(*query, values_of)) {
        if (!tags) {
          tags = CloudStore::tags(c, d->iot_id);
        }
        if (!groups) {
          groups = CloudStore::groups_of(c, d->iot_id);
        }
        hits.push_back(Hit{std::move(*d), std::move(*tags), std::move(*groups)});
      }
    }
    if (query->order_by == "gmt_create" || query->order_by == "gmt_modified" ||
        query->order_by == "active_time") {
      auto key = [&](const Hit& h) {
        return query->order_by == "gmt_create"     ? h.device.created_ms
               : query->order_by == "gmt_modified" ? h.device.modified_ms
                                                   : h.device.active_ms;
      };
      std::stable_sort(hits.begin(), hits.end(), [&](const Hit& a, const Hit& b) {
        return query->descending ? key(a) > key(b) : key(a) < key(b);
      });
    }
    out.total = static_cast<std::int64_t>(hits.size());
    for (std::size_t i = static_cast<std::size_t>(query->offset);
         i < hits.size() && i < static_cast<std::size_t>(query->offset + query->limit);
         ++i) {
      const Hit& h = hits[i];
      json tags = json::array();
      for (const auto& [k, v] : h.tags) {
        tags.push_back(json{{"TagName", k}, {"TagValue", v}});
      }
      json groups = json::array();
      for (const GroupRow& g : h.groups) {
        groups.push_back(json{{"GroupId", g.group_id}});
      }
      json modules = json::array();
      modules.push_back(json{{"ModuleName", std::string(k_default_module)},
                             {"FirmwareVersion", device_version(c, h.device, k_default_module)}});
      json row{{"ProductKey", h.device.product_key},
               {"DeviceName", h.device.device_name},
               {"IotId", h.device.iot_id},
               {"Nickname", h.device.nickname},
               {"Status", h.device.status},
               {"GmtCreate", utc_iso(h.device.created_ms)},
               {"GmtModified", utc_iso(h.device.modified_ms)},
               {"Tags", std::move(tags)},
               {"Groups", std::move(groups)},
               {"OTAModules", std::move(modules)}};
      if (h.device.active_ms > 0) {
        row["ActiveTime"] = utc_iso(h.device.active_ms);
      }
      out.rows.push_back(std::move(row));
    }
    return out;
  });
  return ok(json{{"TotalCount", found.total}, {"Data", found.rows}});
}

Reply query_device_by_tags(ActionContext& ctx) {
  const auto keys = ctx.repeated_map("Tag", "TagKey");
  const auto values = ctx.repeated_map("Tag", "TagValue");
  if (keys.empty() || keys.size() > k_query_tags_max) {
    return gateway_error(400, "InvalidParameter", "Tag.N.TagKey: 1-10 tags.");
  }
  const std::int64_t page_size = ctx.page_param("PageSize", 10, 1, k_tags_page_max);
  const std::int64_t current = ctx.page_param("CurrentPage", 1, 1, 1'000'000'000);
  json list;
  std::int64_t total = 0;
  ctx.read([&](Conn& c) {
    std::vector<std::int64_t> seqs;
    for (const std::int64_t seq : CloudStore::device_seqs(c, "")) {
      auto d = CloudStore::device_by_seq(c, seq);
      if (!d) {
        continue;
      }
      const auto tags = CloudStore::tags(c, d->iot_id);
      // Every tag given must hold (a TagKey without TagValue: the key alone). UNVERIFIED: the
      // client asks one tag per call, so it does not depend on AND vs OR here.
      const bool all = std::all_of(keys.begin(), keys.end(), [&](const auto& kv) {
        const auto v = values.find(kv.first);
        return std::any_of(tags.begin(), tags.end(), [&](const auto& t) {
          return t.first == kv.second && (v == values.end() || t.second == v->second);
        });
      });
      if (all) {
        seqs.push_back(seq);
      }
    }
    total = static_cast<std::int64_t>(seqs.size());
    list = device_page(ctx, c, seqs, current, page_size);
  });
  return page_reply("Page", total, page_size, current, "SimpleDeviceInfo", std::move(list));
}

Reply query_device_list_by_device_group(ActionContext& ctx) {
  const std::string group_id = ctx.required("GroupId");
  const std::int64_t page_size = ctx.page_param("PageSize", 10, 1, k_group_page_max);
  const std::int64_t current = ctx.page_param("CurrentPage", 1, 1, 1'000'000'000);
  json list;
  std::int64_t total = -1;
  ctx.read([&](Conn& c) {
    const auto g = CloudStore::group(c, group_id);
    if (!g) {
      return;
    }
    const auto seqs = CloudStore::member_seqs(c, *g);
    total = static_cast<std::int64_t>(seqs.size());
    list = device_page(ctx, c, seqs, current, page_size);
  });
  if (total < 0) {
    return business_error("iot.group.NotExistedGroup", "The group does not exist."); // UNVERIFIED
  }
  return page_reply("Page", total, page_size, current, "SimpleDeviceInfo", std::move(list));
}

Reply query_device_group_list(ActionContext& ctx) {
  const std::string name = ctx.param("GroupName").value_or("");
  const std::vector<std::string> types = ctx.repeated("GroupTypes");
  const std::int64_t page_size = ctx.page_param("PageSize", 10, 1, k_group_page_max);
  const std::int64_t current = ctx.page_param("CurrentPage", 1, 1, 1'000'000'000);
  auto groups = ctx.read([&](Conn& c) { return CloudStore::all_groups(c); });
  // GroupName matches by substring (the console's fuzzy search; UNVERIFIED); GroupTypes.N
  // filters by type.
  std::erase_if(groups, [&](const GroupRow& g) {
    const bool type_ok =
        types.empty() || std::find(types.begin(), types.end(), group_type(g)) != types.end();
    return !type_ok || (!name.empty() && g.name.find(name) == std::string::npos);
  });
  json list = json::array();
  const auto from = static_cast<std::size_t>((current - 1) * page_size);
  for (std::size_t i = from; i < groups.size() && i < from + static_cast<std::size_t>(page_size);
       ++i) {
    const GroupRow& g = groups[i];
    list.push_back(json{{"GroupId", g.group_id},
                        {"GroupName", g.name},
                        {"GroupDesc", g.description},
                        {"GroupType", group_type(g)},
                        {"UtcCreate", utc_iso(g.created_ms)}});
  }
  return page_reply("CurrentPage",
                    static_cast<std::int64_t>(groups.size()),
                    page_size,
                    current,
                    "GroupInfo",
                    std::move(list));
}

} // namespace iot::sim::cloud
