// twamp/test_packet_auth.hpp — the authenticated/encrypted TWAMP-Test layouts and authenticated
// STAMP, as translations to and from the unauthenticated layouts the session cores work on.
//
// TWAMP (RFC 4656 §4.1.2, RFC 5357 §4.1.2 and §4.2.1 with EID 5045):
//   sender    48 + padding:  0 Seq | 4 MBZ(12) | 16 Timestamp | 24 ErrEst | 26 MBZ(6) | 32 HMAC(16)
//   reflector 112 + padding: 0 Seq | 4 MBZ(12) | 16 Timestamp | 24 ErrEst | 26 MBZ(6) |
//                            32 Receive Timestamp | 40 MBZ(8) | 48 Sender Seq | 52 MBZ(12) |
//                            64 Sender Timestamp | 72 Sender ErrEst | 74 MBZ(6) | 80 Sender TTL |
//                            81 MBZ(15) | 96 HMAC(16)
// STAMP (RFC 8762 §4.2.2, §4.3.2): the same reflector offsets; the sender is 112 octets with the
// SSID at 26 and the HMAC at 96; both carry the SSID at 26. TLVs follow the 112-octet bases.
//
// Translating keeps one reflector and one sender core for every mode: the transport opens and
// verifies a protected packet, translates it to the open layout, lets the core work, and
// translates and seals the result. Only fields move; padding and TLVs are copied. The HMAC field
// and the MBZ octets are left zero here and filled by the crypto (crypto.hpp).
#pragma once

#include "twamp/test_packet.hpp"
#include "twamp/wire.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace twamp {

inline constexpr std::size_t kSenderAuthLen = 48;
inline constexpr std::size_t kReflectorAuthLen = 112;
inline constexpr std::size_t kStampAuthLen = 112;
// Padding that makes authenticated requests and replies equal in size (112 - 48).
inline constexpr std::size_t kSymmetricPaddingAuth = kReflectorAuthLen - kSenderAuthLen; // 64

enum class protected_format : std::uint8_t { twamp, stamp };

inline constexpr std::size_t protected_sender_base(protected_format f) noexcept
{
    return f == protected_format::stamp ? kStampAuthLen : kSenderAuthLen;
}
inline constexpr std::size_t open_sender_base(protected_format f) noexcept
{
    return f == protected_format::stamp ? kStampBaseLen : kSenderUnauthLen;
}
inline constexpr std::size_t open_reflector_base(protected_format f) noexcept
{
    return f == protected_format::stamp ? kStampBaseLen : kReflectorUnauthLen;
}

// Protected sender packet (plaintext) -> open sender packet. Returns the open length, or 0 when
// the input is shorter than the protected base or `out` is too small.
inline std::size_t sender_from_protected(wire::const_byte_span in, protected_format f,
                                         wire::byte_span out) noexcept
{
    const std::size_t base = protected_sender_base(f), obase = open_sender_base(f);
    if (in.size() < base) return 0;
    const std::size_t extra = in.size() - base;
    if (out.size() < obase + extra) return 0;
    std::uint8_t* o = out.data();
    const std::uint8_t* i = in.data();
    std::fill(o, o + obase, std::uint8_t{0});
    wire::store32(o, wire::load32(i));
    wire::store64(o + 4, wire::load64(i + 16));
    wire::store16(o + 12, wire::load16(i + 24));
    if (f == protected_format::stamp) wire::store16(o + 14, wire::load16(i + 26));
    std::copy_n(i + base, extra, o + obase);
    return obase + extra;
}

// Open sender packet -> protected sender packet (plaintext, HMAC field zero).
inline std::size_t sender_to_protected(wire::const_byte_span in, protected_format f,
                                       wire::byte_span out) noexcept
{
    const std::size_t base = protected_sender_base(f), obase = open_sender_base(f);
    if (in.size() < obase) return 0;
    const std::size_t extra = in.size() - obase;
    if (out.size() < base + extra) return 0;
    std::uint8_t* o = out.data();
    const std::uint8_t* i = in.data();
    std::fill(o, o + base, std::uint8_t{0});
    wire::store32(o, wire::load32(i));
    wire::store64(o + 16, wire::load64(i + 4));
    wire::store16(o + 24, wire::load16(i + 12));
    if (f == protected_format::stamp) wire::store16(o + 26, wire::load16(i + 14));
    std::copy_n(i + obase, extra, o + base);
    return base + extra;
}

// Open reflector reply -> protected reflector reply. The reply is as long as the protected
// request when that is at least 112 octets (RFC 5357 §4.2.1); its padding is the request's,
// the last 64 octets dropped (TWAMP), or the request's TLVs (STAMP), taken from
// `protected_request` (plaintext), or the TLVs as the open reply carries them (STAMP).
inline std::size_t reflector_to_protected(wire::const_byte_span open_reply,
                                          wire::const_byte_span protected_request,
                                          protected_format f, wire::byte_span out) noexcept
{
    if (open_reply.size() < open_reflector_base(f)) return 0;
    const std::size_t sbase = protected_sender_base(f);
    const std::size_t len = std::max(protected_request.size(), kReflectorAuthLen);
    if (out.size() < len || protected_request.size() < sbase) return 0;
    std::uint8_t* o = out.data();
    const std::uint8_t* r = open_reply.data();
    std::fill(o, o + len, std::uint8_t{0});
    wire::store32(o, wire::load32(r));
    wire::store64(o + 16, wire::load64(r + 4));
    wire::store16(o + 24, wire::load16(r + 12));
    if (f == protected_format::stamp) wire::store16(o + 26, wire::load16(r + 14));
    wire::store64(o + 32, wire::load64(r + 16));
    wire::store32(o + 48, wire::load32(r + 24));
    wire::store64(o + 64, wire::load64(r + 28));
    wire::store16(o + 72, wire::load16(r + 36));
    o[80] = r[40];
    if (len > kReflectorAuthLen) {
        if (f == protected_format::stamp) {
            // The TLVs as the core reflected them (with its U/M marks).
            const std::size_t n =
                std::min(len - kReflectorAuthLen, open_reply.size() - kStampBaseLen);
            std::copy_n(r + kStampBaseLen, n, o + kReflectorAuthLen);
        } else {
            // The request's padding from octet 48, its last 64 octets dropped.
            const std::size_t n =
                std::min(len - kReflectorAuthLen, protected_request.size() - kSenderAuthLen);
            std::copy_n(protected_request.data() + kSenderAuthLen, n, o + kReflectorAuthLen);
        }
    }
    return len;
}

// Protected reflector reply (plaintext) -> open reply for the sender core.
inline std::size_t reflector_from_protected(wire::const_byte_span in, protected_format f,
                                            wire::byte_span out) noexcept
{
    if (in.size() < kReflectorAuthLen) return 0;
    const std::size_t obase = open_reflector_base(f);
    const std::size_t extra = in.size() - kReflectorAuthLen;
    if (out.size() < obase + extra) return 0;
    std::uint8_t* o = out.data();
    const std::uint8_t* i = in.data();
    std::fill(o, o + obase, std::uint8_t{0});
    wire::store32(o, wire::load32(i));
    wire::store64(o + 4, wire::load64(i + 16));
    wire::store16(o + 12, wire::load16(i + 24));
    if (f == protected_format::stamp) wire::store16(o + 14, wire::load16(i + 26));
    wire::store64(o + 16, wire::load64(i + 32));
    wire::store32(o + 24, wire::load32(i + 48));
    wire::store64(o + 28, wire::load64(i + 64));
    wire::store16(o + 36, wire::load16(i + 72));
    o[40] = i[80];
    std::copy_n(i + kReflectorAuthLen, extra, o + obase);
    return obase + extra;
}

} // namespace twamp
