// twamp/reflector_session.hpp — the Session-Reflector: per-sender state and the reply builder.
//
// RFC 5357 §4.2 and Appendix I (TWAMP Light), RFC 8762 §4.3 (STAMP stateless and stateful
// reflectors), RFC 8972 §3-4 (SSID, TLVs), RFC 9534 (Micro-session ID), the Reflected Test Packet
// Control TLV of draft-ietf-ippm-asymmetrical-pkts (build_reflected_reply). Sans-I/O: the transport
// hands in the request octets, the sender's address key, the receive time T2 and the received TTL,
// and gets the reply octets back; T3 is written by the transport right before the send
// (stamp_reflector_timestamp).
//
// Memory is bounded: the session table is allocated once (open addressing, fixed capacity) and
// idle sessions are dropped after REFWAIT. When the table is full a request from a new sender is
// still answered, statelessly, and counted — reflecting never allocates.
#pragma once

#include "twamp/clock.hpp"
#include "twamp/error.hpp"
#include "twamp/stamp_tlvs.hpp"
#include "twamp/test_packet.hpp"
#include "twamp/timestamp.hpp"
#include "twamp/wire.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

namespace twamp {

// Which reply rule the reflector applies.
enum class reflector_format : std::uint8_t {
    automatic, // STAMP for STAMP-shaped requests (looks_like_stamp), TWAMP otherwise
    twamp,
    stamp,
};

struct reflector_config {
    bool stateless = false; // echo the sender's sequence number instead of counting
    reflector_format format = reflector_format::automatic;
    std::chrono::nanoseconds refwait = std::chrono::seconds{900};
    std::size_t max_sessions = 4096;
    error_estimate err{false, false, 0x3F, 0xFF}; // refreshed by the transport from the clock
    // Drop requests shorter than the reply they would cause (no amplification at all).
    bool strict_size = false;
    // Pad replies up to at least this many octets (twampy's responder --padding); 0 = mirror the
    // request size only, which keeps both directions equal (RFC 5357 §4.2.1).
    std::size_t min_reply_len = 0;
    // RFC 6038 Symmetrical Size (mode 64): the sender's padding starts after 27 MBZ octets, at
    // offset 41, and is returned from there (with Reflect Octets the octets to be reflected are
    // the first of that padding). Otherwise padding starts at 14 (RFC 5357, and Reflect Octets
    // alone: RFC 6038 §4.2).
    bool symmetric = false;
    // Key of the session-table hash; 0: a random key drawn once per process, so a sender cannot
    // choose ports and SSIDs that collide.
    std::uint64_t hash_key = 0;
    // Longest run of slots a lookup may walk. A request whose lookup would walk further is
    // answered statelessly and counted (probe_limit), so no choice of keys makes lookups slow.
    std::size_t max_probe = 32;
    // STAMP extension TLVs (RFC 8972, RFC 9503): local policy, the clock's synchronisation
    // source and how T2 and T3 are taken (Timestamp Information), and this host's addresses
    // (Destination Node Address; the address a request arrived on counts as local too).
    stamp_tlv_policy tlv_policy{};
    std::optional<stamp_tlv::sync_source> sync_source{}; // unset: NTP when err says synchronised
    stamp_tlv::timestamp_method t2_method = stamp_tlv::timestamp_method::sw_local;
    stamp_tlv::timestamp_method t3_method = stamp_tlv::timestamp_method::sw_local;
    std::vector<tlv_address> local_addresses{};
};

// What the transport read besides the sender's address: the request's destination and DS field
// (for STAMP TLVs: Location, Class of Service, Destination Node Address).
struct reflector_rx_info {
    std::optional<tlv_address> destination{};
    std::uint16_t destination_port = 0;
    std::optional<std::uint8_t> tos{};
};

// Who sent a request: address as 16 octets (IPv4 as ::ffff:a.b.c.d), UDP port.
struct peer_key {
    std::array<std::uint8_t, 16> addr{};
    std::uint16_t port = 0;
    friend constexpr bool operator==(const peer_key&, const peer_key&) = default;
};

struct reflector_counters {
    std::uint64_t received = 0;         // datagrams handed to reflect()
    std::uint64_t reflected = 0;        // replies built
    std::uint64_t malformed = 0;        // too short to be a test packet; dropped
    std::uint64_t too_short_strict = 0; // dropped by strict_size
    std::uint64_t stamp = 0;            // replies built with the STAMP rule
    std::uint64_t sessions_created = 0;
    std::uint64_t sessions_expired = 0;
    std::uint64_t table_full = 0;         // answered statelessly because the table was full
    std::uint64_t probe_limit = 0;        // answered statelessly: the lookup reached max_probe
    std::uint64_t longest_probe = 0;      // most slots one lookup has walked
    std::uint64_t tlv_malformed = 0;      // STAMP requests whose TLVs stopped at a malformed one
    std::uint64_t no_reply_requested = 0; // RFC 9503 Return Path Control Code 0: not answered
    std::uint64_t micro_session_mismatch = 0;    // RFC 9534: for another member link; dropped
    std::uint64_t reflected_control = 0;         // Reflected Test Packet Control TLVs honoured
    std::uint64_t reflected_control_clamped = 0; // ... of which not as asked (C)
    std::uint64_t reflected_extra = 0; // replies after the first announced to the transport
};

// Reflected Test Packet Control (draft-ietf-ippm-asymmetrical-pkts): builds reply k
// (1 <= k < rc.count) into `out` from the first reply `reply0` (as reflect() built it, T3 and all)
// and returns its length, 0 when k or a buffer is out of range. Every reply has rc.reply_len
// octets (padding included). Its Sequence Number follows RFC 8762 §4.3.1: a stateful reflector
// counts the packets it transmits, so reply k carries first_seq + k (reflect() reserved them); a
// stateless one copies the sender's, so every reply carries the same. A Direct Measurement TLV
// counts this reply too (R_TxC first_tx + k). Everything else is reply 0's: the Session-Sender
// fields that tie the reply to the probe, T2, the TLVs. The transport writes T3
// (stamp_reflector_timestamp) right before each send, and an authenticated transport seals each
// reply, as for reply 0.
inline std::size_t build_reflected_reply(wire::const_byte_span reply0,
                                         const stamp_tlv_outcome::reflected_control_outcome& rc,
                                         std::uint16_t k, wire::byte_span out) noexcept
{
    const std::size_t n = rc.reply_len;
    if (k == 0 || k >= rc.count || n < kStampBaseLen || reply0.size() < n || out.size() < n)
        return 0;
    std::copy_n(reply0.data(), n, out.data());
    if (rc.stateful) wire::store32(out.data(), rc.first_seq + k);
    if (rc.tx_counter_at >= kStampBaseLen && std::size_t{rc.tx_counter_at} + 4 <= n)
        wire::store32(out.data() + rc.tx_counter_at, rc.first_tx + k);
    return n;
}

class session_reflector {
public:
    explicit session_reflector(reflector_config cfg = {})
        : cfg_(cfg), slots_(std::bit_ceil(std::max<std::size_t>(16, cfg.max_sessions * 2)))
    {
        mask_ = slots_.size() - 1;
        key_ = cfg_.hash_key ? cfg_.hash_key : process_hash_key();
        if (cfg_.max_probe == 0) cfg_.max_probe = 1;
    }

    // The per-process random key of the session-table hash (never 0).
    static std::uint64_t process_hash_key()
    {
        static const std::uint64_t key = [] {
            std::random_device rd;
            const std::uint64_t k = std::uint64_t{rd()} << 32 ^ rd();
            return k ? k : 0x6A09E667F3BCC909ull;
        }();
        return key;
    }

    const reflector_config& config() const noexcept { return cfg_; }
    void set_error_estimate(error_estimate e) noexcept { cfg_.err = e; }
    void set_symmetric(bool on) noexcept { cfg_.symmetric = on; }
    const reflector_counters& counters() const noexcept { return counters_; }
    std::size_t active_sessions() const noexcept { return used_; }

    // Builds the reply to `request` into `out` and returns its length, or 0 when the request is
    // dropped (counted). T3 in the reply is provisionally T2; the caller overwrites it with
    // stamp_reflector_timestamp() just before sending. `ttl` is the received IP TTL / hop limit
    // (255 when the transport could not read it, as RFC 5357 §4.2.1 asks). `rx` is the receive
    // time: its wall reading is T2 on the wire, its monotonic reading runs REFWAIT (expire()
    // takes the same monotonic clock); a plain nanoseconds T2 serves as both.
    //
    // STAMP TLVs are processed in the reply (stamp_tlvs.hpp): `info`, when given, adds what the
    // transport read (destination, DS field); `tlv_out`, when given, receives what the transport
    // must do with the reply (DSCP, source, destination). A request whose Return Path asks for no
    // reply is dropped here (counted), and so is one whose Micro-session ID TLV names another
    // member link (RFC 9534). After sending a reply whose tlv_out says `follow_up`, the
    // transport reports its send time with note_sent() (Follow-Up Telemetry of the next reply).
    // A Reflected Test Packet Control TLV honoured by local policy leaves tlv_out's
    // reflected_control set: the reply built here is reply 0 of `count` (already as long as
    // asked); the transport sends replies 1..count-1 (build_reflected_reply) `interval_ns` apart.
    std::size_t reflect(wire::const_byte_span request, const peer_key& from, instant rx,
                        std::uint8_t ttl, wire::byte_span out,
                        const reflector_rx_info* info = nullptr,
                        stamp_tlv_outcome* tlv_out = nullptr) noexcept
    {
        const nanoseconds t2 = rx.wall;
        ++counters_.received;
        if (request.size() < kSenderUnauthLen || request.size() > kMaxTestPacketLen) {
            ++counters_.malformed;
            return 0;
        }
        const bool stamp =
            cfg_.format == reflector_format::stamp ||
            (cfg_.format == reflector_format::automatic && looks_like_stamp(request));
        // A request shorter than the base is answered with the base (RFC 5357 §4.2.1, RFC 8762
        // §4.6); a STAMP-only reflector reads the sender octets it did not get as zero.
        const test_format f = stamp ? test_format::stamp : test_format::twamp;
        const std::size_t base = reflector_base_len(f);
        const std::size_t reply_len =
            std::min(std::max({request.size(), base, cfg_.min_reply_len}), kMaxTestPacketLen);
        if (cfg_.strict_size && reply_len > request.size()) {
            ++counters_.too_short_strict;
            return 0;
        }
        if (out.size() < reply_len) {
            ++counters_.malformed;
            return 0;
        }

        // Sender fields, read in place; a short request (forced STAMP) has its missing octets read
        // as zero through a scratch copy.
        std::array<std::uint8_t, kStampBaseLen> scratch{};
        sender_packet s;
        (void)decode_sender(detail::zero_extended(request, scratch), f, s); // cannot fail: >= 44
        const std::uint32_t sender_seq = s.seq;
        const std::uint16_t ssid = s.ssid;

        reflector_packet r;
        slot* session = nullptr;
        r.seq = next_sequence(from, ssid, sender_seq, rx.mono, session);
        r.err = cfg_.err;
        const std::uint64_t t2_wire = cfg_.err.ptp ? to_ptp_truncated(t2) : to_ntp(t2).to_u64();
        r.timestamp = t2_wire;
        r.receive_timestamp = t2_wire;
        r.ssid = ssid;
        r.sender_seq = sender_seq;
        r.sender_timestamp = s.timestamp;
        r.sender_err = s.err;
        r.sender_ttl = ttl;
        (void)encode_reflector_base(r, f, out);

        std::uint8_t* o = out.data();
        if (stamp) {
            // Octets after the 44-octet base (TLVs) go back at the same offsets.
            std::size_t len = reply_len;
            bool pad = false; // an Extra Padding TLV after the request's TLVs
            if (request.size() > kStampBaseLen) {
                std::copy(request.begin() + kStampBaseLen, request.end(), o + kStampBaseLen);
                const reply_shape shape{reply_len, request.size(),
                                        std::min(out.size(), kMaxTestPacketLen), cfg_.strict_size};
                // Written in place (a reset, not a fresh outcome: cheaper on this path).
                stamp_tlv_outcome& tlv = tlv_out ? *tlv_out : tlv_scratch_;
                tlv.reset();
                process_tlvs(tlv, out.subspan(kStampBaseLen, request.size() - kStampBaseLen), from,
                             info, session, r.seq, t2_wire, shape, rx.mono);
                if (tlv.malformed) ++counters_.tlv_malformed;
                if (tlv.micro_session_mismatch) {
                    ++counters_.micro_session_mismatch;
                    if (session) --session->next_seq; // no reply: no number used
                    return 0;
                }
                if (tlv.suppress_reply) {
                    ++counters_.no_reply_requested;
                    return 0;
                }
                if (tlv.reflected_control) {
                    auto& rc = *tlv.reflected_control;
                    if (rc.tx_counter_at)
                        rc.tx_counter_at =
                            static_cast<std::uint16_t>(rc.tx_counter_at + kStampBaseLen);
                    pad = rc.reply_len > len;
                    len = rc.reply_len;
                    ++counters_.reflected_control;
                    counters_.reflected_extra += rc.count - 1u;
                }
            }
            const std::size_t copied = std::max(request.size(), kStampBaseLen);
            if (len > copied) std::fill(o + copied, o + len, std::uint8_t{0});
            if (pad) { // zero-filled value, flags clear
                o[copied + 1] = stamp_tlv::kTypeExtraPadding;
                wire::store16(o + copied + 2, static_cast<std::uint16_t>(
                                                  len - copied - test_layout::tlv::header_size));
            }
            ++counters_.stamp;
            ++counters_.reflected;
            return len;
        } else if (reply_len > kReflectorUnauthLen) {
            // The sender's padding follows our header; its last 27 octets are dropped so the reply
            // is exactly as long as the request (RFC 5357 §4.2.1). Octets beyond what the request
            // holds (min_reply_len) are zero.
            const std::size_t from = cfg_.symmetric ? kReflectorUnauthLen : kSenderUnauthLen;
            const std::size_t want = reply_len - kReflectorUnauthLen;
            const std::size_t have = request.size() > from ? request.size() - from : 0;
            const std::size_t n = std::min(want, have);
            std::copy_n(request.data() + from, n, o + kReflectorUnauthLen);
            std::fill(o + kReflectorUnauthLen + n, o + reply_len, std::uint8_t{0});
        }
        ++counters_.reflected;
        return reply_len;
    }

    // The reply for (from, ssid) just left at `t3` (wire format, the reply's Z): what the next
    // reply's Follow-Up Telemetry TLV reports (RFC 8972 §4.7).
    void note_sent(const peer_key& from, std::uint16_t ssid, std::uint64_t t3,
                   stamp_tlv::timestamp_method method) noexcept
    {
        if (cfg_.stateless) return;
        std::size_t i = hash(from, ssid);
        for (std::size_t walked = 0; slots_[i].used && walked < cfg_.max_probe; ++walked) {
            if (slots_[i].key == from && slots_[i].ssid == ssid) {
                slots_[i].last_t3 = t3;
                slots_[i].last_method = method;
                return;
            }
            i = (i + 1) & mask_;
        }
    }

    // Drops sessions idle for longer than REFWAIT. Call from a timer, not per packet; `now` is
    // on the clock of reflect()'s instant::mono.
    void expire(nanoseconds now) noexcept
    {
        for (std::size_t i = 0; i < slots_.size();) {
            slot& s = slots_[i];
            if (s.used && now - s.last_seen > cfg_.refwait) {
                erase_at(i);
                ++counters_.sessions_expired;
                continue; // erase_at moved another entry into i
            }
            ++i;
        }
        last_sweep_ = now;
    }

private:
    struct slot {
        peer_key key{};
        std::uint16_t ssid = 0;
        bool used = false;
        std::uint32_t next_seq = 0;
        nanoseconds last_seen{0};
        // STAMP TLVs: in-profile counters (Direct Measurement) and the previous reply
        // (Follow-Up Telemetry).
        std::uint32_t rx = 0, tx = 0;
        bool has_last = false;
        std::uint32_t last_reply_seq = 0;
        std::uint64_t last_t3 = 0;
        stamp_tlv::timestamp_method last_method = stamp_tlv::timestamp_method::sw_local;
        // Reflected Test Packet Control: the session's token bucket, in octets.
        std::uint64_t rc_tokens = 0;
        nanoseconds rc_refill{0};
    };

    // The reply as reflect() built it, for the Reflected Test Packet Control decision.
    struct reply_shape {
        std::size_t reply_len = 0;
        std::size_t tlvs_end = 0;
        std::size_t room = 0;
        bool strict = false;
    };

    // Adds what the time since the last refill earned (one second's worth at most).
    static void refill(slot& s, std::uint64_t rate, nanoseconds now) noexcept
    {
        constexpr std::uint64_t ns_per_s = 1'000'000'000;
        rate = std::min<std::uint64_t>(rate, 1'000'000'000'000); // keeps the products in range
        const auto dt = now - s.rc_refill;
        s.rc_refill = now;
        if (dt.count() <= 0) return;
        const std::uint64_t ns =
            std::min<std::uint64_t>(static_cast<std::uint64_t>(dt.count()), ns_per_s);
        const std::uint64_t earned = rate / ns_per_s * ns + rate % ns_per_s * ns / ns_per_s;
        s.rc_tokens = std::min(rate, s.rc_tokens + earned);
    }

    // One look at the TLVs: any with I, and whether all are Extra Padding or types this
    // reflector does not process, all well formed (then only their flags change: 0 and U).
    struct tlv_scan {
        bool any_i = false;
        bool simple = true;
    };
    static tlv_scan scan(wire::byte_span tlvs) noexcept
    {
        namespace T = test_layout::tlv;
        tlv_scan r;
        std::size_t pos = 0;
        while (tlvs.size() - pos >= T::header_size) {
            const std::uint8_t* h = tlvs.data() + pos;
            const std::uint8_t type = h[T::type.offset];
            if (type == 0) break; // padding after the TLVs
            const std::size_t len = wire::load16(h + T::length.offset);
            if (h[T::flags.offset] & stamp_tlv::kFlagI) r.any_i = true;
            if (len > tlvs.size() - pos - T::header_size) {
                r.simple = false;
                break;
            }
            if (type >= stamp_tlv::kTypeLocation && type <= stamp_tlv::kTypeReflectedControl &&
                type != stamp_tlv::kTypeHmac)
                r.simple = false;
            pos += T::header_size + len;
        }
        if (r.any_i) r.simple = false;
        return r;
    }

    // Walks the TLVs into `out` (reset), filling the context a TLV reads only when one does, and
    // only the part it reads (Extra Padding and unknown types need none). The context is a member
    // reused from request to request: every part rewrites all of its fields.
    void process_tlvs(stamp_tlv_outcome& out, wire::byte_span tlvs, const peer_key& from,
                      const reflector_rx_info* info, slot* session, std::uint32_t reply_seq,
                      std::uint64_t t2_wire, const reply_shape& shape, nanoseconds now) noexcept
    {
        if (session) ++session->rx;
        const tlv_scan sc = scan(tlvs);
        if (sc.simple) {
            for_each_stamp_tlv(tlvs, [&](const stamp_tlv_header& h) {
                ++out.count;
                tlvs[h.offset + test_layout::tlv::flags.offset] =
                    h.type == stamp_tlv::kTypeExtraPadding ? 0 : stamp_tlv::kFlagU;
            });
        } else {
            walk_tlvs(out, tlvs, sc.any_i, from, info, session, shape, now);
        }
        finish_tlvs(out, session, reply_seq, t2_wire);
    }

    void walk_tlvs(stamp_tlv_outcome& out, wire::byte_span tlvs, bool any_i, const peer_key& from,
                   const reflector_rx_info* info, slot* session, const reply_shape& shape,
                   nanoseconds now) noexcept
    {
        unsigned built = 0;
        stamp_tlv_context& ctx = ctx_;
        const auto ctx_of = [&](ctx_part part) -> const stamp_tlv_context& {
            const unsigned bit = static_cast<unsigned>(part);
            if (!(built & bit)) {
                built |= bit;
                build_context(ctx, part, from, info, session, shape, now);
            }
            return ctx;
        };
        const auto is_local = [&](const tlv_address& a) {
            const auto& d = ctx_of(ctx_part::addresses).destination;
            return (d && *d == a) ||
                   std::find(cfg_.local_addresses.begin(), cfg_.local_addresses.end(), a) !=
                       cfg_.local_addresses.end();
        };
        reflect_stamp_tlvs_into(out, tlvs, any_i, ctx_of, cfg_.tlv_policy, is_local, true);
        if (out.reflected_control) out.reflected_control->first_tx = ctx.transmitted;
    }

    // The session's side of the walk: counters, numbers reserved, budget, the previous reply.
    void finish_tlvs(stamp_tlv_outcome& out, slot* session, std::uint32_t reply_seq,
                     std::uint64_t t2_wire) noexcept
    {
        if (out.micro_session_mismatch) {
            if (session) --session->rx;
            return;
        }
        std::uint32_t replies = 1;
        if (out.reflected_control && !out.suppress_reply) {
            auto& rc = *out.reflected_control;
            replies = rc.count;
            rc.stateful = session != nullptr;
            rc.first_seq = reply_seq;
            if (session) {
                session->rc_tokens -= std::min<std::uint64_t>(session->rc_tokens, rc.cost);
                session->next_seq += replies - 1; // reply k carries reply_seq + k
            }
            if (!rc.exact) ++counters_.reflected_control_clamped;
        }
        if (session && !out.suppress_reply) {
            session->tx += replies;
            // Until the transport says when it left, the reply's T3 is its provisional T2.
            session->has_last = true;
            session->last_reply_seq = reply_seq + (replies - 1);
            session->last_t3 = t2_wire;
            session->last_method = cfg_.t3_method;
        }
    }

    // Fills one part of the context.
    void build_context(stamp_tlv_context& ctx, ctx_part part, const peer_key& from,
                       const reflector_rx_info* info, slot* session, const reply_shape& shape,
                       nanoseconds now) noexcept
    {
        switch (part) {
        case ctx_part::addresses: {
            static constexpr std::array<std::uint8_t, 12> v4_mapped{0, 0, 0, 0, 0,    0,
                                                                    0, 0, 0, 0, 0xFF, 0xFF};
            const bool v4 = std::equal(v4_mapped.begin(), v4_mapped.end(), from.addr.begin());
            ctx.source = tlv_address{};
            ctx.source.v6 = !v4;
            std::copy(from.addr.begin() + (v4 ? 12 : 0), from.addr.end(),
                      ctx.source.octets.begin());
            ctx.source_port = from.port;
            ctx.destination = info ? info->destination : std::nullopt;
            ctx.destination_port = info ? info->destination_port : std::uint16_t{0};
            ctx.source_mac.reset();
            return;
        }
        case ctx_part::clock:
            ctx.sync = cfg_.sync_source.value_or(cfg_.err.synchronized
                                                     ? stamp_tlv::sync_source::ntp
                                                     : stamp_tlv::sync_source::free_running);
            ctx.t2_method = cfg_.t2_method;
            ctx.t3_method = cfg_.t3_method;
            return;
        case ctx_part::tos:
            ctx.tos = info ? info->tos : std::nullopt;
            return;
        case ctx_part::session:
        case ctx_part::reply:
            break;
        }
        if (part == ctx_part::reply) {
            build_reply_part(ctx, session, shape, now);
            return;
        }
        ctx.stateless = session == nullptr;
        if (session) {
            ctx.received = session->rx;
            ctx.transmitted = session->tx + 1; // this reply
            if (session->has_last)
                ctx.previous = stamp_tlv_context::previous_reply{
                    session->last_reply_seq, session->last_t3, session->last_method};
            else
                ctx.previous.reset();
        } else {
            ctx.previous.reset();
            // Answered statelessly: the reflector's own totals.
            ctx.received = static_cast<std::uint32_t>(counters_.received);
            ctx.transmitted = static_cast<std::uint32_t>(counters_.reflected + 1);
        }
    }

    void build_reply_part(stamp_tlv_context& ctx, slot* session, const reply_shape& shape,
                          nanoseconds now) noexcept
    {
        // R_TxC of the first reply, for the replies after it.
        if (session)
            ctx.transmitted = session->tx + 1;
        else
            ctx.transmitted = static_cast<std::uint32_t>(counters_.reflected + 1);
        ctx.reply_len = shape.reply_len;
        ctx.tlvs_end = shape.tlvs_end;
        ctx.reply_room = shape.room;
        ctx.no_amplification = shape.strict;
        const auto& rcp = cfg_.tlv_policy.reflected_control;
        ctx.reflected_budget.reset();
        if (rcp.enabled && rcp.max_octets_per_second) {
            if (session) {
                refill(*session, rcp.max_octets_per_second, now);
                ctx.reflected_budget = session->rc_tokens;
            } else {
                ctx.reflected_budget = 0; // no slot, no bucket: nothing beyond one reply
            }
        }
    }

    std::size_t hash(const peer_key& k, std::uint16_t ssid) const noexcept
    {
        // Two 64-bit words of address plus port and SSID, each folded in with the secret key
        // and mixed with multiply-xorshift rounds; the key makes the slot unpredictable.
        std::uint64_t a, b;
        std::memcpy(&a, k.addr.data(), 8);
        std::memcpy(&b, k.addr.data() + 8, 8);
        std::uint64_t h = (a ^ key_) * 0x9E3779B97F4A7C15ull;
        h = (h ^ (h >> 32) ^ b ^ std::rotl(key_, 21)) * 0xBF58476D1CE4E5B9ull;
        h = (h ^ (h >> 29) ^ (std::uint64_t{k.port} << 16 | ssid) ^ std::rotl(key_, 43)) *
            0x94D049BB133111EBull;
        h = (h ^ (h >> 31) ^ key_) * 0xD6E8FEB86659FD93ull;
        return static_cast<std::size_t>(h ^ (h >> 32)) & mask_;
    }

    std::uint32_t next_sequence(const peer_key& from, std::uint16_t ssid, std::uint32_t sender_seq,
                                nanoseconds now, slot*& session) noexcept
    {
        session = nullptr;
        if (cfg_.stateless) return sender_seq;
        std::size_t i = hash(from, ssid);
        std::size_t walked = 0;
        while (slots_[i].used) {
            slot& s = slots_[i];
            if (s.key == from && s.ssid == ssid) {
                if (now - s.last_seen > cfg_.refwait) { // a new session
                    s = slot{from, ssid, true, 0, now};
                }
                s.last_seen = now;
                session = &s;
                return s.next_seq++;
            }
            i = (i + 1) & mask_;
            if (++walked > counters_.longest_probe) counters_.longest_probe = walked;
            if (walked >= cfg_.max_probe) {
                ++counters_.probe_limit;
                return sender_seq;
            }
        }
        if (used_ >= cfg_.max_sessions) {
            // Try to make room once per second at most, so a flood cannot make every packet sweep.
            if (now - last_sweep_ > std::chrono::seconds{1}) expire(now);
            if (used_ >= cfg_.max_sessions) {
                ++counters_.table_full;
                return sender_seq;
            }
            return next_sequence(from, ssid, sender_seq, now, session);
        }
        slots_[i] = slot{from, ssid, true, 1, now};
        session = &slots_[i];
        ++used_;
        ++counters_.sessions_created;
        return 0;
    }

    // Backward-shift deletion keeps linear probing correct without tombstones.
    void erase_at(std::size_t i) noexcept
    {
        slots_[i].used = false;
        --used_;
        std::size_t j = i;
        for (;;) {
            j = (j + 1) & mask_;
            if (!slots_[j].used) return;
            const std::size_t home = hash(slots_[j].key, slots_[j].ssid);
            // Move j back to i if its home position is not cyclically in (i, j].
            const bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!in_range) {
                slots_[i] = slots_[j];
                slots_[j].used = false;
                i = j;
            }
        }
    }

    reflector_config cfg_;
    std::vector<slot> slots_;
    std::size_t mask_ = 0;
    std::uint64_t key_ = 0;
    std::size_t used_ = 0;
    nanoseconds last_sweep_{0};
    reflector_counters counters_;
    // Reused on every request (see process_tlvs): never read before a part is rewritten.
    stamp_tlv_context ctx_{};
    stamp_tlv_outcome tlv_scratch_{};
};

} // namespace twamp
