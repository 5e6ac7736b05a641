// twamp/test_packet_auth.hpp — the authenticated/encrypted TWAMP-Test layouts and authenticated
// STAMP, as translations to and from the unauthenticated layouts the session cores work on.
//
// TWAMP: RFC 4656 §4.1.2, RFC 5357 §4.1.2 and §4.2.1 with EID 5045; STAMP: RFC 8762 §4.2.2 and
// §4.3.2. Both layouts, field by field, are in test_layout.hpp; TLVs follow the 112-octet bases.
//
// Translating keeps one reflector and one sender core for every mode: the transport opens and
// verifies a protected packet, translates it to the open layout, lets the core work, and
// translates and seals the result. Only fields move; padding and TLVs are copied. The HMAC field
// and the MBZ octets are left zero here and filled by the crypto (crypto.hpp).
#pragma once

#include "twamp/test_layout.hpp"
#include "twamp/test_packet.hpp"
#include "twamp/wire.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace twamp {

// The protected base sizes (test_layout.hpp has every field).
inline constexpr std::size_t kStampAuthLen = test_layout::auth::base;
// Padding that makes authenticated requests and replies equal in size (112 - 48).
inline constexpr std::size_t kSymmetricPaddingAuth =
    test_layout::auth::base - test_layout::auth::twamp_sender_base; // 64

enum class protected_format : std::uint8_t { twamp, stamp };

inline constexpr std::size_t protected_sender_base(protected_format f) noexcept
{
    return f == protected_format::stamp ? test_layout::auth::base
                                        : test_layout::auth::twamp_sender_base;
}
inline constexpr std::size_t open_sender_base(protected_format f) noexcept
{
    return f == protected_format::stamp ? kStampBaseLen : kSenderUnauthLen;
}
inline constexpr std::size_t open_reflector_base(protected_format f) noexcept
{
    return f == protected_format::stamp ? kStampBaseLen : kReflectorUnauthLen;
}

namespace detail {

enum class direction : bool { to_open, to_auth };

// Moves the fields of `map` from `in` (one layout) to `out` (the other). Both are big-endian
// octets of the same size, so a field moves as it is.
template <std::size_t N>
inline void move_fields(const test_layout::field_pair (&map)[N], protected_format f, direction d,
                        const std::uint8_t* in, std::uint8_t* out) noexcept
{
    for (const auto& m : map) {
        if (m.stamp_only && f != protected_format::stamp) continue;
        const auto& from = d == direction::to_auth ? m.open : m.auth;
        const auto& to = d == direction::to_auth ? m.auth : m.open;
        std::copy_n(in + from.offset, from.size, out + to.offset);
    }
}

// Translates `in` (base `in_base`, then `extra` octets copied as they are) into `out` (base
// `out_base`, zero but for the mapped fields). Returns the output length, or 0 when `in` is
// shorter than its base or `out` is too small.
template <std::size_t N>
inline std::size_t translate(wire::const_byte_span in, std::size_t in_base, wire::byte_span out,
                             std::size_t out_base, const test_layout::field_pair (&map)[N],
                             protected_format f, direction d) noexcept
{
    if (in.size() < in_base) return 0;
    const std::size_t extra = in.size() - in_base;
    if (out.size() < out_base + extra) return 0;
    std::fill(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(out_base), std::uint8_t{0});
    move_fields(map, f, d, in.data(), out.data());
    std::copy_n(in.data() + in_base, extra, out.data() + out_base);
    return out_base + extra;
}

} // namespace detail

// Protected sender packet (plaintext) -> open sender packet. Returns the open length, or 0 when
// the input is shorter than the protected base or `out` is too small.
inline std::size_t sender_from_protected(wire::const_byte_span in, protected_format f,
                                         wire::byte_span out) noexcept
{
    return detail::translate(in, protected_sender_base(f), out, open_sender_base(f),
                             test_layout::sender_fields, f, detail::direction::to_open);
}

// Open sender packet -> protected sender packet (plaintext, HMAC field zero).
inline std::size_t sender_to_protected(wire::const_byte_span in, protected_format f,
                                       wire::byte_span out) noexcept
{
    return detail::translate(in, open_sender_base(f), out, protected_sender_base(f),
                             test_layout::sender_fields, f, detail::direction::to_auth);
}

// Open reflector reply -> protected reflector reply. The reply is as long as the protected
// request when that is at least 112 octets (RFC 5357 §4.2.1); its padding is the request's,
// the last 64 octets dropped (TWAMP), or the request's TLVs (STAMP), taken from
// `protected_request` (plaintext), or the TLVs as the open reply carries them (STAMP).
inline std::size_t reflector_to_protected(wire::const_byte_span open_reply,
                                          wire::const_byte_span protected_request,
                                          protected_format f, wire::byte_span out) noexcept
{
    constexpr std::size_t base = test_layout::auth::base;
    if (open_reply.size() < open_reflector_base(f)) return 0;
    const std::size_t sbase = protected_sender_base(f);
    const std::size_t len = std::max(protected_request.size(), base);
    if (out.size() < len || protected_request.size() < sbase) return 0;
    std::fill(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(len), std::uint8_t{0});
    detail::move_fields(test_layout::reflector_fields, f, detail::direction::to_auth,
                        open_reply.data(), out.data());
    if (len > base) {
        // STAMP: the TLVs as the core reflected them (with its U/M marks). TWAMP: the request's
        // padding from octet 48, its last 64 octets dropped.
        const auto from = f == protected_format::stamp ? open_reply.subspan(kStampBaseLen)
                                                       : protected_request.subspan(sbase);
        std::copy_n(from.data(), std::min(len - base, from.size()), out.data() + base);
    }
    return len;
}

// Protected reflector reply (plaintext) -> open reply for the sender core.
inline std::size_t reflector_from_protected(wire::const_byte_span in, protected_format f,
                                            wire::byte_span out) noexcept
{
    return detail::translate(in, test_layout::auth::base, out, open_reflector_base(f),
                             test_layout::reflector_fields, f, detail::direction::to_open);
}

} // namespace twamp
