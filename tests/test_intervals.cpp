#include "twamp/intervals.hpp"

#include <doctest/doctest.h>

#include <ostream>
#include <vector>

using namespace twamp;
using namespace std::chrono_literals;

namespace {
reply_result sample(std::uint32_t seq, std::int64_t rtt)
{
    reply_result r;
    r.status = reply_status::sample;
    r.sample.sender_seq = seq;
    r.sample.outbound_ns = rtt / 2;
    r.sample.inbound_ns = rtt - rtt / 2;
    r.sample.roundtrip_ns = rtt;
    return r;
}
constexpr std::int64_t kT0 = 1'700'000'000'000'000'000;
} // namespace

TEST_CASE("probes are binned by send time; loss is exact per interval")
{
    interval_recorder rec(1s, 500ms, {50, 99});
    std::vector<std::uint64_t> seen;
    auto sink = [&](const interval_summary& b) { seen.push_back(b.index); };
    // 4 probes per second for 3 s; in interval 1, probe 5 is lost; 10 is late.
    std::uint32_t seq = 0;
    for (int s = 0; s < 3; ++s)
        for (int k = 0; k < 4; ++k)
            rec.on_sent(seq++, nanoseconds{kT0 + s * 1'000'000'000LL + k * 250'000'000LL}, sink);
    for (std::uint32_t q = 0; q < 12; ++q) {
        if (q == 5) continue;
        if (q == 10) {
            reply_result r;
            r.status = reply_status::late;
            r.sample.sender_seq = q;
            rec.on_reply(r);
            continue;
        }
        rec.on_reply(sample(q, 1000 * (q + 1)));
    }
    CHECK(seen.empty()); // nothing closes before its time
    // At 1.0 s interval 0 is over and fully answered; interval 1 waits for probe 5.
    rec.poll(nanoseconds{kT0 + 2'000'000'000}, sink);
    CHECK(seen == std::vector<std::uint64_t>{0});
    rec.poll(nanoseconds{kT0 + 2'500'000'000}, sink); // end of interval 1 + timeout
    CHECK(seen == std::vector<std::uint64_t>{0, 1});
    rec.finish(sink);
    REQUIRE(rec.closed().size() == 3);
    const auto& b0 = rec.closed()[0];
    CHECK(b0.sent == 4);
    CHECK(b0.received == 4);
    CHECK(b0.lost() == 0);
    CHECK(b0.roundtrip.min == 1000);
    CHECK(b0.roundtrip.max == 4000);
    CHECK(b0.roundtrip.mean == doctest::Approx(2500));
    CHECK(b0.roundtrip.p50 == doctest::Approx(2000).epsilon(0.004)); // bucket midpoint
    CHECK(b0.start_ns == kT0);
    CHECK(b0.end_ns == kT0 + 1'000'000'000);
    REQUIRE(b0.roundtrip.percentiles.size() == 2);
    CHECK(b0.roundtrip.percentiles[1].first == 99);
    CHECK(b0.roundtrip.percentiles[1].second == 4000); // clamped to the max
    const auto& b1 = rec.closed()[1];
    CHECK(b1.sent == 4);
    CHECK(b1.received == 3);
    CHECK(b1.loss_pct() == doctest::Approx(25.0));
    const auto& b2 = rec.closed()[2];
    CHECK(b2.late == 1);
    CHECK(b2.received == 3);
    CHECK(b2.lost() == 1); // late counts as lost, as in the session totals
}

TEST_CASE("empty intervals between sparse probes are kept (Poisson gaps)")
{
    interval_recorder rec(100ms, 1s, {50});
    auto sink = [](const interval_summary&) {};
    rec.on_sent(0, nanoseconds{kT0}, sink);
    rec.on_sent(1, nanoseconds{kT0 + 350'000'000}, sink); // interval 3
    rec.on_reply(sample(0, 10));
    rec.on_reply(sample(1, 20));
    rec.finish(sink);
    REQUIRE(rec.closed().size() == 4);
    CHECK(rec.closed()[1].sent == 0);
    CHECK(rec.closed()[1].loss_pct() == 0.0);
    CHECK(rec.closed()[3].roundtrip.min == 20);
}

TEST_CASE("open intervals are bounded: the oldest closes early")
{
    interval_recorder rec(10ms, 10s, {50}, 4);
    std::vector<interval_summary> out;
    auto sink = [&](const interval_summary& b) { out.push_back(b); };
    for (std::uint32_t s = 0; s < 10; ++s)
        rec.on_sent(s, nanoseconds{kT0 + s * 10'000'000LL}, sink);
    CHECK(out.size() == 6); // 10 intervals, at most 4 open
    CHECK(out[0].closed_early);
    CHECK(out[0].lost() == 1);
    // A reply for a closed interval is ignored by the bins.
    rec.on_reply(sample(0, 5));
    rec.on_reply(sample(9, 5));
    rec.finish(sink);
    CHECK(out.back().received == 1);
    CHECK(out[0].received == 0);
}

TEST_CASE("a refused send leaves a gap in sequence numbers: the interval keeps all its replies")
{
    // 10 probes in interval 0 with sequence numbers 0..10, number 4 refused by the socket (it
    // was never sent); 3 probes in interval 1 (11..13). Every sent probe is answered.
    interval_recorder rec(1s, 500ms, {50});
    std::vector<interval_summary> out;
    auto sink = [&](const interval_summary& b) { out.push_back(b); };
    std::vector<std::uint32_t> sent;
    for (std::uint32_t q = 0; q <= 10; ++q) {
        if (q == 4) continue;
        rec.on_sent(q, nanoseconds{kT0 + q * 50'000'000LL}, sink);
        sent.push_back(q);
    }
    for (std::uint32_t q = 11; q <= 13; ++q) {
        rec.on_sent(q, nanoseconds{kT0 + 1'000'000'000LL + (q - 11) * 100'000'000LL}, sink);
        sent.push_back(q);
    }
    for (auto q : sent)
        rec.on_reply(sample(q, 1'000'000));
    rec.finish(sink);
    REQUIRE(out.size() == 2);
    CHECK(out[0].sent == 10);
    CHECK(out[0].received == 10); // 9 and 10 are not dropped
    CHECK(out[0].lost() == 0);
    CHECK(out[0].roundtrip.count == 10);
    CHECK(out[1].sent == 3);
    CHECK(out[1].received == 3);
}
