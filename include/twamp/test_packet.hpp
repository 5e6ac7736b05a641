// twamp/test_packet.hpp — unauthenticated TWAMP-Test and STAMP test packets.
//
// TWAMP-Test: RFC 5357 §4.1.2 (Session-Sender, 14 octets + padding) and §4.2.1 (Session-Reflector,
// 41 octets + padding), inherited by TWAMP Light (RFC 5357 Appendix I). STAMP: RFC 8762 §4.2.1 and
// §4.3.1 (44-octet bases), the SSID of RFC 8972 §3 and the TLV header of RFC 8972 §4. The two
// families share offsets 0..40, so one codec serves both; the format only changes the base size,
// the SSID octets and where the reflector puts the bytes that follow the base.
//
// Decoders never trust a length: they check the datagram size before every read. Encoders write
// into caller-provided spans and never allocate.
#pragma once

#include "twamp/error.hpp"
#include "twamp/test_layout.hpp"
#include "twamp/timestamp.hpp"
#include "twamp/wire.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace twamp {

enum class test_format : std::uint8_t {
    twamp, // TWAMP-Test / TWAMP Light, unauthenticated
    stamp, // STAMP, unauthenticated (RFC 8762/8972)
};

// The base sizes (test_layout.hpp has every field).
inline constexpr std::size_t kSenderUnauthLen = test_layout::open::twamp_sender_base;
inline constexpr std::size_t kReflectorUnauthLen = test_layout::open::twamp_reflector_base;
inline constexpr std::size_t kStampBaseLen = test_layout::open::stamp_base;
inline constexpr std::size_t kStampTlvHeaderLen = test_layout::tlv::header_size;
// Reflector/sender size difference: the padding a TWAMP sender adds so both directions carry the
// same number of octets (RFC 5357 §4.1.2).
inline constexpr std::size_t kSymmetricPadding = kReflectorUnauthLen - kSenderUnauthLen; // 27
// The shortest reply we can still measure with: everything up to the Sender Timestamp.
// twampy's deployed reflectors answer with 38 octets (no MBZ, no Sender TTL).
inline constexpr std::size_t kMinUsableReplyLen = test_layout::open::sender_timestamp.end();
// The largest UDP payload we build or accept (IPv4 limit); jumbo frames fit well below it.
inline constexpr std::size_t kMaxTestPacketLen = 65507;

inline constexpr std::size_t sender_base_len(test_format f) noexcept
{
    return f == test_format::stamp ? kStampBaseLen : kSenderUnauthLen;
}
inline constexpr std::size_t reflector_base_len(test_format f) noexcept
{
    return f == test_format::stamp ? kStampBaseLen : kReflectorUnauthLen;
}

// Session-Sender packet fields (both formats; `ssid` is STAMP only and travels in octets 14-15).
struct sender_packet {
    std::uint32_t seq = 0;
    std::uint64_t timestamp = 0; // 8 wire octets: NTP, or PTPv2 truncated when err.ptp
    error_estimate err{};
    std::uint16_t ssid = 0;
};

// Session-Reflector packet fields.
struct reflector_packet {
    std::uint32_t seq = 0;
    std::uint64_t timestamp = 0;         // T3
    error_estimate err{};                // applies to T2 and T3
    std::uint16_t ssid = 0;              // STAMP; MBZ in TWAMP
    std::uint64_t receive_timestamp = 0; // T2
    std::uint32_t sender_seq = 0;
    std::uint64_t sender_timestamp = 0; // T1 as the sender wrote it
    error_estimate sender_err{};
    std::uint8_t sender_ttl = 255;
    // Decoding only: the reply was shorter than the 41-octet base (twampy's 38-octet layout, for
    // example) and the missing fields were zero-filled.
    bool truncated = false;
};

namespace detail {

// Octets 0..13, the same in every open packet: Sequence Number, Timestamp, Error Estimate.
inline void store_head(std::uint8_t* b, std::uint32_t seq, std::uint64_t ts,
                       error_estimate err) noexcept
{
    namespace L = test_layout::open;
    wire::store32(b + L::seq.offset, seq);
    wire::store64(b + L::timestamp.offset, ts);
    wire::store16(b + L::error_estimate.offset, err.encode());
}
inline void load_head(const std::uint8_t* b, std::uint32_t& seq, std::uint64_t& ts,
                      error_estimate& err) noexcept
{
    namespace L = test_layout::open;
    seq = wire::load32(b + L::seq.offset);
    ts = wire::load64(b + L::timestamp.offset);
    err = error_estimate::decode(wire::load16(b + L::error_estimate.offset));
}

// `in` when it holds at least N octets, else a copy in `scratch` with the missing octets zero.
template <std::size_t N>
inline wire::const_byte_span zero_extended(wire::const_byte_span in,
                                           std::array<std::uint8_t, N>& scratch) noexcept
{
    if (in.size() >= N) return in;
    std::copy_n(in.data(), in.size(), scratch.begin());
    return scratch;
}

} // namespace detail

// Writes a Session-Sender packet of `total_len` octets: the base, then zero padding. For STAMP the
// octets after the base are left to the caller's TLV writer when `tlv_padding` is set (see
// write_stamp_extra_padding); zero padding is correct for TWAMP and for STAMP MBZ.
inline std::error_code encode_sender(const sender_packet& p, test_format f, std::size_t total_len,
                                     wire::byte_span out) noexcept
{
    const std::size_t base = sender_base_len(f);
    if (total_len < base || total_len > kMaxTestPacketLen) return errc::bad_length;
    if (out.size() < total_len) return errc::buffer_too_small;
    namespace L = test_layout::open;
    std::uint8_t* b = out.data();
    detail::store_head(b, p.seq, p.timestamp, p.err);
    std::fill(b + L::twamp_sender_base, b + total_len, std::uint8_t{0});
    if (f == test_format::stamp) wire::store16(b + L::ssid.offset, p.ssid);
    return {};
}

// Decodes the fixed part of a Session-Sender packet. Anything after the base is padding (TWAMP)
// or TLVs (STAMP) and is not interpreted here.
inline std::error_code decode_sender(wire::const_byte_span in, test_format f,
                                     sender_packet& p) noexcept
{
    if (in.size() < sender_base_len(f)) return errc::truncated;
    const std::uint8_t* b = in.data();
    detail::load_head(b, p.seq, p.timestamp, p.err);
    p.ssid = f == test_format::stamp ? wire::load16(b + test_layout::open::ssid.offset) : 0;
    return {};
}

// Writes the 41- or 44-octet Session-Reflector base into out[0..base). Padding or TLVs after the
// base are the caller's (see reflect_payload in reflector_session.hpp).
inline std::error_code encode_reflector_base(const reflector_packet& p, test_format f,
                                             wire::byte_span out) noexcept
{
    const std::size_t base = reflector_base_len(f);
    if (out.size() < base) return errc::buffer_too_small;
    namespace L = test_layout::open;
    std::uint8_t* b = out.data();
    detail::store_head(b, p.seq, p.timestamp, p.err);
    wire::store16(b + L::ssid.offset, f == test_format::stamp ? p.ssid : std::uint16_t{0});
    wire::store64(b + L::receive_timestamp.offset, p.receive_timestamp);
    wire::store32(b + L::sender_seq.offset, p.sender_seq);
    wire::store64(b + L::sender_timestamp.offset, p.sender_timestamp);
    wire::store16(b + L::sender_error_estimate.offset, p.sender_err.encode());
    wire::store16(b + L::reflector_mbz.offset, 0);
    b[L::sender_ttl.offset] = p.sender_ttl;
    std::fill(b + L::twamp_reflector_base, b + base, std::uint8_t{0}); // STAMP: MBZ to 44
    return {};
}

// Decodes a reply. Accepts any length from kMinUsableReplyLen: missing trailing fields are
// zero-filled (Sender TTL then reads 0, i.e. unknown) and `truncated` is set so callers can count
// such replies. The MBZ octets are ignored, as RFC 5357 asks of receivers.
inline std::error_code decode_reflector(wire::const_byte_span in, test_format f,
                                        reflector_packet& p) noexcept
{
    if (in.size() < kMinUsableReplyLen) return errc::truncated;
    // Full-size replies are read in place; only short ones go through a zero-filled copy.
    std::array<std::uint8_t, kReflectorUnauthLen> scratch{};
    const std::uint8_t* b = detail::zero_extended(in, scratch).data();
    namespace L = test_layout::open;
    detail::load_head(b, p.seq, p.timestamp, p.err);
    p.ssid = f == test_format::stamp ? wire::load16(b + L::ssid.offset) : 0;
    p.receive_timestamp = wire::load64(b + L::receive_timestamp.offset);
    p.sender_seq = wire::load32(b + L::sender_seq.offset);
    p.sender_timestamp = wire::load64(b + L::sender_timestamp.offset);
    p.sender_err = error_estimate::decode(wire::load16(b + L::sender_error_estimate.offset));
    p.sender_ttl = b[L::sender_ttl.offset];
    p.truncated = in.size() < kReflectorUnauthLen;
    return {};
}

// Overwrites the reflector's transmit timestamp (T3, octets 4..11) of an encoded reply, so the
// transport can take T3 as late as possible before the send.
inline void stamp_reflector_timestamp(wire::byte_span reply, std::uint64_t wire_ts) noexcept
{
    constexpr auto t3 = test_layout::open::timestamp;
    if (reply.size() >= t3.end()) wire::store64(reply.data() + t3.offset, wire_ts);
}

// ---------------------------------------------------------------------------------------------
// STAMP TLVs (RFC 8972 §4): Flags(1) Type(1) Length(2) Value(Length), after the 44-octet base.

namespace stamp_tlv {
inline constexpr std::uint8_t kFlagU = 0x80; // unrecognised by the reflector
inline constexpr std::uint8_t kFlagM = 0x40; // malformed
inline constexpr std::uint8_t kFlagI = 0x20; // integrity check failed
inline constexpr std::uint8_t kTypeExtraPadding = test_layout::tlv::type_extra_padding;
inline constexpr std::uint8_t kTypeHmac = test_layout::tlv::type_hmac;
} // namespace stamp_tlv

// One TLV as for_each_stamp_tlv() sees it; `offset` is that of its Flags octet in the walked
// span, `fits` says whether its Length stays inside the span.
struct stamp_tlv_header {
    std::size_t offset = 0;
    std::uint8_t flags = 0;
    std::uint8_t type = 0;
    std::size_t length = 0;
    bool fits = false;
};

// The one walk over STAMP TLVs (RFC 8972 §4): calls f(stamp_tlv_header) for each TLV in `tlvs`
// (the octets after a base) in order. Type 0 is reserved and never sent as a TLV, so a header of
// type 0 ends the walk: what follows is plain padding (a TWAMP Light sender's zero fill, for
// instance). A TLV whose Length runs past the end is reported with fits == false and ends the
// walk too. Fewer than 4 octets left are padding as well.
template <class F> void for_each_stamp_tlv(wire::const_byte_span tlvs, F&& f)
{
    namespace T = test_layout::tlv;
    std::size_t pos = 0;
    while (tlvs.size() - pos >= T::header_size) {
        const std::uint8_t* h = tlvs.data() + pos;
        stamp_tlv_header t;
        t.offset = pos;
        t.flags = h[T::flags.offset];
        t.type = h[T::type.offset];
        t.length = wire::load16(h + T::length.offset);
        if (t.type == 0) return;
        t.fits = t.length <= tlvs.size() - pos - T::header_size;
        f(t);
        if (!t.fits) return;
        pos += T::header_size + t.length;
    }
}

// Writes one Extra Padding TLV filling exactly `out` (out.size() >= 4), value zero.
inline std::error_code write_stamp_extra_padding(wire::byte_span out) noexcept
{
    if (out.size() < kStampTlvHeaderLen || out.size() - kStampTlvHeaderLen > 0xFFFF)
        return errc::bad_length;
    namespace T = test_layout::tlv;
    out[T::flags.offset] = 0;
    out[T::type.offset] = T::type_extra_padding;
    wire::store16(out.data() + T::length.offset,
                  static_cast<std::uint16_t>(out.size() - kStampTlvHeaderLen));
    std::fill(out.begin() + kStampTlvHeaderLen, out.end(), std::uint8_t{0});
    return {};
}

// Reflector side: walks the TLVs already copied into `tlvs` (the reply's octets after the base)
// and marks each one the reflector does not implement with U, and a TLV whose Length runs past
// the end with M (RFC 8972 §4). Type 0 is reserved and never sent as a TLV, so a header of type 0
// ends the walk: what follows is plain padding (a TWAMP Light sender's zero fill, for instance)
// and stays untouched. Returns the number of TLVs seen.
inline std::size_t mark_reflected_tlvs(wire::byte_span tlvs) noexcept
{
    std::size_t count = 0;
    for_each_stamp_tlv(tlvs, [&](const stamp_tlv_header& t) {
        ++count;
        std::uint8_t& flags = tlvs[t.offset + test_layout::tlv::flags.offset];
        if (!t.fits)
            flags |= stamp_tlv::kFlagM;
        else if (t.type != stamp_tlv::kTypeExtraPadding)
            flags |= stamp_tlv::kFlagU;
    });
    return count;
}

// A STAMP-shaped request: at least the 44-octet base, with the MBZ octets 16..43 zero. A TWAMP
// Light sender with zero padding also matches; for such packets both reply rules produce the
// same octets (zeros after the base), so the guess is harmless. Used by reflectors configured for
// automatic format.
inline bool looks_like_stamp(wire::const_byte_span in) noexcept
{
    if (in.size() < kStampBaseLen) return false;
    constexpr auto mbz = test_layout::open::stamp_sender_mbz;
    return std::all_of(in.begin() + mbz.offset, in.begin() + mbz.end(),
                       [](std::uint8_t b) { return b == 0; });
}

} // namespace twamp
