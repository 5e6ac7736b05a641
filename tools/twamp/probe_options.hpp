// probe_options.hpp — what the sub-commands that send (or ask for) test packets share: the two
// addresses, the probe schedule and size flags (-c, -i, --timeout, --padding), the output flags,
// their checks, and the sender options they build.
#pragma once

#include "cli_common.hpp"
#include "output.hpp"

#include "twamp/asio/sender.hpp"
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

} // namespace twamp_cli
