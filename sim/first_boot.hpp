// SPDX-License-Identifier: MIT
// `iotfleet-sim modules --first-boot URL`: a simulated Luat module with an empty SN behaves like
// firmware that fetches its DeviceSecret from the customer's own server at first boot (seed FAQ
// 000 §7, the second way; docs/serve.md): DeviceName = its IMEI, the request signed with the
// product's enrollment secret (docs/enrollment.md), the secret stored in SN. The production
// line's `refetch I` fetches again (a module told its secret went bad).
#pragma once

#include "cloud/http.hpp"
#include "core/error.hpp"

#include <memory>
#include <optional>
#include <string>

namespace iot::sim {

struct FirstBootConfig {
  std::string url;               // the server: https://HOST:PORT (or http:// in a lab)
  std::string product_key;       // --first-boot-product
  std::string secret;            // the product's enrollment secret (--first-boot-secret-file)
  std::optional<std::string> ca; // a private CA to trust (--first-boot-ca)
};

class FirstBoot {
public:
  // ErrorKind::usage for a missing product or secret, config for an unreadable CA file.
  [[nodiscard]] static Result<FirstBoot> create(FirstBootConfig config);

  // One request for the module with this IMEI and ICCID: its DeviceSecret, or an error naming the
  // server's code and message (ErrorKind::cloud) or the transport failure (network).
  [[nodiscard]] Result<std::string> fetch(const std::string& imei, const std::string& iccid);

private:
  FirstBoot(FirstBootConfig config, std::unique_ptr<cloud::HttpClient> http)
      : m_config(std::move(config)), m_http(std::move(http)) {}
  FirstBootConfig m_config;
  std::unique_ptr<cloud::HttpClient> m_http;
};

} // namespace iot::sim
