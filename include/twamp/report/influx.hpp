// twamp/report/influx.hpp — InfluxDB line protocol for Telegraf's exec/execd inputs.
//
// One line per direction: measurement `twamp`, tags sender, sender_port, reflector,
// reflector_port, direction (and ssid for STAMP); fields min, max, avg, jitter, stddev and one
// field per requested percentile (p50, p90, p99_9 …), all µs as floats, loss (percent), and the
// counters sent, received, duplicates, reordered, late (integers); the report time in ns. Per
// interval (--report-interval) the same per direction under measurement `twamp_interval`, stamped
// with the interval's end.
#pragma once

#include "twamp/intervals.hpp"
#include "twamp/report/info.hpp"
#include "twamp/stats.hpp"

#include <cstdio>
#include <string>
#include <string_view>

namespace twamp::report {

// Tag values escape commas, spaces and equals signs (line protocol rules).
inline std::string influx_tag(std::string_view v)
{
    std::string out;
    for (char c : v) {
        if (c == ',' || c == ' ' || c == '=') out += '\\';
        out += c;
    }
    return out;
}

// "99.9" -> "p99_9": a field key without dots.
inline std::string influx_percentile_key(double p)
{
    std::string k = "p" + percentile_label(p);
    for (char& c : k)
        if (c == '.') c = '_';
    return k;
}

namespace detail {
inline std::string influx_tags(const char* measurement, const char* direction,
                               const session_info& info)
{
    std::string line = std::string(measurement) + ",sender=" + influx_tag(info.sender_address) +
                       ",sender_port=" + std::to_string(info.sender_port) +
                       ",reflector=" + influx_tag(info.reflector_address) +
                       ",reflector_port=" + std::to_string(info.reflector_port) +
                       ",direction=" + direction;
    if (info.mode == "stamp") line += ",ssid=" + std::to_string(info.ssid);
    return line;
}
inline std::string influx_us(const char* key, double ns)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s=%.3f,", key, ns / 1e3);
    return buf;
}
} // namespace detail

inline std::string influx_line(const char* direction, const delay_stats& d, double loss_pct,
                               const session_stats& s, const session_info& info,
                               const report_options& o = {})
{
    std::string line = detail::influx_tags("twamp", direction, info);
    char buf[512];
    int n = 0;
    if (d.count()) {
        n = std::snprintf(buf, sizeof buf, " min=%.3f,max=%.3f,avg=%.3f,jitter=%.3f,",
                          static_cast<double>(d.min()) / 1e3, static_cast<double>(d.max()) / 1e3,
                          d.mean() / 1e3, d.jitter() / 1e3);
        line.append(buf, static_cast<std::size_t>(n));
        line += detail::influx_us("stddev", d.stddev());
        for (double p : o.percentiles)
            line += detail::influx_us(influx_percentile_key(p).c_str(), d.percentile(p));
    } else {
        line += " ";
    }
    std::snprintf(
        buf, sizeof buf,
        "loss=%.3f,sent=%llui,received=%llui,duplicates=%llui,reordered=%llui,late=%llui", loss_pct,
        static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.received),
        static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.reordered),
        static_cast<unsigned long long>(s.late));
    line += buf;
    if (info.end_time_ns) line += " " + std::to_string(info.end_time_ns);
    line += "\n";
    return line;
}

inline std::string influx(const session_stats& s, const session_info& info,
                          const report_options& o = {})
{
    return influx_line("outbound", s.outbound, s.outbound_loss_pct(), s, info, o) +
           influx_line("inbound", s.inbound, s.inbound_loss_pct(), s, info, o) +
           influx_line("roundtrip", s.roundtrip, s.loss_pct(), s, info, o);
}

// Three lines (one per direction) for one interval, stamped with the interval's end.
inline std::string influx_interval(const interval_summary& b, const session_info& info)
{
    std::string out;
    const std::pair<const char*, const delay_summary*> dirs[] = {
        {"outbound", &b.outbound}, {"inbound", &b.inbound}, {"roundtrip", &b.roundtrip}};
    char buf[256];
    for (const auto& [name, d] : dirs) {
        std::string line = detail::influx_tags("twamp_interval", name, info) + " ";
        if (d->count) {
            line += detail::influx_us("min", static_cast<double>(d->min));
            line += detail::influx_us("max", static_cast<double>(d->max));
            line += detail::influx_us("avg", d->mean);
            line += detail::influx_us("jitter", d->jitter);
            line += detail::influx_us("stddev", d->stddev);
            for (const auto& [p, ns] : d->percentiles)
                line += detail::influx_us(influx_percentile_key(p).c_str(), ns);
        }
        std::snprintf(
            buf, sizeof buf, "loss=%.3f,sent=%llui,received=%llui,late=%llui,interval=%llui %lld\n",
            b.loss_pct(), static_cast<unsigned long long>(b.sent),
            static_cast<unsigned long long>(b.received), static_cast<unsigned long long>(b.late),
            static_cast<unsigned long long>(b.index), static_cast<long long>(b.end_ns));
        out += line + buf;
    }
    return out;
}

} // namespace twamp::report
