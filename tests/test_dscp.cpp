#include "twamp/dscp.hpp"

#include <doctest/doctest.h>

#include <ostream>
#include <sstream>
#include <string>

TEST_CASE("DSCP names and numbers parse; bad values do not")
{
    CHECK(twamp::parse_dscp("ef") == 46);
    CHECK(twamp::parse_dscp("EF") == 46);
    CHECK(twamp::parse_dscp("af41") == 34);
    CHECK(twamp::parse_dscp("af11") == 10);
    CHECK(twamp::parse_dscp("af43") == 38);
    CHECK(twamp::parse_dscp("cs5") == 40);
    CHECK(twamp::parse_dscp("cs1") == 8);
    CHECK(twamp::parse_dscp("be") == 0);
    CHECK(twamp::parse_dscp("nc1") == 48);
    CHECK(twamp::parse_dscp("nc2") == 56);
    CHECK(twamp::parse_dscp("cp63") == 63);
    CHECK(twamp::parse_dscp("0") == 0);
    CHECK(twamp::parse_dscp("63") == 63);
    CHECK_FALSE(twamp::parse_dscp("64"));
    CHECK_FALSE(twamp::parse_dscp("-1"));
    CHECK_FALSE(twamp::parse_dscp("af44"));
    CHECK_FALSE(twamp::parse_dscp(""));
    CHECK_FALSE(twamp::parse_dscp("ef "));
    // On the wire the DSCP is the top six bits of the TOS octet.
    CHECK(twamp::dscp_to_tos(46) == 0xB8);
    CHECK(twamp::dscp_to_tos(34) == 0x88);
}

TEST_CASE("every name round-trips and the table matches twampy's layout")
{
    for (int d = 0; d < 64; ++d)
        CHECK(twamp::parse_dscp(twamp::dscp_name(d)) == d);
    const auto t = twamp::dscp_table();
    CHECK(t.find("DSCP Name      DSCP Value     TOS (bin)      TOS (hex)\n") != std::string::npos);
    CHECK(t.find("\nbe             0              0000 0000      00\n") != std::string::npos);
    CHECK(t.find("\naf41           34             1000 1000      88\n") != std::string::npos);
    CHECK(t.find("\nef             46             1011 1000      B8\n") != std::string::npos);
    CHECK(t.find("\ncp63           63             1111 1100      FC\n") != std::string::npos);
    std::istringstream in(t);
    int rows = 0;
    for (std::string l; std::getline(in, l);)
        if (l.size() == 15 + 15 + 15 + 2 && l[15] != ' ') ++rows;
    CHECK(rows == 64);
}
