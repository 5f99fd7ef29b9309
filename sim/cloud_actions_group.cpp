// SPDX-License-Identifier: MIT
// Device tag and group Actions: QueryDeviceProp, SaveDeviceProp, QueryDeviceGroupByDevice,
// BatchAddDeviceGroupRelations (wire names and types as the official SDK's models,
// @alicloud/iot20180120). Tags and memberships belong to the device's IotId: a deleted device
// loses them, a re-registered one starts without (seed FAQ §3.3).
#include "sim/cloud_actions.hpp"
#include "sim/cloud_util.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace iot::sim::cloud {

namespace {

constexpr std::size_t k_group_add_max = 1000; // Device.N per call (UNVERIFIED)

bool valid_tag_key(std::string_view key) {
  // UNVERIFIED: 2-30 of letters, digits and "_-." (the console's rule for tag keys), a letter
  // first.
  if (key.size() < 2 || key.size() > 30 || !std::isalpha(static_cast<unsigned char>(key[0]))) {
    return false;
  }
  for (const char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if (!std::isalnum(c) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

} // namespace

Reply query_device_prop(ActionContext& ctx) {
  const auto tags = ctx.read([&](Conn& c) { return CloudStore::tags(c, ctx.device(c).iot_id); });
  json props = json::object();
  for (const auto& [key, value] : tags) {
    props[key] = value;
  }
  return ok(json{{"Props", props.dump()}});
}

Reply save_device_prop(ActionContext& ctx) {
  const std::string text = ctx.required("Props");
  const json props = json::parse(text, nullptr, false);
  if (props.is_discarded() || !props.is_object() || props.empty()) {
    return gateway_error(
        400, "InvalidParameter", "Props must be a JSON object of tag keys and text values.");
  }
  std::vector<std::pair<std::string, std::string>> tags;
  for (const auto& [key, value] : props.items()) {
    if (!valid_tag_key(key) || !value.is_string() || value.get_ref<const std::string&>().empty() ||
        value.get_ref<const std::string&>().size() > 128) {
      return gateway_error(400,
                           "InvalidParameter",
                           "A tag key is 2-30 letters, digits, _ - or . (a letter first) and its "
                           "value 1-128 characters.");
    }
    tags.emplace_back(key, value.get<std::string>());
  }
  const bool saved = ctx.write([&](Conn& c) {
    const DeviceRow d = ctx.device(c);
    auto existing = CloudStore::tags(c, d.iot_id);
    std::set<std::string> keys;
    for (const auto& [key, value] : existing) {
      keys.insert(key);
    }
    for (const auto& [key, value] : tags) {
      keys.insert(key);
    }
    if (keys.size() > k_max_tags_per_device) {
      return false;
    }
    CloudStore::save_tags(c, d.iot_id, tags);
    return true;
  });
  if (!saved) {
    return business_error("iot.prop.PropsNumberExceed",
                          "A device can have at most 100 tags."); // code UNVERIFIED
  }
  return ok();
}

Reply query_device_group_by_device(ActionContext& ctx) {
  const auto groups = ctx.read([&](Conn& c) {
    const ProductRow& p = ctx.product();
    const auto d = CloudStore::device(c, p.product_key, ctx.required("DeviceName"));
    if (!d) {
      throw ReplyError{
          business_error("iot.device.NotExistedDevice", "The specified device does not exist.")};
    }
    return CloudStore::groups_of(c, d->iot_id);
  });
  json list = json::array();
  for (const GroupRow& g : groups) {
    list.push_back(json{{"GroupId", g.group_id},
                        {"GroupName", g.name},
                        {"GroupDesc", g.description},
                        {"GroupType", g.dynamic() ? "LINK_PLATFORM_DYNAMIC" : "LINK_PLATFORM"},
                        {"UtcCreate", utc_iso(g.created_ms)}});
  }
  return ok(json{{"GroupInfos", json{{"GroupInfo", std::move(list)}}}});
}

Reply batch_add_device_group_relations(ActionContext& ctx) {
  const std::string group_id = ctx.required("GroupId");
  const auto pks = ctx.repeated_map("Device", "ProductKey");
  const auto names = ctx.repeated_map("Device", "DeviceName");
  if (names.empty() || names.size() > k_group_add_max) {
    return gateway_error(
        400, "InvalidParameter", "Device.N: 1-1000 devices (ProductKey and DeviceName each).");
  }
  struct Counts {
    std::int64_t valid = 0, added = 0, already = 0, exceed = 0;
    bool found = true, dynamic = false;
  };
  const Counts n = ctx.write([&](Conn& c) {
    Counts out;
    const auto g = CloudStore::group(c, group_id);
    if (!g) {
      out.found = false;
      return out;
    }
    if (g->dynamic()) {
      out.dynamic = true;
      return out;
    }
    for (const auto& [i, name] : names) {
      const auto pk = pks.find(i);
      if (pk == pks.end()) {
        continue;
      }
      const auto d = CloudStore::device(c, pk->second, name);
      if (!d) {
        continue;
      }
      ++out.valid;
      const bool in_ten = CloudStore::static_group_count(c, d->iot_id) <
                          static_cast<std::int64_t>(k_max_groups_per_device);
      const auto groups = CloudStore::groups_of(c, d->iot_id);
      const bool already = std::any_of(
          groups.begin(), groups.end(), [&](const GroupRow& r) { return r.group_id == group_id; });
      if (already) {
        ++out.already;
      } else if (!in_ten) {
        ++out.exceed;
      } else {
        CloudStore::add_member(c, group_id, d->iot_id);
        ++out.added;
      }
    }
    return out;
  });
  if (!n.found) {
    return business_error("iot.group.NotExistedGroup", "The group does not exist."); // UNVERIFIED
  }
  if (n.dynamic) {
    return business_error("iot.group.DynamicGroupNotSupported", // UNVERIFIED
                          "Devices cannot be added to a dynamic group by hand.");
  }
  return ok(json{{"ValidDeviceCount", n.valid},
                 {"SuccessAddedDeviceCount", n.added},
                 {"AlreadyRelatedGroupDeviceCount", n.already},
                 {"ExceedTenGroupDeviceCount", n.exceed}});
}

} // namespace iot::sim::cloud
