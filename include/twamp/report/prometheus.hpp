// twamp/report/prometheus.hpp — the session report in the Prometheus text exposition format
// (version 0.0.4), for node_exporter's textfile collector.
//
// Every metric is prefixed `twamp_` and labelled with the session (sender, reflector, mode, and
// ssid for STAMP). Delays are in seconds, as Prometheus wants base units; a delay distribution is
// a `summary` (quantiles from --percentiles, _sum, _count) over in-time replies. The file is a
// snapshot of one finished session: everything is a gauge or a summary, none a counter that
// would have to survive restarts. Writing it atomically is the caller's job (temp file + rename).
#pragma once

#include "twamp/report/info.hpp"
#include "twamp/stats.hpp"

#include <cstdio>
#include <string>
#include <string_view>

namespace twamp::report {

// Label values escape backslash, double quote and newline.
inline std::string prometheus_label(std::string_view v)
{
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

namespace detail {
inline std::string prom_num(double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.12g", v);
    return buf;
}
} // namespace detail

inline std::string prometheus(const session_stats& s, const session_info& info,
                              const report_options& o = {})
{
    std::string base =
        "sender=\"" +
        prometheus_label(info.sender_address + ":" + std::to_string(info.sender_port)) +
        "\",reflector=\"" +
        prometheus_label(info.reflector_address + ":" + std::to_string(info.reflector_port)) +
        "\",mode=\"" + prometheus_label(info.mode) + "\"";
    if (info.mode == "stamp") base += ",ssid=\"" + std::to_string(info.ssid) + "\"";
    std::string out;
    auto family = [&](const char* name, const char* type, const char* help) {
        out += std::string("# HELP twamp_") + name + " " + help + "\n# TYPE twamp_" + name + " " +
               type + "\n";
    };
    auto sample = [&](const std::string& name, const std::string& extra, double v) {
        out += "twamp_" + name + "{" + base + extra + "} " + detail::prom_num(v) + "\n";
    };
    auto dir = [](const char* d) { return std::string(",direction=\"") + d + "\""; };

    family("probes", "gauge",
           "Probes of the session by state (scheduled, sent, skipped, received, lost, late, "
           "duplicate, reordered)");
    const std::pair<const char*, double> states[] = {
        {"scheduled", info.scheduled},
        {"sent", static_cast<double>(s.sent)},
        {"skipped", static_cast<double>(info.skipped)},
        {"received", static_cast<double>(s.received)},
        {"lost", static_cast<double>(s.lost())},
        {"late", static_cast<double>(s.late)},
        {"duplicate", static_cast<double>(s.duplicates)},
        {"reordered", static_cast<double>(s.reordered)}};
    for (const auto& [st, v] : states)
        sample("probes", std::string(",state=\"") + st + "\"", v);

    family("loss_ratio", "gauge", "Lost probes over sent probes, per direction (0-1)");
    sample("loss_ratio", dir("outbound"), s.outbound_loss_pct() / 100);
    sample("loss_ratio", dir("inbound"), s.inbound_loss_pct() / 100);
    sample("loss_ratio", dir("roundtrip"), s.loss_pct() / 100);

    const std::pair<const char*, const delay_stats*> dirs[] = {
        {"outbound", &s.outbound}, {"inbound", &s.inbound}, {"roundtrip", &s.roundtrip}};
    const std::pair<const char*, const delay_stats*> ipdvs[] = {{"outbound", &s.ipdv.outbound},
                                                                {"inbound", &s.ipdv.inbound},
                                                                {"roundtrip", &s.ipdv.roundtrip}};

    auto summary = [&](const char* name, const char* help,
                       const std::pair<const char*, const delay_stats*>(&set)[3]) {
        family(name, "summary", help);
        for (const auto& [d, st] : set) {
            if (st->count()) {
                for (double p : o.percentiles)
                    sample(name, dir(d) + ",quantile=\"" + detail::prom_num(p / 100) + "\"",
                           st->percentile(p) / 1e9);
            }
            sample(std::string(name) + "_sum", dir(d),
                   st->mean() * static_cast<double>(st->count()) / 1e9);
            sample(std::string(name) + "_count", dir(d), static_cast<double>(st->count()));
        }
    };
    summary("delay_seconds",
            "Delay of in-time replies (one-way: T2-T1, T4-T3; round trip RFC 5357)", dirs);
    summary("ipdv_seconds", "RFC 3393 IP packet delay variation of consecutive probes", ipdvs);

    auto gauge_set = [&](const char* name, const char* help, auto value) {
        family(name, "gauge", help);
        for (const auto& [d, st] : dirs)
            if (st->count()) sample(name, dir(d), value(*st));
    };
    gauge_set("delay_min_seconds", "Smallest delay",
              [](const delay_stats& d) { return static_cast<double>(d.min()) / 1e9; });
    gauge_set("delay_max_seconds", "Largest delay",
              [](const delay_stats& d) { return static_cast<double>(d.max()) / 1e9; });
    gauge_set("delay_stddev_seconds", "Standard deviation of the delay",
              [](const delay_stats& d) { return d.stddev() / 1e9; });
    gauge_set("jitter_seconds", "RFC 3550 interarrival jitter",
              [](const delay_stats& d) { return d.jitter() / 1e9; });
    gauge_set("pdv_seconds", "RFC 5481 PDV: 99.9th percentile minus minimum",
              [](const delay_stats& d) { return d.pdv() / 1e9; });
    gauge_set("p95_p50_seconds", "95th minus 50th percentile of the delay",
              [](const delay_stats& d) { return d.p95_p50() / 1e9; });

    family("reorder_max_extent", "gauge", "RFC 4737 largest reordering extent (packets)");
    sample("reorder_max_extent", "", static_cast<double>(s.max_reorder_extent));
    family("clock_synchronized", "gauge",
           "1 when both clocks report synchronisation (one-way delays are meaningful)");
    sample("clock_synchronized", "", s.one_way_synchronized() ? 1 : 0);
    family("one_way_error_bound_seconds", "gauge", "Sum of both ends' timestamp error estimates");
    sample("one_way_error_bound_seconds", "", s.one_way_error_bound_s());
    family("interrupted", "gauge", "1 when the session was stopped by a signal");
    sample("interrupted", "", info.interrupted ? 1 : 0);
    if (info.end_time_ns) {
        family("last_run_timestamp_seconds", "gauge", "Unix time the session ended");
        sample("last_run_timestamp_seconds", "", static_cast<double>(info.end_time_ns) / 1e9);
    }
    return out;
}

} // namespace twamp::report
