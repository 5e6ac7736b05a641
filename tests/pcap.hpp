// tests/pcap.hpp — a small, strict reader for classic pcap files, for replay tests.
//
// Understands pcapng and classic pcap (microsecond and nanosecond magic, both byte orders), link
// types Ethernet (1), raw IP (101), Linux cooked (113) and BSD loopback (0), IPv4/IPv6 (no
// extension headers), UDP and TCP. Yields one record per frame with the transport payload and the
// fields tests look at.
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace twamp_test {

struct pcap_packet {
    double time = 0;      // seconds since the epoch
    int ip_version = 0;   // 4 or 6
    std::uint8_t tos = 0; // IPv4 TOS / IPv6 traffic class
    std::uint8_t ttl = 0; // IPv4 TTL / IPv6 hop limit
    bool dont_fragment = false;
    bool udp = false; // else TCP
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::vector<std::uint8_t> src_addr, dst_addr;
    std::vector<std::uint8_t> payload;
};

// Decodes one link-layer frame; false when it is not IPv4/IPv6 UDP or TCP.
inline bool decode_frame(std::uint32_t linktype, const std::uint8_t* f, std::size_t n, double time,
                         pcap_packet& p)
{
    std::size_t l3 = 0;
    std::uint16_t ethertype = 0;
    if (linktype == 1) {
        if (n < 14) return false;
        ethertype = std::uint16_t(f[12] << 8 | f[13]);
        l3 = 14;
    } else if (linktype == 113) {
        if (n < 16) return false;
        ethertype = std::uint16_t(f[14] << 8 | f[15]);
        l3 = 16;
    } else if (linktype == 0) {
        if (n < 5) return false;
        l3 = 4;
        ethertype = (f[4] >> 4) == 6 ? 0x86dd : 0x0800;
    } else if (linktype == 101) {
        ethertype = n > 0 && (f[0] >> 4) == 6 ? 0x86dd : 0x0800;
    } else {
        throw std::runtime_error("unsupported pcap link type");
    }
    p = pcap_packet{};
    p.time = time;
    const std::uint8_t* ip = f + l3;
    const std::size_t iplen = n - l3;
    std::size_t l4 = 0, total = 0;
    std::uint8_t proto = 0;
    if (ethertype == 0x0800) {
        if (iplen < 20) return false;
        p.ip_version = 4;
        p.tos = ip[1];
        total = std::size_t(ip[2] << 8 | ip[3]);
        p.dont_fragment = (ip[6] & 0x40) != 0;
        p.ttl = ip[8];
        proto = ip[9];
        p.src_addr.assign(ip + 12, ip + 16);
        p.dst_addr.assign(ip + 16, ip + 20);
        l4 = std::size_t(ip[0] & 0x0f) * 4;
    } else if (ethertype == 0x86dd) {
        if (iplen < 40) return false;
        p.ip_version = 6;
        p.tos = std::uint8_t(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
        total = 40 + std::size_t(ip[4] << 8 | ip[5]);
        proto = ip[6];
        p.ttl = ip[7];
        p.src_addr.assign(ip + 8, ip + 24);
        p.dst_addr.assign(ip + 24, ip + 40);
        l4 = 40;
    } else {
        return false;
    }
    if (total > iplen || l4 > total) return false;
    const std::uint8_t* t = ip + l4;
    const std::size_t tlen = total - l4;
    if (proto == 17) {
        if (tlen < 8) return false;
        p.udp = true;
        p.src_port = std::uint16_t(t[0] << 8 | t[1]);
        p.dst_port = std::uint16_t(t[2] << 8 | t[3]);
        p.payload.assign(t + 8, t + tlen);
        return true;
    }
    if (proto == 6) {
        if (tlen < 20) return false;
        const std::size_t doff = std::size_t(t[12] >> 4) * 4;
        if (doff > tlen) return false;
        p.src_port = std::uint16_t(t[0] << 8 | t[1]);
        p.dst_port = std::uint16_t(t[2] << 8 | t[3]);
        p.payload.assign(t + doff, t + tlen);
        return true;
    }
    return false;
}

// Reads a classic pcap or a pcapng file (section header, interface descriptions, enhanced and
// simple packet blocks; microsecond timestamps unless if_tsresol says otherwise).
inline std::vector<pcap_packet> read_pcap(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::vector<std::uint8_t> d((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
    if (d.size() < 24) throw std::runtime_error("short pcap header");
    auto le32 = [&](std::size_t o) {
        return std::uint32_t(d[o]) | std::uint32_t(d[o + 1]) << 8 | std::uint32_t(d[o + 2]) << 16 |
               std::uint32_t(d[o + 3]) << 24;
    };
    auto be32 = [&](std::size_t o) {
        return std::uint32_t(d[o]) << 24 | std::uint32_t(d[o + 1]) << 16 |
               std::uint32_t(d[o + 2]) << 8 | std::uint32_t(d[o + 3]);
    };
    std::vector<pcap_packet> out;
    if (le32(0) == 0x0A0D0D0A) {
        bool swapped = be32(8) == 0x1A2B3C4D;
        auto u32 = [&](std::size_t o) { return swapped ? be32(o) : le32(o); };
        auto u16 = [&](std::size_t o) {
            return swapped ? std::uint16_t(d[o] << 8 | d[o + 1])
                           : std::uint16_t(d[o] | d[o + 1] << 8);
        };
        std::vector<std::uint32_t> linktypes;
        std::vector<double> units; // seconds per timestamp tick, per interface
        std::size_t off = 0;
        while (off + 12 <= d.size()) {
            const std::uint32_t type = u32(off);
            const std::uint32_t len = u32(off + 4);
            if (len < 12 || len > d.size() - off) throw std::runtime_error("bad pcapng block");
            if (type == 0x0A0D0D0A) {
                swapped = be32(off + 8) == 0x1A2B3C4D;
                linktypes.clear();
                units.clear();
            } else if (type == 1 && len >= 20) {
                linktypes.push_back(u16(off + 8));
                double unit = 1e-6;
                std::size_t o = off + 16;
                while (o + 4 <= off + len - 4) {
                    const std::uint16_t code = u16(o), olen = u16(o + 2);
                    if (code == 0) break;
                    if (code == 9 && olen >= 1) {
                        const std::uint8_t r = d[o + 4];
                        unit = (r & 0x80) ? std::pow(2.0, -double(r & 0x7f))
                                          : std::pow(10.0, -double(r));
                    }
                    o += 4 + ((olen + 3u) & ~3u);
                }
                units.push_back(unit);
            } else if (type == 6 && len >= 32) {
                const std::uint32_t ifc = u32(off + 8);
                if (ifc >= linktypes.size()) throw std::runtime_error("pcapng: unknown interface");
                const std::uint64_t ts = (std::uint64_t(u32(off + 12)) << 32) | u32(off + 16);
                const std::uint32_t caplen = u32(off + 20);
                if (caplen > len - 32) throw std::runtime_error("pcapng: bad captured length");
                pcap_packet p;
                if (decode_frame(linktypes[ifc], d.data() + off + 28, caplen,
                                 double(ts) * units[ifc], p))
                    out.push_back(std::move(p));
            }
            off += len;
        }
        return out;
    }
    bool swapped = false;
    bool nano = false;
    switch (le32(0)) {
    case 0xa1b2c3d4:
        break;
    case 0xa1b23c4d:
        nano = true;
        break;
    case 0xd4c3b2a1:
        swapped = true;
        break;
    case 0x4d3cb2a1:
        swapped = true;
        nano = true;
        break;
    default:
        throw std::runtime_error("not a pcap file: " + path);
    }
    auto u32 = [&](std::size_t o) { return swapped ? be32(o) : le32(o); };
    const std::uint32_t linktype = u32(20);
    std::size_t off = 24;
    while (off + 16 <= d.size()) {
        const std::uint32_t sec = u32(off), frac = u32(off + 4), incl = u32(off + 8);
        off += 16;
        if (incl > d.size() - off) throw std::runtime_error("truncated pcap record");
        pcap_packet p;
        if (decode_frame(linktype, d.data() + off, incl, sec + frac / (nano ? 1e9 : 1e6), p))
            out.push_back(std::move(p));
        off += incl;
    }
    return out;
}

} // namespace twamp_test
