// Fuzz target: the Session-Sender core (sender_session.hpp): probes interleaved with arbitrary
// replies, failed sends and clock steps.
//
// Input: 4 config octets, then operations:
//   0 probe:   len(1)                      make_probe of 14|44 + len octets (255: 3, too short)
//   1 reply:   len(2) ttl(1) data(len)     on_reply with arbitrary octets
//   2 echo:    back(1) delay(1) fields(12) a well-formed reply to probe next-1-back
//   3 unsend                               unsend_last
//   4 time:    step(1)
// Invariants: the result status matches exactly one counter increment; a probe yields at most one
// delay sample, with the T1 it was sent at and the delays its timestamps imply; received <=
// distinct replies <= probes made; a probe makes exactly the octets encode_sender would.
#include "fuzz_common.hpp"

#include "twamp/sender_session.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <utility>
#include <vector>

namespace {

using namespace twamp;
using twamp_fuzz::fuzz_input;

// The counters the checks compare (session_stats itself holds histograms: too big to copy per
// operation).
struct counters {
    std::uint64_t sent, received, late, duplicates, extra_replies, malformed, unknown_sequence,
        ssid_mismatch, send_errors, distinct_replies;
    explicit counters(const session_stats& s)
        : sent(s.sent), received(s.received), late(s.late), duplicates(s.duplicates),
          extra_replies(s.extra_replies), malformed(s.malformed),
          unknown_sequence(s.unknown_sequence), ssid_mismatch(s.ssid_mismatch),
          send_errors(s.send_errors), distinct_replies(s.distinct_replies)
    {
    }
};

// A fresh session_sender for `cfg`. Constructing one allocates and zeroes six 64 KiB histograms
// (stats.hpp), which under ASan made construction most of this target's time. So each
// configuration is constructed once, kept as a pristine prototype, and copied into a working
// object that is kept per window size: a copy assignment between equal sizes reuses the storage
// (memmove, no allocation), and a copy of a never-used object is exactly a new one.
session_sender& fresh_sender(const sender_config& cfg, std::uint32_t key)
{
    static std::map<std::uint32_t, session_sender> prototypes;
    static std::map<std::size_t, session_sender> working;
    if (prototypes.size() >= 64) prototypes.clear(); // bounded memory (~0.4 MiB each)
    auto p = prototypes.find(key);
    if (p == prototypes.end()) p = prototypes.emplace(key, session_sender(cfg)).first;
    auto w = working.find(cfg.window);
    if (w == working.end())
        w = working.emplace(cfg.window, p->second).first;
    else
        w->second = p->second;
    return w->second;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    fuzz_input in(data, size);
    sender_config cfg;
    const std::uint8_t c0 = in.u8();
    cfg.format = (c0 & 1) ? test_format::stamp : test_format::twamp;
    cfg.err.ptp = (c0 & 2) != 0;
    cfg.ssid = (c0 & 4) ? static_cast<std::uint16_t>(0x1234) : std::uint16_t{0};
    cfg.window = std::size_t{16} << (c0 >> 4 & 3); // 16..128: the ring wraps quickly
    const std::uint8_t timeout = in.u8();
    cfg.timeout = std::chrono::microseconds(1 + timeout) * 1000;
    cfg.err.multiplier = in.u8();
    const std::uint8_t scale = in.u8();
    cfg.err.scale = scale & 0x3F;
    // Everything the configuration depends on, as a cache key.
    const std::uint32_t key = static_cast<std::uint32_t>(c0 & 0x37) |
                              static_cast<std::uint32_t>(timeout) << 8 |
                              static_cast<std::uint32_t>(cfg.err.multiplier) << 16 |
                              static_cast<std::uint32_t>(scale & 0x3F) << 24;
    session_sender& s = fresh_sender(cfg, key);
    FUZZ_CHECK(s.next_sequence() == 0 && s.stats().sent == 0 && s.stats().received == 0);
    const test_format f = cfg.format;

    std::int64_t now = twamp_fuzz::kEpochNs;
    std::map<std::uint32_t, std::int64_t> sent_t1; // every probe ever made (not unsent)
    std::set<std::uint32_t> sampled, distinct;
    std::uint64_t unsent = 0;
    int ops = 0;
    bool just_probed = false; // unsend_last() is only meaningful right after a probe
    while (!in.empty() && ++ops < 4096) {
        const std::uint8_t op = in.u8() % 5;
        const bool after_probe = std::exchange(just_probed, false);
        const counters before(s.stats());
        const std::uint64_t member_mismatches = s.stats().tlv.micro_session_mismatch;
        if (op == 0) {
            const std::uint8_t l = in.u8();
            const std::size_t len = l == 255 ? 3 : sender_base_len(f) + l;
            std::vector<std::uint8_t> out(len);
            const std::uint32_t seq = s.next_sequence();
            const std::size_t n = s.make_probe(nanoseconds{now}, len, out);
            // STAMP: octets after the base travel as a TLV, which needs at least 4 of them.
            const bool impossible =
                l == 255 || (f == test_format::stamp && l > 0 && l < kStampTlvHeaderLen);
            if (impossible) {
                FUZZ_CHECK(n == 0 && s.next_sequence() == seq);
                continue;
            }
            FUZZ_CHECK(n == len && s.next_sequence() == seq + 1);
            FUZZ_CHECK(s.stats().sent == before.sent + 1);
            sender_packet p;
            FUZZ_CHECK(!decode_sender(out, f, p));
            FUZZ_CHECK(p.seq == seq && p.ssid == (f == test_format::stamp ? cfg.ssid : 0));
            FUZZ_CHECK(p.err == cfg.err);
            FUZZ_CHECK(wire_to_ns(p.timestamp, cfg.err.ptp, nanoseconds{now}).count() == now);
            if (f == test_format::stamp && len > kStampBaseLen) {
                std::vector<std::uint8_t> tlvs(out.begin() + kStampBaseLen, out.end());
                if (tlvs.size() >= kStampTlvHeaderLen) {
                    FUZZ_CHECK(mark_reflected_tlvs(tlvs) == 1);
                    FUZZ_CHECK(tlvs[0] == 0); // a well-formed Extra Padding TLV: no flags
                }
            }
            sent_t1[seq] = now;
            just_probed = true;
            continue;
        }
        if (op == 3) {
            if (!after_probe) continue;
            s.unsend_last();
            ++unsent;
            sent_t1.erase(s.next_sequence() - 1);
            FUZZ_CHECK(s.stats().send_errors == before.send_errors + 1);
            FUZZ_CHECK(s.stats().sent == before.sent - 1);
            continue;
        }
        if (op == 4) {
            now += twamp_fuzz::time_step_ns(in.u8());
            continue;
        }
        std::vector<std::uint8_t> reply;
        std::uint8_t ttl = 0;
        if (op == 1) {
            const std::size_t len = in.u16() % 2048;
            ttl = in.u8();
            const auto b = in.bytes(len);
            reply.assign(b.begin(), b.end());
        } else {
            const std::uint8_t back = in.u8();
            const std::int64_t delay = twamp_fuzz::time_step_ns(in.u8());
            reflector_packet p;
            p.sender_seq = s.next_sequence() - 1u - back;
            p.seq = in.u8();
            p.err = error_estimate::decode(in.u16());
            p.sender_ttl = in.u8();
            p.ssid = (in.u8() & 1) ? cfg.ssid : static_cast<std::uint16_t>(0xBEEF);
            const auto it = sent_t1.find(p.sender_seq);
            const std::int64_t t1 = it != sent_t1.end() ? it->second : now;
            // T2 and T3 somewhere between T1 and now, possibly off by a skew.
            const std::int64_t t2 = t1 + delay / 2 - static_cast<std::int64_t>(in.u8()) * 1000;
            const std::int64_t t3 = t2 + static_cast<std::int64_t>(in.u16());
            p.receive_timestamp =
                p.err.ptp ? to_ptp_truncated(nanoseconds{t2}) : to_ntp(nanoseconds{t2}).to_u64();
            p.timestamp =
                p.err.ptp ? to_ptp_truncated(nanoseconds{t3}) : to_ntp(nanoseconds{t3}).to_u64();
            ttl = in.u8();
            reply.resize(reflector_base_len(f) + (in.u8() & 15));
            (void)encode_reflector_base(p, f, reply);
            now = std::max(now, t1 + delay);
        }
        const reply_result r = s.on_reply(reply, nanoseconds{now}, ttl);
        const auto& st = s.stats();
        const auto bumped = [&](std::uint64_t session_stats::*field, std::uint64_t counters::*old) {
            return st.*field == before.*old + 1;
        };
        const int increments =
            (st.received != before.received) + (st.late != before.late) +
            (st.duplicates != before.duplicates) + (st.extra_replies != before.extra_replies) +
            (st.malformed != before.malformed) + (st.unknown_sequence != before.unknown_sequence) +
            (st.ssid_mismatch != before.ssid_mismatch) +
            (st.tlv.micro_session_mismatch != member_mismatches);
        FUZZ_CHECK(increments == 1);
        switch (r.status) {
        case reply_status::sample: {
            FUZZ_CHECK(bumped(&session_stats::received, &counters::received));
            const std::uint32_t seq = r.sample.sender_seq;
            FUZZ_CHECK(sent_t1.count(seq) == 1);
            FUZZ_CHECK(sampled.insert(seq).second); // one sample per probe
            FUZZ_CHECK(distinct.insert(seq).second);
            const auto& m = r.sample;
            FUZZ_CHECK(m.t1.count() == sent_t1[seq] && m.t4.count() == now);
            FUZZ_CHECK(now - m.t1.count() <= cfg.timeout.count());
            FUZZ_CHECK(m.outbound_ns == (m.t2 - m.t1).count());
            FUZZ_CHECK(m.inbound_ns == (m.t4 - m.t3).count());
            FUZZ_CHECK(m.roundtrip_ns == ((m.t4 - m.t1) - (m.t3 - m.t2)).count());
            FUZZ_CHECK(m.reply_ttl == ttl);
            break;
        }
        case reply_status::late:
            FUZZ_CHECK(bumped(&session_stats::late, &counters::late));
            // In the ring: the first reply for the probe. Out of it: counted, nothing else.
            if (st.distinct_replies != before.distinct_replies)
                FUZZ_CHECK(distinct.insert(r.sample.sender_seq).second);
            break;
        case reply_status::duplicate:
            FUZZ_CHECK(bumped(&session_stats::duplicates, &counters::duplicates));
            FUZZ_CHECK(distinct.count(r.sample.sender_seq) == 1);
            break;
        case reply_status::extra:
            // Only when the probes ask for further replies (Reflected Test Packet Control).
            FUZZ_CHECK(bumped(&session_stats::extra_replies, &counters::extra_replies));
            FUZZ_CHECK(cfg.tlvs.reflected_control && cfg.tlvs.reflected_control->count > 1);
            FUZZ_CHECK(distinct.count(r.sample.sender_seq) == 1);
            break;
        case reply_status::member_mismatch:
            FUZZ_CHECK(cfg.tlvs.micro_session.has_value());
            break;
        case reply_status::unknown_sequence:
            FUZZ_CHECK(bumped(&session_stats::unknown_sequence, &counters::unknown_sequence));
            break;
        case reply_status::malformed:
            FUZZ_CHECK(bumped(&session_stats::malformed, &counters::malformed));
            FUZZ_CHECK(reply.size() < kMinUsableReplyLen);
            break;
        case reply_status::ssid_mismatch:
            FUZZ_CHECK(bumped(&session_stats::ssid_mismatch, &counters::ssid_mismatch));
            FUZZ_CHECK(f == test_format::stamp);
            break;
        }
        FUZZ_CHECK(st.distinct_replies == distinct.size());
        FUZZ_CHECK(st.received == sampled.size());
        FUZZ_CHECK(st.received <= st.distinct_replies);
        FUZZ_CHECK(st.distinct_replies <= s.next_sequence());
        FUZZ_CHECK(st.sent + unsent == s.next_sequence());
    }
    return 0;
}
