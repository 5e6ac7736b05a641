// Replays the twping <-> twampd capture (tests/data/twping-twampd-open.pcap, TCP port 18620)
// against our sans-I/O TWAMP-Control state machines:
//   * control_server gets twping's octets, in capture order, and must answer what twping
//     accepted: same message lengths, same Accept codes and the same semantics (greeting
//     offering mode 1, Server-Start 0, Accept-Session 0 with a port, Start-Ack 0, and a
//     Stop-Sessions whose count it takes);
//   * control_client gets twampd's octets and must produce twping's messages: same lengths and,
//     where nothing random or time-dependent is involved, the same octets.
// Everything random comes from a deterministic source, so the runs are reproducible.
#include <twamp/control_client.hpp>
#include <twamp/control_server.hpp>

#include <doctest/doctest.h>

#include "pcap.hpp"
#include "support/control_pump.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

using namespace twamp;
using namespace twamp::control;
using namespace std::chrono_literals;

namespace {

using twamp_test::all_of_type;
using twamp_test::drain;
using twamp_test::take_output;

constexpr std::uint16_t kCapturePort = 18620;

struct capture_streams {
    std::vector<std::vector<std::uint8_t>> to_client; // twampd -> twping, one message each
    std::vector<std::vector<std::uint8_t>> to_server; // twping -> twampd
    std::vector<int> order;                           // 0 = to client, 1 = to server
};

capture_streams load_capture()
{
    capture_streams c;
    const auto packets =
        twamp_test::read_pcap(std::string(TWAMP_TEST_DATA_DIR) + "/twping-twampd-open.pcap");
    for (const auto& p : packets) {
        if (p.udp || p.payload.empty()) continue;
        if (p.src_port == kCapturePort) {
            c.to_client.push_back(p.payload);
            c.order.push_back(0);
        } else if (p.dst_port == kCapturePort) {
            c.to_server.push_back(p.payload);
            c.order.push_back(1);
        }
    }
    // Greeting, Server-Start, Accept-Session, Start-Ack / Set-Up-Response, Request-TW-Session,
    // Start-Sessions, Stop-Sessions: one message per TCP segment, strictly alternating.
    REQUIRE(c.to_client.size() == 4);
    REQUIRE(c.to_server.size() == 4);
    REQUIRE(c.order == std::vector<int>{0, 1, 0, 1, 0, 1, 0, 1});
    return c;
}

// Deterministic "random" octets: 0xA0, 0xA1, ...
random_source counting_random()
{
    return [next = std::uint8_t{0xA0}](std::span<std::uint8_t> out) mutable {
        for (auto& b : out)
            b = next++;
    };
}

// The capture was taken at NTP 0xEEB59093 (2026-ish); use a nearby Unix time.
const nanoseconds t0 = from_ntp(ntp_timestamp{0xEEB59093, 0}, std::chrono::seconds(1'700'000'000));

template <class Msg> Msg decode_strict(const std::vector<std::uint8_t>& bytes)
{
    Msg m{};
    const auto ec = decode(bytes, m, strictness::strict);
    REQUIRE_MESSAGE(!ec, ec.message());
    return m;
}

// Feeds `bytes` in chunks of `chunk` octets (1 = a byte at a time).
template <class Machine>
void feed(Machine& m, const std::vector<std::uint8_t>& bytes, nanoseconds now, std::size_t chunk)
{
    for (std::size_t i = 0; i < bytes.size(); i += chunk)
        m.receive(std::span(bytes).subspan(i, std::min(chunk, bytes.size() - i)), now);
}

connection_addresses capture_connection()
{
    // twping and twampd both ran on 127.0.0.1.
    return {4, make_address_v4(127, 0, 0, 1), make_address_v4(127, 0, 0, 1)};
}

} // namespace

TEST_CASE("replay: our control_server answers twping's messages as twampd did")
{
    const auto cap = load_capture();
    for (const std::size_t chunk : {std::size_t{1000}, std::size_t{1}, std::size_t{7}}) {
        CAPTURE(chunk);
        server_config cfg;
        cfg.modes = mode::unauthenticated | mode::individual_session_control |
                    mode::reflect_octets | mode::symmetrical_size;
        cfg.random = counting_random();
        cfg.server_start_time = t0 - 1h;
        std::vector<std::uint16_t> asked;
        cfg.allocate_port = [&asked](std::uint16_t requested) -> std::optional<std::uint16_t> {
            asked.push_back(requested);
            return std::uint16_t{18937}; // twampd's choice in the capture
        };
        control_server<> s(cfg, capture_connection(), t0);

        // 1. Server Greeting: 64 octets like twampd's, offering (at least) mode 1.
        const auto greeting_bytes = take_output(s);
        REQUIRE(greeting_bytes.size() == cap.to_client[0].size());
        const auto g = decode_strict<server_greeting>(greeting_bytes);
        const auto cap_g = decode_strict<server_greeting>(cap.to_client[0]);
        CHECK((g.modes & mode::unauthenticated) != 0);
        CHECK((cap_g.modes & mode::unauthenticated) != 0);
        CHECK(g.count == 2048);
        CHECK(g.count == cap_g.count);
        CHECK_FALSE(is_zero(g.challenge)); // from the (deterministic) random source

        // 2. twping's Set-Up-Response (mode 1) -> Server-Start, Accept 0, like twampd's.
        feed(s, cap.to_server[0], t0 + 1ms, chunk);
        const auto ss_bytes = take_output(s);
        REQUIRE(ss_bytes.size() == cap.to_client[1].size());
        const auto ss = decode_strict<server_start>(ss_bytes);
        const auto cap_ss = decode_strict<server_start>(cap.to_client[1]);
        CHECK(ss.accept == accept_code::ok);
        CHECK(ss.accept == cap_ss.accept);
        CHECK(is_zero(ss.server_iv)); // unused in unauthenticated mode, zero like twampd's
        CHECK(is_zero(cap_ss.server_iv));
        CHECK(ss.start_time == to_ntp(t0 - 1h));
        CHECK(s.agreed_mode() == mode::unauthenticated);
        CHECK(s.current_state() == control_server<>::state::ready);
        auto ev = drain(s);
        REQUIRE(all_of_type<server_events::mode_agreed>(ev).size() == 1);
        CHECK(all_of_type<server_events::mode_agreed>(ev)[0].mode == mode::unauthenticated);

        // 3. Request-TW-Session -> Accept-Session, Accept 0 with a port and a SID.
        feed(s, cap.to_server[1], t0 + 2ms, chunk);
        const auto as_bytes = take_output(s);
        REQUIRE(as_bytes.size() == cap.to_client[2].size());
        const auto as = decode_strict<accept_session>(as_bytes);
        const auto cap_as = decode_strict<accept_session>(cap.to_client[2]);
        CHECK(as.accept == accept_code::ok);
        CHECK(as.accept == cap_as.accept);
        CHECK(as.port != 0);
        CHECK(as.port == cap_as.port);
        CHECK(asked == std::vector<std::uint16_t>{9046}); // the request's Receiver Port
        // SID per RFC 4656 §3.5, like twampd's: receiver address, NTP time, random.
        CHECK(std::equal(as.sid.begin(), as.sid.begin() + 4, cap_as.sid.begin()));
        CHECK(as.sid == make_sid(4, make_address_v4(127, 0, 0, 1), to_ntp(t0 + 2ms),
                                 {as.sid[12], as.sid[13], as.sid[14], as.sid[15]}));
        CHECK(as.reflected_octets == 0); // no mode 32 agreed
        CHECK(as.server_octets == 0);
        CHECK(is_zero(as.hmac));
        ev = drain(s);
        const auto accepted = all_of_type<server_events::session_accepted>(ev);
        REQUIRE(accepted.size() == 1);
        CHECK(accepted[0].sid == as.sid);
        CHECK(accepted[0].reflector_port == 18937);
        CHECK(accepted[0].dscp == 0);
        CHECK(accepted[0].request.sender_port == 9046);
        CHECK(accepted[0].request.receiver_port == 9046);
        CHECK(accepted[0].request.sender_address == make_address_v4(127, 0, 0, 1));
        CHECK(accepted[0].request.receiver_address == make_address_v4(127, 0, 0, 1));
        CHECK(accepted[0].request.padding_length == 27);
        CHECK(duration_from_ntp(accepted[0].request.timeout) > 2s);
        CHECK(duration_from_ntp(accepted[0].request.timeout) < 2010ms);
        CHECK(s.session_count() == 1);

        // 4. Start-Sessions -> Start-Ack, Accept 0.
        feed(s, cap.to_server[2], t0 + 3ms, chunk);
        const auto sa_bytes = take_output(s);
        REQUIRE(sa_bytes.size() == cap.to_client[3].size());
        const auto sa = decode_strict<start_ack>(sa_bytes);
        CHECK(sa.accept == accept_code::ok);
        CHECK(sa.accept == decode_strict<start_ack>(cap.to_client[3]).accept);
        CHECK(sa_bytes == cap.to_client[3]); // nothing random in a Start-Ack: same octets
        ev = drain(s);
        const auto started = all_of_type<server_events::sessions_started>(ev);
        REQUIRE(started.size() == 1);
        CHECK(started[0].sids == std::vector<session_id>{as.sid});
        CHECK_FALSE(s.deadline().has_value()); // SERVWAIT paused while the session runs

        // 5. Stop-Sessions with Number of Sessions 1: taken, no answer, connection stays up.
        feed(s, cap.to_server[3], t0 + 10s, chunk);
        CHECK(take_output(s).empty());
        ev = drain(s);
        const auto stopped = all_of_type<server_events::sessions_stopped>(ev);
        REQUIRE(stopped.size() == 1);
        CHECK(stopped[0].accept == accept_code::ok);
        CHECK(stopped[0].sids == std::vector<session_id>{as.sid});
        CHECK(stopped[0].at == t0 + 10s);
        CHECK(all_of_type<connection_closed>(ev).empty());
        CHECK_FALSE(s.closed());
        CHECK(s.session_count() == 0);
        CHECK(s.deadline().has_value()); // SERVWAIT runs again

        // twping then closes the TCP connection: an orderly close.
        s.on_eof(t0 + 11s);
        ev = drain(s);
        const auto closed = all_of_type<connection_closed>(ev);
        REQUIRE(closed.size() == 1);
        CHECK_FALSE(closed[0].ec);
    }
}

TEST_CASE("replay: the capture's Stop-Sessions with a wrong count would close our server")
{
    // The count check is what makes the capture's count meaningful: the same stream with
    // Number of Sessions 2 is invalid (RFC 5357 §3.8).
    const auto cap = load_capture();
    server_config cfg;
    cfg.random = counting_random();
    cfg.allocate_port = [](std::uint16_t r) -> std::optional<std::uint16_t> { return r; };
    control_server<> s(cfg, capture_connection(), t0);
    take_output(s);
    for (int i = 0; i < 3; ++i) {
        feed(s, cap.to_server[std::size_t(i)], t0, 1000);
        take_output(s);
    }
    drain(s);
    auto stop = cap.to_server[3];
    REQUIRE(stop[4] == 0); // Number of Sessions, octets 4..7
    REQUIRE(stop[7] == 1);
    stop[7] = 2;
    feed(s, stop, t0 + 1s, 1000);
    CHECK(s.closed());
    const auto ev = drain(s);
    CHECK(all_of_type<server_events::sessions_stopped>(ev).empty());
    REQUIRE(all_of_type<connection_closed>(ev).size() == 1);
    CHECK(all_of_type<connection_closed>(ev)[0].ec == make_error_code(errc::bad_value));
}

TEST_CASE("replay: our control_client takes twampd's answers and speaks like twping")
{
    const auto cap = load_capture();
    const auto cap_req = decode_strict<request_tw_session>(cap.to_server[1]);
    for (const std::size_t chunk : {std::size_t{1000}, std::size_t{1}, std::size_t{5}}) {
        CAPTURE(chunk);
        client_config cfg;
        cfg.random = counting_random();
        control_client<> c(cfg, t0);
        CHECK(take_output(c).empty()); // the server speaks first

        // 1. twampd's greeting (modes 0x0F) -> Set-Up-Response choosing mode 1. In
        // unauthenticated mode nothing in it is random: twping's octets exactly.
        feed(c, cap.to_client[0], t0, chunk);
        const auto sr_bytes = take_output(c);
        REQUIRE(sr_bytes.size() == cap.to_server[0].size());
        CHECK(decode_strict<setup_response>(sr_bytes).mode == mode::unauthenticated);
        CHECK(sr_bytes == cap.to_server[0]);
        auto ev = drain(c);
        const auto greet = all_of_type<client_events::greeting_received>(ev);
        REQUIRE(greet.size() == 1);
        CHECK(greet[0].server_modes == 0x0F);
        CHECK(greet[0].selected_mode == mode::unauthenticated);
        CHECK(greet[0].count == 2048);

        // 2. Server-Start (Accept 0) -> ready, nothing sent.
        feed(c, cap.to_client[1], t0 + 1ms, chunk);
        CHECK(take_output(c).empty());
        ev = drain(c);
        const auto ready = all_of_type<client_events::control_ready>(ev);
        REQUIRE(ready.size() == 1);
        CHECK(ready[0].mode == mode::unauthenticated);
        CHECK(ready[0].server_start_time == ntp_timestamp{0xEEB5903C, 0x0B461309});
        CHECK(c.current_state() == control_client<>::state::ready);

        // 3. A request built like twping's: same addresses, ports, padding, DSCP, ~2 s timeout.
        request_tw_session req;
        req.ipvn = 4;
        req.sender_port = 9046;
        req.receiver_port = 9046;
        req.sender_address = make_address_v4(127, 0, 0, 1);
        req.receiver_address = make_address_v4(127, 0, 0, 1);
        req.padding_length = 27;
        req.start_time = cap_req.start_time;
        req.timeout = ntp_from_duration(2s);
        req.type_p = type_p_from_dscp(0);
        std::uint64_t id = 0;
        REQUIRE_FALSE(c.request_session(req, t0 + 2ms, id));
        const auto rq_bytes = take_output(c);
        REQUIRE(rq_bytes.size() == cap.to_server[1].size());
        const auto rq = decode_strict<request_tw_session>(rq_bytes);
        CHECK(rq_bytes[0] == static_cast<std::uint8_t>(command::request_tw_session));
        CHECK(rq.ipvn == cap_req.ipvn);
        CHECK(rq.conf_sender == 0);
        CHECK(rq.conf_receiver == 0);
        CHECK(rq.schedule_slots == cap_req.schedule_slots);
        CHECK(rq.packets == cap_req.packets);
        CHECK(rq.sender_port == cap_req.sender_port);
        CHECK(rq.receiver_port == cap_req.receiver_port);
        CHECK(rq.sender_address == cap_req.sender_address);
        CHECK(rq.receiver_address == cap_req.receiver_address);
        CHECK(is_zero(rq.sid));
        CHECK(rq.padding_length == cap_req.padding_length);
        CHECK(rq.start_time == cap_req.start_time);
        CHECK(rq.timeout.seconds == cap_req.timeout.seconds); // twping adds a few ms; we don't
        CHECK(rq.type_p == cap_req.type_p);
        CHECK(is_zero(rq.hmac));
        // Only the Timeout fraction differs from twping's octets.
        for (std::size_t i = 0; i < rq_bytes.size(); ++i)
            if (i < 80 || i >= 84) CHECK_MESSAGE(rq_bytes[i] == cap.to_server[1][i], "octet " << i);
        // With the capture's own field values the octets are twping's exactly.
        {
            control_client<> c2(cfg, t0);
            feed(c2, cap.to_client[0], t0, chunk);
            feed(c2, cap.to_client[1], t0, chunk);
            take_output(c2);
            std::uint64_t id2 = 0;
            REQUIRE_FALSE(c2.request_session(cap_req, t0, id2));
            CHECK(take_output(c2) == cap.to_server[1]);
        }

        // 4. Accept-Session (Accept 0, port 18937) -> session_accepted.
        feed(c, cap.to_client[2], t0 + 3ms, chunk);
        CHECK(take_output(c).empty());
        ev = drain(c);
        const auto acc = all_of_type<client_events::session_accepted>(ev);
        REQUIRE(acc.size() == 1);
        CHECK(acc[0].request_id == id);
        CHECK(acc[0].port == 18937);
        CHECK(acc[0].sid == decode_strict<accept_session>(cap.to_client[2]).sid);
        REQUIRE(c.sessions().size() == 1);

        // 5. Start-Sessions: twping's octets.
        REQUIRE_FALSE(c.start_sessions(t0 + 4ms));
        const auto st_bytes = take_output(c);
        CHECK(st_bytes == cap.to_server[2]);
        CHECK(c.deadline().has_value()); // waiting for the Start-Ack
        feed(c, cap.to_client[3], t0 + 5ms, chunk);
        ev = drain(c);
        const auto started = all_of_type<client_events::sessions_started>(ev);
        REQUIRE(started.size() == 1);
        CHECK(started[0].sids == std::vector<session_id>{acc[0].sid});
        CHECK_FALSE(c.deadline().has_value()); // nothing outstanding

        // 6. Stop-Sessions with Number of Sessions 1: twping's octets.
        REQUIRE_FALSE(c.stop_sessions(t0 + 10s));
        const auto sp_bytes = take_output(c);
        CHECK(sp_bytes == cap.to_server[3]);
        CHECK(decode_strict<stop_sessions>(sp_bytes).number_of_sessions == 1);
        CHECK(all_of_type<connection_closed>(drain(c)).empty());
        CHECK_FALSE(c.closed());
        c.on_eof(t0 + 11s);
        const auto closed = all_of_type<connection_closed>(drain(c));
        REQUIRE(closed.size() == 1);
        CHECK_FALSE(closed[0].ec); // nothing was outstanding: an orderly close
    }
}

TEST_CASE("replay: our client and our server talk the capture's conversation end to end")
{
    // The two machines against each other, with the capture's request: every message has the
    // length of the capture's counterpart.
    const auto cap = load_capture();
    server_config scfg;
    scfg.random = counting_random();
    scfg.allocate_port = [](std::uint16_t r) -> std::optional<std::uint16_t> { return r; };
    control_server<> s(scfg, capture_connection(), t0);
    client_config ccfg;
    ccfg.random = counting_random();
    control_client<> c(ccfg, t0);
    std::vector<std::size_t> to_client_sizes, to_server_sizes;
    auto relay = [&](auto& from, auto& to, std::vector<std::size_t>& sizes) {
        const auto b = take_output(from);
        if (!b.empty()) {
            sizes.push_back(b.size());
            to.receive(b, t0);
        }
    };
    relay(s, c, to_client_sizes);
    relay(c, s, to_server_sizes);
    relay(s, c, to_client_sizes);
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.request_session(decode_strict<request_tw_session>(cap.to_server[1]), t0, id));
    relay(c, s, to_server_sizes);
    relay(s, c, to_client_sizes);
    REQUIRE_FALSE(c.start_sessions(t0));
    relay(c, s, to_server_sizes);
    relay(s, c, to_client_sizes);
    REQUIRE_FALSE(c.stop_sessions(t0));
    relay(c, s, to_server_sizes);
    std::vector<std::size_t> cap_to_client, cap_to_server;
    for (const auto& m : cap.to_client)
        cap_to_client.push_back(m.size());
    for (const auto& m : cap.to_server)
        cap_to_server.push_back(m.size());
    CHECK(to_client_sizes == cap_to_client);
    CHECK(to_server_sizes == cap_to_server);
    CHECK_FALSE(s.closed());
    CHECK_FALSE(c.closed());
    CHECK(s.session_count() == 0);
}
