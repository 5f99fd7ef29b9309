// SPDX-License-Identifier: MIT
// A ready OpenAPI client for cloud commands, from the resolved settings: AccessKey (flags > env >
// aliyun CLI profile > config), region, --endpoint (an emulator), --ca-file, iot_instance_id.
#pragma once

#include "cloud/http.hpp"
#include "cloud/iot_api.hpp"
#include "cloud/openapi.hpp"
#include "commands/context.hpp"

#include <memory>
#include <optional>
#include <string>

namespace iot::commands {

struct CloudSession {
  cloud::Settings settings;
  std::unique_ptr<cloud::HttpClient> http;
  std::unique_ptr<cloud::OpenApiClient> client;
  std::unique_ptr<cloud::IotApi> api;
};

struct CloudOptions {
  std::size_t concurrency = 8; // parallel calls where a command runs many
  int max_attempts = 4;        // per call; bulk commands making thousands of calls raise it
};

// ErrorKind::auth when no AccessKey is configured (the message lists every way to give one),
// ErrorKind::config for an unreadable --ca-file or a missing region without --endpoint.
[[nodiscard]] Result<CloudSession> open_cloud(Context& ctx, const CloudOptions& options = {});

// An HTTP client (ctx.seams.make_http: libcurl unless a test replaced it) trusting the settings'
// --ca-file (if any) besides the system CAs, with up to `concurrency` transfers at once.
// ErrorKind::config for an unreadable CA file.
[[nodiscard]] Result<std::unique_ptr<cloud::HttpClient>>
open_http(Context& ctx, const cloud::Settings& settings, std::size_t concurrency);

// The CA file trusted besides the system CAs (--ca-file, IOTFLEET_CA_FILE, the config's ca_file),
// nullopt when none is configured.
[[nodiscard]] std::optional<std::string> extra_ca_file(const cloud::Settings& settings);

// The ProductKey: the flag's value, else the config's product_key; ErrorKind::usage naming
// both when neither is set.
[[nodiscard]] Result<std::string> product_key_or_config(const std::optional<std::string>& flag,
                                                        const cloud::Settings& settings);

} // namespace iot::commands
