// output.hpp — how the sender and the controller print their report: twampy's table (default),
// --extended, --json or --telegraf on stdout; --prometheus FILE and --svg FILE written at the end;
// --report-interval lines and --per-packet FILE rows while the test runs.
//
// emit_report() is the single entry point for the final report. A session driver that can feed
// intervals and per-packet rows (the sender) registers the "live" options --report-interval,
// --per-packet and --svg with add_output_options(..., true), and uses interval_recorder,
// emit_interval() and per_packet_writer; one that cannot (default live = false) leaves them out,
// so they are never parsed and then ignored.
#pragma once

#include "cli_common.hpp"

#include "twamp/intervals.hpp"
#include "twamp/report/influx.hpp"
#include "twamp/report/json.hpp"
#include "twamp/report/per_packet.hpp"
#include "twamp/report/prometheus.hpp"
#include "twamp/report/svg.hpp"
#include "twamp/report/table.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

namespace twamp_cli {

struct output_options {
    bool json = false;
    bool telegraf = false;
    bool extended = false;
    std::string percentiles = "50,90,95,99,99.9";
    bool percentiles_given = false;
    double report_interval_s = 0; // 0 = no interval lines
    std::string per_packet;       // CSV file, "" = none
    std::string prometheus;       // textfile-collector file, "" = none
    std::string svg;              // chart file, "" = none (needs interval bins: a live option)
};

// The comma-separated percentiles of --percentiles (each 0-100). On failure: nullopt, and the
// item at fault in `bad`.
inline std::optional<std::vector<double>> parse_percentiles(const std::string& s, std::string& bad)
{
    std::vector<double> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        const std::size_t comma = std::min(s.find(',', pos), s.size());
        const std::string item = s.substr(pos, comma - pos);
        std::size_t used = 0;
        double v = -1;
        try {
            v = std::stod(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (item.empty() || used != item.size() || !(v >= 0 && v <= 100)) {
            bad = item;
            return std::nullopt;
        }
        out.push_back(v);
        pos = comma + 1;
    }
    return out;
}

inline CLI::Validator percentiles_check()
{
    return CLI::Validator(
        [](std::string& s) -> std::string {
            std::string bad;
            if (parse_percentiles(s, bad)) return {};
            return "invalid value '" + bad + "' (comma-separated numbers 0-100)";
        },
        "");
}

// --report-interval: 0 (none) or 0.01-86400 seconds.
inline CLI::Validator report_interval_check()
{
    return number_check<double>(
        [](double v) { return v == 0 || (v >= 0.01 && v <= 86400); },
        [](double v) { return "invalid value " + num(v) + " (seconds, 0.01-86400; 0 = none)"; });
}

inline void add_output_options(CLI::App* sc, output_options& o, bool live = false)
{
    sc->add_flag("--json", o.json, "Print the report as JSON");
    sc->add_flag("--telegraf", o.telegraf, "Print InfluxDB line protocol (for Telegraf)");
    sc->add_flag("--extended", o.extended,
                 "Table: add percentiles, stddev, IPDV, PDV, reordering, clock and schedule lines");
    sc->add_option(
          "--percentiles", o.percentiles,
          "Comma-separated percentiles (0-100) for --extended, --json, --telegraf, --prometheus")
        ->capture_default_str()
        ->check(percentiles_check())
        ->each([&o](const std::string&) { o.percentiles_given = true; });
    sc->add_option("--prometheus", o.prometheus,
                   "Write Prometheus text exposition to FILE (atomically: temp file + rename)");
    if (live) {
        sc->add_option("--svg", o.svg,
                       "Write a smokeping-like SVG chart of the round-trip time to FILE");
        sc->add_option("--report-interval", o.report_interval_s,
                       "Print one line per interval of S seconds while the test runs (table, JSON "
                       "or Influx)")
            ->check(report_interval_check());
        sc->add_option("--per-packet", o.per_packet,
                       "Write one CSV row per probe to FILE as the test runs (T1-T4 in ns, delays, "
                       "TTLs, status)");
    }
}

// The checks that span two output flags (each flag alone is checked by CLI11).
inline void check_output_options(const output_options& o)
{
    if (o.json && o.telegraf) throw usage_error("--json and --telegraf: choose one output format");
    if (o.extended && (o.json || o.telegraf))
        throw usage_error(
            "--extended: only with the table output (JSON and Influx always carry everything)");
}

// What the renderers need of the options. Percentiles asked for on the table output turn the
// extended table on (the plain table is twampy's and has no place for them).
inline twamp::report::report_options report_options_of(const output_options& o)
{
    twamp::report::report_options r;
    std::string bad;
    r.percentiles = parse_percentiles(o.percentiles, bad).value_or(std::vector<double>{});
    r.extended = o.extended || (o.percentiles_given && !o.json && !o.telegraf);
    return r;
}

// Writes `content` to `path` so that a reader sees the old file or the new one, never a part:
// a temporary file in the same directory, fsync, rename. Returns an error message, "" on success.
inline std::string write_file_atomic(const std::string& path, const std::string& content)
{
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) return "cannot create '" + tmp + "': " + std::strerror(errno);
    bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
    ok = std::fflush(f) == 0 && ok;
    ok = ::fsync(::fileno(f)) == 0 && ok;
    const int saved = errno;
    ok = std::fclose(f) == 0 && ok;
    if (!ok) {
        std::remove(tmp.c_str());
        return "cannot write '" + tmp + "': " + std::strerror(saved);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string err = std::strerror(errno);
        std::remove(tmp.c_str());
        return "cannot rename '" + tmp + "' to '" + path + "': " + err;
    }
    return {};
}

// The per-packet CSV, written as the test runs: every row is flushed to the kernel before the
// next packet is handled, so the file is complete up to the last packet however the run ends.
class per_packet_writer {
public:
    per_packet_writer() = default;
    per_packet_writer(const per_packet_writer&) = delete;
    per_packet_writer& operator=(const per_packet_writer&) = delete;
    ~per_packet_writer()
    {
        if (f_) std::fclose(f_);
    }

    // Returns an error message, "" on success. `tlvs`: the STAMP TLVs the probes carry (their
    // columns are added; none: the plain columns).
    std::string open(const std::string& path, const twamp::stamp_tlv_request& tlvs = {})
    {
        f_ = std::fopen(path.c_str(), "w");
        if (!f_) return "cannot open '" + path + "' for writing: " + std::strerror(errno);
        tlvs_ = tlvs;
        write(twamp::report::per_packet_header(tlvs_));
        return {};
    }
    bool is_open() const noexcept { return f_ != nullptr; }
    void reply(const twamp::reply_result& r) { write(twamp::report::per_packet_row(r, tlvs_)); }
    void lost(std::uint32_t seq, twamp::nanoseconds t1)
    {
        write(twamp::report::per_packet_lost_row(seq, t1, tlvs_));
    }
    bool failed() const noexcept { return failed_; }

private:
    void write(const std::string& row)
    {
        if (!f_ || row.empty()) return;
        if (std::fwrite(row.data(), 1, row.size(), f_) != row.size() || std::fflush(f_) != 0)
            failed_ = true;
    }
    std::FILE* f_ = nullptr;
    bool failed_ = false;
    twamp::stamp_tlv_request tlvs_{};
};

// One interval line on stdout, in the output mode's format.
inline void emit_interval(const twamp::interval_summary& b, const twamp::report::session_info& info,
                          const output_options& o, std::int64_t period_ns)
{
    std::string out;
    if (o.json) {
        auto j = twamp::report::interval_json(b, period_ns);
        j["type"] = "interval";
        out = j.dump() + "\n";
    } else if (o.telegraf) {
        out = twamp::report::influx_interval(b, info);
    } else {
        if (b.index == 0)
            out = "  Interval        Min RTT     Max RTT     Avg RTT     Jitter      Loss  "
                  "recv/sent\n";
        out += twamp::report::table_interval_row(b, period_ns);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
}

// The final report on stdout, then the --prometheus and --svg files. `intervals` are the closed
// interval bins (empty without --report-interval / --svg). Returns false when a file could not
// be written (the message is on stderr); the stdout report is printed regardless.
// When nothing came back, say why where we know it, on stderr whatever the output format.
inline void report_no_reply(const twamp::session_stats& st)
{
    if (st.received > 0 || st.late > 0) return;
    if (st.icmp_unreachable)
        std::fprintf(stderr,
                     "twamp: no reply; %llu ICMP destination-unreachable errors came back for "
                     "the probes (is a reflector listening at that address and port?)\n",
                     static_cast<unsigned long long>(st.icmp_unreachable));
    else if (st.sent > 0)
        std::fprintf(stderr, "twamp: no reply to any of the %llu probes sent\n",
                     static_cast<unsigned long long>(st.sent));
}

inline bool emit_report(const twamp::session_stats& st, const twamp::report::session_info& info,
                        const output_options& o,
                        const std::vector<twamp::interval_summary>& intervals = {})
{
    const auto ro = report_options_of(o);
    std::string out;
    if (o.json) {
        auto j = twamp::report::to_json(st, info, ro, intervals);
        // With interval lines before it, stdout stays JSON Lines: one object per line.
        out = (o.report_interval_s > 0 ? j.dump() : j.dump(2)) + "\n";
    } else if (o.telegraf) {
        out = twamp::report::influx(st, info, ro);
    } else if (ro.extended) {
        out = twamp::report::table_extended(st, info, ro);
    } else {
        out = twamp::report::table(st, info);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);

    bool ok = true;
    if (!o.prometheus.empty()) {
        const auto err = write_file_atomic(o.prometheus, twamp::report::prometheus(st, info, ro));
        if (!err.empty()) {
            std::fprintf(stderr, "twamp: --prometheus: %s\n", err.c_str());
            ok = false;
        }
    }
    if (!o.svg.empty()) {
        const auto err = write_file_atomic(
            o.svg, twamp::report::svg_chart(intervals, info.report_interval_ns, info));
        if (!err.empty()) {
            std::fprintf(stderr, "twamp: --svg: %s\n", err.c_str());
            ok = false;
        }
    }
    return ok;
}

} // namespace twamp_cli
