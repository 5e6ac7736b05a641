// The Session-Sender above 1000 probes/s reads its replies from the send schedule, with its
// socket out of the event loop's epoll set, and puts it back for the wait for the last replies
// (when the schedule ends, or stop() ends it early); at lower rates the socket never leaves.
#include "support/epoll_watch.hpp"
#include "twamp/asio/reflector.hpp"
#include "twamp/asio/sender.hpp"

#include <doctest/doctest.h>

#include <asio.hpp>

#include <chrono>
#include <cstdint>
#include <thread>

using namespace std::chrono_literals;

namespace {

// A reflector on 127.0.0.1 in its dedicated loop on its own thread.
struct reflector_thread {
    asio::io_context io;
    twamp::net::udp_reflector refl{io, options()};
    std::thread t;

    reflector_thread()
    {
        REQUIRE_FALSE(refl.open());
        t = std::thread([this] { (void)refl.run_dedicated(); });
    }
    ~reflector_thread()
    {
        refl.request_stop();
        t.join();
    }
    reflector_thread(const reflector_thread&) = delete;
    reflector_thread& operator=(const reflector_thread&) = delete;
    static twamp::net::reflector_options options()
    {
        twamp::net::reflector_options o;
        o.local = {asio::ip::make_address("127.0.0.1"), 0};
        return o;
    }
};

twamp::net::sender_options sender_to(const reflector_thread& r, std::uint32_t count,
                                     std::chrono::nanoseconds interval,
                                     std::chrono::nanoseconds timeout = 2s)
{
    twamp::net::sender_options so;
    so.remote = r.refl.local_endpoint();
    so.local = {asio::ip::make_address("127.0.0.1"), 0};
    so.count = count;
    so.interval = interval;
    so.core.timeout = timeout;
    return so;
}

} // namespace

TEST_CASE("sender above 1000 probes/s: replies read by the schedule, socket out of the reactor")
{
    reflector_thread r;
    asio::io_context io;
    // A loss timeout far beyond the run: the session can only end this soon if the last replies
    // are read as they come, i.e. the socket is back in the reactor when the schedule ends.
    twamp::net::udp_sender sender(io, sender_to(r, 400, 200us, 120s));
    REQUIRE_FALSE(sender.open());
    const int fd = sender.native_handle();
    CHECK(twamp_test::in_an_epoll_set(fd));
    bool seen_out = false, seen_in_set = true;
    sender.on_sent([&](std::uint32_t seq, twamp::nanoseconds) {
        if (seq != 200) return;
        seen_out = sender.out_of_reactor();
        seen_in_set = twamp_test::in_an_epoll_set(fd);
    });
    std::uint32_t next = 0;
    bool in_order = true;
    sender.on_reply([&](const twamp::reply_result& res) {
        in_order = in_order && res.sample.reflector_seq == next++;
    });
    bool done = false;
    sender.start([&] { done = true; });
    io.run_for(20s);
    REQUIRE(done); // not waiting for the 120 s timeout
    CHECK(seen_out);
    CHECK_FALSE(seen_in_set);
    CHECK(sender.stats().sent == 400);
    CHECK(sender.stats().received == 400);
    CHECK(sender.stats().lost() == 0);
    CHECK(in_order);
    // Back in the reactor for the end of the session, the same descriptor.
    CHECK_FALSE(sender.out_of_reactor());
    CHECK(sender.native_handle() == fd);
    CHECK(twamp_test::in_an_epoll_set(fd));
}

TEST_CASE("sender at 1000 probes/s or fewer: the socket stays in the reactor")
{
    reflector_thread r;
    asio::io_context io;
    twamp::net::udp_sender sender(io, sender_to(r, 5, 2ms));
    REQUIRE_FALSE(sender.open());
    int checks = 0, out = 0;
    sender.on_sent([&](std::uint32_t, twamp::nanoseconds) {
        ++checks;
        out += sender.out_of_reactor() || !twamp_test::in_an_epoll_set(sender.native_handle());
    });
    bool done = false;
    sender.start([&] { done = true; });
    io.run_for(20s);
    REQUIRE(done);
    CHECK(checks == 5);
    CHECK(out == 0);
    CHECK(sender.stats().received == 5);
}

TEST_CASE("sender stopped while sending fast: back in the reactor, every probe sent answered")
{
    reflector_thread r;
    asio::io_context io;
    twamp::net::udp_sender sender(io, sender_to(r, 1'000'000, 100us));
    REQUIRE_FALSE(sender.open());
    bool back = false;
    sender.on_sent([&](std::uint32_t seq, twamp::nanoseconds) {
        if (seq == 300)
            asio::post(io, [&] {
                sender.stop(); // first stop: sending ends, the last replies are waited for
                back =
                    !sender.out_of_reactor() && twamp_test::in_an_epoll_set(sender.native_handle());
            });
    });
    bool done = false;
    sender.start([&] { done = true; });
    io.run_for(20s);
    REQUIRE(done);
    CHECK(back);
    CHECK(sender.stats().sent > 300);
    CHECK(sender.stats().sent < 1'000'000);
    CHECK(sender.stats().received == sender.stats().sent);
    CHECK(sender.stats().lost() == 0);
}
