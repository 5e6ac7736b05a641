// twamp/stats.hpp — streaming statistics of a test session, per direction.
//
// Directions (RFC 5357 §4, RFC 7679, RFC 2681): outbound T2-T1, inbound T4-T3, round trip
// (T4-T1)-(T3-T2). Interarrival jitter as RFC 3550 §6.4.1 defines it: J += (|D| - J)/16 over the
// delay difference of consecutive arrivals, starting from 0. Values are integer nanoseconds and
// are never rounded before aggregation; one-way values keep their sign (a negative value means
// the two clocks disagree, and it is counted as such instead of being clamped).
//
// Every direction also keeps a log-linear histogram (histogram.hpp: percentiles within 0.4 %,
// fixed memory) and the standard deviation (Welford's update, merged with Chan's formula), and the
// session keeps RFC 3393 IPDV per direction (metrics.hpp pairs consecutive sequence numbers) and
// the RFC 4737 reordering extent. Percentiles, PDV and IPDV cover in-time replies only.
#pragma once

#include "twamp/histogram.hpp"
#include "twamp/stamp_tlvs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace twamp {

class delay_stats {
public:
    delay_stats() = default;

    void add(std::int64_t ns) noexcept
    {
        if (count_ == 0) {
            min_ = max_ = ns;
        } else {
            min_ = std::min(min_, ns);
            max_ = std::max(max_, ns);
            // In double: two delays from a reflector with wild clocks can be more than 2^63 ns
            // apart (their int64 difference would overflow).
            const double d = std::abs(static_cast<double>(ns) - static_cast<double>(last_));
            jitter_ += (d - jitter_) / 16.0;
        }
        last_ = ns;
        sum_ += static_cast<long double>(ns);
        ++count_;
        if (ns < 0) ++negative_;
        // Welford: m2_ is the sum of squared deviations from the running mean.
        const double x = static_cast<double>(ns);
        const double delta = x - wmean_;
        wmean_ += delta / static_cast<double>(count_);
        m2_ += delta * (x - wmean_);
        hist_.add(ns);
    }

    // Back to empty, keeping the histogram's storage (no allocation).
    void reset() noexcept
    {
        log_histogram h = std::move(hist_);
        h.clear();
        *this = delay_stats(std::move(h));
    }

    // Folds in another stream's statistics. Counts, extremes, mean, standard deviation and
    // percentiles come out as if every sample had been added here; RFC 3550 jitter is a running
    // filter over arrival order and cannot be merged, so the sample-weighted mean of the two is
    // kept.
    void merge(const delay_stats& o) noexcept
    {
        if (o.count_ == 0) return;
        if (count_ == 0) {
            *this = o;
            return;
        }
        const double n1 = static_cast<double>(count_), n2 = static_cast<double>(o.count_);
        const double delta = o.wmean_ - wmean_;
        m2_ += o.m2_ + delta * delta * n1 * n2 / (n1 + n2);
        wmean_ += delta * n2 / (n1 + n2);
        jitter_ = (jitter_ * n1 + o.jitter_ * n2) / (n1 + n2);
        min_ = std::min(min_, o.min_);
        max_ = std::max(max_, o.max_);
        last_ = o.last_;
        sum_ += o.sum_;
        count_ += o.count_;
        negative_ += o.negative_;
        hist_.merge(o.hist_);
    }

    std::uint64_t count() const noexcept { return count_; }
    std::int64_t min() const noexcept { return count_ ? min_ : 0; }
    std::int64_t max() const noexcept { return count_ ? max_ : 0; }
    double mean() const noexcept
    {
        return count_ ? static_cast<double>(sum_ / static_cast<long double>(count_)) : 0.0;
    }
    double jitter() const noexcept { return jitter_; } // RFC 3550, ns
    std::uint64_t negative() const noexcept { return negative_; }
    // Population standard deviation (ns); 0 below two samples.
    double stddev() const noexcept
    {
        return count_ > 1 ? std::sqrt(std::max(0.0, m2_ / static_cast<double>(count_))) : 0.0;
    }
    // Nearest-rank percentile (ns), within log_histogram::kMaxRelativeError; 0 when empty.
    double percentile(double p) const noexcept { return hist_.percentile(p); }
    // RFC 5481 §4.2 PDV: the 99.9th percentile minus the minimum.
    double pdv() const noexcept
    {
        return count_ ? hist_.percentile(99.9) - static_cast<double>(min_) : 0.0;
    }
    // The inter-quartile-like spread perfSONAR prints as jitter: P95 - P50.
    double p95_p50() const noexcept
    {
        return count_ ? hist_.percentile(95) - hist_.percentile(50) : 0.0;
    }
    const log_histogram& histogram() const noexcept { return hist_; }

private:
    explicit delay_stats(log_histogram&& h) noexcept : hist_(std::move(h)) {}

    std::uint64_t count_ = 0;
    std::int64_t min_ = 0;
    std::int64_t max_ = 0;
    std::int64_t last_ = 0;
    long double sum_ = 0;
    double jitter_ = 0;
    std::uint64_t negative_ = 0;
    double wmean_ = 0;
    double m2_ = 0;
    log_histogram hist_;
};

// Small min/max tracker for hop counts.
struct range_u8 {
    std::uint64_t count = 0;
    std::uint8_t min = 0;
    std::uint8_t max = 0;
    void add(std::uint8_t v) noexcept
    {
        min = count ? std::min(min, v) : v;
        max = count ? std::max(max, v) : v;
        ++count;
    }
};

struct session_stats {
    delay_stats outbound;  // T2 - T1
    delay_stats inbound;   // T4 - T3
    delay_stats roundtrip; // (T4 - T1) - (T3 - T2)

    // RFC 3393 IPDV per direction: D(n+1) - D(n) over pairs of consecutive sequence numbers both
    // answered in time (sign kept). Their RFC 3550 jitter field is meaningless and not reported.
    struct ipdv_set {
        delay_stats outbound, inbound, roundtrip;
    } ipdv;

    std::uint64_t sent = 0;       // probes transmitted
    std::uint64_t received = 0;   // distinct probes answered within the loss timeout
    std::uint64_t late = 0;       // distinct probes answered only after the timeout
    std::uint64_t duplicates = 0; // further replies for an already answered probe
    std::uint64_t reordered = 0;  // RFC 4737: arrived with a sequence below the next expected
    std::uint64_t max_reorder_extent = 0;        // RFC 4737 §4.2.2: largest reordering extent seen
    std::uint64_t send_errors = 0;               // the socket refused a probe
    std::uint64_t unexpected_source = 0;         // datagrams not from the reflector we talk to
    std::uint64_t malformed = 0;                 // too short to be a reply
    std::uint64_t unknown_sequence = 0;          // echoed a sequence number we never sent
    std::uint64_t short_replies = 0;             // replies shorter than 41 octets, zero-filled
    std::uint64_t ssid_mismatch = 0;             // STAMP reply carrying another session's SSID
    std::uint64_t invalid_error_estimate = 0;    // reflector sent multiplier 0 (kept, counted)
    std::uint64_t reflected_octets_mismatch = 0; // RFC 6038: octets did not come back intact
    std::uint64_t auth_failures = 0;             // protected replies whose HMAC failed: dropped
    std::uint64_t icmp_unreachable = 0; // ICMP errors (port/host unreachable) for our probes

    range_u8 forward_hops;  // 255 - Sender TTL in the reply
    range_u8 backward_hops; // 255 - TTL of the reply as received

    bool sender_synchronized = false;   // S bit of our own estimate
    bool reflector_synchronized = true; // S bit of every reply (false once one lacks it)
    double sender_error_s = 0;          // our error estimate, seconds
    double reflector_error_s = 0;       // the largest reflector estimate seen, seconds

    // Reflector sequence numbers seen (for the direction split of the loss).
    bool have_reflector_seq = false;
    std::uint32_t min_reflector_seq = 0;
    std::uint32_t max_reflector_seq = 0;
    std::uint64_t distinct_replies = 0; // received + late
    // Duplicates the reflector numbered on their own (so made on the way out); they take
    // reflector sequence numbers without being inbound losses.
    std::uint64_t outbound_duplicates = 0;
    // Further replies the probes asked for (STAMP Reflected Test Packet Control TLV): a stateful
    // reflector numbers each, so they too take reflector sequence numbers.
    std::uint64_t extra_replies = 0;
    // Among the probes answered (in time or late), the lowest and highest send ordinal (the
    // number of probes sent before it): probes before the first and after the last answered one
    // are the edges of the run, where the reflector's numbers say less.
    std::uint64_t first_answered_ordinal = 0;
    std::uint64_t last_answered_ordinal = 0;
    // The reflector numbers its replies from 0 (full TWAMP); see sender_config.
    bool reflector_counts_from_zero = false;

    // STAMP extension TLVs that came back (sender_config::tlvs; RFC 8972, RFC 9503).
    stamp_tlv_stats tlv;

    // Round-trip loss: probes without an in-time reply. Late replies count as lost (RFC 6673: a
    // reply after the waiting time is a loss), and are reported on their own as well.
    std::uint64_t lost() const noexcept { return sent > received ? sent - received : 0; }

    // Probes with no reply at all, late ones excluded.
    std::uint64_t missing() const noexcept
    {
        return sent > distinct_replies ? sent - distinct_replies : 0;
    }

    // Loss by direction (RFC 5357 §4.2.1: a stateful reflector numbers its replies in its own
    // sequence). Between the first and the last answered probe every gap in those numbers is a
    // reply that was lost on the way back, and the rest of the missing probes there never reached
    // the reflector: that split is exact. Before the first answered probe it is exact only when
    // the reflector counted from 0 (full TWAMP): its first number then says how many earlier
    // probes it answered. After the last answered probe nothing tells the two directions apart;
    // those losses (and the leading ones without a known origin, and all of them when nothing
    // came back) are counted in unknown_direction_lost(), never guessed. A stateless reflector
    // echoes our sequence numbers, so every attributable loss then shows as inbound. Late replies
    // are not a direction's loss: they count in the round trip only.
    std::uint64_t leading_missing() const noexcept
    {
        return distinct_replies ? first_answered_ordinal : missing();
    }
    std::uint64_t trailing_missing() const noexcept
    {
        if (!distinct_replies) return 0;
        return sent > last_answered_ordinal + 1 ? sent - last_answered_ordinal - 1 : 0;
    }
    std::uint64_t inbound_lost() const noexcept
    {
        if (!have_reflector_seq || !distinct_replies) return 0;
        const std::uint64_t lo = reflector_counts_from_zero ? 0 : min_reflector_seq;
        const std::uint64_t span =
            max_reflector_seq >= lo ? std::uint64_t{max_reflector_seq} - lo + 1 : 0;
        const std::uint64_t seen = distinct_replies + outbound_duplicates + extra_replies;
        const std::uint64_t lost_in = span > seen ? span - seen : 0;
        return std::min(lost_in, attributable_missing());
    }
    std::uint64_t outbound_lost() const noexcept { return attributable_missing() - inbound_lost(); }
    // Missing probes whose direction cannot be told (see above).
    std::uint64_t unknown_direction_lost() const noexcept
    {
        return missing() - attributable_missing();
    }

    static double pct(std::uint64_t part, std::uint64_t whole) noexcept
    {
        return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
    }
    double loss_pct() const noexcept { return pct(lost(), sent); }
    // RFC 4737 §4.1.3: reordered packets over received packets (0 with none received).
    double reordered_ratio() const noexcept
    {
        return received ? static_cast<double>(reordered) / static_cast<double>(received) : 0.0;
    }
    // A one-way direction is clock-synchronised when both ends say so (S bit, RFC 4656 §4.1.2).
    bool one_way_synchronized() const noexcept
    {
        return sender_synchronized && received > 0 && reflector_synchronized;
    }
    // Error bound of a one-way delay: the sum of both ends' error estimates (RFC 7679 §3.7.1), s.
    double one_way_error_bound_s() const noexcept { return sender_error_s + reflector_error_s; }
    double outbound_loss_pct() const noexcept { return pct(outbound_lost(), sent); }
    // Missing probes between the edges, plus the leading ones when the reflector counts from 0.
    std::uint64_t attributable_missing() const noexcept
    {
        const std::uint64_t m = missing();
        if (!distinct_replies) return 0;
        std::uint64_t edge = trailing_missing();
        if (!reflector_counts_from_zero) edge += leading_missing();
        return m > edge ? m - edge : 0;
    }
    double inbound_loss_pct() const noexcept { return pct(inbound_lost(), sent); }
};

} // namespace twamp
