#include "twamp/reflector_session.hpp"

#include "pcap.hpp"

#include <doctest/doctest.h>

#include <ostream>
#include <random>
#include <string>
#include <vector>

using namespace twamp;
using std::chrono::seconds;

namespace {
peer_key peer(std::uint8_t last, std::uint16_t port)
{
    peer_key k;
    k.addr[10] = k.addr[11] = 0xFF;
    k.addr[12] = 127;
    k.addr[15] = last;
    k.port = port;
    return k;
}
std::vector<std::uint8_t> probe(std::uint32_t seq, std::size_t len,
                                test_format f = test_format::twamp, std::uint16_t ssid = 0)
{
    std::vector<std::uint8_t> b(len);
    sender_packet p;
    p.seq = seq;
    p.timestamp = to_ntp(nanoseconds{1'700'000'000'000'000'000}).to_u64();
    p.ssid = ssid;
    REQUIRE_FALSE(encode_sender(p, f, len, b));
    return b;
}
const nanoseconds kT2{1'700'000'000'000'100'000};
} // namespace

TEST_CASE("reply length equals the request length from 41 octets up; shorter ones get 41")
{
    session_reflector r;
    std::vector<std::uint8_t> out(70000);
    for (std::size_t len : {14u, 20u, 40u, 41u, 42u, 100u, 1472u, 9000u, 65507u}) {
        auto req = probe(1, len);
        // Give the padding a recognisable pattern.
        for (std::size_t i = kSenderUnauthLen; i < len; ++i)
            req[i] = static_cast<std::uint8_t>(i * 7);
        const auto n = r.reflect(req, peer(1, 1000), kT2, 64, out);
        CHECK(n == std::max<std::size_t>(len, kReflectorUnauthLen));
        // Padding follows our header, its trailing 27 octets truncated.
        for (std::size_t i = kReflectorUnauthLen; i < n; ++i)
            REQUIRE(out[i] == req[i - kReflectorUnauthLen + kSenderUnauthLen]);
        reflector_packet d;
        REQUIRE_FALSE(decode_reflector(std::span(out).first(n), test_format::twamp, d));
        CHECK(d.sender_seq == 1);
        CHECK(d.sender_ttl == 64);
        CHECK(from_ntp(ntp_timestamp::from_u64(d.receive_timestamp)) == kT2);
        CHECK(d.timestamp == d.receive_timestamp); // provisional T3, stamped later by the transport
        CHECK(wire::load16(out.data() + 14) == 0); // MBZ
        CHECK(wire::load16(out.data() + 38) == 0); // MBZ
    }
    CHECK(r.counters().malformed == 0);
}

TEST_CASE("datagrams too short or too long are counted and dropped")
{
    session_reflector r;
    std::vector<std::uint8_t> out(100);
    for (std::size_t len = 0; len < kSenderUnauthLen; ++len) {
        std::vector<std::uint8_t> req(len, 0x5A);
        CHECK(r.reflect(req, peer(1, 1), kT2, 255, out) == 0);
    }
    CHECK(r.counters().malformed == kSenderUnauthLen);
    // A request larger than the output buffer is dropped, not truncated.
    auto big = probe(0, 200);
    CHECK(r.reflect(big, peer(1, 1), kT2, 255, out) == 0);
    CHECK(r.counters().malformed == kSenderUnauthLen + 1);
    CHECK(r.counters().reflected == 0);
}

TEST_CASE("stateful: an own counter per sender; stateless: echo the sender's sequence")
{
    session_reflector r;
    std::vector<std::uint8_t> out(100);
    auto seq_of = [&](std::uint32_t sseq, const peer_key& k) {
        auto req = probe(sseq, 41);
        REQUIRE(r.reflect(req, k, kT2, 255, out) == 41);
        return wire::load32(out.data());
    };
    CHECK(seq_of(100, peer(1, 5000)) == 0);
    CHECK(seq_of(105, peer(1, 5000)) == 1); // gaps in the sender's numbers do not matter
    CHECK(seq_of(7, peer(1, 5001)) == 0);   // another port is another session
    CHECK(seq_of(8, peer(2, 5000)) == 0);   // another address too
    CHECK(seq_of(106, peer(1, 5000)) == 2);
    CHECK(r.active_sessions() == 3);

    session_reflector s(reflector_config{.stateless = true});
    auto req = probe(4242, 41);
    REQUIRE(s.reflect(req, peer(1, 5000), kT2, 255, out) == 41);
    CHECK(wire::load32(out.data()) == 4242);
    CHECK(s.active_sessions() == 0);
}

TEST_CASE("REFWAIT: idle sessions are dropped and a returning sender starts over")
{
    reflector_config cfg;
    cfg.refwait = seconds{10};
    session_reflector r(cfg);
    std::vector<std::uint8_t> out(100);
    auto req = probe(0, 41);
    r.reflect(req, peer(1, 1), kT2, 255, out);
    r.reflect(req, peer(1, 1), kT2, 255, out);
    CHECK(wire::load32(out.data()) == 1);
    r.reflect(req, peer(2, 2), kT2 + seconds{5}, 255, out);
    r.expire(kT2 + seconds{11}); // peer 1 idle for 11 s, peer 2 for 6 s
    CHECK(r.active_sessions() == 1);
    CHECK(r.counters().sessions_expired == 1);
    r.reflect(req, peer(1, 1), kT2 + seconds{12}, 255, out);
    CHECK(wire::load32(out.data()) == 0);
    // Without a sweep, a session found idle past REFWAIT also restarts.
    r.reflect(req, peer(2, 2), kT2 + seconds{40}, 255, out);
    CHECK(wire::load32(out.data()) == 0);
}

TEST_CASE("the session table is bounded: overflow is answered statelessly and counted")
{
    reflector_config cfg;
    cfg.max_sessions = 64;
    session_reflector r(cfg);
    std::vector<std::uint8_t> out(100);
    for (std::uint16_t port = 1; port <= 1000; ++port) {
        auto req = probe(port, 41);
        REQUIRE(r.reflect(req, peer(9, port), kT2, 255, out) == 41);
        if (port > 64) CHECK(wire::load32(out.data()) == port); // stateless echo
    }
    CHECK(r.active_sessions() == 64);
    CHECK(r.counters().table_full == 1000 - 64);
    // A second later, once REFWAIT has passed, new senders get state again.
    cfg.refwait = seconds{1};
    session_reflector r2(cfg);
    for (std::uint16_t port = 1; port <= 64; ++port)
        r2.reflect(probe(0, 41), peer(9, port), kT2, 255, out);
    auto req = probe(77, 41);
    r2.reflect(req, peer(8, 1), kT2 + seconds{3}, 255, out);
    CHECK(wire::load32(out.data()) == 0);
    CHECK(r2.counters().sessions_expired == 64);
}

TEST_CASE("deletion keeps every remaining session reachable (backward shift)")
{
    reflector_config cfg;
    cfg.max_sessions = 512;
    cfg.refwait = seconds{10};
    session_reflector r(cfg);
    std::vector<std::uint8_t> out(100);
    std::mt19937 rng(7);
    // Half the sessions are old, half recent; after the sweep the recent ones keep counting.
    for (std::uint16_t p = 0; p < 400; ++p)
        r.reflect(probe(0, 41), peer(static_cast<std::uint8_t>(rng()), p),
                  kT2 + seconds{p % 2 ? 20 : 0}, 255, out);
    rng.seed(7);
    r.expire(kT2 + seconds{25});
    CHECK(r.active_sessions() == 200);
    for (std::uint16_t p = 0; p < 400; ++p) {
        const auto last = static_cast<std::uint8_t>(rng());
        r.reflect(probe(0, 41), peer(last, p), kT2 + seconds{26}, 255, out);
        CHECK(wire::load32(out.data()) == (p % 2 ? 1u : 0u));
    }
}

TEST_CASE("STAMP: SSID echoed, TLVs reflected in place with U on unknown types, length kept")
{
    session_reflector r;
    std::vector<std::uint8_t> out(200);
    auto req = probe(3, 44 + 8 + 12, test_format::stamp, 7);
    // Extra Padding TLV (4 octets of value), then an unknown type 99 with 8 octets.
    REQUIRE_FALSE(write_stamp_extra_padding(std::span(req).subspan(44, 8)));
    req[52] = 0;
    req[53] = 99;
    wire::store16(req.data() + 54, 8);
    for (int i = 0; i < 8; ++i)
        req[56 + i] = static_cast<std::uint8_t>(0xA0 + i);
    const auto n = r.reflect(req, peer(1, 1), kT2, 200, out);
    REQUIRE(n == req.size());
    reflector_packet d;
    REQUIRE_FALSE(decode_reflector(std::span(out).first(n), test_format::stamp, d));
    CHECK(d.ssid == 7);
    CHECK(d.sender_seq == 3);
    CHECK(d.sender_ttl == 200);
    CHECK(out[41] == 0);
    CHECK(out[43] == 0);
    CHECK(out[44] == 0); // Extra Padding: understood
    CHECK(out[45] == 1);
    CHECK(out[52] == stamp_tlv::kFlagU);
    CHECK(out[53] == 99);
    CHECK(std::equal(req.begin() + 56, req.end(), out.begin() + 56));
    CHECK(r.counters().stamp == 1);
}

TEST_CASE("STAMP sessions are told apart by SSID as well as by address and port")
{
    session_reflector r;
    std::vector<std::uint8_t> out(100);
    auto a = probe(0, 44, test_format::stamp, 1);
    auto b = probe(0, 44, test_format::stamp, 2);
    r.reflect(a, peer(1, 1), kT2, 255, out);
    r.reflect(a, peer(1, 1), kT2, 255, out);
    CHECK(wire::load32(out.data()) == 1);
    r.reflect(b, peer(1, 1), kT2, 255, out);
    CHECK(wire::load32(out.data()) == 0);
}

TEST_CASE(
    "format selection: forced TWAMP shifts padding, forced STAMP answers short requests with 44")
{
    std::vector<std::uint8_t> out(100);
    auto req = probe(0, 44, test_format::stamp, 9);
    session_reflector tw(reflector_config{.format = reflector_format::twamp});
    REQUIRE(tw.reflect(req, peer(1, 1), kT2, 255, out) == 44);
    CHECK(wire::load16(out.data() + 14) == 0); // no SSID in TWAMP
    CHECK(out[41] == 0);
    CHECK(out[42] == 9); // the request's octets 14.. follow the 41-octet header
    session_reflector st(reflector_config{.format = reflector_format::stamp});
    auto short_req = probe(5, 14);
    REQUIRE(st.reflect(short_req, peer(1, 1), kT2, 255, out) == 44);
    CHECK(wire::load32(out.data() + 24) == 5);
}

TEST_CASE("strict size drops requests that would be amplified; min reply pads")
{
    std::vector<std::uint8_t> out(200);
    session_reflector strict(reflector_config{.strict_size = true});
    CHECK(strict.reflect(probe(0, 14), peer(1, 1), kT2, 255, out) == 0);
    CHECK(strict.counters().too_short_strict == 1);
    CHECK(strict.reflect(probe(0, 41), peer(1, 1), kT2, 255, out) == 41);
    session_reflector padded(reflector_config{.min_reply_len = 100});
    out.assign(200, 0xEE);
    CHECK(padded.reflect(probe(0, 14), peer(1, 1), kT2, 255, out) == 100);
    CHECK(std::all_of(out.begin() + 41, out.begin() + 100, [](auto b) { return b == 0; }));
}

TEST_CASE("reproduces twampd's replies from the twping capture octet for octet")
{
    const auto pkts =
        twamp_test::read_pcap(std::string(TWAMP_TEST_DATA_DIR) + "/twping-twampd-open.pcap");
    std::vector<std::vector<std::uint8_t>> requests, replies;
    for (const auto& p : pkts) {
        if (!p.udp) continue;
        (p.dst_port >= 18700 ? requests : replies).push_back(p.payload);
    }
    REQUIRE(requests.size() == 3);
    REQUIRE(replies.size() == 3);
    reflector_config cfg;
    cfg.err = error_estimate::decode(0x0001); // what twampd sent
    session_reflector r(cfg);
    std::vector<std::uint8_t> out(100);
    for (std::size_t i = 0; i < 3; ++i) {
        const auto& want = replies[i];
        const nanoseconds t2 = from_ntp(ntp_timestamp::from_u64(wire::load64(want.data() + 16)));
        const auto n = r.reflect(requests[i], peer(1, 9046), t2, 255, out);
        REQUIRE(n == want.size());
        stamp_reflector_timestamp(out, wire::load64(want.data() + 4));
        // T2 goes through nanoseconds: it may differ from the capture by one NTP unit (0.23 ns).
        const auto t2_ours = wire::load64(out.data() + 16),
                   t2_theirs = wire::load64(want.data() + 16);
        CHECK((t2_ours > t2_theirs ? t2_ours - t2_theirs : t2_theirs - t2_ours) <= 1);
        std::copy_n(want.data() + 16, 8, out.data() + 16);
        CHECK(std::vector<std::uint8_t>(out.begin(), out.begin() + static_cast<long>(n)) == want);
    }
}

TEST_CASE("random garbage: never a crash, replies never larger than max(request, 41)")
{
    session_reflector r;
    std::vector<std::uint8_t> out(70000);
    std::mt19937 rng(99);
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::uint8_t> g(rng() % 120);
        for (auto& b : g)
            b = static_cast<std::uint8_t>(rng());
        const auto n =
            r.reflect(g, peer(static_cast<std::uint8_t>(rng()), static_cast<std::uint16_t>(rng())),
                      kT2, 255, out);
        if (g.size() < kSenderUnauthLen)
            CHECK(n == 0);
        else
            CHECK(n ==
                  std::max(g.size(), kReflectorUnauthLen)); // random octets never look like STAMP
    }
}
