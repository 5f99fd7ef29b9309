// SPDX-License-Identifier: MIT
// Error and Result: the one error type of every layer below cli/.
//
// A function that can fail returns Result<T> (std::expected<T, Error>). Each layer that passes an
// error up adds what it was doing with context(), so the message a user reads goes from the
// outermost action to the root cause:
//   "burn /dev/ttyUSB3: AT+WISN=\"…\": +CME ERROR: 3 after 5000 ms"
// Only cli/ turns an ErrorKind into a process exit code (cli/exit_codes.hpp).
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace iot {

enum class ErrorKind {
  failure,     // anything not listed below (internal errors, unexpected states)
  usage,       // bad flags, bad values, bad input files
  config,      // unreadable or broken configuration, unknown profile
  io,          // local files: open, write, rename, fsync
  serial,      // the port: open, read, write, permissions, disappeared device
  module,      // the module answered, but not as required (ERROR, wrong read-back, timeout)
  cloud,       // the cloud answered with an error (business or gateway code)
  network,     // DNS, connect, TLS, timeouts talking to the cloud
  auth,        // credentials missing or refused
  partial,     // a batch finished with some items failed
  difference,  // a check found a difference (compare, diagnose)
  interrupted, // SIGINT / SIGTERM: work stopped cleanly
};

[[nodiscard]] std::string_view to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::failure;
  std::string message;

  // Prefixes what the caller was doing: "ctx: message". Returns a new Error.
  [[nodiscard]] Error context(std::string_view ctx) const&;
  [[nodiscard]] Error context(std::string_view ctx) &&;

  friend bool operator==(const Error&, const Error&) = default;
};

template <class T> using Result = std::expected<T, Error>;
using Status = Result<void>;

// Builds the unexpected side of a Result: `return fail(ErrorKind::usage, "…");`
[[nodiscard]] inline std::unexpected<Error> fail(ErrorKind kind, std::string message) {
  return std::unexpected<Error>(Error{kind, std::move(message)});
}
[[nodiscard]] inline std::unexpected<Error> fail(Error error) {
  return std::unexpected<Error>(std::move(error));
}

// Adds context to the error of a failed result and returns it as unexpected; for
// `if (!r) return with_context(r, "open ledger");`
template <class T>
[[nodiscard]] std::unexpected<Error> with_context(const Result<T>& failed, std::string_view ctx) {
  return std::unexpected<Error>(failed.error().context(ctx));
}

} // namespace iot

// IOT_TRY(expr): the value of a Result expression, or — when it failed — return its error from
// the enclosing function (any Result<U>), as ccache's TRY does. For a Status it is a statement.
//   auto ledger = IOT_TRY(store::open_ledger(path));
//   IOT_TRY(file->commit());
// IOT_TRY_CTX(expr, ctx) also prefixes the error with what the caller was doing; ctx is only
// evaluated on failure:
//   auto text = IOT_TRY_CTX(read_file(path), "snapshot " + path);
// (A GNU statement expression, which g++ and clang both take; __extension__ keeps -Wpedantic
// quiet. The value is moved out of the Result before it goes out of scope.)
#define IOT_TRY(expr) IOT_TRY_CTX(expr, ::std::string_view{})
#define IOT_TRY_CTX(expr, ctx) IOT_TRY_IMPL_(expr, ctx, IOT_TRY_CAT_(iot_try_result_, __COUNTER__))
#define IOT_TRY_CAT_(a, b) IOT_TRY_CAT2_(a, b)
#define IOT_TRY_CAT2_(a, b) a##b
#define IOT_TRY_IMPL_(expr, ctx, name)                                                             \
  __extension__({                                                                                  \
    auto name = (expr);                                                                            \
    if (!name) [[unlikely]] {                                                                      \
      return ::iot::fail(::std::move(name).error().context(ctx));                                  \
    }                                                                                              \
    *::std::move(name);                                                                            \
  })
