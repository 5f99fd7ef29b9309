// SPDX-License-Identifier: MIT
// Test equipment for driving commands' run_* in-process (docs/architecture.md "Layers and
// build"): a Context whose seams reach
//   - the cloud emulator's request handling (sim::cloud::CloudService, and its OSS-style upload)
//     through an HttpClient that hands each request over without a socket (EmulatorHttp);
//   - simulated modules (sim::ModuleModel) through a SerialPort on a virtual clock (ModelPort);
//   - a ledger on a temporary SQLite file (the global --ledger setting).
// Output is captured (test::CaptureOutput), the environment is a fake one (HOME in the temp dir).
#pragma once

#include "cloud/http.hpp"
#include "commands/context.hpp"
#include "sim/cloud_ota.hpp"
#include "sim/cloud_scenario.hpp"
#include "sim/cloud_service.hpp"
#include "sim/cloud_store.hpp"
#include "sim/module_model.hpp"
#include "store/ledger.hpp"
#include "unit/cli/capture_output.hpp"

#include <doctest/doctest.h>

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace iot::commands::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr std::string_view k_endpoint = "http://emu.test";
inline constexpr std::string_view k_ak = "LTAI5tCommandTests01";
inline constexpr std::string_view k_ak_secret = "commandTestsSecret000000000001";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "iotfleet-cmd-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      throw std::runtime_error("mkdtemp");
    }
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// A scenario with the test AccessKey and the given products (a JSON list) and extra top-level
// members ("\"ota\": {...},").
inline std::string scenario(const std::string& products_json, const std::string& extra = {}) {
  return R"({"access_keys": [{"id": ")" + std::string(k_ak) + R"(", "secret": ")" +
         std::string(k_ak_secret) + R"("}],)" + extra + R"("products": )" + products_json + "}";
}

// The cloud emulator in-process, on a state in its own temp dir, on the system clock (the
// client signs with it).
class CloudEmu {
public:
  explicit CloudEmu(const std::string& scenario_json, sim::cloud::ServiceOptions options = {}) {
    auto parsed = sim::cloud::parse_scenario(scenario_json);
    if (!parsed) {
      throw std::runtime_error("scenario: " + parsed.error().message);
    }
    auto opened = sim::cloud::CloudStore::open(m_dir.path / "cloud.db");
    if (!opened) {
      throw std::runtime_error(opened.error().message);
    }
    store = std::move(*opened);
    if (auto seeded = store->seed(*parsed, 1); !seeded) {
      throw std::runtime_error(seeded.error().message);
    }
    options.no_limits = true;
    options.public_url = std::string(k_endpoint);
    service = std::make_unique<sim::cloud::CloudService>(*store, options);
  }
  CloudEmu(const CloudEmu&) = delete;
  CloudEmu& operator=(const CloudEmu&) = delete;

  // Requests the emulator handled (committed) but whose answer the client never reads, as a
  // connection reset after the request ran would.
  std::atomic<int> lose_answers{0};

  // Called after each OpenAPI request was handled, with its Action (a test's moment to change
  // the world between two calls of a command).
  std::function<void(const std::string& action)> on_answer;

  // How many requests named this Action ("" = dynamic registration), answered or not.
  [[nodiscard]] int calls(const std::string& action) const {
    const std::lock_guard lock(m_mutex);
    auto it = m_calls.find(action);
    return it == m_calls.end() ? 0 : it->second;
  }
  [[nodiscard]] int total_calls() const {
    const std::lock_guard lock(m_mutex);
    int n = 0;
    for (const auto& [_, c] : m_calls) {
      n += c;
    }
    return n;
  }

  // A read-only look at the emulator's state.
  template <class F> auto read(F&& f) {
    auto r = store->read(std::forward<F>(f));
    REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
    return std::move(*r);
  }

  Result<cloud::HttpResponse> send(const cloud::HttpRequest& request) {
    std::string rest = request.url;
    if (const auto scheme = rest.find("://"); scheme != std::string::npos) {
      rest = rest.substr(scheme + 3);
    }
    const auto slash = rest.find('/');
    rest = slash == std::string::npos ? "/" : rest.substr(slash);
    sim::cloud::CloudRequest r;
    r.method = request.method;
    r.path = rest;
    if (const auto q = rest.find('?'); q != std::string::npos) {
      r.path = rest.substr(0, q);
      r.query = rest.substr(q + 1);
    }
    if (r.path == sim::cloud::k_oss_path && !request.form.empty()) {
      count("PostObject");
      return upload(request);
    }
    r.body = request.body;
    for (const auto& [name, value] : request.headers) {
      if (name == "Content-Type") {
        r.content_type = value;
      }
    }
    const auto answer = service->handle(r);
    count(answer.action);
    if (on_answer) {
      on_answer(answer.action);
    }
    if (answer.delivery != sim::cloud::Delivery::normal || take_lost()) {
      return fail(ErrorKind::network, request.method + " " + request.url + ": connection reset");
    }
    cloud::HttpResponse out;
    out.status = answer.status;
    out.headers = {{"x-acs-request-id", answer.request_id}};
    out.body = answer.body;
    return out;
  }

  // ctx.seams.make_http: clients that hand requests to this emulator.
  [[nodiscard]] auto http_factory() {
    return [this](const cloud::HttpOptions&) -> Result<std::unique_ptr<cloud::HttpClient>> {
      return std::unique_ptr<cloud::HttpClient>(std::make_unique<Client>(*this));
    };
  }

  std::unique_ptr<sim::cloud::CloudStore> store;
  std::unique_ptr<sim::cloud::CloudService> service;

private:
  class Client final : public cloud::HttpClient {
  public:
    explicit Client(CloudEmu& emu) : m_emu(emu) {}
    Result<cloud::HttpResponse> send(const cloud::HttpRequest& request) override {
      return m_emu.send(request);
    }

  private:
    CloudEmu& m_emu;
  };

  bool take_lost() {
    int n = lose_answers.load();
    while (n > 0) {
      if (lose_answers.compare_exchange_weak(n, n - 1)) {
        return true;
      }
    }
    return false;
  }
  void count(const std::string& action) {
    const std::lock_guard lock(m_mutex);
    ++m_calls[action];
  }

  // The OSS-style PostObject, fed part by part as the HTTP layer of the emulator would.
  Result<cloud::HttpResponse> upload(const cloud::HttpRequest& request) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    sim::cloud::OssUpload up(*store, service->options(), now, service->new_request_id());
    for (const auto& part : request.form) {
      if (!part.source) {
        up.field(part.name, part.value);
        continue;
      }
      if (!up.begin_file()) {
        break;
      }
      if (part.source->rewind && !part.source->rewind()) {
        return fail(ErrorKind::io, "cannot rewind the upload body");
      }
      std::vector<char> buffer(64 * 1024);
      for (;;) {
        const auto n = part.source->read(buffer.data(), buffer.size());
        if (n < 0) {
          return fail(ErrorKind::io, "upload body read failed");
        }
        if (n == 0 || !up.write(buffer.data(), static_cast<std::size_t>(n))) {
          break;
        }
      }
    }
    const auto answer = up.finish(true);
    service->count_upload(answer.code);
    cloud::HttpResponse out;
    out.status = answer.status;
    out.headers = {{"Content-Type", answer.content_type}};
    out.body = answer.body;
    return out;
  }

  TempDir m_dir;
  mutable std::mutex m_mutex;
  std::map<std::string, int> m_calls;
};

// A SerialPort wired to a simulated module on a virtual clock: a read jumps to the module's next
// output within the timeout, so NVM latencies cost no real time. No URCs, no faults unless the
// model is configured with them.
class ModelPort final : public serial::SerialPort {
public:
  ModelPort(std::shared_ptr<sim::ModuleModel> model, std::string path)
      : m_model(std::move(model)), m_path(std::move(path)) {}

  Status write(std::string_view bytes) override {
    const std::lock_guard lock(model_mutex());
    m_model->feed(bytes, m_now);
    return {};
  }
  Result<std::string> read_some(std::chrono::milliseconds timeout) override {
    {
      const std::lock_guard lock(model_mutex());
      const auto end = m_now + timeout;
      for (;;) {
        std::string out = m_model->take_due(m_now);
        if (!out.empty()) {
          return out;
        }
        const auto next = m_model->next_deadline();
        if (!next || *next > end) {
          break;
        }
        m_now = std::max(*next, m_now + 1us);
      }
      m_now = end;
    }
    // Nothing within the timeout: let real time pass a little, so callers' own deadlines come.
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(1)));
    return std::string{};
  }
  Status flush_input() override { return {}; }
  Status drain() override { return {}; }
  const std::string& path() const override { return m_path; }

private:
  static std::mutex& model_mutex() {
    static std::mutex m;
    return m;
  }
  std::shared_ptr<sim::ModuleModel> m_model;
  std::string m_path;
  sim::TimePoint m_now{std::chrono::hours(1)};
};

// A module's NVM: this IMEI (cellular) or a MAC (ESP-AT), empty credential storage.
inline sim::Nvm module_nvm(sim::ModuleKind kind, std::string imei = "490154203237518") {
  sim::Nvm nvm;
  if (kind == sim::ModuleKind::esp_at) {
    nvm.mac = "24:0a:c4:01:02:03";
  } else {
    nvm.imei = std::move(imei);
    nvm.iccid = "89860412345678901234";
    nvm.imsi = "460001234567890";
  }
  return nvm;
}

// A booted module of `kind` with this NVM.
inline std::shared_ptr<sim::ModuleModel>
make_module(sim::ModuleKind kind, sim::Nvm nvm, sim::ModuleModel::PersistFn persist = {}) {
  sim::ModelConfig config;
  config.kind = kind;
  config.urcs_per_minute = 0;
  auto model = std::make_shared<sim::ModuleModel>(config, std::move(nvm), 1, std::move(persist));
  const sim::TimePoint start{std::chrono::hours(1)};
  model->power_on(start - 10s, 0ms);
  (void)model->take_due(start); // the boot banner, before the host opens the port
  return model;
}

// One command run's world: temp dir, fake environment, captured output, a ledger path.
struct Bench {
  TempDir dir;
  test::CaptureOutput output;
  Context ctx;
  std::map<std::string, std::string> vars;
  std::map<std::string, std::shared_ptr<sim::ModuleModel>> modules; // by port path
  std::vector<std::string> opened_ports;

  Bench() {
    fs::create_directories(dir.path / "home");
    vars["HOME"] = (dir.path / "home").string();
    ctx.output = &output;
    ctx.env.getenv = [this](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      return it == vars.end() ? std::nullopt : std::optional(it->second);
    };
    ctx.env.read_stdin = []() -> Result<std::string> { return std::string(); };
    ctx.env.hostname = [] { return std::string("test-station"); };
    ctx.global.settings.ledger = ledger_path();
    ctx.seams.make_http =
        [](const cloud::HttpOptions&) -> Result<std::unique_ptr<cloud::HttpClient>> {
      FAIL_CHECK("the command made an HTTP client although no cloud was set up");
      return fail(ErrorKind::network, "no cloud in this test");
    };
    ctx.seams.open_port =
        [this](const std::string& path,
               const serial::PortSettings&) -> Result<std::unique_ptr<serial::SerialPort>> {
      opened_ports.push_back(path);
      auto it = modules.find(path);
      if (it == modules.end()) {
        return fail(ErrorKind::serial, path + ": no such port in this test");
      }
      return std::unique_ptr<serial::SerialPort>(std::make_unique<ModelPort>(it->second, path));
    };
  }

  [[nodiscard]] std::string ledger_path() const { return (dir.path / "ledger.db").string(); }
  [[nodiscard]] std::string file(const std::string& name) const {
    return (dir.path / name).string();
  }

  // The cloud at k_endpoint with the test AccessKey.
  void use_cloud(CloudEmu& emu) {
    ctx.global.settings.endpoint = std::string(k_endpoint);
    vars["ALIBABA_CLOUD_ACCESS_KEY_ID"] = std::string(k_ak);
    vars["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = std::string(k_ak_secret);
    vars["ALIBABA_CLOUD_REGION_ID"] = "cn-shanghai";
    ctx.seams.make_http = emu.http_factory();
  }

  // The ledger as the command left it (opened afresh).
  [[nodiscard]] std::unique_ptr<store::Ledger> ledger() const {
    auto l = store::open_ledger(ledger_path(), {});
    REQUIRE_MESSAGE(l.has_value(), (l ? std::string() : l.error().message));
    return std::move(*l);
  }

  [[nodiscard]] bool said(std::string_view text) const {
    for (const auto* list : {&output.warnings, &output.infos}) {
      for (const auto& m : *list) {
        if (m.find(text) != std::string::npos) {
          return true;
        }
      }
    }
    return false;
  }
};

// The cell of `column` in `row` of a table, as text ("" for no value).
inline std::string cell(const core::Table& t, std::size_t row, std::string_view column) {
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    if (t.columns[c] == column) {
      REQUIRE(row < t.rows.size());
      const auto& v = t.rows[row][c];
      if (const auto* s = std::get_if<std::string>(&v)) {
        return *s;
      }
      if (const auto* i = std::get_if<std::int64_t>(&v)) {
        return std::to_string(*i);
      }
      if (const auto* secret = std::get_if<core::Secret>(&v)) {
        return secret->value;
      }
      if (const auto* b = std::get_if<bool>(&v)) {
        return *b ? "true" : "false";
      }
      return {};
    }
  }
  FAIL("no column " << std::string(column));
  return {};
}

} // namespace iot::commands::testing
