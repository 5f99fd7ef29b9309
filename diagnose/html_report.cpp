// SPDX-License-Identifier: MIT
#include "diagnose/html_report.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

namespace iot::diagnose {
namespace {

// One colour per Reason, in enum order.
constexpr const char* k_colors[k_reason_count] = {
    "#8fbc8f", // online
    "#d62728", // kicked
    "#ff7f0e", // keepalive timeout
    "#9467bd", // connection reset
    "#1f77b4", // device disconnect
    "#8c564b", // auth failure
    "#7f7f7f", // other
};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string reason_label(std::size_t i) {
  return std::string(to_string(static_cast<Reason>(i)));
}

// A stacked bar chart of counts per period; `online` false leaves the online records out
// (they would dwarf the disconnects).
std::string stacked_chart(const std::string& id,
                          const std::string& title,
                          const std::vector<std::pair<std::string, ReasonCounts>>& periods,
                          bool online) {
  constexpr double w = 960;
  constexpr double h = 280;
  constexpr double left = 56;
  constexpr double right = 12;
  constexpr double top = 12;
  constexpr double bottom = 48;
  const std::size_t first = online ? 0 : 1;
  std::uint64_t max = 1;
  for (const auto& [label, c] : periods) {
    std::uint64_t sum = 0;
    for (std::size_t i = first; i < k_reason_count; ++i) {
      sum += c[i];
    }
    max = std::max(max, sum);
  }
  const double plot_w = w - left - right;
  const double plot_h = h - top - bottom;
  const double bar = periods.empty() ? 0 : plot_w / static_cast<double>(periods.size());
  std::string s = "<figure><figcaption>" + html_escape(title) + "</figcaption>\n";
  s += "<svg class=\"chart\" id=\"" + id + "\" viewBox=\"0 0 960 280\" role=\"img\" aria-label=\"" +
       html_escape(title) + "\">\n";
  // Grid and y labels.
  for (int k = 0; k <= 4; ++k) {
    const double y = top + plot_h - plot_h * k / 4.0;
    const auto v = static_cast<std::uint64_t>(static_cast<double>(max) * k / 4.0 + 0.5);
    s += "<line class=\"grid\" x1=\"" + num(left) + "\" x2=\"" + num(w - right) + "\" y1=\"" +
         num(y) + "\" y2=\"" + num(y) + "\"/>";
    s += "<text class=\"ylab\" x=\"" + num(left - 6) + "\" y=\"" + num(y + 4) + "\">" +
         std::to_string(v) + "</text>\n";
  }
  const std::size_t label_every = std::max<std::size_t>(1, (periods.size() + 7) / 8);
  for (std::size_t p = 0; p < periods.size(); ++p) {
    const auto& [label, c] = periods[p];
    const double x = left + bar * static_cast<double>(p);
    double y = top + plot_h;
    std::string tip = label;
    for (std::size_t i = first; i < k_reason_count; ++i) {
      tip += "\n" + reason_label(i) + ": " + std::to_string(c[i]);
    }
    s += "<g class=\"bar\"><title>" + html_escape(tip) + "</title>";
    for (std::size_t i = first; i < k_reason_count; ++i) {
      if (c[i] == 0) {
        continue;
      }
      const double bh = plot_h * static_cast<double>(c[i]) / static_cast<double>(max);
      y -= bh;
      s += "<rect x=\"" + num(x + bar * 0.1) + "\" y=\"" + num(y) + "\" width=\"" +
           num(std::max(bar * 0.8, 0.5)) + "\" height=\"" + num(bh) + "\" fill=\"" + k_colors[i] +
           "\"/>";
    }
    s += "</g>";
    if (p % label_every == 0) {
      s += "<text class=\"xlab\" x=\"" + num(x + bar / 2) + "\" y=\"" + num(h - bottom + 16) +
           "\">" + html_escape(label) + "</text>";
    }
    s += "\n";
  }
  s += "</svg>\n";
  // Legend.
  s += "<div class=\"legend\">";
  for (std::size_t i = first; i < k_reason_count; ++i) {
    s += "<span><i style=\"background:" + std::string(k_colors[i]) + "\"></i>" +
         html_escape(reason_label(i)) + "</span>";
  }
  s += "</div></figure>\n";
  return s;
}

std::string top_chart(const FleetReport& rep) {
  constexpr double w = 960;
  constexpr double row = 22;
  constexpr double left = 200;
  const std::size_t n = std::min<std::size_t>(rep.top.size(), 20);
  const double h = 20 + row * static_cast<double>(n);
  std::uint64_t max = 1;
  for (std::size_t i = 0; i < n; ++i) {
    max = std::max(max, rep.top[i].disconnects);
  }
  std::string s = "<figure><figcaption>Devices ranked by disconnects</figcaption>\n";
  s += "<svg class=\"chart\" id=\"chart-top\" viewBox=\"0 0 960 " + num(h) +
       "\" role=\"img\" aria-label=\"Devices ranked by disconnects\">\n";
  for (std::size_t r = 0; r < n; ++r) {
    const auto& d = rep.top[r];
    const double y = 10 + row * static_cast<double>(r);
    s += "<text class=\"dlab\" x=\"" + num(left - 8) + "\" y=\"" + num(y + 15) + "\">" +
         html_escape(d.device_name) + "</text>";
    double x = left;
    std::string tip = d.device_name;
    for (std::size_t i = 1; i < k_reason_count; ++i) {
      tip += "\n" + reason_label(i) + ": " + std::to_string(d.counts[i]);
    }
    s += "<g class=\"bar\"><title>" + html_escape(tip) + "</title>";
    for (std::size_t i = 1; i < k_reason_count; ++i) {
      if (d.counts[i] == 0) {
        continue;
      }
      const double bw =
          (w - left - 60) * static_cast<double>(d.counts[i]) / static_cast<double>(max);
      s += "<rect x=\"" + num(x) + "\" y=\"" + num(y + 3) + "\" width=\"" + num(std::max(bw, 0.5)) +
           "\" height=\"" + num(row - 6) + "\" fill=\"" + k_colors[i] + "\"/>";
      x += bw;
    }
    s += "</g><text class=\"vlab\" x=\"" + num(x + 6) + "\" y=\"" + num(y + 15) + "\">" +
         std::to_string(d.disconnects) + "</text>\n";
  }
  s += "</svg></figure>\n";
  return s;
}

std::string fmt_time(std::int64_t ms, int offset) {
  return ms == 0 ? std::string("-") : format_time(ms, offset);
}

constexpr const char* k_style = R"(
:root{--fg:#1d2330;--muted:#5b6476;--line:#dde2ea;--bg:#fbfcfe}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC",sans-serif;
color:var(--fg);background:var(--bg);margin:0 auto;max-width:1040px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line)}
.meta{color:var(--muted)}table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f1f4f9;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:12px 0;background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}svg.chart{width:100%;height:auto;display:block}
.grid{stroke:#e6e9ef;stroke-width:1}.ylab{font-size:11px;fill:var(--muted);text-anchor:end}
.xlab{font-size:11px;fill:var(--muted);text-anchor:middle}.dlab{font-size:12px;text-anchor:end}
.vlab{font-size:11px;fill:var(--muted)}g.bar:hover rect{opacity:.75}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.high{color:#b30000;font-weight:600}.medium{color:#a85d00}.low{color:var(--muted)}
details{margin:2px 0}summary{cursor:pointer;color:var(--muted)}
code,.ev{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all}
#readout{position:fixed;pointer-events:none;background:#1d2330;color:#fff;padding:4px 8px;
border-radius:4px;font-size:12px;white-space:pre;display:none}
)";

constexpr const char* k_script = R"(
(function(){
  var tip=document.getElementById('readout');
  var drawn=0;
  document.querySelectorAll('svg.chart').forEach(function(svg){
    var ok=false;
    svg.querySelectorAll('rect').forEach(function(r){var b=r.getBBox();if(b.width>0&&b.height>0)ok=true;});
    if(ok)drawn++;
    svg.querySelectorAll('g.bar').forEach(function(g){
      var t=g.querySelector('title');
      g.addEventListener('mousemove',function(e){tip.textContent=t?t.textContent:'';tip.style.display='block';
        tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';});
      g.addEventListener('mouseleave',function(){tip.style.display='none';});
    });
  });
  document.body.setAttribute('data-charts',String(drawn));
  var f=document.getElementById('filter');
  if(f)f.addEventListener('input',function(){var q=f.value.toLowerCase();
    document.querySelectorAll('#findings tbody tr').forEach(function(tr){
      tr.style.display=tr.textContent.toLowerCase().indexOf(q)>=0?'':'none';});});
})();
)";

} // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (const char c : text) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

std::string render_fleet_html(const FleetReport& rep, const HtmlInfo& info) {
  std::string s;
  s.reserve(64 * 1024);
  s += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
       "<title>iotfleet diagnose fleet — " +
       html_escape(info.log) + "</title>\n<style>" + k_style + "</style></head>\n<body>\n";
  s += "<h1>Fleet diagnosis</h1>\n<p class=\"meta\">" + html_escape(info.log) + " (" +
       html_escape(info.format) + ", " + std::to_string(info.lines) + " lines";
  if (info.skipped > 0) {
    s += ", " + std::to_string(info.skipped) + " unreadable lines skipped";
  }
  s += ") · " + html_escape(fmt_time(rep.first_ms, rep.offset_min)) + " to " +
       html_escape(fmt_time(rep.last_ms, rep.offset_min)) + " " + html_escape(info.zone);
  if (!info.product_key.empty()) {
    s += " · product " + html_escape(info.product_key);
  }
  s += "</p>\n";

  // Summary.
  s += "<h2>Summary</h2>\n<table><tbody>\n";
  s += "<tr><th>records</th><td class=\"n\">" + std::to_string(rep.records) +
       "</td><th>devices</th><td class=\"n\">" + std::to_string(rep.devices) +
       "</td><th>findings</th><td class=\"n\">" + std::to_string(rep.findings.size()) +
       "</td></tr>\n<tr>";
  for (std::size_t i = 0; i < k_reason_count; ++i) {
    if (i == 3 || i == 6) {
      s += "</tr>\n<tr>";
    }
    s += "<th><span style=\"color:" + std::string(k_colors[i]) + "\">■</span> " +
         html_escape(reason_label(i)) + "</th><td class=\"n\">" + std::to_string(rep.totals[i]) +
         "</td>";
  }
  s += "<th>device list</th><td>" +
       (rep.device_list ? html_escape(info.device_list) + ": " + std::to_string(rep.listed) +
                              " devices, " + std::to_string(rep.never_online) + " never online"
                        : std::string("not available")) +
       "</td></tr>\n</tbody></table>\n";
  if (rep.order == "unsorted") {
    s += "<p class=\"high\">The log is not sorted by time: the identity and keepalive rules read "
         "each device's records in order. Sort it by time first.</p>\n";
  }

  // Charts.
  std::vector<std::pair<std::string, ReasonCounts>> days;
  for (const auto& [d, c] : rep.per_day) {
    days.emplace_back(format_day(d), c);
  }
  std::vector<std::pair<std::string, ReasonCounts>> hours;
  for (const auto& [hr, c] : rep.per_hour) {
    hours.emplace_back(format_hour(hr), c);
  }
  s += "<h2>Reasons over time</h2>\n";
  s += stacked_chart("chart-days", "Disconnect reasons per day (" + info.zone + ")", days, false);
  s +=
      stacked_chart("chart-hours", "Disconnect reasons per hour (" + info.zone + ")", hours, false);
  s += "<h2>Devices</h2>\n";
  s += top_chart(rep);

  // Findings.
  s += "<h2>Findings</h2>\n";
  if (rep.findings.empty()) {
    s += "<p>No problem found.</p>\n";
  } else {
    std::map<std::string, std::size_t> kinds;
    for (const auto& f : rep.findings) {
      ++kinds[f.kind];
    }
    s += "<p>";
    for (const auto& [k, n] : kinds) {
      s += "<code>" + html_escape(k) + "</code> " + std::to_string(n) + " &nbsp; ";
    }
    s += "</p>\n<p><input id=\"filter\" placeholder=\"filter findings\" size=\"40\"></p>\n";
    s += "<table id=\"findings\"><thead><tr><th>finding</th><th>subject</th><th>confidence</th>"
         "<th>events</th><th>what the log shows</th><th>fix</th></tr></thead><tbody>\n";
    for (const auto& f : rep.findings) {
      s += "<tr><td><code>" + html_escape(f.kind) + "</code></td><td><code>" +
           html_escape(f.subject) + "</code>";
      if (!f.client_ips.empty()) {
        std::string ips;
        for (const auto& ip : f.client_ips) {
          ips += (ips.empty() ? "" : " ") + ip;
        }
        s += "<br><span class=\"meta\">" + html_escape(ips) + "</span>";
      }
      s += "</td><td class=\"" + std::string(to_string(f.confidence)) + "\">" +
           std::string(to_string(f.confidence)) + "</td><td class=\"n\">" +
           std::to_string(f.events) + "</td><td>" + html_escape(f.detail);
      if (f.keepalive_s) {
        s += " <b>(keepalive ≈ " + std::to_string(*f.keepalive_s) + " s)</b>";
      }
      if (!f.evidence.empty()) {
        s += "<details><summary>evidence (" + std::to_string(f.evidence.size()) +
             ")</summary><div class=\"ev\">";
        for (const auto& e : f.evidence) {
          s += html_escape(e) + "\n";
        }
        s += "</div></details>";
      }
      s += "</td><td>" + html_escape(f.fix) + "</td></tr>\n";
    }
    s += "</tbody></table>\n";
  }

  // Reason texts.
  s += "<h2>Reason texts in the log</h2>\n<table><thead><tr><th>text</th><th>category</th>"
       "<th>rule</th><th>count</th></tr></thead><tbody>\n";
  for (std::size_t i = 0; i < std::min<std::size_t>(rep.reason_texts.size(), 50); ++i) {
    const auto& r = rep.reason_texts[i];
    s += "<tr><td><code>" + html_escape(r.text) + "</code></td><td>" +
         html_escape(to_string(r.reason)) + "</td><td>" + (r.matched ? "matched" : "none") +
         "</td><td class=\"n\">" + std::to_string(r.count) + "</td></tr>\n";
  }
  s += "</tbody></table>\n";
  s += "<p class=\"meta\">Generated by iotfleet diagnose fleet. Rules and fixes: "
       "docs/diagnose.md.</p>\n<div id=\"readout\"></div>\n<script>" +
       std::string(k_script) + "</script>\n</body></html>\n";
  return s;
}

} // namespace iot::diagnose
