// probe_options.hpp — what the sub-commands that send (or ask for) test packets share: the two
// addresses, the probe schedule and size flags (-c, -i, --timeout, --padding), the output flags,
// their checks, and the sender options they build.
#pragma once

#include "cli_common.hpp"
#include "output.hpp"

#include "twamp/asio/sender.hpp"
#include "twamp/asio/tx_timestamps.hpp"
#include "twamp/imix.hpp"

#include <optional>
#include <string>
#include <vector>

namespace twamp_cli {

struct probe_cli_options {
    double interval_ms = 100;
    long long count = 100;
    double timeout_s = 5;
    bool count_given = false;
};

// The options of `sender`, `controller` and `controlclient` before their own.
struct test_cli_options {
    common_options common;
    std::string far_end = "127.0.0.1:20001";
    std::string near_end = ":20000";
    bool near_end_given = false; // false: twampy's default port, with a fallback when busy
    probe_cli_options probes;
    output_options output;
};

// The near end's positional: given, it is used as given; the default port falls back to an
// ephemeral one when busy (as twampy's).
inline void add_near_end(CLI::App* sc, test_cli_options& o, const std::string& name,
                         const std::string& help)
{
    sc->add_option(name, o.near_end, help)->capture_default_str()->each([&o](const std::string&) {
        o.near_end_given = true;
    });
}

// -c shows its default the CLI11 way (sender) or in its text (controller, controlclient).
inline void add_probe_options(CLI::App* sc, probe_cli_options& p, bool show_count_default)
{
    sc->add_option("-i,--interval", p.interval_ms,
                   "Interval between probes, ms (fractions allowed)")
        ->capture_default_str()
        ->check(above(0.0, 3.6e6, "milliseconds, > 0"));
    auto* count =
        sc->add_option("-c,--count", p.count,
                       show_count_default ? "Number of probes" : "Number of probes (default 100)")
            ->check(in_range(1LL, 0xFFFFFFFFLL, "1-4294967295"))
            ->each([&p](const std::string&) { p.count_given = true; });
    if (show_count_default) count->capture_default_str();
    sc->add_option("--timeout", p.timeout_s, "Per-probe loss timeout, seconds")
        ->capture_default_str()
        ->check(above(0.0, 3600.0, "seconds, > 0, at most 3600"));
}

// --padding against the packet format: -1 (IMIX) or 0 up to what fits the largest test packet.
inline void check_padding(const std::optional<int>& padding, twamp::test_format format)
{
    if (!padding || *padding == -1) return;
    const auto room = twamp::kMaxTestPacketLen - twamp::sender_base_len(format);
    if (*padding < 0 || static_cast<std::size_t>(*padding) > room)
        throw usage_error("--padding: invalid value " + std::to_string(*padding) + " (-1, or 0-" +
                          std::to_string(room) + ")");
}

// The probe sizes: IMIX for the IP version in use, or the base packet plus the padding (27 for
// TWAMP as twampy pads, none for STAMP).
inline std::vector<std::size_t> probe_sizes(const std::optional<int>& padding,
                                            twamp::test_format format, int ip_version)
{
    if (padding && *padding == -1) return twamp::imix_sizes(ip_version, format);
    const int pad = padding ? *padding : (format == twamp::test_format::stamp ? 0 : 27);
    return {twamp::sender_base_len(format) + static_cast<std::size_t>(pad)};
}

// Fills the sender template from checked flags: socket options, count, interval, timeout and the
// probe sizes.
inline void fill_sender_options(const common_options& common, const probe_cli_options& p,
                                twamp::test_format format, int ip_version,
                                twamp::net::sender_options& so)
{
    so.sock = socket_options_from(common);
    so.count = static_cast<std::uint32_t>(p.count);
    so.interval = std::chrono::nanoseconds{static_cast<std::int64_t>(p.interval_ms * 1e6)};
    so.core.format = format;
    so.core.timeout = std::chrono::nanoseconds{static_cast<std::int64_t>(p.timeout_s * 1e9)};
    so.sizes = probe_sizes(common.padding, format, ip_version);
}

// --timestamping auto|hardware|software|user: which clock takes the send times (tx_timestamps.hpp).
inline void add_timestamping_option(CLI::App* sc, std::string& mode, const std::string& help)
{
    sc->add_option("--timestamping", mode, help)
        ->capture_default_str()
        ->check(text_check(
            [](const std::string& s) { return twamp::net::parse_timestamping_mode(s).has_value(); },
            "invalid value", "auto, hardware, software or user"));
}

// The mode of a checked --timestamping value.
inline twamp::net::timestamping_mode timestamping_mode_of(const std::string& s)
{
    return twamp::net::parse_timestamping_mode(s).value_or(
        twamp::net::timestamping_mode::automatic);
}

// What a socket enabled against what was asked: an explicit hardware or software request the
// host cannot meet is a run-time error (exit 3); auto says at info level what it settled on.
inline void check_timestamping(const twamp::net::tx_timestamping& ts, const std::string& who)
{
    const std::string asked = twamp::net::to_string(ts.requested);
    if (ts.unmet()) throw run_failure(who + ": --timestamping " + asked + ": " + ts.note);
    g_log.log(logger::info, "send timestamps: %s (asked %s)%s%s", twamp::net::to_string(ts.enabled),
              asked.c_str(), ts.note.empty() ? "" : "; ", ts.note.c_str());
}

// The report's view of the timestamps: where T1-T4 came from and kernel vs user-space T1.
inline void add_timestamp_facts(twamp::report::session_info& info,
                                const twamp::net::udp_sender& sender)
{
    const auto& ts = sender.timestamping();
    info.timestamps_known = true;
    info.timestamping_requested = twamp::net::to_string(ts.requested);
    info.timestamping_enabled = twamp::net::to_string(ts.enabled);
    info.timestamping_note = ts.note;
    info.timestamp_sources = sender.session().timestamp_sources();
    const auto& d = sender.session().t1_kernel_minus_user();
    info.t1_kernel_stamps = d.count();
    if (d.count()) {
        info.t1_kernel_minus_user_p50_ns = d.percentile(50);
        info.t1_kernel_minus_user_p99_ns = d.percentile(99);
        info.t1_kernel_minus_user_max_ns = static_cast<double>(d.max());
    }
    info.t1_stamps_after_reply = sender.session().stamps_after_reply();
    const auto& c = sender.tx_stamp_counters();
    info.t1_stamps_missing = c.sent - c.matched;
}

} // namespace twamp_cli
