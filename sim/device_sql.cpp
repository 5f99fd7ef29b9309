// SPDX-License-Identifier: MIT
// QueryDeviceBySQL's statement subset (sim/device_sql.hpp): a small tokenizer and a
// recursive-descent-free parser (the grammar has no nesting).
#include "sim/device_sql.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

namespace iot::sim::cloud {

namespace {

struct Token {
  enum Kind { word, string, number, symbol } kind = word;
  std::string text;
};

Result<std::vector<Token>> tokenize(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      ++i;
      continue;
    }
    if (c == '\'' || c == '"') {
      const std::size_t end = s.find(c, i + 1);
      if (end == std::string_view::npos) {
        return fail(ErrorKind::usage,
                    "unterminated string starting at character " + std::to_string(i + 1));
      }
      out.push_back({Token::string, std::string(s.substr(i + 1, end - i - 1))});
      i = end + 1;
      continue;
    }
    if (c == '!' || c == '<') {
      if (i + 1 < s.size() && (s[i + 1] == '=' || (c == '<' && s[i + 1] == '>'))) {
        out.push_back({Token::symbol, "!="});
        i += 2;
        continue;
      }
      return fail(ErrorKind::usage,
                  std::string("unsupported operator at character ") + std::to_string(i + 1) +
                      " (=, !=, <>, LIKE and IN are)");
    }
    if (c == '=' || c == ',' || c == '(' || c == ')' || c == '*') {
      out.push_back({Token::symbol, std::string(1, c)});
      ++i;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      std::size_t j = i;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])) != 0) {
        ++j;
      }
      out.push_back({Token::number, std::string(s.substr(i, j - i))});
      i = j;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_') {
      std::size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) != 0 || s[j] == '_' ||
                              s[j] == '.' || s[j] == '-')) {
        ++j;
      }
      out.push_back({Token::word, std::string(s.substr(i, j - i))});
      i = j;
      continue;
    }
    return fail(ErrorKind::usage,
                std::string("unexpected '") + c + "' at character " + std::to_string(i + 1));
  }
  return out;
}

class Parser {
public:
  explicit Parser(std::vector<Token> tokens) : m_t(std::move(tokens)) {}

  Result<SqlQuery> parse() {
    SqlQuery q;
    IOT_TRY(expect_word("select"));
    if (!accept_symbol("*")) {
      return fail(ErrorKind::usage, "only SELECT * is supported (not fields or count(*))");
    }
    IOT_TRY(expect_word("from"));
    IOT_TRY(expect_word("device"));
    IOT_TRY(expect_word("where"));
    std::size_t conditions = 0;
    q.any_of.emplace_back();
    for (;;) {
      auto cond = IOT_TRY(condition());
      if (++conditions > k_sql_max_conditions) {
        return fail(ErrorKind::usage, "at most 5 conditions are allowed");
      }
      q.any_of.back().push_back(std::move(cond));
      if (accept_word("and")) {
        continue;
      }
      if (accept_word("or")) {
        q.any_of.emplace_back();
        continue;
      }
      break;
    }
    if (accept_word("order")) {
      IOT_TRY(expect_word("by"));
      const Token* f = next();
      static const std::set<std::string> k_order = {"gmt_create", "gmt_modified", "active_time"};
      if (f == nullptr || f->kind != Token::word || !k_order.contains(core::to_lower(f->text))) {
        return fail(ErrorKind::usage, "ORDER BY takes gmt_create, gmt_modified or active_time");
      }
      q.order_by = core::to_lower(f->text);
      if (accept_word("desc")) {
        q.descending = true;
      } else {
        (void)accept_word("asc");
      }
    }
    if (accept_word("limit")) {
      std::int64_t a = IOT_TRY(number());
      if (accept_symbol(",")) {
        q.offset = a;
        a = IOT_TRY(number());
      }
      q.limit = a;
      if (q.limit < 1 || q.limit > k_sql_max_page) {
        return fail(ErrorKind::usage, "LIMIT: at most 50 rows per page");
      }
      if (q.offset + q.limit > k_sql_max_rows) {
        return fail(ErrorKind::usage, "LIMIT n,k: n + k must not exceed 10000");
      }
    }
    if (m_i != m_t.size()) {
      return fail(ErrorKind::usage, "unexpected '" + m_t[m_i].text + "' after the statement");
    }
    return q;
  }

private:
  const Token* next() { return m_i < m_t.size() ? &m_t[m_i++] : nullptr; }
  const Token* peek() const { return m_i < m_t.size() ? &m_t[m_i] : nullptr; }

  bool accept_word(std::string_view w) {
    const Token* t = peek();
    if (t != nullptr && t->kind == Token::word && core::to_lower(t->text) == w) {
      ++m_i;
      return true;
    }
    return false;
  }
  bool accept_symbol(std::string_view s) {
    const Token* t = peek();
    if (t != nullptr && t->kind == Token::symbol && t->text == s) {
      ++m_i;
      return true;
    }
    return false;
  }
  Status expect_word(std::string_view w) {
    if (!accept_word(w)) {
      const Token* t = peek();
      std::string upper(w);
      std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) {
        return static_cast<char>(std::toupper(c));
      });
      return fail(ErrorKind::usage,
                  "expected " + upper +
                      (t != nullptr ? " before '" + t->text + "'" : " at the end"));
    }
    return {};
  }
  Result<std::int64_t> number() {
    const Token* t = next();
    std::int64_t v = 0;
    if (t == nullptr || t->kind != Token::number ||
        std::from_chars(t->text.data(), t->text.data() + t->text.size(), v).ec != std::errc{}) {
      return fail(ErrorKind::usage, "LIMIT takes numbers");
    }
    return v;
  }
  Result<std::string> value() {
    const Token* t = next();
    if (t == nullptr || (t->kind != Token::string && t->kind != Token::number)) {
      return fail(ErrorKind::usage, "a condition's value must be quoted ('…' or \"…\")");
    }
    return t->text;
  }

  Result<SqlCondition> condition() {
    const Token* f = next();
    if (f == nullptr || f->kind != Token::word) {
      return fail(ErrorKind::usage, "expected a field name in the WHERE clause");
    }
    SqlCondition c;
    const std::string lower = core::to_lower(f->text);
    static const std::set<std::string> k_fields = {
        "product_key", "device_name", "nickname", "status", "group_id", "ota_module.version"};
    if (lower.starts_with("tag.") && f->text.size() > 4) {
      c.field = "tag." + f->text.substr(4);
    } else if (k_fields.contains(lower)) {
      c.field = lower;
    } else {
      return fail(ErrorKind::usage,
                  "unknown field " + f->text +
                      " (product_key, device_name, nickname, status, group_id, "
                      "ota_module.version, tag.KEY)");
    }
    if (accept_symbol("=")) {
      c.op = SqlOp::eq;
    } else if (accept_symbol("!=")) {
      c.op = SqlOp::ne;
    } else if (accept_word("like")) {
      c.op = SqlOp::like;
    } else if (accept_word("in")) {
      c.op = SqlOp::in;
      if (!accept_symbol("(")) {
        return fail(ErrorKind::usage, "IN takes a list: IN ('a', 'b')");
      }
      do {
        c.values.push_back(IOT_TRY(value()));
      } while (accept_symbol(","));
      if (!accept_symbol(")")) {
        return fail(ErrorKind::usage, "IN's list ends with )");
      }
      return c;
    } else {
      return fail(ErrorKind::usage, "after " + f->text + ": =, !=, <>, LIKE or IN");
    }
    c.values.push_back(IOT_TRY(value()));
    return c;
  }

  std::vector<Token> m_t;
  std::size_t m_i = 0;
};

bool holds(const SqlCondition& c, const std::vector<std::string>& have) {
  auto any = [&](auto pred) { return std::any_of(have.begin(), have.end(), pred); };
  switch (c.op) {
  case SqlOp::eq:
    return any([&](const std::string& v) { return v == c.values[0]; });
  case SqlOp::ne:
    return !have.empty() && !any([&](const std::string& v) { return v == c.values[0]; });
  case SqlOp::like:
    return any([&](const std::string& v) { return sql_like(c.values[0], v); });
  case SqlOp::in:
    return any([&](const std::string& v) {
      return std::find(c.values.begin(), c.values.end(), v) != c.values.end();
    });
  }
  return false;
}

} // namespace

Result<SqlQuery> parse_device_sql(std::string_view text) {
  if (text.size() > k_sql_max_chars) {
    return fail(ErrorKind::usage, "the statement is longer than 400 characters");
  }
  auto tokens = IOT_TRY(tokenize(text));
  return Parser(std::move(tokens)).parse();
}

bool sql_like(std::string_view pattern, std::string_view text) {
  // Iterative wildcard matching with backtracking to the last '%'.
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '_' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '%') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '%') {
    ++p;
  }
  return p == pattern.size();
}

bool sql_matches(const SqlQuery& query, const SqlFieldValues& values_of) {
  return std::any_of(query.any_of.begin(), query.any_of.end(), [&](const auto& group) {
    return std::all_of(group.begin(), group.end(), [&](const SqlCondition& c) {
      return holds(c, values_of(c.field));
    });
  });
}

} // namespace iot::sim::cloud
