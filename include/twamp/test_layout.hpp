// twamp/test_layout.hpp — where every TWAMP-Test and STAMP field sits: one table of offsets and
// sizes that the codecs, the layout translations, the reflector and the test-packet crypto all
// read, so no offset is written twice.
//
// Open layouts (TWAMP-Test RFC 5357 §4.1.2 / §4.2.1, TWAMP Light Appendix I; STAMP RFC 8762
// §4.2.1 / §4.3.1 with the SSID of RFC 8972 §3). TWAMP and STAMP share octets 0..40:
//   sender    0 Seq | 4 Timestamp | 12 ErrEst | 14 SSID (STAMP) / padding (TWAMP) | 16 MBZ(28)
//   reflector 0 Seq | 4 Timestamp | 12 ErrEst | 14 SSID (STAMP) / MBZ (TWAMP) |
//             16 Receive Timestamp | 24 Sender Seq | 28 Sender Timestamp | 36 Sender ErrEst |
//             38 MBZ(2) | 40 Sender TTL | 41 MBZ(3, STAMP)
// Protected layouts (RFC 4656 §4.1.2, RFC 5357 §4.1.2 / §4.2.1 with EID 5045; authenticated
// STAMP RFC 8762 §4.2.2 / §4.3.2), built of 16-octet AES blocks:
//   sender    0 Seq | 4 MBZ(12) | 16 Timestamp | 24 ErrEst | 26 SSID (STAMP) / MBZ |
//             32 HMAC (TWAMP, base 48) or 32 MBZ(64) | 96 HMAC (STAMP, base 112)
//   reflector 0 Seq | 4 MBZ(12) | 16 Timestamp | 24 ErrEst | 26 SSID (STAMP) / MBZ |
//             32 Receive Timestamp | 40 MBZ(8) | 48 Sender Seq | 52 MBZ(12) |
//             64 Sender Timestamp | 72 Sender ErrEst | 74 MBZ(6) | 80 Sender TTL | 81 MBZ(15) |
//             96 HMAC (base 112)
// STAMP TLVs (RFC 8972 §4) follow the base: Flags(1) Type(1) Length(2) Value(Length).
#pragma once

#include <cstddef>
#include <cstdint>

namespace twamp {

// The sizes the protected layouts (and TWAMP-Control messages) are built from.
inline constexpr std::size_t aes_block_size = 16;
inline constexpr std::size_t truncated_hmac_size = 16; // RFC 4656 §3.2, RFC 8762 §4.4

namespace test_layout {

struct field {
    std::size_t offset = 0;
    std::size_t size = 0;
    constexpr std::size_t end() const noexcept { return offset + size; }
};

// The unauthenticated layouts.
namespace open {
inline constexpr field seq{0, 4};
inline constexpr field timestamp{4, 8}; // T1 (sender), T3 (reflector)
inline constexpr field error_estimate{12, 2};
inline constexpr field ssid{14, 2};              // STAMP only
inline constexpr field receive_timestamp{16, 8}; // T2
inline constexpr field sender_seq{24, 4};
inline constexpr field sender_timestamp{28, 8};
inline constexpr field sender_error_estimate{36, 2};
inline constexpr field reflector_mbz{38, 2};
inline constexpr field sender_ttl{40, 1};
inline constexpr field stamp_sender_mbz{16, 28}; // the STAMP sender's MBZ up to its base

inline constexpr std::size_t twamp_sender_base = ssid.offset;         // 14
inline constexpr std::size_t twamp_reflector_base = sender_ttl.end(); // 41
inline constexpr std::size_t stamp_base = stamp_sender_mbz.end();     // 44, sender and reflector
} // namespace open

// The authenticated / encrypted TWAMP-Test and authenticated STAMP layouts.
namespace auth {
inline constexpr field seq{0, 4};
inline constexpr field timestamp{16, 8};
inline constexpr field error_estimate{24, 2};
inline constexpr field ssid{26, 2}; // STAMP only
inline constexpr field receive_timestamp{32, 8};
inline constexpr field sender_seq{48, 4};
inline constexpr field sender_timestamp{64, 8};
inline constexpr field sender_error_estimate{72, 2};
inline constexpr field sender_ttl{80, 1};
inline constexpr field twamp_sender_hmac{32, truncated_hmac_size};
inline constexpr field hmac{96, truncated_hmac_size}; // TWAMP reflector, STAMP both ways

inline constexpr std::size_t twamp_sender_base = twamp_sender_hmac.end(); // 48
inline constexpr std::size_t base = hmac.end(); // 112: TWAMP reflector, STAMP both ways
// Authenticated mode protects block 0 only (the sequence number); encrypted mode everything
// before the HMAC field (RFC 4656 §4.1.2).
inline constexpr field first_block{0, aes_block_size};
} // namespace auth

// One field in both layouts, for the translations between them.
struct field_pair {
    field open;
    field auth;
    bool stamp_only = false;
};
inline constexpr field_pair sender_fields[] = {
    {open::seq, auth::seq},
    {open::timestamp, auth::timestamp},
    {open::error_estimate, auth::error_estimate},
    {open::ssid, auth::ssid, true},
};
inline constexpr field_pair reflector_fields[] = {
    {open::seq, auth::seq},
    {open::timestamp, auth::timestamp},
    {open::error_estimate, auth::error_estimate},
    {open::ssid, auth::ssid, true},
    {open::receive_timestamp, auth::receive_timestamp},
    {open::sender_seq, auth::sender_seq},
    {open::sender_timestamp, auth::sender_timestamp},
    {open::sender_error_estimate, auth::sender_error_estimate},
    {open::sender_ttl, auth::sender_ttl},
};

// A STAMP TLV header (RFC 8972 §4), offsets from the TLV's first octet.
namespace tlv {
inline constexpr field flags{0, 1};
inline constexpr field type{1, 1};
inline constexpr field length{2, 2};
inline constexpr std::size_t header_size = length.end(); // 4
inline constexpr std::uint8_t type_extra_padding = 1;    // RFC 8972 §4.1
inline constexpr std::uint8_t type_hmac = 8;             // RFC 8972 §4.8
inline constexpr std::size_t hmac_value_size = truncated_hmac_size;
} // namespace tlv

static_assert(open::twamp_sender_base == 14 && open::twamp_reflector_base == 41 &&
              open::stamp_base == 44);
static_assert(auth::twamp_sender_base == 48 && auth::base == 112);
static_assert(auth::twamp_sender_base % aes_block_size == 0 && auth::base % aes_block_size == 0);

} // namespace test_layout
} // namespace twamp
