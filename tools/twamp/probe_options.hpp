// probe_options.hpp — the probe schedule and size flags (-c, -i, --timeout, --padding) as the
// controller and controlclient take them, and their checks.
#pragma once

#include "cli_common.hpp"

#include "twamp/asio/sender.hpp"
#include "twamp/imix.hpp"

#include <string>

namespace twamp_cli {

struct probe_cli_options {
    double interval_ms = 100;
    long long count = 100;
    double timeout_s = 5;
    bool count_given = false;
};

inline void add_probe_options(CLI::App* sc, probe_cli_options& p)
{
    sc->add_option("-i,--interval", p.interval_ms,
                   "Interval between probes, ms (fractions allowed)")
        ->capture_default_str();
    sc->add_option_function<long long>(
        "-c,--count",
        [&p](const long long& v) {
            p.count = v;
            p.count_given = true;
        },
        "Number of probes (default 100)");
    sc->add_option("--timeout", p.timeout_s, "Per-probe loss timeout, seconds")
        ->capture_default_str();
}

// Checks the flags and fills the sender template: socket options, count, interval, timeout and
// the probe sizes (fixed padding or IMIX for the IP version in use).
inline void fill_sender_options(const common_options& common, const probe_cli_options& p,
                                twamp::test_format format, int ip_version,
                                twamp::net::sender_options& so)
{
    if (!(p.interval_ms > 0) || p.interval_ms > 3.6e6)
        throw usage_error("--interval: invalid value " + num(p.interval_ms) +
                          " (milliseconds, > 0)");
    if (p.count < 1 || p.count > 0xFFFFFFFFLL)
        throw usage_error("--count: invalid value " + std::to_string(p.count) + " (1-4294967295)");
    if (!(p.timeout_s > 0) || p.timeout_s > 3600)
        throw usage_error("--timeout: invalid value " + num(p.timeout_s) +
                          " (seconds, > 0, at most 3600)");
    so.sock = socket_options_from(common);
    so.count = static_cast<std::uint32_t>(p.count);
    so.interval = std::chrono::nanoseconds{static_cast<std::int64_t>(p.interval_ms * 1e6)};
    so.core.format = format;
    so.core.timeout = std::chrono::nanoseconds{static_cast<std::int64_t>(p.timeout_s * 1e9)};
    const auto base = twamp::sender_base_len(format);
    if (common.padding && *common.padding == -1) {
        so.sizes = twamp::imix_sizes(ip_version, format);
        return;
    }
    const int pad =
        common.padding ? *common.padding : (format == twamp::test_format::stamp ? 0 : 27);
    if (pad < 0 || static_cast<std::size_t>(pad) > twamp::kMaxTestPacketLen - base)
        throw usage_error("--padding: invalid value " + std::to_string(pad) + " (-1, or 0-" +
                          std::to_string(twamp::kMaxTestPacketLen - base) + ")");
    so.sizes = {base + static_cast<std::size_t>(pad)};
}

} // namespace twamp_cli
