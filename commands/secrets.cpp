// SPDX-License-Identifier: MIT
// secrets export. The limits (protocol doc §2) shape the strategy:
//   - QueryDevice: 50 rows a page, QPS 50, but past 10 000 rows only with the previous page's
//     NextToken, so one product is one sequential chain of calls (newest device first);
//   - QueryDeviceByStatus: 50 rows a page, its own QPS, plain CurrentPage paging per status, so
//     its pages can be fetched in parallel.
// `auto` runs both at once: the NextToken chain from the newest device, the status partitions
// from their last page (the oldest devices) backwards, until every device of the product has
// been seen once. The chain alone is complete, so whatever the partitions miss (a device that
// changed status during the export; the status index lags up to 10 s) the chain still brings.
// The count is checked against QueryProduct's DeviceCount.
#include "commands/secrets.hpp"

#include "commands/cloud_access.hpp"
#include "commands/common_options.hpp"
#include "commands/record_file.hpp"
#include "commands/secrets_compare.hpp"
#include "core/csv.hpp"
#include "core/interrupt.hpp"
#include "store/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_set>

namespace iot::commands {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int k_page = cloud::k_query_device_max_page_size;
// QueryDeviceByStatus status codes and the names QueryDevice uses for them.
constexpr std::array<std::pair<int, std::string_view>, 4> k_statuses = {
    {{0, "UNACTIVE"}, {1, "ONLINE"}, {3, "OFFLINE"}, {8, "DISABLE"}}};

const std::vector<std::string> k_columns = {
    "product_key", "device_name", "device_secret", "status", "iot_id"};

// Every device once, written as it arrives; thread-safe.
class ExportSink {
public:
  ExportSink(std::string product_key, RecordFile* file, core::ProgressSink& progress)
      : m_pk(std::move(product_key)), m_file(file), m_progress(progress) {
    m_table.columns = k_columns;
  }

  Status add(const std::vector<cloud::DeviceInfo>& devices, std::string_view status_name) {
    std::lock_guard lock(m_mutex);
    std::uint64_t added = 0;
    for (const auto& d : devices) {
      if (!m_seen.insert(d.device_name).second) {
        continue;
      }
      ++added;
      const std::string status = d.status.empty() ? std::string(status_name) : d.status;
      const std::string product_key = d.product_key.empty() ? m_pk : d.product_key;
      if (!m_file) {
        m_table.add_row(
            {product_key, d.device_name, core::Secret{d.device_secret}, status, d.iot_id});
        continue;
      }
      IOT_TRY(m_file->write({product_key, d.device_name, d.device_secret, status, d.iot_id}));
    }
    m_progress.advance(added);
    return {};
  }

  std::size_t count() const {
    std::lock_guard lock(m_mutex);
    return m_seen.size();
  }
  core::Table take_table() { return std::move(m_table); }

private:
  std::string m_pk;
  RecordFile* m_file;
  core::ProgressSink& m_progress;
  mutable std::mutex m_mutex;
  std::unordered_set<std::string> m_seen;
  core::Table m_table;
};

// The fetchers share a stop flag and the first error.
class Export {
public:
  Export(cloud::IotApi& api, std::string product_key, ExportSink& sink, std::size_t expected)
      : m_api(api), m_pk(std::move(product_key)), m_sink(sink), m_expected(expected) {}

  // QueryDevice, one page after the other, NextToken from page to page, to the end or until
  // every device has been seen.
  void chain() {
    std::string token;
    for (int page = 1; !stopping(); ++page) {
      cloud::QueryDeviceRequest request;
      request.product_key = m_pk;
      request.page_size = k_page;
      request.current_page = page;
      request.next_token = token;
      auto result = m_api.query_device(request);
      ++m_calls;
      if (!result) {
        fail_with(result.error());
        return;
      }
      if (!record(m_sink.add(result->devices, ""))) {
        return;
      }
      token = result->next_token;
      if (token.empty()) {
        m_chain_done = true;
        return;
      }
    }
  }

  // QueryDeviceByStatus: page 1 of each status gives its size; then `parallel` workers fetch the
  // other pages, oldest first across all statuses (ordered by how far from the oldest end each
  // page is), so they meet the NextToken chain, which comes from the newest end, in the middle.
  void partitions(std::size_t parallel) {
    struct Task {
      int status;
      std::string_view name;
      int page;
      double from_oldest = 0; // 0 = the oldest page of its status
    };
    std::vector<Task> tasks;
    std::mutex mutex;
    std::vector<std::thread> firsts;
    for (const auto& [code, name] : k_statuses) {
      firsts.emplace_back([&, code = code, name = name] {
        auto page = m_api.query_device_by_status(m_pk, code, k_page, 1);
        ++m_calls;
        if (!page) {
          fail_with(page.error());
          return;
        }
        if (!record(m_sink.add(page->devices, name))) {
          return;
        }
        std::lock_guard lock(mutex);
        const auto count = static_cast<int>(page->page_count);
        for (int p = count; p >= 2; --p) {
          tasks.push_back({code, name, p, static_cast<double>(count - p) / count});
        }
      });
    }
    for (auto& t : firsts) {
      t.join();
    }
    std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) {
      return a.from_oldest < b.from_oldest;
    });
    std::size_t next = 0;
    const auto worker = [&] {
      for (;;) {
        Task task{};
        {
          std::lock_guard lock(mutex);
          if (next == tasks.size() || stopping()) {
            return;
          }
          task = tasks[next++];
        }
        auto page = m_api.query_device_by_status(m_pk, task.status, k_page, task.page);
        ++m_calls;
        if (!page) {
          fail_with(page.error());
          return;
        }
        if (!record(m_sink.add(page->devices, task.name))) {
          return;
        }
      }
    };
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < std::max<std::size_t>(parallel, 1); ++i) {
      threads.emplace_back(worker);
    }
    for (auto& t : threads) {
      t.join();
    }
  }

  [[nodiscard]] bool chain_done() const { return m_chain_done; }
  [[nodiscard]] const std::optional<Error>& error() const { return m_error; }
  [[nodiscard]] std::size_t calls() const { return m_calls; }

private:
  bool stopping() const {
    return m_failed || core::interrupt_requested() || m_sink.count() >= m_expected;
  }
  bool record(Status ok) {
    if (!ok) {
      fail_with(ok.error());
    }
    return ok.has_value();
  }
  void fail_with(Error error) {
    std::lock_guard lock(m_error_mutex);
    if (!m_error) {
      m_error = std::move(error);
    }
    m_failed = true;
  }

  cloud::IotApi& m_api;
  std::string m_pk;
  ExportSink& m_sink;
  std::size_t m_expected;
  std::atomic<bool> m_failed{false};
  std::atomic<bool> m_chain_done{false};
  std::atomic<std::size_t> m_calls{0};
  std::mutex m_error_mutex;
  std::optional<Error> m_error;
};

} // namespace

Result<core::Table> run_secrets_export(const SecretsExportOptions& opts, Context& ctx) {
  if (opts.concurrency < 1 || opts.concurrency > 64) {
    return fail(ErrorKind::usage, "--concurrency must be 1..64");
  }
  // Thousands of calls: at a 10 % fault rate four attempts would fail one export in ten.
  auto cloud = IOT_TRY(open_cloud(ctx, CloudOptions{opts.concurrency + 1, 8}));
  auto pk = IOT_TRY(product_key_or_config(opts.product_key, cloud.settings));
  auto& api = *cloud.api;
  auto product = IOT_TRY_CTX(api.query_product(pk), "secrets export");
  const auto expected = static_cast<std::size_t>(product.device_count.value_or(0));
  std::optional<RecordFile> file;
  if (opts.out_file) {
    file = IOT_TRY(RecordFile::create(*opts.out_file, opts.format, k_columns));
  }
  auto progress = ctx.output->progress("export " + pk);
  progress->set_total(expected);
  ExportSink sink(pk, file ? &*file : nullptr, *progress);
  const auto start = Clock::now();
  Export job(api, pk, sink, expected == 0 ? SIZE_MAX : expected);
  if (opts.strategy == "auto") {
    std::thread chain([&] { job.chain(); });
    job.partitions(opts.concurrency);
    chain.join();
  } else if (opts.strategy == "status") {
    job.partitions(opts.concurrency);
  } else {
    job.chain();
  }
  if (!job.error() && sink.count() < expected && !job.chain_done() &&
      !core::interrupt_requested()) {
    // The partitions missed devices that moved between statuses: the chain finds them.
    ctx.output->info("status partitions gave " + std::to_string(sink.count()) + " of " +
                     std::to_string(expected) + " devices; completing with QueryDevice");
    job.chain();
  }
  progress->finish();
  if (core::interrupt_requested()) {
    return fail(ErrorKind::interrupted,
                "secrets export interrupted: " +
                    (opts.out_file ? *opts.out_file + " was not written" : std::string()));
  }
  if (job.error()) {
    return fail(job.error()->context("secrets export " + pk));
  }
  const auto seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (sink.count() < expected) {
    return fail(ErrorKind::cloud,
                "secrets export " + pk + ": got " + std::to_string(sink.count()) +
                    " devices but the product has " + std::to_string(expected) +
                    " (devices deleted during the export?): nothing written — run it again");
  }
  if (sink.count() > expected) {
    ctx.output->warn(std::to_string(sink.count() - expected) +
                     " more devices than DeviceCount said at the start: devices were added "
                     "during the export (all of them are in the file)");
  }
  if (!file) {
    return sink.take_table();
  }
  IOT_TRY(file->commit());
  core::Table t;
  t.single = true;
  t.columns = {"file",
               "product_key",
               "devices",
               "format",
               "strategy",
               "calls",
               "elapsed_s",
               "devices_per_s"};
  t.add_row({*opts.out_file,
             pk,
             static_cast<std::int64_t>(sink.count()),
             opts.format,
             opts.strategy,
             static_cast<std::int64_t>(job.calls()),
             seconds,
             seconds > 0 ? static_cast<double>(sink.count()) / seconds : 0.0});
  return t;
}

void register_secrets(CLI::App& app, Context& ctx) {
  auto* secrets = app.add_subcommand(
      "secrets", "Device secrets: export them from the cloud while healthy, compare them later");
  secrets->require_subcommand(0, 1);

  auto opts = std::make_shared<SecretsExportOptions>();
  auto* exp = secrets->add_subcommand(
      "export", "Every device (DN, DS, status, IotId) of a product, to a 0600 file, atomically");
  add_product_key(exp, opts->product_key);
  add_out_file(exp, opts->out_file, "every device with its secret in full");
  add_file_format(exp, opts->format);
  exp->add_option("--strategy",
                  opts->strategy,
                  "auto (NextToken chain + status partitions in parallel), sequential (the "
                  "NextToken chain alone) or status (the partitions alone)")
      ->check(CLI::IsMember({"auto", "sequential", "status"}))
      ->option_text("auto|sequential|status");
  add_concurrency(exp, opts->concurrency, ctx, 64, "--parallel");
  exp->footer("Export while the fleet is healthy and keep the file: when a device later fails "
              "with a secret mismatch, `secrets compare` tells a module-side problem from a "
              "cloud-side one (seed FAQ §3). The count is checked against the product's "
              "DeviceCount; on any error or Ctrl-C the file is not written. Without -O the "
              "devices go to stdout, secrets masked unless --show-secrets. Columns: "
              "product_key, device_name, device_secret, status, iot_id.");
  add_exit_codes(exp,
                 {{0, "every device was exported"},
                  {1, "the file could not be written"},
                  {2, "bad options"},
                  {4,
                   "the cloud refused, could not be reached, or the count did not match "
                   "(nothing written)"},
                  {130, "interrupted (nothing written)"}});
  exp->callback([&ctx, opts] { ctx.output->emit(value_or_throw(run_secrets_export(*opts, ctx))); });

  register_secrets_compare(*secrets, ctx);
}

} // namespace iot::commands
