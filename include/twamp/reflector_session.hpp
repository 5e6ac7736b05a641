// twamp/reflector_session.hpp — the Session-Reflector: per-sender state and the reply builder.
//
// RFC 5357 §4.2 and Appendix I (TWAMP Light), RFC 8762 §4.3 (STAMP stateless and stateful
// reflectors), RFC 8972 §3-4 (SSID, TLVs). Sans-I/O: the transport hands in the request octets,
// the sender's address key, the receive time T2 and the received TTL, and gets the reply octets
// back; T3 is written by the transport right before the send (stamp_reflector_timestamp).
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
};

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
    // reply is dropped here (counted). After sending a reply whose tlv_out says `follow_up`, the
    // transport reports its send time with note_sent() (Follow-Up Telemetry of the next reply).
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
            if (request.size() > kStampBaseLen) {
                std::copy(request.begin() + kStampBaseLen, request.end(), o + kStampBaseLen);
                const stamp_tlv_outcome tlv =
                    process_tlvs(out.subspan(kStampBaseLen, request.size() - kStampBaseLen), from,
                                 info, session, r.seq, t2_wire);
                if (tlv.malformed) ++counters_.tlv_malformed;
                if (tlv.suppress_reply) {
                    ++counters_.no_reply_requested;
                    return 0;
                }
                if (tlv_out) *tlv_out = tlv;
            }
            const std::size_t copied = std::max(request.size(), kStampBaseLen);
            if (reply_len > copied) std::fill(o + copied, o + reply_len, std::uint8_t{0});
            ++counters_.stamp;
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
    };

    stamp_tlv_outcome process_tlvs(wire::byte_span tlvs, const peer_key& from,
                                   const reflector_rx_info* info, slot* session,
                                   std::uint32_t reply_seq, std::uint64_t t2_wire) noexcept
    {
        stamp_tlv_context ctx;
        static constexpr std::array<std::uint8_t, 12> v4_mapped{0, 0, 0, 0, 0,    0,
                                                                0, 0, 0, 0, 0xFF, 0xFF};
        const bool v4 = std::equal(v4_mapped.begin(), v4_mapped.end(), from.addr.begin());
        ctx.source.v6 = !v4;
        std::copy(from.addr.begin() + (v4 ? 12 : 0), from.addr.end(), ctx.source.octets.begin());
        ctx.source_port = from.port;
        if (info) {
            ctx.destination = info->destination;
            ctx.destination_port = info->destination_port;
            ctx.tos = info->tos;
        }
        ctx.sync =
            cfg_.sync_source.value_or(cfg_.err.synchronized ? stamp_tlv::sync_source::ntp
                                                            : stamp_tlv::sync_source::free_running);
        ctx.t2_method = cfg_.t2_method;
        ctx.t3_method = cfg_.t3_method;
        ctx.stateless = session == nullptr;
        if (session) {
            ++session->rx;
            ctx.received = session->rx;
            ctx.transmitted = session->tx + 1; // this reply
            if (session->has_last)
                ctx.previous = stamp_tlv_context::previous_reply{
                    session->last_reply_seq, session->last_t3, session->last_method};
        } else {
            // Answered statelessly: the reflector's own totals.
            ctx.received = static_cast<std::uint32_t>(counters_.received);
            ctx.transmitted = static_cast<std::uint32_t>(counters_.reflected + 1);
        }
        const auto is_local = [&](const tlv_address& a) {
            return (ctx.destination && *ctx.destination == a) ||
                   std::find(cfg_.local_addresses.begin(), cfg_.local_addresses.end(), a) !=
                       cfg_.local_addresses.end();
        };
        const stamp_tlv_outcome out = reflect_stamp_tlvs(tlvs, ctx, cfg_.tlv_policy, is_local);
        if (session && !out.suppress_reply) {
            ++session->tx;
            // Until the transport says when it left, the reply's T3 is its provisional T2.
            session->has_last = true;
            session->last_reply_seq = reply_seq;
            session->last_t3 = t2_wire;
            session->last_method = cfg_.t3_method;
        }
        return out;
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
};

} // namespace twamp
