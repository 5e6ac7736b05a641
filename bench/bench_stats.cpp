// bench/bench_stats.cpp — the cost of the streaming statistics: one update (a direction's
// delay_stats with its histogram; a whole reply's worth: three directions, IPDV and reordering)
// and of the queries the reports make (one percentile; a full interval summary).
//
// Inputs (delays log-uniform over 1 µs..10 s, as the accuracy tests use) are built once, outside
// the timed loops. Baseline: a plain count/min/max/sum accumulator.
#include "bench_common.hpp"

#include "twamp/histogram.hpp"
#include "twamp/intervals.hpp"
#include "twamp/metrics.hpp"
#include "twamp/stats.hpp"

#include <benchmark/benchmark.h>

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

void BM_histogram_add(benchmark::State& st)
{
    const auto& in = inputs();
    twamp::log_histogram h;
    std::size_t i = 0;
    for (auto _ : st) {
        h.add(in[i++ & (in.size() - 1)]);
        benchmark::DoNotOptimize(h);
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_histogram_add);

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

} // namespace

int main(int argc, char** argv)
{
    using twamp_bench::add_ratio;
    add_ratio("BM_stats_update_direction", "BM_baseline_naive_add");
    add_ratio("BM_histogram_add", "BM_baseline_naive_add");
    add_ratio("BM_stats_update_reply", "BM_baseline_naive_add");
    return twamp_bench::run_main(argc, argv);
}
