// SPDX-License-Identifier: MIT
#include "commands/cloud_access.hpp"

#include "commands/config.hpp"
#include "core/validate.hpp"

namespace iot::commands {

Result<CloudSession> open_cloud(Context& ctx, const CloudOptions& options) {
  auto settings = IOT_TRY(load_cloud_settings(ctx,
                                              {cloud::key::access_key_id,
                                               cloud::key::access_key_secret,
                                               cloud::key::security_token,
                                               cloud::key::region,
                                               cloud::key::endpoint}));
  auto key = IOT_TRY(cloud::require_access_key(settings));
  cloud::OpenApiConfig config;
  config.access_key = std::move(key);
  config.region_id = settings.value(cloud::key::region).value_or("");
  config.endpoint = settings.value(cloud::key::endpoint).value_or("");
  config.iot_instance_id = settings.value(cloud::key::iot_instance_id).value_or("");
  config.credential_origin = cloud::access_key_origin(settings);
  config.retry.max_attempts = options.max_attempts;
  if (config.region_id.empty() && config.endpoint.empty()) {
    return fail(ErrorKind::config,
                "no region: give --region (e.g. cn-shanghai), ALIBABA_CLOUD_REGION_ID, the "
                "config's region, or --endpoint");
  }
  auto http = IOT_TRY(open_http(ctx, settings, options.concurrency));
  CloudSession session;
  session.settings = std::move(settings);
  session.http = std::move(http);
  session.client = std::make_unique<cloud::OpenApiClient>(*session.http, std::move(config));
  session.api = std::make_unique<cloud::IotApi>(*session.client, options.concurrency);
  ctx.output->debug("cloud endpoint " + session.client->endpoint());
  return session;
}

Result<std::unique_ptr<cloud::HttpClient>>
open_http(Context& ctx, const cloud::Settings& settings, std::size_t concurrency) {
  cloud::HttpOptions http_options;
  http_options.ca_file = extra_ca_file(settings).value_or("");
  http_options.max_in_flight = std::max<std::size_t>(concurrency, 1);
  return ctx.seams.make_http(http_options);
}

std::optional<std::string> extra_ca_file(const cloud::Settings& settings) {
  // The default's value is the words "system trust store", for config show: no extra CA.
  if (const auto* ca = settings.find(cloud::key::ca_file);
      ca && ca->value && ca->source != "default") {
    return *ca->value;
  }
  return std::nullopt;
}

Result<std::string> product_key_or_config(const std::optional<std::string>& flag,
                                          const cloud::Settings& settings) {
  auto pk = flag ? flag : settings.value(cloud::key::product_key);
  if (!pk || pk->empty()) {
    return fail(ErrorKind::usage,
                "no ProductKey: give --product-key PK or set product_key in the config");
  }
  IOT_TRY(core::validate_product_key(*pk));
  return *pk;
}

} // namespace iot::commands
