// Tests for twamp/asio/test_guard.hpp and the layout translations under it
// (twamp/test_packet_auth.hpp): protected <-> open TWAMP-Test and STAMP packets, the per-SID
// TWAMP guard in authenticated and encrypted mode, the pre-shared-key STAMP guard, and a replay
// of the perfSONAR twping <-> twampd test packets (tests/data/twping-twampd-*.pcap) through the
// guard the transport uses.
//
// The control-channel side (handshakes, wrong secrets, Count limits) is tested in
// test_control_security.cpp; the raw crypto in test_crypto.cpp and test_capture_crypto.cpp.
#include "twamp/asio/test_guard.hpp"

#include <ostream>

#include "twamp/crypto_openssl.hpp"
#include "twamp/test_packet.hpp"
#include "twamp/test_packet_auth.hpp"
#include "twamp/wire.hpp"

#include "pcap.hpp"

#include <doctest/doctest.h>

#include "support/bytes.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using twamp::protected_format;
using twamp::test_protection;
using C = twamp::openssl_crypto;
using bytes = std::vector<std::uint8_t>;
using twamp_test::hex;
using twamp_test::slice;
using twamp_guard = twamp::net::twamp_test_guard<C>;
using stamp_guard = twamp::net::stamp_auth_guard<C>;

std::uint32_t be32(const bytes& b, std::size_t off)
{
    return twamp::wire::load32(b.data() + off);
}
std::uint64_t be64(const bytes& b, std::size_t off)
{
    return twamp::wire::load64(b.data() + off);
}

bool all_zero(const bytes& b, std::size_t off, std::size_t n)
{
    for (std::size_t i = off; i < off + n; ++i)
        if (b.at(i) != 0) return false;
    return true;
}

// A recognisable, non-zero filler so a misplaced copy shows up.
void fill_pattern(bytes& b, std::size_t from, std::uint8_t seed)
{
    for (std::size_t i = from; i < b.size(); ++i)
        b[i] = static_cast<std::uint8_t>(seed + 7 * i);
}

// Open Session-Sender packet: TWAMP 14 + padding, STAMP 44 (SSID at 14) + TLV octets.
bytes open_probe(protected_format f, std::size_t extra, std::uint32_t seq = 0x01020304,
                 std::uint64_t t1 = 0xE8F1A2B3C4D5E6F7ull, std::uint16_t err = 0x8123,
                 std::uint16_t ssid = 0xBEEF)
{
    const std::size_t base = twamp::open_sender_base(f);
    bytes b(base + extra, 0);
    twamp::wire::store32(b.data(), seq);
    twamp::wire::store64(b.data() + 4, t1);
    twamp::wire::store16(b.data() + 12, err);
    if (f == protected_format::stamp) twamp::wire::store16(b.data() + 14, ssid);
    fill_pattern(b, base, 0x31);
    return b;
}

// Open Session-Reflector packet: TWAMP 41 / STAMP 44, then `extra` octets.
bytes open_reply(protected_format f, std::size_t extra, std::uint32_t seq = 0x0A0B0C0D,
                 std::uint32_t sender_seq = 0x01020304)
{
    const std::size_t base = twamp::open_reflector_base(f);
    bytes b(base + extra, 0);
    std::uint8_t* o = b.data();
    twamp::wire::store32(o, seq);
    twamp::wire::store64(o + 4, 0xE8F1000000000033ull); // T3
    twamp::wire::store16(o + 12, 0x8001);               // error estimate
    if (f == protected_format::stamp) twamp::wire::store16(o + 14, 0xBEEF);
    twamp::wire::store64(o + 16, 0xE8F1000000000022ull); // T2
    twamp::wire::store32(o + 24, sender_seq);
    twamp::wire::store64(o + 28, 0xE8F1A2B3C4D5E6F7ull); // T1 echoed
    twamp::wire::store16(o + 36, 0x8123);
    o[40] = 251; // Sender TTL
    fill_pattern(b, base, 0x55);
    return b;
}

// A protected (plaintext) request of the given total length, as the reflector sees it after
// opening: only its length and its padding / TLVs matter to reflector_to_protected.
bytes protected_request(protected_format f, std::size_t len)
{
    bytes b(len, 0);
    fill_pattern(b, twamp::protected_sender_base(f), 0x71);
    return b;
}

const std::array<std::uint8_t, 16> kAesSk = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                             0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00};
const std::array<std::uint8_t, 32> kHmacSk = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                              12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                              23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
const std::array<std::uint8_t, 16> kSid = {0x7f, 0,    0,    1,    0xee, 0xb5, 0x90, 0x98,
                                           0xcd, 0xab, 0x29, 0xe4, 0xd7, 0x7e, 0x26, 0x11};

} // namespace

// ---------------------------------------------------------------------------------------------
// Translations

TEST_CASE("translation: TWAMP sender packets round-trip through the protected layout")
{
    for (std::size_t pad : {std::size_t{0}, std::size_t{27}, std::size_t{64}, std::size_t{1000}}) {
        CAPTURE(pad);
        const bytes open = open_probe(protected_format::twamp, pad);
        bytes prot(48 + pad + 8, 0xEE);
        const std::size_t n = twamp::sender_to_protected(open, protected_format::twamp, prot);
        REQUIRE(n == 48 + pad);
        prot.resize(n);
        // RFC 4656 §4.1.2 layout: Seq 0, MBZ 4-15, Timestamp 16, ErrEst 24, MBZ 26-31, HMAC 32-47.
        CHECK(be32(prot, 0) == 0x01020304);
        CHECK(all_zero(prot, 4, 12));
        CHECK(be64(prot, 16) == 0xE8F1A2B3C4D5E6F7ull);
        CHECK(twamp::wire::load16(prot.data() + 24) == 0x8123);
        CHECK(all_zero(prot, 26, 22)); // MBZ and the (still empty) HMAC field
        CHECK(slice(prot, 48, pad) == slice(open, 14, pad));

        bytes back(open.size(), 0xEE);
        CHECK(twamp::sender_from_protected(prot, protected_format::twamp, back) == open.size());
        CHECK(back == open);
    }
    // Too short in, too small out: refused with 0.
    bytes out(200);
    CHECK(twamp::sender_from_protected(bytes(47), protected_format::twamp, out) == 0);
    CHECK(twamp::sender_to_protected(bytes(13), protected_format::twamp, out) == 0);
    bytes small(47);
    CHECK(twamp::sender_to_protected(open_probe(protected_format::twamp, 0),
                                     protected_format::twamp, small) == 0);
    bytes small_open(14 + 9);
    CHECK(twamp::sender_from_protected(bytes(48 + 10), protected_format::twamp, small_open) == 0);
}

TEST_CASE("translation: STAMP sender packets round-trip through the protected layout (SSID, TLVs)")
{
    for (std::size_t tlvs : {std::size_t{0}, std::size_t{4}, std::size_t{20}, std::size_t{300}}) {
        CAPTURE(tlvs);
        const bytes open = open_probe(protected_format::stamp, tlvs);
        bytes prot(112 + tlvs);
        REQUIRE(twamp::sender_to_protected(open, protected_format::stamp, prot) == 112 + tlvs);
        // RFC 8762 §4.2.2: Seq 0, MBZ 4-15, Timestamp 16, ErrEst 24, SSID 26, MBZ 28-95, HMAC 96.
        CHECK(be32(prot, 0) == 0x01020304);
        CHECK(all_zero(prot, 4, 12));
        CHECK(be64(prot, 16) == 0xE8F1A2B3C4D5E6F7ull);
        CHECK(twamp::wire::load16(prot.data() + 24) == 0x8123);
        CHECK(twamp::wire::load16(prot.data() + 26) == 0xBEEF);
        CHECK(all_zero(prot, 28, 84));
        CHECK(slice(prot, 112, tlvs) == slice(open, 44, tlvs));

        bytes back(open.size());
        REQUIRE(twamp::sender_from_protected(prot, protected_format::stamp, back) == open.size());
        CHECK(back == open);
    }
    bytes out(200);
    CHECK(twamp::sender_from_protected(bytes(111), protected_format::stamp, out) == 0);
    CHECK(twamp::sender_to_protected(bytes(43), protected_format::stamp, out) == 0);
}

TEST_CASE("translation: TWAMP replies are max(request, 112) octets, the request's padding less 64")
{
    struct row {
        std::size_t request_len, reply_len;
    };
    // 48 (no padding) and 112 (symmetric padding 64) give 112; 148 (padding 100) gives 148 with
    // the first 36 padding octets of the request.
    for (const row r :
         {row{48, 112}, row{64, 112}, row{112, 112}, row{148, 148}, row{1048, 1048}}) {
        CAPTURE(r.request_len);
        const bytes req = protected_request(protected_format::twamp, r.request_len);
        const std::size_t extra = r.reply_len - 112;
        // The open reply's own padding is ignored for TWAMP: the request's is used.
        const bytes open = open_reply(protected_format::twamp, 5);
        bytes prot(r.reply_len + 16, 0xEE);
        const std::size_t n =
            twamp::reflector_to_protected(open, req, protected_format::twamp, prot);
        REQUIRE(n == r.reply_len);
        prot.resize(n);
        // RFC 5357 §4.2.1 (EID 5045) layout.
        CHECK(be32(prot, 0) == 0x0A0B0C0D);
        CHECK(all_zero(prot, 4, 12));
        CHECK(be64(prot, 16) == 0xE8F1000000000033ull);
        CHECK(twamp::wire::load16(prot.data() + 24) == 0x8001);
        CHECK(all_zero(prot, 26, 6));
        CHECK(be64(prot, 32) == 0xE8F1000000000022ull);
        CHECK(all_zero(prot, 40, 8));
        CHECK(be32(prot, 48) == 0x01020304);
        CHECK(all_zero(prot, 52, 12));
        CHECK(be64(prot, 64) == 0xE8F1A2B3C4D5E6F7ull);
        CHECK(twamp::wire::load16(prot.data() + 72) == 0x8123);
        CHECK(all_zero(prot, 74, 6));
        CHECK(prot[80] == 251);
        CHECK(all_zero(prot, 81, 31)); // MBZ and the empty HMAC field
        CHECK(slice(prot, 112, extra) == slice(req, 48, extra));

        // Back to the open layout: the 41-octet base and the padding that travelled.
        bytes back(41 + extra);
        REQUIRE(twamp::reflector_from_protected(prot, protected_format::twamp, back) == 41 + extra);
        CHECK(slice(back, 0, 41) == slice(open, 0, 41));
        CHECK(slice(back, 41, extra) == slice(req, 48, extra));
    }
    // Refusals: request shorter than the protected sender base, open reply shorter than 41, out
    // too small for the reply, protected reply shorter than 112.
    bytes out(2000);
    CHECK(twamp::reflector_to_protected(open_reply(protected_format::twamp, 0), bytes(47),
                                        protected_format::twamp, out) == 0);
    CHECK(twamp::reflector_to_protected(bytes(40), bytes(112), protected_format::twamp, out) == 0);
    bytes small(111);
    CHECK(twamp::reflector_to_protected(open_reply(protected_format::twamp, 0), bytes(48),
                                        protected_format::twamp, small) == 0);
    CHECK(twamp::reflector_from_protected(bytes(111), protected_format::twamp, out) == 0);
}

TEST_CASE("translation: STAMP replies carry the SSID and the reflected TLVs")
{
    for (std::size_t tlvs : {std::size_t{0}, std::size_t{8}, std::size_t{64}, std::size_t{400}}) {
        CAPTURE(tlvs);
        const bytes req = protected_request(protected_format::stamp, 112 + tlvs);
        const bytes open = open_reply(protected_format::stamp, tlvs); // the core's reflected TLVs
        bytes prot(112 + tlvs);
        REQUIRE(twamp::reflector_to_protected(open, req, protected_format::stamp, prot) ==
                112 + tlvs);
        CHECK(be32(prot, 0) == 0x0A0B0C0D);
        CHECK(twamp::wire::load16(prot.data() + 26) == 0xBEEF);
        CHECK(be64(prot, 32) == 0xE8F1000000000022ull);
        CHECK(be32(prot, 48) == 0x01020304);
        CHECK(prot[80] == 251);
        CHECK(all_zero(prot, 81, 31));
        // The TLVs are the open reply's (with the core's flags), not the request's.
        CHECK(slice(prot, 112, tlvs) == slice(open, 44, tlvs));

        bytes back(open.size());
        REQUIRE(twamp::reflector_from_protected(prot, protected_format::stamp, back) ==
                open.size());
        CHECK(back == open);
    }
}

// ---------------------------------------------------------------------------------------------
// twamp_test_guard

namespace {

// The Session-Sender's and the Session-Reflector's guards of one session (same keys, same SID).
struct guard_pair {
    twamp_guard sender, reflector;
    explicit guard_pair(test_protection p)
        : sender(p, kAesSk, kHmacSk, kSid), reflector(p, kAesSk, kHmacSk, kSid)
    {
    }
};

struct exchange {
    bytes probe_wire;    // sealed probe as sent
    bytes request_open;  // what the reflector core gets
    bytes request_plain; // the request after open_request (decrypted in place)
    bytes reply_wire;    // sealed reply as sent
};

exchange run_exchange(guard_pair& g, const bytes& probe, const bytes& reply)
{
    exchange x;
    x.probe_wire.resize(probe.size() + g.sender.sender_overhead());
    REQUIRE(g.sender.seal_probe(probe, x.probe_wire) == x.probe_wire.size());
    x.request_plain = x.probe_wire;
    x.request_open.resize(probe.size());
    REQUIRE(g.reflector.open_request(x.request_plain, x.request_open) == probe.size());
    x.reply_wire.resize(std::max<std::size_t>(x.probe_wire.size(), 112));
    REQUIRE(g.reflector.seal_reply(reply, x.request_plain, x.reply_wire) == x.reply_wire.size());
    return x;
}

} // namespace

TEST_CASE("twamp_test_guard: seal_probe/open_request and seal_reply/open_reply are inverses")
{
    for (auto p : {test_protection::authenticated, test_protection::encrypted}) {
        for (std::size_t pad : {std::size_t{0}, std::size_t{64}, std::size_t{100}}) {
            CAPTURE(static_cast<int>(p));
            CAPTURE(pad);
            guard_pair g(p);
            REQUIRE(g.sender.ready());
            REQUIRE(g.reflector.ready());
            CHECK(g.sender.format() == protected_format::twamp);
            CHECK(g.sender.sender_overhead() == 34);

            const bytes probe = open_probe(protected_format::twamp, pad);
            const bytes reply = open_reply(protected_format::twamp, 0);
            exchange x = run_exchange(g, probe, reply);
            CHECK(x.request_open == probe);
            // The sequence number (block 0) is never in clear on the wire.
            CHECK(be32(x.probe_wire, 0) != 0x01020304);
            // The padding is never encrypted (RFC 4656 §4.1.2).
            CHECK(slice(x.probe_wire, 48, pad) == slice(probe, 14, pad));
            // Authenticated mode leaves T1 in clear; encrypted mode does not.
            if (p == test_protection::authenticated)
                CHECK(be64(x.probe_wire, 16) == 0xE8F1A2B3C4D5E6F7ull);
            else
                CHECK(be64(x.probe_wire, 16) != 0xE8F1A2B3C4D5E6F7ull);

            bytes got(41 + x.reply_wire.size() - 112);
            bytes wire = x.reply_wire;
            REQUIRE(g.sender.open_reply(wire, got) == got.size());
            CHECK(slice(got, 0, 41) == reply);
            CHECK(slice(got, 41, got.size() - 41) == slice(probe, 14, got.size() - 41));
        }
    }
}

TEST_CASE("twamp_test_guard: a flipped byte in the protected region or the HMAC is refused")
{
    for (auto p : {test_protection::authenticated, test_protection::encrypted}) {
        CAPTURE(static_cast<int>(p));
        guard_pair g(p);
        const exchange x = run_exchange(g, open_probe(protected_format::twamp, 64),
                                        open_reply(protected_format::twamp, 0));
        // Authenticated: block 0 (0-15) is encrypted and covered. Encrypted: sender 0-31,
        // reflector 0-95. The HMAC field: sender 32-47, reflector 96-111.
        const std::size_t sender_prot = p == test_protection::authenticated ? 16 : 32;
        const std::size_t reflector_prot = p == test_protection::authenticated ? 16 : 96;
        bytes out(2000);
        std::vector<std::size_t> sender_pos = {0, 3, 15, 32, 40, 47};
        if (sender_prot == 32) sender_pos.insert(sender_pos.end(), {16, 20, 24, 31});
        for (std::size_t pos : sender_pos) {
            CAPTURE(pos);
            bytes t = x.probe_wire;
            t[pos] ^= 0x01;
            CHECK(g.reflector.open_request(t, out) == 0);
        }
        std::vector<std::size_t> reflector_pos = {0, 7, 15, 96, 103, 111};
        if (reflector_prot == 96)
            reflector_pos.insert(reflector_pos.end(), {16, 23, 32, 48, 64, 80, 95});
        for (std::size_t pos : reflector_pos) {
            CAPTURE(pos);
            bytes t = x.reply_wire;
            t[pos] ^= 0x80;
            CHECK(g.sender.open_reply(t, out) == 0);
        }
        // Too short: refused before any crypto.
        bytes shortp(47);
        CHECK(g.reflector.open_request(shortp, out) == 0);
        bytes shortr(111);
        CHECK(g.sender.open_reply(shortr, out) == 0);
        // Another session's keys (another SID) open nothing.
        auto other_sid = kSid;
        other_sid[15] ^= 1;
        twamp_guard other(p, kAesSk, kHmacSk, other_sid);
        bytes a = x.probe_wire, b = x.reply_wire;
        CHECK(other.open_request(a, out) == 0);
        CHECK(other.open_reply(b, out) == 0);
        // The untouched packets still open.
        a = x.probe_wire;
        b = x.reply_wire;
        CHECK(g.reflector.open_request(a, out) == 78);
        CHECK(g.sender.open_reply(b, out) == 41);
    }
}

TEST_CASE("twamp_test_guard: authenticated mode does not protect the timestamps or the padding")
{
    // RFC 4656 §4.1.2: in authenticated mode only block 0 (Sequence Number + MBZ) is encrypted,
    // and the HMAC "only covers the part of the packet that is also encrypted" — so that T1/T3
    // can be written after sealing. twampd does the same (test_capture_crypto.cpp shows the HMAC
    // of the capture's packets covers octets 0-15 only). A changed timestamp therefore opens
    // fine and reaches the core with the forged value: a man in the middle can skew delays in
    // authenticated mode, not in encrypted mode.
    guard_pair g(test_protection::authenticated);
    const bytes probe = open_probe(protected_format::twamp, 64);
    const exchange x = run_exchange(g, probe, open_reply(protected_format::twamp, 0));
    bytes out(200);

    bytes t = x.probe_wire;
    t[20] ^= 0x40; // T1
    t[25] ^= 0x01; // error estimate
    t[60] ^= 0xFF; // padding
    REQUIRE(g.reflector.open_request(t, out) == probe.size());
    CHECK(be32(bytes(out.begin(), out.begin() + 14), 0) == 0x01020304);
    CHECK(twamp::wire::load64(out.data() + 4) ==
          (0xE8F1A2B3C4D5E6F7ull ^ (std::uint64_t{0x40} << 24)));
    CHECK(out[13] == (0x23 ^ 0x01));

    bytes r = x.reply_wire;
    r[19] ^= 0x10; // T3
    r[35] ^= 0x10; // T2: outside block 0 too
    r[80] ^= 0x01; // Sender TTL
    REQUIRE(g.sender.open_reply(r, out) == 41);
    CHECK(twamp::wire::load64(out.data() + 4) ==
          (0xE8F1000000000033ull ^ (std::uint64_t{0x10} << 32)));
    CHECK(out[40] == (251 ^ 0x01));

    // In encrypted mode the same change to T1 is refused.
    guard_pair e(test_protection::encrypted);
    const exchange y = run_exchange(e, probe, open_reply(protected_format::twamp, 0));
    bytes u = y.probe_wire;
    u[20] ^= 0x40;
    CHECK(e.reflector.open_request(u, out) == 0);
    // ...but its padding is not covered either (only octets 0-31 of a request are).
    bytes v = y.probe_wire;
    v[60] ^= 0xFF;
    CHECK(e.reflector.open_request(v, out) == probe.size());
}

TEST_CASE("twamp_test_guard: out buffers too small and an unusable guard refuse")
{
    guard_pair g(test_protection::encrypted);
    const bytes probe = open_probe(protected_format::twamp, 0);
    bytes small(47);
    CHECK(g.sender.seal_probe(probe, small) == 0);
    bytes wire(48);
    REQUIRE(g.sender.seal_probe(probe, wire) == 48);
    bytes tiny(13);
    CHECK(g.reflector.open_request(wire, tiny) == 0);
    bytes reply_out(111);
    CHECK(g.reflector.seal_reply(open_reply(protected_format::twamp, 0), bytes(48), reply_out) ==
          0);
}

// ---------------------------------------------------------------------------------------------
// stamp_auth_guard

TEST_CASE("stamp_auth_guard: round trips, wrong key and tampering")
{
    const bytes key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    stamp_guard sender(key), reflector(key);
    stamp_guard wrong(hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1e"));
    CHECK(sender.format() == protected_format::stamp);
    CHECK(sender.sender_overhead() == 68);

    for (std::size_t tlvs : {std::size_t{0}, std::size_t{20}}) {
        CAPTURE(tlvs);
        const bytes probe = open_probe(protected_format::stamp, tlvs);
        bytes wire(112 + tlvs);
        REQUIRE(sender.seal_probe(probe, wire) == wire.size());
        // The HMAC is HMAC-SHA-256 over octets 0-95, truncated to 16 (RFC 8762 §4.4).
        std::array<std::uint8_t, 16> mac{};
        REQUIRE_FALSE(C::hmac_sha256_128(key, std::span<const std::uint8_t>(wire).first(96), mac));
        CHECK(slice(wire, 96, 16) == bytes(mac.begin(), mac.end()));
        // STAMP encrypts nothing: the fields are in clear.
        CHECK(be32(wire, 0) == 0x01020304);
        CHECK(be64(wire, 16) == 0xE8F1A2B3C4D5E6F7ull);

        bytes req = wire, open(probe.size());
        REQUIRE(reflector.open_request(req, open) == probe.size());
        CHECK(open == probe);
        bytes w2 = wire;
        CHECK(wrong.open_request(w2, open) == 0);

        const bytes reply = open_reply(protected_format::stamp, tlvs);
        bytes reply_wire(112 + tlvs);
        REQUIRE(reflector.seal_reply(reply, req, reply_wire) == reply_wire.size());
        bytes got(reply.size());
        bytes rw = reply_wire;
        REQUIRE(sender.open_reply(rw, got) == reply.size());
        CHECK(got == reply);
        rw = reply_wire;
        CHECK(wrong.open_reply(rw, got) == 0);

        // Any octet of 0-111 changed: refused.
        for (std::size_t pos : {std::size_t{0}, std::size_t{16}, std::size_t{26}, std::size_t{50},
                                std::size_t{95}, std::size_t{96}, std::size_t{111}}) {
            CAPTURE(pos);
            bytes t = wire;
            t[pos] ^= 0x04;
            CHECK(reflector.open_request(t, open) == 0);
            bytes r = reply_wire;
            r[pos] ^= 0x04;
            CHECK(sender.open_reply(r, got) == 0);
        }
        // The TLVs after octet 112 are not covered by the base HMAC (RFC 8972 §4.8 has an HMAC
        // TLV for them): a change there goes through.
        if (tlvs) {
            bytes t = wire;
            t[115] ^= 0x04;
            CHECK(reflector.open_request(t, open) == probe.size());
        }
    }
    bytes shortp(111), out(200);
    CHECK(reflector.open_request(shortp, out) == 0);
    CHECK(sender.open_reply(shortp, out) == 0);
    // A wrong-key reflector's reply does not verify at the sender.
    const bytes probe = open_probe(protected_format::stamp, 0);
    bytes wire(112), reply_wire(112);
    REQUIRE(sender.seal_probe(probe, wire) == 112);
    REQUIRE(wrong.seal_reply(open_reply(protected_format::stamp, 0), wire, reply_wire) == 112);
    CHECK(sender.open_reply(reply_wire, out) == 0);
}

// ---------------------------------------------------------------------------------------------
// Replay of perfSONAR twping <-> twampd test packets through the guard

namespace {

constexpr std::uint16_t kControlPort = 18620;
constexpr std::string_view kPassphrase = "super secret passphrase";

template <std::size_t N> std::span<const std::uint8_t, N> fixed(const bytes& b, std::size_t off = 0)
{
    REQUIRE(off + N <= b.size());
    return std::span<const std::uint8_t, N>(b.data() + off, N);
}

struct replay {
    twamp::token_contents token; // AES_SK / HMAC_SK
    bytes sid;
    std::uint16_t port = 0;
    std::vector<twamp_test::pcap_packet> sent, reflected;
};

// The session keys and the SID, the way test_capture_crypto.cpp gets them: K from the shared
// secret (PBKDF2 with the greeting's Salt and Count), the Token decrypted with K, then the
// server's control chain opened (Server-Start block, then the Accept-Session) for the SID and
// the reflector port.
replay load_replay(const std::string& name)
{
    replay r;
    bytes sv, cl;
    std::vector<twamp_test::pcap_packet> udp;
    for (auto& p : twamp_test::read_pcap(std::string(TWAMP_TEST_DATA_DIR) + "/" + name)) {
        if (p.udp)
            udp.push_back(std::move(p));
        else if (p.src_port == kControlPort)
            sv.insert(sv.end(), p.payload.begin(), p.payload.end());
        else if (p.dst_port == kControlPort)
            cl.insert(cl.end(), p.payload.begin(), p.payload.end());
    }
    REQUIRE(sv.size() >= 64 + 48 + 48);
    REQUIRE(cl.size() >= 164);
    const bytes secret(kPassphrase.begin(), kPassphrase.end());
    twamp::aes_key k;
    REQUIRE_FALSE(twamp::derive_shared_key<C>(secret, fixed<16>(sv, 32), be32(sv, 48), k));
    REQUIRE_FALSE(twamp::verify_token<C>(k, fixed<64>(cl, 84), fixed<16>(sv, 16), r.token));

    twamp::control_cipher<C> from_server;
    REQUIRE_FALSE(
        from_server.init(r.token.aes_sk.span(), r.token.hmac_sk.span(), fixed<16>(sv, 80)));
    bytes server_start = slice(sv, 64, 48);
    REQUIRE_FALSE(from_server.unprotect_server_start(server_start));
    bytes accept = slice(sv, 112, 48);
    REQUIRE_FALSE(from_server.unprotect(accept));
    REQUIRE(accept[0] == 0);
    r.port = static_cast<std::uint16_t>(accept[2] << 8 | accept[3]);
    r.sid = slice(accept, 4, 16);

    for (auto& p : udp) {
        if (p.dst_port == r.port)
            r.sent.push_back(std::move(p));
        else if (p.src_port == r.port)
            r.reflected.push_back(std::move(p));
    }
    REQUIRE(r.sent.size() == 3);
    REQUIRE(r.reflected.size() == 3);
    return r;
}

void replay_through_guard(const std::string& name, test_protection p, std::string_view sid_hex)
{
    replay r = load_replay(name);
    CHECK(r.sid == hex(sid_hex));
    twamp_guard reflector(p, r.token.aes_sk.span(), r.token.hmac_sk.span(), fixed<16>(r.sid));
    twamp_guard sender(p, r.token.aes_sk.span(), r.token.hmac_sk.span(), fixed<16>(r.sid));
    REQUIRE(reflector.ready());

    std::uint64_t prev_t1 = 0;
    for (std::size_t i = 0; i < r.sent.size(); ++i) {
        CAPTURE(i);
        const bytes& probe_wire = r.sent[i].payload;
        const bytes& reply_wire = r.reflected[i].payload;
        REQUIRE(probe_wire.size() == 112); // 48 + symmetric padding 64
        REQUIRE(reply_wire.size() == 112);

        // The reflector's side: twping's request opens to a 14 + 64-octet open probe.
        bytes plain = probe_wire, req_open(200);
        const std::size_t rn = reflector.open_request(plain, req_open);
        REQUIRE(rn == 14 + 64);
        req_open.resize(rn);
        twamp::sender_packet sp;
        REQUIRE_FALSE(twamp::decode_sender(req_open, twamp::test_format::twamp, sp));
        CHECK(sp.seq == i);
        CHECK(sp.timestamp > prev_t1);
        prev_t1 = sp.timestamp;
        CHECK(sp.err.multiplier != 0);
        CHECK(slice(req_open, 14, 64) == slice(probe_wire, 48, 64)); // padding passed through

        // The sender's side: twampd's reply opens to a 41-octet open reply.
        bytes rplain = reply_wire, rep_open(200);
        const std::size_t pn = sender.open_reply(rplain, rep_open);
        REQUIRE(pn == 41);
        rep_open.resize(pn);
        twamp::reflector_packet rp;
        REQUIRE_FALSE(twamp::decode_reflector(rep_open, twamp::test_format::twamp, rp));
        CHECK(rp.seq == i);
        CHECK(rp.sender_seq == sp.seq);
        CHECK(rp.sender_timestamp == sp.timestamp);
        CHECK(rp.sender_err.encode() == sp.err.encode());
        CHECK(rp.sender_ttl == 255);
        CHECK(rp.sender_ttl == r.sent[i].ttl);
        CHECK(sp.timestamp <= rp.receive_timestamp); // T1 <= T2
        CHECK(rp.receive_timestamp <= rp.timestamp); // T2 <= T3

        // Our seal of the same open probe reproduces twping's request bytes.
        bytes resealed_probe(112);
        REQUIRE(sender.seal_probe(req_open, resealed_probe) == 112);
        CHECK(resealed_probe == probe_wire);

        // Our reflector's seal of twampd's reply fields (same T2, T3, sequence numbers) over the
        // opened request reproduces twampd's reply bytes, and verifies on the sender's side.
        bytes resealed(200);
        const std::size_t sn = reflector.seal_reply(rep_open, plain, resealed);
        REQUIRE(sn == 112);
        resealed.resize(sn);
        CHECK(resealed == reply_wire);
        bytes again(200);
        CHECK(sender.open_reply(resealed, again) == 41);
        CHECK(slice(again, 0, 41) == rep_open);
    }

    // A replayed packet from another session (wrong SID) is refused.
    auto sid = r.sid;
    sid[0] ^= 1;
    twamp_guard stranger(p, r.token.aes_sk.span(), r.token.hmac_sk.span(), fixed<16>(sid));
    bytes w = r.sent[0].payload, out(200);
    CHECK(stranger.open_request(w, out) == 0);
}

} // namespace

TEST_CASE("replay: twping/twampd authenticated test packets through twamp_test_guard")
{
    replay_through_guard("twping-twampd-authenticated.pcap", test_protection::authenticated,
                         "7f000001eeb59098cdab29e4d77e2611");
}

TEST_CASE("replay: twping/twampd encrypted test packets through twamp_test_guard")
{
    replay_through_guard("twping-twampd-encrypted.pcap", test_protection::encrypted,
                         "7f000001eeb5909e0275cd0b32fc8c92");
}

TEST_CASE("authenticated STAMP: the RFC 8972 HMAC TLV is verified and the reply's recomputed")
{
    const std::vector<std::uint8_t> key(32, 0x42);
    twamp::net::stamp_auth_guard<twamp::openssl_crypto> sender(key), reflector(key);
    // Open probe: 44-octet base, a Location-like unknown TLV (type 2, 4 octets), an HMAC TLV.
    std::vector<std::uint8_t> open(44 + 8 + 20, 0);
    twamp::wire::store32(open.data(), 9);
    open[45] = 2;
    open[47] = 4;
    open[53] = twamp::stamp_tlv::kTypeHmac;
    open[55] = 16;
    std::vector<std::uint8_t> wire_pkt(200);
    const std::size_t n = sender.seal_probe(open, wire_pkt);
    REQUIRE(n == 112 + 28);
    wire_pkt.resize(n);
    // The sender's seal_probe leaves the HMAC TLV value zero; fill it as a TLV-aware sender would.
    REQUIRE_FALSE(twamp::stamp_seal_tlv_hmac<twamp::openssl_crypto>(key, wire_pkt, 112, 120));
    REQUIRE_FALSE(twamp::stamp_seal<twamp::openssl_crypto>(key, wire_pkt));
    auto good = wire_pkt;
    std::vector<std::uint8_t> opened(200);
    REQUIRE(reflector.open_request(good, opened) == 44 + 28);
    CHECK((opened[44] & twamp::stamp_tlv::kFlagI) == 0);
    CHECK(reflector.tlv_hmac_failures() == 0);
    // A TLV byte changed after the TLV HMAC was computed (base HMAC redone): I on every TLV.
    auto bad = wire_pkt;
    bad[117] ^= 0x01;
    REQUIRE_FALSE(twamp::stamp_seal<twamp::openssl_crypto>(key, bad));
    REQUIRE(reflector.open_request(bad, opened) == 44 + 28);
    CHECK((opened[44] & twamp::stamp_tlv::kFlagI) != 0);
    CHECK((opened[52] & twamp::stamp_tlv::kFlagI) != 0);
    CHECK(reflector.tlv_hmac_failures() == 1);
    // The reply to the good request carries a valid HMAC TLV of its own, without U.
    std::vector<std::uint8_t> open_reply(44 + 28, 0);
    std::copy(opened.begin() + 44, opened.begin() + 72, open_reply.begin() + 44);
    open_reply[52] = twamp::stamp_tlv::kFlagU; // as the core would mark the HMAC TLV
    open_reply[44] = twamp::stamp_tlv::kFlagU;
    REQUIRE(reflector.open_request(good, opened) > 0);
    std::vector<std::uint8_t> reply(200);
    const std::size_t m = reflector.seal_reply(open_reply, good, reply);
    REQUIRE(m == 112 + 28);
    reply.resize(m);
    CHECK((reply[120] & twamp::stamp_tlv::kFlagU) == 0);
    CHECK_FALSE(twamp::stamp_verify_tlv_hmac<twamp::openssl_crypto>(key, reply, 112, 120));
    CHECK_FALSE(twamp::stamp_verify<twamp::openssl_crypto>(key, reply));
}
