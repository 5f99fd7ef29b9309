// SPDX-License-Identifier: MIT
#include "commands/devices.hpp"

#include "commands/cloud_access.hpp"
#include "core/csv.hpp"
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

// The Aliyun console's batch CSV: what `pool import` reads first.
Status write_triplets(const std::string& path,
                      const std::string& product_key,
                      const std::vector<cloud::DeviceInfo>& devices) {
  auto file = store::AtomicFile::create(path, 0600);
  if (!file) {
    return std::unexpected(file.error());
  }
  std::string text = "ProductKey,DeviceName,DeviceSecret\n";
  for (const auto& d : devices) {
    text += core::csv_line({product_key, d.device_name, d.device_secret}) + "\n";
  }
  if (auto ok = file->write(text); !ok) {
    return ok;
  }
  return file->commit();
}

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
                      " after " + std::to_string(opts.timeout.count()) +
                      " s: run again later with a longer --timeout");
    }
    std::this_thread::sleep_for(opts.poll);
  }
}

std::string invalid_summary(const cloud::BatchRegisterStatus& s) {
  std::string out;
  std::size_t shown = 0;
  for (const auto& d : s.invalid_details) {
    if (shown++ == 10) {
      out += "; …";
      break;
    }
    out += (out.empty() ? "" : "; ") + d.device_name + ": " + d.error_message;
  }
  for (const auto& name : s.invalid) {
    if (shown++ >= 10) {
      break;
    }
    out += (out.empty() ? "" : "; ") + name;
  }
  return out;
}

// What every devices command starts with: the names checked before any call, the cloud client,
// the ProductKey.
struct Scope {
  CloudSession cloud;
  std::string product_key;
};

Result<Scope> open_scope(const std::vector<std::string>& names,
                         const std::optional<std::string>& product_key,
                         Context& ctx) {
  for (const auto& name : names) {
    if (auto ok = core::validate_device_name(name); !ok) {
      return fail(ok.error());
    }
  }
  auto cloud = open_cloud(ctx);
  if (!cloud) {
    return fail(cloud.error());
  }
  auto pk = product_key_or_config(product_key, cloud->settings);
  if (!pk) {
    return fail(pk.error());
  }
  return Scope{std::move(*cloud), std::move(*pk)};
}

} // namespace

Result<std::vector<std::string>> read_device_names(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return fail(ErrorKind::usage, "cannot read " + path);
  }
  std::vector<std::string> names;
  std::map<std::string, std::size_t> seen;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    const auto name = std::string(core::trim(line));
    if (name.empty() || name.front() == '#') {
      continue;
    }
    if (auto ok = core::validate_device_name(name); !ok) {
      return fail(ErrorKind::usage, path + ":" + std::to_string(n) + ": " + ok.error().message);
    }
    if (auto [it, inserted] = seen.emplace(name, n); !inserted) {
      return fail(ErrorKind::usage,
                  path + ":" + std::to_string(n) + ": DeviceName " + name + " repeats line " +
                      std::to_string(it->second) + ": remove the duplicate");
    }
    names.push_back(name);
  }
  if (names.empty()) {
    return fail(ErrorKind::usage, path + " holds no DeviceName (one per line)");
  }
  return names;
}

Result<core::Table> run_devices_list(const DevicesListOptions& opts, Context& ctx) {
  auto scope = open_scope({}, opts.product_key, ctx);
  if (!scope) {
    return fail(scope.error());
  }
  auto* cloud = &scope->cloud;
  auto* pk = &scope->product_key;
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
          api.query_device_by_status(*pk, code, cloud::k_query_device_max_page_size, page);
      if (!result) {
        return fail(result.error());
      }
      add(result->devices, *opts.status);
      progress->set_total(static_cast<std::uint64_t>(result->total));
      progress->advance(result->devices.size());
      if (result->devices.empty() || page >= result->page_count ||
          (opts.limit != 0 && t.rows.size() >= opts.limit) || core::interrupt_requested()) {
        break;
      }
    }
  } else {
    cloud::QueryDeviceRequest request{*pk, cloud::k_query_device_max_page_size, 1, {}};
    for (;;) {
      auto page = api.query_device(request);
      if (!page) {
        return fail(page.error());
      }
      add(page->devices, "");
      progress->set_total(static_cast<std::uint64_t>(page->total));
      progress->advance(page->devices.size());
      if (page->next_token.empty() || (opts.limit != 0 && t.rows.size() >= opts.limit) ||
          core::interrupt_requested()) {
        break;
      }
      ++request.current_page;
      request.next_token = page->next_token;
    }
  }
  progress->finish();
  if (core::interrupt_requested()) {
    return fail(ErrorKind::interrupted, "devices list interrupted");
  }
  return t;
}

Result<core::Table> run_devices_show(const DevicesShowOptions& opts, Context& ctx) {
  auto scope = open_scope({}, opts.product_key, ctx);
  if (!scope) {
    return fail(scope.error());
  }
  auto* cloud = &scope->cloud;
  auto* pk = &scope->product_key;
  auto d = cloud->api->query_device_detail({*pk, opts.device_name, {}});
  if (!d) {
    return fail(d.error());
  }
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
               "device_secret"};
  t.add_row({d->product_key,
             opt_text(d->product_name),
             d->device_name,
             opt_text(d->status),
             opt_text(d->iot_id),
             opt_text(d->nickname),
             opt_text(d->firmware_version),
             opt_text(d->ip_address),
             opt_text(d->utc_create),
             opt_text(d->utc_active),
             opt_text(d->utc_online),
             secret_or_none(d->device_secret)});
  return t;
}

Result<core::Table> run_devices_register(const DevicesRegisterOptions& opts, Context& ctx) {
  auto scope = open_scope(opts.device_names, opts.product_key, ctx);
  if (!scope) {
    return fail(scope.error());
  }
  auto* cloud = &scope->cloud;
  auto* pk = &scope->product_key;
  std::vector<cloud::DeviceInfo> registered;
  std::optional<Error> failure;
  for (const auto& name : opts.device_names) {
    auto d = cloud->api->register_device(*pk, name);
    if (!d) {
      ctx.output->warn(name + ": " + d.error().message);
      failure = d.error();
      continue;
    }
    registered.push_back(std::move(*d));
  }
  if (opts.out_file && !registered.empty()) {
    if (auto ok = write_triplets(*opts.out_file, *pk, registered); !ok) {
      return fail(ok.error());
    }
    ctx.output->info("triplets written to " + *opts.out_file + " (0600): `iotfleet pool import " +
                     *opts.out_file + "` loads them");
  }
  if (failure) {
    if (registered.empty()) {
      return fail(*failure);
    }
    ctx.output->emit(triplet_table(*pk, registered));
    return fail(ErrorKind::partial,
                std::to_string(opts.device_names.size() - registered.size()) + " of " +
                    std::to_string(opts.device_names.size()) + " devices were not registered");
  }
  return triplet_table(*pk, registered);
}

Result<core::Table> run_devices_batch_register(const DevicesBatchRegisterOptions& opts,
                                               Context& ctx) {
  auto names = read_device_names(opts.names_file);
  if (!names) {
    return fail(names.error());
  }
  auto scope = open_scope({}, opts.product_key, ctx);
  if (!scope) {
    return fail(scope.error());
  }
  auto* cloud = &scope->cloud;
  auto* pk = &scope->product_key;
  auto& api = *cloud->api;
  auto progress = ctx.output->progress("batch-register " + *pk);
  progress->set_total(names->size());
  std::vector<cloud::DeviceInfo> devices;
  std::vector<std::string> apply_ids;
  for (std::size_t start = 0; start < names->size(); start += cloud::k_check_names_max) {
    const auto end = std::min(names->size(), start + cloud::k_check_names_max);
    std::vector<cloud::DeviceNameEntry> chunk;
    for (auto i = start; i < end; ++i) {
      chunk.push_back({(*names)[i], {}});
    }
    auto check = api.batch_check_device_names(*pk, chunk);
    if (!check) {
      return fail(check.error());
    }
    if (!check->invalid_device_names.empty()) {
      return fail(ErrorKind::usage,
                  "the platform refused " + std::to_string(check->invalid_device_names.size()) +
                      " names, e.g. " + check->invalid_device_names.front() +
                      ": nothing registered — fix " + opts.names_file);
    }
    const auto apply_id = check->apply_id;
    apply_ids.push_back(std::to_string(apply_id));
    progress->set_detail("apply " + std::to_string(apply_id) + ": checking names");
    auto checked = wait_apply(api, *pk, apply_id, "CHECK", opts);
    if (!checked) {
      return fail(checked.error());
    }
    if (checked->status != "CHECK_SUCCESS") {
      return fail(ErrorKind::cloud,
                  "apply " + std::to_string(apply_id) + ": " + checked->status + " (" +
                      invalid_summary(*checked) +
                      "): nothing registered — names that exist already are in `iotfleet "
                      "secrets export`; remove them from " +
                      opts.names_file);
    }
    auto registered = api.batch_register_device_with_apply_id(*pk, apply_id);
    if (!registered) {
      return fail(registered.error());
    }
    progress->set_detail("apply " + std::to_string(apply_id) + ": creating devices");
    auto created = wait_apply(api, *pk, apply_id, "CREATE", opts);
    if (!created) {
      return fail(created.error());
    }
    if (created->status != "CREATE_SUCCESS") {
      return fail(ErrorKind::cloud,
                  "apply " + std::to_string(apply_id) + ": " + created->status + " (" +
                      invalid_summary(*created) + ")");
    }
    progress->set_detail("apply " + std::to_string(apply_id) + ": fetching secrets");
    for (int page = 1;; ++page) {
      auto result = api.query_page_by_apply_id(apply_id, cloud::k_query_device_max_page_size, page);
      if (!result) {
        return fail(result.error());
      }
      progress->advance(result->devices.size());
      std::move(result->devices.begin(), result->devices.end(), std::back_inserter(devices));
      if (result->devices.empty() || page >= result->page_count) {
        break;
      }
    }
  }
  progress->finish();
  if (devices.size() != names->size()) {
    ctx.output->warn("asked for " + std::to_string(names->size()) + " devices, the applies list " +
                     std::to_string(devices.size()));
  }
  if (auto ok = write_triplets(opts.out_file, *pk, devices); !ok) {
    return fail(ok.error());
  }
  core::Table t;
  t.single = true;
  t.columns = {"file", "product_key", "registered", "apply_ids"};
  std::string ids;
  for (const auto& id : apply_ids) {
    ids += (ids.empty() ? "" : " ") + id;
  }
  t.add_row({opts.out_file, *pk, static_cast<std::int64_t>(devices.size()), ids});
  return t;
}

namespace {

template <class Action>
Result<core::Table> for_each_device(const DevicesNamesOptions& opts,
                                    Context& ctx,
                                    std::string_view verb,
                                    const Action& action) {
  auto scope = open_scope(opts.device_names, opts.product_key, ctx);
  if (!scope) {
    return fail(scope.error());
  }
  auto* cloud = &scope->cloud;
  auto* pk = &scope->product_key;
  core::Table t;
  t.columns = {"product_key", "device_name", "result", "detail"};
  std::size_t failed = 0;
  for (const auto& name : opts.device_names) {
    auto r = action(*cloud->api, cloud::DeviceRef{*pk, name, {}});
    if (r) {
      t.add_row({*pk, name, std::string(verb), opt_text(*r)});
    } else {
      ++failed;
      t.add_row({*pk, name, std::string("failed"), r.error().message});
    }
  }
  if (failed > 0) {
    ctx.output->emit(t);
    return fail(failed == opts.device_names.size() ? ErrorKind::cloud : ErrorKind::partial,
                std::to_string(failed) + " of " + std::to_string(opts.device_names.size()) +
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
                           if (auto ok = api.delete_device(d); !ok) {
                             return fail(ok.error());
                           }
                           return std::string();
                         });
}

Result<core::Table> run_devices_reset(const DevicesNamesOptions& opts, Context& ctx) {
  return for_each_device(
      opts, ctx, "reset", [](cloud::IotApi& api, const cloud::DeviceRef& d) -> Result<std::string> {
        auto job = api.reset_thing(d);
        if (!job) {
          return fail(job.error());
        }
        return "JobId " + *job + ": it may register dynamically again";
      });
}

void register_devices(CLI::App& app, Context& ctx) {
  auto* devices = app.add_subcommand(
      "devices", "Device management over the OpenAPI: list, show, register, batch-register, …");
  devices->require_subcommand(0, 1);
  const auto add_pk = [](CLI::App* cmd, std::optional<std::string>& pk) {
    cmd->add_option("--product-key", pk, "The product (default: config product_key)");
  };

  auto list_opts = std::make_shared<DevicesListOptions>();
  auto* list = devices->add_subcommand("list", "Devices of a product (secrets masked)");
  add_pk(list, list_opts->product_key);
  list->add_option("--status", list_opts->status, "Only ONLINE, OFFLINE, UNACTIVE or DISABLE")
      ->check(CLI::IsMember({"ONLINE", "OFFLINE", "UNACTIVE", "DISABLE"}));
  list->add_option("--limit", list_opts->limit, "At most N devices (0: all)");
  list->callback(
      [&ctx, list_opts] { ctx.output->emit(value_or_throw(run_devices_list(*list_opts, ctx))); });

  auto show_opts = std::make_shared<DevicesShowOptions>();
  auto* show = devices->add_subcommand("show", "One device: status, activation, last online, IP");
  add_pk(show, show_opts->product_key);
  show->add_option("device_name", show_opts->device_name, "DeviceName")->required();
  show->callback(
      [&ctx, show_opts] { ctx.output->emit(value_or_throw(run_devices_show(*show_opts, ctx))); });

  auto reg_opts = std::make_shared<DevicesRegisterOptions>();
  auto* reg = devices->add_subcommand("register", "Register devices by name (RegisterDevice)");
  add_pk(reg, reg_opts->product_key);
  reg->add_option("device_names", reg_opts->device_names, "DeviceNames")->required();
  reg->add_option(
      "-O,--out", reg_opts->out_file, "Write the triplets to FILE (0600, for pool import)");
  reg->footer("Exit 5 if some were not registered (the others are listed and written).");
  reg->callback(
      [&ctx, reg_opts] { ctx.output->emit(value_or_throw(run_devices_register(*reg_opts, ctx))); });

  auto batch_opts = std::make_shared<DevicesBatchRegisterOptions>();
  auto* batch = devices->add_subcommand(
      "batch-register",
      "Register a list of names: check, register, fetch the secrets into a pool file");
  add_pk(batch, batch_opts->product_key);
  batch->add_option("--names", batch_opts->names_file, "File with one DeviceName per line")
      ->required()
      ->check(CLI::ExistingFile);
  batch
      ->add_option("-O,--out",
                   batch_opts->out_file,
                   "Triplets file to write (0600, ProductKey,DeviceName,DeviceSecret)")
      ->required();
  batch
      ->add_option_function<int>(
          "--timeout",
          [batch_opts](int s) { batch_opts->timeout = std::chrono::seconds(s); },
          "Seconds to wait for each check / create phase (default 600)")
      ->check(CLI::Range(1, 86400));
  batch->footer("BatchCheckDeviceNames (10 000 names per apply) -> QueryBatchRegisterDeviceStatus "
                "until CHECK_SUCCESS -> BatchRegisterDeviceWithApplyId -> until CREATE_SUCCESS -> "
                "QueryPageByApplyId. The file is written only when every apply succeeded; "
                "`iotfleet pool import FILE` loads it into the station's ledger.");
  batch->callback([&ctx, batch_opts] {
    ctx.output->emit(value_or_throw(run_devices_batch_register(*batch_opts, ctx)));
  });

  auto del_opts = std::make_shared<DevicesNamesOptions>();
  auto* del = devices->add_subcommand("delete", "Delete devices (DeleteDevice); needs --yes");
  add_pk(del, del_opts->product_key);
  del->add_option("device_names", del_opts->device_names, "DeviceNames")->required();
  del->add_flag("--yes", del_opts->yes, "Yes, delete them");
  del->callback(
      [&ctx, del_opts] { ctx.output->emit(value_or_throw(run_devices_delete(*del_opts, ctx))); });

  auto reset_opts = std::make_shared<DevicesNamesOptions>();
  auto* reset = devices->add_subcommand(
      "reset", "ResetThing: let an activated device register dynamically again");
  add_pk(reset, reset_opts->product_key);
  reset->add_option("device_names", reset_opts->device_names, "DeviceNames")->required();
  reset->callback([&ctx, reset_opts] {
    ctx.output->emit(value_or_throw(run_devices_reset(*reset_opts, ctx)));
  });
}

} // namespace iot::commands
