// Fuzz target: the TWAMP-Control Client state machine (control_client.hpp) fed an arbitrary
// server byte stream in arbitrary chunks, with a fake clock, reply timeouts, output draining and
// every client command issued at arbitrary moments.
//
// Input: 4 config octets from the front, then the server's byte stream; the operations tape is
// read from the back, two octets per operation (kind, argument):
//   0 receive argument+1 octets   1 advance the clock      2 on_timer
//   3 request_session(argument)   4 start_sessions         5 stop_sessions(Accept argument % 7)
//   6 start_n / stop_n_sessions on the sessions argument's bits pick (bit 7: stop)
//   7 consume argument*4 octets, or on_eof when argument >= 250
// When the tape runs out, the rest of the stream is delivered in one piece.
// Invariants: nothing happens after the connection_closed event, which comes exactly once and
// only when closed(); every octet the client sends is a well-formed message: a Set-Up-Response,
// then commands that frame with command_message_size and decode strictly to the same octets;
// accepted sessions have a port; the reply deadline is honoured.
#include "fuzz_common.hpp"

#include "twamp/control_client.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
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

template <class M> void strict_roundtrip(std::span<const std::uint8_t> msg)
{
    M m;
    FUZZ_CHECK(!decode(msg, m, strictness::strict));
    std::vector<std::uint8_t> out(encoded_size(m));
    FUZZ_CHECK(!encode(m, out));
    FUZZ_CHECK(std::equal(out.begin(), out.end(), msg.begin(), msg.end()));
}

struct harness {
    control_client<open_security>& c;
    std::vector<std::uint8_t> transcript;
    bool closed_seen = false;
    std::uint32_t greeted_mode = 0;
    std::uint64_t last_request = 0;

    void drain_events()
    {
        while (auto e = c.next_event()) {
            FUZZ_CHECK(!closed_seen);
            std::visit(
                overloaded{
                    [&](const client_events::greeting_received& g) {
                        FUZZ_CHECK(g.selected_mode == c.agreed_mode());
                        FUZZ_CHECK((g.selected_mode & ~g.server_modes) == 0);
                        FUZZ_CHECK(mode::security_bit_count(g.selected_mode) == 1);
                        greeted_mode = g.selected_mode;
                    },
                    [&](const client_events::control_ready& r) {
                        FUZZ_CHECK(r.mode == greeted_mode && r.mode != 0);
                    },
                    [&](const client_events::session_accepted& a) {
                        FUZZ_CHECK(a.port != 0);
                        FUZZ_CHECK(a.request_id >= 1 && a.request_id <= last_request);
                    },
                    [&](const client_events::session_rejected& r) {
                        FUZZ_CHECK(r.accept != accept_code::ok);
                        FUZZ_CHECK(r.request_id >= 1 && r.request_id <= last_request);
                    },
                    [&](const client_events::sessions_started&) {},
                    [&](const client_events::start_n_acked& a) { FUZZ_CHECK(!a.sids.empty()); },
                    [&](const client_events::stop_n_acked& a) { FUZZ_CHECK(!a.sids.empty()); },
                    [&](const connection_closed&) { closed_seen = true; },
                },
                *e);
        }
        FUZZ_CHECK(closed_seen == c.closed());
        if (c.closed()) FUZZ_CHECK(!c.deadline());
        for (const auto& s : c.sessions())
            FUZZ_CHECK(s.port != 0);
    }

    void consume(std::size_t n)
    {
        const auto out = c.pending_output();
        n = std::min(n, out.size());
        transcript.insert(transcript.end(), out.begin(),
                          out.begin() + static_cast<std::ptrdiff_t>(n));
        c.consume_output(n);
    }

    // Everything the client sent parses as its messages, in canonical (strict) form.
    void check_transcript()
    {
        consume(c.pending_output().size());
        if (transcript.empty()) return;
        FUZZ_CHECK(transcript.size() >= kSetupResponseSize);
        setup_response sr;
        FUZZ_CHECK(!decode(std::span(transcript).first(kSetupResponseSize), sr));
        FUZZ_CHECK(sr.mode == greeted_mode);
        std::span<const std::uint8_t> rest = std::span(transcript).subspan(kSetupResponseSize);
        FUZZ_CHECK(rest.empty() || sr.mode != 0);
        while (!rest.empty()) {
            std::size_t n = 0;
            FUZZ_CHECK(!command_message_size(rest, n));
            FUZZ_CHECK(rest.size() >= n);
            const auto msg = rest.first(n);
            switch (static_cast<command>(msg[0])) {
            case command::request_tw_session:
                strict_roundtrip<request_tw_session>(msg);
                break;
            case command::start_sessions:
                strict_roundtrip<start_sessions>(msg);
                break;
            case command::stop_sessions:
                strict_roundtrip<stop_sessions>(msg);
                break;
            case command::start_n_sessions:
                strict_roundtrip<start_n_sessions>(msg);
                break;
            case command::stop_n_sessions:
                strict_roundtrip<stop_n_sessions>(msg);
                break;
            default:
                FUZZ_CHECK(!"the client sent a command it has no API for");
                break;
            }
            rest = rest.subspan(n);
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    fuzz_input in(data, size);
    client_config cfg;
    const std::uint8_t c0 = in.u8();
    cfg.security_modes = (c0 & 1) ? mode::encrypted | mode::unauthenticated : mode::unauthenticated;
    cfg.features =
        static_cast<std::uint32_t>(c0) << 3 &
        (mode::individual_session_control | mode::reflect_octets | mode::symmetrical_size);
    const std::uint8_t c1 = in.u8();
    cfg.required_features = static_cast<std::uint32_t>(c1) << 4 &
                            (mode::individual_session_control | mode::reflect_octets);
    cfg.reply_timeout = std::chrono::milliseconds(in.u8() * 100); // 0: wait forever
    cfg.max_count = 1024u << (in.u8() & 7);
    cfg.random = twamp_fuzz::counter_random{};

    std::int64_t now = twamp_fuzz::kEpochNs;
    control_client<open_security> c(cfg, nanoseconds{now});
    harness h{c, {}, false, 0, 0};
    FUZZ_CHECK(c.deadline().has_value() == (cfg.reply_timeout > nanoseconds::zero()));

    int ops = 0;
    while (in.remaining() >= 2 && ++ops < 2048) {
        const std::uint8_t kind = in.back_u8() % 8;
        const std::uint8_t arg = in.back_u8();
        switch (kind) {
        case 0:
            c.receive(in.bytes(std::size_t{arg} + 1), nanoseconds{now});
            break;
        case 1:
            now += twamp_fuzz::time_step_ns(arg);
            break;
        case 2: {
            const auto d = c.deadline();
            c.on_timer(nanoseconds{now});
            if (d && now >= d->count()) FUZZ_CHECK(c.closed());
            break;
        }
        case 3: {
            request_tw_session req;
            req.ipvn = (arg & 1) ? 6 : 4;
            if (arg & 2) req.ipvn = 5; // refused by the API
            req.sender_port = static_cast<std::uint16_t>(5000 + arg);
            req.receiver_port = static_cast<std::uint16_t>(6000 + arg);
            if (arg & 4) req.sender_address = make_address_v4(10, 0, 0, arg);
            req.padding_length = arg;
            req.type_p = type_p_from_dscp(arg & 0x3F);
            if (arg & 8) {
                req.octets_to_be_reflected = 2;
                req.padding_to_reflect_length = arg & 7;
            }
            req.conf_sender = arg & 16 ? 1 : 0; // the client zeroes it
            req.sid[0] = arg;                   // and this
            std::uint64_t id = 0;
            const auto ec = c.request_session(req, nanoseconds{now}, id);
            if (!ec) {
                FUZZ_CHECK(id == h.last_request + 1);
                h.last_request = id;
            }
            break;
        }
        case 4:
            (void)c.start_sessions(nanoseconds{now});
            break;
        case 5:
            (void)c.stop_sessions(nanoseconds{now}, static_cast<accept_code>(arg % 7));
            break;
        case 6: {
            std::vector<session_id> sids;
            const auto& ss = c.sessions();
            for (std::size_t i = 0; i < ss.size() && i < 6; ++i)
                if (arg >> i & 1) sids.push_back(ss[i].sid);
            if ((arg & 0x40) && !ss.empty()) sids.push_back(ss[0].sid); // listed twice
            const auto ec = (arg & 0x80) ? c.stop_n_sessions(sids, nanoseconds{now})
                                         : c.start_n_sessions(sids, nanoseconds{now});
            // Refusals (wrong state, SIDs not in the right state, none listed) change nothing.
            if (ec) FUZZ_CHECK(c.sessions().size() == ss.size());
            break;
        }
        case 7:
            if (arg >= 250)
                c.on_eof(nanoseconds{now});
            else
                h.consume(std::size_t{arg} * 4);
            break;
        }
        h.drain_events();
    }
    c.receive(in.rest(), nanoseconds{now});
    h.drain_events();
    h.check_transcript();
    if (c.closed()) {
        const std::uint8_t junk[16] = {};
        c.receive(junk, nanoseconds{now});
        c.on_timer(nanoseconds{now} + std::chrono::hours(1));
        FUZZ_CHECK(!c.next_event() && c.pending_output().empty());
    }
    return 0;
}
