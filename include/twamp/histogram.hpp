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
// by definition: the histogram keeps a mirrored negative side. The 4096 buckets of a side form 32
// blocks of 128 (block 0: magnitudes 0–127; block k ≥ 1: the octave [2^(k+6), 2^(k+7))), and a
// block's counters are allocated on the first sample that falls into it, so the memory follows
// the range of values seen, not the range the histogram can hold: nothing when empty, 1 KiB per
// octave and sign seen (a 10 µs–10 ms delay stream: 11 KiB; at most 64 KiB with every block
// used). The blocks share one vector, found through a fixed table of 64 offsets (128 bytes); a
// percentile walks the allocated blocks in value order (the negative side from the largest
// magnitude down, then 0 and the positive side). Memory never grows with the number of samples:
// once a block exists, add() does not allocate, and clear() keeps the blocks. Allocation failure
// in add() or merge() terminates (both are noexcept), as running out of memory for the former
// fixed array would have at construction.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace twamp {

class log_histogram {
public:
    static constexpr unsigned kSubBits = 7; // 128 buckets per octave
    static constexpr std::int64_t kSub = std::int64_t{1} << kSubBits;
    static constexpr unsigned kMaxBits = 38; // exact range: |v| < 2^38 ns
    static constexpr std::size_t kSide = static_cast<std::size_t>(kSub) * (kMaxBits - kSubBits + 1);
    static constexpr double kMaxRelativeError = 1.0 / (2.0 * static_cast<double>(kSub));

    log_histogram() noexcept { base_.fill(kAbsent); }
    log_histogram(const log_histogram&) = default;
    log_histogram& operator=(const log_histogram&) = default;
    // A moved-from histogram is empty, with no blocks.
    log_histogram(log_histogram&& o) noexcept
        : counts_(std::move(o.counts_)), base_(o.base_), count_(o.count_), overflow_(o.overflow_),
          min_(o.min_), max_(o.max_)
    {
        o.forget();
    }
    log_histogram& operator=(log_histogram&& o) noexcept
    {
        if (this != &o) {
            counts_ = std::move(o.counts_);
            base_ = o.base_;
            count_ = o.count_;
            overflow_ = o.overflow_;
            min_ = o.min_;
            max_ = o.max_;
            o.forget();
        }
        return *this;
    }
    ~log_histogram() = default;

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
        const std::uint64_t m = v < 0 ? std::uint64_t(0) - static_cast<std::uint64_t>(v)
                                      : static_cast<std::uint64_t>(v);
        if ((m >> kMaxBits) != 0) ++overflow_;
        const std::size_t idx = magnitude_index(m);
        const std::size_t b = (v < 0 ? kBlocks : 0) + (idx >> kSubBits);
        std::ptrdiff_t base = base_[b];
        if (base == kAbsent) [[unlikely]]
            base = allocate(b);
        counts_[static_cast<std::size_t>(base + static_cast<std::ptrdiff_t>(idx))] += n;
    }

    // Adds every sample of `o`: afterwards this histogram equals one fed with both streams. Only
    // blocks of `o` that hold a count are allocated here.
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
        for (std::size_t b = 0; b < 2 * kBlocks; ++b) {
            const std::uint64_t* src = o.block(b);
            if (src == nullptr || std::all_of(src, src + kBlockSize, is_zero)) continue;
            if (base_[b] == kAbsent) allocate(b); // may move counts_, never o's (o has block b)
            src = o.block(b);
            std::uint64_t* dst = block(b);
            for (std::size_t i = 0; i < kBlockSize; ++i)
                dst[i] += src[i];
        }
    }

    // Back to empty; the allocated blocks stay (zeroed), so refilling does not allocate.
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
        const auto found = [&](std::size_t idx, bool neg) {
            const double v = representative(idx, neg);
            return std::clamp(v, static_cast<double>(min_), static_cast<double>(max_));
        };
        // Negative side: the largest magnitude (the smallest value) first.
        for (std::size_t k = kBlocks; k-- > 0;) {
            const std::uint64_t* c = block(kBlocks + k);
            if (c == nullptr) continue;
            for (std::size_t i = kBlockSize; i-- > 0;) {
                seen += c[i];
                if (seen >= rank) return found(k * kBlockSize + i, true);
            }
        }
        for (std::size_t k = 0; k < kBlocks; ++k) {
            const std::uint64_t* c = block(k);
            if (c == nullptr) continue;
            for (std::size_t i = 0; i < kBlockSize; ++i) {
                seen += c[i];
                if (seen >= rank) return found(k * kBlockSize + i, false);
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

    // Bytes held: the object and the counter blocks allocated so far (1 KiB each). Grows only
    // when a sample or a merge reaches a block not seen before.
    std::size_t memory_bytes() const noexcept
    {
        return sizeof(*this) + counts_.capacity() * sizeof(std::uint64_t);
    }

    // Bucket-wise equality (what merge promises), whichever blocks each side has allocated: a
    // block one side lacks equals an all-zero block.
    friend bool operator==(const log_histogram& a, const log_histogram& b) noexcept
    {
        if (a.count_ != b.count_ || a.min() != b.min() || a.max() != b.max() ||
            a.overflow_ != b.overflow_)
            return false;
        for (std::size_t k = 0; k < 2 * kBlocks; ++k) {
            const std::uint64_t* x = a.block(k);
            const std::uint64_t* y = b.block(k);
            if (x == nullptr && y == nullptr) continue;
            if (x == nullptr) {
                if (!std::all_of(y, y + kBlockSize, is_zero)) return false;
            } else if (y == nullptr) {
                if (!std::all_of(x, x + kBlockSize, is_zero)) return false;
            } else if (!std::equal(x, x + kBlockSize, y)) {
                return false;
            }
        }
        return true;
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
    static constexpr std::size_t kBlockSize = static_cast<std::size_t>(kSub);
    static constexpr std::size_t kBlocks = kSide / kBlockSize; // per side
    // base_[b] is where block b's counters start in counts_, minus the magnitude index of its
    // first bucket, so that a magnitude index plus the base is the counter's position.
    static constexpr std::int16_t kAbsent = std::numeric_limits<std::int16_t>::min();
    static_assert(2 * kBlocks * kBlockSize <= std::numeric_limits<std::int16_t>::max() &&
                      kSide <= -(kAbsent + 1),
                  "counter positions must fit the base table");

    static bool is_zero(std::uint64_t c) noexcept { return c == 0; }

    void forget() noexcept
    {
        counts_.clear();
        base_.fill(kAbsent);
        count_ = overflow_ = 0;
        min_ = max_ = 0;
    }

    // Counters of block `b` (0..kBlocks-1: positive side, kBlocks..: negative), or null.
    const std::uint64_t* block(std::size_t b) const noexcept
    {
        const std::ptrdiff_t base = base_[b];
        if (base == kAbsent) return nullptr;
        return counts_.data() + base + static_cast<std::ptrdiff_t>((b % kBlocks) * kBlockSize);
    }
    std::uint64_t* block(std::size_t b) noexcept
    {
        return const_cast<std::uint64_t*>(std::as_const(*this).block(b));
    }

    // Appends a zeroed block for `b` and returns its base. Capacity grows one block at a time: a
    // new block is rare (once per octave and sign seen), memory is what matters.
    std::ptrdiff_t allocate(std::size_t b) noexcept
    {
        const std::size_t first = counts_.size();
        counts_.reserve(first + kBlockSize);
        counts_.resize(first + kBlockSize, 0);
        const auto base = static_cast<std::ptrdiff_t>(first) -
                          static_cast<std::ptrdiff_t>((b % kBlocks) * kBlockSize);
        base_[b] = static_cast<std::int16_t>(base);
        return base;
    }

    // A representative magnitude of bucket `idx`: exact for width-1 buckets, else the midpoint.
    static double representative(std::size_t idx, bool neg) noexcept
    {
        const std::uint64_t w = magnitude_width(idx);
        const double m = static_cast<double>(magnitude_low(idx)) +
                         (w > 1 ? static_cast<double>(w - 1) / 2.0 : 0.0);
        return neg ? -m : m;
    }

    std::vector<std::uint64_t> counts_;          // allocated blocks, kBlockSize counters each
    std::array<std::int16_t, 2 * kBlocks> base_; // block -> base in counts_, or kAbsent
    std::uint64_t count_ = 0;
    std::uint64_t overflow_ = 0;
    std::int64_t min_ = 0;
    std::int64_t max_ = 0;
};

} // namespace twamp
