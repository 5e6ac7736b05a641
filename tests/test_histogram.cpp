#include "twamp/histogram.hpp"
#include "twamp/stats.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <utility>
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

// The histogram as it was before its blocks were allocated lazily: one dense array of 2 × kSide
// counters in value order (the negative side from the largest magnitude down). The reference
// the block storage must match exactly.
class dense_histogram {
public:
    static constexpr std::size_t kSide = log_histogram::kSide;

    void add(std::int64_t v, std::uint64_t n = 1)
    {
        if (n == 0) return;
        if (count_ == 0) {
            min_ = max_ = v;
        } else {
            min_ = std::min(min_, v);
            max_ = std::max(max_, v);
        }
        count_ += n;
        const std::uint64_t m = v < 0 ? std::uint64_t(0) - static_cast<std::uint64_t>(v)
                                      : static_cast<std::uint64_t>(v);
        if ((m >> log_histogram::kMaxBits) != 0) ++overflow_;
        const std::size_t i = log_histogram::magnitude_index(m);
        counts_[v < 0 ? kSide - 1 - i : kSide + i] += n;
    }
    std::uint64_t count() const { return count_; }
    std::int64_t min() const { return count_ ? min_ : 0; }
    std::int64_t max() const { return count_ ? max_ : 0; }
    std::uint64_t overflow() const { return overflow_; }
    double percentile(double p) const
    {
        if (count_ == 0) return 0.0;
        if (!(p > 0)) return static_cast<double>(min_);
        if (p >= 100) return static_cast<double>(max_);
        const std::uint64_t rank = log_histogram::nearest_rank(p, count_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank)
                return std::clamp(midpoint(i), static_cast<double>(min_),
                                  static_cast<double>(max_));
        }
        return static_cast<double>(max_);
    }

private:
    static double midpoint(std::size_t i)
    {
        const bool neg = i < kSide;
        const std::size_t idx = neg ? kSide - 1 - i : i - kSide;
        const std::uint64_t w = log_histogram::magnitude_width(idx);
        const double m = static_cast<double>(log_histogram::magnitude_low(idx)) +
                         (w > 1 ? static_cast<double>(w - 1) / 2.0 : 0.0);
        return neg ? -m : m;
    }

    std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(2 * kSide, 0);
    std::uint64_t count_ = 0, overflow_ = 0;
    std::int64_t min_ = 0, max_ = 0;
};

// Every percentile from 0 to 100 in steps of 0.1, and the extremes, compared exactly.
void check_same(const log_histogram& h, const dense_histogram& ref)
{
    CHECK(h.count() == ref.count());
    CHECK(h.min() == ref.min());
    CHECK(h.max() == ref.max());
    CHECK(h.overflow() == ref.overflow());
    int mismatches = 0;
    for (int p10 = 0; p10 <= 1000; ++p10) {
        const double p = p10 / 10.0;
        const double got = h.percentile(p);
        const double want = ref.percentile(p);
        if (got != want && ++mismatches <= 3) {
            INFO("p" << p << " want " << want << " got " << got);
            CHECK(got == want);
        }
    }
    for (double p : {1e-6, 0.001, 0.01, 99.99, 99.999, 99.9999}) {
        INFO("p" << p);
        CHECK(h.percentile(p) == ref.percentile(p));
    }
    CHECK(mismatches == 0);
}

// A signed value whose magnitude is log-uniform over [0, 2^63): every block of both sides,
// the overflow bucket included.
std::int64_t wide_value(std::mt19937_64& rng)
{
    const unsigned bits = static_cast<unsigned>(rng() % 64); // magnitude below 2^bits ≤ 2^63
    const std::uint64_t m = bits == 0 ? 0 : rng() & ((std::uint64_t{1} << bits) - 1);
    const auto v = static_cast<std::int64_t>(m);
    return rng() % 2 ? -v : v;
}
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
    const auto stream = [&h] {
        for (std::int64_t i = 0; i < 2'000'000; ++i)
            h.add((i * 7919) % 100'000'000'000 - 1000);
    };
    stream();
    const auto warm = h.memory_bytes();
    CHECK(warm <= 80 * 1024);
    stream(); // the same range again: every block exists already
    CHECK(h.memory_bytes() == warm);
    h.clear();
    CHECK(h.memory_bytes() == warm); // clear keeps the blocks
    stream();
    CHECK(h.memory_bytes() == warm);
    // Beyond 2^38 ns: the last block of each side, 1 KiB each, then nothing more.
    h.add(std::numeric_limits<std::int64_t>::max());
    h.add(std::numeric_limits<std::int64_t>::min() + 1);
    CHECK(h.overflow() == 2);
    CHECK(h.percentile(100) == static_cast<double>(std::numeric_limits<std::int64_t>::max()));
    const auto with_overflow = h.memory_bytes();
    CHECK(with_overflow <= warm + 2 * 1024);
    h.add(std::numeric_limits<std::int64_t>::min());
    h.add(std::numeric_limits<std::int64_t>::max() - 5);
    CHECK(h.overflow() == 4);
    CHECK(h.memory_bytes() == with_overflow);
    CHECK(h.memory_bytes() <= 70 * 1024); // never more than the dense array (64 KiB) and the object
}

TEST_CASE("memory follows the range seen: nothing when empty, a few KiB for a delay stream")
{
    log_histogram empty;
    CHECK(empty.memory_bytes() < 1024);
    CHECK(log_histogram{}.memory_bytes() == empty.memory_bytes());
    // 10 µs to 10 ms: the octaves 2^13..2^23, 11 blocks of 128 counters.
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> lu(std::log(10e3), std::log(10e6));
    log_histogram h;
    for (int i = 0; i < 100'000; ++i)
        h.add(static_cast<std::int64_t>(std::exp(lu(rng))));
    INFO("10 µs..10 ms: " << h.memory_bytes() << " bytes");
    CHECK(h.memory_bytes() <= empty.memory_bytes() + 11 * 1024);
    CHECK(h.memory_bytes() >= empty.memory_bytes() + 11 * 1024);
    // One narrow value range (1.0–1.9 ms: one octave) costs one block; a negative value of the
    // same magnitude one more.
    log_histogram n;
    for (std::int64_t v = 1'050'000; v < 1'900'000; v += 37)
        n.add(v);
    CHECK(n.memory_bytes() == empty.memory_bytes() + 1024);
    n.add(-1'100'000);
    CHECK(n.memory_bytes() == empty.memory_bytes() + 2 * 1024);
    // Copies hold only the blocks; a moved-from histogram is empty and holds none.
    log_histogram c = h;
    CHECK(c == h);
    CHECK(c.memory_bytes() <= h.memory_bytes());
    log_histogram m = std::move(c);
    CHECK(m == h);
    CHECK(c.count() == 0); // NOLINT(bugprone-use-after-move): the documented moved-from state
    CHECK(c.memory_bytes() == empty.memory_bytes());
    CHECK(c == empty);
    c.add(5);
    CHECK(c.percentile(50) == 5.0);
}

TEST_CASE("block storage gives exactly the dense array's answers: random streams, full range")
{
    std::mt19937_64 rng(2024);
    for (int round = 0; round < 40; ++round) {
        log_histogram h;
        dense_histogram ref;
        const int n = 1 + static_cast<int>(rng() % 5000);
        for (int i = 0; i < n; ++i) {
            std::int64_t v = 0;
            switch (round % 4) {
            case 0:
                v = wide_value(rng);
                break; // both signs, every block, overflow
            case 1:
                v = -static_cast<std::int64_t>(rng() % 3'000'000'000);
                break; // negative
            case 2:
                v = static_cast<std::int64_t>(rng() % 400) - 200;
                break; // width-1 buckets
            default:
                v = wide_value(rng) / 1024;
                break; // fewer blocks
            }
            const std::uint64_t k = rng() % 8 == 0 ? rng() % 100 : 1; // n = 0 included
            h.add(v, k);
            ref.add(v, k);
        }
        INFO("round " << round << ", " << n << " samples");
        check_same(h, ref);
        // clear() then refill with another stream: the kept blocks must not leak old counts.
        h.clear();
        dense_histogram ref2;
        for (int i = 0; i < 1000; ++i) {
            const auto v = wide_value(rng);
            h.add(v);
            ref2.add(v);
        }
        check_same(h, ref2);
    }
    // The extremes of int64 and the sign boundary.
    log_histogram h;
    dense_histogram ref;
    for (std::int64_t v : {std::numeric_limits<std::int64_t>::min(), std::int64_t{-1},
                           std::int64_t{0}, std::int64_t{1}, std::int64_t{-128}, std::int64_t{127},
                           std::int64_t{128}, std::numeric_limits<std::int64_t>::max()}) {
        h.add(v);
        ref.add(v);
    }
    check_same(h, ref);
}

TEST_CASE("equality and merge do not depend on which blocks were allocated, or in what order")
{
    std::mt19937_64 rng(99);
    std::vector<std::int64_t> pos_small, neg_large, mixed;
    for (int i = 0; i < 3000; ++i) {
        pos_small.push_back(static_cast<std::int64_t>(rng() % 50'000)); // blocks 0..9
        neg_large.push_back(-static_cast<std::int64_t>(1'000'000 + rng() % 5'000'000'000));
        mixed.push_back(wide_value(rng));
    }
    // Same samples, opposite orders: the blocks sit at different places in storage.
    log_histogram up, down;
    for (auto v : mixed)
        up.add(v);
    for (auto it = mixed.rbegin(); it != mixed.rend(); ++it)
        down.add(*it);
    CHECK(up == down);
    down.add(mixed.front()); // one more count in one bucket: unequal
    CHECK_FALSE(up == down);

    // A block holding zeros (kept by clear) equals a block never allocated.
    log_histogram cleared, fresh;
    for (auto v : neg_large)
        cleared.add(v);
    cleared.clear();
    CHECK(cleared == fresh);
    CHECK(fresh == cleared);
    for (std::int64_t v : {-1'000'000'000, 9, 1}) // the negative value in a zeroed block
        cleared.add(v);
    for (std::int64_t v : {-1'000'000'000, 9, -7}) // -7 in a block `cleared` lacks
        fresh.add(v);
    REQUIRE(cleared.count() == fresh.count());
    REQUIRE(cleared.min() == fresh.min());
    REQUIRE(cleared.max() == fresh.max());
    CHECK_FALSE(cleared == fresh);
    CHECK_FALSE(fresh == cleared);
    cleared.add(-7);
    fresh.add(1);
    CHECK(cleared == fresh);
    CHECK(fresh == cleared);
    // The only difference in blocks each side lacks: 300 (block 2) here, 70,000 (block 10) there.
    log_histogram lo, hi;
    for (std::int64_t v : {-1'000'000'000, 300, 1'000'000})
        lo.add(v);
    for (std::int64_t v : {-1'000'000'000, 70'000, 1'000'000})
        hi.add(v);
    CHECK_FALSE(lo == hi);
    CHECK_FALSE(hi == lo);
    // Blocks emptied by clear() and refilled compare like fresh ones; with the same count, min,
    // max and overflow, one sample in another bucket does not.
    log_histogram x, y;
    x.add(-1000);
    x.add(5);
    x.add(1000);
    y.add(-1000);
    y.add(500'000); // block of 2^18
    y.add(1000);
    y.clear();
    y.add(-1000);
    y.add(5);
    y.add(1000);
    CHECK(x == y);
    y.clear();
    y.add(-1000);
    y.add(600); // block 0 allocated but zero here, one count there
    y.add(1000);
    CHECK_FALSE(x == y);

    // Disjoint block sets merged both ways equal one histogram fed everything.
    log_histogram a, b, all;
    for (auto v : pos_small) {
        a.add(v);
        all.add(v);
    }
    for (auto v : neg_large) {
        b.add(v);
        all.add(v);
    }
    log_histogram ab = a, ba = b;
    ab.merge(b);
    ba.merge(a);
    CHECK(ab == all);
    CHECK(ba == all);
    CHECK(ab == ba);
    dense_histogram ref;
    for (auto v : pos_small)
        ref.add(v);
    for (auto v : neg_large)
        ref.add(v);
    check_same(ab, ref);
    check_same(ba, ref);

    // Overlapping block sets, then a merge into a cleared histogram whose blocks differ.
    log_histogram c, d;
    for (auto v : mixed)
        (v % 3 ? c : d).add(v);
    log_histogram cd = c;
    cd.merge(d);
    CHECK(cd == up);
    log_histogram reused;
    for (auto v : neg_large)
        reused.add(v);
    reused.clear();
    reused.merge(c);
    reused.merge(d);
    CHECK(reused == up);
    // Merging a cleared histogram changes nothing and allocates nothing.
    log_histogram target;
    target.add(3);
    const auto bytes = target.memory_bytes();
    log_histogram zeros;
    for (auto v : mixed)
        zeros.add(v);
    zeros.clear();
    zeros.add(3);
    target.merge(zeros);
    CHECK(target.count() == 2);
    CHECK(target.memory_bytes() == bytes);
    // Merging into itself doubles every count.
    log_histogram twice = up;
    twice.merge(up);
    log_histogram self = up;
    self.merge(self);
    CHECK(self == twice);
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
