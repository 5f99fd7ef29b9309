// SPDX-License-Identifier: MIT
// Which devices an `ota rollout` targets: the device list, --all, --group, --tag and --query,
// resolved against the cloud and intersected (docs/ota.md "Selection"). The versions
// (--src-version) are read afterwards, with the plan.
#pragma once

#include "cloud/iot_api.hpp"
#include "commands/context.hpp"
#include "commands/ota.hpp"

#include <string>
#include <vector>

namespace iot::commands::ota {

struct Selection {
  std::vector<std::string> names; // DeviceNames of the product, in the first selector's order
  std::string text;               // for the journal and the report, e.g. "group line-A, tag hw=B"
  cloud::DeviceGroup group;       // --group, resolved (id empty without)
};

// ErrorKind::usage when nothing selects devices, selectors conflict (names with --all), a tag
// or a condition is malformed, a group is unknown, or --query matches more than the platform's
// 10 000 rows; cloud errors as they come.
[[nodiscard]] Result<Selection> select_devices(const OtaRolloutOptions& options,
                                               const std::vector<std::string>& listed,
                                               const std::string& product_key,
                                               cloud::IotApi& api,
                                               Context& ctx);

} // namespace iot::commands::ota
