// Tests for twamp/asio/clock.hpp: the wall clock against std::chrono::system_clock, and the
// Error Estimate chosen for each kernel clock state (RFC 4656 4.1.2), checked against the
// format's definition (error = Multiplier * 2^(Scale - 32) s, at least the kernel's figure, and
// the smallest such) rather than against the code's own formula.
#include "twamp/asio/clock.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <ostream>

using twamp::error_estimate;
using twamp::net::clock_state;
using twamp::net::error_estimate_from;

namespace {

// The error an estimate claims, from the field definition alone.
double claimed(error_estimate e)
{
    return double(e.multiplier) * std::pow(2.0, int(e.scale) - 32);
}

// "The smallest estimate that is at least err": no estimate with a smaller (scale, multiplier)
// claim covers err. Checked by looking at every encodable estimate below the chosen one.
bool smallest_covering(error_estimate e, double err)
{
    if (claimed(e) < err) return false;
    for (int scale = 0; scale <= 63; ++scale)
        for (int m = 1; m <= 255; ++m) {
            const double c = double(m) * std::pow(2.0, scale - 32);
            if (c >= err && c < claimed(e)) return false;
        }
    return true;
}

} // namespace

TEST_CASE("realtime_now reads the same clock as std::chrono::system_clock")
{
    using namespace std::chrono;
    for (int i = 0; i < 100; ++i) {
        const auto a = duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
        const auto r = twamp::net::realtime_now().count();
        const auto b = duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
        REQUIRE(a <= r);
        REQUIRE(r <= b);
    }
    // Some time after 2020-01-01 (1577836800 s): nanoseconds since 1970, not since boot.
    CHECK(twamp::net::realtime_now().count() > 1'577'836'800LL * 1'000'000'000LL);
}

TEST_CASE("error estimate: synchronised clock with an estimated error")
{
    const clock_state st{true, 0.002, 0.5};
    const auto e = error_estimate_from(st);
    CHECK(e.synchronized);
    CHECK_FALSE(e.ptp);
    CHECK(e.valid());
    CHECK(smallest_covering(e, 0.002)); // the estimate (2 ms), not the maximum error (0.5 s)
    CHECK(claimed(e) < 0.002 * (1 + 1.0 / 128));
}

TEST_CASE("error estimate: no estimate kept falls back to the maximum error")
{
    const auto e = error_estimate_from(clock_state{true, 0.0, 0.25});
    CHECK(e.synchronized);
    CHECK(smallest_covering(e, 0.25));
    CHECK(claimed(e) == 0.25); // 2^-2 s is exactly representable: 128 * 2^(23 - 32)
}

TEST_CASE("error estimate: unsynchronised with no figure claims 1 s; S stays clear")
{
    const auto e = error_estimate_from(clock_state{false, 0.0, 0.0});
    CHECK_FALSE(e.synchronized);
    CHECK(e.valid());
    CHECK(claimed(e) == 1.0);
    CHECK(smallest_covering(e, 1.0));
    // Unsynchronised but with a figure: the figure is used, S still clear.
    const auto f = error_estimate_from(clock_state{false, 0.0, 16.0});
    CHECK_FALSE(f.synchronized);
    CHECK(smallest_covering(f, 16.0));
}

TEST_CASE("error estimate: synchronised with no figure claims the kernel's resolution (1 us)")
{
    const auto e = error_estimate_from(clock_state{true, 0.0, 0.0});
    CHECK(e.synchronized);
    CHECK(e.valid()); // never multiplier 0 (RFC 4656 4.1.2: 0 means invalid)
    CHECK(smallest_covering(e, 1e-6));
}

TEST_CASE("error estimate: the Z flag for PTP timestamps, and the wire encoding")
{
    const auto e = error_estimate_from(clock_state{true, 0.002, 0.0}, true);
    CHECK(e.ptp);
    const std::uint16_t w = e.encode();
    CHECK((w & 0x8000) != 0); // S
    CHECK((w & 0x4000) != 0); // Z
    CHECK(((w >> 8) & 0x3F) == e.scale);
    CHECK((w & 0xFF) == e.multiplier);
}

TEST_CASE("the kernel's clock state is read as non-negative figures")
{
    const auto st = twamp::net::read_clock_state();
    CHECK(st.est_error_s >= 0);
    CHECK(st.max_error_s >= 0);
    CHECK(std::isfinite(st.est_error_s));
    CHECK(std::isfinite(st.max_error_s));
    const auto e = twamp::net::system_error_estimate();
    CHECK(e.valid());
    CHECK(e.synchronized == st.synchronized);
}
