// tests/pcap.hpp — a small, strict reader for classic pcap files, for replay tests.
//
// Understands the microsecond and nanosecond magic in both byte orders, link types Ethernet (1),
// raw IP (101), Linux cooked (113) and BSD loopback (0), IPv4/IPv6 (no extension headers), UDP and
// TCP. Yields one record per frame with the transport payload and the fields tests look at.
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace twamp_test {

struct pcap_packet {
    double time = 0;           // seconds since the epoch
    int ip_version = 0;        // 4 or 6
    std::uint8_t tos = 0;      // IPv4 TOS / IPv6 traffic class
    std::uint8_t ttl = 0;      // IPv4 TTL / IPv6 hop limit
    bool dont_fragment = false;
    bool udp = false;          // else TCP
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::vector<std::uint8_t> src_addr, dst_addr;
    std::vector<std::uint8_t> payload;
};

inline std::vector<pcap_packet> read_pcap(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::vector<std::uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (d.size() < 24) throw std::runtime_error("short pcap header");
    auto le32 = [&](std::size_t o) {
        return std::uint32_t(d[o]) | std::uint32_t(d[o + 1]) << 8 | std::uint32_t(d[o + 2]) << 16 |
               std::uint32_t(d[o + 3]) << 24;
    };
    auto be32 = [&](std::size_t o) {
        return std::uint32_t(d[o]) << 24 | std::uint32_t(d[o + 1]) << 16 | std::uint32_t(d[o + 2]) << 8 |
               std::uint32_t(d[o + 3]);
    };
    bool swapped = false;
    bool nano = false;
    switch (le32(0)) {
    case 0xa1b2c3d4: break;
    case 0xa1b23c4d: nano = true; break;
    case 0xd4c3b2a1: swapped = true; break;
    case 0x4d3cb2a1: swapped = true; nano = true; break;
    default: throw std::runtime_error("not a pcap file: " + path);
    }
    auto u32 = [&](std::size_t o) { return swapped ? be32(o) : le32(o); };
    const std::uint32_t linktype = u32(20);
    std::vector<pcap_packet> out;
    std::size_t off = 24;
    while (off + 16 <= d.size()) {
        const std::uint32_t sec = u32(off), frac = u32(off + 4), incl = u32(off + 8);
        off += 16;
        if (incl > d.size() - off) throw std::runtime_error("truncated pcap record");
        const std::uint8_t* f = d.data() + off;
        std::size_t n = incl;
        off += incl;
        std::size_t l3 = 0;
        std::uint16_t ethertype = 0;
        if (linktype == 1) {
            if (n < 14) continue;
            ethertype = std::uint16_t(f[12] << 8 | f[13]);
            l3 = 14;
        } else if (linktype == 113) {
            if (n < 16) continue;
            ethertype = std::uint16_t(f[14] << 8 | f[15]);
            l3 = 16;
        } else if (linktype == 0) {
            if (n < 4) continue;
            l3 = 4;
            ethertype = (f[4] >> 4) == 6 ? 0x86dd : 0x0800;
        } else if (linktype == 101) {
            ethertype = n > 0 && (f[0] >> 4) == 6 ? 0x86dd : 0x0800;
        } else {
            throw std::runtime_error("unsupported pcap link type");
        }
        pcap_packet p;
        p.time = sec + frac / (nano ? 1e9 : 1e6);
        const std::uint8_t* ip = f + l3;
        std::size_t iplen = n - l3;
        std::size_t l4 = 0;
        std::uint8_t proto = 0;
        std::size_t total = 0;
        if (ethertype == 0x0800) {
            if (iplen < 20) continue;
            const std::size_t ihl = std::size_t(ip[0] & 0x0f) * 4;
            p.ip_version = 4;
            p.tos = ip[1];
            total = std::size_t(ip[2] << 8 | ip[3]);
            p.dont_fragment = (ip[6] & 0x40) != 0;
            p.ttl = ip[8];
            proto = ip[9];
            p.src_addr.assign(ip + 12, ip + 16);
            p.dst_addr.assign(ip + 16, ip + 20);
            l4 = ihl;
        } else if (ethertype == 0x86dd) {
            if (iplen < 40) continue;
            p.ip_version = 6;
            p.tos = std::uint8_t(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
            total = 40 + std::size_t(ip[4] << 8 | ip[5]);
            proto = ip[6];
            p.ttl = ip[7];
            p.src_addr.assign(ip + 8, ip + 24);
            p.dst_addr.assign(ip + 24, ip + 40);
            l4 = 40;
        } else {
            continue;
        }
        if (total > iplen || l4 > total) continue;
        const std::uint8_t* t = ip + l4;
        const std::size_t tlen = total - l4;
        if (proto == 17) {
            if (tlen < 8) continue;
            p.udp = true;
            p.src_port = std::uint16_t(t[0] << 8 | t[1]);
            p.dst_port = std::uint16_t(t[2] << 8 | t[3]);
            p.payload.assign(t + 8, t + tlen);
        } else if (proto == 6) {
            if (tlen < 20) continue;
            const std::size_t doff = std::size_t(t[12] >> 4) * 4;
            if (doff > tlen) continue;
            p.src_port = std::uint16_t(t[0] << 8 | t[1]);
            p.dst_port = std::uint16_t(t[2] << 8 | t[3]);
            p.payload.assign(t + doff, t + tlen);
        } else {
            continue;
        }
        out.push_back(std::move(p));
    }
    return out;
}

} // namespace twamp_test
