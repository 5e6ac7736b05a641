#include "twamp/imix.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <ostream>

using namespace twamp;

TEST_CASE("IMIX: 64/590/1514-octet frames in 7:4:1 for IPv4 and IPv6")
{
    auto v4 = imix_sizes(4, test_format::twamp);
    REQUIRE(v4.size() == 12);
    CHECK(std::count(v4.begin(), v4.end(), 22u) == 7);   // 64 - 14 - 20 - 8
    CHECK(std::count(v4.begin(), v4.end(), 548u) == 4);  // 590 - 42
    CHECK(std::count(v4.begin(), v4.end(), 1472u) == 1); // 1514 - 42
    auto v6 = imix_sizes(6, test_format::twamp);
    CHECK(std::count(v6.begin(), v6.end(), 14u) == 7); // 64 cannot fit: the 14-octet base
    CHECK(std::count(v6.begin(), v6.end(), 528u) == 4);
    CHECK(std::count(v6.begin(), v6.end(), 1452u) == 1);
    auto st = imix_sizes(4, test_format::stamp);
    CHECK(std::count(st.begin(), st.end(), 44u) == 7);         // STAMP base
    CHECK(payload_for_frame(88, 4, test_format::stamp) == 48); // 2 extra octets -> a 4-octet TLV
}
