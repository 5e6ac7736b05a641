// twamp/intervals.hpp — per-interval statistics of a running session (`--report-interval`),
// kept as compact summaries for the final report and the SVG chart.
//
// A probe belongs to the interval in which it was sent (its T1), as in RFC 2330 §11.1 sampling:
// the recorder learns each probe's interval from on_sent() and finds it again by its sequence
// number, which gaps (probes the socket refused) do not confuse;
// the interval's loss is then exact (probes sent in it that were not answered in time), and its
// delays are those of its own probes. An interval is closed — summarised and handed to the sink —
// once its time is over and every probe of it is answered, or the loss timeout has passed after
// its end; intervals close in order. At most `max_open` intervals are kept open (each holds three
// histograms); when a short interval and a long timeout need more, the oldest is closed early and
// marked so, its unanswered probes counting as lost in it (the session totals are unaffected).
// Sans-I/O: time is passed in (Unix-epoch nanoseconds, the clock T1 is read from).
#pragma once

#include "twamp/sender_session.hpp"
#include "twamp/stats.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

namespace twamp {

// What the reports need of one direction's delays, frozen.
struct delay_summary {
    std::uint64_t count = 0;
    std::int64_t min = 0, max = 0;
    double mean = 0, jitter = 0, stddev = 0;
    double p5 = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0, p999 = 0; // ns
    std::uint64_t negative = 0;
    std::vector<std::pair<double, double>> percentiles; // (percent, ns), as requested

    static delay_summary of(const delay_stats& d, const std::vector<double>& pcts)
    {
        delay_summary s;
        s.count = d.count();
        s.min = d.min();
        s.max = d.max();
        s.mean = d.mean();
        s.jitter = d.jitter();
        s.stddev = d.stddev();
        s.negative = d.negative();
        s.p5 = d.percentile(5);
        s.p50 = d.percentile(50);
        s.p90 = d.percentile(90);
        s.p95 = d.percentile(95);
        s.p99 = d.percentile(99);
        s.p999 = d.percentile(99.9);
        s.percentiles.reserve(pcts.size());
        for (double p : pcts)
            s.percentiles.emplace_back(p, d.percentile(p));
        return s;
    }
};

struct interval_summary {
    std::uint64_t index = 0;   // 0 for the first interval of the session
    std::int64_t start_ns = 0; // Unix epoch
    std::int64_t end_ns = 0;
    std::uint64_t sent = 0;     // probes sent in the interval
    std::uint64_t received = 0; // of those, answered in time
    std::uint64_t late = 0;     // answered after the timeout
    std::uint64_t duplicates = 0;
    std::uint64_t reordered = 0;
    bool closed_early = false; // see the header comment
    delay_summary outbound, inbound, roundtrip;

    std::uint64_t lost() const noexcept { return sent > received ? sent - received : 0; }
    double loss_pct() const noexcept { return session_stats::pct(lost(), sent); }
};

class interval_recorder {
public:
    interval_recorder(nanoseconds period, nanoseconds timeout, std::vector<double> percentiles,
                      std::size_t max_open = 64)
        : period_(std::max(period, nanoseconds{1})), timeout_(timeout),
          pcts_(std::move(percentiles)), max_open_(std::max<std::size_t>(max_open, 1))
    {
    }

    nanoseconds period() const noexcept { return period_; }

    // The first call fixes the start of interval 0.
    template <class Sink> void on_sent(std::uint32_t seq, nanoseconds t1, Sink&& sink)
    {
        if (!started_) {
            started_ = true;
            start_ = t1;
        }
        const auto k =
            static_cast<std::uint64_t>(std::max<std::int64_t>((t1 - start_) / period_, 0));
        while (next_index_ <= k)
            open_next(sink);
        open_bin& b = open_.back();
        if (b.sent == 0) b.first_seq = seq;
        b.last_seq = seq;
        ++b.sent;
    }

    void on_reply(const reply_result& r)
    {
        open_bin* b = find(r.sample.sender_seq);
        if (!b) return;
        switch (r.status) {
        case reply_status::sample:
            ++b->received;
            ++b->answered;
            if (r.reorder_extent) ++b->reordered;
            b->d->outbound.add(r.sample.outbound_ns);
            b->d->inbound.add(r.sample.inbound_ns);
            b->d->roundtrip.add(r.sample.roundtrip_ns);
            break;
        case reply_status::late:
            ++b->late;
            ++b->answered;
            break;
        case reply_status::duplicate:
            ++b->duplicates;
            break;
        default:
            break;
        }
    }

    // Closes every interval that is over at `now` and has nothing more to wait for.
    template <class Sink> void poll(nanoseconds now, Sink&& sink)
    {
        while (!open_.empty()) {
            const open_bin& b = open_.front();
            const nanoseconds end = start_ + period_ * static_cast<std::int64_t>(b.index + 1);
            if (now < end) break;
            if (b.answered < b.sent && now < end + timeout_) break;
            close_front(false, sink);
        }
    }

    // Closes every interval still open (the session is over).
    template <class Sink> void finish(Sink&& sink)
    {
        while (!open_.empty())
            close_front(false, sink);
    }

    const std::vector<interval_summary>& closed() const noexcept { return closed_; }
    const std::vector<double>& percentiles() const noexcept { return pcts_; }

private:
    struct bin_stats {
        delay_stats outbound, inbound, roundtrip;
    };
    struct open_bin {
        std::uint64_t index = 0;
        // The first and last sequence numbers sent in the interval. Numbers are handed out in
        // send order, so a bin owns exactly the numbers between them; one that is missing there
        // is a probe the socket refused (never sent, never answered).
        std::uint32_t first_seq = 0, last_seq = 0;
        std::uint64_t sent = 0, received = 0, late = 0, answered = 0, duplicates = 0, reordered = 0;
        std::unique_ptr<bin_stats> d;
    };

    template <class Sink> void open_next(Sink& sink)
    {
        if (open_.size() >= max_open_) close_front(true, sink);
        open_bin b;
        b.index = next_index_++;
        if (pool_.empty()) {
            b.d = std::make_unique<bin_stats>();
        } else {
            b.d = std::move(pool_.back());
            pool_.pop_back();
        }
        open_.push_back(std::move(b));
    }

    open_bin* find(std::uint32_t seq) noexcept
    {
        for (auto it = open_.rbegin(); it != open_.rend(); ++it) {
            if (it->sent == 0) continue;
            if (seq >= it->first_seq) return seq <= it->last_seq ? &*it : nullptr;
        }
        return nullptr;
    }

    template <class Sink> void close_front(bool early, Sink& sink)
    {
        open_bin& b = open_.front();
        interval_summary s;
        s.index = b.index;
        s.start_ns = (start_ + period_ * static_cast<std::int64_t>(b.index)).count();
        s.end_ns = s.start_ns + period_.count();
        s.sent = b.sent;
        s.received = b.received;
        s.late = b.late;
        s.duplicates = b.duplicates;
        s.reordered = b.reordered;
        s.closed_early = early && b.answered < b.sent;
        s.outbound = delay_summary::of(b.d->outbound, pcts_);
        s.inbound = delay_summary::of(b.d->inbound, pcts_);
        s.roundtrip = delay_summary::of(b.d->roundtrip, pcts_);
        b.d->outbound.reset();
        b.d->inbound.reset();
        b.d->roundtrip.reset();
        pool_.push_back(std::move(b.d));
        open_.pop_front();
        closed_.push_back(std::move(s));
        sink(closed_.back());
    }

    nanoseconds period_;
    nanoseconds timeout_;
    std::vector<double> pcts_;
    std::size_t max_open_;
    bool started_ = false;
    nanoseconds start_{0};
    std::uint64_t next_index_ = 0;
    std::deque<open_bin> open_;
    std::vector<std::unique_ptr<bin_stats>> pool_;
    std::vector<interval_summary> closed_;
};

} // namespace twamp
