#include "twamp/control_security.hpp"

#include "twamp/control_client.hpp"
#include "twamp/control_server.hpp"
#include "twamp/crypto_openssl.hpp"

#include <doctest/doctest.h>

#include "support/control_pump.hpp"

#include <limits>
#include <ostream>
#include <variant>

using namespace twamp;
using namespace twamp::control;
using namespace std::chrono_literals;
using sec = keyed_security<openssl_crypto>;

namespace {
using twamp_test::transfer;
const nanoseconds t0 = std::chrono::seconds(1'700'000'000);

std::shared_ptr<key_store> keys(const char* text)
{
    auto k = std::make_shared<key_store>();
    std::string err;
    REQUIRE(k->parse(text, err));
    return k;
}
// "super secret passphrase" in hex, as in the shared captures.
constexpr const char* kAlice = "alice 7375706572207365637265742070617373706872617365\n";

template <class C, class S> void pump(C& c, S& s, nanoseconds now, std::size_t chunk = SIZE_MAX)
{
    for (int i = 0; i < 8; ++i) {
        transfer(s, c, now, chunk);
        transfer(c, s, now, chunk);
    }
}
template <class Ev, class M> std::vector<Ev> events_of(M& m)
{
    std::vector<Ev> out;
    while (auto e = m.next_event())
        if (auto* p = std::get_if<Ev>(&*e)) out.push_back(*p);
    return out;
}
server_config server_cfg(std::uint32_t modes)
{
    server_config cfg;
    cfg.modes = modes;
    cfg.server_start_time = t0 - 1h;
    cfg.allocate_port = [](std::uint16_t) -> std::optional<std::uint16_t> { return 40000; };
    return cfg;
}
request_tw_session request()
{
    request_tw_session r;
    r.ipvn = 4;
    r.sender_port = 20000;
    r.receiver_port = 40000;
    r.padding_length = 64;
    r.timeout = ntp_from_duration(2s);
    return r;
}
} // namespace

TEST_CASE("key files: pfs format, comments, errors that never show the secret")
{
    key_store k;
    std::string err;
    CHECK(k.parse("# keys\nalice 0a0B0c\n\n  bob   ff  # trailing\n", err));
    REQUIRE(k.find("alice"));
    CHECK(*k.find("alice") == std::vector<std::uint8_t>{0x0a, 0x0b, 0x0c});
    CHECK(*k.find("bob") == std::vector<std::uint8_t>{0xff});
    CHECK_FALSE(k.find("carol"));
    key_store bad;
    CHECK_FALSE(bad.parse("alice 0a0\n", err));
    CHECK(err.find("line 1") != std::string::npos);
    CHECK(err.find("0a0") == std::string::npos);
    CHECK_FALSE(bad.parse("alice zz\n", err));
    CHECK_FALSE(bad.parse("\n# nothing\n", err));
    CHECK_FALSE(bad.parse(std::string(81, 'k') + " 00\n", err));
}

TEST_CASE("authenticated, encrypted and mixed: a whole protected handshake, then a session")
{
    for (std::uint32_t m : {mode::authenticated, mode::encrypted, mode::mixed}) {
        CAPTURE(m);
        auto ks = keys(kAlice);
        control_server<sec> s(server_cfg(mode::unauthenticated | m),
                              {4, {192, 0, 2, 1}, {192, 0, 2, 2}}, t0, sec::server(ks));
        client_config cc;
        cc.security_modes = m;
        control_client<sec> c(cc, t0, sec::client("alice", ks));
        pump(c, s, t0, 7); // fragmented on purpose
        REQUIRE(c.current_state() == control_client<sec>::state::ready);
        CHECK(c.agreed_mode() == m);
        CHECK(s.agreed_mode() == m);
        // Both ends hold the same session keys (from the Token).
        CHECK(c.security().aes_session_key().value == s.security().aes_session_key().value);
        CHECK(c.security().hmac_session_key().value == s.security().hmac_session_key().value);
        CHECK(s.security().key_id() == "alice");
        std::uint64_t id = 0;
        REQUIRE_FALSE(c.request_session(request(), t0, id));
        pump(c, s, t0, 5);
        auto acc = events_of<client_events::session_accepted>(c);
        REQUIRE(acc.size() == 1);
        CHECK(acc[0].port == 40000);
        REQUIRE_FALSE(c.start_sessions(t0));
        pump(c, s, t0, 3);
        CHECK(events_of<client_events::sessions_started>(c).size() == 1);
        REQUIRE_FALSE(c.stop_sessions(t0));
        pump(c, s, t0);
        auto stopped = events_of<server_events::sessions_stopped>(s);
        REQUIRE(stopped.size() == 1);
        CHECK(stopped[0].sids.size() == 1);
        CHECK_FALSE(s.closed());
    }
}

TEST_CASE("a wrong secret or an unknown KeyID gets Server-Start Accept 1")
{
    for (const char* client_keys :
         {"alice 00112233\n", "mallory 7375706572207365637265742070617373706872617365\n"}) {
        auto server_keys = keys(kAlice);
        auto ck = keys(client_keys);
        const std::string id =
            std::string(client_keys).substr(0, std::string(client_keys).find(' '));
        control_server<sec> s(server_cfg(mode::authenticated), {4, {}, {}}, t0,
                              sec::server(server_keys));
        client_config cc;
        cc.security_modes = mode::authenticated;
        control_client<sec> c(cc, t0, sec::client(id, ck));
        pump(c, s, t0);
        CHECK(s.closed());
        CHECK(c.closed());
        bool saw = false;
        while (auto e = c.next_event())
            if (auto* cl = std::get_if<connection_closed>(&*e)) {
                REQUIRE(cl->accept);
                CHECK(*cl->accept == accept_code::failure);
                saw = true;
            }
        CHECK(saw);
    }
}

TEST_CASE("a tampered control byte fails the HMAC and closes the connection")
{
    auto ks = keys(kAlice);
    control_server<sec> s(server_cfg(mode::encrypted), {4, {192, 0, 2, 1}, {192, 0, 2, 2}}, t0,
                          sec::server(ks));
    client_config cc;
    cc.security_modes = mode::encrypted;
    control_client<sec> c(cc, t0, sec::client("alice", ks));
    pump(c, s, t0);
    std::uint64_t id = 0;
    REQUIRE_FALSE(c.request_session(request(), t0, id));
    auto out = c.pending_output();
    std::vector<std::uint8_t> bytes(out.begin(), out.end());
    c.consume_output(bytes.size());
    bytes[40] ^= 0x01;
    s.receive(bytes, t0);
    CHECK(s.closed());
    bool auth = false;
    while (auto e = s.next_event())
        if (auto* cl = std::get_if<connection_closed>(&*e)) auth = cl->ec == errc::auth_failed;
    CHECK(auth);
}

TEST_CASE("a client that asks for a mode the server did not offer is refused")
{
    auto ks = keys(kAlice);
    // The server offers open and authenticated only; a hand-made Set-Up-Response asks for 4.
    control_server<sec> s(server_cfg(mode::unauthenticated | mode::authenticated), {4, {}, {}}, t0,
                          sec::server(ks));
    s.consume_output(s.pending_output().size());
    setup_response sr;
    sr.mode = mode::encrypted;
    std::array<std::uint8_t, kSetupResponseSize> b{};
    REQUIRE_FALSE(encode(sr, b));
    s.receive(b, t0);
    CHECK(s.closed());
    server_start ss;
    REQUIRE_FALSE(decode(s.pending_output(), ss));
    CHECK(ss.accept == accept_code::not_supported);
}

TEST_CASE("the client refuses a greeting whose Count is above its limit")
{
    auto ks = keys(kAlice);
    server_config scfg = server_cfg(mode::authenticated);
    scfg.count = 1u << 20;
    control_server<sec> s(scfg, {4, {}, {}}, t0, sec::server(ks));
    client_config cc;
    cc.security_modes = mode::authenticated;
    cc.max_count = 1u << 15;
    control_client<sec> c(cc, t0, sec::client("alice", ks));
    transfer(s, c, t0);
    CHECK(c.closed());
    setup_response sr;
    REQUIRE_FALSE(decode(c.pending_output(), sr));
    CHECK(sr.mode == 0); // declined before any PBKDF2 work
}
