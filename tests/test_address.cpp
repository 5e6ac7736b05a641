#include "twamp/asio/address.hpp"

#include <doctest/doctest.h>

#include <ostream>

using twamp::net::host_port;
using twamp::net::parse_host_port;

namespace {
host_port parse(const char* s, std::uint16_t def = 20000)
{
    host_port hp;
    REQUIRE_FALSE(parse_host_port(s, def, hp));
    return hp;
}
bool fails(const char* s)
{
    host_port hp;
    return static_cast<bool>(parse_host_port(s, 1, hp));
}
} // namespace

TEST_CASE("the address forms twampy accepts")
{
    auto a = parse("");
    CHECK(a.host.empty());
    CHECK(a.port == 20000);
    a = parse(":862");
    CHECK(a.host.empty());
    CHECK(a.port == 862);
    a = parse("192.0.2.1");
    CHECK(a.host == "192.0.2.1");
    CHECK(a.port == 20000);
    CHECK(a.family_hint == 4);
    a = parse("192.0.2.1:20001");
    CHECK(a.port == 20001);
    a = parse("[::1]");
    CHECK(a.host == "::1");
    CHECK(a.family_hint == 6);
    CHECK(a.port == 20000);
    a = parse("[2001:db8::1]:862");
    CHECK(a.host == "2001:db8::1");
    CHECK(a.port == 862);
    a = parse("fe80::1");
    CHECK(a.host == "fe80::1");
    CHECK(a.port == 20000);
    CHECK(a.family_hint == 6);
    a = parse("localhost:5000");
    CHECK(a.host == "localhost");
    CHECK(a.port == 5000);
    CHECK(a.family_hint == 0);
}

TEST_CASE("malformed addresses are refused")
{
    CHECK(fails("1.2.3.4:99999"));
    CHECK(fails("1.2.3.4:"));
    CHECK(fails("1.2.3.4:12x"));
    CHECK(fails("[::1"));
    CHECK(fails("[]:5"));
    CHECK(fails("[::1]5"));
    CHECK(fails("[::1]:-1"));
}

TEST_CASE("resolution: literals, the any address and family mismatches")
{
    asio::io_context io;
    std::error_code ec;
    auto ep = twamp::net::resolve_udp(io, parse("127.0.0.1:7"), 0, ec);
    CHECK_FALSE(ec);
    CHECK(ep.address().to_string() == "127.0.0.1");
    CHECK(ep.port() == 7);
    ep = twamp::net::resolve_udp(io, parse(":9"), 4, ec);
    CHECK_FALSE(ec);
    CHECK(ep.address() == asio::ip::address_v4::any());
    CHECK(ep.port() == 9);
    ep = twamp::net::resolve_udp(io, parse(":9"), 0, ec);
    CHECK_FALSE(ec);
    CHECK(ep.address() == asio::ip::address_v6::any());
    CHECK(ep.port() == 9);
    ep = twamp::net::resolve_udp(io, parse("localhost:9"), 4, ec);
    CHECK_FALSE(ec);
    CHECK(ep.address().is_v4());
    twamp::net::resolve_udp(io, parse("127.0.0.1"), 6, ec);
    CHECK(ec);
    // A success after a failure reports no error: ec is cleared, not left as it was.
    ep = twamp::net::resolve_udp(io, parse(":9"), 4, ec);
    CHECK_FALSE(ec);
    CHECK(ep == asio::ip::udp::endpoint(asio::ip::address_v4::any(), 9));
    CHECK(twamp::net::display_address(asio::ip::make_address("::ffff:10.1.2.3")) == "10.1.2.3");
    CHECK(twamp::net::address_key(asio::ip::make_address("10.1.2.3"))[10] == 0xFF);
}
