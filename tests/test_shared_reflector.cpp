// Shared reflector ports (twamp/asio/shared_reflector.hpp): the flow table's demultiplexing rules,
// and a port reflecting for interleaved sessions with per-session sequence numbers.
#include "twamp/asio/shared_reflector.hpp"

#include <doctest/doctest.h>

#include <asio.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using twamp::peer_key;
using twamp::net::reflector_flow;

namespace {

peer_key key(const char* addr, std::uint16_t port)
{
    return twamp::net::sender_key(asio::ip::make_address(addr), port);
}

} // namespace

TEST_CASE("flow_table: by address and port, and by address alone for the only session from it")
{
    twamp::reflector_config cfg;
    twamp::net::detail::flow_table t(cfg);
    reflector_flow a(cfg), b(cfg), c(cfg);
    CHECK(t.find(key("127.0.0.1", 4000)) == nullptr);

    REQUIRE(t.compatible(key("127.0.0.1", 4000)));
    t.attach(key("127.0.0.1", 4000), a);
    // Alone from 127.0.0.1: a NAT may have changed its port.
    CHECK(t.find(key("127.0.0.1", 4000)) == &a);
    CHECK(t.find(key("127.0.0.1", 5555)) == &a);
    CHECK(t.find(key("127.0.0.2", 4000)) == nullptr);

    // Same address, same port: cannot be told apart. Unknown port: neither.
    CHECK_FALSE(t.compatible(key("127.0.0.1", 4000)));
    CHECK_FALSE(t.compatible(key("127.0.0.1", 0)));
    REQUIRE(t.compatible(key("127.0.0.1", 4001)));
    t.attach(key("127.0.0.1", 4001), b);
    CHECK(t.find(key("127.0.0.1", 4000)) == &a);
    CHECK(t.find(key("127.0.0.1", 4001)) == &b);
    CHECK(t.find(key("127.0.0.1", 5555)) == nullptr); // two sessions: exact ports only

    // Another address, port unknown: alone there, so it may share the port.
    REQUIRE(t.compatible(key("::1", 0)));
    t.attach(key("::1", 0), c);
    CHECK(t.find(key("::1", 7)) == &c);
    CHECK_FALSE(t.compatible(key("::1", 9))); // an unknown port keeps its address to itself
    CHECK(t.size() == 3);

    // The first session ends: the one left answers any port of its address again.
    t.detach(key("127.0.0.1", 4000));
    CHECK(t.find(key("127.0.0.1", 4000)) == &b);
    CHECK(t.find(key("127.0.0.1", 5555)) == &b);
    t.detach(key("127.0.0.1", 4001));
    CHECK(t.find(key("127.0.0.1", 4001)) == nullptr);
    t.detach(key("127.0.0.1", 4001)); // twice: nothing happens
    t.detach(key("::1", 0));
    CHECK(t.size() == 0);
    CHECK(t.compatible(key("::1", 9)));

    int visited = 0;
    t.attach(key("127.0.0.1", 1), a);
    t.attach(key("127.0.0.2", 1), b);
    t.for_each([&](reflector_flow&) { ++visited; });
    CHECK(visited == 2);
}

namespace {

struct client {
    asio::ip::udp::socket sock;
    std::uint32_t next = 0;
    client(asio::io_context& io, const char* addr) : sock(io)
    {
        sock.open(asio::ip::make_address(addr).is_v4() ? asio::ip::udp::v4() : asio::ip::udp::v6());
        sock.bind({asio::ip::make_address(addr), 0});
        sock.non_blocking(true);
    }
    std::uint16_t port() const { return sock.local_endpoint().port(); }
};

std::vector<std::uint8_t> request(std::uint32_t seq)
{
    std::vector<std::uint8_t> p(41, 0);
    twamp::sender_packet s;
    s.seq = seq;
    (void)twamp::encode_sender(s, twamp::test_format::twamp, p.size(), p);
    return p;
}

// Reads one reply from c (bounded wait while the port drains), nullopt if none came.
std::optional<twamp::reflector_packet> reply(asio::io_context&, client& c,
                                             twamp::net::shared_reflector& port)
{
    std::array<std::uint8_t, 2048> buf{};
    for (int i = 0; i < 2000; ++i) {
        port.drain();
        std::error_code ec;
        const std::size_t n = c.sock.receive(asio::buffer(buf), 0, ec);
        if (!ec) {
            twamp::reflector_packet r;
            if (twamp::decode_reflector(std::span(buf).first(n), twamp::test_format::twamp, r))
                return std::nullopt;
            return r;
        }
        std::this_thread::sleep_for(100us);
    }
    return std::nullopt;
}

} // namespace

TEST_CASE("shared_reflector: interleaved sessions from two addresses, each with its own sequence")
{
    asio::io_context io;
    twamp::net::reflector_options o;
    o.local = {asio::ip::make_address("127.0.0.1"), 0};
    o.core.format = twamp::reflector_format::twamp;
    o.core.max_sessions = 4;
    twamp::net::shared_reflector port(io, o);
    REQUIRE_FALSE(port.open());
    const asio::ip::udp::endpoint to{asio::ip::make_address("127.0.0.1"),
                                     port.local_endpoint().port()};

    // Six sessions: four source ports on 127.0.0.1, two on 127.0.0.2.
    std::vector<std::unique_ptr<client>> clients;
    std::vector<std::unique_ptr<reflector_flow>> flows;
    for (const char* a :
         {"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"}) {
        clients.push_back(std::make_unique<client>(io, a));
        const peer_key k = key(a, clients.back()->port());
        REQUIRE(port.compatible(k));
        flows.push_back(port.make_flow(k));
        flows.back()->active = true;
        port.attach(k, *flows.back());
    }
    CHECK(port.flows() == 6);

    // A stranger (an address without a session) is not answered.
    client stranger(io, "127.0.0.3");
    stranger.sock.send_to(asio::buffer(request(0)), to);
    CHECK_FALSE(reply(io, stranger, port));
    CHECK(port.port_counters().not_accepted == 1);

    // Ten rounds, every session sending in turn, and in each round sessions 0 and 4 twice:
    // every reply carries the session's own count, not the port's.
    std::map<std::size_t, std::uint32_t> expect;
    for (std::uint32_t round = 0; round < 10; ++round) {
        std::vector<std::size_t> order{0, 4, 1, 2, 0, 3, 5, 4};
        for (std::size_t i : order)
            clients[i]->sock.send_to(asio::buffer(request(1000 * round + i)), to);
        std::map<std::size_t, int> sent;
        for (std::size_t i : order)
            ++sent[i];
        for (auto [i, n] : sent)
            for (int k = 0; k < n; ++k) {
                auto r = reply(io, *clients[i], port);
                REQUIRE(r);
                CHECK(r->seq == expect[i]++);
                CHECK(r->sender_seq == 1000 * round + i);
            }
    }
    CHECK(flows[0]->core.counters().reflected == 20);
    CHECK(flows[1]->core.counters().reflected == 10);
    CHECK(flows[4]->core.counters().reflected == 20);

    // Session 1 ends; the others go on on the same port; session 1's sender is now a stranger
    // on an address with other sessions, so it is not answered.
    port.detach(key("127.0.0.1", clients[1]->port()));
    flows[1].reset();
    clients[1]->sock.send_to(asio::buffer(request(7)), to);
    CHECK_FALSE(reply(io, *clients[1], port));
    clients[2]->sock.send_to(asio::buffer(request(8)), to);
    auto r = reply(io, *clients[2], port);
    REQUIRE(r);
    CHECK(r->seq == expect[2]);

    // Session 5 ends: session 4 is alone from 127.0.0.2 and answers any of its ports (NAT).
    port.detach(key("127.0.0.2", clients[5]->port()));
    flows[5].reset();
    clients[5]->sock.send_to(asio::buffer(request(9)), to);
    r = reply(io, *clients[5], port);
    REQUIRE(r);
    CHECK(r->seq == expect[4]); // session 4's count: one count per session, whatever the port
    CHECK(flows[4]->core.counters().reflected == 21);
}
