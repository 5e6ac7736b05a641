// twamp/stamp_tlvs.hpp — the STAMP extension TLVs a reflector answers and a sender asks for:
// RFC 8972 §4.1–4.7 (Extra Padding, Location, Timestamp Information, Class of Service, Direct
// Measurement, Access Report, Follow-Up Telemetry), RFC 9503 (Destination Node Address, Return
// Path with its Control Code, Return Address, SR-MPLS label stack and SRv6 segment list), RFC 9534
// (Micro-session ID, type 11) and the Reflected Test Packet Control TLV (type 12) of
// draft-ietf-ippm-asymmetrical-pkts.
//
// Three pieces, all sans-I/O on spans of the octets that follow a STAMP base:
//   - reflector: reflect_stamp_tlvs() processes the TLVs already copied into a reply in place
//     (fills what the reflector observed, sets the U, M and I flags as RFC 8972 §4 says) and
//     returns what the transport must do about the reply (DSCP, source, destination, none, how
//     many replies of which length at which interval);
//   - sender: stamp_tlv_request says which TLVs to ask for; write_stamp_tlvs() lays them out;
//   - sender: read_stamp_tlvs() reads a reflected set into a stamp_tlv_report (skipping U,
//     stopping at M, discarding everything on I, as RFC 8972 §4 asks of a Session-Sender).
// The HMAC TLV (type 8) is the authenticated transport's business (asio/test_guard.hpp): here it is
// an unrecognised TLV, which the guard then re-flags when it seals the reply.
#pragma once

#include "twamp/error.hpp"
#include "twamp/test_layout.hpp"
#include "twamp/test_packet.hpp"
#include "twamp/wire.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace twamp {

namespace stamp_tlv {
// STAMP TLV Types (IANA): RFC 8972 §5.1, RFC 9503 §7.
inline constexpr std::uint8_t kTypeLocation = 2;
inline constexpr std::uint8_t kTypeTimestampInfo = 3;
inline constexpr std::uint8_t kTypeClassOfService = 4;
inline constexpr std::uint8_t kTypeDirectMeasurement = 5;
inline constexpr std::uint8_t kTypeAccessReport = 6;
inline constexpr std::uint8_t kTypeFollowUp = 7;
inline constexpr std::uint8_t kTypeDestinationNode = 9;
inline constexpr std::uint8_t kTypeReturnPath = 10;
inline constexpr std::uint8_t kTypeMicroSession = 11;     // RFC 9534 §3.1, §5
inline constexpr std::uint8_t kTypeReflectedControl = 12; // draft-ietf-ippm-asymmetrical-pkts
// Bits 3–7 of the flags octet are reserved: zero on transmit, ignored on receipt (RFC 8972 §4).
inline constexpr std::uint8_t kFlagsReserved = 0x1F;
// Bit 3 (0x10), the C flag of draft-ietf-ippm-asymmetrical-pkts, set by a reflector on the
// Reflected Test Packet Control TLV only: the replies are not exactly what was asked (clamped to
// local caps, or a part of the request not implemented). Reserved in every other TLV.
inline constexpr std::uint8_t kFlagC = 0x10;
inline constexpr std::uint8_t kFlagsUMI = kFlagU | kFlagM | kFlagI;

// Value lengths fixed by the RFCs.
inline constexpr std::size_t kTimestampInfoLen = 4; // at least; sub-TLVs may follow
inline constexpr std::size_t kClassOfServiceLen = 4;
inline constexpr std::size_t kDirectMeasurementLen = 12;
inline constexpr std::size_t kAccessReportLen = 4;
inline constexpr std::size_t kFollowUpLen = 16;
inline constexpr std::size_t kLocationFixedLen = 4; // Destination Port, Source Port
inline constexpr std::size_t kMicroSessionLen = 4;  // Sender, Reflector Micro-session ID
// Reflected Test Packet Control: Length of the Reflected Packet (2), Number of the Reflected
// Packets (2), Interval Between the Reflected Packets (4, nanoseconds); sub-TLVs may follow.
inline constexpr std::size_t kReflectedControlLen = 8;

// Location sub-TLV types (RFC 8972 §5.3): the generic ones a sender asks with, and the specific
// ones a reflector answers with.
namespace location {
enum : std::uint8_t {
    source_mac = 1,
    source_eui48 = 2,
    source_eui64 = 3,
    destination_ip = 4,
    destination_ipv4 = 5,
    destination_ipv6 = 6,
    source_ip = 7,
    source_ipv4 = 8,
    source_ipv6 = 9,
};
inline constexpr std::size_t mac_len = 8;
inline constexpr std::size_t ip_len = 16;
} // namespace location

// Return Path sub-TLV types (RFC 9503 §4.1).
namespace return_path {
enum : std::uint8_t { control_code = 1, return_address = 2, sr_mpls_labels = 3, srv6_segments = 4 };
inline constexpr std::uint32_t reply_same_link = 0x1; // Control Code flag; 0 = no reply
} // namespace return_path

// STAMP Synchronization Sources and Timestamping Methods (RFC 8972 §5.4, §5.5).
enum class sync_source : std::uint8_t {
    ntp = 1,
    ptp = 2,
    ssu_bits = 3,
    gnss = 4,
    free_running = 5,
};
enum class timestamp_method : std::uint8_t {
    hw_assist = 1,
    sw_local = 2,
    control_plane = 3,
};
// Access Report IDs and Return Codes (RFC 8972 §4.6, §5.6).
inline constexpr std::uint8_t kAccess3gpp = 1;
inline constexpr std::uint8_t kAccessNon3gpp = 2;
inline constexpr std::uint8_t kReturnNetworkAvailable = 1;
inline constexpr std::uint8_t kReturnNetworkUnavailable = 2;
} // namespace stamp_tlv

// An IP address as the TLVs carry it: 4 or 16 octets.
struct tlv_address {
    bool v6 = false;
    std::array<std::uint8_t, 16> octets{}; // IPv4: the first 4
    std::size_t size() const noexcept { return v6 ? 16 : 4; }
    friend bool operator==(const tlv_address&, const tlv_address&) = default;
};

// The parts of a stamp_tlv_context a TLV reads (reflect_stamp_tlvs_lazy).
enum class ctx_part : std::uint8_t {
    addresses = 1, // ports, source, destination, source_mac (Location, Destination Node Address)
    clock = 2,     // sync, t2_method, t3_method (Timestamp Information)
    tos = 4,       // tos (Class of Service)
    session = 8,   // received, transmitted, stateless, previous (Direct Measurement, Follow-Up)
    reply = 16,    // reply_len ... reflected_budget (Reflected Test Packet Control)
};

// What the transport observed for one request, and what the reflector knows of itself.
struct stamp_tlv_context {
    std::uint16_t source_port = 0;            // the request's UDP source port
    std::uint16_t destination_port = 0;       // the request's UDP destination port
    tlv_address source;                       // the request's IP source
    std::optional<tlv_address> destination{}; // its IP destination, when the transport read it
    std::optional<std::array<std::uint8_t, 6>> source_mac{}; // when known (rarely, on a host)
    std::optional<std::uint8_t> tos{}; // the received DS field (DSCP << 2 | ECN), when read
    stamp_tlv::sync_source sync = stamp_tlv::sync_source::free_running;
    stamp_tlv::timestamp_method t2_method = stamp_tlv::timestamp_method::sw_local;
    stamp_tlv::timestamp_method t3_method = stamp_tlv::timestamp_method::sw_local;
    // In-profile counters for Direct Measurement: requests received in the session including
    // this one, replies transmitted including this one.
    std::uint32_t received = 0;
    std::uint32_t transmitted = 0;
    bool stateless = false;
    // Follow-Up Telemetry: the session's previous reply, when there was one.
    struct previous_reply {
        std::uint32_t seq = 0;
        std::uint64_t timestamp = 0; // on the wire's format (the reply's Z bit)
        stamp_tlv::timestamp_method method = stamp_tlv::timestamp_method::sw_local;
    };
    std::optional<previous_reply> previous{};
    // The request's HMAC TLV failed verification (RFC 8972 §4.8): nothing is processed, every
    // TLV gets I.
    bool integrity_failed = false;
    // Reflected Test Packet Control: the reply as built so far, in octets from the start of the
    // STAMP packet (UDP payload).
    std::size_t reply_len = 0;  // the reply's length without the TLV: max(request, base, minimum)
    std::size_t tlvs_end = 0;   // where the request's TLVs end (an Extra Padding TLV goes there)
    std::size_t reply_room = 0; // the longest reply the transport's buffer takes
    bool no_amplification = false; // strict size: never more octets out than came in
    std::optional<std::uint64_t> reflected_budget{}; // octets the session may still send for
                                                     // such requests; unset: no rate cap
};

// Reflected Test Packet Control (draft-ietf-ippm-asymmetrical-pkts): off unless local policy
// turns it on, and then capped so that a request can never make the reflector send more than
// these allow.
struct reflected_control_policy {
    bool enabled = false;
    std::uint16_t max_replies = 4;       // replies per request, the first one included (>= 1)
    std::size_t max_reply_octets = 1472; // octets of one reply (STAMP packet, UDP payload)
    // Octets per second one session (sender address, port and SSID) may make the reflector send
    // for such requests: a token bucket of one second's worth in the session's slot. 0: no rate
    // cap (the per-request caps still hold). With a cap, a request answered statelessly (no
    // slot: stateless reflector, full table) gets one ordinary reply.
    std::uint64_t max_octets_per_second = 125'000;
};

// Local policy (RFC 8972 §4.2.2, §4.4; RFC 9503 §4; RFC 9534; draft-ietf-ippm-asymmetrical-pkts).
struct stamp_tlv_policy {
    bool report_location = true;          // fill ports and addresses in Location
    std::uint64_t permitted_dscp = ~0ull; // bit d: the reply may carry DSCP d (CoS DSCP1)
    bool honour_return_address = false;   // send replies to a Return Address sub-TLV
    bool reply_same_link = false;         // the transport can answer on the receiving link
    // RFC 9534: the Reflector Micro-session ID this reflector reports, i.e. the LAG member link it
    // stands for. A host learns neither the member a request came in on nor chooses the one a
    // reply leaves on (the bonding driver hashes flows onto members), so this is configuration:
    // one reflector (address, port) per member, each told its ID. Unset: the Micro-session ID
    // TLV is not supported here and is returned with U, as RFC 8972 §4 asks for a TLV a
    // reflector does not process.
    std::optional<std::uint16_t> micro_session_id{};
    reflected_control_policy reflected_control{};
};

// What a Reflected Test Packet Control TLV asks for.
struct reflected_control_request {
    std::uint16_t length = 0;      // of each reflected packet, octets; 0: as usual
    std::uint16_t count = 1;       // reflected packets; 0 and 1: one
    std::uint32_t interval_ns = 0; // between two reflected packets
    bool sub_tlvs = false;         // Address Group sub-TLVs follow (not implemented)
    friend bool operator==(const reflected_control_request&,
                           const reflected_control_request&) = default;
};

// What the reflector sends for one: `count` replies of `reply_len` octets, `interval_ns` apart.
struct reflected_control_decision {
    std::size_t reply_len = 0;
    std::uint16_t count = 1;
    std::uint32_t interval_ns = 0;
    bool exact = true;      // as asked (the TLV leaves with C clear)
    std::uint64_t cost = 0; // octets charged to the session's budget
};

// What the transport must do with the reply.
struct stamp_tlv_outcome {
    std::uint32_t count = 0;                   // TLVs walked
    bool malformed = false;                    // processing stopped at a malformed TLV
    std::optional<std::uint8_t> reply_dscp{};  // CoS: the DSCP the reply leaves with
    std::optional<tlv_address> reply_source{}; // Destination Node Address: answer from it
    std::optional<tlv_address> reply_to{};     // Return Address: answer to it
    bool suppress_reply = false;               // Return Path Control Code 0: no reply wanted
    bool follow_up = false; // a Follow-Up Telemetry TLV was answered: report this reply\'s send
                            // time for the next one (session_reflector::note_sent)
    // RFC 9534: the request's Reflector Micro-session ID names another member link; the request
    // is discarded.
    bool micro_session_mismatch = false;
    // Reflected Test Packet Control, when one was honoured (even clamped). Offsets are from the
    // start of the span handed to reflect_stamp_tlvs(); session_reflector::reflect() reports them
    // from the start of the STAMP packet.
    struct reflected_control_outcome {
        std::uint16_t reply_len = 0;   // every reply's length, octets (UDP payload)
        std::uint16_t count = 1;       // replies in all, the one reflect() built included
        std::uint32_t interval_ns = 0; // between two replies
        // Sequence Number of reply k (stateful reflector): first_seq + k; stateless: all equal.
        std::uint32_t first_seq = 0;
        // Direct Measurement R_TxC of reply k: first_tx + k, at this offset (0: none).
        std::uint32_t first_tx = 0;
        std::uint16_t tx_counter_at = 0;
        bool stateful = false;
        bool exact = true;      // as asked; otherwise the TLV left with C
        std::uint32_t cost = 0; // octets charged to the session's budget (count x reply_len)
        friend bool operator==(const reflected_control_outcome&,
                               const reflected_control_outcome&) = default;
    };
    std::optional<reflected_control_outcome> reflected_control{};

    // Back to a default-constructed outcome, member by member (cheaper than assigning {} to a
    // struct this size on the reflect path; keep in step with the members).
    void reset() noexcept
    {
        count = 0;
        malformed = false;
        reply_dscp.reset();
        reply_source.reset();
        reply_to.reset();
        suppress_reply = false;
        follow_up = false;
        micro_session_mismatch = false;
        reflected_control.reset();
    }
    friend bool operator==(const stamp_tlv_outcome&, const stamp_tlv_outcome&) = default;
};

// Text form: dotted quad, or RFC 5952 IPv6 (lower case, the longest run of two or more zero
// groups as "::").
inline std::string to_string(const tlv_address& a)
{
    std::string out;
    if (!a.v6) {
        for (int i = 0; i < 4; ++i) {
            if (i) out += '.';
            out += std::to_string(a.octets[static_cast<std::size_t>(i)]);
        }
        return out;
    }
    std::array<unsigned, 8> g{};
    for (std::size_t i = 0; i < 8; ++i)
        g[i] = static_cast<unsigned>(a.octets[2 * i] << 8 | a.octets[2 * i + 1]);
    int best = -1, best_len = 1; // a run must be at least 2 groups long
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && g[static_cast<std::size_t>(j)] == 0)
            ++j;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j > i ? j : i + 1;
    }
    static constexpr char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            out += "::";
            i += best_len - 1;
            continue;
        }
        if (!out.empty() && out.back() != ':') out += ':';
        const unsigned v = g[static_cast<std::size_t>(i)];
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            const unsigned d = (v >> shift) & 0xF;
            if (d || started || shift == 0) {
                out += hex[d];
                started = true;
            }
        }
    }
    return out;
}

namespace detail {

inline void store_address(std::uint8_t* p, const tlv_address& a) noexcept
{
    std::copy_n(a.octets.begin(), a.size(), p);
}

inline tlv_address load_address(const std::uint8_t* p, bool v6) noexcept
{
    tlv_address a;
    a.v6 = v6;
    std::copy_n(p, v6 ? 16 : 4, a.octets.begin());
    return a;
}

// Walks sub-TLVs in `v` (a TLV's value, or part of it). Returns false when one runs past the
// end or fewer than 4 octets are left over (RFC 8972 §4: a malformed TLV); f(flags&, type,
// value span) otherwise for each.
template <class F> bool for_each_sub_tlv(wire::byte_span v, F&& f)
{
    namespace T = test_layout::tlv;
    std::size_t pos = 0;
    while (pos < v.size()) {
        if (v.size() - pos < T::header_size) return false;
        std::uint8_t* h = v.data() + pos;
        const std::size_t len = wire::load16(h + T::length.offset);
        if (len > v.size() - pos - T::header_size) return false;
        if (!f(h[T::flags.offset], h[T::type.offset], v.subspan(pos + T::header_size, len)))
            return false;
        pos += T::header_size + len;
    }
    return true;
}

inline bool fill_location(wire::byte_span v, const stamp_tlv_context& ctx,
                          const stamp_tlv_policy& pol) noexcept
{
    namespace L = stamp_tlv::location;
    if (v.size() < stamp_tlv::kLocationFixedLen) return false;
    wire::store16(v.data(), pol.report_location ? ctx.destination_port : 0);
    wire::store16(v.data() + 2, pol.report_location ? ctx.source_port : 0);
    return for_each_sub_tlv(
        v.subspan(stamp_tlv::kLocationFixedLen),
        [&](std::uint8_t& flags, std::uint8_t& type, wire::byte_span sv) {
            const std::uint8_t t = type;
            const bool mac = t == L::source_mac || t == L::source_eui48 || t == L::source_eui64;
            const bool dst =
                t == L::destination_ip || t == L::destination_ipv4 || t == L::destination_ipv6;
            const bool src = t == L::source_ip || t == L::source_ipv4 || t == L::source_ipv6;
            if (!mac && !dst && !src) {
                flags = stamp_tlv::kFlagU;
                return true; // not ours: copied, U
            }
            if (sv.size() != (mac ? L::mac_len : L::ip_len)) {
                flags = stamp_tlv::kFlagM;
                return false;
            }
            flags = 0; // U and M clear; I is always 0 in sub-TLVs (RFC 8972 §4.2.1)
            std::fill(sv.begin(), sv.end(), std::uint8_t{0});
            if (mac) {
                // EUI-48 when the MAC is known; otherwise EUI-64, zero (RFC 8972 §4.2.2).
                if (ctx.source_mac && pol.report_location) {
                    type = L::source_eui48;
                    std::copy(ctx.source_mac->begin(), ctx.source_mac->end(), sv.begin());
                } else {
                    type = L::source_eui64;
                }
                return true;
            }
            // The family follows the received packet's; an address not read stays zero.
            const bool v6 = ctx.source.v6;
            if (dst) {
                type = v6 ? L::destination_ipv6 : L::destination_ipv4;
                if (pol.report_location && ctx.destination && ctx.destination->v6 == v6)
                    store_address(sv.data(), *ctx.destination);
            } else {
                type = v6 ? L::source_ipv6 : L::source_ipv4;
                if (pol.report_location) store_address(sv.data(), ctx.source);
            }
            return true;
        });
}

// RFC 9503 §4: returns false when the Return Path TLV is malformed; sets `usable` to whether the
// reflector can honour it and records the action in `out`.
inline bool process_return_path(wire::byte_span v, const stamp_tlv_policy& pol,
                                stamp_tlv_outcome& out, bool& usable) noexcept
{
    namespace R = stamp_tlv::return_path;
    std::optional<std::uint32_t> code{};
    std::optional<tlv_address> addr{};
    bool segments = false;
    bool dup = false;
    const bool ok =
        for_each_sub_tlv(v, [&](std::uint8_t& flags, std::uint8_t& type, wire::byte_span sv) {
            switch (type) {
            case R::control_code:
                if (sv.size() != 4) break;
                if (code) dup = true;
                if (!code) code = wire::load32(sv.data());
                flags = 0;
                return true;
            case R::return_address:
                if (sv.size() != 4 && sv.size() != 16) break;
                if (addr) dup = true;
                if (!addr) addr = load_address(sv.data(), sv.size() == 16);
                flags = 0;
                return true;
            case R::sr_mpls_labels:
                if (sv.empty() || sv.size() % 4 != 0) break;
                segments = true;
                // A host cannot push the label stack: this sub-TLV is not honoured.
                flags = stamp_tlv::kFlagU;
                return true;
            case R::srv6_segments:
                if (sv.empty() || sv.size() % 16 != 0) break;
                segments = true;
                flags = stamp_tlv::kFlagU; // nor insert an SRv6 routing header
                return true;
            default:
                flags = stamp_tlv::kFlagU;
                return true;
            }
            flags = stamp_tlv::kFlagM;
            return false;
        });
    if (!ok || v.empty()) return false;
    (void)dup; // a second sub-TLV of a kind is ignored (RFC 9503 §4.1.3)
    if (code) {
        // A Control Code excludes the other sub-TLVs; they are ignored (RFC 9503 §4.1.1).
        if ((*code & R::reply_same_link) == 0) {
            out.suppress_reply = true;
            usable = true;
        } else {
            usable = pol.reply_same_link;
        }
        return true;
    }
    usable = !segments;
    if (addr) {
        if (pol.honour_return_address)
            out.reply_to = addr;
        else
            usable = false;
    }
    return true;
}

} // namespace detail

// Reflected Test Packet Control: what the reflector sends for `req`, given the reply reflect()
// built (ctx.reply_len, ctx.tlvs_end), the room for it (ctx.reply_room), the session's budget
// and the local caps. Rules:
//   - Number 0 or 1 is one reply; more are capped at max_replies (1 with no_amplification);
//   - Length 0 or the usual length leaves the reply as it is; a longer one is reached with an
//     Extra Padding TLV appended after the request's TLVs (so at least 4 octets more than they
//     take), capped at max_reply_octets and the room; a shorter one cannot be had (every TLV of
//     the request goes back) and the reply keeps its length;
//   - Address Group sub-TLVs (the request picks which reflectors answer) are not implemented:
//     one ordinary reply;
//   - with a rate cap, the replies' octets come from the session's budget: as many replies as it
//     pays for, and one ordinary reply (not charged) when it cannot pay for one;
//   - anything short of the request is said with C (exact = false); the TLV's fields go back as
//     received.
inline reflected_control_decision decide_reflected_control(const reflected_control_request& req,
                                                           const stamp_tlv_context& ctx,
                                                           const reflected_control_policy& pol)
{
    constexpr std::size_t h = test_layout::tlv::header_size;
    reflected_control_decision d;
    const std::size_t natural = ctx.reply_len;
    d.reply_len = natural;
    d.interval_ns = req.interval_ns;
    if (req.sub_tlvs) {
        d.exact = false;
        return d;
    }
    std::uint16_t count = req.count == 0 ? std::uint16_t{1} : req.count;
    const std::uint16_t max_count =
        ctx.no_amplification ? std::uint16_t{1} : std::max<std::uint16_t>(pol.max_replies, 1);
    if (count > max_count) {
        count = max_count;
        d.exact = false;
    }
    std::size_t len = natural;
    if (req.length != 0 && req.length < natural) {
        d.exact = false;
    } else if (req.length > natural) {
        const std::size_t cap =
            ctx.no_amplification ? natural : std::min(ctx.reply_room, pol.max_reply_octets);
        std::size_t want = req.length;
        if (want < ctx.tlvs_end + h) { // no room for a TLV header in between
            want = ctx.tlvs_end + h;
            d.exact = false;
        }
        if (want > cap) {
            want = cap > natural && cap >= ctx.tlvs_end + h ? cap : natural;
            d.exact = false;
        }
        len = want;
    }
    if ((count > 1 || len > natural) && ctx.reflected_budget) {
        const std::uint64_t afford = *ctx.reflected_budget / len;
        if (afford == 0) {
            count = 1;
            len = natural;
            d.exact = false;
        } else if (afford < count) {
            count = static_cast<std::uint16_t>(afford);
            d.exact = false;
        }
    }
    d.count = count;
    d.reply_len = len;
    if (count > 1 || len > natural) d.cost = std::uint64_t{count} * len;
    return d;
}

// Reflector: processes the TLVs in `tlvs` (the reply's octets after the base, a copy of the
// request's) in place, as RFC 8972 §4 and RFC 9503 ask of a Session-Reflector:
//   - a TLV it implements is filled in and leaves with U, M and I clear;
//   - a TLV it does not implement, or cannot honour, leaves as received with U set;
//   - the first malformed TLV (a Length wrong for its type, or running past the packet) gets M
//     and ends processing: it and every TLV after it are copied as received;
//   - with ctx.integrity_failed, or when a TLV arrives with I set (a sender sends I clear, so
//     that is the authenticated transport's verdict), every TLV gets I and nothing else changes
//     (RFC 8972 §4.8);
//   - reserved flag bits leave zero.
// `is_local(const tlv_address&) -> bool` says whether an address is one of this host's
// (Destination Node Address, RFC 9503 §3). A header of type 0 ends the walk (padding).
//
// This form takes the context lazily: `ctx_of(ctx_part) -> const stamp_tlv_context&` is called
// only for a TLV that needs it (not for Extra Padding, unknown types or malformed ones), naming
// the part of the context it reads, so a reflector fills only that. `integrity_failed` is the
// context's flag of that name.
// The outcome goes into `out`, which the caller has reset. `i_scanned`: the caller has looked
// for TLVs with I already and passes what it found in `integrity_failed`.
template <class CtxOf, class IsLocal>
void reflect_stamp_tlvs_into(stamp_tlv_outcome& out, wire::byte_span tlvs, bool integrity_failed,
                             CtxOf&& ctx_of, const stamp_tlv_policy& pol, IsLocal&& is_local,
                             bool i_scanned = false)
{
    namespace S = stamp_tlv;
    namespace T = test_layout::tlv;
    bool stopped = false;
    bool return_path_seen = false;
    bool reflected_control_seen = false;
    // A Session-Sender sends I clear, so an I already set is the authenticated transport's
    // verdict on the request's HMAC TLV (asio/test_guard.hpp marks every TLV so).
    bool failed = integrity_failed;
    std::size_t tx_counter_at = 0; // Direct Measurement R_TxC, for the replies after the first
    if (!i_scanned)
        for_each_stamp_tlv(tlvs, [&](const stamp_tlv_header& h) {
            if (h.flags & S::kFlagI) failed = true;
        });
    for_each_stamp_tlv(tlvs, [&](const stamp_tlv_header& h) {
        ++out.count;
        std::uint8_t& flags = tlvs[h.offset + T::flags.offset];
        if (failed) {
            flags = static_cast<std::uint8_t>((flags & ~S::kFlagsReserved) | S::kFlagI);
            return;
        }
        if (stopped) return;
        if (!h.fits) {
            flags = S::kFlagM;
            out.malformed = stopped = true;
            return;
        }
        wire::byte_span v = tlvs.subspan(h.offset + T::header_size, h.length);
        bool understood = true;
        bool well_formed = true;
        std::uint8_t extra = 0; // flag bits besides U, M, I (C)
        switch (h.type) {
        case S::kTypeExtraPadding:
            break;
        case S::kTypeLocation:
            well_formed = detail::fill_location(v, ctx_of(ctx_part::addresses), pol);
            break;
        case S::kTypeTimestampInfo:
            if (v.size() < S::kTimestampInfoLen) {
                well_formed = false;
                break;
            }
            {
                const stamp_tlv_context& ctx = ctx_of(ctx_part::clock);
                v[0] = static_cast<std::uint8_t>(ctx.sync);
                v[1] = static_cast<std::uint8_t>(ctx.t2_method);
                v[2] = static_cast<std::uint8_t>(ctx.sync);
                v[3] = static_cast<std::uint8_t>(ctx.t3_method);
                break;
            }
        case S::kTypeClassOfService: {
            if (v.size() != S::kClassOfServiceLen) {
                well_formed = false;
                break;
            }
            const std::uint8_t dscp1 = static_cast<std::uint8_t>(v[0] >> 2);
            const std::optional<std::uint8_t> tos = ctx_of(ctx_part::tos).tos;
            const std::uint8_t rx = tos.value_or(0);
            const std::uint8_t dscp2 = static_cast<std::uint8_t>(rx >> 2);
            const std::uint8_t ecn = static_cast<std::uint8_t>(rx & 3);
            const bool permitted = ((pol.permitted_dscp >> dscp1) & 1u) != 0;
            const std::uint8_t rp = permitted ? 0 : 1;
            // Not permitted: the reply keeps the received DSCP (unknown when not read).
            if (permitted)
                out.reply_dscp = dscp1;
            else if (tos)
                out.reply_dscp = dscp2;
            v[0] = static_cast<std::uint8_t>(dscp1 << 2 | dscp2 >> 4);
            v[1] = static_cast<std::uint8_t>((dscp2 & 0xF) << 4 | ecn << 2 | rp);
            v[2] = 0;
            v[3] = 0;
            break;
        }
        case S::kTypeDirectMeasurement: {
            if (v.size() != S::kDirectMeasurementLen) {
                well_formed = false;
                break;
            }
            const stamp_tlv_context& ctx = ctx_of(ctx_part::session);
            wire::store32(v.data() + 4, ctx.received);
            wire::store32(v.data() + 8, ctx.transmitted);
            tx_counter_at = h.offset + T::header_size + 8;
            break;
        }
        case S::kTypeAccessReport:
            if (v.size() != S::kAccessReportLen) {
                well_formed = false;
                break;
            }
            // An ID other than 3GPP or non-3GPP is discarded (RFC 8972 §4.6): not processed.
            if ((v[0] >> 4) != S::kAccess3gpp && (v[0] >> 4) != S::kAccessNon3gpp)
                understood = false;
            break; // ID and Return Code are echoed as received
        case S::kTypeFollowUp: {
            if (v.size() != S::kFollowUpLen) {
                // Zero what of Sequence Number and Timestamp is there, then M (RFC 8972 §4.7).
                std::fill_n(v.begin(), std::min<std::size_t>(v.size(), 12), std::uint8_t{0});
                well_formed = false;
                break;
            }
            std::fill(v.begin(), v.end(), std::uint8_t{0});
            const stamp_tlv_context& ctx = ctx_of(ctx_part::session);
            out.follow_up = !ctx.stateless;
            if (!ctx.stateless && ctx.previous) {
                wire::store32(v.data(), ctx.previous->seq);
                wire::store64(v.data() + 4, ctx.previous->timestamp);
                v[12] = static_cast<std::uint8_t>(ctx.previous->method);
            }
            break;
        }
        case S::kTypeDestinationNode: {
            if (v.size() != 4 && v.size() != 16) {
                well_formed = false;
                break;
            }
            const tlv_address a = detail::load_address(v.data(), v.size() == 16);
            if (is_local(a))
                out.reply_source = a;
            else
                understood = false; // not the intended node (RFC 9503 §3)
            break;
        }
        case S::kTypeReturnPath: {
            if (return_path_seen) { // only the first one counts (RFC 9503 §4)
                flags = S::kFlagU;
                return;
            }
            return_path_seen = true;
            bool usable = false;
            well_formed = detail::process_return_path(v, pol, out, usable);
            understood = usable;
            break;
        }
        case S::kTypeMicroSession: {
            // RFC 9534 §3: the Sender Micro-session ID goes back as received; the Reflector
            // Micro-session ID is this reflector's. A non-zero one naming another member link
            // means the request is not for this member: it is discarded.
            if (!pol.micro_session_id) {
                understood = false; // no member-link ID configured: not supported here, as if
                break;              // unknown (U, value and length as received)
            }
            if (v.size() != S::kMicroSessionLen) {
                well_formed = false;
                break;
            }
            const std::uint16_t wanted = wire::load16(v.data() + 2);
            if (wanted != 0 && wanted != *pol.micro_session_id) out.micro_session_mismatch = true;
            wire::store16(v.data() + 2, *pol.micro_session_id);
            break;
        }
        case S::kTypeReflectedControl: {
            // Off by local policy: not supported here, as if unknown. Only the first one counts.
            if (!pol.reflected_control.enabled || reflected_control_seen) {
                understood = false;
                break;
            }
            if (v.size() < S::kReflectedControlLen) {
                well_formed = false;
                break;
            }
            reflected_control_seen = true;
            const wire::byte_span subs = v.subspan(S::kReflectedControlLen);
            // Sub-TLVs must fit; none is acted on, so each goes back with U.
            if (!detail::for_each_sub_tlv(subs,
                                          [](std::uint8_t& f, std::uint8_t&, wire::byte_span) {
                                              f = S::kFlagU;
                                              return true;
                                          })) {
                well_formed = false;
                break;
            }
            const reflected_control_request req{wire::load16(v.data()), wire::load16(v.data() + 2),
                                                wire::load32(v.data() + 4), !subs.empty()};
            const reflected_control_decision d =
                decide_reflected_control(req, ctx_of(ctx_part::reply), pol.reflected_control);
            stamp_tlv_outcome::reflected_control_outcome rc;
            rc.reply_len = static_cast<std::uint16_t>(d.reply_len); // <= kMaxTestPacketLen
            rc.count = d.count;
            rc.interval_ns = d.interval_ns;
            rc.cost = static_cast<std::uint32_t>(d.cost); // <= 65535 x 65535
            rc.exact = d.exact;
            out.reflected_control = rc;
            extra = d.exact ? std::uint8_t{0} : S::kFlagC;
            break;
        }
        default:
            understood = false;
            break;
        }
        if (!well_formed) {
            flags = S::kFlagM;
            out.malformed = stopped = true;
            return;
        }
        flags = understood ? extra : S::kFlagU;
    });
    if (out.reflected_control)
        out.reflected_control->tx_counter_at = static_cast<std::uint16_t>(tx_counter_at);
}

template <class CtxOf, class IsLocal>
stamp_tlv_outcome reflect_stamp_tlvs_lazy(wire::byte_span tlvs, bool integrity_failed,
                                          CtxOf&& ctx_of, const stamp_tlv_policy& pol,
                                          IsLocal&& is_local)
{
    stamp_tlv_outcome out;
    reflect_stamp_tlvs_into(out, tlvs, integrity_failed, ctx_of, pol, is_local);
    return out;
}

template <class IsLocal>
stamp_tlv_outcome reflect_stamp_tlvs(wire::byte_span tlvs, const stamp_tlv_context& ctx,
                                     const stamp_tlv_policy& pol, IsLocal&& is_local)
{
    return reflect_stamp_tlvs_lazy(
        tlvs, ctx.integrity_failed, [&](ctx_part) -> const stamp_tlv_context& { return ctx; }, pol,
        is_local);
}

inline stamp_tlv_outcome reflect_stamp_tlvs(wire::byte_span tlvs, const stamp_tlv_context& ctx,
                                            const stamp_tlv_policy& pol = {})
{
    return reflect_stamp_tlvs(tlvs, ctx, pol, [](const tlv_address&) { return false; });
}

// ---- sender side

// The TLVs a Session-Sender asks for (RFC 8972 §4.2–4.7, RFC 9503 §3–4).
struct stamp_tlv_request {
    bool location = false; // with the Source MAC, Destination IP and Source IP sub-TLVs
    bool timestamp_info = false;
    std::optional<std::uint8_t> cos_dscp1; // Class of Service: DSCP wanted for the reply
    bool direct_measurement = false;       // S_TxC is the probe's ordinal (write_stamp_tlvs)
    struct access_report {
        std::uint8_t id = stamp_tlv::kAccessNon3gpp;
        std::uint8_t return_code = stamp_tlv::kReturnNetworkAvailable;
    };
    std::optional<access_report> access{};
    bool follow_up = false;
    std::optional<tlv_address> destination_node{};
    struct return_path_request {
        std::optional<std::uint32_t> control_code{};
        std::optional<tlv_address> return_address{};
        // One Segment List at most: label stack entries or SRv6 segments, not both; a Control
        // Code goes alone (RFC 9503 §4.1; write_stamp_tlvs() refuses other combinations).
        std::vector<std::uint32_t> mpls_labels{}; // label stack entries, as sent
        std::vector<std::array<std::uint8_t, 16>> srv6_segments;
    };
    std::optional<return_path_request> return_path{};
    // RFC 9534 Micro-session ID: the sender's member-link ID, and the reflector's when known
    // (0: unknown, the reflector fills it in).
    struct micro_session_request {
        std::uint16_t sender_id = 0;
        std::uint16_t reflector_id = 0;
    };
    std::optional<micro_session_request> micro_session{};
    // Reflected Test Packet Control (draft-ietf-ippm-asymmetrical-pkts); no sub-TLVs.
    std::optional<reflected_control_request> reflected_control{};

    bool empty() const noexcept
    {
        return !location && !timestamp_info && !cos_dscp1 && !direct_measurement && !access &&
               !follow_up && !destination_node && !return_path && !micro_session &&
               !reflected_control;
    }
};

namespace detail {
inline std::size_t return_path_value_size(const stamp_tlv_request::return_path_request& r)
{
    std::size_t n = 0;
    if (r.control_code) n += 4 + 4;
    if (r.return_address) n += 4 + r.return_address->size();
    if (!r.mpls_labels.empty()) n += 4 + 4 * r.mpls_labels.size();
    if (!r.srv6_segments.empty()) n += 4 + 16 * r.srv6_segments.size();
    return n;
}
} // namespace detail

// Octets write_stamp_tlvs() writes for `r`.
inline std::size_t stamp_tlv_request_size(const stamp_tlv_request& r)
{
    constexpr std::size_t h = test_layout::tlv::header_size;
    std::size_t n = 0;
    if (r.location) n += h + stamp_tlv::kLocationFixedLen + 3 * h + 8 + 16 + 16;
    if (r.timestamp_info) n += h + stamp_tlv::kTimestampInfoLen;
    if (r.cos_dscp1) n += h + stamp_tlv::kClassOfServiceLen;
    if (r.direct_measurement) n += h + stamp_tlv::kDirectMeasurementLen;
    if (r.access) n += h + stamp_tlv::kAccessReportLen;
    if (r.follow_up) n += h + stamp_tlv::kFollowUpLen;
    if (r.destination_node) n += h + r.destination_node->size();
    if (r.return_path) n += h + detail::return_path_value_size(*r.return_path);
    if (r.micro_session) n += h + stamp_tlv::kMicroSessionLen;
    if (r.reflected_control) n += h + stamp_tlv::kReflectedControlLen;
    return n;
}

// Writes the requested TLVs into the front of `out` (in the order of stamp_tlv_request's
// members) and returns the octets written. Every TLV leaves with U set and M, I clear, as
// RFC 8972 §4 asks of a Session-Sender; fields the reflector fills are zero. `s_txc` is the
// Direct Measurement Session-Sender Tx counter.
inline std::error_code write_stamp_tlvs(const stamp_tlv_request& r, std::uint32_t s_txc,
                                        wire::byte_span out, std::size_t& written)
{
    namespace S = stamp_tlv;
    written = 0;
    const std::size_t need = stamp_tlv_request_size(r);
    if (out.size() < need) return errc::buffer_too_small;
    if (r.return_path && detail::return_path_value_size(*r.return_path) > 0xFFFF)
        return errc::bad_length;
    if (r.cos_dscp1 && *r.cos_dscp1 > 63) return errc::bad_value;
    if (r.reflected_control && r.reflected_control->sub_tlvs) return errc::bad_value;
    if (r.return_path) {
        const auto& rp = *r.return_path;
        // RFC 9503 §4.1: a Control Code goes alone; one Segment List sub-TLV at most.
        if (rp.control_code &&
            (rp.return_address || !rp.mpls_labels.empty() || !rp.srv6_segments.empty()))
            return errc::bad_value;
        if (!rp.mpls_labels.empty() && !rp.srv6_segments.empty()) return errc::bad_value;
        if (!rp.control_code && !rp.return_address && rp.mpls_labels.empty() &&
            rp.srv6_segments.empty())
            return errc::bad_value; // an empty Return Path TLV is malformed
    }
    std::fill_n(out.begin(), need, std::uint8_t{0});
    std::uint8_t* p = out.data();
    auto header = [&](std::uint8_t flags, std::uint8_t type, std::size_t len) {
        p[0] = flags;
        p[1] = type;
        wire::store16(p + 2, static_cast<std::uint16_t>(len));
        p += test_layout::tlv::header_size;
    };
    if (r.location) {
        header(S::kFlagU, S::kTypeLocation, S::kLocationFixedLen + 3 * 4 + 8 + 16 + 16);
        p += S::kLocationFixedLen;
        header(0, S::location::source_mac, S::location::mac_len);
        p += S::location::mac_len;
        header(0, S::location::destination_ip, S::location::ip_len);
        p += S::location::ip_len;
        header(0, S::location::source_ip, S::location::ip_len);
        p += S::location::ip_len;
    }
    if (r.timestamp_info) {
        header(S::kFlagU, S::kTypeTimestampInfo, S::kTimestampInfoLen);
        p += S::kTimestampInfoLen;
    }
    if (r.cos_dscp1) {
        header(S::kFlagU, S::kTypeClassOfService, S::kClassOfServiceLen);
        p[0] = static_cast<std::uint8_t>(*r.cos_dscp1 << 2);
        p += S::kClassOfServiceLen;
    }
    if (r.direct_measurement) {
        header(S::kFlagU, S::kTypeDirectMeasurement, S::kDirectMeasurementLen);
        wire::store32(p, s_txc);
        p += S::kDirectMeasurementLen;
    }
    if (r.access) {
        header(S::kFlagU, S::kTypeAccessReport, S::kAccessReportLen);
        p[0] = static_cast<std::uint8_t>((r.access->id & 0xF) << 4);
        p[1] = r.access->return_code;
        p += S::kAccessReportLen;
    }
    if (r.follow_up) {
        header(S::kFlagU, S::kTypeFollowUp, S::kFollowUpLen);
        p += S::kFollowUpLen;
    }
    if (r.destination_node) {
        header(S::kFlagU, S::kTypeDestinationNode, r.destination_node->size());
        detail::store_address(p, *r.destination_node);
        p += r.destination_node->size();
    }
    if (r.return_path) {
        const auto& rp = *r.return_path;
        header(S::kFlagU, S::kTypeReturnPath, detail::return_path_value_size(rp));
        if (rp.control_code) {
            header(0, S::return_path::control_code, 4);
            wire::store32(p, *rp.control_code);
            p += 4;
        }
        if (rp.return_address) {
            header(0, S::return_path::return_address, rp.return_address->size());
            detail::store_address(p, *rp.return_address);
            p += rp.return_address->size();
        }
        if (!rp.mpls_labels.empty()) {
            header(0, S::return_path::sr_mpls_labels, 4 * rp.mpls_labels.size());
            for (auto l : rp.mpls_labels) {
                wire::store32(p, l);
                p += 4;
            }
        }
        if (!rp.srv6_segments.empty()) {
            header(0, S::return_path::srv6_segments, 16 * rp.srv6_segments.size());
            for (const auto& s : rp.srv6_segments) {
                std::copy(s.begin(), s.end(), p);
                p += 16;
            }
        }
    }
    if (r.micro_session) {
        header(S::kFlagU, S::kTypeMicroSession, S::kMicroSessionLen);
        wire::store16(p, r.micro_session->sender_id);
        wire::store16(p + 2, r.micro_session->reflector_id);
        p += S::kMicroSessionLen;
    }
    if (r.reflected_control) {
        const auto& rc = *r.reflected_control;
        header(S::kFlagU, S::kTypeReflectedControl, S::kReflectedControlLen);
        wire::store16(p, rc.length);
        wire::store16(p + 2, rc.count);
        wire::store32(p + 4, rc.interval_ns);
        p += S::kReflectedControlLen;
    }
    written = static_cast<std::size_t>(p - out.data());
    return {};
}

// What came back, as a Session-Sender reads it (RFC 8972 §4).
struct stamp_tlv_report {
    std::size_t count = 0;         // TLVs seen (up to where reading stopped)
    std::size_t unrecognised = 0;  // with U: the reflector did not process them
    bool malformed = false;        // a TLV with M (or overrunning): reading stopped there
    bool integrity_failed = false; // a TLV with I: every TLV discarded
    struct location_info {
        std::uint16_t destination_port = 0, source_port = 0;
        std::optional<tlv_address> destination, source;
        std::optional<std::array<std::uint8_t, 8>> source_mac{}; // EUI-48 in the first 6, or EUI-64
        bool eui48 = false;
        friend bool operator==(const location_info&, const location_info&) = default;
    };
    std::optional<location_info> location{};
    struct timestamp_info {
        std::uint8_t sync_in = 0, method_in = 0, sync_out = 0, method_out = 0;
    };
    std::optional<timestamp_info> timestamps{};
    struct cos_info {
        std::uint8_t dscp1 = 0, dscp2 = 0, ecn = 0, rp = 0;
    };
    std::optional<cos_info> cos{};
    struct direct_info {
        std::uint32_t sender_tx = 0, reflector_rx = 0, reflector_tx = 0;
    };
    std::optional<direct_info> direct{};
    struct access_info {
        std::uint8_t id = 0, return_code = 0;
    };
    std::optional<access_info> access{};
    struct follow_up_info {
        std::uint32_t seq = 0;
        std::uint64_t timestamp = 0;
        std::uint8_t method = 0;
    };
    std::optional<follow_up_info> follow_up{};
    std::optional<tlv_address> destination_node{}; // accepted by the reflector (U clear)
    struct return_path_info {
        std::optional<std::uint32_t> control_code{};
        std::optional<tlv_address> return_address{};
        std::vector<std::uint32_t> mpls_labels{};
        std::vector<std::array<std::uint8_t, 16>> srv6_segments;
    };
    std::optional<return_path_info> return_path{}; // honoured by the reflector (U clear)
    struct micro_session_info {
        std::uint16_t sender_id = 0, reflector_id = 0;
        friend bool operator==(const micro_session_info&, const micro_session_info&) = default;
    };
    std::optional<micro_session_info> micro_session{};
    struct reflected_control_info {
        std::uint16_t length = 0, count = 0;
        std::uint32_t interval_ns = 0;
        bool exact = true; // C clear: the replies are as asked
    };
    std::optional<reflected_control_info> reflected_control{}; // honoured (U clear)
};

// Reads the reflected TLVs in `tlvs` (the reply's octets after the base).
inline stamp_tlv_report read_stamp_tlvs(wire::const_byte_span tlvs)
{
    namespace S = stamp_tlv;
    namespace T = test_layout::tlv;
    stamp_tlv_report rep;
    // Pass 1: I anywhere discards the whole set (RFC 8972 §4, §4.8).
    for_each_stamp_tlv(tlvs, [&](const stamp_tlv_header& h) {
        if (h.flags & S::kFlagI) rep.integrity_failed = true;
    });
    if (rep.integrity_failed) return rep;
    bool stopped = false;
    for_each_stamp_tlv(tlvs, [&](const stamp_tlv_header& h) {
        if (stopped) return;
        ++rep.count;
        if (!h.fits || (h.flags & S::kFlagM)) {
            rep.malformed = stopped = true;
            return;
        }
        if (h.flags & S::kFlagU) {
            ++rep.unrecognised;
            return;
        }
        const std::uint8_t* v = tlvs.data() + h.offset + T::header_size;
        const std::size_t n = h.length;
        // A reflector that sent a wrong length for a type it says it processed: stop, as for M.
        auto bad = [&] { rep.malformed = stopped = true; };
        switch (h.type) {
        case S::kTypeLocation: {
            if (n < S::kLocationFixedLen) return bad();
            stamp_tlv_report::location_info li;
            li.destination_port = wire::load16(v);
            li.source_port = wire::load16(v + 2);
            std::size_t pos = S::kLocationFixedLen;
            while (pos + T::header_size <= n) {
                const std::uint8_t st = v[pos + 1];
                const std::size_t sl = wire::load16(v + pos + 2);
                if (sl > n - pos - T::header_size) return bad();
                const std::uint8_t* sv = v + pos + T::header_size;
                if (!(v[pos] & S::kFlagU)) {
                    namespace L = S::location;
                    if ((st == L::source_eui48 || st == L::source_eui64) && sl == L::mac_len) {
                        std::array<std::uint8_t, 8> m{};
                        std::copy_n(sv, 8, m.begin());
                        li.source_mac = m;
                        li.eui48 = st == L::source_eui48;
                    } else if ((st == L::destination_ipv4 || st == L::source_ipv4) &&
                               sl == L::ip_len) {
                        (st == L::destination_ipv4 ? li.destination : li.source) =
                            detail::load_address(sv, false);
                    } else if ((st == L::destination_ipv6 || st == L::source_ipv6) &&
                               sl == L::ip_len) {
                        (st == L::destination_ipv6 ? li.destination : li.source) =
                            detail::load_address(sv, true);
                    }
                }
                pos += T::header_size + sl;
            }
            if (pos != n) return bad();
            rep.location = li;
            break;
        }
        case S::kTypeTimestampInfo:
            if (n < S::kTimestampInfoLen) return bad();
            rep.timestamps = {v[0], v[1], v[2], v[3]};
            break;
        case S::kTypeClassOfService:
            if (n != S::kClassOfServiceLen) return bad();
            rep.cos = {static_cast<std::uint8_t>(v[0] >> 2),
                       static_cast<std::uint8_t>((v[0] & 3) << 4 | v[1] >> 4),
                       static_cast<std::uint8_t>((v[1] >> 2) & 3),
                       static_cast<std::uint8_t>(v[1] & 3)};
            break;
        case S::kTypeDirectMeasurement:
            if (n != S::kDirectMeasurementLen) return bad();
            rep.direct = {wire::load32(v), wire::load32(v + 4), wire::load32(v + 8)};
            break;
        case S::kTypeAccessReport:
            if (n != S::kAccessReportLen) return bad();
            rep.access = {static_cast<std::uint8_t>(v[0] >> 4), v[1]};
            break;
        case S::kTypeFollowUp:
            if (n != S::kFollowUpLen) return bad();
            rep.follow_up = {wire::load32(v), wire::load64(v + 4), v[12]};
            break;
        case S::kTypeDestinationNode:
            if (n != 4 && n != 16) return bad();
            rep.destination_node = detail::load_address(v, n == 16);
            break;
        case S::kTypeReturnPath: {
            if (rep.return_path) break; // the first one only
            stamp_tlv_report::return_path_info rp;
            std::size_t pos = 0;
            while (pos + T::header_size <= n) {
                const std::uint8_t st = v[pos + 1];
                const std::size_t sl = wire::load16(v + pos + 2);
                if (sl > n - pos - T::header_size) return bad();
                const std::uint8_t* sv = v + pos + T::header_size;
                namespace R = S::return_path;
                if (st == R::control_code && sl == 4)
                    rp.control_code = wire::load32(sv);
                else if (st == R::return_address && (sl == 4 || sl == 16))
                    rp.return_address = detail::load_address(sv, sl == 16);
                else if (st == R::sr_mpls_labels && sl % 4 == 0)
                    for (std::size_t i = 0; i < sl; i += 4)
                        rp.mpls_labels.push_back(wire::load32(sv + i));
                else if (st == R::srv6_segments && sl % 16 == 0)
                    for (std::size_t i = 0; i < sl; i += 16) {
                        std::array<std::uint8_t, 16> s{};
                        std::copy_n(sv + i, 16, s.begin());
                        rp.srv6_segments.push_back(s);
                    }
                pos += T::header_size + sl;
            }
            if (pos != n) return bad();
            rep.return_path = std::move(rp);
            break;
        }
        case S::kTypeMicroSession:
            if (n != S::kMicroSessionLen) return bad();
            rep.micro_session = {wire::load16(v), wire::load16(v + 2)};
            break;
        case S::kTypeReflectedControl:
            if (n < S::kReflectedControlLen) return bad();
            if (rep.reflected_control) break; // the first one only
            rep.reflected_control = {wire::load16(v), wire::load16(v + 2), wire::load32(v + 4),
                                     (h.flags & S::kFlagC) == 0};
            break;
        default:
            break; // Extra Padding, HMAC (the guard's), or a type we did not ask for
        }
    });
    return rep;
}

// Sender side, per session: what the reflected TLVs said, summed up and the latest of each.
struct stamp_tlv_stats {
    std::uint64_t replies = 0;                // replies whose TLVs were read
    std::uint64_t unrecognised = 0;           // TLVs the reflector marked U (not processed)
    std::uint64_t malformed = 0;              // replies whose TLVs stopped at one marked M
    std::uint64_t integrity_failed = 0;       // replies with I: their TLVs were discarded
    std::uint64_t cos_reverse_refused = 0;    // CoS RP = 1: the reply kept the received DSCP
    std::uint64_t location_changes = 0;       // Location differed from the previous one (NAT, path)
    std::uint64_t follow_ups = 0;             // Follow-Up Telemetry carrying a timestamp
    std::uint64_t micro_session_mismatch = 0; // RFC 9534: a reply for another member link
    std::uint64_t reflected_control_clamped = 0; // Reflected Test Packet Control with C
    std::optional<stamp_tlv_report::location_info> location{}; // the latest of each
    std::optional<stamp_tlv_report::timestamp_info> timestamps{};
    std::optional<stamp_tlv_report::cos_info> cos{};
    std::optional<stamp_tlv_report::direct_info> direct{};
    std::optional<stamp_tlv_report::access_info> access{};
    std::optional<stamp_tlv_report::follow_up_info> follow_up{};
    std::optional<tlv_address> destination_node{};
    std::optional<stamp_tlv_report::micro_session_info> micro_session{};
    std::optional<stamp_tlv_report::reflected_control_info> reflected_control{};

    // `sent` is the Micro-session ID TLV the probes carried, when they did: a reply whose Sender
    // Micro-session ID is not ours, or whose Reflector Micro-session ID is not the one we named
    // (when we named one) is counted as a mismatch (RFC 9534 §3: a Session-Sender discards such
    // replies; session_sender does not yet, see the conformance matrix).
    void add(const stamp_tlv_report& r,
             const std::optional<stamp_tlv_request::micro_session_request>& sent)
    {
        add(r);
        if (r.integrity_failed || !sent || !r.micro_session) return;
        if (r.micro_session->sender_id != sent->sender_id ||
            (sent->reflector_id != 0 && r.micro_session->reflector_id != sent->reflector_id))
            ++micro_session_mismatch;
    }

    void add(const stamp_tlv_report& r)
    {
        ++replies;
        unrecognised += r.unrecognised;
        if (r.malformed) ++malformed;
        if (r.integrity_failed) {
            ++integrity_failed;
            return;
        }
        if (r.location) {
            if (location && !(*location == *r.location)) ++location_changes;
            location = r.location;
        }
        if (r.timestamps) timestamps = r.timestamps;
        if (r.cos) {
            cos = r.cos;
            if (r.cos->rp == 1) ++cos_reverse_refused;
        }
        if (r.direct) direct = r.direct;
        if (r.access) access = r.access;
        if (r.follow_up) {
            follow_up = r.follow_up;
            if (r.follow_up->timestamp) ++follow_ups;
        }
        if (r.destination_node) destination_node = r.destination_node;
        if (r.micro_session) micro_session = r.micro_session;
        if (r.reflected_control) {
            reflected_control = r.reflected_control;
            if (!r.reflected_control->exact) ++reflected_control_clamped;
        }
    }
};

} // namespace twamp
