// twamp/asio/clock.hpp — wall-clock time and the Error Estimate the kernel's clock state supports.
//
// RFC 4656 §4.1.2: S is set only when the clock is synchronised to UTC by an external source; the
// kernel knows (ntp_adjtime: TIME_ERROR / STA_UNSYNC). Scale and multiplier come from its estimated
// error (esterror, µs), falling back to the maximum error when no estimate is kept.
#pragma once

#include "twamp/timestamp.hpp"

#include <chrono>
#include <ctime>
#if defined(__linux__) || defined(__FreeBSD__)
#include <sys/timex.h>
#define TWAMP_HAVE_NTP_ADJTIME 1
#endif

namespace twamp::net {

// CLOCK_REALTIME as nanoseconds since the Unix epoch (what SO_TIMESTAMPNS also reports).
inline nanoseconds realtime_now() noexcept
{
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return nanoseconds{std::int64_t{ts.tv_sec} * kNsPerSec + ts.tv_nsec};
}

struct clock_state {
    bool synchronized = false;
    double est_error_s = 0; // the kernel's estimate, seconds
    double max_error_s = 0;
};

// Where the system has no ntp_adjtime (macOS), nothing is known: unsynchronised.
inline clock_state read_clock_state() noexcept
{
#ifndef TWAMP_HAVE_NTP_ADJTIME
    return {};
#else
    timex tx{};
    const int rc = ::ntp_adjtime(&tx);
    clock_state st;
    if (rc == -1) return st;
    st.synchronized = rc != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
    st.est_error_s = static_cast<double>(tx.esterror) * 1e-6;
    st.max_error_s = static_cast<double>(tx.maxerror) * 1e-6;
    return st;
#endif
}

// The estimate to send: derived from the kernel's error; never multiplier 0.
inline error_estimate error_estimate_from(const clock_state& st, bool ptp_format = false) noexcept
{
    double err = st.est_error_s > 0 ? st.est_error_s : st.max_error_s;
    if (!st.synchronized && !(err > 0)) err = 1.0; // unsynchronised, nothing known: claim 1 s
    if (!(err > 0)) err = 1e-6; // synchronised but no figure: the kernel's resolution
    return error_estimate::from_seconds(err, st.synchronized, ptp_format);
}

inline error_estimate system_error_estimate() noexcept
{
    return error_estimate_from(read_clock_state());
}

} // namespace twamp::net
