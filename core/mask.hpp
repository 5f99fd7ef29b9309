// SPDX-License-Identifier: MIT
// Secret masking, used by every renderer, log and trace.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace iot::core {

// "abcd…wxyz" for secrets of 12 bytes or more; "****" for shorter non-empty ones (showing 8 of
// fewer than 12 characters would give most of it away); "" for "".
[[nodiscard]] std::string mask_secret(std::string_view secret);

// Replaces every occurrence of each non-empty secret in text by its mask (longest first, so a
// secret that contains another is masked whole). For traces and free-text messages.
[[nodiscard]] std::string mask_all(std::string_view text, const std::vector<std::string>& secrets);

// The tokens of text that look like a credential: runs of 16 to 64 letters and digits with at
// least one of each (a DeviceSecret is 32, a ProductSecret 16; IMEIs and ICCIDs are digits only).
// For answers no profile says hold a secret (a vendor's own command, a copy of the SN elsewhere
// in NVM): mask_all(text, secret_like_tokens(text)) errs on the side of masking.
[[nodiscard]] std::vector<std::string> secret_like_tokens(std::string_view text);

} // namespace iot::core
