// SPDX-License-Identifier: MIT
// iotfleet devices recreate: the seed FAQ's §3.3 workaround for a device whose secret the cloud
// no longer accepts — delete it and enter it again — without losing what it carried. The
// nickname, tags and group memberships are read, journaled in the ledger (store::Recreation,
// before DeleteDevice), and put back on the new device; the new DeviceSecret goes into the ledger
// (the old one kept) and optionally a 0600 triplets file, for `provision` to burn. Each step is
// recorded once the cloud confirmed it, so --resume finishes a run that was killed or refused
// half-way (docs/recreate.md).
#include "cloud/iot_api.hpp"
#include "commands/cloud_access.hpp"
#include "commands/common_options.hpp"
#include "commands/devices.hpp"
#include "commands/ledger_access.hpp"
#include "commands/record_file.hpp"
#include "core/interrupt.hpp"

#include <nlohmann/json.hpp>

namespace iot::commands {
namespace {

using json = nlohmann::ordered_json;
using store::RecreateStep;
using store::Recreation;

struct RecreateOptions {
  std::optional<std::string> product_key;
  DeviceNamesInput devices;
  bool yes = false;
  bool dry_run = false;
  bool resume = false;
  bool force = false;                  // an ONLINE device too
  std::optional<std::string> scheme;   // device | product; default: the ledger's, else device
  std::optional<std::string> out_file; // the new triplets, 0600
  std::string format = "csv";
};

const DeviceNamesSpec k_names{DeviceArity::many, true, false, "DeviceName"};

// What the device carries, as journaled (never a secret).
struct Carried {
  std::string nickname;
  std::string status;
  std::string scheme = "device";
  std::vector<cloud::DeviceTag> tags;
  std::vector<cloud::DeviceGroup> groups;
};

std::string metadata_json(const Carried& c) {
  json j;
  j["nickname"] = c.nickname;
  j["status"] = c.status;
  j["scheme"] = c.scheme;
  j["tags"] = json::array();
  for (const auto& t : c.tags) {
    j["tags"].push_back(json{{"key", t.key}, {"value", t.value}});
  }
  j["groups"] = json::array();
  for (const auto& g : c.groups) {
    j["groups"].push_back(json{{"id", g.id}, {"name", g.name}, {"type", g.type}});
  }
  return j.dump();
}

Result<Carried> parse_metadata(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(ErrorKind::io, "ledger: a recreation's metadata is not a JSON object");
  }
  Carried c;
  c.nickname = j.value("nickname", "");
  c.status = j.value("status", "");
  c.scheme = j.value("scheme", "device");
  for (const auto& t : j.value("tags", json::array())) {
    c.tags.push_back(cloud::DeviceTag{t.value("key", ""), t.value("value", "")});
  }
  for (const auto& g : j.value("groups", json::array())) {
    cloud::DeviceGroup group;
    group.id = g.value("id", "");
    group.name = g.value("name", "");
    group.type = g.value("type", "");
    c.groups.push_back(std::move(group));
  }
  return c;
}

// The device as the cloud has it now, or nullopt when it does not exist.
Result<std::optional<cloud::DeviceDetail>>
current(cloud::IotApi& api, const std::string& pk, const std::string& dn) {
  auto d = api.query_device_detail(cloud::DeviceRef{pk, dn, {}});
  if (!d) {
    if (cloud::has_error_code(d.error(), "NotExistedDevice")) {
      return std::optional<cloud::DeviceDetail>{};
    }
    return fail(d.error());
  }
  return std::optional<cloud::DeviceDetail>{std::move(*d)};
}

std::string next_step(const Carried& c, const std::string& dn, const std::string& pool) {
  if (c.scheme == "product") {
    return "one-type-one-secret: the re-created device is not activated yet, so on its next boot "
           "the module registers dynamically and receives its secret (at a station: `iotfleet "
           "provision --port P --register`; a module that still holds the old DeviceSecret "
           "needs --overwrite)";
  }
  if (pool.find("bound to that module") != std::string::npos) {
    return "burn the new secret: `iotfleet provision --port P` on the module of " + dn;
  }
  return "burn the new secret into the module: `iotfleet provision --port P --overwrite`";
}

class Recreator {
public:
  Recreator(const RecreateOptions& opts,
            Context& ctx,
            cloud::IotApi& api,
            LedgerHandle& ledger,
            std::string product_key,
            std::optional<RecordFile>& out)
      : m_opts(opts), m_ctx(ctx), m_api(api), m_ledger(ledger), m_pk(std::move(product_key)),
        m_out(out) {
    m_table.columns = {"product_key",
                       "device_name",
                       "result",
                       "old_iot_id",
                       "new_iot_id",
                       "nickname",
                       "tags",
                       "groups",
                       "device_secret",
                       "next"};
  }

  // A fresh recreation of one device: read, journal, then run().
  Status start(const std::string& dn) {
    if (m_ledger.ledger) {
      const auto open = IOT_TRY_CTX(m_ledger.ledger->recreations(store::TripletKey{m_pk, dn}, true),
                                    "ledger " + m_ledger.path);
      if (!open.empty()) {
        return fail(ErrorKind::usage,
                    m_pk + "/" + dn + " has an unfinished recreation (step " +
                        std::string(store::to_string(open.front().step)) +
                        "): finish it with `iotfleet devices recreate --resume " + dn + "`");
      }
    }
    auto device = IOT_TRY(current(m_api, m_pk, dn));
    if (!device) {
      return fail(ErrorKind::cloud,
                  m_pk + "/" + dn +
                      " does not exist on the cloud: nothing to re-create (register it: "
                      "`iotfleet devices register " +
                      dn + "`)");
    }
    if (device->status == "ONLINE" && !m_opts.force) {
      return fail(ErrorKind::usage,
                  dn + " is ONLINE: it connects with the secret it has, and deleting it cuts it "
                       "off; re-create a device only when the cloud refuses its secret (seed FAQ "
                       "§3), or give --force");
    }
    Carried c;
    c.nickname = device->nickname;
    c.status = device->status;
    c.scheme = IOT_TRY(scheme_of(dn));
    c.tags = IOT_TRY_CTX(m_api.query_device_prop(cloud::DeviceRef{m_pk, dn, device->iot_id}),
                         dn + ": its tags");
    c.groups = IOT_TRY_CTX(m_api.query_device_group_by_device(m_pk, dn), dn + ": its groups");
    if (m_opts.dry_run) {
      m_table.add_row({m_pk,
                       dn,
                       std::string("would re-create"),
                       device->iot_id,
                       core::Cell{},
                       opt(c.nickname),
                       opt(tags_text(c.tags)),
                       opt(groups_text(c.groups)),
                       core::Cell{},
                       "DeleteDevice, RegisterDevice" +
                           std::string(c.nickname.empty() ? "" : " (Nickname)") +
                           (c.tags.empty() ? "" : ", SaveDeviceProp") +
                           (static_groups(c) == 0 ? "" : ", BatchAddDeviceGroupRelations") +
                           "; then " + next_step(c, dn, "")});
      return {};
    }
    Recreation plan;
    plan.product_key = m_pk;
    plan.device_name = dn;
    plan.old_iot_id = device->iot_id;
    plan.old_secret = device->device_secret;
    plan.metadata = metadata_json(c);
    plan.to_pool = !m_opts.out_file;
    plan.scheme = c.scheme == "product" ? core::Scheme::product : core::Scheme::device;
    plan.detail = "metadata read: nickname, " + std::to_string(c.tags.size()) + " tag(s), " +
                  std::to_string(c.groups.size()) + " group(s)";
    auto r = IOT_TRY(m_ledger.ledger->begin_recreation(plan, m_ledger.actor));
    return run(r, c, false);
  }

  // Continues a journaled recreation from its step.
  Status run(Recreation& r, const Carried& c, bool resumed) {
    const std::string& dn = r.device_name;
    std::string pool;
    if (r.step == RecreateStep::planned) {
      IOT_TRY(interrupted_at(r));
      IOT_TRY(delete_old(r, resumed));
    }
    if (r.step == RecreateStep::deleted) {
      IOT_TRY(interrupted_at(r));
      pool = IOT_TRY(register_new(r, c));
    }
    if (r.step == RecreateStep::registered) {
      IOT_TRY(interrupted_at(r));
      IOT_TRY(restore(r, c));
    }
    if (m_out) {
      IOT_TRY(m_out->write({r.product_key, dn, r.new_secret}));
    }
    m_table.add_row({r.product_key,
                     dn,
                     std::string(resumed ? "resumed, re-created" : "re-created"),
                     r.old_iot_id,
                     r.new_iot_id,
                     opt(c.nickname),
                     opt(tags_text(c.tags)),
                     opt(groups_text(c.groups)),
                     core::Cell{core::Secret{r.new_secret}},
                     next_step(c, dn, pool)});
    return {};
  }

  [[nodiscard]] const core::Table& table() const { return m_table; }
  [[nodiscard]] core::Table& table() { return m_table; }

private:
  static core::Cell opt(const std::string& s) { return s.empty() ? core::Cell{} : core::Cell{s}; }
  static std::size_t static_groups(const Carried& c) {
    return static_cast<std::size_t>(std::count_if(
        c.groups.begin(), c.groups.end(), [](const auto& g) { return !g.dynamic(); }));
  }

  Result<std::string> scheme_of(const std::string& dn) {
    if (m_opts.scheme) {
      return *m_opts.scheme;
    }
    if (!m_ledger.ledger) {
      return std::string("device");
    }
    const auto found = IOT_TRY_CTX(m_ledger.ledger->find(dn, m_pk), "ledger " + m_ledger.path);
    for (const auto& t : found) {
      if (t.scheme == core::Scheme::product) {
        return std::string("product");
      }
    }
    const auto regs = IOT_TRY(m_ledger.ledger->registrations({m_pk, dn}));
    return std::string(regs.empty() ? "device" : "product");
  }

  Status interrupted_at(const Recreation& r) const {
    if (core::interrupt_requested()) {
      return fail(ErrorKind::interrupted,
                  "interrupted: " + r.device_name + " is journaled at step " +
                      std::string(store::to_string(r.step)) +
                      "; `iotfleet devices recreate --resume` finishes it");
    }
    return {};
  }

  Status advance(Recreation& r, RecreateStep step, std::string detail, std::string* pool) {
    r.step = step;
    r.detail = std::move(detail);
    auto done = IOT_TRY_CTX(m_ledger.ledger->advance_recreation(r, m_ledger.actor),
                            "ledger " + m_ledger.path);
    if (pool != nullptr) {
      *pool = std::move(done);
    }
    return {};
  }

  // planned -> deleted. A device that is already gone, or already there again under a new
  // IotId (a run that died after RegisterDevice), is taken as it is.
  // A fresh plan was made from the device just read: it is there under the old IotId.
  Status delete_old(Recreation& r, bool resumed) {
    std::optional<cloud::DeviceDetail> now;
    if (resumed) {
      now = IOT_TRY(current(m_api, r.product_key, r.device_name));
    }
    if (!resumed || (now && now->iot_id == r.old_iot_id)) {
      auto gone = m_api.delete_device(cloud::DeviceRef{r.product_key, r.device_name, r.old_iot_id});
      if (!gone && !cloud::has_error_code(gone.error(), "NotExistedDevice")) {
        return fail(gone.error().context(r.device_name + ": DeleteDevice (nothing changed; the "
                                                         "journal keeps the plan, --resume "
                                                         "retries)"));
      }
      return advance(r, RecreateStep::deleted, "deleted (IotId " + r.old_iot_id + ")", nullptr);
    }
    IOT_TRY(advance(r, RecreateStep::deleted, "already deleted", nullptr));
    if (now) {
      return adopt(r, *now);
    }
    return {};
  }

  // The device registered again by a run whose answer was lost: its secret from the cloud.
  Status adopt(Recreation& r, const cloud::DeviceDetail& d) {
    r.new_iot_id = d.iot_id;
    r.new_secret = d.device_secret;
    if (r.new_secret.empty()) {
      return fail(ErrorKind::cloud,
                  r.device_name + " exists again but the cloud gave no DeviceSecret for it");
    }
    std::string pool;
    return advance(r,
                   RecreateStep::registered,
                   "registered again earlier (IotId " + d.iot_id + "), secret read back",
                   &pool);
  }

  // deleted -> registered: RegisterDevice with the same name and nickname.
  Result<std::string> register_new(Recreation& r, const Carried& c) {
    auto reg = m_api.register_device(r.product_key, r.device_name, c.nickname);
    if (!reg) {
      if (cloud::has_error_code(reg.error(), "AlreadyExistedDeviceName")) {
        auto now = IOT_TRY(current(m_api, r.product_key, r.device_name));
        if (now && now->iot_id != r.old_iot_id) {
          IOT_TRY(adopt(r, *now));
          return std::string();
        }
      }
      return fail(reg.error().context(
          r.device_name +
          ": RegisterDevice failed after the device was deleted; the journal holds its nickname, "
          "tags and groups: `iotfleet devices recreate --resume` registers it again"));
    }
    r.new_iot_id = reg->iot_id;
    r.new_secret = reg->device_secret;
    if (r.new_secret.empty()) {
      auto now = IOT_TRY(current(m_api, r.product_key, r.device_name));
      if (!now || now->device_secret.empty()) {
        return fail(ErrorKind::cloud, r.device_name + ": RegisterDevice answered no secret");
      }
      r.new_secret = now->device_secret;
    }
    std::string pool;
    IOT_TRY(advance(r, RecreateStep::registered, "registered (IotId " + r.new_iot_id + ")", &pool));
    return pool;
  }

  // registered -> restored: the tags, then the static groups (dynamic ones follow the tags).
  Status restore(Recreation& r, const Carried& c) {
    const cloud::DeviceRef ref{r.product_key, r.device_name, r.new_iot_id};
    std::vector<std::string> notes;
    if (!c.tags.empty()) {
      IOT_TRY_CTX(m_api.save_device_prop(ref, c.tags),
                  r.device_name + ": SaveDeviceProp (--resume retries)");
    }
    for (const auto& g : c.groups) {
      if (g.dynamic()) {
        continue;
      }
      auto added = m_api.batch_add_device_group_relations(
          g.id, {cloud::DeviceRef{r.product_key, r.device_name, {}}});
      if (!added) {
        if (added.error().kind == ErrorKind::cloud) {
          notes.push_back("group " + g.name + " not restored: " + added.error().message);
          continue;
        }
        return fail(added.error().context(r.device_name + ": BatchAddDeviceGroupRelations " +
                                          g.name + " (--resume retries)"));
      }
      if (added->exceed_ten_groups > 0) {
        notes.push_back("group " + g.name + " not restored: the device is in 10 groups already");
      }
    }
    // Dynamic groups take the device back by its tags: check that they did.
    const auto now = IOT_TRY_CTX(m_api.query_device_group_by_device(r.product_key, r.device_name),
                                 r.device_name + ": its groups (--resume checks again)");
    for (const auto& g : c.groups) {
      const bool back = std::any_of(
          now.begin(), now.end(), [&](const cloud::DeviceGroup& n) { return n.id == g.id; });
      if (!back && (g.dynamic() || notes.empty())) {
        notes.push_back("group " + g.name + " does not hold the device again");
      }
    }
    for (const auto& n : notes) {
      m_ctx.output->warn(r.device_name + ": " + n);
    }
    std::string detail = "restored: nickname, " + std::to_string(c.tags.size()) + " tag(s), " +
                         std::to_string(c.groups.size() - notes.size()) + " of " +
                         std::to_string(c.groups.size()) + " group(s)";
    for (const auto& n : notes) {
      detail += "; " + n;
    }
    return advance(r, RecreateStep::restored, detail, nullptr);
  }

  const RecreateOptions& m_opts;
  Context& m_ctx;
  cloud::IotApi& m_api;
  LedgerHandle& m_ledger;
  std::string m_pk;
  std::optional<RecordFile>& m_out;
  core::Table m_table;
};

Status check_options(const RecreateOptions& opts, const std::vector<std::string>& names) {
  if (!opts.resume && names.empty()) {
    return fail(ErrorKind::usage,
                "give the DeviceNames to re-create (or --devices FILE), or --resume to finish "
                "the recreations journaled in the ledger");
  }
  if (opts.resume && opts.dry_run) {
    return fail(ErrorKind::usage,
                "--resume and --dry-run: `iotfleet pool log` shows the journaled steps");
  }
  if (!opts.resume && !opts.dry_run && !opts.yes) {
    return fail(ErrorKind::usage,
                "re-creating deletes each device and registers it again: it gets a new IotId and "
                "DeviceSecret, and its module must be burned again; add --yes (or --dry-run to "
                "see the steps)");
  }
  return {};
}

Result<core::Table> run_devices_recreate(const RecreateOptions& opts, Context& ctx) {
  const auto names = IOT_TRY(resolve_device_names(opts.devices, k_names, ctx));
  IOT_TRY(check_options(opts, names));
  auto cloud = IOT_TRY(open_cloud(ctx));
  const auto pk = IOT_TRY(product_key_or_config(opts.product_key, cloud.settings));
  // Every local precondition before the first cloud write: the ledger (the journal), the file.
  LedgerHandle ledger;
  if (opts.dry_run) {
    // Only read (the scheme); a dry run works without a ledger.
    if (auto found = open_configured_ledger(ctx, store::OpenMode::read)) {
      ledger = std::move(*found);
    } else if (found.error().kind != ErrorKind::config) {
      return fail(found.error());
    }
  } else {
    ledger = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::create));
  }
  std::optional<RecordFile> out;
  if (opts.out_file && !opts.dry_run) {
    out = IOT_TRY(RecordFile::create(
        *opts.out_file, opts.format, {"ProductKey", "DeviceName", "DeviceSecret"}));
  }
  Recreator recreator(opts, ctx, *cloud.api, ledger, pk, out);
  std::size_t failed = 0;
  std::size_t refused = 0; // failed for a reason of the request (ONLINE, an unfinished one)
  std::size_t total = 0;
  std::optional<Error> stop;
  Error last;
  const auto one = [&](const std::string& dn, const Status& s) {
    ++total;
    if (s) {
      return true;
    }
    if (s.error().kind == ErrorKind::interrupted) {
      stop = s.error();
      return false;
    }
    ++failed;
    refused += s.error().kind == ErrorKind::usage ? 1 : 0;
    last = s.error();
    if (names.size() != 1 || opts.resume) {
      ctx.output->warn(s.error().message);
    }
    recreator.table().add_row({pk,
                               dn,
                               std::string("failed"),
                               core::Cell{},
                               core::Cell{},
                               core::Cell{},
                               core::Cell{},
                               core::Cell{},
                               core::Cell{},
                               s.error().message});
    return true;
  };
  if (opts.resume) {
    auto open =
        IOT_TRY_CTX(ledger.ledger->recreations(std::nullopt, true), "ledger " + ledger.path);
    std::erase_if(open, [&](const Recreation& r) {
      return r.product_key != pk ||
             (!names.empty() &&
              std::find(names.begin(), names.end(), r.device_name) == names.end());
    });
    if (open.empty()) {
      ctx.output->info("devices recreate --resume: nothing unfinished in " + ledger.path +
                       " for product " + pk);
    }
    for (auto& r : open) {
      auto carried = IOT_TRY(parse_metadata(r.metadata));
      if (!one(r.device_name, recreator.run(r, carried, true))) {
        break;
      }
    }
  } else {
    for (const auto& dn : names) {
      if (!one(dn, recreator.start(dn))) {
        break;
      }
    }
  }
  if (out && failed == 0 && !stop) {
    IOT_TRY(out->commit());
    ctx.output->info("new triplets written to " + *opts.out_file + " (0600)");
  }
  if (stop) {
    ctx.output->emit(recreator.table());
    return fail(*stop);
  }
  if (failed > 0 && total == 1 && names.size() == 1 && !opts.resume) {
    return fail(last); // one device: its own error, nothing to tabulate
  }
  if (failed > 0) {
    ctx.output->emit(recreator.table());
    const ErrorKind kind = failed < total      ? ErrorKind::partial
                           : refused == failed ? ErrorKind::usage
                                               : ErrorKind::cloud;
    return fail(kind,
                std::to_string(failed) + " of " + std::to_string(total) +
                    " devices were not re-created (see the table); those the ledger journaled "
                    "are finished by `iotfleet devices recreate --resume`");
  }
  return recreator.table();
}

} // namespace

void register_devices_recreate(CLI::App* devices, Context& ctx) {
  auto opts = std::make_shared<RecreateOptions>();
  auto* cmd = devices->add_subcommand(
      "recreate",
      "Delete a device and register it again with its nickname, tags and groups (seed FAQ §3.3: "
      "the cloud refuses its secret); journaled, --resume finishes a broken run");
  add_product_key(cmd, opts->product_key);
  add_device_names(cmd, opts->devices, k_names);
  cmd->add_flag("--yes", opts->yes, "Yes, delete and re-register them (new IotId and secret)");
  cmd->add_flag("--dry-run", opts->dry_run, "Read what each device carries and show the steps");
  cmd->add_flag("--resume",
                opts->resume,
                "Finish the recreations the ledger journaled and a crash, Ctrl-C or a refusal "
                "left unfinished (of the given DeviceNames, else all of the product)");
  cmd->add_flag("--force", opts->force, "Re-create an ONLINE device too (it is cut off)");
  cmd->add_option("--scheme",
                  opts->scheme,
                  "device (one-device-one-secret: burn the new secret) or product "
                  "(one-type-one-secret: the module registers itself); default: the ledger's")
      ->check(CLI::IsMember({"device", "product"}))
      ->option_text("device|product");
  add_out_file(cmd, opts->out_file, "the new triplets (ProductKey,DeviceName,DeviceSecret)");
  add_file_format(cmd, opts->format);
  cmd->footer(
      "Per device: QueryDeviceDetail (an ONLINE device is refused without --force), "
      "QueryDeviceProp and QueryDeviceGroupByDevice; the plan and the old secret into the "
      "ledger; DeleteDevice; RegisterDevice with the same DeviceName and nickname; "
      "SaveDeviceProp; BatchAddDeviceGroupRelations for each static group (dynamic groups take "
      "the device back by its tags, which is checked). Each step is journaled once the cloud "
      "confirmed it. The new secret goes into the ledger's pool (a triplet burned into a module "
      "becomes bound to that module, so `provision` on its port burns the new one), or with -O "
      "into a 0600 file instead; it is masked in the table unless --show-secrets. "
      "One-type-one-secret devices (--scheme product, or the ledger says so) are left to "
      "register dynamically on their next boot: the re-created device is not activated.");
  add_exit_codes(cmd,
                 {{0, "every device was re-created (or, with --dry-run, read)"},
                  {1, "the -O file could not be created (nothing changed) or written"},
                  {2,
                   "bad options, no --yes, an ONLINE device, or one with an unfinished "
                   "recreation (nothing changed for it)"},
                  {4, "the cloud refused or could not be reached"},
                  {5, "some devices were not re-created (the journal keeps them: --resume)"},
                  {130, "interrupted (--resume finishes the journaled device)"}});
  cmd->callback(
      [&ctx, opts] { ctx.output->emit(value_or_throw(run_devices_recreate(*opts, ctx))); });
}

} // namespace iot::commands
