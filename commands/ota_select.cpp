// SPDX-License-Identifier: MIT
// ota rollout's device selection (commands/ota_select.hpp): each selector asks the cloud the way
// the platform offers (QueryDevice, QueryDeviceListByDeviceGroup, QueryDeviceByTags one tag per
// call, QueryDeviceBySQL paged with LIMIT), keeps the product's devices, and the sets are
// intersected.
#include "commands/ota_select.hpp"

#include "commands/ota_plan.hpp"

#include <optional>
#include <unordered_set>

namespace iot::commands::ota {
namespace {

// One selector's devices of the product, in the order the cloud listed them.
struct Found {
  std::string label;
  std::vector<std::string> names;
};

std::vector<std::string> of_product(const std::vector<cloud::DeviceRef>& refs,
                                    const std::string& product_key) {
  std::vector<std::string> out;
  for (const auto& r : refs) {
    if (r.product_key == product_key) {
      out.push_back(r.device_name);
    }
  }
  return out;
}

Result<cloud::DeviceGroup> resolve_group(const std::string& wanted, cloud::IotApi& api) {
  const auto groups = IOT_TRY_CTX(api.query_device_groups(""), "--group " + wanted);
  std::vector<cloud::DeviceGroup> by_name;
  for (const auto& g : groups) {
    if (g.id == wanted) {
      return g;
    }
    if (g.name == wanted) {
      by_name.push_back(g);
    }
  }
  if (by_name.size() == 1) {
    return by_name.front();
  }
  if (by_name.size() > 1) {
    return fail(ErrorKind::usage,
                "--group " + wanted + ": " + std::to_string(by_name.size()) +
                    " groups have that name (subgroups?): give the GroupId");
  }
  std::string known;
  for (std::size_t i = 0; i < groups.size() && i < 5; ++i) {
    known += (i ? ", " : "") + groups[i].name;
  }
  return fail(ErrorKind::usage,
              "--group " + wanted + ": no device group has that name or GroupId" +
                  (known.empty() ? " (the account has no groups)"
                                 : " (groups: " + known + (groups.size() > 5 ? ", …)" : ")")));
}

Result<Found> by_query(const std::string& condition,
                       const std::string& product_key,
                       cloud::IotApi& api,
                       Context& ctx) {
  const auto statement = IOT_TRY(device_query(condition, product_key));
  Found f{"query " + condition, {}};
  std::int64_t other_products = 0;
  for (std::int64_t offset = 0;; offset += cloud::k_sql_page_max) {
    const auto page = IOT_TRY_CTX(
        api.query_device_by_sql(device_query_page(statement, offset, cloud::k_sql_page_max)),
        "--query");
    if (page.total_count > cloud::k_sql_rows_max) {
      return fail(ErrorKind::usage,
                  "--query matches " + std::to_string(page.total_count) +
                      " devices; the platform's SQL search returns at most 10000: narrow the "
                      "condition, or select by --group or --tag");
    }
    for (const auto& d : page.devices) {
      if (d.product_key == product_key) {
        f.names.push_back(d.device_name);
      } else {
        ++other_products;
      }
    }
    if (page.devices.empty() || offset + cloud::k_sql_page_max >= page.total_count) {
      break;
    }
  }
  if (other_products > 0) {
    ctx.output->warn("--query: " + std::to_string(other_products) +
                     " matching devices of other products left out");
  }
  return f;
}

} // namespace

Result<Selection> select_devices(const OtaRolloutOptions& o,
                                 const std::vector<std::string>& listed,
                                 const std::string& product_key,
                                 cloud::IotApi& api,
                                 Context& ctx) {
  std::vector<TagFilter> tags;
  for (const auto& t : o.tags) {
    tags.push_back(IOT_TRY(parse_tag_filter(t)));
  }
  const bool narrowed = !o.group.empty() || !tags.empty() || !o.query.empty();
  if (listed.empty() && !o.all && !narrowed && o.src_version.empty()) {
    return fail(ErrorKind::usage,
                "choose the devices: DEVICE_NAME..., --devices FILE, --all, --group, --tag, "
                "--query or --src-version V");
  }
  if (!listed.empty() && o.all) {
    return fail(ErrorKind::usage, "device names and --all are exclusive");
  }
  if (o.all && narrowed) {
    return fail(ErrorKind::usage,
                "--all selects every device: --group, --tag and --query narrow it already "
                "(drop --all)");
  }
  Selection sel;
  std::vector<Found> found;
  if (!listed.empty()) {
    found.push_back(Found{o.devices.file ? "devices from " + *o.devices.file
                                         : std::to_string(listed.size()) + " named devices",
                          listed});
  }
  if (!o.group.empty()) {
    sel.group = IOT_TRY(resolve_group(o.group, api));
    const auto refs = IOT_TRY_CTX(api.query_group_devices(sel.group.id), "--group " + o.group);
    found.push_back(Found{"group " + sel.group.name, of_product(refs, product_key)});
  }
  for (const auto& t : tags) {
    const auto refs = IOT_TRY_CTX(api.query_devices_by_tag(cloud::DeviceTag{t.key, t.value}),
                                  "--tag " + t.key + "=" + t.value);
    found.push_back(Found{"tag " + t.key + "=" + t.value, of_product(refs, product_key)});
  }
  if (!o.query.empty()) {
    found.push_back(IOT_TRY(by_query(o.query, product_key, api, ctx)));
  }
  if (found.empty()) {
    // --all, or --src-version alone: the whole product.
    const auto all = IOT_TRY(api.query_all_devices(product_key));
    Found f{"all devices of " + product_key, {}};
    for (const auto& d : all) {
      f.names.push_back(d.device_name);
    }
    found.push_back(std::move(f));
  }
  // The intersection, in the first selector's order.
  sel.names = found.front().names;
  sel.text = found.front().label;
  for (std::size_t i = 1; i < found.size(); ++i) {
    const std::unordered_set<std::string> keep(found[i].names.begin(), found[i].names.end());
    std::erase_if(sel.names, [&](const std::string& n) { return !keep.contains(n); });
    sel.text += ", " + found[i].label;
  }
  if (found.size() > 1) {
    ctx.output->info("selection: " + sel.text + ": " + std::to_string(sel.names.size()) +
                     " devices in all of them");
  }
  return sel;
}

} // namespace iot::commands::ota
