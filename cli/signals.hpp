// SPDX-License-Identifier: MIT
// SIGINT / SIGTERM: the first sets core's interrupt flag so work stops at a safe point (files
// being written are abandoned whole, never left half written); a second one exits at once with
// 130 — an atomic write in progress then leaves only its temporary file, never a partial target.
#pragma once

namespace iot::cli {

void install_signal_handlers();

} // namespace iot::cli
