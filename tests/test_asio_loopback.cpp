// In-process loopback tests of the asio transport: udp_reflector (asio/reflector.hpp),
// udp_sender (asio/sender.hpp), twamp_server (asio/server.hpp) and controller
// (asio/controller.hpp), through their public API only, on 127.0.0.1.
//
// Each side is checked against a peer written here from the RFC layouts, not against the
// library's own encoder or decoder: the reflector answers requests built octet by octet
// (RFC 5357 4.1.2) and its replies are decoded field by field (RFC 5357 4.2.1); the sender is
// answered by a hand-written reflector that chooses T2 and T3 itself, so the delays the sender
// reports are known exactly. Then the library's sender, reflector, server and controller run
// against each other. Every wait is bounded (socket timeouts of 2 s, run_for limits).
#include "twamp/asio/controller.hpp"
#include "twamp/asio/reflector.hpp"
#include "twamp/asio/sender.hpp"
#include "twamp/asio/server.hpp"

#include <doctest/doctest.h>

#include "support/plain_udp.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <thread>
#include <vector>

namespace {

constexpr std::int64_t kNtpUnixOffset = 2'208'988'800; // seconds from 1900 to 1970

// NTP 64-bit timestamp <-> ns since the Unix epoch, written here from RFC 5905's definition
// (frac_ns < 2^30 and frac < 2^32, so neither product overflows 64 bits).
std::uint64_t ntp_of(std::int64_t unix_ns)
{
    const std::int64_t sec = unix_ns / 1'000'000'000;
    const std::int64_t frac_ns = unix_ns % 1'000'000'000;
    const auto frac =
        static_cast<std::uint64_t>((static_cast<std::uint64_t>(frac_ns) << 32) / 1'000'000'000);
    return (static_cast<std::uint64_t>(sec + kNtpUnixOffset) << 32) | frac;
}
std::int64_t unix_ns_of(std::uint64_t ntp)
{
    const auto sec = static_cast<std::int64_t>(ntp >> 32) - kNtpUnixOffset;
    const auto frac = ntp & 0xFFFFFFFFu;
    const auto ns = static_cast<std::int64_t>((frac * 1'000'000'000) >> 32);
    return sec * 1'000'000'000 + ns;
}
std::int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void put32(std::uint8_t* p, std::uint32_t v)
{
    p[0] = std::uint8_t(v >> 24);
    p[1] = std::uint8_t(v >> 16);
    p[2] = std::uint8_t(v >> 8);
    p[3] = std::uint8_t(v);
}
void put64(std::uint8_t* p, std::uint64_t v)
{
    put32(p, std::uint32_t(v >> 32));
    put32(p + 4, std::uint32_t(v));
}
std::uint32_t get32(const std::uint8_t* p)
{
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
           p[3];
}
std::uint64_t get64(const std::uint8_t* p)
{
    return (std::uint64_t(get32(p)) << 32) | get32(p + 4);
}
std::uint16_t get16(const std::uint8_t* p)
{
    return std::uint16_t((p[0] << 8) | p[1]);
}

using peer_socket = twamp_test::plain_udp_peer;

asio::ip::udp::endpoint udp_loopback(std::uint16_t port)
{
    return {asio::ip::make_address_v4("127.0.0.1"), port};
}

// Runs an io_context on its own thread until stop(); the destructor joins it.
struct io_thread {
    asio::io_context& io;
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::thread t;
    explicit io_thread(asio::io_context& c)
        : io(c), work(asio::make_work_guard(c)), t([this] { io.run(); })
    {
    }
    template <class F> void stop(F&& last)
    {
        asio::post(io, [this, f = std::forward<F>(last)]() mutable {
            f();
            work.reset();
            io.stop();
        });
        t.join();
    }
    ~io_thread()
    {
        if (t.joinable()) {
            work.reset();
            io.stop();
            t.join();
        }
    }
};

} // namespace

TEST_CASE("udp_reflector answers hand-built TWAMP-Test requests as RFC 5357 4.2.1 lays out")
{
    asio::io_context io;
    twamp::net::reflector_options ro;
    ro.local = udp_loopback(0);
    twamp::net::udp_reflector refl(io, ro);
    REQUIRE_FALSE(refl.open());
    const auto port = refl.local_endpoint().port();
    REQUIRE(port != 0);
    refl.start();
    io_thread runner(io);

    peer_socket client;
    client.set_ip(IP_TTL, 77);            // comes back as the Sender TTL
    client.set_ip(IP_TOS, 0xB8);          // a TWAMP Light reflector copies the DS field
    const std::uint16_t err_est = 0x8101; // S set, scale 1, multiplier 1
    for (std::uint32_t seq = 0; seq < 3; ++seq) {
        // RFC 5357 4.1.2 unauthenticated request: Sequence Number, Timestamp, Error Estimate,
        // then 27 octets of padding (a 41-octet request, the size of the reply).
        std::vector<std::uint8_t> req(41, 0);
        put32(&req[0], 1000 + seq);
        const std::int64_t t1 = now_ns();
        put64(&req[4], ntp_of(t1));
        req[12] = std::uint8_t(err_est >> 8);
        req[13] = std::uint8_t(err_est);
        for (std::size_t i = 14; i < req.size(); ++i)
            req[i] = std::uint8_t(i);
        client.send_to(port, req);
        peer_socket::datagram d;
        REQUIRE(client.receive(d));
        const std::int64_t t4 = now_ns();
        INFO("probe " << seq);
        REQUIRE(d.data.size() == 41);
        const std::uint8_t* r = d.data.data();
        CHECK(get32(r + 0) == seq); // the reflector's own count, from 0
        const std::int64_t t3 = unix_ns_of(get64(r + 4));
        CHECK(get16(r + 12) != 0); // its Error Estimate: multiplier never 0
        CHECK(get16(r + 14) == 0); // MBZ
        const std::int64_t t2 = unix_ns_of(get64(r + 16));
        CHECK(get32(r + 24) == 1000 + seq); // Sender Sequence Number
        CHECK(get64(r + 28) == ntp_of(t1)); // Sender Timestamp, unchanged
        CHECK(get16(r + 36) == err_est);    // Sender Error Estimate, unchanged
        CHECK(get16(r + 38) == 0);          // MBZ
        CHECK(r[40] == 77);                 // Sender TTL: what our packet arrived with
        // Receive and send times fall between our send and receive (1 us of NTP rounding).
        CHECK(t2 >= t1 - 1000);
        CHECK(t2 <= t3);
        CHECK(t3 <= t4 + 1000);
        CHECK(d.ttl == 255); // RFC 5357 4.2.1: replies leave with TTL 255
        CHECK(d.tos == 0xB8);
    }
    // Too short to be a test packet: dropped, no reply.
    client.send_to(port, std::vector<std::uint8_t>(10, 0));
    peer_socket::datagram none;
    timeval tv{0, 300'000};
    REQUIRE(::setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    CHECK_FALSE(client.receive(none));

    twamp::reflector_counters c{};
    runner.stop([&] {
        c = refl.session().counters();
        refl.stop();
    });
    CHECK(c.received == 4);
    CHECK(c.reflected == 3);
    CHECK(c.malformed == 1);
}

TEST_CASE("udp_sender against a hand-written reflector: exact delays, a loss and a duplicate")
{
    // The peer reflects 6 probes by hand with T2 = T1 + 3 ms and T3 = T2 + 1 ms, drops the probe
    // with sequence number 2 and answers probe 4 twice. So every outbound delay is 3 ms (to the
    // NTP resolution) and the round trip excludes exactly the 1 ms the peer claims to have held
    // the probe.
    constexpr std::uint32_t kCount = 6;
    peer_socket refl;
    std::atomic<int> handled{0};
    std::thread peer([&] {
        std::uint32_t rseq = 0;
        for (std::uint32_t i = 0; i < kCount; ++i) {
            peer_socket::datagram d;
            if (!refl.receive(d) || d.data.size() < 14) return;
            const std::uint8_t* q = d.data.data();
            const std::uint32_t seq = get32(q);
            const std::int64_t t1 = unix_ns_of(get64(q + 4));
            handled.fetch_add(1);
            if (seq == 2) continue; // lost
            std::vector<std::uint8_t> rep(std::max<std::size_t>(41, d.data.size()), 0);
            const std::int64_t t2 = t1 + 3'000'000, t3 = t2 + 1'000'000;
            put64(&rep[4], ntp_of(t3));
            rep[12] = 0x80; // S, scale 0
            rep[13] = 1;    // multiplier 1
            put64(&rep[16], ntp_of(t2));
            std::memcpy(&rep[24], q, 4);      // Sender Sequence Number
            std::memcpy(&rep[28], q + 4, 8);  // Sender Timestamp
            std::memcpy(&rep[36], q + 12, 2); // Sender Error Estimate
            rep[40] = static_cast<std::uint8_t>(d.ttl);
            for (int copies = seq == 4 ? 2 : 1; copies > 0; --copies) {
                put32(&rep[0], rseq++);
                refl.send_to(d.from, rep);
            }
        }
    });

    asio::io_context io;
    twamp::net::sender_options so;
    so.remote = udp_loopback(refl.port);
    so.local = udp_loopback(0);
    so.count = kCount;
    so.interval = std::chrono::milliseconds{5};
    so.core.timeout = std::chrono::milliseconds{500};
    twamp::net::udp_sender sender(io, so);
    REQUIRE_FALSE(sender.open());
    std::vector<twamp::reply_result> replies;
    sender.on_reply([&](const twamp::reply_result& r) { replies.push_back(r); });
    bool done = false;
    sender.start([&] { done = true; });
    io.run_for(std::chrono::seconds{10});
    peer.join();
    REQUIRE(done);
    CHECK(handled.load() == int(kCount));

    const auto& st = sender.stats();
    CHECK(st.sent == kCount);
    CHECK(sender.scheduled() == kCount);
    CHECK(st.received == kCount - 1);
    CHECK(st.lost() == 1);
    CHECK(st.duplicates == 1);
    int samples = 0, dups = 0;
    for (const auto& r : replies) {
        if (r.status == twamp::reply_status::duplicate) {
            ++dups;
            CHECK(r.sample.sender_seq == 4);
            continue;
        }
        REQUIRE(r.status == twamp::reply_status::sample);
        ++samples;
        INFO("sender seq " << r.sample.sender_seq);
        CHECK(r.sample.sender_seq != 2);
        // NTP fractions are 2^-32 s (0.23 ns): each conversion may be off by 1 ns.
        CHECK(std::llabs(r.sample.outbound_ns - 3'000'000) <= 2);
        CHECK(r.sample.t3.count() - r.sample.t2.count() >= 1'000'000 - 2);
        CHECK(r.sample.t3.count() - r.sample.t2.count() <= 1'000'000 + 2);
        // Round trip = (T4 - T1) - (T3 - T2), T3 - T2 being the 1 ms the peer claims to have
        // held the probe (it answered at once). T4 - T1 is the real loopback time: at least 0.
        CHECK(r.sample.t4.count() - r.sample.t1.count() >= 0);
        CHECK(r.sample.roundtrip_ns >= -1'000'000 - 2);
        CHECK(r.sample.roundtrip_ns == (r.sample.t4.count() - r.sample.t1.count()) -
                                           (r.sample.t3.count() - r.sample.t2.count()));
    }
    CHECK(samples == int(kCount) - 1);
    CHECK(dups == 1);
}

TEST_CASE("udp_sender and udp_reflector on one io_context: every probe answered")
{
    asio::io_context io;
    twamp::net::reflector_options ro;
    ro.local = udp_loopback(0);
    twamp::net::udp_reflector refl(io, ro);
    REQUIRE_FALSE(refl.open());
    refl.start();
    twamp::net::sender_options so;
    so.remote = refl.local_endpoint();
    so.local = udp_loopback(0);
    so.count = 50;
    so.interval = std::chrono::milliseconds{1};
    so.core.timeout = std::chrono::seconds{2};
    so.sizes = {41, 200, 1000}; // in turn: the replies are as long as the requests
    twamp::net::udp_sender sender(io, so);
    REQUIRE_FALSE(sender.open());
    std::uint32_t next_rseq = 0;
    bool in_order = true;
    sender.on_reply([&](const twamp::reply_result& r) {
        in_order = in_order && r.sample.reflector_seq == next_rseq++;
    });
    bool done = false;
    sender.start([&] {
        done = true;
        refl.stop();
    });
    io.run_for(std::chrono::seconds{20});
    REQUIRE(done);
    CHECK(sender.stats().sent == 50);
    CHECK(sender.stats().received == 50);
    CHECK(sender.stats().lost() == 0);
    CHECK(in_order);
    CHECK(refl.session().counters().reflected == 50);
}

TEST_CASE("twamp_server and controller: a full open-mode TWAMP session in process")
{
    asio::io_context io;
    twamp::net::server_options sv;
    sv.local = {asio::ip::make_address_v4("127.0.0.1"), 0};
    std::vector<std::string> log;
    sv.log = [&](const std::string& s) { log.push_back(s); };
    twamp::net::twamp_server<> server(io, sv);
    REQUIRE_FALSE(server.open());
    const auto control_port = server.local_endpoint().port();
    REQUIRE(control_port != 0);
    server.start();

    twamp::net::controller_options co;
    co.server = {asio::ip::make_address_v4("127.0.0.1"), control_port};
    co.test.local = udp_loopback(0);
    co.test.count = 30;
    co.test.interval = std::chrono::milliseconds{2};
    co.test.core.timeout = std::chrono::seconds{2};
    co.sessions = 2;
    twamp::net::controller<> ctl(io, co);
    twamp::net::controller_result result;
    bool done = false;
    ctl.start([&](const twamp::net::controller_result& r) {
        result = r;
        done = true;
        server.stop();
    });
    io.run_for(std::chrono::seconds{20});
    REQUIRE(done);
    INFO("controller error: " << result.error);
    CHECK(result.ok);
    CHECK(result.mode == 1); // open mode: the only one a server without keys offers
    REQUIRE(result.sessions.size() == 2);
    // Their senders differ in port: they share one reflector port (shared_reflector.hpp).
    CHECK(result.sessions[0].port == result.sessions[1].port);
    for (const auto& s : result.sessions) {
        CHECK(s.stats.sent == 30);
        CHECK(s.stats.received == 30);
        CHECK(s.stats.lost() == 0);
        // The SID starts with the receiver's IPv4 address (RFC 4656 3.5): 127.0.0.1.
        CHECK(s.sid[0] == 127);
        CHECK(s.sid[1] == 0);
        CHECK(s.sid[2] == 0);
        CHECK(s.sid[3] == 1);
    }
    const auto& c = server.counters();
    CHECK(c.connections == 1);
    CHECK(c.sessions_accepted == 2);
    CHECK(c.sessions_rejected == 0);
}

TEST_CASE("controller: a server that refuses the session (Accept 4, --max-sessions) is an error")
{
    asio::io_context io;
    twamp::net::server_options sv;
    sv.local = {asio::ip::make_address_v4("127.0.0.1"), 0};
    sv.control.max_sessions = 1;
    twamp::net::twamp_server<> server(io, sv);
    REQUIRE_FALSE(server.open());
    server.start();
    twamp::net::controller_options co;
    co.server = {asio::ip::make_address_v4("127.0.0.1"), server.local_endpoint().port()};
    co.test.local = udp_loopback(0);
    co.test.count = 5;
    co.test.interval = std::chrono::milliseconds{2};
    co.sessions = 2; // one more than the server allows per connection
    twamp::net::controller<> ctl(io, co);
    twamp::net::controller_result result;
    bool done = false;
    ctl.start([&](const twamp::net::controller_result& r) {
        result = r;
        done = true;
        server.stop();
    });
    io.run_for(std::chrono::seconds{20});
    REQUIRE(done);
    CHECK_FALSE(result.ok);
    REQUIRE(result.accept.has_value());
    CHECK(static_cast<int>(*result.accept) == 4); // RFC 5357 3.5: 4 = resource limitation
    CHECK_FALSE(result.error.empty());
    CHECK(server.counters().sessions_rejected >= 1);
}
