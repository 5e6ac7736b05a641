// bench_send_batch — what a probe costs the sender to send over loopback, one sendto per
// datagram against one sendmmsg for a burst, with a blocking echo peer on its own thread (the
// set-up of the sender's pacing runs, bench/README.md). It answers whether batching a catch-up
// burst with sendmmsg would let a sender that fell behind catch up faster.
//
// Each iteration sends a burst of `burst` 41-octet datagrams, timed (manual time: only the send
// calls), then reads back the replies (not timed; bounded by a 20 ms wait for stragglers).
// Counters: items_per_second (datagrams the send calls took per second of send-call time),
// lost (replies that never came).
#include "bench_common.hpp"
#include "echo_baseline.hpp"

#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

// A blocking recvfrom/sendto echo on its own thread (as bench/udp_echo.cpp), until stopped.
struct echo_thread {
    twamp_bench::plain_udp sock; // 127.0.0.1, 4 MiB buffers; made blocking below
    int fd = sock.fd();
    sockaddr_in addr = sock.addr();
    std::atomic<bool> stop{false};
    std::thread t;

    echo_thread()
    {
        (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        timeval tv{0, 50'000}; // wake up to see `stop`
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        t = std::thread([this] {
            std::uint8_t buf[2048];
            while (!stop.load(std::memory_order_relaxed)) {
                sockaddr_storage from{};
                socklen_t fl = sizeof from;
                const ssize_t r =
                    ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
                if (r > 0)
                    (void)::sendto(fd, buf, static_cast<std::size_t>(r), 0,
                                   reinterpret_cast<const sockaddr*>(&from), fl);
            }
        });
    }
    ~echo_thread()
    {
        stop = true;
        t.join();
    }
    echo_thread(const echo_thread&) = delete;
    echo_thread& operator=(const echo_thread&) = delete;
};

// Reads replies until `want` came or 20 ms pass without one; returns how many came.
std::size_t collect(int fd, std::size_t want)
{
    std::uint8_t buf[2048];
    std::size_t got = 0;
    while (got < want) {
        if (::recv(fd, buf, sizeof buf, 0) > 0) {
            ++got;
            continue;
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) break;
    }
    return got;
}

template <bool Batched> void send_burst(benchmark::State& state)
{
    const auto burst = static_cast<std::size_t>(state.range(0));
    echo_thread echo;
    twamp_bench::plain_udp client; // non-blocking
    const int fd = client.fd();
    std::uint8_t msg[41] = {};
    std::vector<iovec> iov(burst, iovec{msg, sizeof msg});
    std::vector<mmsghdr> mm(burst);
    for (std::size_t i = 0; i < burst; ++i) {
        mm[i].msg_hdr = {};
        mm[i].msg_hdr.msg_name = &echo.addr;
        mm[i].msg_hdr.msg_namelen = sizeof echo.addr;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    std::uint64_t sent = 0, lost = 0;
    for (auto _ : state) {
        std::size_t n = 0;
        const auto t0 = clk::now();
        if constexpr (Batched) {
            const int r = ::sendmmsg(fd, mm.data(), static_cast<unsigned>(burst), 0);
            n = r > 0 ? static_cast<std::size_t>(r) : 0;
        } else {
            for (std::size_t i = 0; i < burst; ++i)
                n += ::sendto(fd, msg, sizeof msg, 0, reinterpret_cast<const sockaddr*>(&echo.addr),
                              sizeof echo.addr) > 0;
        }
        state.SetIterationTime(std::chrono::duration<double>(clk::now() - t0).count());
        sent += n;
        lost += n - collect(fd, n);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(sent));
    state.counters["lost"] = static_cast<double>(lost);
}

void BM_send_sendto(benchmark::State& s)
{
    send_burst<false>(s);
}
void BM_send_sendmmsg(benchmark::State& s)
{
    send_burst<true>(s);
}
BENCHMARK(BM_send_sendto)->ArgName("burst")->Arg(1)->Arg(16)->UseManualTime();
BENCHMARK(BM_send_sendmmsg)->ArgName("burst")->Arg(1)->Arg(16)->UseManualTime();

} // namespace

int main(int argc, char** argv)
{
    for (const char* b : {"1", "16"})
        twamp_bench::add_ratio(std::string("BM_send_sendmmsg/burst:") + b + "/manual_time",
                               std::string("BM_send_sendto/burst:") + b + "/manual_time",
                               "items_per_second");
    return twamp_bench::run_main(argc, argv);
}
