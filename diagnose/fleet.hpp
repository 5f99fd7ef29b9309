// SPDX-License-Identifier: MIT
// Fleet analysis of a device log in one pass (`iotfleet diagnose fleet`): reasons per day and
// hour, devices ranked by disconnects, identity conflicts (two modules sharing one DeviceName),
// keepalive problems (the keepalive inferred from the gaps), keepalive-timeout clusters by /16,
// devices never online. Memory grows with the number of devices, not with the log: a fixed-size
// state per device, a few quoted lines of evidence for the suspicious ones (capped overall).
//
// Every rule and its thresholds are documented in docs/diagnose.md; the fixes follow the seed
// FAQ §4–§7 and docs/aliyun-iot-protocol.md §5.
#pragma once

#include "diagnose/device_log.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::diagnose {

struct FleetOptions {
  std::optional<std::string> product_key; // records of other products are left out
  std::optional<std::int64_t> since_ms;   // inclusive
  std::optional<std::int64_t> until_ms;   // exclusive
  int offset_min = 480;                   // days and hours are counted in this zone
  std::size_t top = 20;                   // devices ranked by disconnects
  std::uint32_t min_events = 5;           // "frequent" = at least this many in the log …
  double min_per_day = 2.0;               // … and at least this many a day on average
  std::size_t evidence_bytes = 32u << 20; // quoted lines kept, all devices together
};

enum class Confidence : std::uint8_t { high, medium, low };
[[nodiscard]] std::string_view to_string(Confidence c);

// Finding kinds, in the order reports list them.
inline constexpr std::string_view k_duplicate_identity = "duplicate-identity";
inline constexpr std::string_view k_keepalive_too_long = "keepalive-too-long";
inline constexpr std::string_view k_keepalive_too_short = "keepalive-too-short";
inline constexpr std::string_view k_keepalive_cluster = "keepalive-cluster";
inline constexpr std::string_view k_frequent_keepalive = "frequent-keepalive-timeouts";
inline constexpr std::string_view k_frequent_resets = "frequent-connection-resets";
inline constexpr std::string_view k_frequent_disconnect = "frequent-device-disconnect";
inline constexpr std::string_view k_auth_failures = "auth-failures";
inline constexpr std::string_view k_reboots = "reboots-while-online";
inline constexpr std::string_view k_never_online = "never-online";

struct Finding {
  std::string kind;
  std::string subject; // a DeviceName, or an IP range "117.136.0.0/16"
  Confidence confidence = Confidence::medium;
  std::uint64_t events = 0;  // the records that make the finding
  std::uint64_t devices = 1; // devices concerned (a cluster: how many)
  std::vector<std::string> client_ips;
  std::optional<int> keepalive_s; // inferred keepalive
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
  std::string detail;                // what the log shows, one sentence
  std::vector<std::string> evidence; // "line N: <quoted line>" and counts
  std::string fix;                   // what to do (seed FAQ)
};

struct DeviceSummary {
  std::string device_name;
  std::array<std::uint64_t, k_reason_count> counts{};
  std::uint64_t disconnects = 0; // every record but online
  std::vector<std::string> client_ips;
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
};

struct ReasonText {
  std::string text; // the content (or status, when no content) as written
  Reason reason = Reason::other;
  bool matched = false; // a rule of the reason table matched it
  std::uint64_t count = 0;
};

using ReasonCounts = std::array<std::uint64_t, k_reason_count>;

struct FleetReport {
  std::uint64_t records = 0;       // analysed
  std::uint64_t other_product = 0; // left out: another ProductKey
  std::uint64_t outside_window = 0;
  std::uint64_t devices = 0;
  ReasonCounts totals{};
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
  int offset_min = 480;
  std::map<std::int64_t, ReasonCounts> per_day;  // local day index → counts
  std::map<std::int64_t, ReasonCounts> per_hour; // local hour index → counts
  std::vector<DeviceSummary> top;
  std::vector<Finding> findings; // in report order
  std::vector<ReasonText> reason_texts;
  std::uint64_t reason_texts_more = 0; // records whose text was not kept (too many distinct)
  bool device_list = false;
  std::uint64_t listed = 0;     // devices in the list
  std::uint64_t not_listed = 0; // devices in the log but not in the list
  std::uint64_t never_online = 0;
  std::string order; // "ascending", "descending", "unsorted", "" (too few records)
  bool evidence_truncated = false;
};

class FleetAnalyzer {
public:
  explicit FleetAnalyzer(FleetOptions options);
  ~FleetAnalyzer();
  FleetAnalyzer(const FleetAnalyzer&) = delete;
  FleetAnalyzer& operator=(const FleetAnalyzer&) = delete;

  // One record, its line number and the line as written (quoted as evidence).
  void add(const LogRecord& record, std::size_t line, std::string_view raw);
  // A device of the device list (after the log).
  void add_listed(std::string_view device_name);
  void set_device_list_given() { m_device_list = true; }

  // The report. Call once.
  [[nodiscard]] FleetReport finish();

  // The number of devices seen so far.
  [[nodiscard]] std::size_t devices() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m;
  bool m_device_list = false;
};

} // namespace iot::diagnose
