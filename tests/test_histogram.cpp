#include "twamp/histogram.hpp"
#include "twamp/stats.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <vector>

using twamp::log_histogram;

namespace {
// A percentile written as an exact decimal: num / den percent (99.9 = 999 / 10).
struct decimal_pct {
    std::uint64_t num, den;
    double value() const { return static_cast<double>(num) / static_cast<double>(den); }
};

// The nearest rank ceil(p/100 · n) in integers only: (num·n + 100·den − 1) / (100·den), so the
// oracle shares no floating-point step with the code under test.
std::uint64_t exact_rank(decimal_pct p, std::uint64_t n)
{
    const std::uint64_t whole = 100 * p.den;
    const std::uint64_t r = (p.num * n + whole - 1) / whole;
    return std::clamp<std::uint64_t>(r, 1, n);
}

double exact_percentile(std::vector<std::int64_t> v, decimal_pct p)
{
    std::sort(v.begin(), v.end());
    if (p.num == 0) return static_cast<double>(v.front());
    return static_cast<double>(v[exact_rank(p, v.size()) - 1]);
}
double rel_err(double got, double want)
{
    return std::fabs(got - want) / std::max(std::fabs(want), 1.0);
}

const decimal_pct kPercentiles[] = {{0, 1},  {1, 10},   {1, 1},      {5, 1},  {10, 1},
                                    {25, 1}, {50, 1},   {75, 1},     {90, 1}, {95, 1},
                                    {99, 1}, {999, 10}, {9999, 100}, {100, 1}};
// The CLI's default list (50,90,95,99,99.9) and decimals that floating point does not hold
// exactly.
const decimal_pct kRankPercentiles[] = {
    {50, 1},     {90, 1},  {95, 1},       {99, 1}, {999, 10}, {9999, 100}, {1, 10},   {1, 1},
    {5, 1},      {10, 1},  {25, 1},       {75, 1}, {333, 10}, {667, 10},   {125, 10}, {995, 10},
    {9995, 100}, {1, 100}, {99999, 1000}, {7, 10}, {573, 10}, {291, 10}};
} // namespace

TEST_CASE("nearest rank is exact for every (n, p), against integer arithmetic")
{
    std::vector<std::uint64_t> ns;
    for (std::uint64_t n = 1; n <= 3000; ++n)
        ns.push_back(n);
    for (std::uint64_t n :
         {10'000ULL, 20'000ULL, 100'000ULL, 1'000'000ULL, 12'345'678ULL, 1'000'000'000'000ULL})
        ns.push_back(n);
    std::uint64_t checked = 0;
    for (std::uint64_t n : ns)
        for (auto p : kRankPercentiles) {
            const auto want = exact_rank(p, n);
            const auto got = log_histogram::nearest_rank(p.value(), n);
            if (got != want) {
                INFO("n=" << n << " p=" << p.num << "/" << p.den << " want " << want << " got "
                          << got);
                CHECK(got == want);
            }
            ++checked;
        }
    CHECK(checked == ns.size() * std::size(kRankPercentiles));
    // The case that went wrong in floating point: p99.9 of 1000 samples is the 999th.
    CHECK(log_histogram::nearest_rank(99.9, 1000) == 999);
    CHECK(log_histogram::nearest_rank(99.9, 2000) == 1998);
    CHECK(log_histogram::nearest_rank(99.9, 10000) == 9990);
}

TEST_CASE("percentile picks the value of the exact rank: two-valued samples around the rank")
{
    // r copies of A then n - r of B: the percentile is A; with r - 1 copies of A it is B. A rank
    // off by one either way flips the answer, and A and B are far apart (no tolerance hides it).
    constexpr std::int64_t A = 1'000'000, B = 3'000'000;
    log_histogram h;
    for (std::uint64_t n = 1; n <= 1200; ++n)
        for (auto p : kRankPercentiles) {
            const auto r = exact_rank(p, n);
            h.clear();
            h.add(A, r);
            h.add(B, n - r);
            const double at_r = h.percentile(p.value());
            h.clear();
            h.add(A, r - 1);
            h.add(B, n - r + 1);
            const double below = h.percentile(p.value());
            if (rel_err(at_r, A) > log_histogram::kMaxRelativeError ||
                rel_err(below, B) > log_histogram::kMaxRelativeError) {
                INFO("n=" << n << " p=" << p.num << "/" << p.den << " rank " << r << ": " << at_r
                          << " / " << below);
                CHECK(rel_err(at_r, A) <= log_histogram::kMaxRelativeError);
                CHECK(rel_err(below, B) <= log_histogram::kMaxRelativeError);
            }
        }
}

TEST_CASE("PDV is p99.9 minus the minimum, p99.9 by exact rank")
{
    // 1000 samples: 1, 2, ..., 999 ms and one of 2000 ms. p99.9 is the 999th (999 ms), so PDV is
    // 998 ms; a rank of 1000 would give the maximum and a PDV of 1999 ms.
    twamp::delay_stats d;
    for (std::int64_t i = 1; i <= 999; ++i)
        d.add(i * 1'000'000);
    d.add(2'000'000'000);
    CHECK(rel_err(d.percentile(99.9), 999e6) <= log_histogram::kMaxRelativeError);
    // |error| of p99.9 is at most 0.39 % of 999 ms; the minimum (1 ms) is exact.
    CHECK(std::fabs(d.pdv() - 998e6) <= 999e6 * log_histogram::kMaxRelativeError);
}

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
        for (auto p : kPercentiles) {
            const double want = exact_percentile(set, p);
            const double got = h.percentile(p.value());
            INFO("p" << p.value() << " want " << want << " got " << got);
            CHECK(rel_err(got, want) <= 0.01);
            CHECK(rel_err(got, want) <= log_histogram::kMaxRelativeError + 1e-12);
        }
    }
}

TEST_CASE("every magnitude from 1 µs to 100 s lands within the error bound")
{
    // The median of {1, x, 1.5x} is x's bucket representative; the exact extremes are far from
    // x, so clamping the answer to [min, max] cannot pull it back to x.
    for (double v = 1e3; v <= 100e9; v *= 1.0137) {
        log_histogram h;
        const auto x = static_cast<std::int64_t>(v);
        h.add(1);
        h.add(x);
        h.add(x + x / 2);
        const double got = h.percentile(50);
        INFO("x=" << x << " got " << got);
        CHECK(rel_err(got, static_cast<double>(x)) <= log_histogram::kMaxRelativeError);
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
    for (auto p : kPercentiles) {
        const double want = exact_percentile(v, p);
        const double got = h.percentile(p.value());
        INFO("p" << p.value() << " want " << want << " got " << got);
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
    for (auto p : kPercentiles)
        CHECK(m.percentile(p.value()) == all.percentile(p.value()));
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
