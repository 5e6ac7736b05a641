// Fuzz target: a whole set of RFC 8972 TLVs in authenticated STAMP, through everything a
// reflector does with it: the guard's TLV walk and HMAC TLV check (asio/test_guard.hpp
// stamp_auth_guard::open_request: find the HMAC TLV, verify it with stamp_verify_tlv_hmac, flag
// every TLV with I when it fails or is followed by a TLV other than Extra Padding), the core's
// walk (session_reflector::reflect, reflect_stamp_tlvs: U, M, I), and the guard's reply side
// (seal_reply: the reply's HMAC TLV loses U and is recomputed over the reply's TLVs, the base
// HMAC is sealed). fuzz_stamp_tlv covers mark_reflected_tlvs on its own; this target covers the
// HMAC TLV and the interplay of the three walks over one set.
//
// Input: a config octet, 112 octets of base packet (zero-filled when short), then the TLV set.
//   c0 bit 0: seal the HMAC TLV the set holds (if any) so that it verifies
//   c0 bit 1: the second key (1 octet) instead of the 32-octet one
//   c0 bit 2: then flip one bit of the set (position and bit from the next two input octets)
// The base HMAC is always sealed, so the guard accepts the packet and the TLVs are reached.
//
// Invariants (from an independent walk of the set as RFC 8972 §4 and §4.8 describe it): the
// request opens to the 44-octet base plus the set; the TLVs fail exactly when an HMAC TLV is
// present and is not last but for Extra Padding, is not Type 8 Length 16, or its value is not
// HMAC-SHA-256/128 over the Sequence Number and the TLVs before it; on failure every TLV header
// (including one that overruns the packet) gets I and nothing else changes, and the failure is
// counted; an HMAC TLV we sealed and did not touch verifies. The reply is as long as the request,
// its base HMAC verifies, its TLV octets are the opened ones processed as reflect_stamp_tlvs
// processes them, but the HMAC TLV carries no U; a reply HMAC TLV without I verifies over the
// reply's TLVs; the sender's guard opens the reply.
#include "fuzz_common.hpp"

#include "twamp/asio/test_guard.hpp"
#include "twamp/crypto.hpp"
#include "twamp/crypto_openssl.hpp"
#include "twamp/reflector_session.hpp"
#include "twamp/stamp_tlvs.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace {

using namespace twamp;
using C = openssl_crypto;
using bytes = std::vector<std::uint8_t>;

const bytes kKeyLong = {0x54, 0x57, 0x41, 0x4d, 0x50, 0x2d, 0x53, 0x54, 0x41, 0x4d, 0x50,
                        0x20, 0x66, 0x75, 0x7a, 0x7a, 0x20, 0x6b, 0x65, 0x79, 0x20, 0x30,
                        0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x41};
const bytes kKeyShort = {0x42};

// The set as RFC 8972 §4 lays it out: header offsets until a Type 0 header or the end; the last
// may overrun (then it is the last header).
struct tlv_walk {
    std::vector<std::size_t> headers;
    std::vector<bool> complete;
};

tlv_walk walk(std::span<const std::uint8_t> set)
{
    tlv_walk w;
    std::size_t pos = 0;
    while (set.size() >= pos + kStampTlvHeaderLen && set[pos + 1] != 0) {
        const std::size_t len = static_cast<std::size_t>(set[pos + 2]) << 8 | set[pos + 3];
        w.headers.push_back(pos);
        const bool fits = pos + kStampTlvHeaderLen + len <= set.size();
        w.complete.push_back(fits);
        if (!fits) break;
        pos += kStampTlvHeaderLen + len;
    }
    return w;
}

// RFC 8972 §4.8: the (last) HMAC TLV among the complete ones, and whether a TLV other than
// Extra Padding or HMAC follows an HMAC TLV.
std::optional<std::size_t> hmac_tlv(std::span<const std::uint8_t> set, const tlv_walk& w,
                                    bool& misplaced)
{
    std::optional<std::size_t> at;
    misplaced = false;
    for (std::size_t i = 0; i < w.headers.size() && w.complete[i]; ++i) {
        const std::uint8_t type = set[w.headers[i] + 1];
        if (type == stamp_tlv::kTypeHmac)
            at = w.headers[i];
        else if (at && type != stamp_tlv::kTypeExtraPadding)
            misplaced = true;
    }
    return at;
}

// HMAC-SHA-256/128 over Sequence Number || the TLVs before `at`, computed in one piece.
std::array<std::uint8_t, 16> expected_tlv_hmac(const bytes& key, std::span<const std::uint8_t> pkt,
                                               std::size_t at)
{
    bytes msg(pkt.begin(), pkt.begin() + 4);
    msg.insert(msg.end(), pkt.begin() + kStampAuthLen,
               pkt.begin() + static_cast<std::ptrdiff_t>(kStampAuthLen + at));
    std::array<std::uint8_t, 16> mac{};
    FUZZ_CHECK(!C::hmac_sha256_128(key, msg, mac));
    return mac;
}

bool tlv_ok(const bytes& key, std::span<const std::uint8_t> pkt, std::size_t at)
{
    const auto set = pkt.subspan(kStampAuthLen);
    if (set[at + 2] != 0 || set[at + 3] != 16) return false; // Length 16 or it cannot verify
    const auto mac = expected_tlv_hmac(key, pkt, at);
    return std::equal(mac.begin(), mac.end(), set.begin() + static_cast<std::ptrdiff_t>(at + 4));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    twamp_fuzz::fuzz_input in(data, size);
    const std::uint8_t c0 = in.u8();
    const bytes& key = (c0 & 2) ? kKeyShort : kKeyLong;
    std::uint8_t flip_pos = 0, flip_bit = 0;
    if (c0 & 4) {
        flip_pos = in.back_u8();
        flip_bit = in.back_u8();
    }
    bytes pkt(kStampAuthLen);
    const auto base = in.bytes(kStampAuthLen);
    std::copy(base.begin(), base.end(), pkt.begin());
    const auto set_in = in.bytes(std::min<std::size_t>(in.remaining(), 4096));
    pkt.insert(pkt.end(), set_in.begin(), set_in.end());
    std::span<std::uint8_t> set(pkt.data() + kStampAuthLen, pkt.size() - kStampAuthLen);

    bool misplaced = false;
    const tlv_walk w0 = walk(set);
    const auto at0 = hmac_tlv(set, w0, misplaced);
    bool sealed = false;
    if ((c0 & 1) && at0 && set[*at0 + 2] == 0 && set[*at0 + 3] == 16) {
        FUZZ_CHECK(!stamp_seal_tlv_hmac<C>(key, pkt, kStampAuthLen, kStampAuthLen + *at0));
        FUZZ_CHECK(tlv_ok(key, pkt, *at0));
        sealed = true;
    }
    if ((c0 & 4) && !set.empty()) {
        set[flip_pos % set.size()] ^= static_cast<std::uint8_t>(1u << (flip_bit & 7));
        sealed = false;
    }
    FUZZ_CHECK(!stamp_seal<C>(key, pkt));
    const bytes sent = pkt;

    // The model of the guard's verdict.
    const tlv_walk w = walk(set);
    const auto at = hmac_tlv(set, w, misplaced);
    const bool fail = at && (misplaced || !tlv_ok(key, pkt, *at));
    if (sealed && !misplaced) FUZZ_CHECK(!fail);

    net::stamp_auth_guard<C> guard(key);
    bytes open(kStampBaseLen + set.size() + 1, 0xA5);
    const std::size_t n = guard.open_request(pkt, open);
    FUZZ_CHECK(n == kStampBaseLen + set.size());
    FUZZ_CHECK(open[n] == 0xA5);
    FUZZ_CHECK(guard.tlv_hmac_failures() == (fail ? 1u : 0u));
    // In place and in the open copy: I on every header on failure, nothing else changes.
    bytes want(sent.begin() + kStampAuthLen, sent.end());
    if (fail)
        for (const std::size_t h : w.headers)
            want[h] |= stamp_tlv::kFlagI;
    FUZZ_CHECK(std::equal(want.begin(), want.end(), open.begin() + kStampBaseLen));
    FUZZ_CHECK(std::equal(want.begin(), want.end(), pkt.begin() + kStampAuthLen));
    FUZZ_CHECK(std::equal(sent.begin(), sent.begin() + kStampAuthLen, pkt.begin()));
    sender_packet sp;
    FUZZ_CHECK(!decode_sender(std::span(open).first(n), test_format::stamp, sp));
    FUZZ_CHECK(sp.seq == wire::load32(sent.data()));
    FUZZ_CHECK(sp.ssid == wire::load16(sent.data() + 26));

    // What the core does to the TLVs of a first request from peer [::]:0 with no transport
    // information (stamp_tlvs.hpp; fuzz_stamp_tlvs checks that processing on its own).
    bytes marked(want);
    stamp_tlv_context ctx;
    ctx.source.v6 = true;
    ctx.received = 1;
    ctx.transmitted = 1;
    ctx.sync = stamp_tlv::sync_source::free_running;
    const auto processed = reflect_stamp_tlvs(marked, ctx);
    FUZZ_CHECK(processed.count == w.headers.size());

    // The core reflects the open request: no reply when its Return Path asks for none.
    reflector_config rc;
    rc.format = reflector_format::stamp;
    rc.max_sessions = 1; // one request: a 16-slot table, not 8192 slots set up per input
    session_reflector r(rc);
    peer_key peer;
    bytes reply(n);
    const std::size_t reflected =
        r.reflect(std::span(open).first(n), peer, nanoseconds{twamp_fuzz::kEpochNs}, 255, reply);
    if (processed.suppress_reply) {
        FUZZ_CHECK(reflected == 0 && r.counters().no_reply_requested == 1);
        return 0;
    }
    FUZZ_CHECK(reflected == n);
    FUZZ_CHECK(std::equal(marked.begin(), marked.end(), reply.begin() + kStampBaseLen));

    // The guard seals the reply.
    bytes out(pkt.size() + 1, 0x5A);
    const std::size_t m = guard.seal_reply(reply, pkt, out);
    FUZZ_CHECK(m == pkt.size());
    FUZZ_CHECK(out[m] == 0x5A);
    out.resize(m);
    FUZZ_CHECK(!stamp_verify<C>(key, out));
    const std::span<const std::uint8_t> rset(out.data() + kStampAuthLen, m - kStampAuthLen);
    bool rmisplaced = false;
    const auto rat = hmac_tlv(rset, walk(rset), rmisplaced);
    FUZZ_CHECK(rat == at); // marking flags does not move a TLV
    const bool resealed =
        at && !(marked[*at] & stamp_tlv::kFlagI) && marked[*at + 2] == 0 && marked[*at + 3] == 16;
    for (std::size_t i = 0; i < rset.size(); ++i) {
        if (at && i == *at)
            FUZZ_CHECK(rset[i] == (marked[i] & ~stamp_tlv::kFlagU));
        else if (!resealed || i < *at + 4 || i >= *at + 4 + 16) // a resealed value aside
            FUZZ_CHECK(rset[i] == marked[i]);
    }
    if (resealed) FUZZ_CHECK(tlv_ok(key, out, *at));

    // The sender's guard opens the reply.
    bytes back(kStampBaseLen + rset.size());
    FUZZ_CHECK(guard.open_reply(out, back) == kStampBaseLen + rset.size());
    return 0;
}
