// Tests for the clock policy (twamp/clock.hpp) and for the split it makes in the sans-I/O core:
// deadlines (SERVWAIT, the client's reply timeout, REFWAIT of the reflector core, the `at` of
// Stop-Sessions) follow the monotonic reading only, so a wall-clock step either way neither
// delays nor hastens them, while what goes on the wire (the SID's timestamp, T2) keeps the wall
// reading. Everything is driven by manual_clock; its wall and monotonic origins differ by
// decades, so a deadline computed from the wrong reading is off by that much and shows.
#include <twamp/clock.hpp>

#include <twamp/control_client.hpp>
#include <twamp/control_server.hpp>
#include <twamp/reflector_session.hpp>
#include <twamp/test_packet.hpp>

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

using namespace twamp;
using namespace twamp::control;
using namespace std::chrono_literals;

namespace {

using client = control_client<>;
using server = control_server<>;

random_source counting_random()
{
    return [next = std::uint8_t{1}](std::span<std::uint8_t> out) mutable {
        for (auto& b : out)
            b = next++;
    };
}

server_config test_server_config(nanoseconds servwait)
{
    server_config cfg;
    cfg.modes = mode::unauthenticated;
    cfg.random = counting_random();
    cfg.servwait = servwait;
    cfg.allocate_port = [](std::uint16_t) -> std::optional<std::uint16_t> { return 5000; };
    return cfg;
}

client_config test_client_config(nanoseconds reply_timeout = 30s)
{
    client_config cfg;
    cfg.random = counting_random();
    cfg.reply_timeout = reply_timeout;
    return cfg;
}

connection_addresses loopback_v4()
{
    return {4, make_address_v4(192, 0, 2, 10), make_address_v4(192, 0, 2, 20)};
}

template <class From, class To> std::size_t transfer(From& from, To& to, instant now)
{
    const auto out = from.pending_output();
    const std::vector<std::uint8_t> bytes(out.begin(), out.end());
    from.consume_output(bytes.size());
    if (!bytes.empty()) to.receive(bytes, now);
    return bytes.size();
}

void pump(client& c, server& s, instant now)
{
    while (transfer(s, c, now) + transfer(c, s, now) > 0) {
    }
}

template <class Machine> auto drain(Machine& m)
{
    std::vector<std::decay_t<decltype(*m.next_event())>> out;
    while (auto e = m.next_event())
        out.push_back(std::move(*e));
    return out;
}

template <class T, class Events> std::optional<T> first_of(const Events& events)
{
    for (const auto& e : events)
        if (auto* p = std::get_if<T>(&e)) return *p;
    return std::nullopt;
}

request_tw_session basic_request()
{
    request_tw_session r;
    r.ipvn = 4;
    r.sender_port = 7000;
    r.receiver_port = 5000;
    r.padding_length = 27;
    r.timeout = ntp_from_duration(2s);
    r.type_p = type_p_from_dscp(0);
    return r;
}

// An NTP step of an hour, either way.
const nanoseconds kStep = 1h;

} // namespace

TEST_CASE("manual_clock: copies share one time; advance moves both readings, a step only wall")
{
    manual_clock a(1'700'000'000s, 50s);
    manual_clock b = a;
    CHECK(b.wall_now() == nanoseconds{1'700'000'000s});
    CHECK(b.mono_now() == nanoseconds{50s});
    a.advance(2s);
    CHECK(b.now() == instant{1'700'000'002s, 52s});
    b.step_wall(-kStep);
    CHECK(a.wall_now() == 1'700'000'002s - kStep);
    CHECK(a.mono_now() == nanoseconds{52s}); // a wall step never moves monotonic time
    a.advance(-5s);                          // ignored: monotonic time does not go back
    CHECK(a.mono_now() == nanoseconds{52s});
    a.set_wall(7s);
    CHECK(b.wall_now() == nanoseconds{7s});
    CHECK(b.mono_now() == nanoseconds{52s});
}

TEST_CASE("instant: a single duration is both readings (what the callers before the split pass)")
{
    constexpr instant i = 5s;
    static_assert(i.wall == nanoseconds{5s} && i.mono == nanoseconds{5s});
    constexpr instant j{1s, 2s};
    static_assert(j.wall == nanoseconds{1s} && j.mono == nanoseconds{2s});
    static_assert(!std::is_convertible_v<std::chrono::duration<double>, instant>);
}

TEST_CASE("system_clock_policy: wall is Unix time, mono never goes back")
{
    const system_clock_policy c;
    const auto wall = c.wall_now();
    CHECK(wall > nanoseconds{1'600'000'000s}); // after September 2020
    const auto m1 = c.mono_now();
    std::this_thread::sleep_for(2ms);
    const auto m2 = c.mono_now();
    CHECK(m2 - m1 >= 2ms);
}

TEST_CASE("SERVWAIT follows monotonic time: a wall step back does not delay it")
{
    manual_clock clk;
    server s(test_server_config(300s), loopback_v4(), clk.now());
    client c(test_client_config(), clk.now());
    pump(c, s, clk.now());
    REQUIRE(s.current_state() == server::state::ready);
    const nanoseconds idle_from = clk.mono_now();
    REQUIRE(s.deadline() == idle_from + 300s); // a monotonic deadline

    clk.step_wall(-kStep); // the wall clock jumps an hour back
    clk.advance(300s - 1ns);
    s.on_timer(clk.now());
    CHECK_FALSE(s.closed());
    clk.advance(1ns); // exactly SERVWAIT of monotonic time since the last message
    s.on_timer(clk.now());
    CHECK(s.closed());
    const auto closed = first_of<connection_closed>(drain(s));
    REQUIRE(closed);
    CHECK(closed->ec == errc::timeout);
}

TEST_CASE("SERVWAIT follows monotonic time: a wall step forward does not fire it early")
{
    manual_clock clk;
    server s(test_server_config(300s), loopback_v4(), clk.now());
    client c(test_client_config(), clk.now());
    pump(c, s, clk.now());
    REQUIRE(s.current_state() == server::state::ready);
    clk.step_wall(kStep); // an hour forward: far past SERVWAIT on the wall clock
    s.on_timer(clk.now());
    CHECK_FALSE(s.closed());
    clk.advance(299s);
    s.on_timer(clk.now());
    CHECK_FALSE(s.closed());
    clk.advance(1s);
    s.on_timer(clk.now());
    CHECK(s.closed());
}

TEST_CASE("SERVWAIT after REFWAIT and after Stop-Sessions restarts on monotonic time")
{
    manual_clock clk;
    server s(test_server_config(300s), loopback_v4(), clk.now());
    client c(test_client_config(), clk.now());
    pump(c, s, clk.now());
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.request_session(basic_request(), clk.now(), id));
    pump(c, s, clk.now());
    REQUIRE_FALSE(c.start_sessions(clk.now()));
    pump(c, s, clk.now());
    REQUIRE(s.deadline() == std::nullopt); // paused while the session runs

    SUBCASE("REFWAIT expired")
    {
        clk.advance(1000s);
        clk.step_wall(-kStep);
        s.refwait_expired(clk.now());
        CHECK(s.deadline() == clk.mono_now() + 300s);
    }
    SUBCASE("Stop-Sessions: `at` is the monotonic reading")
    {
        clk.advance(10s);
        clk.step_wall(kStep);
        REQUIRE_FALSE(c.stop_sessions(clk.now()));
        pump(c, s, clk.now());
        const auto stopped = first_of<server_events::sessions_stopped>(drain(s));
        REQUIRE(stopped);
        CHECK(stopped->at == clk.mono_now());
        CHECK(s.deadline() == clk.mono_now() + 300s);
    }
}

TEST_CASE("the SID carries the wall time, not the monotonic one (RFC 4656 3.5)")
{
    manual_clock clk(1'700'000'000s, 5s);
    server s(test_server_config(300s), loopback_v4(), clk.now());
    client c(test_client_config(), clk.now());
    pump(c, s, clk.now());
    clk.step_wall(-kStep);
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.request_session(basic_request(), clk.now(), id));
    pump(c, s, clk.now());
    const auto accepted = first_of<server_events::session_accepted>(drain(s));
    REQUIRE(accepted);
    // Octets 4..11 of the SID: the NTP timestamp of the wall time the request arrived.
    const std::uint64_t ntp = to_ntp(clk.wall_now()).to_u64();
    std::uint64_t got = 0;
    for (int i = 4; i < 12; ++i)
        got = (got << 8) | accepted->sid[static_cast<std::size_t>(i)];
    CHECK(got == ntp);
}

TEST_CASE("the client's reply timeout follows monotonic time, both step directions")
{
    manual_clock clk;
    client c(test_client_config(10s), clk.now());
    const nanoseconds from = clk.mono_now();
    REQUIRE(c.deadline() == from + 10s); // waiting for the greeting
    SUBCASE("step back")
    {
        clk.step_wall(-kStep);
        clk.advance(10s - 1ns);
        c.on_timer(clk.now());
        CHECK_FALSE(c.closed());
        clk.advance(1ns);
        c.on_timer(clk.now());
        CHECK(c.closed());
    }
    SUBCASE("step forward")
    {
        clk.step_wall(kStep);
        c.on_timer(clk.now());
        CHECK_FALSE(c.closed());
        clk.advance(10s);
        c.on_timer(clk.now());
        CHECK(c.closed());
    }
}

TEST_CASE("reflector core: T2 on the wire is the wall reading, REFWAIT runs on the monotonic one")
{
    reflector_config cfg;
    cfg.refwait = 900s;
    session_reflector r(cfg);
    std::array<std::uint8_t, kSenderUnauthLen> req{};
    std::array<std::uint8_t, 256> out{};
    peer_key from{};
    from.port = 4000;
    manual_clock clk;
    auto reflect = [&] {
        const auto n = r.reflect(req, from, clk.now(), 64, out);
        REQUIRE(n == kReflectorUnauthLen);
        reflector_packet p;
        REQUIRE_FALSE(
            decode_reflector(std::span<const std::uint8_t>(out.data(), n), test_format::twamp, p));
        return p;
    };
    auto p = reflect();
    CHECK(p.seq == 0);
    CHECK(p.receive_timestamp == to_ntp(clk.wall_now()).to_u64());
    // An hour's wall step back, a little monotonic time: the same session goes on.
    clk.step_wall(-kStep);
    clk.advance(1s);
    p = reflect();
    CHECK(p.seq == 1);
    CHECK(p.receive_timestamp == to_ntp(clk.wall_now()).to_u64());
    // A wall step forward by more than REFWAIT is not idleness either.
    clk.step_wall(kStep + 900s);
    p = reflect();
    CHECK(p.seq == 2);
    r.expire(clk.mono_now());
    CHECK(r.active_sessions() == 1);
    // REFWAIT of monotonic time: the session is gone and the next one numbers from 0.
    clk.advance(900s + 1ns);
    r.expire(clk.mono_now());
    CHECK(r.active_sessions() == 0);
    CHECK(reflect().seq == 0);
}
