#include "twamp/timestamp.hpp"

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through operator<<

#include <random>

using namespace twamp;
using std::chrono::nanoseconds;

namespace {
constexpr std::int64_t kEra1StartUnix = kNtpEraSeconds - kNtpUnixOffset; // 2036-02-07 06:28:16 UTC
nanoseconds sec(std::int64_t s, std::int64_t ns = 0)
{
    return nanoseconds{s * kNsPerSec + ns};
}
} // namespace

TEST_CASE("NTP: the Unix epoch and whole seconds")
{
    CHECK(to_ntp(nanoseconds{0}) == ntp_timestamp{2208988800u, 0});
    CHECK(to_ntp(sec(1)) == ntp_timestamp{2208988801u, 0});
    CHECK(from_ntp(ntp_timestamp{2208988800u, 0}) == nanoseconds{0});
    CHECK(ntp_timestamp::from_u64(0x83AA7E8080000000ull) ==
          ntp_timestamp{0x83AA7E80u, 0x80000000u});
    CHECK(ntp_timestamp{0x83AA7E80u, 0x80000000u}.to_u64() == 0x83AA7E8080000000ull);
    // Half a second is exactly 2^31 in the fraction.
    CHECK(to_ntp(sec(0, 500'000'000)).fraction == 0x80000000u);
}

TEST_CASE("NTP: fraction rounding in both directions")
{
    // 1 ns = 4.294967296 units: rounds down to 4; 4 units = 0.93 ns: rounds up to 1.
    CHECK(to_ntp(nanoseconds{1}).fraction == 4u);
    CHECK(ntp_fraction_to_ns(4) == 1);
    // 999999999 ns = 4294967291.7 units: rounds up to 0xFFFFFFFC, no carry into the seconds.
    CHECK(to_ntp(sec(0, 999'999'999)) == ntp_timestamp{2208988800u, 0xFFFFFFFCu});
    // The largest fraction is 0.99999999977 s: rounds to a whole second, carried.
    CHECK(ntp_fraction_to_ns(0xFFFFFFFFu) == kNsPerSec);
    CHECK(from_ntp(ntp_timestamp{2208988800u, 0xFFFFFFFFu}) == sec(1));
    // Just under half a nanosecond rounds down, just over rounds up.
    CHECK(ntp_fraction_to_ns(2) == 0); // 0.47 ns
    CHECK(ntp_fraction_to_ns(3) == 1); // 0.70 ns
}

TEST_CASE("NTP: ns -> NTP -> ns is exact across both eras")
{
    std::mt19937_64 rng(12345);
    // 1970 .. 2100, nanosecond resolution.
    std::uniform_int_distribution<std::int64_t> dist(0, std::int64_t{4'102'444'800} * kNsPerSec);
    for (int i = 0; i < 200'000; ++i) {
        const nanoseconds t{dist(rng)};
        REQUIRE(from_ntp(to_ntp(t)) == t);
        REQUIRE(from_ntp(to_ntp(t), t + std::chrono::hours{24 * 365 * 50}) == t);
    }
    // Before 1970 (1968..1970, still era 0 by the RFC 4330 rule).
    for (std::int64_t s : {-1LL, -86400LL, -61'000'000LL}) { // era 0 reaches back to 1968-01-20
        const nanoseconds t = sec(s, 123'456'789);
        CHECK(from_ntp(to_ntp(t)) == t);
    }
}

TEST_CASE("NTP: the 2036 era boundary")
{
    const nanoseconds last = sec(kEra1StartUnix - 1, 999'999'999);
    const nanoseconds first = sec(kEra1StartUnix);
    CHECK(to_ntp(last).seconds == 0xFFFFFFFFu);
    CHECK(to_ntp(first) == ntp_timestamp{0, 0});
    CHECK(from_ntp(to_ntp(last)) == last);
    CHECK(from_ntp(to_ntp(first)) == first);
    // With a reference on the other side of the boundary, the nearest era still wins.
    CHECK(from_ntp(to_ntp(last), first) == last);
    CHECK(from_ntp(to_ntp(first), last) == first);
    // A reference in era 0 far from the boundary puts small values in era 1 only when closer.
    CHECK(from_ntp(ntp_timestamp{10, 0}, sec(1'700'000'000)) == sec(kEra1StartUnix + 10));
    CHECK(from_ntp(ntp_timestamp{0xF0000000u, 0}, sec(kEra1StartUnix + 100)) ==
          sec(0xF0000000LL - kNtpUnixOffset));
}

TEST_CASE("PTPv2 truncated timestamps")
{
    const nanoseconds t = sec(1'700'000'000, 123'456'789);
    const std::uint64_t w = to_ptp_truncated(t);
    CHECK((w >> 32) == 1'700'000'000u + kTaiUtcOffsetSeconds);
    CHECK((w & 0xFFFFFFFFu) == 123'456'789u);
    CHECK(from_ptp_truncated(w) == t);
    CHECK(wire_to_ns(w, true, t) == t);
    CHECK(wire_to_ns(to_ntp(t).to_u64(), false, t) == t);
    // Nanoseconds beyond 10^9 are not valid; they clamp instead of spilling into seconds.
    CHECK(from_ptp_truncated((std::uint64_t{100} << 32) | 0xFFFFFFFFu) ==
          sec(100 - kTaiUtcOffsetSeconds, 999'999'999));
}

TEST_CASE("Error Estimate: bit layout")
{
    CHECK(error_estimate{true, false, 0x3F, 0xFF}.encode() == 0xBFFF);
    CHECK(error_estimate{false, false, 0x3F, 0xFF}.encode() == 0x3FFF);
    CHECK(error_estimate{false, true, 0, 1}.encode() == 0x4001);
    CHECK(error_estimate{true, true, 0x2A, 0x55}.encode() == 0xEA55);
    const auto e = error_estimate::decode(0xEA55);
    CHECK(e.synchronized);
    CHECK(e.ptp);
    CHECK(e.scale == 0x2A);
    CHECK(e.multiplier == 0x55);
    CHECK(error_estimate::decode(0x0001).valid());
    CHECK_FALSE(error_estimate::decode(0x8100).valid()); // multiplier 0
    // The scale field is 6 bits: a larger value must not leak into S/Z.
    CHECK(error_estimate{false, false, 0xFF, 1}.encode() == 0x3F01);
}

TEST_CASE("Error Estimate: from seconds picks the tightest bound, never multiplier 0")
{
    // 1 µs: 4294.97 units at scale 0; scale 5 gives 134.2 -> 135 (scale 4 would need 269).
    auto e = error_estimate::from_seconds(1e-6, true);
    CHECK(e.synchronized);
    CHECK(e.scale == 5);
    CHECK(e.multiplier == 135);
    CHECK(e.seconds() >= 1e-6);
    CHECK(e.seconds() < 1e-6 * 1.01);
    // 1 s: 2^32 units; scale 25 gives 128.
    e = error_estimate::from_seconds(1.0, false);
    CHECK_FALSE(e.synchronized);
    CHECK(e.scale == 25);
    CHECK(e.multiplier == 128);
    CHECK(e.seconds() == doctest::Approx(1.0));
    // Tiny, zero, negative and NaN: the smallest valid estimate.
    for (double v : {1e-30, 0.0, -5.0, std::nan("")}) {
        e = error_estimate::from_seconds(v, true);
        CHECK(e.multiplier >= 1);
        CHECK(e.valid());
    }
    // Beyond the range: saturates.
    e = error_estimate::from_seconds(1e15, false);
    CHECK(e.scale == 63);
    CHECK(e.multiplier == 255);
    // Round trip through the wire.
    const auto w = error_estimate::from_seconds(0.0123, true);
    CHECK(error_estimate::decode(w.encode()) == w);
}
