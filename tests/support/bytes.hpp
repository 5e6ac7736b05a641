// tests/support/bytes.hpp — octet strings in the tests: written as hex text (as RFC test vectors
// and captures print them), and slices of them.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace twamp_test {

using bytes = std::vector<std::uint8_t>;

// "00ff1a..." (either case) to octets; a trailing odd digit is ignored.
inline bytes hex(std::string_view s)
{
    auto nib = [](char c) -> std::uint8_t {
        if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
        if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
        return static_cast<std::uint8_t>(c - 'A' + 10);
    };
    bytes out;
    for (std::size_t i = 0; i + 1 < s.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(nib(s[i]) << 4 | nib(s[i + 1])));
    return out;
}

// `n` octets of `b` from `off`, which must be inside it.
inline bytes slice(const bytes& b, std::size_t off, std::size_t n)
{
    REQUIRE(off + n <= b.size());
    return bytes(b.begin() + static_cast<std::ptrdiff_t>(off),
                 b.begin() + static_cast<std::ptrdiff_t>(off + n));
}

} // namespace twamp_test
