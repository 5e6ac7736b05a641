// twamp/report/influx.hpp — InfluxDB line protocol for Telegraf's exec/execd inputs.
//
// One line per direction: measurement `twamp`, tags sender, sender_port, reflector,
// reflector_port, direction; fields min, max, avg, jitter (µs, floats), loss (percent), and the
// counters sent, received, duplicates, reordered, late (integers); the report time in ns.
#pragma once

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

inline std::string influx_line(const char* direction, const delay_stats& d, double loss_pct,
                               const session_stats& s, const session_info& info)
{
    std::string line = "twamp,sender=" + influx_tag(info.sender_address) +
                       ",sender_port=" + std::to_string(info.sender_port) +
                       ",reflector=" + influx_tag(info.reflector_address) +
                       ",reflector_port=" + std::to_string(info.reflector_port) +
                       ",direction=" + direction;
    if (info.mode == "stamp") line += ",ssid=" + std::to_string(info.ssid);
    char buf[512];
    int n = 0;
    if (d.count()) {
        n = std::snprintf(buf, sizeof buf, " min=%.3f,max=%.3f,avg=%.3f,jitter=%.3f,",
                          static_cast<double>(d.min()) / 1e3, static_cast<double>(d.max()) / 1e3,
                          d.mean() / 1e3, d.jitter() / 1e3);
    } else {
        n = std::snprintf(buf, sizeof buf, " ");
    }
    std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n),
                  "loss=%.3f,sent=%llui,received=%llui,duplicates=%llui,reordered=%llui,late=%llui",
                  loss_pct, static_cast<unsigned long long>(s.sent),
                  static_cast<unsigned long long>(s.received),
                  static_cast<unsigned long long>(s.duplicates),
                  static_cast<unsigned long long>(s.reordered),
                  static_cast<unsigned long long>(s.late));
    line += buf;
    if (info.end_time_ns) line += " " + std::to_string(info.end_time_ns);
    line += "\n";
    return line;
}

inline std::string influx(const session_stats& s, const session_info& info)
{
    return influx_line("outbound", s.outbound, s.outbound_loss_pct(), s, info) +
           influx_line("inbound", s.inbound, s.inbound_loss_pct(), s, info) +
           influx_line("roundtrip", s.roundtrip, s.loss_pct(), s, info);
}

} // namespace twamp::report
