// The asio adapters on a clock policy (twamp/clock.hpp): the TWAMP server (asio/server.hpp), the
// controller (asio/controller.hpp) and the reflector (asio/reflector.hpp) run every deadline on
// the policy's monotonic reading. Two clocks drive them here:
//  - stepped_clock: the system's clocks, with a wall clock the test steps by an hour either way
//    while the adapter runs (an NTP step, `date -s`): SERVWAIT, the reply timeout and the
//    session window neither wait an hour longer nor fire at once;
//  - manual_clock: time moves only when the test says so: REFWAIT, the Timeout after
//    Stop-Sessions, the Start Time and SERVWAIT after REFWAIT happen when, and only when,
//    monotonic time passes them.
// A packet's monotonic receive time is the reflector's reading less the packet's (real) age, so
// with a manual_clock, which stands still, a packet counts as received a few microseconds
// before the clock's reading: the tests move the clock a millisecond past a window's edge.
// The control client is the library's sans-I/O control_client over a plain non-blocking TCP
// socket, stepped by hand between slices of the server's event loop, so it keeps the connection
// open as long as the test wants (the asio controller closes it after Stop-Sessions).
#include "twamp/asio/controller.hpp"
#include "twamp/asio/reflector.hpp"
#include "twamp/asio/server.hpp"
#include "twamp/clock.hpp"

#include <doctest/doctest.h>

#include "support/plain_udp.hpp"

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

using namespace twamp;
using namespace std::chrono_literals;

namespace {

// The system's clocks with a wall clock the test can step; copies share the offset.
struct stepped_clock {
    std::shared_ptr<std::atomic<std::int64_t>> offset =
        std::make_shared<std::atomic<std::int64_t>>(0);
    nanoseconds wall_now() const noexcept
    {
        return system_clock_policy{}.wall_now() + nanoseconds{offset->load()};
    }
    nanoseconds mono_now() const noexcept { return system_clock_policy{}.mono_now(); }
    void step_wall(nanoseconds d) const noexcept { *offset += d.count(); }
};
static_assert(clock_policy<stepped_clock>);

using steady = std::chrono::steady_clock;

// control_client over a non-blocking TCP socket; flush() and poll() move octets.
struct sync_client {
    asio::io_context cio;
    asio::ip::tcp::socket sock{cio};
    control::control_client<> fsm;
    bool eof = false;

    explicit sync_client(const asio::ip::tcp::endpoint& server)
        : fsm(control::client_config{}, now_of(system_clock_policy{}))
    {
        sock.connect(server);
        sock.non_blocking(true);
    }
    instant now() const { return now_of(system_clock_policy{}); }
    void flush()
    {
        const auto out = fsm.pending_output();
        if (out.empty() || eof) return;
        std::error_code ec;
        const auto n = asio::write(sock, asio::buffer(out.data(), out.size()), ec);
        fsm.consume_output(n);
    }
    void poll()
    {
        std::array<std::uint8_t, 4096> b{};
        while (!eof) {
            std::error_code ec;
            const auto n = sock.read_some(asio::buffer(b), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) return;
            if (ec) {
                eof = true;
                fsm.on_eof(now());
                return;
            }
            fsm.receive(std::span<const std::uint8_t>(b.data(), n), now());
        }
    }
};

// Runs the server's loop in slices, moving the client's octets between them, until `done`
// or `limit` has passed. Returns whether `done` came true.
bool settle(asio::io_context& io, sync_client& c, const std::function<bool()>& done,
            std::chrono::milliseconds limit = 3000ms)
{
    const auto until = steady::now() + limit;
    while (steady::now() < until) {
        c.flush();
        io.run_for(20ms);
        c.poll();
        if (done()) return true;
    }
    return false;
}
// Just lets time pass on the server's loop (at least two of its 100 ms session ticks).
void run_a_while(asio::io_context& io, sync_client& c, std::chrono::milliseconds d = 300ms)
{
    (void)settle(
        io, c, [] { return false; }, d);
}

net::server_options loopback_server()
{
    net::server_options o;
    o.local = {asio::ip::make_address_v4("127.0.0.1"), 0};
    return o;
}

control::request_tw_session request_from(std::uint16_t sender_port, nanoseconds timeout)
{
    control::request_tw_session r;
    r.ipvn = 4;
    r.sender_port = sender_port;
    r.sender_address = control::make_address_v4(127, 0, 0, 1);
    r.receiver_address = control::make_address_v4(127, 0, 0, 1);
    r.padding_length = 27;
    r.timeout = control::ntp_from_duration(timeout);
    return r;
}

template <class Server> void ready(asio::io_context& io, sync_client& c, Server&)
{
    REQUIRE(settle(
        io, c, [&] { return c.fsm.current_state() == control::control_client<>::state::ready; }));
}

// Requests one session from `peer_port` and starts it; returns the reflector's port.
template <class Server>
std::uint16_t start_one(asio::io_context& io, sync_client& c, Server& server,
                        std::uint16_t peer_port, nanoseconds timeout, ntp_timestamp start_time = {})
{
    ready(io, c, server);
    auto req = request_from(peer_port, timeout);
    req.start_time = start_time;
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.fsm.request_session(req, c.now(), id));
    REQUIRE(settle(io, c, [&] { return c.fsm.sessions().size() == 1; }));
    REQUIRE_FALSE(c.fsm.start_sessions(c.now()));
    REQUIRE(settle(io, c, [&] {
        return c.fsm.sessions().front().st == control::control_client<>::session_state::started;
    }));
    REQUIRE(server.session_count() == 1);
    return c.fsm.sessions().front().port;
}

// Whether a reply to one 41-octet request to `port` comes back.
bool reflected(asio::io_context& io, twamp_test::plain_udp_peer& peer, std::uint16_t port)
{
    std::vector<std::uint8_t> probe(41, 0);
    peer.send_to(port, probe);
    for (int i = 0; i < 10; ++i) {
        io.run_for(20ms);
        std::array<std::uint8_t, 256> b{};
        if (::recv(peer.fd, b.data(), b.size(), MSG_DONTWAIT) > 0) return true;
    }
    return false;
}

// A TWAMP server on `Clock` on 127.0.0.1, and a control client connected to it.
template <class Clock> struct server_on {
    asio::io_context io;
    Clock clk;
    net::twamp_server<control::open_security, Clock> server;
    std::optional<sync_client> client;

    explicit server_on(const std::function<void(net::server_options&)>& configure = {})
        : server(io, options(configure), {}, clk)
    {
        REQUIRE_FALSE(server.open());
        server.start();
        client.emplace(server.local_endpoint());
    }
    static net::server_options options(const std::function<void(net::server_options&)>& f)
    {
        auto o = loopback_server();
        if (f) f(o);
        return o;
    }
};

} // namespace

TEST_CASE("twamp_server: a wall step back does not delay SERVWAIT")
{
    server_on<stepped_clock> t([](net::server_options& o) { o.control.servwait = 400ms; });
    auto& io = t.io;
    auto& clk = t.clk;
    auto& server = t.server;
    auto& c = *t.client;
    ready(io, c, server);
    const auto t0 = steady::now();
    clk.step_wall(-1h);
    REQUIRE(settle(
        io, c, [&] { return c.eof; }, 5000ms)); // not an hour later
    const auto took = steady::now() - t0;
    CHECK(took < 3s);
    CHECK(server.connection_count() == 0);
}

TEST_CASE("twamp_server: a wall step forward does not fire SERVWAIT early")
{
    server_on<stepped_clock> t([](net::server_options& o) { o.control.servwait = 600ms; });
    auto& io = t.io;
    auto& clk = t.clk;
    auto& server = t.server;
    auto& c = *t.client;
    ready(io, c, server);
    const auto t0 = steady::now();
    clk.step_wall(1h);
    // One octet of a command: the server reads (and re-arms its timer on the stepped clock) but
    // a partial message does not restart SERVWAIT.
    const std::uint8_t one = 1;
    asio::write(c.sock, asio::buffer(&one, 1));
    CHECK_FALSE(settle(
        io, c, [&] { return c.eof; }, 300ms)); // still open
    CHECK(server.connection_count() == 1);
    REQUIRE(settle(
        io, c, [&] { return c.eof; }, 5000ms));
    CHECK(steady::now() - t0 >= 550ms);
}

TEST_CASE("twamp_server on manual_clock: REFWAIT, then SERVWAIT, exactly when mono time passes")
{
    server_on<manual_clock> t([](net::server_options& o) {
        o.refwait = 60s;
        o.control.servwait = 120s;
    });
    auto& io = t.io;
    auto& clk = t.clk;
    auto& server = t.server;
    auto& c = *t.client;
    twamp_test::plain_udp_peer peer;
    (void)start_one(io, c, server, peer.port, 5s);

    clk.step_wall(-1h);
    run_a_while(io, c);
    CHECK(server.counters().sessions_ended_refwait == 0);
    clk.step_wall(2h);
    run_a_while(io, c);
    CHECK(server.counters().sessions_ended_refwait == 0);
    clk.advance(60s); // REFWAIT ends a session idle for longer than REFWAIT
    run_a_while(io, c);
    CHECK(server.counters().sessions_ended_refwait == 0);
    clk.advance(1ms);
    run_a_while(io, c);
    CHECK(server.counters().sessions_ended_refwait == 1);
    CHECK(server.live_test_sessions() == 0);

    // SERVWAIT resumes from the moment REFWAIT ended the last session.
    clk.step_wall(-3h);
    clk.advance(119s);
    run_a_while(io, c);
    CHECK_FALSE(c.eof);
    CHECK(server.connection_count() == 1);
    clk.advance(1s + 1ms);
    REQUIRE(settle(io, c, [&] { return c.eof; }));
    CHECK(server.connection_count() == 0);
}

TEST_CASE("twamp_server on manual_clock: Stop-Sessions + Timeout ends the session on mono time")
{
    server_on<manual_clock> t;
    auto& io = t.io;
    auto& clk = t.clk;
    auto& server = t.server;
    auto& c = *t.client;
    twamp_test::plain_udp_peer peer;
    const auto port = start_one(io, c, server, peer.port, 5s);
    clk.advance(1ms); // past the window's start (see above)
    CHECK(reflected(io, peer, port));
    REQUIRE_FALSE(c.fsm.stop_sessions(c.now()));
    run_a_while(io, c);
    REQUIRE(server.live_test_sessions() == 1); // reflecting for its Timeout (RFC 5357 3.8)

    clk.step_wall(1h);
    run_a_while(io, c);
    CHECK(server.live_test_sessions() == 1);
    CHECK(reflected(io, peer, port));
    clk.step_wall(-2h);
    clk.advance(5s - 1ms);
    run_a_while(io, c);
    CHECK(server.live_test_sessions() == 1);
    CHECK(reflected(io, peer, port));
    clk.advance(1ms); // Stop-Sessions + Timeout
    run_a_while(io, c);
    CHECK(server.live_test_sessions() == 0);
    CHECK_FALSE(c.eof); // the control connection stays
}

TEST_CASE("twamp_server on manual_clock: a session reflects from its Start Time, on mono time")
{
    server_on<manual_clock> t;
    auto& io = t.io;
    auto& clk = t.clk;
    auto& server = t.server;
    auto& c = *t.client;
    twamp_test::plain_udp_peer peer;
    // A Start Time 30 s ahead on the server's wall clock: it becomes mono now + 30 s.
    const auto port = start_one(io, c, server, peer.port, 5s, to_ntp(clk.wall_now() + 30s));
    CHECK_FALSE(reflected(io, peer, port));
    clk.step_wall(1h); // past the Start Time on the wall clock only
    CHECK_FALSE(reflected(io, peer, port));
    clk.advance(30s - 1ms);
    CHECK_FALSE(reflected(io, peer, port));
    clk.advance(2ms);
    CHECK(reflected(io, peer, port));
}

TEST_CASE("controller: the reply timeout follows mono time across wall steps")
{
    // A TCP listener that accepts and never sends a greeting.
    asio::io_context io;
    asio::ip::tcp::acceptor silent(io, {asio::ip::make_address_v4("127.0.0.1"), 0});
    asio::ip::tcp::socket held(io);
    silent.async_accept(held, [](const std::error_code&) {});
    stepped_clock clk;
    net::controller_options co;
    co.server = silent.local_endpoint();
    co.control.reply_timeout = 600ms;
    co.run_senders = false;
    net::controller<control::open_security, stepped_clock> ctl(io, co, {}, clk);
    bool done = false;
    net::controller_result result;
    const auto t0 = steady::now();
    steady::time_point finished{};
    ctl.start([&](const net::controller_result& r) {
        result = r;
        done = true;
        finished = steady::now();
    });
    io.run_for(100ms);
    clk.step_wall(1h); // forward: would be long past the deadline on the wall clock
    io.run_for(200ms);
    CHECK_FALSE(done);
    clk.step_wall(-3h); // back: would be hours before it
    for (int i = 0; i < 100 && !done; ++i)
        io.run_for(50ms);
    REQUIRE(done);
    CHECK_FALSE(result.ok);
    CHECK(finished - t0 >= 550ms);
    CHECK(finished - t0 < 4s);
}

TEST_CASE("udp_reflector: the window is on mono time; set_window() converts wall times once")
{
    asio::io_context io;
    stepped_clock clk;
    net::reflector_options ro;
    ro.local = {asio::ip::make_address_v4("127.0.0.1"), 0};
    net::basic_udp_reflector<stepped_clock> r(io, ro, clk);
    REQUIRE_FALSE(r.open());
    r.start();
    twamp_test::plain_udp_peer peer;
    const auto port = r.local_endpoint().port();

    r.set_window(clk.wall_now() - 1s, clk.wall_now() + 10s);
    clk.step_wall(-1h); // the window does not move with the wall clock
    CHECK(reflected(io, peer, port));
    clk.step_wall(2h);
    CHECK(reflected(io, peer, port));
    CHECK(r.last_activity_mono() <= clk.mono_now());
    CHECK(r.last_activity_mono() > clk.mono_now() - 1s);

    r.set_window_mono(clk.mono_now() + 10s, nanoseconds::max()); // not yet
    CHECK_FALSE(reflected(io, peer, port));
    r.set_window_mono(clk.mono_now() - 10s, clk.mono_now() - 1s); // over
    CHECK_FALSE(reflected(io, peer, port));
    CHECK(r.io_counters().outside_window == 2);
    r.stop();
}
