// SPDX-License-Identifier: MIT
// OTA Actions (§3): GenerateOTAUploadURL, CreateOTAFirmware, QueryOTAFirmware,
// CreateOTAVerifyJob, CreateOTAStaticUpgradeJob, GenerateDeviceNameListURL, QueryOTAJob,
// ListOTATaskByJob, CancelOTATaskByJob, ListOTAJobByFirmware, CancelOTAStrategyByJob.
// Business errors not named by §3 are our picks (UNVERIFIED, listed in docs/cloud-emulator.md).
#include "core/text.hpp"
#include "sim/cloud_actions.hpp"
#include "sim/cloud_ota.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <unordered_set>

namespace iot::sim::cloud {

namespace {

constexpr std::size_t k_static_names_max = 200;  // TargetDeviceName.N per call (§3)
constexpr std::size_t k_verify_names_max = 10;   // CreateOTAVerifyJob (§3)
constexpr std::size_t k_dn_list_max = 1'000'000; // DnListFileUrl (§3)
constexpr std::size_t k_src_versions_max = 10;   // ours
constexpr std::size_t k_tags_max = 10;           // §3
constexpr std::int64_t k_schedule_min_ms = 5 * 60'000LL;
constexpr std::int64_t k_schedule_max_ms = 7 * 24 * 3'600'000LL;
constexpr std::int64_t k_finish_min_ms = 3'600'000LL;
constexpr std::int64_t k_finish_max_ms = 30 * 24 * 3'600'000LL;

[[noreturn]] void invalid(const std::string& message) {
  throw ReplyError{business_error("iot.common.InvalidParameter", message)};
}

[[noreturn]] void refuse(std::string code, std::string message) {
  throw ReplyError{business_error(std::move(code), std::move(message))};
}

bool bool_param(const ActionContext& ctx, std::string_view name, bool fallback) {
  const auto v = ctx.param(name);
  if (!v || v->empty()) {
    return fallback;
  }
  const std::string l = core::to_lower(*v);
  if (l == "true") {
    return true;
  }
  if (l == "false") {
    return false;
  }
  invalid("The parameter " + std::string(name) + " must be true or false.");
}

// An optional integer parameter within min..max.
std::optional<std::int64_t>
int_param(const ActionContext& ctx, std::string_view name, std::int64_t min, std::int64_t max) {
  const auto v = ctx.param(name);
  if (!v || v->empty()) {
    return std::nullopt;
  }
  const auto n = parse_int(*v);
  if (!n || *n < min || *n > max) {
    invalid("The parameter " + std::string(name) + " must be an integer in " + std::to_string(min) +
            ".." + std::to_string(max) + ".");
  }
  return n;
}

// DestVersion / SrcVersion: 1-64 of [A-Za-z0-9._-] (§3, §7).
bool valid_version(std::string_view v) {
  if (v.empty() || v.size() > 64) {
    return false;
  }
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

// ModuleName (ours): 1-64 of [A-Za-z0-9._-].
bool valid_module(std::string_view v) {
  return valid_version(v);
}

// FirmwareName: 1-40 characters of CJK, letters, digits, - _ ( ), starting with CJK, a letter or
// a digit (§3). Any non-ASCII character counts as one CJK character.
bool valid_firmware_name(std::string_view v) {
  std::size_t chars = 0;
  bool first = true;
  for (std::size_t i = 0; i < v.size();) {
    const auto c = static_cast<unsigned char>(v[i]);
    std::size_t len = 1;
    bool ok = false;
    bool leading = false;
    if (c < 0x80) {
      leading = std::isalnum(c) != 0;
      ok = leading || c == '-' || c == '_' || c == '(' || c == ')';
    } else {
      len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
      ok = len > 0 && i + len <= v.size();
      leading = ok;
    }
    if (!ok || (first && !leading)) {
      return false;
    }
    first = false;
    i += len;
    ++chars;
  }
  return chars >= 1 && chars <= 40;
}

bool is_hex(std::string_view v) {
  return std::all_of(
      v.begin(), v.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

// A paged OTA list: {"Total", "PageSize", "PageCount", "CurrentPage", "Data": {item: list}}.

FirmwareRow visible_firmware(const ActionContext& ctx, Conn& c) {
  const std::string id = ctx.required("FirmwareId");
  auto f = ctx.instance_matches() ? find_firmware(c, id) : std::nullopt;
  if (!f) {
    refuse("iot.ota.NotExistedFirmware", "The specified firmware does not exist.");
  }
  return std::move(*f);
}

OtaJobRow visible_job(const ActionContext& ctx, Conn& c) {
  const std::string id = ctx.required("JobId");
  auto j = ctx.instance_matches() ? find_job(c, id) : std::nullopt;
  if (!j) {
    refuse("iot.ota.NotExistedJob", "The specified OTA job does not exist.");
  }
  return std::move(*j);
}

std::string random_id(ActionContext& ctx, std::size_t n) {
  return ctx.rng().with([&](Rng& r) { return random_alnum(r, n); });
}

json grant_json(const OssGrant& g, bool device_list, std::int64_t now) {
  json d;
  if (device_list) {
    d["FileUrl"] = g.object_url;
  } else {
    d["FirmwareUrl"] = g.object_url;
  }
  d["Host"] = g.host;
  d["Key"] = g.key;
  d[device_list ? "AccessKeyId" : "OSSAccessKeyId"] = g.access_key_id;
  d["Policy"] = g.policy;
  d["Signature"] = g.signature;
  d["ObjectStorage"] = "OSS";
  d["UtcCreate"] = utc_iso(now);
  return d;
}

// One entry of CreateOTAFirmware's MultiFiles.N (several files for one version: seed 001's
// user1.bin + user2.bin).
struct MultiFile {
  std::string name;
  std::int64_t size = 0;
  std::string url;
  std::string sign; // SignValue: the SignMethod digest, lower-case hex
  std::string md5;  // FileMd5 (optional)
};

constexpr std::size_t k_multi_files_max = 20; // UNVERIFIED

std::vector<MultiFile> multi_files_param(const ActionContext& ctx) {
  const auto names = ctx.repeated_map("MultiFiles", "Name");
  const auto urls = ctx.repeated_map("MultiFiles", "Url");
  const auto sizes = ctx.repeated_map("MultiFiles", "Size");
  const auto signs = ctx.repeated_map("MultiFiles", "SignValue");
  const auto md5s = ctx.repeated_map("MultiFiles", "FileMd5");
  if (names.size() > k_multi_files_max || urls.size() > k_multi_files_max) {
    invalid("MultiFiles: at most 20 files.");
  }
  std::vector<MultiFile> out;
  std::set<std::string> seen;
  for (const auto& [n, url] : urls) {
    const auto name = names.find(n);
    const auto size = sizes.find(n);
    const auto sign = signs.find(n);
    const std::string label = "MultiFiles." + std::to_string(n);
    if (name == names.end() || name->second.empty() || size == sizes.end() || sign == signs.end()) {
      invalid(label + " needs Name, Size, Url and SignValue.");
    }
    const auto bytes = parse_int(size->second);
    if (!bytes || *bytes < 1) {
      invalid(label + ".Size must be a positive number of bytes.");
    }
    if (!seen.insert(name->second).second) {
      invalid(label + ".Name: two files named " + name->second + ".");
    }
    const auto md5 = md5s.find(n);
    out.push_back(MultiFile{name->second,
                            *bytes,
                            url,
                            core::to_lower(sign->second),
                            md5 == md5s.end() ? std::string() : core::to_lower(md5->second)});
  }
  if (out.size() < names.size()) {
    invalid("MultiFiles.N.Name without MultiFiles.N.Url.");
  }
  return out;
}

// The uploaded object behind an object URL: refused with `code` when it is not one of ours,
// not uploaded, of another kind or purged (not used within 60 min of the upload).
OssObject uploaded_object(const ActionContext& ctx,
                          Conn& c,
                          std::string_view url,
                          std::string_view kind,
                          const std::string& code,
                          const std::string& what) {
  const std::string key = object_key_of_url(ctx.options(), url);
  auto object = key.empty() ? std::nullopt : find_object(c, key);
  if (!object || object->kind != kind) {
    refuse(code, "The " + what + " is not a URL returned by this platform.");
  }
  if (object->uploaded_ms == 0) {
    refuse(code, "Nothing was uploaded to the " + what + ".");
  }
  if (kind == "firmware" && ctx.now_ms() - object->uploaded_ms > k_oss_purge_ms) {
    Stmt used = c.prepare("SELECT 1 FROM ota_firmwares WHERE object_key = ?1 LIMIT 1");
    used.bind(1, key);
    if (!used.step()) {
      refuse(code,
             "The uploaded file was purged: CreateOTAFirmware must follow the upload within 60 "
             "minutes.");
    }
  }
  return std::move(*object);
}

json job_json(const OtaJobRow& j) {
  const json d = json::parse(j.details, nullptr, false);
  json out;
  out["JobId"] = j.job_id;
  out["JobStatus"] = j.status;
  out["JobType"] = j.job_type;
  out["FirmwareId"] = j.firmware_id;
  out["ProductKey"] = j.product_key;
  for (auto it = d.begin(); it != d.end(); ++it) {
    out[it.key()] = it.value();
  }
  out["UtcCreate"] = utc_iso(j.created_ms);
  out["UtcModified"] = utc_iso(j.modified_ms);
  if (j.status != k_job_planned) {
    out["UtcStartTime"] = utc_iso(j.start_ms);
  }
  if (j.end_ms > 0) {
    out["UtcEndTime"] = utc_iso(j.end_ms);
  }
  if (j.max_per_minute > 0) {
    out["MaximumPerMinute"] = j.max_per_minute;
  }
  if (j.retry_interval >= 0) {
    out["RetryInterval"] = j.retry_interval;
    out["RetryCount"] = j.retry_count;
  }
  if (j.timeout_min > 0) {
    out["TimeoutInMinutes"] = j.timeout_min;
  }
  return out;
}

json task_json(const OtaTaskRow& t,
               const OtaJobRow& j,
               const ProductRow* product,
               const std::string& dest_version) {
  json out;
  out["TaskId"] = t.task_id;
  out["JobId"] = j.job_id;
  out["IotId"] = t.iot_id;
  out["ProductKey"] = t.product_key;
  out["ProductName"] = product != nullptr ? product->name : "";
  out["DeviceName"] = t.device_name;
  out["FirmwareId"] = j.firmware_id;
  out["SrcVersion"] = t.src_version;
  out["DestVersion"] = dest_version;
  out["TaskStatus"] = t.status;
  out["Progress"] = t.progress;
  out["TaskDesc"] = t.task_desc;
  out["Timeout"] = j.timeout_min > 0 ? std::to_string(j.timeout_min) : "";
  out["UtcCreate"] = utc_iso(t.created_ms);
  out["UtcModified"] = utc_iso(t.modified_ms);
  return out;
}

// A target device of a new job.
struct Target {
  DeviceRow device;
  std::string version; // its version of the firmware's module
};

// Tag.N.Key / Tag.N.Value (§3): ≤ 10, key 1-30 of [A-Za-z0-9.], value 1-1024.
json tags_param(const ActionContext& ctx) {
  const auto keys = ctx.repeated_map("Tag", "Key");
  const auto values = ctx.repeated_map("Tag", "Value");
  if (keys.size() > k_tags_max) {
    invalid("At most 10 tags are allowed.");
  }
  json list = json::array();
  for (const auto& [n, key] : keys) {
    const auto value = values.find(n);
    const bool key_ok =
        !key.empty() && key.size() <= 30 && std::all_of(key.begin(), key.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.';
        });
    if (!key_ok || value == values.end() || value->second.empty() || value->second.size() > 1024) {
      invalid("Tag." + std::to_string(n) +
              ": Key must be 1-30 of [A-Za-z0-9.] and Value 1-1024 characters.");
    }
    list.push_back(json{{"Key", key}, {"Value", value->second}});
  }
  return list;
}

// The parameters static and dynamic upgrade jobs share (§3), checked; `details` starts with
// the ones QueryOTAJob echoes.
struct JobParams {
  std::vector<std::string> src_versions;
  std::optional<std::int64_t> max_per_minute;
  std::optional<std::int64_t> retry_interval;
  std::optional<std::int64_t> retry_count;
  std::optional<std::int64_t> timeout;
  std::int64_t overwrite = 1;
  json details;
};

JobParams job_params(const ActionContext& ctx) {
  JobParams p;
  p.src_versions = ctx.repeated("SrcVersion");
  const auto& src_versions = p.src_versions;
  if (src_versions.size() > k_src_versions_max) {
    invalid("At most 10 SrcVersion.N values are allowed.");
  }
  for (const std::string& v : src_versions) {
    if (!valid_version(v)) {
      invalid("SrcVersion.N must be 1-64 of [A-Za-z0-9._-].");
    }
  }
  p.max_per_minute = int_param(ctx, "MaximumPerMinute", 10, 10'000);
  p.retry_interval = int_param(ctx, "RetryInterval", 0, 1440);
  if (p.retry_interval && *p.retry_interval != 0 && *p.retry_interval != 10 &&
      *p.retry_interval != 30 && *p.retry_interval != 60 && *p.retry_interval != 1440) {
    invalid("RetryInterval must be 0, 10, 30, 60 or 1440 (minutes).");
  }
  p.retry_count = int_param(ctx, "RetryCount", 1, 5);
  if (p.retry_count && *p.retry_count != 1 && *p.retry_count != 2 && *p.retry_count != 5) {
    invalid("RetryCount must be 1, 2 or 5.");
  }
  if (p.retry_interval.has_value() != p.retry_count.has_value()) {
    invalid("RetryInterval and RetryCount go together.");
  }
  p.timeout = int_param(ctx, "TimeoutInMinutes", 1, 1440);
  p.overwrite = int_param(ctx, "OverwriteMode", 1, 2).value_or(1);
  json& details = p.details;
  if (!src_versions.empty()) {
    details["SrcVersions"] = json{{"SrcVersion", src_versions}};
  }
  details["OverwriteMode"] = p.overwrite;
  details["NeedPush"] = bool_param(ctx, "NeedPush", true);
  details["NeedConfirm"] = bool_param(ctx, "NeedConfirm", false);
  details["MultiModuleMode"] = bool_param(ctx, "MultiModuleMode", false);
  details["DownloadProtocol"] = ctx.param("DownloadProtocol").value_or("HTTPS");
  const json tags = tags_param(ctx);
  if (!tags.empty()) {
    details["Tags"] = json{{"OtaTagDTO", tags}};
  }
  return p;
}

// The FirmwareId of an upgrade job: of this product, verified when it needed to be.
FirmwareRow upgradable_firmware(const ActionContext& ctx, Conn& c, const ProductRow& product) {
  const FirmwareRow f = visible_firmware(ctx, c);
  if (f.product_key != product.product_key) {
    refuse("iot.ota.NotExistedFirmware", "The specified firmware does not exist.");
  }
  if (f.verify_status == k_verify_none || f.verify_status == k_verify_running ||
      f.verify_status == k_verify_failed) {
    refuse("iot.ota.UnverifiedFirmware",
           "The firmware needs a successful verification job (NeedToVerify) first.");
  }
  return f;
}

void fill_job(OtaJobRow& job, const JobParams& p) {
  job.job_type = std::string(k_job_upgrade);
  job.details = p.details.dump();
  job.max_per_minute = p.max_per_minute.value_or(0);
  job.retry_interval = p.retry_interval.value_or(-1);
  job.retry_count = p.retry_count.value_or(0);
  job.timeout_min = p.timeout.value_or(0);
}

// The device seqs of group `group_id` (iot.group.NotExistedGroup when there is none); its id
// and name go into the job's details as QueryOTAJob shows them.
std::unordered_set<std::int64_t>
group_members(Conn& c, const std::string& group_id, json& details) {
  const auto g = CloudStore::group(c, group_id);
  if (!g) {
    refuse("iot.group.NotExistedGroup", "The group does not exist."); // UNVERIFIED
  }
  details["GroupId"] = g->group_id;
  details["GroupName"] = g->name;
  const auto seqs = CloudStore::member_seqs(c, *g);
  return {seqs.begin(), seqs.end()};
}

// Creates the job and its tasks: devices at DestVersion are skipped, devices with an open task
// in another job get a FAILED task, the others a task in `initial` status.
json create_job(ActionContext& ctx,
                Conn& c,
                OtaJobRow job,
                const FirmwareRow& firmware,
                std::vector<Target> targets,
                std::string_view initial) {
  const std::int64_t now = ctx.now_ms();
  job.job_id = random_id(ctx, 26);
  job.firmware_id = firmware.firmware_id;
  job.product_key = firmware.product_key;
  job.created_ms = now;
  job.modified_ms = now;
  if (job.start_ms == 0) {
    job.start_ms = now;
  }
  job.status = std::string(job.start_ms > now ? k_job_planned : k_job_in_progress);
  job.next_slot_us = job.start_ms * 1000;
  job.seq = insert_job(c, job);
  std::int64_t open = 0;
  for (Target& target : targets) {
    if (target.version == firmware.dest_version) {
      continue; // already there: skipped (§3)
    }
    OtaTaskRow task;
    task.task_id = random_id(ctx, 26);
    task.job_seq = job.seq;
    task.product_key = target.device.product_key;
    task.device_name = target.device.device_name;
    task.iot_id = target.device.iot_id;
    task.module = firmware.module;
    task.src_version = target.version;
    task.progress = "0";
    task.ready_ms = job.start_ms;
    task.created_ms = now;
    task.modified_ms = now;
    Stmt busy =
        c.prepare("SELECT j.job_id FROM ota_tasks t JOIN ota_jobs j ON j.seq = t.job_seq WHERE "
                  "t.product_key = ?1 AND t.device_name = ?2 AND t.module = ?3 AND t.status IN "
                  "('CONFIRM', 'QUEUED', 'NOTIFIED', 'IN_PROGRESS') LIMIT 1");
    busy.bind(1, task.product_key).bind(2, task.device_name).bind(3, task.module);
    if (busy.step()) {
      task.status = std::string(k_task_failed);
      task.task_desc =
          "The device has an upgrade pending or in progress in another job (" + busy.text(0) + ").";
    } else {
      task.status = std::string(initial);
      ++open;
    }
    insert_task(c, task);
  }
  job.open_tasks = open;
  update_job(c, job);
  end_job_if_done(c, job, now);
  ctx.schedule(now);
  return json{{"JobId", job.job_id}, {"UtcCreate", utc_iso(now)}};
}

// Target devices named in a list (SPECIFIC, verification): unknown names are refused.
std::vector<Target> named_targets(const ActionContext& ctx,
                                  Conn& c,
                                  const FirmwareRow& firmware,
                                  const std::vector<std::string>& names) {
  std::vector<Target> out;
  std::unordered_set<std::string> seen;
  for (const std::string& name : names) {
    if (!seen.insert(name).second) {
      continue;
    }
    auto device = CloudStore::device(c, firmware.product_key, name);
    if (!device) {
      refuse("iot.device.NotExistedDevice",
             "The specified device does not exist: " + name.substr(0, 64) + ".");
    }
    std::string version = device_version(c, *device, firmware.module);
    out.push_back(Target{std::move(*device), std::move(version)});
  }
  (void)ctx;
  return out;
}

// The device names of an uploaded device-name list: one per line; a header "deviceName" and
// blank lines are ignored; the first comma-separated column counts.
std::vector<std::string> read_name_list(const CloudStore& store, const OssObject& object) {
  std::ifstream in(object_path(store, object.key), std::ios::binary);
  if (!in) {
    refuse("iot.ota.InvalidDnListFileUrl", "The device name list file cannot be read.");
  }
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (const std::size_t comma = line.find(','); comma != std::string::npos) {
      line.resize(comma);
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
      line.pop_back();
    }
    if (line.empty() || core::to_lower(line) == "devicename") {
      continue;
    }
    if (names.size() >= k_dn_list_max) {
      refuse("iot.ota.DeviceCountExceeded",
             "The device name list holds more than 1000000 devices.");
    }
    if (!valid_device_name(line)) {
      invalid("The device name list holds an invalid DeviceName on line " +
              std::to_string(names.size() + 1) + ".");
    }
    names.push_back(line);
  }
  return names;
}

} // namespace

Reply generate_ota_upload_url(ActionContext& ctx) {
  const std::string suffix = ctx.param("FileSuffix").value_or("bin");
  static const std::set<std::string, std::less<>> k_suffixes{
      "bin", "dav", "apk", "tar", "gz", "tar.gz", "zip", "gzip"};
  if (!k_suffixes.contains(suffix.empty() ? "bin" : suffix)) {
    invalid("FileSuffix must be one of bin, dav, apk, tar, gz, tar.gz, zip, gzip.");
  }
  const std::string random_part = ctx.rng().with([](Rng& r) { return random_hex(r, 32); });
  const OssGrant g = ctx.write([&](Conn& c) {
    return oss_grant(c,
                     ctx.store(),
                     ctx.options(),
                     "firmware",
                     suffix.empty() ? "bin" : suffix,
                     random_part,
                     ctx.now_ms());
  });
  return ok(json{{"Data", grant_json(g, false, ctx.now_ms())}});
}

Reply generate_device_name_list_url(ActionContext& ctx) {
  const std::string random_part = ctx.rng().with([](Rng& r) { return random_hex(r, 32); });
  const OssGrant g = ctx.write([&](Conn& c) {
    return oss_grant(c, ctx.store(), ctx.options(), "dnlist", "txt", random_part, ctx.now_ms());
  });
  return ok(json{{"Data", grant_json(g, true, ctx.now_ms())}});
}

Reply create_ota_firmware(ActionContext& ctx) {
  const ProductRow& product = ctx.product();
  const std::string dest = ctx.required("DestVersion");
  const std::string name = ctx.required("FirmwareName");
  const auto files = multi_files_param(ctx);
  const std::string url = files.empty() ? ctx.required("FirmwareUrl")
                                        : ctx.param("FirmwareUrl").value_or(files.front().url);
  if (!valid_version(dest)) {
    invalid("DestVersion must be 1-64 of [A-Za-z0-9._-].");
  }
  if (!valid_firmware_name(name)) {
    invalid("FirmwareName must be 1-40 characters of CJK, letters, digits, -, _, ( and ), "
            "starting with CJK, a letter or a digit.");
  }
  const std::string desc = ctx.param("FirmwareDesc").value_or("");
  if (desc.size() > 100) {
    invalid("FirmwareDesc must be at most 100 characters.");
  }
  std::string method = ctx.param("SignMethod").value_or("");
  if (method.empty()) {
    method = "MD5";
  }
  if (core::to_lower(method) == "md5") {
    method = "MD5";
  } else if (core::to_lower(method) == "sha256") {
    method = "SHA256";
  } else {
    invalid("SignMethod must be MD5 or SHA256.");
  }
  const int type = static_cast<int>(int_param(ctx, "Type", 0, 1).value_or(0));
  const std::string src = ctx.param("SrcVersion").value_or("");
  if (type == 1 && src.empty()) {
    invalid("SrcVersion is required for a differential firmware (Type 1).");
  }
  if (!src.empty() && !valid_version(src)) {
    invalid("SrcVersion must be 1-64 of [A-Za-z0-9._-].");
  }
  std::string module = ctx.param("ModuleName").value_or("");
  if (module.empty()) {
    module = std::string(k_default_module);
  } else if (!valid_module(module)) {
    invalid("ModuleName must be 1-64 of [A-Za-z0-9._-].");
  }
  const auto size = int_param(ctx, "FirmwareSize", 1, INT64_C(1) << 40);
  std::string sign = core::to_lower(ctx.param("FirmwareSign").value_or(""));
  if (!sign.empty() && (!is_hex(sign) || sign.size() != (method == "MD5" ? 32U : 64U))) {
    invalid("FirmwareSign must be the " + method + " hex digest of the file.");
  }
  const bool need_verify = bool_param(ctx, "NeedToVerify", false);
  const std::string udi = ctx.param("Udi").value_or("");
  if (udi.size() > 4096) {
    invalid("Udi must be at most 4096 characters.");
  }
  const std::string firmware_id = random_id(ctx, 26);
  return ctx.write([&](Conn& c) {
    const OssObject object =
        uploaded_object(ctx, c, url, "firmware", "iot.ota.InvalidFirmwareUrl", "FirmwareUrl");
    if (size && *size != object.size) {
      refuse("iot.ota.FirmwareSizeMismatch",
             "FirmwareSize " + std::to_string(*size) + " differs from the uploaded file's size " +
                 std::to_string(object.size) + ".");
    }
    const std::string& actual = method == "MD5" ? object.md5 : object.sha256;
    if (!sign.empty() && sign != actual) {
      refuse("iot.ota.FirmwareSignMismatch",
             "FirmwareSign does not match the " + method +
                 " digest of the uploaded file: the upload may be corrupted.");
    }
    json stored = json::array();
    for (const MultiFile& file : files) {
      const OssObject o = uploaded_object(
          ctx, c, file.url, "firmware", "iot.ota.InvalidFirmwareUrl", "MultiFiles.N.Url");
      if (file.size != o.size) {
        refuse("iot.ota.FirmwareSizeMismatch",
               "MultiFiles: the size of " + file.name + " differs from the uploaded file's.");
      }
      if (file.sign != (method == "MD5" ? o.md5 : o.sha256) ||
          (!file.md5.empty() && file.md5 != o.md5)) {
        refuse("iot.ota.FirmwareSignMismatch",
               "MultiFiles: SignValue or FileMd5 of " + file.name +
                   " does not match the uploaded file: the upload may be corrupted.");
      }
      stored.push_back(json{{"Name", file.name},
                            {"Size", file.size},
                            {"Url", file.url},
                            {"SignValue", file.sign},
                            {"FileMd5", o.md5},
                            {"object_key", o.key}});
    }
    FirmwareRow f;
    f.files = stored.dump();
    f.firmware_id = firmware_id;
    f.product_key = product.product_key;
    f.name = name;
    f.dest_version = dest;
    f.src_version = src;
    f.type = type;
    f.module = module;
    f.url = url;
    f.object_key = object.key;
    f.size = object.size;
    f.sign = sign.empty() ? actual : sign;
    f.sign_method = method;
    f.md5 = object.md5;
    f.description = desc;
    f.udi = udi;
    f.verify_status = need_verify ? k_verify_none : k_verify_not_needed;
    f.created_ms = ctx.now_ms();
    f.modified_ms = ctx.now_ms();
    firmware_table().insert(c, f);
    return ok(
        json{{"Data", {{"FirmwareId", f.firmware_id}, {"UtcCreate", utc_iso(f.created_ms)}}}});
  });
}

Reply query_ota_firmware(ActionContext& ctx) {
  return ctx.read([&](Conn& c) {
    const FirmwareRow f = visible_firmware(ctx, c);
    const ProductRow* p = ctx.store().product(f.product_key);
    json info;
    info["FirmwareId"] = f.firmware_id;
    info["FirmwareName"] = f.name;
    info["DestVersion"] = f.dest_version;
    info["SrcVersion"] = f.src_version;
    info["FirmwareSize"] = f.size;
    info["FirmwareSign"] = f.sign;
    info["SignMethod"] = f.sign_method;
    info["FirmwareUrl"] = f.url;
    info["FirmwareDesc"] = f.description;
    info["ProductKey"] = f.product_key;
    info["ProductName"] = p != nullptr ? p->name : "";
    info["Type"] = f.type;
    info["ModuleName"] = f.module;
    info["Status"] = f.verify_status;
    info["VerifyProgress"] =
        f.verify_status == k_verify_ok || f.verify_status == k_verify_failed ? 100 : 0;
    info["Udi"] = f.udi;
    const json files = json::parse(f.files, nullptr, false);
    if (files.is_array() && !files.empty()) {
      json list = json::array();
      for (json file : files) {
        file.erase("object_key");
        list.push_back(std::move(file));
      }
      info["MultiFiles"] = std::move(list);
    }
    info["UtcCreate"] = utc_iso(f.created_ms);
    info["UtcModified"] = utc_iso(f.modified_ms);
    return ok(json{{"FirmwareInfo", std::move(info)}});
  });
}

Reply create_ota_verify_job(ActionContext& ctx) {
  const ProductRow& product = ctx.product();
  const std::vector<std::string> names = ctx.repeated("TargetDeviceName");
  if (names.empty()) {
    (void)ctx.required("TargetDeviceName.1");
  }
  if (names.size() > k_verify_names_max) {
    refuse("iot.ota.DeviceCountExceeded",
           "A verification job takes at most 10 devices (TargetDeviceName.N).");
  }
  const auto timeout = int_param(ctx, "TimeoutInMinutes", 1, 1440);
  json details;
  details["SelectionType"] = "STATIC";
  details["TargetSelection"] = "SPECIFIC";
  details["NeedPush"] = bool_param(ctx, "NeedPush", true);
  details["NeedConfirm"] = bool_param(ctx, "NeedConfirm", false);
  details["DownloadProtocol"] = ctx.param("DownloadProtocol").value_or("HTTPS");
  const json tags = tags_param(ctx);
  if (!tags.empty()) {
    details["Tags"] = json{{"OtaTagDTO", tags}};
  }
  return ctx.write([&](Conn& c) {
    FirmwareRow f = visible_firmware(ctx, c);
    if (f.product_key != product.product_key) {
      refuse("iot.ota.NotExistedFirmware", "The specified firmware does not exist.");
    }
    details["DestVersion"] = f.dest_version;
    OtaJobRow job;
    job.job_type = std::string(k_job_verify);
    job.details = details.dump();
    job.timeout_min = timeout.value_or(0);
    std::vector<Target> targets = named_targets(ctx, c, f, names);
    const std::string initial(details["NeedConfirm"].get<bool>() ? k_task_confirm : k_task_queued);
    c.prepare("UPDATE ota_firmwares SET verify_status = ?2, modified_ms = ?3 WHERE "
              "firmware_id = ?1")
        .bind(1, f.firmware_id)
        .bind(2, std::int64_t{k_verify_running})
        .bind(3, ctx.now_ms())
        .run();
    return ok(json{{"Data", create_job(ctx, c, job, f, std::move(targets), initial)}});
  });
}

Reply create_ota_static_upgrade_job(ActionContext& ctx) {
  const ProductRow& product = ctx.product();
  const std::string selection = ctx.required("TargetSelection");
  if (selection != "ALL" && selection != "SPECIFIC" && selection != "GRAY" &&
      selection != "GROUP") {
    invalid("TargetSelection must be ALL, SPECIFIC, GRAY or GROUP.");
  }
  const std::string group_id = ctx.param("GroupId").value_or("");
  if (selection == "GROUP" && group_id.empty()) {
    invalid("TargetSelection GROUP needs GroupId (and GroupType).");
  }
  const std::vector<std::string> names = ctx.repeated("TargetDeviceName");
  const std::string dn_list_url = ctx.param("DnListFileUrl").value_or("");
  if (selection == "SPECIFIC") {
    if (names.empty() && dn_list_url.empty()) {
      invalid("TargetSelection SPECIFIC needs TargetDeviceName.N or DnListFileUrl.");
    }
    if (!names.empty() && !dn_list_url.empty()) {
      invalid("Give TargetDeviceName.N or DnListFileUrl, not both.");
    }
    if (names.size() > k_static_names_max) {
      refuse("iot.ota.DeviceCountExceeded",
             "TargetDeviceName.N takes at most 200 devices per call; use DnListFileUrl "
             "(GenerateDeviceNameListURL) for more.");
    }
  } else if (!names.empty() || !dn_list_url.empty()) {
    invalid("TargetDeviceName.N and DnListFileUrl go with TargetSelection SPECIFIC only.");
  }
  std::optional<std::int64_t> gray;
  if (selection == "GRAY") {
    gray = int_param(ctx, "GrayPercent", 1, 100);
    if (!gray) {
      (void)ctx.required("GrayPercent");
    }
  }
  JobParams p = job_params(ctx);
  const auto& src_versions = p.src_versions;
  const auto schedule = int_param(ctx, "ScheduleTime", 1, INT64_MAX);
  const auto schedule_finish = int_param(ctx, "ScheduleFinishTime", 1, INT64_MAX);
  const std::int64_t now = ctx.now_ms();
  if (schedule && (*schedule < now + k_schedule_min_ms || *schedule > now + k_schedule_max_ms)) {
    invalid("ScheduleTime must be 5 minutes to 7 days ahead (epoch milliseconds).");
  }
  if (schedule_finish) {
    const std::int64_t from = schedule.value_or(now);
    if (*schedule_finish < from + k_finish_min_ms || *schedule_finish > from + k_finish_max_ms) {
      invalid("ScheduleFinishTime must be 1 hour to 30 days after the start.");
    }
  }
  json& details = p.details;
  details["SelectionType"] = "STATIC";
  details["TargetSelection"] = selection;
  if (gray) {
    details["GrayPercent"] = std::to_string(*gray);
  }
  // QueryOTAJob does not echo DnListFileUrl: the SDK's QueryOTAJobResponseBodyData has no such
  // field.
  if (schedule) {
    details["UtcScheduleTime"] = utc_iso(*schedule);
  }
  if (schedule_finish) {
    details["UtcScheduleFinishTime"] = utc_iso(*schedule_finish);
  }
  const double scale = ctx.options().time_scale;
  return ctx.write([&](Conn& c) {
    const FirmwareRow f = upgradable_firmware(ctx, c, product);
    details["DestVersion"] = f.dest_version;
    const std::set<std::string, std::less<>> wanted(src_versions.begin(), src_versions.end());
    auto eligible = [&](const std::string& version) {
      if (f.type == 1 && version != f.src_version) {
        return false; // a differential package applies to its SrcVersion only
      }
      return wanted.empty() || wanted.contains(version);
    };
    std::vector<Target> targets;
    if (selection == "SPECIFIC") {
      std::vector<std::string> list = names;
      if (!dn_list_url.empty()) {
        const OssObject object = uploaded_object(
            ctx, c, dn_list_url, "dnlist", "iot.ota.InvalidDnListFileUrl", "DnListFileUrl");
        list = read_name_list(ctx.store(), object);
      }
      for (Target& t : named_targets(ctx, c, f, list)) {
        if (eligible(t.version) || t.version == f.dest_version) {
          targets.push_back(std::move(t));
        }
      }
    } else {
      Stmt s = c.prepare("SELECT seq FROM devices WHERE product_key = ?1 ORDER BY seq");
      s.bind(1, f.product_key);
      std::vector<std::int64_t> seqs;
      while (s.step()) {
        seqs.push_back(s.int64(0));
      }
      if (selection == "GROUP") {
        const auto members = group_members(c, group_id, details);
        std::erase_if(seqs, [&](std::int64_t seq) { return !members.contains(seq); });
      }
      for (const std::int64_t seq : seqs) {
        auto d = CloudStore::device_by_seq(c, seq);
        if (!d) {
          continue;
        }
        std::string version = device_version(c, *d, f.module);
        if (eligible(version)) {
          targets.push_back(Target{std::move(*d), std::move(version)});
        }
      }
      if (gray) {
        // The gray share of the devices that need the upgrade, rounded down (§3), at random.
        std::erase_if(targets, [&](const Target& t) { return t.version == f.dest_version; });
        ctx.rng().with([&](Rng& r) { std::shuffle(targets.begin(), targets.end(), r); });
        targets.resize(targets.size() * static_cast<std::size_t>(*gray) / 100);
        std::sort(targets.begin(), targets.end(), [](const Target& a, const Target& b) {
          return a.device.seq < b.device.seq;
        });
      }
    }
    // OverwriteMode 2: pending (not yet IN_PROGRESS) tasks of other jobs give way.
    if (p.overwrite == 2) {
      for (const Target& t : targets) {
        Stmt s = c.prepare(
            task_table().select("WHERE product_key = ?1 AND device_name = ?2 AND "
                                "module = ?3 AND status IN ('CONFIRM', 'QUEUED', 'NOTIFIED')"));
        s.bind(1, t.device.product_key).bind(2, t.device.device_name).bind(3, f.module);
        std::vector<OtaTaskRow> pending = task_table().read_all(s);
        s.reset();
        for (OtaTaskRow& task : pending) {
          finish_task(c, task, k_task_canceled, "Overwritten by a newer job.", now);
        }
      }
    }
    OtaJobRow job;
    fill_job(job, p);
    if (schedule) {
      job.schedule_ms = *schedule;
      job.start_ms = now + static_cast<std::int64_t>(static_cast<double>(*schedule - now) / scale);
    }
    if (schedule_finish) {
      const std::int64_t start = job.start_ms != 0 ? job.start_ms : now;
      job.schedule_finish_ms =
          start + static_cast<std::int64_t>(
                      static_cast<double>(*schedule_finish - schedule.value_or(now)) / scale);
    }
    const std::string initial(details["NeedConfirm"].get<bool>() ? k_task_confirm : k_task_queued);
    return ok(json{{"Data", create_job(ctx, c, job, f, std::move(targets), initial)}});
  });
}

// A dynamic job (docs/cloud-emulator.md "OTA"): no tasks at creation; every tick it takes on
// the devices that match (sim/cloud_ota_sim.cpp pick_up) until CancelOTAStrategyByJob.
Reply create_ota_dynamic_upgrade_job(ActionContext& ctx) {
  const ProductRow& product = ctx.product();
  JobParams p = job_params(ctx);
  if (p.src_versions.empty()) {
    invalid("A dynamic job needs SrcVersion.N: the versions it upgrades."); // UNVERIFIED
  }
  const std::int64_t mode = int_param(ctx, "DynamicMode", 1, 2).value_or(1);
  const std::string group_id = ctx.param("GroupId").value_or("");
  json& details = p.details;
  details["SelectionType"] = "DYNAMIC";
  details["TargetSelection"] = group_id.empty() ? "ALL" : "GROUP";
  details["DynamicMode"] = mode;
  return ctx.write([&](Conn& c) {
    const FirmwareRow f = upgradable_firmware(ctx, c, product);
    if (!group_id.empty()) {
      (void)group_members(c, group_id, details);
    }
    details["DestVersion"] = f.dest_version;
    OtaJobRow job;
    fill_job(job, p);
    job.dynamic_mode = mode;
    return ok(json{{"Data", create_job(ctx, c, job, f, {}, k_task_queued)}});
  });
}

Reply query_ota_job(ActionContext& ctx) {
  return ctx.read([&](Conn& c) { return ok(json{{"Data", job_json(visible_job(ctx, c))}}); });
}

Reply list_ota_task_by_job(ActionContext& ctx) {
  const std::int64_t page_size = ctx.page_param("PageSize", 10, 1, 100);
  const std::int64_t current = ctx.page_param("CurrentPage", 1, 1, 1'000'000'000);
  const std::string status = ctx.param("TaskStatus").value_or("");
  if (!status.empty() && status != k_task_confirm && status != k_task_queued &&
      status != k_task_notified && status != k_task_in_progress && status != k_task_succeeded &&
      status != k_task_failed && status != k_task_canceled) {
    invalid("TaskStatus must be CONFIRM, QUEUED, NOTIFIED, IN_PROGRESS, SUCCEEDED, FAILED or "
            "CANCELED.");
  }
  const std::vector<std::string> names = ctx.repeated("DeviceNames");
  if (names.size() > 100) {
    invalid("DeviceNames.N takes at most 100 names.");
  }
  return ctx.read([&](Conn& c) {
    const OtaJobRow job = visible_job(ctx, c);
    const auto firmware = find_firmware(c, job.firmware_id);
    const std::string dest = firmware ? firmware->dest_version : "";
    std::string where = "WHERE job_seq = ?1";
    if (!status.empty()) {
      where += " AND status = ?2";
    }
    if (!names.empty()) {
      where += " AND device_name IN (SELECT value FROM json_each(?3))";
    }
    const std::string name_list = json(names).dump();
    // ?4 and ?5 (LIMIT / OFFSET) are in both statements, so every index up to 5 may be bound.
    Stmt count = c.prepare("SELECT COUNT(*) FROM ota_tasks " + where + " AND ?4 >= 0 AND ?5 >= 0");
    Stmt s = c.prepare(task_table().select(where + " ORDER BY seq LIMIT ?4 OFFSET ?5"));
    for (Stmt* st : {&count, &s}) {
      st->bind(1, job.seq).bind(4, page_size).bind(5, (current - 1) * page_size);
      if (!status.empty()) {
        st->bind(2, status);
      }
      if (!names.empty()) {
        st->bind(3, name_list);
      }
    }
    count.step();
    const std::int64_t total = count.int64(0);
    json list = json::array();
    const ProductRow* product = ctx.store().product(job.product_key);
    while (s.step()) {
      list.push_back(task_json(task_table().read(s), job, product, dest));
    }
    return page_reply(
        "CurrentPage", total, page_size, current, "SimpleOTATaskInfo", std::move(list));
  });
}

Reply cancel_ota_task_by_job(ActionContext& ctx) {
  const bool scheduled = bool_param(ctx, "CancelScheduledTask", false);
  const bool queued = bool_param(ctx, "CancelQueuedTask", false);
  const bool notified = bool_param(ctx, "CancelNotifiedTask", false);
  const bool in_progress = bool_param(ctx, "CancelInProgressTask", false);
  const bool unconfirmed = bool_param(ctx, "CancelUnconfirmedTask", false);
  if (!(scheduled || queued || notified || in_progress || unconfirmed)) {
    invalid("Set at least one of CancelScheduledTask, CancelQueuedTask, CancelNotifiedTask, "
            "CancelInProgressTask, CancelUnconfirmedTask to true.");
  }
  return ctx.write([&](Conn& c) {
    OtaJobRow job = visible_job(ctx, c);
    const std::int64_t now = ctx.now_ms();
    std::vector<std::string> statuses;
    if (job.status == k_job_planned) {
      // A scheduled job's tasks are all "scheduled": CancelScheduledTask cancels them.
      if (scheduled) {
        statuses = {"CONFIRM", "QUEUED"};
      }
    } else {
      if (queued) {
        statuses.emplace_back("QUEUED");
      }
      if (notified) {
        statuses.emplace_back("NOTIFIED");
      }
      if (in_progress) {
        statuses.emplace_back("IN_PROGRESS");
      }
      if (unconfirmed) {
        statuses.emplace_back("CONFIRM");
      }
    }
    for (const std::string& st : statuses) {
      cancel_tasks(c, job.seq, {st}, "Canceled by the user.", now);
    }
    return ok();
  });
}

Reply list_ota_job_by_firmware(ActionContext& ctx) {
  const std::int64_t page_size = ctx.page_param("PageSize", 10, 1, 100);
  const std::int64_t current = ctx.page_param("CurrentPage", 1, 1, 1'000'000'000);
  return ctx.read([&](Conn& c) {
    const FirmwareRow f = visible_firmware(ctx, c);
    Stmt count = c.prepare("SELECT COUNT(*) FROM ota_jobs WHERE firmware_id = ?1");
    count.bind(1, f.firmware_id);
    count.step();
    const std::int64_t total = count.int64(0);
    Stmt s = c.prepare("SELECT job_id FROM ota_jobs WHERE firmware_id = ?1 ORDER BY seq DESC "
                       "LIMIT ?2 OFFSET ?3");
    s.bind(1, f.firmware_id).bind(2, page_size).bind(3, (current - 1) * page_size);
    std::vector<std::string> ids;
    while (s.step()) {
      ids.push_back(s.text(0));
    }
    json list = json::array();
    for (const std::string& id : ids) {
      const auto j = find_job(c, id);
      if (!j) {
        continue;
      }
      const json full = job_json(*j);
      json item;
      for (const char* key : {"JobId",
                              "JobStatus",
                              "JobType",
                              "TargetSelection",
                              "SelectionType",
                              "UtcStartTime",
                              "UtcEndTime",
                              "UtcCreate",
                              "UtcModified",
                              "FirmwareId",
                              "ProductKey",
                              "Tags"}) {
        if (full.contains(key)) {
          item[key] = full[key];
        }
      }
      list.push_back(std::move(item));
    }
    return page_reply(
        "CurrentPage", total, page_size, current, "SimpleOTAJobInfo", std::move(list));
  });
}

Reply cancel_ota_strategy_by_job(ActionContext& ctx) {
  return ctx.write([&](Conn& c) {
    OtaJobRow job = visible_job(ctx, c);
    const std::int64_t now = ctx.now_ms();
    if (job.status == k_job_completed || job.status == k_job_canceled) {
      return ok();
    }
    // No task is started any more: those not yet notified are canceled; notified and running
    // ones carry on. The job ends CANCELED; a dynamic job takes on no more devices.
    if (job.dynamic_mode > 0) {
      job.dynamic_mode = 0;
      update_job(c, job);
    }
    cancel_tasks(
        c, job.seq, {k_task_confirm, k_task_queued}, "The job's strategy was canceled.", now);
    if (auto fresh = find_job_by_seq(c, job.seq)) {
      if (fresh->status != k_job_completed && fresh->status != k_job_canceled) {
        fresh->canceled_tasks = std::max<std::int64_t>(fresh->canceled_tasks, 1);
        fresh->modified_ms = now;
        update_job(c, *fresh);
        end_job_if_done(c, *fresh, now);
      }
    }
    return ok();
  });
}

} // namespace iot::sim::cloud
