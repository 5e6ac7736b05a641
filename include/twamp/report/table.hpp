// twamp/report/table.hpp — the summary table, laid out exactly as twampy prints it.
//
// Same rows, columns and unit switching (µs below 1 ms, ms, s, min) so scripts that read twampy's
// output keep working. Lines about anomalies (late, duplicate or reordered replies, one-way values
// below zero) follow the table only when there is something to say. `table_extended` adds, below
// that, the percentiles (--percentiles), standard deviation, RFC 3393 IPDV, RFC 5481 PDV, P95-P50,
// reordering, clock state and the schedule; `table_interval_row` is one line per interval.
#pragma once

#include "twamp/intervals.hpp"
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
    if (a > 60000)
        std::snprintf(buf, sizeof buf, "%7.1fmin", ms / 60000);
    else if (a > 10000)
        std::snprintf(buf, sizeof buf, "%7.1fsec", ms / 1000);
    else if (a > 1000)
        std::snprintf(buf, sizeof buf, "%7.2fsec", ms / 1000);
    else if (a > 1)
        std::snprintf(buf, sizeof buf, "%8.2fms", ms);
    else
        std::snprintf(buf, sizeof buf, "%8lldus", static_cast<long long>(ms * 1000));
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

// What the reflected STAMP extension TLVs said, a line each; empty when none came back.
inline std::string tlv_lines(const stamp_tlv_stats& t)
{
    if (t.replies == 0) return {};
    auto ull = [](std::uint64_t v) { return std::to_string(v); };
    std::string out = "  TLVs: " + ull(t.replies) + " replies read";
    if (t.unrecognised) out += ", " + ull(t.unrecognised) + " not processed by the reflector (U)";
    if (t.malformed) out += ", " + ull(t.malformed) + " malformed (M)";
    if (t.integrity_failed) out += ", " + ull(t.integrity_failed) + " failed integrity (I)";
    out += "\n";
    if (t.location) {
        const auto& l = *t.location;
        out += "  Location: the reflector saw " +
               (l.source ? to_string(*l.source) : std::string("?")) + ":" +
               std::to_string(l.source_port) + " -> " +
               (l.destination ? to_string(*l.destination) : std::string("?")) + ":" +
               std::to_string(l.destination_port);
        if (t.location_changes) out += " (changed " + ull(t.location_changes) + " times)";
        out += "\n";
    }
    if (t.cos) {
        out += "  Class of Service: DSCP " + std::to_string(t.cos->dscp2) + " ECN " +
               std::to_string(t.cos->ecn) + " at the reflector; reply DSCP " +
               std::to_string(t.cos->dscp1) +
               (t.cos_reverse_refused ? " refused " + ull(t.cos_reverse_refused) + " times"
                                      : std::string(" granted")) +
               "\n";
    }
    if (t.direct)
        out += "  Direct Measurement: sender tx " + std::to_string(t.direct->sender_tx) +
               ", reflector rx " + std::to_string(t.direct->reflector_rx) + ", tx " +
               std::to_string(t.direct->reflector_tx) + "\n";
    if (t.timestamps)
        out += "  Timestamp Information: sync " + std::to_string(t.timestamps->sync_in) + "/" +
               std::to_string(t.timestamps->sync_out) + ", method " +
               std::to_string(t.timestamps->method_in) + "/" +
               std::to_string(t.timestamps->method_out) + " (T2/T3)\n";
    if (t.follow_up) out += "  Follow-Up Telemetry: " + ull(t.follow_ups) + " send times\n";
    if (t.micro_session)
        out += "  Micro-session ID: sender " + std::to_string(t.micro_session->sender_id) +
               ", reflector " + std::to_string(t.micro_session->reflector_id) +
               (t.micro_session_mismatch
                    ? ", " + ull(t.micro_session_mismatch) + " replies for another member link"
                    : std::string()) +
               "\n";
    if (t.reflected_control)
        out += "  Reflected Test Packet Control: " + std::to_string(t.reflected_control->count) +
               " x " + std::to_string(t.reflected_control->length) + " octets asked, " +
               (t.reflected_control_clamped
                    ? "clamped " + ull(t.reflected_control_clamped) + " times (C)"
                    : std::string("as asked")) +
               "\n";
    return out;
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
        std::snprintf(
            buf, sizeof buf,
            "  sent %llu, received %llu, late %llu, duplicates %llu, reordered %llu\n",
            static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.received),
            static_cast<unsigned long long>(s.late), static_cast<unsigned long long>(s.duplicates),
            static_cast<unsigned long long>(s.reordered));
        out += buf;
    }
    if (s.outbound.negative() || s.inbound.negative()) {
        std::snprintf(buf, sizeof buf,
                      "  one-way delays below zero (outbound %llu, inbound %llu): the clocks are "
                      "not in sync\n",
                      static_cast<unsigned long long>(s.outbound.negative()),
                      static_cast<unsigned long long>(s.inbound.negative()));
        out += buf;
    }
    if (s.icmp_unreachable) {
        std::snprintf(buf, sizeof buf, "  %llu ICMP unreachable errors came back for the probes\n",
                      static_cast<unsigned long long>(s.icmp_unreachable));
        out += buf;
    }
    if (s.received > 0 && s.unknown_direction_lost()) {
        std::snprintf(buf, sizeof buf,
                      "  %llu lost after the last reply (or before the first) with no known "
                      "direction\n",
                      static_cast<unsigned long long>(s.unknown_direction_lost()));
        out += buf;
    }
    if (s.short_replies) {
        std::snprintf(buf, sizeof buf, "  %llu replies shorter than 41 octets (zero-filled)\n",
                      static_cast<unsigned long long>(s.short_replies));
        out += buf;
    }
    out += tlv_lines(s.tlv);
    if (info.interrupted) out += "  interrupted: statistics cover the probes sent so far\n";
    return out;
}

// Where T1-T4 came from (the sources of the in-time samples, with counts) and the kernel's send
// time against the user-space read; empty when the report does not know.
inline std::string timestamp_lines(const session_info& info)
{
    if (!info.timestamps_known) return {};
    std::string out = "  timestamps:";
    for (std::size_t t = 0; t < 4; ++t) {
        out += (t ? "; T" : " T") + std::to_string(t + 1);
        bool any = false;
        for (std::size_t k = 0; k < kTimestampSources; ++k) {
            const std::uint64_t n = info.timestamp_sources.n[t][k];
            if (!n) continue;
            out += (any ? ", " : " ") + std::string(to_string(static_cast<timestamp_source>(k))) +
                   " " + std::to_string(n);
            any = true;
        }
        if (!any) out += " -";
    }
    out += "\n  send timestamps: " + info.timestamping_enabled + " (asked " +
           info.timestamping_requested + ")";
    char buf[160];
    if (info.t1_kernel_stamps) {
        std::snprintf(buf, sizeof buf,
                      "; kernel - user T1 p50 %.1fus, p99 %.1fus, max %.1fus over %llu probes",
                      info.t1_kernel_minus_user_p50_ns / 1e3,
                      info.t1_kernel_minus_user_p99_ns / 1e3,
                      info.t1_kernel_minus_user_max_ns / 1e3,
                      static_cast<unsigned long long>(info.t1_kernel_stamps));
        out += buf;
    }
    if (info.t1_stamps_after_reply || info.t1_stamps_missing) {
        std::snprintf(buf, sizeof buf, "; %llu after their reply, %llu missing",
                      static_cast<unsigned long long>(info.t1_stamps_after_reply),
                      static_cast<unsigned long long>(info.t1_stamps_missing));
        out += buf;
    }
    if (!info.timestamping_note.empty()) out += " (" + info.timestamping_note + ")";
    return out + "\n";
}

namespace detail {
inline std::string ns_cell(double ns)
{
    return format_ms(ns / 1e6);
}
} // namespace detail

// The table, then the extended metrics, one block per direction.
inline std::string table_extended(const session_stats& s, const session_info& info,
                                  const report_options& o)
{
    std::string out = table(s, info);
    char buf[256];
    // Percentile header: "  Percentile     p50  p90 ..." with 10-column cells like the table.
    std::string head = "  Percentiles  ";
    for (double p : o.percentiles) {
        std::snprintf(buf, sizeof buf, "%10s  ", ("p" + percentile_label(p)).c_str());
        head += buf;
    }
    while (!head.empty() && head.back() == ' ')
        head.pop_back();
    out += head + "\n";
    auto pct_row = [&](const char* label, const delay_stats& d) {
        std::string row = "  ";
        std::snprintf(buf, sizeof buf, "%-13s", label);
        row += buf;
        for (double p : o.percentiles)
            row += detail::ns_cell(d.percentile(p)) + "  ";
        while (!row.empty() && row.back() == ' ')
            row.pop_back();
        out += row + "\n";
    };
    const bool any = s.received > 0;
    if (any) {
        pct_row("Outbound:", s.outbound);
        pct_row("Inbound:", s.inbound);
        pct_row("Roundtrip:", s.roundtrip);
    }
    out += "               Stddev       PDV    P95-P50   IPDV mean    IPDV min    IPDV max\n";
    auto more_row = [&](const char* label, const delay_stats& d, const delay_stats& ipdv) {
        std::string row = "  ";
        std::snprintf(buf, sizeof buf, "%-11s", label);
        row += buf;
        row += detail::ns_cell(d.stddev()) + detail::ns_cell(d.pdv()) + " " +
               detail::ns_cell(d.p95_p50());
        if (ipdv.count()) {
            row += "  " + detail::ns_cell(ipdv.mean()) + "  " +
                   detail::ns_cell(static_cast<double>(ipdv.min())) + "  " +
                   detail::ns_cell(static_cast<double>(ipdv.max()));
        } else {
            row += "           -           -           -";
        }
        out += row + "\n";
    };
    if (any) {
        more_row("Outbound:", s.outbound, s.ipdv.outbound);
        more_row("Inbound:", s.inbound, s.ipdv.inbound);
        more_row("Roundtrip:", s.roundtrip, s.ipdv.roundtrip);
    }
    if (s.ipdv.roundtrip.count()) {
        std::string row = "  IPDV percentiles (roundtrip):";
        for (double p : o.percentiles) {
            std::snprintf(buf, sizeof buf, " p%s=%.3fus", percentile_label(p).c_str(),
                          s.ipdv.roundtrip.percentile(p) / 1e3);
            row += buf;
        }
        out += row + "\n";
    }
    std::snprintf(buf, sizeof buf,
                  "  reordered %llu (ratio %.4f, max extent %llu), late %llu, duplicates %llu\n",
                  static_cast<unsigned long long>(s.reordered), s.reordered_ratio(),
                  static_cast<unsigned long long>(s.max_reorder_extent),
                  static_cast<unsigned long long>(s.late),
                  static_cast<unsigned long long>(s.duplicates));
    out += buf;
    std::snprintf(buf, sizeof buf,
                  "  clocks: one-way %s (sender %s, reflector %s), error bound +/-%.3fus\n",
                  s.one_way_synchronized() ? "synchronised" : "NOT synchronised",
                  s.sender_synchronized ? "synced" : "unsynced",
                  s.received ? (s.reflector_synchronized ? "synced" : "unsynced") : "unknown",
                  s.one_way_error_bound_s() * 1e6);
    out += buf;
    std::snprintf(
        buf, sizeof buf, "  schedule: %s, interval %.3fms; scheduled %u, sent %llu, skipped %llu\n",
        info.distribution.c_str(), static_cast<double>(info.interval_ns) / 1e6, info.scheduled,
        static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(info.skipped));
    out += buf;
    if (info.pacing_known) {
        const double offered =
            info.interval_ns > 0 ? 1e9 / static_cast<double>(info.interval_ns) : 0;
        std::snprintf(buf, sizeof buf,
                      "  pacing: offered %.0f/s, achieved %.0f/s; send-time error p50 %.1fus, "
                      "p99 %.1fus, max %.1fus\n",
                      offered, info.achieved_pps, info.pacing_error_p50_ns / 1e3,
                      info.pacing_error_p99_ns / 1e3, info.pacing_error_max_ns / 1e3);
        out += buf;
    }
    out += timestamp_lines(info);
    return out;
}

// One interval as a table row: time range (s since the start), then the round-trip min, max,
// avg and jitter cells and the interval's loss, aligned with the summary table's columns.
inline std::string table_interval_row(const interval_summary& b, std::int64_t period_ns)
{
    char label[32];
    const double t0 = static_cast<double>(b.index) * static_cast<double>(period_ns) / 1e9;
    const double t1 = t0 + static_cast<double>(period_ns) / 1e9;
    std::snprintf(label, sizeof label, "%g-%gs", t0, t1);
    char buf[200];
    if (b.roundtrip.count) {
        std::snprintf(buf, sizeof buf, "  %-14s%s  %s  %s  %s    %5.1f%%  %llu/%llu\n", label,
                      detail::ns_cell(static_cast<double>(b.roundtrip.min)).c_str(),
                      detail::ns_cell(static_cast<double>(b.roundtrip.max)).c_str(),
                      detail::ns_cell(b.roundtrip.mean).c_str(),
                      detail::ns_cell(b.roundtrip.jitter).c_str(), b.loss_pct(),
                      static_cast<unsigned long long>(b.received),
                      static_cast<unsigned long long>(b.sent));
    } else {
        std::snprintf(buf, sizeof buf, "  %-14s%10s  %10s  %10s  %10s    %5.1f%%  %llu/%llu\n",
                      label, "-", "-", "-", "-", b.loss_pct(),
                      static_cast<unsigned long long>(b.received),
                      static_cast<unsigned long long>(b.sent));
    }
    return buf;
}

} // namespace twamp::report
