// Tests for twamp/control.hpp: golden bytes from a twping/twampd capture and from the RFC
// layouts, round trips and rejects for every TWAMP-Control message, framing and field helpers.
#include <twamp/control.hpp>

#include <doctest/doctest.h>

#include "pcap.hpp"

#include <cstdint>
#include <string>
#include <vector>

using namespace twamp;
using namespace twamp::control;

namespace {

std::vector<std::uint8_t> from_hex(const std::string& hex)
{
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    return out;
}

template <class Msg> std::vector<std::uint8_t> encode_vec(const Msg& m)
{
    std::vector<std::uint8_t> out(encoded_size(m), 0xEE);
    REQUIRE_FALSE(encode(m, out));
    return out;
}

template <class Msg>
Msg decode_ok(const std::vector<std::uint8_t>& bytes, strictness s = strictness::lenient)
{
    Msg m{};
    const auto ec = decode(bytes, m, s);
    REQUIRE_MESSAGE(!ec, ec.message());
    return m;
}

template <class Msg>
std::error_code decode_ec(const std::vector<std::uint8_t>& bytes,
                          strictness s = strictness::lenient)
{
    Msg m{};
    return decode(bytes, m, s);
}

session_id sid_from_hex(const std::string& hex)
{
    session_id sid{};
    const auto v = from_hex(hex);
    REQUIRE(v.size() == sid.size());
    std::copy(v.begin(), v.end(), sid.begin());
    return sid;
}

// Checks the length rules shared by all fixed-size messages: one octet short is truncated, one
// octet long is bad_length, and an encoder with too little room says so.
template <class Msg> void check_lengths(const Msg& m)
{
    auto bytes = encode_vec(m);
    auto shorter = bytes;
    shorter.pop_back();
    CHECK(decode_ec<Msg>(shorter) == errc::truncated);
    CHECK(decode_ec<Msg>({}) == errc::truncated);
    auto longer = bytes;
    longer.push_back(0);
    CHECK(decode_ec<Msg>(longer) == errc::bad_length);
    std::vector<std::uint8_t> small(bytes.size() - 1);
    CHECK(encode(m, small) == errc::buffer_too_small);
}

} // namespace

TEST_CASE("message sizes and constants follow RFC 4656/5357/5938")
{
    CHECK(kControlPort == 862);
    CHECK(encoded_size(server_greeting{}) == 64);
    CHECK(encoded_size(setup_response{}) == 164);
    CHECK(encoded_size(server_start{}) == 48);
    CHECK(encoded_size(request_tw_session{}) == 112);
    CHECK(encoded_size(accept_session{}) == 48);
    CHECK(encoded_size(start_sessions{}) == 32);
    CHECK(encoded_size(start_ack{}) == 32);
    CHECK(encoded_size(stop_sessions{}) == 32);
    CHECK(encoded_size(start_n_sessions{{session_id{}, session_id{}}, {}}) == 64);
    CHECK(n_message_size(1) == 48);
    CHECK(static_cast<int>(command::start_n_sessions) == 7);
    CHECK(static_cast<int>(command::stop_n_ack) == 10);
    CHECK(mode::individual_session_control == 16);
    CHECK(mode::reflect_octets == 32);
    CHECK(mode::symmetrical_size == 64);
    CHECK(mode::security_bit_count(mode::unauthenticated | mode::individual_session_control) == 1);
    CHECK(mode::security_bit_count(mode::unauthenticated | mode::encrypted) == 2);
    CHECK(mode::security_bit_count(mode::reflect_octets) == 0);
    CHECK(static_cast<int>(accept_code::temporary_limit) == 5);
}

TEST_CASE("capture twping-twampd-open: every control message decodes and re-encodes exactly")
{
    const auto packets = twamp_test::read_pcap(TWAMP_TEST_DATA_DIR "/twping-twampd-open.pcap");
    std::vector<std::vector<std::uint8_t>> to_client, to_server;
    std::vector<int> order; // 0 = to client, 1 = to server, in capture order
    for (const auto& p : packets) {
        if (p.udp || p.payload.empty()) continue;
        if (p.src_port == 18620) {
            to_client.push_back(p.payload);
            order.push_back(0);
        } else if (p.dst_port == 18620) {
            to_server.push_back(p.payload);
            order.push_back(1);
        }
    }
    // In this capture each TCP segment carries exactly one message.
    REQUIRE(to_client.size() == 4);
    REQUIRE(to_server.size() == 4);
    CHECK(order == std::vector<int>{0, 1, 0, 1, 0, 1, 0, 1});

    SUBCASE("Server Greeting")
    {
        const auto g = decode_ok<server_greeting>(to_client[0], strictness::strict);
        CHECK(g.modes == 0x0F);
        CHECK(g.count == 2048);
        CHECK(g.challenge[0] == 0x8C);
        CHECK(g.salt[15] == 0x5E);
        CHECK(encode_vec(g) == to_client[0]);
    }
    SUBCASE("Set-Up-Response (unauthenticated)")
    {
        const auto s = decode_ok<setup_response>(to_server[0], strictness::strict);
        CHECK(s.mode == mode::unauthenticated);
        CHECK(is_zero(s.key_id));
        CHECK(is_zero(s.token));
        CHECK(is_zero(s.client_iv));
        CHECK(encode_vec(s) == to_server[0]);
    }
    SUBCASE("Server-Start")
    {
        const auto s = decode_ok<server_start>(to_client[1], strictness::strict);
        CHECK(s.accept == accept_code::ok);
        CHECK(is_zero(s.server_iv));
        CHECK(s.start_time == ntp_timestamp{0xEEB5903C, 0x0B461309});
        CHECK(encode_vec(s) == to_client[1]);
    }
    SUBCASE("Request-TW-Session")
    {
        const auto r = decode_ok<request_tw_session>(to_server[1], strictness::strict);
        CHECK(r.ipvn == 4);
        CHECK(r.conf_sender == 0);
        CHECK(r.conf_receiver == 0);
        CHECK(r.sender_port == 9046);
        CHECK(r.receiver_port == 9046);
        CHECK(r.sender_address == make_address_v4(127, 0, 0, 1));
        CHECK(r.receiver_address == make_address_v4(127, 0, 0, 1));
        CHECK(is_zero(r.sid));
        CHECK(r.padding_length == 27);
        CHECK(r.start_time == ntp_timestamp{0xEEB59094, 0xBA07F66F});
        CHECK(r.timeout == ntp_timestamp{2, 0x01B163BB});
        CHECK(duration_from_ntp(r.timeout) > std::chrono::seconds(2));
        CHECK(duration_from_ntp(r.timeout) < std::chrono::milliseconds(2010));
        CHECK(r.type_p == 0);
        CHECK(dscp_from_type_p(r.type_p) == std::optional<std::uint8_t>{0});
        CHECK(encode_vec(r) == to_server[1]);
    }
    SUBCASE("Accept-Session")
    {
        const auto a = decode_ok<accept_session>(to_client[2], strictness::strict);
        CHECK(a.accept == accept_code::ok);
        CHECK(a.port == 18937);
        CHECK(a.sid == sid_from_hex("7f000001eeb59093b504c48a58be7297"));
        // twampd builds the SID as RFC 4656 §3.5 suggests: receiver address, NTP time, random.
        const auto rebuilt =
            make_sid(4, make_address_v4(127, 0, 0, 1), ntp_timestamp{0xEEB59093, 0xB504C48A},
                     {0x58, 0xBE, 0x72, 0x97});
        CHECK(rebuilt == a.sid);
        CHECK(encode_vec(a) == to_client[2]);
    }
    SUBCASE("Start-Sessions and Start-Ack")
    {
        const auto s = decode_ok<start_sessions>(to_server[2], strictness::strict);
        CHECK(is_zero(s.hmac));
        CHECK(encode_vec(s) == to_server[2]);
        const auto a = decode_ok<start_ack>(to_client[3], strictness::strict);
        CHECK(a.accept == accept_code::ok);
        CHECK(encode_vec(a) == to_client[3]);
    }
    SUBCASE("Stop-Sessions")
    {
        const auto s = decode_ok<stop_sessions>(to_server[3], strictness::strict);
        CHECK(s.accept == accept_code::ok);
        CHECK(s.number_of_sessions == 1);
        CHECK(encode_vec(s) == to_server[3]);
    }
    SUBCASE("framing: the client commands' lengths are known from their first block")
    {
        for (std::size_t i = 1; i < to_server.size(); ++i) {
            std::size_t size = 0;
            REQUIRE_FALSE(command_message_size(std::span(to_server[i]).first(16), size));
            CHECK(size == to_server[i].size());
        }
    }
}

TEST_CASE("Server Greeting: golden bytes, round trip, rejects")
{
    server_greeting g;
    g.modes = mode::unauthenticated | mode::individual_session_control;
    for (std::size_t i = 0; i < 16; ++i) {
        g.challenge[i] = static_cast<std::uint8_t>(i);
        g.salt[i] = static_cast<std::uint8_t>(0xF0 + i);
    }
    g.count = 1024;
    const auto bytes = encode_vec(g);
    CHECK(bytes == from_hex("000000000000000000000000"
                            "00000011"
                            "000102030405060708090a0b0c0d0e0f"
                            "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
                            "00000400"
                            "000000000000000000000000"));
    CHECK(decode_ok<server_greeting>(bytes) == g);
    check_lengths(g);

    auto unused = bytes;
    unused[3] = 1; // "Unused" octets: ignored unless strict
    CHECK(decode_ok<server_greeting>(unused) == g);
    CHECK(decode_ec<server_greeting>(unused, strictness::strict) == errc::mbz_not_zero);
    auto mbz = bytes;
    mbz[63] = 1;
    CHECK(decode_ok<server_greeting>(mbz) == g);
    CHECK(decode_ec<server_greeting>(mbz, strictness::strict) == errc::mbz_not_zero);
}

TEST_CASE("Set-Up-Response: golden bytes, round trip, rejects")
{
    setup_response s;
    s.mode = mode::authenticated;
    s.key_id[0] = 'k';
    s.key_id[79] = 'z';
    s.token[0] = 0xAA;
    s.token[63] = 0xBB;
    s.client_iv[15] = 0xCC;
    const auto bytes = encode_vec(s);
    REQUIRE(bytes.size() == 164);
    CHECK(bytes[3] == 2);
    CHECK(bytes[4] == 'k');
    CHECK(bytes[83] == 'z');
    CHECK(bytes[84] == 0xAA);
    CHECK(bytes[147] == 0xBB);
    CHECK(bytes[163] == 0xCC);
    CHECK(decode_ok<setup_response>(bytes) == s);
    check_lengths(s);
}

TEST_CASE("Server-Start: golden bytes, round trip, rejects")
{
    server_start s;
    s.accept = accept_code::ok;
    s.server_iv.fill(0x11);
    s.start_time = {0xE0000001, 0x80000000};
    const auto bytes = encode_vec(s);
    CHECK(bytes == from_hex("000000000000000000000000000000"
                            "00"
                            "11111111111111111111111111111111"
                            "e000000180000000"
                            "0000000000000000"));
    CHECK(decode_ok<server_start>(bytes) == s);
    check_lengths(s);

    auto reject = bytes;
    reject[15] = 4;
    CHECK(decode_ok<server_start>(reject).accept == accept_code::permanent_limit);
    // RFC 4656 §3.3: reserved Accept values are read as 1 (failure); strict refuses them.
    reject[15] = 9;
    CHECK(decode_ok<server_start>(reject).accept == accept_code::failure);
    CHECK(decode_ec<server_start>(reject, strictness::strict) == errc::bad_value);
    auto mbz = bytes;
    mbz[0] = 1;
    CHECK(decode_ec<server_start>(mbz) == std::error_code{});
    CHECK(decode_ec<server_start>(mbz, strictness::strict) == errc::mbz_not_zero);
    mbz = bytes;
    mbz[47] = 1;
    CHECK(decode_ec<server_start>(mbz, strictness::strict) == errc::mbz_not_zero);

    server_start bad;
    bad.accept = static_cast<accept_code>(6);
    std::vector<std::uint8_t> out(48);
    CHECK(encode(bad, out) == errc::bad_value);
}

TEST_CASE("Request-TW-Session: golden bytes for IPv6 with DSCP and RFC 6038 fields")
{
    request_tw_session r;
    r.ipvn = 6;
    r.sender_port = 0x1234;
    r.receiver_port = 862;
    for (std::size_t i = 0; i < 16; ++i) {
        r.sender_address[i] = static_cast<std::uint8_t>(0x20 + i);
        r.receiver_address[i] = static_cast<std::uint8_t>(0x40 + i);
    }
    r.padding_length = 41;
    r.start_time = {0xEEB59094, 0x00000001};
    r.timeout = ntp_from_duration(std::chrono::milliseconds(2500));
    r.type_p = type_p_from_dscp(46);
    r.octets_to_be_reflected = 0xBEEF;
    r.padding_to_reflect_length = 12;
    const auto bytes = encode_vec(r);
    CHECK(bytes == from_hex("05060000"
                            "00000000"
                            "00000000"
                            "1234035e"
                            "202122232425262728292a2b2c2d2e2f"
                            "404142434445464748494a4b4c4d4e4f"
                            "00000000000000000000000000000000"
                            "00000029"
                            "eeb5909400000001"
                            "0000000280000000"
                            "2e000000"
                            "beef000c"
                            "00000000"
                            "00000000000000000000000000000000"));
    CHECK(decode_ok<request_tw_session>(bytes, strictness::strict) == r);
    check_lengths(r);
}

TEST_CASE("Request-TW-Session: IPv4 addresses, fields TWAMP fixes to zero, rejects")
{
    request_tw_session r;
    r.ipvn = 4;
    r.sender_address = make_address_v4(192, 0, 2, 1);
    r.receiver_address = make_address_v4(198, 51, 100, 7);
    r.receiver_address[10] = 0x99; // beyond the IPv4 address: never written
    auto bytes = encode_vec(r);
    CHECK(bytes[16] == 192);
    CHECK(bytes[19] == 1);
    CHECK(bytes[32] == 198);
    CHECK(bytes[35] == 7);
    CHECK(is_zero(std::span(bytes).subspan(36, 12)));
    auto back = decode_ok<request_tw_session>(bytes);
    CHECK(back.receiver_address == make_address_v4(198, 51, 100, 7));

    SUBCASE("octets after an IPv4 address are ignored, or refused when strict")
    {
        bytes[20] = 0x55;
        CHECK(decode_ok<request_tw_session>(bytes).sender_address == make_address_v4(192, 0, 2, 1));
        CHECK(decode_ec<request_tw_session>(bytes, strictness::strict) == errc::mbz_not_zero);
    }
    SUBCASE("Conf-Sender/Receiver, schedule counts and SID are reported, not rejected")
    {
        bytes[2] = 1;
        bytes[3] = 1;
        bytes[7] = 3;
        bytes[11] = 9;
        bytes[48] = 0x77;
        const auto m = decode_ok<request_tw_session>(bytes, strictness::strict);
        CHECK(m.conf_sender == 1);
        CHECK(m.conf_receiver == 1);
        CHECK(m.schedule_slots == 3);
        CHECK(m.packets == 9);
        CHECK(m.sid[0] == 0x77);
    }
    SUBCASE("wrong command, IPVN, MBZ nibble and trailing MBZ")
    {
        auto b = bytes;
        b[0] = 1;
        CHECK(decode_ec<request_tw_session>(b) == errc::bad_value);
        b = bytes;
        b[1] = 5;
        CHECK(decode_ec<request_tw_session>(b) == errc::bad_value);
        b[1] = 0;
        CHECK(decode_ec<request_tw_session>(b) == errc::bad_value);
        b = bytes;
        b[1] = 0x14; // MBZ nibble set, IPVN 4
        CHECK(decode_ok<request_tw_session>(b).ipvn == 4);
        CHECK(decode_ec<request_tw_session>(b, strictness::strict) == errc::mbz_not_zero);
        b = bytes;
        b[95] = 1;
        CHECK(decode_ec<request_tw_session>(b) == std::error_code{});
        CHECK(decode_ec<request_tw_session>(b, strictness::strict) == errc::mbz_not_zero);
    }
    SUBCASE("encoder refuses an unknown IP version")
    {
        request_tw_session bad;
        bad.ipvn = 5;
        std::vector<std::uint8_t> out(112);
        CHECK(encode(bad, out) == errc::bad_value);
    }
}

TEST_CASE("Accept-Session: golden bytes, round trip, rejects")
{
    accept_session a;
    a.accept = accept_code::ok;
    a.port = 50001;
    a.sid = sid_from_hex("c000020100000001000000020a0b0c0d");
    a.reflected_octets = 0xBEEF;
    a.server_octets = 0x0102;
    a.hmac.fill(0x5A);
    const auto bytes = encode_vec(a);
    CHECK(bytes == from_hex("0000c351"
                            "c000020100000001000000020a0b0c0d"
                            "beef0102"
                            "0000000000000000"
                            "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"));
    CHECK(decode_ok<accept_session>(bytes, strictness::strict) == a);
    check_lengths(a);
    auto b = bytes;
    b[1] = 1;
    CHECK(decode_ec<accept_session>(b) == std::error_code{});
    CHECK(decode_ec<accept_session>(b, strictness::strict) == errc::mbz_not_zero);
    b = bytes;
    b[31] = 1;
    CHECK(decode_ec<accept_session>(b, strictness::strict) == errc::mbz_not_zero);
    b = bytes;
    b[0] = 200;
    CHECK(decode_ok<accept_session>(b).accept == accept_code::failure);
    CHECK(decode_ec<accept_session>(b, strictness::strict) == errc::bad_value);
}

TEST_CASE("Start-Sessions, Start-Ack and Stop-Sessions: golden bytes, round trip, rejects")
{
    start_sessions s;
    s.hmac[0] = 0x99;
    auto bytes = encode_vec(s);
    CHECK(bytes == from_hex("02000000000000000000000000000000"
                            "99000000000000000000000000000000"));
    CHECK(decode_ok<start_sessions>(bytes) == s);
    check_lengths(s);
    bytes[0] = 3;
    CHECK(decode_ec<start_sessions>(bytes) == errc::bad_value);
    bytes[0] = 2;
    bytes[15] = 1;
    CHECK(decode_ec<start_sessions>(bytes, strictness::strict) == errc::mbz_not_zero);

    start_ack a;
    a.accept = accept_code::temporary_limit;
    bytes = encode_vec(a);
    CHECK(bytes == from_hex("05000000000000000000000000000000"
                            "00000000000000000000000000000000"));
    CHECK(decode_ok<start_ack>(bytes) == a);
    check_lengths(a);

    stop_sessions st;
    st.accept = accept_code::ok;
    st.number_of_sessions = 2;
    bytes = encode_vec(st);
    CHECK(bytes == from_hex("03000000000000020000000000000000"
                            "00000000000000000000000000000000"));
    CHECK(decode_ok<stop_sessions>(bytes) == st);
    check_lengths(st);
    st.accept = accept_code::internal_error;
    CHECK(encode_vec(st)[1] == 2);
    bytes[0] = 2;
    CHECK(decode_ec<stop_sessions>(bytes) == errc::bad_value);
    bytes[0] = 3;
    bytes[2] = 1;
    CHECK(decode_ec<stop_sessions>(bytes) == std::error_code{});
    CHECK(decode_ec<stop_sessions>(bytes, strictness::strict) == errc::mbz_not_zero);
}

TEST_CASE("RFC 5938 messages: golden bytes, round trips, N checks")
{
    const auto sid1 = sid_from_hex("0102030405060708090a0b0c0d0e0f10");
    const auto sid2 = sid_from_hex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");

    start_n_sessions sn{{sid1, sid2}, {}};
    auto bytes = encode_vec(sn);
    CHECK(bytes == from_hex("07000000000000000000000000000002"
                            "0102030405060708090a0b0c0d0e0f10"
                            "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
                            "00000000000000000000000000000000"));
    CHECK(decode_ok<start_n_sessions>(bytes) == sn);

    start_n_ack sa{accept_code::temporary_limit, {sid2}, {}};
    bytes = encode_vec(sa);
    CHECK(bytes == from_hex("08050000000000000000000000000001"
                            "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
                            "00000000000000000000000000000000"));
    CHECK(decode_ok<start_n_ack>(bytes) == sa);

    stop_n_sessions pn{{sid1}, {}};
    bytes = encode_vec(pn);
    CHECK(bytes[0] == 9);
    CHECK(bytes[1] == 0); // no Accept in Stop-N-Sessions (RFC 5938 §3.4)
    CHECK(bytes.size() == 48);
    CHECK(decode_ok<stop_n_sessions>(bytes) == pn);
    bytes[1] = 3; // MBZ: ignored unless strict
    CHECK(decode_ok<stop_n_sessions>(bytes) == pn);
    CHECK(decode_ec<stop_n_sessions>(bytes, strictness::strict) == errc::mbz_not_zero);

    stop_n_ack pa{accept_code::ok, {sid1, sid2}, {}};
    pa.hmac.fill(1);
    bytes = encode_vec(pa);
    CHECK(bytes[0] == 10);
    CHECK(bytes.size() == 64);
    CHECK(decode_ok<stop_n_ack>(bytes) == pa);

    SUBCASE("N must match the octets present")
    {
        auto b = encode_vec(sn); // N = 2, 64 octets
        b.resize(48);            // only one SID present
        CHECK(decode_ec<start_n_sessions>(b) == errc::truncated);
        b = encode_vec(sn);
        b.push_back(0);
        CHECK(decode_ec<start_n_sessions>(b) == errc::bad_length);
        b = encode_vec(sn);
        b[15] = 1; // claims one SID but carries two
        CHECK(decode_ec<start_n_sessions>(b) == errc::bad_length);
        b[15] = 0; // N = 0 is never valid
        CHECK(decode_ec<start_n_sessions>(b) == errc::bad_length);
        b[12] = 0xFF; // a huge N is refused before anything is sized from it
        CHECK(decode_ec<start_n_sessions>(b) == errc::bad_length);
        CHECK(decode_ec<start_n_sessions>(std::vector<std::uint8_t>(15)) == errc::truncated);
    }
    SUBCASE("wrong command numbers and Accept values")
    {
        auto b = encode_vec(sn);
        CHECK(decode_ec<stop_n_sessions>(b) == errc::bad_value);
        b = encode_vec(sa);
        b[1] = 77;
        CHECK(decode_ok<start_n_ack>(b).accept == accept_code::failure);
        CHECK(decode_ec<start_n_ack>(b, strictness::strict) == errc::bad_value);
        b[1] = 0;
        b[5] = 1;
        CHECK(decode_ec<start_n_ack>(b, strictness::strict) == errc::mbz_not_zero);
    }
    SUBCASE("encoders refuse N = 0, N above the cap and small buffers")
    {
        std::vector<std::uint8_t> out(4096);
        CHECK(encode(start_n_sessions{}, out) == errc::bad_length);
        CHECK(encode(stop_n_ack{}, out) == errc::bad_length);
        start_n_sessions big;
        big.sids.resize(kMaxSessionsPerNMessage + 1);
        std::vector<std::uint8_t> huge(n_message_size(kMaxSessionsPerNMessage + 1));
        CHECK(encode(big, huge) == errc::bad_length);
        std::vector<std::uint8_t> small(63);
        CHECK(encode(sn, small) == errc::buffer_too_small);
        CHECK(encode(start_n_ack{static_cast<accept_code>(8), {sid1}, {}}, out) == errc::bad_value);
    }
}

TEST_CASE("command_message_size frames every client command and the RFC 5938 Acks")
{
    std::vector<std::uint8_t> block(16, 0);
    std::size_t size = 0;
    const std::pair<std::uint8_t, std::size_t> fixed[] = {{2, 32}, {3, 32}, {5, 112}};
    for (auto [cmd, want] : fixed) {
        block[0] = cmd;
        REQUIRE_FALSE(command_message_size(block, size));
        CHECK(size == want);
        CHECK(peek_command(block) == cmd);
    }
    for (std::uint8_t cmd : {7, 8, 9, 10}) {
        block[0] = cmd;
        block[15] = 3;
        REQUIRE_FALSE(command_message_size(block, size));
        CHECK(size == 32 + 3 * 16);
        block[15] = 0;
        CHECK(command_message_size(block, size) == errc::bad_length);
        wire::store32(block.data() + 12, kMaxSessionsPerNMessage);
        REQUIRE_FALSE(command_message_size(block, size));
        CHECK(size == n_message_size(kMaxSessionsPerNMessage));
        wire::store32(block.data() + 12, kMaxSessionsPerNMessage + 1);
        CHECK(command_message_size(block, size) == errc::bad_length);
        wire::store32(block.data() + 12, 0);
    }
    for (std::uint8_t cmd : {0, 1, 4, 6, 11, 255}) {
        block[0] = cmd;
        CHECK(command_message_size(block, size) == errc::unsupported);
    }
    CHECK(command_message_size(std::span(block).first(15), size) == errc::truncated);
    CHECK(peek_command({}) == 0);
}

TEST_CASE("Type-P Descriptor helpers put the DSCP in the top octet")
{
    CHECK(type_p_from_dscp(46) == 0x2E000000u);
    CHECK(type_p_from_dscp(0) == 0u);
    CHECK(type_p_from_dscp(0xFF) == 0x3F000000u); // only 6 bits exist
    CHECK(dscp_from_type_p(0x2E000000u) == std::optional<std::uint8_t>{46});
    CHECK(dscp_from_type_p(0) == std::optional<std::uint8_t>{0});
    CHECK_FALSE(dscp_from_type_p(0x4000'0000u)); // format 01: PHB ID, not supported
    CHECK_FALSE(dscp_from_type_p(0x2E000001u));
    CHECK_FALSE(dscp_from_type_p(0xB8000000u)); // the TOS-octet form is not a Type-P
    CHECK_FALSE(dscp_from_type_p(0x2Eu));
    CHECK(dscp_from_type_p(0x2Eu, true) == std::optional<std::uint8_t>{46});
    CHECK_FALSE(dscp_from_type_p(0x40u, true));
    CHECK_FALSE(dscp_from_type_p(0x2E00002Eu, true));
}

TEST_CASE("Timeout is an NTP duration without epoch")
{
    CHECK(ntp_from_duration(std::chrono::seconds(2)) == ntp_timestamp{2, 0});
    CHECK(ntp_from_duration(std::chrono::milliseconds(2500)) == ntp_timestamp{2, 0x80000000u});
    CHECK(ntp_from_duration(std::chrono::seconds(-1)) == ntp_timestamp{0, 0});
    CHECK(duration_from_ntp({1, 0x40000000u}) == std::chrono::milliseconds(1250));
    for (auto ns : {nanoseconds{1}, nanoseconds{999'999'999}, nanoseconds{900'000'000'123}})
        CHECK(duration_from_ntp(ntp_from_duration(ns)) == ns);
}

TEST_CASE("make_sid follows RFC 4656 §3.5")
{
    const ntp_timestamp now{0x01020304, 0x05060708};
    const auto v4 = make_sid(4, make_address_v4(10, 1, 2, 3), now, {0xA, 0xB, 0xC, 0xD});
    CHECK(v4 == sid_from_hex("0a01020301020304050607080a0b0c0d"));
    address_bytes v6{};
    for (std::size_t i = 0; i < 16; ++i)
        v6[i] = static_cast<std::uint8_t>(0x30 + i);
    const auto s6 = make_sid(6, v6, now, {1, 2, 3, 4});
    CHECK(s6 == sid_from_hex("3c3d3e3f010203040506070801020304"));
}

TEST_CASE("open_security leaves bytes alone and accepts everything")
{
    open_security sec;
    std::vector<std::uint8_t> blocks(32, 0x42);
    sec.select_mode(mode::unauthenticated);
    CHECK_FALSE(sec.seal(blocks, true));
    CHECK_FALSE(sec.seal(std::span(blocks).first(16), false));
    CHECK_FALSE(sec.open_block(std::span<std::uint8_t, 16>(blocks.data(), 16)));
    CHECK_FALSE(sec.verify(std::span<std::uint8_t, 16>(blocks.data() + 16, 16)));
    CHECK(blocks == std::vector<std::uint8_t>(32, 0x42));
    CHECK(open_security::security_modes == mode::unauthenticated);
}

TEST_CASE("captures of the protected modes: the clear set-up messages round-trip")
{
    // Greeting, Set-Up-Response and Server-Start octets 0..31 are never encrypted (RFC 4656
    // §3.1/§3.4), so they decode in every mode; KeyID "alice" names the shared secret.
    const std::pair<const char*, std::uint32_t> files[] = {
        {TWAMP_TEST_DATA_DIR "/twping-twampd-authenticated.pcap", mode::authenticated},
        {TWAMP_TEST_DATA_DIR "/twping-twampd-encrypted.pcap", mode::encrypted},
        {TWAMP_TEST_DATA_DIR "/twping-twampd-mixed.pcap", mode::mixed},
    };
    for (const auto& file : files) {
        // Named copies, not structured bindings: clang 14 cannot capture those in CAPTURE.
        const char* path = file.first;
        const std::uint32_t want_mode = file.second;
        CAPTURE(path);
        std::vector<std::vector<std::uint8_t>> tcp;
        for (const auto& p : twamp_test::read_pcap(path))
            if (!p.udp && !p.payload.empty()) tcp.push_back(p.payload);
        REQUIRE(tcp.size() >= 3);

        const auto g = decode_ok<server_greeting>(tcp[0], strictness::strict);
        CHECK(g.modes == 0x0F);
        CHECK(g.count == 2048);
        CHECK(encode_vec(g) == tcp[0]);

        const auto s = decode_ok<setup_response>(tcp[1]);
        CHECK(s.mode == want_mode);
        CHECK(std::string(s.key_id.begin(), s.key_id.begin() + 5) == "alice");
        CHECK(is_zero(std::span(s.key_id).subspan(5)));
        CHECK_FALSE(is_zero(s.token));
        CHECK_FALSE(is_zero(s.client_iv));
        CHECK(encode_vec(s) == tcp[1]);

        REQUIRE(tcp[2].size() == kServerStartSize);
        const auto ss = decode_ok<server_start>(tcp[2]); // octets 32..47 are ciphertext here
        CHECK(ss.accept == accept_code::ok);
        CHECK_FALSE(is_zero(ss.server_iv));
    }
}
