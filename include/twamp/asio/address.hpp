// twamp/asio/address.hpp — "host:port" strings as twampy accepts them, and their resolution.
//
// Accepted forms: "" (any address, default port), "host", "host:port", ":port", "a.b.c.d:port",
// "[v6]", "[v6]:port" and a bare IPv6 address ("::1", "fe80::1"). Host names resolve through the
// system resolver; a family preference (from the other end of the session) picks among results.
#pragma once

#include "twamp/error.hpp"
#include "twamp/stamp_tlvs.hpp"

#include <asio.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace twamp::net {

struct host_port {
    std::string host; // empty: any local address
    std::uint16_t port = 0;
    int family_hint = 0; // 4, 6 or 0 (not told by the syntax)
};

inline std::error_code parse_port(std::string_view s, std::uint16_t& port) noexcept
{
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v > 65535)
        return errc::parse_address;
    port = static_cast<std::uint16_t>(v);
    return {};
}

inline std::error_code parse_host_port(std::string_view s, std::uint16_t default_port,
                                       host_port& out) noexcept
{
    out = host_port{{}, default_port, 0};
    if (s.empty()) return {};
    if (s.front() == '[') {
        const auto close = s.find(']');
        if (close == std::string_view::npos || close == 1) return errc::parse_address;
        out.host = std::string(s.substr(1, close - 1));
        out.family_hint = 6;
        const auto rest = s.substr(close + 1);
        if (rest.empty()) return {};
        if (rest.front() != ':') return errc::parse_address;
        return parse_port(rest.substr(1), out.port);
    }
    const auto colons = std::count(s.begin(), s.end(), ':');
    if (colons > 1) { // bare IPv6 address
        out.host = std::string(s);
        out.family_hint = 6;
        return {};
    }
    if (colons == 1) {
        const auto c = s.find(':');
        out.host = std::string(s.substr(0, c));
        if (auto ec = parse_port(s.substr(c + 1), out.port)) return ec;
    } else {
        out.host = std::string(s);
    }
    std::error_code ec;
    if (!out.host.empty()) {
        auto a = asio::ip::make_address(out.host, ec);
        if (!ec) out.family_hint = a.is_v4() ? 4 : 6;
    }
    return {};
}

// Resolves to one UDP endpoint. `want_family` (4/6/0) selects among several results; an empty
// host yields the unspecified address of that family (IPv6 when 0, for a dual-stack socket).
inline asio::ip::udp::endpoint resolve_udp(asio::io_context& io, const host_port& hp,
                                           int want_family, std::error_code& ec)
{
    ec.clear();
    const int fam = hp.family_hint ? hp.family_hint : want_family;
    if (hp.host.empty()) {
        return fam == 4 ? asio::ip::udp::endpoint(asio::ip::address_v4::any(), hp.port)
                        : asio::ip::udp::endpoint(asio::ip::address_v6::any(), hp.port);
    }
    auto addr = asio::ip::make_address(hp.host, ec);
    if (!ec) {
        if (want_family && ((want_family == 4) != addr.is_v4()))
            ec = make_error_code(errc::parse_address);
        return {addr, hp.port};
    }
    asio::ip::udp::resolver resolver(io);
    auto results = resolver.resolve(hp.host, std::to_string(hp.port), ec);
    if (ec) return {};
    for (const auto& r : results) {
        const auto& ep = r.endpoint();
        if (fam == 0 || (fam == 4) == ep.address().is_v4()) return ep;
    }
    ec = make_error_code(errc::parse_address);
    return {};
}

// The 16-octet key form of an address (IPv4 as ::ffff:a.b.c.d), as the reflector's session table
// wants it.
inline std::array<std::uint8_t, 16> address_key(const asio::ip::address& a) noexcept
{
    if (a.is_v4()) return asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
    return a.to_v6().to_bytes();
}

// An IPv4-mapped IPv6 address (what a dual-stack socket reports for an IPv4 peer) as the IPv4
// address it is; any other address unchanged.
inline asio::ip::address unmap(const asio::ip::address& a)
{
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

// The form STAMP TLVs carry an address in (4 or 16 octets; IPv4-mapped IPv6 as IPv4).
inline tlv_address to_tlv_address(const asio::ip::address& addr)
{
    const auto a = unmap(addr);
    tlv_address t;
    t.v6 = a.is_v6();
    if (t.v6) {
        const auto b = a.to_v6().to_bytes();
        std::copy(b.begin(), b.end(), t.octets.begin());
    } else {
        const auto b = a.to_v4().to_bytes();
        std::copy(b.begin(), b.end(), t.octets.begin());
    }
    return t;
}

// An address for humans: IPv4-mapped IPv6 printed as IPv4.
inline std::string display_address(const asio::ip::address& a)
{
    return unmap(a).to_string();
}

// The local address the kernel would send from to reach `remote` (its route's source), found
// by connecting a throw-away UDP socket (no packet is sent). The wildcard address when that
// fails.
inline asio::ip::address source_address_for(const asio::ip::udp::endpoint& remote)
{
    asio::io_context io;
    asio::ip::udp::socket s(io);
    std::error_code ec;
    s.open(remote.protocol(), ec);
    if (!ec) s.connect(remote, ec);
    if (!ec) {
        const auto a = s.local_endpoint(ec).address();
        if (!ec) return a;
    }
    return remote.address().is_v4() ? asio::ip::address(asio::ip::address_v4::any())
                                    : asio::ip::address(asio::ip::address_v6::any());
}

} // namespace twamp::net
