// SPDX-License-Identifier: MIT
// `iotfleet-sim load`: a load generator for `iotfleet serve` (bench/serve.sh): N connections kept
// busy with POSTs of the given bodies (or GETs), for a while, over verified TLS; prints requests
// per second and latency percentiles as one JSON object. Test equipment, like the emulators.
#pragma once

#include <CLI/CLI.hpp>

namespace iot::sim {

void register_load(CLI::App& app);

} // namespace iot::sim
