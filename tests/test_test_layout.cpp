// Tests for the test-packet field table (twamp/test_layout.hpp), the one STAMP TLV walker
// (for_each_stamp_tlv in twamp/test_packet.hpp) and the table-driven translations between the
// open and the protected layouts (twamp/test_packet_auth.hpp).
#include <twamp/test_layout.hpp>
#include <twamp/test_packet.hpp>
#include <twamp/test_packet_auth.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace twamp;
namespace L = twamp::test_layout;

namespace {

std::vector<stamp_tlv_header> walk(const std::vector<std::uint8_t>& tlvs)
{
    std::vector<stamp_tlv_header> seen;
    for_each_stamp_tlv(tlvs, [&](const stamp_tlv_header& t) { seen.push_back(t); });
    return seen;
}

} // namespace

TEST_CASE("TLV walker: every TLV in order, then stop at Type 0")
{
    std::vector<std::uint8_t> tlvs = {
        0x00, 1, 0, 4,  0, 0, 0, 0, // Extra Padding, 4 octets
        0x80, 8, 0, 16,             // HMAC, 16 octets, U set
    };
    tlvs.resize(tlvs.size() + 16, 0xAB);
    tlvs.insert(tlvs.end(), {0, 0, 0, 9, 1, 2, 3}); // Type 0: padding, not a TLV
    const auto seen = walk(tlvs);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].offset == 0);
    CHECK(seen[0].type == L::tlv::type_extra_padding);
    CHECK(seen[0].length == 4);
    CHECK(seen[0].fits);
    CHECK(seen[1].offset == 8);
    CHECK(seen[1].flags == 0x80);
    CHECK(seen[1].type == L::tlv::type_hmac);
    CHECK(seen[1].length == 16);
    CHECK(seen[1].fits);
}

TEST_CASE("TLV walker: a Length past the end is reported once and ends the walk")
{
    std::vector<std::uint8_t> tlvs = {0, 1, 0, 0,   // empty Extra Padding
                                      0, 5, 0, 100, // claims 100 octets, has 6
                                      1, 2, 3, 4,   5, 6};
    const auto seen = walk(tlvs);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].fits);
    CHECK(seen[1].offset == 4);
    CHECK(seen[1].length == 100);
    CHECK_FALSE(seen[1].fits);

    CHECK(walk({0, 1, 0}).empty()); // fewer octets than a header: padding
    CHECK(walk({}).empty());
    // A Length that ends exactly at the end fits.
    const auto exact = walk({0, 3, 0, 2, 7, 7});
    REQUIRE(exact.size() == 1);
    CHECK(exact[0].fits);
}

TEST_CASE("the reflector marks unknown and malformed TLVs through the walker")
{
    std::vector<std::uint8_t> tlvs = {0, 1, 0, 0, 0, 7, 0, 1, 9, 0, 8, 0, 50};
    CHECK(mark_reflected_tlvs(tlvs) == 3);
    CHECK(tlvs[0] == 0);                 // Extra Padding: understood
    CHECK(tlvs[4] == stamp_tlv::kFlagU); // type 7: unknown
    CHECK(tlvs[9] == stamp_tlv::kFlagM); // runs past the end
}

TEST_CASE("open and protected layouts: every field lands at its table offset and comes back")
{
    for (const auto f : {protected_format::twamp, protected_format::stamp}) {
        CAPTURE(static_cast<int>(f));
        const bool stamp = f == protected_format::stamp;
        const test_format tf = stamp ? test_format::stamp : test_format::twamp;

        sender_packet s;
        s.seq = 0x01020304;
        s.timestamp = 0x1112131415161718ull;
        s.err = error_estimate{true, false, 3, 9};
        s.ssid = 0xBEEF;
        std::vector<std::uint8_t> open(sender_base_len(tf) + 5);
        REQUIRE_FALSE(encode_sender(s, tf, open.size(), open));
        open.back() = 0x77; // a padding octet travels unchanged
        std::vector<std::uint8_t> prot(protected_sender_base(f) + 5);
        REQUIRE(sender_to_protected(open, f, prot) == prot.size());
        CHECK(wire::load32(prot.data() + L::auth::seq.offset) == s.seq);
        CHECK(wire::load64(prot.data() + L::auth::timestamp.offset) == s.timestamp);
        CHECK(wire::load16(prot.data() + L::auth::error_estimate.offset) == s.err.encode());
        CHECK(wire::load16(prot.data() + L::auth::ssid.offset) == (stamp ? 0xBEEF : 0));
        CHECK(prot.back() == 0x77);
        std::vector<std::uint8_t> back(open.size());
        REQUIRE(sender_from_protected(prot, f, back) == open.size());
        CHECK(back == open);

        reflector_packet r;
        r.seq = 7;
        r.timestamp = 0x2122232425262728ull;
        r.err = error_estimate{false, true, 1, 2};
        r.ssid = stamp ? 0x1234 : 0;
        r.receive_timestamp = 0x3132333435363738ull;
        r.sender_seq = 0x41424344;
        r.sender_timestamp = s.timestamp;
        r.sender_err = s.err;
        r.sender_ttl = 64;
        std::vector<std::uint8_t> reply(reflector_base_len(tf));
        REQUIRE_FALSE(encode_reflector_base(r, tf, reply));
        std::vector<std::uint8_t> preply(L::auth::base);
        // The request's base only: the reply is then exactly the protected base.
        const auto request = wire::const_byte_span(prot).first(protected_sender_base(f));
        REQUIRE(reflector_to_protected(reply, request, f, preply) == L::auth::base);
        CHECK(wire::load64(preply.data() + L::auth::receive_timestamp.offset) ==
              r.receive_timestamp);
        CHECK(wire::load32(preply.data() + L::auth::sender_seq.offset) == r.sender_seq);
        CHECK(preply[L::auth::sender_ttl.offset] == 64);
        std::vector<std::uint8_t> oreply(reflector_base_len(tf));
        REQUIRE(reflector_from_protected(preply, f, oreply) == oreply.size());
        CHECK(oreply == reply);
        reflector_packet d;
        REQUIRE_FALSE(decode_reflector(oreply, tf, d));
        CHECK(d.sender_timestamp == r.sender_timestamp);
        CHECK(d.ssid == r.ssid);
    }
}
