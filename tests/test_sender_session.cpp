#include "twamp/sender_session.hpp"

#include "twamp/reflector_session.hpp"

#include <doctest/doctest.h>

#include "twamp/intervals.hpp"

#include <algorithm>
#include <map>
#include <ostream>
#include <random>
#include <vector>

using namespace twamp;
using std::chrono::microseconds;
using std::chrono::milliseconds;

namespace {

// A scripted reflector: reflects with the real reflector core, so the sender's view of the reply
// is exactly what it would get on the wire, with chosen T2/T3.
struct scripted {
    session_reflector refl;
    session_sender snd;
    nanoseconds t0{1'700'000'000'000'000'000};
    std::vector<std::vector<std::uint8_t>> probes; // by sequence number
    std::vector<nanoseconds> t1s;

    explicit scripted(sender_config sc, reflector_config rc = {}) : refl(rc), snd(sc) {}

    void send(std::size_t n, milliseconds interval = milliseconds{10}, std::size_t len = 41)
    {
        for (std::size_t i = 0; i < n; ++i) {
            const nanoseconds t1 = t0 + interval * static_cast<int>(t1s.size());
            std::vector<std::uint8_t> b(len);
            REQUIRE(snd.make_probe(t1, len, b) == len);
            probes.push_back(b);
            t1s.push_back(t1);
        }
    }
    // The reflector receives probe `seq` after `out` and answers `residence` later; the reply
    // reaches the sender `back` later. Returns what the sender made of it.
    reply_result deliver(std::uint32_t seq, nanoseconds out, nanoseconds residence,
                         nanoseconds back, std::uint8_t ttl_at_reflector = 250,
                         std::uint8_t ttl_at_sender = 251)
    {
        std::vector<std::uint8_t> reply(100);
        const nanoseconds t2 = t1s[seq] + out;
        const auto n = refl.reflect(probes[seq], peer_key{}, t2, ttl_at_reflector, reply);
        REQUIRE(n > 0);
        stamp_reflector_timestamp(reply, to_ntp(t2 + residence).to_u64());
        return snd.on_reply(std::span(reply).first(n), t2 + residence + back, ttl_at_sender);
    }
    // Makes the reflector see a probe without the reply coming back (inbound loss).
    void lose_inbound(std::uint32_t seq)
    {
        std::vector<std::uint8_t> reply(100);
        refl.reflect(probes[seq], peer_key{}, t1s[seq], 255, reply);
    }
};

sender_config cfg(milliseconds timeout = milliseconds{1000})
{
    sender_config c;
    c.timeout = timeout;
    c.window = 1024;
    return c;
}

} // namespace

TEST_CASE("a clean exchange: delays per direction, hops, no loss")
{
    scripted s(cfg());
    s.send(5);
    for (std::uint32_t i = 0; i < 5; ++i) {
        auto r = s.deliver(i, microseconds{100 + i}, microseconds{7}, microseconds{50});
        REQUIRE(r.status == reply_status::sample);
        CHECK(r.sample.outbound_ns == 100'000 + 1000 * i);
        CHECK(r.sample.inbound_ns == 50'000);
        CHECK(r.sample.roundtrip_ns == 150'000 + 1000 * i); // residence time excluded
        CHECK(r.sample.sender_seq == i);
        CHECK(r.sample.reflector_seq == i);
    }
    const auto& st = s.snd.stats();
    CHECK(st.sent == 5);
    CHECK(st.received == 5);
    CHECK(st.lost() == 0);
    CHECK(st.outbound.min() == 100'000);
    CHECK(st.outbound.max() == 104'000);
    CHECK(st.outbound.mean() == doctest::Approx(102'000));
    CHECK(st.forward_hops.min == 5);  // 255 - 250
    CHECK(st.backward_hops.max == 4); // 255 - 251
    CHECK(s.snd.all_answered());
}

TEST_CASE("loss split with a stateful reflector: outbound gaps and inbound gaps")
{
    scripted s(cfg());
    s.send(10);
    // Probe 2 and 7 never reach the reflector; the replies to 4 and 5 are lost on the way back.
    for (std::uint32_t i = 0; i < 10; ++i) {
        if (i == 2 || i == 7) continue;
        if (i == 4 || i == 5) {
            s.lose_inbound(i);
            continue;
        }
        REQUIRE(s.deliver(i, microseconds{10}, microseconds{1}, microseconds{10}).status ==
                reply_status::sample);
    }
    const auto& st = s.snd.stats();
    CHECK(st.sent == 10);
    CHECK(st.received == 6);
    CHECK(st.lost() == 4);
    CHECK(st.inbound_lost() == 2);
    CHECK(st.outbound_lost() == 2);
    CHECK(st.loss_pct() == doctest::Approx(40.0));
    CHECK(st.outbound_loss_pct() == doctest::Approx(20.0));
    CHECK_FALSE(s.snd.all_answered());
}

TEST_CASE("with a stateless reflector every loss shows as inbound (it cannot be split)")
{
    reflector_config rc;
    rc.stateless = true;
    scripted s(cfg(), rc);
    s.send(6);
    for (std::uint32_t i : {0u, 1u, 3u, 5u})
        s.deliver(i, microseconds{10}, microseconds{1}, microseconds{10});
    const auto& st = s.snd.stats();
    CHECK(st.lost() == 2);
    // The echoed numbers 0,1,3,5 look like a stateful reflector that lost replies 2 and 4.
    CHECK(st.inbound_lost() == 2);
    CHECK(st.outbound_lost() == 0);
}

TEST_CASE("late, duplicate, reordered and unknown replies are counted, never fatal")
{
    scripted s(cfg(milliseconds{100}));
    s.send(6);
    CHECK(s.deliver(0, microseconds{10}, microseconds{1}, microseconds{10}).status ==
          reply_status::sample);
    CHECK(s.deliver(2, microseconds{10}, microseconds{1}, microseconds{10}).status ==
          reply_status::sample);
    CHECK(s.deliver(1, microseconds{10}, microseconds{1}, microseconds{10}).status ==
          reply_status::sample); // reordered
    CHECK(s.deliver(1, microseconds{10}, microseconds{1}, microseconds{10}).status ==
          reply_status::duplicate);
    // Probe 3's reply after 150 ms: beyond the 100 ms timeout.
    CHECK(s.deliver(3, milliseconds{100}, microseconds{1}, milliseconds{50}).status ==
          reply_status::late);
    CHECK(s.deliver(3, milliseconds{100}, microseconds{1}, milliseconds{50}).status ==
          reply_status::duplicate);
    CHECK(s.deliver(4, microseconds{10}, microseconds{1}, microseconds{10}).status ==
          reply_status::sample);
    const auto& st = s.snd.stats();
    CHECK(st.received == 4);
    CHECK(st.late == 1);
    CHECK(st.duplicates == 2);
    CHECK(st.reordered == 1);
    CHECK(st.roundtrip.count() == 4); // a late reply is not a delay sample
    CHECK(st.lost() == 2);            // 3 (late) and 5 (no reply)
    CHECK(st.missing() == 1);
    // Late is a round-trip loss only; probe 5 is after the last answered one, so its direction
    // is unknown.
    CHECK(st.outbound_lost() + st.inbound_lost() == 0);
    CHECK(st.unknown_direction_lost() == 1);

    // A reply echoing a sequence number never sent.
    std::vector<std::uint8_t> reply(41);
    reflector_packet bogus;
    bogus.sender_seq = 1000;
    REQUIRE_FALSE(encode_reflector_base(bogus, test_format::twamp, reply));
    CHECK(s.snd.on_reply(reply, s.t0, 255).status == reply_status::unknown_sequence);
    // Too short to be a reply at all.
    CHECK(s.snd.on_reply(std::span(reply).first(20), s.t0, 255).status == reply_status::malformed);
    CHECK(s.snd.stats().unknown_sequence == 1);
    CHECK(s.snd.stats().malformed == 1);
}

TEST_CASE("replies older than the tracking window count as late")
{
    sender_config c = cfg(milliseconds{10});
    c.window = 16;
    scripted s(c);
    s.send(100, milliseconds{1});
    CHECK(s.deliver(3, microseconds{10}, microseconds{1}, milliseconds{200}).status ==
          reply_status::late);
    CHECK(s.snd.stats().late == 1);
}

TEST_CASE("negative one-way delays are kept and counted, the round trip stays right")
{
    scripted s(cfg());
    s.send(2);
    // The reflector's clock is 5 ms behind: outbound -4.9 ms, inbound +5.1 ms.
    for (std::uint32_t i = 0; i < 2; ++i) {
        std::vector<std::uint8_t> reply(100);
        const nanoseconds t2 = s.t1s[i] + microseconds{100} - milliseconds{5};
        const auto n = s.refl.reflect(s.probes[i], peer_key{}, t2, 255, reply);
        stamp_reflector_timestamp(reply, to_ntp(t2 + microseconds{3}).to_u64());
        auto r = s.snd.on_reply(std::span(reply).first(n), s.t1s[i] + microseconds{203}, 255);
        CHECK(r.sample.outbound_ns == -4'900'000);
        CHECK(r.sample.inbound_ns == 5'100'000);
        CHECK(r.sample.roundtrip_ns == 200'000);
    }
    CHECK(s.snd.stats().outbound.negative() == 2);
    CHECK(s.snd.stats().outbound.min() == -4'900'000);
    CHECK(s.snd.stats().inbound.negative() == 0);
}

TEST_CASE("twampy's 38-octet replies are measured and counted as short")
{
    scripted s(cfg());
    s.send(1);
    std::vector<std::uint8_t> reply(100);
    const auto n = s.refl.reflect(s.probes[0], peer_key{}, s.t1s[0] + microseconds{10}, 255, reply);
    REQUIRE(n == 41);
    auto r = s.snd.on_reply(std::span(reply).first(38), s.t1s[0] + microseconds{30}, 255);
    CHECK(r.status == reply_status::sample);
    CHECK(r.sample.truncated);
    CHECK(r.sample.sender_ttl == 0);
    CHECK(s.snd.stats().short_replies == 1);
    CHECK(s.snd.stats().forward_hops.count == 0); // unknown, not 255 hops
}

TEST_CASE("STAMP: SSID carried and checked; SSID 0 from old reflectors accepted")
{
    sender_config c = cfg();
    c.format = test_format::stamp;
    c.ssid = 7;
    scripted s(c);
    s.send(3, milliseconds{10}, 44);
    CHECK(wire::load16(s.probes[0].data() + 14) == 7);
    CHECK(s.deliver(0, microseconds{10}, microseconds{1}, microseconds{10}).status ==
          reply_status::sample);
    // A reply with another session's SSID is dropped.
    std::vector<std::uint8_t> reply(100);
    auto n = s.refl.reflect(s.probes[1], peer_key{}, s.t1s[1], 255, reply);
    wire::store16(reply.data() + 14, 8);
    CHECK(s.snd.on_reply(std::span(reply).first(n), s.t1s[1] + microseconds{5}, 255).status ==
          reply_status::ssid_mismatch);
    wire::store16(reply.data() + 14, 0);
    CHECK(s.snd.on_reply(std::span(reply).first(n), s.t1s[1] + microseconds{5}, 255).status ==
          reply_status::sample);
    // Padding beyond the base travels as an Extra Padding TLV.
    std::vector<std::uint8_t> big(60);
    REQUIRE(s.snd.make_probe(s.t0, 60, big) == 60);
    CHECK(big[45] == stamp_tlv::kTypeExtraPadding);
    CHECK(wire::load16(big.data() + 46) == 12);
}

TEST_CASE("a probe the socket refused is not counted as sent")
{
    session_sender snd(cfg());
    std::vector<std::uint8_t> b(41);
    REQUIRE(snd.make_probe(nanoseconds{0}, 41, b) == 41);
    snd.unsend_last();
    CHECK(snd.stats().sent == 0);
    CHECK(snd.stats().send_errors == 1);
    CHECK(snd.make_probe(nanoseconds{0}, 13, b) == 0); // below the base
    CHECK(snd.stats().sent == 0);
}

TEST_CASE("a probe duplicated on the way out is not an inbound loss")
{
    scripted s(cfg());
    s.send(3);
    CHECK(s.deliver(0, microseconds{10}, microseconds{1}, microseconds{10}).status ==
          reply_status::sample);
    // The reflector sees probe 0 again and numbers the copy 1.
    CHECK(s.deliver(0, microseconds{12}, microseconds{1}, microseconds{10}).status ==
          reply_status::duplicate);
    s.lose_inbound(1); // reflector number 2, its reply lost
    CHECK(s.deliver(2, microseconds{10}, microseconds{1}, microseconds{10}).status ==
          reply_status::sample);
    const auto& st = s.snd.stats();
    CHECK(st.duplicates == 1);
    CHECK(st.outbound_duplicates == 1);
    CHECK(st.lost() == 1);
    CHECK(st.inbound_lost() == 1); // only the reply to probe 1
    CHECK(st.outbound_lost() == 0);
}

TEST_CASE("loss split at the edges: exact where the reflector counts from 0, unknown after the "
          "last reply")
{
    for (bool from_zero : {false, true}) {
        sender_config c = cfg();
        c.reflector_counts_from_zero = from_zero;
        scripted s(c);
        s.send(12);
        // Reply to 0 lost on the way back, probe 1 never reaches the reflector; 2..8 fine except
        // 5 (outbound) and 6 (inbound); 9 answered; 10 inbound, 11 outbound (after the last).
        for (std::uint32_t i = 0; i < 12; ++i) {
            if (i == 1 || i == 5 || i == 11) continue;
            if (i == 0 || i == 6 || i == 10) {
                s.lose_inbound(i);
                continue;
            }
            REQUIRE(s.deliver(i, microseconds{10}, microseconds{1}, microseconds{10}).status ==
                    reply_status::sample);
        }
        const auto& st = s.snd.stats();
        INFO("reflector counts from zero: " << from_zero);
        CHECK(st.missing() == 6);
        CHECK(st.trailing_missing() == 2);
        CHECK(st.leading_missing() == 2);
        if (from_zero) {
            // Reflector number 2 on probe 2's reply: it answered two earlier probes, one of them
            // (probe 0) lost inbound, so probe 1 is the outbound one.
            CHECK(st.inbound_lost() == 2);  // 0 and 6
            CHECK(st.outbound_lost() == 2); // 1 and 5
            CHECK(st.unknown_direction_lost() == 2);
        } else {
            CHECK(st.inbound_lost() == 1);  // 6
            CHECK(st.outbound_lost() == 1); // 5
            CHECK(st.unknown_direction_lost() == 4);
        }
        CHECK(st.inbound_lost() + st.outbound_lost() + st.unknown_direction_lost() == st.missing());
    }
    // Nothing came back: no direction can be told.
    scripted none(cfg());
    none.send(5);
    CHECK(none.snd.stats().unknown_direction_lost() == 5);
    CHECK(none.snd.stats().inbound_lost() + none.snd.stats().outbound_lost() == 0);
}

TEST_CASE("a failed send keeps the edges exact: ordinals skip it")
{
    sender_config c = cfg();
    c.reflector_counts_from_zero = true;
    session_sender snd(c);
    session_reflector refl(reflector_config{});
    std::vector<std::vector<std::uint8_t>> probes;
    const nanoseconds t0{1'700'000'000'000'000'000};
    for (int i = 0; i < 6; ++i) {
        std::vector<std::uint8_t> b(41);
        REQUIRE(snd.make_probe(t0 + milliseconds{i}, 41, b) == 41);
        if (i == 2) {
            snd.unsend_last(); // never left: not a loss of either direction
            continue;
        }
        probes.push_back(b);
    }
    REQUIRE(probes.size() == 5);
    std::vector<std::uint8_t> reply(100);
    for (std::size_t k = 0; k < probes.size(); ++k) {
        const auto n = refl.reflect(probes[k], peer_key{}, t0 + milliseconds{10}, 255, reply);
        REQUIRE(n > 0);
        if (k == 4) continue; // the reply to the last sent probe is lost: unknown direction
        CHECK(snd.on_reply(std::span(reply).first(n), t0 + milliseconds{20}, 255).status ==
              reply_status::sample);
    }
    const auto& st = snd.stats();
    CHECK(st.sent == 5);
    CHECK(st.missing() == 1);
    CHECK(st.trailing_missing() == 1);
    CHECK(st.unknown_direction_lost() == 1);
    CHECK(st.inbound_lost() + st.outbound_lost() == 0);
}

// One probe, one fate. Replies arrive at random times around the loss deadline and are handed
// over in random order, interleaved with expiry at random moments; whatever the order, every
// probe ends as exactly one of ok / lost / lost-then-late / late, never lost-then-ok, and the
// counters, a per-packet record and the interval bins agree.
TEST_CASE("property: loss expiry and replies around the deadline never disagree")
{
    std::mt19937_64 rng(20261201);
    for (int round = 0; round < 200; ++round) {
        const milliseconds timeout{50};
        scripted s(cfg(timeout));
        const int n = 40;
        s.send(n, milliseconds{2});
        interval_recorder bins(milliseconds{20}, timeout, {50});
        auto sink = [](const interval_summary&) {};
        for (int i = 0; i < n; ++i)
            bins.on_sent(static_cast<std::uint32_t>(i), s.t1s[static_cast<std::size_t>(i)], sink);

        // Each probe's reply arrives with a round trip of timeout ± 2 ms (or never), and is
        // handed to the sender up to 3 ms after it arrived.
        struct event {
            nanoseconds at;
            int seq; // -1: an expiry pass at `at`
            nanoseconds back;
        };
        std::vector<event> ev;
        std::uniform_int_distribution<int> jitter(-2000, 2000), lag(0, 3000);
        for (int i = 0; i < n; ++i) {
            if (rng() % 8 == 0) continue; // lost
            const nanoseconds rtt = timeout + microseconds{jitter(rng)};
            const nanoseconds arrival = s.t1s[static_cast<std::size_t>(i)] + rtt;
            ev.push_back({arrival + microseconds{lag(rng)}, i, rtt - microseconds{20}});
        }
        for (int k = 0; k < 60; ++k)
            ev.push_back({s.t0 + microseconds{static_cast<int>(rng() % 140'000)}, -1, {}});
        std::sort(ev.begin(), ev.end(), [](const event& a, const event& b) { return a.at < b.at; });

        std::map<std::uint32_t, std::vector<std::string>> fate;
        std::uint64_t ok = 0, late = 0;
        for (const auto& e : ev) {
            if (e.seq < 0) {
                s.snd.expire(e.at,
                             [&](std::uint32_t q, nanoseconds) { fate[q].push_back("lost"); });
                continue;
            }
            // T2 = T1 + 10 µs, T3 = T2 + 10 µs, T4 = T1 + rtt.
            const auto r = s.deliver(static_cast<std::uint32_t>(e.seq), microseconds{10},
                                     microseconds{10}, e.back);
            bins.on_reply(r);
            if (r.status == reply_status::sample) {
                ++ok;
                fate[r.sample.sender_seq].push_back("ok");
            } else if (r.status == reply_status::late) {
                ++late;
                fate[r.sample.sender_seq].push_back("late");
            } else {
                FAIL("unexpected status " << int(r.status));
            }
        }
        s.snd.expire(nanoseconds::max(),
                     [&](std::uint32_t q, nanoseconds) { fate[q].push_back("lost"); });
        bins.finish(sink);

        std::uint64_t lost_rows = 0;
        for (int i = 0; i < n; ++i) {
            const auto& f = fate[static_cast<std::uint32_t>(i)];
            INFO("round " << round << " probe " << i);
            REQUIRE_FALSE(f.empty());
            const bool valid =
                (f.size() == 1 && (f[0] == "ok" || f[0] == "lost" || f[0] == "late")) ||
                (f.size() == 2 && f[0] == "lost" && f[1] == "late");
            CHECK(valid);
            if (f[0] == "lost") ++lost_rows;
        }
        const auto& st = s.snd.stats();
        CHECK(st.received == ok);
        CHECK(st.late == late);
        CHECK(st.lost() == st.sent - ok);
        CHECK(st.lost() == lost_rows + std::count_if(fate.begin(), fate.end(), [](auto& kv) {
                               return kv.second.size() == 1 && kv.second[0] == "late";
                           }));
        std::uint64_t bin_sent = 0, bin_received = 0, bin_late = 0;
        for (const auto& b : bins.closed()) {
            bin_sent += b.sent;
            bin_received += b.received;
            bin_late += b.late;
        }
        CHECK(bin_sent == st.sent);
        CHECK(bin_received == st.received);
        CHECK(bin_late == st.late);
    }
}

// The loss timeout runs on the monotonic reading of the times (twamp/clock.hpp): a wall-clock
// step between a probe and its reply neither makes the reply late nor declares the probe lost,
// and the delays still come from the wall readings.
TEST_CASE("loss timeout on the monotonic clock: wall-clock steps neither lose nor save a probe")
{
    session_sender s(cfg(milliseconds{1000}));
    session_reflector r;
    const nanoseconds wall0{1'700'000'000'000'000'000}, mono0{5'000'000'000};
    const nanoseconds hour = std::chrono::hours{1};
    std::vector<std::uint8_t> probe(41), reply(100);
    auto answer = [&](nanoseconds t2_wall) {
        const auto n = r.reflect(probe, peer_key{}, t2_wall, 255, reply);
        REQUIRE(n > 0);
        stamp_reflector_timestamp(reply, to_ntp(t2_wall).to_u64());
        return std::span(reply).first(n);
    };
    // Probe 0 at (wall0, mono0); the wall clock is then stepped back an hour. The reply comes
    // 100 ms later on the monotonic clock: in time, although its wall T4 is before T1.
    REQUIRE(s.make_probe(instant{wall0, mono0}, 41, probe) == 41);
    auto res = s.on_reply(answer(wall0 + milliseconds{50}),
                          instant{wall0 - hour + milliseconds{100}, mono0 + milliseconds{100}}, 64);
    CHECK(res.status == reply_status::sample);
    CHECK(res.sample.t1 == wall0);
    // Probe 1: the wall clock steps forward an hour; 200 ms of monotonic time later the reply is
    // still in time (a wall-clock check would call it an hour late).
    REQUIRE(s.make_probe(instant{wall0 + milliseconds{10}, mono0 + milliseconds{200}}, 41, probe) ==
            41);
    res = s.on_reply(answer(wall0 + milliseconds{60}),
                     instant{wall0 + hour, mono0 + milliseconds{400}}, 64);
    CHECK(res.status == reply_status::sample);
    // Probe 2 goes unanswered: expire() on the monotonic clock declares it lost only after its
    // timeout, whatever the wall clock did.
    REQUIRE(s.make_probe(instant{wall0 + hour, mono0 + milliseconds{500}}, 41, probe) == 41);
    std::vector<std::uint32_t> lost;
    auto note = [&](std::uint32_t seq, nanoseconds) { lost.push_back(seq); };
    s.expire(mono0 + milliseconds{1400}, note);
    CHECK(lost.empty());
    s.expire(mono0 + milliseconds{1501}, note);
    CHECK(lost == std::vector<std::uint32_t>{2});
    CHECK(s.stats().received == 2);
    CHECK(s.stats().late == 0);
}
