// STAMP extension TLVs (twamp/stamp_tlvs.hpp): the octets a sender writes, what a reflector
// fills and flags, and what a sender reads back. Expected octets are written out by hand from
// the figures of RFC 8972 §4.2–4.7 and RFC 9503 §3–4, not computed with the code under test.
#include "twamp/reflector_session.hpp"
#include "twamp/report/json.hpp"
#include "twamp/report/per_packet.hpp"
#include "twamp/report/table.hpp"
#include "twamp/sender_session.hpp"
#include "twamp/stamp_tlvs.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using namespace twamp;
namespace S = twamp::stamp_tlv;
using bytes = std::vector<std::uint8_t>;

namespace {

bytes write(const stamp_tlv_request& r, std::uint32_t s_txc = 0)
{
    bytes out(stamp_tlv_request_size(r));
    std::size_t n = 0;
    REQUIRE_FALSE(write_stamp_tlvs(r, s_txc, out, n));
    CHECK(n == out.size());
    return out;
}

tlv_address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d)
{
    tlv_address x;
    x.octets[0] = a;
    x.octets[1] = b;
    x.octets[2] = c;
    x.octets[3] = d;
    return x;
}

tlv_address v6_2001_db8(std::uint8_t last)
{
    tlv_address x;
    x.v6 = true;
    x.octets[0] = 0x20;
    x.octets[1] = 0x01;
    x.octets[2] = 0x0d;
    x.octets[3] = 0xb8;
    x.octets[15] = last;
    return x;
}

// A context as a reflector at 192.0.2.2:862 sees a request from 198.51.100.7:40000 with DS field
// AF21 + ECT(0) (0x48 | 0x02).
stamp_tlv_context ctx_v4()
{
    stamp_tlv_context c;
    c.source_port = 40000;
    c.destination_port = 862;
    c.source = v4(198, 51, 100, 7);
    c.destination = v4(192, 0, 2, 2);
    c.tos = 0x4A;
    c.sync = S::sync_source::ntp;
    c.t2_method = S::timestamp_method::sw_local;
    c.t3_method = S::timestamp_method::hw_assist;
    c.received = 7;
    c.transmitted = 6;
    return c;
}

bytes tlv(std::uint8_t flags, std::uint8_t type, bytes value)
{
    bytes b{flags, type, static_cast<std::uint8_t>(value.size() >> 8),
            static_cast<std::uint8_t>(value.size())};
    b.insert(b.end(), value.begin(), value.end());
    return b;
}

bytes cat(std::initializer_list<bytes> parts)
{
    bytes b;
    for (const auto& p : parts)
        b.insert(b.end(), p.begin(), p.end());
    return b;
}

bytes zeros(std::size_t n)
{
    return bytes(n, 0);
}

} // namespace

TEST_CASE("sender: each TLV's octets (U set, fields for the reflector zero)")
{
    SUBCASE("Location with the three generic sub-TLVs")
    {
        stamp_tlv_request r;
        r.location = true;
        const bytes want =
            tlv(0x80, 2,
                cat({zeros(4), tlv(0, 1, zeros(8)), tlv(0, 4, zeros(16)), tlv(0, 7, zeros(16))}));
        CHECK(want.size() == 4 + 4 + 12 + 20 + 20);
        CHECK(write(r) == want);
    }
    SUBCASE("Timestamp Information")
    {
        stamp_tlv_request r;
        r.timestamp_info = true;
        CHECK(write(r) == tlv(0x80, 3, zeros(4)));
    }
    SUBCASE("Class of Service: DSCP1 EF (46) in the top six bits, RP 0")
    {
        stamp_tlv_request r;
        r.cos_dscp1 = 46;
        CHECK(write(r) == tlv(0x80, 4, {46 << 2, 0, 0, 0}));
    }
    SUBCASE("Direct Measurement: S_TxC, then two zero reflector counters")
    {
        stamp_tlv_request r;
        r.direct_measurement = true;
        CHECK(write(r, 0x01020304) == tlv(0x80, 5, {1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}));
    }
    SUBCASE("Access Report: ID in the high nibble, Return Code, reserved")
    {
        stamp_tlv_request r;
        r.access = stamp_tlv_request::access_report{1, 2};
        CHECK(write(r) == tlv(0x80, 6, {0x10, 2, 0, 0}));
    }
    SUBCASE("Follow-Up Telemetry: all zero")
    {
        stamp_tlv_request r;
        r.follow_up = true;
        CHECK(write(r) == tlv(0x80, 7, zeros(16)));
    }
    SUBCASE("Destination Node Address, IPv4 and IPv6")
    {
        stamp_tlv_request r;
        r.destination_node = v4(192, 0, 2, 9);
        CHECK(write(r) == tlv(0x80, 9, {192, 0, 2, 9}));
        r.destination_node = v6_2001_db8(1);
        CHECK(write(r) ==
              tlv(0x80, 9, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
    }
    SUBCASE("Return Path: return address and SR-MPLS label stack; SRv6 segment list")
    {
        stamp_tlv_request r;
        stamp_tlv_request::return_path_request rp;
        rp.return_address = v4(203, 0, 113, 5);
        rp.mpls_labels = {0x00010140u, 0x000201FFu}; // label 16 TC 0 S 0 TTL 64; label 32 S 1
        r.return_path = rp;
        CHECK(write(r) ==
              tlv(0x80, 10,
                  cat({tlv(0, 2, {203, 0, 113, 5}), tlv(0, 3, {0, 1, 1, 0x40, 0, 2, 1, 0xFF})})));
        std::array<std::uint8_t, 16> seg{};
        seg[0] = 0xfc;
        seg[15] = 0x42;
        r.return_path->return_address.reset();
        r.return_path->mpls_labels.clear();
        r.return_path->srv6_segments = {seg};
        CHECK(write(r) ==
              tlv(0x80, 10, tlv(0, 4, {0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42})));
    }
    SUBCASE("Return Path: control code")
    {
        stamp_tlv_request r;
        r.return_path = stamp_tlv_request::return_path_request{};
        r.return_path->control_code = 1;
        CHECK(write(r) == tlv(0x80, 10, tlv(0, 1, {0, 0, 0, 1})));
    }
    SUBCASE("Return Path combinations RFC 9503 §4.1 forbids are refused")
    {
        bytes out(200);
        std::size_t n = 0;
        stamp_tlv_request r;
        r.return_path = stamp_tlv_request::return_path_request{};
        CHECK(write_stamp_tlvs(r, 0, out, n) == errc::bad_value); // empty
        r.return_path->control_code = 1;
        r.return_path->return_address = v4(10, 0, 0, 1);
        CHECK(write_stamp_tlvs(r, 0, out, n) == errc::bad_value); // code with an address
        r.return_path->control_code.reset();
        r.return_path->mpls_labels = {1};
        r.return_path->srv6_segments = {std::array<std::uint8_t, 16>{}};
        CHECK(write_stamp_tlvs(r, 0, out, n) == errc::bad_value); // two segment lists
        r.return_path->srv6_segments.clear();
        CHECK_FALSE(write_stamp_tlvs(r, 0, out, n));
    }
    SUBCASE("errors: short buffer, DSCP out of range")
    {
        stamp_tlv_request r;
        r.follow_up = true;
        bytes small(19);
        std::size_t n = 99;
        CHECK(write_stamp_tlvs(r, 0, small, n) == errc::buffer_too_small);
        CHECK(n == 0);
        stamp_tlv_request c;
        c.cos_dscp1 = 64;
        bytes out(8);
        CHECK(write_stamp_tlvs(c, 0, out, n) == errc::bad_value);
    }
}

TEST_CASE("reflector: Location is filled with what the request arrived with")
{
    SUBCASE("IPv4: ports, EUI-64 zero (no MAC on a host), IPv4 destination and source")
    {
        stamp_tlv_request r;
        r.location = true;
        bytes b = write(r);
        const auto out = reflect_stamp_tlvs(b, ctx_v4());
        CHECK(out.count == 1);
        CHECK_FALSE(out.malformed);
        const bytes want = tlv(0, 2,
                               cat({{0x03, 0x5E, 0x9C, 0x40}, // 862, 40000
                                    tlv(0, 3, zeros(8)),
                                    tlv(0, 5, cat({{192, 0, 2, 2}, zeros(12)})),
                                    tlv(0, 8, cat({{198, 51, 100, 7}, zeros(12)}))}));
        CHECK(b == want);
    }
    SUBCASE("IPv6 with a known MAC: EUI-48, IPv6 sub-TLVs")
    {
        auto c = ctx_v4();
        c.source = v6_2001_db8(7);
        c.destination = v6_2001_db8(2);
        c.source_mac = std::array<std::uint8_t, 6>{0x02, 0, 0x5e, 0x10, 0, 1};
        stamp_tlv_request r;
        r.location = true;
        bytes b = write(r);
        reflect_stamp_tlvs(b, c);
        const bytes want =
            tlv(0, 2,
                cat({{0x03, 0x5E, 0x9C, 0x40},
                     tlv(0, 2, {0x02, 0, 0x5e, 0x10, 0, 1, 0, 0}),
                     tlv(0, 6, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}),
                     tlv(0, 9, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7})}));
        CHECK(b == want);
    }
    SUBCASE("policy: report nothing (zeros), still processed")
    {
        stamp_tlv_policy pol;
        pol.report_location = false;
        stamp_tlv_request r;
        r.location = true;
        bytes b = write(r);
        reflect_stamp_tlvs(b, ctx_v4(), pol);
        CHECK(b == tlv(0, 2,
                       cat({zeros(4), tlv(0, 3, zeros(8)), tlv(0, 5, zeros(16)),
                            tlv(0, 8, zeros(16))})));
    }
    SUBCASE("an unknown sub-TLV gets U; a wrong sub-TLV length makes the TLV malformed")
    {
        bytes b = tlv(0x80, 2, cat({zeros(4), tlv(0, 99, {1, 2}), tlv(0, 7, zeros(16))}));
        reflect_stamp_tlvs(b, ctx_v4());
        CHECK(b == tlv(0, 2,
                       cat({{0x03, 0x5E, 0x9C, 0x40},
                            tlv(0x80, 99, {1, 2}),
                            tlv(0, 8, cat({{198, 51, 100, 7}, zeros(12)}))})));
        bytes bad = tlv(0x80, 2, cat({zeros(4), tlv(0, 7, zeros(15))}));
        const auto out = reflect_stamp_tlvs(bad, ctx_v4());
        CHECK(out.malformed);
        CHECK(bad[0] == S::kFlagM);
        bytes short_value = tlv(0x80, 2, {0, 0});
        CHECK(reflect_stamp_tlvs(short_value, ctx_v4()).malformed);
    }
}

TEST_CASE("reflector: Timestamp Information, Class of Service, Direct Measurement")
{
    SUBCASE("Timestamp Information: sync source and methods for T2 and T3")
    {
        bytes b = tlv(0x80, 3, zeros(4));
        reflect_stamp_tlvs(b, ctx_v4());
        CHECK(b == tlv(0, 3, {1, 2, 1, 1})); // NTP, SW local; NTP, HW assist
        bytes bad = tlv(0x80, 3, zeros(3));
        CHECK(reflect_stamp_tlvs(bad, ctx_v4()).malformed);
        CHECK(bad[0] == S::kFlagM);
    }
    SUBCASE("CoS permitted: DSCP2 and ECN as received, RP 0, reply with DSCP1")
    {
        bytes b = tlv(0x80, 4, {46 << 2, 0, 0, 0});
        const auto out = reflect_stamp_tlvs(b, ctx_v4());
        // DSCP1 46, DSCP2 18 (AF21), ECN 2, RP 0: 101110 010010 10 00 -> 0xB9 0x28
        CHECK(b == tlv(0, 4, {0xB9, 0x28, 0, 0}));
        REQUIRE(out.reply_dscp);
        CHECK(*out.reply_dscp == 46);
    }
    SUBCASE("CoS not permitted: RP 1, reply keeps the received DSCP")
    {
        stamp_tlv_policy pol;
        pol.permitted_dscp = ~(1ull << 46);
        bytes b = tlv(0x80, 4, {46 << 2, 0xFF, 0xFF, 0xFF}); // junk in RP and Reserved
        const auto out = reflect_stamp_tlvs(b, ctx_v4(), pol);
        CHECK(b == tlv(0, 4, {0xB9, 0x29, 0, 0}));
        REQUIRE(out.reply_dscp);
        CHECK(*out.reply_dscp == 18);
    }
    SUBCASE("CoS with the DS field unknown and DSCP1 refused: no DSCP decision")
    {
        auto c = ctx_v4();
        c.tos.reset();
        stamp_tlv_policy pol;
        pol.permitted_dscp = 0;
        bytes b = tlv(0x80, 4, {46 << 2, 0, 0, 0});
        CHECK_FALSE(reflect_stamp_tlvs(b, c, pol).reply_dscp);
        CHECK(b == tlv(0, 4, {0xB8, 0x01, 0, 0}));
        bytes bad = tlv(0x80, 4, zeros(5));
        CHECK(reflect_stamp_tlvs(bad, c, pol).malformed);
    }
    SUBCASE("Direct Measurement: S_TxC kept, R_RxC and R_TxC filled")
    {
        bytes b = tlv(0x80, 5, {0, 0, 0, 9, 0xAA, 0xAA, 0xAA, 0xAA, 0, 0, 0, 0});
        reflect_stamp_tlvs(b, ctx_v4());
        CHECK(b == tlv(0, 5, {0, 0, 0, 9, 0, 0, 0, 7, 0, 0, 0, 6}));
        bytes bad = tlv(0x80, 5, zeros(8));
        CHECK(reflect_stamp_tlvs(bad, ctx_v4()).malformed);
    }
}

TEST_CASE("reflector: Access Report, Follow-Up Telemetry")
{
    SUBCASE("Access Report: echoed; an ID other than 1 or 2 is not processed (U)")
    {
        bytes b = tlv(0x80, 6, {0x20, 1, 0, 0});
        reflect_stamp_tlvs(b, ctx_v4());
        CHECK(b == tlv(0, 6, {0x20, 1, 0, 0}));
        bytes other = tlv(0x80, 6, {0x30, 1, 0, 0});
        reflect_stamp_tlvs(other, ctx_v4());
        CHECK(other == tlv(0x80, 6, {0x30, 1, 0, 0}));
        bytes bad = tlv(0x80, 6, {0x10, 1});
        CHECK(reflect_stamp_tlvs(bad, ctx_v4()).malformed);
    }
    SUBCASE("Follow-Up: the previous reply's sequence number, timestamp and method")
    {
        auto c = ctx_v4();
        c.previous = stamp_tlv_context::previous_reply{0x11223344, 0x0102030405060708ull,
                                                       S::timestamp_method::hw_assist};
        bytes b = tlv(0x80, 7, bytes(16, 0xEE)); // a sender's junk is overwritten
        reflect_stamp_tlvs(b, c);
        CHECK(b == tlv(0, 7, {0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0, 0}));
    }
    SUBCASE("Follow-Up: zero without a previous reply, and in stateless mode")
    {
        bytes b = tlv(0x80, 7, bytes(16, 0xEE));
        reflect_stamp_tlvs(b, ctx_v4());
        CHECK(b == tlv(0, 7, zeros(16)));
        auto c = ctx_v4();
        c.stateless = true;
        c.previous = stamp_tlv_context::previous_reply{5, 6, S::timestamp_method::sw_local};
        bytes s = tlv(0x80, 7, zeros(16));
        reflect_stamp_tlvs(s, c);
        CHECK(s == tlv(0, 7, zeros(16)));
    }
    SUBCASE("Follow-Up with a bad length: Sequence Number and Timestamp zeroed, M")
    {
        bytes b = tlv(0x80, 7, bytes(14, 0xEE));
        CHECK(reflect_stamp_tlvs(b, ctx_v4()).malformed);
        CHECK(b == tlv(0x40, 7, cat({zeros(12), {0xEE, 0xEE}})));
    }
}

TEST_CASE("reflector: RFC 9503 Destination Node Address and Return Path")
{
    auto local = [](const tlv_address& a) { return a == v4(192, 0, 2, 2); };
    SUBCASE("Destination Node Address: ours -> U clear and the reply's source; else U")
    {
        bytes b = tlv(0x80, 9, {192, 0, 2, 2});
        auto out = reflect_stamp_tlvs(b, ctx_v4(), {}, local);
        CHECK(b[0] == 0);
        REQUIRE(out.reply_source);
        CHECK(*out.reply_source == v4(192, 0, 2, 2));
        bytes other = tlv(0x80, 9, {192, 0, 2, 3});
        out = reflect_stamp_tlvs(other, ctx_v4(), {}, local);
        CHECK(other[0] == S::kFlagU);
        CHECK_FALSE(out.reply_source);
        bytes bad = tlv(0x80, 9, {192, 0, 2});
        CHECK(reflect_stamp_tlvs(bad, ctx_v4(), {}, local).malformed);
    }
    SUBCASE("Return Path control code 0: no reply; 1: U unless the transport can")
    {
        bytes none = tlv(0x80, 10, tlv(0, 1, {0, 0, 0, 0}));
        auto out = reflect_stamp_tlvs(none, ctx_v4());
        CHECK(out.suppress_reply);
        CHECK(none[0] == 0);
        bytes same = tlv(0x80, 10, tlv(0, 1, {0, 0, 0, 1}));
        out = reflect_stamp_tlvs(same, ctx_v4());
        CHECK_FALSE(out.suppress_reply);
        CHECK(same[0] == S::kFlagU);
        stamp_tlv_policy pol;
        pol.reply_same_link = true;
        bytes same2 = tlv(0x80, 10, tlv(0, 1, {0, 0, 0, 1}));
        reflect_stamp_tlvs(same2, ctx_v4(), pol);
        CHECK(same2[0] == 0);
    }
    SUBCASE("Return Address: honoured only when the policy allows it")
    {
        bytes b = tlv(0x80, 10, tlv(0, 2, {203, 0, 113, 5}));
        auto out = reflect_stamp_tlvs(b, ctx_v4());
        CHECK(b[0] == S::kFlagU);
        CHECK_FALSE(out.reply_to);
        stamp_tlv_policy pol;
        pol.honour_return_address = true;
        bytes c = tlv(0x80, 10, tlv(0, 2, {203, 0, 113, 5}));
        out = reflect_stamp_tlvs(c, ctx_v4(), pol);
        CHECK(c[0] == 0);
        REQUIRE(out.reply_to);
        CHECK(*out.reply_to == v4(203, 0, 113, 5));
    }
    SUBCASE("segment lists cannot be honoured by a host; bad lengths are malformed")
    {
        bytes b = tlv(0x80, 10, tlv(0, 3, {0, 1, 1, 0x40}));
        CHECK_FALSE(reflect_stamp_tlvs(b, ctx_v4()).malformed);
        CHECK(b == tlv(0x80, 10, tlv(0x80, 3, {0, 1, 1, 0x40})));
        bytes bad = tlv(0x80, 10, tlv(0, 3, {0, 1, 1}));
        CHECK(reflect_stamp_tlvs(bad, ctx_v4()).malformed);
        CHECK(bad[0] == S::kFlagM);
        bytes bad6 = tlv(0x80, 10, tlv(0, 4, zeros(20)));
        CHECK(reflect_stamp_tlvs(bad6, ctx_v4()).malformed);
        bytes empty = tlv(0x80, 10, {});
        CHECK(reflect_stamp_tlvs(empty, ctx_v4()).malformed);
    }
    SUBCASE("only the first Return Path TLV is processed")
    {
        bytes b =
            cat({tlv(0x80, 10, tlv(0, 1, {0, 0, 0, 0})), tlv(0x80, 10, tlv(0, 1, {0, 0, 0, 1}))});
        const auto out = reflect_stamp_tlvs(b, ctx_v4());
        CHECK(out.suppress_reply);
        CHECK(out.count == 2);
        CHECK(b[0] == 0);
        CHECK(b[12] == 0x80); // the second one is not processed: U
    }
}

TEST_CASE("reflector: flags (RFC 8972 §4)")
{
    SUBCASE("understood TLVs leave with U, M, I and reserved bits clear; unknown ones with U")
    {
        bytes b = cat({tlv(0x9F, 1, zeros(3)), tlv(0x00, 200, {1, 2, 3}), tlv(0x80, 3, zeros(4))});
        const auto out = reflect_stamp_tlvs(b, ctx_v4());
        CHECK(out.count == 3);
        CHECK(b == cat({tlv(0, 1, zeros(3)), tlv(0x80, 200, {1, 2, 3}), tlv(0, 3, {1, 2, 1, 1})}));
    }
    SUBCASE("the first malformed TLV gets M; what follows is copied untouched")
    {
        bytes b = cat({tlv(0x80, 4, zeros(3)), tlv(0x80, 3, zeros(4))});
        const auto out = reflect_stamp_tlvs(b, ctx_v4());
        CHECK(out.malformed);
        CHECK(b == cat({tlv(0x40, 4, zeros(3)), tlv(0x80, 3, zeros(4))}));
    }
    SUBCASE("a TLV running past the packet gets M")
    {
        bytes b = cat({tlv(0x80, 3, zeros(4)), {0x80, 5, 0, 12, 0, 0}});
        const auto out = reflect_stamp_tlvs(b, ctx_v4());
        CHECK(out.malformed);
        CHECK(b == cat({tlv(0, 3, {1, 2, 1, 1}), {0x40, 5, 0, 12, 0, 0}}));
    }
    SUBCASE("integrity failure: every TLV gets I, nothing is filled")
    {
        auto c = ctx_v4();
        c.integrity_failed = true;
        const bytes in = cat({tlv(0x80, 3, zeros(4)), tlv(0x80, 5, zeros(12))});
        bytes b = in;
        reflect_stamp_tlvs(b, c);
        CHECK(b == cat({tlv(0xA0, 3, zeros(4)), tlv(0xA0, 5, zeros(12))}));
        // The authenticated transport marks I in the request: the same outcome.
        bytes marked = cat({tlv(0xA0, 3, zeros(4)), tlv(0x80, 5, zeros(12))});
        reflect_stamp_tlvs(marked, ctx_v4());
        CHECK(marked == cat({tlv(0xA0, 3, zeros(4)), tlv(0xA0, 5, zeros(12))}));
    }
    SUBCASE("a zero header ends the walk: the rest is padding")
    {
        bytes b = cat({tlv(0x80, 3, zeros(4)), zeros(8)});
        CHECK(reflect_stamp_tlvs(b, ctx_v4()).count == 1);
        CHECK(b == cat({tlv(0, 3, {1, 2, 1, 1}), zeros(8)}));
    }
}

TEST_CASE("sender reads back what a reflector filled")
{
    stamp_tlv_request r;
    r.location = true;
    r.timestamp_info = true;
    r.cos_dscp1 = 10;
    r.direct_measurement = true;
    r.access = stamp_tlv_request::access_report{2, 1};
    r.follow_up = true;
    r.destination_node = v4(192, 0, 2, 2);
    r.return_path = stamp_tlv_request::return_path_request{};
    r.return_path->return_address = v4(198, 51, 100, 7);
    bytes b = write(r, 41);
    auto c = ctx_v4();
    c.previous =
        stamp_tlv_context::previous_reply{5, 0xABCDEF0012345678ull, S::timestamp_method::sw_local};
    stamp_tlv_policy pol;
    pol.honour_return_address = true;
    const auto out =
        reflect_stamp_tlvs(b, c, pol, [](const tlv_address& a) { return a == v4(192, 0, 2, 2); });
    CHECK(out.count == 8);
    CHECK_FALSE(out.malformed);
    const auto rep = read_stamp_tlvs(b);
    CHECK(rep.count == 8);
    CHECK(rep.unrecognised == 0);
    CHECK_FALSE(rep.malformed);
    REQUIRE(rep.location);
    CHECK(rep.location->destination_port == 862);
    CHECK(rep.location->source_port == 40000);
    REQUIRE(rep.location->source);
    CHECK(*rep.location->source == v4(198, 51, 100, 7));
    REQUIRE(rep.location->destination);
    CHECK(*rep.location->destination == v4(192, 0, 2, 2));
    REQUIRE(rep.location->source_mac);
    CHECK_FALSE(rep.location->eui48);
    REQUIRE(rep.timestamps);
    CHECK(rep.timestamps->sync_in == 1);
    CHECK(rep.timestamps->method_out == 1);
    REQUIRE(rep.cos);
    CHECK(rep.cos->dscp1 == 10);
    CHECK(rep.cos->dscp2 == 18);
    CHECK(rep.cos->ecn == 2);
    CHECK(rep.cos->rp == 0);
    REQUIRE(rep.direct);
    CHECK(rep.direct->sender_tx == 41);
    CHECK(rep.direct->reflector_rx == 7);
    CHECK(rep.direct->reflector_tx == 6);
    REQUIRE(rep.access);
    CHECK(rep.access->id == 2);
    CHECK(rep.access->return_code == 1);
    REQUIRE(rep.follow_up);
    CHECK(rep.follow_up->seq == 5);
    CHECK(rep.follow_up->timestamp == 0xABCDEF0012345678ull);
    CHECK(rep.follow_up->method == 2);
    REQUIRE(rep.destination_node);
    CHECK(*rep.destination_node == v4(192, 0, 2, 2));
    REQUIRE(rep.return_path);
    REQUIRE(rep.return_path->return_address);
    CHECK(*rep.return_path->return_address == v4(198, 51, 100, 7));
}

TEST_CASE("sender: U is skipped, M stops, I discards everything (RFC 8972 §4)")
{
    const bytes ts = tlv(0, 3, {1, 2, 1, 2});
    const bytes cos = tlv(0, 4, {0x28, 0x00, 0, 0});
    auto rep = read_stamp_tlvs(cat({tlv(0x80, 5, zeros(12)), ts}));
    CHECK(rep.unrecognised == 1);
    CHECK_FALSE(rep.direct);
    CHECK(rep.timestamps);
    rep = read_stamp_tlvs(cat({tlv(0x40, 5, zeros(12)), ts}));
    CHECK(rep.malformed);
    CHECK_FALSE(rep.timestamps);
    rep = read_stamp_tlvs(cat({ts, tlv(0x20, 4, {0x28, 0, 0, 0})}));
    CHECK(rep.integrity_failed);
    CHECK_FALSE(rep.timestamps);
    CHECK_FALSE(rep.cos);
    rep = read_stamp_tlvs(cat({ts, cos, {0, 5, 0, 12, 0}}));
    CHECK(rep.malformed);
    CHECK(rep.timestamps);
    CHECK(rep.cos);
    // A reflector that clears U on a TLV with a length wrong for its type: stop there.
    rep = read_stamp_tlvs(cat({tlv(0, 4, zeros(5)), ts}));
    CHECK(rep.malformed);
    CHECK_FALSE(rep.timestamps);
}

TEST_CASE("Return Path sub-TLVs read back, and trailing junk in Location is malformed")
{
    bytes b = tlv(0, 10,
                  cat({tlv(0, 3, {0, 1, 1, 0x40, 0, 2, 1, 0xFF}),
                       tlv(0, 4, cat({{0xfc}, zeros(14), {0x42}})), tlv(0, 2, {10, 0, 0, 1})}));
    auto rep = read_stamp_tlvs(b);
    REQUIRE(rep.return_path);
    CHECK(rep.return_path->mpls_labels == std::vector<std::uint32_t>{0x00010140u, 0x000201FFu});
    REQUIRE(rep.return_path->srv6_segments.size() == 1);
    CHECK(rep.return_path->srv6_segments[0][0] == 0xfc);
    CHECK(rep.return_path->srv6_segments[0][15] == 0x42);
    REQUIRE(rep.return_path->return_address);
    CHECK(*rep.return_path->return_address == v4(10, 0, 0, 1));
    rep = read_stamp_tlvs(tlv(0, 2, cat({zeros(4), tlv(0, 3, zeros(8)), {0, 0}})));
    CHECK(rep.malformed);
    CHECK_FALSE(rep.location);
}

TEST_CASE("session_sender: probes carry the requested TLVs; replies' TLVs are read and summed")
{
    sender_config cfg;
    cfg.format = test_format::stamp;
    cfg.ssid = 7;
    cfg.tlvs.timestamp_info = true;
    cfg.tlvs.cos_dscp1 = 46;
    cfg.tlvs.direct_measurement = true;
    session_sender s(cfg);
    bytes probe(84);
    // A Destination Node Address needs an SSID (RFC 9503 §3).
    sender_config no_ssid = cfg;
    no_ssid.ssid = 0;
    no_ssid.tlvs.destination_node = v4(192, 0, 2, 2);
    session_sender lone(no_ssid);
    bytes big(200);
    CHECK(lone.make_probe(nanoseconds{1'000'000'000}, 200, big) == 0);
    // 44 + 8 + 8 + 16 = 76 octets of base and TLVs; 60 cannot hold them: nothing is recorded.
    CHECK(s.make_probe(nanoseconds{1'000'000'000}, 60, probe) == 0);
    CHECK(s.next_sequence() == 0);
    REQUIRE(s.make_probe(nanoseconds{1'000'000'000}, 84, probe) == 84);
    const bytes want_tlvs =
        cat({tlv(0x80, 3, zeros(4)), tlv(0x80, 4, {46 << 2, 0, 0, 0}),
             tlv(0x80, 5, {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}), tlv(0, 1, zeros(4))});
    CHECK(bytes(probe.begin() + 44, probe.end()) == want_tlvs);
    // 78 octets would leave 2 after the TLVs, too few for a padding TLV: refused. 76: no
    // padding at all.
    bytes probe2(78);
    CHECK(s.make_probe(nanoseconds{1'000'000'000}, 78, probe2) == 0);
    probe2.resize(76);
    REQUIRE(s.make_probe(nanoseconds{1'000'000'000}, 76, probe2) == 76);
    CHECK(probe2[44 + 16 + 4 + 3] == 2); // S_TxC of the second probe

    // The reply a reflector that processes TLVs builds for the first probe.
    reflector_packet rp;
    rp.seq = 0;
    rp.sender_seq = 0;
    rp.ssid = 7;
    rp.timestamp = to_ntp(nanoseconds{1'000'100'000}).to_u64();
    rp.receive_timestamp = to_ntp(nanoseconds{1'000'050'000}).to_u64();
    rp.sender_ttl = 255;
    bytes reply(84);
    REQUIRE_FALSE(encode_reflector_base(rp, test_format::stamp, reply));
    std::copy(probe.begin() + 44, probe.end(), reply.begin() + 44);
    auto ctx = ctx_v4();
    stamp_tlv_policy pol;
    pol.permitted_dscp = 0; // refuse: RP 1
    reflect_stamp_tlvs(std::span(reply).subspan(44), ctx, pol);
    const auto r = s.on_reply(reply, nanoseconds{1'000'200'000}, 64);
    CHECK(r.status == reply_status::sample);
    REQUIRE(r.tlvs);
    REQUIRE(r.tlvs->cos);
    CHECK(r.tlvs->cos->dscp2 == 18);
    CHECK(r.tlvs->cos->rp == 1);
    REQUIRE(r.tlvs->direct);
    CHECK(r.tlvs->direct->sender_tx == 1);
    CHECK(r.tlvs->direct->reflector_rx == 7);
    const auto& t = s.stats().tlv;
    CHECK(t.replies == 1);
    CHECK(t.cos_reverse_refused == 1);
    CHECK(t.unrecognised == 0);
    REQUIRE(t.timestamps);
    CHECK(t.timestamps->method_out == 1);
    REQUIRE(t.direct);
    CHECK(t.direct->reflector_tx == 6);

    // A reflector without TLV support copies them back: U everywhere, nothing learnt.
    bytes plain(84);
    rp.seq = 1;
    rp.sender_seq = 1;
    REQUIRE_FALSE(encode_reflector_base(rp, test_format::stamp, plain));
    std::copy(probe2.begin() + 44, probe2.end(), plain.begin() + 44);
    plain.resize(76);
    const auto r2 = s.on_reply(plain, nanoseconds{1'000'200'000}, 64);
    REQUIRE(r2.tlvs);
    CHECK(r2.tlvs->unrecognised == 3);
    CHECK(s.stats().tlv.replies == 2);
    CHECK(s.stats().tlv.unrecognised == 3);
}

TEST_CASE("session_reflector: TLVs processed per session (counters, follow-up, no-reply)")
{
    reflector_config rc;
    rc.format = reflector_format::stamp;
    session_reflector r(rc);
    peer_key from;
    from.addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 198, 51, 100, 7};
    from.port = 40000;
    stamp_tlv_request req;
    req.location = true;
    req.cos_dscp1 = 46;
    req.direct_measurement = true;
    req.follow_up = true;
    const bytes tlvs = write(req, 1);
    bytes request(44 + tlvs.size());
    request[15] = 9; // SSID 9
    std::copy(tlvs.begin(), tlvs.end(), request.begin() + 44);
    reflector_rx_info info;
    info.destination = v4(192, 0, 2, 2);
    info.destination_port = 862;
    info.tos = 0x4A;
    // Offsets in the reply's TLV area: Location 4+4+12+20+20 = 60, CoS 8, DM 16, Follow-Up 20.
    constexpr std::size_t loc = 44, cos = loc + 60, dm = cos + 8, fu = dm + 16;

    bytes reply(request.size());
    stamp_tlv_outcome out;
    REQUIRE(r.reflect(request, from, nanoseconds{5'000'000'000}, 255, reply, &info, &out) ==
            request.size());
    REQUIRE(out.reply_dscp);
    CHECK(*out.reply_dscp == 46);
    CHECK(bytes(reply.begin() + loc, reply.begin() + loc + 8) ==
          bytes{0, 2, 0, 56, 0x03, 0x5E, 0x9C, 0x40});
    CHECK(bytes(reply.begin() + loc + 40, reply.begin() + loc + 44) == bytes{0, 8, 0, 16});
    CHECK(bytes(reply.begin() + loc + 44, reply.begin() + loc + 48) == bytes{198, 51, 100, 7});
    CHECK(bytes(reply.begin() + dm + 8, reply.begin() + dm + 16) ==
          bytes{0, 0, 0, 1, 0, 0, 0, 1}); // R_RxC 1, R_TxC 1
    CHECK(bytes(reply.begin() + fu, reply.begin() + fu + 20) == tlv(0, 7, zeros(16)));

    // The reply left at T3; the next reply of the session reports it.
    r.note_sent(from, 9, 0x0A0B0C0D01020304ull, S::timestamp_method::sw_local);
    REQUIRE(r.reflect(request, from, nanoseconds{6'000'000'000}, 255, reply, &info, &out) ==
            request.size());
    CHECK(bytes(reply.begin() + dm + 8, reply.begin() + dm + 16) == bytes{0, 0, 0, 2, 0, 0, 0, 2});
    CHECK(bytes(reply.begin() + fu, reply.begin() + fu + 20) ==
          tlv(0, 7, {0, 0, 0, 0, 0x0A, 0x0B, 0x0C, 0x0D, 1, 2, 3, 4, 2, 0, 0, 0}));

    // Another SSID from the same address and port is another session: its own counters.
    bytes other = request;
    other[15] = 10;
    REQUIRE(r.reflect(other, from, nanoseconds{6'100'000'000}, 255, reply, &info, &out) ==
            request.size());
    CHECK(bytes(reply.begin() + dm + 8, reply.begin() + dm + 16) == bytes{0, 0, 0, 1, 0, 0, 0, 1});

    // Return Path Control Code 0: nobody is answered, and that is counted.
    stamp_tlv_request none;
    none.return_path = stamp_tlv_request::return_path_request{};
    none.return_path->control_code = 0;
    const bytes nt = write(none);
    bytes quiet(44 + nt.size());
    std::copy(nt.begin(), nt.end(), quiet.begin() + 44);
    CHECK(r.reflect(quiet, from, nanoseconds{7'000'000'000}, 255, reply) == 0);
    CHECK(r.counters().no_reply_requested == 1);
    CHECK(r.counters().reflected == 3);
}

TEST_CASE("addresses in text (RFC 5952) and the TLV summary in the reports")
{
    auto v6 = [](std::array<std::uint16_t, 8> g) {
        tlv_address a;
        a.v6 = true;
        for (std::size_t i = 0; i < 8; ++i) {
            a.octets[2 * i] = static_cast<std::uint8_t>(g[i] >> 8);
            a.octets[2 * i + 1] = static_cast<std::uint8_t>(g[i] & 0xFF);
        }
        return a;
    };
    CHECK(to_string(v4(192, 0, 2, 33)) == "192.0.2.33");
    CHECK(to_string(v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1})) == "2001:db8::1");
    CHECK(to_string(v6({0, 0, 0, 0, 0, 0, 0, 1})) == "::1");
    CHECK(to_string(v6({0, 0, 0, 0, 0, 0, 0, 0})) == "::");
    CHECK(to_string(v6({1, 0, 0, 0, 0, 0, 0, 0})) == "1::");
    CHECK(to_string(v6({0x2001, 0xdb8, 0, 1, 1, 1, 1, 1})) == "2001:db8:0:1:1:1:1:1");
    CHECK(to_string(v6({0x2001, 0, 0, 1, 0, 0, 0, 1})) == "2001:0:0:1::1");
    CHECK(to_string(v6({0x2001, 0xdb8, 0, 0, 1, 0, 0, 1})) == "2001:db8::1:0:0:1");
    CHECK(to_string(v6({0xfe80, 0, 0, 0, 0xa, 0xbc, 0xdef, 0xffff})) == "fe80::a:bc:def:ffff");

    session_stats s;
    stamp_tlv_report r;
    r.location = stamp_tlv_report::location_info{
        862, 40000, v4(192, 0, 2, 2), v4(198, 51, 100, 7), std::nullopt, false};
    r.cos = stamp_tlv_report::cos_info{46, 18, 2, 1};
    r.direct = stamp_tlv_report::direct_info{10, 9, 9};
    r.follow_up = stamp_tlv_report::follow_up_info{3, 12345, 2};
    s.tlv.add(r);
    r.location->source_port = 40001; // a NAT re-mapping
    r.unrecognised = 1;
    s.tlv.add(r);
    CHECK(s.tlv.location_changes == 1);
    CHECK(s.tlv.cos_reverse_refused == 2);
    CHECK(s.tlv.follow_ups == 2);
    const auto j = report::tlvs_json(s.tlv);
    CHECK(j["replies"] == 2);
    CHECK(j["unrecognised"] == 1);
    CHECK(j["location"]["source"] == "198.51.100.7");
    CHECK(j["location"]["source_port"] == 40001);
    CHECK(j["location"]["destination"] == "192.0.2.2");
    CHECK(j["location"]["changes"] == 1);
    CHECK(j["class_of_service"]["dscp_at_reflector"] == 18);
    CHECK(j["class_of_service"]["reverse_refused"] == 2);
    CHECK(j["direct_measurement"]["reflector_rx"] == 9);
    CHECK(j["timestamp_info"].is_null());
    CHECK(j["destination_node"].is_null());
    CHECK(report::tlvs_json(stamp_tlv_stats{}).is_null());
    const std::string t = report::tlv_lines(s.tlv);
    CHECK(t.find("Location: the reflector saw 198.51.100.7:40001 -> 192.0.2.2:862 (changed 1 "
                 "times)") != std::string::npos);
    CHECK(t.find("reply DSCP 46 refused 2 times") != std::string::npos);
    CHECK(report::tlv_lines(stamp_tlv_stats{}).empty());
}

// ---- RFC 9534 Micro-session ID (type 11)

TEST_CASE("Micro-session ID: sender octets, reflector fill, U, M and the member-link check")
{
    stamp_tlv_request r;
    r.micro_session = stamp_tlv_request::micro_session_request{0x1234, 0};
    CHECK(write(r) == tlv(0x80, 11, {0x12, 0x34, 0, 0}));
    r.micro_session->reflector_id = 7;
    CHECK(write(r) == tlv(0x80, 11, {0x12, 0x34, 0, 7}));

    stamp_tlv_policy pol;
    pol.micro_session_id = 7;
    SUBCASE("the reflector keeps the Sender ID and fills its own")
    {
        bytes b = tlv(0x80, 11, {0x12, 0x34, 0, 0});
        const auto out = reflect_stamp_tlvs(b, ctx_v4(), pol);
        CHECK_FALSE(out.micro_session_mismatch);
        CHECK(b == tlv(0, 11, {0x12, 0x34, 0, 7}));
        bytes named = tlv(0x80, 11, {0x12, 0x34, 0, 7}); // names this member: fine
        CHECK_FALSE(reflect_stamp_tlvs(named, ctx_v4(), pol).micro_session_mismatch);
        CHECK(named == tlv(0, 11, {0x12, 0x34, 0, 7}));
    }
    SUBCASE("a Reflector ID naming another member link: the request is for someone else")
    {
        bytes b = tlv(0x80, 11, {0x12, 0x34, 0, 9});
        CHECK(reflect_stamp_tlvs(b, ctx_v4(), pol).micro_session_mismatch);
    }
    SUBCASE("no member-link ID configured: not supported, U, value as received")
    {
        bytes b = tlv(0x80, 11, {0x12, 0x34, 0, 9});
        const auto out = reflect_stamp_tlvs(b, ctx_v4());
        CHECK_FALSE(out.micro_session_mismatch);
        CHECK(b == tlv(0x80, 11, {0x12, 0x34, 0, 9}));
    }
    SUBCASE("truncated and overlong: M, processing stops")
    {
        bytes shorter = cat({tlv(0x80, 11, {0x12, 0x34, 0}), tlv(0x80, 3, zeros(4))});
        CHECK(reflect_stamp_tlvs(shorter, ctx_v4(), pol).malformed);
        CHECK(shorter == cat({tlv(0x40, 11, {0x12, 0x34, 0}), tlv(0x80, 3, zeros(4))}));
        bytes longer = tlv(0x80, 11, {0x12, 0x34, 0, 0, 0});
        CHECK(reflect_stamp_tlvs(longer, ctx_v4(), pol).malformed);
        CHECK(longer == tlv(0x40, 11, {0x12, 0x34, 0, 0, 0}));
        bytes past = {0x80, 11, 0, 4, 0x12, 0x34};
        CHECK(reflect_stamp_tlvs(past, ctx_v4(), pol).malformed);
        CHECK(past == bytes{0x40, 11, 0, 4, 0x12, 0x34});
    }
    SUBCASE("the sender reads both IDs back and counts replies for another member link")
    {
        const auto rep = read_stamp_tlvs(tlv(0, 11, {0x12, 0x34, 0, 7}));
        REQUIRE(rep.micro_session);
        CHECK(rep.micro_session->sender_id == 0x1234);
        CHECK(rep.micro_session->reflector_id == 7);
        CHECK(read_stamp_tlvs(tlv(0, 11, {0x12, 0x34, 0})).malformed);
        CHECK_FALSE(read_stamp_tlvs(tlv(0x80, 11, {0x12, 0x34, 0, 0})).micro_session);

        stamp_tlv_stats st;
        const stamp_tlv_request::micro_session_request sent{0x1234, 0};
        st.add(rep, sent);
        CHECK(st.micro_session_mismatch == 0);
        st.add(read_stamp_tlvs(tlv(0, 11, {0x12, 0x35, 0, 7})), sent); // not our Sender ID
        CHECK(st.micro_session_mismatch == 1);
        const stamp_tlv_request::micro_session_request named{0x1234, 8};
        st.add(rep, named); // Reflector ID 7, we named 8
        CHECK(st.micro_session_mismatch == 2);
        REQUIRE(st.micro_session);
        CHECK(st.micro_session->reflector_id == 7);
    }
}

// ---- Reflected Test Packet Control (type 12, draft-ietf-ippm-asymmetrical-pkts)

namespace {

stamp_tlv_policy rc_on()
{
    stamp_tlv_policy p;
    p.reflected_control.enabled = true;
    p.reflected_control.max_replies = 4;
    p.reflected_control.max_reply_octets = 1472;
    p.reflected_control.max_octets_per_second = 0;
    return p;
}

// A reply of 64 octets whose TLVs end at 64, in a buffer of 2048.
stamp_tlv_context rc_ctx()
{
    auto c = ctx_v4();
    c.reply_len = 64;
    c.tlvs_end = 64;
    c.reply_room = 2048;
    return c;
}

reflected_control_decision decide(std::uint16_t len, std::uint16_t count,
                                  stamp_tlv_context c = rc_ctx(), stamp_tlv_policy p = rc_on())
{
    return decide_reflected_control({len, count, 1000, false}, c, p.reflected_control);
}

} // namespace

TEST_CASE("Reflected Test Packet Control: octets, off by default (U), M, C")
{
    stamp_tlv_request r;
    r.reflected_control = reflected_control_request{1500, 4, 1'000'000, false};
    const bytes sent = tlv(0x80, 12, {0x05, 0xDC, 0, 4, 0x00, 0x0F, 0x42, 0x40});
    CHECK(write(r) == sent);

    SUBCASE("off by default: not supported, U, nothing for the transport to do")
    {
        bytes b = sent;
        const auto out = reflect_stamp_tlvs(b, rc_ctx());
        CHECK_FALSE(out.reflected_control);
        CHECK(b == tlv(0x80, 12, {0x05, 0xDC, 0, 4, 0x00, 0x0F, 0x42, 0x40}));
    }
    SUBCASE("on: decided, fields back as received, C clear when exact")
    {
        bytes b = tlv(0x80, 12, {0, 200, 0, 3, 0, 0, 0x03, 0xE8});
        const auto out = reflect_stamp_tlvs(b, rc_ctx(), rc_on());
        REQUIRE(out.reflected_control);
        CHECK(out.reflected_control->count == 3);
        CHECK(out.reflected_control->reply_len == 200);
        CHECK(out.reflected_control->interval_ns == 1000);
        CHECK(out.reflected_control->exact);
        CHECK(b == tlv(0, 12, {0, 200, 0, 3, 0, 0, 0x03, 0xE8}));
        // Clamped (1500 > 1472, 4 > 2): C, the request's fields unchanged.
        auto p = rc_on();
        p.reflected_control.max_replies = 2;
        bytes c = sent;
        const auto o2 = reflect_stamp_tlvs(c, rc_ctx(), p);
        REQUIRE(o2.reflected_control);
        CHECK(o2.reflected_control->count == 2);
        CHECK(o2.reflected_control->reply_len == 1472);
        CHECK(c == tlv(0x10, 12, {0x05, 0xDC, 0, 4, 0x00, 0x0F, 0x42, 0x40}));
        // Only the first one counts; a second one gets U.
        bytes two = cat({tlv(0x80, 12, {0, 0, 0, 2, 0, 0, 0, 0}), tlv(0x80, 12, zeros(8))});
        const auto o3 = reflect_stamp_tlvs(two, rc_ctx(), rc_on());
        REQUIRE(o3.reflected_control);
        CHECK(o3.reflected_control->count == 2);
        CHECK(two == cat({tlv(0, 12, {0, 0, 0, 2, 0, 0, 0, 0}), tlv(0x80, 12, zeros(8))}));
    }
    SUBCASE("truncated: M; sub-TLVs that overrun: M")
    {
        bytes shorter = tlv(0x80, 12, {0, 200, 0, 3, 0, 0, 0});
        CHECK(reflect_stamp_tlvs(shorter, rc_ctx(), rc_on()).malformed);
        CHECK(shorter == tlv(0x40, 12, {0, 200, 0, 3, 0, 0, 0}));
        bytes junk = tlv(0x80, 12, {0, 200, 0, 3, 0, 0, 0, 0, 0, 11, 0, 8, 1, 2});
        const auto out = reflect_stamp_tlvs(junk, rc_ctx(), rc_on());
        CHECK(out.malformed);
        CHECK_FALSE(out.reflected_control);
        CHECK(junk[0] == 0x40);
    }
    SUBCASE("with (well-formed) Address Group sub-TLVs: one ordinary reply, C, sub-TLVs U")
    {
        bytes b = tlv(0x80, 12, {0, 200, 0, 3, 0, 0, 0, 0, 0, 11, 0, 2, 24, 0});
        const auto out = reflect_stamp_tlvs(b, rc_ctx(), rc_on());
        REQUIRE(out.reflected_control);
        CHECK(out.reflected_control->count == 1);
        CHECK(out.reflected_control->reply_len == 64);
        CHECK(b == tlv(0x10, 12, {0, 200, 0, 3, 0, 0, 0, 0, 0x80, 11, 0, 2, 24, 0}));
    }
    SUBCASE("the sender reads what was asked and whether it was honoured exactly")
    {
        const auto exact = read_stamp_tlvs(tlv(0, 12, {0, 200, 0, 3, 0, 0, 0x03, 0xE8}));
        REQUIRE(exact.reflected_control);
        CHECK(exact.reflected_control->length == 200);
        CHECK(exact.reflected_control->count == 3);
        CHECK(exact.reflected_control->interval_ns == 1000);
        CHECK(exact.reflected_control->exact);
        const auto clamped = read_stamp_tlvs(tlv(0x10, 12, {0, 200, 0, 3, 0, 0, 0x03, 0xE8}));
        REQUIRE(clamped.reflected_control);
        CHECK_FALSE(clamped.reflected_control->exact);
        CHECK(read_stamp_tlvs(tlv(0, 12, zeros(7))).malformed);
        CHECK_FALSE(read_stamp_tlvs(tlv(0x80, 12, zeros(8))).reflected_control); // refused
        stamp_tlv_stats st;
        st.add(exact);
        st.add(clamped);
        CHECK(st.reflected_control_clamped == 1);
    }
}

TEST_CASE("Reflected Test Packet Control: the decision and its caps")
{
    SUBCASE("count: 0 and 1 are one reply; more up to max_replies, beyond it clamped")
    {
        auto d = decide(0, 0);
        CHECK(d.count == 1);
        CHECK(d.reply_len == 64);
        CHECK(d.exact);
        CHECK(d.cost == 0);
        d = decide(0, 3);
        CHECK(d.count == 3);
        CHECK(d.exact);
        CHECK(d.cost == 3 * 64);
        CHECK(d.interval_ns == 1000);
        d = decide(0, 10);
        CHECK(d.count == 4);
        CHECK_FALSE(d.exact);
    }
    SUBCASE("length: longer by an Extra Padding TLV; shorter cannot be; capped")
    {
        auto d = decide(1000, 2);
        CHECK(d.reply_len == 1000);
        CHECK(d.exact);
        CHECK(d.cost == 2000);
        d = decide(64, 1); // the usual length
        CHECK(d.reply_len == 64);
        CHECK(d.exact);
        CHECK(d.cost == 0);
        d = decide(66, 1); // 2 octets more leave no room for a TLV header: 4 more
        CHECK(d.reply_len == 68);
        CHECK_FALSE(d.exact);
        d = decide(40, 1);
        CHECK(d.reply_len == 64);
        CHECK_FALSE(d.exact);
        d = decide(2000, 1);
        CHECK(d.reply_len == 1472);
        CHECK_FALSE(d.exact);
        auto small = rc_ctx();
        small.reply_room = 100;
        d = decide(1000, 1, small);
        CHECK(d.reply_len == 100);
        auto p = rc_on();
        p.reflected_control.max_reply_octets = 50; // below the usual reply: no growth at all
        d = decide(1000, 1, rc_ctx(), p);
        CHECK(d.reply_len == 64);
        CHECK_FALSE(d.exact);
        // Usual reply 70 (a minimum length) but TLVs end at 68: 71 needs 72.
        auto padded = rc_ctx();
        padded.reply_len = 70;
        padded.tlvs_end = 68;
        d = decide(71, 1, padded);
        CHECK(d.reply_len == 72);
        CHECK_FALSE(d.exact);
        d = decide(80, 1, padded);
        CHECK(d.reply_len == 80);
        CHECK(d.exact);
    }
    SUBCASE("no amplification (strict size): one reply of the usual length")
    {
        auto c = rc_ctx();
        c.no_amplification = true;
        const auto d = decide(1000, 4, c);
        CHECK(d.count == 1);
        CHECK(d.reply_len == 64);
        CHECK_FALSE(d.exact);
        CHECK(d.cost == 0);
    }
    SUBCASE("the session's budget pays for the replies, or one ordinary reply")
    {
        auto c = rc_ctx();
        c.reflected_budget = 5000;
        auto d = decide(1000, 4, c);
        CHECK(d.count == 4);
        CHECK(d.exact);
        CHECK(d.cost == 4000);
        c.reflected_budget = 2500;
        d = decide(1000, 4, c);
        CHECK(d.count == 2);
        CHECK_FALSE(d.exact);
        CHECK(d.cost == 2000);
        c.reflected_budget = 999;
        d = decide(1000, 4, c);
        CHECK(d.count == 1);
        CHECK(d.reply_len == 64);
        CHECK_FALSE(d.exact);
        CHECK(d.cost == 0);
        c.reflected_budget = 0;
        d = decide(0, 1, c); // an ordinary request costs nothing
        CHECK(d.count == 1);
        CHECK(d.exact);
    }
    SUBCASE("Address Group sub-TLVs: one ordinary reply")
    {
        const auto d =
            decide_reflected_control({1000, 4, 0, true}, rc_ctx(), rc_on().reflected_control);
        CHECK(d.count == 1);
        CHECK(d.reply_len == 64);
        CHECK_FALSE(d.exact);
    }
}

namespace {

peer_key peer_v4()
{
    peer_key k;
    k.addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 198, 51, 100, 7};
    k.port = 40000;
    return k;
}

bytes stamp_request(const bytes& tlvs, std::uint32_t seq = 0)
{
    bytes b(44);
    b[0] = static_cast<std::uint8_t>(seq >> 24);
    b[3] = static_cast<std::uint8_t>(seq);
    b[15] = 9; // SSID 9
    b.insert(b.end(), tlvs.begin(), tlvs.end());
    return b;
}

std::uint32_t seq_of(const bytes& b)
{
    return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
}

} // namespace

TEST_CASE("session_reflector: Reflected Test Packet Control and the replies after the first")
{
    // 44 + Reflected Test Packet Control (12) + Direct Measurement (16) = 72 octets; the request
    // asks for 3 replies of 200 octets, 1 ms apart.
    const bytes tlvs = cat({tlv(0x80, 12, {0, 200, 0, 3, 0, 0x0F, 0x42, 0x40}),
                            tlv(0x80, 5, {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})});
    const bytes request = stamp_request(tlvs, 77);
    REQUIRE(request.size() == 72);
    reflector_config rc;
    rc.format = reflector_format::stamp;
    rc.tlv_policy = rc_on();
    rc.tlv_policy.reflected_control.max_octets_per_second = 1000;

    SUBCASE("stateful: reply 0 padded to the length, replies k numbered on, counters follow")
    {
        session_reflector r(rc);
        bytes reply0(2048);
        stamp_tlv_outcome out;
        REQUIRE(r.reflect(request, peer_v4(), nanoseconds{5'000'000'000}, 255, reply0, nullptr,
                          &out) == 200);
        REQUIRE(out.reflected_control);
        const auto& c = *out.reflected_control;
        CHECK(c.count == 3);
        CHECK(c.reply_len == 200);
        CHECK(c.interval_ns == 1'000'000);
        CHECK(c.stateful);
        CHECK(c.first_seq == 0);
        CHECK(c.exact);
        CHECK(c.tx_counter_at == 44 + 12 + 4 + 8);
        CHECK(c.first_tx == 1);
        reply0.resize(200);
        CHECK(seq_of(reply0) == 0);
        CHECK(reply0[44] == 0); // the TLV without C
        CHECK(bytes(reply0.begin() + 72, reply0.begin() + 76) == bytes{0, 1, 0, 124});
        CHECK(bytes(reply0.begin() + 76, reply0.end()) == zeros(124));
        CHECK(r.counters().reflected_control == 1);
        CHECK(r.counters().reflected_extra == 2);

        for (std::uint16_t k = 1; k < 3; ++k) {
            bytes rk(256, 0xEE);
            REQUIRE(build_reflected_reply(reply0, c, k, rk) == 200);
            rk.resize(200);
            CHECK(seq_of(rk) == k);
            CHECK(rk[44 + 12 + 4 + 11] == 1 + k); // R_TxC
            bytes a = reply0, b = rk;             // all else equal
            std::fill_n(a.begin(), 4, 0);
            std::fill_n(b.begin(), 4, 0);
            a[44 + 12 + 4 + 11] = b[44 + 12 + 4 + 11] = 0;
            CHECK(a == b);
        }
        bytes rk(256);
        CHECK(build_reflected_reply(reply0, c, 0, rk) == 0);
        CHECK(build_reflected_reply(reply0, c, 3, rk) == 0);
        bytes tiny(199);
        CHECK(build_reflected_reply(reply0, c, 1, tiny) == 0);
        CHECK(build_reflected_reply(std::span(reply0).first(150), c, 1, rk) == 0);

        // The session counted three replies: the next one is number 3, R_TxC 4; the budget
        // (1000 octets a second) had 1000, paid 600: 400 left buys 2 replies of 200 (C).
        bytes next(2048);
        REQUIRE(r.reflect(request, peer_v4(), nanoseconds{5'000'000'000}, 255, next, nullptr,
                          &out) == 200);
        CHECK(seq_of(next) == 3);
        CHECK(next[44 + 12 + 4 + 11] == 4);
        REQUIRE(out.reflected_control);
        CHECK(out.reflected_control->count == 2);
        CHECK_FALSE(out.reflected_control->exact);
        CHECK(next[44] == 0x10);
        // Nothing left: one ordinary reply, C, not charged.
        REQUIRE(r.reflect(request, peer_v4(), nanoseconds{5'000'000'000}, 255, next, nullptr,
                          &out) == 72);
        CHECK(seq_of(next) == 5);
        REQUIRE(out.reflected_control);
        CHECK(out.reflected_control->count == 1);
        CHECK(next[44] == 0x10);
        // Half a second later, 500 octets: two replies again.
        REQUIRE(r.reflect(request, peer_v4(), nanoseconds{5'500'000'000}, 255, next, nullptr,
                          &out) == 200);
        CHECK(out.reflected_control->count == 2);
        CHECK(r.counters().reflected_control_clamped == 3);
    }
    SUBCASE("off by default: an ordinary reply, the TLV with U")
    {
        reflector_config off;
        off.format = reflector_format::stamp;
        session_reflector r(off);
        bytes reply(2048);
        stamp_tlv_outcome out;
        REQUIRE(r.reflect(request, peer_v4(), nanoseconds{5'000'000'000}, 255, reply, nullptr,
                          &out) == 72);
        CHECK_FALSE(out.reflected_control);
        CHECK(reply[44] == 0x80);
        CHECK(r.counters().reflected_extra == 0);
    }
    SUBCASE("stateless: with a rate cap no slot pays, one ordinary reply; without, all replies "
            "carry the sender's number")
    {
        reflector_config sl = rc;
        sl.stateless = true;
        session_reflector capped(sl);
        bytes reply(2048);
        stamp_tlv_outcome out;
        REQUIRE(capped.reflect(request, peer_v4(), nanoseconds{5'000'000'000}, 255, reply, nullptr,
                               &out) == 72);
        REQUIRE(out.reflected_control);
        CHECK(out.reflected_control->count == 1);
        CHECK(reply[44] == 0x10);

        sl.tlv_policy.reflected_control.max_octets_per_second = 0;
        session_reflector free_rate(sl);
        REQUIRE(free_rate.reflect(request, peer_v4(), nanoseconds{5'000'000'000}, 255, reply,
                                  nullptr, &out) == 200);
        REQUIRE(out.reflected_control);
        CHECK_FALSE(out.reflected_control->stateful);
        reply.resize(200);
        bytes rk(200);
        REQUIRE(build_reflected_reply(reply, *out.reflected_control, 2, rk) == 200);
        CHECK(seq_of(rk) == 77);
        CHECK(seq_of(reply) == 77);
    }
    SUBCASE("strict size: never more out than in")
    {
        reflector_config st = rc;
        st.strict_size = true;
        session_reflector r(st);
        bytes reply(2048);
        stamp_tlv_outcome out;
        REQUIRE(r.reflect(request, peer_v4(), nanoseconds{5'000'000'000}, 255, reply, nullptr,
                          &out) == 72);
        REQUIRE(out.reflected_control);
        CHECK(out.reflected_control->count == 1);
        CHECK(reply[44] == 0x10);
    }
}

TEST_CASE("session_reflector: a Micro-session ID for another member link is dropped, no number "
          "used")
{
    reflector_config rc;
    rc.format = reflector_format::stamp;
    rc.tlv_policy.micro_session_id = 5;
    session_reflector r(rc);
    bytes reply(128);
    CHECK(r.reflect(stamp_request(tlv(0x80, 11, {0, 1, 0, 6})), peer_v4(),
                    nanoseconds{5'000'000'000}, 255, reply) == 0);
    CHECK(r.counters().micro_session_mismatch == 1);
    REQUIRE(r.reflect(stamp_request(tlv(0x80, 11, {0, 1, 0, 0})), peer_v4(),
                      nanoseconds{5'100'000'000}, 255, reply) == 52);
    CHECK(seq_of(reply) == 0);
    CHECK(bytes(reply.begin() + 44, reply.begin() + 52) == tlv(0, 11, {0, 1, 0, 5}));
}

TEST_CASE("per-packet CSV: TLV columns only for the TLVs asked for")
{
    CHECK(report::per_packet_header(stamp_tlv_request{}) == report::kPerPacketHeader);
    stamp_tlv_request q;
    q.cos_dscp1 = 46;
    q.micro_session = stamp_tlv_request::micro_session_request{0x1234, 0};
    q.reflected_control = reflected_control_request{200, 3, 1000, false};
    const std::string h = report::per_packet_header(q);
    const std::string base(report::kPerPacketHeader, std::strlen(report::kPerPacketHeader) - 1);
    CHECK(h == base + ",tlv_unrecognised,tlv_malformed,tlv_integrity_failed,cos_dscp1,cos_dscp2,"
                      "cos_ecn,cos_rp,ms_sender_id,ms_reflector_id,rc_length,rc_count,"
                      "rc_interval_ns,rc_exact\n");
    reply_result r;
    r.status = reply_status::duplicate;
    r.sample.sender_seq = 4;
    r.sample.reflector_seq = 5;
    r.tlvs =
        read_stamp_tlvs(cat({tlv(0, 4, {46 << 2 | 1, 0x20, 0, 0}), tlv(0, 11, {0x12, 0x34, 0, 7}),
                             tlv(0x10, 12, {0, 200, 0, 3, 0, 0, 0x03, 0xE8})}));
    CHECK(report::per_packet_row(r, q) ==
          "4,5,duplicate,,,,,,,,,,,0,0,0,46,18,0,0,4660,7,200,3,1000,0\n");
    CHECK(report::per_packet_row(r, stamp_tlv_request{}) == report::per_packet_row(r));
    // Lost rows and replies without TLVs keep the columns, empty.
    const std::string lost = report::per_packet_lost_row(9, nanoseconds{5}, q);
    CHECK(lost == "9,,lost,5,,,,,,,,,,,,,,,,,,,,,,\n");
    CHECK(std::count(lost.begin(), lost.end(), ',') == std::count(h.begin(), h.end(), ','));
}

TEST_CASE("session_sender: a reply naming another member link is discarded (RFC 9534)")
{
    sender_config cfg;
    cfg.format = test_format::stamp;
    cfg.ssid = 3;
    cfg.tlvs.micro_session = stamp_tlv_request::micro_session_request{5, 7};
    session_sender s(cfg);
    bytes probe(64);
    REQUIRE(s.make_probe(nanoseconds{1'000'000'000}, 64, probe) == 64);
    REQUIRE(s.make_probe(nanoseconds{1'000'000'000}, 64, probe) == 64);
    // Replies to probes 0 and 1 as a reflector for member 7 fills them; one is then changed to
    // name member 8.
    auto reply_to = [&](std::uint32_t seq, std::uint16_t member) {
        reflector_packet rp;
        rp.seq = seq;
        rp.sender_seq = seq;
        rp.ssid = 3;
        rp.timestamp = to_ntp(nanoseconds{1'000'100'000}).to_u64();
        rp.receive_timestamp = to_ntp(nanoseconds{1'000'050'000}).to_u64();
        rp.sender_ttl = 255;
        bytes reply(64);
        REQUIRE_FALSE(encode_reflector_base(rp, test_format::stamp, reply));
        std::copy(probe.begin() + 44, probe.end(), reply.begin() + 44);
        auto ctx = ctx_v4();
        stamp_tlv_policy pol;
        pol.micro_session_id = member;
        reflect_stamp_tlvs(std::span(reply).subspan(44), ctx, pol);
        return reply;
    };
    auto good = reply_to(0, 7);
    CHECK(s.on_reply(good, nanoseconds{1'000'200'000}, 64).status == reply_status::sample);
    auto other = reply_to(1, 7);
    // The Reflector Micro-session ID: value octets 2-3 of the first TLV after the base.
    REQUIRE(other[44 + 1] == 11);
    other[44 + 4 + 3] = 8;
    CHECK(s.on_reply(other, nanoseconds{1'000'200'000}, 64).status ==
          reply_status::member_mismatch);
    CHECK(s.stats().received == 1);
    CHECK(s.stats().tlv.micro_session_mismatch == 1);
    // Still unanswered: the right reply is taken afterwards.
    auto right = reply_to(1, 7);
    CHECK(s.on_reply(right, nanoseconds{1'000'200'000}, 64).status == reply_status::sample);
    CHECK(s.stats().received == 2);
}
