// twamp/control_client.hpp — sans-I/O TWAMP Control-Client (the Session-Sender's control side).
//
// RFC 5357 §3.1–3.8 (with RFC 4656 §3.1–3.8 and EID 1587), RFC 5938 §3 (Start-N/Stop-N, mode 16),
// RFC 6038 §4 (Reflect Octets fields). The transport feeds received TCP octets (any
// fragmentation) with the current time, writes out pending_output(), arms one timer for
// deadline(), and reads events: greeting handled, control connection ready, each session
// accepted (with the reflector port and SID to use) or rejected, start and stop acknowledgements,
// and finally connection_closed. Commands are issued with request_session(), start_sessions(),
// stop_sessions(), start_n_sessions() and stop_n_sessions().
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
#include <deque>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace twamp::control {

struct client_config {
    // Security modes we are willing to use; the strongest one the server offers (and the
    // policy can run) is chosen, in the order encrypted, authenticated, mixed, unauthenticated.
    std::uint32_t security_modes = mode::unauthenticated;
    // Optional feature bits (16, 32, 64, ...) to select when the server offers them.
    std::uint32_t features = 0;
    // Features without which we decline (Set-Up-Response with Mode 0) rather than go on.
    std::uint32_t required_features = 0;
    // Give up when an expected message (greeting, Server-Start, an Accept-Session or Ack) does
    // not arrive in this time; zero waits forever.
    nanoseconds reply_timeout = std::chrono::seconds(30);
    // DoS guard for the protected modes: refuse a greeting whose PBKDF2 Count is above this
    // (RFC 5357 §6 suggests 2^15), not a power of 2 or below 1024 (RFC 4656 §3.1).
    std::uint32_t max_count = std::uint32_t{1} << 15;
    random_source random; // empty: system_random
};

namespace client_events {
// The greeting was read and a Set-Up-Response with `selected_mode` is queued.
struct greeting_received {
    std::uint32_t server_modes = 0;
    std::uint32_t selected_mode = 0;
    std::uint32_t count = 0;
};
// Server-Start accepted the mode: sessions may be requested now.
struct control_ready {
    std::uint32_t mode = 0;
    ntp_timestamp server_start_time{};
};
// Send test packets for this request to `port` (not necessarily the requested port).
struct session_accepted {
    std::uint64_t request_id = 0;
    std::uint16_t port = 0;
    session_id sid{};
    std::uint16_t reflected_octets = 0;
    std::uint16_t server_octets = 0; // RFC 6038: carry these in the test packets if non-zero
};
struct session_rejected {
    std::uint64_t request_id = 0;
    accept_code accept = accept_code::failure;
    std::uint16_t port = 0; // EID 1587: zero; some servers may still suggest a port
};
// Start-Ack with Accept 0 (a non-zero Start-Ack closes the connection instead).
struct sessions_started {
    std::vector<session_id> sids;
};
struct start_n_acked {
    accept_code accept = accept_code::ok;
    std::vector<session_id> sids;
};
struct stop_n_acked {
    accept_code accept = accept_code::ok;
    std::vector<session_id> sids;
};
} // namespace client_events

using client_event = std::variant<client_events::greeting_received, client_events::control_ready,
                                  client_events::session_accepted, client_events::session_rejected,
                                  client_events::sessions_started, client_events::start_n_acked,
                                  client_events::stop_n_acked, connection_closed>;

template <class Security = open_security>
requires control_machine_policy<Security>
class control_client : public detail::control_endpoint<Security, client_event> {
public:
    enum class state { awaiting_greeting, awaiting_server_start, ready, closed };
    enum class session_state { accepted, start_pending, started, stop_pending };

    struct session {
        std::uint64_t request_id = 0;
        session_id sid{};
        std::uint16_t port = 0;
        session_state st = session_state::accepted;
    };

    control_client(client_config cfg, instant now, Security security = {})
        : endpoint(std::move(security)), cfg_(std::move(cfg)), last_progress_(now.mono)
    {
        if (!cfg_.random) cfg_.random = system_random;
    }

    // Feed received octets. Everything is consumed; after a close the rest is ignored.
    void receive(std::span<const std::uint8_t> data, instant now)
    {
        while (!data.empty() && phase() != state::closed) {
            switch (phase()) {
            case state::awaiting_greeting:
                data = data.subspan(ch_.fill(data, kServerGreetingSize));
                if (ch_.holds(kServerGreetingSize)) on_greeting(now);
                break;
            case state::awaiting_server_start:
                data = data.subspan(ch_.fill(data, kServerStartSize));
                if (ch_.holds(kServerStartSize)) on_server_start(now);
                break;
            case state::ready: {
                data = data.subspan(ch_.fill(data, ch_.target()));
                if (!ch_.open_blocks()) return;
                if (ch_.want() == 0 && ch_.holds(kBlockSize) && !frame_reply()) break;
                if (ch_.want() != 0 && ch_.holds(ch_.want())) on_reply(now);
                break;
            }
            case state::closed:
                break;
            }
        }
    }

    void on_eof(instant)
    {
        if (phase() == state::closed) return;
        if (!ch_.input_empty() || awaiting_reply())
            close(errc::truncated, std::nullopt, "server closed the connection early");
        else
            close({}, std::nullopt, "server closed the connection");
    }

    // Monotonic time (instant::mono) at which on_timer() must be called, if any (the reply
    // timeout).
    std::optional<nanoseconds> deadline() const noexcept
    {
        if (phase() == state::closed || cfg_.reply_timeout <= nanoseconds::zero() ||
            !awaiting_reply())
            return std::nullopt;
        return last_progress_ + cfg_.reply_timeout;
    }
    void on_timer(instant now)
    {
        const auto d = deadline();
        if (d && now.mono >= *d) close(errc::timeout, std::nullopt, "no reply from the server");
    }

    // Queues a Request-TW-Session. The TWAMP-fixed fields (Conf-Sender/Receiver, schedule
    // counts, SID, HMAC) are written as zero whatever `req` holds. `request_id` identifies the
    // matching session_accepted / session_rejected event. Requests may be pipelined.
    std::error_code request_session(const request_tw_session& req, instant now,
                                    std::uint64_t& request_id)
    {
        if (phase() != state::ready) return errc::protocol_violation;
        // RFC 4656 §3.4: once Start-Sessions is sent only Stop-Sessions may follow.
        if (classic_active() || start_outstanding()) return errc::protocol_violation;
        if ((mode_ & mode::reflect_octets) == 0 &&
            (req.octets_to_be_reflected != 0 || req.padding_to_reflect_length != 0))
            return errc::unsupported;
        request_tw_session m = req;
        m.conf_sender = m.conf_receiver = 0;
        m.schedule_slots = m.packets = 0;
        m.sid = {};
        m.hmac = {};
        if (m.ipvn != 4 && m.ipvn != 6) return errc::bad_value;
        touch_if_idle(now);
        if (auto ec = ch_.queue_sealed(m)) return ec;
        request_id = ++last_request_id_;
        expected_.push_back({expected::accept_session, request_id});
        return {};
    }

    // Start-Sessions (not with mode 16): starts every accepted session.
    std::error_code start_sessions(instant now)
    {
        if (phase() != state::ready || individual() || classic_active() || start_outstanding())
            return errc::protocol_violation;
        const bool any = !sessions_.empty() ||
                         std::any_of(expected_.begin(), expected_.end(), [](const expected& e) {
                             return e.kind == expected::accept_session;
                         });
        if (!any) return errc::protocol_violation; // nothing to start
        touch_if_idle(now);
        if (auto ec = ch_.queue_sealed(control::start_sessions{})) return ec;
        expected_.push_back({expected::start_ack, 0});
        return {};
    }

    // Stop-Sessions (not with mode 16) with the number of sessions running. A non-zero
    // `accept` tells the server the results are invalid. No reply follows.
    std::error_code stop_sessions(instant, accept_code accept = accept_code::ok)
    {
        if (phase() != state::ready || individual() || !classic_active())
            return errc::protocol_violation;
        if (static_cast<std::uint8_t>(accept) > kMaxAcceptCode) return errc::bad_value;
        control::stop_sessions m;
        m.accept = accept;
        m.number_of_sessions = static_cast<std::uint32_t>(sessions_.size());
        if (auto ec = ch_.queue_sealed(m)) return ec;
        sessions_.clear();
        return {};
    }

    // Start-N-Sessions (mode 16): each SID must be accepted and not yet started.
    std::error_code start_n_sessions(std::span<const session_id> sids, instant now)
    {
        return individual_command<control::start_n_sessions>(sids, session_state::accepted,
                                                             session_state::start_pending, now);
    }
    // Stop-N-Sessions (mode 16): each SID must be running.
    std::error_code stop_n_sessions(std::span<const session_id> sids, instant now)
    {
        return individual_command<control::stop_n_sessions>(sids, session_state::started,
                                                            session_state::stop_pending, now);
    }

    // pending_output(), consume_output(), next_event(), closed() and security(): the channel's
    // (detail::control_endpoint).
    state current_state() const noexcept { return phase(); }
    std::uint32_t server_modes() const noexcept { return server_modes_; }
    std::uint32_t agreed_mode() const noexcept { return mode_; }
    const std::vector<session>& sessions() const noexcept { return sessions_; }

private:
    struct expected {
        enum kind_t { accept_session, start_ack } kind;
        std::uint64_t request_id;
    };

    bool individual() const noexcept { return (mode_ & mode::individual_session_control) != 0; }
    bool classic_active() const noexcept
    {
        return !individual() && std::any_of(sessions_.begin(), sessions_.end(),
                                            [](auto& s) { return s.st == session_state::started; });
    }
    bool start_outstanding() const noexcept
    {
        return std::any_of(expected_.begin(), expected_.end(),
                           [](const expected& e) { return e.kind == expected::start_ack; });
    }
    bool n_ack_outstanding() const noexcept
    {
        return std::any_of(sessions_.begin(), sessions_.end(), [](const session& s) {
            return s.st == session_state::start_pending || s.st == session_state::stop_pending;
        });
    }
    bool awaiting_reply() const noexcept
    {
        return phase() == state::awaiting_greeting || phase() == state::awaiting_server_start ||
               !expected_.empty() || n_ack_outstanding();
    }
    // The reply timer runs from the moment something becomes expected, not from the last
    // reply of an earlier exchange long ago.
    void touch_if_idle(instant now)
    {
        if (!awaiting_reply()) last_progress_ = now.mono;
    }

    // Reads the next message from the start; also forgets the kind of Ack being read.
    void reset_input()
    {
        ch_.reset_input();
        reading_n_ack_ = false;
    }
    void close(std::error_code ec, std::optional<accept_code> accept, std::string_view reason)
    {
        ch_.close(ec, accept, reason);
        reading_n_ack_ = false;
    }
    // The phase, closed once the channel is.
    state phase() const noexcept { return ch_.closed() ? state::closed : state_; }

    // The strongest security mode both sides (and the policy) can run.
    std::uint32_t choose_security(std::uint32_t offered) const noexcept
    {
        const std::uint32_t usable = offered & cfg_.security_modes & Security::security_modes;
        for (std::uint32_t m :
             {mode::encrypted, mode::authenticated, mode::mixed, mode::unauthenticated})
            if (usable & m) return m;
        return 0;
    }

    // The Count only matters when a key is derived, i.e. outside unauthenticated mode.
    bool count_acceptable(std::uint32_t count) const noexcept
    {
        return count >= 1024 && (count & (count - 1)) == 0 && count <= cfg_.max_count;
    }

    void on_greeting(instant now)
    {
        server_greeting g;
        (void)decode(ch_.input(), g); // exactly 64 octets: cannot fail
        reset_input();
        last_progress_ = now.mono;
        server_modes_ = g.modes;
        if (g.modes == 0) {
            // RFC 4656 §3.1: the server does not wish to talk; the client SHOULD close.
            close(errc::unsupported, std::nullopt, "server refused the connection (Modes 0)");
            return;
        }
        const std::uint32_t security = choose_security(g.modes);
        const std::uint32_t features = g.modes & cfg_.features & mode::feature_mask;
        setup_response sr;
        std::string_view refusal;
        if (security == 0)
            refusal = "no common security mode";
        else if ((cfg_.required_features & ~features) != 0)
            refusal = "required feature not offered";
        else if (security != mode::unauthenticated && !count_acceptable(g.count))
            refusal = "unacceptable PBKDF2 Count";
        if (!refusal.empty()) {
            // Mode 0 tells the server we will not continue (RFC 4656 §3.1).
            if (ch_.queue(sr)) return;
            close(errc::unsupported, std::nullopt, refusal);
            return;
        }
        // KeyID and Token stay zero in unauthenticated mode. Client-IV must be unique
        // (RFC 4656 §3.1), so it is random whenever it is used.
        sr.mode = security | features;
        if (security != mode::unauthenticated) cfg_.random(sr.client_iv);
        mode_ = sr.mode;
        ch_.security().select_mode(mode_);
        if constexpr (keyed_control_security_policy<Security>) {
            // A keyed policy fills KeyID and Token (RFC 4656 §3.1) and starts its outbound
            // chain at Client-IV.
            if (security != mode::unauthenticated) {
                if (auto ec = ch_.security().client_setup(g, sr)) {
                    if (ch_.queue(setup_response{})) return;
                    close(ec, std::nullopt, "cannot set up the shared-secret keys");
                    return;
                }
            }
        }
        if (ch_.queue(sr)) return;
        state_ = state::awaiting_server_start;
        ch_.emit(client_events::greeting_received{g.modes, mode_, g.count});
    }

    void on_server_start(instant now)
    {
        // Octets 32..47 are the first block of the server's protected stream; they carry no
        // HMAC but the next HMAC covers them (RFC 5357 §3.2).
        server_start ss;
        (void)decode(ch_.input(), ss); // lenient and exactly 48 octets: cannot fail
        if (ss.accept == accept_code::ok) {
            if constexpr (keyed_control_security_policy<Security>) {
                // The inbound chain starts at Server-IV (RFC 4656 §3.1).
                if ((mode_ & mode::unauthenticated) == 0) {
                    if (auto ec = ch_.security().server_iv(ss.server_iv)) {
                        close(ec, std::nullopt, "cannot start the server's cipher chain");
                        return;
                    }
                }
            }
            auto tail = ch_.input_span().template subspan<32, kBlockSize>();
            // open_block() also adds the block to the HMAC the first Accept-Session carries.
            if (auto ec = ch_.security().open_block(tail)) {
                close(ec, std::nullopt, "cannot decrypt Server-Start");
                return;
            }
            (void)decode(ch_.input(), ss);
        }
        reset_input();
        last_progress_ = now.mono;
        if (ss.accept != accept_code::ok) {
            close(errc::unsupported, ss.accept, "server rejected the set-up (Server-Start)");
            return;
        }
        state_ = state::ready;
        ch_.emit(client_events::control_ready{mode_, ss.start_time});
    }

    // Called with the first decrypted block of a reply. RFC 5938 Acks start with their command
    // number (8 or 10), which no Accept value (0..5) can be; everything else is the next
    // Accept-Session or Start-Ack in order.
    bool frame_reply()
    {
        const std::uint8_t first = peek_command(ch_.input());
        const bool n_ack = first == static_cast<std::uint8_t>(command::start_n_ack) ||
                           first == static_cast<std::uint8_t>(command::stop_n_ack);
        if (n_ack && n_ack_outstanding()) {
            std::size_t size = 0;
            if (auto ec = command_message_size(ch_.input(), size)) {
                close(ec, std::nullopt, "invalid Number of Sessions in an Ack");
                return false;
            }
            ch_.expect(size);
            reading_n_ack_ = true;
            return true;
        }
        if (expected_.empty()) {
            close(errc::protocol_violation, std::nullopt, "unsolicited message from the server");
            return false;
        }
        ch_.expect(expected_.front().kind == expected::accept_session ? kAcceptSessionSize
                                                                      : kStartAckSize);
        return true;
    }

    void on_reply(instant now)
    {
        if (!ch_.verify_hmac()) return;
        const std::vector<std::uint8_t> msg = ch_.take_input();
        const bool n_ack = reading_n_ack_;
        reset_input();
        last_progress_ = now.mono;
        if (!n_ack) {
            const expected e = expected_.front();
            expected_.pop_front();
            if (e.kind == expected::accept_session)
                on_accept_session(msg, e.request_id);
            else
                on_start_ack(msg);
        } else if (msg[0] == static_cast<std::uint8_t>(command::start_n_ack)) {
            on_n_ack<start_n_ack>(msg);
        } else {
            on_n_ack<stop_n_ack>(msg);
        }
    }

    void on_accept_session(std::span<const std::uint8_t> msg, std::uint64_t request_id)
    {
        accept_session a;
        if (auto ec = decode(msg, a)) {
            close(ec, std::nullopt, "malformed Accept-Session");
            return;
        }
        if (a.accept != accept_code::ok) {
            ch_.emit(client_events::session_rejected{request_id, a.accept, a.port});
            return;
        }
        if (a.port == 0) {
            // Accept 0 must name the port to send to (RFC 5357 §3.5).
            close(errc::bad_value, std::nullopt, "Accept-Session without a port");
            return;
        }
        const bool reflect = (mode_ & mode::reflect_octets) != 0;
        sessions_.push_back({request_id, a.sid, a.port, session_state::accepted});
        ch_.emit(client_events::session_accepted{request_id, a.port, a.sid,
                                                 reflect ? a.reflected_octets : std::uint16_t{0},
                                                 reflect ? a.server_octets : std::uint16_t{0}});
    }

    void on_start_ack(std::span<const std::uint8_t> msg)
    {
        start_ack a;
        (void)decode(msg, a); // lenient and exactly 32 octets: cannot fail
        if (a.accept != accept_code::ok) {
            // RFC 4656 §3.7: the client SHOULD close after a rejected Start-Sessions.
            close(errc::unsupported, a.accept, "server rejected Start-Sessions");
            return;
        }
        client_events::sessions_started ev;
        for (auto& s : sessions_) {
            s.st = session_state::started;
            ev.sids.push_back(s.sid);
        }
        ch_.emit(std::move(ev));
    }

    template <class Ack> void on_n_ack(std::span<const std::uint8_t> msg)
    {
        Ack a;
        if (auto ec = decode(msg, a)) {
            close(ec, std::nullopt, "malformed Start-N-Ack/Stop-N-Ack");
            return;
        }
        constexpr bool is_start = std::is_same_v<Ack, start_n_ack>;
        const session_state pending =
            is_start ? session_state::start_pending : session_state::stop_pending;
        // Acks may come in any order and split by Accept value; match them by SID.
        std::vector<session*> matched;
        for (const auto& sid : a.sids) {
            auto it = std::find_if(sessions_.begin(), sessions_.end(), [&](const session& s) {
                return s.sid == sid && s.st == pending;
            });
            if (it == sessions_.end() ||
                std::find(matched.begin(), matched.end(), &*it) != matched.end()) {
                close(errc::protocol_violation, std::nullopt, "Ack for a SID not pending");
                return;
            }
            matched.push_back(&*it);
        }
        const bool ok = a.accept == accept_code::ok;
        if (is_start) {
            for (session* s : matched)
                s->st = ok ? session_state::started : session_state::accepted;
        } else if (ok) {
            // Stopped sessions are gone; other SIDs may still be waiting for their own Ack.
            std::erase_if(sessions_, [&](const session& s) {
                return std::find(matched.begin(), matched.end(), &s) != matched.end();
            });
        } else {
            for (session* s : matched)
                s->st = session_state::started;
        }
        if constexpr (is_start)
            ch_.emit(client_events::start_n_acked{a.accept, std::move(a.sids)});
        else
            ch_.emit(client_events::stop_n_acked{a.accept, std::move(a.sids)});
    }

    template <class Msg>
    std::error_code individual_command(std::span<const session_id> sids, session_state from,
                                       session_state to, instant now)
    {
        if (phase() != state::ready || !individual()) return errc::protocol_violation;
        if (sids.empty() || sids.size() > kMaxSessionsPerNMessage) return errc::bad_length;
        std::vector<session*> targets;
        for (const auto& sid : sids) {
            auto it = std::find_if(sessions_.begin(), sessions_.end(),
                                   [&](const session& s) { return s.sid == sid; });
            if (it == sessions_.end() || it->st != from ||
                std::find(targets.begin(), targets.end(), &*it) != targets.end())
                return errc::protocol_violation;
            targets.push_back(&*it);
        }
        touch_if_idle(now);
        Msg m;
        m.sids.assign(sids.begin(), sids.end());
        if (auto ec = ch_.queue_sealed(m)) return ec;
        for (session* s : targets)
            s->st = to;
        return {};
    }

    using endpoint = detail::control_endpoint<Security, client_event>;
    using endpoint::ch_; // the channel: framing, sealing, events, close

    client_config cfg_;
    state state_ = state::awaiting_greeting;
    std::uint32_t server_modes_ = 0;
    std::uint32_t mode_ = 0;
    bool reading_n_ack_ = false; // the message being read is a Start-N-Ack or Stop-N-Ack
    std::deque<expected> expected_;
    std::vector<session> sessions_;
    std::uint64_t last_request_id_ = 0;
    nanoseconds last_progress_{}; // monotonic
};

} // namespace twamp::control
