// bench/bench_packet.cpp — the test packet codec (twamp/test_packet.hpp).
//
// encode_sender / decode_sender and encode_reflector_base / decode_reflector for the smallest
// packets (41 octets TWAMP with symmetric padding, 44 octets STAMP) and for a full Ethernet frame
// (1472 octets of UDP payload = 1514 - 14 Ethernet - 20 IPv4 - 8 UDP). The bytes processed counter
// is the datagram size. Only encode_sender touches every octet (it zero-fills the padding); the
// decoders and encode_reflector_base read or write the fixed base only, so their cost does not
// depend on the size, and their bytes/s grows with it. In-run baselines: memset and memcpy of the
// same number of octets (what zero-filling or copying the datagram costs at least).
#include "bench_common.hpp"

#include "twamp/test_packet.hpp"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kPackets = 256; // distinct packets, walked in order (power of two)
constexpr std::size_t kMask = kPackets - 1;
constexpr std::size_t kFrame = 1472;

twamp::test_format fmt(const benchmark::State& s)
{
    return s.range(0) ? twamp::test_format::stamp : twamp::test_format::twamp;
}
std::size_t len(const benchmark::State& s)
{
    return static_cast<std::size_t>(s.range(1));
}

twamp::sender_packet sender_fields(std::uint32_t i)
{
    twamp::sender_packet p;
    p.seq = i;
    p.timestamp =
        twamp::to_ntp(twamp::nanoseconds{1'704'067'200'000'000'000LL + i * 1'000'003LL}).to_u64();
    p.err = {true, false, 10, 42};
    p.ssid = 0x1234;
    return p;
}

twamp::reflector_packet reflector_fields(std::uint32_t i)
{
    twamp::reflector_packet r;
    const auto s = sender_fields(i);
    r.seq = i + 7;
    r.timestamp = s.timestamp + 3000;
    r.err = {true, false, 12, 3};
    r.ssid = s.ssid;
    r.receive_timestamp = s.timestamp + 2000;
    r.sender_seq = s.seq;
    r.sender_timestamp = s.timestamp;
    r.sender_err = s.err;
    r.sender_ttl = 253;
    return r;
}

// kPackets encoded datagrams of `n` octets, back to back.
std::vector<std::uint8_t> encoded_senders(twamp::test_format f, std::size_t n)
{
    std::vector<std::uint8_t> buf(kPackets * n);
    for (std::uint32_t i = 0; i < kPackets; ++i)
        (void)twamp::encode_sender(sender_fields(i), f, n, {buf.data() + i * n, n});
    return buf;
}
std::vector<std::uint8_t> encoded_reflectors(twamp::test_format f, std::size_t n)
{
    std::vector<std::uint8_t> buf(kPackets * n, 0);
    for (std::uint32_t i = 0; i < kPackets; ++i)
        (void)twamp::encode_reflector_base(reflector_fields(i), f, {buf.data() + i * n, n});
    return buf;
}

void BM_encode_sender(benchmark::State& state)
{
    const auto f = fmt(state);
    const std::size_t n = len(state);
    std::vector<twamp::sender_packet> fields;
    for (std::uint32_t i = 0; i < kPackets; ++i)
        fields.push_back(sender_fields(i));
    std::vector<std::uint8_t> out(n);
    std::size_t i = 0;
    for (auto _ : state) {
        auto ec = twamp::encode_sender(fields[i++ & kMask], f, n, out);
        benchmark::DoNotOptimize(ec);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetItemsProcessed(state.iterations());
}

void BM_decode_sender(benchmark::State& state)
{
    const auto f = fmt(state);
    const std::size_t n = len(state);
    const auto buf = encoded_senders(f, n);
    twamp::sender_packet p;
    std::size_t i = 0;
    for (auto _ : state) {
        const std::size_t k = i++ & kMask;
        auto ec = twamp::decode_sender({buf.data() + k * n, n}, f, p);
        benchmark::DoNotOptimize(ec);
        benchmark::DoNotOptimize(p);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetItemsProcessed(state.iterations());
}

void BM_encode_reflector_base(benchmark::State& state)
{
    const auto f = fmt(state);
    const std::size_t n = len(state);
    std::vector<twamp::reflector_packet> fields;
    for (std::uint32_t i = 0; i < kPackets; ++i)
        fields.push_back(reflector_fields(i));
    std::vector<std::uint8_t> out(n);
    std::size_t i = 0;
    for (auto _ : state) {
        auto ec = twamp::encode_reflector_base(fields[i++ & kMask], f, out);
        benchmark::DoNotOptimize(ec);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetItemsProcessed(state.iterations());
}

void BM_decode_reflector(benchmark::State& state)
{
    const auto f = fmt(state);
    const std::size_t n = len(state);
    const auto buf = encoded_reflectors(f, n);
    twamp::reflector_packet p;
    std::size_t i = 0;
    for (auto _ : state) {
        const std::size_t k = i++ & kMask;
        auto ec = twamp::decode_reflector({buf.data() + k * n, n}, f, p);
        benchmark::DoNotOptimize(ec);
        benchmark::DoNotOptimize(p);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetItemsProcessed(state.iterations());
}

// Baselines: the least work any encoder (zero-fill) or reflector (copy) does with n octets.
void BM_baseline_memset(benchmark::State& state)
{
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<std::uint8_t> out(n);
    for (auto _ : state) {
        benchmark::DoNotOptimize(out.data());
        std::memset(out.data(), 0, n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetItemsProcessed(state.iterations());
}

void BM_baseline_memcpy(benchmark::State& state)
{
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto buf = encoded_senders(twamp::test_format::twamp, n);
    std::vector<std::uint8_t> out(n);
    std::size_t i = 0;
    for (auto _ : state) {
        const std::size_t k = i++ & kMask;
        benchmark::DoNotOptimize(out.data());
        std::memcpy(out.data(), buf.data() + k * n, n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetItemsProcessed(state.iterations());
}

// Args: {format (0 = TWAMP, 1 = STAMP), datagram octets}.
void sizes(benchmark::internal::Benchmark* b)
{
    b->ArgNames({"stamp", "len"});
    b->Args({0, 41})->Args({0, kFrame})->Args({1, 44})->Args({1, kFrame});
}
void baseline_sizes(benchmark::internal::Benchmark* b)
{
    b->ArgName("len")->Arg(41)->Arg(44)->Arg(kFrame);
}

BENCHMARK(BM_encode_sender)->Apply(sizes);
BENCHMARK(BM_decode_sender)->Apply(sizes);
BENCHMARK(BM_encode_reflector_base)->Apply(sizes);
BENCHMARK(BM_decode_reflector)->Apply(sizes);
BENCHMARK(BM_baseline_memset)->Apply(baseline_sizes);
BENCHMARK(BM_baseline_memcpy)->Apply(baseline_sizes);

} // namespace

int main(int argc, char** argv)
{
    using twamp_bench::add_ratio;
    for (const char* s : {"0/len:41", "0/len:1472", "1/len:44", "1/len:1472"}) {
        const std::string ours = std::string("/stamp:") + s;
        const std::string n = std::string(s).substr(2);
        add_ratio("BM_encode_sender" + ours, "BM_baseline_memset/" + n);
        add_ratio("BM_encode_reflector_base" + ours, "BM_baseline_memcpy/" + n);
        add_ratio("BM_decode_reflector" + ours, "BM_baseline_memcpy/" + n);
    }
    return twamp_bench::run_main(argc, argv);
}
