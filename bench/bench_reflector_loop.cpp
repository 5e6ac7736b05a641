// bench_reflector_loop — the reflector closed-loop over loopback, against echo servers measured
// in the same run (issue 14 item 5).
//
// A client keeps `inflight` requests outstanding (128 by default) spread over 8 flows (source
// ports): each reply that comes back is answered with a new request on the same flow, so the
// rate is what the server sustains with that many packets in flight. Servers run on their own
// threads, `threads` of them sharing the port with SO_REUSEPORT (the kernel keeps each flow on
// one thread).
//
// Servers:
// - udp_reflector: the library's reflector as `twamp responder` runs it (default options,
//   run_dedicated(): its own poll() loop, the socket out of any epoll set);
// - udp_reflector_reactor: the same reflector driven by asio's event loop (start(), io.run()),
//   as the server and the daemon run their ports;
// - echo_recvfrom: a plain recvfrom/sendto echo in a poll() loop;
// - echo_mmsg_meta: a recvmmsg/sendmmsg echo in batches of 32 with the reflector's socket
//   metadata (receive timestamp, TTL and TOS in, a TOS control message on every reply, one clock
//   read per batch) in a poll() loop — the "same control messages" floor;
// - echo_mmsg_epoll: that echo with its socket also registered in an epoll set (as any
//   epoll-driven server's is), to show what the registration alone costs.
//
// Counters: items_per_second (replies/s, the closed-loop rate), cpu_ns_per_packet (CPU time of
// the server threads per packet served, CLOCK_THREAD_CPUTIME_ID), lost (requests never
// answered within 100 ms; re-sent so the loop keeps its depth).
#include "bench_common.hpp"
#include "echo_baseline.hpp"

#include "twamp/asio/reflector.hpp"
#include "twamp/test_packet.hpp"

#include <benchmark/benchmark.h>

#include <poll.h>
#include <sys/epoll.h>
#include <time.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kFlows = 8;
constexpr auto kLossTimeout = std::chrono::milliseconds{100};

std::int64_t thread_cpu_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// A loopback UDP socket bound to 127.0.0.1:port with SO_REUSEPORT (port 0: any).
int reuseport_socket(std::uint16_t port)
{
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket");
    const int one = 1, buf = 4 << 20;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
    }
    return fd;
}

std::uint16_t port_of(int fd)
{
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
}

// The echo servers' loop: wait for the socket, serve everything queued, until `stop`.
template <class Echo> std::uint64_t poll_loop(Echo& e, const std::atomic<bool>& stop)
{
    std::uint64_t served = 0;
    pollfd p{e.fd(), POLLIN, 0};
    while (!stop.load(std::memory_order_relaxed)) {
        if (::poll(&p, 1, 5) <= 0) continue;
        served += e.step();
    }
    return served;
}

// One server thread. `Server` has fd(), serve(stop) (returns the packets it served) and wake()
// (called after stop is set, from the client's thread).
template <class Server> struct server_thread {
    std::unique_ptr<Server> server;
    std::atomic<bool>* stop = nullptr;
    std::uint64_t served = 0;
    std::int64_t cpu_ns = 0;
    std::thread t;

    void run()
    {
        const std::int64_t c0 = thread_cpu_ns();
        served = server->serve(*stop);
        cpu_ns = thread_cpu_ns() - c0;
    }
};

// The servers, each constructible on a given port (0: any) with SO_REUSEPORT.
struct ours {
    asio::io_context io;
    twamp::net::udp_reflector refl;
    explicit ours(std::uint16_t port) : refl(io, options(port))
    {
        if (auto ec = refl.open()) throw std::system_error(ec, "udp_reflector::open");
    }
    static twamp::net::reflector_options options(std::uint16_t port)
    {
        twamp::net::reflector_options o;
        o.local = asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), port);
        o.sock.reuse_port = true;
        return o;
    }
    int fd() { return refl.native_handle(); }
    std::uint64_t serve(const std::atomic<bool>&)
    {
        (void)refl.run_dedicated();
        return refl.session().counters().reflected;
    }
    void wake() { refl.request_stop(); }
};

// The same reflector on asio's event loop.
struct ours_reactor : ours {
    explicit ours_reactor(std::uint16_t port) : ours(port) {}
    std::uint64_t serve(const std::atomic<bool>&)
    {
        refl.start();
        io.run();
        return refl.session().counters().reflected;
    }
    void wake() { io.stop(); }
};

// Plain recvfrom/sendto echo, each datagram as it comes.
struct raw_echo {
    int fd_ = -1;
    std::uint8_t buf[9728];
    explicit raw_echo(std::uint16_t port) : fd_(reuseport_socket(port)) {}
    ~raw_echo() { ::close(fd_); }
    int fd() const { return fd_; }
    std::uint64_t serve(const std::atomic<bool>& stop) { return poll_loop(*this, stop); }
    void wake() {}
    std::size_t step() noexcept
    {
        std::size_t n = 0;
        for (;;) {
            sockaddr_storage from{};
            socklen_t len = sizeof from;
            const ssize_t r =
                ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (r < 0) return n;
            if (::sendto(fd_, buf, static_cast<std::size_t>(r), 0,
                         reinterpret_cast<const sockaddr*>(&from), len) >= 0)
                ++n;
        }
    }
};

// recvmmsg/sendmmsg echo with the reflector's metadata (echo_baseline.hpp), on a REUSEPORT socket.
struct mmsg_echo {
    twamp_bench::echo_mmsg e{32, true};
    int fd_ = -1;
    explicit mmsg_echo(std::uint16_t port)
    {
        // echo_mmsg binds its own socket; rebind a REUSEPORT one in its place.
        fd_ = reuseport_socket(port);
        ::dup2(fd_, e.fd());
        ::close(fd_);
        fd_ = e.fd();
        const int one = 1;
        (void)::setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        (void)::setsockopt(fd_, IPPROTO_IP, IP_RECVTTL, &one, sizeof one);
        (void)::setsockopt(fd_, IPPROTO_IP, IP_RECVTOS, &one, sizeof one);
        // As the reflector's sockets: TTL 255, and DF left to the caller (no PMTU discovery).
        const int ttl = 255, pmtu = IP_PMTUDISC_DONT;
        (void)::setsockopt(fd_, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
        (void)::setsockopt(fd_, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
    }
    int fd() const { return fd_; }
    std::uint64_t serve(const std::atomic<bool>& stop) { return poll_loop(*this, stop); }
    void wake() {}
    std::size_t step() noexcept { return e.step(); }
};

// mmsg_echo with its socket in an epoll set (never waited on: the loop still uses poll()).
struct mmsg_echo_epoll : mmsg_echo {
    int ep = -1;
    explicit mmsg_echo_epoll(std::uint16_t port) : mmsg_echo(port)
    {
        ep = ::epoll_create1(EPOLL_CLOEXEC);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLPRI | EPOLLET; // what asio registers
        if (ep < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, fd(), &ev) != 0)
            throw std::runtime_error("epoll_ctl");
    }
    ~mmsg_echo_epoll() { ::close(ep); }
    mmsg_echo_epoll(const mmsg_echo_epoll&) = delete;
    mmsg_echo_epoll& operator=(const mmsg_echo_epoll&) = delete;
};

template <class Server> std::unique_ptr<Server> make_server(std::uint16_t port)
{
    return std::make_unique<Server>(port);
}

// The closed loop: `threads` servers of type Server on one port, `inflight` requests over
// kFlows flows of `len` octets.
template <class Server> void closed_loop(benchmark::State& state)
{
    const auto len = static_cast<std::size_t>(state.range(0));
    const auto threads = static_cast<std::size_t>(state.range(1));
    const auto inflight = static_cast<std::size_t>(state.range(2));
    std::atomic<bool> stop{false};
    std::vector<std::unique_ptr<server_thread<Server>>> servers;
    std::uint16_t port = 0;
    try {
        for (std::size_t i = 0; i < threads; ++i) {
            auto st = std::make_unique<server_thread<Server>>();
            st->server = make_server<Server>(port);
            if (port == 0) port = port_of(st->server->fd());
            st->stop = &stop;
            servers.push_back(std::move(st));
        }
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    for (auto& s : servers)
        s->t = std::thread([p = s.get()] { p->run(); });

    // Open-mode TWAMP-Test requests of `len` octets (41 minimum), one socket per flow.
    std::vector<std::uint8_t> req(len, 0);
    twamp::sender_packet sp;
    (void)twamp::encode_sender(sp, twamp::test_format::twamp, len, req);
    std::vector<int> flows;
    std::vector<pollfd> pfds;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    for (std::size_t f = 0; f < kFlows; ++f) {
        const int fd = reuseport_socket(0);
        (void)::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
        flows.push_back(fd);
        pfds.push_back({fd, POLLIN, 0});
    }
    std::vector<std::size_t> outstanding(kFlows, 0);
    auto send_on = [&](std::size_t f) {
        if (::send(flows[f], req.data(), req.size(), 0) >= 0) ++outstanding[f];
    };
    for (std::size_t i = 0; i < inflight; ++i)
        send_on(i % kFlows);

    std::uint64_t received = 0, lost = 0;
    std::uint8_t buf[9728];
    for (auto _ : state) {
        // One iteration: 4096 replies, each answered with a new request.
        std::size_t got = 0;
        auto last = twamp_bench::steady::now();
        while (got < 4096) {
            if (::poll(pfds.data(), pfds.size(), 10) <= 0) {
                if (twamp_bench::steady::now() - last > kLossTimeout) {
                    // Refill what was lost so the loop keeps its depth.
                    std::size_t out = 0;
                    for (auto o : outstanding)
                        out += o;
                    for (std::size_t i = out; i < inflight; ++i)
                        send_on(i % kFlows);
                    lost += inflight - std::min(out, inflight);
                    for (auto& o : outstanding)
                        o = std::min<std::size_t>(o, inflight / kFlows);
                    last = twamp_bench::steady::now();
                }
                continue;
            }
            for (std::size_t f = 0; f < kFlows; ++f) {
                if (!(pfds[f].revents & POLLIN)) continue;
                while (::recv(flows[f], buf, sizeof buf, 0) > 0) {
                    if (outstanding[f]) --outstanding[f];
                    ++got;
                    send_on(f);
                }
            }
            last = twamp_bench::steady::now();
        }
        received += got;
    }
    stop = true;
    for (auto& s : servers)
        s->server->wake();
    std::uint64_t served = 0;
    std::int64_t cpu = 0;
    for (auto& s : servers) {
        s->t.join();
        served += s->served;
        cpu += s->cpu_ns;
    }
    for (int fd : flows)
        ::close(fd);
    state.SetItemsProcessed(static_cast<std::int64_t>(received));
    state.counters["cpu_ns_per_packet"] =
        served ? static_cast<double>(cpu) / static_cast<double>(served) : 0.0;
    state.counters["lost"] = static_cast<double>(lost);
}

void BM_loop_udp_reflector(benchmark::State& s)
{
    closed_loop<ours>(s);
}
void BM_loop_udp_reflector_reactor(benchmark::State& s)
{
    closed_loop<ours_reactor>(s);
}
void BM_loop_echo_mmsg_epoll(benchmark::State& s)
{
    closed_loop<mmsg_echo_epoll>(s);
}
void BM_loop_echo_recvfrom(benchmark::State& s)
{
    closed_loop<raw_echo>(s);
}
void BM_loop_echo_mmsg_meta(benchmark::State& s)
{
    closed_loop<mmsg_echo>(s);
}

void shapes(benchmark::internal::Benchmark* b)
{
    b->ArgNames({"len", "threads", "inflight"});
    for (long len : {64L, 1472L})
        for (long threads : {1L, 2L})
            b->Args({len, threads, 128});
    b->UseRealTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_loop_udp_reflector)->Apply(shapes);
BENCHMARK(BM_loop_udp_reflector_reactor)->Apply(shapes);
BENCHMARK(BM_loop_echo_mmsg_epoll)->Apply(shapes);
BENCHMARK(BM_loop_echo_recvfrom)->Apply(shapes);
BENCHMARK(BM_loop_echo_mmsg_meta)->Apply(shapes);

} // namespace

int main(int argc, char** argv)
{
    using twamp_bench::add_ratio;
    for (const char* len : {"64", "1472"})
        for (const char* threads : {"1", "2"}) {
            const std::string args =
                std::string("/len:") + len + "/threads:" + threads + "/inflight:128/real_time";
            add_ratio("BM_loop_udp_reflector" + args, "BM_loop_echo_recvfrom" + args,
                      "items_per_second");
            add_ratio("BM_loop_udp_reflector" + args, "BM_loop_echo_mmsg_meta" + args,
                      "cpu_ns_per_packet");
            add_ratio("BM_loop_udp_reflector_reactor" + args, "BM_loop_echo_mmsg_epoll" + args,
                      "cpu_ns_per_packet");
        }
    return twamp_bench::run_main(argc, argv);
}
