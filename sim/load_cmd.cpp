// SPDX-License-Identifier: MIT
#include "sim/load_cmd.hpp"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace iot::sim {
namespace {

using Clock = std::chrono::steady_clock;

struct LoadOptions {
  std::string url;        // the full URL requested
  std::string bodies;     // file: one form body per line, POSTed round-robin; empty: GET
  std::string ca;         // a CA to trust besides the system's
  int concurrency = 200;  // connections kept busy
  double duration_s = 10; // how long
};

struct Slot {
  CURL* handle = nullptr;
  Clock::time_point started;
  std::string body;
  std::string answer;
};

std::size_t collect(char* data, std::size_t size, std::size_t n, void* user) {
  static_cast<Slot*>(user)->answer.append(data, size * n);
  return size * n;
}

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) {
    return 0;
  }
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

int run_load(const LoadOptions& o) {
  std::vector<std::string> bodies;
  if (!o.bodies.empty()) {
    std::ifstream in(o.bodies);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) {
        bodies.push_back(line);
      }
    }
    if (bodies.empty()) {
      std::cerr << "iotfleet-sim load: no body in " << o.bodies << '\n';
      return 2;
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(o.concurrency));
  std::vector<std::unique_ptr<Slot>> slots;
  std::size_t next_body = 0;
  std::vector<double> latencies_ms;
  std::map<long, std::uint64_t> statuses;
  std::uint64_t failures = 0;
  std::string first_failure;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(o.duration_s);
  const auto launch = [&](Slot& slot) {
    curl_easy_setopt(slot.handle, CURLOPT_URL, o.url.c_str());
    if (!bodies.empty()) {
      slot.body = bodies[next_body++ % bodies.size()];
      curl_easy_setopt(slot.handle, CURLOPT_POSTFIELDS, slot.body.c_str());
      curl_easy_setopt(slot.handle, CURLOPT_POSTFIELDSIZE, static_cast<long>(slot.body.size()));
    }
    slot.answer.clear();
    slot.started = Clock::now();
    curl_multi_add_handle(multi, slot.handle);
  };
  for (int i = 0; i < o.concurrency; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->handle = curl_easy_init();
    curl_easy_setopt(slot->handle, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(slot->handle, CURLOPT_WRITEDATA, slot.get());
    curl_easy_setopt(slot->handle, CURLOPT_PRIVATE, slot.get());
    curl_easy_setopt(slot->handle, CURLOPT_TIMEOUT, 30L);
    if (!o.ca.empty()) {
      curl_easy_setopt(slot->handle, CURLOPT_CAINFO, o.ca.c_str());
    }
    launch(*slot);
    slots.push_back(std::move(slot));
  }
  int running = 0;
  std::uint64_t done = 0;
  std::size_t in_flight = slots.size();
  while (in_flight > 0) {
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) {
        continue;
      }
      Slot* slot = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &slot);
      curl_multi_remove_handle(multi, msg->easy_handle);
      const auto now = Clock::now();
      if (msg->data.result == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        ++statuses[status];
        latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(now - slot->started).count());
        ++done;
      } else {
        if (failures++ == 0) {
          first_failure = curl_easy_strerror(msg->data.result);
        }
      }
      if (now < end) {
        launch(*slot);
      } else {
        --in_flight;
      }
    }
    curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& slot : slots) {
    curl_easy_cleanup(slot->handle);
  }
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  nlohmann::ordered_json out;
  out["requests"] = done;
  out["failures"] = failures;
  out["seconds"] = elapsed;
  out["per_second"] = static_cast<double>(done) / elapsed;
  out["p50_ms"] = percentile(latencies_ms, 0.50);
  out["p99_ms"] = percentile(latencies_ms, 0.99);
  nlohmann::ordered_json by_status = nlohmann::ordered_json::object();
  for (const auto& [status, n] : statuses) {
    by_status[std::to_string(status)] = n;
  }
  out["statuses"] = by_status;
  std::cout << out.dump() << '\n';
  if (failures > 0) {
    std::cerr << "iotfleet-sim load: " << failures
              << " requests failed (the first: " << first_failure
              << "): check the URL, the server and --ca\n";
  }
  return failures == 0 ? 0 : 1;
}

} // namespace

void register_load(CLI::App& app) {
  auto o = std::make_shared<LoadOptions>();
  auto* cmd = app.add_subcommand(
      "load", "Load generator for iotfleet serve: N busy connections for a while, one JSON line");
  cmd->add_option("url", o->url, "URL to request")->required();
  cmd->add_option("--bodies", o->bodies, "File of form bodies, one per line, POSTed in turn");
  cmd->add_option("--ca", o->ca, "CA certificate to trust");
  cmd->add_option("--concurrency", o->concurrency, "Connections kept busy")
      ->check(CLI::Range(1, 2000))
      ->capture_default_str();
  cmd->add_option("--duration", o->duration_s, "Seconds")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  cmd->callback([o] {
    if (const int rc = run_load(*o); rc != 0) {
      throw CLI::RuntimeError(rc);
    }
  });
}

} // namespace iot::sim
