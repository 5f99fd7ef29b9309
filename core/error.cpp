// SPDX-License-Identifier: MIT
#include "core/error.hpp"

namespace iot {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::failure:
    return "failure";
  case ErrorKind::usage:
    return "usage";
  case ErrorKind::config:
    return "config";
  case ErrorKind::io:
    return "io";
  case ErrorKind::serial:
    return "serial";
  case ErrorKind::module:
    return "module";
  case ErrorKind::cloud:
    return "cloud";
  case ErrorKind::network:
    return "network";
  case ErrorKind::auth:
    return "auth";
  case ErrorKind::partial:
    return "partial";
  case ErrorKind::difference:
    return "difference";
  case ErrorKind::interrupted:
    return "interrupted";
  }
  return "failure";
}

Error Error::context(std::string_view ctx) const& {
  Error copy = *this;
  return std::move(copy).context(ctx);
}

Error Error::context(std::string_view ctx) && {
  if (!ctx.empty()) {
    message.insert(0, std::string(ctx) + ": ");
  }
  return std::move(*this);
}

} // namespace iot
