#include "twamp/error.hpp"

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through operator<<

#include <set>
#include <string>

TEST_CASE("every error code has its own message in the twamp category")
{
    std::set<std::string> seen;
    for (int i = 0; i <= static_cast<int>(twamp::errc::timeout); ++i) {
        std::error_code ec = static_cast<twamp::errc>(i);
        CHECK(std::string(ec.category().name()) == "twamp");
        const auto msg = ec.message();
        CHECK(msg != "unknown twamp error");
        CHECK(seen.insert(msg).second);
    }
    std::error_code ok = twamp::errc::ok;
    CHECK_FALSE(ok);
    std::error_code bad = twamp::errc::truncated;
    CHECK(bad);
    CHECK(bad == twamp::errc::truncated);
    CHECK(twamp::error_category().message(9999) == "unknown twamp error");
}
