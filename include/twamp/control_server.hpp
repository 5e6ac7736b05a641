// twamp/control_server.hpp — sans-I/O TWAMP-Control Server (the Session-Reflector's control side).
//
// RFC 5357 §3.1–3.8 (with RFC 4656 §3.1–3.8 and EID 1587), RFC 5938 §3 (Start-N/Stop-N, mode 16),
// RFC 6038 §4 (Reflect Octets fields). The object owns no socket, clock or thread: the transport
// feeds it received TCP octets (any fragmentation) with the current time, writes out whatever
// pending_output() holds, arms one timer for deadline() and calls on_timer() when it fires, and
// acts on the events (start or stop reflecting sessions). When closed() turns true the transport
// flushes the remaining output and closes the connection.
//
// Time: every `now` is an `instant` (twamp/clock.hpp), both readings of one moment. Deadlines
// (deadline(), the `at` of events) are computed and compared on instant::mono only, so a step
// of the wall clock neither delays nor hastens a timer; instant::wall is used only for what goes
// on the wire. A plain nanoseconds value converts to an instant with both readings equal.
//
// Every message after the Set-Up-Response goes through the Security policy (control_machine_policy
// in control.hpp; keyed_security in control_security.hpp runs the protected modes). Framing,
// sealing, the event queue and the close are the control channel both machines share
// (detail/control_channel.hpp); this file holds only the protocol of its side.
#pragma once

#include <twamp/clock.hpp>
#include <twamp/control.hpp>
#include <twamp/detail/control_channel.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace twamp::control {

// The addresses of the TCP control connection; they stand in for zero Sender/Receiver Addresses
// in Request-TW-Session (RFC 5357 §3.5).
struct connection_addresses {
    std::uint8_t ipvn = 4;
    address_bytes client{}; // the Control-Client / Session-Sender side
    address_bytes server{}; // our side: the Session-Reflector
};

// Chooses the reflector's UDP port for a request: the requested port if it is free, another one
// the transport can bind, or nullopt when none is available (answered with Accept 5, port 0).
using port_allocator = std::function<std::optional<std::uint16_t>(std::uint16_t requested)>;

struct server_config {
    // Modes to offer; masked with what the Security policy can run and the feature bits of
    // mode::feature_mask. No security bit left means a Modes 0 greeting (refusal).
    std::uint32_t modes = mode::unauthenticated;
    std::uint32_t count = 2048; // PBKDF2 count for the greeting (power of 2, >= 1024)
    // SERVWAIT (RFC 5357 §3.1): close an idle connection; zero disables it.
    nanoseconds servwait = std::chrono::seconds(900);
    // Sessions per connection (accepted and not yet stopped); further requests get Accept 4.
    std::size_t max_sessions = 64;
    // Also read a Type-P Descriptor with the DSCP in its low 6 bits (see dscp_from_type_p()).
    bool accept_low_dscp = true;
    // RFC 6038 Server octets returned when mode 32 was agreed; 0 = none wanted.
    std::uint16_t server_octets = 0;
    // Start-Time of Server-Start: when this server instance started (RFC 4656 §3.1).
    nanoseconds server_start_time{};
    port_allocator allocate_port; // empty: grant the requested port if non-zero, else Accept 5
    // Challenge, Salt and Server-IV. Empty: the Security policy's crypto random_bytes (a CSPRNG,
    // the same source as the keys) when it has one, else system_random.
    random_source random;
    // A further check of each request the state machine would accept (addresses filled in), run
    // before a port is allocated: server-wide budgets, sessions still waiting out their Timeout,
    // third-party Sender Addresses. Anything but Accept 0 refuses the request with that code.
    std::function<accept_code(const request_tw_session&)> admit_session;
    // Asked before the PBKDF2 key derivation of a protected Set-Up-Response (the expensive step
    // a client can make us take); false refuses the client with Server-Start Accept 1 without
    // that work. Empty: always allowed.
    std::function<bool()> admit_key_derivation;
    // Do not run that derivation inside receive(): wait for the transport to call derive_keys()
    // (on a worker thread, say) and keys_derived() (see key_derivation_pending()).
    bool offload_key_derivation = false;
    // Connection admission; empty admits everybody. A refused client gets a Modes 0 greeting.
    std::function<bool(const connection_addresses&)> admit;
};

namespace server_events {
// The Set-Up-Response chose `mode`; Server-Start (Accept 0) is queued.
struct mode_agreed {
    std::uint32_t mode = 0;
};
// A session the transport must prepare to reflect: listen on reflector_port; `request` has its
// zero addresses replaced by the connection's and, without mode 32, its RFC 6038 fields zeroed.
struct session_accepted {
    session_id sid{};
    std::uint16_t reflector_port = 0;
    std::uint8_t dscp = 0; // from the Type-P Descriptor; replies use the same DSCP
    std::uint16_t server_octets = 0;
    request_tw_session request;
};
struct session_rejected {
    accept_code accept = accept_code::failure;
    request_tw_session request;
};
// Start reflecting these sessions (RFC 4656 §3.7: at their Start Time if that is later).
struct sessions_started {
    std::vector<session_id> sids;
};
// Stop these sessions: keep reflecting until `at` + each session's Timeout (RFC 5357 §3.8). `at`
// is the monotonic reading (instant::mono) of the `now` the Stop message arrived with: a
// deadline, not a wall time. A non-zero `accept` (classic Stop-Sessions only) marks the results
// invalid.
struct sessions_stopped {
    accept_code accept = accept_code::ok;
    std::vector<session_id> sids;
    nanoseconds at{};
};
} // namespace server_events

using server_event = std::variant<server_events::mode_agreed, server_events::session_accepted,
                                  server_events::session_rejected, server_events::sessions_started,
                                  server_events::sessions_stopped, connection_closed>;

template <class Security = open_security>
requires control_machine_policy<Security>
class control_server : public detail::control_endpoint<Security, server_event> {
public:
    enum class state { awaiting_setup, ready, closed };

    // Queues the Server Greeting at once (the server speaks first, RFC 4656 §3.1).
    control_server(server_config cfg, connection_addresses conn, instant now,
                   Security security = {})
        : endpoint(std::move(security)), cfg_(std::move(cfg)), conn_(conn), idle_since_(now.mono)
    {
        if (!cfg_.random) {
            if constexpr (crypto_backed_policy<Security>) {
                // A failing CSPRNG must not leave predictable octets: stop rather than go on.
                cfg_.random = [](std::span<std::uint8_t> out) {
                    if (Security::crypto_type::random_bytes(out)) std::abort();
                };
            } else {
                cfg_.random = system_random;
            }
        }
        offered_ = cfg_.modes & (Security::security_modes | mode::feature_mask);
        if ((offered_ & mode::security_mask) == 0 || (cfg_.admit && !cfg_.admit(conn_)))
            offered_ = 0;
        server_greeting g;
        g.modes = offered_;
        cfg_.random(g.challenge);
        cfg_.random(g.salt);
        g.count = cfg_.count;
        greeting_ = g;
        if (ch_.queue(g)) return;
        // RFC 4656 §3.1: with Modes 0 the server "MAY close the connection immediately".
        if (offered_ == 0) close({}, std::nullopt, "connection refused (Modes 0)");
    }

    // Feed received octets. Everything is consumed; after a close the rest is ignored.
    void receive(std::span<const std::uint8_t> data, instant now)
    {
        if (phase() == state::closed || data.empty()) return;
        if (deriving_) {
            // Nothing is due before Server-Start; keep a little (pipelined requests), no more.
            if (held_in_.size() + data.size() > kMaxHeldInput) {
                close(errc::protocol_violation, std::nullopt, "too much input before Server-Start");
                return;
            }
            held_in_.insert(held_in_.end(), data.begin(), data.end());
            return;
        }
        // SERVWAIT restarts only when a whole message has arrived (on_setup_response and
        // on_command), so a client dripping octets cannot hold a connection forever.
        while (!data.empty() && phase() != state::closed) {
            if (state_ == state::awaiting_setup) {
                data = data.subspan(ch_.fill(data, kSetupResponseSize));
                if (ch_.holds(kSetupResponseSize)) on_setup_response(now);
                continue;
            }
            data = data.subspan(ch_.fill(data, ch_.target()));
            if (!ch_.open_blocks()) return;
            if (ch_.want() == 0 && ch_.holds(kBlockSize)) {
                if (!frame_command()) continue;
            }
            if (ch_.want() != 0 && ch_.holds(ch_.want())) on_command(now);
        }
    }

    // The peer closed its side (TCP FIN). Sessions end with the connection.
    void on_eof(instant)
    {
        if (phase() == state::closed) return;
        if (!ch_.input_empty())
            close(errc::truncated, std::nullopt, "connection closed mid-message");
        else
            close({}, std::nullopt, "client closed the connection");
    }

    // Monotonic time (instant::mono) at which on_timer() must be called, if any (the SERVWAIT
    // deadline).
    std::optional<nanoseconds> deadline() const noexcept
    {
        if (phase() == state::closed || cfg_.servwait <= nanoseconds::zero() || monitoring_paused())
            return std::nullopt;
        return idle_since_ + cfg_.servwait;
    }
    void on_timer(instant now)
    {
        const auto d = deadline();
        if (d && now.mono >= *d) close(errc::timeout, std::nullopt, "SERVWAIT expired");
    }

    // RFC 5357 §3.1 / RFC 5938 §3.6: when REFWAIT has expired on all test sessions, SERVWAIT
    // monitoring resumes as if the sessions had been stopped. The sessions stay on record so a
    // later Stop-Sessions still has to count them.
    void refwait_expired(instant now)
    {
        if (phase() == state::closed || !monitoring_paused()) return;
        refwait_override_ = true;
        idle_since_ = now.mono;
    }

    // With server_config::offload_key_derivation: a protected Set-Up-Response has arrived and
    // its key derivation waits for derive_keys(). Meanwhile the machine holds its input.
    bool key_derivation_pending() const noexcept { return deriving_; }

    // The PBKDF2 derivation and Token check of the held Set-Up-Response. May run on another
    // thread while the owner calls only receive(), on_eof(), on_timer(), deadline(), closed(),
    // next_event(), pending_output() and consume_output(): none of them touches the Security
    // policy or the held set-up while key_derivation_pending().
    void derive_keys()
    {
        if constexpr (keyed_control_security_policy<Security>)
            derived_accept_ =
                ch_.security().server_setup(greeting_, held_setup_, held_start_.server_iv);
    }

    // Back on the owner's thread after derive_keys(): Server-Start (or the refusal), then the
    // input held meanwhile.
    void keys_derived(instant now)
    {
        if (!deriving_) return;
        deriving_ = false;
        if (phase() == state::closed) return;
        if (derived_accept_ != accept_code::ok) {
            refuse_key(derived_accept_);
            return;
        }
        send_server_start(held_start_);
        std::vector<std::uint8_t> held;
        held.swap(held_in_);
        receive(held, now);
    }

    // pending_output(), consume_output(), next_event(), closed() and security(): the channel's
    // (detail::control_endpoint).
    state current_state() const noexcept { return phase(); }
    std::uint32_t offered_modes() const noexcept { return offered_; }
    std::uint32_t agreed_mode() const noexcept { return mode_; }
    std::size_t session_count() const noexcept { return sessions_.size(); }

private:
    enum class session_state { accepted, started };
    struct session {
        session_id sid;
        session_state st;
    };

    bool individual() const noexcept { return (mode_ & mode::individual_session_control) != 0; }

    // RFC 5357 §3.1: monitoring pauses from Start-Sessions to Stop-Sessions; RFC 5938 §3.6:
    // while any individually controlled session runs.
    bool monitoring_paused() const noexcept
    {
        if (refwait_override_) return false;
        return std::any_of(sessions_.begin(), sessions_.end(),
                           [](const session& s) { return s.st == session_state::started; });
    }

    void close(std::error_code ec, std::optional<accept_code> accept, std::string_view reason)
    {
        ch_.close(ec, accept, reason);
    }
    // The phase, closed once the channel is.
    state phase() const noexcept { return ch_.closed() ? state::closed : state_; }

    // RFC 5357 §3.5: an unexpected command is answered with Accept 3 in an Accept-Session.
    // Its length may be unknown, so the stream cannot be resynchronised: close afterwards.
    void reject_unexpected(std::string_view reason)
    {
        accept_session a;
        a.accept = accept_code::not_supported;
        if (ch_.queue_sealed(a)) return;
        close(errc::unsupported, accept_code::not_supported, reason);
    }

    void on_setup_response(instant now)
    {
        idle_since_ = now.mono;
        setup_response sr;
        (void)decode(ch_.input(), sr); // cannot fail: exactly 164 octets
        ch_.reset_input();
        if (sr.mode == 0) {
            // RFC 4656 §3.1: the client will not continue; both sides should close.
            close({}, std::nullopt, "client declined (Mode 0)");
            return;
        }
        // Exactly one security bit, and nothing we did not offer (RFC 4656 §3.1; RFC 5938 §3.1).
        if (mode::security_bit_count(sr.mode) != 1 || (sr.mode & ~offered_) != 0) {
            server_start ss;
            ss.accept = accept_code::not_supported;
            if (ch_.queue(ss)) return;
            close(errc::unsupported, accept_code::not_supported, "mode not offered");
            return;
        }
        mode_ = sr.mode;
        ch_.security().select_mode(mode_);
        server_start ss;
        ss.accept = accept_code::ok;
        // Server-IV is unused in unauthenticated mode; like twampd we send zeros there.
        if ((mode_ & mode::unauthenticated) == 0) cfg_.random(ss.server_iv);
        if constexpr (keyed_control_security_policy<Security>) {
            // A keyed policy checks KeyID and Token (RFC 4656 §3.1) and starts both chains. A
            // refusal is a Server-Start with its Accept code, sent in the clear, then close.
            if ((mode_ & mode::unauthenticated) == 0) {
                if (cfg_.admit_key_derivation && !cfg_.admit_key_derivation()) {
                    server_start no;
                    no.accept = accept_code::failure;
                    if (ch_.queue(no)) return;
                    close(errc::auth_failed, accept_code::failure,
                          "key derivation refused: too many set-ups");
                    return;
                }
                if (cfg_.offload_key_derivation) {
                    // The transport runs derive_keys() elsewhere, then keys_derived().
                    held_setup_ = sr;
                    held_start_ = ss;
                    deriving_ = true;
                    return;
                }
                const accept_code a = ch_.security().server_setup(greeting_, sr, ss.server_iv);
                if (a != accept_code::ok) {
                    refuse_key(a);
                    return;
                }
            }
        }
        send_server_start(ss);
    }

    void refuse_key(accept_code a)
    {
        server_start no;
        no.accept = a;
        if (ch_.queue(no)) return;
        close(errc::auth_failed, a, "the client's key was refused");
    }

    void send_server_start(server_start ss)
    {
        ss.start_time = to_ntp(cfg_.server_start_time);
        // Octets 32..47 are the first protected block; no HMAC of their own (RFC 5357 §3.2).
        if (ch_.queue_partly_sealed(ss, 32, kBlockSize, "cannot protect Server-Start")) return;
        state_ = state::ready;
        ch_.emit(server_events::mode_agreed{mode_});
    }

    // Called with the first (decrypted) block of a command; returns false if the connection
    // was closed.
    bool frame_command()
    {
        const std::uint8_t cmd = peek_command(ch_.input());
        if (!command_allowed(cmd)) {
            reject_unexpected("unexpected command number");
            return false;
        }
        std::size_t size = 0;
        if (auto ec = command_message_size(ch_.input(), size)) {
            // N of 0 or beyond our cap: no Ack can describe it (N >= 1), so just close.
            close(ec, std::nullopt, "invalid Number of Sessions");
            return false;
        }
        ch_.expect(size);
        return true;
    }

    bool command_allowed(std::uint8_t cmd) const noexcept
    {
        switch (static_cast<command>(cmd)) {
        case command::request_tw_session:
            return true;
        case command::start_sessions:
        case command::stop_sessions:
            return !individual(); // RFC 5938 §3.1 item 2
        case command::start_n_sessions:
        case command::stop_n_sessions:
            return individual();
        default:
            return false;
        }
    }

    void on_command(instant now)
    {
        idle_since_ = now.mono;
        if (!ch_.verify_hmac()) return;
        const std::vector<std::uint8_t> msg = ch_.take_input();
        switch (static_cast<command>(msg[0])) {
        case command::request_tw_session:
            on_request(msg, now);
            break;
        case command::start_sessions:
            on_start(msg);
            break;
        case command::stop_sessions:
            on_stop(msg, now);
            break;
        case command::start_n_sessions:
            on_start_n(msg);
            break;
        case command::stop_n_sessions:
            on_stop_n(msg, now);
            break;
        default:
            break; // filtered by command_allowed()
        }
    }

    bool active_classic() const noexcept
    {
        return !individual() && std::any_of(sessions_.begin(), sessions_.end(),
                                            [](auto& s) { return s.st == session_state::started; });
    }

    void reject_request(accept_code a, const request_tw_session& req)
    {
        accept_session reply;
        reply.accept = a; // Port and SID stay zero (EID 1587)
        ch_.queue_sealed(reply);
        ch_.emit(server_events::session_rejected{a, req});
    }

    void on_request(std::span<const std::uint8_t> msg, instant now)
    {
        // RFC 4656 §3.4: during active measurement only Stop-Sessions is available.
        if (active_classic()) {
            close(errc::protocol_violation, std::nullopt, "Request-TW-Session while sessions run");
            return;
        }
        request_tw_session req;
        if (decode(msg, req)) {
            // The length is right, only a field is not (IPVN): answer and carry on.
            reject_request(accept_code::not_supported, req);
            return;
        }
        // RFC 5357 §3.5: these MUST be zero in TWAMP; non-zero is answered with Accept 3.
        if (req.conf_sender || req.conf_receiver || req.schedule_slots || req.packets) {
            reject_request(accept_code::not_supported, req);
            return;
        }
        const auto dscp = dscp_from_type_p(req.type_p, cfg_.accept_low_dscp);
        if (!dscp) {
            reject_request(accept_code::not_supported, req);
            return;
        }
        const bool reflect = (mode_ & mode::reflect_octets) != 0;
        if (!reflect) {
            // Without mode 32 octets 88..91 are MBZ: ignore whatever was sent.
            req.octets_to_be_reflected = 0;
            req.padding_to_reflect_length = 0;
        } else if (req.padding_to_reflect_length != 0 &&
                   req.padding_length <= req.padding_to_reflect_length) {
            // RFC 6038 §4.2: Padding Length SHALL exceed the length of padding to reflect.
            reject_request(accept_code::not_supported, req);
            return;
        }
        // RFC 5357 §3.5: zero addresses mean the control connection's. We cannot substitute
        // an address of the other IP version, so that combination is not supported.
        for (auto* addr : {&req.sender_address, &req.receiver_address}) {
            if (!is_zero(*addr)) continue;
            if (req.ipvn != conn_.ipvn) {
                reject_request(accept_code::not_supported, req);
                return;
            }
            *addr = addr == &req.sender_address ? conn_.client : conn_.server;
        }
        req.sid = {}; // MUST be zero in the request; we assign it regardless of what came
        if (sessions_.size() >= cfg_.max_sessions) {
            reject_request(accept_code::permanent_limit, req);
            return;
        }
        if (cfg_.admit_session) {
            if (const accept_code a = cfg_.admit_session(req); a != accept_code::ok) {
                reject_request(a, req);
                return;
            }
        }
        std::optional<std::uint16_t> port;
        if (cfg_.allocate_port)
            port = cfg_.allocate_port(req.receiver_port);
        else if (req.receiver_port != 0)
            port = req.receiver_port;
        if (!port || *port == 0) {
            reject_request(accept_code::temporary_limit, req);
            return;
        }
        const auto sid = new_sid(req, now.wall); // the SID carries a wall time
        if (!sid) {
            reject_request(accept_code::internal_error, req);
            return;
        }
        accept_session reply;
        reply.accept = accept_code::ok;
        reply.port = *port;
        reply.sid = *sid;
        if (reflect) {
            reply.reflected_octets = req.octets_to_be_reflected;
            reply.server_octets = cfg_.server_octets;
        }
        ch_.queue_sealed(reply);
        sessions_.push_back({*sid, session_state::accepted});
        ch_.emit(server_events::session_accepted{*sid, *port, *dscp, reply.server_octets, req});
    }

    std::optional<session_id> new_sid(const request_tw_session& req, nanoseconds now)
    {
        // A fresh random part makes collisions unlikely; a handful of retries keeps a stuck
        // generator from looping forever.
        for (int attempt = 0; attempt < 8; ++attempt) {
            std::array<std::uint8_t, 4> rnd{};
            cfg_.random(rnd);
            const auto sid = make_sid(req.ipvn, req.receiver_address, to_ntp(now), rnd);
            if (!find(sid)) return sid;
        }
        return std::nullopt;
    }

    session* find(const session_id& sid)
    {
        auto it = std::find_if(sessions_.begin(), sessions_.end(),
                               [&](const session& s) { return s.sid == sid; });
        return it == sessions_.end() ? nullptr : &*it;
    }

    void on_start(std::span<const std::uint8_t> msg)
    {
        if (active_classic()) {
            close(errc::protocol_violation, std::nullopt, "Start-Sessions while sessions run");
            return;
        }
        start_sessions m;
        (void)decode(msg, m); // framed by command number and length: cannot fail
        start_ack ack;
        // Starting nothing is not a useful request, and it would leave the client with a
        // Stop-Sessions count of 0; refuse it (the catch-all code: no other fits).
        ack.accept = sessions_.empty() ? accept_code::failure : accept_code::ok;
        ch_.queue_sealed(ack);
        if (ack.accept != accept_code::ok) return;
        server_events::sessions_started ev;
        for (auto& s : sessions_) {
            s.st = session_state::started;
            ev.sids.push_back(s.sid);
        }
        refwait_override_ = false;
        ch_.emit(std::move(ev));
    }

    void on_stop(std::span<const std::uint8_t> msg, instant now)
    {
        if (!active_classic()) {
            close(errc::protocol_violation, std::nullopt, "Stop-Sessions without started sessions");
            return;
        }
        stop_sessions m;
        (void)decode(msg, m);
        // RFC 5357 §3.8: a count that does not match makes the message invalid; close.
        if (m.number_of_sessions != sessions_.size()) {
            close(errc::bad_value, std::nullopt, "Stop-Sessions: wrong Number of Sessions");
            return;
        }
        server_events::sessions_stopped ev{m.accept, {}, now.mono};
        for (const auto& s : sessions_)
            ev.sids.push_back(s.sid);
        sessions_.clear();
        refwait_override_ = false;
        ch_.emit(std::move(ev));
    }

    // RFC 5938 §3.3/§3.5: one Ack per Accept value, each listing its SIDs.
    template <class Ack>
    void queue_acks(const std::vector<session_id>& ok, const std::vector<session_id>& failed)
    {
        if (!ok.empty()) {
            Ack a;
            a.accept = accept_code::ok;
            a.sids = ok;
            ch_.queue_sealed(a);
        }
        if (!failed.empty()) {
            Ack a;
            a.accept = accept_code::failure;
            a.sids = failed;
            ch_.queue_sealed(a);
        }
    }

    void on_start_n(std::span<const std::uint8_t> msg)
    {
        start_n_sessions m;
        (void)decode(msg, m);
        std::vector<session_id> ok, failed;
        for (const auto& sid : m.sids) {
            session* s = find(sid);
            // Unknown SIDs and sessions already running (or listed twice) are refused.
            if (s && s->st == session_state::accepted) {
                s->st = session_state::started;
                ok.push_back(sid);
            } else {
                failed.push_back(sid);
            }
        }
        queue_acks<start_n_ack>(ok, failed);
        if (!ok.empty()) {
            refwait_override_ = false;
            ch_.emit(server_events::sessions_started{std::move(ok)});
        }
    }

    void on_stop_n(std::span<const std::uint8_t> msg, instant now)
    {
        stop_n_sessions m;
        (void)decode(msg, m);
        std::vector<session_id> ok, failed;
        for (const auto& sid : m.sids) {
            session* s = find(sid);
            if (s && s->st == session_state::started) {
                sessions_.erase(sessions_.begin() + (s - sessions_.data()));
                ok.push_back(sid);
            } else {
                failed.push_back(sid);
            }
        }
        queue_acks<stop_n_ack>(ok, failed);
        // SERVWAIT resumes by itself once no session runs; on_command() already set idle_since_.
        if (!ok.empty())
            ch_.emit(server_events::sessions_stopped{accept_code::ok, std::move(ok), now.mono});
    }

    using endpoint = detail::control_endpoint<Security, server_event>;
    using endpoint::ch_; // the channel: framing, sealing, events, close

    server_config cfg_;
    connection_addresses conn_;
    state state_ = state::awaiting_setup;
    server_greeting greeting_;
    std::uint32_t offered_ = 0;
    std::uint32_t mode_ = 0;
    std::vector<session> sessions_;
    nanoseconds idle_since_{}; // monotonic
    bool refwait_override_ = false;
    static constexpr std::size_t kMaxHeldInput = 16 * 1024;
    bool deriving_ = false;
    setup_response held_setup_{};
    server_start held_start_{};
    accept_code derived_accept_ = accept_code::internal_error;
    std::vector<std::uint8_t> held_in_;
};

} // namespace twamp::control
