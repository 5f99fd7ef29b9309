// SPDX-License-Identifier: MIT
#include "commands/creds.hpp"

#include "cloud/device_sign.hpp"
#include "commands/cloud_access.hpp"
#include "commands/common_options.hpp"
#include "commands/config.hpp"
#include "commands/secret_input.hpp"
#include "core/text.hpp"
#include "core/validate.hpp"
#include "store/ledger.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace iot::commands {
namespace {

constexpr std::size_t k_max_client_id = 64; // §5: clientId ≤ 64 characters
constexpr std::size_t k_max_random = 64;
constexpr std::size_t k_random_length = 16;

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

Result<std::uint64_t> parse_timestamp(const std::string& text) {
  if (text == "now") {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  }
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    return fail(ErrorKind::usage,
                "--timestamp " + text +
                    ": give milliseconds since the epoch (e.g. 1700000000000) or now");
  }
  return value;
}

Status check_client_id(const std::string& id) {
  if (id.empty() || id.size() > k_max_client_id) {
    return fail(ErrorKind::usage,
                "--client-id must be 1-64 characters (it has " + std::to_string(id.size()) + ")");
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    const auto c = static_cast<unsigned char>(id[i]);
    if (c <= 0x20 || c >= 0x7f || c == '|' || c == ',' || c == '=') {
      return fail(ErrorKind::usage,
                  "--client-id: character " + std::to_string(i + 1) +
                      " is not allowed (no space, control byte, non-ASCII, '|', ',' or '='): use "
                      "letters, digits and e.g. '.', '-', '_', ':' (a MAC, an IMEI, a SN)");
    }
  }
  return {};
}

Status check_instance_id(const std::string& id, std::string_view from) {
  const bool ok = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return is_alnum(c) || c == '-' || c == '_';
  });
  if (!ok) {
    return fail(ErrorKind::usage,
                std::string(from) + " " + id +
                    ": an IoT instance id is letters, digits, '-' and '_' (e.g. "
                    "iot-06z00ax1o4qq0py)");
  }
  return {};
}

Result<std::string> check_random(const std::string& r) {
  if (r.empty() || r.size() > k_max_random || !std::all_of(r.begin(), r.end(), is_alnum)) {
    return fail(ErrorKind::usage, "--random must be 1-64 letters and digits");
  }
  return r;
}

std::string fresh_random() {
  static constexpr std::string_view k_chars =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::random_device device;
  std::uniform_int_distribution<std::size_t> pick(0, k_chars.size() - 1);
  std::string out;
  for (std::size_t i = 0; i < k_random_length; ++i) {
    out += k_chars[pick(device)];
  }
  return out;
}

// The secret of this device and where it came from, for the `signed_with` field.
struct SecretSource {
  std::string product_key;
  std::string secret;
  std::string from;
};

std::string device_secret_ways() {
  return "give --device-secret-file FILE (or --device-secret-file - to read it from stdin), or "
         "import the device's triplet into the factory ledger with `iotfleet pool import FILE` "
         "(the ledger is --ledger FILE, IOTFLEET_LEDGER or the config's ledger); the secret is "
         "never taken from the command line";
}

std::string product_secret_ways() {
  return "give --product-secret-file FILE (or --product-secret-file - to read it from stdin), set "
         "IOTFLEET_PRODUCT_SECRET or the config's product_secret_file (with a ProductKey), or "
         "import the product's triplet of this DeviceName into the factory ledger with "
         "`iotfleet pool import --scheme product FILE` (the ledger is --ledger FILE, "
         "IOTFLEET_LEDGER or the config's ledger); the secret is never taken from the command "
         "line";
}

// The record of this DeviceName in the configured ledger; every failure names all the ways to
// give the secret. The ledger is only read: a missing one is not created.
Result<SecretSource> secret_from_ledger(const std::string& device_name,
                                        const std::optional<std::string>& product_key,
                                        core::Scheme want,
                                        const cloud::Settings& settings) {
  const bool dynamic = want == core::Scheme::product;
  const std::string what = dynamic ? "ProductSecret" : "DeviceSecret";
  const std::string ways = dynamic ? product_secret_ways() : device_secret_ways();
  const std::string device = (product_key ? *product_key + "/" : std::string()) + device_name;
  const auto path = settings.value(cloud::key::ledger);
  const auto shown = path ? store::display_location(*path) : std::string("(none configured)");
  if (!path || !store::ledger_may_exist(*path)) {
    return fail(ErrorKind::usage,
                "no " + what + " for " + device + ": no --" + (dynamic ? "product" : "device") +
                    "-secret-file and no ledger at " + shown + ": " + ways);
  }
  // Its errors name the ledger (masked) already.
  auto ledger = IOT_TRY(store::open_ledger(*path, store::LedgerOptions(store::OpenMode::read)));
  auto found = IOT_TRY_CTX((ledger)->find(device_name, product_key), "ledger " + shown);
  if (found.empty()) {
    return fail(ErrorKind::usage,
                "no " + what + " for " + device + ": DeviceName " + device_name +
                    (product_key ? " of ProductKey " + *product_key : std::string()) +
                    " is not in the ledger " + shown + ": " + ways);
  }
  if (found.size() > 1) {
    return fail(ErrorKind::usage,
                "DeviceName " + device_name + " is in " + std::to_string(found.size()) +
                    " products in the ledger " + shown + ": add --product-key PK");
  }
  const auto& record = found.front();
  if (record.scheme != want) {
    if (dynamic) {
      return fail(ErrorKind::usage,
                  record.product_key + "/" + device_name +
                      " is a one-device-one-secret triplet in the ledger (it holds a "
                      "DeviceSecret, not the ProductSecret): drop --dynamic to get its "
                      "connection credentials, or " +
                      ways);
    }
    return fail(ErrorKind::usage,
                record.product_key + "/" + device_name +
                    " is a one-type-one-secret triplet in the ledger (it holds the "
                    "ProductSecret): get the registration credentials with --dynamic "
                    "register|regnwl; once registered, " +
                    ways);
  }
  return SecretSource{record.product_key,
                      record.secret,
                      what + " from the ledger " + shown + " (" +
                          std::string(store::to_string(record.state)) + ")"};
}

// A duration given in half seconds: whole seconds when it is even, else x.5.
core::Cell half_seconds(std::int64_t halves) {
  if (halves % 2 == 0) {
    return halves / 2;
  }
  return static_cast<double>(halves) / 2.0;
}

std::string half_seconds_text(std::int64_t halves) {
  return std::to_string(halves / 2) + (halves % 2 == 0 ? "" : ".5");
}

Status check_keepalive(std::int64_t keepalive, Context& ctx) {
  namespace ka = core::keepalive;
  const std::string k = std::to_string(keepalive);
  const std::string advice =
      std::to_string(ka::advised_s) + " s is recommended on cellular (seed FAQ §5)";
  if (keepalive < ka::min_s || keepalive > ka::max_s) {
    return fail(ErrorKind::usage,
                "--keepalive " + k +
                    ": the platform refuses a CONNECT whose keepalive is outside " +
                    std::to_string(ka::min_s) + "-" + std::to_string(ka::max_s) + " s; " + advice);
  }
  if (keepalive < ka::advised_min_s) {
    ctx.output->warn("--keepalive " + k + " s is below " + std::to_string(ka::advised_min_s) +
                     " s: on a slow uplink a packet can take longer than 1.5 x keepalive (" +
                     half_seconds_text(keepalive * 3) + " s) and the server drops the device; " +
                     advice);
  } else if (keepalive > ka::advised_max_s) {
    ctx.output->warn("--keepalive " + k + " s is above " + std::to_string(ka::advised_max_s) +
                     " s: base stations close idle connections after about 4 minutes, so the "
                     "device can lose its connection before its next PINGREQ; " +
                     advice);
  }
  return {};
}

// ---- run_creds_mqtt, step by step: check -> resolve -> compute -> table ----

// What the options say once checked, before any file or setting is read.
struct MqttRequest {
  cloud::SignMethod method{};
  std::optional<cloud::DynamicRegisterMode> dynamic;
  std::optional<std::uint64_t> timestamp;
  std::string random; // --dynamic: the signed random
};

Result<MqttRequest> check_mqtt_options(const CredsMqttOptions& opts, Context& ctx) {
  MqttRequest r;
  IOT_TRY(core::validate_device_name(opts.device_name));
  const auto method = cloud::parse_sign_method(opts.sign_method);
  if (!method) {
    return fail(ErrorKind::usage,
                "--sign-method " + opts.sign_method + ": use hmacsha256, hmacsha1 or hmacmd5");
  }
  r.method = *method;
  if (opts.secure_mode != 2 && opts.secure_mode != 3) {
    return fail(ErrorKind::usage,
                "--secure-mode " + std::to_string(opts.secure_mode) +
                    ": use 2 (TLS) or 3 (TCP, no TLS)");
  }
  if (opts.dynamic) {
    r.dynamic = cloud::parse_dynamic_register_mode(*opts.dynamic);
    if (!r.dynamic) {
      return fail(ErrorKind::usage,
                  "--dynamic " + *opts.dynamic +
                      ": use register (pre-registered DeviceName) or regnwl (without "
                      "pre-registration)");
    }
    if (opts.secure_mode != 2) {
      return fail(ErrorKind::usage,
                  "--dynamic: dynamic registration over MQTT is TLS only: drop --secure-mode 3");
    }
    if (opts.timestamp) {
      return fail(ErrorKind::usage,
                  "--dynamic: the registration connection signs a random, not a timestamp: drop "
                  "--timestamp");
    }
    if (opts.device_secret_file) {
      return fail(ErrorKind::usage,
                  "--dynamic signs with the ProductSecret: give --product-secret-file instead of "
                  "--device-secret-file");
    }
    r.random =
        IOT_TRY(opts.random ? check_random(*opts.random) : Result<std::string>(fresh_random()));
  } else {
    if (opts.product_secret_file) {
      return fail(ErrorKind::usage,
                  "--product-secret-file is for --dynamic register|regnwl; a connection is "
                  "signed with the DeviceSecret (--device-secret-file)");
    }
    if (opts.random) {
      return fail(ErrorKind::usage, "--random is for --dynamic register|regnwl");
    }
  }
  if (opts.timestamp) {
    r.timestamp = IOT_TRY(parse_timestamp(*opts.timestamp));
  }
  if (opts.client_id) {
    IOT_TRY(check_client_id(*opts.client_id));
  }
  IOT_TRY(check_keepalive(opts.keepalive, ctx));
  return r;
}

// The instance id (Enterprise Edition) and the ProductKey: the options, else the settings.
struct MqttTarget {
  std::string instance_id;
  std::optional<std::string> product_key;
};

Result<MqttTarget> resolve_target(const CredsMqttOptions& opts, const cloud::Settings& settings) {
  MqttTarget t;
  if (opts.instance_id) {
    IOT_TRY(check_instance_id(*opts.instance_id, "--instance-id"));
    t.instance_id = *opts.instance_id;
  } else if (auto id = settings.value(cloud::key::iot_instance_id); id && !id->empty()) {
    IOT_TRY(check_instance_id(*id, "the configured iot_instance_id"));
    t.instance_id = *id;
  }
  t.product_key = opts.product_key;
  if (!t.product_key) {
    if (auto pk = settings.value(cloud::key::product_key); pk && !pk->empty()) {
      t.product_key = *pk;
    }
  }
  if (t.product_key) {
    IOT_TRY(core::validate_product_key(*t.product_key));
  }
  return t;
}

// The secret that signs: a file or stdin, the configured ProductSecret (--dynamic), the ledger.
Result<SecretSource> resolve_secret(const CredsMqttOptions& opts,
                                    const MqttRequest& request,
                                    const std::optional<std::string>& product_key,
                                    const cloud::Settings& settings,
                                    Context& ctx) {
  const bool dynamic = request.dynamic.has_value();
  if (opts.given_secret && !dynamic) {
    if (!product_key) {
      return fail(ErrorKind::usage,
                  "no ProductKey: give --product-key PK or set product_key in the config (" +
                      opts.given_secret->from + " has none)");
    }
    IOT_TRY_CTX(core::validate_device_secret(opts.given_secret->secret), opts.given_secret->from);
    return SecretSource{*product_key, opts.given_secret->secret, opts.given_secret->from};
  }
  const auto file = dynamic ? opts.product_secret_file : opts.device_secret_file;
  if (file) {
    if (!product_key) {
      return fail(ErrorKind::usage,
                  "no ProductKey: give --product-key PK or set product_key in the config (with "
                  "a secret file the ledger is not read)");
    }
    const std::string what = dynamic ? "ProductSecret" : "DeviceSecret";
    auto secret = IOT_TRY(read_secret_input(*file, what, ctx));
    IOT_TRY_CTX(dynamic ? core::validate_product_secret(secret)
                        : core::validate_device_secret(secret),
                what + " from " + (*file == "-" ? "stdin" : *file));
    return SecretSource{
        *product_key, secret, what + " from " + (*file == "-" ? "stdin" : "file " + *file)};
  }
  if (const auto* broken = settings.find(cloud::key::product_secret);
      dynamic && product_key && broken && broken->problem) {
    return fail(*broken->problem);
  }
  if (const auto* configured = settings.find(cloud::key::product_secret);
      dynamic && product_key && configured && configured->value) {
    IOT_TRY_CTX(core::validate_product_secret(*configured->value),
                "ProductSecret from " + configured->source);
    return SecretSource{
        *product_key, *configured->value, "ProductSecret from " + configured->source};
  }
  return secret_from_ledger(opts.device_name,
                            product_key,
                            dynamic ? core::Scheme::product : core::Scheme::device,
                            settings);
}

cloud::MqttCredentials compute_credentials(const CredsMqttOptions& opts,
                                           const MqttRequest& request,
                                           const SecretSource& source,
                                           const std::string& instance_id,
                                           Context& ctx) {
  if (!request.dynamic) {
    cloud::MqttCredentialInput in;
    in.product_key = source.product_key;
    in.device_name = opts.device_name;
    in.device_secret = source.secret;
    in.client_id = opts.client_id.value_or("");
    in.timestamp_ms = request.timestamp;
    in.sign_method = request.method;
    in.secure_mode = opts.secure_mode;
    return cloud::mqtt_credentials(in);
  }
  cloud::MqttDynamicRegisterInput in;
  in.product_key = source.product_key;
  in.device_name = opts.device_name;
  in.product_secret = source.secret;
  in.random = request.random;
  in.client_id = opts.client_id.value_or("");
  in.sign_method = request.method;
  in.mode = *request.dynamic;
  in.iot_instance_id = instance_id;
  ctx.output->info(
      *request.dynamic == cloud::DynamicRegisterMode::preregistered
          ? "after CONNECT the platform publishes {productKey, deviceName, deviceSecret} on "
            "/ext/register: store the DeviceSecret, then connect "
            "with `iotfleet creds mqtt " +
                opts.device_name + " --device-secret-file F`"
          : "after CONNECT the platform publishes {clientId, productKey, deviceName, "
            "deviceToken} on /ext/regnwl: connect with clientId "
            "\"<clientId>|securemode=-2,authType=connwl|\", the same username and the "
            "deviceToken as password");
  return cloud::mqtt_dynamic_register_credentials(in);
}

core::Table credentials_table(const CredsMqttOptions& opts, const MqttConnection& c) {
  const auto& endpoint = c.endpoint;
  const auto& creds = c.credentials;
  core::Table t;
  t.single = true;
  t.columns = {"host",
               "port",
               "tls",
               "client_id",
               "username",
               "password",
               "keepalive",
               "server_drop_after_s",
               "server_drop_latest_s",
               "product_key",
               "device_name",
               "sign_content",
               "signed_with"};
  t.add_row({endpoint.host,
             static_cast<std::int64_t>(endpoint.port),
             opts.secure_mode == 2,
             creds.client_id,
             creds.username,
             core::Secret{creds.password},
             opts.keepalive,
             half_seconds(opts.keepalive * 3),
             half_seconds(opts.keepalive * 3 + 2 * core::keepalive::server_check_s),
             c.product_key,
             opts.device_name,
             creds.sign_content,
             c.signed_with});
  return t;
}

} // namespace

Result<MqttConnection> resolve_mqtt_connection(const CredsMqttOptions& opts, Context& ctx) {
  // Everything that needs no file or setting first, so a typo fails before any secret is read.
  const auto request = IOT_TRY(check_mqtt_options(opts, ctx));
  const auto settings = IOT_TRY(load_settings(ctx));
  const auto target = IOT_TRY(resolve_target(opts, settings));
  auto source = IOT_TRY(resolve_secret(opts, request, target.product_key, settings, ctx));
  auto creds = compute_credentials(opts, request, source, target.instance_id, ctx);
  const auto region = settings.value(cloud::key::region).value_or("cn-shanghai");
  if (const auto* r = settings.find(cloud::key::region); r && r->problem) {
    // The host is the only thing the region changes here: say that it may be the wrong one.
    ctx.output->warn("the MQTT host uses region " + region + " (" + r->source +
                     "), which may not be the one meant: " + r->problem->message);
  }
  auto endpoint = cloud::mqtt_endpoint(region, source.product_key, target.instance_id);
  return MqttConnection{std::move(endpoint),
                        std::move(creds),
                        std::move(source.product_key),
                        std::move(source.from),
                        extra_ca_file(settings)};
}

Result<core::Table> run_creds_mqtt(const CredsMqttOptions& opts, Context& ctx) {
  const auto c = IOT_TRY(resolve_mqtt_connection(opts, ctx));
  return credentials_table(opts, c);
}

void add_mqtt_connection_options(CLI::App* cmd,
                                 CredsMqttOptions& opts,
                                 DeviceNamesInput& device,
                                 Context& ctx,
                                 bool name_required) {
  add_device_names(cmd, device, {DeviceArity::one, false, name_required, "DeviceName"});
  add_product_key(cmd, opts.product_key, "the config's product_key, else the ledger's record");
  cmd->add_option("--device-secret-file",
                  opts.device_secret_file,
                  "File holding the DeviceSecret, or - for stdin (default: the factory ledger)")
      ->option_text(std::string(value_name::file_or_stdin));
  cmd->add_option("--secure-mode", opts.secure_mode, "2 = TLS (default), 3 = TCP without TLS")
      ->check(CLI::IsMember({2, 3}))
      ->option_text("2|3");
  cmd->add_option("--sign-method", opts.sign_method, "hmacsha256 (default), hmacsha1 or hmacmd5")
      ->check(CLI::IsMember({"hmacsha256", "hmacsha1", "hmacmd5"}))
      ->option_text("hmacsha256|hmacsha1|hmacmd5");
  cmd->add_option(
         "--timestamp", opts.timestamp, "Sign this timestamp (epoch ms) or `now` (default: none)")
      ->option_text("MS|now");
  cmd->add_option(
         "--client-id", opts.client_id, "The device's client id, ≤64 chars (default PK.DN)")
      ->option_text("ID");
  cmd->add_option("--instance-id",
                  opts.instance_id,
                  "IoT instance id: host ID.mqtt.iothub.aliyuncs.com (default: config "
                  "iot_instance_id; none: the legacy PK.iot-as-mqtt.REGION host)")
      ->option_text("ID");
  add_duration(
      cmd,
      "--keepalive",
      [&opts](std::chrono::milliseconds d) {
        opts.keepalive = std::chrono::duration_cast<std::chrono::seconds>(d).count();
      },
      std::chrono::seconds(opts.keepalive),
      "MQTT keepalive",
      {.bare_unit = std::chrono::seconds(1),
       .max = std::chrono::hours(24),
       .granularity = std::chrono::seconds(1)},
      ctx);
}

void register_creds(CLI::App& app, Context& ctx) {
  auto* creds = app.add_subcommand("creds",
                                   "Device credentials: the MQTT connection computed locally "
                                   "(creds mqtt), tried on the endpoint (creds probe), "
                                   "enrollment keys (creds enrollment-key)");
  creds->require_subcommand(0, 1);

  auto opts = std::make_shared<CredsMqttOptions>();
  auto* mqtt = creds->add_subcommand(
      "mqtt",
      "MQTT host, port, clientId, username and password of a device (or of its dynamic "
      "registration), from the ledger or a secret file");
  auto device = std::make_shared<DeviceNamesInput>();
  add_mqtt_connection_options(mqtt, *opts, *device, ctx);
  mqtt->add_option("--dynamic",
                   opts->dynamic,
                   "Dynamic registration connection instead: register (pre-registered) or "
                   "regnwl (no pre-registration), signed with the ProductSecret")
      ->check(CLI::IsMember({"register", "regnwl"}))
      ->option_text("register|regnwl");
  mqtt->add_option("--product-secret-file",
                   opts->product_secret_file,
                   "With --dynamic: file holding the ProductSecret, or - for stdin (default: "
                   "the ledger's --scheme product triplet)")
      ->option_text(std::string(value_name::file_or_stdin));
  mqtt->add_option(
          "--random", opts->random, "With --dynamic: the random to sign (default: a fresh one)")
      ->option_text("TEXT");
  mqtt->footer(
      "Password = hex HMAC(DeviceSecret, \"clientId\"+ID+\"deviceName\"+DN+\"productKey\"+PK"
      "[+\"timestamp\"+MS]); the clientId is ID|securemode=2|3,signmethod=M[,timestamp=MS]| "
      "and the username DN&PK. Port 1883 with or without TLS (the legacy host also takes TLS on "
      "443). --dynamic: clientId ID|securemode=-2,authType=register|regnwl,random=R,"
      "signmethod=M,instanceId=I| (legacy host: securemode=2, no instanceId), password = hex "
      "HMAC(ProductSecret, \"deviceName\"+DN+\"productKey\"+PK+\"random\"+R), TLS only. "
      "Keepalive: the platform refuses one outside 30s-20m (exit 2); a warning outside 1m-4m, 2m "
      "is recommended on cellular. The server drops a silent device after keepalive x "
      "1.5 (server_drop_after_s), checked every 30 s (server_drop_latest_s). The password is "
      "masked unless --show-secrets; secrets are never taken from the command line.");
  add_exit_codes(mqtt,
                 {{0, "the credentials were computed"},
                  {2, "bad options, a keepalive the platform refuses, no secret found"},
                  {130, "interrupted"}});
  mqtt->callback([&ctx, opts, device] {
    opts->device_name = one_device_name(*device, ctx);
    ctx.output->emit(value_or_throw(run_creds_mqtt(*opts, ctx)));
  });
  register_creds_probe(creds, ctx);
  register_creds_enrollment_key(creds, ctx);
}

} // namespace iot::commands
