// bench/bench_sender.cpp — the Session-Sender in memory (twamp/sender_session.hpp, stats.hpp).
//
// make_probe alone; make_probe + on_reply with the reply patched from a template (the sender's
// whole per-probe cost with the reflector taken out); the same round trip through a real
// session_reflector::reflect (the full in-memory exchange); and the statistics update that
// on_reply performs per sample, against a plain min/max/sum accumulator measured in the same run.
#include "bench_common.hpp"

#include "twamp/reflector_session.hpp"
#include "twamp/sender_session.hpp"
#include "twamp/stats.hpp"
#include "twamp/test_packet.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace {

constexpr std::int64_t kT0 = 1'704'067'200'000'000'000LL; // 2024-01-01T00:00:00Z in ns

twamp::sender_config config(bool stamp)
{
    twamp::sender_config c;
    c.format = stamp ? twamp::test_format::stamp : twamp::test_format::twamp;
    c.ssid = stamp ? 0x0101 : 0;
    c.err = {true, false, 10, 42};
    return c;
}

std::size_t probe_len(bool stamp)
{
    return stamp ? twamp::kStampBaseLen : twamp::kReflectorUnauthLen;
}

// Arg: 0 = TWAMP (41 octets), 1 = STAMP (44 octets).
void BM_make_probe(benchmark::State& state)
{
    const bool stamp = state.range(0) != 0;
    twamp::session_sender s(config(stamp));
    std::vector<std::uint8_t> out(2048);
    const std::size_t n = probe_len(stamp);
    std::int64_t t1 = kT0;
    for (auto _ : state) {
        const std::size_t len = s.make_probe(twamp::nanoseconds{t1}, n, out);
        benchmark::DoNotOptimize(len);
        benchmark::ClobberMemory();
        t1 += 10'000;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_make_probe)->ArgName("stamp")->Arg(0)->Arg(1);

// make_probe + on_reply. The reply is a pre-encoded template whose echoed sender fields and
// T2/T3 are patched per probe (a few stores), so nearly all the time is the sender's.
void BM_probe_reply_round_trip(benchmark::State& state)
{
    const bool stamp = state.range(0) != 0;
    const auto cfg = config(stamp);
    twamp::session_sender s(cfg);
    std::vector<std::uint8_t> probe(2048);
    const std::size_t n = probe_len(stamp);
    std::vector<std::uint8_t> reply(n, 0);
    twamp::reflector_packet r;
    r.err = {true, false, 12, 3};
    r.ssid = cfg.ssid;
    r.sender_err = cfg.err;
    r.sender_ttl = 250;
    (void)twamp::encode_reflector_base(r, cfg.format, reply);

    std::int64_t t1 = kT0;
    std::uint32_t rseq = 0;
    std::uint64_t samples = 0;
    for (auto _ : state) {
        (void)s.make_probe(twamp::nanoseconds{t1}, n, probe);
        // What the reflector would echo: the first 14 octets of the probe, plus its T2/T3.
        std::copy_n(probe.data(), 4, reply.data() + 24);
        std::copy_n(probe.data() + 4, 10, reply.data() + 28);
        twamp::wire::store32(reply.data(), rseq++);
        const std::uint64_t t2 = twamp::to_ntp(twamp::nanoseconds{t1 + 40'000}).to_u64();
        twamp::wire::store64(reply.data() + 16, t2);
        twamp::wire::store64(reply.data() + 4, t2 + 42'950); // ~10 µs turnaround
        const auto res = s.on_reply(reply, twamp::nanoseconds{t1 + 95'000}, 60);
        samples += res.status == twamp::reply_status::sample;
        benchmark::DoNotOptimize(res);
        t1 += 10'000;
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["samples"] = static_cast<double>(samples);
    state.counters["rt_mean_ns"] = s.stats().roundtrip.mean();
}
BENCHMARK(BM_probe_reply_round_trip)->ArgName("stamp")->Arg(0)->Arg(1);

// make_probe → session_reflector::reflect → on_reply: both ends of one exchange, in memory.
void BM_sender_reflector_round_trip(benchmark::State& state)
{
    const bool stamp = state.range(0) != 0;
    const auto cfg = config(stamp);
    twamp::session_sender s(cfg);
    twamp::reflector_config rc;
    rc.format = stamp ? twamp::reflector_format::stamp : twamp::reflector_format::twamp;
    twamp::session_reflector refl(rc);
    twamp::peer_key peer;
    peer.addr[10] = peer.addr[11] = 0xFF;
    peer.addr[12] = 192;
    peer.addr[15] = 1;
    peer.port = 50000;
    std::vector<std::uint8_t> probe(2048), reply(2048);
    const std::size_t n = probe_len(stamp);
    std::int64_t t1 = kT0;
    std::uint64_t samples = 0;
    for (auto _ : state) {
        const std::size_t pl = s.make_probe(twamp::nanoseconds{t1}, n, probe);
        const std::size_t rl =
            refl.reflect({probe.data(), pl}, peer, twamp::nanoseconds{t1 + 40'000}, 61, reply);
        const auto res = s.on_reply({reply.data(), rl}, twamp::nanoseconds{t1 + 95'000}, 60);
        samples += res.status == twamp::reply_status::sample;
        benchmark::DoNotOptimize(res);
        t1 += 10'000;
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["samples"] = static_cast<double>(samples);
}
BENCHMARK(BM_sender_reflector_round_trip)->ArgName("stamp")->Arg(0)->Arg(1);

// ---------------------------------------------------------------------------------------------
// Statistics: on_reply adds one value to each of the three delay_stats per sample.

std::vector<std::int64_t> delays()
{
    std::vector<std::int64_t> v(4096);
    std::mt19937_64 rng(3);
    std::normal_distribution<double> d(250'000.0, 30'000.0);
    for (auto& x : v)
        x = static_cast<std::int64_t>(d(rng));
    return v;
}

void BM_delay_stats_add(benchmark::State& state)
{
    const auto v = delays();
    twamp::delay_stats st;
    std::size_t i = 0;
    for (auto _ : state) {
        st.add(v[i++ & 4095]);
        benchmark::DoNotOptimize(st);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["jitter_ns"] = st.jitter();
}
BENCHMARK(BM_delay_stats_add);

// The three adds and two hop ranges on_reply performs for one sample.
void BM_session_stats_sample(benchmark::State& state)
{
    const auto v = delays();
    twamp::session_stats st;
    std::size_t i = 0;
    for (auto _ : state) {
        const std::int64_t d = v[i++ & 4095];
        st.outbound.add(d / 2 + 1000);
        st.inbound.add(d / 2 - 1000);
        st.roundtrip.add(d);
        st.forward_hops.add(3);
        st.backward_hops.add(4);
        benchmark::DoNotOptimize(st);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_session_stats_sample);

// Baseline: count, min, max and an integer sum; no jitter, no long double, no sign count.
struct naive_stats {
    std::uint64_t count = 0;
    std::int64_t min = 0, max = 0, sum = 0;
    void add(std::int64_t ns) noexcept
    {
        min = count ? std::min(min, ns) : ns;
        max = count ? std::max(max, ns) : ns;
        sum += ns;
        ++count;
    }
};

void BM_baseline_naive_stats_add(benchmark::State& state)
{
    const auto v = delays();
    naive_stats st;
    std::size_t i = 0;
    for (auto _ : state) {
        st.add(v[i++ & 4095]);
        benchmark::DoNotOptimize(st);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_baseline_naive_stats_add);

} // namespace

int main(int argc, char** argv)
{
    using twamp_bench::add_ratio;
    add_ratio("BM_delay_stats_add", "BM_baseline_naive_stats_add");
    add_ratio("BM_probe_reply_round_trip/stamp:0", "BM_make_probe/stamp:0");
    add_ratio("BM_sender_reflector_round_trip/stamp:0", "BM_probe_reply_round_trip/stamp:0");
    return twamp_bench::run_main(argc, argv);
}
