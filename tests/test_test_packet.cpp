#include "twamp/test_packet.hpp"

#include "pcap.hpp"

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through operator<<

#include <string>
#include <vector>

using namespace twamp;

namespace {
std::vector<std::uint8_t> hex(const std::string& s)
{
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < s.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
    return out;
}
std::string data(const char* name)
{
    return std::string(TWAMP_TEST_DATA_DIR) + "/" + name;
}
} // namespace

TEST_CASE("sender packet: golden bytes, 14 octets and padding")
{
    sender_packet p;
    p.seq = 0x01020304;
    p.timestamp = 0xeeb59094bc9d4951ull;
    p.err = error_estimate{true, false, 0x3F, 0xFF};
    std::vector<std::uint8_t> buf(41, 0xAA);
    REQUIRE_FALSE(encode_sender(p, test_format::twamp, 41, buf));
    CHECK(buf == hex("01020304eeb59094bc9d4951bfff"
                     "000000000000000000000000000000000000000000000000000000"));
    sender_packet q;
    REQUIRE_FALSE(decode_sender(buf, test_format::twamp, q));
    CHECK(q.seq == p.seq);
    CHECK(q.timestamp == p.timestamp);
    CHECK(q.err == p.err);
    CHECK(q.ssid == 0);
    // Too small for the base, or a buffer too small for the total.
    CHECK(encode_sender(p, test_format::twamp, 13, buf) == errc::bad_length);
    CHECK(encode_sender(p, test_format::twamp, 42, buf) == errc::buffer_too_small);
    CHECK(decode_sender(std::span(buf).first(13), test_format::twamp, q) == errc::truncated);
}

TEST_CASE("STAMP sender packet: 44 octets with the SSID at 14")
{
    sender_packet p;
    p.seq = 7;
    p.timestamp = 0x1122334455667788ull;
    p.err = error_estimate{false, false, 0, 1};
    p.ssid = 0xBEEF;
    std::vector<std::uint8_t> buf(44, 0xAA);
    REQUIRE_FALSE(encode_sender(p, test_format::stamp, 44, buf));
    CHECK(buf == hex("0000000711223344556677880001beef"
                     "00000000000000000000000000000000000000000000000000000000"));
    sender_packet q;
    REQUIRE_FALSE(decode_sender(buf, test_format::stamp, q));
    CHECK(q.ssid == 0xBEEF);
    CHECK(decode_sender(std::span(buf).first(43), test_format::stamp, q) == errc::truncated);
    CHECK(encode_sender(p, test_format::stamp, 43, buf) == errc::bad_length);
}

TEST_CASE("reflector packet: golden bytes, all fields, both MBZ and the Sender TTL")
{
    reflector_packet r;
    r.seq = 5;
    r.timestamp = 0xaaaaaaaabbbbbbbbull;
    r.err = error_estimate{true, false, 1, 2};
    r.receive_timestamp = 0xccccccccddddddddull;
    r.sender_seq = 9;
    r.sender_timestamp = 0x1111111122222222ull;
    r.sender_err = error_estimate{false, false, 0x3F, 0xFF};
    r.sender_ttl = 254;
    std::vector<std::uint8_t> buf(41, 0xEE);
    REQUIRE_FALSE(encode_reflector_base(r, test_format::twamp, buf));
    CHECK(buf == hex("00000005aaaaaaaabbbbbbbb81020000ccccccccdddddddd000000091111111122222222"
                     "3fff0000fe"));
    reflector_packet d;
    REQUIRE_FALSE(decode_reflector(buf, test_format::twamp, d));
    CHECK(d.seq == 5);
    CHECK(d.timestamp == r.timestamp);
    CHECK(d.err == r.err);
    CHECK(d.receive_timestamp == r.receive_timestamp);
    CHECK(d.sender_seq == 9);
    CHECK(d.sender_timestamp == r.sender_timestamp);
    CHECK(d.sender_err == r.sender_err);
    CHECK(d.sender_ttl == 254);
    CHECK_FALSE(d.truncated);
    stamp_reflector_timestamp(buf, 0x0102030405060708ull);
    CHECK(std::vector<std::uint8_t>(buf.begin() + 4, buf.begin() + 12) == hex("0102030405060708"));
}

TEST_CASE("STAMP reflector base: SSID echoed at 14, MBZ 41..43")
{
    reflector_packet r;
    r.ssid = 7;
    r.sender_ttl = 255;
    std::vector<std::uint8_t> buf(44, 0xEE);
    REQUIRE_FALSE(encode_reflector_base(r, test_format::stamp, buf));
    CHECK(buf[14] == 0);
    CHECK(buf[15] == 7);
    CHECK(buf[40] == 255);
    CHECK(buf[41] == 0);
    CHECK(buf[43] == 0);
    reflector_packet d;
    REQUIRE_FALSE(decode_reflector(buf, test_format::stamp, d));
    CHECK(d.ssid == 7);
    // TWAMP reflectors keep the SSID octets zero.
    REQUIRE_FALSE(encode_reflector_base(r, test_format::twamp, buf));
    CHECK(buf[15] == 0);
    CHECK(encode_reflector_base(r, test_format::stamp, std::span(buf).first(43)) ==
          errc::buffer_too_small);
}

TEST_CASE("twping <-> twampd capture: every 41-octet test packet decodes to its fields")
{
    const auto pkts = twamp_test::read_pcap(data("twping-twampd-open.pcap"));
    int senders = 0, replies = 0;
    for (const auto& p : pkts) {
        if (!p.udp) continue;
        REQUIRE(p.payload.size() == 41);
        CHECK(p.ttl == 255);       // owamp sends test packets with TTL 255
        if (p.dst_port >= 18700) { // towards the reflector
            sender_packet s;
            REQUIRE_FALSE(decode_sender(p.payload, test_format::twamp, s));
            CHECK(s.seq == std::uint32_t(senders));
            CHECK(s.err.encode() == 0x0001); // twping: unsynchronised, smallest estimate
            ++senders;
        } else {
            reflector_packet r;
            REQUIRE_FALSE(decode_reflector(p.payload, test_format::twamp, r));
            CHECK(r.seq == std::uint32_t(replies));
            CHECK(r.sender_seq == std::uint32_t(replies));
            CHECK(r.sender_ttl == 255);
            CHECK(r.err.valid());
            CHECK(r.timestamp >= r.receive_timestamp); // twampd: T3 after T2
            CHECK_FALSE(r.truncated);
            ++replies;
        }
    }
    CHECK(senders == 3);
    CHECK(replies == 3);
    // The first reply, field by field (bytes from the capture).
    const auto first =
        hex("00000000eeb59094bca19c9d00010000eeb59094bca1059e00000000eeb59094bc9d4951"
            "00010000ff");
    reflector_packet r;
    REQUIRE_FALSE(decode_reflector(first, test_format::twamp, r));
    CHECK(r.timestamp == 0xeeb59094bca19c9dull);
    CHECK(r.receive_timestamp == 0xeeb59094bca1059eull);
    CHECK(r.sender_timestamp == 0xeeb59094bc9d4951ull);
    // Re-encoding the decoded fields gives back the captured octets.
    std::vector<std::uint8_t> again(41);
    REQUIRE_FALSE(encode_reflector_base(r, test_format::twamp, again));
    CHECK(again == first);
}

TEST_CASE("twampy capture: 38-octet replies decode, zero-filled and flagged")
{
    const auto pkts = twamp_test::read_pcap(data("twampy-sender-responder.pcap"));
    int short_replies = 0, requests14 = 0, requests41 = 0;
    for (const auto& p : pkts) {
        if (p.src_port == 43001) {
            REQUIRE(p.payload.size() == 38);
            reflector_packet r;
            REQUIRE_FALSE(decode_reflector(p.payload, test_format::twamp, r));
            CHECK(r.truncated);
            CHECK(r.sender_ttl == 0);                  // not sent: reads as unknown
            CHECK(r.timestamp == r.receive_timestamp); // twampy stamps T3 == T2
            CHECK(r.err.encode() == 0x0001);
            CHECK(r.sender_err.encode() == 0x3fff);
            ++short_replies;
        } else {
            sender_packet s;
            REQUIRE_FALSE(decode_sender(p.payload, test_format::twamp, s));
            (p.payload.size() == 14 ? requests14 : requests41)++;
        }
    }
    CHECK(short_replies == 6);
    CHECK(requests14 == 3);
    CHECK(requests41 == 3);
    // Below 36 octets there is no Sender Timestamp: not a usable reply.
    reflector_packet r;
    std::vector<std::uint8_t> tiny(35);
    CHECK(decode_reflector(tiny, test_format::twamp, r) == errc::truncated);
}

TEST_CASE("STAMP TLVs: extra padding writer and the reflector's U/M marking")
{
    std::vector<std::uint8_t> tlvs(24, 0);
    REQUIRE_FALSE(write_stamp_extra_padding(std::span(tlvs).first(8)));
    CHECK(tlvs[1] == stamp_tlv::kTypeExtraPadding);
    CHECK(tlvs[3] == 4);
    // An unknown type (200) with 4 octets of value, then a TLV claiming more than is left.
    tlvs[8] = 0;
    tlvs[9] = 200;
    tlvs[11] = 4;
    tlvs[16] = 0;
    tlvs[17] = 1;
    tlvs[19] = 100;
    CHECK(mark_reflected_tlvs(tlvs) == 3);
    CHECK(tlvs[0] == 0);                  // Extra Padding is ours: no flag
    CHECK(tlvs[8] == stamp_tlv::kFlagU);  // unknown type
    CHECK(tlvs[16] == stamp_tlv::kFlagM); // length overruns the packet
    CHECK(write_stamp_extra_padding(std::span(tlvs).first(3)) == errc::bad_length);
    // Type 0 is not a TLV: zero fill after the base stays untouched.
    std::vector<std::uint8_t> zeros(30, 0);
    CHECK(mark_reflected_tlvs(zeros) == 0);
    CHECK(std::all_of(zeros.begin(), zeros.end(), [](auto b) { return b == 0; }));
}

TEST_CASE("looks_like_stamp: 44+ octets with zero MBZ")
{
    std::vector<std::uint8_t> p(44, 0);
    p[15] = 7;
    CHECK(looks_like_stamp(p));
    p[20] = 1;
    CHECK_FALSE(looks_like_stamp(p));
    CHECK_FALSE(looks_like_stamp(std::vector<std::uint8_t>(41, 0)));
}
