// bench/bench_timestamp.cpp — the wire time conversions (twamp/timestamp.hpp).
//
// ns -> NTP and NTP -> ns (with and without a reference time), the PTPv2 truncated format and the
// Error Estimate, against a naive double-based conversion measured in the same run. Inputs are
// built once, outside the timed loops: 4096 times spread over ±10 years around 2024 with random
// sub-second parts, walked in order so every iteration converts a different value.
#include "bench_common.hpp"

#include "twamp/timestamp.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace {

constexpr std::size_t kInputs = 4096; // a power of two: the index is masked
constexpr std::size_t kMask = kInputs - 1;

struct inputs {
    std::vector<twamp::nanoseconds> ns;
    std::vector<twamp::ntp_timestamp> ntp;
    std::vector<twamp::nanoseconds> reference; // the "receive time" for from_ntp: ns + up to 1 s
    std::vector<std::uint64_t> ptp;
    std::vector<std::uint16_t> err_wire;
    std::vector<twamp::error_estimate> err;

    inputs()
    {
        std::mt19937_64 rng(42);
        const std::int64_t base = 1'704'067'200LL * twamp::kNsPerSec; // 2024-01-01T00:00:00Z
        const std::int64_t span = 10LL * 365 * 86400 * twamp::kNsPerSec;
        std::uniform_int_distribution<std::int64_t> off(-span, span);
        std::uniform_int_distribution<std::int64_t> delay(0, twamp::kNsPerSec);
        std::uniform_int_distribution<int> scale(0, 63), mult(1, 255), bit(0, 1);
        for (std::size_t i = 0; i < kInputs; ++i) {
            const twamp::nanoseconds t{base + off(rng)};
            ns.push_back(t);
            ntp.push_back(twamp::to_ntp(t));
            reference.push_back(t + twamp::nanoseconds{delay(rng)});
            ptp.push_back(twamp::to_ptp_truncated(t));
            twamp::error_estimate e{bit(rng) != 0, bit(rng) != 0,
                                    static_cast<std::uint8_t>(scale(rng)),
                                    static_cast<std::uint8_t>(mult(rng))};
            err.push_back(e);
            err_wire.push_back(e.encode());
        }
    }
};

const inputs& in()
{
    static const inputs v;
    return v;
}

// The naive conversions many implementations use: seconds as one double.
// Near 2024 a double holds the Unix seconds with ~0.24 µs resolution, so these are not exact.
inline twamp::ntp_timestamp naive_to_ntp(twamp::nanoseconds t) noexcept
{
    const double s = static_cast<double>(t.count()) * 1e-9;
    const double whole = std::floor(s);
    return {static_cast<std::uint32_t>(static_cast<std::int64_t>(whole) + twamp::kNtpUnixOffset),
            static_cast<std::uint32_t>((s - whole) * 4294967296.0)};
}

inline twamp::nanoseconds naive_from_ntp(twamp::ntp_timestamp ts) noexcept
{
    // Era 0 only, as the naive code does (valid until 2036).
    const double s = static_cast<double>(std::int64_t{ts.seconds} - twamp::kNtpUnixOffset) +
                     static_cast<double>(ts.fraction) / 4294967296.0;
    return twamp::nanoseconds{static_cast<std::int64_t>(s * 1e9)};
}

// Largest |error| in ns of a ns -> NTP -> ns round trip over the inputs (0 for ours by design).
template <class To, class From> double max_round_trip_error_ns(To to, From from)
{
    std::int64_t worst = 0;
    for (std::size_t i = 0; i < kInputs; ++i) {
        const auto t = in().ns[i];
        if (t.count() >= (2085978496LL * twamp::kNsPerSec)) continue; // naive: era 0 only
        worst = std::max(worst, std::abs((from(to(t)) - t).count()));
    }
    return static_cast<double>(worst);
}

void BM_to_ntp(benchmark::State& state)
{
    const auto& v = in().ns;
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = twamp::to_ntp(v[i++ & kMask]);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["rt_max_err_ns"] = max_round_trip_error_ns(
        [](auto t) { return twamp::to_ntp(t); },
        [](auto n) {
            return twamp::from_ntp(n, twamp::nanoseconds{1'704'067'200LL * 1'000'000'000});
        });
}
BENCHMARK(BM_to_ntp);

void BM_to_ntp_naive_double(benchmark::State& state)
{
    const auto& v = in().ns;
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = naive_to_ntp(v[i++ & kMask]);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["rt_max_err_ns"] = max_round_trip_error_ns(naive_to_ntp, naive_from_ntp);
}
BENCHMARK(BM_to_ntp_naive_double);

void BM_from_ntp_reference(benchmark::State& state)
{
    const auto& v = in().ntp;
    const auto& ref = in().reference;
    std::size_t i = 0;
    for (auto _ : state) {
        const std::size_t k = i++ & kMask;
        auto r = twamp::from_ntp(v[k], ref[k]);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_from_ntp_reference);

void BM_from_ntp_no_reference(benchmark::State& state)
{
    const auto& v = in().ntp;
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = twamp::from_ntp(v[i++ & kMask]);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_from_ntp_no_reference);

void BM_from_ntp_naive_double(benchmark::State& state)
{
    const auto& v = in().ntp;
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = naive_from_ntp(v[i++ & kMask]);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_from_ntp_naive_double);

void BM_to_ptp_truncated(benchmark::State& state)
{
    const auto& v = in().ns;
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = twamp::to_ptp_truncated(v[i++ & kMask]);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_to_ptp_truncated);

void BM_from_ptp_truncated(benchmark::State& state)
{
    const auto& v = in().ptp;
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = twamp::from_ptp_truncated(v[i++ & kMask]);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_from_ptp_truncated);

void BM_error_estimate_encode(benchmark::State& state)
{
    const auto& v = in().err;
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = v[i++ & kMask].encode();
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_error_estimate_encode);

void BM_error_estimate_decode(benchmark::State& state)
{
    const auto& v = in().err_wire;
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = twamp::error_estimate::decode(v[i++ & kMask]);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_error_estimate_decode);

void BM_error_estimate_seconds(benchmark::State& state)
{
    const auto& v = in().err;
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = v[i++ & kMask].seconds();
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_error_estimate_seconds);

// from_seconds searches the scale upwards, so its cost grows with the error: the argument is the
// error in nanoseconds (1 µs, 1 ms, 1 s), jittered by up to ±10 % across the inputs.
void BM_error_estimate_from_seconds(benchmark::State& state)
{
    std::vector<double> errs(kInputs);
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> jitter(0.9, 1.1);
    for (auto& e : errs)
        e = static_cast<double>(state.range(0)) * 1e-9 * jitter(rng);
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = twamp::error_estimate::from_seconds(errs[i++ & kMask], true);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_error_estimate_from_seconds)
    ->ArgName("err_ns")
    ->Arg(1'000)
    ->Arg(1'000'000)
    ->Arg(1'000'000'000);

} // namespace

int main(int argc, char** argv)
{
    twamp_bench::add_ratio("BM_to_ntp", "BM_to_ntp_naive_double");
    twamp_bench::add_ratio("BM_from_ntp_reference", "BM_from_ntp_naive_double");
    twamp_bench::add_ratio("BM_from_ntp_no_reference", "BM_from_ntp_naive_double");
    return twamp_bench::run_main(argc, argv);
}
