// twamp/report/info.hpp — what a report says about the session besides its statistics, and the
// reader's choices (percentiles, extended output).
#pragma once

#include "twamp/timestamp_source.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace twamp::report {

struct session_info {
    std::string mode = "twamp-light"; // "twamp-light", "stamp" or "twamp"
    std::string sender_address;
    std::uint16_t sender_port = 0;
    std::string reflector_address;
    std::uint16_t reflector_port = 0;
    std::uint16_t ssid = 0; // STAMP only
    std::uint32_t scheduled =
        0; // probes whose send time came (the requested count unless interrupted)
    std::uint32_t requested = 0;           // probes asked for (-c); 0 = same as scheduled
    std::uint64_t skipped = 0;             // scheduled but not sent (the socket refused them)
    std::string distribution = "periodic"; // "periodic" (RFC 3432) or "poisson" (RFC 2330)
    std::int64_t interval_ns = 0;          // the (mean) interval between probes; 0 = unknown
    std::uint64_t seed = 0;                // Poisson generator seed
    std::int64_t report_interval_ns = 0;   // width of the per-interval bins; 0 = none
    bool interrupted = false;              // stopped early by a signal
    // How well the sender kept its schedule (send_pacing below); unknown when `pacing_known` is
    // false (a report built from statistics alone).
    bool pacing_known = false;
    double achieved_pps = 0;        // probes sent / (last send - first send)
    double pacing_error_p50_ns = 0; // |actual (T1 read) - scheduled| send time, median
    double pacing_error_p99_ns = 0; // 99th percentile
    double pacing_error_max_ns = 0; // largest
    std::int64_t end_time_ns = 0;   // Unix-epoch ns when the report was made (Influx timestamp)
    // Where T1-T4 came from (kernel send timestamps); unknown when `timestamps_known` is false.
    bool timestamps_known = false;
    std::string timestamping_requested = "user"; // auto, hardware, software or user
    std::string timestamping_enabled = "user";   // what the socket gives for T1
    std::string timestamping_note;               // why less than asked ("" = as asked)
    timestamp_source_counts timestamp_sources{}; // per in-time sample, for each of T1..T4
    std::uint64_t t1_kernel_stamps = 0;          // probes with a kernel send time
    double t1_kernel_minus_user_p50_ns = 0;      // kernel T1 - user-space T1, median
    double t1_kernel_minus_user_p99_ns = 0;
    double t1_kernel_minus_user_max_ns = 0;
    std::uint64_t t1_stamps_after_reply = 0; // stamps read after the reply (user T1 kept)
    std::uint64_t t1_stamps_missing = 0;     // probes sent whose stamp never came or was refused
};

struct report_options {
    std::vector<double> percentiles{50, 90, 95, 99, 99.9}; // percent, 0-100
    bool extended = false; // table: percentiles, IPDV, PDV, reordering, clocks, schedule
};

// "99.9" -> "99.9", "50" -> "50": a percentile as a label (no trailing zeros).
inline std::string percentile_label(double p)
{
    std::string s = std::to_string(p);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

} // namespace twamp::report
