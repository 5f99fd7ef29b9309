// SPDX-License-Identifier: MIT
// Typed IoT Platform (Iot 2018-01-20) calls over OpenApiClient, docs/aliyun-iot-protocol.md §2.
//
// Responses are parsed tolerantly: missing or null optional fields leave the member empty;
// numbers sent as strings (and vice versa) are accepted; a field of the wrong kind (an object
// where a list or text belongs) fails with ErrorKind::cloud
// "unexpected response from QueryDevice: Data.DeviceInfo[2].DeviceName: expected text".
// The IotInstanceId of the OpenApiClient's config is sent on every call.
#pragma once

#include "cloud/openapi.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace iot::cloud {

// A device by IotId, or by ProductKey + DeviceName (IotId wins when both are set).
struct DeviceRef {
  std::string product_key;
  std::string device_name;
  std::string iot_id;
};

// Time fields: prefer utc_* (ISO 8601); gmt_* formats differ per API and are passed through.
struct DeviceInfo {
  std::string product_key;
  std::string device_name;
  std::string device_secret;
  std::string iot_id;
  std::string status; // ONLINE, OFFLINE, UNACTIVE, DISABLE
  std::string nickname;
  std::string device_type; // QueryDevice only
  std::string device_id;   // legacy; QueryDevice and QueryPageByApplyId only
  std::string utc_create;
  std::string utc_modified;
  std::string gmt_create;
  std::string gmt_modified;
  // No activation or last-online time: QueryDeviceByStatus does not have them (the SDK model),
  // QueryDeviceDetail does (DeviceDetail::utc_active, utc_online).
};

struct DevicePage {
  std::vector<DeviceInfo> devices;
  std::int64_t total = 0;
  std::int64_t page_size = 0;
  std::int64_t page_count = 0;
  std::int64_t page = 0;
  std::string next_token; // QueryDevice only; empty on the last page
};

struct DeviceDetail {
  std::string product_key;
  std::string product_name;
  std::string device_name;
  std::string device_secret;
  std::string iot_id;
  std::string nickname;
  std::string status;
  std::string firmware_version;
  std::string ip_address; // not in BatchQueryDeviceDetail
  std::string region;
  std::optional<std::int64_t> node_type; // 0 device, 1 gateway
  std::optional<bool> owner;
  std::string utc_create;
  std::string utc_active;
  std::string utc_online; // not in BatchQueryDeviceDetail
  std::string gmt_create;
  std::string gmt_active;
  std::string gmt_online;
};

// A device tag (QueryDeviceProp / SaveDeviceProp: the Props JSON object).
struct DeviceTag {
  std::string key;
  std::string value;
  friend bool operator==(const DeviceTag&, const DeviceTag&) = default;
};

// A group a device belongs to (QueryDeviceGroupByDevice's GroupInfo).
struct DeviceGroup {
  std::string id;
  std::string name;
  std::string description;
  std::string type; // LINK_PLATFORM (devices added by hand) or LINK_PLATFORM_DYNAMIC (by a rule)
  std::string utc_create;
  [[nodiscard]] bool dynamic() const { return type == "LINK_PLATFORM_DYNAMIC"; }
};

// What BatchAddDeviceGroupRelations did.
struct GroupAddResult {
  std::int64_t valid = 0;             // ValidDeviceCount
  std::int64_t added = 0;             // SuccessAddedDeviceCount
  std::int64_t already_related = 0;   // AlreadyRelatedGroupDeviceCount
  std::int64_t exceed_ten_groups = 0; // ExceedTenGroupDeviceCount: a device is in ≤ 10 groups
};

inline constexpr std::size_t k_group_add_max = 1000; // Device.N per BatchAddDeviceGroupRelations

struct DeviceState {
  std::string device_name;
  std::string iot_id;
  std::string status;
  std::string as_address;
  std::string last_online_time;
  std::string device_id;
  // No status-change time: the SDK's BatchGetDeviceState model has none (GetDeviceStatus does).
};

struct DeviceNameEntry {
  std::string device_name;
  std::string nickname; // optional
};

// The answer says which names and nicknames are malformed, not why (the SDK model has no
// per-name detail).
struct CheckNamesResult {
  std::int64_t apply_id = 0;
  std::vector<std::string> invalid_device_names;
  std::vector<std::string> invalid_nicknames;
};

// Status: CHECK, CHECK_SUCCESS, CHECK_FAILED, CREATE, CREATE_SUCCESS, CREATE_FAILED. The names
// only (InvalidList: malformed, repeated or already registered), no reason per name.
struct BatchRegisterStatus {
  std::string status;
  std::vector<std::string> valid;
  std::vector<std::string> invalid;
};

struct ApplyPage {
  std::vector<DeviceInfo> devices; // device_name, device_secret, iot_id, device_id
  std::int64_t total = 0;
  std::int64_t page = 0;
  std::int64_t page_size = 0;
  std::int64_t page_count = 0;
};

struct ProductInfo {
  std::string product_key;
  std::string product_name;
  std::string product_secret; // QueryProduct only
  std::optional<std::int64_t> device_count;
  std::optional<std::int64_t> node_type;   // 0 device, 1 gateway
  std::optional<std::int64_t> data_format; // 0 passthrough, 1 Alink JSON
  std::string auth_type;                   // secret, id2, x509
  std::optional<bool> id2;
  std::optional<std::int64_t> net_type; // 3 Wi-Fi, 6 cellular, 7 Ethernet, 8 other
  std::string product_status;
  std::string aliyun_commodity_code;         // iothub_senior, iothub
  std::optional<std::int64_t> validate_type; // a number (the SDK's model); 1 = weak (UNVERIFIED)
  std::string protocol_type;
  std::string category_key;
  std::string category_name;
  std::optional<bool> owner;
  std::optional<std::int64_t> gmt_create; // ms
  std::string description;
};

struct ProductPage {
  std::vector<ProductInfo> products;
  std::int64_t current_page = 0;
  std::int64_t page_count = 0;
  std::int64_t page_size = 0;
  std::int64_t total = 0;
};

// ---- OTA (docs/aliyun-iot-protocol.md §3) ----

// An upload grant: GenerateOTAUploadURL (url = FirmwareUrl) or GenerateDeviceNameListURL
// (url = FileUrl; the AccessKeyId field is read as access_key_id). The form fields go to an OSS
// PostObject at `host`, the file last (cloud/oss_upload.hpp).
struct UploadGrant {
  std::string url;
  std::string host;
  std::string key;
  std::string access_key_id;
  std::string policy;
  std::string signature; // the OSS form signature; never printed
  std::string object_storage;
};

// One file of a multi-file firmware (CreateOTAFirmware MultiFiles.N, QueryOTAFirmware
// MultiFiles): seed 001's user1.bin + user2.bin for one version.
struct FirmwareFile {
  std::string name;
  std::int64_t size = 0;
  std::string url;
  std::string sign_value; // the SignMethod digest, hex
  std::string file_md5;
  friend bool operator==(const FirmwareFile&, const FirmwareFile&) = default;
};
inline constexpr std::size_t k_firmware_files_max = 20; // MultiFiles.N (UNVERIFIED)

struct CreateFirmwareRequest {
  std::string product_key;
  std::string dest_version;
  std::string firmware_name;
  std::string firmware_url;
  std::int64_t firmware_size = 0;
  std::string firmware_sign; // hex
  std::string sign_method;   // MD5 | SHA256
  std::string module_name;   // empty = default
  std::string src_version;   // with type 1
  int type = 0;              // 0 full, 1 differential
  std::optional<bool> need_to_verify;
  std::string description;
  std::vector<FirmwareFile> files; // MultiFiles.N: every file of a multi-file firmware
};

struct FirmwareInfo {
  std::string firmware_id;
  std::string firmware_name;
  std::string dest_version;
  std::string src_version;
  std::string module_name;
  std::string product_key;
  std::string firmware_url;
  std::string sign;
  std::string sign_method;
  std::optional<std::int64_t> size;
  std::optional<std::int64_t> type;
  // -1 no verification needed, 0 not verified, 1 verified, 2 verifying, 3 failed (UNVERIFIED)
  std::optional<std::int64_t> status;
  std::string verify_progress;
  std::vector<FirmwareFile> files; // MultiFiles; empty for a single-file firmware
};

struct OtaTag {
  std::string key;
  std::string value;
  friend bool operator==(const OtaTag&, const OtaTag&) = default;
};

// What static and dynamic upgrade jobs share. Optional values left empty are not sent.
struct UpgradeJobSettings {
  std::optional<int> max_per_minute;  // 10..10 000
  std::optional<int> retry_interval;  // 0, 10, 30, 60, 1440 (with retry_count)
  std::optional<int> retry_count;     // 1, 2, 5
  std::optional<int> timeout_minutes; // 1..1440
  std::optional<int> overwrite_mode;  // 1 | 2
  std::optional<bool> multi_module_mode;
  std::vector<OtaTag> tags; // ≤ 10
};

// CreateOTAStaticUpgradeJob.
struct StaticJobRequest : UpgradeJobSettings {
  std::string product_key;
  std::string firmware_id;
  std::string target_selection = "SPECIFIC"; // ALL | SPECIFIC | GRAY
  std::vector<std::string> device_names;     // SPECIFIC: ≤ k_ota_names_per_job
  std::string dn_list_file_url;              // SPECIFIC: instead of names
  std::optional<int> gray_percent;
  std::vector<std::string> src_versions;
};

// CreateOTADynamicUpgradeJob: the devices at one of src_versions now (DynamicMode 1) and those
// that come online at it later, in group_id when given, until CancelOTAStrategyByJob.
struct DynamicJobRequest : UpgradeJobSettings {
  std::string product_key;
  std::string firmware_id;
  std::vector<std::string> src_versions; // required, ≤ 10
  int dynamic_mode = 1;                  // 1 now and later, 2 only devices that come online later
  std::string group_id;
  std::string group_type; // LINK_PLATFORM | LINK_PLATFORM_DYNAMIC, with group_id
};

// A device found by QueryDeviceBySQL (its default module's version from OTAModules).
struct SqlDevice {
  std::string product_key;
  std::string device_name;
  std::string status;
  std::string firmware_version;
};
struct SqlPage {
  std::vector<SqlDevice> devices;
  std::int64_t total_count = 0;
};
inline constexpr std::int64_t k_sql_page_max = 50;     // LIMIT n,k: k ≤ 50
inline constexpr std::int64_t k_sql_rows_max = 10'000; // n + k ≤ 10 000
inline constexpr int k_tag_query_page_max = 50;        // QueryDeviceByTags (UNVERIFIED)
inline constexpr int k_group_page_max = 50;            // group lists (UNVERIFIED: ≤ 200)

struct OtaJobInfo {
  std::string job_id;
  std::string job_status; // PLANNED, IN_PROGRESS, COMPLETED, CANCELED
  std::string job_type;   // VERFIY_FIRMWARE (sic), UPGRADE_FIRMWARE
  std::string firmware_id;
  std::string product_key;
  std::string target_selection;
  std::string selection_type; // STATIC | DYNAMIC
  std::string dest_version;
  std::string utc_create;
  std::string utc_start_time;
  std::string utc_end_time;
  std::vector<OtaTag> tags;
};

struct OtaJobPage {
  std::vector<OtaJobInfo> jobs;
  std::int64_t total = 0;
  std::int64_t page_count = 0;
  std::int64_t current_page = 0;
};

struct OtaTaskInfo {
  std::string task_id;
  std::string job_id;
  std::string device_name;
  std::string src_version;
  std::string dest_version;
  std::string task_status; // CONFIRM, QUEUED, NOTIFIED, IN_PROGRESS, SUCCEEDED, FAILED, CANCELED
  std::string progress;
  std::string task_desc;
  std::string utc_modified;
};

struct OtaTaskPage {
  std::vector<OtaTaskInfo> tasks;
  std::int64_t total = 0;
  std::int64_t page_count = 0;
  std::int64_t current_page = 0;
};

// CancelOTATaskByJob: which states to cancel (at least one true).
struct CancelTasks {
  bool scheduled = true;
  bool queued = true;
  bool notified = true;
  bool unconfirmed = true;
  bool in_progress = false;
};

inline constexpr std::size_t k_ota_names_per_job = 200; // TargetDeviceName.N per call
inline constexpr std::size_t k_ota_verify_devices_max = 10;
inline constexpr int k_ota_task_page_max = 100;

inline constexpr int k_query_device_max_page_size = 50;
inline constexpr int k_query_device_token_threshold = 10'000; // PageSize*CurrentPage above it
inline constexpr std::size_t k_batch_detail_max = 100;
inline constexpr std::size_t k_batch_state_max = 50;
inline constexpr std::size_t k_check_names_max = 10'000;

struct QueryDeviceRequest {
  std::string product_key;
  int page_size = k_query_device_max_page_size; // 1..50
  int current_page = 1;
  std::string next_token; // required when page_size * current_page > 10 000
};

// Called after each page with the rows so far and the total the server reported.
using PageProgress = std::function<void(std::size_t rows, std::int64_t total)>;

class IotApi {
public:
  explicit IotApi(OpenApiClient& client, std::size_t concurrency = 4);

  // One page. ErrorKind::usage for a page size outside 1..50 or a page beyond 10 000 rows
  // without next_token.
  [[nodiscard]] Result<DevicePage> query_device(const QueryDeviceRequest& request);
  // Every device of the product, page by page, passing each page's NextToken to the next call
  // (required past 10 000 rows).
  [[nodiscard]] Result<std::vector<DeviceInfo>>
  query_all_devices(const std::string& product_key, const PageProgress& progress = {});

  [[nodiscard]] Result<DeviceDetail> query_device_detail(const DeviceRef& device);
  // Any number of names, in calls of ≤100 (names the platform does not know are dropped by it).
  [[nodiscard]] Result<std::vector<DeviceDetail>>
  batch_query_device_detail(const std::string& product_key, const std::vector<std::string>& names);
  // Any number of names, in calls of ≤50.
  [[nodiscard]] Result<std::vector<DeviceState>>
  batch_get_device_state(const std::string& product_key, const std::vector<std::string>& names);
  // status: 0 unactive, 1 online, 3 offline, 8 disabled.
  [[nodiscard]] Result<DevicePage> query_device_by_status(const std::string& product_key,
                                                          int status,
                                                          int page_size,
                                                          int current_page);

  // device_name empty = the platform picks one (then the call is never retried after a timeout,
  // which could create two devices).
  [[nodiscard]] Result<DeviceInfo> register_device(const std::string& product_key,
                                                   const std::string& device_name,
                                                   const std::string& nickname = {});
  // ≤10 000 names (ErrorKind::usage beyond: the platform would silently drop the excess). Sent as
  // DeviceNameList.N.* when any nickname is set, else DeviceName.N.
  [[nodiscard]] Result<CheckNamesResult>
  batch_check_device_names(const std::string& product_key,
                           const std::vector<DeviceNameEntry>& names);
  [[nodiscard]] Result<BatchRegisterStatus>
  query_batch_register_device_status(const std::string& product_key, std::int64_t apply_id);
  [[nodiscard]] Result<std::int64_t>
  batch_register_device_with_apply_id(const std::string& product_key, std::int64_t apply_id);
  [[nodiscard]] Result<ApplyPage>
  query_page_by_apply_id(std::int64_t apply_id, int page_size, int current_page);

  [[nodiscard]] Result<ProductInfo> query_product(const std::string& product_key);
  // page_size 1..200; commodity_code empty = any.
  [[nodiscard]] Result<ProductPage>
  query_product_list(int current_page, int page_size, const std::string& commodity_code = {});

  [[nodiscard]] Status delete_device(const DeviceRef& device);

  // Device tags: QueryDeviceProp answers Props, a JSON object (as text) of key -> value, in the
  // platform's order; SaveDeviceProp adds or overwrites the given ones (the others stay).
  [[nodiscard]] Result<std::vector<DeviceTag>> query_device_prop(const DeviceRef& device);
  [[nodiscard]] Status save_device_prop(const DeviceRef& device,
                                        const std::vector<DeviceTag>& tags);
  // The groups the device is in (QueryDeviceGroupByDevice: ProductKey + DeviceName only).
  [[nodiscard]] Result<std::vector<DeviceGroup>>
  query_device_group_by_device(const std::string& product_key, const std::string& device_name);
  // Adds devices to a (static) group; ≤ k_group_add_max a call (ErrorKind::usage beyond).
  [[nodiscard]] Result<GroupAddResult>
  batch_add_device_group_relations(const std::string& group_id,
                                   const std::vector<DeviceRef>& devices);
  // Returns the JobId.
  [[nodiscard]] Result<std::string> reset_thing(const DeviceRef& device);

  // ---- OTA ----
  // file_suffix: bin, dav, apk, tar, gz, tar.gz, zip, gzip.
  [[nodiscard]] Result<UploadGrant> generate_ota_upload_url(const std::string& file_suffix = "bin");
  [[nodiscard]] Result<UploadGrant> generate_device_name_list_url();
  // Returns the FirmwareId.
  [[nodiscard]] Result<std::string> create_ota_firmware(const CreateFirmwareRequest& request);
  [[nodiscard]] Result<FirmwareInfo> query_ota_firmware(const std::string& firmware_id);
  // ≤10 names (ErrorKind::usage beyond). Returns the JobId.
  [[nodiscard]] Result<std::string> create_ota_verify_job(const std::string& product_key,
                                                          const std::string& firmware_id,
                                                          const std::vector<std::string>& names,
                                                          int timeout_minutes);
  // Returns the JobId. Never retried after an ambiguous failure (a timeout could mean the job
  // exists): callers tag their jobs and look them up (list_ota_jobs_by_firmware) instead.
  // ErrorKind::usage for more than k_ota_names_per_job names or names with a list URL.
  [[nodiscard]] Result<std::string> create_ota_static_upgrade_job(const StaticJobRequest& request);
  [[nodiscard]] Result<OtaJobInfo> query_ota_job(const std::string& job_id);
  // status empty = every task; page_size 1..100.
  [[nodiscard]] Result<OtaTaskPage> list_ota_task_by_job(const std::string& job_id,
                                                         const std::string& status,
                                                         int page_size,
                                                         int current_page);
  // Every task of the job (in the given status), page by page.
  [[nodiscard]] Result<std::vector<OtaTaskInfo>> list_all_ota_tasks(const std::string& job_id,
                                                                    const std::string& status = {});
  // How many tasks of the job are in `status` ("" = all): one call with PageSize 1.
  [[nodiscard]] Result<std::int64_t> count_ota_tasks(const std::string& job_id,
                                                     const std::string& status = {});
  [[nodiscard]] Status cancel_ota_task_by_job(const std::string& job_id, const CancelTasks& which);
  [[nodiscard]] Result<OtaJobPage>
  list_ota_job_by_firmware(const std::string& firmware_id, int page_size, int current_page);
  // Every job of the firmware (newest first).
  [[nodiscard]] Result<std::vector<OtaJobInfo>>
  list_all_ota_jobs_by_firmware(const std::string& firmware_id);
  [[nodiscard]] Result<std::string>
  create_ota_dynamic_upgrade_job(const DynamicJobRequest& request);
  // Stops a job taking on devices (a dynamic job) or starting queued ones.
  [[nodiscard]] Status cancel_ota_strategy_by_job(const std::string& job_id);

  // --- device selection (ota rollout --query / --tag / --group) ---
  // One QueryDeviceBySQL call: the statement as given (with its LIMIT).
  [[nodiscard]] Result<SqlPage> query_device_by_sql(const std::string& sql);
  // Every device with the tag (QueryDeviceByTags, one tag per call, all pages).
  [[nodiscard]] Result<std::vector<DeviceRef>> query_devices_by_tag(const DeviceTag& tag);
  // Every device of a group (QueryDeviceListByDeviceGroup, all pages).
  [[nodiscard]] Result<std::vector<DeviceRef>> query_group_devices(const std::string& group_id);
  // Every group whose name contains `name` (QueryDeviceGroupList, all pages).
  [[nodiscard]] Result<std::vector<DeviceGroup>> query_device_groups(const std::string& name);

private:
  OpenApiClient& m_client;
  std::size_t m_concurrency;
};

} // namespace iot::cloud
