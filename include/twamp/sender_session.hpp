// twamp/sender_session.hpp — the Session-Sender: probes, reply matching and accounting.
//
// RFC 5357 §4.1 (sender), RFC 8762 §4.2 (STAMP sender), RFC 6673 (round-trip loss with a waiting
// time), RFC 5560 (duplicates), RFC 4737 §3.3 (reordering). Sans-I/O: the transport asks for the
// next probe's octets with the transmit time T1 and hands every received datagram back with its
// receive time T4 and TTL. Replies are matched by the echoed Sender Sequence Number, never by
// arrival order; anything that does not match is counted and dropped, never fatal.
//
// Per-probe state lives in a ring of `window` slots allocated once. A reply for a probe that has
// left the ring is older than the loss timeout by construction (the transport sizes the window
// from timeout / interval), so it is late.
#pragma once

#include "twamp/clock.hpp"
#include "twamp/error.hpp"
#include "twamp/histogram.hpp"
#include "twamp/metrics.hpp"
#include "twamp/stamp_tlvs.hpp"
#include "twamp/stats.hpp"
#include "twamp/test_packet.hpp"
#include "twamp/timestamp.hpp"
#include "twamp/timestamp_source.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace twamp {

struct sender_config {
    test_format format = test_format::twamp;
    std::uint16_t ssid = 0; // STAMP Session-Sender Identifier; 0 = none
    std::chrono::nanoseconds timeout = std::chrono::seconds{5}; // per-probe loss timeout
    std::size_t window = 1 << 16; // probes tracked at once (rounded up to a power of two)
    error_estimate err{false, false, 0x3F, 0xFF};
    // RFC 6038 Reflect Octets (mode 32): the first `reflect_length` octets of every probe's
    // padding are filled from its sequence number (the first two carry `server_octets` when the
    // server asked for them) and must come back right after the reply's Sender TTL.
    std::uint16_t reflect_length = 0;
    std::uint16_t server_octets = 0;
    // RFC 6038 Symmetrical Size (mode 64): padding starts after 27 MBZ octets, at offset 41.
    bool symmetric = false;
    // The reflector numbers this session's replies from 0 (a full TWAMP session is new on the
    // server). Then a loss before the first reply can be split by direction too. A TWAMP Light or
    // STAMP reflector may keep numbering from an earlier run that used the same source port, so
    // there the origin is unknown and such losses are reported without a direction.
    bool reflector_counts_from_zero = false;
    // STAMP (unauthenticated): extension TLVs each probe carries right after the base (RFC 8972,
    // RFC 9503), before the Extra Padding TLV that fills the rest; a probe is at least
    // kStampBaseLen + stamp_tlv_request_size(tlvs) octets. What comes back is read into
    // reply_result::tlvs and session_stats::tlv.
    stamp_tlv_request tlvs{};
};

enum class reply_status : std::uint8_t {
    sample,           // an in-time reply: a delay sample
    late,             // first reply for the probe, after its loss timeout
    duplicate,        // the probe was already answered
    extra,            // a further reply the probe asked for (Reflected Test Packet Control TLV)
    member_mismatch,  // RFC 9534: the reply names another member link; discarded
    unknown_sequence, // we never sent that sequence number
    malformed,        // too short to be a reply
    ssid_mismatch,    // a STAMP reply for another session
};

struct reply_sample {
    std::uint32_t sender_seq = 0;
    std::uint32_t reflector_seq = 0;
    // T1 is the one the delays use: the kernel's send time when it came (set_kernel_t1), else
    // t1_wire, the user-space read written into the probe.
    nanoseconds t1{0}, t2{0}, t3{0}, t4{0};
    std::int64_t outbound_ns = 0;  // T2 - T1
    std::int64_t inbound_ns = 0;   // T4 - T3
    std::int64_t roundtrip_ns = 0; // (T4 - T1) - (T3 - T2)
    std::uint8_t sender_ttl = 0;   // as the reflector saw our probe (0 = unknown)
    std::uint8_t reply_ttl = 0;    // as we saw the reply (0 = unknown)
    bool truncated = false;
    nanoseconds t1_wire{0}; // the T1 the probe carries
    // Where each timestamp came from.
    timestamp_source t1_source = timestamp_source::user;
    timestamp_source t2_source = timestamp_source::unknown;
    timestamp_source t3_source = timestamp_source::unknown;
    timestamp_source t4_source = timestamp_source::unknown;
};

struct reply_result {
    reply_status status = reply_status::malformed;
    // For `sample` and for a `late` reply whose probe is still tracked, every field; otherwise the
    // sequence numbers only.
    reply_sample sample{};
    std::uint64_t reorder_extent = 0; // RFC 4737 extent of a reordered sample; 0 = in order
    // The reply's extension TLVs, read when the session asks for some (sender_config::tlvs),
    // for `sample` and `late` replies.
    std::optional<stamp_tlv_report> tlvs{};
};

class session_sender {
public:
    explicit session_sender(sender_config cfg)
        : cfg_(cfg), ring_(std::bit_ceil(std::max<std::size_t>(cfg.window, 16))),
          ipdv_(ring_.size()), reorder_(ring_.size())
    {
        mask_ = ring_.size() - 1;
        stats_.sender_synchronized = cfg_.err.synchronized;
        stats_.sender_error_s = cfg_.err.seconds();
        stats_.reflector_counts_from_zero = cfg_.reflector_counts_from_zero;
    }

    const sender_config& config() const noexcept { return cfg_; }
    const session_stats& stats() const noexcept { return stats_; }
    std::uint32_t next_sequence() const noexcept { return next_seq_; }
    void set_server_octets(std::uint16_t v) noexcept { cfg_.server_octets = v; }
    void set_error_estimate(error_estimate e) noexcept
    {
        cfg_.err = e;
        stats_.sender_synchronized = e.synchronized;
        stats_.sender_error_s = e.seconds();
    }

    // Writes the next probe (`total_len` octets) with T1 = `t1` and records it as sent. Returns
    // the length, or 0 when `total_len` is impossible or `out` is too small (nothing recorded).
    // Time (twamp/clock.hpp): t1.wall is T1 on the wire and in the delays; t1.mono starts the
    // probe's loss timeout, which on_reply() and expire() measure on the same monotonic clock,
    // so a wall-clock step neither loses nor saves a probe. A plain nanoseconds is both.
    std::size_t make_probe(instant t1_at, std::size_t total_len, wire::byte_span out) noexcept
    {
        const nanoseconds t1 = t1_at.wall;
        sender_packet p;
        p.seq = next_seq_;
        p.timestamp = cfg_.err.ptp ? to_ptp_truncated(t1) : to_ntp(t1).to_u64();
        p.err = cfg_.err;
        p.ssid = cfg_.ssid;
        if (encode_sender(p, cfg_.format, total_len, out)) return 0;
        if (cfg_.format == test_format::stamp && total_len > kStampBaseLen) {
            std::size_t at = kStampBaseLen;
            if (!cfg_.tlvs.empty()) {
                // RFC 9503 §3: a Destination Node Address goes with an SSID.
                if (cfg_.tlvs.destination_node && cfg_.ssid == 0) return 0;
                // S_TxC counts this probe too (RFC 8972 §4.5).
                std::size_t n = 0;
                if (write_stamp_tlvs(cfg_.tlvs, static_cast<std::uint32_t>(stats_.sent + 1),
                                     out.subspan(at, total_len - at), n))
                    return 0;
                at += n;
            }
            // Octets beyond the base and TLVs travel as one Extra Padding TLV (RFC 8972 §4.1),
            // which needs at least its 4-octet header: 1 to 3 octets more are impossible.
            if (total_len > at && write_stamp_extra_padding(out.subspan(at, total_len - at)))
                return 0;
        } else if (cfg_.format == test_format::stamp && !cfg_.tlvs.empty()) {
            return 0; // no room for the TLVs
        }
        if (cfg_.reflect_length) {
            const std::size_t at = padding_start();
            if (total_len < at + cfg_.reflect_length) return 0;
            write_reflect_block(next_seq_, out.subspan(at, cfg_.reflect_length));
        }
        slot& s = ring_[next_seq_ & mask_];
        s = slot{next_seq_,
                 t1.count(),
                 t1_at.mono.count(),
                 state::pending,
                 0,
                 stats_.sent,
                 0,
                 timestamp_source::user,
                 0};
        ++next_seq_;
        ++stats_.sent;
        return total_len;
    }

    // The transport could not send the probe just made: it is not counted as sent.
    void unsend_last() noexcept
    {
        if (next_seq_ == 0) return;
        ring_[(next_seq_ - 1) & mask_].st = state::failed;
        --stats_.sent;
        ++stats_.send_errors;
    }

    void on_unexpected_source() noexcept { ++stats_.unexpected_source; }
    // A protected reply failed authentication (RFC 4656 §4.2, RFC 8762 §4.4): dropped, counted.
    void on_auth_failure() noexcept { ++stats_.auth_failures; }
    // The network answered a probe with an ICMP error (the session goes on; RFC 4656 §4.1.2
    // leaves loss to the timeout).
    void on_icmp_error() noexcept { ++stats_.icmp_unreachable; }

    enum class kernel_t1_result : std::uint8_t {
        applied,     // the probe's delays will use it
        after_reply, // its reply was handled already, with the user-space T1 (counted)
        not_tracked, // no such probe in the window, or it failed to send
    };
    // The kernel's send time of probe `seq` (SO_TIMESTAMPING), `source` kernel or hardware: from
    // now on the probe's delays use it as T1; the probe on the wire keeps the user-space T1 it was
    // made with. Every stamp of a probe still tracked adds kernel - user-space T1 to
    // t1_kernel_minus_user(), answered or not.
    kernel_t1_result set_kernel_t1(std::uint32_t seq, nanoseconds t1,
                                   timestamp_source source = timestamp_source::kernel) noexcept
    {
        if (seq >= next_seq_ || next_seq_ - seq > ring_.size())
            return kernel_t1_result::not_tracked;
        slot& s = ring_[seq & mask_];
        if (s.seq != seq || s.st == state::empty || s.st == state::failed)
            return kernel_t1_result::not_tracked;
        t1_diff_.add(t1.count() - s.t1);
        if (s.st == state::answered || s.st == state::late) {
            ++stamps_after_reply_;
            return kernel_t1_result::after_reply;
        }
        s.t1_kernel = t1.count();
        s.t1_source = source;
        return kernel_t1_result::applied;
    }
    // Kernel T1 - user-space T1 (ns) of every probe stamped by the kernel.
    const log_histogram& t1_kernel_minus_user() const noexcept { return t1_diff_; }
    // Kernel stamps read only after their probe's reply was handled (that sample kept the
    // user-space T1).
    std::uint64_t stamps_after_reply() const noexcept { return stamps_after_reply_; }
    // Per timestamp (T1..T4), how many in-time samples took it from each source.
    const timestamp_source_counts& timestamp_sources() const noexcept { return sources_; }

    // Handles one datagram from the reflector. `reply_ttl` is the TTL/hop limit it arrived with,
    // 0 when unknown; `t4_source` says where T4 came from.
    reply_result on_reply(wire::const_byte_span data, instant t4_at, std::uint8_t reply_ttl,
                          timestamp_source t4_source = timestamp_source::unknown) noexcept
    {
        const nanoseconds t4 = t4_at.wall;
        reply_result r;
        reflector_packet p;
        if (decode_reflector(data, cfg_.format, p)) {
            ++stats_.malformed;
            return r;
        }
        if (cfg_.format == test_format::stamp && p.ssid != cfg_.ssid && p.ssid != 0) {
            // SSID 0 comes from reflectors without RFC 8972 support and is accepted.
            ++stats_.ssid_mismatch;
            r.status = reply_status::ssid_mismatch;
            return r;
        }
        const std::uint32_t seq = p.sender_seq;
        r.sample.sender_seq = seq;
        r.sample.reflector_seq = p.seq;
        if (seq >= next_seq_) {
            ++stats_.unknown_sequence;
            r.status = reply_status::unknown_sequence;
            return r;
        }
        slot& s = ring_[seq & mask_];
        if (s.seq != seq || s.st == state::failed || s.st == state::empty) {
            if (next_seq_ - seq > ring_.size()) {
                // Left the ring long ago: older than the timeout. One more late reply.
                ++stats_.late;
                r.status = reply_status::late;
                return r;
            }
            ++stats_.unknown_sequence;
            r.status = reply_status::unknown_sequence;
            return r;
        }
        if (s.st == state::answered || s.st == state::late) {
            // Replies beyond the first that a Reflected Test Packet Control TLV asked for: they
            // are neither duplicates nor losses; a stateful reflector numbers each of them.
            const auto& rc = cfg_.tlvs.reflected_control;
            if (rc && s.extras + 1u < rc->count) {
                ++s.extras;
                ++stats_.extra_replies;
                note_reflector_seq(p.seq);
                r.status = reply_status::extra;
                return r;
            }
            ++stats_.duplicates;
            // A stateful reflector that numbers a duplicate on its own saw our probe twice: the
            // copy was made on the way out, and its number is no inbound loss.
            if (p.seq != s.reflector_seq) {
                ++stats_.outbound_duplicates;
                note_reflector_seq(p.seq);
            }
            r.status = reply_status::duplicate;
            return r;
        }
        if (cfg_.format == test_format::stamp && !cfg_.tlvs.empty()) {
            r.tlvs = read_stamp_tlvs(data.size() > kStampBaseLen ? data.subspan(kStampBaseLen)
                                                                 : wire::const_byte_span{});
            const std::uint64_t mismatches = stats_.tlv.micro_session_mismatch;
            stats_.tlv.add(*r.tlvs, cfg_.tlvs.micro_session);
            if (stats_.tlv.micro_session_mismatch != mismatches) {
                // RFC 9534: a reply whose Micro-session IDs are not this session's came over
                // another member link; it is discarded (the probe stays unanswered).
                r.status = reply_status::member_mismatch;
                return r;
            }
        }
        if (p.truncated) ++stats_.short_replies;
        if (cfg_.reflect_length && !reflected_ok(seq, data)) ++stats_.reflected_octets_mismatch;
        if (!p.err.valid()) ++stats_.invalid_error_estimate;
        note_reflector_seq(p.seq);
        note_answered(s.ordinal);
        s.reflector_seq = p.seq;
        ++stats_.distinct_replies;

        const bool kernel_t1 = s.t1_kernel != 0;
        const nanoseconds t1{kernel_t1 ? s.t1_kernel : s.t1};
        const nanoseconds t2 = wire_to_ns(p.receive_timestamp, p.err.ptp, t4);
        const nanoseconds t3 = wire_to_ns(p.timestamp, p.err.ptp, t4);
        reply_sample& m = r.sample;
        m.t1 = t1;
        m.t1_wire = nanoseconds{s.t1};
        m.t1_source = kernel_t1 ? s.t1_source : timestamp_source::user;
        m.t4_source = t4_source;
        if (r.tlvs && r.tlvs->timestamps) {
            // RFC 8972 §4.3: the reflector's own word on how it took T2 (in) and T3 (out).
            m.t2_source = from_tlv_method(r.tlvs->timestamps->method_in);
            m.t3_source = from_tlv_method(r.tlvs->timestamps->method_out);
        }
        m.t2 = t2;
        m.t3 = t3;
        m.t4 = t4;
        m.outbound_ns = (t2 - t1).count();
        m.inbound_ns = (t4 - t3).count();
        m.roundtrip_ns = ((t4 - t1) - (t3 - t2)).count();
        m.sender_ttl = p.truncated ? 0 : p.sender_ttl;
        m.reply_ttl = reply_ttl;
        m.truncated = p.truncated;
        // One probe, one fate: once expire() has declared it lost, a reply is late whatever its
        // T4 says (the transport reads every queued reply before it expires probes, so this only
        // happens to a reply that was still on its way at that moment).
        if (s.st == state::expired || t4_at.mono - nanoseconds{s.t1_mono} > cfg_.timeout) {
            s.st = state::late;
            ++stats_.late;
            r.status = reply_status::late;
            return r;
        }
        s.st = state::answered;
        ++stats_.received;
        sources_.add(m.t1_source, m.t2_source, m.t3_source, m.t4_source);
        r.reorder_extent = reorder_.add(seq);
        if (r.reorder_extent) {
            ++stats_.reordered;
            stats_.max_reorder_extent = std::max(stats_.max_reorder_extent, r.reorder_extent);
        }
        ipdv_.add(seq, {m.outbound_ns, m.inbound_ns, m.roundtrip_ns},
                  [this](const delay_triple& v) {
                      stats_.ipdv.outbound.add(v[0]);
                      stats_.ipdv.inbound.add(v[1]);
                      stats_.ipdv.roundtrip.add(v[2]);
                  });
        stats_.outbound.add(m.outbound_ns);
        stats_.inbound.add(m.inbound_ns);
        stats_.roundtrip.add(m.roundtrip_ns);
        if (m.sender_ttl) stats_.forward_hops.add(static_cast<std::uint8_t>(255 - m.sender_ttl));
        if (reply_ttl) stats_.backward_hops.add(static_cast<std::uint8_t>(255 - reply_ttl));
        if (!p.err.synchronized) stats_.reflector_synchronized = false;
        if (p.err.valid())
            stats_.reflector_error_s = std::max(stats_.reflector_error_s, p.err.seconds());
        r.status = reply_status::sample;
        return r;
    }

    // True when every probe sent so far has been answered (late ones included).
    bool all_answered() const noexcept { return stats_.distinct_replies >= stats_.sent; }

    // Declares lost, in sequence order, every probe still unanswered whose loss timeout has
    // passed at `now`, a monotonic time like make_probe()'s t1.mono (T1 + timeout < now; all of
    // them with nanoseconds::max()): calls
    // `on_lost(seq, t1)` once per probe. The decision is final: a reply that still comes later
    // is reported as late, never as a sample. Probes overwritten in the ring before their turn
    // (a window smaller than the timeout needs) are skipped.
    template <class F> void expire(nanoseconds now, F&& on_lost)
    {
        while (expire_cursor_ < next_seq_) {
            slot& s = ring_[expire_cursor_ & mask_];
            if (s.seq == expire_cursor_ && s.st != state::empty && s.st != state::failed) {
                if (now != nanoseconds::max() && nanoseconds{s.t1_mono} + cfg_.timeout >= now)
                    break;
                if (s.st == state::pending) {
                    s.st = state::expired;
                    on_lost(expire_cursor_, nanoseconds{s.t1});
                }
            }
            ++expire_cursor_;
        }
    }

    // Where a probe's padding starts (14, or 41 with Symmetrical Size).
    std::size_t padding_start() const noexcept
    {
        return cfg_.symmetric ? kReflectorUnauthLen : sender_base_len(cfg_.format);
    }

private:
    enum class state : std::uint8_t { empty, pending, expired, answered, late, failed };

    void write_reflect_block(std::uint32_t seq, wire::byte_span b) const noexcept
    {
        for (std::size_t i = 0; i < b.size(); ++i)
            b[i] = static_cast<std::uint8_t>(seq >> (8 * (3 - i % 4)));
        if (cfg_.server_octets && b.size() >= 2) wire::store16(b.data(), cfg_.server_octets);
    }
    bool reflected_ok(std::uint32_t seq, wire::const_byte_span reply) const noexcept
    {
        if (reply.size() < kReflectorUnauthLen + cfg_.reflect_length) return false;
        std::uint8_t want[64];
        for (std::size_t off = 0; off < cfg_.reflect_length; off += sizeof want) {
            const std::size_t n = std::min<std::size_t>(sizeof want, cfg_.reflect_length - off);
            for (std::size_t i = 0; i < n; ++i)
                want[i] = static_cast<std::uint8_t>(seq >> (8 * (3 - (off + i) % 4)));
            if (off == 0 && cfg_.server_octets && n >= 2) wire::store16(want, cfg_.server_octets);
            if (!std::equal(want, want + n, reply.data() + kReflectorUnauthLen + off)) return false;
        }
        return true;
    }
    struct slot {
        std::uint32_t seq = 0;
        std::int64_t t1 = 0;      // wall (T1)
        std::int64_t t1_mono = 0; // monotonic (the loss timeout)
        state st = state::empty;
        std::uint32_t reflector_seq = 0; // of the first reply
        std::uint64_t ordinal = 0;       // probes sent before this one (failed sends excluded)
        std::int64_t t1_kernel = 0;      // the kernel's send time (T1 for the delays); 0 = none
        timestamp_source t1_source = timestamp_source::user;
        std::uint16_t extras = 0; // further replies asked for and received (reflected control)
    };

    void note_answered(std::uint64_t ordinal) noexcept
    {
        if (stats_.distinct_replies == 0) {
            stats_.first_answered_ordinal = stats_.last_answered_ordinal = ordinal;
            return;
        }
        stats_.first_answered_ordinal = std::min(stats_.first_answered_ordinal, ordinal);
        stats_.last_answered_ordinal = std::max(stats_.last_answered_ordinal, ordinal);
    }

    void note_reflector_seq(std::uint32_t rseq) noexcept
    {
        if (!stats_.have_reflector_seq) {
            stats_.have_reflector_seq = true;
            stats_.min_reflector_seq = stats_.max_reflector_seq = rseq;
            return;
        }
        stats_.min_reflector_seq = std::min(stats_.min_reflector_seq, rseq);
        stats_.max_reflector_seq = std::max(stats_.max_reflector_seq, rseq);
    }

    sender_config cfg_;
    std::vector<slot> ring_;
    std::size_t mask_ = 0;
    std::uint32_t next_seq_ = 0;
    std::uint32_t expire_cursor_ = 0;
    ipdv_tracker ipdv_;
    reorder_tracker reorder_;
    session_stats stats_;
    timestamp_source_counts sources_;
    log_histogram t1_diff_;
    std::uint64_t stamps_after_reply_ = 0;
};

} // namespace twamp
