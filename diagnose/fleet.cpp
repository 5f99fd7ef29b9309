// SPDX-License-Identifier: MIT
// Per device a fixed-size state updated by each of its records (no record kept); the rules run
// over the states at the end. The sequence rules look only at a device's previous record, and
// are written so that they give the same answer on a log sorted newest-first (the console's
// order is UNVERIFIED): alternation of client IPs and "two adjacent online records from
// different IPs" read the same backwards, and an online/keepalive-timeout pair is measured from
// whichever of the two is earlier.
#include "diagnose/fleet.hpp"

#include "core/keepalive.hpp"
#include "core/validate.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <unordered_map>

namespace iot::diagnose {
namespace {

constexpr std::size_t k_max_ips = 4;
constexpr std::size_t k_max_texts = 1000;
constexpr std::size_t k_quote_bytes = 240;
namespace ka = core::keepalive;
std::string advised() {
  return std::to_string(ka::advised_s) + " s";
}
constexpr std::uint32_t k_gap_window_s = 35; // keepalive × 1.5 + the server's 30 s check (+5)
constexpr std::uint64_t k_v4 = 1ull << 32;   // IP key of an IPv4 address: address | k_v4
constexpr std::uint64_t k_other_ip = 1ull << 63;

std::uint64_t hash_bytes(std::string_view s) {
  // FNV-1a, then a final mix: DeviceNames are short.
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

std::string quote(std::size_t line, std::string_view raw) {
  std::string_view q = raw;
  bool cut = false;
  if (q.size() > k_quote_bytes) {
    std::size_t n = k_quote_bytes;
    while (n > 0 && (static_cast<unsigned char>(q[n]) & 0xC0) == 0x80) {
      --n; // do not cut a UTF-8 sequence
    }
    q = q.substr(0, n);
    cut = true;
  }
  return "line " + std::to_string(line) + ": " + std::string(q) + (cut ? "…" : "");
}

std::string times(std::uint32_t n) {
  return n == 1 ? std::string("once") : std::to_string(n) + " times";
}

struct Evidence {
  std::vector<std::string> identity; // kicked records, online records from another IP
  std::vector<std::string> keepalive;
  std::vector<std::string> resets;
  std::vector<std::string> disconnects;
  std::vector<std::string> auth;
};

struct Device {
  const char* name = nullptr;
  std::uint8_t name_len = 0;
  bool listed = false;
  bool has_prev = false;
  bool more_ips = false;
  std::uint8_t n_ips = 0;
  Reason prev_reason = Reason::other;
  std::uint64_t hash = 0;
  std::array<std::uint32_t, k_reason_count> counts{};
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
  std::int64_t prev_ms = 0;
  std::uint64_t prev_ip = 0;
  std::uint64_t prev_line = 0;
  std::uint64_t online_ip1 = 0; // the latest online record's IP
  std::uint64_t online_ip2 = 0; // the one before, when different from online_ip1
  std::uint64_t last_ip = 0;
  std::uint64_t last_ka_ip = 0;
  std::array<std::uint64_t, k_max_ips> ips{};
  std::uint32_t alternations = 0; // online from IP A, then B, then A again
  std::uint32_t concurrent = 0;   // two adjacent online records from different IPs
  std::uint32_t ka_pairs = 0;     // online → keepalive timeout gaps measured
  std::uint32_t ka_near = 0;      // of which within the window above the smallest
  std::uint32_t ka_min_s = 0;
  std::uint32_t ka_near_max_s = 0;
  std::uint32_t backward = 0; // steps back in time from the previous record
  std::uint32_t forward = 0;
  std::int32_t evidence = -1;

  [[nodiscard]] std::string_view device_name() const { return {name, name_len}; }
};

struct TextHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

struct Range16 {
  std::uint32_t devices = 0;
  std::uint32_t ka_devices = 0; // devices whose keepalive timeouts were from this range
  std::uint64_t ka_events = 0;
  std::uint32_t long_keepalive = 0; // of which with an inferred keepalive above 240 s
  std::uint32_t inferred_sum = 0;
  std::uint32_t inferred_n = 0;
};

} // namespace

struct FleetAnalyzer::Impl {
  FleetOptions opts;
  std::vector<Device> devices;
  std::vector<std::uint64_t> slots; // high 32: hash tag; low 32: index + 1
  std::uint64_t mask = 0;
  std::vector<std::unique_ptr<char[]>> arenas;
  std::size_t arena_left = 0;
  char* arena_at = nullptr;
  std::vector<Evidence> evidence;
  std::size_t evidence_bytes = 0;
  bool evidence_truncated = false;
  std::unordered_map<std::uint64_t, std::string> other_ips; // non-IPv4 addresses by key
  std::unordered_map<std::string, ReasonText, TextHash, std::equal_to<>> texts;
  std::uint64_t texts_more = 0;
  FleetReport report;
  double log_days = 1.0; // the log's span in days (at least 1), set by finish()
  std::int64_t last_day = INT64_MIN;
  ReasonCounts* day_counts = nullptr;
  std::int64_t last_hour = INT64_MIN;
  ReasonCounts* hour_counts = nullptr;

  explicit Impl(FleetOptions o) : opts(std::move(o)) {
    slots.assign(1024, 0);
    mask = slots.size() - 1;
  }

  const char* keep_name(std::string_view name) {
    if (arena_left < name.size()) {
      constexpr std::size_t chunk = 1u << 20;
      arenas.push_back(std::make_unique<char[]>(chunk));
      arena_at = arenas.back().get();
      arena_left = chunk;
    }
    std::memcpy(arena_at, name.data(), name.size());
    const char* p = arena_at;
    arena_at += name.size();
    arena_left -= name.size();
    return p;
  }

  void grow() {
    std::vector<std::uint64_t> bigger(slots.size() * 2, 0);
    const std::uint64_t m2 = bigger.size() - 1;
    for (std::size_t i = 0; i < devices.size(); ++i) {
      const std::uint64_t h = devices[i].hash;
      std::uint64_t pos = h & m2;
      while (bigger[pos] != 0) {
        pos = (pos + 1) & m2;
      }
      bigger[pos] = (h & 0xFFFFFFFF00000000ull) | (i + 1);
    }
    slots = std::move(bigger);
    mask = m2;
  }

  Device& device(std::string_view name) {
    const std::uint64_t h = hash_bytes(name);
    for (std::uint64_t pos = h & mask;; pos = (pos + 1) & mask) {
      const std::uint64_t slot = slots[pos];
      if (slot == 0) {
        Device d;
        d.name = keep_name(name);
        d.name_len = static_cast<std::uint8_t>(std::min<std::size_t>(name.size(), 255));
        d.hash = h;
        devices.push_back(d);
        slots[pos] = (h & 0xFFFFFFFF00000000ull) | devices.size();
        if (devices.size() * 2 > slots.size()) {
          grow();
        }
        return devices.back();
      }
      if ((slot >> 32) == (h >> 32)) {
        Device& d = devices[(slot & 0xFFFFFFFFull) - 1];
        if (d.device_name() == name) {
          return d;
        }
      }
    }
  }

  std::uint64_t ip_key(std::string_view ip) {
    if (ip.empty()) {
      return 0;
    }
    if (const auto v4 = parse_ipv4(ip)) {
      return *v4 | k_v4;
    }
    const std::uint64_t key = (hash_bytes(ip) >> 1) | k_other_ip;
    if (other_ips.size() < 100'000) {
      other_ips.try_emplace(key, ip);
    }
    return key;
  }

  std::string ip_text(std::uint64_t key) const {
    if (key == 0) {
      return "";
    }
    if ((key & k_other_ip) == 0) {
      return format_ipv4(static_cast<std::uint32_t>(key & 0xFFFFFFFFull));
    }
    const auto it = other_ips.find(key);
    return it == other_ips.end() ? std::string("(an IPv6 address)") : it->second;
  }

  Evidence* evidence_of(Device& d) {
    if (d.evidence < 0) {
      if (evidence_bytes >= opts.evidence_bytes) {
        evidence_truncated = true;
        return nullptr;
      }
      d.evidence = static_cast<std::int32_t>(evidence.size());
      evidence.emplace_back();
    }
    return &evidence[static_cast<std::size_t>(d.evidence)];
  }

  void
  keep(Device& d, std::vector<std::string> Evidence::*which, std::size_t cap, std::string text) {
    Evidence* e = evidence_of(d);
    if (!e || (e->*which).size() >= cap) {
      return;
    }
    if (evidence_bytes >= opts.evidence_bytes) {
      evidence_truncated = true;
      return;
    }
    evidence_bytes += text.size() + 32;
    (e->*which).push_back(std::move(text));
  }

  void count_text(const LogRecord& r) {
    const std::string_view text = r.content.empty() ? r.status : r.content;
    if (const auto it = texts.find(text); it != texts.end()) {
      ++it->second.count;
      return;
    }
    if (texts.size() >= k_max_texts) {
      ++texts_more;
      return;
    }
    ReasonText t;
    t.text = std::string(text);
    t.reason = r.reason.reason;
    t.matched = r.reason.matched;
    t.count = 1;
    texts.emplace(t.text, std::move(t));
  }

  bool wants(const Device& d, std::vector<std::string> Evidence::*which, std::size_t cap) const {
    if (evidence_bytes >= opts.evidence_bytes) {
      return false;
    }
    return d.evidence < 0 || (evidence[static_cast<std::size_t>(d.evidence)].*which).size() < cap;
  }

  void note(Device& d,
            std::vector<std::string> Evidence::*which,
            std::size_t cap,
            std::size_t line,
            std::string_view raw) {
    if (wants(d, which, cap)) {
      keep(d, which, cap, quote(line, raw));
    }
  }

  // A measured idle time before a keepalive timeout (seconds since the device's last packet, or
  // since the online record that opened the session). `why` builds the evidence text.
  template <class Why> void gap(Device& d, std::int64_t gap_ms, Why&& why) {
    if (gap_ms < 0 || gap_ms > 3'600'000LL * 24) {
      return;
    }
    const auto g = static_cast<std::uint32_t>(gap_ms / 1000);
    ++d.ka_pairs;
    if (d.ka_pairs == 1 || g + k_gap_window_s < d.ka_min_s) {
      d.ka_min_s = g;
      d.ka_near = 1;
      d.ka_near_max_s = g;
    } else if (g < d.ka_min_s) {
      d.ka_min_s = g;
      ++d.ka_near;
    } else if (g <= d.ka_min_s + k_gap_window_s) {
      ++d.ka_near;
      d.ka_near_max_s = std::max(d.ka_near_max_s, g);
    }
    if (wants(d, &Evidence::keepalive, 3)) {
      keep(d, &Evidence::keepalive, 3, why(g));
    }
  }

  void add(const LogRecord& r, std::size_t line, std::string_view raw) {
    if (opts.product_key && !r.product_key.empty() && r.product_key != *opts.product_key) {
      ++report.other_product;
      return;
    }
    if ((opts.since_ms && r.time_ms < *opts.since_ms) ||
        (opts.until_ms && r.time_ms >= *opts.until_ms)) {
      ++report.outside_window;
      return;
    }
    ++report.records;
    const Reason reason = r.reason.reason;
    const auto ri = static_cast<std::size_t>(reason);
    ++report.totals[ri];
    if (report.first_ms == 0 || r.time_ms < report.first_ms) {
      report.first_ms = r.time_ms;
    }
    report.last_ms = std::max(report.last_ms, r.time_ms);
    const std::int64_t local = r.time_ms + static_cast<std::int64_t>(opts.offset_min) * 60'000;
    const std::int64_t hour = local >= 0 ? local / 3'600'000 : (local - 3'599'999) / 3'600'000;
    if (hour != last_hour) {
      last_hour = hour;
      hour_counts = &report.per_hour[hour];
      const std::int64_t day = hour >= 0 ? hour / 24 : (hour - 23) / 24;
      if (day != last_day) {
        last_day = day;
        day_counts = &report.per_day[day];
      }
    }
    ++(*hour_counts)[ri];
    ++(*day_counts)[ri];
    count_text(r);

    Device& d = device(r.device_name);
    ++d.counts[ri];
    if (d.first_ms == 0 || r.time_ms < d.first_ms) {
      d.first_ms = r.time_ms;
    }
    d.last_ms = std::max(d.last_ms, r.time_ms);
    const std::uint64_t ip = ip_key(r.client_ip);
    if (ip != 0) {
      d.last_ip = ip;
      bool known = false;
      for (std::size_t i = 0; i < d.n_ips; ++i) {
        known |= d.ips[i] == ip;
      }
      if (!known) {
        if (d.n_ips < k_max_ips) {
          d.ips[d.n_ips++] = ip;
        } else {
          d.more_ips = true;
        }
      }
    }
    if (d.has_prev) {
      if (r.time_ms + 1000 < d.prev_ms) {
        ++d.backward;
      } else if (r.time_ms > d.prev_ms + 1000) {
        ++d.forward;
      }
    }

    switch (reason) {
    case Reason::online:
      if (ip != 0) {
        if (d.has_prev && d.prev_reason == Reason::online && d.prev_ip != 0 && d.prev_ip != ip) {
          ++d.concurrent;
          note(d, &Evidence::identity, 4, line, raw);
        }
        if (d.online_ip1 != 0 && ip != d.online_ip1) {
          if (ip == d.online_ip2) {
            ++d.alternations;
            note(d, &Evidence::identity, 4, line, raw);
          }
          d.online_ip2 = d.online_ip1;
        }
        d.online_ip1 = ip;
      }
      if (d.has_prev && d.prev_reason == Reason::keepalive_timeout && d.prev_ms >= r.time_ms &&
          r.reason.idle_s < 0) {
        // Newest first: this online record opened the session the previous record closed.
        gap(d, d.prev_ms - r.time_ms, [&](std::uint32_t g) {
          return quote(line, raw) + " — the keepalive timeout of line " +
                 std::to_string(d.prev_line) + " came " + std::to_string(g) + " s later";
        });
      }
      break;
    case Reason::kicked:
      note(d, &Evidence::identity, 4, line, raw);
      break;
    case Reason::keepalive_timeout:
      if (ip != 0) {
        d.last_ka_ip = ip;
      }
      if (r.reason.idle_s >= 0 || (r.last_time_ms != 0 && r.last_time_ms <= r.time_ms)) {
        const std::int64_t idle = r.reason.idle_s >= 0
                                      ? static_cast<std::int64_t>(r.reason.idle_s) * 1000
                                      : r.time_ms - r.last_time_ms;
        gap(d, idle, [&](std::uint32_t g) {
          return quote(line, raw) + " — " + std::to_string(g) + " s without a packet";
        });
      } else if (d.has_prev && d.prev_reason == Reason::online && d.prev_ms <= r.time_ms) {
        gap(d, r.time_ms - d.prev_ms, [&](std::uint32_t g) {
          return quote(line, raw) + " — " + std::to_string(g) +
                 " s after the online record of line " + std::to_string(d.prev_line) + " (" +
                 format_time(d.prev_ms, opts.offset_min) +
                 (d.prev_ip ? ", " + ip_text(d.prev_ip) : std::string()) + ")";
        });
      } else {
        note(d, &Evidence::keepalive, 3, line, raw);
      }
      break;
    case Reason::connection_reset:
      note(d, &Evidence::resets, 2, line, raw);
      break;
    case Reason::device_disconnect:
      note(d, &Evidence::disconnects, 2, line, raw);
      break;
    case Reason::auth_failure:
      note(d, &Evidence::auth, 3, line, raw);
      break;
    case Reason::other:
      break;
    }
    d.has_prev = true;
    d.prev_reason = reason;
    d.prev_ms = r.time_ms;
    d.prev_ip = ip;
    d.prev_line = line;
  }

  std::vector<std::string> ips_of(const Device& d) const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < d.n_ips; ++i) {
      out.push_back(ip_text(d.ips[i]));
    }
    if (d.more_ips) {
      out.emplace_back("(more)");
    }
    return out;
  }

  // A device's quoted lines of one kind, moved out (each kind goes into one finding).
  std::vector<std::string> ev(const Device& d, std::vector<std::string> Evidence::*which) {
    if (d.evidence < 0) {
      return {};
    }
    return std::move(evidence[static_cast<std::size_t>(d.evidence)].*which);
  }

  // The keepalive a device's gaps point at: idle = keepalive × 1.5 + [0, 30 s] (aliyun §5).
  static std::optional<int> inferred_keepalive(const Device& d) {
    if (d.ka_near < 3 || d.ka_near * 10 < d.ka_pairs * 6) {
      return std::nullopt;
    }
    const double k = static_cast<double>(d.ka_min_s) / 1.5;
    return static_cast<int>(std::lround(k / 5.0) * 5);
  }

  Finding base(const Device& d, std::string_view kind) const {
    Finding f;
    f.kind = std::string(kind);
    f.subject = std::string(d.device_name());
    f.client_ips = ips_of(d);
    f.first_ms = d.first_ms;
    f.last_ms = d.last_ms;
    return f;
  }

  std::string counts_text(const Device& d) const {
    std::string s;
    for (std::size_t i = 0; i < k_reason_count; ++i) {
      if (d.counts[i] == 0) {
        continue;
      }
      s += s.empty() ? "" : ", ";
      s += std::to_string(d.counts[i]) + " " + std::string(to_string(static_cast<Reason>(i)));
    }
    return "records of " + std::string(d.device_name()) + ": " + s;
  }

  // "Frequent": at least min_events records, and min_per_day a day over the log's span (a
  // healthy device's few disconnects a week are not a finding).
  [[nodiscard]] bool frequent(std::uint32_t n) const {
    return n >= opts.min_events && static_cast<double>(n) >= opts.min_per_day * log_days;
  }

  void device_findings(const Device& d, std::vector<Finding>& out) {
    const auto c = [&](Reason r) { return d.counts[static_cast<std::size_t>(r)]; };
    const std::uint32_t kicked = c(Reason::kicked);
    const bool placeholder = core::classify_imei(d.device_name()) == core::ImeiClass::placeholder;
    // Identity conflict: two modules fight over one DeviceName (seed §6, case 1).
    if ((d.alternations >= 2 && kicked >= 2) || (placeholder && kicked >= 1) ||
        (d.concurrent >= 3 && kicked >= 3 && d.alternations >= 1)) {
      Finding f = base(d, k_duplicate_identity);
      f.confidence = (d.alternations >= 2 && kicked >= 2) || placeholder ? Confidence::high
                                                                         : Confidence::medium;
      f.events = kicked + c(Reason::online);
      f.detail = "online from " + std::to_string(d.n_ips) + (d.more_ips ? "+" : "") +
                 " client IPs, switching back to an earlier IP " + times(d.alternations) + ", " +
                 times(d.concurrent) + " online from a second IP while online from the first, " +
                 std::to_string(kicked) +
                 " \"Kicked by the same device\": two modules connect with this identity";
      if (placeholder) {
        f.detail += "; the DeviceName is a factory placeholder IMEI (the IMEI was never "
                    "written, so every such module has it)";
      }
      f.evidence = ev(d, &Evidence::identity);
      f.evidence.push_back(counts_text(d));
      f.fix = "Find the modules that connect as " + std::string(d.device_name()) +
              " (one per client IP above) and give each its own identity: DeviceName = the "
              "module's own IMEI, unique in the product (seed FAQ §6 case 1, §7); a module "
              "whose IMEI is a placeholder or differs from its label was never written: send it "
              "to rework (seed §4). `iotfleet module info --port P` shows the IMEI and the "
              "stored DeviceName.";
      out.push_back(std::move(f));
    } else if (kicked >= 3) {
      Finding f = base(d, k_reboots);
      f.confidence = Confidence::low;
      f.events = kicked;
      f.detail = std::to_string(kicked) +
                 " \"Kicked by the same device\" without client IPs taking turns: the device "
                 "reconnected while its old session was still open, as after a reboot";
      f.evidence = ev(d, &Evidence::identity);
      f.evidence.push_back(counts_text(d));
      f.fix = "Seed FAQ §6 case 2: the module restarted while online and connected again — not "
              "an identity problem. Look at why it restarts (watchdog, power supply, firmware "
              "crash in the module's log).";
      out.push_back(std::move(f));
    }

    // Keepalive.
    const std::uint32_t ka = c(Reason::keepalive_timeout);
    const auto k = inferred_keepalive(d);
    const std::string gaps = "the keepalive timeouts came " + std::to_string(d.ka_min_s) + "–" +
                             std::to_string(d.ka_near_max_s) +
                             " s after the device's last packet in " + std::to_string(d.ka_near) +
                             " of " + std::to_string(d.ka_pairs) +
                             " measured cases; the server drops a device after keepalive × 1.5 "
                             "plus up to " +
                             std::to_string(ka::server_check_s) + " s, so its keepalive is about " +
                             (k ? std::to_string(*k) : std::string("?")) + " s";
    if (k && *k > ka::advised_max_s) {
      Finding f = base(d, k_keepalive_too_long);
      f.confidence = d.ka_near >= 5 ? Confidence::high : Confidence::medium;
      f.events = ka;
      f.keepalive_s = *k;
      f.detail = gaps + ": too long for a cellular network, whose NAT closes idle connections "
                        "after about 4 minutes, so its PINGREQs are lost";
      f.evidence = ev(d, &Evidence::keepalive);
      f.evidence.push_back(counts_text(d));
      f.fix = "Set the MQTT keepalive to " + advised() + " (" + ka::advised_range() +
              " on cellular; above " + std::to_string(ka::advised_max_s) +
              " s the base station closes the idle connection) — seed FAQ §5.";
      out.push_back(std::move(f));
    } else if (k && *k < ka::advised_min_s) {
      Finding f = base(d, k_keepalive_too_short);
      f.confidence = d.ka_near >= 5 ? Confidence::high : Confidence::medium;
      f.events = ka;
      f.keepalive_s = *k;
      f.detail = gaps + ": too short, a slow uplink exceeds 1.5 × keepalive";
      f.evidence = ev(d, &Evidence::keepalive);
      f.evidence.push_back(counts_text(d));
      f.fix = "Set the MQTT keepalive to " + advised() + " (not below " +
              std::to_string(ka::advised_min_s) +
              " s: a send that takes longer than 1.5 × keepalive gets the device dropped) — "
              "seed FAQ §5.";
      out.push_back(std::move(f));
    } else if (frequent(ka)) {
      Finding f = base(d, k_frequent_keepalive);
      f.confidence = Confidence::medium;
      f.events = ka;
      f.keepalive_s = k;
      f.detail = std::to_string(ka) + " keepalive timeouts" +
                 (k ? "; " + gaps + " (within " + ka::advised_range() + ")"
                    : std::string("; the gaps do not show one keepalive value"));
      f.evidence = ev(d, &Evidence::keepalive);
      f.evidence.push_back(counts_text(d));
      f.fix = "The module's PINGREQs do not reach the server in time: check the signal "
              "(`iotfleet module info`: CSQ, registration), keep the keepalive at " +
              advised() + ", use QoS 0 where possible (QoS 1/2 retries delay pings) — seed FAQ §5.";
      out.push_back(std::move(f));
    }

    const std::uint32_t resets = c(Reason::connection_reset);
    if (frequent(resets)) {
      Finding f = base(d, k_frequent_resets);
      f.confidence = Confidence::medium;
      f.events = resets;
      f.detail = std::to_string(resets) +
                 " \"Connection reset by peer\": the module dropped the socket without an MQTT "
                 "DISCONNECT, usually after a send timed out";
      f.evidence = ev(d, &Evidence::resets);
      f.evidence.push_back(counts_text(d));
      f.fix = "Weak or unstable network: check the signal and registration (`iotfleet module "
              "info`), keepalive " +
              advised() + ", fewer QoS 1/2 publishes (seed FAQ §5, §6).";
      out.push_back(std::move(f));
    }
    const std::uint32_t dd = c(Reason::device_disconnect);
    if (frequent(dd)) {
      Finding f = base(d, k_frequent_disconnect);
      f.confidence = Confidence::medium;
      f.events = dd;
      f.detail =
          std::to_string(dd) + " \"Device disconnect\": the firmware itself sent MQTT DISCONNECT";
      f.evidence = ev(d, &Evidence::disconnects);
      f.evidence.push_back(counts_text(d));
      f.fix = "Application logic closes the connection: read the module's script / firmware "
              "log around these times for what calls disconnect (seed FAQ §6).";
      out.push_back(std::move(f));
    }
    const std::uint32_t auth = c(Reason::auth_failure);
    if (auth >= 1) {
      Finding f = base(d, k_auth_failures);
      f.confidence = auth >= 3 ? Confidence::high : Confidence::medium;
      f.events = auth;
      f.detail = std::to_string(auth) + " authentication failures: the platform refused the "
                                        "device's credentials";
      f.evidence = ev(d, &Evidence::auth);
      f.evidence.push_back(counts_text(d));
      f.fix = "Compare the module's DeviceSecret with a healthy-time snapshot and the cloud "
              "(`iotfleet secrets compare`, seed FAQ §3); check the ProductKey's letter case "
              "(seed §4).";
      out.push_back(std::move(f));
    }
  }

  // What the pass over the devices gathers for the fleet-wide rules.
  struct FleetPass {
    std::vector<Finding> findings;
    std::vector<Range16> ranges = std::vector<Range16>(65536); // per IPv4 /16
    std::uint64_t fleet_devices_v4 = 0;
    std::uint64_t fleet_ka_devices = 0;
    std::vector<std::uint32_t> order; // the devices in the log, for the ranking
    std::unordered_map<std::uint32_t, std::vector<std::string>> cluster_examples;
  };

  // The log's order, from how the devices' records followed each other.
  void log_order(FleetReport& rep) const {
    std::uint64_t backward = 0;
    std::uint64_t forward = 0;
    for (const auto& d : devices) {
      backward += d.backward;
      forward += d.forward;
    }
    if (backward + forward >= 10) {
      rep.order = backward * 20 <= forward   ? "ascending"
                  : forward * 20 <= backward ? "descending"
                                             : "unsorted";
    }
  }

  // Every device: its own findings, never-online devices of the list, the /16 statistics.
  void device_pass(FleetReport& rep, bool device_list, FleetPass& pass) {
    auto& findings = pass.findings;
    auto& ranges = pass.ranges;
    auto& fleet_devices_v4 = pass.fleet_devices_v4;
    auto& fleet_ka_devices = pass.fleet_ka_devices;
    auto& order = pass.order;
    auto& cluster_examples = pass.cluster_examples;
    for (std::uint32_t i = 0; i < devices.size(); ++i) {
      const Device& d = devices[i];
      std::uint64_t total = 0;
      for (const auto n : d.counts) {
        total += n;
      }
      if (total == 0) {
        // Listed, never in the log.
        if (d.listed) {
          ++rep.never_online;
          Finding f;
          f.kind = std::string(k_never_online);
          f.subject = std::string(d.device_name());
          f.confidence = Confidence::medium;
          f.events = 0;
          f.detail = "in the device list, no record in the log";
          f.fix = "Never connected in this period: check its first connection — SIM, network "
                  "registration, the credentials burned (`iotfleet module info`, `iotfleet "
                  "secrets compare`), the ProductKey's letter case (seed FAQ §4).";
          findings.push_back(std::move(f));
        }
        continue;
      }
      ++rep.devices;
      if (device_list && !d.listed) {
        ++rep.not_listed;
      }
      if (d.listed && d.counts[static_cast<std::size_t>(Reason::online)] == 0) {
        ++rep.never_online;
        Finding f = base(d, k_never_online);
        f.confidence = Confidence::high;
        f.events = total;
        f.detail =
            "in the device list; " + std::to_string(total) + " records in the log but none online";
        f.evidence.push_back(counts_text(d));
        f.fix = "It tries but never gets online: check the credentials (`iotfleet secrets "
                "compare`), the ProductKey's letter case (seed FAQ §4), SIM and registration.";
        findings.push_back(std::move(f));
      }
      const std::uint32_t ka_count = d.counts[static_cast<std::size_t>(Reason::keepalive_timeout)];
      if (frequent(ka_count) && d.last_ka_ip != 0 && (d.last_ka_ip & k_other_ip) == 0 &&
          d.evidence >= 0) {
        const std::uint32_t range = (d.last_ka_ip >> 16) & 0xFFFF;
        const auto& lines = evidence[static_cast<std::size_t>(d.evidence)].keepalive;
        if (!lines.empty() && !cluster_examples.contains(range)) {
          auto& ex = cluster_examples[range];
          for (const auto& e : lines) {
            ex.push_back(std::string(d.device_name()) + ": " + e);
          }
        }
      }
      device_findings(d, findings);
      order.push_back(i);
      // /16 ranges for keepalive clusters (IPv4 only).
      if (d.last_ip != 0 && (d.last_ip & k_other_ip) == 0) {
        ++fleet_devices_v4;
        ++ranges[(d.last_ip >> 16) & 0xFFFF].devices;
      }
      const std::uint32_t ka = d.counts[static_cast<std::size_t>(Reason::keepalive_timeout)];
      if (frequent(ka) && d.last_ka_ip != 0 && (d.last_ka_ip & k_other_ip) == 0) {
        ++fleet_ka_devices;
        Range16& r = ranges[(d.last_ka_ip >> 16) & 0xFFFF];
        ++r.ka_devices;
        r.ka_events += ka;
        if (const auto k = inferred_keepalive(d)) {
          r.inferred_sum += static_cast<std::uint32_t>(*k);
          ++r.inferred_n;
          if (*k > ka::advised_max_s) {
            ++r.long_keepalive;
          }
        }
      }
    }
  }

  // Keepalive-timeout clusters: a /16 whose devices time out far more often than the rest.
  void cluster_findings(FleetPass& pass) const {
    auto& findings = pass.findings;
    const auto& ranges = pass.ranges;
    const auto fleet_devices_v4 = pass.fleet_devices_v4;
    const auto fleet_ka_devices = pass.fleet_ka_devices;
    auto& cluster_examples = pass.cluster_examples;
    for (std::uint32_t p = 0; p < ranges.size(); ++p) {
      const Range16& r = ranges[p];
      if (r.ka_devices < 5) {
        continue;
      }
      const std::uint64_t in = std::max<std::uint32_t>(r.devices, r.ka_devices);
      const double rate = static_cast<double>(r.ka_devices) / static_cast<double>(in);
      const std::uint64_t out_devices = fleet_devices_v4 > in ? fleet_devices_v4 - in : 0;
      const std::uint64_t out_ka =
          fleet_ka_devices > r.ka_devices ? fleet_ka_devices - r.ka_devices : 0;
      const double rest =
          out_devices ? static_cast<double>(out_ka) / static_cast<double>(out_devices) : 0.0;
      if (rate < 0.05 || rate < 3 * rest) {
        continue;
      }
      Finding f;
      f.kind = std::string(k_keepalive_cluster);
      f.subject = std::to_string(p >> 8) + "." + std::to_string(p & 255) + ".0.0/16";
      f.confidence = rate >= 5 * rest ? Confidence::high : Confidence::medium;
      f.events = r.ka_events;
      f.devices = r.ka_devices;
      if (r.inferred_n > 0) {
        f.keepalive_s = static_cast<int>(r.inferred_sum / r.inferred_n);
      }
      char pct[64];
      std::snprintf(
          pct, sizeof pct, "%.0f %% of its devices vs %.1f %% elsewhere", rate * 100, rest * 100);
      f.detail = std::to_string(r.ka_devices) + " devices with frequent keepalive timeouts from " +
                 f.subject + " (" + pct + "), " + std::to_string(r.ka_events) + " timeouts; " +
                 std::to_string(r.long_keepalive) + " of them with an inferred keepalive above " +
                 std::to_string(ka::advised_max_s) +
                 " s: one carrier's NAT drops "
                 "their idle connections";
      f.evidence.push_back(std::to_string(r.ka_devices) + " of " + std::to_string(in) +
                           " devices in " + f.subject + " had frequent keepalive timeouts; " +
                           std::to_string(out_ka) + " of " + std::to_string(out_devices) +
                           " devices elsewhere");
      if (auto it = cluster_examples.find(p); it != cluster_examples.end()) {
        for (auto& e : it->second) {
          f.evidence.push_back(std::move(e));
        }
      }
      f.fix = "Keepalive " + advised() + " on these devices (" + ka::advised_range() +
              "; the carrier's NAT or base station closes idle connections after about 4 "
              "minutes) — seed FAQ §5; if they already use " +
              advised() + ", ask the carrier / APN about its idle timeout.";
      findings.push_back(std::move(f));
    }
  }

  // The most telling first: by kind, confidence, events, subject.
  static void rank_findings(std::vector<Finding>& findings) {
    const auto rank = [](const Finding& f) {
      static constexpr std::string_view kinds[] = {k_duplicate_identity,
                                                   k_keepalive_cluster,
                                                   k_keepalive_too_long,
                                                   k_keepalive_too_short,
                                                   k_auth_failures,
                                                   k_frequent_resets,
                                                   k_frequent_keepalive,
                                                   k_frequent_disconnect,
                                                   k_never_online,
                                                   k_reboots};
      for (std::size_t i = 0; i < std::size(kinds); ++i) {
        if (f.kind == kinds[i]) {
          return i;
        }
      }
      return std::size(kinds);
    };
    std::stable_sort(findings.begin(), findings.end(), [&](const Finding& a, const Finding& b) {
      const auto ra = rank(a);
      const auto rb = rank(b);
      if (ra != rb) {
        return ra < rb;
      }
      if (a.confidence != b.confidence) {
        return a.confidence < b.confidence;
      }
      if (a.events != b.events) {
        return a.events > b.events;
      }
      return a.subject < b.subject;
    });
  }

  // Devices ranked by disconnects, the first opts.top.
  void top_devices(FleetReport& rep, std::vector<std::uint32_t>& order) const {
    const auto disconnects = [](const Device& d) {
      std::uint64_t n = 0;
      for (std::size_t i = 1; i < k_reason_count; ++i) {
        n += d.counts[i];
      }
      return n;
    };
    const std::size_t top = std::min(opts.top, order.size());
    std::partial_sort(order.begin(),
                      order.begin() + static_cast<std::ptrdiff_t>(top),
                      order.end(),
                      [&](std::uint32_t a, std::uint32_t b) {
                        const auto da = disconnects(devices[a]);
                        const auto db = disconnects(devices[b]);
                        if (da != db) {
                          return da > db;
                        }
                        return devices[a].device_name() < devices[b].device_name();
                      });
    for (std::size_t i = 0; i < top; ++i) {
      const Device& d = devices[order[i]];
      DeviceSummary s;
      s.device_name = std::string(d.device_name());
      for (std::size_t k = 0; k < k_reason_count; ++k) {
        s.counts[k] = d.counts[k];
      }
      s.disconnects = disconnects(d);
      s.client_ips = ips_of(d);
      s.first_ms = d.first_ms;
      s.last_ms = d.last_ms;
      rep.top.push_back(std::move(s));
    }
  }

  void reason_texts(FleetReport& rep) {
    for (auto& [text, t] : texts) {
      rep.reason_texts.push_back(std::move(t));
    }
    std::sort(rep.reason_texts.begin(),
              rep.reason_texts.end(),
              [](const ReasonText& a, const ReasonText& b) {
                return a.count != b.count ? a.count > b.count : a.text < b.text;
              });
    rep.reason_texts_more = texts_more;
  }

  FleetReport finish(bool device_list) {
    FleetReport& rep = report;
    rep.offset_min = opts.offset_min;
    rep.devices = 0;
    rep.device_list = device_list;
    rep.evidence_truncated = evidence_truncated;
    log_days = std::max(1.0, static_cast<double>(rep.last_ms - rep.first_ms) / 86'400'000.0);
    log_order(rep);
    FleetPass pass;
    device_pass(rep, device_list, pass);
    cluster_findings(pass);
    rank_findings(pass.findings);
    rep.findings = std::move(pass.findings);
    top_devices(rep, pass.order);
    reason_texts(rep);
    return std::move(rep);
  }
};

std::string_view to_string(Confidence c) {
  switch (c) {
  case Confidence::high:
    return "high";
  case Confidence::medium:
    return "medium";
  case Confidence::low:
    break;
  }
  return "low";
}

FleetAnalyzer::FleetAnalyzer(FleetOptions options)
    : m(std::make_unique<Impl>(std::move(options))) {}
FleetAnalyzer::~FleetAnalyzer() = default;

void FleetAnalyzer::add(const LogRecord& record, std::size_t line, std::string_view raw) {
  m->add(record, line, raw);
}

void FleetAnalyzer::add_listed(std::string_view device_name) {
  m_device_list = true;
  if (device_name.empty() || device_name.size() > 255) {
    return;
  }
  Device& d = m->device(device_name);
  if (!d.listed) {
    d.listed = true;
    ++m->report.listed;
  }
}

std::size_t FleetAnalyzer::devices() const {
  return m->devices.size();
}

FleetReport FleetAnalyzer::finish() {
  return m->finish(m_device_list);
}

} // namespace iot::diagnose
