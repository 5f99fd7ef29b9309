// SPDX-License-Identifier: MIT
// Module identities for the simulator: Luhn-valid IMEIs (at-modules.md §6), ICCIDs, IMSIs,
// Espressif MAC addresses and Quectel-style serial numbers, generated from a caller's RNG so a
// fixed --seed gives the same identities.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace iot::sim {

using Rng = std::mt19937_64;

// The unwritten default IMEI: the common Luhn-valid placeholder that Luat prints as
// 3520990017614823 (at-modules.md §1.1 and §6; the 15-digit form is UNVERIFIED there).
inline constexpr std::string_view k_placeholder_imei = "352099001761481";

// Luhn check digit ('0'..'9') for a string of decimal digits (the payload without the check
// digit): from the right, every second digit starting with the rightmost is doubled.
// Precondition: digits holds only '0'..'9'.
[[nodiscard]] char luhn_check_digit(std::string_view digits);

// True if text is all decimal digits, at least 2 long, and its last digit is the Luhn check
// digit of the rest.
[[nodiscard]] bool luhn_valid(std::string_view text);

// True for exactly 15 decimal digits (no Luhn check: a test may want an invalid IMEI).
[[nodiscard]] bool is_imei_shaped(std::string_view text);

// True for "xx:xx:xx:xx:xx:xx" with hex digits.
[[nodiscard]] bool is_mac_shaped(std::string_view text);

// A random Luhn-valid IMEI with a realistic Chinese-vendor TAC ("86…").
[[nodiscard]] std::string random_imei(Rng& rng);
// A random 20-digit ICCID "898604…" whose last digit is the Luhn check digit of the first 19.
[[nodiscard]] std::string random_iccid(Rng& rng);
// A random 15-digit IMSI "46000…" (China Mobile).
[[nodiscard]] std::string random_imsi(Rng& rng);
// A random MAC in Espressif's 24:0a:c4 OUI, lower-case hex.
[[nodiscard]] std::string random_mac(Rng& rng);
// A random Quectel-style module serial number, e.g. "MPY23LA01234567".
[[nodiscard]] std::string random_module_sn(Rng& rng);

// A well-mixed 64-bit seed derived from a base seed and a stream number (splitmix64).
[[nodiscard]] std::uint64_t derive_seed(std::uint64_t base, std::uint64_t stream);

} // namespace iot::sim
