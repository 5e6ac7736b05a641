// The reflector's transport for the Reflected Test Packet Control TLV (STAMP TLV 12): replies
// 1..count-1 leave the port after reply 0, `interval` apart, with their own sequence numbers;
// the later-reply queue is bounded; off by policy, one reply.
#include "twamp/asio/reflector.hpp"

#include <doctest/doctest.h>

#include <asio.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

using namespace std::chrono_literals;
using namespace twamp;
using namespace twamp::net;

namespace {

struct rig {
    asio::io_context io;
    udp_reflector refl;
    asio::ip::udp::socket client{io};
    asio::ip::udp::endpoint to;

    explicit rig(bool enabled, std::uint16_t max_replies = 4)
        : refl(io, options(enabled, max_replies))
    {
        REQUIRE_FALSE(refl.open());
        refl.start();
        client.open(asio::ip::udp::v4());
        client.bind({asio::ip::make_address("127.0.0.1"), 0});
        client.non_blocking(true);
        to = refl.local_endpoint();
    }
    static reflector_options options(bool enabled, std::uint16_t max_replies)
    {
        reflector_options o;
        o.local = {asio::ip::make_address("127.0.0.1"), 0};
        o.core.format = reflector_format::stamp;
        o.core.tlv_policy.reflected_control.enabled = enabled;
        o.core.tlv_policy.reflected_control.max_replies = max_replies;
        o.core.tlv_policy.reflected_control.max_octets_per_second = 0; // per-request caps only
        return o;
    }

    void send(std::uint32_t seq, std::uint16_t length, std::uint16_t count, std::uint32_t interval)
    {
        std::array<std::uint8_t, 256> req{};
        sender_packet s;
        s.seq = seq;
        s.ssid = 9;
        stamp_tlv_request want;
        want.reflected_control = reflected_control_request{length, count, interval, false};
        const std::size_t tlv_len = stamp_tlv_request_size(want);
        REQUIRE_FALSE(encode_sender(s, test_format::stamp, kStampBaseLen + tlv_len, req));
        std::size_t written = 0;
        REQUIRE_FALSE(write_stamp_tlvs(want, seq, std::span(req).subspan(kStampBaseLen), written));
        client.send_to(asio::buffer(req.data(), kStampBaseLen + written), to);
    }

    struct reply {
        std::size_t len = 0;
        std::uint32_t seq = 0, sender_seq = 0;
        stamp_tlv_report tlvs;
    };
    // Runs the loop (reflector and its timers) until `n` replies came or 2 s passed.
    std::vector<reply> collect(std::size_t n)
    {
        std::vector<reply> out;
        std::array<std::uint8_t, 2048> buf{};
        const auto deadline = std::chrono::steady_clock::now() + 2s;
        while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
            io.run_for(1ms);
            std::error_code ec;
            for (;;) {
                const std::size_t k = client.receive(asio::buffer(buf), 0, ec);
                if (ec) break;
                reflector_packet p;
                REQUIRE_FALSE(decode_reflector(std::span(buf).first(k), test_format::stamp, p));
                out.push_back(
                    {k, p.seq, p.sender_seq,
                     read_stamp_tlvs(std::span(buf).subspan(kStampBaseLen, k - kStampBaseLen))});
            }
        }
        io.run_for(20ms); // anything beyond n would show up now
        std::error_code ec;
        while (true) {
            const std::size_t k = client.receive(asio::buffer(buf), 0, ec);
            if (ec) break;
            out.push_back({k, 0, 0, {}});
        }
        return out;
    }
};

} // namespace

TEST_CASE("Reflected Test Packet Control: count replies, each numbered, as long as asked")
{
    rig r(true);
    r.send(1, 200, 3, 0);
    const auto got = r.collect(3);
    REQUIRE(got.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) {
        CHECK(got[k].len == 200);
        CHECK(got[k].seq == k); // a stateful reflector counts every packet it sends
        CHECK(got[k].sender_seq == 1);
    }
    REQUIRE(got[0].tlvs.reflected_control);
    CHECK(got[0].tlvs.reflected_control->exact);
    CHECK(r.refl.io_counters().extra_replies_sent == 2);
    CHECK(r.refl.io_counters().extra_replies_dropped == 0);

    // The next request continues the count.
    r.send(2, 0, 1, 0);
    const auto next = r.collect(1);
    REQUIRE(next.size() == 1);
    CHECK(next[0].seq == 3);
}

TEST_CASE("Reflected Test Packet Control: replies interval apart come later, from the timer")
{
    rig r(true);
    r.send(5, 0, 4, 200'000'000); // 4 replies, 200 ms apart
    // Right after the first drain only reply 0 has left.
    const auto first = r.collect(1);
    REQUIRE(first.size() == 1);
    CHECK(first[0].seq == 0);
    CHECK(r.refl.io_counters().extra_replies_sent == 0);
    const auto rest = r.collect(3);
    REQUIRE(rest.size() == 3);
    for (std::size_t k = 0; k < 3; ++k)
        CHECK(rest[k].seq == k + 1);
    CHECK(r.refl.io_counters().extra_replies_sent == 3);
}

TEST_CASE("Reflected Test Packet Control: capped by policy (C), bounded queue, off by default")
{
    {
        rig r(true, 4);
        r.send(1, 0, 50, 0);
        const auto got = r.collect(4);
        CHECK(got.size() == 4); // max_replies 4, not 50
        REQUIRE(!got.empty());
        REQUIRE(got[0].tlvs.reflected_control);
        CHECK_FALSE(got[0].tlvs.reflected_control->exact);
    }
    {
        // 40 requests for 4 replies each, 1 s apart: 120 later replies for a queue of 64.
        rig r(true, 4);
        for (std::uint32_t i = 0; i < 40; ++i)
            r.send(i, 0, 4, 1'000'000'000);
        const auto got = r.collect(40);
        CHECK(got.size() == 40);
        CHECK(r.refl.io_counters().extra_replies_dropped == 120 - kLaterReplies);
    }
    {
        rig r(false);
        r.send(1, 0, 3, 0);
        const auto got = r.collect(3);
        CHECK(got.size() == 1);
        REQUIRE(!got.empty());
        CHECK(got[0].tlvs.unrecognised == 1); // U: not processed
    }
}
