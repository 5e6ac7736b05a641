#include "twamp/stats.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <ostream>

using twamp::delay_stats;

TEST_CASE("RFC 3550 jitter against a hand-computed sequence")
{
    // Delays (ns): 100, 120, 110, 150, 150.
    // |D|: 20, 10, 40, 0.
    // J: 0 -> 20/16 = 1.25 -> 1.25 + (10 - 1.25)/16 = 1.796875
    //   -> 1.796875 + (40 - 1.796875)/16 = 4.1845703125 -> 4.1845703125 - 4.1845703125/16
    //   = 3.92303466796875 (all exact in binary floating point)
    delay_stats d;
    for (std::int64_t v : {100, 120, 110, 150, 150})
        d.add(v);
    CHECK(d.jitter() == doctest::Approx(3.92303466796875).epsilon(1e-12));
    CHECK(d.min() == 100);
    CHECK(d.max() == 150);
    CHECK(d.mean() == doctest::Approx(126.0));
    CHECK(d.count() == 5);
    CHECK(d.negative() == 0);
}

TEST_CASE("jitter starts from 0 and a constant delay has none")
{
    delay_stats d;
    d.add(5000);
    CHECK(d.jitter() == 0.0);
    for (int i = 0; i < 100; ++i)
        d.add(5000);
    CHECK(d.jitter() == 0.0);
}

TEST_CASE("negative values are kept, not clamped")
{
    delay_stats d;
    d.add(-300);
    d.add(100);
    CHECK(d.min() == -300);
    CHECK(d.mean() == doctest::Approx(-100.0));
    CHECK(d.negative() == 1);
}

TEST_CASE("empty statistics read as zero")
{
    delay_stats d;
    CHECK(d.count() == 0);
    CHECK(d.min() == 0);
    CHECK(d.mean() == 0.0);
    twamp::session_stats s;
    CHECK(s.lost() == 0);
    CHECK(s.loss_pct() == 0.0);
    CHECK(s.inbound_lost() == 0);
}

TEST_CASE("large sums keep their precision")
{
    delay_stats d;
    // 2^15 samples of 2^40 and 2^40 + 1 ns in turn (about 18 minutes each): the sum, 2^55 + 2^14,
    // is past 2^53, where a double no longer holds every integer, so a double accumulator drifts
    // (adding 2^40 + 1 to it rounds). The mean is (2^40 + 2^40 + 1) / 2 = 2^40 + 0.5, a double
    // exactly; an accumulator that keeps every integer gives it exactly, so equality is checked.
    constexpr std::int64_t base = std::int64_t{1} << 40;
    for (int i = 0; i < (1 << 15); ++i)
        d.add(base + (i % 2));
    CHECK(d.count() == (1u << 15));
    CHECK(d.mean() == static_cast<double>(base) + 0.5);
}

TEST_CASE("standard deviation against a hand-computed population")
{
    // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population variance 4, stddev 2.
    delay_stats d;
    for (std::int64_t v : {2, 4, 4, 4, 5, 5, 7, 9})
        d.add(v);
    CHECK(d.stddev() == doctest::Approx(2.0));
    delay_stats one;
    one.add(7);
    CHECK(one.stddev() == 0.0);
}

TEST_CASE("merge of delay statistics equals adding every sample")
{
    delay_stats a, b, all;
    for (std::int64_t i = 0; i < 1000; ++i) {
        const std::int64_t v = (i * 7919) % 100'000 - 20'000; // some negative
        (i < 400 ? a : b).add(v);
        all.add(v);
    }
    delay_stats m = a;
    m.merge(b);
    CHECK(m.count() == all.count());
    CHECK(m.min() == all.min());
    CHECK(m.max() == all.max());
    CHECK(m.negative() == all.negative());
    CHECK(m.mean() == doctest::Approx(all.mean()));
    CHECK(m.stddev() == doctest::Approx(all.stddev()).epsilon(1e-9));
    CHECK(m.histogram() == all.histogram());
    for (double p : {1.0, 50.0, 99.9})
        CHECK(m.percentile(p) == all.percentile(p));
}

TEST_CASE("PDV is p99.9 minus the minimum; P95-P50 as perfSONAR prints it")
{
    // 1000 samples 1000..1999 ns: exact (width-1 buckets below 256, else within 0.4 %).
    delay_stats d;
    for (std::int64_t v = 1000; v < 2000; ++v)
        d.add(v);
    // p99.9 = the 999th value = 1998; min 1000.
    CHECK(d.pdv() == doctest::Approx(998.0).epsilon(0.01));
    // p95 = 1949, p50 = 1499.
    CHECK(d.p95_p50() == doctest::Approx(450.0).epsilon(0.02));
    delay_stats small;
    for (std::int64_t v : {10, 20, 30, 40, 100})
        small.add(v);
    CHECK(small.pdv() == 90.0); // p99.9 = 100 (exact), min 10
    CHECK(small.p95_p50() == 70.0);
}

TEST_CASE("reset keeps nothing but the storage")
{
    delay_stats d;
    for (std::int64_t v : {5, 6, 7})
        d.add(v);
    const auto bytes = d.histogram().memory_bytes();
    d.reset();
    CHECK(d.count() == 0);
    CHECK(d.percentile(50) == 0.0);
    CHECK(d.histogram().memory_bytes() == bytes);
    d.add(9);
    CHECK(d.min() == 9);
    CHECK(d.percentile(50) == 9.0);
}

TEST_CASE("session-level derived metrics: reordered ratio, clock state, error bound")
{
    twamp::session_stats s;
    CHECK(s.reordered_ratio() == 0.0);
    CHECK_FALSE(s.one_way_synchronized());
    s.received = 200;
    s.reordered = 5;
    CHECK(s.reordered_ratio() == doctest::Approx(0.025));
    s.sender_synchronized = true;
    s.reflector_synchronized = true;
    CHECK(s.one_way_synchronized());
    s.reflector_synchronized = false;
    CHECK_FALSE(s.one_way_synchronized());
    s.sender_error_s = 1e-6;
    s.reflector_error_s = 2e-6;
    CHECK(s.one_way_error_bound_s() == doctest::Approx(3e-6));
}

// Found by fuzz_sender (session 3): a reflector with wild clocks can send timestamps that give
// delays more than 2^63 ns apart; the jitter step used to subtract them in int64 (undefined
// behaviour; wrapped, it gave 4.6e17 instead of 6.9e17 here).
TEST_CASE("jitter of delays more than 2^63 ns apart: no overflow")
{
    delay_stats d;
    d.add(3714711551999990017);
    d.add(-7316936875103111936);
    const double step = 3714711551999990017.0 + 7316936875103111936.0;
    CHECK(d.jitter() == doctest::Approx(step / 16.0).epsilon(1e-12));
    CHECK(d.min() == -7316936875103111936);
    CHECK(d.max() == 3714711551999990017);
}
