// SPDX-License-Identifier: MIT
// Certificates for `iotfleet-sim cloud --tls`: a private CA and a server certificate for
// 127.0.0.1 / ::1 / localhost (plus the listen host) signed by it, made with OpenSSL's C API.
#pragma once

#include "core/error.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace iot::sim::cloud {

struct TlsFiles {
  std::filesystem::path ca_cert;     // ca.pem: what clients trust (--ca-file)
  std::filesystem::path ca_key;      // ca-key.pem, 0600
  std::filesystem::path server_cert; // server.pem
  std::filesystem::path server_key;  // server-key.pem, 0600
  bool generated = false;            // false: existing files were reused
};

// Reuses ca.pem + server.pem + server-key.pem in `dir` when all three exist; otherwise makes
// what is missing (a new CA if ca.pem or ca-key.pem is missing, then a new server certificate).
// Keys are EC P-256; private keys are written 0600 from the first byte. `extra_names` are added
// to the server certificate's subjectAltName (IP addresses or DNS names).
[[nodiscard]] Result<TlsFiles> ensure_tls_files(const std::filesystem::path& dir,
                                                const std::vector<std::string>& extra_names = {});

} // namespace iot::sim::cloud
