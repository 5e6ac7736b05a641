// Tests for the control channel both TWAMP-Control state machines share
// (twamp/detail/control_channel.hpp): framing of protected blocks, sealing, the HMAC check,
// and that a failure anywhere (an unencodable message, a policy error) drops the message,
// closes the connection once and reports why.
#include <twamp/detail/control_channel.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <variant>
#include <vector>

using namespace twamp;
using namespace twamp::control;

namespace {

struct note {
    int n = 0;
};
using event = std::variant<note, connection_closed>;

// A policy that XORs every block with 0x5A, writes 0xEE into HMAC fields, and fails on demand.
struct xor_policy {
    static constexpr std::uint32_t security_modes = mode::unauthenticated | mode::authenticated;
    std::error_code fail_seal{};
    std::error_code fail_open{};
    int opened = 0;
    int verified = 0;
    void select_mode(std::uint32_t) {}
    std::error_code seal(std::span<std::uint8_t> blocks, bool ends_with_hmac)
    {
        if (fail_seal) return fail_seal;
        if (ends_with_hmac)
            for (auto& b : blocks.last(kBlockSize))
                b = 0xEE;
        for (auto& b : blocks)
            b ^= 0x5A;
        return {};
    }
    std::error_code open_block(std::span<std::uint8_t, kBlockSize> block)
    {
        if (fail_open) return fail_open;
        for (auto& b : block)
            b ^= 0x5A;
        ++opened;
        return {};
    }
    std::error_code verify(std::span<std::uint8_t, kBlockSize> hmac)
    {
        ++verified;
        for (auto& b : hmac)
            if ((b ^ 0x5A) != 0xEE) return errc::auth_failed;
        return {};
    }
};
static_assert(control_security_policy<xor_policy>);

using channel = control::detail::control_channel<xor_policy, event>;

const connection_closed& closed_event(channel& ch)
{
    std::optional<event> last;
    while (auto e = ch.next_event())
        last = std::move(e);
    REQUIRE(last);
    REQUIRE(std::holds_alternative<connection_closed>(*last));
    static connection_closed kept;
    kept = std::get<connection_closed>(*last);
    return kept;
}

} // namespace

TEST_CASE("control channel: a message that cannot be encoded is never sent and closes")
{
    channel ch(xor_policy{});
    accept_session ok;
    ok.accept = accept_code::ok;
    REQUIRE_FALSE(ch.queue(ok));
    const std::size_t good = ch.pending_output().size();
    CHECK(good == kAcceptSessionSize);

    accept_session bad;
    bad.accept = static_cast<accept_code>(9); // no such Accept value: the encoder refuses it
    CHECK(ch.queue(bad) == errc::bad_value);
    CHECK(ch.pending_output().size() == good); // nothing of the bad message is left
    CHECK(ch.closed());
    const auto& c = closed_event(ch);
    CHECK(c.ec == errc::bad_value);
    CHECK_FALSE(c.accept);

    // Sealed path: same error, and the policy never sees the half-written message.
    channel ch2(xor_policy{});
    CHECK(ch2.queue_sealed(bad) == errc::bad_value);
    CHECK(ch2.pending_output().empty());
    CHECK(closed_event(ch2).ec == errc::bad_value);
}

TEST_CASE("control channel: a sealing failure drops the whole message and closes once")
{
    xor_policy p;
    p.fail_seal = errc::auth_failed;
    channel ch(p);
    server_greeting g; // queued in the clear: not sealed
    REQUIRE_FALSE(ch.queue(g));
    CHECK(ch.queue_sealed(start_sessions{}) == errc::auth_failed);
    CHECK(ch.pending_output().size() == kServerGreetingSize);
    CHECK(ch.closed());
    ch.emit(note{1}); // after the close nothing else is reported
    ch.close(errc::timeout, std::nullopt, "second close");
    int closes = 0;
    while (auto e = ch.next_event()) {
        CHECK(std::holds_alternative<connection_closed>(*e));
        if (auto* c = std::get_if<connection_closed>(&*e)) {
            ++closes;
            CHECK(c->ec == errc::auth_failed);
        }
    }
    CHECK(closes == 1);
}

TEST_CASE("control channel: sealed output opens and verifies on the other side")
{
    channel tx(xor_policy{});
    start_n_sessions m;
    m.sids.resize(2);
    m.sids[1][0] = 0x42;
    REQUIRE_FALSE(tx.queue_sealed(m));
    std::vector<std::uint8_t> wire(tx.pending_output().begin(), tx.pending_output().end());
    tx.consume_output(wire.size());
    CHECK(tx.pending_output().empty());
    REQUIRE(wire.size() == encoded_size(m));
    CHECK(wire[0] == (static_cast<std::uint8_t>(command::start_n_sessions) ^ 0x5A));

    // Read it back one octet at a time: the first block tells the length.
    channel rx(xor_policy{});
    std::span<const std::uint8_t> in(wire);
    bool framed = false;
    while (!in.empty()) {
        in = in.subspan(rx.fill(in.first(1), rx.target()));
        REQUIRE(rx.open_blocks());
        if (!framed && rx.holds(kBlockSize)) {
            CHECK(rx.input()[0] == static_cast<std::uint8_t>(command::start_n_sessions));
            std::size_t size = 0;
            REQUIRE_FALSE(command_message_size(rx.input(), size));
            rx.expect(size);
            framed = true;
        }
    }
    REQUIRE(rx.holds(wire.size()));
    // Every block but the HMAC field was opened.
    CHECK(rx.security().opened == static_cast<int>(wire.size() / kBlockSize) - 1);
    REQUIRE(rx.verify_hmac());
    const auto msg = rx.take_input();
    CHECK(rx.input_empty());
    CHECK(rx.want() == 0);
    start_n_sessions back;
    REQUIRE_FALSE(decode(msg, back));
    CHECK(back.sids == m.sids);
    CHECK_FALSE(rx.closed());
}

TEST_CASE("control channel: a bad HMAC or a failing decryption closes with the policy's error")
{
    channel tx(xor_policy{});
    REQUIRE_FALSE(tx.queue_sealed(start_sessions{}));
    std::vector<std::uint8_t> wire(tx.pending_output().begin(), tx.pending_output().end());
    wire.back() ^= 1; // damage the HMAC field

    channel rx(xor_policy{});
    CHECK(rx.fill(wire, kStartSessionsSize) == wire.size());
    rx.expect(kStartSessionsSize);
    REQUIRE(rx.open_blocks());
    CHECK_FALSE(rx.verify_hmac());
    CHECK(rx.closed());
    CHECK(rx.input_empty());
    const auto& c = closed_event(rx);
    CHECK(c.ec == errc::auth_failed);
    CHECK(c.reason == "HMAC check failed");

    xor_policy broken;
    broken.fail_open = errc::bad_length;
    channel rx2(broken);
    rx2.fill(wire, kBlockSize);
    CHECK_FALSE(rx2.open_blocks());
    const auto& c2 = closed_event(rx2);
    CHECK(c2.ec == errc::bad_length);
    CHECK(c2.reason == "cannot decrypt an inbound block");
}
