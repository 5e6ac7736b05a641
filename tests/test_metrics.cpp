#include "twamp/metrics.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <ostream>
#include <utility>
#include <vector>

using twamp::delay_triple;
using twamp::ipdv_tracker;
using twamp::reorder_tracker;

namespace {
// Feeds (seq, round-trip delay) arrivals; returns the IPDV values emitted (round trip only).
std::vector<std::int64_t>
ipdv_of(const std::vector<std::pair<std::uint32_t, std::int64_t>>& arrivals,
        std::size_t window = 1024)
{
    ipdv_tracker t(window);
    std::vector<std::int64_t> out;
    for (const auto& [seq, d] : arrivals)
        t.add(seq, delay_triple{d / 2, d - d / 2, d}, [&](const delay_triple& v) {
            CHECK(v[0] + v[1] == v[2]); // each direction differenced on its own
            out.push_back(v[2]);
        });
    return out;
}
} // namespace

TEST_CASE("IPDV: consecutive pairs in order, sign kept (RFC 3393)")
{
    // Delays 100, 130, 110, 110, 90 -> IPDV +30, -20, 0, -20.
    const auto v = ipdv_of({{0, 100}, {1, 130}, {2, 110}, {3, 110}, {4, 90}});
    CHECK(v == std::vector<std::int64_t>{30, -20, 0, -20});
}

TEST_CASE("IPDV: a lost packet breaks its two pairs, nothing else")
{
    // 2 is lost: pairs (1,2) and (2,3) have no IPDV; (0,1), (3,4) do.
    const auto v = ipdv_of({{0, 100}, {1, 150}, {3, 120}, {4, 125}});
    CHECK(v == std::vector<std::int64_t>{50, 5});
}

TEST_CASE("IPDV: pairs are by sequence number, not arrival order")
{
    // Arrival order 0, 2, 1, 3 with delays D0=100, D1=300, D2=110, D3=105.
    // Pairs: (0,1) = 200, (1,2) = -190, (2,3) = -5; (1,2) and (0,1) complete when 1 arrives.
    const auto v = ipdv_of({{0, 100}, {2, 110}, {1, 300}, {3, 105}});
    REQUIRE(v.size() == 3);
    CHECK(v[0] == 200);  // (0,1): D1 - D0
    CHECK(v[1] == -190); // (1,2): D2 - D1
    CHECK(v[2] == -5);   // (2,3)
}

TEST_CASE("IPDV: a neighbour that left the window is not paired")
{
    // Window 16: seq 40 overwrites the slot of seq 24, so 23/24 can never pair with a stale slot.
    const auto v = ipdv_of({{24, 100}, {40, 200}, {23, 50}}, 16);
    CHECK(v.empty());
}

TEST_CASE("reordering: RFC 4737 example extents")
{
    // Arrivals 1, 2, 4, 5, 3: 3 is reordered; the earliest arrival above it is 4 (position 3),
    // 3 arrives at position 5: extent 2.
    reorder_tracker t;
    std::vector<std::uint64_t> e;
    for (std::uint32_t s : {1u, 2u, 4u, 5u, 3u})
        e.push_back(t.add(s));
    CHECK(e == std::vector<std::uint64_t>{0, 0, 0, 0, 2});
    CHECK(t.reordered() == 1);
    CHECK(t.max_extent() == 2);
}

TEST_CASE("reordering: several late packets and a burst")
{
    // Arrivals: 0 1 5 2 3 6 4 7 (positions 1..8).
    // 2: earliest above it is 5 at position 3, 2 at 4 -> 1; 3 at 5 -> 2; 4 at 7 -> 4 (5 at 3).
    reorder_tracker t;
    std::vector<std::uint64_t> e;
    for (std::uint32_t s : {0u, 1u, 5u, 2u, 3u, 6u, 4u, 7u})
        e.push_back(t.add(s));
    CHECK(e == std::vector<std::uint64_t>{0, 0, 0, 1, 2, 0, 4, 0});
    CHECK(t.reordered() == 3);
    CHECK(t.max_extent() == 4);
    CHECK(t.arrivals() == 8);
}

TEST_CASE("reordering: in-order streams and gaps from loss are not reordering")
{
    reorder_tracker t;
    for (std::uint32_t s : {0u, 1u, 3u, 4u, 9u, 10u})
        CHECK(t.add(s) == 0);
    CHECK(t.reordered() == 0);
    CHECK(t.max_extent() == 0);
}

// Found by fuzz_sender (session 3): IPDV of delays more than 2^63 ns apart saturates instead of
// overflowing int64.
TEST_CASE("IPDV of delays more than 2^63 ns apart saturates")
{
    ipdv_tracker t(16);
    std::vector<delay_triple> out;
    auto sink = [&](const delay_triple& v) { out.push_back(v); };
    t.add(0, {-7'316'936'875'103'111'936, 5'000'000'000'000'000'000, 0}, sink);
    t.add(1, {3'714'711'551'999'990'017, -5'000'000'000'000'000'000, 7}, sink);
    REQUIRE(out.size() == 1);
    CHECK(out[0][0] == INT64_MAX);
    CHECK(out[0][1] == INT64_MIN);
    CHECK(out[0][2] == 7);
}
