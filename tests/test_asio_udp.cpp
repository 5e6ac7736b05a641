// Tests for twamp/asio/udp.hpp: the ancillary-data parser (detail::parse_cmsgs) on control
// buffers built here by hand, the sockaddr <-> asio endpoint conversions against sockaddrs
// filled field by field, and real loopback sockets: the TOS, TTL and don't-fragment settings
// of open_udp_socket() read back by a plain socket with IP_RECVTOS / IP_RECVTTL (not through
// this header), per-datagram DS fields of tx_batch, what rx_batch reports, and the ICMP error
// queue. Only 127.0.0.1 is used.
#include "twamp/asio/udp.hpp"

#include <doctest/doctest.h>

#include "support/plain_udp.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ostream>
#include <string>

using twamp::net::rx_meta;

namespace {

// Appends one control message to a buffer laid out as the kernel does (CMSG_* macros).
struct cmsg_builder {
    alignas(cmsghdr) unsigned char buf[512]{};
    msghdr mh{};
    cmsghdr* last = nullptr;

    cmsg_builder()
    {
        mh.msg_control = buf;
        mh.msg_controllen = sizeof buf;
    }
    template <class T> void add(int level, int type, const T& value, std::size_t len = sizeof(T))
    {
        // Grow msg_controllen to what is used so far plus this message, as recvmsg leaves it.
        std::size_t used = 0;
        if (last)
            used = static_cast<std::size_t>(reinterpret_cast<unsigned char*>(last) - buf) +
                   CMSG_ALIGN(last->cmsg_len);
        REQUIRE(used + CMSG_SPACE(len) <= sizeof buf);
        cmsghdr* c = reinterpret_cast<cmsghdr*>(buf + used);
        c->cmsg_level = level;
        c->cmsg_type = type;
        c->cmsg_len = CMSG_LEN(len);
        std::memcpy(CMSG_DATA(c), &value, std::min(len, sizeof(T)));
        last = c;
        mh.msg_controllen = used + CMSG_SPACE(len);
    }
};

rx_meta fresh()
{
    rx_meta m;
    m.ttl = 0;
    m.tos = -1;
    return m;
}

using plain_socket = twamp_test::plain_udp_peer;

asio::ip::udp::endpoint loopback(std::uint16_t port)
{
    return {asio::ip::make_address_v4("127.0.0.1"), port};
}

bool wait_readable(int fd, short events = POLLIN, int ms = 2000)
{
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, ms) == 1 && (p.revents & events) != 0;
}

} // namespace

TEST_CASE("parse_cmsgs: timestamp, IPv4 TTL and TOS, IPv6 hop limit and traffic class")
{
    cmsg_builder b;
    const timespec ts{1'700'000'123, 456'789'012};
    b.add(SOL_SOCKET, SCM_TIMESTAMPNS, ts);
    b.add(IPPROTO_IP, IP_TTL, int{37});
    const unsigned char tos = 0xB8; // IP_TOS arrives as one octet
    b.add(IPPROTO_IP, IP_TOS, tos, 1);
    rx_meta m = fresh();
    twamp::net::detail::parse_cmsgs(b.mh, m);
    CHECK(m.kernel_time);
    CHECK(m.rx_time.count() == 1'700'000'123'456'789'012);
    CHECK(m.ttl == 37);
    CHECK(m.tos == 0xB8);

    cmsg_builder b6;
    b6.add(IPPROTO_IPV6, IPV6_HOPLIMIT, int{12});
    b6.add(IPPROTO_IPV6, IPV6_TCLASS, int{0x1FB}); // an int: only its low octet is the class
    rx_meta m6 = fresh();
    twamp::net::detail::parse_cmsgs(b6.mh, m6);
    CHECK_FALSE(m6.kernel_time);
    CHECK(m6.ttl == 12);
    CHECK(m6.tos == 0xFB);
}

TEST_CASE("parse_cmsgs: unknown and truncated control messages change nothing")
{
    cmsg_builder b;
    b.add(SOL_SOCKET, SO_RCVBUF, int{5});                   // not one it reads
    b.add(IPPROTO_IP, IP_PKTINFO, in_pktinfo{});            // nor this
    b.add(IPPROTO_IP, IP_TTL, std::uint16_t{77}, 2);        // shorter than an int: ignored
    b.add(SOL_SOCKET, SCM_TIMESTAMPNS, std::int64_t{9}, 8); // shorter than a timespec
    rx_meta m = fresh();
    twamp::net::detail::parse_cmsgs(b.mh, m);
    CHECK(m.ttl == 0);
    CHECK(m.tos == -1);
    CHECK_FALSE(m.kernel_time);
    CHECK(m.rx_time.count() == 0);

    msghdr none{}; // no control buffer at all
    twamp::net::detail::parse_cmsgs(none, m);
    CHECK(m.ttl == 0);
}

TEST_CASE("endpoint conversions against sockaddrs filled by hand")
{
    sockaddr_storage s{};
    auto* in4 = reinterpret_cast<sockaddr_in*>(&s);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(4242);
    REQUIRE(::inet_pton(AF_INET, "192.0.2.7", &in4->sin_addr) == 1);
    const auto ep = twamp::net::to_endpoint(s);
    CHECK(ep.address().to_string() == "192.0.2.7");
    CHECK(ep.port() == 4242);

    sockaddr_storage back{};
    CHECK(twamp::net::from_endpoint(ep, back) == sizeof(sockaddr_in));
    CHECK(back.ss_family == AF_INET);
    CHECK(std::memcmp(&back, &s, sizeof(sockaddr_in)) == 0);

    sockaddr_storage s6{};
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&s6);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(862);
    REQUIRE(::inet_pton(AF_INET6, "2001:db8::1", &in6->sin6_addr) == 1);
    const auto ep6 = twamp::net::to_endpoint(s6);
    CHECK(ep6.address().to_string() == "2001:db8::1");
    CHECK(ep6.port() == 862);
    sockaddr_storage back6{};
    CHECK(twamp::net::from_endpoint(ep6, back6) == sizeof(sockaddr_in6));
    CHECK(std::memcmp(&back6, &s6, sizeof(sockaddr_in6)) == 0);

    // IPv4 destinations, for the choice between IP_TOS and IPV6_TCLASS per datagram.
    using twamp::net::tx_batch;
    CHECK(tx_batch::is_ipv4_destination(s));
    CHECK_FALSE(tx_batch::is_ipv4_destination(s6));
    REQUIRE(::inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6->sin6_addr) == 1);
    CHECK(tx_batch::is_ipv4_destination(s6));
    sockaddr_storage unspec{};
    CHECK_FALSE(tx_batch::is_ipv4_destination(unspec));
}

TEST_CASE("open_udp_socket: TOS, TTL and don't-fragment as a plain peer sees them")
{
    plain_socket peer;
    asio::io_context io;
    asio::ip::udp::socket sock(io);
    twamp::net::socket_options o;
    o.tos = 0xB8; // DSCP EF
    o.ttl = 7;
    o.dont_fragment = true;
    REQUIRE_FALSE(twamp::net::open_udp_socket(sock, loopback(0), o));
    const char msg[] = "probe";
    sock.send_to(asio::buffer(msg, sizeof msg), loopback(peer.port));
    auto g = peer.receive();
    CHECK(g.len == static_cast<long>(sizeof msg));
    CHECK(g.tos == 0xB8);
    CHECK(g.ttl == 7);
    CHECK(g.from_port == sock.local_endpoint().port());
    int pmtu = -1;
    socklen_t len = sizeof pmtu;
    REQUIRE(::getsockopt(sock.native_handle(), IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, &len) == 0);
    CHECK(pmtu == IP_PMTUDISC_DO);

    // The defaults: TTL 255 (RFC 4656 4.1.2), the DS field left at 0, DF explicitly off.
    asio::ip::udp::socket plain(io);
    REQUIRE_FALSE(twamp::net::open_udp_socket(plain, loopback(0), twamp::net::socket_options{}));
    plain.send_to(asio::buffer(msg, sizeof msg), loopback(peer.port));
    g = peer.receive();
    CHECK(g.ttl == 255);
    CHECK(g.tos == 0);
    len = sizeof pmtu;
    REQUIRE(::getsockopt(plain.native_handle(), IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, &len) == 0);
    CHECK(pmtu == IP_PMTUDISC_DONT);
}

TEST_CASE("rx_batch without kernel timestamps: the clock read after the receive, once a batch")
{
    asio::io_context io;
    asio::ip::udp::socket sock(io);
    REQUIRE_FALSE(twamp::net::open_udp_socket(sock, loopback(0), twamp::net::socket_options{}));
    const int off = 0;
    REQUIRE(::setsockopt(sock.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &off, sizeof off) == 0);
    const auto port = sock.local_endpoint().port();
    plain_socket peer;
    peer.send_to(port, "a", 1, 0, 64);
    peer.send_to(port, "b", 1, 0, 64);
    REQUIRE(wait_readable(sock.native_handle()));
    // Both datagrams are queued before the receive: stamped later than this.
    const auto before = twamp::net::realtime_now();
    twamp::net::rx_batch rx(8, 16);
    std::error_code ec;
    std::size_t got = 0;
    for (int i = 0; i < 100 && got < 2; ++i) {
        REQUIRE(wait_readable(sock.native_handle()));
        got += rx.receive(sock.native_handle(), ec);
    }
    REQUIRE(got == 2);
    for (std::size_t k = 0; k < got; ++k) {
        CHECK_FALSE(rx.meta(k).kernel_time);
        CHECK(rx.meta(k).rx_time >= before);
        CHECK(rx.meta(k).rx_time <= twamp::net::realtime_now());
    }
}

TEST_CASE("rx_batch reports each datagram's TTL, TOS, source and a kernel timestamp")
{
    asio::io_context io;
    asio::ip::udp::socket sock(io);
    REQUIRE_FALSE(twamp::net::open_udp_socket(sock, loopback(0), twamp::net::socket_options{}));
    const auto port = sock.local_endpoint().port();
    plain_socket peer;
    const auto before = twamp::net::realtime_now();
    peer.send_to(port, "a", 1, 0x28, 9);
    peer.send_to(port, "bcd", 3, 0x00, 64);
    twamp::net::rx_batch rx(8, 2);
    std::size_t n = 0;
    std::error_code ec;
    for (int i = 0; i < 100 && n < 2; ++i) {
        REQUIRE(wait_readable(sock.native_handle()));
        const std::size_t got = rx.receive(sock.native_handle(), ec);
        REQUIRE_FALSE(ec);
        for (std::size_t k = 0; k < got; ++k, ++n) {
            const auto& m = rx.meta(k);
            INFO("datagram " << n);
            CHECK(twamp::net::to_endpoint(m.from).port() == peer.port);
            CHECK(m.kernel_time);
            CHECK(m.rx_time >= before);
            CHECK(m.rx_time <= twamp::net::realtime_now());
            if (n == 0) {
                CHECK(m.len == 1);
                CHECK_FALSE(m.truncated);
                CHECK(m.ttl == 9);
                CHECK(m.tos == 0x28);
            } else {
                CHECK(m.len == 2); // what fits; MSG_TRUNC says there was more
                CHECK(m.truncated);
                CHECK(rx.data(k).size() == 2);
                CHECK(m.ttl == 64);
                CHECK(m.tos == 0);
            }
        }
    }
    CHECK(n == 2);
}

TEST_CASE("tx_batch: each datagram with its own DS field; withdrawn ones are not sent")
{
    plain_socket peer;
    asio::io_context io;
    asio::ip::udp::socket sock(io);
    twamp::net::socket_options o;
    o.tos = 0x10;
    REQUIRE_FALSE(twamp::net::open_udp_socket(sock, loopback(0), o));
    sockaddr_storage to{};
    const socklen_t to_len = twamp::net::from_endpoint(loopback(peer.port), to);
    twamp::net::tx_batch tx(4, 64);
    const int tos[] = {0xB8, -1, 0x48};
    for (int i = 0; i < 3; ++i) {
        auto slot = tx.slot(tx.size());
        slot[0] = static_cast<std::uint8_t>('0' + i);
        tx.push(1, to, to_len, tos[i]);
    }
    tx.push(1, to, to_len, 0x20);
    tx.set_length(3, 0); // withdrawn
    CHECK(tx.live() == 3);
    std::error_code ec;
    CHECK(tx.send(sock.native_handle(), ec) == 3);
    CHECK_FALSE(ec);
    CHECK(tx.size() == 0);
    for (int i = 0; i < 3; ++i) {
        const auto g = peer.receive();
        INFO("datagram " << i);
        CHECK(g.len == 1);
        CHECK(g.tos == (tos[i] >= 0 ? tos[i] : 0x10)); // -1: the socket's own setting
    }
    // Nothing more: the withdrawn datagram was not sent.
    CHECK_FALSE(wait_readable(peer.fd, POLLIN, 200));
}

TEST_CASE("ICMP errors: a datagram to a closed port queues one, drain_error_queue reads it")
{
    // A port that is bound, then closed: nothing listens there afterwards within this test (a
    // port-0 bind is not handed out again at once).
    std::uint16_t closed_port = 0;
    {
        plain_socket gone;
        closed_port = gone.port;
    }
    asio::io_context io;
    asio::ip::udp::socket sock(io);
    twamp::net::socket_options o;
    o.icmp_errors = true;
    REQUIRE_FALSE(twamp::net::open_udp_socket(sock, loopback(0), o));
    CHECK(twamp::net::drain_error_queue(sock.native_handle()) == 0);
    const char msg[] = "x";
    std::error_code ec;
    sock.send_to(asio::buffer(msg, 1), loopback(closed_port), 0, ec);
    REQUIRE_FALSE(ec);
    // The ICMP port unreachable comes back through loopback; POLLERR says it is queued.
    REQUIRE(wait_readable(sock.native_handle(), POLLERR));
    CHECK(twamp::net::drain_error_queue(sock.native_handle()) == 1);
    CHECK(twamp::net::drain_error_queue(sock.native_handle()) == 0);
}
