// SPDX-License-Identifier: MIT
#include "sim/nvm.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace iot::sim {
namespace {

using nlohmann::json;

std::string to_hex(std::string_view bytes) {
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(k_digits[b >> 4]);
    out.push_back(k_digits[b & 0xf]);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::string from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    throw std::runtime_error("odd-length hex string");
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      throw std::runtime_error("bad hex digit");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string errno_text() {
  return std::strerror(errno);
}

} // namespace

std::string_view to_string(ModuleKind kind) {
  switch (kind) {
  case ModuleKind::luat:
    return "luat";
  case ModuleKind::quectel:
    return "quectel";
  case ModuleKind::esp_at:
    return "esp-at";
  }
  return "?";
}

Result<ModuleKind> parse_module_kind(std::string_view text) {
  if (text == "luat") {
    return ModuleKind::luat;
  }
  if (text == "quectel") {
    return ModuleKind::quectel;
  }
  if (text == "esp-at") {
    return ModuleKind::esp_at;
  }
  return fail(ErrorKind::usage,
              "unknown module '" + std::string(text) + "' (use luat, quectel or esp-at)");
}

std::filesystem::path nvm_path(const std::filesystem::path& state_dir,
                               ModuleKind kind,
                               std::size_t index,
                               std::size_t generation) {
  std::string name = std::string(to_string(kind)) + "-" + std::to_string(index);
  if (generation > 0) {
    name += "-g" + std::to_string(generation);
  }
  return state_dir / (name + ".json");
}

std::string nvm_to_json(const Nvm& nvm, ModuleKind kind) {
  json j;
  j["version"] = 1;
  j["module"] = std::string(to_string(kind));
  j["imei"] = nvm.imei;
  j["mac"] = nvm.mac;
  j["iccid"] = nvm.iccid;
  j["imsi"] = nvm.imsi;
  if (nvm.sn) {
    j["sn_hex"] = to_hex(*nvm.sn);
  }
  if (nvm.secret_copy) {
    j["secret_copy_hex"] = to_hex(*nvm.secret_copy);
  }
  json auth = json::array();
  for (const auto& [index, a] : nvm.aliauth) {
    auth.push_back({{"index", index},
                    {"product_key_hex", to_hex(a.product_key)},
                    {"device_name_hex", to_hex(a.device_name)},
                    {"device_secret_hex", to_hex(a.device_secret)}});
  }
  j["aliauth"] = auth;
  json mfg = json::object();
  for (const auto& [ns, keys] : nvm.sysmfg) {
    json entries = json::object();
    for (const auto& [key, value] : keys) {
      entries[key] = {{"type", value.type}, {"hex", to_hex(value.data)}};
    }
    mfg[ns] = entries;
  }
  j["sysmfg"] = mfg;
  return j.dump(2) + "\n";
}

Result<Nvm> nvm_from_json(std::string_view text) {
  try {
    const json j = json::parse(text);
    Nvm nvm;
    nvm.imei = j.value("imei", "");
    nvm.mac = j.value("mac", "");
    nvm.iccid = j.value("iccid", "");
    nvm.imsi = j.value("imsi", "");
    if (j.contains("sn_hex")) {
      nvm.sn = from_hex(j.at("sn_hex").get<std::string>());
    }
    if (j.contains("secret_copy_hex")) {
      nvm.secret_copy = from_hex(j.at("secret_copy_hex").get<std::string>());
    }
    if (j.contains("aliauth")) {
      for (const auto& a : j.at("aliauth")) {
        nvm.aliauth[a.at("index").get<int>()] =
            AliAuth{from_hex(a.at("product_key_hex").get<std::string>()),
                    from_hex(a.at("device_name_hex").get<std::string>()),
                    from_hex(a.at("device_secret_hex").get<std::string>())};
      }
    }
    if (j.contains("sysmfg")) {
      for (const auto& [ns, keys] : j.at("sysmfg").items()) {
        auto& out = nvm.sysmfg[ns];
        for (const auto& [key, value] : keys.items()) {
          out[key] =
              MfgValue{value.at("type").get<int>(), from_hex(value.at("hex").get<std::string>())};
        }
      }
    }
    return nvm;
  } catch (const std::exception& e) {
    return fail(ErrorKind::io, std::string("bad module state file: ") + e.what());
  }
}

Result<std::optional<Nvm>> load_nvm(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) {
      return fail(ErrorKind::io, "stat " + path.string() + ": " + ec.message());
    }
    return std::optional<Nvm>{};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(ErrorKind::io, "open " + path.string() + ": " + errno_text());
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  auto nvm = IOT_TRY_CTX(nvm_from_json(buffer.str()), path.string());
  return std::optional<Nvm>{std::move(nvm)};
}

Status save_nvm(const std::filesystem::path& path, const Nvm& nvm, ModuleKind kind) {
  return write_file_atomic(path, nvm_to_json(nvm, kind), 0600);
}

Status
write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode) {
  const std::filesystem::path dir =
      path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  // Built by appending: `"." + name` trips g++ 12's false -Wrestrict at -O3 (GCC bug 105329).
  std::string name = ".";
  name += path.filename().string();
  name += ".XXXXXX";
  std::string temp = (dir / name).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    return fail(ErrorKind::io, "create temporary file in " + dir.string() + ": " + errno_text());
  }
  auto abandon = [&](const std::string& what) {
    const std::string reason = errno_text();
    ::close(fd);
    ::unlink(temp.c_str());
    return fail(ErrorKind::io, what + " " + temp + ": " + reason);
  };
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    return abandon("chmod");
  }
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return abandon("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    return abandon("fsync");
  }
  if (::close(fd) != 0) {
    const std::string reason = errno_text();
    ::unlink(temp.c_str());
    return fail(ErrorKind::io, "close " + temp + ": " + reason);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = errno_text();
    ::unlink(temp.c_str());
    return fail(ErrorKind::io, "rename to " + path.string() + ": " + reason);
  }
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd); // best effort: the rename is already visible
    ::close(dir_fd);
  }
  return {};
}

} // namespace iot::sim
