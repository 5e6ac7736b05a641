// twamp/report/table.hpp — the summary table, laid out exactly as twampy prints it.
//
// Same rows, columns and unit switching (µs below 1 ms, ms, s, min) so scripts that read twampy's
// output keep working. Lines about anomalies (late, duplicate or reordered replies, one-way values
// below zero) follow the table only when there is something to say.
#pragma once

#include "twamp/report/info.hpp"
#include "twamp/stats.hpp"

#include <cmath>
#include <cstdio>
#include <string>

namespace twamp::report {

// One duration cell, from milliseconds, in twampy's formats.
inline std::string format_ms(double ms)
{
    char buf[32];
    const double a = std::fabs(ms);
    if (a > 60000) std::snprintf(buf, sizeof buf, "%7.1fmin", ms / 60000);
    else if (a > 10000) std::snprintf(buf, sizeof buf, "%7.1fsec", ms / 1000);
    else if (a > 1000) std::snprintf(buf, sizeof buf, "%7.2fsec", ms / 1000);
    else if (a > 1) std::snprintf(buf, sizeof buf, "%8.2fms", ms);
    else std::snprintf(buf, sizeof buf, "%8lldus", static_cast<long long>(ms * 1000));
    return buf;
}

inline std::string table_row(const char* label, const delay_stats& d, double loss_pct)
{
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-13s%s  %s  %s  %s    %5.1f%%\n", label,
                  format_ms(static_cast<double>(d.min()) / 1e6).c_str(),
                  format_ms(static_cast<double>(d.max()) / 1e6).c_str(),
                  format_ms(d.mean() / 1e6).c_str(), format_ms(d.jitter() / 1e6).c_str(), loss_pct);
    return buf;
}

inline std::string table(const session_stats& s, const session_info& info = {})
{
    const std::string rule(79, '=');
    const std::string thin(79, '-');
    std::string out;
    out += rule + "\n";
    out += "Direction         Min         Max         Avg          Jitter     Loss\n";
    out += thin + "\n";
    if (s.received > 0) {
        out += table_row("Outbound:", s.outbound, s.outbound_loss_pct());
        out += table_row("Inbound:", s.inbound, s.inbound_loss_pct());
        out += table_row("Roundtrip:", s.roundtrip, s.loss_pct());
    } else {
        out += "  NO STATS AVAILABLE (100% loss)\n";
    }
    out += thin + "\n";
    out += "                                                    Jitter Algorithm [RFC1889]\n";
    out += rule + "\n";

    char buf[200];
    if (s.late || s.duplicates || s.reordered) {
        std::snprintf(buf, sizeof buf, "  sent %llu, received %llu, late %llu, duplicates %llu, reordered %llu\n",
                      static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.received),
                      static_cast<unsigned long long>(s.late), static_cast<unsigned long long>(s.duplicates),
                      static_cast<unsigned long long>(s.reordered));
        out += buf;
    }
    if (s.outbound.negative() || s.inbound.negative()) {
        std::snprintf(buf, sizeof buf,
                      "  one-way delays below zero (outbound %llu, inbound %llu): the clocks are not in sync\n",
                      static_cast<unsigned long long>(s.outbound.negative()),
                      static_cast<unsigned long long>(s.inbound.negative()));
        out += buf;
    }
    if (s.short_replies) {
        std::snprintf(buf, sizeof buf, "  %llu replies shorter than 41 octets (zero-filled)\n",
                      static_cast<unsigned long long>(s.short_replies));
        out += buf;
    }
    if (info.interrupted) out += "  interrupted: statistics cover the probes sent so far\n";
    return out;
}

} // namespace twamp::report
