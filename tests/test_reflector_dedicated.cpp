// The reflector port's dedicated loop (run_dedicated): the socket leaves the event loop's epoll
// set, requests are reflected with exact per-flow sequence numbers, housekeeping and later
// replies run on their deadlines, an idle or error-queue-readable socket never makes it spin,
// and request_stop() ends it from another thread.
#include "support/epoll_watch.hpp"
#include "twamp/asio/reflector.hpp"

#include <doctest/doctest.h>

#include <asio.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace twamp;
using namespace twamp::net;

namespace {

reflector_options loopback_options()
{
    reflector_options o;
    o.local = {asio::ip::make_address("127.0.0.1"), 0};
    return o;
}

// Runs a reflector's dedicated loop on a thread; stop() ends it and joins, bounded.
struct loop_thread {
    udp_reflector& refl;
    std::atomic<bool> done{false};
    std::error_code result;
    std::thread t;

    explicit loop_thread(udp_reflector& r) : refl(r)
    {
        t = std::thread([this] {
            result = refl.run_dedicated();
            done = true;
        });
    }
    // Whether the loop returned within 2 s of request_stop().
    bool stop()
    {
        refl.request_stop();
        const auto deadline = std::chrono::steady_clock::now() + 2s;
        while (!done && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(1ms);
        const bool in_time = done;
        if (!in_time) refl.request_stop();
        t.join();
        return in_time;
    }
    ~loop_thread()
    {
        if (t.joinable()) (void)stop();
    }
};

// A client socket on 127.0.0.1.
asio::ip::udp::socket client_socket(asio::io_context& io)
{
    asio::ip::udp::socket s(io);
    s.open(asio::ip::udp::v4());
    s.bind({asio::ip::make_address("127.0.0.1"), 0});
    return s;
}

void send_request(asio::ip::udp::socket& s, const asio::ip::udp::endpoint& to, std::uint32_t seq,
                  test_format f = test_format::twamp, std::span<const std::uint8_t> tlvs = {})
{
    std::array<std::uint8_t, 256> req{};
    sender_packet p;
    p.seq = seq;
    const std::size_t base = f == test_format::stamp ? kStampBaseLen : 41;
    REQUIRE_FALSE(encode_sender(p, f, base + tlvs.size(), req));
    std::copy(tlvs.begin(), tlvs.end(), req.begin() + static_cast<std::ptrdiff_t>(base));
    s.send_to(asio::buffer(req.data(), base + tlvs.size()), to);
}

// Receives one reply within 2 s, decoded; nullopt on timeout.
std::optional<reflector_packet> receive_reply(asio::ip::udp::socket& s,
                                              test_format f = test_format::twamp)
{
    pollfd p1{s.native_handle(), POLLIN, 0};
    if (::poll(&p1, 1, 2000) <= 0) return std::nullopt;
    std::array<std::uint8_t, 2048> buf{};
    const ssize_t r = ::recv(s.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (r <= 0) return std::nullopt;
    const auto k = static_cast<std::size_t>(r);
    reflector_packet p;
    if (decode_reflector(std::span(buf).first(k), f, p)) return std::nullopt;
    return p;
}

} // namespace

TEST_CASE("dedicated loop: stateful flows from four source ports, exact sequence numbers")
{
    asio::io_context io;
    udp_reflector refl(io, loopback_options());
    REQUIRE_FALSE(refl.open());
    const auto to = refl.local_endpoint();
    std::vector<asio::ip::udp::socket> clients;
    for (int i = 0; i < 4; ++i)
        clients.push_back(client_socket(io));
    {
        loop_thread lt(refl);
        // 25 rounds; in each, every client sends once (client 0 twice): interleaved flows.
        std::map<int, std::vector<std::uint32_t>> seqs;
        for (std::uint32_t round = 0; round < 25; ++round)
            for (int c = 0; c < 4; ++c)
                for (int k = 0; k < (c == 0 ? 2 : 1); ++k) {
                    send_request(clients[static_cast<std::size_t>(c)], to, 1000 + round);
                    const auto r = receive_reply(clients[static_cast<std::size_t>(c)]);
                    REQUIRE(r);
                    CHECK(r->sender_seq == 1000 + round);
                    seqs[c].push_back(r->seq);
                }
        for (int c = 0; c < 4; ++c) {
            const std::size_t n = c == 0 ? 50 : 25;
            REQUIRE(seqs[c].size() == n);
            for (std::uint32_t i = 0; i < n; ++i)
                CHECK(seqs[c][i] == i); // each flow counts on its own, from 0
        }
        CHECK(lt.stop());
        CHECK_FALSE(lt.result);
    }
    CHECK(refl.session().counters().reflected == 125);
    CHECK(refl.session().counters().sessions_created == 4);
}

#if defined(__linux__)
TEST_CASE("dedicated loop: the socket leaves the event loop's epoll set")
{
    asio::io_context io;
    udp_reflector refl(io, loopback_options());
    REQUIRE_FALSE(refl.open());
    const int fd = refl.native_handle();
    CHECK(twamp_test::in_an_epoll_set(fd)); // asio registers at open
    loop_thread lt(refl);
    // The loop has released the socket once it answers.
    auto c = client_socket(io);
    send_request(c, refl.local_endpoint(), 1);
    REQUIRE(receive_reply(c));
    CHECK_FALSE(twamp_test::in_an_epoll_set(fd));
    CHECK(refl.native_handle() == fd); // the same socket, still open
    CHECK(lt.stop());
}
#endif

TEST_CASE("dedicated loop: REFWAIT and later replies run on their deadlines")
{
    asio::io_context io;
    auto o = loopback_options();
    o.core.refwait = 100ms;
    o.housekeeping = 30ms;
    o.core.format = reflector_format::stamp;
    o.core.tlv_policy.reflected_control.enabled = true;
    o.core.tlv_policy.reflected_control.max_octets_per_second = 0;
    udp_reflector refl(io, o);
    REQUIRE_FALSE(refl.open());
    const auto to = refl.local_endpoint();
    auto c = client_socket(io);
    loop_thread lt(refl);

    // Three requests: sequence numbers 0, 1, 2.
    for (std::uint32_t i = 0; i < 3; ++i) {
        send_request(c, to, i, test_format::stamp);
        const auto r = receive_reply(c, test_format::stamp);
        REQUIRE(r);
        CHECK(r->seq == i);
    }
    // Idle beyond REFWAIT: the housekeeping deadline drops the session; the sender starts over.
    std::this_thread::sleep_for(250ms);
    send_request(c, to, 3, test_format::stamp);
    const auto again = receive_reply(c, test_format::stamp);
    REQUIRE(again);
    CHECK(again->seq == 0);

    // Reflected Test Packet Control: 3 replies, 60 ms apart; the later two leave on the loop's
    // deadline, not on a datagram's arrival.
    stamp_tlv_request want;
    want.reflected_control = reflected_control_request{0, 3, 60'000'000, false};
    std::array<std::uint8_t, 64> tlvs{};
    std::size_t written = 0;
    REQUIRE_FALSE(write_stamp_tlvs(want, 4, tlvs, written));
    send_request(c, to, 4, test_format::stamp, std::span(tlvs).first(written));
    for (std::uint32_t k = 0; k < 3; ++k) {
        const auto r = receive_reply(c, test_format::stamp);
        REQUIRE(r);
        CHECK(r->seq == 1 + k);
        CHECK(r->sender_seq == 4);
    }
    CHECK(lt.stop());
    CHECK(refl.session().counters().sessions_expired >= 1);
    CHECK(refl.io_counters().extra_replies_sent == 2);
}

TEST_CASE("dedicated loop: idle, or with ICMP errors queued, it never spins")
{
    asio::io_context io;
    auto o = loopback_options();
    o.housekeeping = 50ms;
    o.sock.icmp_errors = true; // errors queued (IP_RECVERR): the socket polls as POLLERR
    udp_reflector refl(io, o);
    REQUIRE_FALSE(refl.open());
    const auto to = refl.local_endpoint();
    loop_thread lt(refl);
    // Requests from sockets that close before the reply comes: port unreachable, queued.
    for (std::uint32_t i = 0; i < 5; ++i) {
        auto c = client_socket(io);
        send_request(c, to, i);
        c.close();
    }
    std::this_thread::sleep_for(400ms);
    CHECK(lt.stop());
    // 400 ms at one housekeeping deadline per 50 ms, plus the requests and the stop: a spinning
    // loop would have woken hundreds of thousands of times.
    CHECK(refl.dedicated_wakeups() >= 5);
    CHECK(refl.dedicated_wakeups() <= 40);
    CHECK(refl.session().counters().received == 5);
}

TEST_CASE("dedicated loop: a stop requested before the loop starts ends it at once")
{
    asio::io_context io;
    udp_reflector refl(io, loopback_options());
    REQUIRE_FALSE(refl.open());
    refl.request_stop();
    CHECK_FALSE(refl.run_dedicated()); // returns: nothing hangs
    // And it can run again afterwards, then stop from another thread.
    loop_thread lt(refl);
    auto c = client_socket(io);
    send_request(c, refl.local_endpoint(), 7);
    const auto r = receive_reply(c);
    REQUIRE(r);
    CHECK(r->sender_seq == 7);
    CHECK(lt.stop());
}
