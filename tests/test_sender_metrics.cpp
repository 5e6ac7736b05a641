// The Session-Sender feeding the new metrics: IPDV pairs, reordering extent, lost-probe expiry,
// late replies with their timestamps.
#include "twamp/sender_session.hpp"

#include "twamp/reflector_session.hpp"

#include <doctest/doctest.h>

#include <ostream>
#include <vector>

using namespace twamp;
using std::chrono::microseconds;
using std::chrono::milliseconds;

namespace {
struct rig {
    session_reflector refl{reflector_config{}};
    session_sender snd;
    nanoseconds t0{1'700'000'000'000'000'000};
    std::vector<std::vector<std::uint8_t>> probes;
    std::vector<nanoseconds> t1s;

    explicit rig(milliseconds timeout = milliseconds{1000})
        : snd([&] {
              sender_config c;
              c.timeout = timeout;
              c.window = 64;
              return c;
          }())
    {
    }
    void send(std::size_t n)
    {
        for (std::size_t i = 0; i < n; ++i) {
            const nanoseconds t1 = t0 + milliseconds{10} * static_cast<int>(t1s.size());
            std::vector<std::uint8_t> b(41);
            REQUIRE(snd.make_probe(t1, 41, b) == 41);
            probes.push_back(b);
            t1s.push_back(t1);
        }
    }
    // Outbound `out`, no residence, inbound `back`.
    reply_result deliver(std::uint32_t seq, microseconds out, microseconds back)
    {
        std::vector<std::uint8_t> reply(100);
        const nanoseconds t2 = t1s[seq] + out;
        const auto n = refl.reflect(probes[seq], peer_key{}, t2, 250, reply);
        REQUIRE(n > 0);
        stamp_reflector_timestamp(reply, to_ntp(t2).to_u64());
        return snd.on_reply(std::span(reply).first(n), t2 + back, 251);
    }
};
} // namespace

TEST_CASE("sender: IPDV per direction over consecutive sequence numbers")
{
    rig r;
    r.send(4);
    // Round trips 100, 160, (2 lost), 130 µs: only the pair (0,1) has both members; (1,2) and
    // (2,3) have none. IPDV(0,1): outbound 100-60 = 40 µs, inbound 60-40 = 20 µs, round trip 60.
    r.deliver(0, microseconds{60}, microseconds{40});
    r.deliver(1, microseconds{100}, microseconds{60});
    r.deliver(3, microseconds{70}, microseconds{60});
    const auto& s = r.snd.stats();
    REQUIRE(s.ipdv.roundtrip.count() == 1);
    CHECK(s.ipdv.roundtrip.min() == 60'000);
    CHECK(s.ipdv.outbound.min() == 40'000);
    CHECK(s.ipdv.inbound.min() == 20'000);
}

TEST_CASE("sender: reordered replies carry their RFC 4737 extent")
{
    rig r;
    r.send(5);
    for (std::uint32_t q : {0u, 1u, 3u, 4u})
        CHECK(r.deliver(q, microseconds{50}, microseconds{50}).reorder_extent == 0);
    const auto late2 = r.deliver(2, microseconds{50}, microseconds{50});
    CHECK(late2.status == reply_status::sample);
    CHECK(late2.reorder_extent == 2); // position 5, earliest larger (3) at position 3
    CHECK(r.snd.stats().reordered == 1);
    CHECK(r.snd.stats().max_reorder_extent == 2);
    // IPDV pairs formed across the reordering: (0,1), (1,2), (2,3), (3,4).
    CHECK(r.snd.stats().ipdv.roundtrip.count() == 4);
}

TEST_CASE("sender: expire declares unanswered probes lost once their timeout has passed")
{
    rig r(milliseconds{100});
    r.send(5); // t1 = t0 + 0, 10, 20, 30, 40 ms
    r.deliver(0, microseconds{50}, microseconds{50});
    r.deliver(2, microseconds{50}, microseconds{50});
    std::vector<std::uint32_t> lost;
    auto on_lost = [&](std::uint32_t seq, nanoseconds t1) {
        CHECK(t1 == r.t1s[seq]);
        lost.push_back(seq);
    };
    r.snd.expire(r.t0 + milliseconds{105}, on_lost); // 1's timeout ended at 110 ms: not yet
    CHECK(lost.empty());
    r.snd.expire(r.t0 + milliseconds{125}, on_lost);
    CHECK(lost == std::vector<std::uint32_t>{1});
    r.snd.expire(nanoseconds::max(), on_lost); // the end: everything still pending
    CHECK(lost == std::vector<std::uint32_t>{1, 3, 4});
    r.snd.expire(nanoseconds::max(), on_lost); // once only
    CHECK(lost.size() == 3);
}

TEST_CASE("sender: a late reply still reports its timestamps (not a delay sample)")
{
    rig r(milliseconds{1});
    r.send(1);
    const auto res = r.deliver(0, microseconds{800}, microseconds{900});
    CHECK(res.status == reply_status::late);
    CHECK(res.sample.t1 == r.t1s[0]);
    CHECK(res.sample.roundtrip_ns == 1'700'000);
    CHECK(r.snd.stats().roundtrip.count() == 0);
    CHECK(r.snd.stats().late == 1);
}
