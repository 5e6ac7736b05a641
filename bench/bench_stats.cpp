// bench/bench_stats.cpp — the cost of the streaming statistics: one update (a direction's
// delay_stats with its histogram; a whole reply's worth: three directions, IPDV and reordering)
// and of the queries the reports make (one percentile; a full interval summary).
//
// Inputs (delays log-uniform over 1 µs..10 s, as the accuracy tests use) are built once, outside
// the timed loops. Baseline: a plain count/min/max/sum accumulator. The histogram is also measured
// against `dense_histogram`, the former storage (one zero-filled array of 2 × 4096 counters, 64
// KiB) kept here so that both run in the same process: the `_dense` benchmarks.
#include "bench_common.hpp"

#include "twamp/histogram.hpp"
#include "twamp/intervals.hpp"
#include "twamp/metrics.hpp"
#include "twamp/stats.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace {

const std::vector<std::int64_t>& inputs()
{
    static const std::vector<std::int64_t> v = [] {
        std::mt19937_64 rng(1);
        std::uniform_real_distribution<double> lu(std::log(1e3), std::log(1e10));
        std::vector<std::int64_t> out(1 << 16);
        for (auto& x : out)
            x = static_cast<std::int64_t>(std::exp(lu(rng)));
        return out;
    }();
    return v;
}

struct naive {
    std::uint64_t n = 0;
    std::int64_t mn = INT64_MAX, mx = INT64_MIN, sum = 0;
    void add(std::int64_t v)
    {
        ++n;
        mn = std::min(mn, v);
        mx = std::max(mx, v);
        sum += v;
    }
};

// The histogram's former storage: every counter of both sides in one dense array in value order
// (the negative side from the largest magnitude down), allocated and zeroed at construction.
class dense_histogram {
public:
    static constexpr std::size_t kSide = twamp::log_histogram::kSide;

    void add(std::int64_t v) noexcept
    {
        if (count_ == 0) {
            min_ = max_ = v;
        } else {
            min_ = std::min(min_, v);
            max_ = std::max(max_, v);
        }
        ++count_;
        const std::uint64_t m = v < 0 ? std::uint64_t(0) - static_cast<std::uint64_t>(v)
                                      : static_cast<std::uint64_t>(v);
        if ((m >> twamp::log_histogram::kMaxBits) != 0) ++overflow_;
        const std::size_t i = twamp::log_histogram::magnitude_index(m);
        counts_[v < 0 ? kSide - 1 - i : kSide + i] += 1;
    }
    void merge(const dense_histogram& o) noexcept
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
    double percentile(double p) const noexcept
    {
        if (count_ == 0) return 0.0;
        if (!(p > 0)) return static_cast<double>(min_);
        if (p >= 100) return static_cast<double>(max_);
        const std::uint64_t rank = twamp::log_histogram::nearest_rank(p, count_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                const bool neg = i < kSide;
                const std::size_t idx = neg ? kSide - 1 - i : i - kSide;
                const std::uint64_t w = twamp::log_histogram::magnitude_width(idx);
                const double m = static_cast<double>(twamp::log_histogram::magnitude_low(idx)) +
                                 (w > 1 ? static_cast<double>(w - 1) / 2.0 : 0.0);
                return std::clamp(neg ? -m : m, static_cast<double>(min_),
                                  static_cast<double>(max_));
            }
        }
        return static_cast<double>(max_);
    }
    std::size_t memory_bytes() const noexcept
    {
        return sizeof(*this) + counts_.capacity() * sizeof(std::uint64_t);
    }

private:
    std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(2 * kSide, 0);
    std::uint64_t count_ = 0, overflow_ = 0;
    std::int64_t min_ = 0, max_ = 0;
};

void BM_baseline_naive_add(benchmark::State& st)
{
    const auto& in = inputs();
    naive a;
    std::size_t i = 0;
    for (auto _ : st) {
        a.add(in[i++ & (in.size() - 1)]);
        benchmark::DoNotOptimize(a);
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_baseline_naive_add);

// One add in steady state (every block of the inputs' 25 octaves allocated in the first few
// hundred adds); `bytes` is the histogram's memory at the end.
template <class H> void histogram_add(benchmark::State& st)
{
    const auto& in = inputs();
    H h;
    std::size_t i = 0;
    for (auto _ : st) {
        h.add(in[i++ & (in.size() - 1)]);
        benchmark::DoNotOptimize(h);
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
    st.counters["bytes"] = static_cast<double>(h.memory_bytes());
}
void BM_histogram_add(benchmark::State& st)
{
    histogram_add<twamp::log_histogram>(st);
}
void BM_histogram_add_dense(benchmark::State& st)
{
    histogram_add<dense_histogram>(st);
}
BENCHMARK(BM_histogram_add);
BENCHMARK(BM_histogram_add_dense);

// What a session's histogram costs from construction to destruction when it sees 60 delays of
// 10–40 µs (a minute of 1 probe/s over loopback): the allocation, the adds, one p99 and the free.
template <class H> void histogram_short_life(benchmark::State& st)
{
    const auto& in = inputs();
    std::size_t i = 0;
    std::size_t bytes = 0;
    for (auto _ : st) {
        H h;
        for (int k = 0; k < 60; ++k)
            h.add(10'000 + in[i++ & (in.size() - 1)] % 30'000);
        benchmark::DoNotOptimize(h.percentile(99));
        bytes = h.memory_bytes();
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
    st.counters["bytes"] = static_cast<double>(bytes);
}
void BM_histogram_short_life(benchmark::State& st)
{
    histogram_short_life<twamp::log_histogram>(st);
}
void BM_histogram_short_life_dense(benchmark::State& st)
{
    histogram_short_life<dense_histogram>(st);
}
BENCHMARK(BM_histogram_short_life);
BENCHMARK(BM_histogram_short_life_dense);

// One direction: min/max/mean, RFC 3550 jitter, Welford stddev, histogram.
void BM_stats_update_direction(benchmark::State& st)
{
    const auto& in = inputs();
    twamp::delay_stats d;
    std::size_t i = 0;
    for (auto _ : st) {
        d.add(in[i++ & (in.size() - 1)]);
        benchmark::DoNotOptimize(d);
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_stats_update_direction);

// What one in-time reply costs the statistics in session_sender::on_reply: three directions,
// the reorder tracker, the IPDV tracker and the three IPDV directions.
void BM_stats_update_reply(benchmark::State& st)
{
    const auto& in = inputs();
    twamp::session_stats s;
    twamp::ipdv_tracker ipdv(1024);
    twamp::reorder_tracker reorder(1024);
    std::uint32_t seq = 0;
    for (auto _ : st) {
        const std::int64_t rt = in[seq & (in.size() - 1)];
        const twamp::delay_triple d{rt / 2, rt - rt / 2, rt};
        if (reorder.add(seq)) ++s.reordered;
        ipdv.add(seq, d, [&](const twamp::delay_triple& v) {
            s.ipdv.outbound.add(v[0]);
            s.ipdv.inbound.add(v[1]);
            s.ipdv.roundtrip.add(v[2]);
        });
        s.outbound.add(d[0]);
        s.inbound.add(d[1]);
        s.roundtrip.add(d[2]);
        ++seq;
        benchmark::DoNotOptimize(s);
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_stats_update_reply);

twamp::delay_stats filled(std::size_t n)
{
    twamp::delay_stats d;
    const auto& in = inputs();
    for (std::size_t i = 0; i < n; ++i)
        d.add(in[i & (in.size() - 1)]);
    return d;
}

// One percentile query over a filled histogram (the walk over the buckets).
void BM_percentile_query(benchmark::State& st)
{
    const auto d = filled(1'000'000);
    const double p = static_cast<double>(st.range(0)) / 10.0;
    for (auto _ : st)
        benchmark::DoNotOptimize(d.percentile(p));
}
BENCHMARK(BM_percentile_query)->ArgName("p_x10")->Arg(500)->Arg(999);

void BM_percentile_query_dense(benchmark::State& st)
{
    dense_histogram h;
    const auto& in = inputs();
    for (std::size_t i = 0; i < 1'000'000; ++i)
        h.add(in[i & (in.size() - 1)]);
    const double p = static_cast<double>(st.range(0)) / 10.0;
    for (auto _ : st)
        benchmark::DoNotOptimize(h.percentile(p));
}
BENCHMARK(BM_percentile_query_dense)->ArgName("p_x10")->Arg(500)->Arg(999);

// Everything an interval summary reads: 6 fixed percentiles + 5 requested, stddev, etc.
void BM_delay_summary(benchmark::State& st)
{
    const auto d = filled(100'000);
    const std::vector<double> pcts{50, 90, 95, 99, 99.9};
    for (auto _ : st)
        benchmark::DoNotOptimize(twamp::delay_summary::of(d, pcts));
}
BENCHMARK(BM_delay_summary);

void BM_histogram_merge(benchmark::State& st)
{
    const auto a = filled(100'000).histogram();
    twamp::log_histogram acc;
    for (auto _ : st) {
        acc.merge(a);
        benchmark::DoNotOptimize(acc);
    }
}
BENCHMARK(BM_histogram_merge);

void BM_histogram_merge_dense(benchmark::State& st)
{
    dense_histogram a;
    const auto& in = inputs();
    for (std::size_t i = 0; i < 100'000; ++i)
        a.add(in[i & (in.size() - 1)]);
    dense_histogram acc;
    for (auto _ : st) {
        acc.merge(a);
        benchmark::DoNotOptimize(acc);
    }
}
BENCHMARK(BM_histogram_merge_dense);

} // namespace

int main(int argc, char** argv)
{
    using twamp_bench::add_ratio;
    add_ratio("BM_stats_update_direction", "BM_baseline_naive_add");
    add_ratio("BM_histogram_add", "BM_baseline_naive_add");
    add_ratio("BM_histogram_add", "BM_histogram_add_dense");
    add_ratio("BM_histogram_short_life", "BM_histogram_short_life_dense");
    add_ratio("BM_stats_update_reply", "BM_baseline_naive_add");
    return twamp_bench::run_main(argc, argv);
}
