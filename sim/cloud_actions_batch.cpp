// SPDX-License-Identifier: MIT
// Batch registration with custom names (§2): BatchCheckDeviceNames → (CHECK → CHECK_SUCCESS)
// → BatchRegisterDeviceWithApplyId → (CREATE → CREATE_SUCCESS) → QueryPageByApplyId.
// Both phases are asynchronous: each ends --batch-delay-ms after it started, when
// advance_batch_jobs() runs (on every request and from the server's ticker).
#include "sim/cloud_actions.hpp"

#include <set>
#include <unordered_set>

namespace iot::sim::cloud {

namespace {

constexpr std::size_t k_check_names_max = 10'000;
constexpr std::size_t k_check_names_max_x509 = 1'000;

constexpr std::string_view k_check = "CHECK";
constexpr std::string_view k_check_success = "CHECK_SUCCESS";
constexpr std::string_view k_check_failed = "CHECK_FAILED";
constexpr std::string_view k_create = "CREATE";
constexpr std::string_view k_create_success = "CREATE_SUCCESS";
constexpr std::string_view k_create_failed = "CREATE_FAILED";

constexpr std::string_view k_bad_name = "The format of the device name is invalid.";
constexpr std::string_view k_bad_nickname = "The format of the device nickname is invalid.";
constexpr std::string_view k_duplicate = "The device name is repeated in the list.";
constexpr std::string_view k_exists = "The device name already exists.";

struct ApplyName {
  std::int64_t idx = 0;
  std::string device_name;
  std::string nickname;
  std::string error;
  std::int64_t device_seq = 0;
};

struct Apply {
  std::int64_t apply_id = 0;
  std::string product_key;
  std::string status;
  std::int64_t due_ms = 0;
};

std::optional<Apply> find_apply(Conn& c, std::int64_t apply_id) {
  Stmt s =
      c.prepare("SELECT apply_id, product_key, status, due_ms FROM applies WHERE apply_id = ?1");
  s.bind(1, apply_id);
  if (!s.step()) {
    return std::nullopt;
  }
  return Apply{s.int64(0), s.text(1), s.text(2), s.int64(3)};
}

std::vector<ApplyName> apply_names(Conn& c, std::int64_t apply_id) {
  Stmt s = c.prepare("SELECT idx, device_name, nickname, error, device_seq FROM apply_names "
                     "WHERE apply_id = ?1 ORDER BY idx");
  s.bind(1, apply_id);
  std::vector<ApplyName> out;
  while (s.step()) {
    out.push_back(ApplyName{s.int64(0), s.text(1), s.text(2), s.text(3), s.int64(4)});
  }
  return out;
}

void set_apply(Conn& c, std::int64_t apply_id, std::string_view status, std::int64_t due_ms) {
  c.prepare("UPDATE applies SET status = ?2, due_ms = ?3 WHERE apply_id = ?1")
      .bind(1, apply_id)
      .bind(2, status)
      .bind(3, due_ms)
      .run();
}

void set_name(Conn& c, std::int64_t apply_id, const ApplyName& n) {
  c.prepare("UPDATE apply_names SET error = ?3, device_seq = ?4 WHERE apply_id = ?1 AND idx = ?2")
      .bind(1, apply_id)
      .bind(2, n.idx)
      .bind(3, n.error)
      .bind(4, n.device_seq)
      .run();
}

// The apply named by the ApplyId parameter, visible to this request (and of `product_key` if
// given): iot.device.DeviceApplyIsNotFound otherwise.
Apply visible_apply(ActionContext& ctx, Conn& c, const ProductRow* product) {
  const auto id = parse_int(ctx.required("ApplyId"));
  std::optional<Apply> apply = id ? find_apply(c, *id) : std::nullopt;
  if (apply && product != nullptr && apply->product_key != product->product_key) {
    apply.reset();
  }
  if (apply && !ctx.instance_matches()) {
    apply.reset();
  }
  if (!apply) {
    throw ReplyError{business_error("iot.device.DeviceApplyIsNotFound",
                                    "The specified application for device creation does not "
                                    "exist.")};
  }
  return *apply;
}

json names_object(std::string_view element, const std::vector<std::string>& names) {
  json list = json::array();
  for (const std::string& n : names) {
    list.push_back(n);
  }
  return json{{std::string(element), std::move(list)}};
}

// The CHECK phase: duplicates within the list and names that exist already.
bool check(Conn& c, const Apply& apply, std::vector<ApplyName>& names) {
  bool failed = false;
  std::unordered_set<std::string> seen;
  for (ApplyName& n : names) {
    if (n.error.empty()) {
      if (!seen.insert(n.device_name).second) {
        n.error = std::string(k_duplicate);
      } else if (CloudStore::device(c, apply.product_key, n.device_name)) {
        n.error = std::string(k_exists);
      }
      if (!n.error.empty()) {
        set_name(c, apply.apply_id, n);
      }
    }
    failed = failed || !n.error.empty();
  }
  return !failed;
}

} // namespace

std::int64_t advance_batch_jobs(CloudStore& store, std::int64_t now_ms, SharedRng& rng) {
  auto next = store.write([&](Conn& c) {
    std::vector<Apply> due;
    {
      Stmt s = c.prepare("SELECT apply_id, product_key, status, due_ms FROM applies "
                         "WHERE due_ms > 0 AND due_ms <= ?1 ORDER BY due_ms, apply_id");
      s.bind(1, now_ms);
      while (s.step()) {
        due.push_back(Apply{s.int64(0), s.text(1), s.text(2), s.int64(3)});
      }
    }
    for (const Apply& apply : due) {
      std::vector<ApplyName> names = apply_names(c, apply.apply_id);
      if (apply.status == k_check) {
        set_apply(c, apply.apply_id, check(c, apply, names) ? k_check_success : k_check_failed, 0);
      } else if (apply.status == k_create) {
        // Names registered by someone else since the check fail the whole batch: all or nothing.
        bool clash = false;
        for (ApplyName& n : names) {
          if (CloudStore::device(c, apply.product_key, n.device_name)) {
            n.error = std::string(k_exists);
            set_name(c, apply.apply_id, n);
            clash = true;
          }
        }
        if (!clash) {
          for (ApplyName& n : names) {
            DeviceRow d = new_device(rng, apply.product_key, n.device_name, n.nickname, now_ms);
            n.device_seq = CloudStore::insert_device(c, d);
            set_name(c, apply.apply_id, n);
          }
        }
        set_apply(c, apply.apply_id, clash ? k_create_failed : k_create_success, 0);
      } else {
        set_apply(c, apply.apply_id, apply.status, 0);
      }
    }
    Stmt s = c.prepare("SELECT COALESCE(MIN(due_ms), 0) FROM applies WHERE due_ms > 0");
    s.step();
    return s.int64(0);
  });
  return next ? *next : now_ms + 1000; // on a state error try again a second later
}

Reply batch_check_device_names(ActionContext& ctx) {
  const ProductRow& p = ctx.product();
  // The list form (DeviceNameList.N.DeviceName [+ .DeviceNickname]) wins over DeviceName.N.
  std::vector<ApplyName> names;
  const auto listed = ctx.repeated_map("DeviceNameList", "DeviceName");
  if (!listed.empty()) {
    const auto nicknames = ctx.repeated_map("DeviceNameList", "DeviceNickname");
    for (const auto& [n, name] : listed) {
      const auto nick = nicknames.find(n);
      names.push_back(ApplyName{0, name, nick == nicknames.end() ? "" : nick->second, "", 0});
    }
  } else {
    for (std::string& name : ctx.repeated("DeviceName")) {
      names.push_back(ApplyName{0, std::move(name), "", "", 0});
    }
  }
  if (names.empty()) {
    (void)ctx.required("DeviceName.1");
  }
  const std::size_t max = p.auth_type == "x509" ? k_check_names_max_x509 : k_check_names_max;
  if (names.size() > max) {
    names.resize(max); // the excess is silently dropped (§2)
  }
  std::vector<std::string> bad_names;
  std::vector<std::string> bad_nicknames;
  for (std::size_t i = 0; i < names.size(); ++i) {
    ApplyName& n = names[i];
    n.idx = static_cast<std::int64_t>(i + 1);
    if (!valid_device_name(n.device_name)) {
      n.error = std::string(k_bad_name);
      bad_names.push_back(n.device_name);
    } else if (!n.nickname.empty() && !valid_nickname(n.nickname)) {
      n.error = std::string(k_bad_nickname);
      bad_nicknames.push_back(n.nickname);
    }
  }
  const std::int64_t due = ctx.now_ms() + ctx.options().batch_delay_ms;
  const std::int64_t apply_id = ctx.write([&](Conn& c) {
    Stmt next = c.prepare("SELECT COALESCE(MAX(apply_id), 1295000) + 1 FROM applies");
    next.step();
    const std::int64_t id = next.int64(0);
    c.prepare("INSERT INTO applies(apply_id, product_key, status, due_ms, created_ms) "
              "VALUES(?1, ?2, ?3, ?4, ?5)")
        .bind(1, id)
        .bind(2, p.product_key)
        .bind(3, k_check)
        .bind(4, due)
        .bind(5, ctx.now_ms())
        .run();
    for (const ApplyName& n : names) {
      c.prepare("INSERT INTO apply_names(apply_id, idx, device_name, nickname, error, device_seq) "
                "VALUES(?1, ?2, ?3, ?4, ?5, 0)")
          .bind(1, id)
          .bind(2, n.idx)
          .bind(3, n.device_name)
          .bind(4, n.nickname)
          .bind(5, n.error)
          .run();
    }
    return id;
  });
  ctx.schedule(due);
  json data;
  data["ApplyId"] = apply_id;
  data["InvalidDeviceNameList"] = names_object("InvalidDeviceName", bad_names);
  data["InvalidDeviceNicknameList"] = names_object("InvalidDeviceNickname", bad_nicknames);
  // No per-name reasons (InvalidDetailList): the SDK's model has none.
  return ok(json{{"Data", std::move(data)}});
}

Reply query_batch_register_device_status(ActionContext& ctx) {
  const ProductRow& p = ctx.product();
  struct Snapshot {
    Apply apply;
    std::vector<ApplyName> names;
  };
  const Snapshot snap = ctx.read([&](Conn& c) {
    Apply apply = visible_apply(ctx, c, &p);
    return Snapshot{apply, apply_names(c, apply.apply_id)};
  });
  std::vector<std::string> valid;
  std::vector<std::string> invalid;
  const std::string& status = snap.apply.status;
  if (status != k_check) {
    for (const ApplyName& n : snap.names) {
      (n.error.empty() ? valid : invalid).push_back(n.device_name);
    }
  }
  json data;
  data["Status"] = status;
  data["ValidList"] = names_object("Name", valid);
  data["InvalidList"] = names_object("Name", invalid);
  return ok(json{{"Data", std::move(data)}});
}

Reply batch_register_device_with_apply_id(ActionContext& ctx) {
  const ProductRow& p = ctx.product();
  const std::int64_t due = ctx.now_ms() + ctx.options().batch_delay_ms;
  const Reply reply = ctx.write([&](Conn& c) -> Reply {
    const Apply apply = visible_apply(ctx, c, &p);
    if (apply.status == k_check || apply.status == k_create) {
      return business_error("iot.device.CreateDeviceTaskIsRunning",
                            "A task of this application is still running (" + apply.status + ").");
    }
    if (apply.status == k_check_failed || apply.status == k_create_failed) {
      bool exists = false;
      for (const ApplyName& n : apply_names(c, apply.apply_id)) {
        exists = exists || n.error == k_exists || n.error == k_duplicate;
      }
      return exists ? business_error("iot.device.AlreadyExistedDeviceName",
                                     "The application failed its check: a device name already "
                                     "exists or is repeated.")
                    : business_error("iot.device.InvalidFormattedDeviceName",
                                     "The application failed its check: invalid device names.");
    }
    if (apply.status == k_check_success) {
      set_apply(c, apply.apply_id, k_create, due);
    }
    // CREATE_SUCCESS: already done, answered again without creating anything.
    return ok(json{{"Data", json{{"ApplyId", apply.apply_id}}}});
  });
  if (reply.code.empty()) {
    ctx.schedule(due);
  }
  return reply;
}

Reply query_page_by_apply_id(ActionContext& ctx) {
  const std::int64_t page_size = ctx.page_param("PageSize", 10, 1, 50);
  const std::int64_t current = ctx.page_param("CurrentPage", 1, 1, 1'000'000'000);
  struct Page {
    std::int64_t total = 0;
    std::vector<DeviceRow> rows;
  };
  const Page page = ctx.read([&](Conn& c) {
    const Apply apply = visible_apply(ctx, c, nullptr);
    Page out;
    Stmt count = c.prepare("SELECT COUNT(*) FROM apply_names a JOIN devices d "
                           "ON d.seq = a.device_seq WHERE a.apply_id = ?1");
    count.bind(1, apply.apply_id);
    count.step();
    out.total = count.int64(0);
    Stmt s = c.prepare("SELECT a.device_seq FROM apply_names a JOIN devices d "
                       "ON d.seq = a.device_seq WHERE a.apply_id = ?1 ORDER BY a.idx "
                       "LIMIT ?2 OFFSET ?3");
    s.bind(1, apply.apply_id).bind(2, page_size).bind(3, (current - 1) * page_size);
    std::vector<std::int64_t> seqs;
    while (s.step()) {
      seqs.push_back(s.int64(0));
    }
    for (const std::int64_t seq : seqs) {
      if (auto d = CloudStore::device_by_seq(c, seq)) {
        out.rows.push_back(std::move(*d));
      }
    }
    return out;
  });
  json list = json::array();
  for (const DeviceRow& d : page.rows) {
    list.push_back(json{{"DeviceName", d.device_name},
                        {"DeviceSecret", d.device_secret},
                        {"IotId", d.iot_id},
                        {"DeviceId", d.iot_id}});
  }
  json fields;
  fields["Total"] = page.total;
  fields["PageSize"] = page_size;
  fields["PageCount"] = (page.total + page_size - 1) / page_size;
  fields["Page"] = current;
  fields["ApplyDeviceList"] = json{{"ApplyDeviceInfo", std::move(list)}};
  return ok(std::move(fields));
}

} // namespace iot::sim::cloud
