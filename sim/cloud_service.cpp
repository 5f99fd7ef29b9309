// SPDX-License-Identifier: MIT
#include "sim/cloud_service.hpp"

#include "cloud/signer.hpp"
#include "core/text.hpp"
#include "sim/cloud_actions.hpp"
#include "sim/cloud_dynreg.hpp"
#include "sim/cloud_ota.hpp"

#include <algorithm>
#include <cstdlib>

namespace iot::sim::cloud {

namespace {

constexpr std::int64_t k_skew_ms = 15LL * 60 * 1000; // Timestamp window (§1)
constexpr std::int64_t k_nonce_minutes = 31;

std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 14695981039346656037ULL) {
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && core::iequals(text.substr(0, prefix.size()), prefix);
}

Reply missing(std::string_view name) {
  return gateway_error(400,
                       "MissingParameter",
                       "The input parameter \"" + std::string(name) +
                           "\" that is mandatory for processing this request is not supplied.");
}

// PageSize × CurrentPage of a paged request (defaults 10 and 1; unparsable = 0).
std::int64_t rows_end(const Params& params) {
  auto get = [&](const char* name, std::int64_t fallback) -> std::int64_t {
    const auto it = params.find(name);
    if (it == params.end() || it->second.empty()) {
      return fallback;
    }
    return parse_int(it->second).value_or(0);
  };
  const std::int64_t size = get("PageSize", 10);
  const std::int64_t page = get("CurrentPage", 1);
  if (size <= 0 || page <= 0 || size > 1'000'000 || page > 1'000'000'000) {
    return 0;
  }
  return size * page;
}

struct FaultDraw {
  std::chrono::milliseconds delay{0};
  double fail = 1;
  bool fail_gateway = true;
  double throttle = 1;
  double truncate = 1;
  double reset = 1;
};

// One request's latency and fault decisions (the RNG is only used when a fault flag is set).
FaultDraw draw_faults(SharedRng& rng, const FaultOptions& f) {
  FaultDraw draw;
  if (f.latency_max_ms > 0 || f.fail_5xx > 0 || f.throttle_burst > 0 || f.truncate > 0 ||
      f.reset > 0) {
    rng.with([&](Rng& r) {
      std::uniform_int_distribution<std::int64_t> latency(
          f.latency_min_ms, std::max(f.latency_min_ms, f.latency_max_ms));
      std::uniform_real_distribution<double> u(0.0, 1.0);
      draw.delay = std::chrono::milliseconds(latency(r));
      draw.fail = u(r);
      draw.fail_gateway = (r() & 1U) != 0;
      draw.throttle = u(r);
      draw.truncate = u(r);
      draw.reset = u(r);
    });
  }
  return draw;
}

// Whether the answer of a request that ran is lost on the way (reset or truncated), counted.
Delivery lost_answer(const FaultDraw& draw,
                     const FaultOptions& f,
                     std::atomic<std::uint64_t>& resets,
                     std::atomic<std::uint64_t>& truncates) {
  if (draw.reset < f.reset) {
    resets.fetch_add(1);
    return Delivery::reset;
  }
  if (draw.truncate < f.truncate) {
    truncates.fetch_add(1);
    return Delivery::truncate;
  }
  return Delivery::normal;
}

} // namespace

// --- NonceCache
// -----------------------------------------------------------------------------------

bool NonceCache::insert(std::string_view access_key_id,
                        std::string_view nonce,
                        std::int64_t now_ms) {
  std::string key(access_key_id);
  key.push_back('\0');
  key += nonce;
  const std::uint64_t h = fnv1a(key);
  const std::int64_t minute = now_ms / 60000;
  const std::lock_guard lock(m_mutex);
  while (!m_buckets.empty() && m_buckets.front().minute < minute - k_nonce_minutes) {
    m_buckets.pop_front();
  }
  for (const Bucket& b : m_buckets) {
    if (b.fresh.contains(h) || std::binary_search(b.sorted.begin(), b.sorted.end(), h)) {
      return false;
    }
  }
  if (m_buckets.empty() || m_buckets.back().minute < minute) {
    if (!m_buckets.empty()) {
      Bucket& last = m_buckets.back();
      last.sorted.assign(last.fresh.begin(), last.fresh.end());
      std::sort(last.sorted.begin(), last.sorted.end());
      last.fresh = {};
    }
    m_buckets.push_back(Bucket{minute, {}, {}});
  }
  m_buckets.back().fresh.insert(h);
  return true;
}

std::size_t NonceCache::size() const {
  const std::lock_guard lock(m_mutex);
  std::size_t n = 0;
  for (const Bucket& b : m_buckets) {
    n += b.fresh.size() + b.sorted.size();
  }
  return n;
}

// --- RateLimiter
// ----------------------------------------------------------------------------------

bool RateLimiter::try_acquire(const std::vector<std::pair<std::string, double>>& keys_rates,
                              std::int64_t now_ms) {
  const std::lock_guard lock(m_mutex);
  std::vector<Bucket*> buckets;
  bool available = true;
  for (const auto& [key, rate] : keys_rates) {
    const double capacity = std::max(1.0, rate);
    auto it = m_buckets.find(key);
    if (it == m_buckets.end()) {
      it = m_buckets.emplace(key, Bucket{capacity, now_ms}).first;
    }
    Bucket& b = it->second;
    if (now_ms > b.last_ms) {
      b.tokens =
          std::min(capacity, b.tokens + static_cast<double>(now_ms - b.last_ms) * rate / 1000.0);
      b.last_ms = now_ms;
    }
    available = available && b.tokens >= 1.0;
    buckets.push_back(&b);
  }
  if (available) {
    for (Bucket* b : buckets) {
      b->tokens -= 1.0;
    }
  }
  return available;
}

// --- CloudService
// ---------------------------------------------------------------------------------

struct CloudService::State {
  explicit State(std::uint64_t seed, std::size_t actions)
      : rng(seed), requests(actions), throttled(actions) {}
  SharedRng rng;
  NonceCache nonces;
  RateLimiter limiter;
  std::vector<std::atomic<std::uint64_t>> requests;
  std::vector<std::atomic<std::uint64_t>> throttled;
  std::atomic<std::uint64_t> register_requests{0};
  std::atomic<std::uint64_t> register_issued{0};
  std::atomic<std::uint64_t> activate_requests{0};
  std::atomic<std::uint64_t> upload_requests{0};
  std::atomic<std::uint64_t> other{0};
  std::atomic<std::uint64_t> fault_5xx{0};
  std::atomic<std::uint64_t> fault_throttle{0};
  std::atomic<std::uint64_t> fault_truncate{0};
  std::atomic<std::uint64_t> fault_reset{0};
  std::mutex errors_mutex;
  std::map<std::string, std::uint64_t> errors;
  std::mutex tick_mutex;
  std::mutex due_mutex;
  std::int64_t next_due = 1; // 1: look at the database on the first tick
};

CloudService::CloudService(CloudStore& store, ServiceOptions options, Clock clock)
    : m_store(store), m_options(options), m_clock(std::move(clock)),
      m_state(std::make_unique<State>(options.seed, action_table().size())) {
  if (!m_clock) {
    m_clock = [] { return WallClock::now(); };
  }
}

CloudService::~CloudService() = default;

void CloudService::tick() {
  const std::int64_t now = to_ms(m_clock());
  const std::unique_lock tick_lock(m_state->tick_mutex, std::try_to_lock);
  if (!tick_lock.owns_lock()) {
    return; // another thread is advancing
  }
  {
    const std::lock_guard lock(m_state->due_mutex);
    if (m_state->next_due == 0 || now < m_state->next_due) {
      return;
    }
    m_state->next_due = 0; // claimed; schedule() calls from now on are merged below
  }
  std::int64_t next = advance_batch_jobs(m_store, now, m_state->rng);
  const std::int64_t next_ota = advance_ota(m_store, now, m_options);
  if (next_ota != 0 && (next == 0 || next_ota < next)) {
    next = next_ota;
  }
  const std::lock_guard lock(m_state->due_mutex);
  if (next != 0 && (m_state->next_due == 0 || next < m_state->next_due)) {
    m_state->next_due = next;
  }
}

void CloudService::count_error(const std::string& code) {
  const std::lock_guard lock(m_state->errors_mutex);
  ++m_state->errors[code];
}

CloudResponse CloudService::handle(const CloudRequest& request) {
  tick();
  const std::int64_t now = to_ms(m_clock());
  std::string request_id = m_state->rng.with([](Rng& r) { return random_request_id(r); });
  // Routes: "/" is the RPC endpoint; §4 dynamic registration; the emulator's own control.
  if (request.path == "/") {
    return rpc(request, now, std::move(request_id));
  }
  if (request.path == k_register_path) {
    return dynamic_register(request, now, std::move(request_id));
  }
  if (request.path == k_activate_path) {
    return activate(request, now, std::move(request_id));
  }
  m_state->other.fetch_add(1);
  CloudResponse out;
  out.status = 404;
  out.request_id = request_id;
  out.code = "InvalidAction.NotFound";
  json body;
  body["RequestId"] = request_id;
  body["HostId"] = "iot." + m_store.region() + ".aliyuncs.com";
  body["Code"] = out.code;
  body["Message"] = "Specified api is not found, please check your url and method.";
  out.body = body.dump();
  count_error(out.code);
  return out;
}

CloudResponse
CloudService::rpc(const CloudRequest& request, std::int64_t now, std::string request_id) {
  CloudResponse out;
  out.request_id = request_id;
  const FaultOptions& f = m_options.faults;
  const FaultDraw draw = draw_faults(m_state->rng, f);
  out.delay = draw.delay;

  Reply reply;
  int action_index = -1;
  Params params;
  [&] {
    auto query = iot::cloud::parse_form(request.query);
    if (!query) {
      reply = gateway_error(400, "InvalidParameter", "Malformed percent-encoding in the query.");
      return;
    }
    params = std::move(*query);
    if (request.method == "POST" &&
        starts_with_nocase(request.content_type, "application/x-www-form-urlencoded")) {
      auto form = iot::cloud::parse_form(request.body);
      if (!form) {
        reply = gateway_error(400, "InvalidParameter", "Malformed percent-encoding in the body.");
        return;
      }
      for (auto& [k, v] : *form) {
        params[k] = std::move(v);
      }
    }
    auto get = [&](const char* name) -> const std::string* {
      const auto it = params.find(name);
      return it == params.end() || it->second.empty() ? nullptr : &it->second;
    };
    const std::string* action = get("Action");
    action_index = action != nullptr ? find_action(*action) : -1;
    if (action_index >= 0) {
      out.action = *action;
      m_state->requests[static_cast<std::size_t>(action_index)].fetch_add(1);
    } else {
      m_state->other.fetch_add(1);
    }
    for (const char* name : {"Action",
                             "Version",
                             "AccessKeyId",
                             "Signature",
                             "SignatureMethod",
                             "SignatureVersion",
                             "SignatureNonce",
                             "Timestamp"}) {
      if (get(name) == nullptr) {
        reply = missing(name);
        return;
      }
    }
    const std::string* format = get("Format");
    if (format == nullptr || !starts_with_nocase(*format, "JSON") || format->size() != 4) {
      reply = gateway_error(400,
                            "InvalidParameter.Format",
                            "The emulator answers Format=JSON only (the API's default is XML).");
      return;
    }
    if (*get("Version") != iot::cloud::k_api_version) {
      reply = gateway_error(400, "InvalidVersion", "Specified parameter Version is not valid.");
      return;
    }
    if (action_index < 0) {
      reply = gateway_error(404,
                            "InvalidAction.NotFound",
                            "Specified api is not found, please check your url and method.");
      return;
    }
    if (*get("SignatureMethod") != "HMAC-SHA1" || *get("SignatureVersion") != "1.0") {
      reply = gateway_error(400,
                            "IncompleteSignature",
                            "The request signature does not conform to Aliyun standards "
                            "(SignatureMethod HMAC-SHA1, SignatureVersion 1.0).");
      return;
    }
    const AccessKeyRow* ak = m_store.access_key(*get("AccessKeyId"));
    if (ak == nullptr) {
      reply =
          gateway_error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.");
      return;
    }
    const auto timestamp = parse_timestamp(*get("Timestamp"));
    if (!timestamp) {
      reply = gateway_error(400,
                            "InvalidTimeStamp.Format",
                            "Specified time stamp or date value is not well formatted.");
      return;
    }
    if (std::llabs(now - *timestamp) > k_skew_ms) {
      reply = gateway_error(
          400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.");
      return;
    }
    const auto check = iot::cloud::verify_rpc_signature(request.method, params, ak->secret);
    if (!check.valid) {
      reply = gateway_error(400,
                            "SignatureDoesNotMatch",
                            "Specified signature is not matched with our calculation. server "
                            "string to sign is:" +
                                check.string_to_sign);
      return;
    }
    if (!m_state->nonces.insert(ak->id, *get("SignatureNonce"), now)) {
      reply =
          gateway_error(400, "SignatureNonceUsed", "Specified signature nonce was used already.");
      return;
    }
    // Injected refusals: nothing below runs, so no state changes.
    if (draw.fail < f.fail_5xx) {
      m_state->fault_5xx.fetch_add(1);
      reply =
          draw.fail_gateway
              ? gateway_error(503,
                              "ServiceUnavailable",
                              "The request has failed due to a temporary failure of the server.")
              : business_error("iot.system.SystemException", "A system exception occurred.");
      return;
    }
    if (draw.throttle < f.throttle_burst) {
      m_state->fault_throttle.fetch_add(1);
      reply = gateway_error(400, "Throttling", "Request was denied due to request throttling.");
      return;
    }
    const ActionSpec& spec = action_table()[static_cast<std::size_t>(action_index)];
    if (!m_options.no_limits) {
      std::vector<std::pair<std::string, double>> buckets;
      const std::string key = ak->account + '\0' + std::string(spec.name);
      buckets.emplace_back(key, spec.qps * m_options.qps_scale);
      if (spec.deep == DeepRule::deep_pages && rows_end(params) >= k_deep_page_rows) {
        buckets.emplace_back(key + std::string(1, '\0') + "deep",
                             k_deep_page_qps * m_options.qps_scale);
      }
      if (!m_state->limiter.try_acquire(buckets, now)) {
        m_state->throttled[static_cast<std::size_t>(action_index)].fetch_add(1);
        reply =
            gateway_error(400, "Throttling.User", "Request was denied due to user flow control.");
        return;
      }
    }
    ActionContext ctx(params, m_store, now, m_state->rng, m_options, [this](std::int64_t due) {
      const std::lock_guard lock(m_state->due_mutex);
      if (m_state->next_due == 0 || due < m_state->next_due) {
        m_state->next_due = due;
      }
    });
    try {
      reply = spec.handler(ctx);
    } catch (ReplyError& e) {
      reply = std::move(e.reply);
    }
    // Lost answers: the request ran (and committed) but the client will not know.
    out.delivery = lost_answer(draw, f, m_state->fault_reset, m_state->fault_truncate);
  }();

  json body;
  body["RequestId"] = request_id;
  if (reply.gateway) {
    body["HostId"] = "iot." + m_store.region() + ".aliyuncs.com";
    body["Code"] = reply.body.value("Code", "");
    body["Message"] = reply.body.value("Message", "");
    body["Recommend"] = "https://api.aliyun.com/troubleshoot?q=" + reply.code +
                        "&product=Iot&requestId=" + request_id;
  } else {
    for (auto& [key, value] : reply.body.items()) {
      body[key] = std::move(value);
    }
  }
  out.status = reply.status;
  out.code = reply.code;
  out.body = body.dump();
  if (!out.code.empty()) {
    count_error(out.code);
  }
  if (m_exchange_log != nullptr) {
    const auto action = params.find("Action");
    m_exchange_log->write(Exchange{
        .action = action == params.end() ? std::string() : action->second,
        .method = request.method,
        .user_agent = request.user_agent,
        .params = &params,
        .status = out.status,
        .code = out.code,
        .delivery = out.delivery == Delivery::truncate ? "truncate"
                    : out.delivery == Delivery::reset  ? "reset"
                                                       : "normal",
        .body = out.body,
    });
  }
  return out;
}

CloudResponse CloudService::dynamic_register(const CloudRequest& request,
                                             std::int64_t now,
                                             std::string request_id) {
  m_state->register_requests.fetch_add(1);
  CloudResponse out;
  out.request_id = std::move(request_id);
  const FaultOptions& f = m_options.faults;
  const FaultDraw draw = draw_faults(m_state->rng, f);
  out.delay = draw.delay;
  DynregReply reply = [&]() -> DynregReply {
    if (request.method != "POST") {
      return dynreg_error(k_dynreg_bad_method, "method not allowed", 405);
    }
    auto authenticated = dynreg_authenticate(request, m_store);
    if (auto* refused = std::get_if<DynregReply>(&authenticated)) {
      return std::move(*refused);
    }
    // Injected refusals, after authentication as for the OpenAPI: nothing below runs.
    if (draw.fail < f.fail_5xx) {
      m_state->fault_5xx.fetch_add(1);
      return draw.fail_gateway ? dynreg_error(k_dynreg_unavailable, "service unavailable", 503)
                               : dynreg_error(k_dynreg_system_error, "system error");
    }
    if (draw.throttle < f.throttle_burst) {
      m_state->fault_throttle.fetch_add(1);
      return dynreg_error(k_dynreg_throttled, "request too many");
    }
    DynregReply done =
        dynreg_register(m_store, m_state->rng, std::get<DynregRequest>(authenticated), now);
    // Lost answers: the registration ran (a secret may have been issued and committed) but the
    // device will not know.
    out.delivery = lost_answer(draw, f, m_state->fault_reset, m_state->fault_truncate);
    return done;
  }();
  if (reply.issued) {
    m_state->register_issued.fetch_add(1);
  }
  out.status = reply.status;
  out.body = reply.body.dump();
  if (reply.code != k_dynreg_ok) {
    out.code = std::to_string(reply.code);
    count_error("dynreg." + out.code);
  }
  return out;
}

CloudResponse
CloudService::activate(const CloudRequest& request, std::int64_t now, std::string request_id) {
  m_state->activate_requests.fetch_add(1);
  const AdminReply reply = emulator_activate(request, m_store, m_state->rng, now);
  CloudResponse out;
  out.request_id = std::move(request_id);
  out.status = reply.status;
  out.body = reply.body.dump();
  if (reply.status != 200) {
    out.code = "emulator." + std::to_string(reply.status);
  }
  return out;
}

std::string CloudService::new_request_id() {
  return m_state->rng.with([](Rng& r) { return random_request_id(r); });
}

std::string CloudService::upload_fault() {
  const FaultOptions& f = m_options.faults;
  const FaultDraw draw = draw_faults(m_state->rng, f);
  if (draw.fail < f.fail_5xx) {
    m_state->fault_5xx.fetch_add(1);
    return "5xx";
  }
  if (draw.reset < f.reset) {
    m_state->fault_reset.fetch_add(1);
    return "reset";
  }
  return "";
}

void CloudService::count_upload(const std::string& code) {
  m_state->upload_requests.fetch_add(1);
  if (!code.empty()) {
    count_error("oss." + code);
  }
}

Counters CloudService::counters() const {
  Counters c;
  const auto table = action_table();
  for (std::size_t i = 0; i < table.size(); ++i) {
    c.actions.push_back(ActionCount{
        std::string(table[i].name), m_state->requests[i].load(), m_state->throttled[i].load()});
  }
  c.register_requests = m_state->register_requests.load();
  c.register_issued = m_state->register_issued.load();
  c.activate_requests = m_state->activate_requests.load();
  c.upload_requests = m_state->upload_requests.load();
  c.other_requests = m_state->other.load();
  c.fault_5xx = m_state->fault_5xx.load();
  c.fault_throttle = m_state->fault_throttle.load();
  c.fault_truncate = m_state->fault_truncate.load();
  c.fault_reset = m_state->fault_reset.load();
  const std::lock_guard lock(m_state->errors_mutex);
  c.errors = m_state->errors;
  return c;
}

} // namespace iot::sim::cloud
