// Fuzz target: the Session-Reflector core (reflector_session.hpp), session_reflector::reflect
// with arbitrary requests from a handful of peers, at arbitrary times, into output buffers of
// arbitrary size.
//
// Input: 5 config octets, then records of
//   len(2) peer(1) ttl(1) step(1) outsize(1) request(len; len >= 0xFF00: ~65507, zero-filled)
// Invariants: the reply length is max(request, 41|44, min_reply_len) capped at 65507, or 0; the
// reply is never written past its length (the output is exactly sized, guard octets after it are
// checked, and a dropped request leaves the output untouched); the fields echo the request; the
// padding / TLVs follow RFC 5357 §4.2.1 and RFC 8972 §4; the counters add up.
#include "fuzz_common.hpp"

#include "twamp/reflector_session.hpp"
#include "twamp/stamp_tlvs.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <utility>
#include <vector>

namespace {

using namespace twamp;
using twamp_fuzz::fuzz_input;

constexpr std::uint8_t kFill = 0xA5;
constexpr std::size_t kGuard = 16;

// Octet-range checks as one memcmp against a constant buffer: the same comparison as a loop, but
// not one coverage callback and one shadow check per octet (which, for replies near 64 KiB, was
// most of this target's time).
bool all_equal(const std::uint8_t* p, std::size_t n, std::uint8_t v)
{
    static const std::vector<std::uint8_t> zeros(kMaxTestPacketLen + 512, 0);
    static const std::vector<std::uint8_t> fill(kMaxTestPacketLen + 512, kFill);
    const auto& ref = v == 0 ? zeros : fill;
    FUZZ_CHECK(v == 0 || v == kFill);
    FUZZ_CHECK(n <= ref.size());
    return n == 0 || std::memcmp(p, ref.data(), n) == 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    fuzz_input in(data, size);
    reflector_config cfg;
    const std::uint8_t c0 = in.u8();
    cfg.stateless = (c0 & 1) != 0;
    cfg.format = static_cast<reflector_format>((c0 >> 1) % 3);
    cfg.strict_size = (c0 & 8) != 0;
    cfg.err = error_estimate::decode(static_cast<std::uint16_t>(in.u8() << 8 | 1));
    cfg.max_sessions = 1 + (in.u8() & 7);
    cfg.refwait = std::chrono::milliseconds(1 + in.u8() * 40);
    const std::uint8_t m = in.u8();
    // min_reply_len: 0 mostly, else small, medium or beyond the 65507 cap.
    cfg.min_reply_len = m < 128 ? 0 : m < 192 ? (m - 128) : m < 254 ? (m - 192) * 64 : 70000;
    session_reflector r(cfg);

    std::int64_t now = twamp_fuzz::kEpochNs;
    std::uint64_t calls = 0, replies = 0;
    // Stateful model: the last reflector sequence number per (peer, SSID).
    std::map<std::pair<std::uint8_t, std::uint16_t>, std::uint32_t> last_seq;
    while (!in.empty()) {
        std::size_t len = in.u16();
        const std::uint8_t peer = in.u8();
        const std::uint8_t ttl = in.u8();
        now += twamp_fuzz::time_step_ns(in.u8());
        const std::uint8_t outsel = in.u8();
        // len >= 0xFF00 asks for a request around the 65507-octet limit: what the input still
        // holds, then zeros. (Rare on purpose: 64 KiB requests are slow to check.)
        std::vector<std::uint8_t> req;
        const auto body = in.bytes(len);
        req.assign(body.begin(), body.end());
        if (len >= 0xFF00) req.resize(kMaxTestPacketLen - 128 + (len & 0xFF));

        peer_key key;
        key.addr[15] = peer & 3; // a few peers, so sessions collide and the table fills
        key.port = static_cast<std::uint16_t>(peer >> 2 & 3);

        const bool stamp = req.size() >= kSenderUnauthLen && req.size() <= kMaxTestPacketLen &&
                           (cfg.format == reflector_format::stamp ||
                            (cfg.format == reflector_format::automatic && looks_like_stamp(req)));
        const std::size_t base = stamp ? kStampBaseLen : kReflectorUnauthLen;
        const std::size_t expect =
            std::min(std::max({req.size(), base, cfg.min_reply_len}), kMaxTestPacketLen);
        std::size_t outsize = expect;
        if (outsel < 64)
            outsize = expect > outsel ? expect - outsel - 1 : 0; // too small
        else if (outsel >= 192)
            outsize = expect + (outsel - 192); // roomy

        std::vector<std::uint8_t> buf(outsize + kGuard, kFill);
        const auto before = r.counters();
        const std::size_t n =
            r.reflect(req, key, nanoseconds{now}, ttl, std::span(buf).first(outsize));
        ++calls;
        const auto& c = r.counters();
        // Guard octets never touched.
        FUZZ_CHECK(all_equal(buf.data() + outsize, kGuard, kFill));
        FUZZ_CHECK(c.received == calls);
        FUZZ_CHECK(c.reflected + c.malformed + c.too_short_strict + c.no_reply_requested ==
                   c.received);
        FUZZ_CHECK(c.stamp <= c.reflected);
        FUZZ_CHECK(r.active_sessions() <= cfg.max_sessions);
        FUZZ_CHECK(c.sessions_created - c.sessions_expired == r.active_sessions());
        if (n == 0 && c.no_reply_requested != before.no_reply_requested) {
            // An RFC 9503 Return Path TLV with Control Code 0: a STAMP request, answered by
            // nobody; only the (unsent) reply buffer was written.
            FUZZ_CHECK(stamp && c.no_reply_requested == before.no_reply_requested + 1);
            FUZZ_CHECK(c.reflected == before.reflected);
            continue;
        }
        if (n == 0) {
            FUZZ_CHECK(all_equal(buf.data(), buf.size(), kFill));
            FUZZ_CHECK(c.reflected == before.reflected);
            const bool bad_size = req.size() < kSenderUnauthLen || req.size() > kMaxTestPacketLen;
            FUZZ_CHECK(bad_size || (cfg.strict_size && expect > req.size()) || outsize < expect);
            continue;
        }
        ++replies;
        FUZZ_CHECK(n == expect);
        FUZZ_CHECK(n <= outsize);
        FUZZ_CHECK(c.reflected == replies);
        FUZZ_CHECK(c.stamp == before.stamp + (stamp ? 1 : 0));
        FUZZ_CHECK(!cfg.strict_size || n <= req.size());
        const std::span<const std::uint8_t> reply(buf.data(), n);

        reflector_packet p;
        FUZZ_CHECK(!decode_reflector(reply, stamp ? test_format::stamp : test_format::twamp, p));
        std::uint8_t head[kStampBaseLen] = {};
        std::copy_n(req.begin(), std::min(req.size(), kStampBaseLen), head);
        FUZZ_CHECK(p.sender_seq == wire::load32(head));
        FUZZ_CHECK(p.sender_timestamp == wire::load64(head + 4));
        FUZZ_CHECK(p.sender_err.encode() == wire::load16(head + 12));
        FUZZ_CHECK(p.sender_ttl == ttl);
        FUZZ_CHECK(p.err == cfg.err);
        FUZZ_CHECK(p.timestamp == p.receive_timestamp);
        const std::uint16_t ssid = stamp ? wire::load16(head + 14) : 0;
        FUZZ_CHECK(p.ssid == ssid);
        FUZZ_CHECK(reply[38] == 0 && reply[39] == 0);
        if (cfg.stateless) {
            FUZZ_CHECK(p.seq == p.sender_seq);
        } else if (c.table_full != before.table_full) {
            FUZZ_CHECK(c.table_full == before.table_full + 1 && p.seq == p.sender_seq);
        } else {
            // A session counts up from 0; it may restart at 0 (REFWAIT, or swept when full).
            const auto k = std::make_pair(static_cast<std::uint8_t>(peer & 15), ssid);
            const auto it = last_seq.find(k);
            FUZZ_CHECK(p.seq == 0 || (it != last_seq.end() && p.seq == it->second + 1));
            last_seq[k] = p.seq;
        }

        if (stamp) {
            FUZZ_CHECK(reply[41] == 0 && reply[42] == 0 && reply[43] == 0);
            // TLVs come back at their offsets (RFC 8972 §4): each walked TLV keeps its Type and
            // Length, its flags leave as 0, U or M (with I kept or added when the set failed
            // integrity), a type the reflector does not implement keeps its value, and nothing
            // after the walk changes. What the implemented ones are filled with is
            // fuzz_stamp_tlvs' business.
            if (req.size() > kStampBaseLen) {
                const std::uint8_t* q = req.data() + kStampBaseLen;
                const std::uint8_t* a = reply.data() + kStampBaseLen;
                const std::size_t len = req.size() - kStampBaseLen;
                bool integrity = false;
                for (std::size_t pos = 0; len - pos >= 4 && q[pos + 1] != 0;) {
                    if (q[pos] & stamp_tlv::kFlagI) integrity = true;
                    const std::size_t l = std::size_t{q[pos + 2]} << 8 | q[pos + 3];
                    if (l > len - pos - 4) break;
                    pos += 4 + l;
                }
                std::size_t pos = 0;
                bool stopped = false;
                while (len - pos >= 4 && q[pos + 1] != 0) {
                    const std::size_t l = std::size_t{q[pos + 2]} << 8 | q[pos + 3];
                    FUZZ_CHECK(a[pos + 1] == q[pos + 1] && a[pos + 2] == q[pos + 2] &&
                               a[pos + 3] == q[pos + 3]);
                    const bool fits = l <= len - pos - 4;
                    const std::size_t end = fits ? pos + 4 + l : len;
                    if (integrity) {
                        FUZZ_CHECK(a[pos] ==
                                   ((q[pos] & ~stamp_tlv::kFlagsReserved) | stamp_tlv::kFlagI));
                        FUZZ_CHECK(std::equal(q + pos + 4, q + end, a + pos + 4));
                    } else if (stopped) {
                        FUZZ_CHECK(std::equal(q + pos, q + end, a + pos));
                    } else {
                        FUZZ_CHECK(a[pos] == 0 || a[pos] == stamp_tlv::kFlagU ||
                                   a[pos] == stamp_tlv::kFlagM);
                        if (!fits) FUZZ_CHECK(a[pos] == stamp_tlv::kFlagM);
                        if (a[pos] == stamp_tlv::kFlagM) stopped = true;
                        if (fits && (q[pos + 1] == stamp_tlv::kTypeHmac ||
                                     q[pos + 1] > stamp_tlv::kTypeReturnPath)) {
                            FUZZ_CHECK(a[pos] == stamp_tlv::kFlagU);
                            FUZZ_CHECK(std::equal(q + pos + 4, q + end, a + pos + 4));
                        }
                    }
                    pos = end; // an overrunning TLV ends at the packet's end
                }
                FUZZ_CHECK(std::equal(q + pos, q + len, a + pos)); // padding after the walk
            }
            const std::size_t from = std::max(req.size(), kStampBaseLen);
            FUZZ_CHECK(from >= n || all_equal(reply.data() + from, n - from, 0));
        } else {
            // The sender's octets after its 14-octet header follow our 41-octet header.
            // reply[i] == req[i - 41 + 14] while that exists, then zeros.
            const std::size_t copied =
                std::min(n - kReflectorUnauthLen, req.size() - kSenderUnauthLen);
            FUZZ_CHECK(std::memcmp(reply.data() + kReflectorUnauthLen,
                                   req.data() + kSenderUnauthLen, copied) == 0);
            FUZZ_CHECK(all_equal(reply.data() + kReflectorUnauthLen + copied,
                                 n - kReflectorUnauthLen - copied, 0));
        }
    }
    // Expiry after everything went idle empties the table.
    r.expire(nanoseconds{now} + cfg.refwait + std::chrono::seconds(1));
    FUZZ_CHECK(r.active_sessions() == 0);
    FUZZ_CHECK(r.counters().sessions_created == r.counters().sessions_expired);
    return 0;
}
