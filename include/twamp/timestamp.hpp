// twamp/timestamp.hpp — NTP 64-bit timestamps, the PTPv2 truncated format and the Error Estimate.
//
// RFC 4656 §4.1.2 (timestamp and Error Estimate), RFC 5905 §6 (NTP eras), RFC 8186 (PTPv2 format,
// the Z bit). Inside the library time is an integer count of nanoseconds since the Unix epoch
// (UTC); the NTP form exists only at the wire. Conversions round to nearest in both directions,
// which makes ns -> NTP -> ns exact (the NTP unit, 2^-32 s, is smaller than half a nanosecond).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>

namespace twamp {

using nanoseconds = std::chrono::nanoseconds;

inline constexpr std::int64_t kNsPerSec = 1'000'000'000;
// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
inline constexpr std::int64_t kNtpUnixOffset = 2'208'988'800;
// Seconds in one NTP era (the 32-bit seconds field wraps on 2036-02-07 06:28:16 UTC).
inline constexpr std::int64_t kNtpEraSeconds = std::int64_t{1} << 32;
// TAI - UTC since 2017-01-01; the PTPv2 timescale is TAI.
inline constexpr std::int64_t kTaiUtcOffsetSeconds = 37;

struct ntp_timestamp {
    std::uint32_t seconds = 0;
    std::uint32_t fraction = 0;

    constexpr std::uint64_t to_u64() const noexcept
    {
        return (std::uint64_t{seconds} << 32) | fraction;
    }
    static constexpr ntp_timestamp from_u64(std::uint64_t v) noexcept
    {
        return {static_cast<std::uint32_t>(v >> 32), static_cast<std::uint32_t>(v)};
    }
    friend constexpr bool operator==(ntp_timestamp, ntp_timestamp) = default;
};

namespace detail {
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept
{
    std::int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
} // namespace detail

// Unix-epoch nanoseconds to NTP. The era number is dropped (the wire has none); times before
// 1900 are clamped to 0 and reported through the return value of the checked overload below.
constexpr ntp_timestamp to_ntp(nanoseconds since_unix) noexcept
{
    const std::int64_t ns = since_unix.count();
    const std::int64_t sec = detail::floor_div(ns, kNsPerSec);
    const auto sub = static_cast<std::uint64_t>(ns - sec * kNsPerSec); // 0 .. 1e9-1
    // round(sub * 2^32 / 1e9); the largest value, 999999999, maps to 0xFFFFFFFC, so no carry.
    const std::uint64_t frac = ((sub << 32) + kNsPerSec / 2) / kNsPerSec;
    const std::int64_t ntp_sec = sec + kNtpUnixOffset;
    return {static_cast<std::uint32_t>(static_cast<std::uint64_t>(ntp_sec)),
            static_cast<std::uint32_t>(frac)};
}

// The NTP fraction as nanoseconds, rounded to nearest; may return 1e9 (carry into seconds).
constexpr std::int64_t ntp_fraction_to_ns(std::uint32_t fraction) noexcept
{
    return static_cast<std::int64_t>(
        (std::uint64_t{fraction} * static_cast<std::uint64_t>(kNsPerSec) +
         (std::uint64_t{1} << 31)) >>
        32);
}

// NTP to Unix-epoch nanoseconds, choosing the era whose result lies closest to `reference`
// (within ±68 years). Use the time of reception as the reference when one is at hand.
constexpr nanoseconds from_ntp(ntp_timestamp ts, nanoseconds reference) noexcept
{
    const std::int64_t ref_ntp_sec =
        detail::floor_div(reference.count(), kNsPerSec) + kNtpUnixOffset;
    const std::int64_t era = detail::floor_div(ref_ntp_sec, kNtpEraSeconds);
    std::int64_t best = era * kNtpEraSeconds + ts.seconds;
    // Move by one era if that lands nearer the reference.
    if (best - ref_ntp_sec > kNtpEraSeconds / 2)
        best -= kNtpEraSeconds;
    else if (ref_ntp_sec - best > kNtpEraSeconds / 2)
        best += kNtpEraSeconds;
    return nanoseconds{(best - kNtpUnixOffset) * kNsPerSec + ntp_fraction_to_ns(ts.fraction)};
}

// NTP to Unix-epoch nanoseconds without a reference: values with the top bit of the seconds set
// are era 0 (1968–2036), the others era 1 (2036–2104), as RFC 4330 §3 suggests.
constexpr nanoseconds from_ntp(ntp_timestamp ts) noexcept
{
    const std::int64_t era = (ts.seconds & 0x8000'0000u) ? 0 : 1;
    const std::int64_t ntp_sec = era * kNtpEraSeconds + ts.seconds;
    return nanoseconds{(ntp_sec - kNtpUnixOffset) * kNsPerSec + ntp_fraction_to_ns(ts.fraction)};
}

// PTPv2 truncated timestamp (RFC 8186): 32-bit TAI seconds since 1970 and 32-bit nanoseconds.
constexpr std::uint64_t to_ptp_truncated(nanoseconds since_unix) noexcept
{
    const std::int64_t ns = since_unix.count();
    const std::int64_t sec = detail::floor_div(ns, kNsPerSec) + kTaiUtcOffsetSeconds;
    const std::int64_t sub = ns - detail::floor_div(ns, kNsPerSec) * kNsPerSec;
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(sec)) << 32) |
           static_cast<std::uint32_t>(sub);
}
constexpr nanoseconds from_ptp_truncated(std::uint64_t v) noexcept
{
    const auto sec = static_cast<std::int64_t>(v >> 32) - kTaiUtcOffsetSeconds;
    auto sub = static_cast<std::int64_t>(v & 0xFFFF'FFFFu);
    if (sub >= kNsPerSec) sub = kNsPerSec - 1; // out-of-range nanoseconds: clamp, do not wrap
    return nanoseconds{sec * kNsPerSec + sub};
}

// Decodes an 8-octet wire timestamp in the format the Z bit names.
constexpr nanoseconds wire_to_ns(std::uint64_t wire, bool ptp, nanoseconds reference) noexcept
{
    return ptp ? from_ptp_truncated(wire) : from_ntp(ntp_timestamp::from_u64(wire), reference);
}

// Error Estimate (RFC 4656 §4.1.2; Z bit from RFC 8186):
//   S(1) Z(1) Scale(6) Multiplier(8); error = Multiplier * 2^(Scale-32) seconds.
struct error_estimate {
    bool synchronized = false;   // S: clock synchronised to UTC by an external source
    bool ptp = false;            // Z: timestamps in PTPv2 truncated format
    std::uint8_t scale = 0;      // 0..63
    std::uint8_t multiplier = 1; // never 0 when sending

    static constexpr std::uint16_t kS = 0x8000;
    static constexpr std::uint16_t kZ = 0x4000;

    constexpr std::uint16_t encode() const noexcept
    {
        return static_cast<std::uint16_t>((synchronized ? kS : 0) | (ptp ? kZ : 0) |
                                          ((scale & 0x3F) << 8) | multiplier);
    }
    static constexpr error_estimate decode(std::uint16_t v) noexcept
    {
        return {(v & kS) != 0, (v & kZ) != 0, static_cast<std::uint8_t>((v >> 8) & 0x3F),
                static_cast<std::uint8_t>(v & 0xFF)};
    }
    // Multiplier 0 means the estimate is not valid (RFC 4656 §4.1.2).
    constexpr bool valid() const noexcept { return multiplier != 0; }

    double seconds() const noexcept { return std::ldexp(double(multiplier), int(scale) - 32); }

    // The smallest (scale, multiplier) whose error is at least `err_seconds`; the multiplier is
    // always at least 1. Errors beyond the format's range saturate at scale 63, multiplier 255.
    static error_estimate from_seconds(double err_seconds, bool synced,
                                       bool ptp_format = false) noexcept
    {
        error_estimate e{synced, ptp_format, 0, 1};
        if (!(err_seconds > 0)) return e; // includes NaN
        for (int scale = 0; scale <= 63; ++scale) {
            const double m = std::ceil(std::ldexp(err_seconds, 32 - scale));
            if (m <= 255.0) {
                e.scale = static_cast<std::uint8_t>(scale);
                e.multiplier = static_cast<std::uint8_t>(m < 1.0 ? 1.0 : m);
                return e;
            }
        }
        e.scale = 63;
        e.multiplier = 255;
        return e;
    }

    friend constexpr bool operator==(error_estimate, error_estimate) = default;
};

} // namespace twamp
