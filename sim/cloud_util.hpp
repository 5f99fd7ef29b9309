// SPDX-License-Identifier: MIT
// Small helpers of the cloud emulator: time formats of the IoT API, field validation per
// docs/aliyun-iot-protocol.md §7, random identifiers from a seeded RNG.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace iot::sim::cloud {

using Rng = std::mt19937_64;
using WallClock = std::chrono::system_clock;

// Milliseconds since the Unix epoch.
[[nodiscard]] std::int64_t to_ms(WallClock::time_point t);
[[nodiscard]] WallClock::time_point from_ms(std::int64_t ms);

// "2019-02-20T02:16:09.000Z" (Utc* fields).
[[nodiscard]] std::string utc_iso(std::int64_t ms);
// "Wed, 20-Feb-2019 02:16:09 GMT" (QueryDevice Gmt* fields).
[[nodiscard]] std::string gmt_cookie(std::int64_t ms);
// "2018-08-06 10:48:41": the UTC+8 wall clock (QueryDeviceDetail Gmt* fields, LastOnlineTime).
[[nodiscard]] std::string china_local(std::int64_t ms);

// Parses the Timestamp parameter, strictly "YYYY-MM-DDThh:mm:ssZ" (20 characters, §1).
[[nodiscard]] std::optional<std::int64_t> parse_timestamp(std::string_view text);
// Parses an ISO 8601 UTC time "YYYY-MM-DDThh:mm:ss[.fff]Z" (scenario files).
[[nodiscard]] std::optional<std::int64_t> parse_iso_utc(std::string_view text);

// DeviceName: 4-32 of [A-Za-z0-9_-@.:] (§7).
[[nodiscard]] bool valid_device_name(std::string_view name);
// Nickname: 4-64 units of letters, digits, '_' (1 unit each) and CJK / Japanese characters
// (2 units each), UTF-8 (§7).
[[nodiscard]] bool valid_nickname(std::string_view nickname);
// ProductKey: 1-20 of [A-Za-z0-9] (§7, the doc's accepted range).
[[nodiscard]] bool valid_product_key(std::string_view key);

// Strict decimal integer (optional leading '-', no blanks, fits int64).
[[nodiscard]] std::optional<std::int64_t> parse_int(std::string_view text);

// `length` characters from [A-Za-z0-9].
[[nodiscard]] std::string random_alnum(Rng& rng, std::size_t length);
// `length` lowercase hex digits.
[[nodiscard]] std::string random_hex(Rng& rng, std::size_t length);
// An uppercase UUID-shaped RequestId "2A7BE9C6-3F1E-4D0B-9C55-0E1F2A3B4C5D".
[[nodiscard]] std::string random_request_id(Rng& rng);
// An IotId: 26 characters, 21 random alphanumerics then "00100" (the shape of the doc's example).
[[nodiscard]] std::string random_iot_id(Rng& rng);

} // namespace iot::sim::cloud
