// in_memory.cpp — the sans-I/O core on its own: a STAMP Session-Sender and a Session-Reflector
// exchange 1000 probes in memory, with made-up delays and one probe in 50 lost on the way out,
// and the reports are rendered from the sender's statistics. No socket, no asio, no OpenSSL:
// this is the part of the library that builds on any C++20 compiler (the CI cross-compiles it
// for Windows with MinGW-w64).
#include "twamp/reflector_session.hpp"
#include "twamp/report/json.hpp"
#include "twamp/report/table.hpp"
#include "twamp/sender_session.hpp"

#include <array>
#include <cstdio>
#include <string>

int main()
{
    using namespace std::chrono_literals;
    twamp::sender_config sc;
    sc.format = twamp::test_format::stamp;
    sc.ssid = 7;
    sc.timeout = 1s;
    twamp::session_sender sender(sc);
    twamp::reflector_config rc;
    rc.format = twamp::reflector_format::stamp;
    twamp::session_reflector reflector(rc);

    std::array<std::uint8_t, 128> probe{}, reply{};
    const twamp::nanoseconds start{1'700'000'000'000'000'000};
    for (int i = 0; i < 1000; ++i) {
        const twamp::nanoseconds t1 = start + 10ms * i;
        const std::size_t n = sender.make_probe(t1, twamp::kStampBaseLen, probe);
        if (i % 50 == 49) continue; // lost on the way out
        const twamp::nanoseconds out = 200us + 1us * (i % 7), back = 180us + 2us * (i % 5);
        const std::size_t m =
            reflector.reflect(std::span(probe).first(n), {}, t1 + out, 250, reply);
        twamp::stamp_reflector_timestamp(reply, twamp::to_ntp(t1 + out + 20us).to_u64());
        (void)sender.on_reply(std::span(reply).first(m), t1 + out + 20us + back, 251);
    }
    sender.expire(twamp::nanoseconds::max(), [](std::uint32_t, twamp::nanoseconds) {});

    twamp::report::session_info info;
    info.mode = "stamp";
    info.ssid = 7;
    info.sender_address = "192.0.2.1";
    info.reflector_address = "192.0.2.2";
    info.reflector_port = 862;
    info.requested = info.scheduled = 1000;
    info.interval_ns = 10'000'000;
    const std::string table = twamp::report::table(sender.stats(), info);
    std::fputs(table.c_str(), stdout);
    const auto j = twamp::report::to_json(sender.stats(), info);
    std::printf("JSON: received %s, lost %s, outbound lost %s\n", j["received"].dump().c_str(),
                j["lost"].dump().c_str(), j["outbound"]["lost"].dump().c_str());
    return sender.stats().received == 980 && sender.stats().outbound_lost() == 19 ? 0 : 1;
}
