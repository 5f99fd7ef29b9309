// SPDX-License-Identifier: MIT
// The cloud emulator's Actions: one table entry and one handler each (internal to sim/).
//
// To add an Action: write `Reply my_action(ActionContext& ctx)` (in a sim/cloud_actions_*.cpp),
// declare it below and add a row to k_actions in sim/cloud_actions.cpp with its documented QPS.
// A handler reads parameters through ctx (missing ones throw the gateway's MissingParameter),
// touches the state only through ctx.read() / ctx.write() (one transaction each: all or
// nothing) and returns ok(...) or business_error(...). Signature, timestamp, nonce, QPS limits
// and fault injection happened before the handler is called.
#pragma once

#include "cloud/signer.hpp"
#include "sim/cloud_service.hpp"
#include "sim/cloud_store.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace iot::sim::cloud {

using json = nlohmann::ordered_json;
using iot::cloud::Params;

// A handler's answer, without RequestId (the dispatcher adds it).
struct Reply {
  int status = 200;
  json body = json::object();
  std::string code;     // "" on success
  bool gateway = false; // a gateway error: the dispatcher adds HostId and Recommend
};

// Thrown by ActionContext helpers (missing parameter, unknown product, state error) and caught
// by the dispatcher.
struct ReplyError {
  Reply reply;
};

// {"Success": true, ...fields}
[[nodiscard]] Reply ok(json fields = json::object());
// The PageCount of a paged answer: pages of page_size (> 0) that hold total items.
[[nodiscard]] std::int64_t page_count(std::int64_t total, std::int64_t page_size);
// A page of a list Action: Total, PageSize, PageCount, `page_field` (CurrentPage or Page, as the
// Action's model names it) and Data.<item>[].
[[nodiscard]] Reply page_reply(std::string_view page_field,
                               std::int64_t total,
                               std::int64_t page_size,
                               std::int64_t current,
                               std::string_view item,
                               json list);
// IoT business failure: HTTP 200, {"Success": false, "Code", "ErrorMessage"}.
[[nodiscard]] Reply business_error(std::string code, std::string message);
// Gateway failure: HTTP `status`, {"HostId", "Code", "Message", "Recommend"}.
[[nodiscard]] Reply gateway_error(int status, std::string code, std::string message);

// The service's RNG, shared by all threads.
class SharedRng {
public:
  explicit SharedRng(std::uint64_t seed) : m_rng(seed) {}
  template <class F> auto with(F&& f) {
    const std::lock_guard lock(m_mutex);
    return f(m_rng);
  }

private:
  std::mutex m_mutex;
  Rng m_rng;
};

class ActionContext {
public:
  ActionContext(const Params& params,
                CloudStore& store,
                std::int64_t now_ms,
                SharedRng& rng,
                const ServiceOptions& options,
                std::function<void(std::int64_t)> schedule)
      : m_params(params), m_store(store), m_now_ms(now_ms), m_rng(rng), m_options(options),
        m_schedule(std::move(schedule)) {}

  [[nodiscard]] const Params& params() const { return m_params; }
  [[nodiscard]] CloudStore& store() { return m_store; }
  [[nodiscard]] std::int64_t now_ms() const { return m_now_ms; }
  [[nodiscard]] SharedRng& rng() { return m_rng; }
  [[nodiscard]] const ServiceOptions& options() const { return m_options; }
  // Tells the service that asynchronous work is due at `due_ms`.
  void schedule(std::int64_t due_ms) const { m_schedule(due_ms); }

  // The value of a parameter, if present (an empty value counts as present).
  [[nodiscard]] std::optional<std::string> param(std::string_view name) const;
  // The value of a required parameter; absent or empty throws MissingParameter (HTTP 400).
  [[nodiscard]] std::string required(std::string_view name) const;
  // Name.1, Name.2, … (or Name.1.Field, … when `field` is given) in index order.
  [[nodiscard]] std::vector<std::string> repeated(std::string_view name,
                                                  std::string_view field = {}) const;
  // The same, keyed by the index n.
  [[nodiscard]] std::map<std::int64_t, std::string> repeated_map(std::string_view name,
                                                                 std::string_view field = {}) const;
  // An integer page parameter: absent = fallback; not an integer or outside min..max throws
  // iot.common.InvalidPageParams.
  [[nodiscard]] std::int64_t page_param(std::string_view name,
                                        std::int64_t fallback,
                                        std::int64_t min,
                                        std::int64_t max) const;

  // The product named by the ProductKey parameter (required): iot.prod.InvalidFormattedProductkey
  // or iot.prod.NotExistedProduct otherwise. With an IotInstanceId in the scenario, calls
  // that do not carry it find no product (docs/cloud-emulator.md).
  [[nodiscard]] const ProductRow& product() const;
  [[nodiscard]] const ProductRow& product(std::string_view product_key) const;
  // True unless the scenario has an instance id that the request does not carry.
  [[nodiscard]] bool instance_matches() const;
  // The device named by IotId (wins) or ProductKey + DeviceName; iot.device.NotExistedDevice.
  [[nodiscard]] DeviceRow device(Conn& c) const;

  // store().read / write that turn a state error into iot.system.SystemException (logged on
  // stderr without parameters).
  template <class F> auto read(F&& f) { return unwrap(m_store.read(std::forward<F>(f))); }
  template <class F> auto write(F&& f) { return unwrap(m_store.write(std::forward<F>(f))); }

private:
  template <class T> T unwrap(Result<T> result) {
    if (!result) {
      state_error(result.error().message);
    }
    if constexpr (!std::is_void_v<T>) {
      return std::move(*result);
    }
  }
  [[noreturn]] static void state_error(const std::string& message);

  const Params& m_params;
  CloudStore& m_store;
  std::int64_t m_now_ms;
  SharedRng& m_rng;
  const ServiceOptions& m_options;
  std::function<void(std::int64_t)> m_schedule;
};

// Extra limit for deep pages: CurrentPage×PageSize ≥ 100 000 also takes a token from a QPS 2
// bucket (QueryDevice, QueryProductList, §2).
enum class DeepRule { none, deep_pages };

using ActionHandler = Reply (*)(ActionContext&);

struct ActionSpec {
  std::string_view name;
  double qps;          // per account, before --qps-scale
  bool qps_documented; // false: our pick where §2 says nothing or UNVERIFIED
  DeepRule deep;
  ActionHandler handler;
};

inline constexpr double k_deep_page_qps = 2;
inline constexpr std::int64_t k_deep_page_rows = 100'000;

[[nodiscard]] std::span<const ActionSpec> action_table();
// Index of `name` in action_table(), or -1.
[[nodiscard]] int find_action(std::string_view name);

// Moves batch registrations whose phase has ended (CHECK → CHECK_SUCCESS / CHECK_FAILED,
// CREATE → CREATE_SUCCESS / CREATE_FAILED). Returns the next due time in ms, 0 if none.
[[nodiscard]] std::int64_t
advance_batch_jobs(CloudStore& store, std::int64_t now_ms, SharedRng& rng);

// Handlers (sim/cloud_actions_device.cpp, sim/cloud_actions_batch.cpp,
// sim/cloud_actions_product.cpp).
Reply query_device(ActionContext& ctx);
Reply query_device_detail(ActionContext& ctx);
Reply batch_query_device_detail(ActionContext& ctx);
Reply batch_get_device_state(ActionContext& ctx);
Reply query_device_by_status(ActionContext& ctx);
Reply get_device_status(ActionContext& ctx);
Reply register_device(ActionContext& ctx);
Reply delete_device(ActionContext& ctx);
Reply reset_thing(ActionContext& ctx);
Reply disable_thing(ActionContext& ctx);
Reply enable_thing(ActionContext& ctx);
Reply query_device_prop(ActionContext& ctx);
Reply save_device_prop(ActionContext& ctx);
Reply query_device_group_by_device(ActionContext& ctx);
Reply batch_add_device_group_relations(ActionContext& ctx);
Reply query_device_by_sql(ActionContext& ctx);
Reply query_device_by_tags(ActionContext& ctx);
Reply query_device_list_by_device_group(ActionContext& ctx);
Reply query_device_group_list(ActionContext& ctx);
Reply batch_check_device_names(ActionContext& ctx);
Reply query_batch_register_device_status(ActionContext& ctx);
Reply batch_register_device_with_apply_id(ActionContext& ctx);
Reply query_page_by_apply_id(ActionContext& ctx);
Reply query_product(ActionContext& ctx);
Reply query_product_list(ActionContext& ctx);
// OTA (sim/cloud_actions_ota.cpp, §3).
Reply generate_ota_upload_url(ActionContext& ctx);
Reply create_ota_firmware(ActionContext& ctx);
Reply query_ota_firmware(ActionContext& ctx);
Reply create_ota_verify_job(ActionContext& ctx);
Reply create_ota_static_upgrade_job(ActionContext& ctx);
Reply create_ota_dynamic_upgrade_job(ActionContext& ctx);
Reply generate_device_name_list_url(ActionContext& ctx);
Reply query_ota_job(ActionContext& ctx);
Reply list_ota_task_by_job(ActionContext& ctx);
Reply cancel_ota_task_by_job(ActionContext& ctx);
Reply list_ota_job_by_firmware(ActionContext& ctx);
Reply cancel_ota_strategy_by_job(ActionContext& ctx);

// Shared by handlers: a new device row with fresh secret and IotId.
[[nodiscard]] DeviceRow new_device(SharedRng& rng,
                                   std::string_view product_key,
                                   std::string device_name,
                                   std::string nickname,
                                   std::int64_t now_ms);

} // namespace iot::sim::cloud
