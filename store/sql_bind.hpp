// SPDX-License-Identifier: MIT
// Internal to store/: how a statement's arguments are bound, shared by the SQLite and the
// PostgreSQL layer (store/sqlite.hpp, store/pg.hpp), so both take the same argument types:
// anything convertible to std::string_view is text, an integer is an integer, std::optional<T>
// is T or NULL, std::nullopt is NULL, and a std::vector<std::string> binds its elements to as
// many consecutive parameters.
#pragma once

#include "core/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace iot::store::sql {

template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};

// Binds `value` to parameter ++index (or several) of `sink`, which has bind_text(int,
// std::string_view), bind_integer(int, std::int64_t) and bind_null(int).
template <class Sink, class T> void bind_value(Sink& sink, int& index, const T& value) {
  if constexpr (std::is_same_v<T, std::nullopt_t>) {
    sink.bind_null(++index);
  } else if constexpr (is_optional<T>::value) {
    if (value) {
      bind_value(sink, index, *value);
    } else {
      sink.bind_null(++index);
    }
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    for (const auto& item : value) {
      sink.bind_text(++index, item);
    }
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    sink.bind_integer(++index, static_cast<std::int64_t>(value));
  } else {
    static_assert(std::is_convertible_v<const T&, std::string_view>,
                  "bind: text, an integer, std::optional, std::nullopt or a string vector");
    sink.bind_text(++index, std::string_view(value));
  }
}

// The statement API both layers share. Derived (the layer's Statement) has
// `static Result<Derived> prepare(Database&, std::string_view)`, `Result<bool> step()`,
// `void reset()` and the private bind_text / bind_integer / bind_null that bind_value calls.
template <class Derived, class Database> class StatementApi {
public:
  // prepare + bind(args...): the statement, ready to step.
  template <class... Args>
  [[nodiscard]] static Result<Derived>
  query(Database& db, std::string_view sql, const Args&... args) {
    auto s = IOT_TRY(Derived::prepare(db, sql));
    s.bind(args...);
    return s;
  }

  // prepare + bind(args...) + run(): one statement that returns no rows.
  template <class... Args>
  [[nodiscard]] static Status run(Database& db, std::string_view sql, const Args&... args) {
    auto s = IOT_TRY(query(db, sql, args...));
    return s.run();
  }

  // Binds the arguments to ?1, ?2, … in order, by type (bind_value above).
  template <class... Args> Derived& bind(const Args&... args) {
    [[maybe_unused]] int index = 0;
    (bind_value(self(), index, args), ...);
    return self();
  }
  // reset() + bind(args...), for a statement run once per item.
  template <class... Args> Derived& rebind(const Args&... args) {
    self().reset();
    return bind(args...);
  }

  // Steps to the end, expecting no rows.
  [[nodiscard]] Status run() {
    while (IOT_TRY(self().step())) {
    }
    return {};
  }

private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

} // namespace iot::store::sql
