// twamp/imix.hpp — probe sizes: fixed padding, and the simple IMIX mix twampy offers.
//
// IMIX here is 64-, 590- and 1514-octet Ethernet frames in the ratio 7:4:1. The UDP payload that
// gives such a frame depends on the IP version (14 Ethernet + 20 IPv4 or 40 IPv6 + 8 UDP octets),
// and no probe can be smaller than its format's base, so the smallest IPv6 frame is 76 octets.
#pragma once

#include "twamp/test_packet.hpp"

#include <cstddef>
#include <vector>

namespace twamp {

inline constexpr std::size_t kEthernetHeaderLen = 14;
inline constexpr std::size_t kUdpHeaderLen = 8;

inline constexpr std::size_t ip_header_len(int ip_version) noexcept
{
    return ip_version == 6 ? 40 : 20;
}

// The UDP payload length of a probe filling an Ethernet frame of `frame` octets, at least the
// format's base. STAMP octets past the base travel as an Extra Padding TLV, which needs 4.
inline std::size_t payload_for_frame(std::size_t frame, int ip_version, test_format f) noexcept
{
    const std::size_t overhead = kEthernetHeaderLen + ip_header_len(ip_version) + kUdpHeaderLen;
    const std::size_t base = sender_base_len(f);
    std::size_t len = frame > overhead ? frame - overhead : 0;
    if (len < base) len = base;
    if (f == test_format::stamp && len > base && len - base < kStampTlvHeaderLen)
        len = base + kStampTlvHeaderLen;
    return len;
}

// Twelve sizes in a fixed interleaved order, 7 small, 4 medium, 1 large, used in turn.
inline std::vector<std::size_t> imix_sizes(int ip_version, test_format f)
{
    const std::size_t s = payload_for_frame(64, ip_version, f);
    const std::size_t m = payload_for_frame(590, ip_version, f);
    const std::size_t l = payload_for_frame(1514, ip_version, f);
    return {s, m, s, s, m, s, l, s, m, s, s, m};
}

} // namespace twamp
