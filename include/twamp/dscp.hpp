// twamp/dscp.hpp — DSCP names and values (RFC 2474, RFC 2597, RFC 3246), twampy's name table.
//
// A DSCP is 6 bits; on the wire it is the top of the TOS / traffic-class octet: TOS = DSCP << 2.
// Names: be, csN (N·8), afXY (8X + 2Y), ef (46), nc1 (48), nc2 (56), and cpN for every other code
// point, as twampy's `dscptable` lists them.
#pragma once

#include <array>
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace twamp {

inline std::string dscp_name(int dscp)
{
    if (dscp == 0) return "be";
    if (dscp == 46) return "ef";
    if (dscp == 48) return "nc1";
    if (dscp == 56) return "nc2";
    if (dscp % 8 == 0 && dscp <= 40) return "cs" + std::to_string(dscp / 8);
    const int cls = dscp / 8, drop = (dscp % 8) / 2;
    if (dscp % 2 == 0 && cls >= 1 && cls <= 4 && drop >= 1 && drop <= 3)
        return "af" + std::to_string(cls) + std::to_string(drop);
    return "cp" + std::to_string(dscp);
}

// Parses a DSCP given as a name from the table above (any case) or a number 0..63.
inline std::optional<int> parse_dscp(std::string_view s)
{
    if (s.empty()) return std::nullopt;
    int v = -1;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc{} && p == s.data() + s.size()) {
        if (v >= 0 && v <= 63) return v;
        return std::nullopt;
    }
    std::string lower;
    for (char c : s)
        lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    for (int d = 0; d < 64; ++d)
        if (dscp_name(d) == lower) return d;
    return std::nullopt;
}

inline constexpr int dscp_to_tos(int dscp) noexcept
{
    return (dscp & 0x3F) << 2;
}

// twampy's `dscptable` output, line for line.
inline std::string dscp_table()
{
    std::string out = "\n============================================================\n"
                      "DSCP Mapping\n"
                      "============================================================\n"
                      "DSCP Name      DSCP Value     TOS (bin)      TOS (hex)\n"
                      "------------------------------------------------------------\n";
    for (int d = 0; d < 64; ++d) {
        const int tos = dscp_to_tos(d);
        std::string bin;
        for (int b = 7; b >= 0; --b) {
            bin += ((tos >> b) & 1) ? '1' : '0';
            if (b == 4) bin += ' ';
        }
        char line[96];
        std::snprintf(line, sizeof line, "%-15s%-15d%-15s%02X\n", dscp_name(d).c_str(), d,
                      bin.c_str(), tos);
        out += line;
    }
    out += "============================================================\n";
    return out;
}

} // namespace twamp
