// SPDX-License-Identifier: MIT
// libserialport SerialPort and enumeration: the only file that includes libserialport.h.
#include "serial/port_backends.hpp"

#include <libserialport.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace iot::serial {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

// A libserialport timeout of one interrupt slice at most and 1 ms at least (0 means forever).
unsigned slice_ms(milliseconds left) {
  return static_cast<unsigned>(std::clamp(left, milliseconds(1), k_interrupt_slice).count());
}

// Must be called right after the failing sp_* call, before any other system function
// (libserialport examples/handle_errors.c).
std::string sp_error(const std::string& what, const std::string& path, sp_return code) {
  int err = 0;
  std::string os_message;
  if (code == SP_ERR_FAIL) {
    err = sp_last_error_code();
    char* m = sp_last_error_message();
    os_message = m != nullptr ? m : std::strerror(err);
    sp_free_error_message(m);
  } else if (code == SP_ERR_ARG) {
    os_message = "invalid argument";
  } else if (code == SP_ERR_SUPP) {
    os_message = "not supported by this port or driver";
  } else {
    os_message = "out of memory";
  }
  while (!os_message.empty() && (os_message.back() == '\n' || os_message.back() == '\r')) {
    os_message.pop_back();
  }
  std::string msg = what + " " + path + ": " + os_message;
  if (auto hint = port_error_hint(err); !hint.empty()) {
    msg += " — " + hint;
  }
  return msg;
}

class LibserialportPort final : public SerialPort {
public:
  LibserialportPort(std::string path, sp_port* port) : m_path(std::move(path)), m_port(port) {}
  ~LibserialportPort() override {
    if (m_open) {
      sp_close(m_port);
    }
    sp_free_port(m_port);
  }
  LibserialportPort(const LibserialportPort&) = delete;
  LibserialportPort& operator=(const LibserialportPort&) = delete;
  LibserialportPort(LibserialportPort&&) = delete;
  LibserialportPort& operator=(LibserialportPort&&) = delete;

  Status open(const PortSettings& settings) {
    if (auto r = sp_open(m_port, SP_MODE_READ_WRITE); r != SP_OK) {
      return fail(ErrorKind::serial, sp_error("open", m_path, r));
    }
    m_open = true;
    int fd = -1;
    if (sp_get_port_handle(m_port, &fd) == SP_OK && fd >= 0) {
      IOT_TRY(lock_exclusive(fd, m_path));
    }
    sp_return r = sp_set_baudrate(m_port, settings.baud);
    if (r == SP_OK) {
      r = sp_set_bits(m_port, 8);
    }
    if (r == SP_OK) {
      r = sp_set_parity(m_port, SP_PARITY_NONE);
    }
    if (r == SP_OK) {
      r = sp_set_stopbits(m_port, 1);
    }
    if (r == SP_OK) {
      r = sp_set_flowcontrol(m_port, SP_FLOWCONTROL_NONE);
    }
    if (r != SP_OK) {
      return fail(ErrorKind::serial, sp_error("configure", m_path, r));
    }
    return {};
  }

  Status write(std::string_view bytes) override {
    constexpr milliseconds k_timeout{5000};
    const auto start = Clock::now();
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const sp_return n = sp_blocking_write(
          m_port, bytes.data() + sent, bytes.size() - sent, slice_ms(k_timeout - since(start)));
      if (n < 0) {
        return fail(ErrorKind::serial, sp_error("write", m_path, n));
      }
      sent += static_cast<std::size_t>(n);
      if (sent == bytes.size()) {
        break;
      }
      if (interrupted()) {
        return fail(interrupted_error("write " + m_path,
                                      since(start),
                                      std::to_string(sent) + " of " + std::to_string(bytes.size()) +
                                          " bytes had left"));
      }
      if (since(start) >= k_timeout) {
        return fail(ErrorKind::serial,
                    "write " + m_path + ": only " + std::to_string(sent) + " of " +
                        std::to_string(bytes.size()) +
                        " bytes left within 5000 ms — is the device stuck or flow-controlled?");
      }
    }
    return {};
  }

  Result<std::string> read_some(milliseconds timeout) override {
    char buf[4096];
    if (timeout.count() <= 0) {
      const sp_return n = sp_nonblocking_read(m_port, buf, sizeof buf);
      if (n < 0) {
        return fail(ErrorKind::serial, sp_error("read", m_path, n));
      }
      return std::string(buf, static_cast<std::size_t>(n));
    }
    const auto start = Clock::now();
    for (;;) {
      const auto left = timeout - since(start);
      // A slice of the wait at a time (never 0: that would mean "forever" to libserialport).
      const sp_return n = sp_blocking_read_next(m_port, buf, sizeof buf, slice_ms(left));
      if (n < 0) {
        return fail(ErrorKind::serial, sp_error("read", m_path, n));
      }
      if (n > 0 || left <= k_interrupt_slice) {
        return std::string(buf, static_cast<std::size_t>(n));
      }
      if (interrupted()) {
        return fail(interrupted_error("read " + m_path, since(start)));
      }
    }
  }

  Status flush_input() override {
    if (auto r = sp_flush(m_port, SP_BUF_INPUT); r != SP_OK) {
      return fail(ErrorKind::serial, sp_error("flush", m_path, r));
    }
    return {};
  }

  Status drain() override {
    if (auto r = sp_drain(m_port); r != SP_OK) {
      return fail(ErrorKind::serial, sp_error("drain", m_path, r));
    }
    return {};
  }

  const std::string& path() const override { return m_path; }

private:
  std::string m_path;
  sp_port* m_port;
  bool m_open = false;
};

std::string str_or_empty(const char* s) {
  return s != nullptr ? std::string(s) : std::string();
}

} // namespace

Result<std::unique_ptr<SerialPort>>
open_libserialport_port(const std::string& path, const PortSettings& settings, bool& known) {
  sp_port* raw = nullptr;
  if (sp_get_port_by_name(path.c_str(), &raw) != SP_OK || raw == nullptr) {
    known = false;
    return fail(ErrorKind::serial, "open " + path + ": not known to libserialport");
  }
  known = true;
  auto port = std::make_unique<LibserialportPort>(path, raw);
  IOT_TRY(port->open(settings));
  return std::unique_ptr<SerialPort>(std::move(port));
}

Result<std::vector<PortInfo>> list_libserialport_ports() {
  sp_port** list = nullptr;
  if (auto r = sp_list_ports(&list); r != SP_OK) {
    return fail(ErrorKind::serial, sp_error("list", "serial ports", r));
  }
  std::vector<PortInfo> out;
  for (sp_port** p = list; *p != nullptr; ++p) {
    PortInfo info;
    info.path = str_or_empty(sp_get_port_name(*p));
    info.description = str_or_empty(sp_get_port_description(*p));
    switch (sp_get_port_transport(*p)) {
    case SP_TRANSPORT_USB: {
      info.kind = "usb";
      int vid = 0;
      int pid = 0;
      if (sp_get_port_usb_vid_pid(*p, &vid, &pid) == SP_OK) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%04x:%04x", vid & 0xffff, pid & 0xffff);
        info.usb_vid_pid = buf;
      }
      info.serial_number = str_or_empty(sp_get_port_usb_serial(*p));
      break;
    }
    case SP_TRANSPORT_BLUETOOTH:
      info.kind = "bluetooth";
      break;
    case SP_TRANSPORT_NATIVE:
    default:
      info.kind = "native";
      break;
    }
    out.push_back(std::move(info));
  }
  sp_free_port_list(list);
  return out;
}

} // namespace iot::serial
