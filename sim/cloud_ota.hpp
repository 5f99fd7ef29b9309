// SPDX-License-Identifier: MIT
// OTA in the cloud emulator (§3, docs/cloud-emulator.md "OTA"): the rows of the ota_* tables,
// the simulated devices that move tasks QUEUED → NOTIFIED → IN_PROGRESS → SUCCEEDED / FAILED
// (sim/cloud_ota_sim.cpp), and the OSS-style PostObject upload (sim/cloud_oss.cpp). The Actions
// are in sim/cloud_actions_ota.cpp.
#pragma once

#include "sim/cloud_rows.hpp"
#include "sim/cloud_service.hpp"
#include "sim/cloud_store.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace iot::sim::cloud {

// Task statuses (§3).
inline constexpr std::string_view k_task_confirm = "CONFIRM";
inline constexpr std::string_view k_task_queued = "QUEUED";
inline constexpr std::string_view k_task_notified = "NOTIFIED";
inline constexpr std::string_view k_task_in_progress = "IN_PROGRESS";
inline constexpr std::string_view k_task_succeeded = "SUCCEEDED";
inline constexpr std::string_view k_task_failed = "FAILED";
inline constexpr std::string_view k_task_canceled = "CANCELED";

// Job statuses and types (§3, spelling as the doc gives it, "VERFIY" included).
inline constexpr std::string_view k_job_planned = "PLANNED";
inline constexpr std::string_view k_job_in_progress = "IN_PROGRESS";
inline constexpr std::string_view k_job_completed = "COMPLETED";
inline constexpr std::string_view k_job_canceled = "CANCELED";
inline constexpr std::string_view k_job_verify = "VERFIY_FIRMWARE";
inline constexpr std::string_view k_job_upgrade = "UPGRADE_FIRMWARE";

inline constexpr std::string_view k_default_module = "default";

// Firmware verification status (QueryOTAFirmware Status).
inline constexpr int k_verify_not_needed = -1;
inline constexpr int k_verify_none = 0;
inline constexpr int k_verify_ok = 1;
inline constexpr int k_verify_running = 2;
inline constexpr int k_verify_failed = 3;

// The OSS-style endpoint: POST = PostObject upload, GET <path>/<key> = download.
inline constexpr std::string_view k_oss_path = "/_oss/iotx-ota";
inline constexpr std::string_view k_oss_bucket = "iotx-ota";
inline constexpr std::int64_t k_oss_policy_ms = 60'000;   // upload within 1 min (§3)
inline constexpr std::int64_t k_oss_purge_ms = 3'600'000; // CreateOTAFirmware within 60 min

struct FirmwareRow {
  std::int64_t seq = 0;
  std::string firmware_id;
  std::string product_key;
  std::string name;
  std::string dest_version;
  std::string src_version;
  int type = 0; // 0 full, 1 diff
  std::string module;
  std::string url;
  std::string object_key;
  std::int64_t size = 0;
  std::string sign;
  std::string sign_method;
  std::string md5;
  std::string description;
  std::string udi;
  int verify_status = k_verify_not_needed;
  std::int64_t created_ms = 0;
  std::int64_t modified_ms = 0;
  // JSON array of the MultiFiles entries {Name, Size, Url, SignValue, FileMd5, object_key};
  // "[]" for a single-file firmware.
  std::string files = "[]";
};

struct OtaJobRow {
  std::int64_t seq = 0;
  std::string job_id;
  std::string firmware_id;
  std::string product_key;
  std::string job_type;
  std::string status;
  std::string details;              // JSON: the echoed create parameters
  std::int64_t max_per_minute = 0;  // 0: no limit
  std::int64_t retry_interval = -1; // minutes; -1: no retry
  std::int64_t retry_count = 0;
  std::int64_t timeout_min = 0;        // 0: none
  std::int64_t schedule_ms = 0;        // requested ScheduleTime (0: none)
  std::int64_t schedule_finish_ms = 0; // real time at which pending tasks are canceled (0: none)
  std::int64_t start_ms = 0;           // real time the job starts (scaled from ScheduleTime)
  std::int64_t end_ms = 0;
  std::int64_t next_slot_us = 0; // earliest next notification (MaximumPerMinute), in µs
  std::int64_t open_tasks = 0;   // tasks not SUCCEEDED / FAILED / CANCELED
  std::int64_t canceled_tasks = 0;
  std::int64_t created_ms = 0;
  std::int64_t modified_ms = 0;
  // A dynamic job's DynamicMode (1: the devices at SrcVersion now and later, 2: only those
  // that come online later); 0 for a static job, and once CancelOTAStrategyByJob stopped it.
  // A dynamic job stays IN_PROGRESS while it has no open task.
  std::int64_t dynamic_mode = 0;
};

struct OtaTaskRow {
  std::int64_t seq = 0;
  std::string task_id;
  std::int64_t job_seq = 0;
  std::string product_key;
  std::string device_name;
  std::string iot_id;
  std::string module;
  std::string src_version;
  std::string status;
  std::string progress; // "0".."100"
  std::string task_desc;
  std::int64_t attempt = 0;     // retries so far
  std::int64_t phase = 0;       // IN_PROGRESS: events done (1-4 download quarters, 5 verify)
  std::int64_t ready_ms = 0;    // QUEUED: may be notified from then on
  std::int64_t due_ms = 0;      // NOTIFIED / IN_PROGRESS: the next event (0: none)
  std::int64_t deadline_ms = 0; // IN_PROGRESS: TimeoutInMinutes runs out (0: none)
  std::int64_t created_ms = 0;
  std::int64_t modified_ms = 0;
};

[[nodiscard]] bool task_open(std::string_view status);

[[nodiscard]] std::optional<FirmwareRow> find_firmware(Conn& c, std::string_view firmware_id);
[[nodiscard]] std::optional<OtaJobRow> find_job(Conn& c, std::string_view job_id);
[[nodiscard]] std::optional<OtaJobRow> find_job_by_seq(Conn& c, std::int64_t seq);
std::int64_t insert_job(Conn& c, const OtaJobRow& job);
void update_job(Conn& c, const OtaJobRow& job);
std::int64_t insert_task(Conn& c, const OtaTaskRow& task);
void update_task(Conn& c, const OtaTaskRow& task);
// The ota_firmwares, ota_jobs and ota_tasks tables (sim/cloud_rows.hpp).
[[nodiscard]] const RowTable<FirmwareRow>& firmware_table();
[[nodiscard]] const RowTable<OtaJobRow>& job_table();
[[nodiscard]] const RowTable<OtaTaskRow>& task_table();

// The device's version of `module` ("default": devices.firmware).
[[nodiscard]] std::string device_version(Conn& c, const DeviceRow& device, std::string_view module);
void set_device_version(Conn& c,
                        const DeviceRow& device,
                        std::string_view module,
                        std::string_view version,
                        std::int64_t now_ms);

// Ends a task (SUCCEEDED / FAILED / CANCELED) at `t`, updating its job's counters and, when no
// task is left open, the job's status (and a verification job's firmware).
void finish_task(
    Conn& c, OtaTaskRow& task, std::string_view status, std::string desc, std::int64_t t);
// Cancels (finish_task CANCELED, `why`) every task of job `job_seq` whose status is one of
// `statuses` (the k_task_* constants), in seq order; how many.
std::int64_t cancel_tasks(Conn& c,
                          std::int64_t job_seq,
                          std::initializer_list<std::string_view> statuses,
                          std::string_view why,
                          std::int64_t now);
// Ends a job whose last open task just ended (or that never had one).
void end_job_if_done(Conn& c, OtaJobRow& job, std::int64_t t);

// Moves OTA jobs and tasks to `now_ms` (the simulated devices). Returns the next due time in
// ms, 0 if none.
[[nodiscard]] std::int64_t
advance_ota(CloudStore& store, std::int64_t now_ms, const ServiceOptions& options);

// --- OSS-style upload -------------------------------------------------------------------------

// What GenerateOTAUploadURL / GenerateDeviceNameListURL answer (and record in ota_objects).
struct OssGrant {
  std::string host; // the upload URL
  std::string key;
  std::string policy; // base64 JSON
  std::string signature;
  std::string access_key_id;
  std::string object_url; // FirmwareUrl / FileUrl
};
// Issues a grant for a new object `kind` ("firmware" / "dnlist") with `suffix` (file
// extension). Inside a write transaction.
[[nodiscard]] OssGrant oss_grant(Conn& c,
                                 const CloudStore& store,
                                 const ServiceOptions& options,
                                 std::string_view kind,
                                 std::string_view suffix,
                                 std::string_view random_part,
                                 std::int64_t now_ms);
// The object key named by an object URL of this emulator ("" if it is not one).
[[nodiscard]] std::string object_key_of_url(const ServiceOptions& options, std::string_view url);
// The file of an object in the state dir.
[[nodiscard]] std::filesystem::path object_path(const CloudStore& store, std::string_view key);

struct OssObject {
  std::string key;
  std::string kind;
  std::int64_t created_ms = 0;
  std::int64_t expires_ms = 0;
  std::int64_t uploaded_ms = 0; // 0: not uploaded yet
  std::int64_t size = -1;
  std::string md5;
  std::string sha256;
};
[[nodiscard]] std::optional<OssObject> find_object(Conn& c, std::string_view key);

struct OssAnswer {
  int status = 204;
  std::string body; // XML (or empty)
  std::string content_type = "application/xml";
  std::string code; // OSS error code, "" on success
};

// One PostObject request, fed by the HTTP layer as it streams: form fields in order, then the
// file part in chunks. Holds at most one chunk of the file in memory; the object is written to
// a temporary file in the state dir and renamed into place when complete.
class OssUpload {
public:
  OssUpload(CloudStore& store,
            const ServiceOptions& options,
            std::int64_t now_ms,
            std::string request_id);
  OssUpload(const OssUpload&) = delete;
  OssUpload& operator=(const OssUpload&) = delete;
  ~OssUpload();

  // A form field before the file (names are case-insensitive, as in OSS).
  void field(std::string_view name, std::string_view value);
  // The file part starts: checks the fields and the policy. false: refused (see finish()).
  bool begin_file();
  // false: refused (too large, write error); stop sending.
  bool write(const char* data, std::size_t size);
  // The request ended (complete = the whole body was read). Commits the object or answers
  // the refusal.
  OssAnswer finish(bool complete);
  // Refuses before reading (e.g. the body is not multipart or is too large).
  [[nodiscard]] OssAnswer refuse(int status, std::string code, std::string message);
  [[nodiscard]] bool refused() const { return m_refused.has_value(); }

private:
  struct Hashes;
  CloudStore& m_store;
  const ServiceOptions& m_options;
  std::int64_t m_now_ms;
  std::string m_request_id;
  std::map<std::string, std::string> m_fields; // lowercased names
  std::optional<OssAnswer> m_refused;
  bool m_file_started = false;
  std::string m_key;
  std::filesystem::path m_temp;
  std::ofstream m_out;
  std::int64_t m_size = 0;
  std::unique_ptr<Hashes> m_hashes;
};

// GET <k_oss_path>/<key>: the object's file, or an OSS-style XML error.
struct OssDownload {
  OssAnswer error; // status 200 when the file is to be sent
  std::filesystem::path path;
  std::int64_t size = 0;
};
[[nodiscard]] OssDownload oss_download(CloudStore& store, std::string_view key);

} // namespace iot::sim::cloud
