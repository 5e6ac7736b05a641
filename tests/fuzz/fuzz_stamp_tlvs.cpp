// Fuzz target: the STAMP extension TLVs of twamp/stamp_tlvs.hpp — the reflector's in-place
// processing (reflect_stamp_tlvs) of arbitrary TLV octets, and the sender's reader
// (read_stamp_tlvs) of what comes back.
//
// Input: 12 octets of context and policy (ports, addresses, DS field, counters, previous reply,
// permitted DSCPs (the octet's two high bits: Micro-session ID 5, Reflected Test Packet Control
// on, capped at 3 replies of 600 octets; with the stateless bit, a budget of 8 x that octet),
// return-address and same-link policy, integrity verdict), then the TLV octets.
//
// Checked against an independent walk of the input (headers read here, not with the library):
//   - the walk's TLV count is the outcome's count; no Type or Length octet of a walked TLV
//     changes, nor any octet after the walk (padding);
//   - with an integrity failure (the verdict, or an I flag in the input) only flag octets change,
//     each gains I and keeps its other bits but the reserved ones;
//   - otherwise every flag octet up to the first malformed TLV leaves with reserved bits clear
//     and exactly one of {none, U, M} (or C, on a Reflected Test Packet Control TLV); a type
//     the reflector does not know, or one its policy leaves out, is copied with U; from the one
//     after a malformed TLV on, nothing changes;
//   - a Reflected Test Packet Control decision stays within the caps and the budget, and the
//     replies after the first are built exactly for k in 1..count-1, numbered on;
//   - processing is idempotent: a reflected set reflected again is the same octets;
//   - reading our own reflected set: malformed iff processing stopped at a malformed TLV, else as
//     many TLVs as processed (unless integrity failed).
#include "fuzz_common.hpp"

#include "twamp/reflector_session.hpp"
#include "twamp/stamp_tlvs.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

using namespace twamp;
using twamp_fuzz::fuzz_input;

struct walked {
    std::size_t offset;
    std::uint8_t flags, type;
    std::size_t length;
    bool fits;
};

// The walk RFC 8972 §4 describes, written out again: 4-octet headers back to back, a zero
// Type ends it (padding), an overrunning Length ends it after reporting that TLV.
std::vector<walked> walk(const std::vector<std::uint8_t>& b)
{
    std::vector<walked> out;
    std::size_t pos = 0;
    while (b.size() >= pos + 4) {
        walked w{pos, b[pos], b[pos + 1], std::size_t{b[pos + 2]} << 8 | b[pos + 3], false};
        if (w.type == 0) break;
        w.fits = w.length <= b.size() - pos - 4;
        out.push_back(w);
        if (!w.fits) break;
        pos += 4 + w.length;
    }
    return out;
}

std::size_t walk_end(const std::vector<walked>& w, std::size_t size)
{
    if (w.empty()) return 0;
    const auto& l = w.back();
    return l.fits ? l.offset + 4 + l.length : size;
}

tlv_address address(fuzz_input& in, bool v6)
{
    tlv_address a;
    a.v6 = v6;
    const auto b = in.bytes(v6 ? 16 : 4);
    std::copy(b.begin(), b.end(), a.octets.begin());
    return a;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    fuzz_input in(data, size);
    const std::uint8_t cfg = in.u8();
    const bool v6 = cfg & 1;
    stamp_tlv_context ctx;
    ctx.source_port = in.u16();
    ctx.destination_port = in.u16();
    ctx.tos = in.u8();
    if (cfg & 2) ctx.tos.reset();
    ctx.received = in.u8();
    ctx.transmitted = in.u8();
    ctx.stateless = cfg & 4;
    if (cfg & 8)
        ctx.previous = stamp_tlv_context::previous_reply{in.u16(), 0x0102030405060708ull,
                                                         stamp_tlv::timestamp_method::sw_local};
    ctx.integrity_failed = (cfg & 0x10) != 0;
    stamp_tlv_policy pol;
    pol.report_location = (cfg & 0x20) == 0;
    pol.honour_return_address = cfg & 0x40;
    pol.reply_same_link = cfg & 0x80;
    const std::uint8_t dscp_octet = in.u8();
    pol.permitted_dscp = ~(std::uint64_t{1} << (dscp_octet & 63));
    // Its two high bits: a member-link ID (RFC 9534) and Reflected Test Packet Control, capped.
    if (dscp_octet & 0x40) pol.micro_session_id = 5;
    pol.reflected_control.enabled = (dscp_octet & 0x80) != 0;
    pol.reflected_control.max_replies = 3;
    pol.reflected_control.max_reply_octets = 600;
    if (cfg & 4) ctx.reflected_budget = std::uint64_t{dscp_octet} * 8;
    ctx.source = address(in, v6);
    if (in.u8() & 1) ctx.destination = address(in, v6);
    const tlv_address local = ctx.destination.value_or(tlv_address{});
    auto is_local = [&](const tlv_address& a) { return ctx.destination && a == local; };

    const auto rest = in.rest();
    const std::vector<std::uint8_t> orig(rest.begin(), rest.end());
    std::vector<std::uint8_t> b = orig; // exact size: ASan sees any overrun
    const auto w = walk(orig);
    ctx.reply_len = kStampBaseLen + orig.size();
    ctx.tlvs_end = ctx.reply_len;
    ctx.reply_room = 2048;
    const auto out = reflect_stamp_tlvs(b, ctx, pol, is_local);
    FUZZ_CHECK(b.size() == orig.size());
    FUZZ_CHECK(out.count == w.size());

    // Type and Length octets of every walked TLV, and the padding after the walk, are unchanged.
    for (const auto& t : w) {
        FUZZ_CHECK(b[t.offset + 1] == orig[t.offset + 1]);
        FUZZ_CHECK(b[t.offset + 2] == orig[t.offset + 2]);
        FUZZ_CHECK(b[t.offset + 3] == orig[t.offset + 3]);
    }
    const std::size_t end = walk_end(w, orig.size());
    FUZZ_CHECK(std::equal(b.begin() + static_cast<std::ptrdiff_t>(end), b.end(),
                          orig.begin() + static_cast<std::ptrdiff_t>(end)));

    bool failed = ctx.integrity_failed;
    for (const auto& t : w)
        if (t.flags & stamp_tlv::kFlagI) failed = true;
    if (failed) {
        for (std::size_t i = 0; i < orig.size(); ++i) {
            const bool flag_octet =
                std::any_of(w.begin(), w.end(), [&](const walked& t) { return t.offset == i; });
            if (!flag_octet) {
                FUZZ_CHECK(b[i] == orig[i]);
                continue;
            }
            FUZZ_CHECK(b[i] == ((orig[i] & ~stamp_tlv::kFlagsReserved) | stamp_tlv::kFlagI));
        }
        FUZZ_CHECK(!out.reply_dscp && !out.reply_source && !out.reply_to && !out.suppress_reply);
    } else {
        bool stopped = false;
        for (std::size_t k = 0; k < w.size(); ++k) {
            const auto& t = w[k];
            const std::size_t t_end = t.fits ? t.offset + 4 + t.length : orig.size();
            if (stopped) {
                FUZZ_CHECK(std::equal(b.begin() + static_cast<std::ptrdiff_t>(t.offset),
                                      b.begin() + static_cast<std::ptrdiff_t>(t_end),
                                      orig.begin() + static_cast<std::ptrdiff_t>(t.offset)));
                continue;
            }
            const std::uint8_t f = b[t.offset];
            FUZZ_CHECK(f == 0 || f == stamp_tlv::kFlagU || f == stamp_tlv::kFlagM ||
                       (f == stamp_tlv::kFlagC && t.type == stamp_tlv::kTypeReflectedControl));
            if (!t.fits) FUZZ_CHECK(f == stamp_tlv::kFlagM);
            if (f == stamp_tlv::kFlagM) stopped = true;
            // An unknown type, or one the policy leaves out, is copied as received, with U.
            const bool unsupported =
                t.type > stamp_tlv::kTypeReflectedControl ||
                (t.type == stamp_tlv::kTypeMicroSession && !pol.micro_session_id) ||
                (t.type == stamp_tlv::kTypeReflectedControl && !pol.reflected_control.enabled);
            if (t.fits && unsupported) {
                FUZZ_CHECK(f == stamp_tlv::kFlagU);
                FUZZ_CHECK(std::equal(b.begin() + static_cast<std::ptrdiff_t>(t.offset + 4),
                                      b.begin() + static_cast<std::ptrdiff_t>(t_end),
                                      orig.begin() + static_cast<std::ptrdiff_t>(t.offset + 4)));
            }
        }
        FUZZ_CHECK(stopped == out.malformed);
        if (out.reply_dscp) FUZZ_CHECK(*out.reply_dscp < 64);
        // Reflected Test Packet Control never goes beyond the caps, nor the budget.
        if (out.reflected_control) {
            const auto& rc = *out.reflected_control;
            FUZZ_CHECK(pol.reflected_control.enabled);
            FUZZ_CHECK(rc.count >= 1 && rc.count <= 3);
            FUZZ_CHECK(rc.reply_len >= ctx.reply_len || ctx.reply_len > 0xFFFF);
            FUZZ_CHECK(rc.reply_len <= std::max<std::size_t>(ctx.reply_len, 600));
            FUZZ_CHECK(rc.cost == (rc.count > 1 || rc.reply_len > ctx.reply_len
                                       ? std::uint32_t{rc.count} * rc.reply_len
                                       : 0u));
            if (ctx.reflected_budget) FUZZ_CHECK(rc.cost <= *ctx.reflected_budget);
            // Replies after the first: as long as the first, numbered on (stateful here).
            auto r2 = rc;
            r2.stateful = true;
            r2.first_seq = 0xFFFFFFFEu;
            std::vector<std::uint8_t> reply0(rc.reply_len, 0x33), rk(rc.reply_len);
            for (std::uint16_t k = 0; k <= rc.count; ++k) {
                const std::size_t got = build_reflected_reply(reply0, r2, k, rk);
                const bool valid = k >= 1 && k < rc.count && rc.reply_len >= kStampBaseLen;
                FUZZ_CHECK(got == (valid ? rc.reply_len : 0u));
                if (valid) FUZZ_CHECK(wire::load32(rk.data()) == 0xFFFFFFFEu + k);
            }
        }

        // Reading our own reply back.
        const auto rep = read_stamp_tlvs(b);
        FUZZ_CHECK(!rep.integrity_failed);
        FUZZ_CHECK(rep.malformed == out.malformed);
        if (!out.malformed) FUZZ_CHECK(rep.count == out.count);
    }

    // Idempotent.
    std::vector<std::uint8_t> again = b;
    const auto out2 = reflect_stamp_tlvs(again, ctx, pol, is_local);
    FUZZ_CHECK(again == b);
    FUZZ_CHECK(out2.count == out.count && out2.malformed == out.malformed);
    FUZZ_CHECK(out2.reply_dscp == out.reply_dscp && out2.suppress_reply == out.suppress_reply);

    // The reader on the raw input never crashes and stays within the walk.
    const auto raw = read_stamp_tlvs(orig);
    FUZZ_CHECK(raw.count <= w.size());
    return 0;
}
