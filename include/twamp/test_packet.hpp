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
#include "twamp/timestamp.hpp"
#include "twamp/wire.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace twamp {

enum class test_format : std::uint8_t {
    twamp, // TWAMP-Test / TWAMP Light, unauthenticated
    stamp, // STAMP, unauthenticated (RFC 8762/8972)
};

inline constexpr std::size_t kSenderUnauthLen = 14;
inline constexpr std::size_t kReflectorUnauthLen = 41;
inline constexpr std::size_t kStampBaseLen = 44;
inline constexpr std::size_t kStampTlvHeaderLen = 4;
// Reflector/sender size difference: the padding a TWAMP sender adds so both directions carry the
// same number of octets (RFC 5357 §4.1.2).
inline constexpr std::size_t kSymmetricPadding = kReflectorUnauthLen - kSenderUnauthLen; // 27
// The shortest reply we can still measure with: everything up to the Sender Timestamp.
// twampy's deployed reflectors answer with 38 octets (no MBZ, no Sender TTL).
inline constexpr std::size_t kMinUsableReplyLen = 36;
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

// Writes a Session-Sender packet of `total_len` octets: the base, then zero padding. For STAMP the
// octets after the base are left to the caller's TLV writer when `tlv_padding` is set (see
// write_stamp_extra_padding); zero padding is correct for TWAMP and for STAMP MBZ.
inline std::error_code encode_sender(const sender_packet& p, test_format f, std::size_t total_len,
                                     wire::byte_span out) noexcept
{
    const std::size_t base = sender_base_len(f);
    if (total_len < base || total_len > kMaxTestPacketLen) return errc::bad_length;
    if (out.size() < total_len) return errc::buffer_too_small;
    std::uint8_t* b = out.data();
    wire::store32(b, p.seq);
    wire::store64(b + 4, p.timestamp);
    wire::store16(b + 12, p.err.encode());
    std::fill(b + 14, b + total_len, std::uint8_t{0});
    if (f == test_format::stamp) wire::store16(b + 14, p.ssid);
    return {};
}

// Decodes the fixed part of a Session-Sender packet. Anything after the base is padding (TWAMP)
// or TLVs (STAMP) and is not interpreted here.
inline std::error_code decode_sender(wire::const_byte_span in, test_format f,
                                     sender_packet& p) noexcept
{
    if (in.size() < sender_base_len(f)) return errc::truncated;
    const std::uint8_t* b = in.data();
    p.seq = wire::load32(b);
    p.timestamp = wire::load64(b + 4);
    p.err = error_estimate::decode(wire::load16(b + 12));
    p.ssid = f == test_format::stamp ? wire::load16(b + 14) : 0;
    return {};
}

// Writes the 41- or 44-octet Session-Reflector base into out[0..base). Padding or TLVs after the
// base are the caller's (see reflect_payload in reflector_session.hpp).
inline std::error_code encode_reflector_base(const reflector_packet& p, test_format f,
                                             wire::byte_span out) noexcept
{
    const std::size_t base = reflector_base_len(f);
    if (out.size() < base) return errc::buffer_too_small;
    std::uint8_t* b = out.data();
    wire::store32(b, p.seq);
    wire::store64(b + 4, p.timestamp);
    wire::store16(b + 12, p.err.encode());
    wire::store16(b + 14, f == test_format::stamp ? p.ssid : std::uint16_t{0});
    wire::store64(b + 16, p.receive_timestamp);
    wire::store32(b + 24, p.sender_seq);
    wire::store64(b + 28, p.sender_timestamp);
    wire::store16(b + 36, p.sender_err.encode());
    wire::store16(b + 38, 0);
    b[40] = p.sender_ttl;
    if (f == test_format::stamp) b[41] = b[42] = b[43] = 0;
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
    std::uint8_t scratch[kReflectorUnauthLen] = {};
    const std::uint8_t* b = in.data();
    if (in.size() < kReflectorUnauthLen) {
        std::copy_n(in.data(), in.size(), scratch);
        b = scratch;
    }
    p.seq = wire::load32(b);
    p.timestamp = wire::load64(b + 4);
    p.err = error_estimate::decode(wire::load16(b + 12));
    p.ssid = f == test_format::stamp ? wire::load16(b + 14) : 0;
    p.receive_timestamp = wire::load64(b + 16);
    p.sender_seq = wire::load32(b + 24);
    p.sender_timestamp = wire::load64(b + 28);
    p.sender_err = error_estimate::decode(wire::load16(b + 36));
    p.sender_ttl = b[40];
    p.truncated = in.size() < kReflectorUnauthLen;
    return {};
}

// Overwrites the reflector's transmit timestamp (T3, octets 4..11) of an encoded reply, so the
// transport can take T3 as late as possible before the send.
inline void stamp_reflector_timestamp(wire::byte_span reply, std::uint64_t wire_ts) noexcept
{
    if (reply.size() >= 12) wire::store64(reply.data() + 4, wire_ts);
}

// ---------------------------------------------------------------------------------------------
// STAMP TLVs (RFC 8972 §4): Flags(1) Type(1) Length(2) Value(Length), after the 44-octet base.

namespace stamp_tlv {
inline constexpr std::uint8_t kFlagU = 0x80; // unrecognised by the reflector
inline constexpr std::uint8_t kFlagM = 0x40; // malformed
inline constexpr std::uint8_t kFlagI = 0x20; // integrity check failed
inline constexpr std::uint8_t kTypeExtraPadding = 1;
inline constexpr std::uint8_t kTypeHmac = 8;
} // namespace stamp_tlv

// Writes one Extra Padding TLV filling exactly `out` (out.size() >= 4), value zero.
inline std::error_code write_stamp_extra_padding(wire::byte_span out) noexcept
{
    if (out.size() < kStampTlvHeaderLen || out.size() - kStampTlvHeaderLen > 0xFFFF)
        return errc::bad_length;
    out[0] = 0;
    out[1] = stamp_tlv::kTypeExtraPadding;
    wire::store16(out.data() + 2, static_cast<std::uint16_t>(out.size() - kStampTlvHeaderLen));
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
    std::size_t pos = 0, count = 0;
    while (tlvs.size() - pos >= kStampTlvHeaderLen) {
        std::uint8_t* h = tlvs.data() + pos;
        const std::uint8_t type = h[1];
        const std::size_t len = wire::load16(h + 2);
        if (type == 0) break;
        ++count;
        if (len > tlvs.size() - pos - kStampTlvHeaderLen) {
            h[0] |= stamp_tlv::kFlagM;
            break;
        }
        if (type != stamp_tlv::kTypeExtraPadding) h[0] |= stamp_tlv::kFlagU;
        pos += kStampTlvHeaderLen + len;
    }
    return count;
}

// A STAMP-shaped request: at least the 44-octet base, with the MBZ octets 16..43 zero. A TWAMP
// Light sender with zero padding also matches; for such packets both reply rules produce the
// same octets (zeros after the base), so the guess is harmless. Used by reflectors configured for
// automatic format.
inline bool looks_like_stamp(wire::const_byte_span in) noexcept
{
    if (in.size() < kStampBaseLen) return false;
    return std::all_of(in.begin() + 16, in.begin() + kStampBaseLen,
                       [](std::uint8_t b) { return b == 0; });
}

} // namespace twamp
