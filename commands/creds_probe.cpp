// SPDX-License-Identifier: MIT
// iotfleet creds probe: ask the MQTT endpoint itself whether a DeviceSecret is the cloud's. The
// credentials are the ones `creds mqtt` computes; the connection is one CONNECT, read the
// CONNACK, DISCONNECT (cloud/mqtt_probe). Because the endpoint keeps one connection per device,
// a probe knocks a connected device off ("kicked by the same device", seed FAQ §6): the cloud is
// asked for the device's state first and an ONLINE device is refused unless --force.
#include "cloud/mqtt_probe.hpp"
#include "commands/cloud_access.hpp"
#include "commands/common_options.hpp"
#include "commands/creds.hpp"
#include "commands/module_session.hpp"
#include "core/host_port.hpp"

namespace iot::commands {
namespace {

struct CredsProbeOptions {
  CredsMqttOptions mqtt;
  ModuleConnectOptions connect;             // --port: the triplet from the module on it
  std::optional<std::string> layout;        // secret | triplet (default: the driver's)
  std::optional<std::string> mqtt_endpoint; // HOST[:PORT]; default: the device's endpoint
  bool force = false;                       // skip the cloud's ONLINE check
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
};

// --mqtt-endpoint HOST[:PORT] (the port defaults to 1883, the device's).
Result<cloud::MqttEndpoint> parse_endpoint(const std::string& text) {
  auto parsed = IOT_TRY_CTX(core::parse_host_port(text), "--mqtt-endpoint");
  if (parsed.host.empty() || parsed.port == 0) {
    return fail(ErrorKind::usage,
                "--mqtt-endpoint " + text +
                    ": give HOST or HOST:PORT with a port 1-65535 (e.g. 127.0.0.1:8883 for a lab "
                    "broker; the port defaults to 1883)");
  }
  return cloud::MqttEndpoint{parsed.host, parsed.port.value_or(1883)};
}

// The cloud's status of the device (ONLINE, OFFLINE, UNACTIVE, DISABLE); an ONLINE or disabled
// device is refused before anything connects.
Result<std::string>
check_cloud_state(const std::string& product_key, const std::string& device_name, Context& ctx) {
  const std::string device = product_key + "/" + device_name;
  const std::string why = "creds probe asks the cloud whether " + device +
                          " is online before it connects (a probe knocks a connected device "
                          "off); give --force to skip the check";
  auto session = IOT_TRY_CTX(open_cloud(ctx), why);
  auto detail = session.api->query_device_detail(cloud::DeviceRef{product_key, device_name, {}});
  if (!detail) {
    if (cloud::has_error_code(detail.error(), "NotExistedDevice")) {
      return fail(ErrorKind::cloud,
                  device + " does not exist on the cloud, so the endpoint will refuse any "
                           "secret: check the DeviceName and the ProductKey (letter case "
                           "matters), and --instance-id / the region");
    }
    return fail(detail.error().context(why));
  }
  if (detail->status == "ONLINE") {
    return fail(ErrorKind::usage,
                device + " is ONLINE" +
                    (detail->utc_online.empty() ? "" : " (since " + detail->utc_online + ")") +
                    ": a probe with its credentials would knock the real device off and the "
                    "console would log \"kicked by the same device\" (seed FAQ §6); probe while "
                    "it is offline, or give --force if the device is yours to disconnect");
  }
  if (detail->status == "DISABLE") {
    return fail(ErrorKind::cloud,
                device + " is disabled on the cloud: the endpoint refuses a disabled device "
                         "whatever its secret, so a probe proves nothing; enable it (console or "
                         "EnableThing) and probe again");
  }
  if (detail->status == "UNACTIVE") {
    ctx.output->warn(device + " has never connected (UNACTIVE): an accepted probe is its first "
                              "connection and activates it (a one-type-one-secret device can "
                              "then no longer register dynamically)");
  }
  return detail->status;
}

std::string meaning(const cloud::MqttProbeResult& r,
                    const cloud::MqttEndpoint& endpoint,
                    const MqttConnection& c) {
  using cloud::ProbeVerdict;
  switch (r.verdict) {
  case ProbeVerdict::accepted:
    return "the cloud accepted this DeviceSecret: it holds the same one (" + c.signed_with + ")";
  case ProbeVerdict::bad_credentials:
    if (c.signed_with.starts_with("DeviceSecret from the module")) {
      return "the cloud refused the module's DeviceSecret: the module side is wrong (seed FAQ "
             "§3): burn the ledger's secret again (`pool release DN --force --reason rework` "
             "when the ledger says burned, then `provision --port P --overwrite`), or export "
             "the cloud's with `secrets export` to see which one the cloud holds";
    }
    return "the cloud refused the signature: its DeviceSecret differs from this one (" +
           c.signed_with +
           "). If this is the module's secret, the module side is wrong (seed FAQ §3: burn the "
           "ledger's secret again with provision --overwrite); if it is the ledger's or a "
           "snapshot's, the cloud side changed (re-create the device, §3.3)";
  case ProbeVerdict::refused:
    return r.connack == 2   ? "the endpoint rejected the clientId: check --client-id (≤64 "
                              "characters, letters, digits and ._-: only)"
           : r.connack == 3 ? "the endpoint is unavailable (throttled or the instance is "
                              "down): try again later"
                            : "the endpoint refused the connection for another reason than "
                              "the secret";
  case ProbeVerdict::dns:
    return endpoint.host +
           " does not resolve: the host is built from the ProductKey, which is case-sensitive "
           "(seed FAQ §4.1: a ProductKey in the wrong letter case names no host); check it, the "
           "region or --instance-id, and this network's DNS";
  case ProbeVerdict::tcp:
    return "no TCP connection to " + endpoint.host + ":" + std::to_string(endpoint.port) +
           ": the network or a firewall between here and the endpoint (nothing about the "
           "secret is known)";
  case ProbeVerdict::tls:
    return "the TLS handshake failed: the endpoint's certificate did not verify (a lab broker "
           "needs --ca-file) or something on the path intercepts TLS (nothing about the secret "
           "is known)";
  case ProbeVerdict::protocol:
    return "the endpoint closed the connection without answering the CONNECT (nothing about "
           "the secret is known)";
  case ProbeVerdict::timeout:
    return "no answer in time: the network is slow or drops packets; raise --timeout or try "
           "again (nothing about the secret is known)";
  case ProbeVerdict::interrupted:
    return "interrupted";
  }
  return {};
}

core::Cell step_ms(const cloud::MqttProbeResult& r, std::string_view name) {
  const auto* s = r.step(name);
  return s != nullptr ? core::Cell{s->ms} : core::Cell{};
}

core::Table probe_table(const CredsProbeOptions& opts,
                        const cloud::MqttProbeResult& r,
                        const cloud::MqttEndpoint& endpoint,
                        const MqttConnection& c,
                        const std::string& cloud_status) {
  core::Table t;
  t.single = true;
  t.columns = {"verdict",
               "meaning",
               "failed_step",
               "dns_ms",
               "tcp_ms",
               "tls_ms",
               "connack_ms",
               "connack",
               "detail",
               "host",
               "port",
               "tls",
               "client_id",
               "username",
               "product_key",
               "device_name",
               "cloud_status",
               "signed_with"};
  const bool failed = !r.steps.empty() && !r.steps.back().ok;
  t.add_row({std::string(cloud::to_string(r.verdict)),
             meaning(r, endpoint, c),
             failed ? core::Cell{r.steps.back().name} : core::Cell{},
             step_ms(r, "dns"),
             step_ms(r, "tcp"),
             step_ms(r, "tls"),
             step_ms(r, "connack"),
             r.connack >= 0 ? core::Cell{static_cast<std::int64_t>(r.connack)} : core::Cell{},
             r.detail,
             endpoint.host,
             static_cast<std::int64_t>(endpoint.port),
             opts.mqtt.secure_mode == 2,
             c.credentials.client_id,
             c.credentials.username,
             c.product_key,
             opts.mqtt.device_name,
             cloud_status.empty() ? core::Cell{} : core::Cell{cloud_status},
             c.signed_with});
  return t;
}

// --port: the DeviceName, ProductKey and DeviceSecret the module holds become the probe's; a
// DeviceName or ProductKey given as well must be the module's.
Status read_module_triplet(CredsProbeOptions& opts, Context& ctx) {
  const auto& port = opts.connect.port;
  if (opts.mqtt.device_secret_file) {
    return fail(ErrorKind::usage,
                "--port reads the DeviceSecret from the module: drop --device-secret-file (or "
                "--port to probe the file's secret)");
  }
  auto session = IOT_TRY(open_session(opts.connect, ctx, true, true));
  serial::Layout layout = session.driver->default_layout();
  if (opts.layout) {
    layout = IOT_TRY_CTX(serial::parse_layout(*opts.layout), "--layout");
  }
  const auto reading = IOT_TRY(read_stable(session, layout, port, ReadScope::brief));
  const auto& creds = reading.credentials;
  if (!creds || creds->device_secret.empty()) {
    return fail(ErrorKind::module,
                "the module on " + port + " holds no DeviceSecret (layout " +
                    std::string(serial::to_string(layout)) +
                    "): burn one with `iotfleet provision --port " + port +
                    "`, or try the other --layout");
  }
  if (!opts.mqtt.device_name.empty() && opts.mqtt.device_name != creds->device_name) {
    return fail(ErrorKind::usage,
                "the module on " + port + " holds DeviceName " + creds->device_name + ", not " +
                    opts.mqtt.device_name + ": drop the DeviceName to probe the module's");
  }
  if (!creds->product_key.empty()) {
    if (opts.mqtt.product_key && *opts.mqtt.product_key != creds->product_key) {
      return fail(ErrorKind::usage,
                  "the module on " + port + " holds ProductKey " + creds->product_key + ", not " +
                      *opts.mqtt.product_key + ": drop --product-key to probe the module's");
    }
    opts.mqtt.product_key = creds->product_key;
  }
  opts.mqtt.device_name = creds->device_name;
  opts.mqtt.given_secret = CredsMqttOptions::GivenSecret{creds->device_secret,
                                                         "DeviceSecret from the module on " + port};
  return {};
}

// What probe_mqtt connects with, from the computed connection; the debug line is written here, on
// the caller's thread, so the probe itself touches no Context.
cloud::MqttProbeTarget probe_target(const MqttConnection& c,
                                    const cloud::MqttEndpoint& endpoint,
                                    const CredsMqttOptions& mqtt,
                                    std::chrono::milliseconds timeout,
                                    Context& ctx) {
  cloud::MqttProbeTarget target;
  target.host = endpoint.host;
  target.port = static_cast<std::uint16_t>(endpoint.port);
  target.tls = mqtt.secure_mode == 2;
  target.ca_file = c.ca_file;
  target.client_id = c.credentials.client_id;
  target.username = c.credentials.username;
  target.password = c.credentials.password;
  target.keepalive_s = static_cast<int>(mqtt.keepalive);
  target.timeout = timeout;
  ctx.output->debug("probing " + endpoint.host + ":" + std::to_string(endpoint.port) +
                    (target.tls ? " over TLS" : " over TCP") + " as " + target.username);
  return target;
}

struct ProbeReport {
  core::Table table;
  cloud::MqttProbeResult result;
};

Result<ProbeReport> run_creds_probe(CredsProbeOptions& opts, Context& ctx) {
  std::optional<cloud::MqttEndpoint> override_endpoint;
  if (opts.mqtt_endpoint) {
    override_endpoint = IOT_TRY(parse_endpoint(*opts.mqtt_endpoint));
  }
  if (!opts.connect.port.empty()) {
    IOT_TRY(read_module_triplet(opts, ctx));
  } else if (opts.mqtt.device_name.empty()) {
    return fail(ErrorKind::usage,
                "which device? give its DeviceName, or --port P to probe the triplet the "
                "module on P holds");
  }
  const auto c = IOT_TRY(resolve_mqtt_connection(opts.mqtt, ctx));
  std::string cloud_status;
  if (opts.force) {
    ctx.output->warn("--force: the cloud is not asked whether " + opts.mqtt.device_name +
                     " is online; if it is, this probe knocks it off");
  } else {
    cloud_status = IOT_TRY(check_cloud_state(c.product_key, opts.mqtt.device_name, ctx));
  }
  const auto endpoint = override_endpoint.value_or(c.endpoint);
  auto result = cloud::probe_mqtt(probe_target(c, endpoint, opts.mqtt, opts.timeout, ctx));
  if (result.verdict == cloud::ProbeVerdict::interrupted) {
    return fail(ErrorKind::interrupted, "creds probe interrupted: nothing was changed");
  }
  auto table = probe_table(opts, result, endpoint, c, cloud_status);
  return ProbeReport{std::move(table), std::move(result)};
}

ErrorKind failure_kind(cloud::ProbeVerdict v) {
  return v == cloud::ProbeVerdict::bad_credentials ? ErrorKind::difference : ErrorKind::network;
}

} // namespace

Result<cloud::MqttProbeTarget> prepare_probe(const std::string& product_key,
                                             const std::string& device_name,
                                             const std::string& secret,
                                             const std::string& from,
                                             const std::optional<std::string>& mqtt_endpoint,
                                             Context& ctx) {
  CredsMqttOptions mqtt;
  mqtt.device_name = device_name;
  mqtt.product_key = product_key;
  mqtt.given_secret = CredsMqttOptions::GivenSecret{secret, from};
  std::optional<cloud::MqttEndpoint> override_endpoint;
  if (mqtt_endpoint) {
    override_endpoint = IOT_TRY(parse_endpoint(*mqtt_endpoint));
  }
  const auto c = IOT_TRY(resolve_mqtt_connection(mqtt, ctx));
  return probe_target(
      c, override_endpoint.value_or(c.endpoint), mqtt, CredsProbeOptions{}.timeout, ctx);
}

Result<cloud::MqttProbeResult> probe_secret(const std::string& product_key,
                                            const std::string& device_name,
                                            const std::string& secret,
                                            const std::string& from,
                                            const std::optional<std::string>& mqtt_endpoint,
                                            Context& ctx) {
  auto result = cloud::probe_mqtt(
      IOT_TRY(prepare_probe(product_key, device_name, secret, from, mqtt_endpoint, ctx)));
  if (result.verdict == cloud::ProbeVerdict::interrupted) {
    return fail(ErrorKind::interrupted, "interrupted while probing the MQTT endpoint");
  }
  return result;
}

void register_creds_probe(CLI::App* creds, Context& ctx) {
  auto opts = std::make_shared<CredsProbeOptions>();
  auto* cmd = creds->add_subcommand(
      "probe",
      "Ask the device's MQTT endpoint whether a DeviceSecret is the cloud's: one CONNECT, the "
      "CONNACK, DISCONNECT");
  auto device = std::make_shared<DeviceNamesInput>();
  add_mqtt_connection_options(cmd, opts->mqtt, *device, ctx, false);
  add_connection_options(cmd, opts->connect, &opts->layout, PortUse::optional_one);
  cmd->add_option("--mqtt-endpoint",
                  opts->mqtt_endpoint,
                  "Connect here instead of the device's endpoint (a lab broker); the "
                  "credentials stay the device's")
      ->option_text("HOST[:PORT]");
  cmd->add_flag("--force",
                opts->force,
                "Do not ask the cloud whether the device is online first (a connected device "
                "is knocked off)");
  add_duration(cmd,
               "--timeout",
               opts->timeout,
               "The whole attempt: DNS, TCP, TLS and CONNACK",
               {.bare_unit = std::chrono::seconds(1),
                .min = std::chrono::milliseconds(100),
                .max = std::chrono::minutes(10)},
               ctx);
  cmd->footer(
      "The credentials are `creds mqtt`'s (the secret from the ledger, a file or stdin; never "
      "the command line), or with --port the triplet the module holds (its DeviceName and "
      "ProductKey; --product-key when the layout stores none). Verdicts: accepted (the cloud holds "
      "this secret), bad-credentials "
      "(CONNACK 4 or 5: the cloud's secret differs; seed FAQ §3 without a snapshot), refused "
      "(CONNACK 1-3), dns (check the ProductKey's letter case, §4.1), tcp, tls (the "
      "certificate: --ca-file for a lab broker), protocol, timeout; with the time each step "
      "took. The endpoint keeps one connection per device: an ONLINE device (asked with "
      "QueryDeviceDetail, which needs an AccessKey) is refused unless --force, a disabled or "
      "unknown device is refused. TLS verifies the certificate and the host name against the "
      "system CAs plus --ca-file.");
  add_exit_codes(cmd,
                 {{0, "accepted: the cloud holds this DeviceSecret"},
                  {2, "bad options, no secret found, the device is ONLINE (without --force)"},
                  {3, "--port: the module could not be read or holds no DeviceSecret"},
                  {4, "dns, tcp, tls, protocol, timeout or refused; the cloud check failed"},
                  {6, "bad-credentials: the cloud's DeviceSecret differs"},
                  {130, "interrupted"}});
  cmd->callback([&ctx, opts, device] {
    const auto names = value_or_throw(
        resolve_device_names(*device, {DeviceArity::one, false, false, "DeviceName"}, ctx));
    opts->mqtt.device_name = names.empty() ? std::string() : names.front();
    auto report = value_or_throw(run_creds_probe(*opts, ctx));
    ctx.output->emit(report.table);
    const auto& r = report.result;
    if (r.verdict != cloud::ProbeVerdict::accepted) {
      throw CommandFailure(Error{failure_kind(r.verdict),
                                 "probe of " + opts->mqtt.device_name + ": " +
                                     std::string(cloud::to_string(r.verdict)) +
                                     (r.detail.empty() ? "" : " (" + r.detail + ")")});
    }
  });
}

} // namespace iot::commands
