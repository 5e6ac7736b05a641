// twamp/metrics.hpp — stream trackers for the metrics that need more than one packet:
// RFC 3393 IPDV pairs and RFC 4737 reordering extent.
//
// Both keep a ring of `window` slots indexed by sequence number, allocated once, so a sample costs
// O(1) (amortised) and no allocation; the Session-Sender sizes the window so that a probe older
// than the ring is past its loss timeout anyway.
//
// IPDV (RFC 3393 §2.4, RFC 5481 §4.1): for the selected pair of consecutive packets n and n+1,
// IPDV = D(n+1) - D(n), sign kept. Pairs are formed by sequence number, not by arrival order, so a
// reordered packet still pairs with its neighbours; a pair with a lost member has no IPDV.
//
// Reordering (RFC 4737 §3.3, §4.2.2): a packet is reordered when its sequence number is below the
// next expected one; its extent is i - j, where i is its arrival position and j the position of
// the earliest arrival with a larger sequence number. That earliest arrival was itself in order
// (everything before it had a smaller number), so j is found by walking up from the packet's
// sequence number to the first in-order arrival.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace twamp {

// One delay value per direction: outbound, inbound, round trip (ns).
using delay_triple = std::array<std::int64_t, 3>;

class ipdv_tracker {
public:
    explicit ipdv_tracker(std::size_t window = 1024)
        : ring_(std::bit_ceil(std::max<std::size_t>(window, 16))), mask_(ring_.size() - 1)
    {
    }

    // Records packet `seq` with its delays; calls `sink(const delay_triple& ipdv)` once for every
    // consecutive pair (seq-1, seq) and (seq, seq+1) whose other member is already known.
    template <class Sink> void add(std::uint32_t seq, const delay_triple& d, Sink&& sink)
    {
        slot& s = ring_[seq & mask_];
        s = slot{seq, true, d};
        if (seq > 0) {
            const slot& p = ring_[(seq - 1) & mask_];
            if (p.valid && p.seq == seq - 1) sink(diff(d, p.d));
        }
        if (seq < UINT32_MAX) {
            const slot& n = ring_[(seq + 1) & mask_];
            if (n.valid && n.seq == seq + 1) sink(diff(n.d, d));
        }
    }

private:
    struct slot {
        std::uint32_t seq = 0;
        bool valid = false;
        delay_triple d{};
    };
    // later - earlier, saturated at the int64 range: delays from a reflector with wild clocks
    // can be more than 2^63 ns apart.
    static std::int64_t sub(std::int64_t a, std::int64_t b) noexcept
    {
        constexpr auto hi = std::numeric_limits<std::int64_t>::max();
        constexpr auto lo = std::numeric_limits<std::int64_t>::min();
        if (b < 0 && a > hi + b) return hi;
        if (b > 0 && a < lo + b) return lo;
        return a - b;
    }
    static delay_triple diff(const delay_triple& later, const delay_triple& earlier) noexcept
    {
        return {sub(later[0], earlier[0]), sub(later[1], earlier[1]), sub(later[2], earlier[2])};
    }
    std::vector<slot> ring_;
    std::size_t mask_;
};

class reorder_tracker {
public:
    explicit reorder_tracker(std::size_t window = 1024)
        : ring_(std::bit_ceil(std::max<std::size_t>(window, 16))), mask_(ring_.size() - 1)
    {
    }

    // Records the arrival of a (first, in-time) copy of `seq`. Returns 0 when it came in order,
    // else its reordering extent (at least 1).
    std::uint64_t add(std::uint32_t seq) noexcept
    {
        const std::uint64_t i = ++arrivals_; // arrival positions count from 1
        if (!started_ || seq >= next_expected_) {
            started_ = true;
            next_expected_ = static_cast<std::uint64_t>(seq) + 1;
            ring_[seq & mask_] = slot{seq, true, i};
            return 0;
        }
        ++reordered_;
        // The earliest arrival with a larger number is the first in-order arrival above seq.
        std::uint64_t extent = 0;
        const std::uint64_t limit =
            std::min<std::uint64_t>(next_expected_, std::uint64_t{seq} + 1 + ring_.size());
        for (std::uint64_t k = std::uint64_t{seq} + 1; k < limit; ++k) {
            const slot& s = ring_[k & mask_];
            if (s.in_order && s.seq == k) {
                extent = i - s.arrival;
                break;
            }
        }
        // Left the ring (older than the window): the extent is at least the window.
        if (extent == 0) extent = std::min<std::uint64_t>(i - 1, ring_.size());
        max_extent_ = std::max(max_extent_, extent);
        return extent;
    }

    std::uint64_t reordered() const noexcept { return reordered_; }
    std::uint64_t max_extent() const noexcept { return max_extent_; }
    std::uint64_t arrivals() const noexcept { return arrivals_; }

private:
    struct slot {
        std::uint64_t seq = 0;
        bool in_order = false;
        std::uint64_t arrival = 0;
    };
    std::vector<slot> ring_;
    std::size_t mask_;
    bool started_ = false;
    std::uint64_t next_expected_ = 0;
    std::uint64_t arrivals_ = 0;
    std::uint64_t reordered_ = 0;
    std::uint64_t max_extent_ = 0;
};

} // namespace twamp
