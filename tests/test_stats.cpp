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
    for (std::int64_t v : {100, 120, 110, 150, 150}) d.add(v);
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
    for (int i = 0; i < 100; ++i) d.add(5000);
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
    // 10 million samples of ~100 s: the sum (1e18 ns) still gives the exact mean.
    for (int i = 0; i < 1000; ++i) d.add(100'000'000'000 + (i % 2));
    CHECK(d.mean() == doctest::Approx(100'000'000'000.5));
}
