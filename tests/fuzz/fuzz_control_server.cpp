// Fuzz target: the TWAMP-Control Server state machine (control_server.hpp) fed an arbitrary
// client byte stream in arbitrary chunks, with a fake clock, SERVWAIT timers, output draining,
// REFWAIT expiry and EOF in between.
//
// Input: 6 config octets from the front, then the client's byte stream; the operations tape is
// read from the back of the input, two octets per operation (kind, argument):
//   0 receive argument+1 octets   1 advance the clock   2 on_timer   3 consume argument*4 octets
//   4 refwait_expired             5 on_eof (argument >= 240 only)
// When the tape runs out, the rest of the stream is delivered in one piece.
// Invariants: nothing happens after the connection_closed event, which comes exactly once and
// only when closed(); the output is the greeting (strict decode, Modes as offered), then
// Server-Start, then whole 16-octet blocks; every accepted session has a port and a fresh SID;
// session_count() stays within max_sessions; the SERVWAIT deadline is honoured.
#include "fuzz_common.hpp"

#include "twamp/control_server.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <variant>
#include <vector>

namespace {

using namespace twamp;
using namespace twamp::control;
using twamp_fuzz::fuzz_input;

template <class... F> struct overloaded : F... {
    using F::operator()...;
};
template <class... F> overloaded(F...) -> overloaded<F...>;

struct harness {
    control_server<open_security>& s;
    const server_config& cfg;
    std::vector<std::uint8_t> transcript; // every output octet, in order
    std::set<session_id> sids;
    bool closed_seen = false;
    std::size_t consumed = 0;

    void drain_events()
    {
        while (auto e = s.next_event()) {
            FUZZ_CHECK(!closed_seen);
            std::visit(overloaded{
                           [&](const server_events::mode_agreed& m) {
                               FUZZ_CHECK(m.mode == s.agreed_mode());
                               FUZZ_CHECK(mode::security_bit_count(m.mode) == 1);
                               FUZZ_CHECK((m.mode & ~s.offered_modes()) == 0);
                           },
                           [&](const server_events::session_accepted& a) {
                               FUZZ_CHECK(a.reflector_port != 0);
                               FUZZ_CHECK(a.dscp < 64);
                               FUZZ_CHECK(sids.insert(a.sid).second);
                               FUZZ_CHECK(!is_zero(a.request.sender_address) &&
                                          !is_zero(a.request.receiver_address));
                               FUZZ_CHECK(is_zero(a.request.sid));
                           },
                           [&](const server_events::session_rejected& r) {
                               FUZZ_CHECK(r.accept != accept_code::ok);
                           },
                           [&](const server_events::sessions_started& st) {
                               FUZZ_CHECK(!st.sids.empty());
                               for (const auto& sid : st.sids)
                                   FUZZ_CHECK(sids.count(sid) == 1);
                           },
                           [&](const server_events::sessions_stopped& st) {
                               for (const auto& sid : st.sids)
                                   FUZZ_CHECK(sids.count(sid) == 1);
                           },
                           [&](const connection_closed&) { closed_seen = true; },
                       },
                       *e);
        }
        FUZZ_CHECK(closed_seen == s.closed());
        FUZZ_CHECK(s.session_count() <= cfg.max_sessions);
        if (s.closed()) FUZZ_CHECK(!s.deadline());
    }

    void consume(std::size_t n)
    {
        const auto out = s.pending_output();
        n = std::min(n, out.size());
        transcript.insert(transcript.end(), out.begin(),
                          out.begin() + static_cast<std::ptrdiff_t>(n));
        s.consume_output(n);
        consumed += n;
    }

    void check_transcript()
    {
        consume(s.pending_output().size());
        FUZZ_CHECK(transcript.size() >= kServerGreetingSize);
        server_greeting g;
        FUZZ_CHECK(
            !decode(std::span(transcript).first(kServerGreetingSize), g, strictness::strict));
        FUZZ_CHECK(g.modes == s.offered_modes());
        FUZZ_CHECK(g.count == cfg.count);
        if (transcript.size() == kServerGreetingSize) return;
        FUZZ_CHECK(transcript.size() >= kServerGreetingSize + kServerStartSize);
        server_start ss;
        FUZZ_CHECK(!decode(std::span(transcript).subspan(kServerGreetingSize, kServerStartSize), ss,
                           strictness::strict));
        FUZZ_CHECK((ss.accept == accept_code::ok) == (s.agreed_mode() != 0));
        FUZZ_CHECK(transcript.size() % kBlockSize == 0);
        if (ss.accept != accept_code::ok)
            FUZZ_CHECK(transcript.size() == kServerGreetingSize + kServerStartSize);
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    fuzz_input in(data, size);
    server_config cfg;
    const std::uint8_t c0 = in.u8();
    // Mostly unauthenticated plus some features; sometimes only protected modes (refusal).
    cfg.modes = (c0 & 0x80)
                    ? mode::encrypted
                    : mode::unauthenticated | (static_cast<std::uint32_t>(c0) << 4 &
                                               (mode::individual_session_control |
                                                mode::reflect_octets | mode::symmetrical_size));
    cfg.max_sessions = 1 + (in.u8() & 7);
    cfg.servwait = std::chrono::milliseconds(in.u8() * 100); // 0 disables
    const std::uint8_t c3 = in.u8();
    cfg.accept_low_dscp = (c3 & 1) != 0;
    cfg.server_octets = (c3 & 2) ? 0x1234 : 0;
    const bool refuse = (c3 & 4) != 0 && (c3 & 8) != 0;
    const std::uint8_t port_policy = c3 >> 4 & 3; // 0 default, 1 fixed, 2 none, 3 alternate
    const std::uint8_t c4 = in.u8();
    const bool stuck_random = (c4 & 1) != 0; // a generator that repeats: SID collisions
    connection_addresses conn;
    conn.ipvn = (c4 & 2) ? 6 : 4;
    conn.client = make_address_v4(192, 0, 2, 1);
    conn.server = make_address_v4(192, 0, 2, 2);
    if (conn.ipvn == 6) {
        conn.client[15] = 9;
        conn.server[15] = 10;
    }
    cfg.count = 1024u << (in.u8() & 3);
    twamp_fuzz::counter_random rnd;
    if (stuck_random)
        cfg.random = [](std::span<std::uint8_t> out) { std::fill(out.begin(), out.end(), 7); };
    else
        cfg.random = rnd;
    std::uint16_t next_port = 20000;
    switch (port_policy) {
    case 1:
        cfg.allocate_port = [](std::uint16_t) { return std::optional<std::uint16_t>(5000); };
        break;
    case 2:
        cfg.allocate_port = [](std::uint16_t) { return std::optional<std::uint16_t>{}; };
        break;
    case 3:
        cfg.allocate_port = [&next_port](std::uint16_t req) -> std::optional<std::uint16_t> {
            if (req % 3 == 0) return std::nullopt;
            return req % 3 == 1 ? req : next_port++;
        };
        break;
    default:
        break;
    }
    if (refuse) cfg.admit = [](const connection_addresses&) { return false; };

    std::int64_t now = twamp_fuzz::kEpochNs;
    control_server<open_security> s(cfg, conn, nanoseconds{now});
    harness h{s, cfg, {}, {}, false, 0};
    h.drain_events();
    FUZZ_CHECK(s.pending_output().size() == kServerGreetingSize);
    FUZZ_CHECK(s.closed() == (s.offered_modes() == 0));

    int ops = 0;
    while (in.remaining() >= 2 && ++ops < 2048) {
        const std::uint8_t kind = in.back_u8() % 6;
        const std::uint8_t arg = in.back_u8();
        switch (kind) {
        case 0: {
            const auto chunk = in.bytes(std::size_t{arg} + 1);
            s.receive(chunk, nanoseconds{now});
            break;
        }
        case 1:
            now += twamp_fuzz::time_step_ns(arg);
            break;
        case 2: {
            const auto d = s.deadline();
            s.on_timer(nanoseconds{now});
            if (d && now >= d->count()) FUZZ_CHECK(s.closed());
            if (!d) FUZZ_CHECK(s.closed() == h.closed_seen);
            break;
        }
        case 3:
            h.consume(std::size_t{arg} * 4);
            break;
        case 4:
            s.refwait_expired(nanoseconds{now});
            break;
        case 5:
            if (arg >= 240) {
                s.on_eof(nanoseconds{now});
                FUZZ_CHECK(s.closed());
            }
            break;
        }
        h.drain_events();
    }
    s.receive(in.rest(), nanoseconds{now});
    h.drain_events();
    h.check_transcript();
    // Closing is final: more input changes nothing.
    if (s.closed()) {
        const std::uint8_t junk[16] = {5, 4, 0, 0};
        s.receive(junk, nanoseconds{now});
        s.on_timer(nanoseconds{now} + std::chrono::hours(1));
        FUZZ_CHECK(!s.next_event() && s.pending_output().empty());
    }
    return 0;
}
