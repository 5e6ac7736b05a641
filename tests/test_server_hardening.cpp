// Issue 11 (hardening): handlers that outlive their objects, the reserve descriptor, REFWAIT
// refreshed only by authenticated packets, per-packet session windows, one source of randomness
// for the control protocol, and a session table that no choice of ports and SSIDs can slow
// down. Built with AddressSanitizer (-DTWAMP_SANITIZE=ON), the first three cases catch any use
// after free (the housekeeping and server cases did on the code before issue 11).
#include "twamp/asio/reflector.hpp"
#include "twamp/asio/server.hpp"
#include "twamp/control_client.hpp"
#include "twamp/control_security.hpp"
#include "twamp/control_server.hpp"
#include "twamp/crypto_openssl.hpp"
#include "twamp/reflector_session.hpp"

#include <doctest/doctest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

using namespace twamp;
using namespace std::chrono_literals;

namespace {

net::reflector_options loopback_reflector()
{
    net::reflector_options ro;
    ro.local = {asio::ip::make_address("127.0.0.1"), 0};
    ro.batch = 4;
    return ro;
}

// Sends `n` datagrams of `len` octets to `to` from a fresh loopback socket.
void send_to(const asio::ip::udp::endpoint& to, std::size_t len = 44, int n = 1)
{
    asio::io_context io;
    asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::vector<std::uint8_t> b(len, 0x5A);
    for (int i = 0; i < n; ++i)
        s.send_to(asio::buffer(b), to);
}

} // namespace

TEST_CASE("a reflector destroyed while its socket completion is queued in the same pass")
{
    asio::io_context io;
    auto r = std::make_unique<net::udp_reflector>(io, loopback_reflector());
    REQUIRE_FALSE(r->open());
    r->start();
    // A socket whose readiness is reported first destroys the reflector from its handler while
    // the reflector's own readiness is due in the same pass (asio then completes that wait with
    // operation_aborted; the handler must return without touching the reflector).
    asio::ip::udp::socket killer(io,
                                 asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    bool destroyed = false;
    killer.async_wait(asio::ip::udp::socket::wait_read, [&](const std::error_code&) {
        r.reset();
        destroyed = true;
    });
    send_to(killer.local_endpoint());
    send_to(r->local_endpoint());
    std::this_thread::sleep_for(20ms); // both readable before the loop looks
    io.run_for(200ms);
    CHECK(destroyed);
}

TEST_CASE("a reflector destroyed while its housekeeping timer is due in the same pass")
{
    asio::io_context io;
    // The killer timer is armed first with the same delay, so it expires first and both
    // completions are taken from the timer queue in one pass.
    asio::steady_timer killer(io);
    killer.expires_after(1ms);
    auto ro = loopback_reflector();
    ro.housekeeping = 1ms;
    auto r = std::make_unique<net::udp_reflector>(io, ro);
    REQUIRE_FALSE(r->open());
    bool destroyed = false;
    killer.async_wait([&](const std::error_code&) {
        r.reset();
        destroyed = true;
    });
    r->start();
    std::this_thread::sleep_for(20ms);
    io.run_for(200ms);
    CHECK(destroyed);
}

TEST_CASE("a server destroyed while a connection's read completion is queued")
{
    asio::io_context io;
    net::server_options so;
    so.local = {asio::ip::make_address("127.0.0.1"), 0};
    so.log = [](const std::string&) {};
    auto srv = std::make_unique<net::twamp_server<>>(io, so);
    REQUIRE_FALSE(srv->open());
    srv->start();
    asio::io_context cio;
    asio::ip::tcp::socket client(cio);
    client.connect(srv->local_endpoint());
    for (int i = 0; i < 200 && srv->connection_count() == 0; ++i)
        io.run_for(5ms);
    REQUIRE(srv->connection_count() == 1);
    std::array<std::uint8_t, 164> setup{};
    setup[3] = 1; // Mode 1: unauthenticated
    asio::write(client, asio::buffer(setup));
    std::this_thread::sleep_for(20ms);
    // The connection's read is due; the server goes away before the loop gets to it, and
    // whatever is still queued must not reach the destroyed server.
    srv.reset();
    io.run_for(100ms);
    CHECK(true);
}

TEST_CASE("out of descriptors, the reserve still accepts, answers with Modes 0 and closes")
{
    rlimit saved{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
    const std::size_t open_now = net::open_descriptor_count().value_or(64);
    rlimit low = saved;
    low.rlim_cur = std::min<rlim_t>(saved.rlim_cur, open_now + 64);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    std::vector<int> filler;
    {
        asio::io_context io;
        net::server_options so;
        so.local = {asio::ip::make_address("127.0.0.1"), 0};
        so.log = [](const std::string&) {};
        net::twamp_server<> srv(io, so);
        REQUIRE_FALSE(srv.open());
        srv.start();
        asio::ip::tcp::socket client(io);
        client.open(asio::ip::tcp::v4());
        // Every descriptor taken: the server's accept() fails with EMFILE.
        for (int fd; (fd = ::dup(0)) >= 0;)
            filler.push_back(fd);
        REQUIRE(errno == EMFILE);
        client.connect(srv.local_endpoint());
        std::array<std::uint8_t, 64> greeting{};
        std::size_t got = 0;
        for (int i = 0; i < 100 && got < greeting.size(); ++i) {
            io.run_for(10ms);
            std::error_code ec;
            if (client.available(ec) >= greeting.size())
                got = asio::read(client, asio::buffer(greeting), ec);
        }
        for (int fd : filler)
            ::close(fd);
        filler.clear();
        REQUIRE(got == greeting.size());
        CHECK(wire::load32(greeting.data() + 12) == 0); // Modes 0: refused
        std::error_code ec;
        std::array<std::uint8_t, 1> more{};
        client.read_some(asio::buffer(more), ec);
        CHECK(ec == asio::error::eof); // and closed
        CHECK(srv.counters().connections_refused_descriptors == 1);
    }
    REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
}

TEST_CASE("only authenticated packets from the agreed sender refresh REFWAIT")
{
    asio::io_context io;
    net::udp_reflector r(io, loopback_reflector());
    REQUIRE_FALSE(r.open());
    const std::array<std::uint8_t, 16> aes{1, 2, 3}, sid{9, 9, 9};
    const std::array<std::uint8_t, 32> hmac{4, 5, 6};
    r.set_guard(std::make_unique<net::twamp_test_guard<openssl_crypto>>(
        test_protection::authenticated, std::span<const std::uint8_t, 16>(aes),
        std::span<const std::uint8_t, 32>(hmac), std::span<const std::uint8_t, 16>(sid)));
    r.accept_only_address(asio::ip::make_address("127.0.0.1"));
    send_to(r.local_endpoint(), 48, 3); // right address, no valid HMAC
    std::this_thread::sleep_for(20ms);
    r.drain();
    CHECK(r.io_counters().auth_failures == 3);
    CHECK(r.last_activity() == nanoseconds{0});
}

TEST_CASE("the reflector's window compares each packet's receive time")
{
    asio::io_context io;
    net::udp_reflector r(io, loopback_reflector());
    REQUIRE_FALSE(r.open());
    const nanoseconds now = net::realtime_now();
    r.set_window(now + 10s, now + 20s); // not yet
    send_to(r.local_endpoint(), 44, 2);
    std::this_thread::sleep_for(20ms);
    CHECK(r.drain() == 0);
    CHECK(r.io_counters().outside_window == 2);
    r.set_window(now - 10s, now - 1s); // over
    send_to(r.local_endpoint(), 44, 2);
    std::this_thread::sleep_for(20ms);
    CHECK(r.drain() == 0);
    CHECK(r.io_counters().outside_window == 4);
    r.set_window(now - 1s, now + 10s); // now
    send_to(r.local_endpoint(), 44, 2);
    std::this_thread::sleep_for(20ms);
    CHECK(r.drain() == 2);
    CHECK(r.last_activity() >= now);
}

namespace {
// openssl_crypto whose random_bytes writes a recognisable pattern: whatever carries it came
// from the crypto policy's CSPRNG hook, not from anywhere else.
struct patterned_crypto : openssl_crypto {
    static std::error_code random_bytes(std::span<std::uint8_t> out)
    {
        std::fill(out.begin(), out.end(), std::uint8_t{0xC5});
        return {};
    }
};
using psec = control::keyed_security<patterned_crypto>;

bool all_c5(std::span<const std::uint8_t> b)
{
    return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0xC5; });
}
} // namespace

TEST_CASE("Challenge, Salt, Server-IV and Client-IV come from the crypto policy's random_bytes")
{
    static_assert(crypto_policy<patterned_crypto>);
    auto ks = std::make_shared<control::key_store>();
    std::string err;
    REQUIRE(ks->parse("alice 7375706572207365637265742070617373706872617365\n", err));
    const nanoseconds t0 = std::chrono::seconds(1'700'000'000);
    control::server_config cfg;
    cfg.modes = control::mode::authenticated;
    cfg.server_start_time = t0 - 1h;
    control::control_server<psec> s(cfg, {4, {}, {}}, t0, psec::server(ks));
    const auto greeting = s.pending_output();
    REQUIRE(greeting.size() == 64);
    CHECK(all_c5(greeting.subspan(16, 16))); // Challenge
    CHECK(all_c5(greeting.subspan(32, 16))); // Salt
    control::client_config cc;
    cc.security_modes = control::mode::authenticated;
    control::control_client<psec> c(cc, t0, psec::client("alice", ks));
    const std::vector<std::uint8_t> g(greeting.begin(), greeting.end());
    s.consume_output(g.size());
    c.receive(g, t0);
    const auto sr_out = c.pending_output();
    REQUIRE(sr_out.size() == 164);
    CHECK(all_c5(sr_out.subspan(148, 16))); // Client-IV
    const std::vector<std::uint8_t> sr(sr_out.begin(), sr_out.end());
    c.consume_output(sr.size());
    s.receive(sr, t0);
    const auto ss = s.pending_output();
    REQUIRE(ss.size() == 48);
    CHECK(ss[15] == 0);                // Accept
    CHECK(all_c5(ss.subspan(16, 16))); // Server-IV
}

TEST_CASE("the key derivation can run off the event loop: nothing else waits for it")
{
    using sec = control::keyed_security<openssl_crypto>;
    auto ks = std::make_shared<control::key_store>();
    std::string err;
    REQUIRE(ks->parse("alice 7375706572207365637265742070617373706872617365\n", err));
    const nanoseconds t0 = std::chrono::seconds(1'700'000'000);
    for (const char* id : {"alice", "mallory"}) {
        CAPTURE(id);
        control::server_config cfg;
        cfg.modes = control::mode::authenticated;
        cfg.server_start_time = t0 - 1h;
        cfg.offload_key_derivation = true;
        control::control_server<sec> s(cfg, {4, {}, {}}, t0, sec::server(ks));
        control::client_config cc;
        cc.security_modes = control::mode::authenticated;
        auto ck = std::make_shared<control::key_store>();
        REQUIRE(
            ck->parse(std::string(id) + " 7375706572207365637265742070617373706872617365\n", err));
        control::control_client<sec> c(cc, t0, sec::client(id, ck));
        auto move = [&](auto& from, auto& to) {
            const auto out = from.pending_output();
            const std::vector<std::uint8_t> b(out.begin(), out.end());
            from.consume_output(b.size());
            to.receive(b, t0);
        };
        move(s, c); // greeting
        move(c, s); // Set-Up-Response: held, no Server-Start yet
        REQUIRE(s.key_derivation_pending());
        CHECK(s.pending_output().empty());
        CHECK_FALSE(s.deadline() == std::nullopt); // SERVWAIT keeps running meanwhile
        std::thread worker([&] { s.derive_keys(); });
        worker.join();
        s.keys_derived(t0);
        CHECK_FALSE(s.key_derivation_pending());
        move(s, c); // Server-Start
        if (std::string(id) == "alice") {
            CHECK(s.current_state() == control::control_server<sec>::state::ready);
            CHECK(c.current_state() == control::control_client<sec>::state::ready);
        } else {
            CHECK(s.closed()); // unknown KeyID: Accept 1 after the same work
            CHECK(c.closed());
        }
    }
}

namespace {
// The session-table hash as it was before issue 11 (unkeyed): a sender could compute it.
std::size_t unkeyed_hash(const peer_key& k, std::uint16_t ssid, std::size_t mask)
{
    std::uint64_t a, b;
    std::memcpy(&a, k.addr.data(), 8);
    std::memcpy(&b, k.addr.data() + 8, 8);
    std::uint64_t h = a * 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 32) ^ b) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 29) ^ (std::uint64_t{k.port} << 16 | ssid)) * 0x94D049BB133111EBull;
    return static_cast<std::size_t>(h ^ (h >> 31)) & mask;
}

std::vector<std::uint8_t> stamp_request(std::uint32_t seq, std::uint16_t ssid)
{
    std::vector<std::uint8_t> b(44, 0);
    wire::store32(b.data(), seq);
    wire::store16(b.data() + 14, ssid);
    return b;
}
} // namespace

TEST_CASE("a flood of colliding ports and SSIDs keeps every lookup bounded")
{
    reflector_config cfg;
    cfg.format = reflector_format::stamp;
    cfg.max_sessions = 512; // 1024 slots
    const std::size_t mask = 1023;
    // 300 (port, SSID) pairs from one address that all fall into slot 0 of the unkeyed hash.
    peer_key from;
    from.addr[10] = from.addr[11] = 0xFF;
    from.addr[12] = 192;
    from.addr[15] = 7;
    std::vector<std::pair<std::uint16_t, std::uint16_t>> keys;
    for (std::uint32_t port = 1; port < 65536 && keys.size() < 300; ++port)
        for (std::uint32_t ssid = 0; ssid < 8; ++ssid) {
            peer_key k = from;
            k.port = static_cast<std::uint16_t>(port);
            if (unkeyed_hash(k, static_cast<std::uint16_t>(ssid), mask) == 0)
                keys.emplace_back(static_cast<std::uint16_t>(port),
                                  static_cast<std::uint16_t>(ssid));
        }
    REQUIRE(keys.size() == 300);
    session_reflector r(cfg);
    std::vector<std::uint8_t> out(128);
    const nanoseconds t = std::chrono::seconds(1'700'000'000);
    for (int round = 0; round < 2; ++round)
        for (std::size_t i = 0; i < keys.size(); ++i) {
            peer_key k = from;
            k.port = keys[i].first;
            const auto req = stamp_request(static_cast<std::uint32_t>(i), keys[i].second);
            REQUIRE(r.reflect(req, k, t, 64, out) == 44); // every request is answered
        }
    // With the per-process key these keys are spread out; whatever happens, no lookup walks
    // further than max_probe.
    MESSAGE("longest probe " << r.counters().longest_probe << ", probe limit hits "
                             << r.counters().probe_limit);
    CHECK(r.counters().longest_probe <= cfg.max_probe);
    CHECK(r.counters().longest_probe < 16);
    CHECK(r.counters().sessions_created == 300);
}

TEST_CASE("the probe bound holds on a crowded table")
{
    // A table filled to its limit (half its slots) with a short bound: lookups that would walk
    // further are answered statelessly and counted, never walked.
    reflector_config cfg;
    cfg.format = reflector_format::stamp;
    cfg.max_sessions = 512;
    cfg.max_probe = 4;
    session_reflector r(cfg);
    peer_key k;
    k.addr[10] = k.addr[11] = 0xFF;
    std::vector<std::uint8_t> out(128);
    const nanoseconds t = std::chrono::seconds(1'700'000'000);
    for (std::uint32_t port = 1; port <= 2000; ++port) {
        k.port = static_cast<std::uint16_t>(port);
        CHECK(r.reflect(stamp_request(port, 0), k, t, 64, out) == 44);
    }
    MESSAGE("created " << r.counters().sessions_created << ", table full "
                       << r.counters().table_full << ", probe limit " << r.counters().probe_limit);
    CHECK(r.counters().longest_probe <= cfg.max_probe);
    CHECK(r.counters().probe_limit > 0);
    CHECK(r.counters().sessions_created + r.counters().table_full + r.counters().probe_limit ==
          2000);
}
