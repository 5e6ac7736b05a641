// Uses the library as a product would: builds a probe, reflects it and measures it in memory
// (core), opens a UDP socket through the asio adapters (twamp::header_only), renders the JSON
// report (twamp::report) and seals a test packet with the OpenSSL policy (twamp::twamp).
#include <twamp/asio/udp.hpp>
#include <twamp/crypto_openssl.hpp>
#include <twamp/reflector_session.hpp>
#include <twamp/report/json.hpp>
#include <twamp/sender_session.hpp>
#include <twamp/version.hpp>

#include <array>
#include <cstdio>
#include <string>

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

    asio::io_context io;
    asio::ip::udp::socket sock(io);
    const auto ec = twamp::net::open_udp_socket(
        sock, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0), {});

    const auto j = twamp::report::to_json(snd.stats(), {});
    std::array<std::uint8_t, 16> rnd{};
    const bool random_ok = !twamp::openssl_crypto::random_bytes(rnd);

    std::printf("twamp %s: round trip %lld ns, socket %s, JSON received %s, random %s\n",
                twamp::version(), static_cast<long long>(r.sample.roundtrip_ns),
                ec ? ec.message().c_str() : "ok", j["received"].dump().c_str(),
                random_ok ? "ok" : "failed");
    const bool ok = r.status == twamp::reply_status::sample && r.sample.roundtrip_ns == 250000 &&
                    !ec && j["received"] == 1 && random_ok;
    return ok ? 0 : 1;
}
