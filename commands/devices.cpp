// SPDX-License-Identifier: MIT
#include "commands/devices.hpp"

#include "commands/cloud_access.hpp"
#include "commands/record_file.hpp"
#include "core/csv.hpp"
#include "core/duration.hpp"
#include "core/interrupt.hpp"
#include "core/text.hpp"
#include "core/validate.hpp"
#include "store/atomic_file.hpp"

#include <fstream>
#include <map>
#include <thread>

namespace iot::commands {
namespace {

using Clock = std::chrono::steady_clock;

core::Cell opt_text(const std::string& text) {
  return text.empty() ? core::Cell{} : core::Cell{text};
}
core::Cell secret_or_none(const std::string& text) {
  return text.empty() ? core::Cell{} : core::Cell{core::Secret{text}};
}

const std::map<std::string, int, std::less<>> k_status_codes = {
    {"UNACTIVE", 0}, {"ONLINE", 1}, {"OFFLINE", 3}, {"DISABLE", 8}};

core::Table triplet_table(const std::string& product_key,
                          const std::vector<cloud::DeviceInfo>& devices) {
  core::Table t;
  t.columns = {"product_key", "device_name", "device_secret", "iot_id"};
  for (const auto& d : devices) {
    t.add_row({product_key, d.device_name, secret_or_none(d.device_secret), opt_text(d.iot_id)});
  }
  return t;
}

// Polls QueryBatchRegisterDeviceStatus until the status leaves `running`.
Result<cloud::BatchRegisterStatus> wait_apply(cloud::IotApi& api,
                                              const std::string& product_key,
                                              std::int64_t apply_id,
                                              std::string_view running,
                                              const DevicesBatchRegisterOptions& opts) {
  const auto deadline = Clock::now() + opts.timeout;
  for (;;) {
    auto status = api.query_batch_register_device_status(product_key, apply_id);
    if (!status) {
      return status;
    }
    if (status->status != running) {
      return status;
    }
    if (core::interrupt_requested()) {
      return fail(ErrorKind::interrupted,
                  "interrupted while apply " + std::to_string(apply_id) + " was in " +
                      std::string(running));
    }
    if (Clock::now() >= deadline) {
      return fail(ErrorKind::cloud,
                  "apply " + std::to_string(apply_id) + " is still " + std::string(running) +
                      " after " + core::format_duration(opts.timeout) +
                      ": run again later with a longer --timeout");
    }
    if (!core::sleep_unless_interrupted(opts.poll)) {
      return fail(ErrorKind::interrupted,
                  "interrupted while apply " + std::to_string(apply_id) + " was in " +
                      std::string(running));
    }
  }
}

// The names the apply refused (the platform says which, not why: malformed, repeated in the list
// or registered already).
std::string invalid_summary(const cloud::BatchRegisterStatus& s) {
  std::string out;
  std::size_t shown = 0;
  for (const auto& name : s.invalid) {
    if (shown++ == 10) {
      out += "; …";
      break;
    }
    out += (out.empty() ? "" : "; ") + name;
  }
  return out.empty() ? "no names listed" : "refused: " + out;
}

// What every devices command starts with: the names checked before any call, the cloud client,
// the ProductKey.
struct Scope {
  CloudSession cloud;
  std::string product_key;
  std::vector<std::string> names;
};

Result<Scope> open_scope(const DeviceNamesInput* devices,
                         const DeviceNamesSpec& spec,
                         const std::optional<std::string>& product_key,
                         Context& ctx) {
  Scope scope;
  if (devices != nullptr) {
    scope.names = IOT_TRY(resolve_device_names(*devices, spec, ctx));
  }
  scope.cloud = IOT_TRY(open_cloud(ctx));
  scope.product_key = IOT_TRY(product_key_or_config(product_key, scope.cloud.settings));
  return scope;
}

const DeviceNamesSpec k_one_device{DeviceArity::one, false, true, "DeviceName"};
const DeviceNamesSpec k_devices{DeviceArity::many, true, true, "DeviceName"};

const std::vector<std::string> k_triplet_columns = {"ProductKey", "DeviceName", "DeviceSecret"};

// What exists in the cloud when the triplets file could not be written, and how to get the
// secrets anyway.
Error unsaved_secrets(const Error& error,
                      const std::string& product_key,
                      std::size_t created,
                      const std::string& what,
                      const std::string& out_file) {
  return error.context(std::to_string(created) + " devices of " + product_key +
                       " were registered in the cloud (" + what + ") but " + out_file +
                       " was not written; their secrets are in the cloud: `iotfleet secrets "
                       "export --product-key " +
                       product_key +
                       " -O FILE` fetches them (re-registering the names fails: "
                       "they exist now)");
}

} // namespace

std::string tags_text(const std::vector<cloud::DeviceTag>& tags) {
  std::string out;
  for (const auto& t : tags) {
    out += (out.empty() ? "" : ", ") + t.key + "=" + t.value;
  }
  return out;
}

std::string groups_text(const std::vector<cloud::DeviceGroup>& groups) {
  std::string out;
  for (const auto& g : groups) {
    out += (out.empty() ? "" : ", ") + g.name + (g.dynamic() ? " (dynamic)" : "");
  }
  return out;
}

Result<core::Table> run_devices_list(const DevicesListOptions& opts, Context& ctx) {
  auto scope = IOT_TRY(open_scope(nullptr, k_devices, opts.product_key, ctx));
  auto* cloud = &scope.cloud;
  auto* pk = &scope.product_key;
  core::Table t;
  t.columns = {"product_key", "device_name", "status", "iot_id", "utc_create", "device_secret"};
  const auto add = [&](const std::vector<cloud::DeviceInfo>& devices, const std::string& status) {
    for (const auto& d : devices) {
      if (opts.limit != 0 && t.rows.size() >= opts.limit) {
        return;
      }
      t.add_row({*pk,
                 d.device_name,
                 d.status.empty() ? status : d.status,
                 opt_text(d.iot_id),
                 opt_text(d.utc_create),
                 secret_or_none(d.device_secret)});
    }
  };
  auto progress = ctx.output->progress("devices " + *pk);
  auto& api = *cloud->api;
  if (opts.status) {
    const int code = k_status_codes.at(*opts.status);
    for (int page = 1;; ++page) {
      auto result =
          IOT_TRY(api.query_device_by_status(*pk, code, cloud::k_query_device_max_page_size, page));
      add(result.devices, *opts.status);
      progress->set_total(static_cast<std::uint64_t>(result.total));
      progress->advance(result.devices.size());
      if (result.devices.empty() || page >= result.page_count ||
          (opts.limit != 0 && t.rows.size() >= opts.limit) || core::interrupt_requested()) {
        break;
      }
    }
  } else {
    cloud::QueryDeviceRequest request{*pk, cloud::k_query_device_max_page_size, 1, {}};
    for (;;) {
      auto page = IOT_TRY(api.query_device(request));
      add(page.devices, "");
      progress->set_total(static_cast<std::uint64_t>(page.total));
      progress->advance(page.devices.size());
      if (page.next_token.empty() || (opts.limit != 0 && t.rows.size() >= opts.limit) ||
          core::interrupt_requested()) {
        break;
      }
      ++request.current_page;
      request.next_token = page.next_token;
    }
  }
  progress->finish();
  if (core::interrupt_requested()) {
    return fail(ErrorKind::interrupted, "devices list interrupted");
  }
  return t;
}

Result<core::Table> run_devices_show(const DevicesShowOptions& opts, Context& ctx) {
  auto scope = IOT_TRY(open_scope(&opts.device, k_one_device, opts.product_key, ctx));
  const auto d =
      IOT_TRY(scope.cloud.api->query_device_detail({scope.product_key, scope.names.front(), {}}));
  const auto tags = IOT_TRY_CTX(
      scope.cloud.api->query_device_prop({scope.product_key, d.device_name, d.iot_id}), "its tags");
  const auto groups =
      IOT_TRY_CTX(scope.cloud.api->query_device_group_by_device(scope.product_key, d.device_name),
                  "its groups");
  const std::string tag_text = tags_text(tags);
  const std::string group_text = groups_text(groups);
  core::Table t;
  t.single = true;
  t.columns = {"product_key",
               "product_name",
               "device_name",
               "status",
               "iot_id",
               "nickname",
               "firmware",
               "ip_address",
               "created",
               "activated",
               "last_online",
               "tags",
               "groups",
               "device_secret"};
  t.add_row({d.product_key,
             opt_text(d.product_name),
             d.device_name,
             opt_text(d.status),
             opt_text(d.iot_id),
             opt_text(d.nickname),
             opt_text(d.firmware_version),
             opt_text(d.ip_address),
             opt_text(d.utc_create),
             opt_text(d.utc_active),
             opt_text(d.utc_online),
             opt_text(tag_text),
             opt_text(group_text),
             secret_or_none(d.device_secret)});
  return t;
}

Result<core::Table> run_devices_register(const DevicesRegisterOptions& opts, Context& ctx) {
  auto scope = IOT_TRY(open_scope(&opts.devices, k_devices, opts.product_key, ctx));
  const auto& pk = scope.product_key;
  // Every local precondition before the first cloud write: the triplets file can be created.
  std::optional<RecordFile> out;
  if (opts.out_file) {
    out = IOT_TRY(RecordFile::create(*opts.out_file, opts.format, k_triplet_columns));
  }
  std::vector<cloud::DeviceInfo> registered;
  std::optional<Error> failure;
  for (const auto& name : scope.names) {
    if (core::interrupt_requested()) {
      failure = Error{ErrorKind::interrupted, "interrupted before " + name};
      break;
    }
    auto d = scope.cloud.api->register_device(pk, name);
    if (!d) {
      ctx.output->warn(name + ": " + d.error().message);
      failure = d.error();
      continue;
    }
    registered.push_back(std::move(*d));
  }
  if (out && !registered.empty()) {
    std::string names;
    for (const auto& d : registered) {
      names += (names.empty() ? "" : " ") + d.device_name;
    }
    const auto saved = [&]() -> Status {
      for (const auto& d : registered) {
        IOT_TRY(out->write({pk, d.device_name, d.device_secret}));
      }
      return out->commit();
    }();
    if (!saved) {
      return fail(unsaved_secrets(saved.error(), pk, registered.size(), names, *opts.out_file));
    }
    ctx.output->info("triplets written to " + *opts.out_file + " (0600): `iotfleet pool import " +
                     *opts.out_file + "` loads them");
  }
  if (failure) {
    if (registered.empty()) {
      return fail(*failure);
    }
    ctx.output->emit(triplet_table(pk, registered));
    return fail(failure->kind == ErrorKind::interrupted ? ErrorKind::interrupted
                                                        : ErrorKind::partial,
                std::to_string(scope.names.size() - registered.size()) + " of " +
                    std::to_string(scope.names.size()) + " devices were not registered");
  }
  return triplet_table(pk, registered);
}

Result<core::Table> run_devices_batch_register(const DevicesBatchRegisterOptions& opts,
                                               Context& ctx) {
  if (!opts.out_file) {
    return fail(ErrorKind::usage,
                "-O FILE is required: the new devices' secrets are written there for `iotfleet "
                "pool import`");
  }
  auto scope = IOT_TRY(open_scope(&opts.devices, k_devices, opts.product_key, ctx));
  const auto& names = scope.names;
  const auto& pk = scope.product_key;
  auto& api = *scope.cloud.api;
  // Every local precondition before the first cloud write: the triplets file can be created.
  auto out = IOT_TRY(RecordFile::create(*opts.out_file, opts.format, k_triplet_columns));
  auto progress = ctx.output->progress("batch-register " + pk);
  progress->set_total(names.size());
  std::vector<cloud::DeviceInfo> devices;
  std::vector<std::string> apply_ids;
  std::size_t created = 0; // devices the applies created so far
  // After the first apply created devices, every failure says what exists and how to recover.
  const auto after_creation = [&](Error error) {
    if (created == 0) {
      return error;
    }
    std::string ids;
    for (const auto& id : apply_ids) {
      ids += (ids.empty() ? "" : ", ") + id;
    }
    return unsaved_secrets(error, pk, created, "apply " + ids, *opts.out_file);
  };
  for (std::size_t start = 0; start < names.size(); start += cloud::k_check_names_max) {
    const auto end = std::min(names.size(), start + cloud::k_check_names_max);
    std::vector<cloud::DeviceNameEntry> chunk;
    for (auto i = start; i < end; ++i) {
      chunk.push_back({names[i], {}});
    }
    const auto step = [&]() -> Status {
      const auto check = IOT_TRY(api.batch_check_device_names(pk, chunk));
      if (!check.invalid_device_names.empty()) {
        return fail(ErrorKind::usage,
                    "the platform refused " + std::to_string(check.invalid_device_names.size()) +
                        " names, e.g. " + check.invalid_device_names.front() +
                        ": nothing registered from apply " + std::to_string(check.apply_id) +
                        " — fix the list");
      }
      const auto apply_id = check.apply_id;
      apply_ids.push_back(std::to_string(apply_id));
      progress->set_detail("apply " + std::to_string(apply_id) + ": checking names");
      const auto checked = IOT_TRY(wait_apply(api, pk, apply_id, "CHECK", opts));
      if (checked.status != "CHECK_SUCCESS") {
        return fail(ErrorKind::cloud,
                    "apply " + std::to_string(apply_id) + ": " + checked.status + " (" +
                        invalid_summary(checked) +
                        "): nothing registered from it — names that exist already are in "
                        "`iotfleet secrets export`; remove them from the list");
      }
      IOT_TRY(api.batch_register_device_with_apply_id(pk, apply_id));
      progress->set_detail("apply " + std::to_string(apply_id) + ": creating devices");
      const auto made = IOT_TRY(wait_apply(api, pk, apply_id, "CREATE", opts));
      if (made.status != "CREATE_SUCCESS") {
        return fail(ErrorKind::cloud,
                    "apply " + std::to_string(apply_id) + ": " + made.status + " (" +
                        invalid_summary(made) + ")");
      }
      created += chunk.size();
      progress->set_detail("apply " + std::to_string(apply_id) + ": fetching secrets");
      for (int page = 1;; ++page) {
        auto result = IOT_TRY(
            api.query_page_by_apply_id(apply_id, cloud::k_query_device_max_page_size, page));
        progress->advance(result.devices.size());
        std::move(result.devices.begin(), result.devices.end(), std::back_inserter(devices));
        if (result.devices.empty() || page >= result.page_count) {
          break;
        }
      }
      return {};
    }();
    if (!step) {
      progress->finish();
      return fail(after_creation(step.error()));
    }
  }
  progress->finish();
  if (devices.size() != names.size()) {
    ctx.output->warn("asked for " + std::to_string(names.size()) + " devices, the applies list " +
                     std::to_string(devices.size()));
  }
  const auto saved = [&]() -> Status {
    for (const auto& d : devices) {
      IOT_TRY(out.write({pk, d.device_name, d.device_secret}));
    }
    return out.commit();
  }();
  if (!saved) {
    return fail(after_creation(saved.error()));
  }
  core::Table t;
  t.single = true;
  t.columns = {"file", "product_key", "registered", "apply_ids"};
  std::string ids;
  for (const auto& id : apply_ids) {
    ids += (ids.empty() ? "" : " ") + id;
  }
  t.add_row({*opts.out_file, pk, static_cast<std::int64_t>(devices.size()), ids});
  return t;
}

namespace {

template <class Action>
Result<core::Table> for_each_device(const DevicesNamesOptions& opts,
                                    Context& ctx,
                                    std::string_view verb,
                                    const Action& action) {
  auto scope = IOT_TRY(open_scope(&opts.devices, k_devices, opts.product_key, ctx));
  const auto& pk = scope.product_key;
  core::Table t;
  t.columns = {"product_key", "device_name", "result", "detail"};
  std::size_t failed = 0;
  for (const auto& name : scope.names) {
    if (core::interrupt_requested()) {
      ctx.output->emit(t);
      return fail(ErrorKind::interrupted,
                  "interrupted: " + std::to_string(t.rows.size()) + " of " +
                      std::to_string(scope.names.size()) + " devices done (see the table)");
    }
    auto r = action(*scope.cloud.api, cloud::DeviceRef{pk, name, {}});
    if (r) {
      t.add_row({pk, name, std::string(verb), opt_text(*r)});
    } else {
      ++failed;
      t.add_row({pk, name, std::string("failed"), r.error().message});
    }
  }
  if (failed > 0) {
    ctx.output->emit(t);
    return fail(failed == scope.names.size() ? ErrorKind::cloud : ErrorKind::partial,
                std::to_string(failed) + " of " + std::to_string(scope.names.size()) +
                    " devices failed (see the table)");
  }
  return t;
}

} // namespace

Result<core::Table> run_devices_delete(const DevicesNamesOptions& opts, Context& ctx) {
  if (!opts.yes) {
    return fail(ErrorKind::usage,
                "deleting devices cannot be undone (their secrets are gone with them): add --yes");
  }
  return for_each_device(opts,
                         ctx,
                         "deleted",
                         [](cloud::IotApi& api, const cloud::DeviceRef& d) -> Result<std::string> {
                           IOT_TRY(api.delete_device(d));
                           return std::string();
                         });
}

Result<core::Table> run_devices_reset(const DevicesNamesOptions& opts, Context& ctx) {
  return for_each_device(
      opts, ctx, "reset", [](cloud::IotApi& api, const cloud::DeviceRef& d) -> Result<std::string> {
        const auto job = IOT_TRY(api.reset_thing(d));
        return "JobId " + job + ": it may register dynamically again";
      });
}

void register_devices(CLI::App& app, Context& ctx) {
  auto* devices = app.add_subcommand(
      "devices", "Device management over the OpenAPI: list, show, register, batch-register, …");
  devices->require_subcommand(0, 1);
  const std::vector<std::pair<int, std::string>> cloud_codes = {
      {2, "bad options or names (nothing was changed)"},
      {4, "the cloud refused or could not be reached"},
      {130, "interrupted"}};
  // -O FILE is created before the first call: when that fails nothing was changed.
  const std::pair<int, std::string> out_file_code = {
      1, "the -O file could not be created (nothing was changed) or written"};
  const auto codes = [&](std::vector<std::pair<int, std::string>> specific) {
    specific.insert(specific.end(), cloud_codes.begin(), cloud_codes.end());
    return specific;
  };

  auto list_opts = std::make_shared<DevicesListOptions>();
  auto* list = devices->add_subcommand("list", "Devices of a product (secrets masked)");
  add_product_key(list, list_opts->product_key);
  list->add_option("--status", list_opts->status, "Only ONLINE, OFFLINE, UNACTIVE or DISABLE")
      ->check(CLI::IsMember({"ONLINE", "OFFLINE", "UNACTIVE", "DISABLE"}))
      ->option_text("ONLINE|OFFLINE|UNACTIVE|DISABLE");
  list->add_option("--limit", list_opts->limit, "At most N devices (0: all)")
      ->check(CLI::Range(0, 100'000'000))
      ->option_text(std::string(value_name::count));
  add_exit_codes(list, codes({{0, "the devices were listed"}}));
  list->callback(
      [&ctx, list_opts] { ctx.output->emit(value_or_throw(run_devices_list(*list_opts, ctx))); });

  auto show_opts = std::make_shared<DevicesShowOptions>();
  auto* show = devices->add_subcommand("show", "One device: status, activation, last online, IP");
  add_product_key(show, show_opts->product_key);
  add_device_names(show, show_opts->device, k_one_device);
  add_exit_codes(show, codes({{0, "the device was shown"}}));
  show->callback(
      [&ctx, show_opts] { ctx.output->emit(value_or_throw(run_devices_show(*show_opts, ctx))); });

  auto reg_opts = std::make_shared<DevicesRegisterOptions>();
  auto* reg = devices->add_subcommand(
      "register",
      "OpenAPI RegisterDevice: create devices in the cloud by name (one-device-one-secret: the "
      "cloud issues each DeviceSecret now); for one-type-one-secret devices this is the "
      "pre-registration that `iotfleet dynreg` needs");
  add_product_key(reg, reg_opts->product_key);
  add_device_names(reg, reg_opts->devices, k_devices);
  add_out_file(reg, reg_opts->out_file, "the triplets (ProductKey,DeviceName,DeviceSecret)");
  add_file_format(reg, reg_opts->format);
  reg->footer("The -O file is created before the first device is registered, so a path that "
              "cannot be written changes nothing in the cloud. `iotfleet pool import FILE` loads "
              "the triplets into the station's ledger.");
  add_exit_codes(reg,
                 codes({{0, "every device was registered"},
                        out_file_code,
                        {5, "some were not (the others are listed and written)"}}));
  reg->callback(
      [&ctx, reg_opts] { ctx.output->emit(value_or_throw(run_devices_register(*reg_opts, ctx))); });

  auto batch_opts = std::make_shared<DevicesBatchRegisterOptions>();
  auto* batch = devices->add_subcommand(
      "batch-register",
      "Register a list of names in batches (BatchCheckDeviceNames / "
      "BatchRegisterDeviceWithApplyId) and fetch their secrets into a triplets file");
  add_product_key(batch, batch_opts->product_key);
  add_device_names(batch, batch_opts->devices, k_devices);
  add_deprecated_option(
      batch,
      "--names",
      "--devices",
      [batch_opts](const std::string& v) { batch_opts->devices.file = v; },
      ctx);
  add_out_file(batch, batch_opts->out_file, "the triplets (ProductKey,DeviceName,DeviceSecret)");
  add_file_format(batch, batch_opts->format);
  add_duration(batch,
               "--timeout",
               batch_opts->timeout,
               "How long each check / create phase may take",
               {.bare_unit = std::chrono::seconds(1),
                .min = std::chrono::seconds(1),
                .max = std::chrono::hours(24)},
               ctx);
  batch->footer("BatchCheckDeviceNames (10 000 names per apply) -> QueryBatchRegisterDeviceStatus "
                "until CHECK_SUCCESS -> BatchRegisterDeviceWithApplyId -> until CREATE_SUCCESS -> "
                "QueryPageByApplyId. -O is required and created before the first call; it is "
                "written when every apply succeeded. When devices were created but the file "
                "could not be written, the error names the applies and the `secrets export` "
                "that recovers the secrets. `iotfleet pool import FILE` loads the file.");
  add_exit_codes(batch, codes({{0, "every name was registered and written"}, out_file_code}));
  batch->callback([&ctx, batch_opts] {
    ctx.output->emit(value_or_throw(run_devices_batch_register(*batch_opts, ctx)));
  });

  auto del_opts = std::make_shared<DevicesNamesOptions>();
  auto* del = devices->add_subcommand("delete", "Delete devices (DeleteDevice); needs --yes");
  add_product_key(del, del_opts->product_key);
  add_device_names(del, del_opts->devices, k_devices);
  del->add_flag("--yes", del_opts->yes, "Yes, delete them (their secrets are gone with them)");
  add_exit_codes(del,
                 codes({{0, "every device was deleted"}, {5, "some were not (see the table)"}}));
  del->callback(
      [&ctx, del_opts] { ctx.output->emit(value_or_throw(run_devices_delete(*del_opts, ctx))); });

  auto reset_opts = std::make_shared<DevicesNamesOptions>();
  auto* reset = devices->add_subcommand(
      "reset", "ResetThing: let an activated device register dynamically again");
  add_product_key(reset, reset_opts->product_key);
  add_device_names(reset, reset_opts->devices, k_devices);
  add_exit_codes(reset,
                 codes({{0, "every device was reset"}, {5, "some were not (see the table)"}}));
  reset->callback([&ctx, reset_opts] {
    ctx.output->emit(value_or_throw(run_devices_reset(*reset_opts, ctx)));
  });

  register_devices_recreate(devices, ctx);
}

} // namespace iot::commands
