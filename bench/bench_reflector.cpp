// bench/bench_reflector.cpp — the Session-Reflector turnaround.
//
// (a) In memory: session_reflector::reflect() on a 41-octet TWAMP request or a 76-octet STAMP
//     request carrying two TLVs, from 1, 100 or 10,000 distinct senders (the session table is
//     pre-filled, so the loop measures lookups, not inserts), stateful and stateless. Baselines in
//     the same run: a memcpy of the request into the reply buffer (the least any reflector does),
//     and a hand-written stateless TWAMP Light reply (copy, patch the fixed fields, no checks).
// (b) Over loopback sockets: net::udp_reflector::drain() (recvmmsg with timestamps, TTL and TOS
//     → reflect → T3 → sendmmsg) against a plain recvfrom/sendto echo loop and a recvmmsg/sendmmsg
//     echo, with and without the reflector's ancillary data. All of them are driven the same way: a
//     client sends a burst of N 41-octet datagrams with sendmmsg, the server is stepped until it
//     has answered all N (or a 20 ms deadline passes), the client collects the replies (20 ms idle
//     timeout). "server" variants time only the server steps (manual time); "loop" variants time
//     the whole exchange.
#include "bench_common.hpp"
#include "echo_baseline.hpp"

#include "twamp/asio/reflector.hpp"
#include "twamp/reflector_session.hpp"
#include "twamp/test_packet.hpp"

#include <benchmark/benchmark.h>

#include <asio.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::int64_t kT0 = 1'704'067'200'000'000'000LL;     // 2024-01-01T00:00:00Z in ns
constexpr std::size_t kRequests = 256;                        // distinct requests (power of two)
constexpr std::size_t kTwampLen = twamp::kReflectorUnauthLen; // 41: symmetric TWAMP Light
constexpr std::size_t kStampLen = 76; // 44 base + Extra Padding TLV (4+16) + unknown TLV (4+8)

std::vector<std::uint8_t> make_request(bool stamp, std::uint32_t seq)
{
    const auto f = stamp ? twamp::test_format::stamp : twamp::test_format::twamp;
    const std::size_t n = stamp ? kStampLen : kTwampLen;
    std::vector<std::uint8_t> r(n);
    twamp::sender_packet p;
    p.seq = seq;
    p.timestamp = twamp::to_ntp(twamp::nanoseconds{kT0 + seq * 1'000'000LL}).to_u64();
    p.err = {true, false, 10, 42};
    p.ssid = stamp ? 0x0101 : 0;
    (void)twamp::encode_sender(p, f, n, r);
    if (stamp) {
        // Extra Padding (type 1, 16 octets), then a type the reflector does not know (U flag).
        (void)twamp::write_stamp_extra_padding({r.data() + 44, 20});
        std::uint8_t* t = r.data() + 64;
        t[0] = 0;
        t[1] = 3;
        twamp::wire::store16(t + 2, 8);
    }
    return r;
}

std::vector<twamp::peer_key> make_peers(std::size_t n)
{
    std::vector<twamp::peer_key> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto& k = v[i];
        k.addr[10] = k.addr[11] = 0xFF; // ::ffff:10.x.y.z
        k.addr[12] = 10;
        k.addr[13] = static_cast<std::uint8_t>(i >> 16);
        k.addr[14] = static_cast<std::uint8_t>(i >> 8);
        k.addr[15] = static_cast<std::uint8_t>(i);
        k.port = static_cast<std::uint16_t>(40000 + (i % 20000));
    }
    return v;
}

// ---------------------------------------------------------------------------------------------
// (a) in memory

// Args: {senders, stateless, stamp}.
void BM_reflect(benchmark::State& state)
{
    const auto senders = static_cast<std::size_t>(state.range(0));
    const bool stateless = state.range(1) != 0;
    const bool stamp = state.range(2) != 0;
    twamp::reflector_config cfg;
    cfg.stateless = stateless;
    cfg.format = stamp ? twamp::reflector_format::stamp : twamp::reflector_format::twamp;
    cfg.max_sessions = 16384; // room for every sender: no stateless fallback
    twamp::session_reflector refl(cfg);

    std::vector<std::vector<std::uint8_t>> reqs;
    for (std::uint32_t i = 0; i < kRequests; ++i)
        reqs.push_back(make_request(stamp, i));
    const auto peers = make_peers(senders);
    std::vector<std::uint8_t> out(2048);
    std::int64_t t2 = kT0 + 5'000'000;
    for (const auto& p : peers) // fill the session table outside the timed loop
        (void)refl.reflect(reqs[0], p, twamp::nanoseconds{t2}, 64, out);

    std::size_t i = 0, peer = 0;
    std::size_t bytes = 0;
    for (auto _ : state) {
        const std::size_t len =
            refl.reflect(reqs[i++ & (kRequests - 1)], peers[peer], twamp::nanoseconds{t2}, 64, out);
        benchmark::DoNotOptimize(len);
        benchmark::ClobberMemory();
        bytes += len;
        t2 += 1000;
        if (++peer == senders) peer = 0;
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.counters["sessions"] = static_cast<double>(refl.active_sessions());
    state.counters["table_full"] = static_cast<double>(refl.counters().table_full);
}
BENCHMARK(BM_reflect)
    ->ArgNames({"senders", "stateless", "stamp"})
    ->ArgsProduct({{1, 100, 10000}, {0, 1}, {0, 1}});

// STAMP TLV mixes, 1 sender, stateful: what each costs to process. Arg 0: 76 octets, Extra
// Padding (16) + a type no reflector knows (200, 8 octets); 1: the BM_reflect request (Extra
// Padding + Timestamp Information, 8 octets); 2: 44 + Extra Padding (28), no other TLV.
void BM_reflect_tlvs(benchmark::State& state)
{
    const auto mix = state.range(0);
    twamp::reflector_config cfg;
    cfg.format = twamp::reflector_format::stamp;
    twamp::session_reflector refl(cfg);
    std::vector<std::vector<std::uint8_t>> reqs;
    for (std::uint32_t i = 0; i < kRequests; ++i) {
        auto r = make_request(true, i);
        if (mix == 0) r[65] = 200;
        if (mix == 2) (void)twamp::write_stamp_extra_padding({r.data() + 44, 32});
        reqs.push_back(std::move(r));
    }
    const auto peers = make_peers(1);
    std::vector<std::uint8_t> out(2048);
    std::int64_t t2 = kT0 + 5'000'000;
    std::size_t i = 0;
    for (auto _ : state) {
        const std::size_t len =
            refl.reflect(reqs[i++ & (kRequests - 1)], peers[0], twamp::nanoseconds{t2}, 64, out);
        benchmark::DoNotOptimize(len);
        benchmark::ClobberMemory();
        t2 += 1000;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_reflect_tlvs)->ArgName("mix")->Arg(0)->Arg(1)->Arg(2);

// Baseline: copy the request into the reply buffer and nothing else. Arg: request octets.
void BM_baseline_memcpy_request(benchmark::State& state)
{
    const bool stamp = state.range(0) == static_cast<std::int64_t>(kStampLen);
    std::vector<std::vector<std::uint8_t>> reqs;
    for (std::uint32_t i = 0; i < kRequests; ++i)
        reqs.push_back(make_request(stamp, i));
    std::vector<std::uint8_t> out(2048);
    std::size_t i = 0;
    for (auto _ : state) {
        const auto& r = reqs[i++ & (kRequests - 1)];
        benchmark::DoNotOptimize(r.data());
        std::memcpy(out.data(), r.data(), r.size());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * reqs[0].size()));
}
BENCHMARK(BM_baseline_memcpy_request)->ArgName("len")->Arg(kTwampLen)->Arg(kStampLen);

// Baseline: what a minimal stateless TWAMP Light reflector written by hand does for a 41-octet
// request (no length checks, no session table, no format choice, no TLVs).
void BM_baseline_minimal_twamp_reply(benchmark::State& state)
{
    std::vector<std::vector<std::uint8_t>> reqs;
    for (std::uint32_t i = 0; i < kRequests; ++i)
        reqs.push_back(make_request(false, i));
    std::vector<std::uint8_t> out(2048);
    std::int64_t t2 = kT0 + 5'000'000;
    std::size_t i = 0;
    for (auto _ : state) {
        const std::uint8_t* q = reqs[i++ & (kRequests - 1)].data();
        std::uint8_t* o = out.data();
        const std::uint64_t ts = twamp::to_ntp(twamp::nanoseconds{t2}).to_u64();
        std::memcpy(o, q, 4);                 // sequence number (stateless: echoed)
        twamp::wire::store64(o + 4, ts);      // T3 (provisional)
        twamp::wire::store16(o + 12, 0x8A2A); // error estimate
        o[14] = o[15] = 0;                    // MBZ
        twamp::wire::store64(o + 16, ts);     // T2
        std::memcpy(o + 24, q, 14);           // sender seq, T1, sender error estimate
        o[38] = o[39] = 0;                    // MBZ
        o[40] = 64;                           // sender TTL
        benchmark::DoNotOptimize(o);
        benchmark::ClobberMemory();
        t2 += 1000;
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kTwampLen));
}
BENCHMARK(BM_baseline_minimal_twamp_reply);

// ---------------------------------------------------------------------------------------------
// (b) over loopback sockets

constexpr auto kServerDeadline = std::chrono::milliseconds{20};
constexpr auto kClientTimeout = std::chrono::milliseconds{20};
constexpr std::size_t kMaxBurst = 256;

// The library's reflector with the options a user gets by default, bound to 127.0.0.1:0.
struct ours_server {
    asio::io_context io;
    twamp::net::udp_reflector refl;
    ours_server() : refl(io, options())
    {
        if (auto ec = refl.open()) throw std::system_error(ec, "udp_reflector::open");
    }
    static twamp::net::reflector_options options()
    {
        twamp::net::reflector_options o;
        o.local = asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0);
        return o;
    }
    sockaddr_in addr() const
    {
        sockaddr_in a{};
        const auto ep = refl.local_endpoint();
        std::memcpy(&a, ep.data(), sizeof a);
        return a;
    }
    std::size_t step() noexcept { return refl.drain(); }
};

struct recvfrom_server {
    twamp_bench::echo_recvfrom_sendto s;
    sockaddr_in addr() const { return s.addr(); }
    std::size_t step() noexcept { return s.step(); }
};

struct mmsg_server {
    twamp_bench::echo_mmsg s{32}; // the reflector's default batch
    sockaddr_in addr() const { return s.addr(); }
    std::size_t step() noexcept { return s.step(); }
};

struct mmsg_meta_server {
    twamp_bench::echo_mmsg s{32, true};
    sockaddr_in addr() const { return s.addr(); }
    std::size_t step() noexcept { return s.step(); }
};

// One exchange per iteration: burst out, serve, collect. `server_only` times the serving only.
template <class Server> void socket_bench(benchmark::State& state, bool server_only)
{
    const auto burst = static_cast<std::size_t>(state.range(0));
    std::unique_ptr<Server> server;
    std::unique_ptr<twamp_bench::burst_client> client;
    try {
        server = std::make_unique<Server>();
        client = std::make_unique<twamp_bench::burst_client>(server->addr(), make_request(false, 1),
                                                             kMaxBurst);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    std::uint64_t sent = 0, served = 0, received = 0, deadline_hits = 0;
    for (auto _ : state) {
        const std::size_t n = client->send_burst(burst);
        const auto t0 = twamp_bench::steady::now();
        std::size_t done = 0;
        while (done < n) {
            const std::size_t k = server->step();
            done += k;
            if (k == 0 && twamp_bench::steady::now() - t0 > kServerDeadline) {
                ++deadline_hits; // a request was dropped before the server saw it
                break;
            }
        }
        const auto t1 = twamp_bench::steady::now();
        const std::size_t got = client->receive(done, kClientTimeout);
        if (server_only) state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
        sent += n;
        served += done;
        received += got;
    }
    client->flush();
    state.SetItemsProcessed(static_cast<std::int64_t>(received));
    state.counters["lost"] = static_cast<double>(sent - received);
    state.counters["srv_timeouts"] = static_cast<double>(deadline_hits);
    state.counters["not_sent"] =
        static_cast<double>(state.iterations() * burst - static_cast<std::int64_t>(sent));
    (void)served;
}

void BM_sock_server_udp_reflector(benchmark::State& s)
{
    socket_bench<ours_server>(s, true);
}
void BM_sock_server_echo_recvfrom(benchmark::State& s)
{
    socket_bench<recvfrom_server>(s, true);
}
void BM_sock_server_echo_mmsg(benchmark::State& s)
{
    socket_bench<mmsg_server>(s, true);
}
void BM_sock_server_echo_mmsg_meta(benchmark::State& s)
{
    socket_bench<mmsg_meta_server>(s, true);
}
void BM_sock_loop_udp_reflector(benchmark::State& s)
{
    socket_bench<ours_server>(s, false);
}
void BM_sock_loop_echo_recvfrom(benchmark::State& s)
{
    socket_bench<recvfrom_server>(s, false);
}
void BM_sock_loop_echo_mmsg(benchmark::State& s)
{
    socket_bench<mmsg_server>(s, false);
}

void bursts(benchmark::internal::Benchmark* b)
{
    b->ArgName("burst")->Arg(1)->Arg(32)->Arg(256);
}
BENCHMARK(BM_sock_server_udp_reflector)->Apply(bursts)->UseManualTime();
BENCHMARK(BM_sock_server_echo_recvfrom)->Apply(bursts)->UseManualTime();
BENCHMARK(BM_sock_server_echo_mmsg)->Apply(bursts)->UseManualTime();
BENCHMARK(BM_sock_server_echo_mmsg_meta)->Apply(bursts)->UseManualTime();
BENCHMARK(BM_sock_loop_udp_reflector)->Apply(bursts)->UseRealTime();
BENCHMARK(BM_sock_loop_echo_recvfrom)->Apply(bursts)->UseRealTime();
BENCHMARK(BM_sock_loop_echo_mmsg)->Apply(bursts)->UseRealTime();

} // namespace

int main(int argc, char** argv)
{
    using twamp_bench::add_ratio;
    const std::string tw = std::to_string(kTwampLen), st = std::to_string(kStampLen);
    for (const char* senders : {"1", "100", "10000"}) {
        for (const char* stateless : {"0", "1"}) {
            const std::string base =
                std::string("BM_reflect/senders:") + senders + "/stateless:" + stateless;
            add_ratio(base + "/stamp:0", "BM_baseline_memcpy_request/len:" + tw);
            add_ratio(base + "/stamp:1", "BM_baseline_memcpy_request/len:" + st);
        }
    }
    add_ratio("BM_reflect/senders:1/stateless:1/stamp:0", "BM_baseline_minimal_twamp_reply");
    add_ratio("BM_reflect/senders:10000/stateless:0/stamp:0", "BM_baseline_minimal_twamp_reply");
    for (const char* b : {"1", "32", "256"}) {
        const std::string n = std::string("/burst:") + b;
        for (const char* base : {"echo_recvfrom", "echo_mmsg", "echo_mmsg_meta"}) {
            add_ratio("BM_sock_server_udp_reflector" + n + "/manual_time",
                      std::string("BM_sock_server_") + base + n + "/manual_time",
                      "items_per_second");
            if (std::string(base) == "echo_mmsg_meta") continue;
            add_ratio("BM_sock_loop_udp_reflector" + n + "/real_time",
                      std::string("BM_sock_loop_") + base + n + "/real_time", "items_per_second");
        }
    }
    return twamp_bench::run_main(argc, argv);
}
