// Tests for the sans-I/O TWAMP-Control state machines (twamp/control_client.hpp and
// twamp/control_server.hpp): whole handshakes in memory, fragmentation, refusals, malformed
// input, RFC 5938 individual session control, RFC 6038 fields and the timers.
#include <twamp/control_client.hpp>
#include <twamp/control_server.hpp>

#include <doctest/doctest.h>

#include "support/control_pump.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <variant>
#include <vector>

using namespace twamp;
using namespace twamp::control;
using namespace std::chrono_literals;

namespace {

using client = control_client<>;
using twamp_test::all_of_type;
using twamp_test::drain;
using twamp_test::pump;
using twamp_test::transfer;
using server = control_server<>;

// Deterministic "random" octets: 1, 2, 3, ...
random_source counting_random()
{
    return [next = std::uint8_t{1}](std::span<std::uint8_t> out) mutable {
        for (auto& b : out)
            b = next++;
    };
}

const nanoseconds t0 = std::chrono::seconds(1'700'000'000);

connection_addresses loopback_v4()
{
    return {4, make_address_v4(192, 0, 2, 10), make_address_v4(192, 0, 2, 20)};
}

server_config test_server_config()
{
    server_config cfg;
    cfg.modes = mode::unauthenticated;
    cfg.random = counting_random();
    cfg.server_start_time = t0 - 1h;
    // Grant requested ports in 5000..5009, otherwise hand out 50000, 50001, ...
    cfg.allocate_port = [next = std::uint16_t{50000}](
                            std::uint16_t requested) mutable -> std::optional<std::uint16_t> {
        if (requested >= 5000 && requested < 5010) return requested;
        return next++;
    };
    return cfg;
}

client_config test_client_config()
{
    client_config cfg;
    cfg.random = counting_random();
    return cfg;
}

template <class T, class Events> T only(const Events& events)
{
    auto v = all_of_type<T>(events);
    REQUIRE(v.size() == 1);
    return v.front();
}

request_tw_session basic_request(std::uint16_t sender_port, std::uint16_t receiver_port)
{
    request_tw_session r;
    r.ipvn = 4;
    r.sender_port = sender_port;
    r.receiver_port = receiver_port;
    r.padding_length = 27;
    r.timeout = ntp_from_duration(2s);
    r.type_p = type_p_from_dscp(46);
    return r;
}

template <class Msg> std::vector<std::uint8_t> bytes_of(const Msg& m)
{
    std::vector<std::uint8_t> out(encoded_size(m));
    REQUIRE_FALSE(encode(m, out));
    return out;
}

// A server that has completed the set-up with `mode`, driven with raw octets.
server ready_server(std::uint32_t agreed, server_config cfg = test_server_config())
{
    cfg.modes = agreed;
    server s(cfg, loopback_v4(), t0);
    setup_response sr;
    sr.mode = agreed;
    s.receive(bytes_of(sr), t0);
    REQUIRE(s.current_state() == server::state::ready);
    s.consume_output(s.pending_output().size());
    drain(s);
    return s;
}

// Feeds `bytes` and returns what the server answered.
std::vector<std::uint8_t> feed(server& s, const std::vector<std::uint8_t>& bytes,
                               nanoseconds now = t0)
{
    s.receive(bytes, now);
    const auto out = s.pending_output();
    std::vector<std::uint8_t> reply(out.begin(), out.end());
    s.consume_output(reply.size());
    return reply;
}

template <class Msg> Msg decode_reply(const std::vector<std::uint8_t>& bytes)
{
    Msg m{};
    REQUIRE_FALSE(decode(bytes, m, strictness::strict));
    return m;
}

struct handshake_result {
    std::vector<client_event> client_events;
    std::vector<server_event> server_events;
    std::vector<std::uint8_t> stop_bytes;
};

// The whole classic exchange: greeting, set-up, two sessions, start, stop.
handshake_result classic_handshake(std::size_t chunk)
{
    handshake_result r;
    server s(test_server_config(), loopback_v4(), t0);
    client c(test_client_config(), t0);
    pump(c, s, t0, chunk);
    REQUIRE(c.current_state() == client::state::ready);
    REQUIRE(s.current_state() == server::state::ready);

    std::uint64_t id1 = 0, id2 = 0;
    REQUIRE_FALSE(c.request_session(basic_request(7000, 5001), t0, id1));
    REQUIRE_FALSE(c.request_session(basic_request(7001, 862), t0, id2));
    CHECK(id1 != id2);
    pump(c, s, t0 + 1ms, chunk);
    REQUIRE(c.sessions().size() == 2);
    REQUIRE_FALSE(c.start_sessions(t0 + 2ms));
    pump(c, s, t0 + 2ms, chunk);
    REQUIRE_FALSE(c.stop_sessions(t0 + 10s));
    r.stop_bytes.assign(c.pending_output().begin(), c.pending_output().end());
    pump(c, s, t0 + 10s, chunk);
    r.client_events = drain(c);
    r.server_events = drain(s);
    CHECK_FALSE(c.closed());
    CHECK_FALSE(s.closed());
    return r;
}

} // namespace

TEST_CASE("classic handshake client <-> server in memory: two sessions, start, stop")
{
    for (std::size_t chunk : {std::numeric_limits<std::size_t>::max(), std::size_t{1},
                              std::size_t{7}, std::size_t{16}}) {
        CAPTURE(chunk);
        const auto r = classic_handshake(chunk);

        const auto g = only<client_events::greeting_received>(r.client_events);
        CHECK(g.server_modes == mode::unauthenticated);
        CHECK(g.selected_mode == mode::unauthenticated);
        CHECK(g.count == 2048);
        const auto ready = only<client_events::control_ready>(r.client_events);
        CHECK(ready.server_start_time == to_ntp(t0 - 1h));

        const auto accepted = all_of_type<client_events::session_accepted>(r.client_events);
        REQUIRE(accepted.size() == 2);
        CHECK(accepted[0].request_id == 1);
        CHECK(accepted[0].port == 5001);  // requested port was free
        CHECK(accepted[1].port == 50000); // 862 was not: the allocator offered another port
        CHECK(accepted[0].sid != accepted[1].sid);
        // SID = receiver (server) address, NTP time of the request, random octets.
        CHECK(std::equal(accepted[0].sid.begin(), accepted[0].sid.begin() + 4,
                         make_address_v4(192, 0, 2, 20).begin()));

        const auto started = only<client_events::sessions_started>(r.client_events);
        CHECK(started.sids.size() == 2);

        // Server side saw the same sessions, with zero addresses replaced.
        CHECK(only<server_events::mode_agreed>(r.server_events).mode == mode::unauthenticated);
        const auto sa = all_of_type<server_events::session_accepted>(r.server_events);
        REQUIRE(sa.size() == 2);
        CHECK(sa[0].sid == accepted[0].sid);
        CHECK(sa[0].reflector_port == 5001);
        CHECK(sa[0].dscp == 46);
        CHECK(sa[0].request.sender_port == 7000);
        CHECK(sa[0].request.sender_address == make_address_v4(192, 0, 2, 10));
        CHECK(sa[0].request.receiver_address == make_address_v4(192, 0, 2, 20));
        CHECK(only<server_events::sessions_started>(r.server_events).sids.size() == 2);
        const auto stopped = only<server_events::sessions_stopped>(r.server_events);
        CHECK(stopped.accept == accept_code::ok);
        CHECK(stopped.sids.size() == 2);
        CHECK(stopped.at == t0 + 10s);

        // The Stop-Sessions on the wire counts both sessions.
        stop_sessions st;
        REQUIRE_FALSE(decode(r.stop_bytes, st, strictness::strict));
        CHECK(st.number_of_sessions == 2);
    }
}

TEST_CASE("the messages on the wire are the exact encodings")
{
    server s(test_server_config(), loopback_v4(), t0);
    client c(test_client_config(), t0);
    // Greeting: counting random gives challenge 1..16 and salt 17..32.
    server_greeting g;
    REQUIRE_FALSE(decode(s.pending_output(), g, strictness::strict));
    CHECK(g.modes == mode::unauthenticated);
    CHECK(g.challenge[0] == 1);
    CHECK(g.salt[0] == 17);
    transfer(s, c, t0);
    setup_response sr;
    REQUIRE_FALSE(decode(c.pending_output(), sr, strictness::strict));
    CHECK(sr.mode == mode::unauthenticated);
    CHECK(is_zero(sr.client_iv));
    transfer(c, s, t0);
    server_start ss;
    REQUIRE_FALSE(decode(s.pending_output(), ss, strictness::strict));
    CHECK(ss.accept == accept_code::ok);
    CHECK(is_zero(ss.server_iv));
    transfer(s, c, t0);

    auto req = basic_request(7000, 5000);
    req.conf_sender = 1; // the client writes the TWAMP-fixed fields as zero regardless
    req.sid[3] = 9;
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.request_session(req, t0, id));
    request_tw_session sent;
    REQUIRE_FALSE(decode(c.pending_output(), sent, strictness::strict));
    CHECK(sent.conf_sender == 0);
    CHECK(is_zero(sent.sid));
    CHECK(sent.type_p == 0x2E000000u);
    CHECK(sent.timeout == ntp_timestamp{2, 0});
}

TEST_CASE("server refusal: Modes 0 greeting when not admitted or nothing to offer")
{
    SUBCASE("admission callback says no")
    {
        auto cfg = test_server_config();
        cfg.admit = [](const connection_addresses& a) { return a.client[0] != 192; };
        server s(cfg, loopback_v4(), t0);
        CHECK(s.closed());
        server_greeting g;
        REQUIRE_FALSE(decode(s.pending_output(), g));
        CHECK(g.modes == 0);
        client c(test_client_config(), t0);
        transfer(s, c, t0);
        CHECK(c.closed());
        const auto closed = only<connection_closed>(drain(c));
        CHECK(closed.ec == errc::unsupported);
        CHECK(c.pending_output().empty());
        CHECK(only<connection_closed>(drain(s)).ec == std::error_code{});
    }
    SUBCASE("configured modes contain no security mode the policy can run")
    {
        auto cfg = test_server_config();
        cfg.modes = mode::authenticated | mode::encrypted | mode::individual_session_control;
        server s(cfg, loopback_v4(), t0);
        CHECK(s.offered_modes() == 0);
        CHECK(s.closed());
    }
}

TEST_CASE("server accepts only a mode it offered")
{
    auto cfg = test_server_config();
    cfg.modes = mode::unauthenticated | mode::individual_session_control;
    for (std::uint32_t m : {mode::authenticated, mode::unauthenticated | mode::authenticated,
                            mode::unauthenticated | mode::reflect_octets,
                            mode::individual_session_control, std::uint32_t{1} << 20 | 1}) {
        CAPTURE(m);
        server s(cfg, loopback_v4(), t0);
        s.consume_output(s.pending_output().size());
        setup_response sr;
        sr.mode = m;
        const auto reply = feed(s, bytes_of(sr));
        CHECK(decode_reply<server_start>(reply).accept == accept_code::not_supported);
        CHECK(decode_reply<server_start>(reply).start_time == ntp_timestamp{});
        CHECK(s.closed());
        const auto closed = only<connection_closed>(drain(s));
        CHECK(closed.ec == errc::unsupported);
        CHECK(closed.accept == accept_code::not_supported);
    }
    SUBCASE("offered security bit plus an offered feature is fine")
    {
        server s(cfg, loopback_v4(), t0);
        s.consume_output(s.pending_output().size());
        setup_response sr;
        sr.mode = mode::unauthenticated | mode::individual_session_control;
        const auto reply = feed(s, bytes_of(sr));
        CHECK(decode_reply<server_start>(reply).accept == accept_code::ok);
        CHECK(s.agreed_mode() == sr.mode);
    }
    SUBCASE("Mode 0: the client declines; closed without Server-Start")
    {
        server s(cfg, loopback_v4(), t0);
        s.consume_output(s.pending_output().size());
        CHECK(feed(s, bytes_of(setup_response{})).empty());
        CHECK(s.closed());
        CHECK(only<connection_closed>(drain(s)).ec == std::error_code{});
    }
}

TEST_CASE("client declines with Mode 0 when a required feature is missing")
{
    auto ccfg = test_client_config();
    ccfg.features = mode::individual_session_control;
    ccfg.required_features = mode::individual_session_control;
    server s(test_server_config(), loopback_v4(), t0);
    client c(ccfg, t0);
    pump(c, s, t0);
    CHECK(c.closed());
    CHECK(s.closed());
    CHECK(only<connection_closed>(drain(c)).ec == errc::unsupported);
    CHECK(only<connection_closed>(drain(s)).ec == std::error_code{});
}

TEST_CASE("client selects offered optional features and ignores unknown bits")
{
    auto scfg = test_server_config();
    scfg.modes = mode::unauthenticated | mode::reflect_octets | mode::symmetrical_size;
    auto ccfg = test_client_config();
    ccfg.features = mode::individual_session_control | mode::reflect_octets;
    server s(scfg, loopback_v4(), t0);
    client c(ccfg, t0);
    pump(c, s, t0);
    CHECK(c.agreed_mode() == (mode::unauthenticated | mode::reflect_octets));
    CHECK(s.agreed_mode() == c.agreed_mode());
}

TEST_CASE("client: Server-Start with a non-zero Accept closes with that code")
{
    client c(test_client_config(), t0);
    server_greeting g;
    g.modes = mode::unauthenticated;
    c.receive(bytes_of(g), t0);
    server_start ss;
    ss.accept = accept_code::internal_error;
    c.receive(bytes_of(ss), t0);
    CHECK(c.closed());
    const auto closed = only<connection_closed>(drain(c));
    CHECK(closed.accept == accept_code::internal_error);
}

TEST_CASE("server answers bad Request-TW-Session fields with the RFC's Accept codes")
{
    server s = ready_server(mode::unauthenticated);

    auto expect_reject = [&](const std::vector<std::uint8_t>& bytes, accept_code want) {
        const auto a = decode_reply<accept_session>(feed(s, bytes));
        CHECK(a.accept == want);
        CHECK(a.port == 0); // EID 1587: no port unless the request is accepted
        CHECK(is_zero(a.sid));
        CHECK_FALSE(s.closed()); // a rejected request does not end the connection
        CHECK(only<server_events::session_rejected>(drain(s)).accept == want);
    };

    SUBCASE("Conf-Sender / Conf-Receiver set (RFC 5357 §3.5: Accept 3)")
    {
        auto b = bytes_of(basic_request(7000, 5000));
        b[2] = 1;
        expect_reject(b, accept_code::not_supported);
        b[2] = 0;
        b[3] = 1;
        expect_reject(b, accept_code::not_supported);
    }
    SUBCASE("schedule slots or packet count set")
    {
        auto r = basic_request(7000, 5000);
        r.packets = 10;
        expect_reject(bytes_of(r), accept_code::not_supported);
    }
    SUBCASE("unknown IPVN")
    {
        auto b = bytes_of(basic_request(7000, 5000));
        b[1] = 5;
        expect_reject(b, accept_code::not_supported);
    }
    SUBCASE("Type-P outside 0x3F000000 (a PHB ID)")
    {
        auto r = basic_request(7000, 5000);
        r.type_p = 0x4000'1234;
        expect_reject(bytes_of(r), accept_code::not_supported);
    }
    SUBCASE("zero address with another IP version than the control connection")
    {
        auto r = basic_request(7000, 5000);
        r.ipvn = 6;
        expect_reject(bytes_of(r), accept_code::not_supported);
    }
    SUBCASE("no reflector port available: Accept 5, port 0")
    {
        auto cfg = test_server_config();
        cfg.allocate_port = [](std::uint16_t) { return std::optional<std::uint16_t>{}; };
        s = ready_server(mode::unauthenticated, cfg);
        expect_reject(bytes_of(basic_request(7000, 5000)), accept_code::temporary_limit);
    }
    SUBCASE("per-connection session limit: Accept 4")
    {
        auto cfg = test_server_config();
        cfg.max_sessions = 1;
        s = ready_server(mode::unauthenticated, cfg);
        const auto ok = decode_reply<accept_session>(feed(s, bytes_of(basic_request(1, 5000))));
        CHECK(ok.accept == accept_code::ok);
        drain(s);
        expect_reject(bytes_of(basic_request(2, 5001)), accept_code::permanent_limit);
    }
    SUBCASE("a well-formed request after rejections is still accepted")
    {
        auto b = bytes_of(basic_request(7000, 5000));
        b[3] = 1;
        expect_reject(b, accept_code::not_supported);
        const auto a = decode_reply<accept_session>(feed(s, bytes_of(basic_request(7000, 5000))));
        CHECK(a.accept == accept_code::ok);
        CHECK(a.port == 5000);
    }
}

TEST_CASE("Type-P with the DSCP in the low bits is accepted unless configured strict")
{
    auto r = basic_request(7000, 5000);
    r.type_p = 0x2E;
    server lenient = ready_server(mode::unauthenticated);
    CHECK(decode_reply<accept_session>(feed(lenient, bytes_of(r))).accept == accept_code::ok);
    CHECK(only<server_events::session_accepted>(drain(lenient)).dscp == 46);

    auto cfg = test_server_config();
    cfg.accept_low_dscp = false;
    server strict = ready_server(mode::unauthenticated, cfg);
    CHECK(decode_reply<accept_session>(feed(strict, bytes_of(r))).accept ==
          accept_code::not_supported);
}

TEST_CASE("server closes on unexpected commands, answering Accept 3 where the RFC says so")
{
    SUBCASE("unknown command number: Accept-Session with Accept 3, then close")
    {
        for (std::uint8_t cmd : {0, 1, 4, 6, 8, 11, 200}) {
            CAPTURE(int{cmd});
            server s = ready_server(mode::unauthenticated);
            std::vector<std::uint8_t> junk(16, 0);
            junk[0] = cmd;
            const auto reply = feed(s, junk);
            CHECK(decode_reply<accept_session>(reply).accept == accept_code::not_supported);
            CHECK(s.closed());
            CHECK(only<connection_closed>(drain(s)).accept == accept_code::not_supported);
        }
    }
    SUBCASE("Start-N-Sessions without mode 16")
    {
        server s = ready_server(mode::unauthenticated);
        const auto reply = feed(s, bytes_of(start_n_sessions{{session_id{}}, {}}));
        CHECK(decode_reply<accept_session>(reply).accept == accept_code::not_supported);
        CHECK(s.closed());
    }
    SUBCASE("Start-Sessions with mode 16 agreed (RFC 5938 §3.1)")
    {
        server s = ready_server(mode::unauthenticated | mode::individual_session_control);
        const auto reply = feed(s, bytes_of(start_sessions{}));
        CHECK(decode_reply<accept_session>(reply).accept == accept_code::not_supported);
        CHECK(s.closed());
    }
    SUBCASE("Stop-Sessions before Start-Sessions")
    {
        server s = ready_server(mode::unauthenticated);
        CHECK(feed(s, bytes_of(stop_sessions{accept_code::ok, 0, {}})).empty());
        CHECK(s.closed());
        CHECK(only<connection_closed>(drain(s)).ec == errc::protocol_violation);
    }
    SUBCASE("Start-Sessions with nothing to start is refused but not fatal")
    {
        server s = ready_server(mode::unauthenticated);
        CHECK(decode_reply<start_ack>(feed(s, bytes_of(start_sessions{}))).accept ==
              accept_code::failure);
        CHECK_FALSE(s.closed());
    }
    SUBCASE("Stop-Sessions with the wrong Number of Sessions (RFC 5357 §3.8)")
    {
        for (std::uint32_t n : {0u, 2u}) {
            server s = ready_server(mode::unauthenticated);
            feed(s, bytes_of(basic_request(7000, 5000)));
            CHECK(decode_reply<start_ack>(feed(s, bytes_of(start_sessions{}))).accept ==
                  accept_code::ok);
            drain(s);
            CHECK(feed(s, bytes_of(stop_sessions{accept_code::ok, n, {}})).empty());
            CHECK(s.closed());
            CHECK(only<connection_closed>(drain(s)).ec == errc::bad_value);
        }
    }
    SUBCASE("Request-TW-Session while sessions run")
    {
        server s = ready_server(mode::unauthenticated);
        feed(s, bytes_of(basic_request(7000, 5000)));
        feed(s, bytes_of(start_sessions{}));
        drain(s);
        CHECK(feed(s, bytes_of(basic_request(7001, 5001))).empty());
        CHECK(s.closed());
    }
    SUBCASE("Start-N-Sessions with N = 0 cannot be acknowledged: close")
    {
        server s = ready_server(mode::unauthenticated | mode::individual_session_control);
        std::vector<std::uint8_t> b(32, 0);
        b[0] = 7;
        CHECK(feed(s, b).empty());
        CHECK(s.closed());
        CHECK(only<connection_closed>(drain(s)).ec == errc::bad_length);
    }
    SUBCASE("input after the close is ignored")
    {
        server s = ready_server(mode::unauthenticated);
        std::vector<std::uint8_t> junk(16, 0);
        junk[0] = 6;
        feed(s, junk);
        drain(s);
        CHECK(feed(s, bytes_of(basic_request(7000, 5000))).empty());
        CHECK(drain(s).empty());
    }
}

TEST_CASE("a stop-and-go cycle: the connection can request and start again after a stop")
{
    server s(test_server_config(), loopback_v4(), t0);
    client c(test_client_config(), t0);
    pump(c, s, t0);
    for (int round = 0; round < 2; ++round) {
        std::uint64_t id = 0;
        REQUIRE_FALSE(c.request_session(basic_request(7000, 5000), t0, id));
        pump(c, s, t0);
        REQUIRE_FALSE(c.start_sessions(t0));
        pump(c, s, t0);
        REQUIRE_FALSE(c.stop_sessions(t0, round == 1 ? accept_code::failure : accept_code::ok));
        pump(c, s, t0);
        CHECK(c.sessions().empty());
        CHECK(s.session_count() == 0);
        const auto ev = drain(s);
        CHECK(only<server_events::sessions_stopped>(ev).accept ==
              (round == 1 ? accept_code::failure : accept_code::ok));
    }
    CHECK_FALSE(s.closed());
}

TEST_CASE("pipelined requests and Start-Sessions are matched in order")
{
    server s(test_server_config(), loopback_v4(), t0);
    client c(test_client_config(), t0);
    pump(c, s, t0);
    drain(c);
    auto bad = basic_request(7001, 5001);
    bad.type_p = 0x8000'0000; // rejected in the middle
    std::uint64_t a = 0, b = 0, d = 0;
    REQUIRE_FALSE(c.request_session(basic_request(7000, 5000), t0, a));
    REQUIRE_FALSE(c.request_session(bad, t0, b));
    REQUIRE_FALSE(c.request_session(basic_request(7002, 5002), t0, d));
    REQUIRE_FALSE(c.start_sessions(t0));
    CHECK(c.start_sessions(t0) == errc::protocol_violation); // one Start at a time
    // Everything reaches the server in one segment; all replies come back in one segment.
    transfer(c, s, t0);
    transfer(s, c, t0);
    const auto ev = drain(c);
    const auto acc = all_of_type<client_events::session_accepted>(ev);
    REQUIRE(acc.size() == 2);
    CHECK(acc[0].request_id == a);
    CHECK(acc[0].port == 5000);
    CHECK(acc[1].request_id == d);
    CHECK(acc[1].port == 5002);
    const auto rej = only<client_events::session_rejected>(ev);
    CHECK(rej.request_id == b);
    CHECK(rej.accept == accept_code::not_supported);
    CHECK(only<client_events::sessions_started>(ev).sids.size() == 2);
    REQUIRE_FALSE(c.stop_sessions(t0));
    stop_sessions st;
    REQUIRE_FALSE(decode(c.pending_output(), st));
    CHECK(st.number_of_sessions == 2);
}

TEST_CASE("client API refuses commands that are not valid now")
{
    server s(test_server_config(), loopback_v4(), t0);
    client c(test_client_config(), t0);
    std::uint64_t id = 0;
    CHECK(c.request_session(basic_request(1, 2), t0, id) == errc::protocol_violation);
    pump(c, s, t0);
    CHECK(c.start_sessions(t0) == errc::protocol_violation); // nothing requested
    CHECK(c.stop_sessions(t0) == errc::protocol_violation);  // never with 0 sessions
    const session_id sid{};
    CHECK(c.start_n_sessions(std::span(&sid, 1), t0) == errc::protocol_violation);
    auto r = basic_request(1, 2);
    r.octets_to_be_reflected = 1; // mode 32 not agreed
    CHECK(c.request_session(r, t0, id) == errc::unsupported);
    r = basic_request(1, 2);
    r.ipvn = 3;
    CHECK(c.request_session(r, t0, id) == errc::bad_value);
    REQUIRE_FALSE(c.request_session(basic_request(1, 5000), t0, id));
    pump(c, s, t0);
    REQUIRE_FALSE(c.start_sessions(t0));
    pump(c, s, t0);
    // While sessions run only Stop-Sessions is allowed (RFC 4656 §3.4).
    CHECK(c.request_session(basic_request(1, 5000), t0, id) == errc::protocol_violation);
    CHECK(c.start_sessions(t0) == errc::protocol_violation);
    CHECK(c.stop_sessions(t0, static_cast<accept_code>(9)) == errc::bad_value);
    CHECK_FALSE(c.stop_sessions(t0));
    stop_sessions st;
    REQUIRE_FALSE(decode(c.pending_output(), st, strictness::strict));
    CHECK(st.number_of_sessions == 1);
    CHECK(c.stop_sessions(t0) == errc::protocol_violation); // already stopped
}

TEST_CASE("client closes on a bad reply")
{
    auto ready_client = [] {
        client c(test_client_config(), t0);
        server_greeting g;
        g.modes = mode::unauthenticated;
        c.receive(bytes_of(g), t0);
        c.receive(bytes_of(server_start{}), t0);
        REQUIRE(c.current_state() == client::state::ready);
        drain(c);
        c.consume_output(c.pending_output().size());
        return c;
    };
    SUBCASE("unsolicited data")
    {
        client c = ready_client();
        c.receive(bytes_of(start_ack{}), t0);
        CHECK(c.closed());
        CHECK(only<connection_closed>(drain(c)).ec == errc::protocol_violation);
    }
    SUBCASE("Accept 0 without a port")
    {
        client c = ready_client();
        std::uint64_t id = 0;
        REQUIRE_FALSE(c.request_session(basic_request(1, 5000), t0, id));
        c.receive(bytes_of(accept_session{}), t0);
        CHECK(c.closed());
        CHECK(only<connection_closed>(drain(c)).ec == errc::bad_value);
    }
    SUBCASE("Start-Ack rejection")
    {
        client c = ready_client();
        std::uint64_t id = 0;
        REQUIRE_FALSE(c.request_session(basic_request(1, 5000), t0, id));
        accept_session a;
        a.port = 5000;
        c.receive(bytes_of(a), t0);
        REQUIRE_FALSE(c.start_sessions(t0));
        c.receive(bytes_of(start_ack{accept_code::temporary_limit, {}}), t0);
        CHECK(c.closed());
        CHECK(only<connection_closed>(drain(c)).accept == accept_code::temporary_limit);
    }
    SUBCASE("EOF while waiting for a reply")
    {
        client c = ready_client();
        std::uint64_t id = 0;
        REQUIRE_FALSE(c.request_session(basic_request(1, 5000), t0, id));
        c.on_eof(t0);
        CHECK(only<connection_closed>(drain(c)).ec == errc::truncated);
    }
}

TEST_CASE("RFC 5938 individual session control end to end")
{
    auto scfg = test_server_config();
    scfg.modes = mode::unauthenticated | mode::individual_session_control;
    auto ccfg = test_client_config();
    ccfg.features = mode::individual_session_control;
    for (std::size_t chunk : {std::numeric_limits<std::size_t>::max(), std::size_t{1}}) {
        CAPTURE(chunk);
        server s(scfg, loopback_v4(), t0);
        client c(ccfg, t0);
        pump(c, s, t0, chunk);
        REQUIRE(c.agreed_mode() == (mode::unauthenticated | mode::individual_session_control));
        std::uint64_t id = 0;
        for (std::uint16_t p = 0; p < 3; ++p)
            REQUIRE_FALSE(c.request_session(basic_request(7000 + p, 5000 + p), t0, id));
        pump(c, s, t0, chunk);
        REQUIRE(c.sessions().size() == 3);
        CHECK(c.start_sessions(t0) == errc::protocol_violation); // MUST NOT with mode 16
        const std::vector<session_id> sids{c.sessions()[0].sid, c.sessions()[1].sid,
                                           c.sessions()[2].sid};
        drain(c);
        drain(s);

        REQUIRE_FALSE(c.start_n_sessions(std::span(sids).first(2), t0));
        // Requests may still be made while other sessions run.
        pump(c, s, t0, chunk);
        auto cev = drain(c);
        const auto ack = only<client_events::start_n_acked>(cev);
        CHECK(ack.accept == accept_code::ok);
        CHECK(ack.sids == std::vector<session_id>{sids[0], sids[1]});
        CHECK(only<server_events::sessions_started>(drain(s)).sids.size() == 2);
        CHECK(c.sessions()[0].st == client::session_state::started);
        CHECK(c.sessions()[2].st == client::session_state::accepted);

        // Starting a running session again is refused locally.
        CHECK(c.start_n_sessions(std::span(sids).first(1), t0) == errc::protocol_violation);
        REQUIRE_FALSE(c.start_n_sessions(std::span(sids).subspan(2), t0));
        REQUIRE_FALSE(c.stop_n_sessions(std::span(sids).first(1), t0 + 5s));
        pump(c, s, t0 + 5s, chunk);
        cev = drain(c);
        CHECK(only<client_events::start_n_acked>(cev).sids == std::vector<session_id>{sids[2]});
        CHECK(only<client_events::stop_n_acked>(cev).sids == std::vector<session_id>{sids[0]});
        const auto sev = drain(s);
        const auto stopped = only<server_events::sessions_stopped>(sev);
        CHECK(stopped.sids == std::vector<session_id>{sids[0]});
        CHECK(stopped.at == t0 + 5s);
        CHECK(c.sessions().size() == 2);
        CHECK(s.session_count() == 2);
        CHECK_FALSE(c.closed());
        CHECK_FALSE(s.closed());
    }
}

TEST_CASE("Start-N-Sessions with good and unknown SIDs gets one Ack per Accept value")
{
    server s = ready_server(mode::unauthenticated | mode::individual_session_control);
    const auto a1 = decode_reply<accept_session>(feed(s, bytes_of(basic_request(1, 5000))));
    const auto a2 = decode_reply<accept_session>(feed(s, bytes_of(basic_request(2, 5001))));
    drain(s);
    session_id unknown{};
    unknown.fill(0xAB);
    const auto reply = feed(s, bytes_of(start_n_sessions{{a1.sid, unknown, a2.sid, a1.sid}, {}}));
    REQUIRE(reply.size() == n_message_size(2) + n_message_size(2));
    const auto ok = decode_reply<start_n_ack>({reply.begin(), reply.begin() + 64});
    const auto bad = decode_reply<start_n_ack>({reply.begin() + 64, reply.end()});
    CHECK(ok.accept == accept_code::ok);
    CHECK(ok.sids == std::vector<session_id>{a1.sid, a2.sid});
    CHECK(bad.accept == accept_code::failure);
    CHECK(bad.sids == std::vector<session_id>{unknown, a1.sid}); // the repeat is refused
    CHECK(only<server_events::sessions_started>(drain(s)).sids.size() == 2);

    // Stop-N for a session that is not running is refused; the running one stops.
    const auto stop_reply = feed(s, bytes_of(stop_n_sessions{{unknown, a2.sid}, {}}));
    REQUIRE(stop_reply.size() == 96);
    CHECK(decode_reply<stop_n_ack>({stop_reply.begin(), stop_reply.begin() + 48}).sids ==
          std::vector<session_id>{a2.sid});
    CHECK(decode_reply<stop_n_ack>({stop_reply.begin() + 48, stop_reply.end()}).accept ==
          accept_code::failure);
    CHECK_FALSE(s.closed());
}

TEST_CASE("client matches Start-N-Acks by SID, in any order and split by Accept")
{
    auto ccfg = test_client_config();
    ccfg.features = mode::individual_session_control;
    client c(ccfg, t0);
    server_greeting g;
    g.modes = mode::unauthenticated | mode::individual_session_control;
    c.receive(bytes_of(g), t0);
    c.receive(bytes_of(server_start{}), t0);
    std::vector<session_id> sids;
    for (std::uint8_t i = 1; i <= 3; ++i) {
        std::uint64_t id = 0;
        REQUIRE_FALSE(c.request_session(basic_request(i, 5000), t0, id));
        accept_session a;
        a.port = 5000;
        a.sid.fill(i);
        sids.push_back(a.sid);
        c.receive(bytes_of(a), t0);
    }
    drain(c);
    REQUIRE_FALSE(c.start_n_sessions(sids, t0));
    // Acks in reverse order, the second one a rejection; fed one octet at a time.
    std::vector<std::uint8_t> wire =
        bytes_of(start_n_ack{accept_code::temporary_limit, {sids[2]}, {}});
    const auto first = bytes_of(start_n_ack{accept_code::ok, {sids[1], sids[0]}, {}});
    wire.insert(wire.begin(), first.begin(), first.end());
    for (auto b : wire)
        c.receive(std::span(&b, 1), t0);
    const auto acks = all_of_type<client_events::start_n_acked>(drain(c));
    REQUIRE(acks.size() == 2);
    CHECK(acks[0].accept == accept_code::ok);
    CHECK(acks[1].accept == accept_code::temporary_limit);
    CHECK(c.sessions()[0].st == client::session_state::started);
    CHECK(c.sessions()[1].st == client::session_state::started);
    CHECK(c.sessions()[2].st == client::session_state::accepted);
    CHECK(c.deadline() == std::nullopt); // nothing outstanding any more

    SUBCASE("an Ack naming a SID that is not pending closes the connection")
    {
        c.receive(bytes_of(start_n_ack{accept_code::ok, {sids[0]}, {}}), t0);
        CHECK(c.closed());
        CHECK(only<connection_closed>(drain(c)).ec == errc::protocol_violation);
    }
}

TEST_CASE("RFC 6038 Reflect Octets fields pass through when mode 32 is agreed")
{
    auto scfg = test_server_config();
    scfg.modes = mode::unauthenticated | mode::reflect_octets;
    scfg.server_octets = 0x0A0B;
    auto ccfg = test_client_config();
    ccfg.features = mode::reflect_octets;
    server s(scfg, loopback_v4(), t0);
    client c(ccfg, t0);
    pump(c, s, t0);
    drain(c);
    drain(s);
    auto r = basic_request(7000, 5000);
    r.padding_length = 27 + 8;
    r.octets_to_be_reflected = 0x1234;
    r.padding_to_reflect_length = 8;
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.request_session(r, t0, id));
    auto bad = r;
    bad.padding_length = 8; // RFC 6038 §4.2: must exceed the length to reflect
    REQUIRE_FALSE(c.request_session(bad, t0, id));
    pump(c, s, t0);
    const auto ev = drain(c);
    const auto acc = only<client_events::session_accepted>(ev);
    CHECK(acc.reflected_octets == 0x1234);
    CHECK(acc.server_octets == 0x0A0B);
    CHECK(only<client_events::session_rejected>(ev).accept == accept_code::not_supported);
    const auto sacc = only<server_events::session_accepted>(drain(s));
    CHECK(sacc.request.padding_to_reflect_length == 8);
    CHECK(sacc.server_octets == 0x0A0B);
}

TEST_CASE("without mode 32 the server ignores octets 88..91 and sends no server octets")
{
    auto cfg = test_server_config();
    cfg.server_octets = 0x0A0B;
    server s = ready_server(mode::unauthenticated, cfg);
    auto r = basic_request(7000, 5000);
    r.octets_to_be_reflected = 0x1234;
    r.padding_to_reflect_length = 200;
    const auto a = decode_reply<accept_session>(feed(s, bytes_of(r)));
    CHECK(a.accept == accept_code::ok);
    CHECK(a.reflected_octets == 0);
    CHECK(a.server_octets == 0);
    CHECK(only<server_events::session_accepted>(drain(s)).request.padding_to_reflect_length == 0);
}

TEST_CASE("SERVWAIT: idle connections close, monitoring pauses while sessions run")
{
    auto cfg = test_server_config();
    cfg.servwait = 900s;
    server s(cfg, loopback_v4(), t0);
    client c(test_client_config(), t0);
    pump(c, s, t0);
    REQUIRE(s.deadline() == t0 + 900s);
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.request_session(basic_request(1, 5000), t0 + 100s, id));
    pump(c, s, t0 + 100s);
    CHECK(s.deadline() == t0 + 1000s); // any received octet restarts the wait
    REQUIRE_FALSE(c.start_sessions(t0 + 200s));
    pump(c, s, t0 + 200s);
    CHECK(s.deadline() == std::nullopt); // suspended from Start-Sessions ...
    s.on_timer(t0 + 5000s);
    CHECK_FALSE(s.closed());

    SUBCASE("... until Stop-Sessions")
    {
        REQUIRE_FALSE(c.stop_sessions(t0 + 6000s));
        pump(c, s, t0 + 6000s);
        CHECK(s.deadline() == t0 + 6900s);
        s.on_timer(t0 + 6899s);
        CHECK_FALSE(s.closed());
        s.on_timer(t0 + 6900s);
        CHECK(s.closed());
        CHECK(only<connection_closed>(drain(s)).ec == errc::timeout);
    }
    SUBCASE("... or until REFWAIT expired on all sessions")
    {
        s.refwait_expired(t0 + 7000s);
        CHECK(s.deadline() == t0 + 7900s);
        // The sessions are still on record: the Stop-Sessions count must include them.
        REQUIRE_FALSE(c.stop_sessions(t0 + 7100s));
        pump(c, s, t0 + 7100s);
        CHECK_FALSE(s.closed());
        CHECK(only<server_events::sessions_stopped>(drain(s)).sids.size() == 1);
    }
}

TEST_CASE("client reply timeout")
{
    client c(test_client_config(), t0);
    REQUIRE(c.deadline() == t0 + 30s); // waiting for the greeting
    c.on_timer(t0 + 29s);
    CHECK_FALSE(c.closed());
    c.on_timer(t0 + 30s);
    CHECK(c.closed());
    CHECK(only<connection_closed>(drain(c)).ec == errc::timeout);

    server s(test_server_config(), loopback_v4(), t0);
    client c2(test_client_config(), t0);
    pump(c2, s, t0 + 1s);
    CHECK(c2.deadline() == std::nullopt); // ready and nothing outstanding
    std::uint64_t id = 0;
    REQUIRE_FALSE(c2.request_session(basic_request(1, 5000), t0 + 100s, id));
    CHECK(c2.deadline() == t0 + 130s);
}

TEST_CASE("server on_eof")
{
    server s = ready_server(mode::unauthenticated);
    const auto b = bytes_of(basic_request(1, 5000));
    s.receive(std::span(b).first(20), t0);
    s.on_eof(t0);
    CHECK(s.closed());
    CHECK(only<connection_closed>(drain(s)).ec == errc::truncated);
}

namespace {

// A stand-in for a real crypto policy, to show that every protected octet passes through the
// hook once, in order, in whole blocks: it "encrypts" by XOR with a per-direction block counter
// and "authenticates" with a byte sum over everything since the previous check. Not crypto.
struct toy_security {
    static constexpr std::uint32_t security_modes = mode::unauthenticated | mode::authenticated;
    bool active = false;
    std::uint8_t out_counter = 0, in_counter = 0;
    std::uint32_t out_sum = 0, in_sum = 0;
    int sealed_blocks = 0;
    int opened_blocks = 0; // never counts an HMAC field

    void select_mode(std::uint32_t m) { active = (m & mode::authenticated) != 0; }
    static void add(std::uint32_t& sum, std::span<const std::uint8_t> s)
    {
        for (auto b : s)
            sum += b;
    }
    void crypt(std::span<std::uint8_t> block, std::uint8_t& counter)
    {
        for (auto& b : block)
            b ^= std::uint8_t(0xA5 + counter);
        ++counter;
    }
    std::error_code seal(std::span<std::uint8_t> blocks, bool ends_with_hmac)
    {
        if (blocks.size() % 16 != 0 || blocks.empty()) return errc::bad_length;
        if (!active) return {};
        if (ends_with_hmac) {
            add(out_sum, blocks.first(blocks.size() - 16));
            auto tag = blocks.last(16);
            std::fill(tag.begin(), tag.end(), std::uint8_t{0});
            wire::store32(tag.data(), out_sum);
            out_sum = 0;
        } else {
            add(out_sum, blocks);
        }
        for (std::size_t i = 0; i < blocks.size(); i += 16, ++sealed_blocks)
            crypt(blocks.subspan(i, 16), out_counter);
        return {};
    }
    std::error_code open_block(std::span<std::uint8_t, 16> block)
    {
        if (!active) return {};
        crypt(block, in_counter);
        add(in_sum, block);
        ++opened_blocks;
        return {};
    }
    std::error_code verify(std::span<std::uint8_t, 16> hmac_field)
    {
        if (!active) return {};
        crypt(hmac_field, in_counter);
        const bool ok =
            wire::load32(hmac_field.data()) == in_sum && is_zero(std::span(hmac_field).last(12));
        in_sum = 0;
        return ok ? std::error_code{} : make_error_code(errc::auth_failed);
    }
};
static_assert(control_security_policy<toy_security>);

} // namespace

TEST_CASE("the security hook sees every protected block: handshake through a toy policy")
{
    auto scfg = test_server_config();
    scfg.modes = mode::unauthenticated | mode::authenticated;
    auto ccfg = test_client_config();
    ccfg.security_modes = mode::unauthenticated | mode::authenticated;
    control_server<toy_security> s(scfg, loopback_v4(), t0);
    control_client<toy_security> c(ccfg, t0);
    pump(c, s, t0, 5);
    REQUIRE(c.agreed_mode() == mode::authenticated); // the stronger mode is preferred
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.request_session(basic_request(7000, 5000), t0, id));
    // On the wire the request is not the plain encoding any more.
    const std::vector<std::uint8_t> wire_req(c.pending_output().begin(), c.pending_output().end());
    CHECK(wire_req != bytes_of(basic_request(7000, 5000)));
    pump(c, s, t0, 3);
    REQUIRE_FALSE(c.start_sessions(t0));
    pump(c, s, t0, 1);
    REQUIRE_FALSE(c.stop_sessions(t0));
    pump(c, s, t0);
    const auto cev = drain(c);
    CHECK(only<client_events::session_accepted>(cev).port == 5000);
    CHECK(only<client_events::sessions_started>(cev).sids.size() == 1);
    CHECK(only<server_events::sessions_stopped>(drain(s)).sids.size() == 1);
    // Server: Server-Start tail (1) + Accept-Session (3) + Start-Ack (2).
    CHECK(s.security().sealed_blocks == 6);
    // Client: Request (7) + Start-Sessions (2) + Stop-Sessions (2).
    CHECK(c.security().sealed_blocks == 11);
    // Decrypted one block at a time, HMAC fields excluded: the server opened Request (6) +
    // Start (1) + Stop (1); the client Server-Start tail (1) + Accept-Session (2) + Start-Ack (1).
    CHECK(s.security().opened_blocks == 8);
    CHECK(c.security().opened_blocks == 4);
    CHECK_FALSE(c.closed());
    CHECK_FALSE(s.closed());

    SUBCASE("a corrupted block fails the check and closes the connection")
    {
        control_server<toy_security> s2(scfg, loopback_v4(), t0);
        control_client<toy_security> c2(ccfg, t0);
        pump(c2, s2, t0);
        REQUIRE_FALSE(c2.request_session(basic_request(7000, 5000), t0, id));
        std::vector<std::uint8_t> bytes(c2.pending_output().begin(), c2.pending_output().end());
        bytes[40] ^= 1;
        s2.receive(bytes, t0);
        CHECK(s2.closed());
        CHECK(only<connection_closed>(drain(s2)).ec == errc::auth_failed);
    }
}

TEST_CASE("client refuses an unreasonable PBKDF2 Count in a protected mode")
{
    auto ccfg = test_client_config();
    ccfg.security_modes = mode::authenticated;
    for (std::uint32_t count : {std::uint32_t{1} << 16, 1000u, 3000u}) {
        CAPTURE(count);
        control_client<toy_security> c(ccfg, t0);
        server_greeting g;
        g.modes = mode::authenticated;
        g.count = count;
        c.receive(bytes_of(g), t0);
        CHECK(c.closed());
        setup_response sr;
        REQUIRE_FALSE(decode(c.pending_output(), sr));
        CHECK(sr.mode == 0);
    }
    control_client<toy_security> ok(ccfg, t0);
    server_greeting g;
    g.modes = mode::authenticated;
    g.count = 1u << 15;
    ok.receive(bytes_of(g), t0);
    CHECK_FALSE(ok.closed());
    // Unauthenticated mode derives no key, so the Count does not matter there.
    client open(test_client_config(), t0);
    g.modes = mode::unauthenticated;
    g.count = 7;
    open.receive(bytes_of(g), t0);
    CHECK_FALSE(open.closed());
}

TEST_CASE("client does not request sessions while a Start-Sessions is unanswered")
{
    server s(test_server_config(), loopback_v4(), t0);
    client c(test_client_config(), t0);
    pump(c, s, t0);
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.request_session(basic_request(1, 5000), t0, id));
    REQUIRE_FALSE(c.start_sessions(t0));
    CHECK(c.request_session(basic_request(2, 5001), t0, id) == errc::protocol_violation);
}

// RFC 7750 (256) and RFC 8186 (512) are not implemented: even configured, the server does not
// offer them (so a client asking for them is refused) and the client does not select them.
TEST_CASE("unimplemented modes 256 and 512 are never offered or selected")
{
    auto cfg = test_server_config();
    cfg.modes = mode::unauthenticated | mode::dscp_ecn_monitoring | mode::ptpv2_timestamp |
                mode::reflect_octets;
    server s(cfg, loopback_v4(), t0);
    CHECK(s.offered_modes() == (mode::unauthenticated | mode::reflect_octets));
    server_greeting g;
    REQUIRE_FALSE(decode(s.pending_output(), g));
    CHECK((g.modes & (mode::dscp_ecn_monitoring | mode::ptpv2_timestamp)) == 0);
    s.consume_output(s.pending_output().size());
    setup_response sr;
    sr.mode = mode::unauthenticated | mode::dscp_ecn_monitoring;
    const auto reply = feed(s, bytes_of(sr));
    CHECK(decode_reply<server_start>(reply).accept == accept_code::not_supported);

    // A server that does offer them (another implementation): the client leaves them out.
    auto ccfg = test_client_config();
    ccfg.features = mode::dscp_ecn_monitoring | mode::ptpv2_timestamp | mode::reflect_octets;
    client c(ccfg, t0);
    server_greeting offer;
    offer.modes = mode::unauthenticated | mode::dscp_ecn_monitoring | mode::ptpv2_timestamp |
                  mode::reflect_octets;
    offer.count = 1024;
    c.receive(bytes_of(offer), t0);
    setup_response chosen;
    REQUIRE_FALSE(decode(c.pending_output(), chosen));
    CHECK(chosen.mode == (mode::unauthenticated | mode::reflect_octets));
}
