// SPDX-License-Identifier: MIT
// ota upload: the file streamed to the platform's OSS (hashed on the way), then
// CreateOTAFirmware, then (when asked) a verification job waited for.
#include "cloud/oss_upload.hpp"
#include "commands/cloud_access.hpp"
#include "commands/ota.hpp"
#include "commands/ota_plan.hpp"
#include "core/duration.hpp"
#include "core/file.hpp"
#include "core/interrupt.hpp"
#include "core/text.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <set>

namespace iot::commands {
namespace {

using namespace std::chrono_literals;

bool valid_version(const std::string& v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

std::string firmware_name(const OtaUploadOptions& opts) {
  if (!opts.name.empty()) {
    return opts.name;
  }
  std::string raw = std::filesystem::path(opts.files.front()).stem().string() + "-" + opts.version;
  std::string out;
  for (char c : raw) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' ||
                    c == '(' || c == ')';
    out += ok ? c : '_';
  }
  if (out.empty() || std::isalnum(static_cast<unsigned char>(out.front())) == 0) {
    out = "fw" + out;
  }
  return out.substr(0, 40);
}

std::string file_suffix(const std::string& file) {
  static const std::vector<std::string> k_allowed = {
      "tar.gz", "bin", "dav", "apk", "tar", "gz", "zip", "gzip"};
  for (const auto& s : k_allowed) {
    if (file.size() > s.size() + 1 && file.ends_with("." + s)) {
      return s;
    }
  }
  return "bin";
}

// A firmware is a regular, non-empty file of at most 1 000 MB (§3): checked before anything is
// sent.
Status check_firmware_file(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return fail(core::file_error(ErrorKind::usage, "firmware", file, errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(
        ErrorKind::usage,
        "firmware " + file + " is not a regular file (" +
            (S_ISDIR(st.st_mode) ? std::string("a directory") : std::string("a device or pipe")) +
            "): give the firmware file itself");
  }
  if (st.st_size == 0) {
    return fail(ErrorKind::usage,
                "firmware " + file +
                    " is empty (0 bytes): nothing a device could install — "
                    "check the build output");
  }
  constexpr std::int64_t k_max = 1000LL * 1024 * 1024;
  if (st.st_size > k_max) {
    return fail(ErrorKind::usage,
                "firmware " + file + " is " + std::to_string(st.st_size / (1024 * 1024)) +
                    " MB; the platform takes at most 1000 MB (§3)");
  }
  return {};
}

// Waits for the verification: the firmware's Status 1 (verified) or 3 (failed).
Result<std::string> wait_verify(cloud::IotApi& api,
                                const std::string& firmware_id,
                                const std::string& job_id,
                                std::chrono::milliseconds timeout,
                                Context& ctx) {
  const auto deadline = std::chrono::steady_clock::now() + timeout + 1min;
  ctx.output->info("verification job " + job_id + ": waiting for the devices");
  for (;;) {
    const auto fw = IOT_TRY(api.query_ota_firmware(firmware_id));
    if (fw.status && *fw.status == 1) {
      return std::string("verified");
    }
    if (fw.status && *fw.status == 3) {
      std::string detail;
      if (auto failed =
              api.list_all_ota_tasks(job_id, std::string(to_string(ota::TaskStatus::failed)));
          failed && !failed->empty()) {
        for (const auto& t : *failed) {
          detail += (detail.empty() ? "" : "; ") + t.device_name + ": " + t.task_desc;
        }
      }
      return fail(ErrorKind::cloud,
                  "firmware " + firmware_id + " failed verification (job " + job_id + ")" +
                      (detail.empty() ? "" : ": " + detail));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return fail(ErrorKind::cloud,
                  "verification job " + job_id + " has not finished after " +
                      core::format_duration(timeout));
    }
    if (!core::sleep_unless_interrupted(2s)) {
      return fail(ErrorKind::interrupted,
                  "interrupted while waiting for verification job " + job_id + " (firmware " +
                      firmware_id + " exists)");
    }
  }
}

struct UploadChecks {
  std::string method;
  std::vector<std::string> verify_devices;
};

Result<UploadChecks> check_upload(const OtaUploadOptions& opts, Context& ctx) {
  if (opts.version.empty()) {
    return fail(ErrorKind::usage,
                "--dest-version V is required: the version the firmware installs");
  }
  if (!valid_version(opts.version)) {
    return fail(ErrorKind::usage, "--dest-version: 1-64 of A-Z a-z 0-9 . _ -");
  }
  if (!opts.module.empty() && !valid_version(opts.module)) {
    return fail(ErrorKind::usage, "--firmware-module: 1-64 of A-Z a-z 0-9 . _ -");
  }
  if (opts.diff && !valid_version(opts.src_version)) {
    return fail(ErrorKind::usage, "--diff needs --src-version (the version it upgrades from)");
  }
  UploadChecks c;
  c.method = core::to_upper(opts.sign_method);
  if (c.method != "MD5" && c.method != "SHA256") {
    return fail(ErrorKind::usage, "--sign-method: MD5 or SHA256");
  }
  c.verify_devices = IOT_TRY(resolve_device_names(opts.verify_devices, {.required = false}, ctx));
  if (c.verify_devices.size() > cloud::k_ota_verify_devices_max) {
    return fail(ErrorKind::usage, "--verify-device: at most 10 devices (§3)");
  }
  if (opts.files.size() > cloud::k_firmware_files_max) {
    return fail(ErrorKind::usage,
                "at most " + std::to_string(cloud::k_firmware_files_max) +
                    " files make one firmware, not " + std::to_string(opts.files.size()));
  }
  std::set<std::string> names;
  for (const auto& file : opts.files) {
    IOT_TRY(check_firmware_file(file));
    if (!names.insert(std::filesystem::path(file).filename().string()).second) {
      return fail(ErrorKind::usage,
                  "two firmware files are named " +
                      std::filesystem::path(file).filename().string() +
                      ": a device tells the files of a multi-file firmware apart by name");
    }
  }
  return c;
}

// One file on the platform's OSS: what CreateOTAFirmware needs of it.
struct Uploaded {
  std::string name; // the file name a device sees
  std::string url;
  std::int64_t size = 0;
  std::string md5;
  std::string sha256;
};

Result<Uploaded> upload_file(const std::string& file, CloudSession& cloud, Context& ctx) {
  auto source = IOT_TRY(cloud::HashingFileSource::open(file));
  const auto grant = IOT_TRY(cloud.api->generate_ota_upload_url(file_suffix(file)));
  cloud::PostObjectOptions po;
  po.filename = std::filesystem::path(file).filename().string();
  po.timeout = std::chrono::minutes(30);
  ctx.output->info("uploading " + file + " (" + std::to_string(source->size()) + " bytes)");
  IOT_TRY(cloud::post_object(*cloud.http, grant, source->body(ctx.seams.tamper_upload), po));
  if (source->bytes_read() != source->size()) {
    return fail(ErrorKind::io,
                file + " changed while it was uploaded (" + std::to_string(source->bytes_read()) +
                    " of " + std::to_string(source->size()) + " bytes read): upload again");
  }
  return Uploaded{po.filename, grant.url, source->size(), source->md5_hex(), source->sha256_hex()};
}

} // namespace

Result<core::Table> run_ota_upload(const OtaUploadOptions& opts, Context& ctx) {
  const auto checks = IOT_TRY(check_upload(opts, ctx));
  const auto& method = checks.method;
  auto cloud = IOT_TRY(open_cloud(ctx));
  const auto pk = IOT_TRY(product_key_or_config(opts.product_key, cloud.settings));
  std::vector<Uploaded> uploaded;
  for (const auto& file : opts.files) {
    uploaded.push_back(IOT_TRY(upload_file(file, cloud, ctx)));
  }
  auto sign_of = [&](const Uploaded& u) { return method == "MD5" ? u.md5 : u.sha256; };
  cloud::CreateFirmwareRequest req;
  req.product_key = pk;
  req.dest_version = opts.version;
  req.firmware_name = firmware_name(opts);
  // The first file is the firmware's FirmwareUrl; a multi-file firmware lists every file in
  // MultiFiles, each signed (UNVERIFIED: whether the platform wants the first file in both).
  req.firmware_url = uploaded.front().url;
  req.firmware_size = uploaded.front().size;
  req.sign_method = method;
  req.firmware_sign = sign_of(uploaded.front());
  if (uploaded.size() > 1) {
    for (const auto& u : uploaded) {
      req.files.push_back(cloud::FirmwareFile{u.name, u.size, u.url, sign_of(u), u.md5});
    }
  }
  req.module_name = opts.module;
  req.type = opts.diff ? 1 : 0;
  req.src_version = opts.diff ? opts.src_version : std::string();
  req.description = opts.description;
  if (!checks.verify_devices.empty()) {
    req.need_to_verify = true;
  }
  auto fw = cloud.api->create_ota_firmware(req);
  if (!fw) {
    const auto& m = fw.error().message;
    if (m.find("FirmwareSignMismatch") != std::string::npos ||
        m.find("FirmwareSizeMismatch") != std::string::npos) {
      return fail(fw.error().context("the upload was corrupted on the way (the platform's copy "
                                     "does not match the " +
                                     method + " computed while sending): upload again"));
    }
    return fail(fw.error());
  }
  std::string verify = "not requested";
  if (!checks.verify_devices.empty()) {
    const auto minutes = static_cast<int>(
        std::chrono::duration_cast<std::chrono::minutes>(opts.verify_timeout).count());
    const auto job =
        IOT_TRY_CTX(cloud.api->create_ota_verify_job(pk, *fw, checks.verify_devices, minutes),
                    "firmware " + *fw + " created; verification");
    verify = IOT_TRY(wait_verify(*cloud.api, *fw, job, opts.verify_timeout, ctx));
  }
  std::int64_t total_size = 0;
  for (const auto& u : uploaded) {
    total_size += u.size;
  }
  core::Table t;
  t.single = true;
  t.columns = {"firmware_id",
               "product_key",
               "version",
               "module",
               "name",
               "size",
               "sign_method",
               "sign",
               "verify",
               "files"};
  t.add_row({*fw,
             pk,
             opts.version,
             opts.module.empty() ? std::string("default") : opts.module,
             req.firmware_name,
             total_size,
             method,
             req.firmware_sign,
             verify,
             static_cast<std::int64_t>(uploaded.size())});
  return t;
}

} // namespace iot::commands
