// twamp/histogram.hpp — a mergeable log-linear histogram of signed nanosecond values
// (HdrHistogram-style), for medians and percentiles in bounded memory.
//
// Magnitudes below 2^7 ns each have their own bucket; above, every power of two is split into 128
// equal buckets, so a bucket is never wider than 1/128 of its lower bound. A percentile is read
// as the midpoint of its bucket, which is within 1/256 (0.39 %) of every value in the bucket; that
// holds from 1 ns to 2^38 ns (about 275 s), so well beyond the 1 µs–100 s the reports need. Larger
// magnitudes share the last bucket (counted in overflow(); the exact min and max still bound the
// answer).
//
// One-way delays are negative when the two clocks disagree, and IPDV values (RFC 3393) are signed
// by definition: the histogram keeps a mirrored negative side. Buckets are stored in value order —
// the negative side from the largest magnitude down, then 0 and the positive side — so a
// percentile is one ascending walk and merging is an element-wise sum. Memory is fixed at
// construction (2 × 4096 counters, 64 KiB) and independent of the number of samples; add() never
// allocates.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace twamp {

class log_histogram {
public:
    static constexpr unsigned kSubBits = 7; // 128 buckets per octave
    static constexpr std::int64_t kSub = std::int64_t{1} << kSubBits;
    static constexpr unsigned kMaxBits = 38; // exact range: |v| < 2^38 ns
    static constexpr std::size_t kSide = static_cast<std::size_t>(kSub) * (kMaxBits - kSubBits + 1);
    static constexpr double kMaxRelativeError = 1.0 / (2.0 * static_cast<double>(kSub));

    log_histogram() : counts_(2 * kSide, 0) {}

    void add(std::int64_t v) noexcept { add(v, 1); }

    void add(std::int64_t v, std::uint64_t n) noexcept
    {
        if (n == 0) return;
        if (count_ == 0) {
            min_ = max_ = v;
        } else {
            min_ = std::min(min_, v);
            max_ = std::max(max_, v);
        }
        count_ += n;
        counts_[slot(v)] += n;
    }

    // Adds every sample of `o`: afterwards this histogram equals one fed with both streams.
    void merge(const log_histogram& o) noexcept
    {
        if (o.count_ == 0) return;
        if (count_ == 0) {
            min_ = o.min_;
            max_ = o.max_;
        } else {
            min_ = std::min(min_, o.min_);
            max_ = std::max(max_, o.max_);
        }
        count_ += o.count_;
        overflow_ += o.overflow_;
        for (std::size_t i = 0; i < counts_.size(); ++i)
            counts_[i] += o.counts_[i];
    }

    void clear() noexcept
    {
        std::fill(counts_.begin(), counts_.end(), 0);
        count_ = overflow_ = 0;
        min_ = max_ = 0;
    }

    std::uint64_t count() const noexcept { return count_; }
    std::int64_t min() const noexcept { return count_ ? min_ : 0; }
    std::int64_t max() const noexcept { return count_ ? max_ : 0; }
    std::uint64_t overflow() const noexcept { return overflow_; }

    // The p-th percentile (0 ≤ p ≤ 100) by nearest rank: the value of the ceil(p/100 · n)-th
    // smallest sample (the smallest for p = 0), to within kMaxRelativeError. 0 when empty.
    double percentile(double p) const noexcept
    {
        if (count_ == 0) return 0.0;
        if (!(p > 0)) return static_cast<double>(min_);
        if (p >= 100) return static_cast<double>(max_);
        const std::uint64_t rank = nearest_rank(p, count_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                const double v = midpoint(i);
                return std::clamp(v, static_cast<double>(min_), static_cast<double>(max_));
            }
        }
        return static_cast<double>(max_);
    }

    // The nearest rank ceil(p/100 · n), in 1..n, computed exactly. p is read as a decimal with
    // at most nine fractional digits (it is rounded to that first): in floating point,
    // 99.9 / 100 · 1000 comes out a hair above 999 and its ceiling would be the maximum, not the
    // 999th value. 0 < p < 100 is expected; anything else is clamped into 1..n.
    static std::uint64_t nearest_rank(double p, std::uint64_t n) noexcept
    {
        if (n == 0) return 0;
        constexpr std::uint64_t kScale = 1'000'000'000; // p in units of 1e-9 percent
        constexpr std::uint64_t kWhole = 100 * kScale;  // 100 %
        if (!(p > 0)) return 1;
        if (p >= 100) return n;
        const auto units =
            static_cast<std::uint64_t>(std::llround(p * static_cast<double>(kScale)));
        __extension__ using u128 = unsigned __int128;
        const u128 num = static_cast<u128>(units) * n;
        const auto rank = static_cast<std::uint64_t>((num + kWhole - 1) / kWhole);
        return std::clamp<std::uint64_t>(rank, 1, n);
    }

    // Counter storage in bytes: fixed at construction.
    std::size_t memory_bytes() const noexcept
    {
        return sizeof(*this) + counts_.capacity() * sizeof(std::uint64_t);
    }

    // Bucket-wise equality (what merge promises).
    friend bool operator==(const log_histogram& a, const log_histogram& b) noexcept
    {
        return a.count_ == b.count_ && a.min() == b.min() && a.max() == b.max() &&
               a.overflow_ == b.overflow_ && a.counts_ == b.counts_;
    }

    // Bucket index of a magnitude (0 ≤ m); magnitudes beyond the range share the last bucket.
    static std::size_t magnitude_index(std::uint64_t m) noexcept
    {
        if (m < static_cast<std::uint64_t>(kSub)) return static_cast<std::size_t>(m);
        const unsigned e = static_cast<unsigned>(std::bit_width(m)) - 1; // >= kSubBits
        if (e >= kMaxBits) return kSide - 1;
        const unsigned shift = e - kSubBits;
        return static_cast<std::size_t>(kSub) * shift + static_cast<std::size_t>(m >> shift);
    }
    // Lowest magnitude and width of a bucket.
    static std::uint64_t magnitude_low(std::size_t idx) noexcept
    {
        if (idx < 2 * static_cast<std::size_t>(kSub)) return idx;
        const std::size_t shift = idx / static_cast<std::size_t>(kSub) - 1;
        const std::size_t sub = idx - static_cast<std::size_t>(kSub) * shift; // in [kSub, 2 kSub)
        return static_cast<std::uint64_t>(sub) << shift;
    }
    static std::uint64_t magnitude_width(std::size_t idx) noexcept
    {
        if (idx < 2 * static_cast<std::size_t>(kSub)) return 1;
        return std::uint64_t{1} << (idx / static_cast<std::size_t>(kSub) - 1);
    }

private:
    std::size_t slot(std::int64_t v) noexcept
    {
        const std::uint64_t m = v < 0 ? std::uint64_t(0) - static_cast<std::uint64_t>(v)
                                      : static_cast<std::uint64_t>(v);
        if ((m >> kMaxBits) != 0) ++overflow_;
        const std::size_t i = magnitude_index(m);
        return v < 0 ? kSide - 1 - i : kSide + i;
    }

    // A representative value of slot `i`: exact for width-1 buckets, else the midpoint.
    static double midpoint(std::size_t i) noexcept
    {
        const bool neg = i < kSide;
        const std::size_t idx = neg ? kSide - 1 - i : i - kSide;
        const std::uint64_t w = magnitude_width(idx);
        const double m = static_cast<double>(magnitude_low(idx)) +
                         (w > 1 ? static_cast<double>(w - 1) / 2.0 : 0.0);
        return neg ? -m : m;
    }

    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0;
    std::uint64_t overflow_ = 0;
    std::int64_t min_ = 0;
    std::int64_t max_ = 0;
};

} // namespace twamp
