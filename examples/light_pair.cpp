// light_pair — the library used as a library: a TWAMP Light reflector and a sender in one event
// loop on loopback, 50 probes 2 ms apart, and the result as JSON and as the summary table.
//
//   light_pair [--stamp]
#include "twamp/asio/reflector.hpp"
#include "twamp/asio/sender.hpp"
#include "twamp/report/json.hpp"
#include "twamp/report/table.hpp"

#include <asio.hpp>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv)
{
    const bool stamp = argc > 1 && std::strcmp(argv[1], "--stamp") == 0;
    asio::io_context io;

    // Reflector on an ephemeral loopback port.
    twamp::net::reflector_options ro;
    ro.local = {asio::ip::make_address("127.0.0.1"), 0};
    twamp::net::udp_reflector reflector(io, ro);
    if (auto ec = reflector.open()) {
        std::fprintf(stderr, "reflector: %s\n", ec.message().c_str());
        return 1;
    }
    reflector.start();

    // Sender towards it.
    twamp::net::sender_options so;
    so.remote = reflector.local_endpoint();
    so.local = {asio::ip::make_address("127.0.0.1"), 0};
    so.count = 50;
    so.interval = std::chrono::milliseconds{2};
    so.core.format = stamp ? twamp::test_format::stamp : twamp::test_format::twamp;
    so.core.ssid = stamp ? 42 : 0;
    so.sizes = {stamp ? twamp::kStampBaseLen : twamp::kReflectorUnauthLen};
    twamp::net::udp_sender sender(io, so);
    if (auto ec = sender.open()) {
        std::fprintf(stderr, "sender: %s\n", ec.message().c_str());
        return 1;
    }
    sender.start([&] {
        reflector.stop();
        io.stop();
    });
    io.run();

    twamp::report::session_info info;
    info.mode = stamp ? "stamp" : "twamp-light";
    info.ssid = so.core.ssid;
    info.sender_address = "127.0.0.1";
    info.sender_port = sender.local_endpoint().port();
    info.reflector_address = "127.0.0.1";
    info.reflector_port = so.remote.port();
    info.scheduled = so.count;
    std::puts(twamp::report::to_json(sender.stats(), info).dump(2).c_str());
    std::fputs(twamp::report::table(sender.stats(), info).c_str(), stdout);
    return sender.stats().received == so.count ? 0 : 1;
}
