// Uses the installed library: builds a probe, reflects it, and measures it, all in memory.
#include <twamp/reflector_session.hpp>
#include <twamp/sender_session.hpp>
#include <twamp/version.hpp>

#include <array>
#include <cstdio>

int main()
{
    using namespace std::chrono_literals;
    twamp::session_sender snd({});
    twamp::session_reflector refl;
    std::array<std::uint8_t, 64> probe{}, reply{};
    const twamp::nanoseconds t1{1'700'000'000'000'000'000};
    const auto n = snd.make_probe(t1, 41, probe);
    const auto m = refl.reflect(std::span(probe).first(n), {}, t1 + 100us, 255, reply);
    const auto r = snd.on_reply(std::span(reply).first(m), t1 + 250us, 255);
    std::printf("twamp %s: round trip %lld ns\n", twamp::version(),
                static_cast<long long>(r.sample.roundtrip_ns));
    return r.status == twamp::reply_status::sample && r.sample.roundtrip_ns == 250000 ? 0 : 1;
}
