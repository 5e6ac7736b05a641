#include "twamp/histogram.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <vector>

using twamp::log_histogram;

namespace {
// Nearest rank, as log_histogram::percentile defines it.
double exact_percentile(std::vector<std::int64_t> v, double p)
{
    std::sort(v.begin(), v.end());
    if (p <= 0) return static_cast<double>(v.front());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    rank = std::clamp<std::size_t>(rank, 1, v.size());
    return static_cast<double>(v[rank - 1]);
}
double rel_err(double got, double want)
{
    return std::fabs(got - want) / std::max(std::fabs(want), 1.0);
}

const double kPercentiles[] = {0, 0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};
} // namespace

TEST_CASE("percentiles within 1 % of the exact sorted samples, 1 µs to 10 s")
{
    std::mt19937_64 rng(42);
    // Log-uniform over 1 µs..10 s, and three narrower shapes (normal, exponential, bimodal).
    std::vector<std::vector<std::int64_t>> sets(4);
    std::uniform_real_distribution<double> lu(std::log(1e3), std::log(1e10));
    std::normal_distribution<double> nd(250e3, 20e3);
    std::exponential_distribution<double> ed(1 / 5e6);
    for (int i = 0; i < 100000; ++i) {
        sets[0].push_back(static_cast<std::int64_t>(std::exp(lu(rng))));
        sets[1].push_back(std::max<std::int64_t>(1000, static_cast<std::int64_t>(nd(rng))));
        sets[2].push_back(1000 + static_cast<std::int64_t>(ed(rng)));
        sets[3].push_back(i % 3 ? 1500 + static_cast<std::int64_t>(rng() % 500)
                                : 8'000'000'000 + static_cast<std::int64_t>(rng() % 1'000'000'000));
    }
    for (const auto& set : sets) {
        log_histogram h;
        for (auto v : set)
            h.add(v);
        CHECK(h.count() == set.size());
        for (double p : kPercentiles) {
            const double want = exact_percentile(set, p);
            const double got = h.percentile(p);
            INFO("p" << p << " want " << want << " got " << got);
            CHECK(rel_err(got, want) <= 0.01);
            CHECK(rel_err(got, want) <= log_histogram::kMaxRelativeError + 1e-12);
        }
    }
}

TEST_CASE("every magnitude from 1 µs to 100 s lands within the error bound")
{
    // Walk the range geometrically; a single sample's median is the sample itself.
    for (double v = 1e3; v <= 100e9; v *= 1.0137) {
        log_histogram h;
        const auto x = static_cast<std::int64_t>(v);
        h.add(x);
        h.add(x + 1); // two samples so the clamp to [min, max] does not hide the bucket midpoint
        const double got = h.percentile(50);
        CHECK(rel_err(got, static_cast<double>(x)) <= 0.01);
        CHECK(h.overflow() == 0);
    }
}

TEST_CASE("negative values: the mirrored side keeps order and accuracy")
{
    std::vector<std::int64_t> v;
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<std::int64_t> d(-5'000'000, 3'000'000);
    log_histogram h;
    for (int i = 0; i < 50000; ++i) {
        v.push_back(d(rng));
        h.add(v.back());
    }
    for (double p : kPercentiles) {
        const double want = exact_percentile(v, p);
        const double got = h.percentile(p);
        INFO("p" << p << " want " << want << " got " << got);
        // Relative to the magnitude; values near 0 are exact (width-1 buckets).
        CHECK(std::fabs(got - want) <=
              std::max(1.0, std::fabs(want) * log_histogram::kMaxRelativeError));
    }
    CHECK(h.min() == *std::min_element(v.begin(), v.end()));
    log_histogram s;
    for (std::int64_t x : {-300, -200, -100, 0, 100})
        s.add(x);
    CHECK(s.percentile(20) == -300);
    CHECK(s.percentile(40) == -200);
    CHECK(s.percentile(60) == -100);
    CHECK(s.percentile(80) == 0);
    CHECK(s.percentile(100) == 100);
}

TEST_CASE("small values are exact and ranks follow the nearest-rank rule")
{
    log_histogram h;
    for (std::int64_t x = 1; x <= 100; ++x)
        h.add(x);
    CHECK(h.percentile(50) == 50);
    CHECK(h.percentile(99) == 99);
    CHECK(h.percentile(99.5) == 100);
    CHECK(h.percentile(0) == 1);
    CHECK(h.percentile(1) == 1);
    log_histogram e;
    CHECK(e.percentile(50) == 0.0);
}

TEST_CASE("merge equals inserting everything into one histogram")
{
    std::mt19937_64 rng(3);
    std::uniform_int_distribution<std::int64_t> d(-1'000'000, 50'000'000'000);
    log_histogram a, b, all;
    for (int i = 0; i < 20000; ++i) {
        const auto x = d(rng);
        (i % 3 ? a : b).add(x);
        all.add(x);
    }
    log_histogram m = a;
    m.merge(b);
    CHECK(m == all);
    for (double p : kPercentiles)
        CHECK(m.percentile(p) == all.percentile(p));
    log_histogram empty;
    empty.merge(all);
    CHECK(empty == all);
    all.merge(log_histogram{});
    CHECK(empty == all);
}

TEST_CASE("memory does not grow with the number of samples")
{
    log_histogram h;
    const auto before = h.memory_bytes();
    for (std::int64_t i = 0; i < 2'000'000; ++i)
        h.add((i * 7919) % 100'000'000'000 - 1000);
    CHECK(h.memory_bytes() == before);
    CHECK(before <= 80 * 1024);
    h.add(std::numeric_limits<std::int64_t>::max());
    h.add(std::numeric_limits<std::int64_t>::min() + 1);
    CHECK(h.overflow() == 2);
    CHECK(h.percentile(100) == static_cast<double>(std::numeric_limits<std::int64_t>::max()));
    CHECK(h.memory_bytes() == before);
}

TEST_CASE("bucket boundaries: widths never exceed 1/128 of the lower bound")
{
    for (std::size_t i = 0; i + 1 < log_histogram::kSide; ++i) {
        const auto lo = log_histogram::magnitude_low(i);
        const auto w = log_histogram::magnitude_width(i);
        CHECK(log_histogram::magnitude_low(i + 1) == lo + w); // contiguous
        CHECK(log_histogram::magnitude_index(lo) == i);
        CHECK(log_histogram::magnitude_index(lo + w - 1) == i);
        if (lo >= 128) CHECK(static_cast<double>(w) / static_cast<double>(lo) <= 1.0 / 128);
    }
}
